//! A body that is one expression on one line (`{ 1 }`; rustc's
//! `unused_braces` looks at one-line blocks only): no `unused_braces` from the
//! expansion under `deny(warnings)` (lockutils/tests/lints.rs runs clippy's
//! `pedantic` on the same shapes).
#![deny(warnings, unused_braces, unused_qualifications, clippy::all, clippy::pedantic)]

use lockutils::synchronized;

#[synchronized("shape-one-expression")]
fn d() -> u32 { 1 }

#[synchronized("shape-one-call")]
fn call() -> u32 { d() + 1 }

#[synchronized("shape-one-expression-async")]
async fn ad() -> u32 { 1 }

fn main() {
    assert_eq!(d() + call(), 3);
    drop(ad());
}
