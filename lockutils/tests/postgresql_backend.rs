//! PostgreSQL through the one lock API: `LockOptions`, the guards,
//! `StaticLock`, `#[synchronized(backend = …)]`, the process default and
//! the admin interface, on `postgresql://` URLs, against a real server.
//! Ignored in a plain run; fails, never skips, when the server is missing:
//!
//! ```text
//! scripts/postgres.sh start
//! LOCKUTILS_TEST_POSTGRES_URL=$(scripts/postgres.sh url) \
//!   cargo test -p lockutils --features postgresql --test postgresql_backend -- --include-ignored
//! scripts/postgres.sh stop
//! ```
#![cfg(feature = "postgresql")]

use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use lockutils::backend::{
    backend_for_url, clear_default_url, set_default_url, Capability, LossKind, Removal,
    COORDINATION_URL_ENV,
};
use lockutils::{
    synchronized, AsyncLockGuard, Error, LockGuard, LockOptions, Mode, Registry, StaticLock,
};

fn url() -> String {
    lockutils::register_backends();
    std::env::var("LOCKUTILS_TEST_POSTGRES_URL")
        .expect("LOCKUTILS_TEST_POSTGRES_URL is not set: run scripts/postgres.sh start")
}

/// The test URL with one more query parameter.
fn with_param(url: &str, param: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{param}")
}

/// A lock name of this process and test.
fn unique(test: &str) -> String {
    format!("pgapi-{test}-{}", std::process::id())
}

/// The in-process locks of a second simulated host.
static OTHER_HOST: Registry = Registry::new();

/// Polls `cond` every 20 ms for up to 10 s.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < until, "not within 10 s: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn backend_url_locks_try_locks_times_out_and_excludes_another_registry() {
    let u = url();
    let name = unique("builder");
    let g = LockOptions::new(&name).backend_url(&u).lock().unwrap();
    // The guard reports the engine's URL without credentials.
    let shown = LockGuard::backend(&g).unwrap().to_owned();
    assert!(shown.starts_with("postgresql://"), "{shown}");
    assert!(!shown.contains('@'), "credentials in {shown}");
    assert!(!LockGuard::is_lost(&g));
    // Another registry ("host") meets this one on the server only.
    let e = LockOptions::new(&name)
        .registry(&OTHER_HOST)
        .backend_url(&u)
        .try_lock()
        .unwrap_err();
    assert!(matches!(e, Error::WouldBlock { .. }), "{e}");
    let started = Instant::now();
    let e = LockOptions::new(&name)
        .registry(&OTHER_HOST)
        .backend_url(&u)
        .timeout(Duration::from_millis(300))
        .lock()
        .unwrap_err();
    assert!(
        matches!(e, Error::Timeout { timeout, .. } if timeout == Duration::from_millis(300)),
        "{e}"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    // The server ended the timed-out wait itself: no waiter is left.
    let admin = backend_for_url(&u).unwrap();
    let info = admin.admin().unwrap().inspect(&name).unwrap();
    assert_eq!(info.holders.len(), 1, "{info:?}");
    assert!(info.waiters.is_empty(), "{info:?}");
    LockGuard::unlock(g).unwrap();
    let g2 = LockOptions::new(&name)
        .registry(&OTHER_HOST)
        .backend_url(&u)
        .try_lock()
        .unwrap();
    drop(g2);
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn async_acquisition_waits_for_a_release_elsewhere() {
    let u = url();
    let name = unique("async");
    let rt = runtime();
    let g = rt
        .block_on(LockOptions::new(&name).backend_url(&u).lock_async())
        .unwrap();
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        AsyncLockGuard::fencing_token(&g).unwrap_err();
        drop(g);
    });
    let got = rt
        .block_on(
            LockOptions::new(&name)
                .registry(&OTHER_HOST)
                .backend_url(&u)
                .timeout(Duration::from_secs(10))
                .lock_async(),
        )
        .unwrap();
    assert!(AsyncLockGuard::waited(&got) >= Duration::from_millis(100));
    releaser.join().unwrap();
    rt.block_on(AsyncLockGuard::unlock_async(got)).unwrap();
}

