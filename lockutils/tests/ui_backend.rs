//! The `backend` option at compile time: `ui/backend/pass` must compile (and
//! run), each `ui/backend/fail` file is one mistake, and `zookeeper-off` and
//! `postgresql-off` ask for the feature an engine's URL needs (run without
//! it). Regenerate snapshots with
//! `TRYBUILD=overwrite cargo test -p lockutils --test ui_backend` and review.

#[rustversion::stable]
#[cfg_attr(miri, ignore)]
#[test]
fn ui_backend() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/backend/pass/*.rs");
    t.compile_fail("tests/ui/backend/fail/*.rs");
    #[cfg(not(feature = "zookeeper"))]
    t.compile_fail("tests/ui/backend/zookeeper-off/*.rs");
    #[cfg(not(feature = "postgresql"))]
    t.compile_fail("tests/ui/backend/postgresql-off/*.rs");
}
