#!/usr/bin/env bash
# One run of every benchmark, each beside its floor and its peers, for
# docs/performance.md: the in-process and file-lock benches with the
# oslo.concurrency and fasteners peers (scripts/bench.sh), ZooKeeper beside
# the bare client recipe and kazoo, PostgreSQL beside a bare advisory-lock
# loop and tooz, and `lockutils hold` beside flock(1) (hyperfine). Starts its
# own ZooKeeper and PostgreSQL servers on 127.0.0.1 (ZK_PORT, default 2201;
# PG_PORT, default 5453) and stops them by pid at exit. Prints the machine
# and the load average before each part; run it on an otherwise idle machine.
#
#   scripts/bench-all.sh 2>&1 | tee bench-all.log     # about 25 minutes
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export ZK_PORT="${ZK_PORT:-2201}" PG_PORT="${PG_PORT:-5453}"
export LOCKUTILS_TEST_ZK="127.0.0.1:$ZK_PORT"

load() { echo "-- $1 (load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%H:%M:%SZ))"; }

echo "== peers and servers"
LOCKUTILS_TEST_PYTHON="$(scripts/python-peer.sh)"
LOCKUTILS_TEST_KAZOO="$(scripts/kazoo-peer.sh)"
LOCKUTILS_TEST_TOOZ="$(scripts/tooz-peer.sh)"
export LOCKUTILS_TEST_PYTHON LOCKUTILS_TEST_KAZOO LOCKUTILS_TEST_TOOZ
scripts/zookeeper.sh start >/dev/null
trap 'scripts/zookeeper.sh stop >/dev/null' EXIT
LOCKUTILS_TEST_POSTGRES_URL="$(scripts/postgres.sh start)"
export LOCKUTILS_TEST_POSTGRES_URL
trap 'scripts/postgres.sh stop >/dev/null; scripts/zookeeper.sh stop >/dev/null' EXIT

echo "== build (release)"
cargo bench --no-run -p lockutils-core -p lockutils -p lockutils-zookeeper -p lockutils-postgres \
    --all-features >/dev/null 2>&1
cargo build --release -p lockutils-postgres --example lockutils-pg-holder >/dev/null 2>&1
cargo build --release -p lockutils-zookeeper --example lockutils-zk-holder >/dev/null 2>&1

# The builds leave the load average high: let it fall (to below 0.6, or
# for two minutes at most) so the first benches do not measure them.
for _ in $(seq 120); do
    awk '{ exit !($1 < 0.6) }' /proc/loadavg && break
    sleep 1
done

load "in-process and file-lock benches"
scripts/bench.sh

load "zk"
cargo bench -p lockutils-zookeeper --bench zk -- --warm-up-time 1 --measurement-time 4 2>/dev/null |
    grep -vE '^(Benchmarking|Gnuplot|\s*$)'

load "pg"
# Its per-cycle counts and interleaved ratios go to stderr.
cargo bench -p lockutils-postgres --bench pg -- --warm-up-time 1 --measurement-time 4 2>&1 |
    grep -vE '^(Benchmarking|Gnuplot|\s*$|\s*(Compiling|Finished|Running))'

scripts/bench-cli-hold.sh
load "done"
