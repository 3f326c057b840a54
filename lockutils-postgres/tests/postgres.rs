//! Against a real PostgreSQL server: `scripts/postgres.sh start`, then
//! `LOCKUTILS_TEST_POSTGRES_URL=$(scripts/postgres.sh url)
//!  LOCKUTILS_TEST_POSTGRES_CA=$PG_DIR/ca.crt LOCKUTILS_TEST_TOOZ=$(scripts/tooz-peer.sh)
//!  cargo test -p lockutils-postgres -- --ignored` (scripts/ci-postgres.sh does all that).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lockutils_core::backend::{Admin, Backend, LossKind, Removal};
use lockutils_core::{AsyncLockGuard, LockGuard, LockOptions, Registry};
use lockutils_postgres::{Error, Layout, LockKey, Mode, PgBackend, PgUrl};

#[path = "support/server.rs"]
mod server;
use server::{unique, url};
#[path = "support/holder_bin.rs"]
mod holder_bin;
use holder_bin::holder_bin;

/// The URL with extra parameters.
fn url_with(params: &str) -> String {
    let u = url();
    let sep = if u.contains('?') { '&' } else { '?' };
    format!("{u}{sep}{params}")
}

/// Runs SQL on a plain session of its own; rows as text.
fn sql(query: &str) -> Vec<Vec<Option<String>>> {
    sql_as(&url(), query)
}

/// The URL of `lockutils_min`, the role with LOGIN and CONNECT only.
fn min_url() -> String {
    url().replacen("lockutils:lockutils@", "lockutils_min:lockutils_min@", 1)
}

/// The loss `hold` reports within `limit`; fails the test if none comes,
/// or if the hold reports a release instead.
fn loss_within(hold: &LockGuard<'_>, limit: Duration) -> lockutils_core::backend::Loss {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async { tokio::time::timeout(limit, LockGuard::lost(hold).unwrap()).await })
        .unwrap_or_else(|_| panic!("loss not reported within {limit:?}"))
        .expect("a loss, not a release")
}

