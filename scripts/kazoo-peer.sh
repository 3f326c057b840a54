#!/usr/bin/env bash
# Sets up the Python ZooKeeper peers for the interop tests and benchmarks: kazoo
# and tooz (whose ZooKeeper driver uses kazoo) in the repo's .venv. Prints the
# python path.
# Fails loudly if kazoo cannot be installed: CI must not skip interop tests.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
fi
"$venv/bin/python" -c 'import kazoo.recipe.lock, tooz.drivers.zookeeper' 2>/dev/null || \
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'kazoo>=2.9' 'tooz>=6' >&2
"$venv/bin/python" -c 'import kazoo.recipe.lock, tooz.drivers.zookeeper' >&2
echo "$PWD/$venv/bin/python"
