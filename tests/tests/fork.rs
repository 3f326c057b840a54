//! A child forked without `exec` shares the parent's open files, and with
//! them their OFD locks: it must neither lock a lock file the parent keeps
//! open between acquisitions, nor hand a wait to the parent's waiter threads
//! (which do not exist in the child).
//!
//! One test in its own binary: forking is only safe while no other test
//! thread may hold a lock the child needs.

use std::time::Duration;

use lockutils::{Error, LockOptions, Registry};
use lockutils_tests::block_on;
use lockutils_tests::kernel::blocked_waiters;
use lockutils_tests::wait_until_blocked;

const PATIENCE: Duration = Duration::from_secs(20);

/// A pipe: (read end, write end).
fn pipe() -> (libc::c_int, libc::c_int) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a writable array of two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    (fds[0], fds[1])
}

fn send(fd: libc::c_int, byte: u8) {
    // SAFETY: writes one byte from a live local.
    assert_eq!(
        unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) },
        1
    );
}

/// One byte from the other side, within [`PATIENCE`]: a side blocked for good
/// (as a child was once, on a lock held at the fork) fails the test rather
/// than hanging it.
fn recv(fd: libc::c_int) -> u8 {
    let mut byte = 0u8;
    loop {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: polls one live `pollfd` for at most PATIENCE.
        let ready = unsafe { libc::poll(&mut pfd, 1, PATIENCE.as_millis() as libc::c_int) };
        if ready < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        assert!(
            ready > 0,
            "no answer from the other side within {PATIENCE:?}"
        );
        // SAFETY: reads one byte into a live local.
        let n = unsafe { libc::read(fd, (&mut byte as *mut u8).cast(), 1) };
        let e = std::io::Error::last_os_error();
        if n < 0 && e.kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        assert_eq!(n, 1, "the other side is gone ({e})");
        return byte;
    }
}

/// The forked child; killed if the test fails before reaping it.
struct Forked(libc::pid_t);

impl Drop for Forked {
    fn drop(&mut self) {
        if self.0 > 0 {
            // SAFETY: our own unreaped child, by its pid.
            unsafe {
                libc::kill(self.0, libc::SIGKILL);
                libc::waitpid(self.0, std::ptr::null_mut(), 0);
            }
        }
    }
}

/// Waits for the child and returns its exit code.
fn reap(mut child: Forked) -> i32 {
    let pid = std::mem::replace(&mut child.0, 0);
    let mut status = 0;
    // SAFETY: waits for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "child status {status:#x}");
    libc::WEXITSTATUS(status)
}

#[test]
fn a_forked_child_uses_neither_kept_files_nor_waiter_threads_of_its_parent() {
    let dir = tempfile::tempdir().unwrap();
    let opts = LockOptions::new("forked")
        .external(true)
        .lock_path(dir.path());
    // The parent keeps the file open, and has an idle waiter thread.
    let holder = Registry::new();
    let g = opts.registry(&holder).lock().unwrap();
    let waited = std::thread::scope(|s| {
        let w = s.spawn(|| opts.timeout(Duration::from_secs(60)).lock().map(drop));
        wait_until_blocked(&dir.path().join("forked"), PATIENCE);
        drop(g);
        w.join().unwrap()
    });
    waited.unwrap();
    assert!(lockutils_core::file::kept_descriptors() >= 1);
    assert!(lockutils_core::file::waiter_threads() >= 1);

    let (child_rx, to_child) = pipe();
    let (from_child, child_tx) = pipe();
    // SAFETY: the child only runs lockutils code and this test's helpers on
    // this thread, then `_exit`s; the parent's other threads are the
    // lockutils timer and idle waiter threads, which hold no lock the child
    // takes while they sleep.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // Holds the lock; must exclude the parent, not share its file.
            let g = opts.lock().expect("child lock");
            send(child_tx, b'h');
            assert_eq!(recv(child_rx), b'r');
            drop(g);
            // A wait with no deadline, woken by the parent's release.
            send(child_tx, b'w');
            assert_eq!(recv(child_rx), b'g');
            let g = block_on(opts.lock_async()).expect("child async lock");
            drop(g);
            send(child_tx, b'd');
        }))
        .map_or(1, |()| 0);
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let child = Forked(pid);
    assert_eq!(recv(from_child), b'h');
    let r = opts.try_lock();
    assert!(
        matches!(r, Err(Error::WouldBlock { .. })),
        "the parent locked the file its child holds: {r:?}"
    );
    drop(r);
    let g = opts.registry(&holder).blocking(false).lock();
    assert!(g.is_err(), "{g:?}");
    send(to_child, b'r');
    assert_eq!(recv(from_child), b'w');
    let g = opts.registry(&holder).lock().unwrap();
    send(to_child, b'g');
    let path = dir.path().join("forked");
    let deadline = std::time::Instant::now() + PATIENCE;
    while blocked_waiters(&path) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the child never waited"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    drop(g);
    assert_eq!(recv(from_child), b'd');
    assert_eq!(reap(child), 0);
}
