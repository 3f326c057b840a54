#!/usr/bin/env bash
# Release checks:
#   scripts/ci-release-checks.sh msrv      every locked dependency fits the
#                                          declared rust-version (seconds)
#   scripts/ci-release-checks.sh package   every published crate packages and
#                                          builds from its package alone, in
#                                          dependency order, as
#                                          `cargo publish --dry-run` would
# CI runs `msrv` first and `package` last: the package builds reuse the
# dependencies the tests built.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
msrv)
    echo "== MSRV: locked dependencies declare a rust-version <= the workspace's"
    python3 scripts/check-msrv-deps.py
    ;;
package)
    echo "== cargo package (publish dry run) of every published crate"
    # `cargo package --workspace` verifies each crate against the others'
    # packages, served from a temporary local registry in target/package.
    # Cargo unpacks that registry's crates once per registry path and version
    # (under $CARGO_HOME/registry/src/-<hash>, local registries only) and
    # fingerprints their builds by version alone, so a second run in the same
    # target directory would verify against the first run's sources and
    # builds. Clear all three: the project's own crates only. (Another
    # checkout packaging at the same moment with the same CARGO_HOME would
    # have its unpacked copies removed under it.)
    target_dir="$(cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
    rm -rf "$target_dir/package" "$target_dir"/debug/.fingerprint/lockutils*
    rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/lockutils*-[0-9]*
    cargo package --workspace --exclude lockutils-tests --locked
    ;;
*)
    echo "usage: $0 msrv|package" >&2
    exit 2
    ;;
esac
