//! Guards: a held lock, released when the guard drops (also on panic and when
//! a future holding it is dropped).

use std::fmt;
use std::marker::PhantomData;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::file::FileLock;
use crate::held::{self, Record};
use crate::raw::Mode;
use crate::registry::{Registry, Slot, SlotRef};

/// What every guard holds: the in-process lock, plus — only when there is
/// something to keep — the file lock and the facts for logs and accessors.
/// Keeping the common case to three words makes the in-process fast path
/// cheap to build, move and drop. Dropping releases the file first, then the
/// in-process lock.
pub(crate) struct Held<'r> {
    /// The slot, tagged with the mode of the hold and how it is recorded.
    slot: SlotRef,
    extra: Option<Box<Extra>>,
    /// Holds borrow their registry: it must outlive them.
    _registry: PhantomData<&'r Registry>,
}

/// The parts of a hold that the uncontended in-process case does not need.
pub(crate) struct Extra {
    file: Option<FileLock>,
    waited: Duration,
    acquired_at: Option<Instant>,
    caller: Option<&'static str>,
    remove_on_release: bool,
}

impl<'r> Held<'r> {
    /// A hold of `slot` in `mode`, just acquired after waiting `waited`.
    #[inline]
    pub(crate) fn new(
        _registry: &'r Registry,
        slot: SlotRef,
        mode: Mode,
        waited: Duration,
        caller: Option<&'static str>,
        remove_on_release: bool,
    ) -> Self {
        let slot = slot.with_mode(mode);
        let logging = tracing::level_enabled!(tracing::Level::DEBUG);
        let extra = (logging || !waited.is_zero() || remove_on_release).then(|| {
            Box::new(Extra {
                file: None,
                waited,
                acquired_at: logging.then(Instant::now),
                caller,
                remove_on_release,
            })
        });
        Held {
            slot,
            extra,
            _registry: PhantomData,
        }
    }

    /// A plain exclusive hold of a pinned slot, just acquired without waiting
    /// and with no debug logging: nothing to box, and recorded in the slot
    /// itself rather than the thread's list (see [`held`]).
    #[inline]
    pub(crate) fn pinned_owned(_registry: &'r Registry, slot: &'static Slot) -> Self {
        Held {
            slot: SlotRef::pinned_owned(slot),
            extra: None,
            _registry: PhantomData,
        }
    }

    /// A plain exclusive hold of a pinned slot by a task, just acquired
    /// without waiting and with no debug logging: nothing to box or record.
    #[inline]
    pub(crate) fn pinned(_registry: &'r Registry, slot: &'static Slot) -> Self {
        Held {
            slot: SlotRef::pinned(slot),
            extra: None,
            _registry: PhantomData,
        }
    }

    /// Shared or exclusive.
    #[inline]
    pub(crate) fn mode(&self) -> Mode {
        self.slot.mode()
    }

    #[inline]
    pub(crate) fn slot(&self) -> &Slot {
        &self.slot
    }

    fn extra_mut(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(|| {
            Box::new(Extra {
                file: None,
                waited: Duration::ZERO,
                acquired_at: None,
                caller: None,
                remove_on_release: false,
            })
        })
    }

    /// This hold as a thread-local record.
    #[inline]
    fn record(&self) -> Record {
        Record::new(self.slot(), self.mode(), self.file())
    }

    /// Adds the file lock, and the time spent waiting for it.
    pub(crate) fn attach_file(&mut self, file: FileLock, file_wait: Duration) {
        let extra = self.extra_mut();
        extra.file = Some(file);
        extra.waited += file_wait;
    }

    /// Sets the total time waited.
    pub(crate) fn set_waited(&mut self, waited: Duration) {
        if !waited.is_zero() {
            self.extra_mut().waited = waited;
        }
    }

    pub(crate) fn file(&self) -> Option<&FileLock> {
        self.extra.as_ref()?.file.as_ref()
    }

    pub(crate) fn waited(&self) -> Duration {
        self.extra.as_ref().map_or(Duration::ZERO, |e| e.waited)
    }

    fn disarm_removal(&mut self) {
        if let Some(e) = &mut self.extra {
            e.remove_on_release = false;
        }
    }

    #[inline]
    pub(crate) fn log_acquired(&self) {
        if let Some(extra) = &self.extra {
            if extra.acquired_at.is_some() {
                log_acquired(self.slot(), self.mode(), extra);
            }
        }
    }
}

#[cold]
fn log_acquired(slot: &Slot, mode: Mode, extra: &Extra) {
    tracing::debug!(
        target: "lockutils",
        lock = &*slot.key,
        mode = mode.as_str(),
        caller = extra.caller,
        path = extra.file.as_ref().map(|f| tracing::field::display(f.path.display())),
        waited_secs = extra.waited.as_secs_f64(),
        "lock acquired"
    );
}

impl Drop for Held<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        let slot = self.slot;
        match self.extra.take() {
            // SAFETY: `Held` is only built after the in-process lock was
            // acquired in this mode, and this is the one place that
            // releases it.
            None => unsafe { slot.lock.unlock(slot.mode()) },
            Some(mut extra) => release_with_extra(&slot, slot.mode(), &mut extra),
        }
        slot.release();
    }
}

/// Releases a hold that has extras: the file first (closing it releases the
/// inter-process lock), then the in-process lock, then the log line.
#[cold]
#[inline(never)]
fn release_with_extra(slot: &Slot, mode: Mode, extra: &mut Extra) {
    if let Some(file) = extra.file.take() {
        release_file(slot, mode, &file, extra.remove_on_release);
        drop(file);
    }
    // SAFETY: as in `Held::drop`, whose hold this is.
    unsafe { slot.lock.unlock(mode) };
    if let Some(at) = extra.acquired_at {
        log_released(slot, extra.caller, at);
    }
}

