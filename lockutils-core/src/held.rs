//! Which locks the current thread holds: for [`held_locks`] and for turning a
//! re-acquisition that would hang forever into [`Error::WouldDeadlock`].
//!
//! Only guards from blocking acquisitions are recorded: they are `!Send`, so
//! they are released on the thread that recorded them. Async guards belong to a
//! task, which may move between threads, and are not listed.
//!
//! Recording is on the hot path of every blocking acquisition, so a record is
//! one word: a pointer to the lock's slot, or (for holds that carry more, such
//! as a lock file path) to the hold's boxed extras, tagged in its low bits.
//!
//! [`Error::WouldDeadlock`]: crate::Error::WouldDeadlock

use std::cell::{Cell, RefCell};
use std::path::PathBuf;

use crate::guard::Extra;
use crate::raw::Mode;
use crate::registry::Slot;

/// Tag bit: the hold is shared.
const SHARED: usize = 0b01;
/// Tag bit: the pointer is to the hold's `Extra`, not to its `Slot`.
const EXTRA: usize = 0b10;
const TAGS: usize = SHARED | EXTRA;
const INLINE: usize = 8;

/// A recorded hold, as a tagged pointer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Record(usize);

impl Record {
    /// Records a hold of `slot` in `mode`, with `extra` if the hold has one.
    pub(crate) fn new(slot: &Slot, mode: Mode, extra: Option<&Extra>) -> Self {
        const { assert!(std::mem::align_of::<Slot>() > TAGS) };
        const { assert!(std::mem::align_of::<Extra>() > TAGS) };
        let shared = if mode == Mode::Shared { SHARED } else { 0 };
        match extra {
            None => Record(slot as *const Slot as usize | shared),
            Some(e) => Record(e as *const Extra as usize | EXTRA | shared),
        }
    }

    /// The slot, and the extras if any.
    ///
    /// # Safety
    /// The hold this record describes must still be alive.
    unsafe fn parts<'a>(self) -> (&'a Slot, Option<&'a Extra>) {
        let ptr = self.0 & !TAGS;
        if self.0 & EXTRA != 0 {
            // SAFETY: the caller guarantees the hold (which owns the boxed
            // extras) is alive; the box never moves.
            let extra = unsafe { &*(ptr as *const Extra) };
            // SAFETY: as above; the extras point at the held slot.
            (unsafe { &*extra.slot }, Some(extra))
        } else {
            // SAFETY: the hold keeps its slot alive.
            (unsafe { &*(ptr as *const Slot) }, None)
        }
    }
}

/// The current thread's records, oldest first: the first few in a
/// destructor-free thread-local (a plain load per access), the rest in a
/// vector that only a thread holding many locks at once ever touches.
struct Stack {
    len: Cell<usize>,
    inline: [Cell<usize>; INLINE],
}

thread_local! {
    /// Its address identifies the thread while it runs.
    static TOKEN: u8 = const { 0 };
    static HELD: Stack = const {
        Stack { len: Cell::new(0), inline: [const { Cell::new(0) }; INLINE] }
    };
    static SPILL: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

impl Stack {
    fn get(&self, i: usize) -> Record {
        Record(match self.inline.get(i) {
            Some(c) => c.get(),
            None => SPILL.with(|s| s.borrow()[i - INLINE]),
        })
    }

    fn records(&self) -> impl Iterator<Item = Record> + '_ {
        (0..self.len.get()).map(|i| self.get(i))
    }
}

/// A non-zero word identifying the current thread while it runs.
#[inline]
pub(crate) fn token() -> usize {
    TOKEN.with(|t| t as *const u8 as usize)
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
    let mut held = HELD.with(|h| {
        h.records()
            .map(|r| {
                // SAFETY: a record lives exactly as long as its guard, which is
                // `!Send` and so alive on this thread.
                let (slot, extra) = unsafe { r.parts() };
                HeldLock {
                    name: slot.key.to_string(),
                    mode: if r.0 & SHARED != 0 {
                        Mode::Shared
                    } else {
                        Mode::Exclusive
                    },
                    path: extra.and_then(Extra::path).map(Into::into),
                }
            })
            .collect::<Vec<_>>()
    });
    // Short-path holds of pinned call sites record themselves in their slot.
    held.extend(
        crate::registry::pinned_owned_by(token())
            .into_iter()
            .map(|slot| HeldLock {
                name: slot.key.to_string(),
                mode: Mode::Exclusive,
                path: None,
            }),
    );
    held
}

/// Whether this thread holds `slot`. Slots are distinct allocations, so the
/// same name in two registries never compares equal.
pub(crate) fn holds(slot: &Slot) -> bool {
    if slot.owner.load(std::sync::atomic::Ordering::Relaxed) == token() {
        return true;
    }
    HELD.with(|h| {
        h.records().any(|r| {
            // SAFETY: as in `held_locks`.
            let (held, _) = unsafe { r.parts() };
            std::ptr::eq(held, slot)
        })
    })
}

#[inline]
pub(crate) fn push(record: Record) {
    HELD.with(|h| {
        let n = h.len.get();
        if n < INLINE {
            h.inline[n].set(record.0);
            h.len.set(n + 1);
        } else {
            push_spill(h, record);
        }
    });
}

#[cold]
#[inline(never)]
fn push_spill(h: &Stack, record: Record) {
    SPILL.with(|s| s.borrow_mut().push(record.0));
    h.len.set(h.len.get() + 1);
}

#[inline]
pub(crate) fn pop(record: Record) {
    HELD.with(|h| {
        let n = h.len.get();
        // Guards are nearly always dropped in reverse order.
        if n != 0 && n <= INLINE && h.inline[n - 1].get() == record.0 {
            h.len.set(n - 1);
            return;
        }
        pop_slow(h, record)
    });
}

#[cold]
#[inline(never)]
fn pop_slow(h: &Stack, record: Record) {
    let mut all: Vec<usize> = h.records().map(|r| r.0).collect();
    let Some(i) = all.iter().rposition(|&r| r == record.0) else {
        return;
    };
    all.remove(i);
    for (c, &r) in h.inline.iter().zip(&all) {
        c.set(r);
    }
    SPILL.with(|s| {
        let mut spill = s.borrow_mut();
        spill.clear();
        spill.extend(all.iter().skip(INLINE));
    });
    h.len.set(all.len());
}
