//! The registry's map from lock identities to slots, reduced to the few
//! operations its collection protocol relies on (see `registry.rs`): a lookup
//! that counts a user under the entry's read lock, an insert under its write
//! lock, and a sweep that removes unused entries under the write lock.
//!
//! Normally a sharded `DashMap`; under `--cfg loom`, one loom `RwLock` around
//! a `HashMap`, so the model checker sees every lock and count.

use std::sync::Arc;

use crate::registry::Slot;

#[cfg(not(loom))]
type Inner = dashmap::DashMap<Box<str>, Arc<Slot>, foldhash::fast::RandomState>;
#[cfg(loom)]
type Inner = loom::sync::RwLock<std::collections::HashMap<Box<str>, Arc<Slot>>>;

pub(crate) struct SlotMap(Inner);

/// Four shards per CPU this process may run on, as `DashMap`'s default,
/// but counted with one `sched_getaffinity` call: the default asks
/// `available_parallelism`, which also reads the cgroup's CPU quota files
/// (about twenty system calls at every process's first lock).
#[cfg(not(loom))]
fn shard_amount() -> usize {
    // SAFETY: an all-zero `cpu_set_t` is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a writable `cpu_set_t` of the size passed.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    let cpus = if r == 0 {
        // SAFETY: `set` was filled in by the call above.
        usize::try_from(unsafe { libc::CPU_COUNT(&set) }).unwrap_or(1)
    } else {
        1
    };
    // A power of two above one, as `DashMap` requires.
    (cpus.max(1) * 4).next_power_of_two().clamp(4, 1024)
}

#[cfg(not(loom))]
impl SlotMap {
    pub(crate) fn new() -> Self {
        SlotMap(Inner::with_hasher_and_shard_amount(
            foldhash::fast::RandomState::default(),
            shard_amount(),
        ))
    }

    /// Runs `f` on the entry for `key`, if any, under the entry's read lock.
    #[inline]
    pub(crate) fn with<R>(&self, key: &str, f: impl FnOnce(&Arc<Slot>) -> R) -> Option<R> {
        self.0.get(key).map(|e| f(&e))
    }

    /// Runs `f` on the entry for `key`, made by `make` if there was none,
    /// under the entry's write lock. Also returns whether it was made.
    pub(crate) fn with_or_insert<R>(
        &self,
        key: &str,
        make: impl FnOnce() -> Arc<Slot>,
        f: impl FnOnce(&Arc<Slot>) -> R,
    ) -> (R, bool) {
        let mut created = false;
        let entry = self.0.entry(key.into()).or_insert_with(|| {
            created = true;
            make()
        });
        (f(&entry), created)
    }

    /// Keeps the entries for which `keep` is true, deciding each under its
    /// write lock.
    pub(crate) fn retain(&self, mut keep: impl FnMut(&Arc<Slot>) -> bool) {
        self.0.retain(|_, slot| keep(slot));
    }

    /// Visits every entry.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&Arc<Slot>)) {
        self.0.iter().for_each(|e| f(e.value()));
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(loom)]
impl SlotMap {
    pub(crate) fn new() -> Self {
        SlotMap(Inner::new(Default::default()))
    }

    pub(crate) fn with<R>(&self, key: &str, f: impl FnOnce(&Arc<Slot>) -> R) -> Option<R> {
        self.0.read().unwrap().get(key).map(f)
    }

    pub(crate) fn with_or_insert<R>(
        &self,
        key: &str,
        make: impl FnOnce() -> Arc<Slot>,
        f: impl FnOnce(&Arc<Slot>) -> R,
    ) -> (R, bool) {
        let mut map = self.0.write().unwrap();
        let mut created = false;
        let entry = map.entry(key.into()).or_insert_with(|| {
            created = true;
            make()
        });
        (f(entry), created)
    }

    pub(crate) fn retain(&self, mut keep: impl FnMut(&Arc<Slot>) -> bool) {
        self.0.write().unwrap().retain(|_, slot| keep(slot));
    }

    pub(crate) fn for_each(&self, f: impl FnMut(&Arc<Slot>)) {
        self.0.read().unwrap().values().for_each(f);
    }

    pub(crate) fn len(&self) -> usize {
        self.0.read().unwrap().len()
    }
}
