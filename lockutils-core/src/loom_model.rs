//! loom models of the raw lock's state machine: every interleaving (up to
//! the preemption bound) of hand-off, notification, cancellation and waking.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p
//! lockutils-core --lib --release --target-dir target/loom loom_model`
//! (scripts/ci-engine.sh does).

use std::sync::Arc as StdArc;
use std::task::{Wake, Waker};

use loom::cell::UnsafeCell;
use loom::sync::atomic::AtomicUsize;
use loom::thread;

use crate::raw::{Mode, Poll, RawRwLock, Waiter};
use crate::sync::{Arc, Mutex, Ordering};

/// A lock plus a cell only a holder may touch: loom reports any access that
/// is not ordered by the lock as a data race.
struct Guarded {
    lock: RawRwLock,
    cell: UnsafeCell<usize>,
}

// SAFETY: the cell is only touched by holders of the lock, in their mode;
// proving that is what these models are for.
unsafe impl Sync for Guarded {}

impl Guarded {
    fn new() -> Arc<Self> {
        Arc::new(Guarded {
            lock: RawRwLock::new(),
            cell: UnsafeCell::new(0),
        })
    }

    /// Blocks the thread until held, as `LockOptions::lock` does.
    fn lock_thread(&self, mode: Mode, fair: bool) {
        if self.lock.try_lock(mode, fair) {
            return;
        }
        if let Some(w) = self.lock.enqueue(mode, fair, false) {
            assert!(self.lock.wait_thread(&w, None));
        }
    }

    /// Touches the cell as the mode allows, then releases.
    fn critical(&self, mode: Mode) {
        match mode {
            Mode::Exclusive => self.cell.with_mut(|c| unsafe { *c += 1 }),
            Mode::Shared => {
                let _ = self.cell.with(|c| unsafe { std::ptr::read(c) });
            }
        }
        // SAFETY: the caller holds the lock in `mode`.
        unsafe { self.lock.unlock(mode) };
    }

    fn count(&self) -> usize {
        self.cell.with(|c| unsafe { *c })
    }

    fn assert_idle(&self) {
        assert!(self.lock.is_idle(), "{:?}", self.lock);
    }
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(3);
    }
    b.check(f);
}

#[test]
fn loom_exclusive_hand_off_unfair_and_fair() {
    for fair in [false, true] {
        model(move || {
            let g = Guarded::new();
            let t = {
                let g = g.clone();
                thread::spawn(move || {
                    g.lock_thread(Mode::Exclusive, fair);
                    g.critical(Mode::Exclusive);
                })
            };
            g.lock_thread(Mode::Exclusive, fair);
            g.critical(Mode::Exclusive);
            t.join().unwrap();
            assert_eq!(g.count(), 2);
            g.assert_idle();
        });
    }
}

#[test]
fn loom_readers_and_a_writer_exclude() {
    model(|| {
        let g = Guarded::new();
        let reader = {
            let g = g.clone();
            thread::spawn(move || {
                g.lock_thread(Mode::Shared, false);
                g.critical(Mode::Shared);
            })
        };
        let writer = {
            let g = g.clone();
            thread::spawn(move || {
                g.lock_thread(Mode::Exclusive, true);
                g.critical(Mode::Exclusive);
            })
        };
        g.lock_thread(Mode::Shared, true);
        g.critical(Mode::Shared);
        reader.join().unwrap();
        writer.join().unwrap();
        assert_eq!(g.count(), 1);
        g.assert_idle();
    });
}

/// A task waker counting its wake-ups (loom atomics, so ordering is checked).
struct Counter(AtomicUsize);

