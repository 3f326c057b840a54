//! A minimal runtime-independent timer: async deadlines and deferred work.
//!
//! Async acquisitions with a timeout must wake up when the deadline passes even
//! if nobody releases the lock, and the registry collects idle names a moment
//! after they go idle. To keep the in-process locks free of any one async
//! runtime, one helper thread (started on first use) sleeps until the earliest
//! registered deadline and then wakes the task or runs the job.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, LazyLock, Mutex, OnceLock};
use std::task::Waker;
use std::time::Instant;

use crate::fd_cache;

/// What to do when a deadline passes.
enum Action {
    Wake(Waker),
    #[cfg_attr(loom, allow(dead_code))]
    Run(Box<dyn FnOnce() + Send>),
}

impl Action {
    fn fire(self) {
        match self {
            Action::Wake(w) => w.wake(),
            Action::Run(job) => {
                // A fork waits for the job: it may hold internal locks.
                let _job = crate::fork_hooks::job();
                job()
            }
        }
    }
}

struct Timers {
    due: Mutex<BTreeMap<(Instant, u64), Action>>,
    changed: Condvar,
    next_id: AtomicU64,
    /// The fork generation (see [`fd_cache::generation`]) the timer thread
    /// runs in: a child forked without `exec` has none of its parent's
    /// threads, and starts its own on first use.
    thread_generation: AtomicU64,
}

static TIMERS: LazyLock<&'static Timers> = LazyLock::new(|| {
    // Registered first, so that a child forked from now on sees another
    // generation and starts a timer thread of its own.
    fd_cache::watch_forks();
    let timers: &'static Timers = Box::leak(Box::new(Timers {
        due: Mutex::new(BTreeMap::new()),
        changed: Condvar::new(),
        next_id: AtomicU64::new(0),
        thread_generation: AtomicU64::new(fd_cache::generation()),
    }));
    let _ = STARTED.set(timers);
    start_thread(timers);
    timers
});

/// The timers once [`TIMERS`] made them, for the fork hooks, which must not
/// make them (nor start a thread) themselves.
static STARTED: OnceLock<&'static Timers> = OnceLock::new();

/// The timer queue's lock, if there are timers, held across a fork by the
/// fork hooks.
pub(crate) fn hold_for_fork() -> Box<dyn std::any::Any> {
    match STARTED.get() {
        Some(timers) => Box::new(timers.due.lock().unwrap_or_else(|e| e.into_inner())),
        None => Box::new(()),
    }
}

fn start_thread(timers: &'static Timers) {
    std::thread::Builder::new()
        .name("lockutils-timer".into())
        .spawn(move || run(timers))
        .expect("cannot start the lockutils timer thread");
}

/// The timers, with a thread running them in this process.
fn timers() -> &'static Timers {
    let timers = *TIMERS;
    let generation = fd_cache::generation();
    let running = timers.thread_generation.load(Ordering::Acquire);
    if running != generation
        && timers
            .thread_generation
            .compare_exchange(running, generation, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    {
        // A forked child: the parent's timer thread does not exist here, and
        // the entries are the parent's: jobs that may block on locks the
        // parent's threads held at the fork, wakers of the parent's tasks.
        // Forgotten, neither run nor dropped (a waker's drop is foreign
        // code); the child's own users schedule their own.
        let mut due = timers.due.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::forget(std::mem::take(&mut *due));
        drop(due);
        start_thread(timers);
    }
    timers
}

fn run(timers: &'static Timers) {
    let mut due = timers.due.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let now = Instant::now();
        while let Some(entry) = due.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let action = entry.remove();
            // Jobs may take locks of their own: never run them under `due`.
            drop(due);
            action.fire();
            due = timers.due.lock().unwrap_or_else(|e| e.into_inner());
        }
        due = match due.keys().next().map(|k| k.0) {
            Some(at) => {
                timers
                    .changed
                    .wait_timeout(due, at.saturating_duration_since(now))
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
            None => timers.changed.wait(due).unwrap_or_else(|e| e.into_inner()),
        };
    }
}

/// A registered wake-up; dropping it unregisters it.
#[derive(Debug)]
pub(crate) struct Sleep {
    key: (Instant, u64),
}

fn schedule(at: Instant, action: Action) -> (Instant, u64) {
    let timers = timers();
    let key = (at, timers.next_id.fetch_add(1, Ordering::Relaxed));
    let mut due = timers.due.lock().unwrap_or_else(|e| e.into_inner());
    let earliest = due.keys().next().is_none_or(|k| key < *k);
    due.insert(key, action);
    drop(due);
    if earliest {
        timers.changed.notify_one();
    }
    key
}

/// Runs `job` on the timer thread at `at`. Jobs must be short.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) fn run_at(at: Instant, job: impl FnOnce() + Send + 'static) {
    schedule(at, Action::Run(Box::new(job)));
}

impl Sleep {
    /// Wakes `waker` at `at` unless dropped first.
    pub(crate) fn new(at: Instant, waker: &Waker) -> Sleep {
        Sleep {
            key: schedule(at, Action::Wake(waker.clone())),
        }
    }

    /// Replaces the waker to wake (tasks may move between wakers).
    ///
    /// Wakers are cloned and dropped outside `due`: the last reference to a
    /// task can drop its future, whose own `Sleep` then locks `due` again
    /// on this thread.
    pub(crate) fn update(&self, waker: &Waker) {
        let due = TIMERS.due.lock().unwrap_or_else(|e| e.into_inner());
        match due.get(&self.key) {
            Some(Action::Wake(w)) if !w.will_wake(waker) => {}
            _ => return,
        }
        drop(due);
        let new = waker.clone();
        let mut due = TIMERS.due.lock().unwrap_or_else(|e| e.into_inner());
        let old = match due.get_mut(&self.key) {
            Some(Action::Wake(w)) => Some(std::mem::replace(w, new)),
            // Fired or removed meanwhile: nothing to replace.
            _ => None,
        };
        drop(due);
        drop(old);
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        let mut due = TIMERS.due.lock().unwrap_or_else(|e| e.into_inner());
        let removed = due.remove(&self.key);
        // Its waker may be the last reference to a task (see `update`).
        drop(due);
        drop(removed);
    }
}
