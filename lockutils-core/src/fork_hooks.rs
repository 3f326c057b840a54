//! Forks and lockutils' own threads.
//!
//! A child forked without `exec` has one thread, a copy of the one that
//! called `fork`, and a copy of every lock: a lock another thread held at
//! that moment stays held in the child for good. lockutils' own threads (the
//! timer thread and its jobs, the waiter threads) take internal locks at
//! moments no caller chooses, so a child could hang in its first lockutils
//! call for no fault of the program (a test saw it: the child blocked on the
//! timer's queue, which the parent's timer thread held at the fork).
//!
//! So a `pthread_atfork` *prepare* hook waits for a timer job in progress
//! (jobs run under [`job`]'s read lock) and then takes every internal lock
//! those threads take, in the crate's lock order: the kept-file cache, the
//! waiter threads' queue and their orphans, the timer queue. The fork
//! happens with all of them held by the forking thread, and the *parent* and
//! *child* hooks release them. In the child the hook also moves the fork
//! generation on (see [`fd_cache::generation`]).
//!
//! A thread of the program that is inside lockutils at the fork (holding a
//! registry's shard lock, say) is still the program's own risk, as with any
//! library: docs/design.md says so.

use std::any::Any;
use std::cell::RefCell;
use std::sync::{RwLock, RwLockReadGuard};

use crate::{fd_cache, file_wait, timer};

/// Held shared by every timer job, exclusively by the prepare hook.
static JOBS: RwLock<()> = RwLock::new(());

thread_local! {
    /// The locks the prepare hook took, for the parent or child hook to
    /// release (all three run on the forking thread).
    static HELD: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
}

/// Held while a timer job runs: a fork waits for the job to end.
pub(crate) fn job() -> RwLockReadGuard<'static, ()> {
    JOBS.read().unwrap_or_else(|e| e.into_inner())
}

/// Registers the hooks; false if that failed.
pub(crate) fn register() -> bool {
    // SAFETY: registers three hooks that take and release lockutils' own
    // locks (see the module docs), on whatever thread calls `fork`.
    unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) == 0 }
}

extern "C" fn prepare() {
    // Taken in this order (the elements are evaluated in order).
    let held: Vec<Box<dyn Any>> = vec![
        Box::new(JOBS.write().unwrap_or_else(|e| e.into_inner())),
        fd_cache::hold_for_fork(),
        file_wait::hold_for_fork(),
        timer::hold_for_fork(),
    ];
    HELD.with(|h| *h.borrow_mut() = held);
}

extern "C" fn parent() {
    release();
}

extern "C" fn child() {
    fd_cache::forked();
    release();
}

/// Lets go of what [`prepare`] took, the last taken first.
fn release() {
    let held = HELD.with(|h| std::mem::take(&mut *h.borrow_mut()));
    for guard in held.into_iter().rev() {
        drop(guard);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    use crate::{fd_cache, timer};

    /// A fork while a timer job holds the kept-file cache's lock: the fork
    /// waits for the job, and the child gets the lock. Without the hooks the
    /// child blocked for good on the lock the job held at the fork.
    #[test]
    fn a_fork_during_a_timer_job_leaves_the_child_its_locks() {
        static STARTED: AtomicBool = AtomicBool::new(false);
        assert!(fd_cache::watch_forks());
        timer::run_at(Instant::now(), || {
            let cache = fd_cache::hold_for_fork();
            STARTED.store(true, Ordering::Release);
            std::thread::sleep(Duration::from_millis(300));
            drop(cache);
        });
        while !STARTED.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(1));
        }
        // SAFETY: the child only takes lockutils' cache lock (which the
        // hooks hand it free) and `_exit`s.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            let n = fd_cache::kept_descriptors();
            // SAFETY: ends the child without running the parent's
            // destructors.
            unsafe { libc::_exit(if n < usize::MAX { 0 } else { 1 }) };
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut status = 0;
        let exited = loop {
            // SAFETY: waits for our own child, without blocking.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid {
                break true;
            }
            if Instant::now() >= deadline {
                break false;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        if !exited {
            // SAFETY: our own child, not reaped yet.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
        }
        assert!(exited, "the forked child blocked on a lock held at the fork");
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    }
}
