//! The runtime of lockutils: named locks for threads, async tasks and
//! processes, usable without the macros.
//!
//! ```
//! use lockutils_core::{lock, LockOptions};
//!
//! // In-process, by name: every thread using "inventory" is serialized.
//! let guard = lock("inventory").unwrap();
//! drop(guard);
//!
//! // Across processes too, by a lock file in the lock directory.
//! let dir = tempfile::tempdir().unwrap();
//! let guard = LockOptions::new("inventory")
//!     .external(true)
//!     .lock_path(dir.path())
//!     .lock()
//!     .unwrap();
//! drop(guard);
//! ```
//!
//! Layers, from the bottom: a reader/writer lock state machine shared by
//! threads and tasks (`raw`), a garbage-collected [`Registry`] of named locks,
//! open-file-description file locks compatible with oslo.concurrency
//! (`file`), and [`LockOptions`], which takes them in order under one deadline.
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![doc(test(attr(deny(warnings))))]

// Unix only: lock files are POSIX open-file-description locks (`fcntl`
// `F_OFD_SETLK`), holder discovery reads `/proc`, and paths are Unix paths.
// Elsewhere this is the one error: every item below is `cfg(unix)`, so the
// compiler has nothing else to report. `scripts/ci-unix-gate.sh` checks that
// by building with `--cfg lockutils_assume_non_unix`, which takes the items
// away as a non-Unix target would.
#[cfg(any(not(unix), lockutils_assume_non_unix))]
compile_error!(
    "lockutils supports Unix targets only (Linux, macOS, the BSDs): its lock files are POSIX \
     open-file-description locks. On Windows, build inside WSL."
);

/// Every item of the crate, each made `cfg(unix)`.
macro_rules! unix_only {
    ($($item:item)*) => { $( #[cfg(all(unix, not(lockutils_assume_non_unix)))] $item )* };
}

#[cfg(all(unix, not(lockutils_assume_non_unix)))]
#[macro_use]
mod sync;

unix_only! {
    mod acquire;
    pub mod backend;
    mod diagnose;
    mod error;
    mod fd_cache;
    pub mod file;
    #[cfg(target_os = "linux")]
    pub mod file_inspect;
    mod file_wait;
    mod fork_hooks;
    mod guard;
    mod held;
    mod in_use;
    mod lock_fds;
    mod lock_path;
    #[cfg(all(test, loom))]
    mod loom_model;
    #[cfg(feature = "metrics")]
    pub mod metrics;
    #[cfg(not(feature = "metrics"))]
    mod metrics;
    mod name;
    mod options;
    mod pinned;
    mod prefix;
    #[cfg(target_os = "linux")]
    pub mod procfs;
    mod raw;
    mod registry;
    mod rwlock;
    mod slot_map;
    mod timer;
    #[cfg(target_os = "linux")]
    mod wait_signal;

    pub use acquire::Acquire;
    pub use error::{Error, ErrorKind, Report, Result};
    pub use guard::{AsyncLockGuard, LockGuard};
    pub use held::{held_locks, HeldLock};
    pub use in_use::{InUse, REMOVE_UNVERIFIED_ENV};
    pub use lock_path::{
        clear_defaults, lock_path, set_defaults, user_default_dir, LOCK_PATH_ENV, OSLO_LOCK_PATH_ENV,
    };
    /// The one duration syntax (`250ms`, `1.5s`, `2m`, `1h`), shared with the
    /// macros, the command and coordination URLs.
    pub use lockutils_duration::{parse_duration, DisplayDuration, DurationError};
    pub use name::{lock_file_name, MAX_FILE_NAME};
    pub use options::LockOptions;
    pub use pinned::{StaticAcquire, StaticLock};
    pub use prefix::{
        lock_with_prefix, remove_external_lock_file, remove_external_lock_file_with_prefix, Prefix,
    };
    pub use raw::Mode;
    pub use registry::Registry;
    #[cfg(target_os = "linux")]
    pub use wait_signal::{interrupt_timed_waits_with, timed_wait_signal, WaitSignalError};
    pub use rwlock::{ReaderWriterLock, RwAcquire, RwGuard};

    /// Takes the in-process lock `name` from the global registry, blocking while
    /// another thread or task holds it.
    ///
    /// # Errors
    /// As [`LockOptions::lock`].
    ///
    /// ```
    /// let g = lockutils_core::lock("doc-fn-lock").unwrap();
    /// # drop(g);
    /// ```
    pub fn lock(name: &str) -> Result<LockGuard<'static>> {
        LockOptions::new(name).lock()
    }

    /// Takes the lock `name` in-process and across processes (lock file in the
    /// default lock directory).
    ///
    /// # Errors
    /// As [`LockOptions::lock`].
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// lockutils_core::set_defaults(dir.path());
    /// let g = lockutils_core::external_lock("doc-fn-external").unwrap();
    /// assert!(dir.path().join("doc-fn-external").exists());
    /// # drop(g);
    /// # lockutils_core::clear_defaults();
    /// ```
    pub fn external_lock(name: &str) -> Result<LockGuard<'static>> {
        LockOptions::new(name).external(true).lock()
    }
}
