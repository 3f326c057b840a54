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
//! - [`executor`]: [`block_on`], a future run on the calling thread.
//! - [`memory`]: a toy in-memory lock engine written against the public
//!   backend API, used through every generic part of lockutils.
//! - [`python`]: the Python interpreter with oslo.concurrency, for the
//!   ignored interop tests.
//!
//! The integration tests pass the helper binary's path as
//! `env!("CARGO_BIN_EXE_lockutils-holder")`, which only they can name.
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
// Snippets show `let guard = ...` and items a reader would use later.
#![doc(test(attr(
    deny(warnings),
    allow(dead_code, unused_variables, unused_imports, unused_mut)
)))]

pub mod events;
pub mod executor;
pub mod kernel;
pub mod memory;
pub mod process;
pub mod python;

pub use events::{assert_no_overlap, assert_rounds, by_pid, read_intervals, read_log, unix_micros};
pub use events::{Event, EventLog, Interval, Record};
pub use executor::block_on;
pub use kernel::wait_until_blocked;
pub use process::{wait_for_file, Exit, Holder, Spawned};
pub use python::peer_python;

/// The Rust snippets of README.md and docs/*.md, run as this crate's
/// doctests (`cargo test -p lockutils-tests --doc`): a snippet that stops
/// compiling, or fails when run, fails the suite. build.rs extracts the
/// fenced Rust blocks of each page; snippets that need a server are
/// `no_run` (compiled, not run) and say why.
#[cfg(doctest)]
pub mod docs {
    macro_rules! page {
        ($(#[$attr:meta])* $module:ident, $file:literal) => {
            $(#[$attr])*
            #[doc = include_str!(concat!(env!("OUT_DIR"), "/doc-snippets/", $file, ".md"))]
            pub mod $module {
                /// The page's snippets that need the `zookeeper` feature.
                #[cfg(feature = "zookeeper")]
                #[doc = include_str!(concat!(env!("OUT_DIR"), "/doc-snippets/", $file, "-zookeeper.md"))]
                pub mod zookeeper {}
            }
        };
    }
    page!(readme, "readme");
    page!(guide, "guide");
    page!(macros, "macros");
    page!(expansion, "expansion");
    page!(design, "design");
    page!(cli, "cli");
    page!(performance, "performance");
    page!(dependencies, "dependencies");
    page!(reliability, "reliability");
    page!(
        /// Needs the `zookeeper` feature (`--all-features`, as CI runs it).
        #[cfg(feature = "zookeeper")]
        zookeeper,
        "zookeeper"
    );
}
