//! Locks with a fixed name, resolved once per call site.
//!
//! `#[synchronized("x")]` expands to a `static StaticLock`: the first call
//! finds the registry entry and pins it for the life of the process, so later
//! calls skip hashing and the registry lookup entirely.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use crate::acquire::Acquire;
use crate::error::Result;
use crate::guard::{AsyncLockGuard, Held, LockGuard};
use crate::options::{LockOptions, Selected};
use crate::raw::Mode;
use crate::registry::Slot;

/// A lock whose name and options are fixed at compile time; build it in a
/// `static` with [`StaticLock::new`].
///
/// A pinned name stays in its registry for the life of the process (one entry
/// per call site, never per call), which is what makes each call as cheap as
/// locking a plain mutex.
///
/// ```
/// use lockutils_core::{LockOptions, StaticLock};
///
/// static INVENTORY: StaticLock = StaticLock::new(LockOptions::new("inventory").fair(true));
///
/// let g = INVENTORY.lock().unwrap();
/// // Same name, same lock, even through the dynamic API.
/// assert!(LockOptions::new("inventory").try_lock().is_err());
/// drop(g);
/// ```
pub struct StaticLock {
    options: LockOptions<'static, 'static>,
    slot: OnceLock<&'static Slot>,
    /// In-process and exclusive: a call can take the short path.
    plain: bool,
}

impl StaticLock {
    /// A lock with these options; nothing is looked up until first use.
    pub const fn new(options: LockOptions<'static, 'static>) -> Self {
        StaticLock {
            plain: !options.external
                && matches!(options.backend, Selected::None)
                && matches!(options.mode, Mode::Exclusive)
                && !options.remove_on_release,
            options,
            slot: OnceLock::new(),
        }
    }

    /// The options this lock was built with.
    ///
    /// ```
    /// static L: lockutils_core::StaticLock =
    ///     lockutils_core::StaticLock::new(lockutils_core::LockOptions::new("l"));
    /// assert_eq!(L.options().name(), "l");
    /// ```
    pub const fn options(&self) -> &LockOptions<'static, 'static> {
        &self.options
    }

    #[inline]
    fn slot(&self) -> Result<&'static Slot> {
        if let Some(slot) = self.slot.get() {
            return Ok(slot);
        }
        let key = self.options.file_name()?;
        Ok(self.slot.get_or_init(|| {
            let slot = self.options.registry.pin(&key);
            crate::held::register_pinned(slot);
            slot
        }))
    }

    /// Takes the lock as [`LockOptions::lock`] does.
    ///
    /// # Errors
    /// As [`LockOptions::lock`].
    ///
    /// ```
    /// static L: lockutils_core::StaticLock =
    ///     lockutils_core::StaticLock::new(lockutils_core::LockOptions::new("doc-static"));
    /// drop(L.lock().unwrap());
    /// ```
    #[inline]
    pub fn lock(&self) -> Result<LockGuard<'static>> {
        // The short path: resolved, plain, free, and nobody listening for
        // debug events (which need timestamps) — one compare-and-swap.
        if let Some(slot) = self.slot.get() {
            if self.plain
                && !tracing::level_enabled!(tracing::Level::DEBUG)
                && !crate::metrics::ENABLED
                && slot.lock.try_lock(Mode::Exclusive, self.options.fair)
            {
                return Ok(LockGuard::new(Held::pinned_owned(
                    self.options.registry,
                    slot,
                )));
            }
        }
        self.lock_slow()
    }

    /// Everything but the short path, out of line so the short path stays
    /// small where it is inlined.
    #[cold]
    #[inline(never)]
    fn lock_slow(&self) -> Result<LockGuard<'static>> {
        self.options.lock_slot(Some(self.slot()?))
    }

    /// Takes the lock as [`LockOptions::lock_async`] does.
    ///
    /// ```
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let waker = std::task::Waker::noop();
    /// #     let mut cx = std::task::Context::from_waker(&waker);
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
    /// # }
    /// static L: lockutils_core::StaticLock =
    ///     lockutils_core::StaticLock::new(lockutils_core::LockOptions::new("doc-static-async"));
    /// block_on(async { drop(L.lock_async().await.unwrap()) });
    /// ```
    #[inline]
    pub fn lock_async(&self) -> StaticAcquire<'_> {
        StaticAcquire {
            lock: self,
            slow: None,
            done: false,
        }
    }
}

/// The future of [`StaticLock::lock_async`]. Its first poll takes the short
/// path of [`StaticLock::lock`] when it can (one compare-and-swap); anything
/// else (waiting, a lock file, debug logging) runs the [`Acquire`] future,
/// boxed so that this one stays three words.
#[must_use = "futures do nothing unless polled"]
pub struct StaticAcquire<'s> {
    lock: &'s StaticLock,
    slow: Option<Box<Acquire<'static, 'static>>>,
    done: bool,
}

impl Future for StaticAcquire<'_> {
    type Output = Result<AsyncLockGuard<'static>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        assert!(
            !this.done,
            "lockutils::StaticAcquire polled after completion"
        );
        let lock = this.lock;
        if this.slow.is_none() {
            if let Some(slot) = lock.slot.get() {
                if lock.plain
                    && !tracing::level_enabled!(tracing::Level::DEBUG)
                    && !crate::metrics::ENABLED
                    && slot.lock.try_lock(Mode::Exclusive, lock.options.fair)
                {
                    this.done = true;
                    let held = Held::pinned(lock.options.registry, slot);
                    return Poll::Ready(Ok(AsyncLockGuard { held }));
                }
            }
        }
        this.poll_slow(cx)
    }
}

impl StaticAcquire<'_> {
    /// Everything but the short path, out of line as in [`StaticLock::lock`].
    #[cold]
    #[inline(never)]
    fn poll_slow(&mut self, cx: &mut Context<'_>) -> Poll<Result<AsyncLockGuard<'static>>> {
        let slow = self.slow.get_or_insert_with(|| {
            // A bad name is reported by the future itself, on the unpinned path.
            Box::new(self.lock.options.lock_async_slot(self.lock.slot().ok()))
        });
        let out = Pin::new(&mut **slow).poll(cx);
        self.done = out.is_ready();
        out
    }
}

impl fmt::Debug for StaticAcquire<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticAcquire")
            .field("lock", &self.lock)
            .field("slow", &self.slow)
            .finish()
    }
}

impl fmt::Debug for StaticLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticLock")
            .field("options", &self.options)
            .field("resolved", &self.slot.get().is_some())
            .finish()
    }
}
