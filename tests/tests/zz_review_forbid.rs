//! Review: user crates that `forbid` the lints the expansion `allow`s.
#![forbid(unused_qualifications)]
#![deny(warnings, unused_parens, unused_results, single_use_lifetimes, elided_lifetimes_in_paths)]

use lockutils::synchronized;

#[synchronized("zz-forbid")]
fn fixed() -> u32 {
    1
}

#[synchronized(name = format!("zz-forbid-{}", id), timeout = "1s")]
fn named(id: u32) -> Result<u32, lockutils::Error> {
    Ok(id)
}

#[test]
fn runs() {
    assert_eq!(fixed(), 1);
    assert_eq!(named(2).unwrap(), 2);
}
