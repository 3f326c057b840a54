//! A project's lock-file prefix, declared once: oslo's `lock_with_prefix`
//! and `remove_external_lock_file_with_prefix`, and [`Prefix::new`].
//!
//! oslo's third spelling, `synchronized_with_prefix`, is the attribute of
//! that name in `lockutils` (on a `mod` or `impl` block); no function here
//! takes that name, so one path never names both a function and a macro.

use std::path::Path;

use crate::error::Result;
use crate::guard::LockGuard;
use crate::options::LockOptions;

/// Locks whose names all carry one prefix. Build it with [`Prefix::new`] or
/// [`lock_with_prefix`] and keep it in a `static`.
///
/// ```
/// use lockutils_core::{lock_with_prefix, LockGuard, Prefix};
///
/// static NOVA: Prefix = lock_with_prefix("nova-");
///
/// let g = NOVA.lock("instance-1").unwrap();
/// assert_eq!(LockGuard::name(&g), "nova-instance-1");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    prefix: &'static str,
}

/// Declares a project's lock prefix. See [`Prefix`].
///
/// ```
/// static NOVA: lockutils_core::Prefix = lockutils_core::lock_with_prefix("nova");
/// assert_eq!(NOVA.prefix(), "nova");
/// ```
pub const fn lock_with_prefix(prefix: &'static str) -> Prefix {
    Prefix { prefix }
}

/// The same as [`lock_with_prefix`], under oslo's other name.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let remove = lockutils_core::remove_external_lock_file_with_prefix("nova-");
/// assert!(!remove.remove_external_lock_file("x", Some(dir.path())).unwrap());
/// ```
pub const fn remove_external_lock_file_with_prefix(prefix: &'static str) -> Prefix {
    Prefix { prefix }
}

impl Prefix {
    /// Declares a project's lock prefix, as [`lock_with_prefix`] does.
    ///
    /// ```
    /// static SYNC: lockutils_core::Prefix = lockutils_core::Prefix::new("nova-");
    /// assert_eq!(SYNC.synchronized("x", || 1).unwrap(), 1);
    /// ```
    pub const fn new(prefix: &'static str) -> Prefix {
        Prefix { prefix }
    }

    /// The prefix.
    pub const fn prefix(&self) -> &'static str {
        self.prefix
    }

    /// Options for the lock `name` under this prefix, to add more options.
    ///
    /// ```
    /// static P: lockutils_core::Prefix = lockutils_core::lock_with_prefix("p");
    /// let g = P.options("x").fair(true).lock().unwrap();
    /// # drop(g);
    /// ```
    pub const fn options<'a>(&self, name: &'a str) -> LockOptions<'a, 'static> {
        LockOptions::new(name).prefix(self.prefix)
    }

    /// Takes the in-process lock `name` under this prefix.
    ///
    /// # Errors
    /// As [`LockOptions::lock`].
    ///
    /// ```
    /// static P: lockutils_core::Prefix = lockutils_core::lock_with_prefix("p");
    /// let g = P.lock("x").unwrap();
    /// # drop(g);
    /// ```
    pub fn lock(&self, name: &str) -> Result<LockGuard<'static>> {
        self.options(name).lock()
    }

    /// Runs `f` under the in-process lock `name`.
    ///
    /// # Errors
    /// As [`LockOptions::lock`].
    ///
    /// ```
    /// static P: lockutils_core::Prefix = lockutils_core::lock_with_prefix("p");
    /// assert_eq!(P.synchronized("x", || 7).unwrap(), 7);
    /// ```
    pub fn synchronized<T>(&self, name: &str, f: impl FnOnce() -> T) -> Result<T> {
        self.options(name).synchronized(f)
    }

    /// Safely removes the lock file of `name` under this prefix; see
    /// [`LockOptions::remove_lock_file`].
    ///
    /// # Errors
    /// As [`LockOptions::lock`].
    ///
    /// ```
    /// static P: lockutils_core::Prefix = lockutils_core::lock_with_prefix("p");
    /// let dir = tempfile::tempdir().unwrap();
    /// drop(P.options("x").external(true).lock_path(dir.path()).lock().unwrap());
    /// assert!(P.remove_external_lock_file("x", Some(dir.path())).unwrap());
    /// ```
    pub fn remove_external_lock_file(&self, name: &str, lock_path: Option<&Path>) -> Result<bool> {
        remove_external_lock_file(name, Some(self.prefix), lock_path)
    }
}

/// Safely removes the lock file of an external lock, like oslo's
/// `remove_external_lock_file`, but without ever letting two processes hold
/// the lock: see [`LockOptions::remove_lock_file`]. Returns whether a file was
/// removed.
///
/// # Errors
/// As [`LockOptions::lock`].
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// drop(lockutils_core::LockOptions::new("x").external(true).lock_path(dir.path()).lock().unwrap());
/// assert!(lockutils_core::remove_external_lock_file("x", None, Some(dir.path())).unwrap());
/// ```
pub fn remove_external_lock_file(
    name: &str,
    prefix: Option<&str>,
    lock_path: Option<&Path>,
) -> Result<bool> {
    let mut opts = LockOptions::new(name).external(true);
    if let Some(p) = prefix {
        opts = opts.prefix(p);
    }
    if let Some(dir) = lock_path {
        opts = opts.lock_path(dir);
    }
    opts.remove_lock_file()
}
