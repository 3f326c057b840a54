//! Named lock containers: which in-process lock a name stands for.
//!
//! A [`Registry`] maps lock identities to in-process locks and forgets a name
//! as soon as nobody holds or waits for it, so unbounded name spaces (one lock
//! per instance UUID) use memory only for the locks in use.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use dashmap::DashMap;

use crate::raw::RawRwLock;

type Map = DashMap<Box<str>, Arc<Slot>, foldhash::fast::RandomState>;

/// One named in-process lock, shared by everyone using the name.
pub(crate) struct Slot {
    pub(crate) key: Box<str>,
    pub(crate) lock: RawRwLock,
    /// Holders, waiters and pinned call sites. Changed upwards only while the
    /// map's shard lock is held, which is what makes removal race-free.
    users: AtomicUsize,
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slot")
            .field("key", &self.key)
            .field("lock", &self.lock)
            .field("users", &self.users.load(Ordering::Relaxed))
            .finish()
    }
}

/// A use of a slot: counted (released through [`Registry::checkin`]) or
/// pinned by a call site for the life of the process.
pub(crate) enum SlotRef {
    Counted(Arc<Slot>),
    Pinned(&'static Slot),
}

impl std::ops::Deref for SlotRef {
    type Target = Slot;

    #[inline]
    fn deref(&self) -> &Slot {
        match self {
            SlotRef::Counted(s) => s,
            SlotRef::Pinned(s) => s,
        }
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
/// An entry exists only while someone holds, waits for or has pinned the name;
/// the last release removes it. The removal and a concurrent lookup of the same
/// name are serialized on the map's shard lock and decided by a user count that
/// only grows under that lock, so a lookup either finds the live entry or
/// creates a fresh one after the old one is gone — two holders can never end
/// up in two different entries for one name at the same time.
///
/// ```
/// use lockutils_core::{LockOptions, Registry};
///
/// static MY_LOCKS: Registry = Registry::new();
///
/// let guard = LockOptions::new("job-42").registry(&MY_LOCKS).lock().unwrap();
/// assert!(MY_LOCKS.contains("job-42"));
/// drop(guard);
/// assert!(MY_LOCKS.is_empty());
/// ```
pub struct Registry {
    map: OnceLock<Map>,
}

static GLOBAL: Registry = Registry::new();

impl Registry {
    /// An empty registry.
    pub const fn new() -> Self {
        Registry {
            map: OnceLock::new(),
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
    fn map(&self) -> &Map {
        self.map.get_or_init(Map::default)
    }

    /// Number of names currently held, waited for or pinned.
    pub fn len(&self) -> usize {
        self.map.get().map_or(0, |m| m.len())
    }

    /// Whether no name is in use.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the lock identity `key` (a lock file name, see
    /// [`lock_file_name`](crate::lock_file_name)) is in use.
    pub fn contains(&self, key: &str) -> bool {
        self.map.get().is_some_and(|m| m.contains_key(key))
    }

    /// The identities currently in use, in no particular order.
    pub fn names(&self) -> Vec<String> {
        self.map
            .get()
            .map(|m| m.iter().map(|e| e.key().to_string()).collect())
            .unwrap_or_default()
    }

    /// Finds or creates the lock for `key` and counts the caller as a user.
    #[inline]
    pub(crate) fn checkout(&self, key: &str) -> SlotRef {
        SlotRef::Counted(self.checkout_arc(key))
    }

    fn checkout_arc(&self, key: &str) -> Arc<Slot> {
        let map = self.map();
        if let Some(slot) = map.get(key) {
            // Counted while the shard's read lock is held: see the type docs.
            slot.users.fetch_add(1, Ordering::Relaxed);
            return Arc::clone(&slot);
        }
        let entry = map.entry(key.into()).or_insert_with(|| {
            Arc::new(Slot {
                key: key.into(),
                lock: RawRwLock::new(),
                users: AtomicUsize::new(0),
            })
        });
        entry.users.fetch_add(1, Ordering::Relaxed);
        Arc::clone(&entry)
    }

    /// Stops counting the caller as a user; the last user removes the entry.
    #[inline]
    pub(crate) fn checkin(&self, slot: SlotRef) {
        let SlotRef::Counted(slot) = slot else { return };
        if slot.users.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.map().remove_if(&*slot.key, |_, v| {
                Arc::ptr_eq(v, &slot) && v.users.load(Ordering::Acquire) == 0
            });
        }
    }
}

impl Registry {
    /// Keeps the entry for `key` for the life of the process and returns it,
    /// so a call site with a fixed name skips the lookup on every call.
    pub(crate) fn pin(&'static self, key: &str) -> &'static Slot {
        let leaked: &'static Arc<Slot> = Box::leak(Box::new(self.checkout_arc(key)));
        leaked
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
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::Mode;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn same_key_same_slot_and_gc_on_last_release() {
        let r = Registry::new();
        let a = r.checkout("k");
        let b = r.checkout("k");
        assert!(std::ptr::eq(&*a, &*b));
        r.checkin(a);
        assert!(r.contains("k"));
        r.checkin(b);
        assert!(r.is_empty());
    }

    /// Many threads repeatedly check out, lock, unlock and check in a few
    /// names, racing the removal of the last user against new lookups. If a
    /// lookup could ever get a slot that is being (or was) removed while
    /// another thread used a fresh one, two holders would overlap.
    #[test]
    fn removal_racing_lookup_never_admits_two_holders() {
        let r = Registry::new();
        let inside: Vec<AtomicUsize> = (0..4).map(|_| AtomicUsize::new(0)).collect();
        let bad = AtomicBool::new(false);
        std::thread::scope(|s| {
            for t in 0..8 {
                let (r, inside, bad) = (&r, &inside, &bad);
                s.spawn(move || {
                    for i in 0..20_000usize {
                        let k = (i * 7 + t) % 4;
                        let slot = r.checkout(&format!("name-{k}"));
                        if !slot.lock.try_lock(Mode::Exclusive, false) {
                            r.checkin(slot);
                            continue;
                        }
                        if inside[k].fetch_add(1, Ordering::SeqCst) != 0 {
                            bad.store(true, Ordering::SeqCst);
                        }
                        inside[k].fetch_sub(1, Ordering::SeqCst);
                        unsafe { slot.lock.unlock(Mode::Exclusive) };
                        r.checkin(slot);
                    }
                });
            }
        });
        assert!(!bad.load(Ordering::SeqCst), "two holders of one name");
        assert!(r.is_empty(), "left: {:?}", r.names());
    }
}
