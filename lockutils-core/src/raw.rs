//! The in-process lock: one state machine for blocking threads and async tasks.
//!
//! A [`RawRwLock`] is a reader/writer lock whose uncontended paths are a single
//! compare-and-swap, and whose contended paths go through a FIFO wait queue
//! guarded by a small mutex. Each waiter is either a parked thread or a task
//! waker, so threads and tasks wait in the same queue and exclude each other.
//!
//! Fairness is a property of the *waiter*:
//! - a **fair** waiter never barges past the queue, and a releaser hands the
//!   lock directly to it (strict FIFO hand-off);
//! - an **unfair** waiter is only *notified* when the lock frees and then races
//!   newcomers for it, which gives more throughput under contention.
//!
//! Readers queue behind a waiting writer, so writers are never starved.
//!
//! **Contention costs no system call it need not** (as in parking_lot and
//! std's futex mutex): parking and waking a thread are two futex calls, far
//! longer than a short critical section.
//! - A contended unfair thread spins for a moment ([`Backoff`]: a few
//!   checks a `spin_loop` hint apart) while the lock is held and nobody is
//!   queued, and only then queues and parks.
//! - A notified waiter leaves the queue when it is notified, so once it holds
//!   the lock a release with nobody else queued stays on the fast path. If a
//!   newcomer beat it to the lock, it lines up again at the head.
//! - A fair thread spins the same moment, but takes the lock only while
//!   nobody is queued; then it lines up and spins on its place in line before
//!   parking. A release hands the lock to the head of the queue whether it
//!   spins or sleeps (strict FIFO among all queued waiters, which is stronger
//!   than parking_lot's FIFO among parked ones), and one that is still
//!   spinning takes it with no wake-up: a thread marks itself `PARKED` before
//!   it parks, and a release unparks only such a thread. The waiter first in
//!   line spins ten times longer than the others, since it is the one served
//!   next. Two fair threads passing a free lock back and forth thus often do
//!   it with no queue at all.
//! - Tasks never spin: a poll that cannot enter returns `Pending` at once.
//! - A release that notifies only tasks also notifies the first unfair thread
//!   behind them: a task may not be polled for a long while (or ever, if its
//!   future was forgotten), and the threads behind it would sleep by a free
//!   lock.
//!
//! **No waker runs under a lock.** A task's waker is foreign code: waking it
//! may drop the task, whose drop cancels its queue entry and so takes the
//! queue mutex again. Every change of the queue therefore collects the waiters
//! to wake in [`Wakeups`], releases the queue mutex, and only then wakes them
//! (as tokio and event-listener do); a replaced waker is dropped after its
//! waiter's waker mutex is released, too.

use std::collections::VecDeque;
use std::task::Waker;
use std::time::Instant;

use crate::sync::{self, Arc, AtomicU8, AtomicUsize, Mutex, MutexGuard, Ordering, Thread};

/// How a lock is held: shared by many readers or by one writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// Exclusive: one holder at a time (a plain lock, or a writer).
    #[default]
    Exclusive,
    /// Shared: any number of holders at once, excluding every exclusive holder.
    Shared,
}

impl Mode {
    /// The word used in logs and listings: `exclusive` or `shared`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Exclusive => "exclusive",
            Mode::Shared => "shared",
        }
    }
}

const WRITER: usize = 1;
const QUEUED: usize = 2;
const READER: usize = 4;
const READERS_MASK: usize = !(WRITER | QUEUED);

const WAITING: u8 = 0;
const GRANTED: u8 = 1;
const NOTIFIED: u8 = 2;
/// A queued thread that has stopped spinning and parks (or is about to):
/// the only state in which a release must unpark it. A spinning thread sees
/// its new status without a wake-up.
const PARKED: u8 = 3;

/// Whether a holder in `mode` can enter given state `s` (ignoring the queue).
#[inline]
fn available(mode: Mode, s: usize) -> bool {
    match mode {
        Mode::Exclusive => s & (WRITER | READERS_MASK) == 0,
        Mode::Shared => s & WRITER == 0,
    }
}

