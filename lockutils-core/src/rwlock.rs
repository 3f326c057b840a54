//! An unnamed in-process reader/writer lock, like oslo's `ReaderWriterLock`,
//! for the times a name and a registry are not needed.

use crate::sync::Arc;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::raw::{self, Mode, RawRwLock, Waiter};

/// A reader/writer lock for threads and tasks alike: readers share, a writer
/// excludes everyone, and readers queue behind a waiting writer.
///
/// ```
/// use lockutils_core::ReaderWriterLock;
///
/// static CONFIG: ReaderWriterLock = ReaderWriterLock::new();
///
/// let r1 = CONFIG.read();
/// let r2 = CONFIG.read();
/// assert!(CONFIG.try_write().is_none());
/// drop((r1, r2));
/// let w = CONFIG.write();
/// assert!(CONFIG.try_read().is_none());
/// drop(w);
/// ```
pub struct ReaderWriterLock {
    raw: RawRwLock,
    fair: bool,
}

/// A hold on a [`ReaderWriterLock`], released on drop.
#[must_use = "if unused the lock is released immediately"]
#[clippy::has_significant_drop]
pub struct RwGuard<'l> {
    lock: &'l ReaderWriterLock,
    mode: Mode,
}

impl ReaderWriterLock {
    const_unless_loom! {
        /// An unlocked, unfair lock.
        pub fn new() -> Self {
            ReaderWriterLock {
                raw: RawRwLock::new(),
                fair: false,
            }
        }
    }

    const_unless_loom! {
        /// An unlocked lock that serves waiters in strict arrival order.
        ///
        /// ```
        /// let l = lockutils_core::ReaderWriterLock::new_fair();
        /// drop(l.write());
        /// ```
        pub fn new_fair() -> Self {
            ReaderWriterLock {
                raw: RawRwLock::new(),
                fair: true,
            }
        }
    }

    fn acquire(&self, mode: Mode) -> RwGuard<'_> {
        if !self.raw.try_lock(mode, self.fair) {
            if let Some(w) = self.raw.enqueue(mode, self.fair, false) {
                self.raw.wait_thread(&w, None);
            }
        }
        RwGuard { lock: self, mode }
    }

    /// Takes a shared hold, blocking the thread while a writer holds or waits.
    ///
    /// ```
    /// let l = lockutils_core::ReaderWriterLock::new();
    /// let (_a, _b) = (l.read(), l.read());
    /// ```
    pub fn read(&self) -> RwGuard<'_> {
        self.acquire(Mode::Shared)
    }

    /// Takes the exclusive hold, blocking the thread while anyone holds it.
    ///
    /// ```
    /// let l = lockutils_core::ReaderWriterLock::new();
    /// let _w = l.write();
    /// ```
    pub fn write(&self) -> RwGuard<'_> {
        self.acquire(Mode::Exclusive)
    }

    /// A shared hold if one is available now.
    ///
    /// ```
    /// let l = lockutils_core::ReaderWriterLock::new();
    /// assert!(l.try_read().is_some());
    /// ```
    pub fn try_read(&self) -> Option<RwGuard<'_>> {
        self.raw.try_lock(Mode::Shared, self.fair).then(|| RwGuard {
            lock: self,
            mode: Mode::Shared,
        })
    }

    /// The exclusive hold if it is available now.
    ///
    /// ```
    /// let l = lockutils_core::ReaderWriterLock::new();
    /// assert!(l.try_write().is_some());
    /// ```
    pub fn try_write(&self) -> Option<RwGuard<'_>> {
        self.raw
            .try_lock(Mode::Exclusive, self.fair)
            .then(|| RwGuard {
                lock: self,
                mode: Mode::Exclusive,
            })
    }

    /// Takes a shared hold from async code without blocking the executor.
    ///
    /// # Cancel safety
    /// Dropping the future leaves the queue; a hold granted meanwhile is
    /// passed on.
    ///
    /// ```
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let waker = std::task::Waker::noop();
    /// #     let mut cx = std::task::Context::from_waker(&waker);
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
    /// # }
    /// let l = lockutils_core::ReaderWriterLock::new();
    /// block_on(async { drop(l.read_async().await) });
    /// ```
    pub fn read_async(&self) -> RwAcquire<'_> {
        RwAcquire {
            lock: self,
            mode: Mode::Shared,
            waiter: None,
        }
    }

    /// Takes the exclusive hold from async code without blocking the executor.
    ///
    /// # Cancel safety
    /// As [`read_async`](Self::read_async).
    ///
    /// ```
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let waker = std::task::Waker::noop();
    /// #     let mut cx = std::task::Context::from_waker(&waker);
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
    /// # }
    /// let l = lockutils_core::ReaderWriterLock::new();
    /// block_on(async { drop(l.write_async().await) });
    /// ```
    pub fn write_async(&self) -> RwAcquire<'_> {
        RwAcquire {
            lock: self,
            mode: Mode::Exclusive,
            waiter: None,
        }
    }
}

impl Default for ReaderWriterLock {
    fn default() -> Self {
        ReaderWriterLock::new()
    }
}

impl fmt::Debug for ReaderWriterLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReaderWriterLock")
            .field("state", &self.raw)
            .field("fair", &self.fair)
            .finish()
    }
}

impl RwGuard<'_> {
    /// Whether this is a shared or the exclusive hold.
    pub fn mode(guard: &Self) -> Mode {
        guard.mode
    }
}

impl Drop for RwGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: a guard exists only for a successful acquisition in `mode`.
        unsafe { self.lock.raw.unlock(self.mode) };
    }
}

impl fmt::Debug for RwGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RwGuard").field("mode", &self.mode).finish()
    }
}

/// The future of [`ReaderWriterLock::read_async`] and
/// [`write_async`](ReaderWriterLock::write_async).
#[must_use = "futures do nothing unless polled"]
pub struct RwAcquire<'l> {
    lock: &'l ReaderWriterLock,
    mode: Mode,
    waiter: Option<Arc<Waiter>>,
}

impl<'l> Future for RwAcquire<'l> {
    type Output = RwGuard<'l>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<RwGuard<'l>> {
        let this = self.get_mut();
        let (lock, mode) = (this.lock, this.mode);
        let done = match &this.waiter {
            None => {
                if lock.raw.try_lock(mode, lock.fair) {
                    true
                } else {
                    match lock.raw.enqueue(mode, lock.fair, true) {
                        None => true,
                        Some(w) => {
                            let r = lock.raw.register_waker(&w, cx.waker());
                            this.waiter = Some(w);
                            matches!(r, raw::Poll::Acquired)
                        }
                    }
                }
            }
            Some(w) => matches!(lock.raw.register_waker(w, cx.waker()), raw::Poll::Acquired),
        };
        if done {
            this.waiter = None;
            Poll::Ready(RwGuard { lock, mode })
        } else {
            Poll::Pending
        }
    }
}

impl Drop for RwAcquire<'_> {
    fn drop(&mut self) {
        if let Some(w) = self.waiter.take() {
            self.lock.raw.abandon(&w);
        }
    }
}

impl fmt::Debug for RwAcquire<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RwAcquire")
            .field("mode", &self.mode)
            .field("queued", &self.waiter.is_some())
            .finish()
    }
}
