//! Review: two `#[synchronized]` attributes on one function. The outer
//! attribute expands first and puts its guard first; the inner one then
//! expands on that output and puts *its* guard before it. So
//! `#[synchronized("a")] #[synchronized("b")]` takes `b`, then `a`: the
//! reverse of the order written (and of oslo's stacked decorators, where the
//! outer decorator's lock is taken first). Code that takes `a` then `b`
//! elsewhere deadlocks against it.

use lockutils::synchronized;

#[synchronized("zz-stack-a-{n}")]
#[synchronized("zz-stack-b-{n}")]
fn stacked(n: u32) -> Vec<String> {
    lockutils::held_locks().into_iter().map(|h| h.name).collect()
}

#[test]
fn stacked_attributes_take_their_locks_in_written_order() {
    // held_locks(): oldest first.
    assert_eq!(stacked(1), ["zz-stack-a-1", "zz-stack-b-1"]);
}
