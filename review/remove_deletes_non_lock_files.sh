#!/bin/sh
# `lockutils remove NAME` unlinks files that `list`/`clean` classify as
# "not locks": a non-empty regular file (data) and a FIFO. `show` reports a
# directory and a symbolic link (which `hold` refuses to open) as free locks.
B=${B:-$(dirname "$0")/../target/debug/lockutils}
D=$(mktemp -d)
echo "important data" > "$D/data.txt"
mkfifo "$D/fifo"
mkdir "$D/dir"; ln -s /etc/passwd "$D/sym"
echo "--- list"; "$B" list --lock-path "$D"
echo "--- clean --dry-run"; "$B" clean --dry-run --lock-path "$D"
echo "--- show dir; show sym; hold sym"
"$B" show --lock-path "$D" dir | grep state
"$B" show --lock-path "$D" sym | grep state
"$B" hold --lock-path "$D" sym -- true; echo "hold sym exit $?"
echo "--- remove data.txt fifo"; "$B" remove --lock-path "$D" data.txt fifo; echo "exit $?"
echo "--- left:"; ls -A "$D"
rm -rf "$D"
