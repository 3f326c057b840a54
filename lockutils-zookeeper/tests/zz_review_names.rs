//! Review reproducer against a real ZooKeeper server (`LOCKUTILS_TEST_ZK`).

mod common;
mod support;

use common::*;
use lockutils_core::{LockGuard, LockOptions, Registry};
use support::*;

/// In the kazoo layout, names nest (`a/b` is the node `b` inside the lock
/// node `a`), and lock nodes are persistent. A nested lock whose last
/// segment looks like a kazoo candidate (`x__lock__0000000000`) leaves a
/// *persistent* child of `a` that every reader of `a`'s queue (lockutils,
/// kazoo) takes for a writer with sequence 0 that never leaves: after one
/// use of the name `a/x__lock__0000000000`, the lock `a` can never be taken
/// again, by anyone. The name passes validation; any process that can pick
/// a lock name (say, from a user-supplied id) can block an unrelated lock.
#[test]
#[ignore = "needs ZooKeeper on LOCKUTILS_TEST_ZK"]
fn a_nested_lock_name_cannot_block_its_parent_lock_forever() {
    let url = url("zz-review-nested", "layout=kazoo");
    let host = Host::new(&url);
    let registry = Registry::new();
    // One use of the crafted name, released at once.
    let g = LockOptions::new("volume/x__lock__0000000000")
        .registry(&registry)
        .backend(host.zk())
        .try_lock()
        .unwrap();
    LockGuard::unlock(g).unwrap();
    // The unrelated lock `volume`, free: nobody holds or waits for it.
    let other = Host::new(&url);
    let registry = Registry::new();
    let got = LockOptions::new("volume")
        .registry(&registry)
        .backend(other.zk())
        .try_lock();
    let info = other.inspect("volume").unwrap();
    assert!(
        got.is_ok(),
        "lock `volume` is blocked by the nested lock node of another name: {got:?}; \
         contenders: {:#?}",
        info.contenders
    );
}
