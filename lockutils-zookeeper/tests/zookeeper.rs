//! Distributed locks against a real ZooKeeper server (issue 5).
//!
//! Ignored in a plain `cargo test`; `bash .ci/run` starts a server and runs
//! them, as does `scripts/zookeeper.sh start && cargo test -p
//! lockutils-zookeeper -- --ignored`. An unreachable server fails them.

mod common;
mod support;

use common::holder_bin;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use common::*;
use lockutils_core::{AsyncLockGuard, Error, LockGuard, LockOptions, Mode, StaticLock};
use lockutils_zookeeper::{Coordinator, Layout, LossReason};
use support::*;

/// One simulated host: a backend with a session of its own (this file's
/// hosts are backends; `common::host` gives a bare coordinator).
fn host(url: &str) -> Host {
    lockutils_zookeeper::register();
    Host::new(url)
}

// ---- 1. configuration ------------------------------------------------------

/// A name the server cannot take (it drops the connection on a request
/// past its packet bound) is refused at once, naming the lock, before any
/// server is contacted. The kazoo layout keeps long names whole: a 2 MB
/// name used to wait out the lock's whole timeout (forever without one),
/// the connection dropped and retried, and end in `Timeout`.
#[test]
fn a_name_too_long_for_the_server_is_refused_at_once() {
    lockutils_zookeeper::register();
    let name = "x".repeat(2_000_000);
    let started = Instant::now();
    let e = LockOptions::new(&name)
        .backend_url("zookeeper://127.0.0.1:1/long?layout=kazoo")
        .timeout(Duration::from_secs(30))
        .lock()
        .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidName { name: n, reason } if *n == name && reason.contains("64 KiB")),
        "{e}"
    );
    assert!(started.elapsed() < Duration::from_secs(1), "{e}");
}

/// ZooKeeper checks names as UTF-16: a character past U+FFFF (an emoji)
/// is a surrogate pair, which it refuses. Such a name is a typed
/// `InvalidName` at once; it used to reach the server and fail there with
/// "creating lock node … failed: bad arguments".
#[test]
fn a_name_with_characters_past_u_ffff_is_refused_at_once() {
    lockutils_zookeeper::register();
    for name in ["job-😀", "𝄞"] {
        let e = LockOptions::new(name)
            .backend_url("zookeeper://127.0.0.1:1/unicode")
            .try_lock()
            .unwrap_err();
        assert!(
            matches!(&e, Error::InvalidName { name: n, reason } if n == name && reason.contains("emoji")),
            "{e}"
        );
    }
}

/// A lock timeout shorter than the URL's `connect_timeout` cuts the
/// connection attempts: the error says so and suggests a longer lock
/// timeout. It used to suggest raising `connect_timeout`, which changes
/// nothing then.
#[test]
fn a_connection_cut_by_the_lock_timeout_says_which_timeout_to_raise() {
    lockutils_zookeeper::register();
    let e = LockOptions::new("cut")
        .backend_url("zookeeper://127.0.0.1:1/cut?connect_timeout=10")
        .timeout(Duration::from_millis(200))
        .lock()
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("the lock's timeout ran out")
            && text.contains("give the lock a longer timeout")
            && !text.contains("raise connect_timeout"),
        "{text}"
    );
}

