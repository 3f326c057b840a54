//! Kernel waits for lock files on behalf of timed and async acquisitions.
//!
//! A blocking `F_OFD_SETLKW` wakes the moment the holder releases, but it
//! cannot be called off at a deadline, nor from a dropped future: closing the
//! descriptor does not interrupt it, and only a signal would, which a library
//! must not take over. So a timed or async caller hands the wait to a *waiter
//! thread* that owns the open file and sleeps in the kernel, while the caller
//! sleeps on its own terms (a condition variable with a timeout, or a task
//! woken by the waiter and by the timer).
//!
//! When the caller gives up (deadline, dropped future), the kernel wait goes
//! on: the waiter becomes an *orphan*. An orphan that gets the lock releases
//! it at once and exits; until then, the next acquirer of the same file in the
//! same mode *adopts* it instead of starting a second wait. The in-process
//! lock is always taken first, so per registry there is at most one waiter
//! (active or orphaned) per lock file and mode, plus at most one per further
//! registry naming the same file.
//!
//! Waiter threads form a small pool: a thread that finished a wait takes the
//! next one, or exits after [`WAITER_IDLE_EXIT`] idle. They are bounded by
//! [`MAX_WAITERS`] per process (busy, orphaned and idle together, see
//! [`waiter_threads`] and [`kernel_waits`]). Past the bound, or if a thread
//! cannot be started, a wait falls back to non-blocking attempts with backoff;
//! so do all waits outside Linux, where a lock belongs to the process rather
//! than to the open file the waiter thread waits on.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::fd_cache;
use crate::lock_fds::LockFile;
use crate::raw::Mode;

/// Most waiter threads (busy and idle) alive at once in a process.
pub const MAX_WAITERS: usize = 64;

/// How long an idle waiter thread stays for the next wait before it exits.
pub const WAITER_IDLE_EXIT: Duration = Duration::from_secs(1);

/// Stack of a waiter thread: it only makes one system call at a time.
const WAITER_STACK: usize = 64 * 1024;

/// Live waiter threads, busy or idle.
static THREADS: AtomicUsize = AtomicUsize::new(0);
/// Kernel waits in progress, for a caller or orphaned.
static WAITS: AtomicUsize = AtomicUsize::new(0);

/// Orphaned waits, for adoption; at most [`MAX_WAITERS`] long.
static ORPHANS: Mutex<Vec<Arc<Shared>>> = Mutex::new(Vec::new());

/// Waits handed to the waiter threads, and how many of those sleep idle.
struct Queue {
    /// Each wait with the CPU its caller last ran on (see [`near`]).
    jobs: VecDeque<(LockFile, Arc<Shared>, Option<usize>)>,
    idle: usize,
    /// The fork generation the threads counted here run in.
    generation: u64,
}

static QUEUE: Mutex<Queue> = Mutex::new(Queue {
    jobs: VecDeque::new(),
    idle: 0,
    generation: 0,
});

/// The queue, after forgetting the threads of the parent in a forked child
/// (only the forking thread lives on there).
fn lock_queue() -> MutexGuard<'static, Queue> {
    let mut queue = QUEUE.lock().unwrap_or_else(|e| e.into_inner());
    let generation = fd_cache::generation();
    if queue.generation != generation {
        queue.generation = generation;
        queue.jobs.clear();
        queue.idle = 0;
        THREADS.store(0, Ordering::Release);
        WAITS.store(0, Ordering::Release);
        ORPHANS.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
    queue
}
static JOB_READY: Condvar = Condvar::new();

/// In a forked child: forgets the parent's waits now, closing the files of
/// those still queued (see [`fd_cache::epoch`]).
pub(crate) fn forget_inherited() {
    drop(lock_queue());
}

/// The queue's and the orphans' locks, in that order, held across a fork by
/// the fork hooks (the generation is left alone: the child's first use
/// forgets the parent's waits).
pub(crate) fn hold_for_fork() -> Box<dyn std::any::Any> {
    let queue = QUEUE.lock().unwrap_or_else(|e| e.into_inner());
    let orphans = ORPHANS.lock().unwrap_or_else(|e| e.into_inner());
    Box::new((queue, orphans))
}