/// Runs SQL on a session of its own; rows as text.
fn sql(query: &str) -> Vec<Vec<Option<String>>> {
    let u = url();
    runtime().block_on(async move {
        let (client, conn) = tokio_postgres::connect(&u, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
            .simple_query(query)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
                }
                _ => None,
            })
            .collect()
    })
}

/// What the server shows for one lock name (native layout) right now:
/// sessions holding it and sessions waiting for it in `pg_locks`, and
/// statements of any session that `pg_stat_activity` shows waiting on a lock
/// and whose text names the lock.
fn server_view(name: &str) -> (usize, usize, usize) {
    let where_key = match lockutils::postgresql::Layout::Native.key(name) {
        lockutils::postgresql::LockKey::Big(k) => {
            let u = k as u64;
            format!(
                "l.locktype = 'advisory' AND l.classid = {} AND l.objid = {} AND l.objsubid = 1",
                u >> 32,
                u & 0xffff_ffff
            )
        }
        other => panic!("native keys are bigint: {other:?}"),
    };
    let rows = sql(&format!(
        "SELECT (SELECT count(*) FROM pg_locks l WHERE l.granted AND {where_key}), \
                (SELECT count(*) FROM pg_locks l WHERE NOT l.granted AND {where_key}), \
                (SELECT count(*) FROM pg_stat_activity a WHERE a.pid <> pg_backend_pid() \
                   AND a.wait_event_type = 'Lock' AND a.query LIKE '%name={name} %')"
    ));
    let n = |i: usize| rows[0][i].as_deref().unwrap().parse().unwrap();
    (n(0), n(1), n(2))
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn a_dropped_async_acquisition_leaves_no_waiting_query() {
    let u = url();
    let name = unique("dropped");
    let backend = backend_for_url(&u).unwrap();
    let admin = backend.admin().unwrap();
    let g = LockOptions::new(&name).backend_url(&u).lock().unwrap();
    for timed in [false, true] {
        let mut fut = Box::pin(
            LockOptions::new(&name)
                .registry(&OTHER_HOST)
                .backend_url(&u)
                .timeout(Duration::from_secs(if timed { 60 } else { 3600 }))
                .lock_async(),
        );
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        // The wait runs on the server (pg_locks and pg_stat_activity show it) ...
        eventually("the async acquisition waits on the server", || {
            server_view(&name) == (1, 1, 1)
        });
        // ... until the future is dropped: its clean-up is done when the
        // drop returns, so the server shows neither the wait nor a lock of
        // ours at once (no polling).
        drop(fut);
        assert_eq!(
            server_view(&name),
            (1, 0, 0),
            "only the real holder, right after the drop (timeout: {timed})"
        );
        let info = admin.inspect(&name).unwrap();
        assert_eq!(info.holders.len(), 1, "only the real holder: {info:?}");
        assert!(info.waiters.is_empty(), "{info:?}");
    }
    // Its in-process lock is free again, and nothing is held on the server
    // once the holder lets go.
    drop(
        LockOptions::new(&name)
            .registry(&OTHER_HOST)
            .try_lock()
            .unwrap(),
    );
    LockGuard::unlock(g).unwrap();
    assert_eq!(server_view(&name), (0, 0, 0));
    drop(
        LockOptions::new(&name)
            .registry(&OTHER_HOST)
            .backend_url(&u)
            .try_lock()
            .unwrap(),
    );
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn a_timed_out_acquisition_leaves_no_waiting_query_when_it_returns() {
    let u = url();
    let name = unique("timedout");
    let g = LockOptions::new(&name).backend_url(&u).lock().unwrap();
    for timeout in [1, 50, 300] {
        let timeout = Duration::from_millis(timeout);
        let e = LockOptions::new(&name)
            .registry(&OTHER_HOST)
            .backend_url(&u)
            .timeout(timeout)
            .lock()
            .unwrap_err();
        assert!(matches!(e, Error::Timeout { .. }), "{e}");
        // Right after the error returns, no polling.
        assert_eq!(server_view(&name), (1, 0, 0), "timeout {timeout:?}");
        let rt = runtime();
        let e = rt
            .block_on(
                LockOptions::new(&name)
                    .registry(&OTHER_HOST)
                    .backend_url(&u)
                    .timeout(timeout)
                    .lock_async(),
            )
            .unwrap_err();
        assert!(matches!(e, Error::Timeout { .. }), "{e}");
        assert_eq!(server_view(&name), (1, 0, 0), "async, timeout {timeout:?}");
    }
    LockGuard::unlock(g).unwrap();
    assert_eq!(server_view(&name), (0, 0, 0));
}

/// The child half of `another_process_is_excluded_by_the_server`: holds
/// the lock named in the environment until its stdin closes.
#[test]
#[ignore = "child process of another_process_is_excluded_by_the_server"]
fn child_holds_a_postgresql_lock_until_stdin_closes() {
    let Ok(name) = std::env::var("LOCKUTILS_TEST_PG_CHILD_LOCK") else {
        return;
    };
    let u = url();
    let g = LockOptions::new(&name).backend_url(&u).lock().unwrap();
    println!("held"); // after libtest's "test … … " on the same line
    let mut rest = Vec::new();
    std::io::stdin().read_to_end(&mut rest).unwrap();
    LockGuard::unlock(g).unwrap();
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn another_process_is_excluded_by_the_server() {
    let u = url();
    let name = unique("process");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_holds_a_postgresql_lock_until_stdin_closes",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("LOCKUTILS_TEST_PG_CHILD_LOCK", &name)
        .env("LOCKUTILS_TEST_POSTGRES_URL", &u)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(
        lines.any(|l| l.unwrap().ends_with("held")),
        "the child did not take the lock"
    );
    let e = LockOptions::new(&name)
        .backend_url(&u)
        .try_lock()
        .unwrap_err();
    assert!(matches!(e, Error::WouldBlock { .. }), "{e}");
    drop(child.stdin.take()); // the child releases and exits
    let g = LockOptions::new(&name)
        .backend_url(&u)
        .timeout(Duration::from_secs(10))
        .lock()
        .unwrap();
    assert!(child.wait().unwrap().success());
    drop(g);
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn a_static_lock_on_a_postgresql_url() {
    let u: &'static str = Box::leak(url().into_boxed_str());
    let name: &'static str = Box::leak(unique("static").into_boxed_str());
    let lock: &'static StaticLock = Box::leak(Box::new(StaticLock::new(
        LockOptions::new(name).backend_url(u),
    )));
    let g = lock.lock().unwrap();
    assert!(LockGuard::backend(&g).unwrap().starts_with("postgresql://"));
    let e = LockOptions::new(name)
        .registry(&OTHER_HOST)
        .backend_url(u)
        .try_lock()
        .unwrap_err();
    assert!(matches!(e, Error::WouldBlock { .. }), "{e}");
    drop(g);
    let g = runtime().block_on(lock.lock_async()).unwrap();
    drop(g);
}

static PG_URL: LazyLock<String> = LazyLock::new(url);

#[synchronized("pgapi-macro", backend = PG_URL.as_str())]
fn under_the_macro() -> usize {
    // Another host is kept out by the server while this runs.
    let e = LockOptions::new("pgapi-macro")
        .registry(&OTHER_HOST)
        .backend_url(&PG_URL)
        .try_lock()
        .unwrap_err();
    assert!(matches!(e, Error::WouldBlock { .. }), "{e}");
    let admin = backend_for_url(&PG_URL).unwrap();
    admin
        .admin()
        .unwrap()
        .inspect("pgapi-macro")
        .unwrap()
        .holders
        .len()
}

#[synchronized("pgapi-macro-async", backend = PG_URL.as_str())]
async fn under_the_macro_async() -> usize {
    let admin = backend_for_url(&PG_URL).unwrap();
    admin
        .admin()
        .unwrap()
        .inspect("pgapi-macro-async")
        .unwrap()
        .holders
        .len()
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn synchronized_takes_a_postgresql_url_expression() {
    assert_eq!(under_the_macro(), 1);
    assert_eq!(under_the_macro(), 1);
    assert_eq!(runtime().block_on(under_the_macro_async()), 1);
    let admin = backend_for_url(&PG_URL).unwrap();
    assert!(admin
        .admin()
        .unwrap()
        .inspect("pgapi-macro")
        .unwrap()
        .holders
        .is_empty());
}

/// The only test of this binary that sets the process default or
/// `LOCKUTILS_COORDINATION_URL`.
#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn the_process_default_and_the_environment_select_postgresql() {
    let u = url();
    let name = unique("default");
    set_default_url(&u).unwrap();
    static COORDINATED: StaticLock =
        StaticLock::new(LockOptions::new("pgapi-coordinated").coordinated());
    let g = COORDINATED.lock().unwrap();
    let e = LockOptions::new("pgapi-coordinated")
        .registry(&OTHER_HOST)
        .backend_url(&u)
        .try_lock()
        .unwrap_err();
    assert!(matches!(e, Error::WouldBlock { .. }), "{e}");
    drop(g);
    clear_default_url();

    // The environment, with the `postgres://` spelling of the scheme.
    let short = u.replacen("postgresql://", "postgres://", 1);
    assert_ne!(short, u);
    std::env::set_var(COORDINATION_URL_ENV, &short);
    let g = LockOptions::new(&name).coordinated().lock();
    std::env::remove_var(COORDINATION_URL_ENV);
    let g = g.unwrap();
    assert!(LockGuard::backend(&g).unwrap().starts_with("postgresql://"));
    let e = LockOptions::new(&name)
        .registry(&OTHER_HOST)
        .backend_url(&u)
        .try_lock()
        .unwrap_err();
    assert!(matches!(e, Error::WouldBlock { .. }), "{e}");
    drop(g);
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn shared_mode_is_unsupported_in_the_tooz_layout_and_shared_in_native() {
    let u = url();
    let name = unique("shared");
    let tooz = with_param(&u, "layout=tooz");
    let backend = backend_for_url(&tooz).unwrap();
    assert!(!backend.capabilities().has(Capability::Shared));
    let e = LockOptions::new(&name)
        .backend_url(&tooz)
        .shared()
        .lock()
        .unwrap_err();
    match e {
        Error::Unsupported {
            capability,
            backend,
            ..
        } => {
            assert_eq!(capability, Capability::Shared);
            assert!(backend.contains("layout=tooz"), "{backend}");
            assert!(!backend.contains('@'), "{backend}");
        }
        e => panic!("{e}"),
    }
    // Exclusive locks work in that layout.
    drop(LockOptions::new(&name).backend_url(&tooz).lock().unwrap());
    // Readers share in the native layout, on the server.
    let r1 = LockOptions::new(&name)
        .backend_url(&u)
        .shared()
        .lock()
        .unwrap();
    let r2 = LockOptions::new(&name)
        .registry(&OTHER_HOST)
        .backend_url(&u)
        .shared()
        .try_lock()
        .unwrap();
    assert_eq!(LockGuard::mode(&r2), Mode::Shared);
    let info = backend_for_url(&u)
        .unwrap()
        .admin()
        .unwrap()
        .inspect(&name)
        .unwrap();
    assert_eq!(info.holders.len(), 2, "{info:?}");
    assert!(info.holders.iter().all(|h| h.mode == Some(Mode::Shared)));
    drop((r1, r2));
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn fencing_tokens_only_with_the_fencing_table() {
    let u = url();
    let name = unique("fencing");
    let fenced = with_param(&u, "fencing=table");
    assert!(backend_for_url(&fenced)
        .unwrap()
        .capabilities()
        .has(Capability::FencingTokens));
    let g = LockOptions::new(&name).backend_url(&fenced).lock().unwrap();
    let t1 = LockGuard::fencing_token(&g).unwrap();
    drop(g);
    let g = LockOptions::new(&name)
        .registry(&OTHER_HOST)
        .backend_url(&fenced)
        .lock()
        .unwrap();
    assert!(LockGuard::fencing_token(&g).unwrap() > t1);
    drop(g);
    let g = LockOptions::new(&name).backend_url(&u).lock().unwrap();
    let e = LockGuard::fencing_token(&g).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Unsupported {
                capability: Capability::FencingTokens,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn admin_lists_inspects_and_clears_through_the_backend() {
    let u = url();
    let name = unique("admin");
    let backend = backend_for_url(&u).unwrap();
    assert_eq!(backend.kind(), "postgresql");
    let admin = backend.admin().unwrap();
    assert_eq!(admin.remove_if_free(&name).unwrap(), Removal::Absent);
    let g = LockOptions::new(&name).backend_url(&u).lock().unwrap();
    let listed = admin.list().unwrap();
    let mine = listed
        .iter()
        .find(|l| l.identity == name)
        .unwrap_or_else(|| panic!("{name} not in {listed:?}"));
    assert_eq!(mine.holders.len(), 1);
    let info = admin.inspect(&name).unwrap();
    let holder = &info.holders[0];
    assert_eq!(holder.mode, Some(Mode::Exclusive));
    assert!(holder.since.is_some(), "{holder:?}");
    assert!(holder.detail.contains("server pid"), "{holder:?}");
    assert!(holder.detail.contains("lockutils"), "{holder:?}");
    assert_eq!(admin.remove_if_free(&name).unwrap(), Removal::Busy);
    // Clearing ends the holder's session: its guard reports the loss.
    let lost = LockGuard::lost(&g).unwrap();
    assert_eq!(admin.clear(&name).unwrap(), 1);
    // `clear` returns once the ended session's server process has released
    // the lock, not when it was only told to end.
    let after = admin.inspect(&name).unwrap();
    assert!(after.holders.is_empty(), "{after:?}");
    let loss = runtime()
        .block_on(async { tokio::time::timeout(Duration::from_secs(10), lost).await })
        .expect("loss reported within 10 s")
        .expect("a loss, not a release");
    assert_eq!(loss.kind, LossKind::SessionEnded);
    assert!(LockGuard::is_lost(&g));
    assert!(
        LockGuard::unlock(g).is_err(),
        "unlocking a lost lock says so"
    );
    // Not revocable: advisory locks cannot ask a holder to let go.
    let e = admin.revoke(&name).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Unsupported {
                capability: Capability::Revocation,
                ..
            }
        ),
        "{e}"
    );
    assert!(admin.clean().unwrap().is_empty());
    drop(
        LockOptions::new(&name)
            .registry(&OTHER_HOST)
            .backend_url(&u)
            .try_lock()
            .unwrap(),
    );
}

/// The `metrics` feature against the server: wait and hold histograms and
/// the contention and timeout counters, labelled `backend=postgresql`.
#[cfg(feature = "metrics")]
mod metrics_on_postgresql {
    use super::*;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    use std::collections::BTreeMap;
    use std::sync::mpsc;

    /// Every series recorded on this thread while `f` runs: name and sorted
    /// `key=value` labels.
    fn recorded(f: impl FnOnce()) -> BTreeMap<(String, Vec<String>), DebugValue> {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, f);
        snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let key = key.key();
                let mut labels: Vec<String> = key
                    .labels()
                    .map(|l| format!("{}={}", l.key(), l.value()))
                    .collect();
                labels.sort();
                ((key.name().to_owned(), labels), value)
            })
            .collect()
    }

    /// Holds `name` from another registry (another host, to this process's
    /// in-process layer) on a thread of its own, whose metrics are not
    /// recorded, for `hold`; returns once it holds.
    fn held_elsewhere(u: &str, name: &str, hold: Duration) -> std::thread::JoinHandle<()> {
        let (u, name) = (u.to_owned(), name.to_owned());
        let (tx, rx) = mpsc::channel();
        let t = std::thread::spawn(move || {
            let g = LockOptions::new(&name)
                .registry(&OTHER_HOST)
                .backend_url(&u)
                .lock()
                .unwrap();
            tx.send(()).unwrap();
            std::thread::sleep(hold);
            drop(g);
        });
        rx.recv().unwrap();
        t
    }

    #[test]
    #[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
    fn wait_hold_contention_and_timeouts_are_recorded_for_postgresql() {
        let u = url();
        let name = unique("metrics");
        let all = recorded(|| {
            // A hold, nobody else around: the server round trip is not
            // contention.
            let g = LockOptions::new(&name).backend_url(&u).lock().unwrap();
            std::thread::sleep(Duration::from_millis(30));
            drop(g);
            // A wait for a holder elsewhere, which lets go after 300 ms.
            let other = held_elsewhere(&u, &name, Duration::from_millis(300));
            let g = LockOptions::new(&name)
                .backend_url(&u)
                .timeout(Duration::from_secs(30))
                .lock()
                .unwrap();
            // Released on the server first, then in-process: still one
            // postgresql hold.
            LockGuard::unlock(g).unwrap();
            other.join().unwrap();
            // A timeout while it is held elsewhere.
            let other = held_elsewhere(&u, &name, Duration::from_millis(500));
            let e = LockOptions::new(&name)
                .backend_url(&u)
                .timeout(Duration::from_millis(100))
                .lock()
                .unwrap_err();
            assert!(matches!(e, Error::Timeout { .. }), "{e}");
            other.join().unwrap();
        });
        let pg = |metric: &str| {
            (
                metric.to_owned(),
                vec!["backend=postgresql".to_owned(), "mode=exclusive".to_owned()],
            )
        };
        let histogram = |metric: &str| match all.get(&pg(metric)) {
            Some(DebugValue::Histogram(v)) => v.iter().map(|x| x.into_inner()).collect::<Vec<_>>(),
            other => panic!(
                "{metric}: {other:?} in {:?}",
                all.keys().collect::<Vec<_>>()
            ),
        };
        let counter = |metric: &str| match all.get(&pg(metric)) {
            Some(DebugValue::Counter(n)) => *n,
            None => 0,
            other => panic!("{metric}: {other:?}"),
        };
        let waits = histogram("lockutils_wait_seconds");
        assert_eq!(waits.len(), 2, "{waits:?}");
        assert!(waits[0] < 0.25, "the uncontended acquisition: {waits:?}");
        assert!(waits[1] >= 0.15, "the wait for the other holder: {waits:?}");
        let holds = histogram("lockutils_hold_seconds");
        assert_eq!(holds.len(), 2, "{holds:?}");
        assert!(holds[0] >= 0.030, "{holds:?}");
        assert_eq!(counter("lockutils_contended_total"), 1);
        assert_eq!(counter("lockutils_timeouts_total"), 1);
        assert_eq!(counter("lockutils_would_block_total"), 0);
        // Every series is the engine's: none labelled memory or other.
        for (metric, labels) in all.keys() {
            assert!(
                labels.contains(&"backend=postgresql".to_owned()),
                "{metric} {labels:?}"
            );
        }
    }
}
