//! Generics, where-clauses, lifetimes, `impl Trait` in both positions,
//! `unsafe fn`, `extern "C" fn`, `-> !`-free diverging bodies.
use std::fmt::Debug;

use lockutils::synchronized;

#[synchronized("generic")]
fn longest<'a, 'b: 'a, T>(a: &'a [T], b: &'b [T]) -> &'a [T]
where
    T: Clone + Debug,
{
    if a.len() >= b.len() { a } else { b }
}

#[synchronized("generic-{key}")]
fn keyed<K: std::fmt::Display, const N: usize>(key: K, items: [u8; N]) -> usize {
    items.len()
}

#[synchronized("iter")]
fn evens(items: impl IntoIterator<Item = u32>) -> impl Iterator<Item = u32> {
    items.into_iter().filter(|n| n % 2 == 0)
}

#[synchronized("unsafe")]
unsafe fn read(p: *const u8) -> u8 {
    unsafe { *p }
}

#[synchronized("extern")]
extern "C" fn callback(x: i32) -> i32 {
    x
}

struct Holder<'a, T: ?Sized>(&'a T);

impl<'a, T: ?Sized + Debug> Holder<'a, T> {
    #[synchronized("holder")]
    fn get(&self) -> &'a T {
        self.0
    }
}

fn main() {
    assert_eq!(longest(&[1], &[1, 2]), &[1, 2]);
    assert_eq!(keyed("k", [0u8; 3]), 3);
    assert_eq!(evens(0..5).count(), 3);
    assert_eq!(unsafe { read(&7) }, 7);
    assert_eq!(callback(3), 3);
    assert_eq!(Holder("x").get(), "x");
}
