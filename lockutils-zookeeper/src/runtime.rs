//! The crate's own executor: one tokio worker thread that runs every
//! ZooKeeper session and every acquisition's protocol.
//!
//! Callers never need a runtime of their own: blocking calls wait on a
//! thread park, async calls await a join handle that works on any executor.
//! Nothing ever blocks inside the caller's executor, and the sessions keep
//! running (pings, watches) whatever the caller's threads are doing.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, LazyLock, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("lockutils-zk")
        .enable_all()
        .build()
        .expect("cannot start the lockutils-zookeeper runtime thread")
});

/// Runs `fut` on the crate's runtime.
pub(crate) fn spawn<F>(fut: F) -> Task<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Task(Some(RUNTIME.spawn(fut)))
}

/// How many acquisitions, and clean-ups of abandoned ones, are running on
/// the runtime: what [`settle`] waits for.
static IN_FLIGHT: Mutex<usize> = Mutex::new(0);
static SETTLED: Condvar = Condvar::new();

/// Counts one task in [`IN_FLIGHT`] while it lives.
struct InFlight;

impl InFlight {
    fn enter() -> Self {
        *IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut n = IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner());
        *n -= 1;
        if *n == 0 {
            SETTLED.notify_all();
        }
    }
}

/// [`spawn`], counted until the task ends or is dropped: for acquisitions
/// and their clean-ups. A cancelled acquisition's clean-up is spawned (and
/// counted) while the acquisition is being dropped, so the count does not
/// reach zero in between.
pub(crate) fn spawn_tracked<F>(fut: F) -> Task<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    struct Tracked<F> {
        // Dropped first: its clean-up is counted before this task's count goes.
        fut: Pin<Box<F>>,
        _count: InFlight,
    }
    impl<F: Future> Future for Tracked<F> {
        type Output = F::Output;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
            self.fut.as_mut().poll(cx)
        }
    }
    spawn(Tracked {
        fut: Box::pin(fut),
        _count: InFlight::enter(),
    })
}

/// One acquisition's count of what still runs on its behalf: the
/// acquisition itself and the clean-up of its candidate node. Dropping an
/// acquisition waits on it, so that the candidate is gone (or given up on)
/// when the drop returns.
#[derive(Clone, Debug, Default)]
pub(crate) struct Pending(Arc<(Mutex<usize>, Condvar)>);

/// Counts one thing in a [`Pending`] while it lives.
#[derive(Debug)]
pub(crate) struct PendingGuard(Pending);

impl Pending {
    /// Counts one more until the guard drops.
    pub(crate) fn enter(&self) -> PendingGuard {
        *self.0 .0.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        PendingGuard(self.clone())
    }

    /// Waits, at most `within`, until nothing is counted; whether that
    /// happened in time.
    pub(crate) fn wait(&self, within: std::time::Duration) -> bool {
        let (count, zero) = &*self.0;
        let n = count.lock().unwrap_or_else(|e| e.into_inner());
        let (n, _) = zero
            .wait_timeout_while(n, within, |n| *n > 0)
            .unwrap_or_else(|e| e.into_inner());
        *n == 0
    }
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        let (count, zero) = &*self.0 .0;
        let mut n = count.lock().unwrap_or_else(|e| e.into_inner());
        *n -= 1;
        if *n == 0 {
            zero.notify_all();
        }
    }
}

/// Waits, at most `within`, until no acquisition runs and every abandoned
/// acquisition's candidate node is deleted (or given up on); whether that
/// happened in time.
pub(crate) fn settle(within: std::time::Duration) -> bool {
    let n = IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner());
    let (n, _) = SETTLED
        .wait_timeout_while(n, within, |n| *n > 0)
        .unwrap_or_else(|e| e.into_inner());
    *n == 0
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
            return v;
        }
        std::thread::park();
    }
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
            Poll::Ready(Err(e)) => unreachable!("lockutils-zookeeper task cancelled: {e}"),
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
