//! The `lockutils` binary, driven as operators and scripts drive it: real
//! processes, real lock files, real signals.
//!
//! Every child is wrapped in [`Proc`], which kills it by its own pid if the
//! test ends (or fails) while it still runs. Waits are bounded and poll for a
//! fact (a ready file, a waiter the kernel lists) instead of sleeping.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lockutils_core::LockOptions;
use serde_json::Value;

mod common;
use common::*;

fn wait_for_file(path: &Path) {
    wait_for(&format!("{}", path.display()), || {
        path.exists().then_some(())
    });
}

/// `lockutils hold --lock-path DIR NAME -- sh -c 'touch READY; exec sleep 30'`,
/// returned once it holds the lock.
fn holder(dir: &Path, name: &str, extra: &[&str]) -> Proc {
    let ready = dir.join(format!(".ready-{name}-{}", unique()));
    let mut args: Vec<&OsStr> = vec!["hold".as_ref(), "--lock-path".as_ref(), dir.as_ref()];
    args.extend(extra.iter().map(OsStr::new));
    args.extend([
        OsStr::new(name),
        "--".as_ref(),
        "sh".as_ref(),
        "-c".as_ref(),
        "touch \"$1\"; exec sleep 30".as_ref(),
        "sh".as_ref(),
        ready.as_os_str(),
    ]);
    let p = spawn(args);
    wait_for_file(&ready);
    fs::remove_file(&ready).unwrap();
    p
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn my_pid() -> i64 {
    i64::from(std::process::id())
}

fn list_json(dir: &Path) -> Vec<Value> {
    let out = lockutils([
        OsStr::new("list"),
        "--json".as_ref(),
        "--lock-path".as_ref(),
        dir.as_ref(),
    ]);
    json(&out).as_array().expect("an array").clone()
}

fn entry<'a>(list: &'a [Value], name: &str) -> &'a Value {
    list.iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list:?}"))
}

fn holder_pids(lock: &Value) -> Vec<i64> {
    lock["holders"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["pid"].as_i64())
        .collect()
}

/// `holder_count` is `n`, or `null`: the kernel's lock table is not used
/// while it changes too fast to be read consistently (a busy machine).
fn assert_count(lock: &Value, n: u64) {
    let c = &lock["holder_count"];
    assert!(
        c == n || c.is_null(),
        "holder_count {c}, expected {n}: {lock}"
    );
}

/// Creates a free lock file through the library.
fn free_lock(dir: &Path, name: &str) {
    drop(
        LockOptions::new(name)
            .external(true)
            .lock_path(dir)
            .lock()
            .unwrap(),
    );
}

#[test]
fn hold_excludes_a_concurrent_hold() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    let mut procs: Vec<Proc> = (0..3)
        .map(|_| {
            let mut args = vec![
                "hold".to_owned(),
                "--lock-path".to_owned(),
                tmp.path().display().to_string(),
                "x".to_owned(),
                "--".to_owned(),
            ];
            args.extend(log_cmd(&log, "0.2"));
            spawn(args)
        })
        .collect();
    for p in &mut procs {
        assert_eq!(p.code(), 0);
    }
    assert_eq!(assert_no_overlap(&log), 3);
}

