//! lockutils: named locks for threads, async tasks and processes, macro first.
//!
//! ```
//! use lockutils::synchronized;
//!
//! struct Compute;
//!
//! impl Compute {
//!     /// One build per instance at a time; different instances in parallel.
//!     #[synchronized("instance-{id}")]
//!     fn build(&self, id: &str) -> String {
//!         format!("built {id}")
//!     }
//! }
//!
//! assert_eq!(Compute.build("42"), "built 42");
//! ```
//!
//! Put [`#[synchronized]`](macro@synchronized) on a function and its body runs
//! under a named lock: every function, thread and task using that name is
//! serialized, and with `external` so is every process using it (through a
//! lock file that OpenStack's `oslo.concurrency` also respects). Give a module
//! or `impl` block its project's prefix once with
//! [`#[synchronized_with_prefix]`](macro@synchronized_with_prefix).
//!
//! Without the macros, the same locks are at hand as values:
//! [`lock`], [`LockOptions`], [`StaticLock`], [`Prefix`].
//!
//! # What is public
//!
//! - the attributes [`#[synchronized]`](macro@synchronized) and
//!   [`#[synchronized_with_prefix]`](macro@synchronized_with_prefix);
//! - taking locks: [`lock`], [`external_lock`], [`LockOptions`], its futures
//!   [`Acquire`] and [`StaticAcquire`], [`StaticLock`], the guards
//!   [`LockGuard`] and [`AsyncLockGuard`], [`Mode`], [`Registry`];
//! - reader/writer locks: [`ReaderWriterLock`], [`RwAcquire`], [`RwGuard`];
//! - a project's prefix and oslo's helpers: [`Prefix`], [`lock_with_prefix`],
//!   [`remove_external_lock_file`], [`remove_external_lock_file_with_prefix`];
//! - lock directories and file names: [`lock_path()`], [`set_defaults`],
//!   [`clear_defaults`], [`user_default_dir`], [`LOCK_PATH_ENV`],
//!   [`OSLO_LOCK_PATH_ENV`], [`lock_file_name`], [`MAX_FILE_NAME`];
//! - [`held_locks`] and [`HeldLock`]; [`Error`], [`ErrorKind`], [`Report`] and
//!   [`Result`]; [`InUse`] and [`REMOVE_UNVERIFIED_ENV`] (lock-file removal); the duration
//!   syntax: [`parse_duration`], [`DisplayDuration`], [`DurationError`];
//! - the modules [`backend`] (engines behind one API, coordination URLs,
//!   admin operations), and with their features `metrics`, `zookeeper`,
//!   `postgresql`; [`register_backends`].
//!
//! Everything else lockutils-core exposes for the engines and the command
//! (lock-file internals, `/proc` readers) is not part of this crate's API.
//! oslo's `synchronized_with_prefix` is only the attribute here; as a value,
//! a prefix is a [`Prefix`] ([`Prefix::new`] or [`lock_with_prefix`]).
//!
//! lockutils builds on Unix targets only (its lock files are POSIX
//! open-file-description locks); elsewhere the build stops with one error
//! saying so.
//!
//! # Features
//!
//! - `zookeeper` (off by default): distributed locks on ZooKeeper, as
//!   `lockutils::zookeeper` and the `distributed` option of `#[synchronized]`.
//! - `postgresql` (off by default): distributed locks on PostgreSQL advisory
//!   locks, as `lockutils::postgresql`.
//! - `metrics` (off by default): wait and hold histograms and contention
//!   counters through the `metrics` facade, as `lockutils::metrics`.
//!
//! The macros, async acquisition (which works on any executor) and file locks
//! are always available.
//!
//! # Minimum supported Rust version
//!
//! Rust 1.88: the PostgreSQL client's hashing crates (`sha2` 0.11 through
//! `postgres-protocol`) need it; the rest would build with 1.85 (`Waker::noop`
//! in examples, clap 4.6 in the command). Raising it is a minor-version
//! change, done only for a reason users benefit from, and never in a patch
//! release.
//!
//! # Relationship with `std::sync` and `oslo.concurrency`
//!
//! A [`std::sync::Mutex`] guards *data* you can reach; lockutils guards a
//! *name*, which is what you have when the resource is elsewhere (an instance
//! in a hypervisor, a file, a test environment) or when the users are other
//! processes. Prefer a `Mutex` when the data is in your process and a field
//! can own it.
//!
//! Against `oslo.concurrency`'s `lockutils`: the same names and options
//! (`external`, `lock_path`, `fair`, `semaphores`, a per-project prefix), lock
//! files that exclude oslo's holders and ours alike, plus names computed from
//! the arguments (`"instance-{id}"`), timeouts, reader/writer modes, async
//! functions and errors at compile time for misused options. The
//! option-by-option table is in [`#[synchronized]`](macro@synchronized)'s
//! documentation.
//!
//! # Explanation: what `#[synchronized]` expands to
//!
//! The function keeps its signature and braces; a guard is taken before the
//! body and dropped after it, on every path out (return, `?`, panic, a dropped
//! future):
//!
//! ```
//! # use lockutils::synchronized;
//! #[synchronized("inventory")]
//! fn reserve(n: u32) -> u32 {
//!     n + 1
//! }
//! # assert_eq!(reserve(1), 2);
//! ```
//!
//! becomes (simplified; the real code goes through a hidden module):
//!
//! ```
//! # use lockutils::{LockOptions, StaticLock};
//! fn reserve(n: u32) -> u32 {
//!     let __lockutils_guard = {
//!         // Resolved on first use, then pinned: later calls do no lookup.
//!         static __LOCKUTILS_LOCK: StaticLock = StaticLock::new(LockOptions::new("inventory"));
//!         __LOCKUTILS_LOCK.lock().expect("lock \"inventory\"")
//!     };
//!     {
//!         n + 1
//!     }
//! }
//! # assert_eq!(reserve(1), 2);
//! ```
//!
//! An `async fn` takes the lock with `.lock_async().await`; a name computed
//! from the arguments builds its [`LockOptions`] at each call; with
//! `blocking = false` or a `timeout` the error is returned instead of a panic.
//! Each form is shown in full in the repository's `docs/expansion.md`.
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![doc(test(attr(deny(warnings))))]

