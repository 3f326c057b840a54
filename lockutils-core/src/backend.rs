//! The backend abstraction: what an engine that locks across processes or
//! hosts (lock files, ZooKeeper, a database) provides, in the spirit of
//! `lock_api`'s raw traits.
//!
//! A [`Backend`] knows how to take and release one *named* lock in a
//! [`Mode`], blocking ([`Backend::acquire`]) or async
//! ([`Backend::acquire_async`]), and what it can report about a hold
//! ([`BackendHold`]: its location, a fencing token, whether it was lost). It
//! knows nothing of threads, registries or guards: the in-process layer of
//! [`LockOptions`](crate::LockOptions) — the registry, fairness, self-deadlock
//! detection and the one deadline over every layer — sits in front of every
//! backend, so one process puts one contender per lock name on the backend,
//! and the guards ([`LockGuard`](crate::LockGuard),
//! [`AsyncLockGuard`](crate::AsyncLockGuard)) and
//! [`StaticLock`](crate::StaticLock) are the same for every engine.
//!
//! ```
//! use lockutils_core::backend::FileBackend;
//! use lockutils_core::{LockGuard, LockOptions};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let files = FileBackend::new(dir.path());
//! let guard = LockOptions::new("inventory").backend(&files).lock().unwrap();
//! assert_eq!(LockGuard::path(&guard), Some(dir.path().join("inventory").as_path()));
//! assert!(LockGuard::fencing_token(&guard).is_err(), "lock files have no tokens");
//! # drop(guard);
//! ```
//!
//! Backends are chosen at run time by a coordination URL
//! (`file:///var/lib/nova/tmp`, `zookeeper://h1:2181/root`): see
//! [`backend_for_url`] and [`register_scheme`].

mod admin;
mod caps;
mod file;
mod url;

use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Instant;

pub use crate::options::{AsBackend, BackendRef};
pub use admin::{
    host_name, Admin, CleanOptions, Cleaned, Cleared, ContenderInfo, FileFacts, Listing, LockInfo,
    LockState, Removal,
};
pub use caps::{Capabilities, Capability};
pub(crate) use file::held_file;
pub use file::FileBackend;
pub use url::{
    backend_for_url, clear_default_url, default_url, engines_not_registered, register_scheme,
    registered_schemes,
    scheme_of, set_default_url, BackendFactory, COORDINATION_URL_ENV,
};
pub(crate) use url::{redact, resolve, resolve_default};

use crate::error::{Error, Result};
use crate::raw::Mode;

/// How long an acquisition may wait on the backend. The in-process layer
/// computes it from the options, so one deadline covers every layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Do not wait: report the lock busy at once.
    Never,
    /// Wait until the lock is free.
    Forever,
    /// Wait until this instant.
    Until(Instant),
}

impl Wait {
    /// The deadline, if there is one.
    pub fn deadline(self) -> Option<Instant> {
        match self {
            Wait::Until(d) => Some(d),
            _ => None,
        }
    }

    /// Whether the wait has run out (always for [`Wait::Never`]).
    pub fn expired(self) -> bool {
        match self {
            Wait::Never => true,
            Wait::Forever => false,
            Wait::Until(d) => Instant::now() >= d,
        }
    }
}

/// One lock to take on a backend. The in-process layer has already resolved
/// the identity (the name after prefix and sanitising, the same on every
/// backend) and holds the in-process lock of that identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The name as the caller gave it, for error messages.
    pub name: String,
    /// The lock's identity: file name, node name, key source.
    pub identity: String,
    /// Shared or exclusive.
    pub mode: Mode,
    /// Who takes the lock (the macros pass the function path), for backends
    /// that record holders.
    pub caller: Option<&'static str>,
}

/// A boxed hold, as backends return them.
pub type BoxHold = Box<dyn BackendHold>;

/// What [`Backend::acquire_async`] returns. `Ok(None)`: still busy when the
/// wait ran out.
pub type HoldFuture = Pin<Box<dyn Future<Output = Result<Option<BoxHold>>> + Send + 'static>>;

/// What [`BackendHold::release_async`] returns.
pub type ReleaseFuture = Pin<Box<dyn Future<Output = Result<()>> + Send + 'static>>;

/// A future that resolves when a hold is lost, with why.
pub type LossFuture = Pin<Box<dyn Future<Output = Option<Loss>> + Send + 'static>>;

/// An engine that locks names across processes or hosts.
///
/// Implementations must be cheap to call concurrently from many threads; the
/// in-process layer guarantees that, per [`Registry`](crate::Registry), at
/// most one exclusive holder (or any number of shared ones) of an identity
/// calls in at a time.
///
/// Cancellation: dropping the future of [`acquire_async`](Self::acquire_async)
/// must leave nothing held or queued on the backend (or have its clean-up
/// already sent), and a hold must release the lock when dropped.
pub trait Backend: Send + Sync + fmt::Debug {
    /// The engine's short name (`"file"`, `"zookeeper"`), for messages.
    fn kind(&self) -> &'static str;

