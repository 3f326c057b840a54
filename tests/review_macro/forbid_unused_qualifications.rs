//! Review: a crate that forbids a lint the expansion allows cannot use
//! `#[synchronized]` at all (E0453). Built by run.sh.
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

fn main() {
    assert_eq!(fixed(), 1);
    assert_eq!(named(2).unwrap(), 2);
}
