//! Helpers for the multi-process and interop tests of lockutils.
//!
//! - [`events`]: the log format `lockutils-holder` writes (one line per event,
//!   `enter`/`exit`/`removed`, with pid and Unix microseconds), its parser,
//!   and the check that hold intervals never overlap.
//! - [`process`]: spawning `lockutils-holder` and Python peers as children
//!   that are killed (by their own handle) if a test fails, and waiting on
//!   them with a bound.
//! - [`kernel`]: what the kernel says about a lock file, from `/proc/locks`
//!   (whether some process is blocked waiting for it).
//! - [`memory`]: a toy in-memory lock engine written against the public
//!   backend API, used through every generic part of lockutils.
//! - [`python`]: the Python interpreter with oslo.concurrency, for the
//!   ignored interop tests.
//!
//! The integration tests pass the helper binary's path as
//! `env!("CARGO_BIN_EXE_lockutils-holder")`, which only they can name.
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod events;
pub mod kernel;
pub mod memory;
pub mod process;
pub mod python;

pub use events::{assert_no_overlap, assert_rounds, by_pid, read_intervals, read_log, unix_micros};
pub use events::{Event, EventLog, Interval, Record};
pub use kernel::wait_until_blocked;
pub use process::{wait_for_file, Exit, Holder, Spawned};
pub use python::peer_python;