    /// Where this backend locks, as a coordination URL without credentials
    /// (`file:///var/lib/nova/tmp`, `zookeeper://h1:2181/lockutils`).
    fn url(&self) -> Cow<'_, str>;

    /// What this backend can do beyond exclusive locking.
    fn capabilities(&self) -> Capabilities;

    /// Takes the lock, waiting on the calling thread as `wait` says.
    /// `Ok(None)`: still held by someone else when the wait ran out.
    ///
    /// # Errors
    /// Anything that is not contention: a refused connection, a bad name for
    /// this engine, an I/O error. Errors name the lock and the backend.
    fn acquire(&self, request: &Request, wait: Wait) -> Result<Option<BoxHold>>;

    /// Takes the lock without blocking the executor. The future is `'static`
    /// (backends keep their state behind an `Arc`), so guards and `StaticLock`
    /// can use backends chosen at run time.
    fn acquire_async(&self, request: Request, wait: Wait) -> HoldFuture;

    /// The administration interface (list, inspect, remove, clear, revoke),
    /// where the backend has one.
    ///
    /// # Errors
    /// [`Error::Unsupported`] naming the backend, by default.
    fn admin(&self) -> Result<&dyn Admin> {
        Err(self.unsupported("", Capability::Admin))
    }

    /// Waits, at most `within`, until what dropped acquisitions left to undo
    /// on the server (a queued candidate node) is undone, or given up on: for
    /// a process about to exit after cancelling a wait, so that no waiter of
    /// its is left queued. Whether everything was undone in time. By default
    /// there is nothing to wait for.
    fn settle(&self, within: std::time::Duration) -> bool {
        let _ = within;
        true
    }

    /// The typed error for a capability this backend lacks.
    fn unsupported(&self, name: &str, capability: Capability) -> Error {
        Error::Unsupported {
            name: name.to_owned(),
            backend: self.url().into_owned(),
            capability,
        }
    }
}

/// Where a held lock lives on its backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location<'a> {
    /// A lock file.
    Path(&'a Path),
    /// A node in a tree (the ZooKeeper candidate node's path).
    Node(&'a str),
    /// Anything else: a key, a row.
    Key(&'a str),
}

impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Path(p) => write!(f, "{}", p.display()),
            Location::Node(s) | Location::Key(s) => f.write_str(s),
        }
    }
}

/// Why a held lock was lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loss {
    /// What kind of loss.
    pub kind: LossKind,
    /// The backend's own words.
    pub detail: Cow<'static, str>,
}

/// Kinds of loss every engine can map to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LossKind {
    /// The session or connection the lock lived on ended.
    SessionEnded,
    /// The connection was down for so long that the server may have given
    /// the lock away.
    ConnectionLost,
    /// An operator removed the lock.
    Cleared,
    /// Something else; see the detail.
    Other,
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

/// A lock held on a backend; dropping it releases the lock.
///
/// (`Any` lets the engine recognise its own file backend's holds, to record
/// their lock file for self-deadlock detection; every `'static` type has it.)
pub trait BackendHold: Any + Send + Sync + fmt::Debug {
    /// The backend's URL, for messages (as [`Backend::url`]).
    fn backend(&self) -> &str;

    /// Where the lock lives.
    fn location(&self) -> Location<'_>;

    /// Whether the acquisition had to wait for another holder on the
    /// backend; `None` (the default) if the backend cannot tell, when any
    /// time spent in the backend counts as waiting in the
    /// `lockutils_contended_total` metric.
    fn contended(&self) -> Option<bool> {
        None
    }

    /// A number that increases for successive holders of this lock, if the
    /// backend gives one ([`Capability::FencingTokens`]).
    fn fencing_token(&self) -> Option<u64> {
        None
    }

    /// Whether, and why, the lock was lost while held
    /// ([`Capability::LossNotification`]); `None` also when the backend
    /// cannot tell.
    fn loss(&self) -> Option<Loss> {
        None
    }

    /// Resolves when the lock is lost (`Some`) or released (`None`), if the
    /// backend can notify.
    fn lost(&self) -> Option<LossFuture> {
        None
    }

    /// Whether someone asked the holder to release ([`Capability::Revocation`]).
    fn is_revoked(&self) -> bool {
        false
    }

    /// Releases the lock and waits until the backend confirms it.
    ///
    /// # Errors
    /// The backend's error; the lock is released either way (at the latest
    /// when the backend notices the holder is gone).
    fn release(self: Box<Self>) -> Result<()> {
        Ok(())
    }

    /// [`release`](Self::release) for async code: must not block the
    /// executor. By default the hold is dropped (released without waiting
    /// for the backend's answer).
    fn release_async(self: Box<Self>) -> ReleaseFuture {
        drop(self);
        Box::pin(std::future::ready(Ok(())))
    }
}
