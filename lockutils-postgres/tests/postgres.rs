//! Against a real PostgreSQL server: `scripts/postgres.sh start`, then
//! `LOCKUTILS_TEST_POSTGRES_URL=$(scripts/postgres.sh url)
//!  LOCKUTILS_TEST_POSTGRES_CA=$PG_DIR/ca.crt LOCKUTILS_TEST_TOOZ=$(scripts/tooz-peer.sh)
//!  cargo test -p lockutils-postgres -- --ignored` (scripts/ci-postgres.sh does all that).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lockutils_postgres::{
    Error, Layout, LockKey, LossReason, Mode, PgCoordinator, PgLockOptions, PgUrl, Wait,
};

fn url() -> String {
    std::env::var("LOCKUTILS_TEST_POSTGRES_URL").expect(
        "LOCKUTILS_TEST_POSTGRES_URL is not set: run scripts/postgres.sh start and export \
         LOCKUTILS_TEST_POSTGRES_URL=$(scripts/postgres.sh url)",
    )
}

/// The URL with extra parameters.
fn url_with(params: &str) -> String {
    let u = url();
    let sep = if u.contains('?') { '&' } else { '?' };
    format!("{u}{sep}{params}")
}

/// A name no other test (or earlier run) uses.
fn unique(what: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{what}-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// Runs SQL on a plain session of its own; rows as text.
fn sql(query: &str) -> Vec<Vec<Option<String>>> {
    sql_as(&url(), query)
}

/// The URL of `lockutils_min`, the role with LOGIN and CONNECT only.
fn min_url() -> String {
    url().replacen("lockutils:lockutils@", "lockutils_min:lockutils_min@", 1)
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

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn coordinator() -> PgCoordinator {
    PgCoordinator::new(&url()).unwrap()
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
    let e = PgCoordinator::new(&wrong)
        .unwrap()
        .acquire(&name, Mode::Exclusive, Wait::Now)
        .unwrap_err();
    let shown = e.to_string();
    assert!(matches!(e, Error::Backend { .. }), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("password"), "{shown}");
    assert!(!format!("{e:?}").contains("hunter2"));
    // From PGPASSWORD (this test alone touches these variables).
    std::env::set_var("PGPASSWORD", "lockutils");
    let via_env = PgCoordinator::new(&bare).unwrap();
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
    let via_file = PgCoordinator::new(&bare).unwrap();
    std::env::remove_var("PGPASSFILE");
    drop(via_file.acquire(&name, Mode::Exclusive, Wait::Now).unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!format!("{via_file:?}").contains("lockutils:lockutils"));
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
    x.release().unwrap();
    let r1 = a.acquire(&name, Mode::Shared, Wait::Now).unwrap();
    let r2 = b.acquire(&name, Mode::Shared, Wait::Now).unwrap();
    assert_eq!(sessions_on(a.key(&name)), (2, 0));
    assert!(matches!(
        b.acquire(&name, Mode::Exclusive, Wait::Now),
        Err(Error::WouldBlock { .. })
    ));
    r1.release().unwrap();
    r2.release().unwrap();
    assert_eq!(sessions_on(a.key(&name)), (0, 0));
    b.acquire(&name, Mode::Exclusive, Wait::Now)
        .unwrap()
        .release()
        .unwrap();
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn names_map_to_their_documented_64_bit_keys() {
    let c = coordinator();
    let name = unique("key");
    let hold = c.acquire(&name, Mode::Exclusive, Wait::Now).unwrap();
    let key = Layout::Native.key(&name);
    assert_eq!(hold.key(), key);
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
        Some(hold.backend_pid().to_string().as_str())
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
                    let g = PgLockOptions::new(name).url(u).lock().unwrap();
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                    // The other threads wait in memory, not on the server.
                    let (held, waiting) = sessions_on(key);
                    assert_eq!((held, waiting), (1, 0));
                    checks.fetch_add(1, Ordering::SeqCst);
                    inside.fetch_sub(1, Ordering::SeqCst);
                    g.unlock().unwrap();
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
    let e = PgLockOptions::new(&name).url(&u).try_lock().unwrap_err();
    assert!(matches!(e, Error::WouldBlock { .. }), "{e}");
    let start = Instant::now();
    let e = PgLockOptions::new(&name)
        .url(&u)
        .timeout(Duration::from_millis(400))
        .lock()
        .unwrap_err();
    assert!(
        matches!(e, Error::Timeout { timeout, .. } if timeout == Duration::from_millis(400)),
        "{e}"
    );
    assert!(start.elapsed() >= Duration::from_millis(400));
    // Checked at once: the server ended the wait before the error returned.
    assert_eq!(sessions_on(key), (1, 0));
    assert_eq!(waiting_statements_on(key), 0);
    // The raw API too, with a deadline.
    let e = coordinator()
        .acquire(
            &name,
            Mode::Shared,
            Wait::timeout(Duration::from_millis(200)),
        )
        .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert_eq!(sessions_on(key), (1, 0));
    held.release().unwrap();
    assert_eq!(sessions_on(key), (0, 0));
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn one_deadline_covers_the_in_process_wait_too() {
    let u = url();
    let name = unique("deadline");
    let g = PgLockOptions::new(&name).url(&u).lock().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            let start = Instant::now();
            let e = PgLockOptions::new(&name)
                .url(&u)
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
        // Through the options (in-process layer + server) ...
        let fut = PgLockOptions::new(&name).url(&u).lock_async();
        assert!(tokio::time::timeout(Duration::from_millis(300), fut)
            .await
            .is_err());
        // ... and the raw API, both dropped while waiting on the server.
        let fut = raw.acquire_async(&name, Mode::Exclusive, Wait::Forever);
        assert!(tokio::time::timeout(Duration::from_millis(300), fut)
            .await
            .is_err());
    });
    wait_until("waiting queries cancelled", Duration::from_secs(5), || {
        waiting_statements_on(key) == 0 && sessions_on(key) == (1, 0)
    });
    held.release().unwrap();
    // Nobody obtained the lock behind our back: it is free now.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(sessions_on(key), (0, 0));
    coordinator()
        .acquire(&name, Mode::Exclusive, Wait::Now)
        .unwrap()
        .release()
        .unwrap();
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn async_wait_does_not_block_the_executor() {
    let holder = coordinator();
    let name = unique("async");
    let held = holder.acquire(&name, Mode::Exclusive, Wait::Now).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let u = url();
    let ticks = rt.block_on(async {
        let ticks = Arc::new(AtomicUsize::new(0));
        let t = ticks.clone();
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                t.fetch_add(1, Ordering::SeqCst);
            }
        });
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            held.release().unwrap();
        });
        let g = PgLockOptions::new(&name)
            .url(&u)
            .lock_async()
            .await
            .unwrap();
        let n = ticks.load(Ordering::SeqCst);
        g.unlock().await.unwrap();
        ticker.abort();
        release.join().unwrap();
        n
    });
    // The single executor thread kept running the ticker during the wait.
    assert!(
        ticks >= 10,
        "ticker ran only {ticks} times during a 500 ms wait"
    );
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn terminated_session_is_reported_lost() {
    let c = PgCoordinator::new(&url_with("check_interval=1")).unwrap();
    let name = unique("loss");
    let hold = c.acquire(&name, Mode::Exclusive, Wait::Now).unwrap();
    assert!(!hold.is_lost());
    let pid = hold.backend_pid();
    let rows = sql(&format!("SELECT pg_terminate_backend({pid})"));
    assert_eq!(rows[0][0].as_deref(), Some("t"));
    let start = Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let reason = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(3), hold.lost()).await })
        .expect("loss not reported within 3 s (bound: 2 × check_interval)");
    assert_eq!(reason, Some(LossReason::Terminated));
    assert!(start.elapsed() < Duration::from_secs(3));
    assert!(hold.is_lost());
    assert_eq!(hold.loss(), Some(LossReason::Terminated));
    let e = hold.release().unwrap_err();
    assert!(e.to_string().contains("lost"), "{e}");
    // The lock died with its session.
    coordinator()
        .acquire(&name, Mode::Exclusive, Wait::Now)
        .unwrap()
        .release()
        .unwrap();
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn guard_reports_loss_through_the_options_api() {
    let u = url_with("check_interval=1");
    let name = unique("guardloss");
    let g = PgLockOptions::new(&name).url(&u).lock().unwrap();
    sql(&format!("SELECT pg_terminate_backend({})", g.backend_pid()));
    wait_until("guard reports loss", Duration::from_secs(3), || g.is_lost());
    assert_eq!(g.loss(), Some(LossReason::Terminated));
    assert!(g.unlock().is_err());
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn fencing_tokens_increase_with_the_table_and_are_absent_without() {
    let name = unique("fence");
    let plain = coordinator()
        .acquire(&name, Mode::Exclusive, Wait::Now)
        .unwrap();
    assert_eq!(plain.fencing_token(), None);
    plain.release().unwrap();
    let c = PgCoordinator::new(&url_with("fencing=table")).unwrap();
    let other = PgCoordinator::new(&url_with("fencing=table")).unwrap();
    let mut last = 0;
    for i in 0..4 {
        let via = if i % 2 == 0 { &c } else { &other };
        let h = via.acquire(&name, Mode::Exclusive, Wait::Now).unwrap();
        let t = h.fencing_token().unwrap();
        assert!(t > last, "token {t} after {last}");
        last = t;
        h.release().unwrap();
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
        PgLockOptions::new(&name).url(&u).try_lock(),
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
    let g = PgLockOptions::new(&name)
        .url(&u)
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
    g.unlock().unwrap();
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
    let g = PgLockOptions::new(&name).url(&u).lock().unwrap();
    assert_eq!(g.key(), Layout::Tooz.key(&name));
    assert_eq!(tooz_try(&name), "busy");
    g.unlock().unwrap();
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
        PgLockOptions::new(&name).url(&u).try_lock(),
        Err(Error::WouldBlock { .. })
    ));
    // The native layout does not see tooz's key.
    PgLockOptions::new(&name)
        .url(&url())
        .try_lock()
        .unwrap()
        .unlock()
        .unwrap();
    peer.stdin.as_mut().unwrap().write_all(b"").unwrap();
    drop(peer.stdin.take());
    let g = PgLockOptions::new(&name)
        .url(&u)
        .timeout(Duration::from_secs(10))
        .lock()
        .unwrap();
    assert!(peer.wait().unwrap().success());
    g.unlock().unwrap();
    // tooz has exclusive locks only; so does its layout.
    let e = PgLockOptions::new(&name)
        .url(&u)
        .shared()
        .lock()
        .unwrap_err();
    assert!(matches!(e, Error::InvalidOptions { .. }), "{e}");
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn admin_lists_holders_and_waiters_with_pids_names_and_times() {
    let c = coordinator();
    let name = unique("admin");
    let held = c.acquire(&name, Mode::Exclusive, Wait::Now).unwrap();
    let waiter = coordinator();
    let n2 = name.clone();
    let t = std::thread::spawn(move || {
        waiter
            .acquire(&n2, Mode::Shared, Wait::timeout(Duration::from_secs(10)))
            .unwrap()
            .release()
            .unwrap()
    });
    wait_until(
        "waiter queued on the server",
        Duration::from_secs(5),
        || sessions_on(c.key(&name)).1 == 1,
    );
    let info = c.show(&name).unwrap();
    assert_eq!(info.key, c.key(&name));
    assert_eq!(info.holders.len(), 1);
    assert_eq!(info.holders[0].pid, held.backend_pid());
    assert_eq!(info.holders[0].mode, Mode::Exclusive);
    assert_eq!(info.holders[0].application_name, "lockutils");
    assert!(info.holders[0].since.is_some());
    assert_eq!(info.waiters.len(), 1);
    assert_eq!(info.waiters[0].mode, Mode::Shared);
    assert!(info.waiters[0].since.is_some());
    let listed = c.list().unwrap();
    let mine = listed.iter().find(|l| l.key == info.key).unwrap();
    assert_eq!(mine.name.as_deref(), Some(name.as_str()));
    assert_eq!(
        c.remove_if_free(&name).unwrap(),
        lockutils_postgres::RemoveOutcome::Held
    );
    held.release().unwrap();
    t.join().unwrap();
    assert!(c.show(&name).unwrap().is_free());
    assert_eq!(
        c.remove_if_free(&name).unwrap(),
        lockutils_postgres::RemoveOutcome::Free
    );
    // Ending the holders frees the lock and makes them report the loss.
    let h = c.acquire(&name, Mode::Exclusive, Wait::Now).unwrap();
    assert_eq!(c.terminate_holders(&name).unwrap(), vec![h.backend_pid()]);
    wait_until("holder reports loss", Duration::from_secs(5), || {
        h.is_lost()
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
        let c = PgCoordinator::new(&url_with(&params)).unwrap();
        let h = c.acquire(&name, Mode::Exclusive, Wait::Now).unwrap();
        assert_eq!(ssl_of(h.backend_pid()).as_deref(), Some(tls), "{params}");
        h.release().unwrap();
    }
    // verify-full checks the name: the certificate is for localhost.
    let by_name = url_with(&format!("sslmode=verify-full&sslrootcert={ca}")).replacen(
        "@127.0.0.1:",
        "@localhost:",
        1,
    );
    let h = PgCoordinator::new(&by_name)
        .unwrap()
        .acquire(&name, Mode::Exclusive, Wait::Now)
        .unwrap();
    assert_eq!(ssl_of(h.backend_pid()).as_deref(), Some("t"));
    h.release().unwrap();
    // Without the CA, the self-signed certificate is refused.
    let e = PgCoordinator::new(&url_with("sslmode=verify-full"))
        .unwrap()
        .acquire(&name, Mode::Exclusive, Wait::Now)
        .unwrap_err();
    assert!(matches!(e, Error::Backend { .. }), "{e}");
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
    let c = PgCoordinator::new(&min).unwrap();
    let name = unique("min");
    let x = c.acquire(&name, Mode::Exclusive, Wait::Now).unwrap();
    x.release().unwrap();
    let s = c.acquire(&name, Mode::Shared, Wait::Now).unwrap();
    // Its own sessions are visible to it in the admin view.
    assert_eq!(c.show(&name).unwrap().holders[0].pid, s.backend_pid());
    s.release().unwrap();
}

#[test]
#[ignore = "needs PostgreSQL on this host: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn unresponsive_session_is_reported_lost_within_two_check_intervals() {
    // A server process that stops answering (SIGSTOP: as a hung host or a
    // silent partition looks from the client) is detected by the periodic
    // check, not by the socket, which stays open.
    let c = PgCoordinator::new(&url_with("check_interval=1")).unwrap();
    let name = unique("hang");
    let hold = c.acquire(&name, Mode::Exclusive, Wait::Now).unwrap();
    let pid = hold.backend_pid();
    // SAFETY: kill(2) takes plain integers; the pid is the server process
    // serving our own session, which lives until we release it.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    let start = Instant::now();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_until("loss reported", Duration::from_secs(4), || hold.is_lost());
    }));
    let took = start.elapsed();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    result.unwrap();
    assert_eq!(hold.loss(), Some(LossReason::CheckTimedOut));
    // Bound: 2 × check_interval, plus slack for a loaded machine.
    assert!(took <= Duration::from_secs(3), "reported after {took:?}");
    assert!(hold.release().is_err());
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn an_untimed_wait_outlasts_the_roles_own_lock_timeout() {
    // A role default of 100 ms would end a plain `pg_advisory_lock` wait;
    // an acquisition without timeout must wait on regardless.
    sql_as(
        &min_url(),
        "ALTER ROLE CURRENT_USER SET lock_timeout = '100ms'",
    );
    let name = unique("roletimeout");
    let key = Layout::Native.key(&name);
    let held = coordinator()
        .acquire(&name, Mode::Exclusive, Wait::Now)
        .unwrap();
    let waiter = PgCoordinator::new(&min_url()).unwrap();
    let n = name.clone();
    let t = std::thread::spawn(move || {
        waiter
            .acquire(&n, Mode::Exclusive, Wait::Forever)
            .map(|h| h.release().unwrap())
    });
    let waiting = |limit| {
        std::panic::catch_unwind(|| {
            wait_until("the waiter waits on the server", limit, || {
                sessions_on(key) == (1, 1)
            })
        })
    };
    let queued = waiting(Duration::from_secs(10));
    // Well past the role's 100 ms, the waiter is still (or again) queued.
    std::thread::sleep(Duration::from_secs(1));
    let still = waiting(Duration::from_secs(2));
    held.release().unwrap();
    let result = t.join().unwrap();
    sql_as(&min_url(), "ALTER ROLE CURRENT_USER RESET lock_timeout");
    assert!(queued.is_ok() && still.is_ok(), "the waiter gave up");
    result.unwrap();
}

#[test]
fn an_unreachable_server_is_a_typed_error_naming_the_url_without_password() {
    // Nothing listens on port 1; no server needed.
    let c =
        PgCoordinator::new("postgresql://svc:hunter2@127.0.0.1:1/app?connect_timeout=2").unwrap();
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

/// The `lockutils-pg-holder` example, which `cargo test` builds beside the
/// test (target/{profile}/examples/).
fn holder_bin() -> std::path::PathBuf {
    // target/{profile}/deps/{test}-{hash} -> target/{profile}/examples/
    let exe = std::env::current_exe().unwrap();
    let holder = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/lockutils-pg-holder");
    assert!(
        holder.is_file(),
        "{} is missing: run `cargo build -p lockutils-postgres --example lockutils-pg-holder` \
         (add --release for the bench)",
        holder.display()
    );
    holder
}
