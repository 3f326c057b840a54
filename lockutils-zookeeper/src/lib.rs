//! Distributed named locks on ZooKeeper, with the lockutils API: for when a
//! deployment outgrows one host and lock files no longer exclude anyone.
//!
//! ```no_run
//! use std::time::Duration;
//! use lockutils_zookeeper::ZkLockOptions;
//!
//! // LOCKUTILS_COORDINATION_URL=zookeeper://zk1:2181,zk2:2181/lockutils
//! let guard = ZkLockOptions::new("instance-42")
//!     .prefix("nova")                  // node /lockutils/nova-instance-42
//!     .timeout(Duration::from_secs(30)) // in-process + ZooKeeper wait together
//!     .lock()?;
//! store_write(guard.fencing_token());   // reject stale holders downstream
//! assert!(!guard.is_lost());
//! guard.unlock()?;
//! # fn store_write(_: u64) {}
//! # Ok::<(), lockutils_core::Error>(())
//! ```
//!
//! # The recipe
//! The lock node `{root}/{identity}` holds one ephemeral sequential
//! *candidate* node per contender; the server numbers them in arrival order.
//! A contender holds the lock when no earlier candidate conflicts with it (a
//! writer conflicts with everyone, a reader only with writers), and otherwise
//! watches only the last conflicting candidate ahead of it, so a release wakes
//! one waiter, not the herd. This is the ZooKeeper lock recipe as zktools
//! (`ZkLock`, `ZkReadLock`, `ZkWriteLock`) and kazoo implement it: FIFO, and
//! freed by the server when a holder's session dies.
//!
//! Acquisitions take the in-process lock of the same identity first (as
//! [`lockutils_core::LockOptions`] would), so threads and tasks of one process
//! queue in memory and only one of them contends on the server.
//!
//! # What a holder must know
//! - **A lock can be lost while held**: its session expires (a long pause, a
//!   partition) or an operator clears it. The guard says so
//!   ([`ZkLockGuard::is_lost`], [`HoldWatch::lost`]) and logs at `ERROR`,
//!   before the server can give the lock away: once the server has not been
//!   heard from for 4/5 of the session timeout ([`LossReason`]). A process
//!   resumed after a longer pause knows it at its first look.
//! - **Fencing tokens** ([`ZkLockGuard::fencing_token`]) increase for
//!   successive holders (on one ensemble, as long as its data directory is
//!   kept); a store that keeps the highest token it has seen can refuse
//!   writes from a holder that lost the lock without noticing — the one
//!   window no lock closes: a holder paused between its check and its write.
//! - **Deadlines hold whatever the server does**: every request of an
//!   acquisition is bounded by its timeout (for `try_lock`, by the URL's
//!   `connect_timeout`), and a released or failed acquisition's node is
//!   deleted even across a connection loss.
//! - **Revocation**: [`Coordinator::revoke`] asks holders to release;
//!   [`ZkLockGuard::is_revoked`] / [`HoldWatch::revoked`] tell them.
//! - **A crash frees the lock** when the server expires the session, within
//!   the session timeout (`session_timeout` in the URL).
//!
//! # Configuration
//! A [`CoordinationUrl`] (tooz style), given per lock ([`ZkLockOptions::url`]),
//! per process ([`set_default_url`]) or by `LOCKUTILS_COORDINATION_URL`.
//! Each URL gets one session per process ([`Coordinator::shared`]).
//!
//! # Runtime
//! The ZooKeeper client runs on one internal tokio thread, so blocking callers
//! need no runtime and async callers may use any executor.
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![doc(test(attr(deny(warnings))))]

mod backend;
mod coordinator;
mod hold;
mod layout;
mod lock;
mod recipe;
mod requests;
mod runtime;
mod session;
mod url;

pub use backend::{register, ZkBackend};
pub use coordinator::{
    clear_default_url, default_url, set_default_url, ContenderInfo, Coordinator, LockInfo,
    LockSummary,
};
pub use hold::{HoldWatch, LossReason};
pub use layout::Layout;
pub use lock::{AsyncZkLockGuard, ZkLockGuard, ZkLockOptions};
pub use lockutils_core::{Error, Mode, Result};
pub use url::{
    CoordinationUrl, COORDINATION_URL_ENV, DEFAULT_CONNECT_TIMEOUT, DEFAULT_ROOT,
    DEFAULT_SESSION_TIMEOUT,
};
