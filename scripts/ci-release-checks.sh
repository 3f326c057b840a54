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
# In the workspace's target directory, so the verification builds reuse the
# dependencies the tests built (which is why CI runs this last). Cargo keeps
# the packaged crates in target/package and unpacks them once per
# temporary-registry path and version under $CARGO_HOME/registry/src/-<hash>
# (local registries only), so both are cleared first: otherwise a second run
# would verify against the first run's sources.
target_dir="${CARGO_TARGET_DIR:-target}"
rm -rf "$target_dir/package"
rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/lockutils*-[0-9]*
cargo package --workspace --exclude lockutils-tests --locked