#[test]
fn bad_urls_fail_at_once_with_a_typed_error() {
    let started = Instant::now();
    lockutils_zookeeper::register();
    for url in [
        "zookeeper://h:port",
        "zookeeper://h?layout=x",
        "zookeeper://u:secret@",
    ] {
        let e = LockOptions::new("cfg").backend_url(url).lock().unwrap_err();
        let Error::InvalidUrl {
            name,
            url: shown,
            reason,
            ..
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!(name, "cfg");
        assert_eq!(e.kind(), lockutils_core::ErrorKind::InvalidUrl);
        assert!(
            !shown.contains("secret") && !reason.contains("secret"),
            "{e}"
        );
        assert!(reason.contains("invalid coordination URL"), "{e}");
    }
    let e = LockOptions::new("cfg")
        .backend_url("etcd://h")
        .lock()
        .unwrap_err();
    assert!(
        matches!(&e, Error::UnknownScheme { name, scheme, .. } if name == "cfg" && scheme == "etcd"),
        "{e}"
    );
    assert!(
        // A connection attempt would take its connect timeout (seconds).
        started.elapsed() < Duration::from_secs(1),
        "no server may be contacted"
    );
}

#[test]
fn the_url_comes_from_the_api_the_environment_or_the_call() {
    // Per call wins over the process default, which wins over the
    // environment; none of them is contacted here (port 1 refuses at once).
    lockutils_zookeeper::register();
    let root_tried = |opts: LockOptions<'_, 'static>| -> String {
        match opts.try_lock().unwrap_err() {
            Error::Backend { backend, .. } => backend,
            e => panic!("{e:?}"),
        }
    };
    std::env::set_var(
        lockutils_core::backend::COORDINATION_URL_ENV,
        "zookeeper://127.0.0.1:1/e?connect_timeout=100ms",
    );
    assert!(root_tried(LockOptions::new("x").coordinated()).contains(":1/e"));
    lockutils_core::backend::set_default_url("zookeeper://127.0.0.1:1/a?connect_timeout=100ms")
        .unwrap();
    assert!(root_tried(LockOptions::new("x").coordinated()).contains(":1/a"));
    let per_call = "zookeeper://127.0.0.1:1/p?connect_timeout=100ms";
    assert!(root_tried(LockOptions::new("x").backend_url(per_call)).contains(":1/p"));
    lockutils_core::backend::clear_default_url();
    std::env::remove_var(lockutils_core::backend::COORDINATION_URL_ENV);
    let e = LockOptions::new("x").coordinated().lock().unwrap_err();
    assert!(e.to_string().contains("LOCKUTILS_COORDINATION_URL"), "{e}");
}

#[test]
fn an_unreachable_server_fails_within_the_connect_timeout() {
    // Registered here too: tests run in any order, and the scheme is unknown
    // until something registers it (CI once ran this one first).
    lockutils_zookeeper::register();
    // A closed port (refused at once) and a port that accepts but never
    // answers (the client must give up on its own).
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let closed_port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    for port in [closed_port, silent_port] {
        let url = format!("zookeeper://127.0.0.1:{port}/x?connect_timeout=1500ms");
        let started = Instant::now();
        let e = LockOptions::new("unreachable")
            .backend_url(&url)
            .lock()
            .unwrap_err();
        let waited = started.elapsed();
        let Error::Backend {
            name,
            backend,
            reason,
            ..
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!(name, "unreachable");
        assert!(backend.contains(&format!("127.0.0.1:{port}")), "{e}");
        assert!(
            reason.contains("cannot establish a ZooKeeper session"),
            "{e}"
        );
        assert!(reason.contains("attempt"), "{e}");
        assert!(
            waited < Duration::from_millis(3000),
            "gave up after {waited:?}: {e}"
        );
        eprintln!("port {port}: failed after {waited:?}: {e}");
    }
    // The lock's own timeout bounds the connection too.
    let url = format!("zookeeper://127.0.0.1:{silent_port}/x?connect_timeout=30");
    let started = Instant::now();
    let e = LockOptions::new("t")
        .backend_url(&url)
        .timeout(Duration::from_millis(400))
        .lock()
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(1500), "{e}");
    assert!(e.to_string().contains("timeout ran out"), "{e}");
}

// ---- 2. exclusive locks ----------------------------------------------------

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn exclusive_locks_exclude_across_threads() {
    let regs = registries();
    let url = url("threads", "");
    let inside = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|s| {
        for registry in &regs[..4] {
            let (url, inside, max) = (&url, inside.clone(), max.clone());
            s.spawn(move || {
                // Own session and own in-process container: only ZooKeeper
                // stands between these threads.
                let c = host(url);
                for _ in 0..10 {
                    let g = LockOptions::new("x")
                        .backend(c.zk())
                        .registry(registry)
                        .lock()
                        .unwrap();
                    let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    max.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(2));
                    inside.fetch_sub(1, Ordering::SeqCst);
                    drop(g);
                }
            });
        }
    });
    assert_eq!(max.load(Ordering::SeqCst), 1);
    // And threads sharing the global registry and one session.
    let shared = &url;
    let inside = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..5 {
                    let _g = LockOptions::new("y").backend_url(shared).lock().unwrap();
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                    std::thread::sleep(Duration::from_millis(1));
                    inside.fetch_sub(1, Ordering::SeqCst);
                }
            });
        }
    });
}

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn exclusive_locks_exclude_across_processes() {
    let url = url("processes", "");
    let dir = std::env::temp_dir().join(format!("lockutils-zk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("processes.log");
    let _ = std::fs::remove_file(&log);
    let children: Vec<_> = (0..5)
        .map(|_| {
            Command::new(holder_bin())
                .args(["hold", &url, "shared-resource", "--hold-ms", "60", "--log"])
                .arg(&log)
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let iv = intervals(&std::fs::read_to_string(&log).unwrap());
    assert_eq!(iv.len(), 5);
    for w in iv.windows(2) {
        assert!(
            w[0].2 <= w[1].1,
            "holders overlap: {:?} and {:?}",
            w[0],
            w[1]
        );
        assert!(
            w[0].3 < w[1].3,
            "fencing tokens must increase: {:?} then {:?}",
            w[0],
            w[1]
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn non_blocking_and_timeout_leave_no_candidate_behind() {
    let regs = registries();
    let url = url("nonblocking", "");
    let (a, b) = (host(&url), host(&url));
    let held = LockOptions::new("x")
        .backend(a.zk())
        .registry(&regs[0])
        .lock()
        .unwrap();
    let other = LockOptions::new("x").backend(b.zk()).registry(&regs[1]);

    let started = Instant::now();
    let e = other.try_lock().unwrap_err();
    assert!(matches!(e, Error::WouldBlock { .. }), "{e}");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(
        b.inspect("x").unwrap().contenders.len(),
        1,
        "try_lock removed its candidate"
    );

    let started = Instant::now();
    let e = other
        .timeout(Duration::from_millis(300))
        .lock()
        .unwrap_err();
    let waited = started.elapsed();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_millis(1500),
        "{waited:?}"
    );
    let info = b.inspect("x").unwrap();
    assert_eq!(
        info.contenders.len(),
        1,
        "the timed-out candidate was removed: {info:#?}"
    );
    assert_eq!(
        info.contenders[0].node,
        held.node().rsplit('/').next().unwrap()
    );

    drop(held);
    let g = other.timeout(Duration::from_secs(5)).lock().unwrap();
    assert!(!g.is_lost());
}

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn one_deadline_covers_the_in_process_and_zookeeper_waits() {
    let regs = registries();
    let url = url("deadline", "");
    let (a, b) = (host(&url), host(&url));
    // Connected beforehand: the deadline is about waiting, not connecting.
    a.connect().unwrap();
    // Another host holds the ZooKeeper lock throughout.
    let _zk_holder = LockOptions::new("x")
        .backend(b.zk())
        .registry(&regs[1])
        .lock()
        .unwrap();
    // A thread of this process holds the in-process lock for 1 s.
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        s.spawn(|| {
            let _local = LockOptions::new("x").registry(&regs[0]).lock().unwrap();
            barrier.wait();
            std::thread::sleep(Duration::from_millis(1000));
        });
        barrier.wait();
        let started = Instant::now();
        let e = LockOptions::new("x")
            .backend(a.zk())
            .registry(&regs[0])
            .timeout(Duration::from_millis(1400))
            .lock()
            .unwrap_err();
        let waited = started.elapsed();
        assert!(matches!(e, Error::Timeout { .. }), "{e}");
        // 1 s in-process + the remaining 400 ms on ZooKeeper: 1.4 s, not the
        // 2.4 s of a fresh timeout for the second wait.
        assert!(
            waited >= Duration::from_millis(1390) && waited < Duration::from_millis(2200),
            "{waited:?}"
        );
    });
    assert_eq!(a.inspect("x").unwrap().contenders.len(), 1);
}

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn waiters_are_served_in_fifo_order() {
    let regs = registries();
    let url = url("fifo", "");
    let admin = host(&url);
    let first = host(&url);
    let holder = LockOptions::new("q")
        .backend(first.zk())
        .registry(&regs[0])
        .lock()
        .unwrap();
    let order = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for (i, registry) in regs.iter().enumerate().take(6).skip(1) {
            let (url, order) = (&url, &order);
            s.spawn(move || {
                let c = host(url);
                let g = LockOptions::new("q")
                    .backend(c.zk())
                    .registry(registry)
                    .lock()
                    .unwrap();
                order.lock().unwrap().push(i);
                std::thread::sleep(Duration::from_millis(10));
                drop(g);
            });
            // The next waiter starts only once this one is queued.
            wait_for(&admin, "q", Duration::from_secs(5), |info| {
                info.contenders.len() == i + 1
            });
        }
        drop(holder);
    });
    assert_eq!(*order.lock().unwrap(), [1, 2, 3, 4, 5]);
}

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn a_dropped_future_removes_its_candidate() {
    let regs = registries();
    let url = url("dropped", "");
    let (a, b) = (host(&url), host(&url));
    let _held = LockOptions::new("x")
        .backend(b.zk())
        .registry(&regs[1])
        .lock()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pending = LockOptions::new("x")
            .backend(a.zk())
            .registry(&regs[0])
            .lock_async();
        // Poll it until its candidate is queued, then drop it.
        let mut pending = Box::pin(pending);
        let queued = async {
            loop {
                if a.inspect_async("x").await.unwrap().contenders.len() == 2 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::select! {
            r = &mut pending => panic!("acquired while held: {:?}", r.map(|g| g.node().to_owned())),
            () = queued => {}
        }
        drop(pending);
    });
    wait_for(&b, "x", Duration::from_secs(2), |info| {
        info.contenders.len() == 1
    });
    // The in-process lock was released too.
    assert!(LockOptions::new("x").registry(&regs[0]).try_lock().is_ok());
}

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn async_callers_never_block_their_executor() {
    let regs = registries();
    let url = url("async", "");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (a, b) = (host(&url), host(&url));
        let g = LockOptions::new("x")
            .backend(a.zk())
            .registry(&regs[0])
            .lock_async()
            .await
            .unwrap();
        // On a one-thread executor: a waiting acquisition and a ticker task.
        let waiter = tokio::spawn({
            let b = b.clone();
            async move {
                let started = Instant::now();
                let g = LockOptions::new("x")
                    .backend(b.zk())
                    .registry(&regs[1])
                    .lock_async()
                    .await
                    .unwrap();
                (started.elapsed(), g.fencing_token())
            }
        });
        let mut ticks = 0;
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            ticks += 1;
        }
        assert_eq!(ticks, 20);
        let first = g.fencing_token();
        AsyncLockGuard::unlock_async(g).await.unwrap();
        let (waited, second) = waiter.await.unwrap();
        assert!(waited >= Duration::from_millis(200), "{waited:?}");
        assert!(second > first);
    });
}

