//! Distributed named locks on PostgreSQL advisory locks, behind the one
//! lockutils API: for services that already run PostgreSQL and outgrow one
//! host. [`PgBackend`] is the engine; [`register`] makes `postgresql://`
//! URLs select it, and the ordinary `LockOptions`, guards, `StaticLock` and
//! `#[synchronized]` take locks on it.
//!
//! ```no_run
//! use std::time::Duration;
//! use lockutils_core::{LockGuard, LockOptions};
//!
//! lockutils_postgres::register();
//! let guard = LockOptions::new("instance-42")
//!     .prefix("nova")
//!     .backend_url("postgresql://locker@db1/app")
//!     .timeout(Duration::from_secs(30)) // in-process + server wait together
//!     .lock()?;
//! assert!(!LockGuard::is_lost(&guard));
//! LockGuard::unlock(guard)?;
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
//! The core's in-process layer sits in front, so threads and tasks of one
//! process queue in memory and only one of them reaches the server.
//!
//! # What a holder must know
//! - **A lock can be lost while held**: the session is terminated or the
//!   connection breaks. The guard says so (`LockGuard::is_lost`,
//!   `LockGuard::lost`) and logs at `ERROR`: at once when the server closes
//!   the session, within twice `check_interval` (default 5 s) when the
//!   connection dies silently.
//! - **Fencing tokens** need a table: with `fencing=table` in the URL,
//!   `LockGuard::fencing_token` increases for successive holders.
//! - **Cancelling** a waiting acquisition (dropping its future, or its
//!   timeout running out) returns once the server has ended the wait and
//!   released anything it got, at most twice `check_interval` later; past
//!   that bound (a server that does not answer) the session is closed and
//!   the clean-up goes on in the background.
//!
//! # Runtime
//! Sessions run on one internal tokio thread, so blocking callers need no
//! runtime and async callers may use any executor. A blocking call reads and
//! writes its (plaintext) session's socket on the calling thread, so its
//! round trips cost no thread hand-over; the internal thread serves the
//! session again once the call returns (and a held lock's loss is noticed
//! there).
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![doc(test(attr(deny(warnings))))]

mod admin;
mod backend;
mod caller;
mod coordinator;
mod hold;
mod key;
mod names;
mod pgpass;
mod runtime;
mod session;
mod tls;
mod url;

pub use backend::{register, PgBackend};
pub use key::{Layout, LockKey};
pub use lockutils_core::{Error, Mode, Result};
pub use url::{
    Fencing, PgUrl, SslMode, DEFAULT_APPLICATION_NAME, DEFAULT_CHECK_INTERVAL,
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_POOL, DEFAULT_PORT,
};
