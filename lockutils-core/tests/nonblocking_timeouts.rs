//! Non-blocking acquisition and timeouts, in-process and on lock files; one
//! deadline bounds the whole acquisition.

mod common;

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{assert_no_kernel_waiters, block_on, poll_once, WakeCounter};
use lockutils_core::{Error, LockGuard, LockOptions, Registry};

/// Holds `opts` on a helper thread until the returned sender is used or
/// dropped; returns once the lock is held.
fn hold_elsewhere<'scope, 'a: 'scope, 'r: 'scope>(
    s: &'scope thread::Scope<'scope, '_>,
    opts: LockOptions<'a, 'r>,
) -> mpsc::Sender<()> {
    let (held_tx, held_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    s.spawn(move || {
        let g = opts.lock().unwrap();
        held_tx.send(()).unwrap();
        let _ = release_rx.recv();
        drop(g);
    });
    held_rx.recv().unwrap();
    release_tx
}

fn assert_would_block<T: std::fmt::Debug>(r: lockutils_core::Result<T>, name: &str) {
    match r {
        Err(e @ Error::WouldBlock { .. }) => {
            assert_eq!(e.lock_name(), name);
            assert!(e.is_contention());
            assert!(e.to_string().contains(name), "{e}");
        }
        other => panic!("expected WouldBlock for {name}, got {other:?}"),
    }
}

fn assert_timeout<T: std::fmt::Debug>(r: lockutils_core::Result<T>, name: &str, after: Duration) {
    match r {
        Err(e @ Error::Timeout { .. }) => {
            let Error::Timeout { timeout, .. } = &e else {
                unreachable!()
            };
            assert_eq!(*timeout, after);
            assert_eq!(e.lock_name(), name);
            assert!(e.is_contention());
            assert!(e.to_string().contains(name), "{e}");
        }
        other => panic!("expected Timeout for {name}, got {other:?}"),
    }
}

#[test]
fn non_blocking_fails_at_once_with_would_block_naming_the_lock() {
    let reg = Registry::new();
    let opts = LockOptions::new("nb-x").registry(&reg);
    thread::scope(|s| {
        let release = hold_elsewhere(s, opts);
        let start = Instant::now();
        assert_would_block(opts.try_lock(), "nb-x");
        assert_would_block(opts.blocking(false).lock(), "nb-x");
        assert_would_block(opts.shared().try_lock(), "nb-x");
        assert_would_block(opts.fair(true).try_lock(), "nb-x");
        assert_would_block(block_on(opts.blocking(false).lock_async()), "nb-x");
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "did not fail at once"
        );
        release.send(()).unwrap();
    });
    assert!(reg.is_empty());
}

#[test]
fn non_blocking_external_fails_at_once_on_a_file_held_by_another_open_file() {
    let dir = common::tempdir();
    let (a, b) = (Registry::new(), Registry::new());
    let opts = LockOptions::new("nb-file")
        .external(true)
        .lock_path(dir.path());
    let held = opts.registry(&a).lock().unwrap();
    let start = Instant::now();
    // Registry b's in-process lock is free; the lock file is not.
    assert_would_block(opts.registry(&b).try_lock(), "nb-file");
    assert_would_block(opts.registry(&b).shared().try_lock(), "nb-file");
    assert_would_block(
        block_on(opts.registry(&b).blocking(false).lock_async()),
        "nb-file",
    );
    assert!(start.elapsed() < Duration::from_secs(1));
    // The failed attempts released b's in-process lock.
    assert!(b.is_empty(), "left: {:?}", b.names());
    drop(held);
}

#[test]
fn timeout_fails_with_timeout_after_at_least_the_timeout() {
    let reg = Registry::new();
    let opts = LockOptions::new("to-x").registry(&reg);
    let timeout = Duration::from_millis(100);
    thread::scope(|s| {
        let release = hold_elsewhere(s, opts);
        for fair in [false, true] {
            let start = Instant::now();
            assert_timeout(opts.fair(fair).timeout(timeout).lock(), "to-x", timeout);
            let waited = start.elapsed();
            assert!(waited >= timeout, "gave up early: {waited:?}");
            assert!(waited < timeout * 10, "gave up late: {waited:?}");
        }
        let start = Instant::now();
        assert_timeout(
            block_on(opts.timeout(timeout).lock_async()),
            "to-x",
            timeout,
        );
        assert!(start.elapsed() >= timeout);
        // Only the holder is left.
        assert_eq!(reg.names(), vec!["to-x".to_owned()]);
        release.send(()).unwrap();
    });
    assert!(reg.is_empty());
}

#[cfg(target_os = "linux")]
#[test]
fn timeout_succeeds_when_the_holder_leaves_in_time() {
    let reg = Registry::new();
    let opts = LockOptions::new("to-ok").registry(&reg);
    let me = common::gettid();
    thread::scope(|s| {
        let release = hold_elsewhere(s, opts);
        // Release once this thread waits for the lock.
        s.spawn(move || {
            common::wait_until_sleeping(me);
            release.send(()).unwrap();
        });
        let g = opts.timeout(Duration::from_secs(10)).lock().unwrap();
        assert!(LockGuard::waited(&g) > Duration::ZERO);
    });
    assert!(reg.is_empty());
}

#[test]
fn zero_timeout_takes_a_free_lock_and_times_out_on_a_held_one() {
    let reg = Registry::new();
    let opts = LockOptions::new("to-zero")
        .registry(&reg)
        .timeout(Duration::ZERO);
    drop(opts.lock().unwrap());
    thread::scope(|s| {
        let release = hold_elsewhere(s, opts.timeout(Duration::from_secs(60)));
        assert_timeout(opts.lock(), "to-zero", Duration::ZERO);
        release.send(()).unwrap();
    });
}

