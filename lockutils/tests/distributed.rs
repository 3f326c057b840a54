//! `#[synchronized(.., distributed)]` against a real ZooKeeper server: the
//! in-process lock and then the ZooKeeper lock, with every other option
//! keeping its meaning.
//!
//! One test process stands in for several hosts: functions that name
//! different `semaphores` registries do not exclude each other in-process
//! (the control in the first test shows it), so whatever excludes them is the
//! ZooKeeper lock.
//!
//! The server is `LOCKUTILS_TEST_ZK` (default `127.0.0.1:2181`); these tests
//! are ignored in a plain run and fail, never skip, when it does not answer:
//!
//! ```text
//! scripts/zookeeper.sh start
//! cargo test -p lockutils --features zookeeper --test distributed -- --include-ignored
//! scripts/zookeeper.sh stop
//! ```
#![cfg(feature = "zookeeper")]

mod common;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{on_threads, rendezvous, Section, HOLD};
use lockutils::zookeeper::{Coordinator, LockInfo};
use lockutils::{
    synchronized, synchronized_with_prefix, Error, LockGuard, LockOptions, Mode, Registry,
};

/// The ZooKeeper test fixtures of `lockutils-zookeeper`, shared by path.
#[path = "../../lockutils-zookeeper/tests/common/mod.rs"]
mod zk;
use zk::server;

/// In-process lock containers of simulated hosts.
static HOST_A: Registry = Registry::new();
static HOST_B: Registry = Registry::new();
static HOST_C: Registry = Registry::new();

/// A URL with a root of its own for this test process, plus `suffix`.
fn test_url(suffix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "zookeeper://{}/lockutils-test/macros-{}-{nanos}{suffix}",
        server(),
        std::process::id()
    )
}

/// The default coordination URL, set once per process: what a plain
/// `distributed` locks on.
fn default_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let url = test_url("");
        // The scheme is known once registered (the macros register it at
        // their first call, which may come after this).
        lockutils::register_backends();
        lockutils::backend::set_default_url(&url).unwrap();
        url
    })
}

/// The coordinator of the default URL, to look at the lock nodes.
fn zk() -> Coordinator {
    Coordinator::shared(default_url()).unwrap()
}

/// The lock as the server sees it, under the default URL.
fn inspect(identity: &str) -> LockInfo {
    zk().inspect(identity).unwrap()
}

fn holders(info: &LockInfo) -> usize {
    info.holders().count()
}

fn assert_send<T: Send>(_: &T) {}

// ---------------------------------------------------------------------------
// Exclusion across threads (and simulated hosts)

static COUNTER: Section = Section::new();

#[synchronized("counter", distributed, semaphores = HOST_A)]
fn count_on_a() {
    COUNTER.visit(HOLD);
}

#[synchronized("counter", distributed, semaphores = HOST_B)]
fn count_on_b() {
    COUNTER.visit(HOLD);
}

// The control: the same name and registries without `distributed`.
static CONTROL_INSIDE: AtomicUsize = AtomicUsize::new(0);

#[synchronized("counter-control", semaphores = HOST_A)]
fn control_on_a() -> bool {
    CONTROL_INSIDE.fetch_add(1, SeqCst);
    rendezvous(&CONTROL_INSIDE, 2)
}

#[synchronized("counter-control", semaphores = HOST_B)]
fn control_on_b() -> bool {
    CONTROL_INSIDE.fetch_add(1, SeqCst);
    rendezvous(&CONTROL_INSIDE, 2)
}

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn threads_on_two_hosts_exclude_each_other() {
    default_url();
    // Without `distributed`, the two hosts' locks are unrelated: both are
    // inside at once.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(control_on_a);
        let b = s.spawn(control_on_b);
        (a.join().unwrap(), b.join().unwrap())
    });
    assert!(a && b, "the control's two hosts should be inside together");

    // With it, only ZooKeeper stands between them, and one is inside at a time.
    on_threads(4, |i| {
        for _ in 0..8 {
            if i % 2 == 0 {
                count_on_a();
            } else {
                count_on_b();
            }
        }
    });
    assert_eq!(COUNTER.visits(), 32);
    assert_eq!(COUNTER.max(), 1, "two holders inside at once");
    assert_eq!(
        inspect("counter").contenders.len(),
        0,
        "every candidate node is gone"
    );
}

