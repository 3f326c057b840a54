//! Distributed named locks on PostgreSQL advisory locks, with the lockutils
//! API: for services that already run PostgreSQL and outgrow one host.
//!
//! ```no_run
//! use std::time::Duration;
//! use lockutils_postgres::PgLockOptions;
//!
//! // LOCKUTILS_COORDINATION_URL=postgresql://locker@db1/app
//! let guard = PgLockOptions::new("instance-42")
//!     .prefix("nova")
//!     .timeout(Duration::from_secs(30)) // in-process + server wait together
//!     .lock()?;
//! assert!(!guard.is_lost());
//! guard.unlock()?;
//! # Ok::<(), lockutils_core::Error>(())
//! ```
//!
//! # The model
//! A lock is a session-level advisory lock (`pg_advisory_lock`, or
//! `pg_advisory_lock_shared` for readers) on a 64-bit key derived from the
//! lock's identity ([`Layout`]). The server does the waiting and frees the
//! lock when the session ends, so a crashed holder's lock is freed as soon as
//! the server sees its connection close. Each held lock has a session of its
//! own, reused from a small pool once released.
//!
//! Acquisitions take the in-process lock of the same identity first (as
//! [`lockutils_core::LockOptions`] would), so threads and tasks of one process
//! queue in memory and only one of them reaches the server.
//!
//! # What a holder must know
//! - **A lock can be lost while held**: the session is terminated or the
//!   connection breaks. The guard says so ([`PgLockGuard::is_lost`],
//!   [`PgHold::lost`]) and logs at `ERROR`: at once when the server closes
//!   the session, within twice `check_interval` (default 5 s) when the
//!   connection dies silently.
//! - **Fencing tokens** need a table: with `fencing=table` in the URL,
//!   [`PgHold::fencing_token`] increases for successive holders.
//!
//! # Runtime
//! Sessions run on one internal tokio thread, so blocking callers need no
//! runtime and async callers may use any executor.
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![doc(test(attr(deny(warnings))))]

mod admin;
mod backend;
mod coordinator;
mod hold;
mod key;
mod lock;
mod pgpass;
mod runtime;
mod session;
mod url;

pub use admin::{PgLockInfo, PgSessionInfo, RemoveOutcome};
pub use backend::{register, PgBackend};
pub use coordinator::{PgCoordinator, Wait};
pub use hold::{LossReason, PgHold};
pub use key::{Layout, LockKey};
pub use lock::{AsyncPgLockGuard, PgLockGuard, PgLockOptions, COORDINATION_URL_ENV};
pub use lockutils_core::{Error, Mode, Result};
pub use url::{
    Fencing, PgUrl, SslMode, DEFAULT_APPLICATION_NAME, DEFAULT_CHECK_INTERVAL,
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_POOL, DEFAULT_PORT,
};
