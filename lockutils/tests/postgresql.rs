//! The `postgresql` feature: PostgreSQL locks through the facade, against a
//! real server (`scripts/postgres.sh start`; the URL in
//! `LOCKUTILS_TEST_POSTGRES_URL`). Ignored in a plain run; fails, never
//! skips, when the server is missing:
//!
//! ```text
//! scripts/postgres.sh start
//! LOCKUTILS_TEST_POSTGRES_URL=$(scripts/postgres.sh url) \
//!   cargo test -p lockutils --features postgresql --test postgresql -- --include-ignored
//! scripts/postgres.sh stop
//! ```
#![cfg(feature = "postgresql")]

use std::time::Duration;

use lockutils::backend::COORDINATION_URL_ENV;
use lockutils::{Error, LockGuard, LockOptions, Mode, Registry};

fn url() -> String {
    lockutils::register_backends();
    std::env::var("LOCKUTILS_TEST_POSTGRES_URL")
        .expect("LOCKUTILS_TEST_POSTGRES_URL is not set: run scripts/postgres.sh start")
}

/// The in-process locks of a second simulated host.
static OTHER_HOST: Registry = Registry::new();

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn facade_locks_exclude_across_hosts_and_share_in_shared_mode() {
    let u = url();
    let name = format!("facade-{}", std::process::id());
    let held = LockOptions::new(&name)
        .prefix("app")
        .backend_url(&u)
        .lock()
        .unwrap();
    // Another "host" (its own in-process registry) is excluded by the server.
    let e = LockOptions::new(&name)
        .prefix("app")
        .backend_url(&u)
        .registry(&OTHER_HOST)
        .timeout(Duration::from_millis(200))
        .lock()
        .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    LockGuard::unlock(held).unwrap();
    let r1 = LockOptions::new(&name)
        .prefix("app")
        .backend_url(&u)
        .mode(Mode::Shared)
        .lock()
        .unwrap();
    let r2 = LockOptions::new(&name)
        .prefix("app")
        .backend_url(&u)
        .registry(&OTHER_HOST)
        .mode(Mode::Shared)
        .try_lock()
        .unwrap();
    assert!(!LockGuard::is_lost(&r1) && !LockGuard::is_lost(&r2));
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn without_a_url_the_environment_names_the_server() {
    // The only test of this binary that touches the variable.
    let name = format!("facade-env-{}", std::process::id());
    let u = url();
    std::env::remove_var(COORDINATION_URL_ENV);
    let e = LockOptions::new(&name).coordinated().lock().unwrap_err();
    assert!(matches!(e, Error::Backend { .. }), "{e}");
    assert!(e.to_string().contains("LOCKUTILS_COORDINATION_URL"), "{e}");
    std::env::set_var(COORDINATION_URL_ENV, &u);
    let g = LockOptions::new(&name).coordinated().lock().unwrap();
    std::env::remove_var(COORDINATION_URL_ENV);
    // The lock is on that server: another "host" cannot take it there.
    assert!(LockOptions::new(&name)
        .backend_url(&u)
        .registry(&OTHER_HOST)
        .try_lock()
        .is_err());
    LockGuard::unlock(g).unwrap();
}