// ---- 3. read/write locks ---------------------------------------------------

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn readers_share_and_writers_wait_in_queue_order() {
    let regs = registries();
    let url = url("rw", "");
    let hosts: Vec<Host> = (0..5).map(|_| host(&url)).collect();
    let opts = |i: usize| {
        LockOptions::new("db")
            .backend(hosts[i].zk())
            .registry(&regs[i])
    };
    let r1 = opts(0).shared().lock().unwrap();
    let r2 = opts(1).shared().try_lock().expect("readers share");
    let events = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        s.spawn(|| {
            let w = opts(2).lock().unwrap();
            events.lock().unwrap().push("writer in");
            std::thread::sleep(Duration::from_millis(100));
            events.lock().unwrap().push("writer out");
            drop(w);
        });
        wait_for(&hosts[4], "db", Duration::from_secs(5), |i| {
            i.contenders.len() == 3
        });
        // A reader arriving after a queued writer waits behind it.
        let e = opts(3).shared().try_lock().unwrap_err();
        assert!(matches!(e, Error::WouldBlock { .. }), "{e}");
        s.spawn(|| {
            let r = opts(3).shared().lock().unwrap();
            events.lock().unwrap().push("late reader in");
            drop(r);
        });
        let info = wait_for(&hosts[4], "db", Duration::from_secs(5), |i| {
            i.contenders.len() == 4
        });
        let holders: Vec<Mode> = info.holders().map(|c| c.mode).collect();
        let waiters: Vec<Mode> = info.waiters().map(|c| c.mode).collect();
        assert_eq!(holders, [Mode::Shared, Mode::Shared]);
        assert_eq!(waiters, [Mode::Exclusive, Mode::Shared]);
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            events.lock().unwrap().is_empty(),
            "the writer waits for both readers"
        );
        drop(r1);
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            events.lock().unwrap().is_empty(),
            "the writer waits for the second reader"
        );
        drop(r2);
    });
    assert_eq!(
        *events.lock().unwrap(),
        ["writer in", "writer out", "late reader in"]
    );
}