#[inline]
fn entered(mode: Mode, s: usize) -> usize {
    match mode {
        Mode::Exclusive => s | WRITER,
        Mode::Shared => s + READER,
    }
}

/// How a queued waiter is woken.
enum Wake {
    Thread(Thread),
    Task(Mutex<Option<Waker>>),
}

/// One queued acquisition.
pub(crate) struct Waiter {
    mode: Mode,
    fair: bool,
    /// Lined up first (nobody queued ahead): the next one served, so it
    /// spins longer on its place before parking.
    head: bool,
    status: AtomicU8,
    wake: Wake,
}

impl Waiter {
    /// Wakes the thread or task. Never called with an engine lock held (see
    /// the module docs): the waker is taken out under its mutex, then woken.
    fn wake(&self) {
        match &self.wake {
            Wake::Thread(t) => t.unpark(),
            Wake::Task(slot) => {
                let waker = slot.lock().take();
                if let Some(w) = waker {
                    w.wake();
                }
            }
        }
    }
}

/// Waiters to wake once the queue mutex is released, most often one. Holding
/// a reference keeps each waiter alive until it has been woken, and the last
/// reference to a waiter (and so its waker) is never dropped under the mutex.
#[must_use = "waiters must be woken after the queue is unlocked"]
/// Each with whether it needs waking: a thread that was still spinning on
/// its status (not [`PARKED`]) sees it change by itself.
#[derive(Default)]
pub(crate) struct Wakeups {
    first: Option<(Arc<Waiter>, bool)>,
    rest: Vec<(Arc<Waiter>, bool)>,
}

impl Wakeups {
    /// Sets a dequeued waiter's new status and keeps it for waking.
    fn push(&mut self, w: Arc<Waiter>, status: u8) {
        let was = w.status.swap(status, Ordering::AcqRel);
        let wake = was == PARKED || matches!(w.wake, Wake::Task(_));
        match self.first {
            None => self.first = Some((w, wake)),
            Some(_) => self.rest.push((w, wake)),
        }
    }

    /// Wakes everyone collected who needs it. Call with no engine lock held.
    fn wake_all(self) {
        for (w, wake) in self.first.into_iter().chain(self.rest) {
            if wake {
                w.wake();
            }
        }
    }
}

/// A bounded spin: a contended thread checks again a few times before it
/// parks, because a short critical section ends sooner than a park and a
/// wake-up take (two futex calls). See [`sync::SPIN_FOR_LOCK`] and
/// [`sync::SPIN_IN_LINE`].
struct Backoff {
    left: u32,
}

impl Backoff {
    fn new(checks: u32) -> Self {
        Backoff { left: checks }
    }

    /// No spinning at all: for tasks, which must not hold up their executor.
    fn spent() -> Self {
        Backoff { left: 0 }
    }

    /// Backs off once. `false` once the budget is spent: time to park.
    fn snooze(&mut self) -> bool {
        if self.left == 0 {
            return false;
        }
        sync::back_off();
        self.left -= 1;
        true
    }
}

/// A reader/writer lock shared by threads and tasks. See the module docs.
pub(crate) struct RawRwLock {
    state: AtomicUsize,
    queue: Mutex<VecDeque<Arc<Waiter>>>,
}

type Queue<'a> = MutexGuard<'a, VecDeque<Arc<Waiter>>>;

/// The outcome of polling a queued acquisition.
pub(crate) enum Poll {
    /// The lock is now held by this waiter.
    Acquired,
    /// Still waiting.
    Waiting,
}

impl RawRwLock {
    const_unless_loom! {
        pub(crate) fn new() -> Self {
            RawRwLock {
                state: AtomicUsize::new(0),
                queue: Mutex::new(VecDeque::new()),
            }
        }
    }

