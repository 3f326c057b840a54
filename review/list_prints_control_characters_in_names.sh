#!/bin/sh
# Lock file names are printed raw by list/clean/remove: a user who can
# create files in a shared lock directory forges rows (newline) or sends
# terminal escape sequences. Holders' command lines are escaped
# (docs/cli.md); file names are not.
B=${B:-$(dirname "$0")/../target/debug/lockutils}
D=$(mktemp -d)
touch "$D/$(printf 'a\nnova-instance-9  held exclusive    1        2h04m     48121 python3 -m nova.compute')"
touch "$D/$(printf 'b\033[8mhidden')"
echo "--- list | cat -A"; "$B" list --lock-path "$D" | cat -A
echo "--- clean --dry-run | cat -A"; "$B" clean --dry-run --lock-path "$D" | cat -A
rm -rf "$D"
