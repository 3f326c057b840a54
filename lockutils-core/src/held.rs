//! Who holds what: the one place that records which locks each thread holds,
//! for [`held_locks`] and for turning an acquisition that would wait on the
//! thread itself into [`Error::WouldDeadlock`].
//!
//! # The rule
//! A blocking acquisition's guard is `!Send`, so it is released on the thread
//! that took it; that thread records the hold here and erases the record when
//! the guard drops. Async guards belong to a task, which may move between
//! threads, and are not recorded.
//!
//! - A hold taken through a pinned call site's short path (a
//!   [`StaticLock`](crate::StaticLock), plain and exclusive) is recorded in its
//!   slot's `owner` word as the holder's [`thread_id`]; every other hold is a
//!   [`Record`] in the thread's list.
//! - A record points at the held slot, and at the hold's lock file if any.
//!   Both stay valid for as long as the record exists, **whatever the user
//!   forgets or drops**: a slot is freed only after its registry sees it
//!   unused, and a hold counts as a use until its guard drops (a registry
//!   dropped while a name is still in use, which only a leaked guard or future
//!   can cause, leaks that slot instead of freeing it); the lock file lives in
//!   the guard's boxed extras, which a leaked guard leaks too.
//! - Thread ids are never reused, so a record or `owner` word left behind by a
//!   leaked guard of a thread that exited can never be mistaken for a hold of
//!   a new thread.
//!
//! # Cost
//! A record is two words in a destructor-free thread-local array (a plain
//! load and store per acquisition); past [`INLINE`] holds they spill into a
//! vector. The guard keeps its record's index, so erasing a record is O(1):
//! the newest one is popped, any other is marked vacant and popped once
//! everything above it is gone. Listing and the deadlock checks (only made
//! when an acquisition would wait) walk the list: O(holds).
//!
//! [`Error::WouldDeadlock`]: crate::Error::WouldDeadlock

use std::cell::{Cell, RefCell};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::file::FileLock;
use crate::raw::Mode;
use crate::registry::Slot;

/// Tag bit of [`Record::slot`]: the hold is shared.
const SHARED: usize = 0b1;
/// Records kept in the destructor-free array before spilling into a vector.
const INLINE: usize = 8;

/// A recorded hold: the slot's address (tagged with the mode) and the lock
/// file's address (0 for none). A slot word of 0 marks a vacant entry.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Record {
    slot: usize,
    file: usize,
}

impl Record {
    /// A hold of `slot` in `mode`, with its lock file if it has one.
    #[inline]
    pub(crate) fn new(slot: &Slot, mode: Mode, file: Option<&FileLock>) -> Self {
        const { assert!(std::mem::align_of::<Slot>() > SHARED) };
        let shared = if mode == Mode::Shared { SHARED } else { 0 };
        Record {
            slot: slot as *const Slot as usize | shared,
            file: file.map_or(0, |f| f as *const FileLock as usize),
        }
    }

    fn is_vacant(self) -> bool {
        self.slot == 0
    }

    fn mode(self) -> Mode {
        if self.slot & SHARED != 0 {
            Mode::Shared
        } else {
            Mode::Exclusive
        }
    }

    /// The held slot.
    ///
    /// # Safety
    /// The record must be in the current thread's list (see the module docs).
    unsafe fn slot<'a>(self) -> &'a Slot {
        // SAFETY: a listed record's slot is not freed (module docs, "the rule").
        unsafe { &*((self.slot & !SHARED) as *const Slot) }
    }

    /// The held lock file, if any.
    ///
    /// # Safety
    /// As [`Record::slot`].
    unsafe fn file<'a>(self) -> Option<&'a FileLock> {
        // SAFETY: a listed record's file lives in its guard's boxed extras,
        // which are emptied (and the box freed or kept as the thread's spare)
        // only after the record is erased (module docs).
        (self.file != 0).then(|| unsafe { &*(self.file as *const FileLock) })
    }
}

/// The current thread's records, oldest first.
struct List {
    len: Cell<usize>,
    inline: [Cell<Record>; INLINE],
}

thread_local! {
    static ID: Cell<usize> = const { Cell::new(0) };
    static HELD: List = const {
        List {
            len: Cell::new(0),
            inline: [const { Cell::new(Record { slot: 0, file: 0 }) }; INLINE],
        }
    };
    /// Records past `INLINE`: `SPILL[i]` is record `INLINE + i`, and the
    /// vector is exactly as long as the list needs.
    static SPILL: RefCell<Vec<Record>> = const { RefCell::new(Vec::new()) };
}

/// The next thread id; ids are never reused.
static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

/// A non-zero id of the current thread, never given to another thread.
#[inline]
pub(crate) fn thread_id() -> usize {
    ID.with(|id| match id.get() {
        0 => {
            let new = NEXT_ID.fetch_add(1, Ordering::Relaxed);
            id.set(new);
            new
        }
        known => known,
    })
}

impl List {
    fn get(&self, i: usize) -> Record {
        match self.inline.get(i) {
            Some(c) => c.get(),
            // During thread-local destruction `SPILL` may be gone (it has a
            // destructor, `HELD` has none): its records read as vacant.
            None => SPILL
                .try_with(|s| s.borrow().get(i - INLINE).copied())
                .ok()
                .flatten()
                .unwrap_or_default(),
        }
    }

