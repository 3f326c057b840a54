//! The `distributed` option at compile time, which depends on the facade's
//! `zookeeper` feature: with it, `ui/zookeeper/pass` must compile (and run)
//! and each `ui/zookeeper/fail` file is one mistake; without it,
//! `ui/zookeeper-off` shows the error that asks for the feature. A plain
//! `cargo test` runs the second, `cargo test --all-features` the first.
//!
//! Snapshots are for one channel (stable); regenerate with
//! `TRYBUILD=overwrite cargo test -p lockutils --test ui_zookeeper` (with and
//! without `--features zookeeper`) and review the diff.

#[cfg(feature = "zookeeper")]
#[rustversion::stable]
#[cfg_attr(miri, ignore)]
#[test]
fn ui_distributed() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/zookeeper/pass/*.rs");
    t.compile_fail("tests/ui/zookeeper/fail/*.rs");
}

#[cfg(not(feature = "zookeeper"))]
#[rustversion::stable]
#[cfg_attr(miri, ignore)]
#[test]
fn ui_distributed_without_the_feature() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/zookeeper-off/*.rs");
}
