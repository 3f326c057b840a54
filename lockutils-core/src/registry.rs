//! Named lock containers: which in-process lock a name stands for.
//!
//! A [`Registry`] maps lock identities to in-process locks. Names are
//! unbounded (one lock per instance UUID), so entries nobody uses are
//! collected; but a name locked in a loop must not pay for creating and
//! destroying its entry on every call. So an entry that goes idle stays cached
//! briefly and is collected by a sweep: one runs inline once enough new names
//! have been inserted (which bounds memory), and one runs on the timer thread
//! shortly after a name goes idle (which brings the registry back to empty).

use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use crate::raw::{Mode, RawRwLock};
use crate::slot_map::SlotMap;
use crate::sync;

/// How long after a name goes idle the deferred sweep runs.
#[cfg_attr(loom, allow(dead_code))]
const SWEEP_DELAY: Duration = Duration::from_millis(100);
/// New names inserted between two inline sweeps, beyond the live ones.
const SWEEP_SLACK: usize = 1024;

/// One named in-process lock, shared by everyone using the name. Aligned to
/// a cache line, so that the locks of different names never share one
/// (threads on different names would otherwise slow each other down), which
/// also leaves a [`SlotRef`] its four tag bits.
#[repr(align(64))]
pub(crate) struct Slot {
    pub(crate) key: Box<str>,
    pub(crate) lock: RawRwLock,
    /// Holders, waiters and pinned call sites, except the exclusive holders
    /// that took the lock during their lookup (see [`SlotRef`]): a held lock
    /// keeps its slot by itself. Only ever incremented while the map's shard
    /// lock is held or the lock is held, which is what makes collection safe.
    users: sync::AtomicUsize,
    /// The registry map owning this slot (it outlives the slot).
    inner: *const Inner,
    /// The thread id of an exclusive holder that took the short path of a
    /// pinned call site; 0 when there is none. Read and written only by
    /// [`held`](crate::held), which states the rule.
    pub(crate) owner: AtomicUsize,
}

// SAFETY: `inner` points at the `Inner` that owns this slot through its map,
// which is `Sync` and outlives the slot; everything else is `Send + Sync`.
unsafe impl Send for Slot {}
// SAFETY: as above.
unsafe impl Sync for Slot {}

impl Slot {
    /// Held, awaited, or counted. The lock's state is read first: a holder
    /// that counts itself before unlocking (see [`SlotRef::unlock_held`])
    /// shows in one or the other.
    fn in_use(&self) -> bool {
        self.lock.is_busy() || self.users.load(sync::Ordering::Acquire) != 0
    }
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slot")
            .field("key", &self.key)
            .field("lock", &self.lock)
            .field("users", &self.users.load(sync::Ordering::Relaxed))
            .finish()
    }
}

/// A use of a slot: counted (released through [`Registry::checkin`]),
/// held (an exclusive hold taken during the lookup), or pinned by a call
/// site for the life of the process. One word: a pointer to the slot whose
/// low bits say which.
///
/// A counted use is a plain pointer: the slot cannot be collected while its
/// user count is non-zero, and the registry outlives every use (guards borrow
/// it), so no reference count is touched per acquisition. A held use is not
/// even counted: the lock was taken under the map's shard lock, and a sweep
/// keeps every slot whose lock is held or awaited, so the hold keeps the slot
/// until its release, whose last touch of the slot is the unlocking
/// `compare_exchange` (see [`SlotRef::unlock_held`]).
#[derive(Clone, Copy)]
pub(crate) struct SlotRef(NonNull<Slot>);

const COUNTED: usize = 1;
/// Tag: the hold is recorded in the slot's `owner`, not the thread-local list.
const OWNED: usize = 2;
/// Tag: the hold is shared (only meaningful in a guard's `SlotRef`).
const SHARED: usize = 4;
/// Tag: an exclusive hold taken during the lookup, not counted.
const HELD: usize = 8;
const TAGS: usize = COUNTED | OWNED | SHARED | HELD;

impl SlotRef {
    fn counted(slot: NonNull<Slot>) -> Self {
        const { assert!(std::mem::align_of::<Slot>() > TAGS) };
        // SAFETY: one byte past an aligned slot is still inside it: non-null.
        SlotRef(unsafe { NonNull::new_unchecked(slot.as_ptr().wrapping_byte_add(COUNTED)) })
    }