#[test]
fn hold_excludes_a_library_holder_and_honours_no_wait_and_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let guard = LockOptions::new("inst")
        .prefix("nova")
        .external(true)
        .lock_path(dir)
        .lock()
        .unwrap();
    let path = dir.join("nova-inst");
    let d = dir.to_str().unwrap();

    // --no-wait: at once, with the conflict code and who holds it.
    let started = Instant::now();
    let out = lockutils([
        "hold",
        "--lock-path",
        d,
        "--prefix",
        "nova",
        "--no-wait",
        "inst",
        "--",
        "true",
    ]);
    assert_eq!(code(&out), CONFLICT, "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("\"inst\""), "{err}");
    assert!(err.contains(&*path.to_string_lossy()), "{err}");
    assert!(err.contains(&format!("pid {}", my_pid())), "{err}");
    // The file name alone names the same lock.
    let out = lockutils(["hold", "--lock-path", d, "-n", "nova-inst", "--", "true"]);
    assert_eq!(code(&out), CONFLICT);
    // The code can be chosen.
    let out = lockutils([
        "hold",
        "--lock-path",
        d,
        "-n",
        "-E",
        "9",
        "nova-inst",
        "true",
    ]);
    assert_eq!(code(&out), 9);

    // --timeout: waits that long, then the conflict code.
    let started = Instant::now();
    let out = lockutils([
        "hold",
        "--lock-path",
        d,
        "--timeout",
        "300ms",
        "nova-inst",
        "--",
        "true",
    ]);
    let waited = started.elapsed();
    assert_eq!(code(&out), CONFLICT, "{}", stderr(&out));
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    assert!(stderr(&out).contains("timed out"), "{}", stderr(&out));
    // Its own wait, left in the kernel until the lock frees, is no waiter.
    assert!(!stderr(&out).contains("waiter"), "{}", stderr(&out));

    // A waiting hold gets the lock as soon as the library releases it.
    let ran = dir.join("ran");
    let mut waiting = spawn([
        OsStr::new("hold"),
        "--lock-path".as_ref(),
        dir.as_ref(),
        "--timeout".as_ref(),
        "10s".as_ref(),
        "nova-inst".as_ref(),
        "touch".as_ref(),
        ran.as_ref(),
    ]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!ran.exists(), "CMD ran while the library held the lock");
    drop(guard);
    assert_eq!(waiting.code(), 0);
    assert!(ran.exists());
}

#[test]
fn hold_says_who_holds_the_lock_while_it_waits() {
    let tmp = tempfile::tempdir().unwrap();
    let _guard = LockOptions::new("busy")
        .external(true)
        .lock_path(tmp.path())
        .lock()
        .unwrap();
    let out = lockutils([
        OsStr::new("hold"),
        "--lock-path".as_ref(),
        tmp.path().as_ref(),
        // The report comes after 1 s and a scan of /proc, and only while
        // it still waits: time enough on a loaded machine.
        "--timeout".as_ref(),
        "4s".as_ref(),
        "busy".as_ref(),
        "true".as_ref(),
    ]);
    assert_eq!(code(&out), CONFLICT);
    let err = stderr(&out);
    let waiting = err
        .lines()
        .find(|l| l.contains("waiting for lock \"busy\""))
        .unwrap_or_else(|| panic!("no waiting message in {err}"));
    assert!(
        waiting.contains(&format!("held exclusive by pid {} (", my_pid())),
        "{waiting}"
    );
    assert!(waiting.contains("process started"), "{waiting}");
    assert!(!waiting.contains("waiter"), "itself counted: {waiting}");
}

#[test]
fn shared_holds_share_and_exclude_writers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let d = dir.to_str().unwrap();
    let a = holder(dir, "db", &["--shared"]);
    let b = holder(dir, "db", &["-s"]);
    let out = lockutils([
        "hold",
        "--lock-path",
        d,
        "--shared",
        "--no-wait",
        "db",
        "true",
    ]);
    assert_eq!(code(&out), 0, "readers share: {}", stderr(&out));
    let out = lockutils(["hold", "--lock-path", d, "--no-wait", "db", "true"]);
    assert_eq!(code(&out), CONFLICT, "a writer must wait for readers");

    let list = list_json(dir);
    let db = entry(&list, "db");
    assert_eq!(db["state"], "held_shared");
    assert_count(db, 2);
    let mut pids = holder_pids(db);
    pids.sort_unstable();
    let mut expected = vec![i64::from(a.pid()), i64::from(b.pid())];
    expected.sort_unstable();
    assert_eq!(pids, expected);
    let out = lockutils(["list", "--lock-path", d]);
    let row = stdout(&out);
    assert!(
        row.contains("held shared by 2") || row.contains("held shared "),
        "{row}"
    );
}

