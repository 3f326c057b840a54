#!/bin/sh
# Compiles each reproducer here (or those named) against the workspace's
# debug build; run `cargo test -p lockutils-tests --no-run` first. Prints the
# compiler's output; a reproducer that builds is then run.
cd "$(dirname "$0")"
deps=../../target/debug/deps
lib=$(ls -t $deps/liblockutils-*.rlib | head -1)
for f in ${@:-*.rs}; do
    echo "=== $f"
    if rustc --edition 2021 "$f" -o "/tmp/lockutils-review-${f%.rs}" \
        --extern lockutils="$lib" -L "$deps" 2>&1; then
        "/tmp/lockutils-review-${f%.rs}"; echo "(exit $?)"
    fi
done
