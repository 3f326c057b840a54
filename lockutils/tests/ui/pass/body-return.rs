//! Bodies that end in `return` or diverge: no `unreachable_code` or
//! other lint from the guard taken before them, sync and async.
#![deny(warnings, unused_braces, unused_qualifications, clippy::all, clippy::pedantic)]

use lockutils::synchronized;

#[synchronized("shape-return")]
#[allow(clippy::needless_return)] // the shape under test
fn ret() -> u32 { return 1; }

#[synchronized("shape-return-unit")]
#[allow(clippy::needless_return)]
fn ret_unit() { return; }

#[synchronized("shape-early-return")]
fn early(x: u32) -> u32 {
    if x > 1 {
        return x;
    }
    0
}

#[synchronized("shape-diverges")]
fn diverges() -> ! { panic!("shape-diverges") }

#[synchronized("shape-return-async")]
#[allow(clippy::needless_return)]
async fn aret() -> u32 { return 1 }

fn main() {
    ret_unit();
    assert_eq!(ret() + early(2), 3);
    let _: fn() -> ! = diverges; // compiled lint-clean; not called
    drop(aret());
}
