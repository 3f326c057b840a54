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
//!
//! On Linux the hooks are registered as the process starts (a constructor
//! in `.init_array`, before `main` starts threads; for a library loaded with
//! `dlopen`, before any of its code can run), not at its first lock: a fork
//! that began while another thread registered them would run none of them,
//! and its child would keep a lock file that thread opened then, unlisted
//! (see [`lock_fds`](crate::lock_fds)). Elsewhere they are registered at the
//! first lock file.
//!
//! The constructor allocates once before it registers: an allocator that
//! registers fork hooks of its own at its first allocation (jemalloc,
//! tcmalloc) then has them registered first, so its prepare hook runs after
//! ours (prepare hooks run in the reverse order of registration) and its
//! child hook before ours. Our prepare hook waits for lockutils' internal
//! locks, whose holders may allocate: with the allocator's locks already
//! taken it would wait for good.

use std::any::Any;
use std::cell::Cell;
use std::sync::{RwLock, RwLockReadGuard};

use crate::{fd_cache, file_wait, lock_fds, timer};

/// Held shared by every timer job, exclusively by the prepare hook.
static JOBS: RwLock<()> = RwLock::new(());

/// The guards of the locks the prepare hook took.
type Held = Vec<Box<dyn Any>>;

thread_local! {
    /// The locks the prepare hook took, for the parent or child hook to
    /// release (all three run on the forking thread): a raw pointer, so that
    /// this thread-local has no destructor and stays usable while the
    /// thread's other thread-locals are destroyed (one of whose destructors
    /// may fork).
    static HELD: Cell<*mut Held> = const { Cell::new(std::ptr::null_mut()) };
}

/// Held while a timer job runs: a fork waits for the job to end.
pub(crate) fn job() -> RwLockReadGuard<'static, ()> {
    JOBS.read().unwrap_or_else(|e| e.into_inner())
}

/// Registers the hooks as the process starts, before `main` and any thread
/// of its: the constructor glibc and musl run from `.init_array` (as std
/// collects the program's arguments there).
#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static REGISTER_AT_START: extern "C" fn() = register_at_start;

#[cfg(target_os = "linux")]
extern "C" fn register_at_start() {
    // The allocator's own fork hooks, if it has any, first (see the module
    // docs).
    drop(std::hint::black_box(Box::new(0u64)));
    fd_cache::watch_forks();
}

/// Registers the hooks; false if that failed.
pub(crate) fn register() -> bool {
    // SAFETY: registers three hooks that take and release lockutils' own
    // locks (see the module docs), on whatever thread calls `fork`.
    unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) == 0 }
}

extern "C" fn prepare() {
    // Taken in this order (the elements are evaluated in order).
    let held: Held = vec![
        Box::new(JOBS.write().unwrap_or_else(|e| e.into_inner())),
        fd_cache::hold_for_fork(),
        file_wait::hold_for_fork(),
        timer::hold_for_fork(),
        lock_fds::hold_for_fork(),
    ];
    // The parent or child hook of this fork takes it back.
    HELD.with(|h| h.set(Box::into_raw(Box::new(held))));
}

extern "C" fn parent() {
    fd_cache::fork_done();
    release();
}

extern "C" fn child() {
    fd_cache::forked();
    fd_cache::fork_done();
    release();
    // The lock files open at the fork are the parent's alone from now on.
    lock_fds::let_go_in_child();
    // The parent's idle kept files and queued waits, closed now rather than
    // at the child's first lock: until then their open files would be shared
    // with the parent, and so would a lock the parent takes on one later.
    fd_cache::close_inherited();
    file_wait::forget_inherited();
}

/// Lets go of what [`prepare`] took, the last taken first.
fn release() {
    let held = HELD.with(|h| h.replace(std::ptr::null_mut()));
    if held.is_null() {
        return;
    }
    // SAFETY: `held` came from `Box::into_raw` in `prepare` on this thread
    // (the parent and child hooks run on the thread that ran it), and the
    // swap above took it out, so it is turned back into a box only once.
    let held = unsafe { Box::from_raw(held) };
    for guard in held.into_iter().rev() {
        drop(guard);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
    use std::time::{Duration, Instant};

    use crate::{fd_cache, timer};

    /// Waits at most 5 s for child `pid` and returns its exit code; kills it
    /// (our own child, by its pid) and returns `None` if it did not exit.
    fn exit_code(pid: libc::pid_t) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut status = 0;
        loop {
            // SAFETY: waits for our own child, without blocking.
            if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
                return libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
            }
            if Instant::now() >= deadline {
                // SAFETY: our own child, not reaped yet.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A forked child's timer runs none of the jobs its parent had
    /// scheduled (they may block on locks the parent's threads held at the
    /// fork), and runs the child's own.
    #[test]
    fn a_forked_childs_timer_runs_its_own_jobs_not_its_parents() {
        static PARENTS_RAN: AtomicBool = AtomicBool::new(false);
        static OWN_RAN: AtomicBool = AtomicBool::new(false);
        assert!(fd_cache::watch_forks());
        timer::run_at(Instant::now() + Duration::from_secs(1), || {
            PARENTS_RAN.store(true, Ordering::SeqCst)
        });
        // SAFETY: the child only schedules a timer job, sleeps and `_exit`s.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            timer::run_at(Instant::now(), || OWN_RAN.store(true, Ordering::SeqCst));
            std::thread::sleep(Duration::from_millis(1500));
            let code = match (PARENTS_RAN.load(Ordering::SeqCst), OWN_RAN.load(Ordering::SeqCst)) {
                (false, true) => 0,
                (true, _) => 1,
                (false, false) => 2,
            };
            // SAFETY: ends the child without running the parent's
            // destructors.
            unsafe { libc::_exit(code) };
        }
        match exit_code(pid) {
            Some(0) => {}
            Some(1) => panic!("the child ran a job its parent had scheduled"),
            Some(2) => panic!("the child's own job never ran"),
            other => panic!("child: {other:?}"),
        }
    }

    /// A fork from a thread-local's destructor, after the thread's other
    /// thread-locals are gone, goes through the hooks without a panic (which
    /// would abort the process from an `extern "C"` hook).
    #[test]
    fn a_fork_from_a_thread_local_destructor_goes_through_the_hooks() {
        static CHILD_CODE: AtomicI32 = AtomicI32::new(-1);
        fn fork_and_wait() -> i32 {
            // SAFETY: the child `_exit`s at once.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0);
            if pid == 0 {
                // SAFETY: ends the child at once.
                unsafe { libc::_exit(0) };
            }
            exit_code(pid).unwrap_or(-2)
        }
        struct ForkOnDrop;
        impl Drop for ForkOnDrop {
            fn drop(&mut self) {
                CHILD_CODE.store(fork_and_wait(), Ordering::SeqCst);
            }
        }
        thread_local! {
            static FORKS_ON_DROP: ForkOnDrop = const { ForkOnDrop };
        }
        assert!(fd_cache::watch_forks());
        std::thread::spawn(|| {
            // Registered before any thread-local the hooks use, so
            // destroyed after them.
            FORKS_ON_DROP.with(|_| {});
            assert_eq!(fork_and_wait(), 0);
        })
        .join()
        .unwrap();
        assert_eq!(CHILD_CODE.load(Ordering::SeqCst), 0);
    }

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
        let code = exit_code(pid);
        assert_eq!(
            code,
            Some(0),
            "the forked child blocked on a lock held at the fork"
        );
    }
}