    /// Takes the lock if that needs no waiting. A fair attempt never barges
    /// past queued waiters; an unfair exclusive one may.
    #[inline]
    pub(crate) fn try_lock(&self, mode: Mode, fair: bool) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            let queued_blocks = s & QUEUED != 0 && (fair || mode == Mode::Shared);
            if !available(mode, s) || queued_blocks {
                return false;
            }
            match self.state.compare_exchange_weak(
                s,
                entered(mode, s),
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
    }

    /// Releases one hold in `mode`.
    ///
    /// # Safety
    /// The caller must hold the lock in `mode` (from a successful acquisition
    /// that has not been released yet).
    #[inline]
    pub(crate) unsafe fn unlock(&self, mode: Mode) {
        let fast = match mode {
            Mode::Exclusive => self
                .state
                .compare_exchange(WRITER, 0, Ordering::Release, Ordering::Relaxed)
                .is_ok(),
            Mode::Shared => {
                let mut s = self.state.load(Ordering::Relaxed);
                loop {
                    if s & QUEUED != 0 {
                        break false;
                    }
                    match self.state.compare_exchange_weak(
                        s,
                        s - READER,
                        Ordering::Release,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => break true,
                        Err(now) => s = now,
                    }
                }
            }
        };
        if !fast {
            self.unlock_slow(mode);
        }
    }

    /// Releases an exclusive hold if nobody is queued, and says whether it
    /// did; otherwise leaves it held (release it with [`unlock`](Self::unlock)).
    /// On success this is the hold's last touch of the lock.
    #[inline]
    pub(crate) fn try_unlock_exclusive(&self) -> bool {
        self.state
            .compare_exchange(WRITER, 0, Ordering::Release, Ordering::Relaxed)
            .is_ok()
    }

    /// Whether anyone holds the lock or is queued for it. Acquire: a holder
    /// that counted itself elsewhere before releasing shows there too.
    #[inline]
    pub(crate) fn is_busy(&self) -> bool {
        self.state.load(Ordering::Acquire) != 0
    }

    #[cold]
    fn unlock_slow(&self, mode: Mode) {
        let mut queue = self.queue.lock();
        match mode {
            Mode::Exclusive => self.state.fetch_and(!WRITER, Ordering::Release),
            Mode::Shared => self.state.fetch_sub(READER, Ordering::Release),
        };
        let wakeups = self.dispatch(&mut queue);
        drop(queue);
        wakeups.wake_all();
    }

    /// Whether anyone holds the lock or waits for it.
    #[cfg(test)]
    pub(crate) fn is_idle(&self) -> bool {
        self.state.load(Ordering::Acquire) == 0
    }

