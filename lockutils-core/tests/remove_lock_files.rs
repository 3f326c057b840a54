//! Removing lock files safely: a held lock file is never removed, removal
//! waits (or fails fast) as the options say, and acquirers racing removers
//! never end up holding two different files of one lock.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{kernel_waiters_on, wait_until, Occupancy, XorShift};
use lockutils_core::{
    lock_with_prefix, remove_external_lock_file, Error, LockGuard, LockOptions, Mode, Prefix,
    Registry,
};

#[test]
fn removes_a_free_lock_file() {
    let dir = common::tempdir();
    let opts = LockOptions::new("rm-free")
        .external(true)
        .lock_path(dir.path());
    drop(opts.registry(&Registry::new()).lock().unwrap());
    let file = dir.path().join("rm-free");
    assert!(file.exists());
    assert!(remove_external_lock_file("rm-free", None, Some(dir.path())).unwrap());
    assert!(!file.exists());
    // Nothing left to remove.
    assert!(!remove_external_lock_file("rm-free", None, Some(dir.path())).unwrap());
    // With a prefix.
    static NOVA: Prefix = lock_with_prefix("nova");
    drop(
        NOVA.options("rm-free")
            .external(true)
            .lock_path(dir.path())
            .lock()
            .unwrap(),
    );
    assert!(dir.path().join("nova-rm-free").exists());
    assert!(NOVA
        .remove_external_lock_file("rm-free", Some(dir.path()))
        .unwrap());
    assert!(!dir.path().join("nova-rm-free").exists());
    assert!(common::walk(dir.path()).is_empty());
}