// ---- 5. session loss and fencing -------------------------------------------

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn session_loss_is_reported_and_the_next_acquisition_starts_clean() {
    let regs = registries();
    // Host `a` reaches the server through a proxy the test can cut; host `b`
    // directly. Same root.
    let direct = url("session", "session_timeout=2");
    let proxy = Proxy::start(&server());
    let via_proxy = direct.replacen(&server(), &format!("127.0.0.1:{}", proxy.port), 1);
    let (a, b) = (host(&via_proxy), host(&direct));
    let opts_a = LockOptions::new("x").backend(a.zk()).registry(&regs[0]);
    let opts_b = LockOptions::new("x").backend(b.zk()).registry(&regs[1]);
    let g = opts_a.lock().unwrap();
    let session_timeout = a.session_timeout().unwrap();
    let lost = LockGuard::lost(&g).unwrap();
    let notified = std::thread::spawn(move || {
        let reason = wait_lost(lost, Duration::from_secs(20));
        (reason, Instant::now())
    });

    proxy.partition(true);
    let cut = Instant::now();
    // The server expires a's session, and b gets the lock.
    let gb = opts_b.timeout(Duration::from_secs(20)).lock().unwrap();
    let b_acquired = Instant::now();
    let (reason, lost_at) = notified.join().unwrap();
    eprintln!(
        "session timeout {session_timeout:?}: loss reported {:?} after the cut ({reason:?}), \
         the other host acquired after {:?}",
        lost_at - cut,
        b_acquired - cut
    );
    assert_eq!(reason, Some(LossReason::ConnectionLost));
    assert!(g.is_lost() && g.loss() == Some(LossReason::ConnectionLost));
    // Reported no later than the server gave the lock away (plus scheduling
    // slack on a busy machine), and well within the session timeout.
    assert!(
        lost_at <= b_acquired + Duration::from_millis(500),
        "loss reported late"
    );
    assert!(lost_at - cut <= session_timeout + Duration::from_millis(500));
    assert!(gb.fencing_token() > g.fencing_token());

    // Healed: the next acquisition through `a` gets a new session and a
    // clean candidate.
    proxy.partition(false);
    drop(g);
    let old_token = gb.fencing_token();
    drop(gb);
    let g = opts_a.timeout(Duration::from_secs(20)).lock().unwrap();
    assert!(!g.is_lost());
    assert!(g.fencing_token() > old_token);
    let info = b.inspect("x").unwrap();
    assert_eq!(info.contenders.len(), 1, "{info:#?}");
}

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn a_short_disconnection_suspends_without_losing_the_lock() {
    let regs = registries();
    let direct = url("suspend", "session_timeout=6");
    let proxy = Proxy::start(&server());
    let via_proxy = direct.replacen(&server(), &format!("127.0.0.1:{}", proxy.port), 1);
    let a = host(&via_proxy);
    let g = LockOptions::new("x")
        .backend(a.zk())
        .registry(&regs[0])
        .lock()
        .unwrap();
    proxy.partition(true);
    // The client declares the connection down after 2/5 of the session
    // timeout (2.4 s); the lock is reported lost only once the server has
    // not answered for 4/5 of it (4.8 s), which leaves the client 2 s after
    // the heal below to reconnect.
    let until = Instant::now() + Duration::from_millis(2600);
    while Instant::now() < until {
        assert!(!g.is_lost(), "{:?}", g.loss());
        std::thread::sleep(Duration::from_millis(20));
    }
    proxy.partition(false);
    // Once reconnected, the session (and the lock) carries on.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        assert!(!g.is_lost(), "{:?}", g.loss());
        std::thread::sleep(Duration::from_millis(20));
    }
    let other = host(&direct);
    assert_eq!(other.inspect("x").unwrap().holders().count(), 1);
    LockGuard::unlock(g).unwrap();
}

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn an_operator_clearing_the_lock_is_reported_to_the_holder() {
    let regs = registries();
    let url = url("cleared", "");
    let (a, admin) = (host(&url), host(&url));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let g = LockOptions::new("x")
            .backend(a.zk())
            .registry(&regs[0])
            .lock_async()
            .await
            .unwrap();
        let lost = g.lost();
        assert_eq!(admin.clear("x").unwrap(), 1);
        let reason = tokio::time::timeout(Duration::from_secs(5), lost)
            .await
            .unwrap()
            .map(|l| LossReason::of(&l).unwrap());
        assert_eq!(reason, Some(LossReason::NodeDeleted));
        assert!(g.is_lost());
    });
    // Released without loss: `lost()` resolves with None.
    let g = LockOptions::new("x")
        .backend(a.zk())
        .registry(&regs[0])
        .lock()
        .unwrap();
    let lost = g.lost();
    drop(g);
    assert_eq!(wait_lost(lost, Duration::from_secs(5)), None);
}

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn fencing_tokens_increase_for_successive_holders() {
    let regs = registries();
    let url = url("fencing", "");
    let (a, b, admin) = (host(&url), host(&url), host(&url));
    let mut last = 0;
    for round in 0..6 {
        let c = if round % 2 == 0 { &a } else { &b };
        let g = LockOptions::new("x")
            .backend(c.zk())
            .registry(&regs[round % 2])
            .lock()
            .unwrap();
        assert!(
            g.fencing_token() > last,
            "round {round}: {} after {last}",
            g.fencing_token()
        );
        last = g.fencing_token();
        drop(g);
        if round == 3 {
            // The lock node goes away and its sequence counter restarts at 0;
            // tokens keep increasing.
            std::thread::sleep(Duration::from_millis(50));
            admin.clear("x").unwrap();
        }
    }
}

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn a_waiter_rides_out_a_short_disconnection() {
    let regs = registries();
    let direct = url("waiter-suspend", "session_timeout=4");
    let proxy = Proxy::start(&server());
    let via_proxy = direct.replacen(&server(), &format!("127.0.0.1:{}", proxy.port), 1);
    let (a, b) = (host(&via_proxy), host(&direct));
    let held = LockOptions::new("x")
        .backend(b.zk())
        .registry(&regs[1])
        .lock()
        .unwrap();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            LockOptions::new("x")
                .backend(a.zk())
                .registry(&regs[0])
                .timeout(Duration::from_secs(20))
                .lock()
                .map(|g| g.is_lost())
        });
        wait_for(&b, "x", Duration::from_secs(5), |i| i.contenders.len() == 2);
        proxy.partition(true);
        std::thread::sleep(Duration::from_millis(2000)); // past 2/5 of 4 s: disconnected
        proxy.partition(false);
        std::thread::sleep(Duration::from_millis(300));
        drop(held);
        assert!(
            !waiter.join().unwrap().unwrap(),
            "the waiter's lock was lost"
        );
    });
}

