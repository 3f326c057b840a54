#!/usr/bin/env bash
# lockutils-core builds on Unix only. On any other target the build must stop
# with exactly one error, the gate's message, and nothing after it. No other
# target's standard library is installed here, so this builds the crate for
# the host with `--cfg lockutils_assume_non_unix`, which removes every item
# exactly as a non-Unix target's `cfg(unix) = false` does, and checks the
# compiler's output.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(cargo rustc -q -p lockutils-core --lib -- --cfg lockutils_assume_non_unix 2>&1) && {
    echo "unix gate: lockutils-core built with the items removed; the gate did not fire" >&2
    exit 1
}
errors=$(grep -c '^error' <<<"$out" || true)
# One `error:` for the gate, plus cargo's "could not compile" line.
if ! grep -q '^error: lockutils supports Unix targets only' <<<"$out" || [ "$errors" -ne 2 ]; then
    echo "unix gate: expected the gate's error alone, got:" >&2
    echo "$out" >&2
    exit 1
fi
if grep -q '^warning' <<<"$out"; then
    echo "unix gate: warnings beside the gate's error:" >&2
    echo "$out" >&2
    exit 1
fi
echo "unix gate: one error on non-Unix targets:"
grep -A3 '^error: lockutils supports' <<<"$out"
