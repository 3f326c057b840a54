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
# A fresh target directory: cargo unpacks the packaged crates once per
# temporary-registry path and version, so a second run in the same target
# directory would verify against the first run's sources.
package_dir="$(mktemp -d)"
trap 'rm -rf "$package_dir"' EXIT
CARGO_TARGET_DIR="$package_dir" cargo package --workspace --exclude lockutils-tests --locked
