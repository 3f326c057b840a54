//! lockutils: named locks for threads, async tasks and processes.
//!
//! This is the crate to import. It re-exports the runtime from
//! `lockutils-core`.
//!
//! ```
//! let guard = lockutils::lock("inventory").unwrap();
//! drop(guard);
//! ```
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![doc(test(attr(deny(warnings))))]

pub use lockutils_core::*;
