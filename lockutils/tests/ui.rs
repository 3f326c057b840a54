//! What users see at compile time: `ui/pass` must compile (and run), and each
//! `ui/fail` file is one mistake whose error (in its `.stderr` snapshot) is
//! spanned at the offending token and says the fix.
//!
//! Snapshots are for one channel (stable); regenerate with
//! `TRYBUILD=overwrite cargo test -p lockutils --test ui` and review the diff.

#[rustversion::stable]
#[cfg_attr(miri, ignore)]
#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
