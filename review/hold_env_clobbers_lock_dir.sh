#!/bin/sh
# `hold` exports LOCKUTILS_LOCK_PATH=<the lock FILE> to CMD, but the library
# (and the lockutils command itself) reads LOCKUTILS_LOCK_PATH as the lock
# DIRECTORY: any lockutils user started under `hold` without an explicit
# lock path fails (or, with --lock-path-less `remove`, silently does nothing).
B=${B:-$(dirname "$0")/../target/debug/lockutils}
D=$(mktemp -d)
"$B" hold --lock-path "$D" outer -- sh -c '
  echo "CMD sees LOCKUTILS_LOCK_PATH=$LOCKUTILS_LOCK_PATH"
  "$0" hold inner -- echo inner-ran; echo "nested hold exit $?"
  "$0" list; echo "list exit $?"
  "$0" remove inner; echo "remove exit $?"' "$B"
echo "outer exit $?"
rm -rf "$D"