    /// Takes the lock as it frees, waiting with `backoff` only while it is
    /// held and nobody is queued: a queued waiter means the holders stay long
    /// or the lock is oversubscribed, and spinning then only burns a core
    /// (parking_lot's rule). A `notified` waiter was already in line, so it
    /// may enter past the queue; a fair or shared newcomer may not.
    fn spin_acquire(&self, mode: Mode, fair: bool, notified: bool, mut backoff: Backoff) -> bool {
        // Who may enter past a queue: a waiter already in line, or an unfair
        // writer (which barges by design). A fair or shared newcomer may not.
        let passes_queue = notified || (mode == Mode::Exclusive && !fair);
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            let queued = s & QUEUED != 0;
            if available(mode, s) && (passes_queue || !queued) {
                match self.state.compare_exchange_weak(
                    s,
                    entered(mode, s),
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return true,
                    Err(now) => {
                        s = now;
                        continue;
                    }
                }
            }
            if queued || !backoff.snooze() {
                return false;
            }
            s = self.state.load(Ordering::Relaxed);
        }
    }

    /// Joins the queue, unless the lock can be taken at once (then `None`).
    /// A thread first spins a little for the lock (see
    /// [`Self::spin_acquire`]; a fair one only while nobody is queued), then
    /// lines up; a fair one then spins on its place (see
    /// [`Self::wait_thread`]).
    #[cold]
    pub(crate) fn enqueue(&self, mode: Mode, fair: bool, task: bool) -> Option<Arc<Waiter>> {
        if !task && self.spin_lock(mode, fair) {
            return None;
        }
        self.enqueue_now(mode, fair, task)
    }

    /// The moment of spinning [`enqueue`](Self::enqueue) starts with, on
    /// its own: `true` if it took the lock. For a caller with work to skip
    /// when the spin succeeds (reading the clock, logging a wait).
    #[inline]
    pub(crate) fn spin_lock(&self, mode: Mode, fair: bool) -> bool {
        self.spin_acquire(mode, fair, false, Backoff::new(sync::SPIN_FOR_LOCK))
    }

    /// [`enqueue`](Self::enqueue) without its spin, for a thread that has
    /// just spun ([`spin_lock`](Self::spin_lock)) or a task.
    #[cold]
    pub(crate) fn enqueue_now(&self, mode: Mode, fair: bool, task: bool) -> Option<Arc<Waiter>> {
        let mut queue = self.queue.lock();
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            let queued_blocks = s & QUEUED != 0 && (fair || mode == Mode::Shared);
            let enter_now = available(mode, s) && !queued_blocks;
            let next = if enter_now {
                entered(mode, s)
            } else {
                s | QUEUED
            };
            match self
                .state
                .compare_exchange_weak(s, next, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) if enter_now => return None,
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
        let waiter = Arc::new(Waiter {
            mode,
            fair,
            head: queue.is_empty(),
            status: AtomicU8::new(WAITING),
            wake: if task {
                Wake::Task(Mutex::new(None))
            } else {
                Wake::Thread(sync::current())
            },
        });
        queue.push_back(Arc::clone(&waiter));
        Some(waiter)
    }

    /// Checks a queued waiter: granted, or notified and now able to enter.
    pub(crate) fn poll_waiter(&self, waiter: &Arc<Waiter>) -> Poll {
        self.poll(waiter, Backoff::spent())
    }

    fn poll(&self, waiter: &Arc<Waiter>, backoff: Backoff) -> Poll {
        // Only a dispatcher changes a queued waiter's status (under the queue
        // mutex); once notified or granted, the waiter is out of the queue
        // and its status is its owner's alone.
        match waiter.status.load(Ordering::Acquire) {
            GRANTED => Poll::Acquired,
            NOTIFIED => self.retry_notified(waiter, backoff),
            _ => Poll::Waiting,
        }
    }

    /// A notified waiter left the queue when it was notified, so a release
    /// with nobody else queued stays on the fast path. It races newcomers for
    /// the lock and, if it loses, lines up again at the head: it keeps its
    /// seniority, and is the next one notified.
    #[cold]
    fn retry_notified(&self, waiter: &Arc<Waiter>, backoff: Backoff) -> Poll {
        if self.spin_acquire(waiter.mode, waiter.fair, true, backoff) {
            return Poll::Acquired;
        }
        let mut queue = self.queue.lock();
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            let enter_now = available(waiter.mode, s);
            let next = if enter_now {
                entered(waiter.mode, s)
            } else {
                s | QUEUED
            };
            match self
                .state
                .compare_exchange_weak(s, next, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) if enter_now => return Poll::Acquired,
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
        waiter.status.store(WAITING, Ordering::Relaxed);
        queue.push_front(Arc::clone(waiter));
        Poll::Waiting
    }

    /// Stores the task waker to be woken when the waiter's status changes.
    /// Returns the status check after storing, so no wake-up is lost.
    pub(crate) fn register_waker(&self, waiter: &Arc<Waiter>, waker: &Waker) -> Poll {
        if let Wake::Task(slot) = &waiter.wake {
            let mut slot = slot.lock();
            let replaced = match &*slot {
                Some(w) if w.will_wake(waker) => None,
                _ => slot.replace(waker.clone()),
            };
            drop(slot);
            // Foreign code: dropped with no lock held.
            drop(replaced);
        }
        self.poll_waiter(waiter)
    }

    /// Blocks the current thread until the waiter enters or `deadline` passes.
    /// Returns `true` if the lock was acquired.
    ///
    /// A fair waiter spins on its place in line for a moment before parking:
    /// a release hands the lock to the head of the queue whether it spins or
    /// sleeps (strict FIFO), and one that still spins takes it without a
    /// wake-up. A notified waiter spins for the lock itself
    /// ([`Self::retry_notified`]).
    pub(crate) fn wait_thread(&self, waiter: &Arc<Waiter>, deadline: Option<Instant>) -> bool {
        let mut on_status = match (waiter.fair, waiter.head) {
            (false, _) => Backoff::spent(),
            (true, false) => Backoff::new(sync::SPIN_IN_LINE),
            (true, true) => Backoff::new(sync::SPIN_AT_HEAD),
        };
        loop {
            if let Poll::Acquired = self.poll(waiter, Backoff::new(sync::SPIN_FOR_LOCK)) {
                return true;
            }
            if on_status.snooze() {
                continue;
            }
            // Says it sleeps, so that a release unparks it; a status that
            // changed meanwhile is polled again instead.
            match waiter.status.compare_exchange(
                WAITING,
                PARKED,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) | Err(PARKED) => {}
                Err(_) => continue,
            }
            match deadline {
                None => sync::park(),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return self.cancel(waiter);
                    }
                    sync::park_timeout(d - now);
                }
            }
        }
    }

    /// Gives up a queued acquisition. Returns `true` if the lock had already
    /// been handed to this waiter, in which case the caller now holds it.
    #[cold]
    pub(crate) fn cancel(&self, waiter: &Arc<Waiter>) -> bool {
        let mut queue = self.queue.lock();
        if waiter.status.load(Ordering::Acquire) == GRANTED {
            return true;
        }
        let removed = self.remove(&mut queue, waiter);
        // A notification or a blocked position may have been owed to others.
        let wakeups = self.dispatch(&mut queue);
        drop(queue);
        drop(removed);
        wakeups.wake_all();
        false
    }

    /// Gives up a queued acquisition whose owner is going away: a lock already
    /// handed over is released again.
    pub(crate) fn abandon(&self, waiter: &Arc<Waiter>) {
        if self.cancel(waiter) {
            // SAFETY: `cancel` returned true, so the lock was granted to this
            // waiter in its mode and nobody else will release that hold.
            unsafe { self.unlock(waiter.mode) };
        }
    }

    /// Takes `waiter` out of the queue. The queue's reference is returned, to
    /// be dropped after the queue is unlocked.
    #[must_use]
    fn remove(&self, queue: &mut Queue<'_>, waiter: &Arc<Waiter>) -> Option<Arc<Waiter>> {
        let removed = queue
            .iter()
            .position(|w| Arc::ptr_eq(w, waiter))
            .and_then(|i| queue.remove(i));
        if queue.is_empty() {
            self.state.fetch_and(!QUEUED, Ordering::Relaxed);
        }
        removed
    }

    /// Hands the lock to, or notifies, the waiters at the head of the queue
    /// that can enter now, taking them out of the queue. Called with the
    /// queue locked after any change; the caller wakes the returned waiters
    /// once it has unlocked the queue.
    fn dispatch(&self, queue: &mut Queue<'_>) -> Wakeups {
        let mut wakeups = Wakeups::default();
        let mut notified_any = false;
        // Whether every waiter notified so far is a task (see below).
        let mut tasks_only = true;
        while let Some(w) = queue.front() {
            if notified_any && w.mode == Mode::Exclusive {
                break;
            }
            if w.fair {
                // Strict FIFO hand-off: enter on the waiter's behalf.
                let mut s = self.state.load(Ordering::Relaxed);
                let granted = loop {
                    if !available(w.mode, s) {
                        break false;
                    }
                    match self.state.compare_exchange_weak(
                        s,
                        entered(w.mode, s),
                        Ordering::Acquire,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => break true,
                        Err(now) => s = now,
                    }
                };
                if !granted {
                    break;
                }
                let w = queue.pop_front().expect("head present");
                let exclusive = w.mode == Mode::Exclusive;
                wakeups.push(w, GRANTED);
                if exclusive {
                    break;
                }
            } else {
                if !available(w.mode, self.state.load(Ordering::Relaxed)) {
                    break;
                }
                let w = queue.pop_front().expect("head present");
                let exclusive = w.mode == Mode::Exclusive;
                tasks_only &= matches!(w.wake, Wake::Task(_));
                wakeups.push(w, NOTIFIED);
                notified_any = true;
                if exclusive {
                    break;
                }
            }
        }
        // A notified task may not be polled for a while (a busy executor, a
        // future kept but not polled, a forgotten one), and the lock stays
        // free meanwhile while the waiters behind it sleep. A thread is
        // always scheduled in the end: the first unfair thread behind the
        // unfair tasks at the head is notified too, and races them; the
        // loser lines up again at the head. (Fair waiters are handed the
        // lock, and wait their turn.)
        // A reader is never notified past a queued writer (readers queue
        // behind a waiting writer).
        if notified_any && tasks_only {
            let thread = queue
                .iter()
                .position(|w| w.fair || matches!(w.wake, Wake::Thread(_)))
                .filter(|&i| {
                    let w = &queue[i];
                    let past_a_writer = w.mode == Mode::Shared
                        && queue.iter().take(i).any(|t| t.mode == Mode::Exclusive);
                    !w.fair
                        && !past_a_writer
                        && available(w.mode, self.state.load(Ordering::Relaxed))
                });
            if let Some(i) = thread {
                let w = queue.remove(i).expect("position in the queue");
                wakeups.push(w, NOTIFIED);
            }
        }
        if queue.is_empty() {
            self.state.fetch_and(!QUEUED, Ordering::Relaxed);
        }
        wakeups
    }
}

