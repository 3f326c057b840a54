//! Guards: a held lock, released when the guard drops (also on panic and when
//! a future holding it is dropped).

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::backend::{BackendHold, BoxHold, Capability, Location, Loss, LossFuture};
use crate::file::{FileLock, Unlink};
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
    /// The lock on a backend chosen with `LockOptions::backend`.
    backend: Option<BoxHold>,
    /// The metrics label of `backend`'s kind, kept for the release (which
    /// may come after the hold was taken out to be released on its backend).
    backend_kind: Option<&'static str>,
    /// Whether the acquisition completed (every layer taken): only then is
    /// the release a hold's end, timed and logged.
    acquired: bool,
    waited: Duration,
    /// Whether the acquisition waited for another holder, when a backend
    /// said ([`BackendHold::contended`]); else any wait counts.
    contended: Option<bool>,
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
        // Timed (a boxed `Extra` with the clock read) when someone listens:
        // debug logs or metrics; else only when the hold has extras anyway.
        let timed = timed();
        let extra = (timed || !waited.is_zero() || remove_on_release)
            .then(|| new_extra(waited, caller, remove_on_release));
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
        self.extra
            .get_or_insert_with(|| new_extra(Duration::ZERO, None, false))
    }

    /// This hold as a thread-local record, with its lock file: the
    /// `external(true)` one, or the one a [`FileBackend`] hold keeps (so a
    /// wait for that file on this thread is `WouldDeadlock` whichever way it
    /// was taken).
    ///
    /// [`FileBackend`]: crate::backend::FileBackend
    #[inline]
    fn record(&self) -> Record {
        let file = match &self.extra {
            None => None,
            Some(extra) => extra
                .file
                .as_ref()
                .or_else(|| extra.backend.as_deref().and_then(crate::backend::held_file)),
        };
        Record::new(self.slot(), self.mode(), file)
    }

    /// Adds the file lock, and the time spent waiting for it.
    pub(crate) fn attach_file(&mut self, file: FileLock, file_wait: Duration) {
        // A hold with no extras yet gets them, and its clock, right now.
        let fresh = self.extra.is_none();
        let extra = self.extra_mut();
        extra.file = Some(file);
        extra.waited += file_wait;
        if !fresh {
            extra.restart_hold_clock();
        }
    }

    /// Adds the backend's hold.
    pub(crate) fn attach_backend(&mut self, hold: BoxHold, backend_wait: Duration) {
        let fresh = self.extra.is_none();
        let extra = self.extra_mut();
        extra.contended = hold.contended().map(|c| c || !extra.waited.is_zero());
        extra.waited += backend_wait;
        extra.backend_kind = Some(crate::metrics::backend_of_url(hold.backend()));
        if !fresh {
            extra.restart_hold_clock();
        }
        extra.backend = Some(hold);
    }

    pub(crate) fn backend_hold(&self) -> Option<&dyn BackendHold> {
        self.extra.as_ref()?.backend.as_deref()
    }

    fn take_backend_hold(&mut self) -> Option<BoxHold> {
        self.extra.as_mut()?.backend.take()
    }

    /// Where the lock lives beyond this process.
    pub(crate) fn location(&self) -> Option<Location<'_>> {
        let extra = self.extra.as_ref()?;
        match (&extra.file, &extra.backend) {
            (Some(f), _) => Some(Location::Path(&f.path)),
            (None, Some(b)) => Some(b.location()),
            (None, None) => None,
        }
    }

    /// The error for a capability this hold's backend lacks.
    fn unsupported(&self, capability: Capability) -> crate::Error {
        let backend = match (self.backend_hold(), self.file()) {
            (Some(b), _) => b.backend().to_owned(),
            (None, Some(f)) => format!("file://{}", f.path.parent().unwrap_or(&f.path).display()),
            (None, None) => "in-process".to_owned(),
        };
        crate::Error::Unsupported {
            name: self.slot().key.to_string(),
            backend,
            capability,
        }
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

    /// How long the lock has been held, when the hold was timed.
    pub(crate) fn held_for(&self) -> Option<Duration> {
        Some(self.extra.as_ref()?.acquired_at?.elapsed())
    }

    fn disarm_removal(&mut self) {
        if let Some(e) = &mut self.extra {
            e.remove_on_release = false;
        }
    }

    #[inline]
    pub(crate) fn log_acquired(&mut self) {
        let (slot, mode) = (self.slot, self.mode());
        if let Some(extra) = &mut self.extra {
            extra.acquired = true;
            let backend = crate::metrics::backend_label(extra.file.is_some(), extra.backend_kind);
            let contended = extra.contended.unwrap_or(!extra.waited.is_zero());
            crate::metrics::acquired(backend, mode, &slot.key, extra.waited, contended);
            if extra.acquired_at.is_some() {
                log_acquired(&slot, mode, extra);
            }
        }
    }
}

