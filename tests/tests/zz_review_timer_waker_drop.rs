//! Review reproducer: the timer drops a task's waker while holding its own
//! mutex (`Sleep::drop` and `Sleep::update` in lockutils-core/src/timer.rs).
//! When that waker is the last reference to a task whose future holds another
//! timed acquisition, dropping the task drops that acquisition's `Sleep`,
//! which locks the same mutex on the same thread: a self-deadlock. From then
//! on the timer mutex is held forever, so the timer thread, every async
//! deadline and every deferred registry sweep in the process stop too.
//!
//! raw.rs promises the rule this breaks: "No waker runs under a lock ... a
//! replaced waker is dropped after its waiter's waker mutex is released".

use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use lockutils::{Acquire, LockOptions};

/// A task owned only by its wakers (as in futures' `ThreadPool`, where a
/// pending task lives in the wakers that were handed out): dropping the last
/// waker drops the task's future.
struct Task {
    /// Dropped with the task.
    _future: Mutex<Option<Acquire<'static, 'static>>>,
}

impl Wake for Task {
    fn wake(self: Arc<Self>) {}
}

#[test]
fn dropping_an_acquisition_whose_timer_holds_the_last_waker_of_another_task() {
    // Both names held, so both acquisitions queue and arm their deadline.
    let _y = lockutils::lock("zz-timer-y").unwrap();
    let _x = lockutils::lock("zz-timer-x").unwrap();

    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let noop = Waker::noop();
        // The old task's future: a timed acquisition of "y", queued.
        let mut y = LockOptions::new("zz-timer-y")
            .timeout(Duration::from_secs(60))
            .lock_async();
        assert!(Pin::new(&mut y).poll(&mut Context::from_waker(noop)).is_pending());
        let task = Arc::new(Task {
            _future: Mutex::new(Some(y)),
        });

        // A timed acquisition of "x", first polled by the old task (its
        // waker goes to the wait queue and to the timer) ...
        let mut x = LockOptions::new("zz-timer-x")
            .timeout(Duration::from_secs(60))
            .lock_async();
        let old_waker = Waker::from(Arc::clone(&task));
        assert!(Pin::new(&mut x).poll(&mut Context::from_waker(&old_waker)).is_pending());
        // ... then owned elsewhere (`Acquire` is `Unpin`); the old task is
        // left with nothing but the wakers it handed out.
        drop(old_waker);
        drop(task);

        // Cancelling "x": the queue's copy of the waker goes first, then
        // `Sleep::drop` drops the last one under the timer mutex.
        drop(x);
        done_tx.send(()).unwrap();
    });
    if done_rx.recv_timeout(Duration::from_secs(5)).is_err() {
        // Unwinding would drop the guards above, and each release schedules
        // a registry sweep on the (deadlocked) timer: the test would hang
        // instead of failing. Say so and leave.
        // (Not `eprintln!`, which the test harness captures.)
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"FAILED: dropping the acquisition deadlocked on the timer mutex \
              (the timer thread and every later release are stuck behind it)\n",
        );
        std::process::exit(101);
    }
}