#[cfg(target_os = "linux")]
#[test]
fn a_held_lock_file_is_never_removed_and_removal_waits_for_it() {
    let dir = common::tempdir();
    let (a, b) = (Registry::new(), Registry::new());
    let opts = LockOptions::new("rm-held")
        .external(true)
        .lock_path(dir.path());
    let file = dir.path().join("rm-held");
    let holder = opts.registry(&a).lock().unwrap();
    // Not waiting: refused at once.
    match opts.registry(&b).blocking(false).remove_lock_file() {
        Err(e @ Error::WouldBlock { .. }) => assert_eq!(e.lock_name(), "rm-held"),
        other => panic!("removal of a held file: {other:?}"),
    }
    assert!(file.exists());
    // Waiting: waits in the kernel, removes once the holder is gone.
    thread::scope(|s| {
        let (tid_tx, tid_rx) = mpsc::channel();
        let b = &b;
        let remover = s.spawn(move || {
            tid_tx.send(common::gettid()).unwrap();
            opts.registry(b).remove_lock_file()
        });
        // Registry b's in-process lock is free, so the remover can only
        // sleep waiting for the lock file.
        common::wait_until_sleeping(tid_rx.recv().unwrap());
        assert!(file.exists(), "removed while held");
        drop(holder);
        assert!(remover.join().unwrap().unwrap(), "nothing removed");
    });
    assert!(!file.exists());
    // This thread waiting for a file it holds itself: refused at once.
    let holder = opts.registry(&a).lock().unwrap();
    assert!(matches!(
        opts.registry(&b)
            .timeout(Duration::from_secs(30))
            .remove_lock_file(),
        Err(Error::WouldDeadlock { .. })
    ));
    assert!(file.exists());
    drop(holder);
    // Waiting with a timeout for another thread's hold: gives up, file intact.
    thread::scope(|s| {
        let (held_tx, held_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let a = &a;
        s.spawn(move || {
            let g = opts.registry(a).lock().unwrap();
            held_tx.send(()).unwrap();
            let _ = release_rx.recv();
            drop(g);
        });
        held_rx.recv().unwrap();
        assert!(matches!(
            opts.registry(&b)
                .timeout(Duration::from_millis(30))
                .remove_lock_file(),
            Err(Error::Timeout { .. })
        ));
        assert!(file.exists());
        release_tx.send(()).unwrap();
    });
    assert!(a.is_empty() && b.is_empty());
}

#[test]
fn removal_waits_for_an_in_process_holder_of_its_registry() {
    let dir = common::tempdir();
    let reg = Registry::new();
    let opts = LockOptions::new("rm-in-process")
        .registry(&reg)
        .external(true)
        .lock_path(dir.path());
    let (held_tx, held_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    thread::scope(|s| {
        s.spawn(move || {
            let g = opts.lock().unwrap();
            held_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            drop(g);
        });
        held_rx.recv().unwrap();
        assert!(matches!(
            opts.blocking(false).remove_lock_file(),
            Err(Error::WouldBlock { .. })
        ));
        release_tx.send(()).unwrap();
        assert!(opts.remove_lock_file().unwrap());
    });
    assert!(reg.is_empty());
}

#[test]
fn remove_on_release_removes_the_file_on_drop() {
    let dir = common::tempdir();
    let reg = Registry::new();
    let opts = LockOptions::new("rm-on-release")
        .registry(&reg)
        .external(true)
        .lock_path(dir.path())
        .remove_on_release(true);
    let file = dir.path().join("rm-on-release");
    let g = opts.lock().unwrap();
    assert!(file.exists());
    drop(g);
    assert!(!file.exists());
    // Async guards too.
    let g = common::block_on(opts.lock_async()).unwrap();
    assert!(file.exists());
    drop(g);
    assert!(!file.exists());
    // Shared holders: the file goes with the last of them.
    let r1 = opts.shared().lock().unwrap();
    thread::scope(|s| {
        let (held_tx, held_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        s.spawn(move || {
            let r2 = opts.shared().lock().unwrap();
            held_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            drop(r2);
        });
        held_rx.recv().unwrap();
        drop(r1);
        assert!(file.exists(), "removed while another reader holds it");
        release_tx.send(()).unwrap();
    });
    assert!(!file.exists());
    assert!(reg.is_empty());
}

#[test]
fn unlock_and_remove_releases_and_removes() {
    let dir = common::tempdir();
    let reg = Registry::new();
    let opts = LockOptions::new("rm-unlock")
        .registry(&reg)
        .external(true)
        .lock_path(dir.path());
    let g = opts.lock().unwrap();
    assert!(LockGuard::unlock_and_remove(g).unwrap());
    assert!(!dir.path().join("rm-unlock").exists());
    assert!(reg.is_empty());
    // In-process only: nothing to remove, released all the same.
    let g = LockOptions::new("rm-unlock").registry(&reg).lock().unwrap();
    assert!(!LockGuard::unlock_and_remove(g).unwrap());
    assert!(reg.is_empty());
}

/// A waiter blocked on a file that is removed under it must not keep
/// holding the unlinked file: it moves to the file now at the path.
#[test]
fn a_waiter_on_a_removed_file_moves_to_the_new_one() {
    let dir = common::tempdir();
    let (a, b, c) = (Registry::new(), Registry::new(), Registry::new());
    let opts = LockOptions::new("rm-moved")
        .external(true)
        .lock_path(dir.path());
    let file = dir.path().join("rm-moved");
    let holder = opts.registry(&a).remove_on_release(true).lock().unwrap();
    thread::scope(|s| {
        let (got_tx, got_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let b = &b;
        s.spawn(move || {
            let g = opts.registry(b).lock().unwrap();
            got_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            drop(g);
        });
        wait_until(
            "the waiter waits in the kernel",
            Duration::from_secs(10),
            || kernel_waiters_on(&file) >= 1,
        );
        // Removes the file while holding it, then releases: the waiter wakes
        // on the unlinked file.
        drop(holder);
        got_rx.recv().unwrap();
        assert!(file.exists(), "the waiter holds no file at the path");
        // Whoever comes now must find the waiter's file locked.
        assert!(matches!(
            opts.registry(&c).try_lock(),
            Err(Error::WouldBlock { .. })
        ));
        release_tx.send(()).unwrap();
    });
    assert!(a.is_empty() && b.is_empty() && c.is_empty());
}

/// Acquirers (each with its own registry, so only the lock file keeps them
/// apart) and removers hammer one name; no two acquirers are ever inside at
/// once, however often the file is replaced.
#[test]
fn acquirers_and_removers_never_overlap() {
    let dir = common::tempdir();
    let occ = Occupancy::default();
    let removed = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    const ACQUIRERS: usize = 4;
    thread::scope(|s| {
        for t in 0..ACQUIRERS {
            let (occ, done, dir) = (&occ, &done, dir.path());
            s.spawn(move || {
                let reg = Registry::new();
                let mut rng = XorShift::new(t as u64 + 11);
                for _ in 0..300 {
                    let mode = if rng.one_in(3) {
                        Mode::Shared
                    } else {
                        Mode::Exclusive
                    };
                    let g = LockOptions::new("rm-race")
                        .registry(&reg)
                        .external(true)
                        .lock_path(dir)
                        .mode(mode)
                        .remove_on_release(rng.one_in(4))
                        .lock()
                        .unwrap();
                    let inside = occ.enter(mode);
                    thread::yield_now();
                    drop(inside);
                    drop(g);
                }
                done.fetch_add(1, SeqCst);
            });
        }
        for _ in 0..2 {
            let (removed, done, dir) = (&removed, &done, dir.path());
            s.spawn(move || {
                while done.load(SeqCst) < ACQUIRERS {
                    if remove_external_lock_file("rm-race", None, Some(dir)).unwrap() {
                        removed.fetch_add(1, SeqCst);
                    }
                    thread::yield_now();
                }
            });
        }
    });
    assert_eq!(occ.violations(), 0, "two holders of one lock at once");
    assert_eq!(occ.entries(), ACQUIRERS * 300);
    assert!(
        removed.load(SeqCst) > 0,
        "the removers never removed anything"
    );
}

/// A file with data in it that happens to have a lock's name (a state file
/// in a shared directory) is never removed: lock files are always empty.
/// Locking it is harmless, and allowed, as oslo.concurrency does.
#[test]
fn a_file_with_data_in_it_is_never_removed() {
    let dir = common::tempdir();
    let state = dir.path().join("state.json");
    std::fs::write(&state, b"{\"precious\": true}").unwrap();
    let reg = Registry::new();
    let opts = LockOptions::new("state.json")
        .external(true)
        .lock_path(dir.path())
        .registry(&reg);
    let e = opts.remove_lock_file().unwrap_err();
    let shown = e.report().to_string();
    assert!(
        shown.contains("the file has 18 bytes in it, so it is not a lock file"),
        "{shown}"
    );
    assert!(!e.to_string().contains("writable"), "{e}");
    drop(opts.remove_on_release(true).lock().unwrap());
    let e = LockGuard::unlock_and_remove(opts.lock().unwrap()).unwrap_err();
    assert!(
        e.report().to_string().contains("not a lock file"),
        "{}",
        e.report()
    );
    assert!(!remove_external_lock_file("state.json", None, Some(dir.path())).unwrap_or(false));
    assert_eq!(
        std::fs::read(&state).unwrap(),
        b"{\"precious\": true}",
        "a data file was removed or changed"
    );
}

/// A lock file with another link elsewhere is not removed, and the message
/// says why (not that the directory may not be writable).
#[test]
fn a_hard_linked_lock_file_is_kept_and_the_message_says_why() {
    let dir = common::tempdir();
    let reg = Registry::new();
    let opts = LockOptions::new("linked")
        .external(true)
        .lock_path(dir.path())
        .registry(&reg);
    drop(opts.lock().unwrap());
    std::fs::hard_link(dir.path().join("linked"), dir.path().join("backup")).unwrap();
    let e = opts.remove_lock_file().unwrap_err();
    assert!(!e.to_string().contains("writable"), "{e}");
    assert!(
        e.report().to_string().contains("the lock file has 2 links"),
        "{}",
        e.report()
    );
    assert!(dir.path().join("linked").exists());
}