    /// An exclusive hold taken during the lookup (see the type docs).
    fn held(slot: NonNull<Slot>) -> Self {
        // SAFETY: eight bytes past a 64-aligned slot is still inside it.
        SlotRef(unsafe { NonNull::new_unchecked(slot.as_ptr().wrapping_byte_add(HELD)) })
    }

    #[inline]
    pub(crate) fn pinned(slot: &'static Slot) -> Self {
        SlotRef(NonNull::from(slot))
    }

    /// A pinned use whose hold is recorded in the slot's `owner`.
    #[inline]
    pub(crate) fn pinned_owned(slot: &'static Slot) -> Self {
        // SAFETY: two bytes past an aligned slot is still inside it: non-null.
        SlotRef(unsafe {
            NonNull::new_unchecked((slot as *const Slot as *mut Slot).wrapping_byte_add(OWNED))
        })
    }

    /// The same use, tagged with the mode it holds the lock in.
    #[inline]
    pub(crate) fn with_mode(self, mode: Mode) -> Self {
        let shared = if mode == Mode::Shared { SHARED } else { 0 };
        let tags = (self.0.as_ptr() as usize & (COUNTED | OWNED | HELD)) | shared;
        let base = self
            .0
            .as_ptr()
            .wrapping_byte_sub(self.0.as_ptr() as usize & TAGS);
        // SAFETY: a few bytes past an aligned slot is still inside it.
        SlotRef(unsafe { NonNull::new_unchecked(base.wrapping_byte_add(tags)) })
    }

    /// The mode tag (exclusive unless `with_mode(Shared)` was applied).
    #[inline]
    pub(crate) fn mode(self) -> Mode {
        if self.0.as_ptr() as usize & SHARED != 0 {
            Mode::Shared
        } else {
            Mode::Exclusive
        }
    }

    /// Stops counting this use; the last user of a name schedules the
    /// deferred sweep of its registry.
    #[inline]
    pub(crate) fn release(self) {
        if !self.is_counted() {
            return;
        }
        // Read before the count drops: from then on a sweep may free the slot.
        let inner = self.inner;
        if self.users.fetch_sub(1, sync::Ordering::Release) == 1 {
            // SAFETY: every use of a slot borrows its registry, which keeps
            // `Inner` alive (a registry drops its map only when dropped).
            unsafe { (*inner).schedule_sweep() }
        }
    }

    #[inline]
    fn is_counted(self) -> bool {
        self.0.as_ptr() as usize & COUNTED != 0
    }

    /// Whether this is an uncounted hold taken during the lookup.
    #[inline]
    pub(crate) fn is_held(self) -> bool {
        self.0.as_ptr() as usize & HELD != 0
    }

    /// The same hold, counted from now on, for a release that reads the slot
    /// after unlocking it (logs, metrics). Counting outside the shard lock is
    /// safe here because the lock is held: a sweep sees the lock busy, or,
    /// reading the lock's state before the count, sees the count.
    #[inline]
    pub(crate) fn counted_while_held(self) -> Self {
        if !self.is_held() {
            return self;
        }
        self.users.fetch_add(1, sync::Ordering::Relaxed);
        let base = self.0.as_ptr().wrapping_byte_sub(self.0.as_ptr() as usize & TAGS);
        // SAFETY: one byte past an aligned slot is still inside it.
        SlotRef(unsafe { NonNull::new_unchecked(base.wrapping_byte_add(COUNTED)) })
    }

    /// Releases an uncounted exclusive hold ([`is_held`](Self::is_held)) and
    /// schedules its registry's sweep. Uncontended, the unlocking
    /// `compare_exchange` is the last touch of the slot, which a sweep may
    /// free right after; otherwise the hold is counted first (as
    /// [`counted_while_held`](Self::counted_while_held)), so the slow
    /// unlock's queue work runs on a slot nobody can collect.
    ///
    /// # Safety
    /// `self` must be an uncounted exclusive hold, released only here.
    #[inline]
    pub(crate) unsafe fn unlock_held(self) {
        debug_assert!(self.is_held());
        // Read before the unlock: from then on a sweep may free the slot.
        let inner = self.inner;
        // The hold keeps the slot until this atomic operation, its last
        // touch of the slot when it succeeds (as `Arc`'s drop, whose last
        // touch is the count's `fetch_sub`).
        if self.lock.try_unlock_exclusive() {
            // SAFETY: every use of a slot borrows its registry, which keeps
            // `Inner` alive (a registry drops its map only when dropped).
            unsafe { (*inner).schedule_sweep() }
            return;
        }
        let counted = self.counted_while_held();
        // SAFETY: this hold is exclusive and not released yet; the count
        // keeps the slot through the slow unlock.
        unsafe { counted.lock.unlock(Mode::Exclusive) };
        counted.release();
    }

