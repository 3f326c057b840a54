//! `-v`/`-vv` and `RUST_LOG`: the library's tracing events (waits, hand-offs,
//! lock files created or removed) on stderr, one line each.

use tracing_subscriber::EnvFilter;

/// Installs the stderr subscriber. `RUST_LOG` (e.g. `lockutils=debug`)
/// wins; otherwise `-v` shows lockutils' DEBUG events and `-vv` its TRACE
/// events; without either only warnings and errors are shown.
pub(crate) fn init(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "warn,lockutils=debug,lockutils_core=debug,lockutils_zookeeper=debug,lockutils_postgres=debug",
        _ => "warn,lockutils=trace,lockutils_core=trace,lockutils_zookeeper=trace,lockutils_postgres=trace",
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.is_empty() => EnvFilter::new(spec),
        _ => EnvFilter::new(default),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}
