#!/bin/bash
# Short of descriptors, the holder inspection fails and the messages say
# "waiting for lock ...: unknown" / "it is unknown" instead of why.
B=${B:-$(dirname "$0")/../target/debug/lockutils}
D=$(mktemp -d)
"$B" hold --lock-path "$D" x -- sleep 3 & sleep 0.5
(ulimit -n 4; "$B" hold --timeout 1.5s --lock-path "$D" x -- true; echo "exit $?")
wait; rm -rf "$D"