impl std::fmt::Debug for RawRwLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.state.load(Ordering::Relaxed);
        f.debug_struct("RawRwLock")
            .field("writer", &(s & WRITER != 0))
            .field("readers", &((s & READERS_MASK) / READER))
            .field("queued", &(s & QUEUED != 0))
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    fn lock_blocking(l: &RawRwLock, mode: Mode, fair: bool) {
        if l.try_lock(mode, fair) {
            return;
        }
        if let Some(w) = l.enqueue(mode, fair, false) {
            assert!(l.wait_thread(&w, None));
        }
    }

    #[test]
    fn exclusive_excludes_and_shared_shares() {
        let l = RawRwLock::new();
        assert!(l.try_lock(Mode::Shared, false));
        assert!(l.try_lock(Mode::Shared, true));
        assert!(!l.try_lock(Mode::Exclusive, false));
        unsafe { l.unlock(Mode::Shared) };
        unsafe { l.unlock(Mode::Shared) };
        assert!(l.is_idle());
        assert!(l.try_lock(Mode::Exclusive, true));
        assert!(!l.try_lock(Mode::Shared, false));
        assert!(!l.try_lock(Mode::Exclusive, false));
        unsafe { l.unlock(Mode::Exclusive) };
        assert!(l.is_idle());
    }

    #[test]
    fn a_spinning_newcomer_passes_the_queue_only_if_unfair_and_exclusive() {
        // Free, with someone in line: the state a release can leave for a
        // moment before the queued waiter takes the lock.
        let l = RawRwLock::new();
        let spin = || Backoff::new(1);
        l.state.store(QUEUED, Ordering::Relaxed);
        assert!(!l.spin_acquire(Mode::Exclusive, true, false, spin()));
        assert!(!l.spin_acquire(Mode::Shared, true, false, spin()));
        assert!(!l.spin_acquire(Mode::Shared, false, false, spin()));
        assert_eq!(l.state.load(Ordering::Relaxed), QUEUED, "nobody entered");
        assert!(l.spin_acquire(Mode::Exclusive, false, false, spin()));
        assert_eq!(l.state.load(Ordering::Relaxed), QUEUED | WRITER);
        // A waiter that was notified out of the line may enter past it.
        l.state.store(QUEUED, Ordering::Relaxed);
        assert!(l.spin_acquire(Mode::Exclusive, true, true, spin()));
        // With nobody in line, a fair newcomer takes a free lock.
        l.state.store(0, Ordering::Relaxed);
        assert!(l.spin_acquire(Mode::Exclusive, true, false, spin()));
    }

    #[test]
    fn fair_waiters_are_served_in_arrival_order() {
        let l = Arc::new(RawRwLock::new());
        assert!(l.try_lock(Mode::Exclusive, true));
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut handles = Vec::new();
        for i in 0..6 {
            let (l2, order) = (Arc::clone(&l), Arc::clone(&order));
            handles.push(std::thread::spawn(move || {
                let w = l2
                    .enqueue(Mode::Exclusive, true, false)
                    .expect("must queue");
                assert!(l2.wait_thread(&w, None));
                order.lock().push(i);
                unsafe { l2.unlock(Mode::Exclusive) };
            }));
            // Wait until thread i is queued before starting the next one.
            while l.queue.lock().len() < i + 1 {
                std::thread::yield_now();
            }
        }
        unsafe { l.unlock(Mode::Exclusive) };
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(*order.lock(), vec![0, 1, 2, 3, 4, 5]);
        assert!(l.is_idle());
    }

    #[test]
    fn queued_writer_blocks_new_readers() {
        let l = Arc::new(RawRwLock::new());
        assert!(l.try_lock(Mode::Shared, false));
        let l2 = Arc::clone(&l);
        let writer = std::thread::spawn(move || {
            lock_blocking(&l2, Mode::Exclusive, false);
            unsafe { l2.unlock(Mode::Exclusive) };
        });
        while l.queue.lock().is_empty() {
            std::thread::yield_now();
        }
        assert!(
            !l.try_lock(Mode::Shared, false),
            "reader must queue behind writer"
        );
        unsafe { l.unlock(Mode::Shared) };
        writer.join().unwrap();
        assert!(l.is_idle());
    }

    #[test]
    fn timed_wait_gives_up_and_leaves_no_waiter() {
        let l = RawRwLock::new();
        assert!(l.try_lock(Mode::Exclusive, false));
        let w = l.enqueue(Mode::Exclusive, true, false).unwrap();
        let got = l.wait_thread(&w, Some(Instant::now() + Duration::from_millis(20)));
        assert!(!got);
        assert!(l.queue.lock().is_empty());
        unsafe { l.unlock(Mode::Exclusive) };
        assert!(l.is_idle());
    }

    #[test]
    fn abandoning_a_granted_waiter_passes_the_lock_on() {
        let l = RawRwLock::new();
        assert!(l.try_lock(Mode::Exclusive, true));
        let w1 = l.enqueue(Mode::Exclusive, true, true).unwrap();
        let w2 = l.enqueue(Mode::Exclusive, true, true).unwrap();
        unsafe { l.unlock(Mode::Exclusive) };
        assert!(matches!(l.poll_waiter(&w1), Poll::Acquired));
        // w1's owner goes away after it was granted; w2 must get it.
        unsafe { l.unlock(Mode::Exclusive) };
        assert!(matches!(l.poll_waiter(&w2), Poll::Acquired));
        unsafe { l.unlock(Mode::Exclusive) };
        assert!(l.is_idle());
        let _ = w1;
    }

    #[test]
    fn abandoned_notified_waiter_passes_notification_on() {
        let l = RawRwLock::new();
        assert!(l.try_lock(Mode::Exclusive, false));
        let w1 = l.enqueue(Mode::Exclusive, false, true).unwrap();
        let w2 = l.enqueue(Mode::Exclusive, false, true).unwrap();
        unsafe { l.unlock(Mode::Exclusive) };
        // w1 is notified but never polls again.
        l.abandon(&w1);
        assert!(matches!(l.poll_waiter(&w2), Poll::Acquired));
        unsafe { l.unlock(Mode::Exclusive) };
        assert!(l.is_idle());
    }

    #[test]
    fn notified_waiter_leaves_the_queue_so_the_next_release_is_fast() {
        let l = RawRwLock::new();
        assert!(l.try_lock(Mode::Exclusive, false));
        let w = l.enqueue(Mode::Exclusive, false, true).unwrap();
        unsafe { l.unlock(Mode::Exclusive) };
        assert!(
            l.queue.lock().is_empty(),
            "a notified waiter left the queue"
        );
        assert!(matches!(l.poll_waiter(&w), Poll::Acquired));
        assert_eq!(
            l.state.load(Ordering::Relaxed),
            WRITER,
            "nothing queued: the release takes the fast path"
        );
        unsafe { l.unlock(Mode::Exclusive) };
        assert!(l.is_idle());
    }

    #[test]
    fn notified_waiter_beaten_by_a_newcomer_lines_up_first_again() {
        let l = RawRwLock::new();
        assert!(l.try_lock(Mode::Exclusive, false));
        let w1 = l.enqueue(Mode::Exclusive, false, true).unwrap();
        let w2 = l.enqueue(Mode::Exclusive, false, true).unwrap();
        unsafe { l.unlock(Mode::Exclusive) };
        assert!(l.try_lock(Mode::Exclusive, false), "a newcomer barges in");
        assert!(matches!(l.poll_waiter(&w1), Poll::Waiting));
        assert!(Arc::ptr_eq(&l.queue.lock()[0], &w1), "w1 keeps its place");
        unsafe { l.unlock(Mode::Exclusive) };
        assert!(matches!(l.poll_waiter(&w2), Poll::Waiting));
        assert!(matches!(l.poll_waiter(&w1), Poll::Acquired));
        unsafe { l.unlock(Mode::Exclusive) };
        assert!(matches!(l.poll_waiter(&w2), Poll::Acquired));
        unsafe { l.unlock(Mode::Exclusive) };
        assert!(l.is_idle());
    }

    #[test]
    fn stress_mixed_modes_never_overlap() {
        let l = Arc::new(RawRwLock::new());
        let writers = Arc::new(AtomicUsize::new(0));
        let readers = Arc::new(AtomicUsize::new(0));
        let bad = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let (l, writers, readers, bad) = (
                    Arc::clone(&l),
                    Arc::clone(&writers),
                    Arc::clone(&readers),
                    Arc::clone(&bad),
                );
                std::thread::spawn(move || {
                    for i in 0..3000 {
                        let mode = if (i + t) % 3 == 0 {
                            Mode::Exclusive
                        } else {
                            Mode::Shared
                        };
                        let fair = (i / 7 + t) % 2 == 0;
                        lock_blocking(&l, mode, fair);
                        match mode {
                            Mode::Exclusive => {
                                if writers.fetch_add(1, Ordering::SeqCst) != 0
                                    || readers.load(Ordering::SeqCst) != 0
                                {
                                    bad.store(true, Ordering::SeqCst);
                                }
                                std::hint::spin_loop();
                                writers.fetch_sub(1, Ordering::SeqCst);
                            }
                            Mode::Shared => {
                                readers.fetch_add(1, Ordering::SeqCst);
                                if writers.load(Ordering::SeqCst) != 0 {
                                    bad.store(true, Ordering::SeqCst);
                                }
                                readers.fetch_sub(1, Ordering::SeqCst);
                            }
                        }
                        unsafe { l.unlock(mode) };
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert!(
            !bad.load(Ordering::SeqCst),
            "a writer overlapped another holder"
        );
        assert!(l.is_idle());
    }
}