// The public surface, item by item (a glob would also publish whatever
// lockutils-core makes public for its engines and the command, such as the
// lock-file internals in `lockutils_core::file`). Grouped in the crate docs
// above, under "What is public"; `tests/public_api.rs` uses each item.

/// Backends behind the in-process lock: the [`Backend`](backend::Backend)
/// trait an engine implements, the file backend, coordination URLs and the
/// admin interface.
pub use lockutils_core::backend;
/// Metrics (feature `metrics`).
#[cfg(feature = "metrics")]
pub use lockutils_core::metrics;
pub use lockutils_core::{
    clear_defaults, external_lock, held_locks, lock, lock_file_name, lock_path, lock_with_prefix,
    parse_duration, remove_external_lock_file, remove_external_lock_file_with_prefix, set_defaults,
    user_default_dir, Acquire, AsyncLockGuard, DisplayDuration, DurationError, Error, ErrorKind,
    HeldLock, InUse, LockGuard, LockOptions, Mode, Prefix, ReaderWriterLock, Registry, Report,
    Result, RwAcquire, RwGuard, StaticAcquire, StaticLock, LOCK_PATH_ENV, MAX_FILE_NAME,
    OSLO_LOCK_PATH_ENV, REMOVE_UNVERIFIED_ENV,
};
/// Opt-in signal interruption of timed file waits (Linux).
#[cfg(target_os = "linux")]
pub use lockutils_core::{interrupt_timed_waits_with, timed_wait_signal, WaitSignalError};

#[doc = include_str!("synchronized.md")]
pub use lockutils_macros::synchronized;

#[doc = include_str!("synchronized_with_prefix.md")]
pub use lockutils_macros::synchronized_with_prefix;

/// Distributed locks on ZooKeeper (feature `zookeeper`): the
/// `lockutils-zookeeper` crate, re-exported.
#[cfg(feature = "zookeeper")]
pub use lockutils_zookeeper as zookeeper;

/// Distributed locks on PostgreSQL advisory locks (feature `postgresql`);
/// see `docs/postgresql.md`.
#[cfg(feature = "postgresql")]
pub use lockutils_postgres as postgresql;

/// Registers the coordination URL scheme of every engine this build enables
/// (`zookeeper://` with the `zookeeper` feature, `postgresql://` and
/// `postgres://` with the `postgresql` feature), so that
/// [`LockOptions::backend_url`], [`LockOptions::coordinated`] and
/// [`backend::backend_for_url`] find them. `file://` needs no registration.
/// Cheap after the first call; `#[synchronized(backend = …)]` calls it for
/// you.
///
/// ```
/// lockutils::register_backends();
/// let dir = tempfile::tempdir().unwrap();
/// let url = format!("file://{}", dir.path().display());
/// let g = lockutils::LockOptions::new("x").backend_url(&url).lock().unwrap();
/// # drop(g);
/// ```
pub fn register_backends() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(feature = "zookeeper")]
        lockutils_zookeeper::register();
        #[cfg(feature = "postgresql")]
        lockutils_postgres::register();
    });
}

/// The snippets of `docs/postgresql.md`, compiled as doctests (and run where
/// they need no server).
#[cfg(all(doctest, feature = "postgresql"))]
#[doc = include_str!("../../docs/postgresql.md")]
pub struct PostgresqlGuide;

/// The snippets of `docs/backends.md`, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/backends.md")]
struct BackendsDoc;

/// Support for the code the macros generate. Not a stable API: anything here
/// may change in any release; do not use it directly.
#[doc(hidden)]
pub mod __private {
    /// Not a stable API.
    pub use crate::register_backends;
    /// Not a stable API.
    pub use core::convert::{AsRef, From};
    /// Not a stable API.
    pub use core::primitive::str;
    /// Not a stable API.
    pub use core::ptr::addr_of;
    /// Not a stable API.
    pub use core::result::Result::{Err, Ok};
    /// Not a stable API.
    pub use core::time::Duration;
    /// Not a stable API.
    pub use core::{concat, module_path};
    /// Not a stable API.
    pub use lockutils_core::{Error, LockOptions, Mode, Registry, StaticLock};
    /// Not a stable API.
    #[cfg(feature = "zookeeper")]
    pub use lockutils_zookeeper as zookeeper;
    /// Not a stable API.
    pub use std::format;
    /// Not a stable API.
    pub use std::path::Path;

    /// Not a stable API: the guard, or a panic naming the function, the lock
    /// (quoted and escaped, as `{:?}` shows a string; see
    /// [`Error::name_excerpt`]) and the error.
    #[inline]
    #[track_caller]
    pub fn expect_lock<G>(taken: Result<G, Error>, caller: &'static str) -> G {
        match taken {
            Ok(guard) => guard,
            Err(e) => failed(&e, caller),
        }
    }

    #[cold]
    #[inline(never)]
    #[track_caller]
    fn failed(e: &Error, caller: &str) -> ! {
        panic!(
            "#[synchronized] function {caller} could not take lock {}: {e}",
            e.name_excerpt()
        )
    }
}
