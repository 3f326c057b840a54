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
    benches=(named_lock external_lock handoff file_fairness registry_memory)
fi

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "temp dir: ${TMPDIR:-/tmp} on $(df -T "${TMPDIR:-/tmp}" | awk 'NR==2 {print $2}')"
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo

cargo bench -p lockutils-core --no-run >>"$log" 2>&1 || {
    cat "$log"
    exit 1
}

# Median of criterion's per-sample means, in ns, for GROUP/FUNCTION.
median_ns() {
    local dir="$CARGO_TARGET_DIR/criterion/${1//\//_}/${2//\//_}/new/estimates.json"
    sed -E 's/.*"median":\{"confidence_interval":\{[^}]*\},"point_estimate":([0-9.eE+-]+).*/\1/' "$dir"
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
        ;;
    external_lock)
        cargo bench -p lockutils-core --bench external_lock >>"$log" 2>&1
        compare external_lock lockutils/lock_unlock baseline/raw_ofd -
        compare external_lock lockutils/lock_unlock baseline/raw_ofd_verify -
        compare external_lock lockutils/lock_unlock baseline/kept_ofd 1.5
        compare external_lock lockutils/lock_unlock baseline/kept_ofd_verify -
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