fn sql_as(url: &str, query: &str) -> Vec<Vec<Option<String>>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = url.to_owned();
    rt.block_on(async move {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
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

fn pg_locks_where(key: LockKey) -> String {
    match key {
        LockKey::Big(k) => {
            let u = k as u64;
            format!(
                "locktype = 'advisory' AND classid = {} AND objid = {} AND objsubid = 1",
                u >> 32,
                u & 0xffff_ffff
            )
        }
        LockKey::Pair(a, b) => {
            format!("locktype = 'advisory' AND classid = {a} AND objid = {b} AND objsubid = 2")
        }
    }
}

/// Sessions (granted, waiting) on `key`, from `pg_locks`.
fn sessions_on(key: LockKey) -> (usize, usize) {
    let rows = sql(&format!(
        "SELECT count(*) FILTER (WHERE granted), count(*) FILTER (WHERE NOT granted) \
         FROM pg_locks WHERE {}",
        pg_locks_where(key)
    ));
    let n = |i: usize| rows[0][i].as_deref().unwrap().parse().unwrap();
    (n(0), n(1))
}

/// Statements waiting on a lock anywhere in the database.
fn waiting_statements_on(key: LockKey) -> usize {
    let rows = sql(&format!(
        "SELECT count(*) FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid \
         WHERE NOT l.granted AND a.wait_event_type = 'Lock' AND {}",
        pg_locks_where(key)
            .replace("locktype", "l.locktype")
            .replace("classid", "l.classid")
            .replace("objid", "l.objid")
            .replace("objsubid", "l.objsubid")
    ));
    rows[0][0].as_deref().unwrap().parse().unwrap()
}

/// Whether the sessions on `key` reach `sessions` (granted, waiting) within
/// `limit`. A miss is returned rather than raised, so that the test can
/// release what it holds (and let its waiters end) before it asserts.
fn reaches(key: LockKey, sessions: (usize, usize), limit: Duration) -> bool {
    let start = Instant::now();
    loop {
        if sessions_on(key) == sessions {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How long an acquisition may wait.
#[derive(Clone, Copy)]
enum Wait {
    Now,
    Forever,
    Timeout(Duration),
}

/// A client "host": a backend on a URL and in-process locks of its own, so
/// that two hosts in this process meet on the server only, as two processes
/// would.
struct Host {
    backend: PgBackend,
    layout: Layout,
    registry: &'static Registry,
}

impl Host {
    fn new(url: &str) -> Host {
        Host {
            backend: PgBackend::new(url).unwrap(),
            layout: url.parse::<PgUrl>().unwrap().layout(),
            registry: Box::leak(Box::new(Registry::new())),
        }
    }

    fn options<'a>(&'a self, name: &'a str, mode: Mode, wait: Wait) -> LockOptions<'a, 'static> {
        let o = LockOptions::new(name)
            .registry(self.registry)
            .backend(&self.backend)
            .mode(mode);
        match wait {
            Wait::Now => o.blocking(false),
            Wait::Forever => o,
            Wait::Timeout(t) => o.timeout(t),
        }
    }

    fn acquire(&self, name: &str, mode: Mode, wait: Wait) -> Result<LockGuard<'static>, Error> {
        self.options(name, mode, wait).lock()
    }

    async fn acquire_async(
        &self,
        name: &str,
        mode: Mode,
        wait: Wait,
    ) -> Result<AsyncLockGuard<'static>, Error> {
        self.options(name, mode, wait).lock_async().await
    }

    fn key(&self, name: &str) -> LockKey {
        self.layout.key(name)
    }

    fn admin(&self) -> &dyn Admin {
        self.backend.admin().unwrap()
    }
}

fn coordinator() -> Host {
    Host::new(&url())
}

/// The server processes holding `key` (granted), from `pg_locks`.
fn holder_pids(key: LockKey) -> Vec<i32> {
    sql(&format!(
        "SELECT pid FROM pg_locks WHERE granted AND {} ORDER BY pid",
        pg_locks_where(key)
    ))
    .into_iter()
    .map(|r| r[0].as_deref().unwrap().parse().unwrap())
    .collect()
}

/// The one server process holding the lock `name` (native layout).
fn backend_pid(name: &str) -> i32 {
    let pids = holder_pids(Layout::Native.key(name));
    assert_eq!(pids.len(), 1, "{pids:?}");
    pids[0]
}

/// Ends the server session holding `name` (`pg_terminate_backend`).
fn terminate_session_of(name: &str) {
    let pid = backend_pid(name);
    let rows = sql(&format!("SELECT pg_terminate_backend({pid})"));
    assert_eq!(rows[0][0].as_deref(), Some("t"), "session {pid} not ended");
}

fn release(g: LockGuard<'_>) -> Result<(), Error> {
    LockGuard::unlock(g)
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn password_from_url_pgpassword_and_pgpass_and_never_shown() {
    let full: PgUrl = url().parse().unwrap();
    assert!(full.has_password());
    let bare = url().replacen(":lockutils@", "@", 1);
    let name = unique("pw");
    // From the URL.
    drop(
        coordinator()
            .acquire(&name, Mode::Exclusive, Wait::Now)
            .unwrap(),
    );
    // Wrong password: a typed error that names the URL and never the password.
    let wrong = url().replacen(":lockutils@", ":hunter2-wrong@", 1);
    let e = Host::new(&wrong)
        .acquire(&name, Mode::Exclusive, Wait::Now)
        .unwrap_err();
    let shown = e.to_string();
    assert!(matches!(e, Error::Backend { .. }), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("password"), "{shown}");
    assert!(!format!("{e:?}").contains("hunter2"));
    // From PGPASSWORD (this test alone touches these variables).
    std::env::set_var("PGPASSWORD", "lockutils");
    let via_env = Host::new(&bare);
    std::env::remove_var("PGPASSWORD");
    drop(via_env.acquire(&name, Mode::Exclusive, Wait::Now).unwrap());
    // From a password file.
    let dir = std::env::temp_dir().join(unique("pgpass"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pgpass");
    std::fs::write(&file, "*:*:*:lockutils:lockutils\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::env::set_var("PGPASSFILE", &file);
    let via_file = Host::new(&bare);
    std::env::remove_var("PGPASSFILE");
    drop(via_file.acquire(&name, Mode::Exclusive, Wait::Now).unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!format!("{:?}", via_file.backend).contains("lockutils:lockutils"));
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn exclusive_excludes_and_shared_shares() {
    let (a, b) = (coordinator(), coordinator());
    let name = unique("modes");
    let x = a.acquire(&name, Mode::Exclusive, Wait::Now).unwrap();
    assert!(matches!(
        b.acquire(&name, Mode::Exclusive, Wait::Now),
        Err(Error::WouldBlock { .. })
    ));
    assert!(matches!(
        b.acquire(&name, Mode::Shared, Wait::Now),
        Err(Error::WouldBlock { .. })
    ));
    release(x).unwrap();
    let r1 = a.acquire(&name, Mode::Shared, Wait::Now).unwrap();
    let r2 = b.acquire(&name, Mode::Shared, Wait::Now).unwrap();
    assert_eq!(sessions_on(a.key(&name)), (2, 0));
    // A third host (this thread holds it in b's in-process layer already).
    assert!(matches!(
        coordinator().acquire(&name, Mode::Exclusive, Wait::Now),
        Err(Error::WouldBlock { .. })
    ));
    release(r1).unwrap();
    release(r2).unwrap();
    assert_eq!(sessions_on(a.key(&name)), (0, 0));
    release(b.acquire(&name, Mode::Exclusive, Wait::Now).unwrap()).unwrap();
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn names_map_to_their_documented_64_bit_keys() {
    let c = coordinator();
    let name = unique("key");
    let hold = c.acquire(&name, Mode::Exclusive, Wait::Now).unwrap();
    let key = Layout::Native.key(&name);
    assert_eq!(
        LockGuard::location(&hold).unwrap().to_string(),
        key.to_string()
    );
    assert!(matches!(key, LockKey::Big(_)));
    // The server sees exactly that bigint key, held by the hold's session.
    let LockKey::Big(k) = key else { unreachable!() };
    let rows = sql(&format!(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 \
         AND ((classid::int8 << 32) | objid::int8) = {}",
        k
    ));
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0][0].as_deref(),
        Some(backend_pid(&name).to_string().as_str())
    );
    // A hundred thousand names, no two on one key.
    let keys: std::collections::HashSet<_> = (0..100_000)
        .map(|i| Layout::Native.key(&format!("n{i}")))
        .collect();
    assert_eq!(keys.len(), 100_000);
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn threads_of_one_process_use_one_server_session_per_name() {
    let u = url();
    let name = unique("threads");
    let key = Layout::Native.key(&name);
    let inside = Arc::new(AtomicUsize::new(0));
    let checks = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|s| {
        for _ in 0..6 {
            let (u, name, inside, checks) = (&u, &name, inside.clone(), checks.clone());
            s.spawn(move || {
                for _ in 0..5 {
                    let g = LockOptions::new(name).backend_url(u).lock().unwrap();
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                    // The other threads wait in memory, not on the server.
                    let (held, waiting) = sessions_on(key);
                    assert_eq!((held, waiting), (1, 0));
                    checks.fetch_add(1, Ordering::SeqCst);
                    inside.fetch_sub(1, Ordering::SeqCst);
                    release(g).unwrap();
                }
            });
        }
    });
    assert_eq!(checks.load(Ordering::SeqCst), 30);
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn try_lock_and_timeout_leave_no_waiting_query() {
    let holder = coordinator();
    let name = unique("timeout");
    let key = Layout::Native.key(&name);
    let held = holder.acquire(&name, Mode::Exclusive, Wait::Now).unwrap();
    let u = url();
    let other = coordinator();
    let e = other
        .acquire(&name, Mode::Exclusive, Wait::Now)
        .unwrap_err();
    assert!(matches!(e, Error::WouldBlock { .. }), "{e}");
    let start = Instant::now();
    let e = other
        .acquire(
            &name,
            Mode::Exclusive,
            Wait::Timeout(Duration::from_millis(400)),
        )
        .unwrap_err();
    assert!(
        matches!(e, Error::Timeout { timeout, .. } if timeout == Duration::from_millis(400)),
        "{e}"
    );
    assert!(start.elapsed() >= Duration::from_millis(400));
    // Checked at once: the server ended the wait before the error returned.
    assert_eq!(sessions_on(key), (1, 0));
    assert_eq!(waiting_statements_on(key), 0);
    // Shared mode too.
    let e = other
        .acquire(
            &name,
            Mode::Shared,
            Wait::Timeout(Duration::from_millis(200)),
        )
        .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert_eq!(sessions_on(key), (1, 0));
    let _ = u;
    release(held).unwrap();
    assert_eq!(sessions_on(key), (0, 0));
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn one_deadline_covers_the_in_process_wait_too() {
    let u = url();
    let name = unique("deadline");
    let g = LockOptions::new(&name).backend_url(&u).lock().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            let start = Instant::now();
            let e = LockOptions::new(&name)
                .backend_url(&u)
                .timeout(Duration::from_millis(300))
                .lock()
                .unwrap_err();
            assert!(matches!(e, Error::Timeout { .. }), "{e}");
            assert!(start.elapsed() < Duration::from_secs(3));
        });
    });
    drop(g);
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn dropped_future_leaves_no_lock_and_no_waiting_query() {
    let holder = coordinator();
    let name = unique("cancel");
    let key = Layout::Native.key(&name);
    let held = holder.acquire(&name, Mode::Exclusive, Wait::Now).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let u = url();
    let raw = coordinator();
    rt.block_on(async {
        // In-process layer + server, from another host ...
        let fut = raw.acquire_async(&name, Mode::Exclusive, Wait::Forever);
        assert!(tokio::time::timeout(Duration::from_millis(300), fut)
            .await
            .is_err());
        // ... and with a timeout, both dropped while waiting on the server.
        let fut = raw.acquire_async(&name, Mode::Shared, Wait::Timeout(Duration::from_secs(60)));
        if let Ok(r) = tokio::time::timeout(Duration::from_millis(300), fut).await {
            panic!("did not wait: {:?}", r.map(drop));
        }
    });
    // Checked at once: each drop returned after the server ended the wait.
    assert_eq!(waiting_statements_on(key), 0);
    assert_eq!(sessions_on(key), (1, 0));
    release(held).unwrap();
    // Nobody obtained the lock behind our back: it is free now.
    assert_eq!(sessions_on(key), (0, 0));
    release(
        coordinator()
            .acquire(&name, Mode::Exclusive, Wait::Now)
            .unwrap(),
    )
    .unwrap();
    let _ = u;
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn async_wait_does_not_block_the_executor() {
    let holder = coordinator();
    let name = unique("async");
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let n = name.clone();
    // Ticks of a task on the waiter's one executor thread. The main task
    // runs the acquisition as soon as the ticker is spawned, so every tick
    // ran while the acquisition was pending.
    let ticks = Arc::new(AtomicUsize::new(0));
    let seen = ticks.clone();
    let releaser = std::thread::spawn(move || {
        let held = holder.acquire(&n, Mode::Exclusive, Wait::Now).unwrap();
        held_tx.send(()).unwrap();
        // Released once the executor has ticked 10 times, or after 10 s:
        // an acquisition that blocked the executor would see no ticks.
        let start = Instant::now();
        while seen.load(Ordering::SeqCst) < 10 && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(5));
        }
        release(held).unwrap();
    });
    held_rx.recv().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let u = url();
    let ticks = rt.block_on(async {
        let t = ticks.clone();
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                t.fetch_add(1, Ordering::SeqCst);
            }
        });
        let g = LockOptions::new(&name)
            .backend_url(&u)
            .lock_async()
            .await
            .unwrap();
        let n = ticks.load(Ordering::SeqCst);
        AsyncLockGuard::unlock_async(g).await.unwrap();
        ticker.abort();
        releaser.join().unwrap();
        n
    });
    // The single executor thread kept running the ticker during the wait.
    assert!(
        ticks >= 10,
        "ticker ran only {ticks} times while the acquisition waited"
    );
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn terminated_session_is_reported_lost() {
    let c = Host::new(&url_with("check_interval=1"));
    let name = unique("loss");
    let hold = c.acquire(&name, Mode::Exclusive, Wait::Now).unwrap();
    assert!(!LockGuard::is_lost(&hold));
    terminate_session_of(&name);
    let start = Instant::now();
    // Bound: 2 × check_interval.
    let reason = loss_within(&hold, Duration::from_secs(3));
    assert_eq!(reason.kind, LossKind::SessionEnded);
    assert!(start.elapsed() < Duration::from_secs(3));
    assert!(LockGuard::is_lost(&hold));
    assert_eq!(LockGuard::loss(&hold).unwrap().kind, LossKind::SessionEnded);
    let e = release(hold).unwrap_err();
    assert!(e.to_string().contains("lost"), "{e}");
    // The lock died with its session (the terminated server process may
    // still be exiting when the client sees the connection close).
    release(
        coordinator()
            .acquire(
                &name,
                Mode::Exclusive,
                Wait::Timeout(Duration::from_secs(5)),
            )
            .unwrap(),
    )
    .unwrap();
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn fencing_tokens_increase_with_the_table_and_are_absent_without() {
    let name = unique("fence");
    let plain = coordinator()
        .acquire(&name, Mode::Exclusive, Wait::Now)
        .unwrap();
    assert!(matches!(
        LockGuard::fencing_token(&plain),
        Err(Error::Unsupported { .. })
    ));
    release(plain).unwrap();
    let c = Host::new(&url_with("fencing=table"));
    let other = Host::new(&url_with("fencing=table"));
    let mut last = 0;
    for i in 0..4 {
        let via = if i % 2 == 0 { &c } else { &other };
        let h = via.acquire(&name, Mode::Exclusive, Wait::Now).unwrap();
        let t = LockGuard::fencing_token(&h).unwrap();
        assert!(t > last, "token {t} after {last}");
        last = t;
        release(h).unwrap();
    }
}

struct Holder(Child);

impl Holder {
    fn spawn(url: &str, name: &str, extra: &[&str]) -> (Holder, String) {
        let mut child = Command::new(holder_bin())
            .args(["hold", url, name])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("held "), "holder said {line:?}");
        (Holder(child), line)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn sigkilled_holder_frees_the_lock_for_a_waiter() {
    let u = url();
    let name = unique("crash");
    let (mut holder, _) = Holder::spawn(&u, &name, &[]);
    assert!(matches!(
        LockOptions::new(&name).backend_url(&u).try_lock(),
        Err(Error::WouldBlock { .. })
    ));
    let killer = std::thread::spawn({
        let pid = holder.0.id();
        move || {
            std::thread::sleep(Duration::from_millis(300));
            // SAFETY: kill(2) takes plain integers; the pid is our own
            // child's, which we have not reaped yet, so it is not reused.
            assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
            Instant::now()
        }
    });
    // Bound: the server frees a lock when it sees the connection close,
    // which the kernel does at once for a killed process on a live host.
    let g = LockOptions::new(&name)
        .backend_url(&u)
        .timeout(Duration::from_secs(5))
        .lock()
        .expect("the waiter did not get the lock within 5 s of the SIGKILL");
    let killed_at = killer.join().unwrap();
    let delay = killed_at.elapsed();
    assert!(
        delay < Duration::from_secs(3),
        "freed {delay:?} after SIGKILL"
    );
    let _ = holder.0.wait();
    release(g).unwrap();
}

fn tooz_python() -> String {
    std::env::var("LOCKUTILS_TEST_TOOZ").expect(
        "LOCKUTILS_TEST_TOOZ is not set: export LOCKUTILS_TEST_TOOZ=$(scripts/tooz-peer.sh)",
    )
}

fn tooz_url() -> String {
    // tooz takes libpq URLs; our own parameters are not for it.
    url().split('?').next().unwrap().to_owned()
}

fn tooz(cmd: &str, name: &str) -> Command {
    let mut c = Command::new(tooz_python());
    c.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tooz_peer.py"))
        .args([cmd, &tooz_url(), name]);
    c
}

fn tooz_try(name: &str) -> String {
    let out = tooz("try", name).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
#[ignore = "needs PostgreSQL and tooz: scripts/postgres.sh start; LOCKUTILS_TEST_TOOZ=$(scripts/tooz-peer.sh)"]
fn tooz_layout_excludes_tooz_both_ways() {
    let u = url_with("layout=tooz");
    let name = unique("tooz");
    // Ours holds: tooz finds it busy; released: tooz gets it.
    let g = LockOptions::new(&name).backend_url(&u).lock().unwrap();
    assert_eq!(
        LockGuard::location(&g).unwrap().to_string(),
        Layout::Tooz.key(&name).to_string()
    );
    assert_eq!(tooz_try(&name), "busy");
    release(g).unwrap();
    assert_eq!(tooz_try(&name), "acquired");
    // tooz holds: ours would block; tooz releases: ours gets it.
    let mut peer = tooz("hold", &name)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(peer.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "held");
    assert!(matches!(
        LockOptions::new(&name).backend_url(&u).try_lock(),
        Err(Error::WouldBlock { .. })
    ));
    // The native layout does not see tooz's key.
    release(
        LockOptions::new(&name)
            .backend_url(&url())
            .try_lock()
            .unwrap(),
    )
    .unwrap();
    peer.stdin.as_mut().unwrap().write_all(b"").unwrap();
    drop(peer.stdin.take());
    let g = LockOptions::new(&name)
        .backend_url(&u)
        .timeout(Duration::from_secs(10))
        .lock()
        .unwrap();
    assert!(peer.wait().unwrap().success());
    release(g).unwrap();
    // tooz has exclusive locks only; so does its layout.
    let e = LockOptions::new(&name)
        .backend_url(&u)
        .mode(Mode::Shared)
        .lock()
        .unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }), "{e}");
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn admin_lists_holders_and_waiters_with_pids_names_and_times() {
    let c = coordinator();
    let name = unique("admin");
    let held = c.acquire(&name, Mode::Exclusive, Wait::Now).unwrap();
    let n2 = name.clone();
    let t = std::thread::spawn(move || {
        let waiter = coordinator();
        release(
            waiter
                .acquire(&n2, Mode::Shared, Wait::Timeout(Duration::from_secs(10)))
                .unwrap(),
        )
        .unwrap()
    });
    wait_until(
        "waiter queued on the server",
        Duration::from_secs(5),
        || sessions_on(c.key(&name)).1 == 1,
    );
    let admin = c.admin();
    let info = admin.inspect(&name).unwrap();
    assert_eq!(info.identity, name);
    assert_eq!(info.location, c.key(&name).to_string());
    assert_eq!(info.holders.len(), 1);
    let holder = &info.holders[0];
    let pid = backend_pid(&name);
    assert!(
        holder.detail.contains(&format!("server pid {pid},")),
        "{holder:?}"
    );
    assert!(
        holder.detail.contains("application_name \"lockutils\""),
        "{holder:?}"
    );
    assert_eq!(holder.mode, Some(Mode::Exclusive));
    assert!(holder.since.is_some());
    assert_eq!(info.waiters.len(), 1);
    assert_eq!(info.waiters[0].mode, Some(Mode::Shared));
    assert!(info.waiters[0].since.is_some());
    let listed = admin.list().unwrap();
    assert!(
        listed.iter().any(|l| l.identity == name),
        "{name} not in {listed:?}"
    );
    assert_eq!(admin.remove_if_free(&name).unwrap(), Removal::Busy);
    release(held).unwrap();
    t.join().unwrap();
    let info = admin.inspect(&name).unwrap();
    assert!(
        info.holders.is_empty() && info.waiters.is_empty(),
        "{info:?}"
    );
    assert_eq!(admin.remove_if_free(&name).unwrap(), Removal::Absent);
    // Ending the holders frees the lock and makes them report the loss.
    let h = c.acquire(&name, Mode::Exclusive, Wait::Now).unwrap();
    assert_eq!(admin.clear(&name).unwrap(), 1);
    wait_until("holder reports loss", Duration::from_secs(5), || {
        LockGuard::is_lost(&h)
    });
}

#[test]
#[ignore = "needs PostgreSQL with TLS: scripts/postgres.sh start; LOCKUTILS_TEST_POSTGRES_CA=$PG_DIR/ca.crt"]
fn tls_when_the_url_asks() {
    let ca = std::env::var("LOCKUTILS_TEST_POSTGRES_CA")
        .expect("LOCKUTILS_TEST_POSTGRES_CA is not set: the server's CA certificate");
    let ssl_of =
        |pid: i32| sql(&format!("SELECT ssl FROM pg_stat_ssl WHERE pid = {pid}"))[0][0].clone();
    let name = unique("tls");
    for (params, tls) in [
        ("sslmode=disable".to_owned(), "f"),
        ("sslmode=require".to_owned(), "t"),
        (format!("sslmode=verify-ca&sslrootcert={ca}"), "t"),
    ] {
        let c = Host::new(&url_with(&params));
        let h = c.acquire(&name, Mode::Exclusive, Wait::Now).unwrap();
        assert_eq!(ssl_of(backend_pid(&name)).as_deref(), Some(tls), "{params}");
        release(h).unwrap();
    }
    // verify-full checks the name: the certificate is for localhost.
    let by_name = url_with(&format!("sslmode=verify-full&sslrootcert={ca}")).replacen(
        "@127.0.0.1:",
        "@localhost:",
        1,
    );
    let h = Host::new(&by_name)
        .acquire(&name, Mode::Exclusive, Wait::Now)
        .unwrap();
    assert_eq!(ssl_of(backend_pid(&name)).as_deref(), Some("t"));
    release(h).unwrap();
    // verify-full refuses the address the certificate does not name (the
    // same server and CA that verify-ca accepted above).
    let e = Host::new(&url_with(&format!("sslmode=verify-full&sslrootcert={ca}")))
        .acquire(&name, Mode::Exclusive, Wait::Now)
        .unwrap_err();
    assert!(matches!(e, Error::Backend { .. }), "{e}");
    let shown = e.to_string();
    assert!(
        shown.contains("TLS handshake failed") && shown.contains("not valid for name"),
        "{shown}"
    );
    // Without the CA, the test CA's certificate is refused.
    let e = Host::new(&url_with("sslmode=verify-full"))
        .acquire(&name, Mode::Exclusive, Wait::Now)
        .unwrap_err();
    assert!(matches!(e, Error::Backend { .. }), "{e}");
    let shown = e.to_string();
    assert!(
        shown.contains("TLS handshake failed") && shown.contains("UnknownIssuer"),
        "{shown}"
    );
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn a_role_with_only_connect_can_lock() {
    // scripts/postgres.sh creates lockutils_min with LOGIN and CONNECT only.
    let min = min_url();
    let rows = sql("SELECT rolsuper, rolcreaterole, rolcreatedb, \
         (SELECT count(*) FROM pg_auth_members m WHERE m.member = r.oid)::text \
         FROM pg_roles r WHERE rolname = 'lockutils_min'");
    assert_eq!(
        rows[0],
        [
            Some("f".into()),
            Some("f".into()),
            Some("f".into()),
            Some("0".into())
        ]
    );
    let c = Host::new(&min);
    let name = unique("min");
    let x = c.acquire(&name, Mode::Exclusive, Wait::Now).unwrap();
    release(x).unwrap();
    let s = c.acquire(&name, Mode::Shared, Wait::Now).unwrap();
    // Its own sessions are visible to it in the admin view.
    let pid = backend_pid(&name);
    let holders = c.admin().inspect(&name).unwrap().holders;
    assert!(
        holders[0].detail.contains(&format!("server pid {pid},")),
        "{holders:?}"
    );
    release(s).unwrap();
}

#[test]
#[ignore = "needs PostgreSQL on this host: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn unresponsive_session_is_reported_lost_within_two_check_intervals() {
    // A server process that stops answering (SIGSTOP: as a hung host or a
    // silent partition looks from the client) is detected by the periodic
    // check, not by the socket, which stays open.
    let c = Host::new(&url_with("check_interval=1"));
    let name = unique("hang");
    let hold = c.acquire(&name, Mode::Exclusive, Wait::Now).unwrap();
    let pid = backend_pid(&name);
    // SAFETY: kill(2) takes plain integers; the pid is the server process
    // serving our own session, which lives until we release it.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    let start = Instant::now();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_until("loss reported", Duration::from_secs(4), || {
            LockGuard::is_lost(&hold)
        });
    }));
    let took = start.elapsed();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    result.unwrap();
    let loss = LockGuard::loss(&hold).unwrap();
    assert_eq!(loss.kind, LossKind::ConnectionLost);
    assert!(loss.detail.contains("periodic check"), "{loss:?}");
    // Bound: 2 × check_interval, plus slack for a loaded machine.
    assert!(took <= Duration::from_secs(3), "reported after {took:?}");
    assert!(release(hold).is_err());
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn an_untimed_wait_outlasts_the_roles_own_lock_timeout() {
    // A role default of 100 ms would end a plain `pg_advisory_lock` wait;
    // an acquisition without timeout must wait on regardless.
    let setting = MinRoleSetting::set("lock_timeout", "100ms");
    let name = unique("roletimeout");
    let key = Layout::Native.key(&name);
    let held = coordinator()
        .acquire(&name, Mode::Exclusive, Wait::Now)
        .unwrap();
    let n = name.clone();
    let t = std::thread::spawn(move || {
        Host::new(&min_url())
            .acquire(&n, Mode::Exclusive, Wait::Forever)
            .map(|h| release(h).unwrap())
    });
    let queued = reaches(key, (1, 1), Duration::from_secs(10));
    // Well past the role's 100 ms, the waiter is still (or again) queued.
    std::thread::sleep(Duration::from_secs(1));
    let still = reaches(key, (1, 1), Duration::from_secs(2));
    release(held).unwrap();
    let result = t.join().unwrap();
    drop(setting);
    assert!(queued && still, "the waiter gave up");
    result.unwrap();
}