// ---- 6. revocation ---------------------------------------------------------

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn holders_see_revocation_requests() {
    let regs = registries();
    let url = url("revoke", "");
    let (a, b, admin) = (host(&url), host(&url), host(&url));
    let g = LockOptions::new("x")
        .backend(a.zk())
        .registry(&regs[0])
        .lock()
        .unwrap();
    assert!(!g.is_revoked());
    assert_eq!(admin.revoke("x").unwrap(), 1);
    assert!(g.wait_revoked(Duration::from_secs(5)));
    assert!(g.is_revoked() && !g.is_lost());
    let info = admin.inspect("x").unwrap();
    assert!(info.contenders[0].revoke_requested);
    drop(g);

    // A waiter may ask the holders ahead of it (zktools' revoke=True).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let g = LockOptions::new("y")
            .backend(a.zk())
            .registry(&regs[0])
            .lock_async()
            .await
            .unwrap();
        let asking = b.zk().clone().revoke_blockers(true);
        let waiter = LockOptions::new("y")
            .backend(&asking)
            .registry(&regs[1])
            .lock_async();
        let polite_holder = async move {
            let revoked = async {
                while !g.is_revoked() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            };
            tokio::time::timeout(Duration::from_secs(5), revoked)
                .await
                .unwrap();
            AsyncLockGuard::unlock_async(g).await.unwrap();
        };
        let (got, ()) = tokio::join!(waiter, polite_holder);
        assert!(!got.unwrap().is_revoked());
    });
}

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn listing_showing_and_clearing_locks() {
    let regs = registries();
    let url = url("admin", "");
    let (a, b, admin) = (host(&url), host(&url), host(&url));
    assert!(admin.locks().unwrap().is_empty());
    let compute_7 = a.zk().clone().identifier("compute-7");
    let g = LockOptions::new("instance-1")
        .prefix("nova")
        .backend(&compute_7)
        .registry(&regs[0])
        .lock()
        .unwrap();
    let _r = LockOptions::new("db")
        .backend(a.zk())
        .registry(&regs[0])
        .shared()
        .lock()
        .unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            // Queued behind `g`; when an operator clears the lock, it queues
            // again and gets it.
            let w = LockOptions::new("instance-1")
                .prefix("nova")
                .backend(b.zk())
                .registry(&regs[1])
                .timeout(Duration::from_secs(10))
                .lock()
                .unwrap();
            assert!(!w.is_lost());
        });
        wait_for(&admin, "nova-instance-1", Duration::from_secs(5), |i| {
            i.contenders.len() == 2
        });
        std::thread::sleep(Duration::from_millis(20));
        let locks = admin.locks().unwrap();
        let names: Vec<&str> = locks.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["db", "nova-instance-1"]);
        assert_eq!(
            (locks[0].holders, locks[0].waiters, locks[0].mode),
            (1, 0, Some(Mode::Shared))
        );
        assert_eq!(
            (locks[1].holders, locks[1].waiters, locks[1].mode),
            (1, 1, Some(Mode::Exclusive))
        );
        let info = admin.inspect("nova-instance-1").unwrap();
        let holder = info.holders().next().unwrap();
        assert_eq!(holder.data_lossy(), "compute-7");
        assert_eq!(holder.fencing_token, g.fencing_token());
        assert_eq!(holder.layout, Layout::Native);
        assert!(holder.age() < Duration::from_secs(60));
        let waiter = info.waiters().next().unwrap();
        assert!(
            waiter
                .data_lossy()
                .contains(&format!(":{}", std::process::id())),
            "{waiter:?}"
        );
        // Clearing deletes holder and waiter; the waiter queues again and
        // gets the lock, the holder is told.
        assert_eq!(admin.clear("nova-instance-1").unwrap(), 2);
        assert!(g.wait_lost(Duration::from_secs(5)).is_some());
    });
    assert!(admin.inspect("nope").unwrap().contenders.is_empty());
    assert!(matches!(
        admin.inspect("a/b"),
        Err(Error::InvalidName { .. })
    ));
}