#[test]
fn run_exports_a_private_directory_and_returns_cmd_status() {
    let tmp = tempfile::tempdir().unwrap();
    let parent = tmp.path().join("tmp");
    fs::create_dir(&parent).unwrap();
    let out_dir = tmp.path().join("out");
    fs::create_dir(&out_dir).unwrap();
    // CMD takes a lock with `lockutils hold`, which must land in the run's
    // directory, and leaves files and a subdirectory behind.
    let script = "\"$1\" hold inner -- true || exit 99; \
                  ls \"$LOCKUTILS_LOCK_PATH\" > \"$2/ls\"; \
                  echo \"$LOCKUTILS_LOCK_PATH\" > \"$2/dir\"; \
                  echo \"$OSLO_LOCK_PATH\" > \"$2/oslo\"; \
                  stat -c %a \"$LOCKUTILS_LOCK_PATH\" > \"$2/mode\"; \
                  mkdir \"$LOCKUTILS_LOCK_PATH/sub\"; touch \"$LOCKUTILS_LOCK_PATH/sub/f\"; \
                  exit 7";
    let out = lockutils_env(
        [
            OsStr::new("run"),
            "--".as_ref(),
            "sh".as_ref(),
            "-c".as_ref(),
            script.as_ref(),
            "sh".as_ref(),
            BIN.as_ref(),
            out_dir.as_ref(),
        ],
        &[("TMPDIR", parent.as_os_str())],
    );
    assert_eq!(code(&out), 7, "{}", stderr(&out));
    let read = |f: &str| {
        fs::read_to_string(out_dir.join(f))
            .unwrap()
            .trim()
            .to_owned()
    };
    let dir = PathBuf::from(read("dir"));
    assert!(dir.starts_with(&parent), "{dir:?}");
    assert_eq!(read("oslo"), read("dir"));
    assert_eq!(read("mode"), "700");
    assert_eq!(read("ls"), "inner");
    assert!(!dir.exists(), "the lock directory must be removed");
    assert_eq!(fs::read_dir(&parent).unwrap().count(), 0);
}

#[test]
fn run_removes_its_directory_when_cmd_is_killed() {
    let tmp = tempfile::tempdir().unwrap();
    for (sig, expected) in [("KILL", 137), ("TERM", 143)] {
        let record = tmp.path().join(format!("dir-{sig}"));
        let script = format!(
            "echo \"$LOCKUTILS_LOCK_PATH\" > \"$1\"; touch \"$LOCKUTILS_LOCK_PATH/lock\"; kill -{sig} $$"
        );
        let out = lockutils_env(
            [
                OsStr::new("run"),
                "sh".as_ref(),
                "-c".as_ref(),
                script.as_ref(),
                "sh".as_ref(),
                record.as_ref(),
            ],
            &[("TMPDIR", tmp.path().as_os_str())],
        );
        assert_eq!(code(&out), expected, "SIG{sig}: {}", stderr(&out));
        let dir = fs::read_to_string(&record).unwrap();
        assert!(
            !Path::new(dir.trim()).exists(),
            "SIG{sig}: {dir} left behind"
        );
    }
}

#[test]
fn run_forwards_sigterm_to_cmd() {
    let tmp = tempfile::tempdir().unwrap();
    let record = tmp.path().join("record");
    let ready = tmp.path().join("ready");
    let mut run = spawn([
        OsStr::new("run"),
        "sh".as_ref(),
        "-c".as_ref(),
        "echo \"$$ $LOCKUTILS_LOCK_PATH\" > \"$1\"; mv \"$1\" \"$2\"; exec sleep 30".as_ref(),
        "sh".as_ref(),
        record.as_ref(),
        ready.as_ref(),
    ]);
    wait_for_file(&ready);
    let text = fs::read_to_string(&ready).unwrap();
    let (cmd_pid, dir) = text.trim().split_once(' ').unwrap();
    run.signal(libc::SIGTERM);
    assert_eq!(run.code(), 143, "CMD killed by the forwarded SIGTERM");
    assert!(!Path::new(dir).exists(), "{dir} left behind");
    assert!(!Path::new("/proc").join(cmd_pid).exists(), "CMD still runs");
}

