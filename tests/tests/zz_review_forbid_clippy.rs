//! Review: under `cargo clippy`, a crate that forbids one of the clippy lints
//! the expansion allows cannot use `#[synchronized]` (E0453). Check with
//! `cargo clippy -p lockutils-tests --test zz_review_forbid_clippy`.
// Forbidding the groups instead (`#![forbid(clippy::all, clippy::pedantic)]`)
// gives three `forbidden_lint_groups` future-incompatibility warnings, which
// `cargo clippy -- -D warnings` turns into errors.
#![forbid(clippy::needless_borrow, clippy::items_after_statements)]

use lockutils::synchronized;

#[synchronized("zz-forbid-clippy")]
fn fixed() -> u32 {
    1
}

#[test]
fn runs() {
    assert_eq!(fixed(), 1);
}
