#!/bin/sh
# The per-user default lock directory ($TMPDIR/lockutils-$UID when
# XDG_RUNTIME_DIR is unset) "must be owned by us and not writable by
# others, so no other user can plant files in it" (lock_path.rs), and the
# library checks that. The command resolves the default itself and hands it
# to FileBackend as an explicit directory, which skips the check: root's
# `hold` uses a directory that user nobody created, and nobody, who owns
# it, unlinks the held lock file so that a second root `hold` gets in too.
B=${B:-$(dirname "$0")/../target/debug/lockutils}
cp "$B" /tmp/lockutils-review-bin; chmod 755 /tmp/lockutils-review-bin; B=/tmp/lockutils-review-bin
T=$(mktemp -d); chmod 1777 "$T"
NOBODY="setpriv --reuid=nobody --regid=nogroup --clear-groups"
$NOBODY mkdir -m 777 "$T/lockutils-0"
ls -ld "$T/lockutils-0"
export TMPDIR="$T"; unset XDG_RUNTIME_DIR LOCKUTILS_LOCK_PATH OSLO_LOCK_PATH
"$B" hold job -- sh -c 'echo "first holder starts"; sleep 2; echo "first holder ends"' &
sleep 0.5
$NOBODY rm -f "$T/lockutils-0/job"
"$B" hold --no-wait job -- echo "second holder runs while the first holds the lock"
echo "second hold exit $? (75 expected: the lock is held)"
wait
rm -rf "$T" /tmp/lockutils-review-bin