    fn set(&self, i: usize, r: Record) {
        match self.inline.get(i) {
            Some(c) => c.set(r),
            None => {
                let _ = SPILL.try_with(|s| {
                    if let Some(slot) = s.borrow_mut().get_mut(i - INLINE) {
                        *slot = r;
                    }
                });
            }
        }
    }

    fn records(&self) -> impl Iterator<Item = Record> + '_ {
        (0..self.len.get())
            .map(|i| self.get(i))
            .filter(|r| !r.is_vacant())
    }
}

/// Records a hold on this thread; returns the index that erases it.
#[inline]
pub(crate) fn push(record: Record) -> usize {
    HELD.with(|h| {
        let n = h.len.get();
        if n < INLINE {
            h.inline[n].set(record);
        } else {
            push_spill(record);
        }
        h.len.set(n + 1);
        n
    })
}

#[cold]
#[inline(never)]
fn push_spill(record: Record) {
    // Gone during thread-local destruction: the record reads as vacant.
    let _ = SPILL.try_with(|s| s.borrow_mut().push(record));
}

/// Erases the record at `index`, as returned by [`push`] for `record`.
#[inline]
pub(crate) fn erase(index: usize, record: Record) {
    // During thread-local destruction (a guard dropped by another
    // thread-local's destructor) there is nothing left to erase.
    let _ = HELD.try_with(|h| {
        let n = h.len.get();
        if index + 1 == n && n <= INLINE {
            // The newest record, in the inline array: the usual case.
            h.len.set(n - 1);
            if n >= 2 && h.inline[n - 2].get().is_vacant() {
                pop_vacant(h);
            }
        } else {
            erase_slow(h, index, record);
        }
    });
}

#[cold]
#[inline(never)]
fn erase_slow(h: &List, index: usize, record: Record) {
    if index >= h.len.get() || h.get(index) != record {
        return; // not this thread's record: nothing to do
    }
    h.set(index, Record::default());
    pop_vacant(h);
}

/// Drops vacant records from the top of the list. Each record is popped at
/// most once, so this is amortized O(1) per erase.
#[cold]
fn pop_vacant(h: &List) {
    let mut n = h.len.get();
    while n > 0 && h.get(n - 1).is_vacant() {
        n -= 1;
    }
    h.len.set(n);
    let spilled = n.saturating_sub(INLINE);
    let _ = SPILL.try_with(|s| s.borrow_mut().truncate(spilled));
}

/// Records a short-path hold of a pinned slot in the slot itself.
#[inline]
pub(crate) fn own(slot: &Slot) {
    slot.owner.store(thread_id(), Ordering::Relaxed);
}

/// Erases a hold recorded by [`own`].
#[inline]
pub(crate) fn disown(slot: &Slot) {
    slot.owner.store(0, Ordering::Relaxed);
}

/// Every pinned slot, so [`held_locks`] can find short-path holds.
static PINNED: parking_lot::Mutex<Vec<&'static Slot>> = parking_lot::Mutex::new(Vec::new());

/// Makes short-path holds of a newly pinned slot visible to [`held_locks`].
pub(crate) fn register_pinned(slot: &'static Slot) {
    // Every call site pinning one name pins the same slot: list it once.
    let mut pinned = PINNED.lock();
    if !pinned.iter().any(|s| std::ptr::eq(*s, slot)) {
        pinned.push(slot);
    }
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
/// first, like oslo's `locks_held`. Holds through pinned call sites (a
/// [`StaticLock`](crate::StaticLock)'s short path) come last.
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
                // SAFETY: `r` is in this thread's list.
                let (slot, file) = unsafe { (r.slot(), r.file()) };
                HeldLock {
                    name: slot.key.to_string(),
                    mode: r.mode(),
                    path: file.map(|f| f.path.clone()),
                }
            })
            .collect::<Vec<_>>()
    });
    let me = thread_id();
    held.extend(
        PINNED
            .lock()
            .iter()
            .filter(|s| s.owner.load(Ordering::Relaxed) == me)
            .map(|slot| HeldLock {
                name: slot.key.to_string(),
                mode: Mode::Exclusive,
                path: None,
            }),
    );
    held
}

/// Whether this thread holds `slot`. Slots in use are distinct allocations,
/// so the same name in two registries never compares equal.
pub(crate) fn holds(slot: &Slot) -> bool {
    if slot.owner.load(Ordering::Relaxed) == thread_id() {
        return true;
    }
    let addr = slot as *const Slot as usize;
    HELD.with(|h| h.records().any(|r| r.slot & !SHARED == addr))
}

/// Whether this thread holds the lock file linked at `path`, through any
/// registry: a wait for it would wait on the thread itself. Compared by
/// device and inode, so other spellings of the directory match too.
pub(crate) fn holds_file(path: &Path) -> bool {
    let Ok(linked) = std::fs::metadata(path) else {
        return false;
    };
    HELD.with(|h| {
        h.records().any(|r| {
            // SAFETY: `r` is in this thread's list.
            let Some(file) = (unsafe { r.file() }) else {
                return false;
            };
            file.file()
                .metadata()
                .is_ok_and(|m| m.dev() == linked.dev() && m.ino() == linked.ino())
        })
    })
}
