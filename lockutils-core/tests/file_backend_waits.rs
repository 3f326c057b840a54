//! Waits on the file backend are the file layer's own: an async waiter
//! through `.backend(&FileBackend)` sleeps in the kernel and is woken by the
//! release (even by another process), a timed one returns at its deadline, a
//! dropped future leaves the file free, and `external(true)` and
//! `FileBackend` are one lock on one file.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::task::Poll;
use std::thread;
use std::time::{Duration, Instant};

use common::{block_on, poll_once, wait_until, WakeCounter};
use lockutils_core::backend::FileBackend;
use lockutils_core::{AsyncLockGuard, Error, LockGuard, LockOptions, Registry};

/// Set in a child run of this binary: the lock directory to hold a lock in.
const HOLD_DIR: &str = "LOCKUTILS_TEST_HOLD_DIR";
/// Set in a child run of this binary: the lock name to hold.
const HOLD_NAME: &str = "LOCKUTILS_TEST_HOLD_NAME";

/// What the holder process prints once it holds the lock.
const HELD: &str = "lockutils-test-holder: held";

/// A lock held through the file backend by another process (this test binary
/// run again for [`child_holds_a_lock_until_its_stdin_closes`]).
struct OtherProcess {
    child: Child,
    /// The rest of its output, kept open so its last lines can be written.
    out: BufReader<ChildStdout>,
}

impl OtherProcess {
    /// Starts the child and returns once it holds `name` in `dir`.
    fn hold(dir: &Path, name: &str) -> OtherProcess {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_holds_a_lock_until_its_stdin_closes",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(HOLD_DIR, dir)
            .env(HOLD_NAME, name)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run this test binary again as the holder");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while out.read_line(&mut line).expect("read the holder's output") > 0 {
            if line.trim_end() == HELD {
                return OtherProcess { child, out };
            }
            line.clear();
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the holder process exited without taking the lock");
    }

    /// Lets the child release the lock and exit.
    fn release(mut self) {
        drop(self.child.stdin.take());
        let mut rest = Vec::new();
        self.out
            .read_to_end(&mut rest)
            .expect("read the holder's output");
        let status = self.child.wait().expect("wait for the holder");
        assert!(status.success(), "the holder process failed: {status}");
    }
}