/// How many waiter threads are alive in this process: those blocked in the
/// kernel (for a caller or orphaned) plus idle ones, which exit after
/// [`WAITER_IDLE_EXIT`]. Never more than [`MAX_WAITERS`].
pub fn waiter_threads() -> usize {
    THREADS.load(Ordering::Acquire)
}

/// How many kernel waits on lock files are in progress in this process, for
/// a caller or orphaned (given up on, to release the lock at once if granted).
pub fn kernel_waits() -> usize {
    WAITS.load(Ordering::Acquire)
}

/// The task to wake when the kernel wait ends (threads wait on the condvar).
enum Notify {
    Nobody,
    Task(Waker),
}

enum State {
    /// Blocked in the kernel for a caller.
    Waiting(Notify),
    /// Blocked in the kernel for nobody: release at once when granted.
    Orphaned,
    /// Granted: the caller takes the file.
    Granted(LockFile),
    /// The wait failed.
    Failed(io::Error),
    /// The caller took the outcome.
    Taken,
}

/// The state one waiter thread shares with its caller.
struct Shared {
    state: Mutex<State>,
    done: Condvar,
    path: PathBuf,
    mode: Mode,
    /// The fork generation the wait was started in: a child forked since
    /// shares its file, and must not unlock it.
    generation: u64,
    /// The [`fd_cache::epoch`] its file was opened in.
    epoch: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A kernel wait in progress for one caller. Dropping it before the outcome is
/// taken orphans the wait (see the module docs).
pub(crate) struct KernelWait {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for KernelWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelWait")
            .field("path", &self.shared.path)
            .finish_non_exhaustive()
    }
}

/// What a finished kernel wait produced.
pub(crate) type Granted = io::Result<LockFile>;

