//! Named in-process locks: which names are one lock, and which registries
//! keep names apart.

mod common;

use std::thread;

use common::Occupancy;
use lockutils_core::{Error, LockGuard, LockOptions, Mode, Registry};

/// Runs `f` on another thread and returns its result: a probe that is not
/// the thread holding the lock (which would get `WouldDeadlock`).
fn elsewhere<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    thread::scope(|s| s.spawn(f).join().expect("probe thread panicked"))
}

fn expect_would_block<T: std::fmt::Debug>(r: lockutils_core::Result<T>, name: &str) {
    match r {
        Err(e @ Error::WouldBlock { .. }) => assert_eq!(e.lock_name(), name),
        other => panic!("expected WouldBlock for {name:?}, got {other:?}"),
    }
}

#[test]
fn same_name_is_one_lock_across_threads() {
    let occ = Occupancy::default();
    thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..200 {
                    let _g = LockOptions::new("named-same").lock().unwrap();
                    let _inside = occ.enter(Mode::Exclusive);
                    thread::yield_now();
                }
            });
        }
    });
    assert_eq!(occ.violations(), 0, "two threads were inside at once");
    assert_eq!(occ.entries(), 8 * 200);
}

#[test]
fn different_names_do_not_block_each_other() {
    let _a = LockOptions::new("named-diff-a").lock().unwrap();
    // A blocking acquisition of another name completes while "a" is held.
    let b = elsewhere(|| {
        let g = LockOptions::new("named-diff-b")
            .lock()
            .map(|g| LockGuard::name(&g).to_owned());
        let t = LockOptions::new("named-diff-c").try_lock().is_ok();
        (g, t)
    });
    assert_eq!(b.0.unwrap(), "named-diff-b");
    assert!(b.1, "try_lock of a third name failed");
    // While "a" is still held by this thread, it is "a" that is busy.
    expect_would_block(
        elsewhere(|| LockOptions::new("named-diff-a").try_lock().map(|_| ())),
        "named-diff-a",
    );
}

#[test]
fn slash_and_underscore_names_are_one_lock() {
    let g = LockOptions::new("named/a/b").lock().unwrap();
    assert_eq!(LockGuard::name(&g), "named_a_b");
    // The aliased spelling is the same lock: busy from another thread...
    expect_would_block(
        elsewhere(|| LockOptions::new("named_a_b").try_lock().map(|_| ())),
        "named_a_b",
    );
    // ... and a re-acquisition on this thread is detected as such.
    assert!(matches!(
        LockOptions::new("named_a_b").lock(),
        Err(Error::WouldDeadlock { .. })
    ));
    drop(g);
    let g = LockOptions::new("named_a_b").try_lock().unwrap();
    expect_would_block(
        elsewhere(|| LockOptions::new("named/a/b").try_lock().map(|_| ())),
        "named/a/b",
    );
    drop(g);
}

#[test]
fn prefix_makes_a_different_identity() {
    let g = LockOptions::new("named-px").prefix("p").lock().unwrap();
    assert_eq!(LockGuard::name(&g), "p-named-px");
    // Plain "named-px" is another lock.
    let plain = elsewhere(|| LockOptions::new("named-px").try_lock().map(|_| ()));
    assert!(plain.is_ok(), "unprefixed name blocked by the prefixed one");
    // "p-" and "p" are the same prefix (oslo joins with one `-`), and the
    // identity is the lock file name, so "p-named-px" spelled out is it too.
    expect_would_block(
        elsewhere(|| {
            LockOptions::new("named-px")
                .prefix("p-")
                .try_lock()
                .map(|_| ())
        }),
        "named-px",
    );
    expect_would_block(
        elsewhere(|| LockOptions::new("p-named-px").try_lock().map(|_| ())),
        "p-named-px",
    );
    // Another prefix is another lock.
    let other = elsewhere(|| {
        LockOptions::new("named-px")
            .prefix("q")
            .try_lock()
            .map(|_| ())
    });
    assert!(other.is_ok(), "prefix q blocked by prefix p");
    drop(g);
}

#[test]
fn same_name_in_two_registries_does_not_exclude_in_process() {
    let r1 = Registry::new();
    let r2 = Registry::new();
    let g1 = LockOptions::new("named-reg").registry(&r1).lock().unwrap();
    assert!(r1.contains("named-reg"));
    assert!(!r2.contains("named-reg"));
    let (in_r2, in_r1) = elsewhere(|| {
        let a = LockOptions::new("named-reg")
            .registry(&r2)
            .try_lock()
            .map(|_| ());
        let b = LockOptions::new("named-reg")
            .registry(&r1)
            .try_lock()
            .map(|_| ());
        (a, b)
    });
    assert!(in_r2.is_ok(), "another registry's lock must be independent");
    expect_would_block(in_r1, "named-reg");
    // Same thread, other registry: not a re-acquisition either.
    let g2 = LockOptions::new("named-reg")
        .registry(&r2)
        .try_lock()
        .unwrap();
    assert_eq!(r2.len(), 1);
    drop((g1, g2));
    assert!(r1.is_empty() && r2.is_empty());
}

#[test]
fn global_registry_is_the_default() {
    let g = lockutils_core::lock("named-global").unwrap();
    assert!(Registry::global().contains("named-global"));
    expect_would_block(
        elsewhere(|| {
            LockOptions::new("named-global")
                .registry(Registry::global())
                .try_lock()
                .map(|_| ())
        }),
        "named-global",
    );
    // A caller-owned registry is not the global one.
    let mine = Registry::new();
    assert!(elsewhere(|| LockOptions::new("named-global")
        .registry(&mine)
        .try_lock()
        .is_ok()));
    drop(g);
    assert!(!Registry::global().contains("named-global"));
}

#[test]
fn synchronized_runs_the_closure_under_the_lock() {
    let reg = Registry::new();
    let seen = LockOptions::new("named-sync")
        .registry(&reg)
        .synchronized(|| {
            let busy = elsewhere(|| {
                LockOptions::new("named-sync")
                    .registry(&reg)
                    .try_lock()
                    .is_err()
            });
            (busy, reg.contains("named-sync"))
        })
        .unwrap();
    assert_eq!(seen, (true, true));
    assert!(reg.is_empty());
}
