//! A body that is one `unsafe` block, and one with an `unsafe` block
//! as its last expression, sync and async.
#![deny(warnings, unused_braces, unused_qualifications, clippy::all, clippy::pedantic)]

use lockutils::synchronized;

/// # Safety
/// `p` is valid for reads.
#[synchronized("shape-unsafe")]
unsafe fn read(p: *const u32) -> u32 { unsafe { p.read() } }

#[synchronized("shape-unsafe-block")]
fn block() -> u32 {
    let x = 7;
    // SAFETY: `x` is a live local.
    unsafe { core::ptr::addr_of!(x).read() }
}

// SAFETY: a static's address is valid for reads.
#[synchronized("shape-unsafe-block-only")]
fn block_only() -> u32 { unsafe { core::ptr::addr_of!(FORTY_TWO).read() } }

static FORTY_TWO: u32 = 42;

// SAFETY: a static's address is valid for reads.
#[synchronized("shape-unsafe-async")]
async fn ablock() -> u32 { unsafe { core::ptr::addr_of!(FORTY_TWO).read() } }

fn main() {
    let x = 1;
    // SAFETY: `x` is a live local.
    assert_eq!(unsafe { read(&raw const x) } + block() + block_only(), 50);
    drop(ablock());
}
