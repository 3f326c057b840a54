#!/bin/bash
# docs/cli.md: "If `hold` itself dies (even by SIGKILL), the kernel releases
# the lock and CMD is killed as well (PR_SET_PDEATHSIG), so CMD never runs
# without the lock." Only CMD's own process gets PDEATHSIG: when CMD is a
# script (the documented ./migrate.sh case), the script's running child
# carries on without the lock while a second `hold` takes it.
B=${B:-$(dirname "$0")/../target/debug/lockutils}
D=$(mktemp -d)
"$B" hold --lock-path "$D" job -- sh -c '(sleep 2; echo "first job, without the lock, still writing at $(date +%T.%N)"); :' &
H=$!
sleep 0.5
kill -KILL $H
sleep 0.2
echo "after SIGKILL of hold $H, still running:"; pgrep -a -x sleep || echo none
"$B" hold --no-wait --lock-path "$D" job -- sh -c 'echo "second holder runs at $(date +%T.%N)"'
echo "second hold exit $?"
sleep 2.5
rm -rf "$D"
