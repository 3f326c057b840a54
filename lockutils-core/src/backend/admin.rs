//! The administration interface a backend may offer: what operators (and
//! the `lockutils` command) do to locks they do not hold.

use std::borrow::Cow;
use std::time::SystemTime;

use super::Capability;
use crate::error::{Error, Result};
use crate::raw::Mode;

/// One holder or waiter of a lock, as far as the backend can tell.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ContenderInfo {
    /// Shared or exclusive; `None` when the backend cannot tell.
    pub mode: Option<Mode>,
    /// Process id, where known (on the holder's host).
    pub pid: Option<u32>,
    /// Host name, where known.
    pub host: Option<String>,
    /// Since when it holds or waits, where known.
    pub since: Option<SystemTime>,
    /// Its fencing token, where the backend has them.
    pub token: Option<u64>,
    /// Anything else the backend records (a candidate node, a command line).
    pub detail: String,
}

impl ContenderInfo {
    /// A contender in `mode`, with nothing else known.
    pub fn new(mode: Option<Mode>) -> Self {
        ContenderInfo {
            mode,
            ..ContenderInfo::default()
        }
    }
}

/// One lock as seen by [`Admin::inspect`] or [`Admin::list`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LockInfo {
    /// The lock's identity.
    pub identity: String,
    /// Where it lives (a path, a node).
    pub location: String,
    /// Who holds it.
    pub holders: Vec<ContenderInfo>,
    /// Who waits for it (empty where the backend cannot see waiters).
    pub waiters: Vec<ContenderInfo>,
}

impl LockInfo {
    /// A lock with no holder or waiter known yet.
    pub fn new(identity: impl Into<String>, location: impl Into<String>) -> Self {
        LockInfo {
            identity: identity.into(),
            location: location.into(),
            ..LockInfo::default()
        }
    }

    /// Whether anyone holds it.
    pub fn is_held(&self) -> bool {
        !self.holders.is_empty()
    }
}

/// What [`Admin::remove_if_free`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removal {
    /// The lock was free and is gone.
    Removed,
    /// Someone holds (or waits for) it; nothing was removed.
    Busy,
    /// There was nothing to remove.
    Absent,
    /// Free, but another process has the lock file open (or might, when
    /// `pid` is `None`: its descriptors could not be read), so removing it
    /// could let two processes hold the lock; nothing was removed. See
    /// [`InUse`](crate::InUse).
    InUse {
        /// A process that has it open, when one is visible.
        pid: Option<u32>,
    },
}

/// Operations on locks this process does not hold. Every backend offers
/// what it can; the rest fail with [`Error::Unsupported`] naming the backend.
pub trait Admin: Send + Sync {
    /// The backend's URL, for messages.
    fn backend(&self) -> Cow<'_, str>;

    /// Every lock the backend knows of, with holders where cheap to learn.
    ///
    /// # Errors
    /// The backend's errors.
    fn list(&self) -> Result<Vec<LockInfo>>;

    /// One lock: holders, waiters, pids or hosts, ages, tokens.
    ///
    /// # Errors
    /// The backend's errors.
    fn inspect(&self, identity: &str) -> Result<LockInfo>;

    /// Removes the lock's trace (file, node) if nobody holds or waits for it,
    /// without ever letting two holders result.
    ///
    /// # Errors
    /// The backend's errors.
    fn remove_if_free(&self, identity: &str) -> Result<Removal>;

    /// Removes every free lock; returns the identities removed.
    ///
    /// # Errors
    /// The backend's errors.
    fn clean(&self) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for lock in self.list()? {
            if self.remove_if_free(&lock.identity)? == Removal::Removed {
                removed.push(lock.identity);
            }
        }
        Ok(removed)
    }

    /// Forcibly removes every holder and waiter of the lock (they lose it).
    ///
    /// # Errors
    /// [`Error::Unsupported`] where the backend cannot take a lock away.
    fn clear(&self, identity: &str) -> Result<usize> {
        Err(unsupported(self, identity, Capability::Revocation))
    }

    /// Asks the lock's holders to release it.
    ///
    /// # Errors
    /// [`Error::Unsupported`] where the backend has no revocation.
    fn revoke(&self, identity: &str) -> Result<usize> {
        Err(unsupported(self, identity, Capability::Revocation))
    }
}

fn unsupported<A: Admin + ?Sized>(admin: &A, identity: &str, capability: Capability) -> Error {
    Error::Unsupported {
        name: identity.to_owned(),
        backend: admin.backend().into_owned(),
        capability,
    }
}