// ---- 7. crash release ------------------------------------------------------

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn a_holder_killed_with_sigkill_frees_the_lock_within_its_session_timeout() {
    let regs = registries();
    let url = url("crash", "session_timeout=2");
    let mut child = Command::new(holder_bin())
        .args(["hold-forever", &url, "x"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[0], "held", "{line}");
    let session_timeout = Duration::from_millis(fields[2].parse().unwrap());
    let a = host(&url);
    let opts = LockOptions::new("x").backend(a.zk()).registry(&regs[0]);
    assert!(matches!(opts.try_lock(), Err(Error::WouldBlock { .. })));
    // Child::kill sends SIGKILL to that pid.
    child.kill().unwrap();
    let killed = Instant::now();
    child.wait().unwrap();
    let g = opts.timeout(session_timeout * 3).lock().unwrap();
    let freed_after = killed.elapsed();
    // The server expires a session between its timeout and one tick (at most
    // session_timeout / 2 with the script's settings) later.
    let bound = session_timeout + session_timeout / 2 + Duration::from_millis(500);
    eprintln!("session timeout {session_timeout:?}: lock freed {freed_after:?} after SIGKILL (bound {bound:?})");
    assert!(
        freed_after <= bound,
        "freed after {freed_after:?}, bound {bound:?}"
    );
    assert!(g.fencing_token() > fields[1].parse::<u64>().unwrap());
}

// ---- 8. interop ------------------------------------------------------------

const KAZOO_PEER: &str = r#"
import sys
from kazoo.client import KazooClient
hosts, path, kind, mode = sys.argv[1:5]
zk = KazooClient(hosts=hosts)
zk.start(timeout=10)
lock = {"lock": zk.Lock, "read": zk.ReadLock, "write": zk.WriteLock}[kind](path, "kazoo-peer")
if mode == "try":
    got = lock.acquire(blocking=False)
    print("acquired" if got else "busy", flush=True)
    if got:
        lock.release()
else:
    lock.acquire(timeout=30)
    print("held", flush=True)
    sys.stdin.readline()
    lock.release()
    print("released", flush=True)
zk.stop()
"#;

fn kazoo(url: &str, path: &str, kind: &str, mode: &str) -> std::process::Child {
    let hosts = url
        .trim_start_matches("zookeeper://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    Command::new(kazoo_python())
        .args(["-c", KAZOO_PEER, &hosts, path, kind, mode])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

fn kazoo_try(url: &str, path: &str, kind: &str) -> String {
    let out = kazoo(url, path, kind, "try").wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181 and kazoo (scripts/kazoo-peer.sh); run bash .ci/run"]
fn kazoo_and_lockutils_exclude_each_other() {
    let regs = registries();
    let url = url("kazoo", "layout=kazoo");
    let a = host(&url);
    let path = a.url().root().to_owned() + "/x";
    let opts = LockOptions::new("x").backend(a.zk()).registry(&regs[0]);

    // Rust holds: kazoo's Lock and WriteLock see it.
    let named = a.zk().clone().identifier("rust-holder");
    let g = opts.backend(&named).lock().unwrap();
    assert!(g.node().contains("__lock__"), "{}", g.node());
    assert_eq!(kazoo_try(&url, &path, "lock"), "busy");
    assert_eq!(kazoo_try(&url, &path, "write"), "busy");
    assert_eq!(kazoo_try(&url, &path, "read"), "busy");
    drop(g);
    assert_eq!(kazoo_try(&url, &path, "lock"), "acquired");

    // kazoo holds: Rust waits, and gets the lock once kazoo releases.
    let mut peer = kazoo(&url, &path, "lock", "hold");
    let mut out = BufReader::new(peer.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "held");
    assert!(matches!(opts.try_lock(), Err(Error::WouldBlock { .. })));
    let info = a.inspect("x").unwrap();
    assert_eq!(info.holders().next().unwrap().data_lossy(), "kazoo-peer");
    assert_eq!(info.holders().next().unwrap().layout, Layout::Kazoo);
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let started = Instant::now();
            let g = opts.timeout(Duration::from_secs(20)).lock().unwrap();
            (started.elapsed(), g.fencing_token())
        });
        std::thread::sleep(Duration::from_millis(200));
        writeln!(peer.stdin.as_mut().unwrap()).unwrap();
        let (waited, _) = waiter.join().unwrap();
        assert!(waited >= Duration::from_millis(150), "{waited:?}");
    });
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "released");
    assert!(peer.wait().unwrap().success());
}

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181 and kazoo (scripts/kazoo-peer.sh); run bash .ci/run"]
fn kazoo_read_write_locks_interoperate() {
    let regs = registries();
    let url = url("kazoo-rw", "layout=kazoo");
    let a = host(&url);
    let path = a.url().root().to_owned() + "/db";
    let opts = LockOptions::new("db").backend(a.zk()).registry(&regs[0]);

    // Our reader shares with kazoo's ReadLock and excludes its WriteLock.
    let r = opts.shared().lock().unwrap();
    assert!(r.node().contains("__rlock__"), "{}", r.node());
    assert_eq!(kazoo_try(&url, &path, "read"), "acquired");
    assert_eq!(kazoo_try(&url, &path, "write"), "busy");
    drop(r);

    // kazoo's reader shares with ours and excludes our writer.
    let mut peer = kazoo(&url, &path, "read", "hold");
    let mut out = BufReader::new(peer.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "held");
    drop(
        opts.shared()
            .try_lock()
            .expect("readers share across implementations"),
    );
    assert!(matches!(opts.try_lock(), Err(Error::WouldBlock { .. })));
    writeln!(peer.stdin.as_mut().unwrap()).unwrap();
    assert!(peer.wait_with_output().unwrap().status.success());
    drop(opts.timeout(Duration::from_secs(5)).lock().unwrap());
}

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn the_curator_layout_interoperates_with_the_zookeeper_client_recipe() {
    let regs = registries();
    use zookeeper_client as zk;
    let url = url("curator", "layout=curator");
    let a = host(&url);
    let dir = a.url().root().to_owned() + "/x";
    let opts = LockOptions::new("x").backend(a.zk()).registry(&regs[0]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = server();
    let client = rt.block_on(zk::Client::connect(&server)).unwrap();
    let options = zk::LockOptions::new(zk::Acls::anyone_all())
        .with_ancestor_options(zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()))
        .unwrap();
    let take = |within: Duration| {
        rt.block_on(async {
            let prefix = zk::LockPrefix::new_curator(&dir, "lock-").unwrap();
            let fut = client.lock(prefix, b"", options.clone());
            tokio::time::timeout(within, fut).await
        })
    };

    let g = opts.lock().unwrap();
    assert!(
        g.node().contains("/_c_") && g.node().contains("-lock-"),
        "{}",
        g.node()
    );
    assert!(
        take(Duration::from_millis(500)).is_err(),
        "the recipe must wait for our holder"
    );
    drop(g);
    let theirs = take(Duration::from_secs(10)).expect("free now").unwrap();
    assert!(matches!(opts.try_lock(), Err(Error::WouldBlock { .. })));
    rt.block_on(async { drop(theirs) });
    drop(opts.timeout(Duration::from_secs(5)).lock().unwrap());
}