    #[inline]
    pub(crate) fn is_owned(self) -> bool {
        self.0.as_ptr() as usize & OWNED != 0
    }
}

// SAFETY: a `SlotRef` is a shared reference to a `Slot` (which is `Sync`),
// kept valid by the user count as explained above.
unsafe impl Send for SlotRef {}
// SAFETY: as above.
unsafe impl Sync for SlotRef {}

impl std::ops::Deref for SlotRef {
    type Target = Slot;

    #[inline]
    fn deref(&self) -> &Slot {
        // SAFETY: counted uses keep the slot alive, pinned ones are 'static;
        // see the type docs. Clearing the tag gives the slot's address.
        unsafe {
            let tag = self.0.as_ptr() as usize & TAGS;
            &*self.0.as_ptr().wrapping_byte_sub(tag)
        }
    }
}

struct Inner {
    /// This `Inner`, for the timer thread's deferred sweep.
    #[cfg_attr(loom, allow(dead_code))]
    this: Weak<Inner>,
    map: SlotMap,
    /// Names inserted since the last inline sweep.
    inserted: AtomicUsize,
    /// Inserts that trigger the next inline sweep.
    sweep_after: AtomicUsize,
    /// Whether a deferred sweep is scheduled, as [`sweep_mark`] of the fork
    /// generation it was scheduled in (0: none): a forked child, whose timer
    /// forgets its parent's jobs, schedules its own.
    sweep_scheduled: AtomicU64,
    /// One sweep at a time, so the insert count stays exact.
    sweeping: sync::Mutex<()>,
}

/// The mark of a sweep scheduled in this fork generation: never 0.
fn sweep_mark() -> u64 {
    crate::fd_cache::generation().wrapping_add(1).max(1)
}

impl Drop for Inner {
    /// A name still in use when its registry goes away was leaked by its user
    /// (live guards and futures borrow the registry): a forgotten guard, say.
    /// Its slot is leaked with it rather than freed, so the records of that
    /// hold (see [`held`](crate::held)) can never dangle.
    fn drop(&mut self) {
        self.map.for_each(|slot| {
            if slot.in_use() {
                std::mem::forget(Arc::clone(slot));
            }
        });
    }
}

impl Inner {
    #[inline]
    fn schedule_sweep(&self) {
        let mark = sweep_mark();
        if self.sweep_scheduled.load(Ordering::Relaxed) == mark
            || self.sweep_scheduled.swap(mark, Ordering::AcqRel) == mark
        {
            return;
        }
        // Models sweep explicitly: no timer thread under loom.
        #[cfg(loom)]
        return;
        #[cfg(not(loom))]
        let weak = self.this.clone();
        #[cfg(not(loom))]
        crate::timer::run_at(std::time::Instant::now() + SWEEP_DELAY, move || {
            if let Some(inner) = weak.upgrade() {
                // Cleared first: a name going idle during the sweep schedules
                // the next one, so none is ever left behind.
                inner.sweep_scheduled.store(0, Ordering::Release);
                inner.sweep();
            }
        });
    }

    /// Removes every entry nobody uses. Returns how many were removed.
    fn sweep(&self) -> usize {
        let _one_at_a_time = self.sweeping.lock();
        // Inserts made while this sweep runs still count towards the next one.
        let counted = self.inserted.load(Ordering::Relaxed);
        let (mut removed, mut live) = (0, 0);
        // Runs under each shard's write lock; users are only added under a
        // shard lock or by a holder, and locks are only taken under a shard
        // lock or by counted users, so an entry seen unused here has no
        // holder or waiter and nobody can be about to start using it.
        self.map.retain(|slot| {
            let keep = slot.in_use();
            if keep {
                live += 1;
            } else {
                removed += 1;
            }
            keep
        });
        self.inserted.fetch_sub(counted, Ordering::Relaxed);
        self.sweep_after
            .store(SWEEP_SLACK + live, Ordering::Relaxed);
        removed
    }
}

