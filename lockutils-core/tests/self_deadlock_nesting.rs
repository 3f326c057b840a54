//! Re-acquiring a held lock on the same thread is an error, not a hang; the
//! thread's held locks are listed; a nested acquisition cannot release an
//! outer holder's lock file.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use lockutils_core::{held_locks, Error, HeldLock, LockGuard, LockOptions, Mode, Registry};

fn assert_would_deadlock<T: std::fmt::Debug>(r: lockutils_core::Result<T>, name: &str) {
    match r {
        Err(e @ Error::WouldDeadlock { .. }) => {
            assert_eq!(e.lock_name(), name);
            let msg = e.to_string();
            assert!(
                msg.contains(name) && msg.contains("already held by this thread"),
                "{msg}"
            );
            assert!(!e.is_contention());
        }
        other => panic!("expected WouldDeadlock for {name}, got {other:?}"),
    }
}

#[test]
fn relocking_on_the_same_thread_is_would_deadlock_at_once() {
    let dir = common::tempdir();
    let reg = Registry::new();
    for external in [false, true] {
        let opts = LockOptions::new("sd-x")
            .registry(&reg)
            .external(external)
            .lock_path(dir.path());
        let g = opts.lock().unwrap();
        let start = Instant::now();
        assert_would_deadlock(opts.lock(), "sd-x");
        assert_would_deadlock(opts.try_lock(), "sd-x");
        assert_would_deadlock(opts.fair(true).lock(), "sd-x");
        assert_would_deadlock(opts.timeout(Duration::from_secs(30)).lock(), "sd-x");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "waited instead of failing"
        );
        // The outer hold is intact.
        assert_eq!(reg.names(), vec!["sd-x".to_owned()]);
        assert!(thread::scope(|s| s
            .spawn(|| opts.try_lock().is_err())
            .join()
            .unwrap()));
        drop(g);
        drop(opts.try_lock().unwrap());
    }
    assert!(reg.is_empty());
}

#[test]
fn shared_then_exclusive_and_exclusive_then_shared_are_would_deadlock() {
    let reg = Registry::new();
    let opts = LockOptions::new("sd-modes").registry(&reg);
    for (outer, inner) in [
        (Mode::Shared, Mode::Exclusive),
        (Mode::Exclusive, Mode::Shared),
    ] {
        let g = opts.mode(outer).lock().unwrap();
        assert_would_deadlock(opts.mode(inner).lock(), "sd-modes");
        assert_would_deadlock(opts.mode(inner).try_lock(), "sd-modes");
        drop(g);
    }
    assert!(reg.is_empty());
}

/// A second shared hold by the same thread is refused the same way whether
/// or not a writer happens to be queued: the answer must not depend on
/// timing, or code that passes its tests fails under contention.
#[test]
fn shared_then_shared_is_would_deadlock_with_or_without_a_queued_writer() {
    let reg = Registry::new();
    let opts = LockOptions::new("sd-shared-twice").registry(&reg).shared();
    let outer = opts.lock().unwrap();
    // A writer queues behind the outer reader.
    let (_, waker) = common::WakeCounter::new();
    let mut writer = opts.mode(Mode::Exclusive).lock_async();
    assert!(common::poll_once(&mut writer, &waker).is_pending());
    let contended = opts.lock().map(drop);
    drop(writer);
    // No writer now.
    let uncontended = opts.lock().map(drop);
    drop(outer);
    assert_would_deadlock(contended, "sd-shared-twice");
    assert_would_deadlock(uncontended, "sd-shared-twice");
    assert!(reg.is_empty());
}

#[test]
fn aliases_and_removal_are_would_deadlock_too() {
    let dir = common::tempdir();
    let g = LockOptions::new("sd/alias").lock().unwrap();
    assert_would_deadlock(LockOptions::new("sd_alias").lock(), "sd_alias");
    drop(g);
    let g = LockOptions::new("alias").prefix("sd").lock().unwrap();
    assert_would_deadlock(LockOptions::new("sd-alias").lock(), "sd-alias");
    drop(g);
    // Removing the lock file of a lock this thread holds would wait for itself.
    let opts = LockOptions::new("sd-remove")
        .external(true)
        .lock_path(dir.path());
    let g = opts.lock().unwrap();
    assert_would_deadlock(opts.remove_lock_file(), "sd-remove");
    assert!(dir.path().join("sd-remove").exists());
    drop(g);
    assert!(opts.remove_lock_file().unwrap());
}

