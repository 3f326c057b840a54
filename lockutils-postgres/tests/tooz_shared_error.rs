//! A shared lock in the tooz layout is refused with `Error::Unsupported`
//! (capability `Shared`), before any session is opened, and
//! docs/postgresql.md names that error wherever it speaks of it.

use lockutils_core::backend::Capability;
use lockutils_core::{Error, LockOptions, Mode, Registry};
use lockutils_postgres::PgBackend;

#[test]
fn a_shared_tooz_lock_is_unsupported_as_the_docs_say() {
    // Nothing listens on port 1: refused before any connection.
    let pg = PgBackend::new("postgresql://u@127.0.0.1:1/db?layout=tooz").unwrap();
    let registry = Registry::new();
    let e = LockOptions::new("x")
        .registry(&registry)
        .backend(&pg)
        .mode(Mode::Shared)
        .try_lock()
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Unsupported {
                capability: Capability::Shared,
                ..
            }
        ),
        "{e:?}"
    );

    let docs = include_str!("../../docs/postgresql.md");
    let keys = docs
        .split("## Keys")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("docs/postgresql.md has a Keys section");
    assert!(
        keys.contains("`Error::Unsupported`") && !keys.contains("InvalidOptions"),
        "the Keys section of docs/postgresql.md names another error for a shared \
         tooz lock:\n{keys}"
    );
    assert!(!docs.contains("InvalidOptions"), "docs/postgresql.md");
}
