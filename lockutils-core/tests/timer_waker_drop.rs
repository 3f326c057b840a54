//! Dropping a timed async acquisition whose deadline holds the last waker of
//! another task: that task's future (another timed acquisition) is dropped
//! with the waker, and its own deadline is unregistered from the timer on the
//! same thread. Wakers are therefore dropped outside the timer's lock; were
//! they dropped under it, the thread would deadlock on it, and with it the
//! timer thread, every async deadline and every later release.
//!
//! Its own binary: on failure it ends the process (unwinding would drop
//! guards, and each release would wait on the stuck timer).

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use common::block_on;
use lockutils_core::{Acquire, LockOptions};

/// A task owned only by its wakers (as a thread-pool executor's pending task
/// lives in the wakers it handed out): dropping the last one drops its future.
struct Task {
    _future: Mutex<Option<Acquire<'static, 'static>>>,
}

impl Wake for Task {
    fn wake(self: Arc<Self>) {}
}

#[test]
fn a_dropped_acquisition_whose_deadline_holds_the_last_waker_of_another_task() {
    // Both names held, so both acquisitions queue and arm their deadlines.
    let _y = lockutils_core::lock("timer-waker-y").unwrap();
    let _x = lockutils_core::lock("timer-waker-x").unwrap();

    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let noop = Waker::noop();
        // The other task's future: a timed acquisition of "y", queued.
        let mut y = LockOptions::new("timer-waker-y")
            .timeout(Duration::from_secs(60))
            .lock_async();
        assert!(Pin::new(&mut y)
            .poll(&mut Context::from_waker(noop))
            .is_pending());
        let task = Arc::new(Task {
            _future: Mutex::new(Some(y)),
        });

        // A timed acquisition of "x", polled with that task's waker (which
        // goes to the wait queue and to the timer), then owned elsewhere:
        // the task is left with nothing but the wakers it handed out.
        let mut x = LockOptions::new("timer-waker-x")
            .timeout(Duration::from_secs(60))
            .lock_async();
        let waker = Waker::from(Arc::clone(&task));
        assert!(Pin::new(&mut x)
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        drop(waker);
        drop(task);

        // Cancelling "x" drops the queue's copy of the waker, then the
        // timer's: the last one, which drops "y" and its deadline.
        drop(x);
        done_tx.send(()).unwrap();
    });
    if done_rx.recv_timeout(Duration::from_secs(10)).is_err() {
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"FAILED: dropping the acquisition deadlocked on the timer's lock\n",
        );
        std::process::exit(101);
    }
    // The timer still works: a new deadline fires.
    let r = block_on(
        LockOptions::new("timer-waker-x")
            .timeout(Duration::from_millis(50))
            .lock_async(),
    );
    assert!(r.is_err(), "x is held here: the deadline must fire");
}
