//! Review reproducer: every `StaticLock` call site registers its pinned
//! slot for `held_locks()` (lockutils-core/src/pinned.rs `slot()` ->
//! `held::register_pinned`), and two call sites of one name pin the *same*
//! slot, so a short-path hold of that name is listed once per call site.
//! `held_locks()` is oslo's `locks_held`: one entry per held lock.

use lockutils::synchronized;

#[synchronized("zz-held-twice")]
fn first() -> Vec<String> {
    lockutils::held_locks().into_iter().map(|h| h.name).collect()
}

#[synchronized("zz-held-twice")]
fn second() -> Vec<String> {
    lockutils::held_locks().into_iter().map(|h| h.name).collect()
}

#[test]
fn one_lock_held_is_listed_once() {
    // The first call of each pins its call site; later calls take the short
    // path, recorded in the slot's owner word.
    let _ = (first(), second());
    assert_eq!(first(), ["zz-held-twice"]);
}
