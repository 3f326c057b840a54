#!/usr/bin/env bash
# Runs every lockutils-core benchmark and prints the figures, each beside its
# baseline, with the ratio and the target (see docs/performance.md).
#
#   scripts/bench.sh            # all benches, about 2 minutes plus the build
#   scripts/bench.sh handoff    # only the named benches
#
# Criterion's full output goes to $CARGO_TARGET_DIR/bench.log; its estimates
# are read back from $CARGO_TARGET_DIR/criterion.
set -euo pipefail

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
log="$CARGO_TARGET_DIR/bench.log"
mkdir -p "$CARGO_TARGET_DIR"
: >"$log"

benches=("$@")
if [ ${#benches[@]} -eq 0 ]; then
    benches=(named_lock external_lock handoff file_fairness registry_memory contended held_many macro_overhead)
fi

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "temp dir: ${TMPDIR:-/tmp} on $(df -T "${TMPDIR:-/tmp}" | awk 'NR==2 {print $2}')"
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo

cargo bench -p lockutils-core -p lockutils --no-run >>"$log" 2>&1 || {
    cat "$log"
    exit 1
}

# Median of criterion's per-sample means, in ns, for GROUP/FUNCTION.
# Criterion's directory for a name: these characters become `_`.
safe() { printf '%s' "$1" | sed 's/[?"\/\\*<>:|^]/_/g'; }
median_ns() {
    local group function file
    group=$(safe "$1")
    function=$(safe "$2")
    file="$CARGO_TARGET_DIR/criterion/$group/$function/new/estimates.json"
    # A `BenchmarkId` with a parameter (`lifo/1000`) is two directories.
    [ -f "$file" ] || file="$CARGO_TARGET_DIR/criterion/$group/$(safe "${2%/*}")/${2##*/}/new/estimates.json"
    sed -E 's/.*"median":\{"confidence_interval":\{[^}]*\},"point_estimate":([0-9.eE+-]+).*/\1/' "$file"
}

# Prints one comparison line: GROUP OURS BASELINE TARGET_RATIO.
compare() {
    local group=$1 ours=$2 base=$3 target=$4
    local o b
    o=$(median_ns "$group" "$ours")
    b=$(median_ns "$group" "$base")
    awk -v g="$group" -v on="$ours" -v bn="$base" -v o="$o" -v b="$b" -v t="$target" 'BEGIN {
        r = o / b
        verdict = (t == "-") ? "(no target)" : (r <= t ? "target <= " t "x: met" : "target <= " t "x: MISSED")
        printf "%-22s %-30s %10.1f ns   %-26s %10.1f ns   %6.2fx   %s\n", g, on, o, bn, b, r, verdict
    }'
}

for bench in "${benches[@]}"; do
    case "$bench" in
    named_lock)
        cargo bench -p lockutils-core --bench named_lock >>"$log" 2>&1
        compare named_lock/one_name lockutils/dynamic baseline/dashmap_mutex 2
        compare named_lock/one_name lockutils/dynamic_live_entry baseline/dashmap_mutex -
        compare named_lock/one_name lockutils/static baseline/dashmap_mutex 2
        compare named_lock/1000_names lockutils/dynamic baseline/dashmap_mutex 2
        compare named_lock/one_name lockutils/dynamic_async lockutils/dynamic 1.5
        compare named_lock/one_name lockutils/static_async lockutils/static 1.5
        ;;
    contended)
        # Time per acquisition over all threads: ours at most the floor's.
        cargo bench -p lockutils-core --bench contended >>"$log" 2>&1
        for label in 1_name/2_threads 1_name/4_threads 64_names/4_threads; do
            compare contended "unfair/$label/lockutils" "unfair/$label/baseline/dashmap_std_mutex" 1
        done
        # Fair: the target is absolute (10x the 0.57 M/s of issue 12, so at
        # most 175 ns per acquisition); parking_lot's unlock_fair is shown.
        compare contended fair/1_name/2_threads/lockutils fair/1_name/2_threads/baseline/parking_lot_unlock_fair -
        ;;
    held_many)
        cargo bench -p lockutils-core --bench held_many >>"$log" 2>&1
        for n in 1000 10000 100000; do
            compare held_many "lifo/$n" "baseline/unrecorded/$n" -
            compare held_many "fifo/$n" "baseline/unrecorded/$n" -
        done
        ;;
    macro_overhead)
        cargo bench -p lockutils --bench macro_overhead >>"$log" 2>&1
        compare "static name" '#[synchronized("x")]' parking_lot::Mutex 2
        compare "static name" "StaticLock::lock by hand" parking_lot::Mutex -
        compare "dynamic name" "#[synchronized(name = key)]" "dashmap + parking_lot::Mutex" 2
        compare "dynamic name" '#[synchronized("bench-{key}")]' "dashmap + parking_lot::Mutex" -
        ;;
    external_lock)
        cargo bench -p lockutils-core --bench external_lock >>"$log" 2>&1
        compare external_lock lockutils/lock_unlock baseline/raw_ofd -
        compare external_lock lockutils/lock_unlock baseline/raw_ofd_verify -
        compare external_lock lockutils/lock_unlock baseline/kept_ofd 1.5
        compare external_lock lockutils/lock_unlock baseline/kept_ofd_verify -
        grep '^external_lock/interleaved' "$log" | tail -1
        ;;
    handoff | file_fairness | registry_memory)
        # These print their own figures.
        cargo bench -p lockutils-core --bench "$bench" 2>>"$log" | tee -a "$log" | grep "^$bench"
        ;;
    *)
        echo "unknown bench: $bench" >&2
        exit 2
        ;;
    esac
    echo
done
