#!/bin/sh
# A lock directory that is a regular file: `hold` says so clearly, but
# list/show/clean call the directory a "lock file" of lock "*" and advise
# checking that it is writable; `remove` reports success (exit 0).
B=${B:-$(dirname "$0")/../target/debug/lockutils}
D=$(mktemp -d); touch "$D/f"
for c in "list" "show x" "clean" "remove x" "hold x -- true"; do
  set -- $c; sub=$1; shift
  echo "--- $sub --lock-path FILE $*"; "$B" "$sub" --lock-path "$D/f" "$@" 2>&1; echo "exit $?"
done
rm -rf "$D"
