#!/bin/bash
# `hold` writes its one-line messages with eprintln!, which panics when
# stderr is a pipe whose reader has gone (EPIPE; Rust ignores SIGPIPE).
# The documented exit codes (75 busy, 127 not found) become 101.
B=${B:-$(dirname "$0")/../target/debug/lockutils}
D=$(mktemp -d)
"$B" hold --lock-path "$D" x -- sleep 2 & sleep 0.5
exec 3>&1
{ sleep 0.3; "$B" hold --no-wait --lock-path "$D" x -- true; echo "busy hold: exit $? (documented: 75)" >&3; } 2>&1 | true
{ sleep 0.3; "$B" hold --lock-path "$D" y -- /nonexistent; echo "missing CMD: exit $? (documented: 127)" >&3; } 2>&1 | true
T=$(mktemp -d)
{ sleep 0.3; TMPDIR=$T "$B" run -- /nonexistent; echo "run, missing CMD: exit $? (documented: 127)" >&3; } 2>&1 | true
sleep 0.3; echo "left in TMPDIR after run (documented: removed):"; ls -A "$T"; rm -rf "$T"
wait
rm -rf "$D"
