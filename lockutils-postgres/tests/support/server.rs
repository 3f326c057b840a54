//! The tests' server and names on it: shared by the test binaries
//! (included with `#[path]`).

use std::sync::atomic::{AtomicUsize, Ordering};

/// The server's URL (`LOCKUTILS_TEST_POSTGRES_URL`), with the
/// `postgresql://` scheme registered.
pub fn url() -> String {
    lockutils_postgres::register();
    std::env::var("LOCKUTILS_TEST_POSTGRES_URL").expect(
        "LOCKUTILS_TEST_POSTGRES_URL is not set: run scripts/postgres.sh start and export \
         LOCKUTILS_TEST_POSTGRES_URL=$(scripts/postgres.sh url)",
    )
}

/// A name no other test (or earlier run) uses.
pub fn unique(what: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{what}-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}
