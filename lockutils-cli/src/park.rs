//! Waiting for the library's futures on the calling thread, so that a
//! forwarded signal can interrupt the wait (the thread is unparked) and the
//! acquisition be abandoned, which the library cleans up.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// Polls `fut` on this thread, parking between polls, until it is ready
/// (`Ok`) or `interrupted` says to stop (`Err` with its answer). Whatever
/// makes `interrupted` answer must unpark this thread after it changes.
pub(crate) fn park_on<F: Future>(
    fut: F,
    interrupted: impl Fn() -> Option<libc::c_int>,
) -> Result<F::Output, libc::c_int> {
    park_on_or_wait(fut, interrupted, || {})
}

/// As [`park_on`], running `before_waiting` once, the first time `fut` is
/// not ready at once: what only a real wait needs (a thread to receive
/// signals, one to say who holds the lock) costs nothing when it is ready.
pub(crate) fn park_on_or_wait<F: Future>(
    fut: F,
    interrupted: impl Fn() -> Option<libc::c_int>,
    before_waiting: impl FnOnce(),
) -> Result<F::Output, libc::c_int> {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    let mut before_waiting = Some(before_waiting);
    loop {
        if let Some(sig) = interrupted() {
            return Err(sig);
        }
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return Ok(v);
        }
        if let Some(f) = before_waiting.take() {
            f();
            // It may have received a signal already: look before parking.
            if let Some(sig) = interrupted() {
                return Err(sig);
            }
        }
        // Woken by the future, or by whoever sets what `interrupted` reads:
        // the signal thread, or a stop flag's setter, each of which unparks
        // this thread after setting it (a token left by an unpark that came
        // before this park makes it return at once).
        std::thread::park();
    }
}
