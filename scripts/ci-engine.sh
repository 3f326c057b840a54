#!/usr/bin/env bash
# The lock engine's proofs: loom models of the raw lock, the core's tests
# under AddressSanitizer, the forget/drop-registry tests under valgrind, and
# a short soak of threads, tasks and processes. Any failure fails CI.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

echo "== engine: loom models (src/loom_model.rs)"
RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}" \
    cargo test -p lockutils-core --lib --release --target-dir target/loom loom_model

echo "== engine: unit and integration tests under AddressSanitizer"
# The explicit target keeps proc macros unsanitized; a separate target dir
# keeps the normal build's artifacts.
RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Zsanitizer=address" ASAN_OPTIONS="detect_leaks=0" \
    cargo test -p lockutils-core --target x86_64-unknown-linux-gnu --target-dir target/asan \
    --lib --tests

echo "== engine: forgotten guards and dropped registries under valgrind"
command -v valgrind >/dev/null || { apt-get update && apt-get install -y valgrind; }
bin="$(cargo test -p lockutils-core --test engine_regressions --no-run --message-format=json 2>/dev/null \
    | sed -n 's/.*"executable":"\([^"]*engine_regressions[^"]*\)".*/\1/p' | tail -1)"
test -x "$bin"
valgrind --error-exitcode=1 --errors-for-leak-kinds=none --quiet \
    "$bin" --test-threads=1 forgotten

echo "== engine: soak (smoke run; docs/reliability.md has a long one)"
cargo run --release -p lockutils-core --example soak -- 15
