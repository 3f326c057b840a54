//! docs/zookeeper.md (Node layouts): the curator layout refuses shared locks
//! with `Error::InvalidOptions`. The engine answers `Error::Unsupported`.

use lockutils_core::{Error, LockOptions, Mode, Registry};
use lockutils_zookeeper::ZkBackend;

#[test]
fn curator_layout_refuses_shared_locks_with_the_documented_error() {
    // Refused before any connection: no server needed.
    let zk = ZkBackend::new("zookeeper://127.0.0.1:1/review?layout=curator").unwrap();
    let registry = Registry::new();
    let e = LockOptions::new("x")
        .registry(&registry)
        .backend(&zk)
        .mode(Mode::Shared)
        .try_lock()
        .unwrap_err();
    assert!(
        matches!(e, Error::InvalidOptions { .. }),
        "docs promise Error::InvalidOptions, got {e:?}"
    );
}
