#!/usr/bin/env bash
# Release checks: every published crate packages and builds from its
# package alone, in dependency order (cargo package --workspace verifies
# each against the others' packages, as `cargo publish --dry-run` would),
# and every locked dependency fits the declared rust-version.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== MSRV: locked dependencies declare a rust-version <= the workspace's"
python3 scripts/check-msrv-deps.py

echo "== cargo package (publish dry run) of every published crate"
cargo package --workspace --exclude lockutils-tests --locked