impl Extra {
    /// A timed hold starts when its last layer is taken: the wait for the
    /// file or the backend is waiting, not holding.
    fn restart_hold_clock(&mut self) {
        if self.acquired_at.is_some() {
            self.acquired_at = Some(Instant::now());
        }
    }

    pub(crate) fn path(&self) -> Option<&Path> {
        match (&self.file, &self.backend) {
            (Some(f), _) => Some(f.path.as_path()),
            (None, Some(b)) => match b.location() {
                Location::Path(p) => Some(p),
                _ => None,
            },
            (None, None) => None,
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
        path = extra.path().map(|p| tracing::field::display(p.display())),
        waited_secs = extra.waited.as_secs_f64(),
        "lock acquired"
    );
}

impl Drop for Held<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        let slot = self.slot;
        // SAFETY (all three): `Held` is only built after the in-process lock
        // was acquired in this mode (exclusive for an uncounted hold), and
        // this is the one place that releases it.
        match self.extra.take() {
            None if slot.is_held() => unsafe { slot.unlock_held() },
            None => {
                unsafe { slot.lock.unlock(slot.mode()) };
                slot.release();
            }
            Some(extra) => release_and_keep_spare(slot, extra),
        }
    }
}

/// Whether holds are timed: only for someone who listens, DEBUG logs or
/// the `metrics` feature (external and waiting holds are timed anyway).
#[inline]
pub(crate) fn timed() -> bool {
    tracing::level_enabled!(tracing::Level::DEBUG) || crate::metrics::ENABLED
}

thread_local! {
    /// The extras of this thread's last released hold, emptied, for its next
    /// hold that needs some: an external lock cycle then allocates nothing.
    static SPARE: Cell<Option<Box<Extra>>> = const { Cell::new(None) };
}

/// Releases a hold that has extras, then keeps the emptied box as the
/// thread's spare: out of line, so the plain holds' inlined release stays
/// small.
#[cold]
#[inline(never)]
fn release_and_keep_spare(slot: SlotRef, mut extra: Box<Extra>) {
    // Its release reads the slot after unlocking (logs, metrics).
    let slot = slot.counted_while_held();
    release_with_extra(&slot, slot.mode(), &mut extra);
    slot.release();
    keep_spare(extra);
}

/// A new hold's extras, timed from now, in a box: the thread's spare one if
/// it has it. Out of line, like every path that needs extras.
#[inline(never)]
fn new_extra(waited: Duration, caller: Option<&'static str>, remove_on_release: bool) -> Box<Extra> {
    let extra = Extra {
        file: None,
        backend: None,
        backend_kind: None,
        acquired: false,
        waited,
        contended: None,
        acquired_at: Some(Instant::now()),
        caller,
        remove_on_release,
    };
    match SPARE.try_with(Cell::take) {
        Ok(Some(mut spare)) => {
            *spare = extra;
            spare
        }
        _ => Box::new(extra),
    }
}

