#!/usr/bin/env bash
# Sets up the Python peer for the interop tests: a virtualenv in .venv with
# oslo.concurrency (and fasteners, which it depends on). Prints the python path.
# Fails loudly if the peer cannot be installed: CI must not skip interop tests.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
fi
"$venv/bin/python" -c 'import oslo_concurrency.lockutils, fasteners' 2>/dev/null || \
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'oslo.concurrency>=5' 'fasteners>=0.18' >&2
"$venv/bin/python" -c 'import oslo_concurrency.lockutils, fasteners' >&2
echo "$PWD/$venv/bin/python"
