#!/usr/bin/env bash
# CI: one short smoke run of the file-lock benches (hand-off with the
# oslo.concurrency peer, fairness, uncontended cycle beside the kept-descriptor
# floor). Figures from a smoke run are no measurement; this only checks that
# every waiter kind and the peer run. Needs LOCKUTILS_TEST_PYTHON (set by
# .ci/run from scripts/python-peer.sh); fails without it.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${LOCKUTILS_TEST_PYTHON:?set it to the output of scripts/python-peer.sh}"
out="$(cargo test -p lockutils-core --bench handoff --bench file_fairness --bench external_lock 2>&1)" || {
    echo "$out"
    exit 1
}
echo "$out" | grep -E '^(handoff|file_fairness)'
for backend in lockutils lockutils_timed lockutils_async lockutils_macro raw_ofd oslo_concurrency fasteners; do
    echo "$out" | grep -q "^handoff/$backend  *hand-offs" || {
        echo "handoff bench: no figures for $backend" >&2
        exit 1
    }
done
