//! Timed and async waits for a lock file held by another process: they sleep
//! in the kernel (a waiter thread blocked in `F_OFD_SETLKW`), wake when the
//! holder goes away, keep their deadline, and a wait given up on leaves
//! nothing that keeps the lock from other processes.
//!
//! The waiter-thread count is per process, so the tests that read it take
//! [`SERIAL`] first.

use std::future::Future;
use std::path::Path;
use std::sync::Mutex;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use lockutils::{Error, LockOptions, Registry};
use lockutils_core::file::{kernel_waits, waiter_threads, MAX_WAITERS, WAITER_IDLE_EXIT};
use lockutils_tests::kernel::blocked_waiters;
use lockutils_tests::{block_on, wait_until_blocked, Holder, Spawned};

const HOLDER: &str = env!("CARGO_BIN_EXE_lockutils-holder");
const PATIENCE: Duration = Duration::from_secs(20);

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A child holding `name` in `dir` until killed.
fn hold_in_child(name: &str, dir: &Path) -> Spawned {
    Holder::new(HOLDER, name, dir)
        .hold_ms(600_000)
        .spawn_ready(&dir.join(format!("{name}.ready")), PATIENCE)
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn timed_and_async_waiters_sleep_in_the_kernel_and_wake_when_the_holder_dies() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    for asynchronous in [false, true] {
        let name = if asynchronous {
            "woken-async"
        } else {
            "woken-timed"
        };
        let path = dir.path().join(name);
        let holder = hold_in_child(name, dir.path());
        let dir_path = dir.path().to_owned();
        let waiter = std::thread::spawn(move || {
            let opts = LockOptions::new(name)
                .external(true)
                .lock_path(&dir_path)
                .timeout(Duration::from_secs(60));
            if asynchronous {
                block_on(opts.lock_async()).map(drop)
            } else {
                opts.lock().map(drop)
            }
        });
        // The wait is a request blocked in the kernel, not a retry loop.
        wait_until_blocked(&path, PATIENCE);
        assert_eq!(blocked_waiters(&path), 1, "{name}");
        holder.kill();
        waiter.join().unwrap().unwrap();
        assert_eq!(kernel_waits(), 0, "{name}: the kernel wait ended");
    }
}

#[test]
fn the_deadline_bounds_a_wait_for_a_file_held_by_another_process() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let holder = hold_in_child("deadline", dir.path());
    let timeout = Duration::from_millis(200);
    let opts = LockOptions::new("deadline")
        .external(true)
        .lock_path(dir.path())
        .timeout(timeout);
    for asynchronous in [false, true] {
        let started = Instant::now();
        let r = if asynchronous {
            block_on(opts.lock_async()).map(drop)
        } else {
            opts.lock().map(drop)
        };
        let waited = started.elapsed();
        assert!(
            matches!(r, Err(Error::Timeout { .. })),
            "async {asynchronous}: {r:?}"
        );
        assert!(waited >= timeout, "gave up after {waited:?}");
        assert!(waited < PATIENCE, "gave up only after {waited:?}");
    }
    drop(holder);
}

/// A wait given up on (deadline passed, future dropped) stays blocked in the
/// kernel, adopted by the next attempt instead of adding another; when the
/// holder goes away it takes the lock for nobody and lets go at once, which
/// another process sees as a free lock.
#[test]
fn a_given_up_wait_releases_at_once_and_another_process_gets_the_lock() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("given-up");
    let holder = hold_in_child("given-up", dir.path());
    let opts = LockOptions::new("given-up")
        .external(true)
        .lock_path(dir.path());

    let r = opts.timeout(Duration::from_millis(50)).lock();
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    let mut fut = Box::pin(opts.lock_async());
    let waker = Waker::noop();
    assert!(fut
        .as_mut()
        .poll(&mut Context::from_waker(waker))
        .is_pending());
    drop(fut);
    let other = Registry::new();
    let r = block_on(
        opts.registry(&other)
            .timeout(Duration::from_millis(50))
            .lock_async(),
    );
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");

    assert_eq!(
        blocked_waiters(&path),
        1,
        "one kernel wait, adopted each time"
    );
    assert_eq!(kernel_waits(), 1);
    holder.kill();
    wait_for("the left-behind wait ended", || kernel_waits() == 0);
    Holder::new(HOLDER, "given-up", dir.path())
        .no_wait()
        .run(PATIENCE)
        .assert_code(0);
}

/// Waits for many different files at once never use more than
/// [`MAX_WAITERS`] threads (within the bound, every one sleeps in the kernel); the rest retry, and every one of them still gets
/// its lock once the holder is gone, after which the idle threads exit.
#[test]
fn waiter_threads_stay_within_their_bound() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let n = MAX_WAITERS + 6;
    let names: Vec<String> = (0..n).map(|i| format!("bound-{i}")).collect();
    // Held from this process through another registry: OFD locks of two open
    // files exclude each other within one process too.
    let holders = Registry::new();
    let guards: Vec<_> = names
        .iter()
        .map(|name| {
            LockOptions::new(name)
                .external(true)
                .lock_path(dir.path())
                .registry(&holders)
                .lock()
                .unwrap()
        })
        .collect();
    let mut futs: Vec<_> = names
        .iter()
        .map(|name| {
            Box::pin(
                LockOptions::new(name)
                    .external(true)
                    .lock_path(dir.path())
                    .timeout(Duration::from_secs(60))
                    .lock_async(),
            )
        })
        .collect();
    let waker = Waker::noop();
    for f in &mut futs {
        assert!(f
            .as_mut()
            .poll(&mut Context::from_waker(waker))
            .is_pending());
    }
    assert_eq!(kernel_waits(), MAX_WAITERS);
    assert_eq!(waiter_threads(), MAX_WAITERS);
    drop(guards);
    for f in futs {
        drop(block_on(f).unwrap());
    }
    assert_eq!(kernel_waits(), 0);
    // Idle threads stay a moment for the next wait, then exit.
    assert!(WAITER_IDLE_EXIT < PATIENCE);
    wait_for("every idle waiter thread exited", || waiter_threads() == 0);
}
