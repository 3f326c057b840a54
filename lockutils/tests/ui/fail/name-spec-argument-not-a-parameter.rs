//! A width or precision taken from an argument must name a parameter, like
//! the placeholder itself: the lock's name depends on the parameters alone.
#![allow(unused_variables)]
use lockutils::synchronized;

#[allow(non_upper_case_globals)]
const width: usize = 8;

#[synchronized("w-{id:width$}")]
fn padded(id: u32) {}

#[synchronized("p-{ratio:.prec$}")]
fn precise(ratio: f64) {}

#[synchronized("s-{ratio:.*}")]
fn starred(ratio: f64) {}

#[synchronized("i-{id:1$}")]
fn positional(id: u32, w: usize) {}

fn main() {}