impl Drop for OtherProcess {
    fn drop(&mut self) {
        if self.child.stdin.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The holder process: does nothing in a plain run; in a child run of
/// [`OtherProcess::hold`], takes the lock through the file backend, says
/// [`HELD`], and keeps it until its stdin closes.
#[test]
fn child_holds_a_lock_until_its_stdin_closes() {
    let (Some(dir), Some(name)) = (std::env::var_os(HOLD_DIR), std::env::var(HOLD_NAME).ok())
    else {
        return;
    };
    let files = FileBackend::new(dir);
    let guard = LockOptions::new(&name).backend(&files).lock().unwrap();
    // On a line of its own: libtest has just written "test NAME ... ".
    println!("\n{HELD}");
    let mut line = String::new();
    while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {}
    drop(guard);
}

/// An async waiter through the file backend, on a file another process
/// holds: one waiter queued in the kernel (not retrying), no wake-up while
/// the holder holds, woken by the release, then holding the file.
#[cfg(target_os = "linux")]
#[test]
fn async_backend_waiter_sleeps_in_the_kernel_until_another_process_releases() {
    let dir = common::tempdir();
    let path = dir.path().join("fb-async");
    let files = FileBackend::new(dir.path());
    let holder = OtherProcess::hold(dir.path(), "fb-async");
    let reg = Registry::new();
    let mut fut = LockOptions::new("fb-async")
        .registry(&reg)
        .backend(&files)
        .lock_async();
    let (wakes, waker) = WakeCounter::new();
    assert!(poll_once(&mut fut, &waker).is_pending(), "held elsewhere");
    wait_until(
        "the async waiter is queued in the kernel",
        Duration::from_secs(5),
        || common::kernel_waiters_on(&path) == 1,
    );
    // A retrying waiter would have been woken by its timer many times by now.
    thread::sleep(Duration::from_millis(100));
    assert_eq!(wakes.count(), 0, "woken while the other process holds");
    assert!(poll_once(&mut fut, &waker).is_pending(), "still held");
    assert_eq!(
        common::settled_kernel_waiters_on(&path),
        1,
        "one kernel wait, kept"
    );

    let released = Instant::now();
    holder.release();
    wait_until(
        "the release wakes the waiter",
        Duration::from_secs(5),
        || wakes.count() > 0,
    );
    eprintln!("woken {:?} after the holder's exit", released.elapsed());
    let guard = match poll_once(&mut fut, &waker) {
        Poll::Ready(r) => r.unwrap(),
        Poll::Pending => panic!("woken but not ready after the release"),
    };
    assert_eq!(AsyncLockGuard::path(&guard), Some(path.as_path()));
    assert_eq!(common::settled_kernel_waiters_on(&path), 0);
    drop(guard);
    assert!(reg.is_empty());
}

/// A timed waiter through the file backend, sync and async, gives up with
/// `Error::Timeout` at its deadline (not before), naming the whole timeout.
#[test]
fn timed_backend_waiters_return_at_their_deadline() {
    let dir = common::tempdir();
    let files = FileBackend::new(dir.path());
    let holder = OtherProcess::hold(dir.path(), "fb-timed");
    let reg = Registry::new();
    let timeout = Duration::from_millis(150);
    let opts = LockOptions::new("fb-timed")
        .registry(&reg)
        .backend(&files)
        .timeout(timeout);
    for is_async in [false, true] {
        let started = Instant::now();
        let r = if is_async {
            block_on(opts.lock_async()).map(drop)
        } else {
            opts.lock().map(drop)
        };
        let waited = started.elapsed();
        match r {
            Err(Error::Timeout { timeout: t, .. }) => assert_eq!(t, timeout),
            other => panic!("expected a timeout (async: {is_async}), got {other:?}"),
        }
        assert!(
            waited >= timeout,
            "gave up after {waited:?}, before {timeout:?}"
        );
        assert!(
            waited < Duration::from_secs(5),
            "returned {waited:?} after a {timeout:?} deadline"
        );
    }
    assert!(reg.is_empty());
    holder.release();
    // The timed-out waits left a waiter thread in the kernel: granted by the
    // release, it holds the file for the moment it takes to let go.
    wait_until("free once the holder left", Duration::from_secs(2), || {
        opts.try_lock().is_ok()
    });
}

/// Dropping a pending backend future (while the kernel wait is blocked, or
/// after it was granted but before the future saw it) leaves no lock held:
/// the left-behind waiter, at most one, releases at once.
#[cfg(target_os = "linux")]
#[test]
fn dropped_backend_futures_leave_the_file_free() {
    let dir = common::tempdir();
    let path = dir.path().join("fb-dropped");
    let files = FileBackend::new(dir.path());
    let (a, b) = (Registry::new(), Registry::new());
    let opts = LockOptions::new("fb-dropped").backend(&files);

    // Dropped while blocked in the kernel, several times: one waiter left.
    let holder = OtherProcess::hold(dir.path(), "fb-dropped");
    for _ in 0..5 {
        let (_, waker) = WakeCounter::new();
        let mut fut = opts.registry(&a).lock_async();
        assert!(poll_once(&mut fut, &waker).is_pending());
        drop(fut);
    }
    assert!(a.is_empty());
    let waiting = common::settled_kernel_waiters_on(&path);
    assert!(
        waiting <= 1,
        "{waiting} kernel waiters after 5 dropped futures"
    );
    holder.release();
    common::assert_no_kernel_waiters(
        &path,
        "the left-behind waiter took the lock and let go",
        Duration::from_secs(2),
    );
    wait_until("the file is free", Duration::from_secs(2), || {
        opts.registry(&b).try_lock().is_ok()
    });

    // Dropped after the kernel granted the wait, before the future was polled.
    let holder = OtherProcess::hold(dir.path(), "fb-dropped");
    let (wakes, waker) = WakeCounter::new();
    let mut fut = opts.registry(&a).lock_async();
    assert!(poll_once(&mut fut, &waker).is_pending());
    holder.release();
    wait_until(
        "the release wakes the waiter",
        Duration::from_secs(5),
        || wakes.count() > 0,
    );
    drop(fut);
    drop(
        opts.registry(&b)
            .try_lock()
            .expect("a granted, dropped wait holds nothing"),
    );
    assert!(a.is_empty() && b.is_empty());
}

/// `external(true)` and `FileBackend` on the same directory are one lock:
/// each excludes the other, sync and async, and the release of one wakes a
/// waiter of the other.
#[test]
fn external_and_file_backend_exclude_each_other() {
    let dir = common::tempdir();
    let files = FileBackend::new(dir.path());
    let (a, b) = (Registry::new(), Registry::new());
    let external = LockOptions::new("fb-one")
        .registry(&a)
        .external(true)
        .lock_path(dir.path());
    let backend = LockOptions::new("fb-one").registry(&b).backend(&files);

    for (holder, other) in [(external, backend), (backend, external)] {
        let g = holder.lock().unwrap();
        assert_eq!(
            LockGuard::path(&g),
            Some(dir.path().join("fb-one").as_path())
        );
        assert!(matches!(other.try_lock(), Err(Error::WouldBlock { .. })));
        assert!(matches!(
            block_on(other.blocking(false).lock_async()),
            Err(Error::WouldBlock { .. })
        ));
        // (From another thread: this one holding the file is WouldDeadlock.)
        thread::scope(|s| {
            let timed = s.spawn(|| other.timeout(Duration::from_millis(20)).lock().map(drop));
            assert!(matches!(timed.join().unwrap(), Err(Error::Timeout { .. })));
        });
        assert!(matches!(
            block_on(other.timeout(Duration::from_millis(20)).lock_async()),
            Err(Error::Timeout { .. })
        ));
        // An async waiter on one is woken by the release of the other.
        let (wakes, waker) = WakeCounter::new();
        let mut fut = other.lock_async();
        assert!(poll_once(&mut fut, &waker).is_pending());
        drop(g);
        wait_until(
            "the release wakes the waiter",
            Duration::from_secs(5),
            || wakes.count() > 0,
        );
        let g = match poll_once(&mut fut, &waker) {
            Poll::Ready(r) => r.unwrap(),
            Poll::Pending => panic!("woken but not ready after the release"),
        };
        // And the other way round while it holds, sync this time.
        assert!(matches!(holder.try_lock(), Err(Error::WouldBlock { .. })));
        drop(g);
        drop(holder.try_lock().unwrap());
    }
    assert!(a.is_empty() && b.is_empty());
}

/// A sync timed waiter through the file backend is handed the lock when an
/// `external(true)` holder on another thread releases it.
#[test]
fn a_timed_backend_waiter_gets_a_lock_released_by_an_external_holder() {
    let dir = common::tempdir();
    let files = FileBackend::new(dir.path());
    let (a, b) = (Registry::new(), Registry::new());
    let external = LockOptions::new("fb-handoff")
        .registry(&a)
        .external(true)
        .lock_path(dir.path());
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    thread::scope(|s| {
        s.spawn(move || {
            let g = external.lock().unwrap();
            held_tx.send(()).unwrap();
            let _ = go_rx.recv();
            drop(g);
        });
        held_rx.recv().unwrap();
        let waiter = s.spawn(|| {
            LockOptions::new("fb-handoff")
                .registry(&b)
                .backend(&files)
                .timeout(Duration::from_secs(30))
                .lock()
                .map(drop)
        });
        thread::sleep(Duration::from_millis(20));
        go_tx.send(()).unwrap();
        waiter.join().unwrap().expect("handed the lock in time");
    });
}

/// A blocking wait through the file backend for a file this thread holds
/// through `external(true)` (on another registry) is `WouldDeadlock`, as it
/// is between two `external(true)` registries, instead of a wait forever.
#[test]
fn a_backend_wait_on_a_file_this_thread_holds_externally_would_deadlock() {
    let dir = common::tempdir();
    let files = FileBackend::new(dir.path());
    let (a, b) = (Registry::new(), Registry::new());
    let _held = LockOptions::new("fb-self")
        .registry(&a)
        .external(true)
        .lock_path(dir.path())
        .lock()
        .unwrap();
    let e = LockOptions::new("fb-self")
        .registry(&b)
        .backend(&files)
        .lock()
        .unwrap_err();
    assert!(
        matches!(e, Error::WouldDeadlock { ref name } if name == "fb-self"),
        "{e}"
    );
    assert!(b.is_empty());
}

/// The other direction: a blocking `external(true)` wait (untimed or timed)
/// for a file this thread holds through the file backend is `WouldDeadlock`
/// instead of a wait on the thread itself; so is a second backend wait, and
/// a removal of that file. After the hold ends (by drop or by `unlock`),
/// both ways work again.
#[test]
fn an_external_wait_on_a_file_this_thread_holds_through_the_backend_would_deadlock() {
    let dir = common::tempdir();
    let path = dir.path().to_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let (files, other_files) = (FileBackend::new(&path), FileBackend::new(&path));
        let (a, b, c) = (Registry::new(), Registry::new(), Registry::new());
        let held = LockOptions::new("fb-self-2").registry(&a).backend(&files);
        let external = LockOptions::new("fb-self-2")
            .registry(&b)
            .external(true)
            .lock_path(&path);
        for release_by_unlock in [false, true] {
            let g = held.lock().unwrap();
            let untimed = external.lock().map(drop);
            let timed = external.timeout(Duration::from_secs(30)).lock().map(drop);
            let shared = external.mode(lockutils_core::Mode::Shared).lock().map(drop);
            let backend_again = LockOptions::new("fb-self-2")
                .registry(&c)
                .backend(&other_files)
                .lock()
                .map(drop);
            let removal = lockutils_core::remove_external_lock_file("fb-self-2", None, Some(&path));
            if release_by_unlock {
                LockGuard::unlock(g).unwrap();
            } else {
                drop(g);
            }
            let after = external.lock().map(drop);
            tx.send((
                untimed,
                timed,
                shared,
                backend_again,
                removal.map(|_| ()),
                after,
            ))
            .unwrap();
        }
    });
    for round in 0..2 {
        let (untimed, timed, shared, backend_again, removal, after) = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("round {round}: the thread waited on itself"));
        for (what, r) in [
            ("untimed", untimed),
            ("timed", timed),
            ("shared", shared),
            ("backend again", backend_again),
            ("removal", removal),
        ] {
            assert!(
                matches!(r, Err(Error::WouldDeadlock { ref name }) if name == "fb-self-2"),
                "round {round}, {what}: {r:?}"
            );
        }
        after.unwrap();
    }
}