// ---- 9. security -----------------------------------------------------------

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn acls_keep_other_clients_from_deleting_our_nodes() {
    let regs = registries();
    let open = url("acl", "");
    let (root_path, params) = open.split_once('?').unwrap_or((&open, ""));
    let _ = params;
    let secured = root_path.replacen("zookeeper://", "zookeeper://svc:s3cret@", 1);
    let ours = host(&secured);
    let g = LockOptions::new("x")
        .backend(ours.zk())
        .registry(&regs[0])
        .lock()
        .unwrap();

    // Without credentials (or with other ones): may look, not touch.
    for other in [
        open.clone(),
        root_path.replacen("zookeeper://", "zookeeper://svc:wrong@", 1),
    ] {
        let other = host(&other);
        let info = other.inspect("x").unwrap();
        assert_eq!(info.contenders.len(), 1);
        let e = other.clear("x").unwrap_err();
        let Error::Backend {
            reason, backend, ..
        } = &e
        else {
            panic!("{e:?}")
        };
        assert!(reason.contains("not authorized"), "{e}");
        assert!(
            !backend.contains("s3cret") && !backend.contains("wrong"),
            "{e}"
        );
        let e = LockOptions::new("x")
            .backend(other.zk())
            .registry(&regs[1])
            .try_lock()
            .unwrap_err();
        assert!(e.to_string().contains("not authorized"), "{e}");
        assert!(other.revoke("x").is_err());
    }
    assert!(!g.is_lost() && !g.is_revoked());
    assert_eq!(ours.inspect("x").unwrap().contenders.len(), 1);
    // The owner can.
    drop(g);
    let again = LockOptions::new("x")
        .backend(ours.zk())
        .registry(&regs[0])
        .lock()
        .unwrap();
    assert_eq!(ours.clear("x").unwrap(), 1);
    assert!(again.wait_lost(Duration::from_secs(5)).is_some());
}

// ---- 4. what `#[synchronized(…, distributed)]` expands to ------------------

/// The expansion's shape: a `StaticLock` of `LockOptions` on the URL's
/// backend (built by `const fn`s), the in-process lock then the ZooKeeper
/// lock, the guard bound to a local for the body; errors either panic
/// (naming function and lock) or go through `?`.
#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn the_macro_expansion_shape_works() {
    lockutils_zookeeper::register();
    let url: &'static str = Box::leak(url("macro", "").into_boxed_str());
    let options = LockOptions::new("reserve")
        .prefix("nova")
        .caller(concat!(module_path!(), "::", "reserve"))
        .timeout(Duration::from_secs(10))
        .backend_url(url);
    let lock: &'static StaticLock = Box::leak(Box::new(StaticLock::new(options)));
    let shared: &'static StaticLock =
        Box::leak(Box::new(StaticLock::new(options.mode(Mode::Shared))));

    fn expect_lock<G>(taken: Result<G, Error>, caller: &'static str) -> G {
        taken.unwrap_or_else(|e| {
            panic!(
                "#[synchronized] function {caller} could not take lock \"{}\": {e}",
                e.lock_name()
            )
        })
    }

    // fn reserve() { … }
    let reserve = || {
        let __lockutils_guard = expect_lock(lock.lock(), "reserve");
        assert_eq!(LockGuard::name(&__lockutils_guard), "nova-reserve");
        __lockutils_guard.fencing_token()
    };
    // fn take() -> Result<u64, Error> { … ? … }
    let take = || -> Result<u64, Error> {
        let __lockutils_guard = shared.lock()?;
        Ok(__lockutils_guard.fencing_token())
    };
    let first = reserve();
    assert!(take().unwrap() > first);
    let info = Coordinator::new(url)
        .unwrap()
        .inspect("nova-reserve")
        .unwrap();
    assert!(info.contenders.is_empty(), "released: {info:?}");

    // async fn reserve_async() { … } on any executor; the future is Send.
    fn assert_send<T: Send>(t: T) -> T {
        t
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let token = rt.block_on(assert_send(async {
        let __lockutils_guard = expect_lock(lock.lock_async().await, "reserve_async");
        tokio::task::yield_now().await; // the guard is held across .await
        __lockutils_guard.fencing_token()
    }));
    assert!(token > first);

    // The same lock name excludes plain in-process users too (same identity).
    let g = lock.lock().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            let e = LockOptions::new("reserve")
                .prefix("nova")
                .try_lock()
                .unwrap_err();
            assert!(matches!(e, Error::WouldBlock { .. }));
        });
    });
    drop(g);
}