// ---------------------------------------------------------------------------
// async fn

static ASYNC_COUNTER: Section = Section::new();

#[synchronized("async-counter", distributed, semaphores = HOST_A)]
async fn async_count_on_a() {
    ASYNC_COUNTER.visit_async(HOLD).await;
}

#[synchronized("async-counter", distributed, semaphores = HOST_B)]
async fn async_count_on_b() {
    ASYNC_COUNTER.visit_async(HOLD).await;
}

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn async_fns_are_send_and_exclude_each_other() {
    default_url();
    assert_send(&async_count_on_a());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                tokio::spawn(async move {
                    for _ in 0..4 {
                        if i % 2 == 0 {
                            async_count_on_a().await;
                        } else {
                            async_count_on_b().await;
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    assert_eq!(ASYNC_COUNTER.visits(), 32);
    assert_eq!(ASYNC_COUNTER.max(), 1, "two holders inside at once");
}

// ---------------------------------------------------------------------------
// blocking = false

static NB_RAN: AtomicUsize = AtomicUsize::new(0);

#[synchronized("non-blocking", distributed, blocking = false)]
fn try_reserve() -> Result<usize, Error> {
    Ok(NB_RAN.fetch_add(1, SeqCst) + 1)
}

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn non_blocking_returns_the_error_while_held() {
    default_url();
    // Another host holds the lock.
    let held = LockOptions::new("non-blocking")
        .coordinated()
        .registry(&HOST_C)
        .lock()
        .unwrap();
    let started = Instant::now();
    let err = try_reserve().unwrap_err();
    assert!(
        matches!(&err, Error::WouldBlock { name } if name == "non-blocking"),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "did not fail at once"
    );
    assert_eq!(NB_RAN.load(SeqCst), 0, "the body ran without the lock");
    let info = inspect("non-blocking");
    assert_eq!(
        info.contenders.len(),
        1,
        "the failed attempt left its candidate node: {info:#?}"
    );
    LockGuard::unlock(held).unwrap();
    assert_eq!(try_reserve().unwrap(), 1);
}

// ---------------------------------------------------------------------------
// timeout

#[synchronized("timeout", distributed, timeout = "300ms")]
fn timed() -> Result<(), Error> {
    Ok(())
}

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn timeout_gives_up_and_waits_for_a_release_within_it() {
    default_url();
    let held = LockOptions::new("timeout")
        .coordinated()
        .registry(&HOST_C)
        .lock()
        .unwrap();
    let started = Instant::now();
    let err = timed().unwrap_err();
    let waited = started.elapsed();
    assert!(
        matches!(&err, Error::Timeout { name, timeout }
            if name == "timeout" && *timeout == Duration::from_millis(300)),
        "{err:?}"
    );
    assert!(
        waited >= Duration::from_millis(300),
        "gave up early: {waited:?}"
    );
    assert!(waited < Duration::from_secs(3), "gave up late: {waited:?}");
    assert_eq!(
        inspect("timeout").contenders.len(),
        1,
        "the timed-out attempt left its candidate node"
    );
    LockGuard::unlock(held).unwrap();

    // Released within the timeout: the call waits for it and succeeds.
    let (tx, rx) = mpsc::channel();
    let holder = std::thread::spawn(move || {
        let held = LockOptions::new("timeout")
            .coordinated()
            .registry(&HOST_C)
            .lock()
            .unwrap();
        tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        LockGuard::unlock(held).unwrap();
    });
    rx.recv().unwrap();
    let started = Instant::now();
    timed().unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(50),
        "did not wait for the holder"
    );
    holder.join().unwrap();
}

// ---------------------------------------------------------------------------
// mode = read

static READERS_INSIDE: AtomicUsize = AtomicUsize::new(0);
static READERS_GO: AtomicBool = AtomicBool::new(false);

fn read_catalog() -> bool {
    READERS_INSIDE.fetch_add(1, SeqCst);
    let together = rendezvous(&READERS_INSIDE, 2);
    let until = Instant::now() + Duration::from_secs(10);
    while !READERS_GO.load(SeqCst) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(1));
    }
    together
}

#[synchronized("catalog", distributed, mode = read, semaphores = HOST_A)]
fn read_on_a() -> bool {
    read_catalog()
}

#[synchronized("catalog", distributed, mode = read, semaphores = HOST_B)]
fn read_on_b() -> bool {
    read_catalog()
}

#[synchronized("catalog", distributed, mode = write, blocking = false, semaphores = HOST_C)]
fn write_on_c() -> Result<(), Error> {
    Ok(())
}

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn readers_share_and_exclude_a_writer() {
    default_url();
    std::thread::scope(|s| {
        let a = s.spawn(read_on_a);
        let b = s.spawn(read_on_b);
        assert!(
            rendezvous(&READERS_INSIDE, 2),
            "readers not inside together"
        );
        let info = inspect("catalog");
        assert_eq!(holders(&info), 2, "{info:#?}");
        assert!(info.contenders.iter().all(|c| c.mode == Mode::Shared));
        let err = write_on_c().unwrap_err();
        assert!(matches!(err, Error::WouldBlock { .. }), "{err:?}");
        READERS_GO.store(true, SeqCst);
        assert!(a.join().unwrap() && b.join().unwrap());
    });
    write_on_c().unwrap();
}

// ---------------------------------------------------------------------------
// Names from the arguments

#[synchronized("instance-{id}", distributed, semaphores = HOST_A)]
fn build_on_a(id: u32, body: &(dyn Fn() + Sync)) {
    body();
}

struct Instance {
    uuid: String,
}

impl Instance {
    #[synchronized(name = &self.uuid, distributed, semaphores = HOST_B)]
    fn build_on_b(&self, body: &(dyn Fn() + Sync)) {
        body();
    }
}

static INSTANCE_1: Section = Section::new();
static MET: AtomicUsize = AtomicUsize::new(0);
static LOOKED: AtomicUsize = AtomicUsize::new(0);

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn dynamic_names_lock_per_instance() {
    default_url();
    let instance = |id: u32| Instance {
        uuid: format!("instance-{id}"),
    };

    // One instance: the two forms of the name are one lock, across hosts.
    on_threads(4, |i| {
        for _ in 0..5 {
            let body = || INSTANCE_1.visit(HOLD);
            if i % 2 == 0 {
                build_on_a(1, &body);
            } else {
                instance(1).build_on_b(&body);
            }
        }
    });
    assert_eq!(INSTANCE_1.visits(), 20);
    assert_eq!(INSTANCE_1.max(), 1, "one instance, two holders at once");

    // Two instances: in parallel, each on its own lock node.
    let meet = || {
        MET.fetch_add(1, SeqCst);
        assert!(rendezvous(&MET, 2), "instances 2 and 3 not held together");
        let (two, three) = (inspect("instance-2"), inspect("instance-3"));
        assert_eq!((holders(&two), holders(&three)), (1, 1));
        assert!(two.path.ends_with("/instance-2"), "{}", two.path);
        // Both stay until both have looked.
        LOOKED.fetch_add(1, SeqCst);
        assert!(rendezvous(&LOOKED, 2));
    };
    std::thread::scope(|s| {
        let a = s.spawn(|| build_on_a(2, &meet));
        let b = s.spawn(|| instance(3).build_on_b(&meet));
        a.join().unwrap();
        b.join().unwrap();
    });
    assert_eq!(holders(&inspect("instance-2")), 0);
}

// ---------------------------------------------------------------------------
// prefix

#[synchronized("compute", distributed, prefix = "nova")]
fn with_prefix() -> LockInfo {
    inspect("nova-compute")
}

#[synchronized_with_prefix("glance")]
mod images {
    use super::{inspect, synchronized, LockInfo};

    #[synchronized("image-{id}", distributed)]
    pub(super) fn fetch(id: u32) -> LockInfo {
        inspect(&format!("glance-image-{id}"))
    }
}

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn prefix_names_the_lock_node() {
    let root = Coordinator::new(default_url())
        .unwrap()
        .url()
        .root()
        .to_owned();

    let info = with_prefix();
    assert_eq!(info.path, format!("{root}/nova-compute"));
    let holder: Vec<_> = info.holders().collect();
    assert_eq!(holder.len(), 1, "{info:#?}");
    // The candidate's data names the host, the process and the function.
    let data = holder[0].data_lossy();
    assert!(
        data.ends_with(" distributed::with_prefix"),
        "candidate data {data:?}"
    );
    assert_eq!(
        inspect("compute").contenders.len(),
        0,
        "unprefixed node used"
    );

    let info = images::fetch(7);
    assert_eq!(info.path, format!("{root}/glance-image-7"));
    assert_eq!(holders(&info), 1, "{info:#?}");
    assert!(info.contenders[0]
        .data_lossy()
        .ends_with(" distributed::images::fetch"));
}

// ---------------------------------------------------------------------------
// A URL per lock

#[synchronized("per-lock-url", distributed = url, semaphores = HOST_A)]
fn on_url(url: &str) -> LockInfo {
    Coordinator::shared(url)
        .unwrap()
        .inspect("per-lock-url")
        .unwrap()
}

#[synchronized("per-lock-url", distributed = url, mode = read, semaphores = HOST_B)]
async fn on_url_async(url: String) -> LockInfo {
    tokio::task::yield_now().await;
    Coordinator::shared(&url)
        .unwrap()
        .inspect_async("per-lock-url")
        .await
        .unwrap()
}

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn a_url_expression_overrides_the_default() {
    default_url();
    let url = test_url("-own");
    let root = Coordinator::new(&url).unwrap().url().root().to_owned();
    let info = on_url(&url);
    assert_eq!(info.path, format!("{root}/per-lock-url"));
    assert_eq!(holders(&info), 1, "{info:#?}");
    assert_eq!(
        inspect("per-lock-url").contenders.len(),
        0,
        "the default URL was used"
    );

    let future = on_url_async(url);
    assert_send(&future);
    let info = block_on(future);
    assert_eq!(holders(&info), 1, "{info:#?}");
    assert_eq!(info.contenders[0].mode, Mode::Shared);
}

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

// ---------------------------------------------------------------------------
// No server needed: a literal URL is the one used, and its errors surface.

/// Nothing listens on port 1; `connect_timeout` bounds the attempt.
#[synchronized(
    "unreachable",
    distributed = "zookeeper://127.0.0.1:1/lockutils-test?connect_timeout=300ms",
    blocking = false
)]
fn unreachable() -> Result<(), Error> {
    Ok(())
}

#[synchronized(
    "unreachable-panics",
    distributed = "zookeeper://127.0.0.1:1/lockutils-test?connect_timeout=300ms"
)]
fn unreachable_panics() {}

#[test]
fn a_literal_url_is_used_and_its_errors_are_returned() {
    let started = Instant::now();
    let err = unreachable().unwrap_err();
    match &err {
        Error::Backend {
            name,
            backend,
            reason,
            ..
        } => {
            assert_eq!(name, "unreachable");
            assert!(backend.contains("127.0.0.1:1"), "{backend}");
            assert!(reason.contains("127.0.0.1:1"), "{reason}");
        }
        e => panic!("expected a backend error, got {e:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "connect_timeout not respected: {:?}",
        started.elapsed()
    );
}

#[test]
#[should_panic(
    expected = "#[synchronized] function distributed::unreachable_panics could not take lock \"unreachable-panics\""
)]
fn without_a_way_to_return_the_error_the_function_panics() {
    unreachable_panics();
}