impl Wake for Counter {
    fn wake(self: StdArc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A queued task acquisition is cancelled while the holder releases: either
/// it was granted first and hands the lock back, or it leaves the queue; the
/// lock ends free either way and nobody is left queued.
#[test]
fn loom_cancelling_a_queued_waiter_racing_the_release() {
    for fair in [false, true] {
        model(move || {
            let g = Guarded::new();
            assert!(g.lock.try_lock(Mode::Exclusive, fair));
            let w = g.lock.enqueue(Mode::Exclusive, fair, true).expect("queued");
            let counter = StdArc::new(Counter(AtomicUsize::new(0)));
            let waker = Waker::from(counter.clone());
            let _ = g.lock.register_waker(&w, &waker);
            let holder = {
                let g = g.clone();
                thread::spawn(move || g.critical(Mode::Exclusive))
            };
            g.lock.abandon(&w);
            holder.join().unwrap();
            g.assert_idle();
            assert!(counter.0.load(Ordering::SeqCst) <= 1);
        });
    }
}

/// A queued task is polled (registering a new waker) while the holder
/// releases: the wake-up is never lost, so the task gets the lock.
#[test]
fn loom_no_lost_wake_up_for_a_task() {
    for fair in [false, true] {
        model(move || {
            let g = Guarded::new();
            assert!(g.lock.try_lock(Mode::Exclusive, fair));
            let w = g.lock.enqueue(Mode::Exclusive, fair, true).expect("queued");
            let counter = StdArc::new(Counter(AtomicUsize::new(0)));
            let waker = Waker::from(counter.clone());
            let holder = {
                let g = g.clone();
                thread::spawn(move || g.critical(Mode::Exclusive))
            };
            let mut acquired = matches!(g.lock.register_waker(&w, &waker), Poll::Acquired);
            holder.join().unwrap();
            if !acquired {
                // Not acquired at registration: the release must have woken it.
                assert_eq!(counter.0.load(Ordering::SeqCst), 1, "lost wake-up");
                acquired = matches!(g.lock.poll_waiter(&w), Poll::Acquired);
            }
            assert!(acquired);
            g.critical(Mode::Exclusive);
            g.assert_idle();
        });
    }
}

/// A waker whose wake cancels its own acquisition (as dropping a task from
/// its waker does): the release that wakes it must not be holding the queue.
struct CancelOnWake {
    lock: Arc<Guarded>,
    waiter: Mutex<Option<Arc<Waiter>>>,
}

impl Wake for CancelOnWake {
    fn wake(self: StdArc<Self>) {
        let waiter = self.waiter.lock().take();
        if let Some(w) = waiter {
            self.lock.lock.abandon(&w);
        }
    }
}

#[test]
fn loom_waker_dropping_its_task_during_dispatch() {
    for fair in [false, true] {
        model(move || {
            let g = Guarded::new();
            assert!(g.lock.try_lock(Mode::Exclusive, fair));
            let w = g.lock.enqueue(Mode::Exclusive, fair, true).expect("queued");
            let cancel = StdArc::new(CancelOnWake {
                lock: g.clone(),
                waiter: Mutex::new(Some(w.clone())),
            });
            let waker = Waker::from(cancel.clone());
            let _ = g.lock.register_waker(&w, &waker);
            drop((w, waker));
            let other = {
                let g = g.clone();
                thread::spawn(move || {
                    g.lock_thread(Mode::Exclusive, fair);
                    g.critical(Mode::Exclusive);
                })
            };
            g.critical(Mode::Exclusive);
            other.join().unwrap();
            drop(cancel);
            g.assert_idle();
        });
    }
}

/// Two shared holders released while a writer queues: the writer gets it once
/// both are gone, never before.
#[test]
fn loom_writer_waits_for_all_readers() {
    model(|| {
        let g = Guarded::new();
        assert!(g.lock.try_lock(Mode::Shared, false));
        assert!(g.lock.try_lock(Mode::Shared, false));
        let writer = {
            let g = g.clone();
            thread::spawn(move || {
                g.lock_thread(Mode::Exclusive, false);
                g.critical(Mode::Exclusive);
            })
        };
        let reader = {
            let g = g.clone();
            thread::spawn(move || g.critical(Mode::Shared))
        };
        g.critical(Mode::Shared);
        reader.join().unwrap();
        writer.join().unwrap();
        assert_eq!(g.count(), 1);
        g.assert_idle();
    });
}

/// A registry with one entry, `k`, idle: collectable as users arrive.
fn registry_with_idle_entry() -> Arc<crate::registry::Registry> {
    let r = Arc::new(crate::registry::Registry::new());
    r.checkin(r.checkout("k"));
    r
}

/// Nothing is left in use, and a sweep empties the registry.
fn assert_collected(r: &crate::registry::Registry) {
    assert!(r.is_empty());
    r.collect();
    assert_eq!(r.entries(), 0);
}

/// Two users run `user(registry, enter)` on the name `k` while a sweep runs;
/// a user calls `enter` while it holds the lock, which fails on a second
/// holder. Afterwards the registry is collected.
fn two_users_racing_a_sweep(user: fn(&crate::registry::Registry, &dyn Fn())) {
    model(move || {
        let r = registry_with_idle_entry();
        let inside = Arc::new(AtomicUsize::new(0));
        let users: Vec<_> = (0..2)
            .map(|_| {
                let (r, inside) = (r.clone(), inside.clone());
                thread::spawn(move || {
                    user(&r, &|| {
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                        inside.fetch_sub(1, Ordering::SeqCst);
                    })
                })
            })
            .collect();
        r.collect();
        for u in users {
            u.join().unwrap();
        }
        assert_collected(&r);
    });
}

/// Two users look up one name and take its lock while a sweep runs: they
/// always get the same slot (never one each of an old and a new entry), so
/// they exclude each other, and the registry ends empty.
#[test]
fn loom_collection_racing_lookup() {
    two_users_racing_a_sweep(|r, enter| {
        let slot = r.checkout("k");
        if slot.lock.try_lock(Mode::Exclusive, false) {
            enter();
            // SAFETY: taken just above.
            unsafe { slot.lock.unlock(Mode::Exclusive) };
        }
        r.checkin(slot);
    });
}

/// Exclusive holds taken during the lookup (uncounted: the held lock keeps
/// the slot) race a sweep, and a user that finds the lock held waits in the
/// queue, so that the uncounted holder's release takes the slow path: a
/// sweep never collects a slot that is held or awaited (else a later lookup
/// would make a second slot and a second holder), and the registry ends
/// empty.
#[test]
fn loom_uncounted_holds_racing_collection() {
    two_users_racing_a_sweep(|r, enter| match r.checkout_exclusive("k", false) {
        Ok(held) => {
            enter();
            // SAFETY: an uncounted exclusive hold, released once.
            unsafe { held.unlock_held() };
        }
        Err(slot) => {
            if !slot.lock.try_lock(Mode::Exclusive, false) {
                if let Some(w) = slot.lock.enqueue(Mode::Exclusive, false, false) {
                    assert!(slot.lock.wait_thread(&w, None));
                }
            }
            enter();
            // SAFETY: taken just above.
            unsafe { slot.lock.unlock(Mode::Exclusive) };
            r.checkin(slot);
        }
    });
}

/// An uncounted holder releases while a queued waiter gives up and a sweep
/// runs: every interleaving ends with nothing held or queued and the
/// registry collected. (The waiter's leaving can drop the user count to zero
/// in the middle of the holder's slow unlock, which is why that unlock
/// counts itself first; loom does not flag the use of a freed mutex that
/// would follow otherwise, so that part rests on the argument in
/// `SlotRef::unlock_held`.)
#[test]
fn loom_uncounted_slow_release_racing_a_leaving_waiter_and_collection() {
    model(|| {
        let r = registry_with_idle_entry();
        let Ok(held) = r.checkout_exclusive("k", false) else {
            panic!("an idle name is taken during its lookup");
        };
        let waiter = {
            let r = r.clone();
            thread::spawn(move || {
                let slot = r.checkout("k");
                if let Some(w) = slot.lock.enqueue(Mode::Exclusive, false, true) {
                    slot.lock.abandon(&w);
                } else {
                    // SAFETY: `enqueue` returned `None`: taken.
                    unsafe { slot.lock.unlock(Mode::Exclusive) };
                }
                r.checkin(slot);
            })
        };
        let holder = thread::spawn(move || {
            // SAFETY: an uncounted exclusive hold, released once.
            unsafe { held.unlock_held() };
        });
        r.collect();
        waiter.join().unwrap();
        holder.join().unwrap();
        assert_collected(&r);
    });
}

/// An unfair thread spins for the lock while the holder releases and takes
/// it back at once (a barging newcomer): whichever way the spin, the queue
/// and the wake-up interleave, both get in exactly once and nobody is left
/// queued or parked.
#[test]
fn loom_spinning_acquirer_racing_release_and_barging() {
    model(|| {
        let g = Guarded::new();
        assert!(g.lock.try_lock(Mode::Exclusive, false));
        let spinner = {
            let g = g.clone();
            thread::spawn(move || {
                g.lock_thread(Mode::Exclusive, false);
                g.critical(Mode::Exclusive);
            })
        };
        g.critical(Mode::Exclusive);
        // Barge back in past a spinning or queued acquirer.
        g.lock_thread(Mode::Exclusive, false);
        g.critical(Mode::Exclusive);
        spinner.join().unwrap();
        assert_eq!(g.count(), 3);
        g.assert_idle();
    });
}

/// Fair hand-off in strict FIFO order whether the next waiter sleeps or
/// spins: a task queued first (asleep until woken) is granted the lock by the
/// release even while a thread queued after it spins on its place; the
/// thread is handed the lock next, spinning or parked.
#[test]
fn loom_fair_hand_off_to_a_sleeper_before_a_spinner() {
    model(|| {
        let g = Guarded::new();
        assert!(g.lock.try_lock(Mode::Exclusive, true));
        let first = g.lock.enqueue(Mode::Exclusive, true, true).expect("queued");
        let counter = StdArc::new(Counter(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        assert!(matches!(
            g.lock.register_waker(&first, &waker),
            Poll::Waiting
        ));
        let second = {
            let g = g.clone();
            thread::spawn(move || {
                g.lock_thread(Mode::Exclusive, true);
                // The holder's and the first waiter's sections came first.
                assert_eq!(g.count(), 2, "a spinner overtook the queue");
                g.critical(Mode::Exclusive);
            })
        };
        g.critical(Mode::Exclusive);
        // The release handed the lock to the first in line, not the spinner.
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        assert!(matches!(g.lock.poll_waiter(&first), Poll::Acquired));
        g.critical(Mode::Exclusive);
        second.join().unwrap();
        assert_eq!(g.count(), 3);
        g.assert_idle();
    });
}

/// A notified waiter leaves the queue; if it is then cancelled (a dropped
/// future) before it retries, its notification passes to the next waiter,
/// whichever of the release and the cancellation comes first.
#[test]
fn loom_notified_waiter_leaving_the_queue_racing_cancellation() {
    model(|| {
        let g = Guarded::new();
        assert!(g.lock.try_lock(Mode::Exclusive, false));
        let counters: Vec<_> = (0..2)
            .map(|_| StdArc::new(Counter(AtomicUsize::new(0))))
            .collect();
        let waiters: Vec<_> = counters
            .iter()
            .map(|c| {
                let w = g
                    .lock
                    .enqueue(Mode::Exclusive, false, true)
                    .expect("queued");
                let _ = g.lock.register_waker(&w, &Waker::from(c.clone()));
                w
            })
            .collect();
        let holder = {
            let g = g.clone();
            thread::spawn(move || g.critical(Mode::Exclusive))
        };
        g.lock.abandon(&waiters[0]);
        holder.join().unwrap();
        assert!(counters[0].0.load(Ordering::SeqCst) <= 1);
        assert_eq!(counters[1].0.load(Ordering::SeqCst), 1, "lost notification");
        assert!(matches!(g.lock.poll_waiter(&waiters[1]), Poll::Acquired));
        g.critical(Mode::Exclusive);
        g.assert_idle();
    });
}

/// A notified task loses the race to a newcomer and lines up again while the
/// newcomer releases: the wake-up is not lost, and it ends up holding the
/// lock.
#[test]
fn loom_notified_task_requeued_racing_release() {
    model(|| {
        let g = Guarded::new();
        assert!(g.lock.try_lock(Mode::Exclusive, false));
        let w = g
            .lock
            .enqueue(Mode::Exclusive, false, true)
            .expect("queued");
        let counter = StdArc::new(Counter(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let _ = g.lock.register_waker(&w, &waker);
        // The release notifies it; a newcomer barges in before it retries.
        g.critical(Mode::Exclusive);
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        assert!(g.lock.try_lock(Mode::Exclusive, false));
        let newcomer = {
            let g = g.clone();
            thread::spawn(move || g.critical(Mode::Exclusive))
        };
        let acquired = match g.lock.register_waker(&w, &waker) {
            Poll::Acquired => true,
            Poll::Waiting => false,
        };
        newcomer.join().unwrap();
        if !acquired {
            assert_eq!(counter.0.load(Ordering::SeqCst), 2, "lost wake-up");
            assert!(matches!(g.lock.poll_waiter(&w), Poll::Acquired));
        }
        g.critical(Mode::Exclusive);
        g.assert_idle();
    });
}

/// A release notifies the first of one or two queued tasks that are never
/// polled again (futures kept but not polled, or forgotten): the unfair
/// thread queued behind them is notified too and gets the free lock, and the
/// tasks, polled at last, get it after the thread, in turn.
#[test]
fn loom_thread_behind_unpolled_tasks_gets_the_lock() {
    for tasks in [1, 2] {
        model(move || {
            let g = Guarded::new();
            assert!(g.lock.try_lock(Mode::Exclusive, false));
            let counter = StdArc::new(Counter(AtomicUsize::new(0)));
            let waker = Waker::from(counter.clone());
            let queued: Vec<_> = (0..tasks)
                .map(|_| {
                    let w = g
                        .lock
                        .enqueue(Mode::Exclusive, false, true)
                        .expect("queued");
                    let _ = g.lock.register_waker(&w, &waker);
                    w
                })
                .collect();
            let behind = {
                let g = g.clone();
                thread::spawn(move || {
                    g.lock_thread(Mode::Exclusive, false);
                    g.critical(Mode::Exclusive);
                })
            };
            g.critical(Mode::Exclusive);
            // Never blocks for good: the thread is not left asleep by a free
            // lock.
            behind.join().unwrap();
            for w in &queued {
                assert!(matches!(g.lock.poll_waiter(w), Poll::Acquired));
                g.critical(Mode::Exclusive);
            }
            assert_eq!(g.count(), 2 + tasks);
            g.assert_idle();
        });
    }
}
