//! `lockutils --backend zookeeper://…`: the built binary against a real
//! ZooKeeper server, with the library (`lockutils-zookeeper`) in this
//! process as the other party.
//!
//! The tests that need a server are ignored in a plain `cargo test`; run
//! them with a server (`scripts/zookeeper.sh start`, then
//! `cargo test -p lockutils-cli -- --ignored`), or `bash .ci/run`. The
//! server is `LOCKUTILS_TEST_ZK` (default `127.0.0.1:2181`); when it does not
//! answer they fail, never skip. Each test works under a root of its own.
//!
//! Every child is killed (by its own pid) if a test ends while it runs.

use std::ffi::OsStr;
use std::fs;
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lockutils_core::{LockGuard, LockOptions, Registry};
use lockutils_zookeeper::{Coordinator, LockInfo, LossReason, ZkBackend};

mod common;
use common::*;

/// The ZooKeeper test fixtures of `lockutils-zookeeper`, shared by path.
#[path = "../../lockutils-zookeeper/tests/common/mod.rs"]
mod zk;
use zk::{server, Proxy};

/// `hold`: the lock was lost while CMD ran.
const LOST: i32 = 69;

// ---- helpers ----------------------------------------------------------------

fn unique() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A root of this test's own on the server under test: `(url, root)`.
fn root(test: &str) -> (String, String) {
    let root = format!("/lockutils-cli-test/{test}-{}", unique());
    (format!("zookeeper://{}{root}", server()), root)
}

/// Polls the lock until `pred` holds.
fn wait_lock(
    zk: &Coordinator,
    name: &str,
    what: &str,
    pred: impl Fn(&LockInfo) -> bool,
) -> LockInfo {
    wait_for(what, || {
        let info = zk.inspect(name).unwrap();
        pred(&info).then_some(info)
    })
}

fn holders(info: &LockInfo) -> usize {
    info.holders().count()
}

fn waiters(info: &LockInfo) -> usize {
    info.waiters().count()
}

/// Takes `name` (with `prefix`) on the coordinator's ZooKeeper through the
/// library's one lock API, as `identifier` when given; waits when `wait`.
fn lib_lock(
    zk: &Coordinator,
    name: &str,
    prefix: Option<&str>,
    identifier: Option<&str>,
    wait: bool,
) -> lockutils_core::Result<LockGuard<'static>> {
    static REGISTRY: std::sync::LazyLock<Registry> = std::sync::LazyLock::new(Registry::new);
    let mut backend = ZkBackend::from_coordinator(zk.clone());
    if let Some(id) = identifier {
        backend = backend.identifier(id);
    }
    let mut opts = LockOptions::new(name).registry(&REGISTRY).backend(&backend);
    if let Some(p) = prefix {
        opts = opts.prefix(p);
    }
    if wait {
        opts.lock()
    } else {
        opts.try_lock()
    }
}

