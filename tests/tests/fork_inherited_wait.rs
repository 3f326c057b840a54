//! A child forked while its forking thread had an async acquisition of a
//! lock file waiting in the kernel (on a waiter thread, which the child does
//! not have) gets an error when it polls that acquisition, at once, instead
//! of waiting forever for a wait nobody finishes in the child.
//!
//! One test in its own binary: forking is only safe while no other test
//! thread may hold a lock the child needs.

use std::future::Future;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use lockutils::{LockOptions, Registry};
use lockutils_tests::block_on;
use lockutils_tests::kernel::wait_until_blocked;

#[test]
fn a_forked_child_polling_an_inherited_kernel_wait_gets_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (holders, waiters) = (Registry::new(), Registry::new());
    let opts = |r| {
        LockOptions::new("inherited")
            .external(true)
            .lock_path(tmp.path())
            .registry(r)
    };
    // Held by another thread for the whole test (a thread's hold would
    // refuse this thread's second acquisition of the name first).
    std::thread::scope(|s| {
        s.spawn(|| std::mem::forget(opts(&holders).lock().unwrap()));
    });
    let mut waiting = Box::pin(opts(&waiters).lock_async());
    let mut cx = Context::from_waker(Waker::noop());
    assert!(waiting.as_mut().poll(&mut cx).is_pending());
    wait_until_blocked(&tmp.path().join("inherited"), Duration::from_secs(10));

    // SAFETY: the child only polls the future, writes its verdict and exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let started = Instant::now();
        let got = block_on(waiting.as_mut());
        let inherited = matches!(&got, Err(e) if e.report().to_string().contains("before a fork"))
            && started.elapsed() < Duration::from_secs(5);
        drop(waiting);
        // Acquiring again in the child works as anywhere: the lock is still
        // held (by the parent's other thread), so a short wait times out;
        // the parent's wait is not adopted.
        let again = block_on(
            opts(&waiters)
                .timeout(Duration::from_millis(200))
                .lock_async(),
        );
        let ok = inherited && matches!(&again, Err(e) if e.is_contention());
        // SAFETY: ends the child without the parent's destructors.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut status = 0;
    loop {
        // SAFETY: our own child, without blocking.
        if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
            break;
        }
        if Instant::now() >= deadline {
            // SAFETY: our own child, not reaped yet.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("the child polling an inherited wait did not finish");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the child's poll did not end with the inherited-wait error (status {status})"
    );
    // Here, in the parent, the wait goes on.
    assert!(waiting.as_mut().poll(&mut cx).is_pending());
}
