//! Which locks the current thread holds: for [`held_locks`] and for turning a
//! re-acquisition that would hang forever into [`Error::WouldDeadlock`].
//!
//! Only guards from blocking acquisitions are recorded: they are `!Send`, so
//! they are released on the thread that recorded them. Async guards belong to a
//! task, which may move between threads, and are not listed.
//!
//! [`Error::WouldDeadlock`]: crate::Error::WouldDeadlock

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use crate::raw::Mode;
use crate::registry::{Registry, Slot};

struct Entry {
    registry: *const Registry,
    slot: *const Slot,
    mode: Mode,
    path: Option<*const Path>,
}

thread_local! {
    static HELD: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

/// A lock held by the current thread, as listed by [`held_locks`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeldLock {
    /// The lock's identity (its lock file name).
    pub name: String,
    /// Shared or exclusive.
    pub mode: Mode,
    /// The lock file, for external locks.
    pub path: Option<PathBuf>,
}

/// The locks the current thread holds through blocking acquisitions, oldest
/// first, like oslo's `locks_held`.
///
/// ```
/// let g = lockutils_core::lock("doc-held").unwrap();
/// let held = lockutils_core::held_locks();
/// assert_eq!(held.len(), 1);
/// assert_eq!(held[0].name, "doc-held");
/// drop(g);
/// assert!(lockutils_core::held_locks().is_empty());
/// ```
pub fn held_locks() -> Vec<HeldLock> {
    HELD.with(|h| {
        h.borrow()
            .iter()
            .map(|e| HeldLock {
                // SAFETY: an entry lives exactly as long as its guard, which is
                // `!Send` and so alive on this thread; the guard keeps the slot
                // (an `Arc`) and the lock file path (a heap buffer) alive.
                name: unsafe { (*e.slot).key.to_string() },
                mode: e.mode,
                path: e.path.map(|p| unsafe { (*p).to_owned() }),
            })
            .collect()
    })
}

/// Whether this thread holds `slot` of `registry`.
#[inline]
pub(crate) fn holds(registry: &Registry, slot: &Slot) -> bool {
    HELD.with(|h| {
        h.borrow()
            .iter()
            .any(|e| std::ptr::eq(e.slot, slot) && std::ptr::eq(e.registry, registry))
    })
}

#[inline]
pub(crate) fn push(registry: &Registry, slot: &Slot, mode: Mode, path: Option<&Path>) {
    HELD.with(|h| {
        h.borrow_mut().push(Entry {
            registry,
            slot,
            mode,
            path: path.map(|p| p as *const Path),
        })
    });
}

#[inline]
pub(crate) fn pop(slot: &Slot) {
    HELD.with(|h| {
        let mut h = h.borrow_mut();
        if let Some(i) = h.iter().rposition(|e| std::ptr::eq(e.slot, slot)) {
            h.remove(i);
        }
    });
}
