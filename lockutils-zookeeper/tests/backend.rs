//! ZooKeeper through the one lock API: `LockOptions::backend`, URLs, the
//! core guards and `StaticLock`, against a real server.

mod common;

use std::future::Future;
use std::time::{Duration, Instant};

use common::{host, registries, server, url, wait_for, Proxy, NEEDS_ZK};
use lockutils_core::backend::{
    Backend, Capability, CleanOptions, Cleaned, Location, LossKind, Removal,
};
use lockutils_core::{AsyncLockGuard, Error, LockGuard, LockOptions, StaticLock};
use lockutils_zookeeper::ZkBackend;

/// Two "hosts": separate sessions and separate in-process registries.
fn two_hosts(test: &str, params: &str) -> (String, ZkBackend, ZkBackend) {
    let u = url(test, params);
    let a = ZkBackend::from_coordinator(host(&u));
    let b = ZkBackend::from_coordinator(host(&u));
    (u, a, b)
}

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn exclusive_locks_through_the_builder_exclude_hosts_and_report_tokens() {
    let _ = NEEDS_ZK;
    let (_, a, b) = two_hosts("be-excl", "");
    let [ra, rb, ..] = registries();
    let g = LockOptions::new("x")
        .registry(ra)
        .backend(&a)
        .lock()
        .unwrap();
    let t1 = LockGuard::fencing_token(&g).unwrap();
    assert!(matches!(LockGuard::location(&g), Some(Location::Node(n)) if n.contains("/x/")));
    assert_eq!(LockGuard::backend(&g), Some(a.url().as_ref()));
    let e = LockOptions::new("x")
        .registry(rb)
        .backend(&b)
        .try_lock()
        .unwrap_err();
    assert!(
        matches!(e, Error::WouldBlock { ref name } if name == "x"),
        "{e}"
    );
    LockGuard::unlock(g).unwrap();
    let g2 = LockOptions::new("x")
        .registry(rb)
        .backend(&b)
        .try_lock()
        .unwrap();
    assert!(LockGuard::fencing_token(&g2).unwrap() > t1);
}

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn one_deadline_and_the_full_timeout_in_the_error() {
    let (_, a, b) = two_hosts("be-timeout", "");
    // Connected beforehand: the deadline is about waiting, not connecting.
    b.coordinator().connect().unwrap();
    let [ra, rb, ..] = registries();
    let _g = LockOptions::new("t")
        .registry(ra)
        .backend(&a)
        .lock()
        .unwrap();
    let started = Instant::now();
    let e = LockOptions::new("t")
        .registry(rb)
        .backend(&b)
        .timeout(Duration::from_millis(300))
        .lock()
        .unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(300));
    match e {
        Error::Timeout { name, timeout } => {
            assert_eq!(name, "t");
            assert_eq!(timeout, Duration::from_millis(300));
        }
        e => panic!("{e}"),
    }
    // No candidate of the waiter is left behind.
    let info = b.admin().unwrap().inspect("t").unwrap();
    assert_eq!((info.holders.len(), info.waiters.len()), (1, 0), "{info:?}");
}