/// Waits at most `within` for the guard's lock to be lost: the ZooKeeper
/// reason, or `None` if it was not lost in time.
fn wait_lost(guard: &LockGuard<'_>, within: Duration) -> Option<LossReason> {
    let until = Instant::now() + within;
    loop {
        if let Some(loss) = LockGuard::loss(guard) {
            return Some(LossReason::of(&loss).expect("a ZooKeeper loss"));
        }
        if Instant::now() >= until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A `lockutils hold` whose CMD runs until told to stop.
struct CliHolder {
    proc: Proc,
    stop: std::path::PathBuf,
}

impl CliHolder {
    /// Lets CMD end; returns `hold`'s exit code.
    fn stop(mut self) -> i32 {
        fs::write(&self.stop, "").unwrap();
        self.proc.code()
    }
}

/// `lockutils hold --backend URL NAME [extra…] -- CMD`, returned once CMD
/// runs (so the lock is held); CMD ends when [`CliHolder::stop`] says so.
fn cli_holder(url: &str, name: &str, extra: &[&str], dir: &Path) -> CliHolder {
    let id = unique();
    let (ready, stop) = (
        dir.join(format!("ready-{id}")),
        dir.join(format!("stop-{id}")),
    );
    let mut args: Vec<&OsStr> = vec!["hold".as_ref(), "--backend".as_ref(), url.as_ref()];
    args.extend(extra.iter().map(OsStr::new));
    args.extend([
        OsStr::new(name),
        "--".as_ref(),
        "sh".as_ref(),
        "-c".as_ref(),
        "touch \"$1\"; while [ ! -e \"$2\" ]; do sleep 0.05; done".as_ref(),
        "sh".as_ref(),
        ready.as_os_str(),
        stop.as_os_str(),
    ]);
    let proc = spawn_to(args, None);
    wait_for(&format!("{}", ready.display()), || {
        ready.exists().then_some(())
    });
    CliHolder { proc, stop }
}

// ---- hold -------------------------------------------------------------------

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn hold_excludes_a_concurrent_hold_and_deletes_its_node_before_exiting() {
    let (url, _) = root("hold-hold");
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    let hold = |secs: &str| {
        let mut args = vec![
            "hold".to_owned(),
            "--backend".to_owned(),
            url.clone(),
            "--prefix".to_owned(),
            "nova".to_owned(),
            "job".to_owned(),
            "--".to_owned(),
        ];
        args.extend(log_cmd(&log, secs));
        spawn_to(args, None)
    };
    let mut procs: Vec<Proc> = (0..3).map(|_| hold("0.3")).collect();
    for p in &mut procs {
        assert_eq!(p.code(), 0);
    }
    assert_eq!(assert_no_overlap(&log), 3);
    // `unlock()` before exiting: no node is left behind for the session
    // timeout, and the identity is the library's (`nova-job`).
    let zk = Coordinator::new(&url).unwrap();
    let info = zk.inspect("nova-job").unwrap();
    assert!(info.contenders.is_empty(), "{info:#?}");
}

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn hold_excludes_a_library_holder_both_ways() {
    let (url, _) = root("hold-lib");
    let zk = Coordinator::new(&url).unwrap();
    // The library holds: --no-wait and --timeout give the conflict code and
    // name the holder; CMD does not run.
    let guard = lib_lock(&zk, "db", Some("svc"), Some("library-holder"), true).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let ran = tmp.path().join("ran");
    let touch = ["--", "touch", ran.to_str().unwrap()];
    let base = ["hold", "--backend", url.as_str(), "--prefix", "svc", "db"];
    let out = lockutils(base.iter().chain(&["--no-wait"]).chain(&touch));
    assert_eq!(code(&out), CONFLICT, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("held exclusive by library-holder"), "{err}");
    assert!(err.contains("/svc-db on zookeeper://"), "{err}");
    let started = Instant::now();
    let out = lockutils(base.iter().chain(&["--timeout", "700ms"]).chain(&touch));
    let waited = started.elapsed();
    assert_eq!(code(&out), CONFLICT, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("timed out after 700ms"),
        "{}",
        stderr(&out)
    );
    assert!(waited >= Duration::from_millis(700), "{waited:?}");
    let out = lockutils(base.iter().chain(&["-n", "-E", "0"]).chain(&touch));
    assert_eq!(code(&out), 0);
    assert!(!ran.exists(), "CMD ran without the lock");
    // The timed-out and non-blocking attempts left no node behind.
    wait_lock(&zk, "svc-db", "only the library's node", |i| {
        i.contenders.len() == 1
    });
    LockGuard::unlock(guard).unwrap();

    // The command holds: the library cannot take it; once CMD ended, the
    // node is gone (deleted before `hold` exits), and the library gets it
    // without waiting.
    let holder = cli_holder(&url, "db", &["--prefix", "svc"], tmp.path());
    let e = lib_lock(&zk, "db", Some("svc"), None, false).unwrap_err();
    assert!(e.is_contention(), "{e}");
    assert_eq!(holder.stop(), 0);
    let guard = lib_lock(&zk, "db", Some("svc"), None, false).unwrap();
    LockGuard::unlock(guard).unwrap();
    let out = lockutils(base.iter().chain(&["--no-wait", "--", "true"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn a_waiting_hold_says_who_holds_and_withdraws_when_interrupted() {
    let (url, _) = root("hold-wait");
    let zk = Coordinator::new(&url).unwrap();
    let guard = lib_lock(&zk, "w", None, Some("the-holder"), true).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let err = tmp.path().join("stderr");
    let mut waiter = spawn_to(
        ["hold", "--backend", url.as_str(), "w", "--", "true"],
        Some(&err),
    );
    wait_for("the waiting message", || {
        fs::read_to_string(&err)
            .unwrap()
            .contains("waiting for lock \"w\"")
            .then_some(())
    });
    let text = fs::read_to_string(&err).unwrap();
    assert!(
        text.contains("held exclusive by the-holder (session 0x"),
        "{text}"
    );
    assert!(!text.contains("waiter"), "its own wait counted: {text}");
    assert_eq!(waiters(&zk.inspect("w").unwrap()), 1);
    // SIGTERM while waiting: 128+15, and the queue entry is gone at once
    // (not after the session timeout).
    // SAFETY: kill by the pid of our own child, not yet reaped.
    assert_eq!(
        unsafe { libc::kill(waiter.child.id() as i32, libc::SIGTERM) },
        0
    );
    assert_eq!(waiter.code(), 128 + libc::SIGTERM);
    let info = zk.inspect("w").unwrap();
    assert_eq!(info.contenders.len(), 1, "{info:#?}");
    assert!(fs::read_to_string(&err)
        .unwrap()
        .contains("interrupted while waiting"));
    LockGuard::unlock(guard).unwrap();
}

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn hold_terminates_cmd_when_the_lock_is_cleared() {
    let (url, _) = root("hold-cleared");
    let zk = Coordinator::new(&url).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (ready, termed, err) = (
        tmp.path().join("ready"),
        tmp.path().join("termed"),
        tmp.path().join("stderr"),
    );
    let script = "trap 'touch \"$2\"; exit 3' TERM; touch \"$1\"; sleep 30 & wait";
    let mut hold = spawn_to(
        [
            OsStr::new("hold"),
            "--backend".as_ref(),
            url.as_ref(),
            "job".as_ref(),
            "--".as_ref(),
            "sh".as_ref(),
            "-c".as_ref(),
            script.as_ref(),
            "sh".as_ref(),
            ready.as_ref(),
            termed.as_ref(),
        ],
        Some(&err),
    );
    wait_for("CMD to run", || ready.exists().then_some(()));
    let out = lockutils(["remove", "--backend", url.as_str(), "--force", "job"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(hold.code(), LOST);
    assert!(termed.exists(), "CMD did not get SIGTERM");
    let text = fs::read_to_string(&err).unwrap();
    assert!(text.contains("lost lock \"job\""), "{text}");
    assert!(text.contains("lock cleared"), "{text}");
    assert!(text.contains("SIGTERM"), "{text}");
    assert!(zk.inspect("job").unwrap().contenders.is_empty());
}

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn hold_terminates_cmd_when_the_session_is_lost() {
    let (_, root) = root("hold-partition");
    let proxy = Proxy::start(&server());
    let url = format!(
        "zookeeper://127.0.0.1:{}{root}?session_timeout=2",
        proxy.port
    );
    let tmp = tempfile::tempdir().unwrap();
    let (ready, termed, err) = (
        tmp.path().join("ready"),
        tmp.path().join("termed"),
        tmp.path().join("stderr"),
    );
    let script = "trap 'touch \"$2\"; exit 3' TERM; touch \"$1\"; sleep 30 & wait";
    let mut hold = spawn_to(
        [
            OsStr::new("hold"),
            "--backend".as_ref(),
            url.as_ref(),
            "part".as_ref(),
            "--".as_ref(),
            "sh".as_ref(),
            "-c".as_ref(),
            script.as_ref(),
            "sh".as_ref(),
            ready.as_ref(),
            termed.as_ref(),
        ],
        Some(&err),
    );
    wait_for("CMD to run", || ready.exists().then_some(()));
    let cut_at = Instant::now();
    proxy.partition(true);
    assert_eq!(hold.code(), LOST);
    let noticed = cut_at.elapsed();
    assert!(termed.exists(), "CMD did not get SIGTERM");
    let text = fs::read_to_string(&err).unwrap();
    assert!(text.contains("lost lock \"part\""), "{text}");
    assert!(text.contains("SIGTERM"), "{text}");
    // Within about the session timeout (2 s).
    assert!(noticed < Duration::from_secs(4), "{noticed:?}");
    // The server does expire it: the lock is free again for others.
    let zk = Coordinator::new(&format!("zookeeper://{}{root}", server())).unwrap();
    wait_lock(&zk, "part", "the session to expire", |i| {
        i.contenders.is_empty()
    });
}

// ---- list, show ---------------------------------------------------------------

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn list_shows_a_held_lock_with_its_holder_and_waiter() {
    let (url, root) = root("list");
    let zk = Coordinator::new(&url).unwrap();
    // An empty root: nothing to list.
    let out = lockutils(["list", "--backend", url.as_str(), "--json"]);
    assert_eq!(json(&out), serde_json::json!([]));
    let tmp = tempfile::tempdir().unwrap();
    let _holder = cli_holder(&url, "busy", &[], tmp.path());
    let _waiter = spawn_to(
        ["hold", "--backend", url.as_str(), "busy", "--", "true"],
        None,
    );
    wait_lock(&zk, "busy", "a waiter", |i| waiters(i) == 1);
    // A free lock: a node without contenders.
    lib_lock(&zk, "idle", None, None, true)
        .map(LockGuard::unlock)
        .unwrap()
        .unwrap();

    let out = lockutils(["list", "--backend", url.as_str()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{text}");
    let busy = lines.iter().find(|l| l.starts_with("busy ")).expect(&text);
    let cols: Vec<&str> = busy.split("  ").filter(|c| !c.is_empty()).collect();
    assert_eq!(cols[1].trim(), "held exclusive", "{text}");
    assert_eq!(cols[2].trim(), "1", "{text}");
    assert!(cols[3].trim().starts_with('≤'), "{text}");
    assert!(busy.contains("lockutils hold sh"), "{text}");
    let idle = lines.iter().find(|l| l.starts_with("idle ")).expect(&text);
    assert!(idle.contains(" free "), "{text}");

    let list = json(&lockutils(["list", "--backend", url.as_str(), "--json"]));
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    let busy = list.iter().find(|l| l["name"] == "busy").unwrap();
    assert_eq!(busy["backend"], "zookeeper");
    assert_eq!(busy["path"], format!("{root}/busy"));
    assert_eq!(busy["state"], "held_exclusive");
    assert_eq!(busy["holder_count"], 1);
    assert_eq!(busy["waiter_count"], 1);
    assert_eq!(busy["exists"], true);
    assert!(busy["error"].is_null());
    let data = busy["holders"][0]["data"].as_str().unwrap();
    assert!(data.ends_with("lockutils hold sh"), "{data}");
    assert!(busy["waiters"][0]["data"]
        .as_str()
        .unwrap()
        .ends_with("lockutils hold true"));
    let idle = list.iter().find(|l| l["name"] == "idle").unwrap();
    assert_eq!(idle["state"], "free");
    assert_eq!(idle["holder_count"], 0);
    assert_eq!(idle["holders"], serde_json::json!([]));
}

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn show_shows_holder_and_waiter_with_modes_and_tokens() {
    let (url, root) = root("show");
    let zk = Coordinator::new(&url).unwrap();
    let guard = lib_lock(&zk, "instance-1", Some("nova"), Some("writer-1"), true).unwrap();
    let _reader = spawn_to(
        [
            "hold",
            "--backend",
            url.as_str(),
            "--shared",
            "--prefix",
            "nova",
            "instance-1",
            "--",
            "true",
        ],
        None,
    );
    wait_lock(&zk, "nova-instance-1", "a waiter", |i| waiters(i) == 1);

    let out = lockutils([
        "show",
        "--backend",
        url.as_str(),
        "--prefix",
        "nova",
        "instance-1",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("lock      nova-instance-1\n"), "{text}");
    assert!(
        text.contains(&format!("location  {root}/nova-instance-1\n")),
        "{text}"
    );
    assert!(text.contains("state     held exclusive\n"), "{text}");
    let holder = text
        .lines()
        .find(|l| l.starts_with("holder "))
        .expect(&text);
    assert!(holder.contains("  exclusive  write-"), "{holder}");
    assert!(
        holder.contains(&format!(
            "  token {}  ",
            LockGuard::fencing_token(&guard).unwrap()
        )),
        "{holder}"
    );
    assert!(holder.contains("  session 0x"), "{holder}");
    assert!(holder.contains(" ago  data \"writer-1\""), "{holder}");
    let waiter = text
        .lines()
        .find(|l| l.starts_with("waiter "))
        .expect(&text);
    assert!(waiter.contains("  shared  read-"), "{waiter}");
    assert!(waiter.contains("lockutils hold true"), "{waiter}");

    // The same by file name, as `list` prints it, and as JSON.
    let v = json(&lockutils([
        "show",
        "--backend",
        url.as_str(),
        "nova-instance-1",
        "--json",
    ]));
    assert_eq!(v["name"], "nova-instance-1");
    assert_eq!(v["state"], "held_exclusive");
    let (h, w) = (&v["holders"][0], &v["waiters"][0]);
    assert_eq!(h["mode"], "exclusive");
    assert_eq!(h["kind"], "native");
    assert_eq!(h["data"], "writer-1");
    assert_eq!(
        h["fencing_token"],
        LockGuard::fencing_token(&guard).unwrap()
    );
    assert_eq!(h["revoke_requested"], false);
    assert_eq!(w["mode"], "shared");
    assert!(w["fencing_token"].as_u64().unwrap() > LockGuard::fencing_token(&guard).unwrap());
    assert!(w["sequence"].as_i64().unwrap() > h["sequence"].as_i64().unwrap());
    assert!(h["session_id"].as_str().unwrap().starts_with("0x"));
    assert_ne!(h["session_id"], w["session_id"]);
    assert!(h["since"].as_str().unwrap().ends_with('Z'));
    assert!(h["since_unix_ms"].as_i64().unwrap() > 1_600_000_000_000);
    LockGuard::unlock(guard).unwrap();

    // A lock nobody holds or waits for: free, exit 0; its node may not exist.
    let v = json(&lockutils([
        "show",
        "--backend",
        url.as_str(),
        "nobody",
        "--json",
    ]));
    assert_eq!(v["state"], "free");
    assert_eq!(v["exists"], false);
}

// ---- remove, clean ------------------------------------------------------------

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn remove_refuses_a_held_lock_and_clears_it_with_force() {
    let (url, root) = root("remove");
    let zk = Coordinator::new(&url).unwrap();
    let guard = lib_lock(&zk, "stuck", None, Some("stuck-holder"), true).unwrap();
    lib_lock(&zk, "idle", None, None, true)
        .map(LockGuard::unlock)
        .unwrap()
        .unwrap();

    let out = lockutils([
        "remove",
        "--backend",
        url.as_str(),
        "stuck",
        "idle",
        "missing",
    ]);
    assert_eq!(code(&out), CONFLICT, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("removed idle ({root}/idle)")),
        "{text}"
    );
    assert!(
        text.contains("skipped missing: nothing to remove"),
        "{text}"
    );
    assert!(
        text.contains("skipped stuck: held exclusive by stuck-holder (session 0x"),
        "{text}"
    );
    assert!(text.contains("removed only with --force"), "{text}");
    assert!(!LockGuard::is_lost(&guard));
    assert_eq!(holders(&zk.inspect("stuck").unwrap()), 1);
    let names: Vec<String> = zk.locks().unwrap().into_iter().map(|l| l.name).collect();
    assert_eq!(names, ["stuck"]);

    let out = lockutils(["remove", "--backend", url.as_str(), "--force", "stuck"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "removed stuck ({root}/stuck): cleared 1 holder or waiter"
        )),
        "{text}"
    );
    assert!(text.contains("holder  exclusive  write-"), "{text}");
    assert!(text.contains("data \"stuck-holder\""), "{text}");
    // The holder was not asked; its guard reports the loss.
    assert_eq!(wait_lost(&guard, PATIENCE), Some(LossReason::NodeDeleted));
    assert!(zk.locks().unwrap().is_empty());
    drop(guard);
}

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn clean_removes_free_lock_nodes_only() {
    let (url, _) = root("clean");
    let zk = Coordinator::new(&url).unwrap();
    for name in ["a", "b"] {
        lib_lock(&zk, name, None, None, true)
            .map(LockGuard::unlock)
            .unwrap()
            .unwrap();
    }
    let guard = lib_lock(&zk, "held", None, Some("keeper"), true).unwrap();
    let out = lockutils(["clean", "--backend", url.as_str(), "--dry-run"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("would remove 2, skipped 1"),
        "{}",
        stdout(&out)
    );
    assert_eq!(zk.locks().unwrap().len(), 3);
    let out = lockutils(["clean", "--backend", url.as_str()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("skipped held: held exclusive by keeper"),
        "{text}"
    );
    assert!(text.contains("removed 2, skipped 1"), "{text}");
    let names: Vec<String> = zk.locks().unwrap().into_iter().map(|l| l.name).collect();
    assert_eq!(names, ["held"]);
    assert!(!LockGuard::is_lost(&guard));
    LockGuard::unlock(guard).unwrap();
    // --older-than needs node ages, which the ZooKeeper backend has not.
    let out = lockutils(["clean", "--backend", url.as_str(), "--older-than", "1d"]);
    assert_eq!(code(&out), 2);
}

/// In the kazoo layout a name's `/` nests the lock node, as tooz does
/// (`vol/x` is the node `vol/x`, where the lock file would be `vol_x`), and
/// `list` names it so: `show`, `remove --force` and a busy `hold` address
/// that node too. They used to look at `vol_x`: the held lock was shown
/// free, `hold` said "it is free", and `remove --force` cleared nothing.
#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn kazoo_nested_names_are_shown_and_cleared_where_they_are() {
    let (url, root) = root("nested");
    let url = format!("{url}?layout=kazoo");
    let zk = Coordinator::new(&url).unwrap();
    let guard = lib_lock(&zk, "vol/x", None, Some("keeper"), true).unwrap();
    let out = lockutils(["show", "--backend", url.as_str(), "vol/x", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["holders"][0]["data"], "keeper", "{v}");
    let out = lockutils([
        "hold",
        "--backend",
        url.as_str(),
        "-n",
        "vol/x",
        "--",
        "true",
    ]);
    assert_eq!(code(&out), CONFLICT, "{}", stderr(&out));
    let said = stderr(&out);
    assert!(
        said.contains(&format!("{root}/vol/x")) && said.contains("keeper"),
        "{said}"
    );
    let out = lockutils(["remove", "--backend", url.as_str(), "--force", "vol/x"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("cleared 1 holder"),
        "{}",
        stdout(&out)
    );
    assert_eq!(wait_lost(&guard, PATIENCE), Some(LossReason::NodeDeleted));
}

// ---- URLs, credentials --------------------------------------------------------

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn credentials_are_never_printed() {
    let (_, root) = root("secret");
    let url = format!("zookeeper://svc:topsecret@{}{root}", server());
    let zk = Coordinator::new(&url).unwrap();
    let guard = lib_lock(&zk, "x", None, Some("other"), true).unwrap();
    let shown = format!("zookeeper://svc@{}{root}", server());
    let mut outputs = vec![
        lockutils(["list", "--backend", url.as_str()]),
        lockutils(["list", "--backend", url.as_str(), "--json"]),
        lockutils(["show", "--backend", url.as_str(), "x"]),
        lockutils(["show", "--backend", url.as_str(), "x", "--json"]),
        lockutils(["hold", "--backend", url.as_str(), "-n", "x", "--", "true"]),
        lockutils(["remove", "--backend", url.as_str(), "x"]),
    ];
    let v = json(&outputs[3]);
    assert_eq!(v["url"], shown.as_str());
    assert_eq!(code(&outputs[4]), CONFLICT);
    assert!(
        stderr(&outputs[4]).contains(&shown),
        "{}",
        stderr(&outputs[4])
    );
    // `--backend zookeeper`: the URL from the environment, out of the
    // process list.
    let from_env = lockutils_env(
        ["show", "--backend", "zookeeper", "x", "--json"],
        &[("LOCKUTILS_COORDINATION_URL", url.as_str())],
    );
    assert_eq!(json(&from_env)["holders"][0]["data"], "other");
    outputs.push(from_env);
    // A malformed URL with a password.
    outputs.push(lockutils([
        "list",
        "--backend",
        "zookeeper://svc:topsecret@127.0.0.1:port/x",
    ]));
    for out in &outputs {
        let all = format!("{}{}", stdout(out), stderr(out));
        assert!(!all.contains("topsecret"), "{all}");
    }
    LockGuard::unlock(guard).unwrap();
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// No server needed: runs in a plain `cargo test`.
#[test]
fn bad_and_unreachable_urls_fail_fast_with_one_line() {
    // Malformed: a usage error at once, naming the URL without the password.
    let started = Instant::now();
    let out = lockutils([
        "show",
        "--backend",
        "zookeeper://svc:topsecret@zk1:port/app",
        "x",
    ]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(
        err.starts_with("error: invalid --backend zookeeper://svc:***@zk1:port/app: "),
        "{err}"
    );
    assert!(err.contains("expected zookeeper://"), "{err}");
    assert!(!err.contains("topsecret"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));

    // Unreachable: exit 1 within the URL's connect_timeout, one line naming
    // the URL and what to check, for every subcommand.
    let url = format!(
        "zookeeper://svc:topsecret@127.0.0.1:{}/x?connect_timeout=1s",
        closed_port()
    );
    for args in [
        vec!["list", "--backend", url.as_str()],
        vec!["show", "--backend", url.as_str(), "x"],
        vec!["remove", "--backend", url.as_str(), "x"],
        vec!["clean", "--backend", url.as_str()],
        vec!["hold", "--backend", url.as_str(), "x", "--", "true"],
    ] {
        let started = Instant::now();
        let out = lockutils(&args);
        let took = started.elapsed();
        assert_eq!(code(&out), 1, "{args:?}: {}", stderr(&out));
        assert!(took < Duration::from_secs(4), "{args:?} took {took:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("lockutils: "), "{err}");
        assert!(err.contains("zookeeper://svc@127.0.0.1:"), "{err}");
        assert!(err.contains("check that ZooKeeper runs"), "{err}");
        assert!(!err.contains("topsecret"), "{err}");
        assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    }

    // `--lock-path` means nothing for ZooKeeper locks.
    let out = lockutils([
        "list",
        "--backend",
        "zookeeper://127.0.0.1:1/x",
        "--lock-path",
        "/tmp",
    ]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("--lock-path /tmp is for lock files"));
}
