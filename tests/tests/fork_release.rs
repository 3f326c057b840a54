//! A child forked without `exec` shares its parent's open lock files, and
//! with them their OFD locks. Whatever the child does with its copies (drop
//! a guard, remove the file, live on), the parent's lock stays the parent's,
//! and a lock the parent releases is released; the child's own async
//! deadlines fire.
//!
//! One test in its own binary, run in order: its first lock must be the
//! process's first (no lock file kept open yet, no kernel wait started), and
//! forking is only safe while no other test thread may hold a lock the child
//! needs.

use std::time::{Duration, Instant};

use lockutils::{Error, LockGuard, LockOptions, Registry};
use lockutils_core::file::{kept_descriptors, kernel_waits, waiter_threads};
use lockutils_tests::block_on;

/// Forks; the child runs `child` and exits with its code, without running
/// the parent's destructors. Returns the child's pid.
///
/// # Safety
/// As `fork`: the child may only need locks no other thread of this process
/// holds at the fork.
unsafe fn fork_running(child: impl FnOnce() -> i32) -> libc::pid_t {
    // SAFETY: the caller's contract.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(101);
        // SAFETY: ends the child at once.
        unsafe { libc::_exit(code) };
    }
    pid
}

/// Waits for our child `pid`; its exit code.
fn reap(pid: libc::pid_t) -> i32 {
    let mut status = 0;
    // SAFETY: waits for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "child status {status:#x}");
    libc::WEXITSTATUS(status)
}

/// The forked child's own copy of the guard `g`, to drop or unlock there.
/// The child never drops `g` itself (it `_exit`s), so only the copy is
/// dropped in the child, and nothing in the parent.
fn child_copy<'a>(g: &LockGuard<'a>) -> LockGuard<'a> {
    // SAFETY: see above; called in the child only, once per guard.
    unsafe { std::ptr::read(g) }
}

fn assert_still_held(opts: &LockOptions<'_, '_>, what: &str) {
    let probe = Registry::new();
    let r = opts.registry(&probe).try_lock();
    assert!(
        matches!(r, Err(Error::WouldBlock { .. })),
        "{what}: the parent's lock was released: {r:?}"
    );
}

#[test]
fn a_forked_child_leaves_its_parents_locks_alone_and_runs_its_own_timers() {
    let dir = tempfile::tempdir().unwrap();
    let opts = LockOptions::new("forked")
        .external(true)
        .lock_path(dir.path());
    let path = dir.path().join("forked");

    // 1. The process's first lock file: nothing kept or waited on before.
    assert_eq!((kept_descriptors(), waiter_threads()), (0, 0));
    let g = opts.lock().unwrap();
    // SAFETY: this thread is the only one using lockutils.
    let pid = unsafe {
        fork_running(|| {
            drop(child_copy(&g));
            0
        })
    };
    assert_eq!(reap(pid), 0);
    assert_still_held(&opts, "a child dropped its copy of the guard");

    // 2. A child's copy removing the file: neither unlinked nor unlocked.
    // SAFETY: as above.
    let pid = unsafe {
        fork_running(|| match LockGuard::unlock_and_remove(child_copy(&g)) {
            Ok(false) => 0,
            other => {
                eprintln!("child: unlock_and_remove gave {other:?}");
                1
            }
        })
    };
    assert_eq!(reap(pid), 0, "the child's removal was not refused");
    assert!(path.exists(), "a child removed its parent's lock file");
    assert_still_held(&opts, "a child removed its copy of the guard");
    drop(g);

    // 3. A wait given up on while a forked child lives with a copy of its
    // file: granted once the holder leaves, it releases the lock at once
    // for everybody, not only in this process.
    let holder = Registry::new();
    let waiter = Registry::new();
    let h = opts.registry(&holder).lock().unwrap();
    let child = std::thread::scope(|s| {
        let timed = s.spawn(|| {
            opts.registry(&waiter)
                .timeout(Duration::from_millis(500))
                .lock()
                .map(drop)
        });
        let start = Instant::now();
        while kernel_waits() == 0 {
            assert!(start.elapsed() < Duration::from_secs(10), "no kernel wait");
            std::thread::sleep(Duration::from_millis(1));
        }
        let sleep_until_killed = || loop {
            // SAFETY: sleeps until a signal (the parent's SIGKILL).
            unsafe { libc::pause() };
        };
        // SAFETY: the other threads are this test's timed waiter, blocked in
        // the kernel, and lockutils' waiter and timer threads; the child
        // takes no lock, it only sleeps.
        let child = unsafe { fork_running(sleep_until_killed) };
        let r = timed.join().unwrap();
        assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
        child
    });
    assert_eq!(kernel_waits(), 1, "the timed-out wait is orphaned");
    drop(h);
    // The orphan takes the lock (it retries in the kernel once woken; a
    // probe might otherwise get in first) and lets go of it.
    let start = Instant::now();
    while kernel_waits() > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the orphan never ended"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let free_by = Instant::now() + Duration::from_secs(5);
    let probe = Registry::new();
    let freed = loop {
        if opts.registry(&probe).try_lock().is_ok() {
            break true;
        }
        if Instant::now() > free_by {
            break false;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // SAFETY: our own child, by its pid, then reaped.
    unsafe {
        libc::kill(child, libc::SIGKILL);
        libc::waitpid(child, std::ptr::null_mut(), 0);
    }
    assert!(
        freed,
        "the orphaned wait's lock stayed held while a forked child lived"
    );

    // 4. A forked child's async deadline fires: the child runs a timer
    // thread of its own (the parent's, started below, does not exist there).
    let h = opts.registry(&holder).lock().unwrap();
    let r = block_on(
        opts.registry(&waiter)
            .timeout(Duration::from_millis(50))
            .lock_async(),
    );
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    drop(r);
    let timed_out_in_child = || {
        let r = block_on(
            opts.registry(&waiter)
                .timeout(Duration::from_millis(200))
                .lock_async(),
        );
        i32::from(!matches!(r, Err(Error::Timeout { .. })))
    };
    // SAFETY: the other threads are lockutils' idle waiter and timer
    // threads; the child takes only its own locks.
    let child = unsafe { fork_running(timed_out_in_child) };
    let start = Instant::now();
    let code = loop {
        let mut status = 0;
        // SAFETY: polls our own child.
        let r = unsafe { libc::waitpid(child, &mut status, libc::WNOHANG) };
        if r == child {
            break Some(libc::WEXITSTATUS(status));
        }
        if start.elapsed() > Duration::from_secs(10) {
            // SAFETY: our own child, by its pid, then reaped.
            unsafe {
                libc::kill(child, libc::SIGKILL);
                libc::waitpid(child, std::ptr::null_mut(), 0);
            }
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    drop(h);
    assert_eq!(
        code,
        Some(0),
        "the child's 200 ms async deadline did not fire within 10 s"
    );
}