#[test]
fn run_without_cmd_is_a_usage_error() {
    let out = lockutils(["run"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("Usage"), "{}", stderr(&out));
    let out = lockutils(["run", "--", "/nonexistent/command"]);
    assert_eq!(code(&out), 127);
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
}

#[test]
fn list_shows_held_locks_with_the_right_pid() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let a = holder(dir, "a", &[]);
    let _b = LockOptions::new("b")
        .external(true)
        .lock_path(dir)
        .lock()
        .unwrap();
    free_lock(dir, "c");

    let list = list_json(dir);
    let names: Vec<&str> = list.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    let ea = entry(&list, "a");
    assert_eq!(ea["state"], "held_exclusive");
    assert_count(ea, 1);
    assert_eq!(holder_pids(ea), [i64::from(a.pid())]);
    let h = &ea["holders"][0];
    assert!(h["command"].as_str().unwrap().contains("hold"), "{h}");
    assert_eq!(h["kind"], "ofd");
    assert_eq!(h["mode"], "exclusive");
    assert_eq!(h["evidence"], "fdinfo");
    assert!(h["process_started"].as_str().unwrap().ends_with('Z'));
    let eb = entry(&list, "b");
    assert_eq!(eb["state"], "held_exclusive");
    assert_count(eb, 1);
    // This process holds it; a child this (multi-threaded) test process
    // forks for another test shares the open file until it executes its
    // program, and is then rightly listed after it.
    assert_eq!(holder_pids(eb)[0], my_pid(), "{eb}");
    let ec = entry(&list, "c");
    assert_eq!(ec["state"], "free");
    assert_eq!(ec["holders"], Value::Array(vec![]));
    assert_eq!(ec["path"], dir.join("c").to_str().unwrap());
    // Every key is always there.
    for e in &list {
        assert_eq!(e["backend"], "file");
        for key in [
            "name",
            "backend",
            "path",
            "state",
            "holder_count",
            "holders",
            "waiters",
            "flock_locks",
            "hidden_processes",
            "error",
            "file",
        ] {
            assert!(e.get(key).is_some(), "{key} missing in {e}");
        }
    }

    let out = lockutils([OsStr::new("list"), "--lock-path".as_ref(), dir.as_ref()]);
    let text = stdout(&out);
    assert!(
        !text.contains('\x1b'),
        "no colour when not on a terminal: {text:?}"
    );
    let row_a = text.lines().find(|l| l.starts_with("a ")).unwrap();
    assert!(row_a.contains("held exclusive"), "{row_a}");
    assert!(row_a.contains(&a.pid().to_string()), "{row_a}");
    let row_c = text.lines().find(|l| l.starts_with("c ")).unwrap();
    assert!(row_c.contains("free"), "{row_c}");
}

#[test]
fn show_names_the_holder_and_a_blocked_waiter() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut a = holder(dir, "s", &[]);
    let mut b = spawn([
        OsStr::new("hold"),
        "--lock-path".as_ref(),
        dir.as_ref(),
        "s".as_ref(),
        "true".as_ref(),
    ]);
    let show = || {
        json(&lockutils([
            OsStr::new("show"),
            "s".as_ref(),
            "--json".as_ref(),
            "--lock-path".as_ref(),
            dir.as_ref(),
        ]))
    };
    let report = wait_for("the waiter to show", || {
        let r = show();
        let waiting = r["waiters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["pid"] == b.pid());
        waiting.then_some(r)
    });
    assert_eq!(report["state"], "held_exclusive");
    assert_eq!(holder_pids(&report), [i64::from(a.pid())]);
    let waiter = &report["waiters"][0];
    // The mode comes from the kernel's table, when it could be read.
    assert!(
        waiter["mode"] == "exclusive" || waiter["mode"].is_null(),
        "{waiter}"
    );
    assert_eq!(waiter["kind"], "ofd");
    assert!(
        waiter["evidence"] == "syscall" || waiter["evidence"] == "wchan",
        "{waiter}"
    );
    let meta = fs::metadata(dir.join("s")).unwrap();
    assert_eq!(report["file"]["inode"], meta.ino());
    assert_eq!(report["file"]["mode"], "0600");
    assert_eq!(report["file"]["size"], 0);
    assert_eq!(report["path"], dir.join("s").to_str().unwrap());

    let out = lockutils([
        OsStr::new("show"),
        "s".as_ref(),
        "--lock-path".as_ref(),
        dir.as_ref(),
    ]);
    let text = stdout(&out);
    let holder_line = text.lines().find(|l| l.starts_with("holder")).unwrap();
    assert!(holder_line.contains(&format!("pid {}", a.pid())), "{text}");
    let waiter_line = text.lines().find(|l| l.starts_with("waiter")).unwrap();
    assert!(waiter_line.contains(&format!("pid {}", b.pid())), "{text}");
    assert!(
        text.contains("the kernel does not record when a lock was taken"),
        "{text}"
    );

    // SIGTERM to the holder reaches its CMD; the waiter then gets the lock.
    a.signal(libc::SIGTERM);
    assert_eq!(a.code(), 143);
    assert_eq!(b.code(), 0);
}