#[cold]
fn log_released(slot: &Slot, caller: Option<&'static str>, at: Instant) {
    tracing::debug!(
        target: "lockutils",
        lock = &*slot.key,
        caller = caller,
        held_secs = at.elapsed().as_secs_f64(),
        "lock released"
    );
}

#[cold]
fn release_file(slot: &Slot, mode: Mode, file: &FileLock, remove: bool) {
    if !remove {
        return;
    }
    match file.remove_while_held(mode) {
        Ok(removed) => tracing::debug!(
            target: "lockutils",
            lock = &*slot.key,
            path = %file.path.display(),
            removed,
            "lock file removal on release"
        ),
        Err(e) => tracing::warn!(
            target: "lockutils",
            lock = &*slot.key,
            path = %file.path.display(),
            error = %e,
            "could not remove lock file on release"
        ),
    }
}

macro_rules! guard_accessors {
    () => {
        /// The lock's identity: its name after prefix and sanitising, which is
        /// also its lock file name.
        pub fn name(guard: &Self) -> &str {
            &guard.held.slot().key
        }

        /// The lock file, for external locks.
        pub fn path(guard: &Self) -> Option<&Path> {
            guard.held.file().map(|f| f.path.as_path())
        }

        /// How long the acquisition waited (zero when it did not wait).
        pub fn waited(guard: &Self) -> Duration {
            guard.held.waited()
        }

        /// Whether the lock is held shared or exclusive.
        pub fn mode(guard: &Self) -> Mode {
            guard.held.mode()
        }

        /// Releases the lock and removes its lock file (if this is an external
        /// lock and the file is not shared with another holder), using the safe
        /// removal protocol. Returns whether the file was removed.
        ///
        /// # Errors
        /// [`Error::LockFile`](crate::Error::LockFile) if the file cannot be
        /// examined or unlinked; the lock is released either way.
        pub fn unlock_and_remove(mut guard: Self) -> crate::Result<bool> {
            let removed = match guard.held.file() {
                Some(f) => f.remove_while_held(guard.held.mode()).map_err(|source| {
                    crate::Error::LockFile {
                        name: guard.held.slot().key.to_string(),
                        path: f.path.clone(),
                        action: "remove",
                        source,
                    }
                }),
                None => Ok(false),
            };
            guard.held.disarm_removal();
            drop(guard);
            removed
        }
    };
}

/// A lock held by the current thread, from a blocking acquisition such as
/// [`LockOptions::lock`](crate::LockOptions::lock).
///
/// It is `!Send`: it is released on the thread that took it, which is what
/// lets [`held_locks`](crate::held_locks) and self-deadlock detection work.
/// Helpers are associated functions (`LockGuard::name(&g)`) so they never
/// shadow anything.
///
/// ```
/// use lockutils_core::{LockGuard, LockOptions};
///
/// let g = LockOptions::new("doc-guard").lock().unwrap();
/// assert_eq!(LockGuard::name(&g), "doc-guard");
/// assert_eq!(LockGuard::path(&g), None); // not external
/// drop(g); // released here
/// ```
#[must_use = "if unused the lock is released immediately"]
#[clippy::has_significant_drop]
pub struct LockGuard<'r> {
    pub(crate) held: Held<'r>,
    /// Where this thread recorded the hold (see [`held`]); unused when the
    /// hold is recorded in its pinned slot.
    record: usize,
    _not_send: PhantomData<*const ()>,
}

impl<'r> LockGuard<'r> {
    #[inline]
    pub(crate) fn new(held: Held<'r>) -> Self {
        let record = if held.slot.is_owned() {
            held::own(held.slot());
            0
        } else {
            held::push(held.record())
        };
        LockGuard {
            held,
            record,
            _not_send: PhantomData,
        }
    }

    guard_accessors!();
}

impl Drop for LockGuard<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        if self.held.slot.is_owned() {
            held::disown(self.held.slot());
        } else {
            held::erase(self.record, self.held.record());
        }
    }
}

/// A lock held by an async task, from
/// [`LockOptions::lock_async`](crate::LockOptions::lock_async).
///
/// It is `Send` and `Sync`, so a future holding it across `.await` stays
/// `Send`.
///
/// ```
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let waker = std::task::Waker::noop();
/// #     let mut cx = std::task::Context::from_waker(&waker);
/// #     let mut f = std::pin::pin!(f);
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
/// # }
/// use lockutils_core::{AsyncLockGuard, LockOptions};
///
/// block_on(async {
///     let g = LockOptions::new("doc-async-guard").lock_async().await.unwrap();
///     assert_eq!(AsyncLockGuard::name(&g), "doc-async-guard");
/// });
/// ```
#[must_use = "if unused the lock is released immediately"]
#[clippy::has_significant_drop]
pub struct AsyncLockGuard<'r> {
    pub(crate) held: Held<'r>,
}

impl AsyncLockGuard<'_> {
    guard_accessors!();
}

fn debug_held(name: &str, held: &Held<'_>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.debug_struct(name)
        .field("name", &held.slot().key)
        .field("mode", &held.mode())
        .field(
            "backend",
            &if held.file().is_some() {
                "file"
            } else {
                "in-process"
            },
        )
        .field("path", &held.file().map(|f| &f.path))
        .field("waited", &held.waited())
        .finish()
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_held("LockGuard", &self.held, f)
    }
}

impl fmt::Debug for AsyncLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_held("AsyncLockGuard", &self.held, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync<T: Send + Sync>() {}

    #[test]
    fn async_guards_are_send_and_sync() {
        send_sync::<AsyncLockGuard<'static>>();
        send_sync::<crate::Acquire<'static, 'static>>();
        send_sync::<crate::StaticAcquire<'static>>();
    }
}