#[test]
fn external_timeout_on_a_file_held_by_another_open_file() {
    let dir = common::tempdir();
    let (a, b) = (Registry::new(), Registry::new());
    let opts = LockOptions::new("to-file")
        .external(true)
        .lock_path(dir.path());
    // Held by another thread: this thread holding it would be WouldDeadlock.
    thread::scope(|s| {
        let _held = hold_elsewhere(s, opts.registry(&a));
        let timeout = Duration::from_millis(100);
        let start = Instant::now();
        assert_timeout(
            opts.registry(&b).timeout(timeout).lock(),
            "to-file",
            timeout,
        );
        assert!(start.elapsed() >= timeout);
        let start = Instant::now();
        assert_timeout(
            block_on(opts.registry(&b).timeout(timeout).lock_async()),
            "to-file",
            timeout,
        );
        assert!(start.elapsed() >= timeout);
        assert!(b.is_empty(), "the in-process lock was not given back");
    });
}

/// The deadline covers the in-process wait and the file wait together: a
/// 300 ms timeout that spends 200 ms waiting in-process has 100 ms left for
/// the lock file, not another 300 ms.
#[test]
fn one_timeout_bounds_the_whole_acquisition() {
    let dir = common::tempdir();
    let (a, b) = (Registry::new(), Registry::new());
    let name = "to-whole";
    let external = LockOptions::new(name).external(true).lock_path(dir.path());
    // A fresh timeout for the file wait would end at 400 + 600 = 1000 ms.
    let timeout = Duration::from_millis(600);
    let in_process_hold = Duration::from_millis(400);
    // Registry b holds the lock file for the whole test, on another thread.
    thread::scope(|outer| {
        let _file_holder = hold_elsewhere(outer, external.registry(&b));
        for asynchronous in [false, true] {
            thread::scope(|s| {
                // Registry a's in-process lock is held (without a file) for 400 ms.
                let release = hold_elsewhere(s, LockOptions::new(name).registry(&a));
                s.spawn(move || {
                    thread::sleep(in_process_hold);
                    release.send(()).unwrap();
                });
                let start = Instant::now();
                let opts = external.registry(&a).timeout(timeout);
                let r = if asynchronous {
                    block_on(opts.lock_async()).map(|_| ())
                } else {
                    opts.lock().map(|_| ())
                };
                let elapsed = start.elapsed();
                assert_timeout(r, name, timeout);
                assert!(elapsed >= timeout, "async={asynchronous}: {elapsed:?}");
                assert!(
                    elapsed < timeout + Duration::from_millis(300),
                    "async={asynchronous}: the file wait got a fresh timeout: {elapsed:?}"
                );
            });
        }
    });
    assert!(a.is_empty() && b.is_empty());
}

/// `timeout(Duration::MAX)` (or any deadline past what `Instant` can
/// represent) means "wait as long as it takes", not a panic.
#[test]
fn huge_timeout_waits_instead_of_panicking() {
    let reg = Registry::new();
    let opts = LockOptions::new("to-huge")
        .registry(&reg)
        .timeout(Duration::MAX);
    let sync = std::panic::catch_unwind(AssertUnwindSafe(|| opts.lock().map(drop)));
    assert!(
        matches!(sync, Ok(Ok(()))),
        "lock() with Duration::MAX panicked or failed"
    );
    let asynchronous =
        std::panic::catch_unwind(AssertUnwindSafe(|| block_on(opts.lock_async()).map(drop)));
    assert!(
        matches!(asynchronous, Ok(Ok(()))),
        "lock_async() with Duration::MAX panicked or failed"
    );
}

/// Given-up waits for a lock file (timed out, non-blocking, or dropped while
/// pending) leave at most one waiter queued on the file in the kernel while
/// the holder keeps it: each later attempt adopts the wait the one before left
/// behind instead of starting another. When the holder releases, that waiter
/// takes the lock for nobody and releases it at once.
#[cfg(target_os = "linux")]
#[test]
fn given_up_file_waits_leave_one_adopted_waiter_that_releases_at_once() {
    const ATTEMPTS: usize = 12;
    let dir = common::tempdir();
    let (a, b) = (Registry::new(), Registry::new());
    let opts = LockOptions::new("to-given-up")
        .external(true)
        .lock_path(dir.path());
    let path = dir.path().join("to-given-up");
    thread::scope(|s| {
        // Held by another thread: this thread holding it would be WouldDeadlock.
        let release = hold_elsewhere(s, opts.registry(&a));
        for i in 0..ATTEMPTS {
            let r = match i % 4 {
                0 => opts
                    .registry(&b)
                    .timeout(Duration::from_millis(5))
                    .lock()
                    .map(drop),
                1 => block_on(
                    opts.registry(&b)
                        .timeout(Duration::from_millis(5))
                        .lock_async(),
                )
                .map(drop),
                2 => block_on(opts.registry(&b).blocking(false).lock_async()).map(drop),
                _ => {
                    let (_, waker) = WakeCounter::new();
                    let mut fut = opts.registry(&b).lock_async();
                    assert!(poll_once(&mut fut, &waker).is_pending());
                    drop(fut);
                    continue;
                }
            };
            assert!(r.unwrap_err().is_contention());
        }
        assert!(b.is_empty());
        let waiting = common::settled_kernel_waiters_on(&path);
        assert!(
            waiting <= 1,
            "{waiting} kernel waiters left on the lock file after {ATTEMPTS} given-up attempts"
        );
        drop(release);
    });
    assert_no_kernel_waiters(
        &path,
        "the left-behind waiter took the lock and let go",
        Duration::from_secs(2),
    );
    common::wait_until(
        "the lock file is free again",
        Duration::from_secs(2),
        || opts.registry(&a).try_lock().is_ok(),
    );
}
