//! Fair locks: waiters are served strictly in the order they queued, and a
//! release hands the lock over directly so newcomers cannot barge in.
//!
//! Queue order is established exactly, never by sleeping: an async
//! acquisition is queued once its first poll returned `Pending`, and a
//! blocking one once its thread sleeps after announcing it is about to wait.

mod common;

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::mpsc;
use std::sync::Mutex;
use std::task::Poll;
use std::thread;
use std::time::Duration;

use common::{block_on_with, gettid, poll_once, wait_until, wait_until_sleeping, WakeCounter};
use lockutils_core::{AsyncLockGuard, Error, LockOptions, Mode, Registry};

const WAITERS: usize = 8;

/// What a waiter saw when it tried to take the lock back, as an unfair
/// newcomer, right after releasing it: whether it tried yet, and whether
/// it got the lock.
#[derive(Default)]
struct Barge {
    tried: AtomicBool,
    got: AtomicBool,
}

/// Releases waiter `i`'s guard and then tries to barge back in. Waiter `i`
/// first waits (holding the lock) until waiter `i - 1` has made its own
/// attempt, so that every attempt but the last's happens while the lock
/// belongs to a later waiter. With a fair release the lock was handed to
/// the next waiter already, so the attempt must fail.
fn release_after_previous_barged<G>(
    guard: G,
    i: usize,
    barged: &[Barge],
    opts: LockOptions<'_, '_>,
) {
    if i > 0 {
        wait_until(
            &format!("waiter {} tried to barge", i - 1),
            Duration::from_secs(10),
            || barged[i - 1].tried.load(SeqCst),
        );
    }
    drop(guard);
    let got = opts.fair(false).try_lock().is_ok();
    barged[i].got.store(got, SeqCst);
    barged[i].tried.store(true, SeqCst);
}

/// No waiter but the last got the lock back past the queue; the last one,
/// with nobody queued, did.
fn assert_no_barging(barged: &[Barge]) {
    let got: Vec<bool> = barged.iter().map(|b| b.got.load(SeqCst)).collect();
    let (last, rest) = got.split_last().unwrap();
    assert!(
        !rest.iter().any(|b| *b),
        "a newcomer took the lock past queued waiters: {got:?}"
    );
    assert!(*last, "the lock was not free after the last waiter");
}

#[test]
fn fair_waiters_on_threads_acquire_in_queue_order() {
    let reg = Registry::new();
    let opts = LockOptions::new("fair-async-threads")
        .registry(&reg)
        .fair(true);
    let order = Mutex::new(Vec::new());
    let barged: [Barge; WAITERS] = Default::default();
    let holder = opts.lock().unwrap();
    thread::scope(|s| {
        for i in 0..WAITERS {
            let (queued_tx, queued_rx) = mpsc::channel();
            let order = &order;
            let barged = &barged;
            s.spawn(move || {
                let g = block_on_with(opts.lock_async(), |n| {
                    if n == 1 {
                        queued_tx.send(()).unwrap();
                    }
                })
                .unwrap();
                order.lock().unwrap().push(i);
                release_after_previous_barged(g, i, barged, opts);
            });
            // Waiter i is in the queue before waiter i + 1 starts.
            queued_rx
                .recv()
                .expect("waiter thread ended before queueing");
        }
        drop(holder);
    });
    assert_eq!(*order.lock().unwrap(), (0..WAITERS).collect::<Vec<_>>());
    assert_no_barging(&barged);
    assert!(reg.is_empty());
}

#[cfg(target_os = "linux")]
#[test]
fn fair_blocking_waiters_acquire_in_queue_order() {
    let reg = Registry::new();
    let opts = LockOptions::new("fair-blocking").registry(&reg).fair(true);
    let order = Mutex::new(Vec::new());
    let barged: [Barge; WAITERS] = Default::default();
    let holder = opts.lock().unwrap();
    thread::scope(|s| {
        for i in 0..WAITERS {
            let (tid_tx, tid_rx) = mpsc::channel();
            let order = &order;
            let barged = &barged;
            s.spawn(move || {
                tid_tx.send(gettid()).unwrap();
                let g = opts.lock().unwrap();
                order.lock().unwrap().push(i);
                release_after_previous_barged(g, i, barged, opts);
            });
            // The thread's only sleep after announcing itself is the park in
            // the lock's wait queue.
            wait_until_sleeping(tid_rx.recv().unwrap());
        }
        drop(holder);
    });
    assert_eq!(*order.lock().unwrap(), (0..WAITERS).collect::<Vec<_>>());
    assert_no_barging(&barged);
    assert!(reg.is_empty());
}

