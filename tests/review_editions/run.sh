#!/bin/sh
# Builds shapes.rs as a 2018 and a 2024 edition binary against the
# workspace's debug build (run `cargo test -p lockutils-tests --no-run` first).
set -e
cd "$(dirname "$0")"
deps=../../target/debug/deps
lib=$(ls -t $deps/liblockutils-*.rlib | head -1)
for ed in 2018 2021 2024; do
    rustc --edition $ed shapes.rs -o /tmp/lockutils-review-shapes-$ed \
        --extern lockutils="$lib" -L "$deps"
    echo "== edition $ed"; /tmp/lockutils-review-shapes-$ed
done