impl KernelWait {
    /// Starts a kernel wait for `file` (locked by someone else right now) at
    /// `path` in `mode`, adopting an orphaned wait on the same path and mode if
    /// there is one. Gives `file` back when no waiter thread can be had.
    ///
    /// A wait is queued only when an idle thread not yet claimed by an earlier
    /// wait, or a new thread, will take it: no queued wait ever sits behind a
    /// thread still blocked in the kernel.
    pub(crate) fn start(
        file: LockFile,
        path: &Path,
        mode: Mode,
        epoch: u64,
    ) -> Result<KernelWait, LockFile> {
        // Outside Linux, locks belong to the process, not the open file: a
        // waiter thread's lock would not be its caller's alone, and an
        // orphan closing its file would release the process's lock that
        // another thread holds through another descriptor. Those waits retry.
        if !cfg!(target_os = "linux") || !fd_cache::watch_forks() {
            return Err(file);
        }
        // (In a forked child, this first forgets the parent's waits.)
        drop(lock_queue());
        if let Some(shared) = adopt(path, mode) {
            return Ok(KernelWait { shared });
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(State::Waiting(Notify::Nobody)),
            done: Condvar::new(),
            path: path.to_owned(),
            mode,
            generation: fd_cache::generation(),
            epoch,
        });
        let mut queue = lock_queue();
        if queue.idle <= queue.jobs.len() && !spawn_worker() {
            return Err(file);
        }
        WAITS.fetch_add(1, Ordering::AcqRel);
        queue.jobs.push_back((file, Arc::clone(&shared), near::caller_cpu()));
        drop(queue);
        JOB_READY.notify_one();
        Ok(KernelWait { shared })
    }

    /// In a child forked while this wait was in progress: the error that
    /// ends it. Its waiter thread is the parent's, and nobody would ever
    /// finish it here.
    fn inherited(&self) -> Option<io::Error> {
        (self.shared.generation != fd_cache::generation()).then(|| {
            io::Error::other(
                "this wait began in the parent process before a fork, and its waiter thread \
                 is the parent's: acquire the lock again in this process",
            )
        })
    }

    /// The [`fd_cache::epoch`] the file of this wait was opened in (an
    /// adopted wait's may be older than the caller's).
    pub(crate) fn epoch(&self) -> u64 {
        self.shared.epoch
    }

    /// Waits for the outcome until `deadline`, parking this thread. `None`:
    /// the deadline passed first (dropping `self` then orphans the wait).
    pub(crate) fn wait_until(&mut self, deadline: Instant) -> Option<Granted> {
        if let Some(inherited) = self.inherited() {
            return Some(Err(inherited));
        }
        let mut state = self.shared.lock();
        loop {
            if let Some(out) = take(&mut state) {
                return Some(out);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            state = self
                .shared
                .done
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Takes the outcome if there is one, else registers `waker` to be woken
    /// when there is.
    pub(crate) fn poll(&mut self, waker: &Waker) -> Option<Granted> {
        if let Some(inherited) = self.inherited() {
            return Some(Err(inherited));
        }
        let mut state = self.shared.lock();
        if let Some(out) = take(&mut state) {
            return Some(out);
        }
        let replaced = match &mut *state {
            State::Waiting(Notify::Task(w)) if w.will_wake(waker) => None,
            State::Waiting(n) => Some(std::mem::replace(n, Notify::Task(waker.clone()))),
            _ => None,
        };
        drop(state);
        // A task's waker is foreign code: dropped with no lock held.
        drop(replaced);
        None
    }
}

fn take(state: &mut State) -> Option<Granted> {
    match std::mem::replace(state, State::Taken) {
        State::Granted(f) => Some(Ok(f)),
        State::Failed(e) => Some(Err(e)),
        other => {
            *state = other;
            None
        }
    }
}

impl Drop for KernelWait {
    fn drop(&mut self) {
        // Inherited from the parent across a fork: its waiter thread is the
        // parent's, and its state lock may have been held at the fork. Left
        // alone: dropping the last reference closes the child's copy of any
        // file in it, and it is never offered for adoption here.
        if self.shared.generation != fd_cache::generation() {
            return;
        }
        // Lock order: ORPHANS, then a wait's state.
        let mut orphans = ORPHANS.lock().unwrap_or_else(|e| e.into_inner());
        let mut state = self.shared.lock();
        let was = std::mem::replace(&mut *state, State::Taken);
        if matches!(was, State::Waiting(_) | State::Orphaned) {
            *state = State::Orphaned;
        }
        if matches!(was, State::Waiting(_)) {
            orphans.push(Arc::clone(&self.shared));
        }
        drop(state);
        drop(orphans);
        // Outside the locks: releasing is a system call, and a task's waker
        // (in `was`) is foreign code. Granted but never taken: released now.
        if let State::Granted(file) = was {
            crate::file::unlock_and_close(file);
        }
    }
}

/// Takes over an orphaned wait on `path` in `mode`, if one is still blocked.
/// Never for a relative `path`: after a change of working directory it names
/// another file, and the orphan's file would still pass the link check.
fn adopt(path: &Path, mode: Mode) -> Option<Arc<Shared>> {
    if !path.is_absolute() {
        return None;
    }
    let mut orphans = ORPHANS.lock().unwrap_or_else(|e| e.into_inner());
    while let Some(i) = orphans
        .iter()
        .position(|s| s.mode == mode && s.path == path && s.generation == fd_cache::generation())
    {
        let shared = orphans.swap_remove(i);
        let mut state = shared.lock();
        if matches!(*state, State::Orphaned) {
            *state = State::Waiting(Notify::Nobody);
            drop(state);
            return Some(shared);
        }
    }
    None
}

/// Starts one more waiter thread, if the bound allows and the system can.
fn spawn_worker() -> bool {
    if THREADS.fetch_add(1, Ordering::AcqRel) >= MAX_WAITERS {
        THREADS.fetch_sub(1, Ordering::AcqRel);
        return false;
    }
    let spawned = std::thread::Builder::new()
        .name("lockutils-file-wait".into())
        .stack_size(WAITER_STACK)
        .spawn(worker);
    if spawned.is_err() {
        THREADS.fetch_sub(1, Ordering::AcqRel);
    }
    spawned.is_ok()
}

/// A waiter thread: takes waits from the queue until idle for
/// [`WAITER_IDLE_EXIT`].
fn worker() {
    // On its last caller's CPU, also while idle; see [`near`].
    let mut pin = near::Pin::default();
    let mut queue = lock_queue();
    loop {
        if let Some((file, shared, cpu)) = queue.jobs.pop_front() {
            drop(queue);
            pin.move_to(cpu);
            run(file, &shared);
            queue = lock_queue();
            continue;
        }
        queue.idle += 1;
        let (q, timeout) = JOB_READY
            .wait_timeout(queue, WAITER_IDLE_EXIT)
            .unwrap_or_else(|e| e.into_inner());
        queue = q;
        queue.idle -= 1;
        if timeout.timed_out() && queue.jobs.is_empty() {
            THREADS.fetch_sub(1, Ordering::AcqRel);
            return;
        }
    }
}

/// One kernel wait, then hand the file over (or release it at once if nobody
/// wants it any more).
fn run(file: LockFile, shared: &Arc<Shared>) {
    let got = crate::file::wait_in_kernel(&file, shared.mode);
    let mut state = shared.lock();
    match std::mem::replace(&mut *state, State::Taken) {
        State::Waiting(notify) => {
            *state = match got {
                Ok(()) => State::Granted(file),
                Err(e) => State::Failed(e),
            };
            drop(state);
            WAITS.fetch_sub(1, Ordering::AcqRel);
            shared.done.notify_all();
            if let Notify::Task(w) = notify {
                w.wake();
            }
        }
        State::Orphaned => {
            drop(state);
            // Granted to nobody (or failed): released now. (Waiter threads
            // run only in the process that started them, never in a forked
            // child.)
            crate::file::unlock_and_close(file);
            WAITS.fetch_sub(1, Ordering::AcqRel);
            ORPHANS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|s| !Arc::ptr_eq(s, shared));
        }
        State::Granted(_) | State::Failed(_) | State::Taken => {
            unreachable!("only the waiter ends a wait")
        }
    }
}

/// Where a waiter thread sleeps. The kernel wakes a thread blocked in
/// `F_OFD_SETLKW` on the CPU it slept on, and the waiter thread then wakes
/// its caller on the caller's CPU: two wake-ups, and when the two CPUs
/// differ and idle, two cross-CPU ones (about 20 µs each in a virtual
/// machine) where a blocking caller pays none when the releaser runs on its
/// CPU. So a waiter thread runs on the CPU its caller last ran on (where the
/// caller will be woken too) while it waits for that caller, and stays there
/// while idle: it moves only for a caller on another CPU. Giving a wider set
/// back after each wait would put a system call between waking the caller
/// and leaving the CPU to it.
///
/// A waiter thread thus runs where the program's threads run: a CPU set the
/// program or an operator gives the process (`taskset -a`, a cgroup) holds
/// its callers, and so its waiter threads from their next wait on; a CPU the
/// thread may not have (a cgroup's `cpuset`) leaves it where it is. Best
/// effort: a refused call changes nothing.
#[cfg(target_os = "linux")]
mod near {
    /// The CPU the calling thread runs on, if the system says.
    pub(super) fn caller_cpu() -> Option<usize> {
        // SAFETY: no arguments; returns a CPU number or -1.
        usize::try_from(unsafe { libc::sched_getcpu() }).ok()
    }

    /// The CPU a waiter thread last pinned itself to, if any.
    #[derive(Default)]
    pub(super) struct Pin {
        on: Option<usize>,
    }

    impl Pin {
        /// Runs the calling thread on `cpu` only (nothing for `None`, or
        /// when it already does).
        pub(super) fn move_to(&mut self, cpu: Option<usize>) {
            let Some(cpu) = cpu.filter(|&c| c < libc::CPU_SETSIZE as usize) else {
                return;
            };
            if self.on == Some(cpu) {
                return;
            }
            // SAFETY: an all-zero `cpu_set_t` is the empty set.
            let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
            // SAFETY: `cpu` is below `CPU_SETSIZE`.
            unsafe { libc::CPU_SET(cpu, &mut one) };
            // SAFETY: `one` is a valid `cpu_set_t` of the size passed.
            let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&one), &one) };
            if r == 0 {
                self.on = Some(cpu);
            }
        }
    }
}

/// Elsewhere waiter threads are not pinned.
#[cfg(not(target_os = "linux"))]
mod near {
    #[derive(Default)]
    pub(super) struct Pin;

    impl Pin {
        pub(super) fn move_to(&mut self, _: Option<usize>) {}
    }

    pub(super) fn caller_cpu() -> Option<usize> {
        None
    }
}
