//! docs/postgresql.md contradicts itself on the error for a shared lock in
//! the tooz layout: *Keys* says `Error::InvalidOptions` (and so does the code
//! in `coordinator.rs`, `server_acquire`), the capability table says
//! `Error::Unsupported`. The engine answers `Error::Unsupported`.

use lockutils_core::{Error, LockOptions, Mode, Registry};
use lockutils_postgres::PgBackend;

#[test]
fn tooz_layout_refuses_shared_locks_with_the_error_the_keys_section_names() {
    // Refused before any connection: no server needed.
    let pg = PgBackend::new("postgresql://u@127.0.0.1:1/db?layout=tooz").unwrap();
    let registry = Registry::new();
    let e = LockOptions::new("x")
        .registry(&registry)
        .backend(&pg)
        .mode(Mode::Shared)
        .try_lock()
        .unwrap_err();
    assert!(
        matches!(e, Error::InvalidOptions { .. }),
        "docs/postgresql.md (Keys) promises Error::InvalidOptions, got {e:?}"
    );
}