/// Blocking threads and async tasks share one queue: alternate them.
#[cfg(target_os = "linux")]
#[test]
fn fair_threads_and_tasks_share_one_fifo_queue() {
    let reg = Registry::new();
    let opts = LockOptions::new("fair-mixed").registry(&reg).fair(true);
    let order = Mutex::new(Vec::new());
    let holder = opts.lock().unwrap();
    let mut futures = Vec::new();
    thread::scope(|s| {
        for i in 0..WAITERS {
            if i % 2 == 0 {
                let (tid_tx, tid_rx) = mpsc::channel();
                let order = &order;
                s.spawn(move || {
                    tid_tx.send(gettid()).unwrap();
                    let g = opts.lock().unwrap();
                    order.lock().unwrap().push(i);
                    drop(g);
                });
                wait_until_sleeping(tid_rx.recv().unwrap());
            } else {
                let (wakes, waker) = WakeCounter::new();
                let mut fut = opts.lock_async();
                assert!(poll_once(&mut fut, &waker).is_pending());
                futures.push((i, fut, wakes, waker));
            }
        }
        drop(holder);
        // Each task is served when its turn comes; the threads in between
        // run by themselves.
        for (i, mut fut, wakes, waker) in futures {
            wait_until(
                &format!("task {i} is woken"),
                Duration::from_secs(10),
                || wakes.count() > 0,
            );
            let g = match poll_once(&mut fut, &waker) {
                Poll::Ready(r) => r.unwrap(),
                Poll::Pending => panic!("task {i} woken but not granted"),
            };
            order.lock().unwrap().push(i);
            drop(g);
        }
    });
    assert_eq!(*order.lock().unwrap(), (0..WAITERS).collect::<Vec<_>>());
    assert!(reg.is_empty());
}

#[test]
fn fair_release_hands_off_so_newcomers_cannot_barge() {
    let reg = Registry::new();
    let opts = LockOptions::new("fair-handoff").registry(&reg).fair(true);
    let holder = opts.lock().unwrap();
    let (wakes, waker) = WakeCounter::new();
    let mut waiting = opts.lock_async();
    assert!(poll_once(&mut waiting, &waker).is_pending());
    drop(holder);
    assert_eq!(wakes.count(), 1, "the release must wake the queued waiter");
    // The lock already belongs to the waiter, although it has not run yet:
    // no newcomer gets it, fair or not, exclusive or shared.
    thread::scope(|s| {
        s.spawn(|| {
            for probe in [
                opts,
                opts.fair(false),
                opts.shared(),
                opts.fair(false).shared(),
            ] {
                assert!(
                    matches!(probe.try_lock(), Err(Error::WouldBlock { .. })),
                    "{probe:?} barged past the queued waiter"
                );
            }
        });
    });
    let g: AsyncLockGuard<'_> = match poll_once(&mut waiting, &waker) {
        Poll::Ready(r) => r.unwrap(),
        Poll::Pending => panic!("granted waiter not ready"),
    };
    drop(g);
    assert!(reg.is_empty());
}

#[test]
fn unfair_release_only_notifies_so_a_newcomer_can_take_the_lock() {
    let reg = Registry::new();
    let opts = LockOptions::new("unfair-barge").registry(&reg);
    let holder = opts.lock().unwrap();
    let (wakes, waker) = WakeCounter::new();
    let mut waiting = opts.lock_async();
    assert!(poll_once(&mut waiting, &waker).is_pending());
    drop(holder);
    assert_eq!(wakes.count(), 1);
    // An unfair newcomer takes the lock before the notified waiter runs...
    let (tx, rx) = mpsc::channel::<()>();
    let (took_tx, took_rx) = mpsc::channel();
    thread::scope(|s| {
        s.spawn(move || {
            let g = opts.try_lock().expect("unfair newcomer may barge");
            took_tx.send(()).unwrap();
            rx.recv().unwrap();
            drop(g);
        });
        took_rx.recv().unwrap();
        // ... so the notified waiter goes back to waiting ...
        assert!(poll_once(&mut waiting, &waker).is_pending());
        tx.send(()).unwrap();
    });
    // ... and is woken again when the newcomer leaves.
    assert!(wakes.count() >= 2);
    match poll_once(&mut waiting, &waker) {
        Poll::Ready(r) => drop(r.unwrap()),
        Poll::Pending => panic!("not granted after the newcomer left"),
    }
    assert!(reg.is_empty());
}

/// Fair readers queued together enter together; a writer queued behind them
/// waits for all of them, and a reader queued behind the writer waits for it.
#[test]
fn fair_readers_and_writers_keep_their_queue_order() {
    let reg = Registry::new();
    let opts = LockOptions::new("fair-rw").registry(&reg).fair(true);
    let holder = opts.lock().unwrap();
    let mut queued: Vec<_> = [Mode::Shared, Mode::Shared, Mode::Exclusive, Mode::Shared]
        .into_iter()
        .map(|mode| {
            let (wakes, waker) = WakeCounter::new();
            let mut fut = opts.mode(mode).lock_async();
            assert!(poll_once(&mut fut, &waker).is_pending());
            (fut, wakes, waker)
        })
        .collect();
    let mut ready = |k: usize| {
        let (fut, _, waker) = &mut queued[k];
        match poll_once(fut, waker) {
            Poll::Ready(r) => Some(r.unwrap()),
            Poll::Pending => None,
        }
    };
    drop(holder);
    let r0 = ready(0).expect("first reader granted");
    let r1 = ready(1).expect("second reader granted with the first");
    assert!(ready(2).is_none(), "writer entered while readers hold");
    assert!(ready(3).is_none(), "reader overtook the queued writer");
    drop(r0);
    assert!(ready(2).is_none(), "writer entered while a reader holds");
    drop(r1);
    let w = ready(2).expect("writer granted after both readers left");
    assert!(ready(3).is_none(), "reader entered while the writer holds");
    drop(w);
    let r3 = ready(3).expect("last reader granted after the writer");
    assert_eq!(lockutils_core::AsyncLockGuard::mode(&r3), Mode::Shared);
    drop(r3);
    drop(queued);
    assert!(reg.is_empty());
}