/// Keeps a released hold's emptied extras as the thread's spare box. Called
/// where the box would be freed, so a record never outlives what it points
/// to any longer than before (see [`held`]).
#[inline]
fn keep_spare(extra: Box<Extra>) {
    debug_assert!(extra.file.is_none() && extra.backend.is_none());
    // In a thread's teardown the box is simply freed.
    let _ = SPARE.try_with(move |spare| spare.set(Some(extra)));
}

/// Releases a hold that has extras: the file first (closing it releases the
/// inter-process lock), then the in-process lock, then the log line.
#[inline]
fn release_with_extra(slot: &Slot, mode: Mode, extra: &mut Extra) {
    let backend = crate::metrics::backend_label(extra.file.is_some(), extra.backend_kind);
    // Dropping a backend hold releases the lock on the backend.
    drop(extra.backend.take());
    if let Some(file) = extra.file.take() {
        release_file(slot, mode, &file, extra.remove_on_release);
        drop(file);
    }
    // SAFETY: as in `Held::drop`, whose hold this is.
    unsafe { slot.lock.unlock(mode) };
    // An attempt that failed after its in-process step held nothing.
    if let (Some(at), true) = (extra.acquired_at, extra.acquired) {
        // The clock is read only for someone who listens.
        if crate::metrics::ENABLED {
            crate::metrics::released(backend, mode, &slot.key, at.elapsed());
        }
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
        Ok(Unlink::InUse(in_use)) => tracing::debug!(
            target: "lockutils",
            lock = &*slot.key,
            path = %file.path.display(),
            reason = %in_use,
            "lock file kept on release"
        ),
        Ok(unlink) => tracing::debug!(
            target: "lockutils",
            lock = &*slot.key,
            path = %file.path.display(),
            removed = unlink == Unlink::Removed,
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

        /// The lock file, for external locks (and locks on a file backend).
        pub fn path(guard: &Self) -> Option<&Path> {
            match guard.held.location()? {
                Location::Path(p) => Some(p),
                _ => None,
            }
        }

        /// Where the lock lives beyond this process (a lock file, a
        /// ZooKeeper node); `None` for an in-process lock.
        pub fn location(guard: &Self) -> Option<Location<'_>> {
            guard.held.location()
        }

        /// The URL of the backend holding the lock beyond this process, if
        /// it came from [`LockOptions::backend`](crate::LockOptions::backend)
        /// and its kin.
        pub fn backend(guard: &Self) -> Option<&str> {
            guard.held.backend_hold().map(|b| b.backend())
        }

        /// The fencing token: increases for successive holders of this lock.
        ///
        /// # Errors
        /// [`Error::Unsupported`](crate::Error::Unsupported), naming the
        /// backend, where it has no tokens (lock files, in-process locks).
        pub fn fencing_token(guard: &Self) -> crate::Result<u64> {
            guard
                .held
                .backend_hold()
                .and_then(|b| b.fencing_token())
                .ok_or_else(|| guard.held.unsupported(Capability::FencingTokens))
        }

        /// Whether the lock was lost while held (a session expired, an
        /// operator cleared it). Always `false` on backends that cannot lose
        /// a live holder's lock (in-process, lock files).
        pub fn is_lost(guard: &Self) -> bool {
            Self::loss(guard).is_some()
        }

        /// Why the lock was lost, if it was.
        pub fn loss(guard: &Self) -> Option<Loss> {
            guard.held.backend_hold()?.loss()
        }

        /// Resolves when the lock is lost (`Some`), or released first
        /// (`None`).
        ///
        /// # Errors
        /// [`Error::Unsupported`](crate::Error::Unsupported) where the
        /// backend cannot notify.
        pub fn lost(guard: &Self) -> crate::Result<LossFuture> {
            guard
                .held
                .backend_hold()
                .and_then(|b| b.lost())
                .ok_or_else(|| guard.held.unsupported(Capability::LossNotification))
        }

        /// Whether someone asked the holder to release (revocation).
        pub fn is_revoked(guard: &Self) -> bool {
            guard.held.backend_hold().is_some_and(|b| b.is_revoked())
        }

        /// Releases the lock, waiting until its backend confirms the release
        /// (which a process about to exit should do); dropping the guard
        /// releases without waiting for the answer.
        ///
        /// # Errors
        /// The backend's error; the lock is released either way.
        pub fn unlock(mut guard: Self) -> crate::Result<()> {
            guard.erase_record();
            let hold = guard.held.take_backend_hold();
            let result = hold.map_or(Ok(()), |h| h.release());
            drop(guard);
            result
        }

        /// How long the acquisition waited: zero when it did not wait, and
        /// also, unless someone listens (the `metrics` feature or DEBUG
        /// logs), when a contended in-process acquisition took the lock in
        /// its first short spin (well under a microsecond), which reads no
        /// clock.
        pub fn waited(guard: &Self) -> Duration {
            guard.held.waited()
        }

        /// How long the lock has been held so far. `None` only for an
        /// in-process hold taken without waiting (or in its first short
        /// spin) without the `metrics` feature and without DEBUG logging,
        /// which skips reading the clock to stay one compare-and-swap;
        /// external holds, holds that waited, and every hold with the
        /// `metrics` feature are timed.
        pub fn held(guard: &Self) -> Option<Duration> {
            guard.held.held_for()
        }

        /// Whether the lock is held shared or exclusive.
        pub fn mode(guard: &Self) -> Mode {
            guard.held.mode()
        }

        /// Releases the lock and removes its lock file (if this is an external
        /// lock, the file is not shared with another holder, and no other
        /// process has it open: see [`InUse`](crate::InUse)), using the safe
        /// removal protocol. Returns whether the file was removed.
        ///
        /// # Errors
        /// [`Error::LockFile`](crate::Error::LockFile) if the file cannot be
        /// examined or unlinked; the lock is released either way.
        pub fn unlock_and_remove(mut guard: Self) -> crate::Result<bool> {
            let removed = match guard.held.file() {
                Some(f) => f
                    .remove_while_held(guard.held.mode())
                    .map(|unlink| unlink == Unlink::Removed)
                    .map_err(|source| crate::Error::LockFile {
                        name: guard.held.slot().key.to_string(),
                        path: f.path.clone(),
                        action: "remove",
                        source,
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

/// [`LockGuard::record`] once the record is gone ahead of the drop.
const ERASED: usize = usize::MAX;

impl<'r> LockGuard<'r> {
    /// Erases the thread's record of this hold ahead of the drop, before
    /// the backend hold it may point into is taken away (see [`held`]).
    fn erase_record(&mut self) {
        if !self.held.slot.is_owned() && self.record != ERASED {
            held::erase(self.record, self.held.record());
            self.record = ERASED;
        }
    }

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
        } else if self.record != ERASED {
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

    /// Async holds are not recorded per thread: nothing to erase.
    fn erase_record(&mut self) {}

    /// [`unlock`](Self::unlock) without blocking the executor: releases the
    /// lock on its backend, waits (asynchronously) for the backend to
    /// confirm, then releases the in-process lock.
    ///
    /// # Errors
    /// The backend's error; the lock is released either way.
    pub async fn unlock_async(mut guard: Self) -> crate::Result<()> {
        guard.erase_record();
        let hold = guard.held.take_backend_hold();
        let result = match hold {
            Some(h) => h.release_async().await,
            None => Ok(()),
        };
        drop(guard);
        result
    }
}

fn debug_held(name: &str, held: &Held<'_>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.debug_struct(name)
        .field("name", &held.slot().key)
        .field("mode", &held.mode())
        .field(
            "backend",
            &match (held.file(), held.backend_hold()) {
                (Some(_), _) => "file",
                (None, Some(b)) => b.backend(),
                (None, None) => "in-process",
            },
        )
        .field("location", &held.location())
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