/// tooz (its ZooKeeper driver) on one lock: `acquire` (non-blocking)
/// printing `acquired`/`busy`, or `hold` printing `held` and releasing on a
/// line from stdin.
const TOOZ_PEER: &str = r#"
import sys
from tooz import coordination
url, name, mode = sys.argv[1], sys.argv[2], sys.argv[3]
c = coordination.get_coordinator(url, b"tooz-peer")
c.start(start_heart=False)
lock = c.get_lock(name.encode())
if mode == "try":
    if lock.acquire(blocking=False):
        print("acquired", flush=True)
        lock.release()
    else:
        print("busy", flush=True)
else:
    lock.acquire()
    print("held", flush=True)
    sys.stdin.readline()
    lock.release()
c.stop()
"#;

fn tooz(url: &str, name: &str, mode: &str) -> std::process::Child {
    Command::new(kazoo_python())
        .args(["-c", TOOZ_PEER, url, name, mode])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// tooz nests lock names containing `/` (`get_lock("a/b")` locks
/// `/NAMESPACE/locks/a/b`); the kazoo layout maps names the same way, so the
/// two exclude each other on such names.
#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181 and tooz (scripts/kazoo-peer.sh); run bash .ci/run"]
fn tooz_and_lockutils_exclude_each_other_on_nested_names() {
    let regs = registries();
    // The tooz namespace is the first node of our root; tooz locks live
    // under NAMESPACE/locks.
    let namespace = url("tooz", "").rsplit('/').next().unwrap().to_owned();
    let ours = format!("zookeeper://{}/{namespace}/locks?layout=kazoo", server());
    let theirs = format!("zookeeper://{}?namespace={namespace}", server());
    let a = host(&ours);
    let opts = LockOptions::new("volume/42")
        .backend(a.zk())
        .registry(&regs[0]);
    assert_eq!(
        a.zk().node_identity("volume/42", "volume_42").unwrap(),
        "volume/42"
    );

    let g = opts.lock().unwrap();
    // The identity in-process is the lock file name; the node is nested.
    assert_eq!(LockGuard::name(&g), "volume_42");
    assert!(
        g.node()
            .starts_with(&format!("/{namespace}/locks/volume/42/")),
        "{}",
        g.node()
    );
    let out = tooz(&theirs, "volume/42", "try")
        .wait_with_output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "busy");
    drop(g);
    let out = tooz(&theirs, "volume/42", "try")
        .wait_with_output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "acquired");

    let mut peer = tooz(&theirs, "volume/42", "hold");
    let mut out = BufReader::new(peer.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "held");
    assert!(matches!(opts.try_lock(), Err(Error::WouldBlock { .. })));
    let info = a.inspect("volume/42").unwrap();
    assert_eq!(info.holders().next().unwrap().layout, Layout::Kazoo);
    // The flattened name is another lock.
    drop(
        LockOptions::new("volume_42")
            .backend(a.zk())
            .registry(&regs[1])
            .try_lock()
            .unwrap(),
    );
    writeln!(peer.stdin.as_mut().unwrap()).unwrap();
    assert!(peer.wait().unwrap().success());
    drop(opts.timeout(Duration::from_secs(5)).lock().unwrap());
    // Listed by their nested names; a node holding only nested locks is a
    // path, not a lock.
    let listed = |a: &Coordinator| -> Vec<String> {
        a.locks().unwrap().into_iter().map(|l| l.name).collect()
    };
    assert_eq!(listed(&a), ["volume/42", "volume_42"]);
    // `volume` is a lock too once taken; clearing it leaves the nested lock
    // node (and its own node: kazoo layout) in place.
    let g = LockOptions::new("volume")
        .backend(a.zk())
        .registry(&regs[3])
        .lock()
        .unwrap();
    assert_eq!(listed(&a), ["volume", "volume/42", "volume_42"]);
    assert_eq!(a.clear("volume").unwrap(), 1);
    drop(g);
    assert_eq!(listed(&a), ["volume/42", "volume_42"]);
    // A prefix joins the first segment, as it joins a lock file name.
    let cinder = LockOptions::new("disk/7")
        .prefix("cinder")
        .backend(a.zk())
        .registry(&regs[4]);
    let g = cinder.lock().unwrap();
    assert!(
        g.node()
            .starts_with(&format!("/{namespace}/locks/cinder-disk/7/")),
        "{}",
        g.node()
    );
    let out = tooz(&theirs, "cinder-disk/7", "try")
        .wait_with_output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "busy");
    drop(g);
    // Names tooz could not use either are refused, naming the fix.
    for bad in ["/abs", "a//b", "a/", "a/../b"] {
        let e = LockOptions::new(bad)
            .backend(a.zk())
            .registry(&regs[2])
            .try_lock()
            .unwrap_err();
        assert!(matches!(e, Error::InvalidName { .. }), "{bad}: {e}");
    }
}