/// `url` with extra parameters.
fn with_params(url: &str, params: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{params}")
}

/// A setting of the role `lockutils_min` for the sessions it opens from
/// now on (`ALTER ROLE … SET`), reset when dropped, even by a failed test.
struct MinRoleSetting(&'static str);

impl MinRoleSetting {
    fn set(name: &'static str, value: &str) -> MinRoleSetting {
        sql_as(
            &min_url(),
            &format!("ALTER ROLE CURRENT_USER SET {name} = '{value}'"),
        );
        MinRoleSetting(name)
    }
}

impl Drop for MinRoleSetting {
    fn drop(&mut self) {
        sql_as(
            &min_url(),
            &format!("ALTER ROLE CURRENT_USER RESET {}", self.0),
        );
    }
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn waits_outlast_the_roles_own_statement_timeout() {
    // A role default of 300 ms would end a waiting statement as a cancel
    // request does (57014): an acquisition without timeout must wait on
    // regardless, and one with a timeout until its deadline.
    let _setting = MinRoleSetting::set("statement_timeout", "300ms");
    // A URL of its own: a pool whose sessions start with the setting.
    let min = with_params(&min_url(), "application_name=lockutils-statement-timeout");
    let name = unique("stmttimeout");
    let key = Layout::Native.key(&name);
    let held = coordinator()
        .acquire(&name, Mode::Exclusive, Wait::Now)
        .unwrap();
    let waiters: Vec<_> = [Wait::Forever, Wait::Timeout(Duration::from_secs(30))]
        .into_iter()
        .map(|wait| {
            let (n, min) = (name.clone(), min.clone());
            std::thread::spawn(move || {
                Host::new(&min)
                    .acquire(&n, Mode::Exclusive, wait)
                    .map(|h| release(h).unwrap())
            })
        })
        .collect();
    let queued = reaches(key, (1, 2), Duration::from_secs(10));
    // Well past the role's 300 ms, both are still (or again) queued.
    std::thread::sleep(Duration::from_millis(1500));
    let still = reaches(key, (1, 2), Duration::from_secs(2));
    release(held).unwrap();
    let results: Vec<_> = waiters.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(queued && still, "a waiter gave up: {results:?}");
    for r in results {
        r.unwrap();
    }
    assert_eq!(sessions_on(key), (0, 0));
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn a_timeout_beyond_the_servers_lock_timeout_range_waits() {
    // 30 days is past PostgreSQL's largest lock_timeout (2^31-1 ms, about
    // 24.8 days): the wait is bounded there, and the acquisition waits.
    let name = unique("long-timeout");
    let key = Layout::Native.key(&name);
    let held = coordinator()
        .acquire(&name, Mode::Exclusive, Wait::Now)
        .unwrap();
    let n = name.clone();
    let t = std::thread::spawn(move || {
        coordinator()
            .acquire(
                &n,
                Mode::Exclusive,
                Wait::Timeout(Duration::from_secs(30 * 24 * 3600)),
            )
            .map(|h| release(h).unwrap())
    });
    let queued = reaches(key, (1, 1), Duration::from_secs(10));
    release(held).unwrap();
    let result = t.join().unwrap();
    assert!(queued, "the waiter did not wait: {result:?}");
    result.unwrap();
    assert_eq!(sessions_on(key), (0, 0));
}

#[test]
fn an_unreachable_server_is_a_typed_error_naming_the_url_without_password() {
    // Nothing listens on port 1; no server needed.
    let c = Host::new("postgresql://svc:hunter2@127.0.0.1:1/app?connect_timeout=2");
    let start = Instant::now();
    let e = c.acquire("x", Mode::Exclusive, Wait::Now).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(3));
    let shown = e.to_string();
    assert!(matches!(e, Error::Backend { .. }), "{shown}");
    assert!(
        shown.contains("postgresql://svc@127.0.0.1:1/app"),
        "{shown}"
    );
    assert!(shown.contains("check that the server runs"), "{shown}");
    assert!(!shown.contains("hunter2") && !format!("{e:?}").contains("hunter2"));
}

/// A host whose sessions are plaintext, which blocking callers drive from
/// their own threads (TLS sessions stay with the runtime).
fn plain_host(params: &str) -> Host {
    Host::new(&url_with(&format!("sslmode=disable{params}")))
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn a_lock_taken_by_a_blocking_caller_reports_its_loss() {
    let h = plain_host("&check_interval=1");
    let name = unique("caller-loss");
    // Twice: the second acquisition reuses the session the first handed
    // back idle to the pool.
    release(h.acquire(&name, Mode::Exclusive, Wait::Forever).unwrap()).unwrap();
    let hold = h.acquire(&name, Mode::Exclusive, Wait::Forever).unwrap();
    // Held idle: nobody but the runtime reads the session now.
    std::thread::sleep(Duration::from_millis(100));
    assert!(!LockGuard::is_lost(&hold));
    terminate_session_of(&name);
    let reason = loss_within(&hold, Duration::from_secs(3));
    assert_eq!(reason.kind, LossKind::SessionEnded);
    let e = release(hold).unwrap_err();
    assert!(e.to_string().contains("lost"), "{e}");
    // The pool holds no dead session: the next acquisition works.
    release(h.acquire(&name, Mode::Exclusive, Wait::Forever).unwrap()).unwrap();
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn a_session_ended_just_after_a_blocking_acquisition_is_reported_lost_at_once() {
    // The default check interval (5 s): only the session's own end, seen
    // once its deferred hand-back to the runtime is done (milliseconds),
    // can report the loss within the bound below.
    let h = plain_host("");
    let name = unique("deferred-loss");
    for _ in 0..3 {
        let hold = h.acquire(&name, Mode::Exclusive, Wait::Forever).unwrap();
        terminate_session_of(&name);
        let reason = loss_within(&hold, Duration::from_secs(1));
        assert_eq!(reason.kind, LossKind::SessionEnded);
        assert!(release(hold).is_err());
    }
    release(h.acquire(&name, Mode::Exclusive, Wait::Forever).unwrap()).unwrap();
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn a_blocking_acquisition_released_by_drop_unlocks_on_the_server() {
    // A pool of its own (its own URL): `blocking_and_async_callers_take_turns_on_one_session`
    // counts the sessions of its one-session pool.
    let h = plain_host("&pool=1&application_name=lockutils-drop-release");
    let name = unique("deferred-release");
    let key = h.key(&name);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for round in 0..20 {
        let g = h.acquire(&name, Mode::Exclusive, Wait::Forever).unwrap();
        assert_eq!(sessions_on(key), (1, 0));
        if round % 2 == 0 {
            // Released by the crate's runtime, which must drive the
            // session at once rather than after the deferral.
            drop(g);
            wait_until("dropped guard unlocks", Duration::from_secs(2), || {
                sessions_on(key) == (0, 0)
            });
        } else {
            release(g).unwrap();
            assert_eq!(sessions_on(key), (0, 0));
        }
        // An async acquisition on the session the blocking caller used.
        let g = rt
            .block_on(h.acquire_async(&name, Mode::Exclusive, Wait::Forever))
            .unwrap();
        rt.block_on(AsyncLockGuard::unlock_async(g)).unwrap();
        // Another thread takes the same session over from the pool.
        std::thread::scope(|s| {
            s.spawn(|| {
                release(h.acquire(&name, Mode::Exclusive, Wait::Now).unwrap()).unwrap();
            });
        });
    }
    assert_eq!(sessions_on(key), (0, 0));
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn blocking_and_async_callers_take_turns_on_one_session() {
    let h = plain_host("&pool=1");
    let name = unique("turns");
    let key = h.key(&name);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut pids = Vec::new();
    for _ in 0..10 {
        let g = h.acquire(&name, Mode::Exclusive, Wait::Forever).unwrap();
        pids.push(backend_pid(&name));
        release(g).unwrap();
        let g = rt
            .block_on(h.acquire_async(&name, Mode::Exclusive, Wait::Forever))
            .unwrap();
        pids.push(backend_pid(&name));
        rt.block_on(AsyncLockGuard::unlock_async(g)).unwrap();
        // A blocking try and a timed wait on the same session too.
        release(h.acquire(&name, Mode::Exclusive, Wait::Now).unwrap()).unwrap();
        let g = h
            .acquire(
                &name,
                Mode::Exclusive,
                Wait::Timeout(Duration::from_secs(5)),
            )
            .unwrap();
        release(g).unwrap();
    }
    pids.dedup();
    assert_eq!(pids.len(), 1, "one pooled session serves both: {pids:?}");
    assert_eq!(sessions_on(key), (0, 0));
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn a_blocking_timed_out_or_refused_acquisition_leaves_no_waiting_query() {
    let holder = coordinator();
    let name = unique("caller-timeout");
    let key = Layout::Native.key(&name);
    let held = holder.acquire(&name, Mode::Exclusive, Wait::Now).unwrap();
    let h = plain_host("");
    for _ in 0..3 {
        let e = h
            .acquire(
                &name,
                Mode::Exclusive,
                Wait::Timeout(Duration::from_millis(200)),
            )
            .unwrap_err();
        assert!(matches!(e, Error::Timeout { .. }), "{e}");
        // Checked at once: the wait ended before the error returned.
        assert_eq!(waiting_statements_on(key), 0);
        assert_eq!(sessions_on(key), (1, 0));
        let e = h.acquire(&name, Mode::Exclusive, Wait::Now).unwrap_err();
        assert!(matches!(e, Error::WouldBlock { .. }), "{e}");
        assert_eq!(sessions_on(key), (1, 0));
    }
    release(held).unwrap();
    release(h.acquire(&name, Mode::Exclusive, Wait::Now).unwrap()).unwrap();
    assert_eq!(sessions_on(key), (0, 0));
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn a_stray_cancel_does_not_end_a_wait() {
    // The server can deliver a cancel request twice, so the one an earlier
    // clean-up sent on a session may reach the next wait on it: the wait
    // goes on.
    let holder = coordinator();
    let name = unique("stray-cancel");
    let key = Layout::Native.key(&name);
    let held = holder.acquire(&name, Mode::Exclusive, Wait::Now).unwrap();
    let h = plain_host("");
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let got = h.acquire(&name, Mode::Exclusive, Wait::Forever)?;
            assert_eq!(sessions_on(key), (1, 0));
            release(got)
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        while sessions_on(key) != (1, 1) {
            assert!(Instant::now() < deadline, "the waiter never waited");
            std::thread::sleep(Duration::from_millis(10));
        }
        let waiting = sql(&format!(
            "SELECT pid FROM pg_locks WHERE NOT granted AND {}",
            pg_locks_where(key)
        ));
        let pid = waiting[0][0].as_deref().unwrap();
        assert_eq!(
            sql(&format!("SELECT pg_cancel_backend({pid})"))[0][0].as_deref(),
            Some("t")
        );
        // Still waiting (again), with nothing held.
        let deadline = Instant::now() + Duration::from_secs(5);
        while sessions_on(key) != (1, 1) {
            assert!(Instant::now() < deadline, "the wait ended");
            std::thread::sleep(Duration::from_millis(10));
        }
        release(held).unwrap();
        waiter.join().unwrap().unwrap();
    });
    assert_eq!(sessions_on(key), (0, 0));
}

/// A small xorshift generator, so that the stress needs no extra crate.
fn xorshift(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut s = seed | 1;
    move |n| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s % n
    }
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn cancelled_acquisitions_leave_no_stray_cancel_on_reused_sessions() {
    // Contenders on one name, each a host of its own (so they meet on the
    // server) sharing one pool of sessions, mix async acquisitions dropped
    // at a random point and timed locks (both send cancel requests) with
    // try-locks. The server delivers a cancel request asynchronously, at
    // times late: a session that was sent one and went back to the pool
    // would see a later statement (a try, a wait, a release) cancelled.
    // Nothing may fail but by contention; never two holders; no hold lost;
    // nothing left on the server.
    enum Held {
        Async(AsyncLockGuard<'static>),
        Blocking(LockGuard<'static>),
    }
    let u = url_with("application_name=lockutils-stray-cancel");
    let name = unique("stray-cancel-stress");
    let key = Layout::Native.key(&name);
    let inside = AtomicUsize::new(0);
    let taken = AtomicUsize::new(0);
    let errors = std::sync::Mutex::new(Vec::<String>::new());
    let until = Instant::now() + Duration::from_secs(8);
    std::thread::scope(|s| {
        for t in 0..5u64 {
            let (u, name, inside, taken, errors) = (&u, &name, &inside, &taken, &errors);
            s.spawn(move || {
                let host = Host::new(u);
                let mut r = xorshift(0x9E37_79B9_7F4A_7C15 ^ ((t + 1) * 7919));
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                while Instant::now() < until {
                    let kind = r(3);
                    let got = match kind {
                        0 => {
                            let cut = Duration::from_micros(r(20_000));
                            let acquiring =
                                host.acquire_async(name, Mode::Exclusive, Wait::Forever);
                            match rt.block_on(async { tokio::time::timeout(cut, acquiring).await })
                            {
                                Ok(g) => g.map(|g| Some(Held::Async(g))),
                                Err(_) => Ok(None),
                            }
                        }
                        1 => host
                            .acquire(
                                name,
                                Mode::Exclusive,
                                Wait::Timeout(Duration::from_millis(5 + r(60))),
                            )
                            .map(|g| Some(Held::Blocking(g))),
                        _ => host
                            .acquire(name, Mode::Exclusive, Wait::Now)
                            .map(|g| Some(Held::Blocking(g))),
                    };
                    let what =
                        ["an async acquisition", "a timed lock", "a try-lock"][kind as usize];
                    let held = match got {
                        Ok(Some(held)) => held,
                        Ok(None) | Err(Error::Timeout { .. } | Error::WouldBlock { .. }) => {
                            continue
                        }
                        Err(e) => {
                            errors.lock().unwrap().push(format!("{what}: {e} ({e:?})"));
                            continue;
                        }
                    };
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                    std::thread::sleep(Duration::from_micros(200 + r(3000)));
                    inside.fetch_sub(1, Ordering::SeqCst);
                    taken.fetch_add(1, Ordering::Relaxed);
                    let lost = match &held {
                        Held::Async(g) => AsyncLockGuard::is_lost(g),
                        Held::Blocking(g) => LockGuard::is_lost(g),
                    };
                    if lost {
                        errors
                            .lock()
                            .unwrap()
                            .push(format!("{what}'s hold was lost"));
                    }
                    let released = match (held, r(2)) {
                        (held, 0) => {
                            drop(held);
                            Ok(())
                        }
                        (Held::Async(g), _) => rt.block_on(AsyncLockGuard::unlock_async(g)),
                        (Held::Blocking(g), _) => release(g),
                    };
                    if let Err(e) = released {
                        errors
                            .lock()
                            .unwrap()
                            .push(format!("a release after {what}: {e} ({e:?})"));
                    }
                }
            });
        }
    });
    let errors = errors.into_inner().unwrap();
    let taken = taken.into_inner();
    assert!(
        errors.is_empty(),
        "{} unexpected errors ({taken} acquisitions got the lock), e.g. {:#?}",
        errors.len(),
        &errors[..errors.len().min(3)]
    );
    assert!(taken > 0, "no acquisition got the lock");
    // Dropped guards release from the crate's thread, soon after.
    wait_until("nothing left on the server", Duration::from_secs(5), || {
        sessions_on(key) == (0, 0)
    });
    release(
        coordinator()
            .acquire(&name, Mode::Exclusive, Wait::Now)
            .unwrap(),
    )
    .unwrap();
}

/// Two names with one key in the tooz layout (65,536 keys: a few hundred
/// names in, two collide).
fn tooz_colliding_names() -> (String, String) {
    let base = unique("tooz-collision");
    let mut seen = std::collections::HashMap::new();
    (0..)
        .find_map(|i| {
            let name = format!("{base}-{i}");
            seen.insert(Layout::Tooz.key(&name), name.clone())
                .map(|other| (other, name))
        })
        .unwrap()
}

/// A session of another client (as tooz's: a plain statement, no name)
/// holding the advisory lock `key` until the returned sender is dropped;
/// and its server pid.
fn foreign_holder(
    key: LockKey,
) -> (
    std::sync::mpsc::Sender<()>,
    i32,
    std::thread::JoinHandle<()>,
) {
    let (pid_tx, pid_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let u = url();
    let t = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let (client, conn) = tokio_postgres::connect(&u, tokio_postgres::NoTls)
                .await
                .unwrap();
            let conn = tokio::spawn(conn);
            let LockKey::Pair(a, b) = key else {
                panic!("a tooz key")
            };
            let row = client
                .query_one(
                    &format!("SELECT pg_backend_pid(), pg_try_advisory_lock({a}, {b})"),
                    &[],
                )
                .await
                .unwrap();
            assert!(row.get::<_, bool>(1), "the foreign holder got {key}");
            pid_tx.send(row.get::<_, i32>(0)).unwrap();
            let _ = tokio::task::spawn_blocking(move || done_rx.recv()).await;
            drop(client);
            let _ = conn.await;
        });
    });
    let pid = pid_rx.recv().unwrap();
    (done_tx, pid, t)
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn clearing_a_tooz_lock_spares_holders_of_other_names_with_its_key() {
    let (a, b) = tooz_colliding_names();
    let key = Layout::Tooz.key(&a);
    let host = Host::new(&url_with("layout=tooz"));
    let admin = host.admin();

    // A lockutils session holds b: not a's holder, whatever the key says.
    let held_b = host.acquire(&b, Mode::Exclusive, Wait::Now).unwrap();
    let pid_b = holder_pids(key)[0];
    let info = admin.inspect(&a).unwrap();
    assert!(info.holders.is_empty() && !info.is_held(), "{info:?}");
    assert_eq!(admin.clear(&a).unwrap(), 0);
    let report = admin.clear_with_report(&a).unwrap();
    assert_eq!((report.removed, report.kept), (0, None));
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !LockGuard::is_lost(&held_b),
        "clear({a:?}) ended {b:?}'s holder"
    );
    assert_eq!(holder_pids(key), vec![pid_b]);
    // b's own holder is b's, and named.
    let info = admin.inspect(&b).unwrap();
    assert_eq!(info.holders.len(), 1, "{info:?}");
    assert!(!info.holders[0].detail.contains("unknown"), "{info:?}");
    release(held_b).unwrap();
    // Named too while its last statement is the fencing token's.
    let fenced = Host::new(&url_with("layout=tooz&fencing=table"));
    let held_b = fenced.acquire(&b, Mode::Exclusive, Wait::Now).unwrap();
    assert!(LockGuard::fencing_token(&held_b).is_ok());
    let info = admin.inspect(&a).unwrap();
    assert!(info.holders.is_empty(), "{info:?}");
    assert_eq!(admin.clear(&a).unwrap(), 0);
    release(held_b).unwrap();

    // Another client's session (no name, as tooz's) holds the key: shown
    // under a as a holder whose name is unknown, and kept by clear.
    let (done, pid, t) = foreign_holder(key);
    let info = admin.inspect(&a).unwrap();
    assert_eq!(info.holders.len(), 1, "{info:?}");
    let detail = &info.holders[0].detail;
    assert!(
        detail.contains(&format!("server pid {pid},")) && detail.contains("lock name unknown"),
        "{detail}"
    );
    let report = admin.clear_with_report(&a).unwrap();
    assert_eq!(report.removed, 0);
    let kept = report.kept.expect("the unknown holder reported as kept");
    assert!(kept.contains(&pid.to_string()), "{kept}");
    assert_eq!(admin.clear(&a).unwrap(), 0);
    assert_eq!(holder_pids(key), vec![pid]);
    drop(done);
    t.join().unwrap();
    wait_until("the foreign session ends", Duration::from_secs(5), || {
        holder_pids(key).is_empty()
    });
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn a_try_lock_on_a_pooled_session_whose_server_hangs_fails_in_bounded_time() {
    // The idle session in the pool is open, its server process stopped
    // (SIGSTOP: a hung server): a try_lock must not wait for it to run
    // again, nor take the lock on nobody's behalf once it does.
    let h = Host::new(&url_with(&format!(
        "check_interval=1&pool=1&application_name={}",
        unique("hung-try")
    )));
    let name = unique("hung-try");
    let held = h.acquire(&name, Mode::Exclusive, Wait::Now).unwrap();
    let pid = backend_pid(&name);
    release(held).unwrap();
    // SAFETY: kill(2) takes plain integers; the pid is the server process
    // serving our pooled session, which lives until the pool closes it.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    let h = Arc::new(h);
    let (tx, rx) = std::sync::mpsc::channel();
    let (h2, name2) = (h.clone(), name.clone());
    std::thread::spawn(move || {
        let start = Instant::now();
        let got = h2.acquire(&name2, Mode::Exclusive, Wait::Now).map(drop);
        let _ = tx.send((got, start.elapsed()));
    });
    let got = rx.recv_timeout(Duration::from_secs(10));
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    let (got, took) = got.expect("try_lock still waiting for the stopped server after 10 s");
    let e = got.unwrap_err();
    assert!(
        matches!(&e, Error::Backend { name: n, .. } if *n == name),
        "{e:?}"
    );
    // Bound: check_interval and the 2 s a wait is given past its deadline.
    assert!(took < Duration::from_secs(6), "failed after {took:?}");
    // The statement the server runs on waking frees its lock with the session.
    wait_until("lock free again", Duration::from_secs(5), || {
        h.acquire(&name, Mode::Exclusive, Wait::Now)
            .and_then(release)
            .is_ok()
    });
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn an_idle_pooled_session_ended_by_the_server_is_not_used() {
    // The server ends the idle sessions in the pool (a restart, an
    // idle_session_timeout, an administrator's pg_terminate_backend): the
    // next acquisitions open new ones instead of failing on the dead one.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut failed = Vec::new();
    for (params, blocking) in [
        ("sslmode=disable", true),
        ("sslmode=disable", false),
        ("sslmode=require", true),
        ("sslmode=require", false),
    ] {
        let app = unique("idle-ended");
        let h = Host::new(&url_with(&format!(
            "{params}&pool=1&application_name={app}"
        )));
        let name = unique("idle-ended");
        let held = h.acquire(&name, Mode::Exclusive, Wait::Now).unwrap();
        let pid = backend_pid(&name);
        release(held).unwrap();
        let rows = sql(&format!("SELECT pg_terminate_backend({pid})"));
        assert_eq!(rows[0][0].as_deref(), Some("t"));
        wait_until("the idle session ended", Duration::from_secs(5), || {
            sql(&format!(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}"
            ))[0][0]
                .as_deref()
                == Some("0")
        });
        let got = if blocking {
            h.acquire(&name, Mode::Exclusive, Wait::Now)
                .and_then(release)
        } else {
            rt.block_on(async {
                let g = h.acquire_async(&name, Mode::Exclusive, Wait::Now).await?;
                AsyncLockGuard::unlock_async(g).await
            })
        };
        if let Err(e) = got {
            failed.push(format!("{params}, blocking {blocking}: {e}"));
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn a_held_lock_outlasts_the_roles_own_idle_session_timeout() {
    // A role's idle_session_timeout (PostgreSQL 14+) ends idle sessions, and
    // a held lock's session is idle between its checks: the lock must stay
    // held all the same.
    let _setting = MinRoleSetting::set("idle_session_timeout", "500ms");
    // A URL of its own: a pool whose sessions start with the setting.
    let min = with_params(
        &min_url(),
        "application_name=lockutils-idle-session-timeout",
    );
    let c = Host::new(&min);
    let name = unique("idletimeout");
    let held = c.acquire(&name, Mode::Exclusive, Wait::Now).unwrap();
    // Well past the role's 500 ms, short of the first check (5 s).
    std::thread::sleep(Duration::from_secs(2));
    assert!(!LockGuard::is_lost(&held), "{:?}", LockGuard::loss(&held));
    assert_eq!(holder_pids(c.key(&name)).len(), 1);
    release(held).unwrap();
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn check_intervals_past_tcp_keepalives_range_open_sessions() {
    // The URL takes check_interval=200ms, 10h or 30d; TCP keep-alive counts
    // whole seconds, from 1 to 32767, and TCP_USER_TIMEOUT milliseconds up
    // to i32::MAX.
    for params in [
        "check_interval=200ms",
        "check_interval=200ms&sslmode=disable",
        "check_interval=10h",
        "check_interval=30d",
    ] {
        let c = Host::new(&url_with(params));
        let name = unique("keepalive-range");
        let hold = c.acquire(&name, Mode::Exclusive, Wait::Now).unwrap();
        std::thread::sleep(Duration::from_secs(1));
        assert!(
            !LockGuard::is_lost(&hold),
            "{params}: {:?}",
            LockGuard::loss(&hold)
        );
        release(hold).unwrap();
    }
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn a_cancelled_check_does_not_lose_the_lock() {
    // pg_cancel_backend (an administrator's, or a tool's) that lands on a
    // held lock's periodic check ends the check with an error, and leaves
    // the session and its lock: the hold must not count that as a loss.
    let c = Host::new(&url_with(&format!(
        "check_interval=100ms&application_name={}",
        unique("cancelled-check")
    )));
    let name = unique("cancelled-check");
    let hold = c.acquire(&name, Mode::Exclusive, Wait::Now).unwrap();
    let pid = backend_pid(&name);
    // Cancel requests without pause for 3 s: about 30 checks, each hit.
    sql(&format!(
        "DO $$ DECLARE t timestamptz := clock_timestamp(); BEGIN \
         WHILE clock_timestamp() < t + interval '3 s' LOOP \
         PERFORM pg_cancel_backend({pid}); END LOOP; END $$"
    ));
    assert!(!LockGuard::is_lost(&hold), "{:?}", LockGuard::loss(&hold));
    assert_eq!(holder_pids(c.key(&name)), [pid]);
    release(hold).unwrap();
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn a_role_that_cannot_use_the_fencing_table_is_told_how_to_fix_it() {
    // lockutils_min may neither create tables in the schema nor write one
    // another role created: the error says what fencing=table needs, and
    // the lock taken before the token is released.
    let min = with_params(
        &min_url(),
        "fencing=table&application_name=lockutils-fencing-denied",
    );
    let c = Host::new(&min);
    let name = unique("fencing-denied");
    let e = c.acquire(&name, Mode::Exclusive, Wait::Now).unwrap_err();
    let shown = e.to_string();
    assert!(
        matches!(&e, Error::Backend { name: n, .. } if *n == name),
        "{e:?}"
    );
    assert!(
        shown.contains("GRANT SELECT, INSERT, UPDATE ON lockutils_fencing"),
        "{shown}"
    );
    assert!(
        reaches(c.key(&name), (0, 0), Duration::from_secs(5)),
        "the lock stayed held"
    );
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn a_waiter_whose_session_the_server_ends_is_told_to_try_again() {
    // pg_terminate_backend (or a restart) of a waiting session: the error
    // names the lock and says what happened and what to do.
    let c = coordinator();
    let name = unique("waiter-ended");
    let key = c.key(&name);
    let held = c.acquire(&name, Mode::Exclusive, Wait::Now).unwrap();
    let n = name.clone();
    let waiter = std::thread::spawn(move || {
        Host::new(&url_with("application_name=lockutils-waiter-ended"))
            .acquire(&n, Mode::Exclusive, Wait::Forever)
            .map(drop)
    });
    assert!(reaches(key, (1, 1), Duration::from_secs(10)), "no waiter");
    let ended = sql(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE NOT granted AND {}",
        pg_locks_where(key)
    ));
    assert_eq!(ended.len(), 1);
    let e = waiter.join().unwrap().unwrap_err();
    let shown = e.to_string();
    assert!(
        matches!(&e, Error::Backend { name: n, .. } if *n == name),
        "{e:?}"
    );
    assert!(shown.contains("try again"), "{shown}");
    release(held).unwrap();
}
