//! Guards: a held lock, released when the guard drops (also on panic and when
//! a future holding it is dropped).

use std::fmt;
use std::marker::PhantomData;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::file::FileLock;
use crate::held;
use crate::raw::Mode;
use crate::registry::{Registry, Slot, SlotRef};

/// What every guard holds: the in-process lock, and the file lock if external.
/// Dropping it releases the file first, then the in-process lock.
pub(crate) struct Held<'r> {
    pub(crate) registry: &'r Registry,
    pub(crate) slot: Option<SlotRef>,
    pub(crate) mode: Mode,
    pub(crate) file: Option<FileLock>,
    pub(crate) waited: Duration,
    pub(crate) acquired_at: Option<Instant>,
    pub(crate) remove_on_release: bool,
    pub(crate) caller: Option<&'static str>,
}

impl Held<'_> {
    pub(crate) fn slot(&self) -> &Slot {
        self.slot.as_ref().expect("slot present until drop")
    }

    pub(crate) fn log_acquired(&self) {
        tracing::debug!(
            target: "lockutils",
            lock = &*self.slot().key,
            mode = self.mode.as_str(),
            caller = self.caller,
            path = self.file.as_ref().map(|f| tracing::field::display(f.path.display())),
            waited_secs = self.waited.as_secs_f64(),
            "lock acquired"
        );
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let Some(slot) = self.slot.take() else { return };
        if let Some(file) = self.file.take() {
            if self.remove_on_release {
                match file.remove_while_held(self.mode) {
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
            drop(file);
        }
        // SAFETY: `Held` is only built after the in-process lock was acquired
        // in `self.mode`, and this is the one place that releases it.
        unsafe { slot.lock.unlock(self.mode) };
        if let Some(at) = self.acquired_at {
            tracing::debug!(
                target: "lockutils",
                lock = &*slot.key,
                caller = self.caller,
                held_secs = at.elapsed().as_secs_f64(),
                "lock released"
            );
        }
        self.registry.checkin(slot);
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
            guard.held.file.as_ref().map(|f| f.path.as_path())
        }

        /// How long the acquisition waited (zero when it did not wait).
        pub fn waited(guard: &Self) -> Duration {
            guard.held.waited
        }

        /// Whether the lock is held shared or exclusive.
        pub fn mode(guard: &Self) -> Mode {
            guard.held.mode
        }

        /// Releases the lock and removes its lock file (if this is an external
        /// lock and the file is not shared with another holder), using the safe
        /// removal protocol. Returns whether the file was removed.
        ///
        /// # Errors
        /// [`Error::LockFile`](crate::Error::LockFile) if the file cannot be
        /// examined or unlinked; the lock is released either way.
        pub fn unlock_and_remove(mut guard: Self) -> crate::Result<bool> {
            let removed = match &guard.held.file {
                Some(f) => {
                    f.remove_while_held(guard.held.mode)
                        .map_err(|source| crate::Error::LockFile {
                            name: guard.held.slot().key.to_string(),
                            path: f.path.clone(),
                            action: "remove",
                            source,
                        })
                }
                None => Ok(false),
            };
            guard.held.remove_on_release = false;
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
    _not_send: PhantomData<*const ()>,
}

impl<'r> LockGuard<'r> {
    pub(crate) fn new(held: Held<'r>) -> Self {
        held::push(
            held.registry,
            held.slot(),
            held.mode,
            held.file.as_ref().map(|f| f.path.as_path()),
        );
        LockGuard {
            held,
            _not_send: PhantomData,
        }
    }

    guard_accessors!();
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        held::pop(self.held.slot());
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
        .field("mode", &held.mode)
        .field(
            "backend",
            &if held.file.is_some() {
                "file"
            } else {
                "in-process"
            },
        )
        .field("path", &held.file.as_ref().map(|f| &f.path))
        .field("waited", &held.waited)
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
