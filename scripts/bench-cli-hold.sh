#!/usr/bin/env bash
# `lockutils hold NAME -- true` as a whole process beside `flock FILE true`,
# and each program's bare start-up (`--version`), in one run: the default
# build (lock files only) and a build with every engine
# (`--features zookeeper,postgresql`),
# perf stat task-clock (when perf is installed) and hyperfine min and median.
#
#   scripts/bench-cli-hold.sh          # about 2 minutes after the builds
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
# hyperfine from Debian's packages, on a fresh machine.
command -v hyperfine >/dev/null || apt-get install -y -q hyperfine >&2 ||
    { apt-get update -q >&2 && apt-get install -y -q hyperfine >&2; }
cargo build --release -p lockutils-cli >/dev/null 2>&1
cargo build --release -p lockutils-cli --features zookeeper,postgresql \
    --target-dir "$target/engines" >/dev/null 2>&1
cli="$target/release/lockutils"
cli_engines="$target/engines/release/lockutils"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
touch "$dir/f"
cmds=(
    "$cli hold --lock-path $dir x -- true"
    "$cli_engines hold --lock-path $dir x -- true"
    "flock $dir/f true"
    "$cli --version"
    "$cli_engines --version"
    "flock --version"
)
echo "-- cli_hold (load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%H:%M:%SZ))"
if command -v perf >/dev/null; then
    for c in "${cmds[@]}"; do
        # shellcheck disable=SC2086 # the command is split into its words
        ms=$(perf stat -x, -r 300 -e task-clock $c 2>&1 >/dev/null | cut -d, -f1 | tail -1)
        echo "task-clock ${ms} ms  ${c//$target\//}"
    done
fi
hyperfine -N -w 30 -m 300 --export-json "$dir/hold.json" "${cmds[@]}" >/dev/null 2>&1
python3 - "$dir/hold.json" "$target/" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(f"min {r['min']*1e3:.2f} ms  median {r['median']*1e3:.2f} ms  "
          f"user {r['user']*1e3:.2f} ms  sys {r['system']*1e3:.2f} ms  "
          f"{r['command'].replace(sys.argv[2], '')}")
PY
echo "-- done (load average $(cut -d' ' -f1-3 /proc/loadavg))"