/// A container of named locks: oslo's `Semaphores`.
///
/// Locks taken through different registries with the same name do not exclude
/// each other in-process (external locks still do, through their file). Most
/// code uses [`Registry::global`]; give a component its own registry to keep
/// its names apart. `Registry::new` is `const`, so a registry can be a `static`.
///
/// # Garbage collection
/// A name is *in use* while someone holds it, waits for it, or has pinned it
/// (a [`StaticLock`](crate::StaticLock) call site). An entry whose name is no
/// longer in use stays cached for up to about 100 ms, so a name locked in a
/// loop keeps its entry; then a sweep on the timer thread removes it. Memory
/// stays bounded even under a flood of new names: after about
/// 1024 + (entries in use) new names, an inline sweep collects the idle ones.
/// [`collect`](Self::collect) removes idle entries at once.
///
/// Collection never races lookups: users are counted (or the lock taken)
/// while the map's shard lock is held, and an entry is removed only under
/// that shard's write lock after seeing it unheld and unused — so a lookup
/// finds either the live entry or,
/// once it was removed, creates a fresh one, and two holders can never be
/// split across two entries for one name.
///
/// ```
/// use lockutils_core::{LockOptions, Registry};
///
/// static MY_LOCKS: Registry = Registry::new();
///
/// let guard = LockOptions::new("job-42").registry(&MY_LOCKS).lock().unwrap();
/// assert!(MY_LOCKS.contains("job-42"));
/// drop(guard);
/// assert!(MY_LOCKS.is_empty()); // no name in use
/// MY_LOCKS.collect();
/// assert_eq!(MY_LOCKS.entries(), 0); // nothing cached either
/// ```
pub struct Registry {
    inner: OnceLock<Arc<Inner>>,
}

static GLOBAL: Registry = Registry::new();

impl Registry {
    /// An empty registry.
    pub const fn new() -> Self {
        Registry {
            inner: OnceLock::new(),
        }
    }