#[test]
fn a_holder_this_user_cannot_see_is_not_visible_never_guessed() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not run: needs root, to look at a root-owned holder as another user");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    let _held = holder(dir, "secret", &[]);
    // Readable by all, so the kernel can be asked about it by anyone; who
    // holds it stays hidden.
    fs::set_permissions(dir.join("secret"), fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new(BIN)
        .args([
            OsStr::new("list"),
            "--json".as_ref(),
            "--lock-path".as_ref(),
            dir.as_ref(),
        ])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let list = json(&out);
    let lock = entry(list.as_array().unwrap(), "secret");
    assert_eq!(lock["state"], "held_exclusive", "{lock}");
    let holders = lock["holders"].as_array().unwrap();
    assert_eq!(holders.len(), 1, "{lock}");
    assert_eq!(holders[0]["pid"], Value::Null, "{lock}");
    assert_eq!(holders[0]["evidence"], Value::Null, "{lock}");
    assert!(lock["hidden_processes"].as_u64().unwrap() > 0, "{lock}");
}

#[test]
fn show_of_a_missing_lock_names_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let out = lockutils([
        OsStr::new("show"),
        "--prefix".as_ref(),
        "nova".as_ref(),
        "nothing".as_ref(),
        "--lock-path".as_ref(),
        tmp.path().as_ref(),
    ]);
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert!(
        err.contains(&*tmp.path().join("nova-nothing").to_string_lossy()),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn clean_removes_free_lock_files_and_never_held_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let holders: Vec<Proc> = ["h1", "h2", "h3"]
        .iter()
        .map(|n| holder(dir, n, &[]))
        .collect();
    free_lock(dir, "f1");
    free_lock(dir, "f2");
    fs::write(dir.join("data"), "not a lock").unwrap();
    fs::create_dir(dir.join("subdir")).unwrap();

    // Too young for --older-than: nothing removed.
    let out = lockutils([
        OsStr::new("clean"),
        "--older-than".as_ref(),
        "1h".as_ref(),
        "--lock-path".as_ref(),
        dir.as_ref(),
    ]);
    assert_eq!(code(&out), 0);
    assert!(dir.join("f1").exists() && dir.join("f2").exists());
    assert!(
        stdout(&out).contains("newer than --older-than"),
        "{}",
        stdout(&out)
    );

    // A dry run removes nothing.
    let out = lockutils([
        OsStr::new("clean"),
        "--dry-run".as_ref(),
        "--lock-path".as_ref(),
        dir.as_ref(),
    ]);
    assert!(stdout(&out).contains("would remove f1"), "{}", stdout(&out));
    assert!(dir.join("f1").exists());

    let out = lockutils([OsStr::new("clean"), "--lock-path".as_ref(), dir.as_ref()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    for (name, p) in ["h1", "h2", "h3"].iter().zip(&holders) {
        assert!(dir.join(name).exists(), "held {name} was removed");
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("skipped {name}:")))
            .unwrap();
        assert!(
            line.contains(&format!("held exclusive by pid {}", p.pid())),
            "{line}"
        );
    }
    assert!(
        !dir.join("f1").exists() && !dir.join("f2").exists(),
        "{text}"
    );
    assert!(
        text.contains("removed f1") && text.contains("removed f2"),
        "{text}"
    );
    assert!(dir.join("data").exists() && dir.join("subdir").exists());
    assert!(text.contains("skipped data: not empty"), "{text}");
    assert!(
        text.contains("skipped subdir: not a regular file"),
        "{text}"
    );
}

