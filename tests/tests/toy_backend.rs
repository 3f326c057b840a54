//! A new engine is one module: the toy in-memory backend of
//! `lockutils_tests::memory`, written outside the core against the public
//! backend API, used through the builder, both guards, `StaticLock`,
//! `#[synchronized]` (by URL and by expression) and the admin interface.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;
use std::time::Duration;

use lockutils::backend::{backend_for_url, Backend, Capability, Location, LossKind, Removal};
use lockutils::{
    synchronized, AsyncLockGuard, Error, LockGuard, LockOptions, Registry, StaticLock,
};
use lockutils_tests::block_on;
use lockutils_tests::memory::MemoryBackend;

static R1: Registry = Registry::new();
static R2: Registry = Registry::new();

#[test]
fn the_builder_and_both_guards_work_on_a_new_engine() {
    let mem = MemoryBackend::new("builder");
    let g = LockOptions::new("a/b")
        .registry(&R1)
        .backend(&mem)
        .lock()
        .unwrap();
    assert_eq!(LockGuard::location(&g), Some(Location::Key("a_b")));
    assert_eq!(LockGuard::backend(&g), Some("memory://builder"));
    let t1 = LockGuard::fencing_token(&g).unwrap();
    // Another registry meets this one on the engine only.
    let e = LockOptions::new("a/b")
        .registry(&R2)
        .backend(&mem)
        .try_lock()
        .unwrap_err();
    assert!(matches!(e, Error::WouldBlock { .. }), "{e}");
    let e = LockOptions::new("a/b")
        .registry(&R2)
        .backend(&mem)
        .timeout(Duration::from_millis(50))
        .lock()
        .unwrap_err();
    assert!(
        matches!(e, Error::Timeout { timeout, .. } if timeout == Duration::from_millis(50)),
        "{e}"
    );
    LockGuard::unlock(g).unwrap();
    let g = block_on(
        LockOptions::new("a/b")
            .registry(&R2)
            .backend(&mem)
            .lock_async(),
    )
    .unwrap();
    assert!(AsyncLockGuard::fencing_token(&g).unwrap() > t1);
    // Readers share on the engine.
    let r1 = LockOptions::new("r")
        .registry(&R1)
        .backend(&mem)
        .shared()
        .lock()
        .unwrap();
    let r2 = LockOptions::new("r")
        .registry(&R2)
        .backend(&mem)
        .shared()
        .try_lock()
        .unwrap();
    drop((r1, r2, g));
}

#[test]
fn an_async_waiter_on_the_engine_is_woken_by_a_release_elsewhere() {
    let mem = MemoryBackend::new("async");
    let g = block_on(
        LockOptions::new("w")
            .registry(&R1)
            .backend(&mem)
            .lock_async(),
    )
    .unwrap();
    let watched = mem.clone();
    let releaser = std::thread::spawn(move || {
        // Released 30 ms after the waiter parked, however late it started.
        let start = std::time::Instant::now();
        while watched.async_waiters() == 0 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no waiter parked"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(30));
        drop(g);
    });
    let got = block_on(
        LockOptions::new("w")
            .registry(&R2)
            .backend(&mem)
            .timeout(Duration::from_secs(10))
            .lock_async(),
    )
    .unwrap();
    assert!(AsyncLockGuard::waited(&got) >= Duration::from_millis(30));
    releaser.join().unwrap();
}

#[test]
fn a_url_selects_the_engine_for_static_locks_and_admin() {
    MemoryBackend::register();
    static LOCK: StaticLock = StaticLock::new(LockOptions::new("s").backend_url("memory://static"));
    let g = LOCK.lock().unwrap();
    let backend = backend_for_url("memory://static").unwrap();
    assert!(backend.capabilities().has(Capability::Revocation));
    let admin = backend.admin().unwrap();
    let info = admin.inspect("s").unwrap();
    assert_eq!(info.holders.len(), 1);
    assert_eq!(info.holders[0].token, LockGuard::fencing_token(&g).ok());
    assert_eq!(info.holders[0].pid, Some(std::process::id()));
    assert_eq!(admin.remove_if_free("s").unwrap(), Removal::Busy);
    assert_eq!(admin.revoke("s").unwrap(), 1);
    assert!(LockGuard::is_revoked(&g));
    assert_eq!(admin.clear("s").unwrap(), 1);
    assert_eq!(LockGuard::loss(&g).unwrap().kind, LossKind::Cleared);
    let lost = LockGuard::lost(&g).unwrap();
    assert_eq!(block_on(lost).unwrap().kind, LossKind::Cleared);
    drop(g);
    assert_eq!(admin.list().unwrap().len(), 1);
    assert_eq!(admin.clean().unwrap(), ["s"]);
    assert_eq!(admin.remove_if_free("s").unwrap(), Removal::Absent);
}

static CALLS: AtomicUsize = AtomicUsize::new(0);
static INSIDE: AtomicUsize = AtomicUsize::new(0);

#[synchronized("counted", backend = "memory://macro")]
fn counted() {
    assert_eq!(
        INSIDE.fetch_add(1, Ordering::SeqCst),
        0,
        "two callers inside"
    );
    std::thread::sleep(Duration::from_millis(1));
    CALLS.fetch_add(1, Ordering::SeqCst);
    INSIDE.fetch_sub(1, Ordering::SeqCst);
}

static MEM: LazyLock<MemoryBackend> = LazyLock::new(|| MemoryBackend::new("expr"));

#[synchronized("by-expr", backend = &*MEM)]
fn by_expression() -> Option<u64> {
    let info = MEM.admin().unwrap().inspect("by-expr").unwrap();
    info.holders.first().and_then(|h| h.token)
}

#[synchronized("async-expr", backend = &*MEM)]
async fn by_expression_async() -> usize {
    MEM.admin()
        .unwrap()
        .inspect("async-expr")
        .unwrap()
        .holders
        .len()
}

#[test]
fn synchronized_takes_a_backend_by_url_or_expression() {
    MemoryBackend::register();
    let threads: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(|| (0..20).for_each(|_| counted())))
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(CALLS.load(Ordering::SeqCst), 80);
    let admin_view = backend_for_url("memory://macro").unwrap();
    assert_eq!(
        admin_view.admin().unwrap().list().unwrap()[0].identity,
        "counted"
    );

    assert_eq!(by_expression(), Some(1));
    assert_eq!(by_expression(), Some(2));
    assert_eq!(block_on(by_expression_async()), 1);
}

#[test]
fn a_dropped_wait_on_the_engine_leaves_nothing_held_or_queued() {
    use std::future::Future;
    let mem = MemoryBackend::new("dropped");
    let g = LockOptions::new("d")
        .registry(&R1)
        .backend(&mem)
        .lock()
        .unwrap();
    {
        let mut fut = std::pin::pin!(LockOptions::new("d")
            .registry(&R2)
            .backend(&mem)
            .lock_async());
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
    }
    // The in-process lock it held while waiting on the engine is free again.
    drop(LockOptions::new("d").registry(&R2).try_lock().unwrap());
    drop(g);
    assert!(mem
        .admin()
        .unwrap()
        .inspect("d")
        .unwrap()
        .holders
        .is_empty());
    drop(
        LockOptions::new("d")
            .registry(&R2)
            .backend(&mem)
            .try_lock()
            .unwrap(),
    );
}