/// A zero timeout is one attempt, as `try_lock` and the file backend make
/// it: a free lock is taken, connecting first if needed, and a held one is
/// a `Timeout` at once. It used to cut the connection (and each request)
/// short, so a free lock was refused with "cannot establish a ZooKeeper
/// session" or a `Timeout`.
#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn a_zero_timeout_takes_a_free_lock_as_try_lock_does() {
    let (_, a, b) = two_hosts("be-zero", "");
    let [ra, rb, ..] = registries();
    let zero = |backend: &ZkBackend, registry| {
        LockOptions::new("z")
            .registry(registry)
            .backend(backend)
            .timeout(Duration::ZERO)
            .lock()
    };
    // Not connected yet, then connected.
    let g = zero(&a, ra).unwrap();
    LockGuard::unlock(g).unwrap();
    let g = zero(&a, ra).unwrap();
    b.coordinator().connect().unwrap();
    let started = Instant::now();
    let e = zero(&b, rb).unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert!(started.elapsed() < Duration::from_secs(2), "{e}");
    let info = b.admin().unwrap().inspect("z").unwrap();
    assert_eq!((info.holders.len(), info.waiters.len()), (1, 0), "{info:?}");
    LockGuard::unlock(g).unwrap();
    LockGuard::unlock(zero(&b, rb).unwrap()).unwrap();
}

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn async_acquisition_waits_for_the_other_host_and_is_send() {
    let (_, a, b) = two_hosts("be-async", "");
    let [ra, rb, ..] = registries();
    let g = LockOptions::new("y")
        .registry(ra)
        .backend(&a)
        .lock()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let b: &'static ZkBackend = Box::leak(Box::new(b));
        let waiter = tokio::spawn(async move {
            let g = LockOptions::new("y")
                .registry(rb)
                .backend(b)
                .lock_async()
                .await
                .unwrap();
            AsyncLockGuard::fencing_token(&g).unwrap()
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!waiter.is_finished());
        let t1 = LockGuard::fencing_token(&g).unwrap();
        drop(g);
        let t2 = tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .unwrap()
            .unwrap();
        assert!(t2 > t1);
    });
}

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn urls_select_zookeeper_for_the_builder_and_static_locks() {
    lockutils_zookeeper::register();
    let u: &'static str = Box::leak(url("be-url", "").into_boxed_str());
    let g = LockOptions::new("u").backend_url(u).lock().unwrap();
    assert_eq!(
        LockGuard::backend(&g).map(|s| s.starts_with("zookeeper://")),
        Some(true)
    );
    drop(g);
    let lock: &'static StaticLock = Box::leak(Box::new(StaticLock::new(
        LockOptions::new("s").backend_url(u),
    )));
    let g = lock.lock().unwrap();
    assert!(LockGuard::fencing_token(&g).is_ok());
    let backend = lockutils_core::backend::backend_for_url(u).unwrap();
    let info = backend.admin().unwrap().inspect("s").unwrap();
    assert_eq!(info.holders.len(), 1);
    assert_eq!(info.holders[0].pid, Some(std::process::id()));
    assert_eq!(info.holders[0].token, LockGuard::fencing_token(&g).ok());
}

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn clearing_is_reported_as_a_loss_and_revocation_is_seen() {
    let (_, a, b) = two_hosts("be-loss", "");
    let [ra, ..] = registries();
    let g = LockOptions::new("l")
        .registry(ra)
        .backend(&a)
        .lock()
        .unwrap();
    assert!(!LockGuard::is_lost(&g));
    assert_eq!(b.admin().unwrap().revoke("l").unwrap(), 1);
    let until = Instant::now() + Duration::from_secs(5);
    while !LockGuard::is_revoked(&g) {
        assert!(Instant::now() < until, "revocation not seen");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(b.admin().unwrap().clear("l").unwrap(), 1);
    while !LockGuard::is_lost(&g) {
        assert!(Instant::now() < until, "loss not seen");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(LockGuard::loss(&g).unwrap().kind, LossKind::Cleared);
    wait_for(b.coordinator(), "l", Duration::from_secs(5), |i| {
        i.contenders.is_empty()
    });
    drop(g);
    // Held: kept. Free: removed, once.
    let [_, rb, ..] = registries();
    let g = LockOptions::new("l")
        .registry(rb)
        .backend(&b)
        .lock()
        .unwrap();
    assert_eq!(
        a.admin().unwrap().remove_if_free("l").unwrap(),
        Removal::Busy
    );
    LockGuard::unlock(g).unwrap();
    assert_eq!(
        a.admin().unwrap().remove_if_free("l").unwrap(),
        Removal::Removed
    );
    assert_eq!(
        a.admin().unwrap().remove_if_free("l").unwrap(),
        Removal::Absent
    );
}

#[test]
fn curator_layout_refuses_shared_locks_with_a_typed_error() {
    let b = ZkBackend::new("zookeeper://127.0.0.1:1/be?layout=curator").unwrap();
    assert!(!b.capabilities().has(Capability::Shared));
    let e = LockOptions::new("r")
        .backend(&b)
        .shared()
        .lock()
        .unwrap_err();
    match e {
        Error::Unsupported {
            name,
            backend,
            capability,
        } => {
            assert_eq!(name, "r");
            assert!(backend.contains("layout=curator"), "{backend}");
            assert_eq!(capability, Capability::Shared);
        }
        e => panic!("{e}"),
    }
}

/// Dropping a pending async acquisition deletes its candidate node before
/// the drop returns: right after it, without waiting or polling, the lock has
/// only its holder's node (as after a timed acquisition that gave up). The
/// dropping host reaches the server through a proxy that holds its answers
/// back 30 ms, so a drop that did not wait for the deletion's answer would
/// return while the node is still there for the other host to see.
#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn a_dropped_async_acquisition_has_withdrawn_its_candidate_when_the_drop_returns() {
    let u = url("be-drop", "");
    let a = ZkBackend::from_coordinator(host(&u));
    let proxy = Proxy::start(&server());
    let b = ZkBackend::from_coordinator(host(&u.replacen(
        &server(),
        &format!("127.0.0.1:{}", proxy.port),
        1,
    )));
    b.coordinator().connect().unwrap();
    proxy.slow_down(Duration::from_millis(30));
    let [ra, rb, ..] = registries();
    let g = LockOptions::new("d")
        .registry(ra)
        .backend(&a)
        .lock()
        .unwrap();
    let contenders = |b: &ZkBackend| b.coordinator().inspect("d").unwrap().contenders.len();
    for round in 0..5 {
        let mut waiter = Box::pin(LockOptions::new("d").registry(rb).backend(&b).lock_async());
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        assert!(waiter.as_mut().poll(&mut cx).is_pending());
        // Its candidate is queued behind the holder's.
        wait_for(b.coordinator(), "d", Duration::from_secs(10), |i| {
            i.contenders.len() == 2
        });
        drop(waiter);
        assert_eq!(contenders(&a), 1, "round {round}: a candidate was left");
        // Timed out: likewise withdrawn when the error returns.
        let e = LockOptions::new("d")
            .registry(rb)
            .backend(&b)
            .timeout(Duration::from_millis(150))
            .lock()
            .unwrap_err();
        assert!(matches!(e, Error::Timeout { .. }), "{e}");
        assert_eq!(
            contenders(&a),
            1,
            "round {round}: a timed-out candidate was left"
        );
    }
    drop(g);
}

/// `remove` and `clean` delete free lock nodes only. A node under the root
/// that carries data is some application's (lock nodes are empty, as lock
/// files are): listed as not a lock and left alone, as a file with data in
/// a lock directory is, and `show` does not call it a free lock. `remove`
/// and `clean` used to delete it as a free lock.
#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn remove_and_clean_leave_nodes_with_data_alone() {
    use zookeeper_client as zk;
    let (_, a, _) = two_hosts("be-data", "");
    let [ra, ..] = registries();
    let free = LockOptions::new("free").registry(ra).backend(&a).lock();
    LockGuard::unlock(free.unwrap()).unwrap();
    let root = a.coordinator().url().root().to_owned();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = rt.block_on(zk::Client::connect(&server())).unwrap();
    let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    let config = format!("{root}/app-config");
    rt.block_on(client.create(&config, b"important", &persistent))
        .unwrap();
    let admin = a.admin().unwrap();
    let e = admin.remove_if_free("app-config").unwrap_err();
    assert!(e.to_string().contains("not a lock node"), "{e}");
    let e = admin.inspect("app-config").unwrap_err();
    assert!(e.to_string().contains("not a lock node"), "{e}");
    assert!(admin.inspect("free").unwrap().exists.is_some());
    let listing = admin.list_all().unwrap();
    let locks: Vec<&str> = listing.locks.iter().map(|l| l.identity.as_str()).collect();
    let ignored: Vec<&str> = listing.ignored.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!((locks, ignored), (vec!["free"], vec!["app-config"]));
    let cleaned = admin.clean_with(&CleanOptions::new()).unwrap();
    assert!(
        matches!(
            &cleaned[..],
            [(c, Cleaned::Skipped(_)), (f, Cleaned::Removed)]
                if c == "app-config" && f == "free"
        ),
        "{cleaned:?}"
    );
    let (data, _) = rt.block_on(client.get_data(&config)).unwrap();
    assert_eq!(data, b"important");
}

