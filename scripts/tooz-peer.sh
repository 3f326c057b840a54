#!/usr/bin/env bash
# Sets up the Python PostgreSQL peer for the interop tests and benchmarks: tooz
# (with psycopg2 for its PostgreSQL driver) in the repo's .venv. Prints the
# python path. Fails loudly if tooz cannot be installed: CI must not skip
# interop tests.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
fi
"$venv/bin/python" -c 'import tooz.drivers.pgsql' 2>/dev/null || \
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'tooz>=6' 'psycopg2-binary>=2.9' >&2
"$venv/bin/python" -c 'import tooz.drivers.pgsql' >&2
echo "$PWD/$venv/bin/python"
