//! The crate's own executor: one tokio worker thread that runs every
//! PostgreSQL session no caller drives, async acquisitions and releases,
//! and held locks' checks.
//!
//! Callers never need a runtime of their own: blocking calls run their
//! operation on their own thread ([`crate::caller`], inside this runtime's
//! context) or wait on a thread park, async calls await a join handle that
//! works on any executor. Nothing ever blocks inside the caller's executor,
//! and the sessions keep running (TLS, keep-alive checks) whatever the
//! caller's threads are doing.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::Instant;

use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("lockutils-pg")
        .enable_all()
        .build()
        .expect("cannot start the lockutils-postgres runtime thread")
});

/// The crate's runtime, for entering its context.
pub(crate) fn handle() -> &'static tokio::runtime::Handle {
    RUNTIME.handle()
}

/// Runs `fut` on the crate's runtime.
pub(crate) fn spawn<F>(fut: F) -> Task<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Task(Some(RUNTIME.spawn(fut)))
}

/// Runs `fut` on the crate's runtime and parks the calling thread until it
/// is done.
pub(crate) fn block_on<F>(fut: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    park_on(spawn(fut))
}

/// Polls `fut` on this thread, parking between polls.
pub(crate) fn park_on<F: Future>(fut: F) -> F::Output {
    park_on_until(fut, None).expect("no deadline")
}

/// [`park_on`] that gives up at `deadline` (`None` then).
pub(crate) fn park_on_until<F: Future>(fut: F, deadline: Option<Instant>) -> Option<F::Output> {
    struct Unpark(Thread);
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
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return Some(v);
        }
        match deadline {
            None => std::thread::park(),
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => std::thread::park_timeout(left),
                _ => return None,
            },
        }
    }
}

/// Whether this thread is the crate's runtime thread, where parking would
/// stop the very tasks being waited for.
pub(crate) fn on_runtime_thread() -> bool {
    tokio::runtime::Handle::try_current().is_ok_and(|h| h.id() == RUNTIME.handle().id())
}

/// A task on the crate's runtime. Awaiting it works on any executor; dropping
/// it before it finishes cancels the task (its destructors run on the
/// runtime), which is what makes acquisitions cancel-safe.
#[must_use = "dropping a Task cancels it"]
pub(crate) struct Task<T>(Option<JoinHandle<T>>);

impl<T> Future for Task<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let handle = self.0.as_mut().expect("Task polled after completion");
        match Pin::new(handle).poll(cx) {
            Poll::Ready(Ok(v)) => {
                self.0 = None;
                Poll::Ready(v)
            }
            Poll::Ready(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Only `Drop` cancels the task, and then nobody polls it again.
            Poll::Ready(Err(e)) => unreachable!("lockutils-postgres task cancelled: {e}"),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        if let Some(handle) = &self.0 {
            handle.abort();
        }
    }
}

impl<T> Task<T> {
    /// Lets the task run to completion even though nobody waits for it.
    pub(crate) fn detach(mut self) {
        // Dropping a join handle (rather than aborting it) detaches the task.
        drop(self.0.take());
    }
}