/// Only the top-level `/zookeeper` is the server's: a lock named `zookeeper`
/// is the node `{root}/zookeeper`, which the server creates as any other
/// (and tooz's `get_lock("zookeeper")` uses). It used to be refused as an
/// invalid name, in every layout.
#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn a_lock_may_be_named_zookeeper() {
    for params in ["", "layout=kazoo"] {
        let (_, a, b) = two_hosts("be-zkname", params);
        let [ra, rb, ..] = registries();
        let g = LockOptions::new("zookeeper")
            .registry(ra)
            .backend(&a)
            .lock()
            .unwrap();
        let e = LockOptions::new("zookeeper")
            .registry(rb)
            .backend(&b)
            .try_lock()
            .unwrap_err();
        assert!(matches!(e, Error::WouldBlock { .. }), "{params}: {e}");
        let info = b.admin().unwrap().inspect("zookeeper").unwrap();
        assert_eq!(info.holders.len(), 1, "{params}: {info:?}");
        LockGuard::unlock(g).unwrap();
    }
}

/// `remove --force` (Admin::clear) deletes a lock's contenders, never an
/// application's nodes: a named node with data is refused, and under a lock
/// node, a child with data that is no contender stays. Both used to be
/// deleted.
#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn a_forced_clear_leaves_nodes_with_data_alone() {
    use zookeeper_client as zk;
    let (_, a, _) = two_hosts("be-clear-data", "");
    let [ra, ..] = registries();
    let held = LockOptions::new("held")
        .registry(ra)
        .backend(&a)
        .lock()
        .unwrap();
    let root = a.coordinator().url().root().to_owned();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = rt.block_on(zk::Client::connect(&server())).unwrap();
    let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    let (config, extra) = (format!("{root}/config"), format!("{root}/held/extra"));
    for path in [&config, &extra] {
        rt.block_on(client.create(path, b"important", &persistent))
            .unwrap();
    }
    let admin = a.admin().unwrap();
    let e = admin.clear("config").unwrap_err();
    assert!(e.to_string().contains("not a lock node"), "{e}");
    assert_eq!(admin.clear("held").unwrap(), 1);
    let until = Instant::now() + Duration::from_secs(10);
    while !LockGuard::is_lost(&held) {
        assert!(Instant::now() < until, "the holder never saw its loss");
        std::thread::sleep(Duration::from_millis(10));
    }
    for path in [&config, &extra] {
        let (data, _) = rt.block_on(client.get_data(path)).unwrap();
        assert_eq!(data, b"important", "{path}");
    }
}