#[test]
fn clean_racing_holders_never_breaks_exclusion() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let log = dir.join("log");
    let locks = dir.join("locks");
    let stop = dir.join("stop");
    // Three loops of `hold L -- CMD` (with short pauses, so the lock is
    // sometimes free), while `clean` runs again and again: lock files are
    // removed between holds and under waiters, who must move to the new file
    // instead of holding an unlinked one alongside a newcomer.
    let script = "set -e; while [ ! -e \"$4\" ]; do \
                  \"$1\" hold --lock-path \"$2\" L -- sh -c 'echo \"enter $(date +%s%N)\" >> \"$1\"; sleep 0.01; echo \"exit $(date +%s%N)\" >> \"$1\"' sh \"$3\"; \
                  sleep 0.05; done";
    let mut loops: Vec<Proc> = (0..3)
        .map(|_| {
            let mut cmd = Command::new("sh");
            cmd.args(["-c", script, "sh", BIN])
                .args([&locks, &log, &stop])
                .stdin(Stdio::null());
            Proc {
                what: format!("{cmd:?}"),
                child: cmd.spawn().unwrap(),
            }
        })
        .collect();
    let started = Instant::now();
    let (mut cleans, mut removed) = (0, 0);
    // Until clean removed the file a few times (or time is up).
    while removed < 5 && started.elapsed() < Duration::from_secs(8) {
        let out = lockutils([OsStr::new("clean"), "--lock-path".as_ref(), locks.as_ref()]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        removed += stdout(&out)
            .lines()
            .filter(|l| l.starts_with("removed L"))
            .count();
        cleans += 1;
        assert!(loops.iter_mut().all(Proc::is_running), "a hold loop failed");
    }
    fs::write(&stop, "").unwrap();
    for l in &mut loops {
        assert_eq!(l.code(), 0);
    }
    let sections = assert_no_overlap(&log);
    eprintln!(
        "{sections} holds; clean ran {cleans} times and removed the lock file {removed} times"
    );
    assert!(
        removed >= 1,
        "clean never found the lock free ({cleans} runs)"
    );
    assert!(sections >= 3, "{sections} holds");
}

#[test]
fn remove_in_a_missing_directory_removes_nothing_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing").join("deeper");
    let out = lockutils([
        OsStr::new("remove"),
        "--lock-path".as_ref(),
        missing.as_ref(),
        "x".as_ref(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("skipped x: nothing to remove"),
        "{}",
        stdout(&out)
    );
    assert!(
        !tmp.path().join("missing").exists(),
        "created the directory"
    );
}

#[test]
fn remove_skips_a_held_lock_and_removes_free_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let a = holder(dir, "nova-r", &[]);
    free_lock(dir, "nova-f");
    let out = lockutils([
        OsStr::new("remove"),
        "--prefix".as_ref(),
        "nova".as_ref(),
        "--lock-path".as_ref(),
        dir.as_ref(),
        "r".as_ref(),
        "f".as_ref(),
        "missing".as_ref(),
    ]);
    assert_eq!(code(&out), CONFLICT, "{}", stderr(&out));
    let text = stdout(&out);
    let skipped = text.lines().find(|l| l.starts_with("skipped r:")).unwrap();
    assert!(
        skipped.contains(&format!("held exclusive by pid {}", a.pid())),
        "{skipped}"
    );
    assert!(skipped.contains("never removed"), "{skipped}");
    assert!(dir.join("nova-r").exists());
    assert!(text.contains("removed f"), "{text}");
    assert!(!dir.join("nova-f").exists());
    assert!(
        text.contains("skipped missing: nothing to remove"),
        "{text}"
    );

    free_lock(dir, "g");
    let out = lockutils([
        OsStr::new("remove"),
        "--lock-path".as_ref(),
        dir.as_ref(),
        "g".as_ref(),
    ]);
    assert_eq!(code(&out), 0);
    assert!(!dir.join("g").exists());
}

/// Without the `zookeeper` feature, a ZooKeeper URL is a usage error that
/// says so (and never shows the password). With it, see tests/zookeeper.rs.
#[cfg(not(feature = "zookeeper"))]
#[test]
fn zookeeper_backend_is_refused_clearly_in_builds_without_it() {
    for args in [
        vec![
            "list",
            "--backend",
            "zookeeper://svc:topsecret@zk1:2181/locks",
        ],
        vec![
            "hold",
            "--backend",
            "zookeeper://svc:topsecret@zk1:2181/locks",
            "x",
            "true",
        ],
    ] {
        let out = lockutils(&args);
        assert_eq!(code(&out), 2, "{args:?}");
        let err = stderr(&out);
        assert!(err.contains("built without the zookeeper backend"), "{err}");
        assert!(!err.contains("topsecret"), "{err}");
    }
}

