//! Distributed named locks on ZooKeeper behind the lockutils API: for when
//! a deployment outgrows one host and lock files no longer exclude anyone.
//! [`ZkBackend`] is the engine; locks are taken with the same
//! [`LockOptions`](lockutils_core::LockOptions), guards,
//! [`StaticLock`](lockutils_core::StaticLock) and `#[synchronized]` as every
//! other backend.
//!
//! ```no_run
//! use std::time::Duration;
//! use lockutils_core::{LockGuard, LockOptions};
//!
//! lockutils_zookeeper::register(); // the facade does this for you
//! let guard = LockOptions::new("instance-42")
//!     .prefix("nova")                   // node /lockutils/nova-instance-42
//!     .timeout(Duration::from_secs(30)) // in-process + ZooKeeper wait together
//!     .backend_url("zookeeper://zk1:2181,zk2:2181/lockutils")
//!     .lock()?;
//! store_write(LockGuard::fencing_token(&guard)?); // reject stale holders downstream
//! assert!(!LockGuard::is_lost(&guard));
//! LockGuard::unlock(guard)?;
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
//! The core's in-process layer in front takes the in-process lock of the
//! same identity first, so threads and tasks of one process queue in memory
//! and only one of them contends on the server.
//!
//! # What a holder must know
//! - **A lock can be lost while held**: its session expires (a long pause, a
//!   partition) or an operator clears it. The guard says so
//!   ([`LockGuard::is_lost`](lockutils_core::LockGuard::is_lost),
//!   [`LockGuard::lost`](lockutils_core::LockGuard::lost); the ZooKeeper
//!   reason by [`LossReason::of`]) and logs at `ERROR`, before the server can
//!   give the lock away: once the server has not been heard from for 4/5 of
//!   the session timeout. A process resumed after a longer pause knows it at
//!   its first look.
//! - **Fencing tokens**
//!   ([`LockGuard::fencing_token`](lockutils_core::LockGuard::fencing_token))
//!   increase for successive holders (on one ensemble, as long as its data
//!   directory is kept); a store that keeps the highest token it has seen can
//!   refuse writes from a holder that lost the lock without noticing — the
//!   one window no lock closes: a holder paused between its check and its
//!   write.
//! - **Deadlines hold whatever the server does**: every request of an
//!   acquisition is bounded by its timeout (for `try_lock` and a zero
//!   timeout, by the URL's `connect_timeout`), and a released or failed
//!   acquisition's node is deleted even across a connection loss.
//! - **Revocation**: [`Coordinator::revoke`] (or the backend's
//!   [`Admin`](lockutils_core::backend::Admin)) asks holders to release, as
//!   does a waiter on a [`ZkBackend::revoke_blockers`] backend;
//!   [`LockGuard::is_revoked`](lockutils_core::LockGuard::is_revoked) tells
//!   them.
//! - **A crash frees the lock** when the server expires the session, within
//!   the session timeout (`session_timeout` in the URL).
//!
//! # Configuration
//! A [`CoordinationUrl`] (tooz style), given per lock
//! ([`LockOptions::backend_url`](lockutils_core::LockOptions::backend_url)
//! or a [`ZkBackend`]), or per process (the core's default coordination URL,
//! `LOCKUTILS_COORDINATION_URL`). Each URL gets one session per process
//! ([`Coordinator::shared`]).
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
mod recipe;
mod requests;
mod runtime;
mod session;
mod url;

pub use backend::{register, ZkBackend};
pub use coordinator::{ContenderInfo, Coordinator, LockInfo, LockSummary};
pub use hold::LossReason;
pub use layout::Layout;
pub use lockutils_core::{Error, Mode, Result};
pub use url::{CoordinationUrl, DEFAULT_CONNECT_TIMEOUT, DEFAULT_ROOT, DEFAULT_SESSION_TIMEOUT};