#[test]
fn held_locks_lists_this_threads_locks_in_order() {
    let dir = common::tempdir();
    let reg = Registry::new();
    assert!(held_locks().is_empty());
    let a = LockOptions::new("hl-a").registry(&reg).lock().unwrap();
    let b = LockOptions::new("hl/b")
        .registry(&reg)
        .external(true)
        .lock_path(dir.path())
        .lock()
        .unwrap();
    let c = LockOptions::new("hl-c")
        .registry(&reg)
        .shared()
        .lock()
        .unwrap();
    let entry = |name: &str, mode, path: Option<std::path::PathBuf>| (name.to_owned(), mode, path);
    let list =
        |h: Vec<HeldLock>| -> Vec<_> { h.into_iter().map(|l| (l.name, l.mode, l.path)).collect() };
    assert_eq!(
        list(held_locks()),
        vec![
            entry("hl-a", Mode::Exclusive, None),
            entry("hl_b", Mode::Exclusive, Some(dir.path().join("hl_b"))),
            entry("hl-c", Mode::Shared, None),
        ]
    );
    assert_eq!(LockGuard::path(&b), Some(dir.path().join("hl_b").as_path()));
    // Other threads hold nothing.
    assert!(thread::scope(|s| s.spawn(held_locks).join().unwrap()).is_empty());
    // Releasing out of order keeps the rest in order.
    drop(b);
    assert_eq!(
        list(held_locks()),
        vec![
            entry("hl-a", Mode::Exclusive, None),
            entry("hl-c", Mode::Shared, None)
        ]
    );
    drop(a);
    drop(c);
    assert!(held_locks().is_empty());
    // A failed acquisition adds nothing.
    let g = LockOptions::new("hl-a").registry(&reg).lock().unwrap();
    let _ = LockOptions::new("hl-a").registry(&reg).lock();
    assert_eq!(held_locks().len(), 1);
    drop(g);
    assert!(held_locks().is_empty());
    assert!(reg.is_empty());
}

/// oslo's fair + external bug: a nested acquisition of the same lock file
/// through another lock container must neither get the lock nor, when it
/// gives up, release the outer holder's file lock.
#[test]
fn a_nested_acquisition_cannot_release_the_outer_file_lock() {
    let dir = common::tempdir();
    let (a, b, c) = (Registry::new(), Registry::new(), Registry::new());
    let opts = LockOptions::new("sd-nested")
        .external(true)
        .lock_path(dir.path());
    let outer = opts.registry(&a).fair(true).lock().unwrap();
    // Same thread, another registry: the in-process lock is free, the lock
    // file is not, and it is held by another open file.
    match opts.registry(&b).fair(true).try_lock() {
        Err(e @ Error::WouldBlock { .. }) => assert_eq!(e.lock_name(), "sd-nested"),
        other => panic!("nested acquisition: {other:?}"),
    }
    // Waiting would be on this thread itself: refused at once, timed or not.
    for timeout in [None, Some(Duration::from_secs(30))] {
        let mut nested = opts.registry(&b);
        if let Some(t) = timeout {
            nested = nested.timeout(t);
        }
        match nested.lock() {
            Err(e @ Error::WouldDeadlock { .. }) => assert_eq!(e.lock_name(), "sd-nested"),
            other => panic!("nested acquisition, timeout {timeout:?}: {other:?}"),
        }
    }
    // Having given up, the nested attempts closed their files; the outer
    // holder's lock must be intact, as a third open file sees.
    assert!(matches!(
        opts.registry(&c).try_lock(),
        Err(Error::WouldBlock { .. })
    ));
    assert!(matches!(
        opts.registry(&c).shared().try_lock(),
        Err(Error::WouldBlock { .. })
    ));
    assert_eq!(held_locks().len(), 1);
    drop(outer);
    // Free again, at once, when the outer holder is gone.
    drop(opts.registry(&c).try_lock().unwrap());
    assert!(a.is_empty() && b.is_empty() && c.is_empty());
}
