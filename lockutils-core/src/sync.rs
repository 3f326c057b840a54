//! The primitives the lock engine is built on, swapped for loom's under
//! `--cfg loom` so the model checker sees every access (as tokio's `loom`
//! module does). Only the raw lock and the registry's counting use these.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::Arc;
#[cfg(not(loom))]
pub(crate) use std::thread::{current, park, park_timeout, Thread};

#[cfg(not(loom))]
pub(crate) use parking_lot::{Mutex, MutexGuard};

/// How many times a contended thread checks the lock again, a `spin_loop`
/// hint apart, before it queues and parks. Short: two threads that both spin
/// pass the lock between cores on every acquisition, while one that parks
/// soon lets the holder run on with the lock in its cache. No `yield_now`
/// (unlike parking_lot's `SpinWait`): on a loaded machine a yield hands the
/// core to another process for a whole time slice, while a parked thread is
/// woken with priority. A model explores a single check, which is enough to
/// see every state a spinner can be seen in.
#[cfg(not(loom))]
pub(crate) const SPIN_FOR_LOCK: u32 = 10;
#[cfg(loom)]
pub(crate) const SPIN_FOR_LOCK: u32 = 1;

/// How many times a fair waiter checks its place in line before it parks:
/// about as long as a park and a wake-up take (std's futex mutex spins 100
/// times), so a hand-off to a waiter whose turn comes soon costs no
/// system call.
#[cfg(not(loom))]
pub(crate) const SPIN_IN_LINE: u32 = 100;
#[cfg(loom)]
pub(crate) const SPIN_IN_LINE: u32 = 1;

/// The same for a fair waiter first in line, the next one served: longer,
/// since a release hands it the lock without a wake-up while it spins, and
/// only one waiter per lock spins this long.
#[cfg(not(loom))]
pub(crate) const SPIN_AT_HEAD: u32 = 1000;
#[cfg(loom)]
pub(crate) const SPIN_AT_HEAD: u32 = 1;

/// Backs off once before checking again.
#[cfg(not(loom))]
#[inline]
pub(crate) fn back_off() {
    std::hint::spin_loop();
}

/// Under loom a back-off is a yield, so the model runs the other threads.
#[cfg(loom)]
pub(crate) fn back_off() {
    loom::thread::yield_now();
}

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::Arc;
#[cfg(loom)]
pub(crate) use loom::thread::{current, park, Thread};

/// Models never use deadlines: a timed park is a plain park.
#[cfg(loom)]
pub(crate) fn park_timeout(_: std::time::Duration) {
    loom::thread::park();
}

/// loom's mutex with parking_lot's signature (no poisoning).
#[cfg(loom)]
#[derive(Debug)]
pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

#[cfg(loom)]
pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

#[cfg(loom)]
impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Mutex(loom::sync::Mutex::new(value))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap()
    }
}

/// A `const fn` normally, a plain `fn` under loom (whose types have no const
/// constructors).
macro_rules! const_unless_loom {
    ($(#[$m:meta])* $vis:vis fn $name:ident() -> $ret:ty $body:block) => {
        #[cfg(not(loom))]
        $(#[$m])*
        $vis const fn $name() -> $ret $body

        #[cfg(loom)]
        $(#[$m])*
        $vis fn $name() -> $ret $body
    };
}