    /// The process-wide default registry.
    ///
    /// ```
    /// let _g = lockutils_core::lock("doc-global").unwrap();
    /// assert!(lockutils_core::Registry::global().contains("doc-global"));
    /// ```
    pub const fn global() -> &'static Registry {
        &GLOBAL
    }

    #[inline]
    fn inner(&self) -> &Arc<Inner> {
        self.inner.get_or_init(|| {
            Arc::new_cyclic(|this| Inner {
                this: this.clone(),
                map: SlotMap::new(),
                inserted: AtomicUsize::new(0),
                sweep_after: AtomicUsize::new(SWEEP_SLACK),
                sweep_scheduled: AtomicU64::new(0),
                sweeping: sync::Mutex::new(()),
            })
        })
    }

    /// Number of names in use (held, waited for or pinned).
    ///
    /// ```
    /// let r = lockutils_core::Registry::new();
    /// assert_eq!(r.len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.inner.get().map_or(0, |i| {
            let mut n = 0;
            i.map.for_each(|slot| {
                n += usize::from(slot.in_use());
            });
            n
        })
    }

    /// Whether no name is in use.
    ///
    /// ```
    /// assert!(lockutils_core::Registry::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of entries stored: names in use plus idle names not collected
    /// yet. This is what the registry costs in memory.
    ///
    /// ```
    /// let r = lockutils_core::Registry::new();
    /// drop(lockutils_core::LockOptions::new("x").registry(&r).lock().unwrap());
    /// assert!(r.entries() <= 1);
    /// r.collect();
    /// assert_eq!(r.entries(), 0);
    /// ```
    pub fn entries(&self) -> usize {
        self.inner.get().map_or(0, |i| i.map.len())
    }

    /// Whether the lock identity `key` (a lock file name, see
    /// [`lock_file_name`](crate::lock_file_name)) is in use.
    ///
    /// ```
    /// let r = lockutils_core::Registry::new();
    /// let g = lockutils_core::LockOptions::new("x").prefix("p").registry(&r).lock().unwrap();
    /// assert!(r.contains("p-x"));
    /// # drop(g);
    /// ```
    pub fn contains(&self, key: &str) -> bool {
        self.inner.get().is_some_and(|i| {
            i.map
                .with(key, |s| s.in_use())
                .unwrap_or(false)
        })
    }

    /// The identities in use, in no particular order.
    ///
    /// ```
    /// let r = lockutils_core::Registry::new();
    /// let g = lockutils_core::LockOptions::new("x").registry(&r).lock().unwrap();
    /// assert_eq!(r.names(), vec!["x".to_string()]);
    /// # drop(g);
    /// ```
    pub fn names(&self) -> Vec<String> {
        self.inner
            .get()
            .map(|i| {
                let mut names = Vec::new();
                i.map.for_each(|slot| {
                    if slot.in_use() {
                        names.push(slot.key.to_string());
                    }
                });
                names
            })
            .unwrap_or_default()
    }

    /// Removes the entries of all names not in use now. Returns how many were
    /// removed. Never needed for correctness; the registry collects by itself.
    ///
    /// ```
    /// let r = lockutils_core::Registry::new();
    /// drop(lockutils_core::LockOptions::new("x").registry(&r).lock().unwrap());
    /// r.collect();
    /// assert_eq!(r.entries(), 0);
    /// ```
    pub fn collect(&self) -> usize {
        self.inner.get().map_or(0, |i| i.sweep())
    }

    /// Finds or creates the lock for `key` and counts the caller as a user.
    #[inline]
    pub(crate) fn checkout(&self, key: &str) -> SlotRef {
        let inner = self.inner();
        // Counted while the shard's read lock is held: see the type docs.
        let found = inner.map.with(key, |slot| {
            slot.users.fetch_add(1, sync::Ordering::Relaxed);
            NonNull::from(&**slot)
        });
        match found {
            Some(slot) => SlotRef::counted(slot),
            None => self.insert(inner, key),
        }
    }

    /// Finds the lock for `key` and takes it exclusively if that needs no
    /// waiting, during the lookup: `Ok` with an uncounted hold (see
    /// [`SlotRef`]). Otherwise (busy, or a new name) `Err` with a counted use,
    /// as [`checkout`](Self::checkout).
    #[inline]
    pub(crate) fn checkout_exclusive(&self, key: &str, fair: bool) -> Result<SlotRef, SlotRef> {
        let inner = self.inner();
        // Taken or counted while the shard's read lock is held.
        let found = inner.map.with(key, |slot| {
            let at = NonNull::from(&**slot);
            if slot.lock.try_lock(Mode::Exclusive, fair) {
                return Ok(at);
            }
            slot.users.fetch_add(1, sync::Ordering::Relaxed);
            Err(at)
        });
        match found {
            Some(Ok(slot)) => Ok(SlotRef::held(slot)),
            Some(Err(slot)) => Err(SlotRef::counted(slot)),
            None => Err(self.insert(inner, key)),
        }
    }

    #[cold]
    fn insert(&self, inner: &Arc<Inner>, key: &str) -> SlotRef {
        let (slot, created) = inner.map.with_or_insert(
            key,
            || {
                Arc::new(Slot {
                    inner: Arc::as_ptr(inner),
                    key: key.into(),
                    lock: RawRwLock::new(),
                    users: sync::AtomicUsize::new(0),
                    owner: AtomicUsize::new(0),
                })
            },
            |entry| {
                entry.users.fetch_add(1, sync::Ordering::Relaxed);
                NonNull::from(&**entry)
            },
        );
        if created
            && inner.inserted.fetch_add(1, Ordering::Relaxed) + 1
                >= inner.sweep_after.load(Ordering::Relaxed)
        {
            inner.sweep();
        }
        SlotRef::counted(slot)
    }

    /// Stops counting the caller as a user; see [`SlotRef::release`].
    #[inline]
    pub(crate) fn checkin(&self, slot: SlotRef) {
        slot.release();
    }

    /// Keeps the entry for `key` for the life of the process and returns it,
    /// so a call site with a fixed name skips the lookup on every call.
    pub(crate) fn pin(&'static self, key: &str) -> &'static Slot {
        let slot = self.checkout(key);
        let slot: *const Slot = &*slot;
        // SAFETY: this use is never checked in, so the slot is never collected,
        // and a registry that is `'static` never drops its map.
        unsafe { &*slot }
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("in_use", &self.len())
            .field("entries", &self.entries())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::raw::Mode;
    use std::sync::atomic::AtomicBool;
    use std::time::Instant;

    #[test]
    fn same_key_same_slot_and_collected_when_idle() {
        let r = Registry::new();
        let a = r.checkout("k");
        let b = r.checkout("k");
        assert!(std::ptr::eq(&*a, &*b));
        r.checkin(a);
        assert!(r.contains("k"));
        r.checkin(b);
        assert!(r.is_empty());
        assert_eq!(r.collect(), 1);
        assert_eq!(r.entries(), 0);
    }

    #[test]
    fn deferred_sweep_empties_the_registry() {
        static R: Registry = Registry::new();
        for i in 0..100 {
            let s = R.checkout(&format!("n{i}"));
            R.checkin(s);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while R.entries() != 0 {
            assert!(Instant::now() < deadline, "sweep never ran");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn inline_sweep_bounds_memory() {
        let r = Registry::new();
        for i in 0..10 * SWEEP_SLACK {
            let s = r.checkout(&format!("n{i}"));
            r.checkin(s);
            assert!(r.entries() <= SWEEP_SLACK + 1, "{} entries", r.entries());
        }
    }

    /// Runs `user(registry, round, key, enter)` for 20,000 rounds on each of
    /// `threads` threads, over `names` names, while another thread sweeps
    /// without pause. A user calls `enter` while it holds the lock of `key`;
    /// `enter` stays inside long enough for a sweep or another holder to
    /// come by, and notes two holders of one name at once. Afterwards:
    /// nobody overlapped, and the registry ends empty.
    fn race_with_collection(
        names: usize,
        threads: usize,
        user: impl Fn(&Registry, usize, &str, &dyn Fn()) + Sync,
    ) {
        let r = Registry::new();
        let inside: Vec<AtomicUsize> = (0..names).map(|_| AtomicUsize::new(0)).collect();
        let bad = AtomicBool::new(false);
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    r.collect();
                }
            });
            let workers: Vec<_> = (0..threads)
                .map(|t| {
                    let (r, inside, bad, user) = (&r, &inside, &bad, &user);
                    s.spawn(move || {
                        for i in 0..20_000usize {
                            let k = (i * 7 + t) % names;
                            let enter = || {
                                if inside[k].fetch_add(1, Ordering::SeqCst) != 0 {
                                    bad.store(true, Ordering::SeqCst);
                                }
                                std::thread::yield_now();
                                inside[k].fetch_sub(1, Ordering::SeqCst);
                            };
                            user(r, i, &format!("name-{k}"), &enter);
                        }
                    })
                })
                .collect();
            for w in workers {
                w.join().unwrap();
            }
            done.store(true, Ordering::Relaxed);
        });
        assert!(!bad.load(Ordering::SeqCst), "two holders of one name");
        assert!(r.is_empty(), "left in use: {:?}", r.names());
        r.collect();
        assert_eq!(r.entries(), 0);
    }

    /// Many threads repeatedly check out, lock, unlock and check in a few
    /// names while sweeps run, racing collection against new lookups. If a
    /// lookup could ever get a slot that is being (or was) removed while
    /// another thread used a fresh one, two holders would overlap.
    #[test]
    fn collection_racing_lookup_never_admits_two_holders() {
        race_with_collection(4, 8, |r, _, key, enter| {
            let slot = r.checkout(key);
            if slot.lock.try_lock(Mode::Exclusive, false) {
                enter();
                // SAFETY: taken just above.
                unsafe { slot.lock.unlock(Mode::Exclusive) };
            }
            r.checkin(slot);
        });
    }

    /// As above, with holds taken during the lookup (uncounted) beside
    /// counted ones and waiters that give up: a waiter leaving can drop the
    /// user count to zero while an uncounted holder's slow release still
    /// works on the slot. Run under AddressSanitizer and valgrind in CI
    /// (scripts/ci-engine.sh), where a slot freed under a holder is an error.
    #[test]
    fn uncounted_holds_racing_leaving_waiters_and_collection() {
        race_with_collection(2, 6, |r, i, key, enter| {
            let slot = match r.checkout_exclusive(key, false) {
                Ok(held) => {
                    enter();
                    // SAFETY: an uncounted exclusive hold, released once.
                    unsafe { held.unlock_held() };
                    return;
                }
                Err(slot) => slot,
            };
            // Busy: wait a moment as a thread, or queue as a task and give
            // up at once.
            let got = slot.lock.try_lock(Mode::Exclusive, false)
                || match slot.lock.enqueue(Mode::Exclusive, false, i % 2 == 1) {
                    None => true,
                    Some(w) if i % 2 == 0 => slot
                        .lock
                        .wait_thread(&w, Some(Instant::now() + Duration::from_micros(50))),
                    Some(w) => slot.lock.cancel(&w),
                };
            if got {
                enter();
                // SAFETY: taken just above.
                unsafe { slot.lock.unlock(Mode::Exclusive) };
            }
            r.checkin(slot);
        });
    }
}
