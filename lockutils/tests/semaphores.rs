//! `semaphores = path`: the in-process lock comes from the given registry
//! (oslo's `semaphores`), not the global one.

mod common;

use common::{on_threads, Section, HOLD};
use lockutils::{synchronized, LockOptions, Registry};

static MY_LOCKS: Registry = Registry::new();

mod nested {
    pub static LOCKS: lockutils::Registry = lockutils::Registry::new();
}

#[synchronized("sem-job", semaphores = MY_LOCKS)]
fn job() -> (bool, bool) {
    (
        MY_LOCKS.contains("sem-job"),
        Registry::global().contains("sem-job"),
    )
}

#[test]
fn uses_the_given_registry() {
    let (mine, global) = job();
    assert!(mine, "the lock is in MY_LOCKS while held");
    assert!(!global, "and not in the global registry");
}

#[synchronized("sem-other", semaphores = crate::nested::LOCKS)]
fn independent_of_global() -> bool {
    // The same name in the global registry is another lock in-process.
    LockOptions::new("sem-other").try_lock().is_ok()
        && nested::LOCKS.contains("sem-other")
        && LockOptions::new("sem-other")
            .registry(&nested::LOCKS)
            .try_lock()
            .is_err()
}

#[test]
fn registries_are_separate_name_spaces() {
    assert!(independent_of_global());
}

#[synchronized("sem-{id}", semaphores = MY_LOCKS)]
fn per_id(id: u32, section: &Section) -> bool {
    section.visit(HOLD);
    MY_LOCKS.contains(&format!("sem-{id}"))
}

#[test]
fn dynamic_names_use_it_too_and_still_exclude() {
    let section = Section::new();
    on_threads(4, |_| assert!(per_id(7, &section)));
    assert_eq!(section.max(), 1);
    assert!(!MY_LOCKS.contains("sem-7"), "dynamic names are collected");
}