#[test]
fn unknown_backends_are_usage_errors() {
    let out = lockutils(["list", "--backend", "redis://u:topsecret@x"]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    // Every engine is listed: as a URL it takes, or as a feature to build with.
    assert!(err.contains("`zookeeper://…`"), "{err}");
    assert!(err.contains("`postgresql://…`"), "{err}");
    if cfg!(not(any(feature = "zookeeper", feature = "postgresql"))) {
        assert!(
            err.contains("need this command built with `--features postgresql,zookeeper`"),
            "{err}"
        );
    }
    assert!(err.contains("redis://u:***@x"), "{err}");
    assert!(!err.contains("topsecret"), "{err}");
    // --force needs a backend that can clear a held lock: never lock files.
    let out = lockutils(["remove", "--force", "x"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("--force clears a held lock"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_durations_and_names_are_usage_errors() {
    for args in [
        vec!["hold", "--timeout", "10x", "x", "true"],
        vec!["hold", "--timeout=-1s", "x", "true"],
        vec!["clean", "--older-than", "soon"],
        vec!["hold", "--timeout", "1e1", "x", "true"],
    ] {
        let out = lockutils(&args);
        assert_eq!(code(&out), 2, "{args:?}");
        assert!(
            stderr(&out).contains("e.g. 500us, 250ms"),
            "{}",
            stderr(&out)
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = lockutils([
        OsStr::new("hold"),
        "--lock-path".as_ref(),
        tmp.path().as_ref(),
        "..".as_ref(),
        "true".as_ref(),
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("invalid lock name"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn every_subcommand_has_help_with_examples_and_exit_codes() {
    for sub in ["run", "hold", "list", "show", "remove", "clean"] {
        let out = lockutils([sub, "--help"]);
        assert_eq!(code(&out), 0);
        let text = stdout(&out);
        assert!(text.contains("Examples:\n  lockutils "), "{sub}: {text}");
        assert!(text.contains("Exit codes:"), "{sub}: {text}");
    }
    let out = lockutils(["--help"]);
    assert!(stdout(&out).contains("75"), "{}", stdout(&out));
}

/// The Python interpreter with oslo.concurrency, named by
/// `LOCKUTILS_TEST_PYTHON` (see scripts/python-peer.sh).
fn peer_python() -> PathBuf {
    let python = std::env::var_os("LOCKUTILS_TEST_PYTHON")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .expect(
            "LOCKUTILS_TEST_PYTHON is not set; run `bash .ci/run`, or \
             LOCKUTILS_TEST_PYTHON=$(scripts/python-peer.sh) cargo test -p lockutils-cli -- --ignored",
        );
    let ok = Command::new(&python)
        .args(["-c", "import oslo_concurrency.lockutils"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "{} cannot import oslo_concurrency", python.display());
    python
}

#[test]
#[ignore = "needs Python oslo.concurrency; run `bash .ci/run`, or LOCKUTILS_TEST_PYTHON=$(scripts/python-peer.sh) cargo test -p lockutils-cli -- --ignored"]
fn an_oslo_holder_is_seen_and_excluded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ready = dir.join(".ready");
    let script = "import sys, time\n\
                  from oslo_concurrency import lockutils\n\
                  with lockutils.lock(sys.argv[1], lock_file_prefix='nova-', external=True, lock_path=sys.argv[2]):\n\
                  \x20   open(sys.argv[3], 'w').close()\n\
                  \x20   time.sleep(30)\n";
    let mut cmd = Command::new(peer_python());
    cmd.args(["-c", script, "instance-1"])
        .arg(dir)
        .arg(&ready)
        .stdin(Stdio::null());
    let oslo = Proc {
        what: format!("{cmd:?}"),
        child: cmd.spawn().unwrap(),
    };
    wait_for_file(&ready);

    let list = list_json(dir);
    let lock = entry(&list, "nova-instance-1");
    assert_eq!(lock["state"], "held_exclusive");
    let h = &lock["holders"][0];
    assert_eq!(h["pid"], oslo.pid());
    assert_eq!(h["kind"], "posix");
    assert_eq!(h["evidence"], "proc_locks");

    let out = lockutils([
        OsStr::new("hold"),
        "--lock-path".as_ref(),
        dir.as_ref(),
        "--prefix".as_ref(),
        "nova".as_ref(),
        "--no-wait".as_ref(),
        "instance-1".as_ref(),
        "true".as_ref(),
    ]);
    assert_eq!(code(&out), CONFLICT, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("pid {}", oslo.pid())),
        "{}",
        stderr(&out)
    );
}

/// Lock file names are chosen by whoever can create files in the lock
/// directory: `list`, `show`, `clean` and `remove` print them escaped, as
/// holders' command lines, so that a name forges no row and sends the
/// terminal no escape sequence. `--json` keeps them exact.
#[test]
fn control_characters_in_lock_file_names_are_printed_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let forged = "a\nforged  held exclusive  1  2h04m  48121 python3";
    let hidden = "b\x1b[8mhidden";
    fs::write(tmp.path().join(forged), b"").unwrap();
    fs::write(tmp.path().join(hidden), b"").unwrap();
    let dir = tmp.path().as_os_str();
    let raw = |text: &str| text.contains('\x1b') || text.contains("\nforged");
    let escaped = |text: &str| text.contains("a\\nforged") && text.contains("b\\u{1b}[8mhidden");

    let out = lockutils([OsStr::new("list"), "--lock-path".as_ref(), dir]);
    let text = stdout(&out);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!raw(&text) && escaped(&text), "{text}");
    assert_eq!(text.lines().count(), 3, "a header and two rows: {text}");

    let names: Vec<Value> = list_json(tmp.path());
    assert!(names.iter().any(|l| l["name"] == forged), "{names:?}");

    let out = lockutils([
        OsStr::new("show"),
        "--lock-path".as_ref(),
        dir,
        forged.as_ref(),
    ]);
    let text = stdout(&out);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        !text.contains("\nforged") && text.contains("a\\nforged"),
        "{text}"
    );

    let out = lockutils([
        OsStr::new("clean"),
        "--dry-run".as_ref(),
        "--lock-path".as_ref(),
        dir,
    ]);
    let text = stdout(&out);
    assert!(!raw(&text) && escaped(&text), "{text}");
    assert_eq!(text.lines().count(), 3, "two names and the summary: {text}");

    let out = lockutils([
        OsStr::new("remove"),
        "--lock-path".as_ref(),
        dir,
        forged.as_ref(),
        hidden.as_ref(),
    ]);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(code(&out), 0, "{text}");
    assert!(!raw(&text) && escaped(&text), "{text}");
    assert_eq!(text.lines().count(), 2, "one line per name: {text}");
}

/// A regular file given as the lock directory: every subcommand says that it
/// is not a directory (in the library's words, with the command's option as
/// the fix) and fails, `remove` included, which found "nothing to remove".
#[test]
fn a_regular_file_as_lock_directory_is_an_error_for_every_subcommand() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("f");
    fs::write(&file, b"").unwrap();
    let url = format!("file://{}", file.display());
    let path = ["--lock-path".as_ref(), file.as_os_str()];
    let by_url = ["--backend".as_ref(), OsStr::new(&url)];
    for place in [path, by_url] {
        for sub in [
            &["list"][..],
            &["show", "x"],
            &["clean"],
            &["remove", "x"],
            &["remove", "x", "y"],
            &["hold", "x", "true"],
        ] {
            let mut args: Vec<&OsStr> = vec![OsStr::new(sub[0])];
            args.extend(place);
            args.extend(sub[1..].iter().map(OsStr::new));
            let out = lockutils(&args);
            let err = stderr(&out);
            assert_eq!(code(&out), 1, "{args:?}: {err}");
            assert!(
                err.contains(&format!("cannot use lock directory {}", file.display()))
                    && err.contains("it exists and is not a directory"),
                "{args:?}: {err}"
            );
            assert!(!err.contains("set_defaults"), "{args:?}: {err}");
            assert_eq!(stdout(&out), "", "{args:?}");
        }
    }
    let out = lockutils([OsStr::new("list"), path[0], path[1]]);
    assert!(
        stderr(&out).contains("choose another with --lock-path DIR"),
        "the fix is the command's option: {}",
        stderr(&out)
    );
}
