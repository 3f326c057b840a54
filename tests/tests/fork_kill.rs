//! A SIGKILLed holder's lock is released by the kernel even when the holder
//! has a child forked without `exec` still alive: the child shares every
//! open file of its parent's at the fork, so a lock the parent holds then, or
//! later takes on such a file, would be the child's too. The holder here
//! holds the lock across the fork until it is killed, or locks again after
//! the fork, through the lock file it kept open (idle at the fork) or one it
//! held across the fork; all must be its own alone.
//!
//! One test in its own binary: forking is only safe while no other test
//! thread may hold a lock the child needs.

use std::path::Path;
use std::time::Duration;

use lockutils::{Error, LockOptions, Registry};

fn pipe() -> (libc::c_int, libc::c_int) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a writable array of two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    (fds[0], fds[1])
}

fn send(fd: libc::c_int, v: i32) {
    let b = v.to_ne_bytes();
    // SAFETY: writes four bytes from a live local.
    assert_eq!(unsafe { libc::write(fd, b.as_ptr().cast(), 4) }, 4);
}

/// Four bytes from the other side, within 20 s (a side blocked for good
/// fails the test rather than hanging it).
fn recv(fd: libc::c_int) -> i32 {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    assert_eq!(unsafe { libc::poll(&mut pfd, 1, 20_000) }, 1, "no answer");
    let mut b = [0u8; 4];
    // SAFETY: reads four bytes into a live local.
    assert_eq!(unsafe { libc::read(fd, b.as_mut_ptr().cast(), 4) }, 4);
    i32::from_ne_bytes(b)
}

/// How the holder used the lock file before it forked its worker.
#[derive(Clone, Copy, Debug)]
enum BeforeTheFork {
    /// Not at all: the control.
    Nothing,
    /// Locked and released it: the file is kept open, idle, at the fork.
    LockedAndReleased,
    /// Holds it across the fork, and releases it after.
    Held,
    /// Holds it across the fork, until it is killed.
    HeldToTheEnd,
}

/// The holder (a child of this test) prepares as `before` says, forks a
/// worker that never calls lockutils, locks the file, and is SIGKILLed
/// while it holds it. Returns whether another registry (so on the file, as
/// another process would) then gets the lock within 2 s.
fn killed_holder_releases(dir: &Path, before: BeforeTheFork) -> Result<(), Error> {
    let (r, w) = pipe();
    // SAFETY: the child only runs lockutils and async-signal-safe calls of
    // its own, and never returns into the test harness.
    let holder = unsafe { libc::fork() };
    assert!(holder >= 0);
    if holder == 0 {
        let opts = LockOptions::new("k").external(true).lock_path(dir);
        let held = match before {
            BeforeTheFork::Nothing => None,
            BeforeTheFork::LockedAndReleased => {
                drop(opts.lock().unwrap());
                assert_eq!(lockutils_core::file::kept_descriptors(), 1);
                None
            }
            BeforeTheFork::Held | BeforeTheFork::HeldToTheEnd => Some(opts.lock().unwrap()),
        };
        // SAFETY: the worker only sleeps until it is killed.
        let worker = unsafe { libc::fork() };
        if worker == 0 {
            loop {
                // SAFETY: no arguments.
                unsafe { libc::pause() };
            }
        }
        send(w, worker);
        let guard = match before {
            BeforeTheFork::HeldToTheEnd => held.unwrap(),
            _ => {
                drop(held);
                opts.lock().unwrap()
            }
        };
        send(w, 1);
        loop {
            // SAFETY: no arguments; holds `guard` until SIGKILLed.
            unsafe { libc::pause() };
            let _ = &guard;
        }
    }
    let worker = recv(r);
    assert_eq!(recv(r), 1, "the holder locked");
    let mut status = 0;
    // SAFETY: our own child, by its pid.
    unsafe {
        libc::kill(holder, libc::SIGKILL);
        libc::waitpid(holder, &mut status, 0);
    }
    let probe = Registry::new();
    let got = LockOptions::new("k")
        .external(true)
        .lock_path(dir)
        .registry(&probe)
        .timeout(Duration::from_secs(2))
        .lock()
        .map(drop);
    // SAFETY: the worker is the holder's child, ours to stop: reparented,
    // it is reaped by whoever adopted it.
    unsafe { libc::kill(worker, libc::SIGKILL) };
    // SAFETY: closes the two ends of our pipe.
    unsafe {
        libc::close(r);
        libc::close(w);
    }
    got
}

#[test]
fn a_sigkilled_holder_releases_its_lock_even_with_a_forked_worker_alive() {
    for before in [
        BeforeTheFork::Nothing,
        BeforeTheFork::LockedAndReleased,
        BeforeTheFork::Held,
        BeforeTheFork::HeldToTheEnd,
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let got = killed_holder_releases(tmp.path(), before);
        assert!(
            got.is_ok(),
            "{before:?}: the SIGKILLed holder's lock is still held: {got:?}"
        );
    }
}
