#!/bin/sh
# --lock-path DIR/stray/../locks: the recursive mkdir creates DIR/stray,
# which is neither the lock directory nor one of its parents.
B=${B:-$(dirname "$0")/../target/debug/lockutils}
D=$(mktemp -d)
"$B" hold --lock-path "$D/stray/../locks" x -- true; echo "exit $?"
find "$D" | sed "s|$D|DIR|"
rm -rf "$D"
