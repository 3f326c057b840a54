//! `lockutils remove` and `clean` leave a lock file that another process has
//! open, reporting who, with the busy exit code (issue 9): a waiter polling
//! on that file would otherwise lock the unlinked file while a newcomer locks
//! a new one.
#![cfg(target_os = "linux")]

mod common;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{
    assert_no_overlap, code, lockutils, log_cmd, spawn, stdout, wait_for, Proc, CONFLICT,
};

fn has_open(pid: i32, path: &Path) -> bool {
    let Ok(want) = fs::metadata(path) else {
        return false;
    };
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        fs::metadata(fd.path()).is_ok_and(|m| m.ino() == want.ino() && m.dev() == want.dev())
    })
}

fn remove(dir: &Path, name: &str) -> std::process::Output {
    lockutils([
        OsStr::new("remove"),
        "--lock-path".as_ref(),
        dir.as_ref(),
        name.as_ref(),
    ])
}

#[test]
fn remove_and_clean_skip_a_lock_file_another_process_has_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let path = dir.join("open-elsewhere");
    fs::write(&path, "").unwrap();
    let cmd = Command::new("sleep")
        .arg("30")
        .stdin(fs::File::open(&path).unwrap())
        .spawn()
        .unwrap();
    let opener = Proc {
        what: "sleep with the lock file as stdin".into(),
        child: cmd,
    };
    let out = remove(dir, "open-elsewhere");
    assert_eq!(code(&out), CONFLICT, "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("skipped open-elsewhere"), "{text}");
    assert!(
        text.contains(&format!("open in process {}", opener.pid())),
        "{text}"
    );
    assert!(text.contains("retry once it is closed"), "{text}");
    assert!(path.exists());

    let out = lockutils([OsStr::new("clean"), "--lock-path".as_ref(), dir.as_ref()]);
    let text = stdout(&out);
    assert!(text.contains("removed 0, skipped 1"), "{text}");
    assert!(
        text.contains(&format!("open in process {}", opener.pid())),
        "{text}"
    );
    assert!(path.exists());

    drop(opener);
    let out = remove(dir, "open-elsewhere");
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert!(!path.exists());
}

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

/// The reproduction of issue 9: a lockutils holder, an oslo waiter polling,
/// `lockutils remove` run again and again across the hand-over, then a
/// newcomer. Never two holders, and the removals in the gap say who has the
/// file open.
#[test]
#[ignore = "needs Python oslo.concurrency; run `bash .ci/run`, or LOCKUTILS_TEST_PYTHON=$(scripts/python-peer.sh) cargo test -p lockutils-cli -- --ignored"]
fn remove_never_lets_an_oslo_polling_waiter_and_a_newcomer_both_hold() {
    // Whether a removal lands in the gap between the first holder's release
    // and the oslo waiter's next poll (up to 0.1 s apart) is up to the
    // scheduler: a round where none did shows nothing about the gap, so
    // another round runs. Every round checks that nobody overlapped.
    for round in 1..=ROUNDS {
        let in_use_reports = polled_round();
        if in_use_reports > 0 {
            return;
        }
        eprintln!("round {round}: no removal ran in the gap");
    }
    panic!(
        "in {ROUNDS} rounds, no removal ran between the first holder's release and the oslo \
         waiter's turn"
    );
}

/// Rounds of [`remove_never_lets_an_oslo_polling_waiter_and_a_newcomer_both_hold`].
const ROUNDS: usize = 3;

/// One hand-over; how many removals in the gap said the oslo waiter has
/// the file open.
fn polled_round() -> usize {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let name = "polled";
    let path = dir.join(name);
    let log = dir.join("sections.log");
    let lock_path = dir.display().to_string();
    let hold = |secs: &str| {
        let mut args = vec![
            "hold".to_owned(),
            "--lock-path".to_owned(),
            lock_path.clone(),
            name.to_owned(),
            "--".to_owned(),
        ];
        args.extend(log_cmd(&log, secs));
        spawn(args)
    };
    let log_text = || fs::read_to_string(&log).unwrap_or_default();

    // Holds until told to let go, once the Python waiter polls behind it.
    let go = dir.join("go");
    let mut first = spawn(vec![
        "hold".to_owned(),
        "--lock-path".to_owned(),
        lock_path.clone(),
        name.to_owned(),
        "--".to_owned(),
        "sh".to_owned(),
        "-c".to_owned(),
        "echo \"enter $(date +%s%N)\" >> \"$1\"; i=0; \
         while [ ! -e \"$2\" ] && [ $i -lt 6000 ]; do sleep 0.01; i=$((i+1)); done; \
         echo \"exit $(date +%s%N)\" >> \"$1\""
            .to_owned(),
        "sh".to_owned(),
        log.display().to_string(),
        go.display().to_string(),
    ]);
    wait_for("the first holder", || {
        log_text().contains("enter").then_some(())
    });
    let script = "import sys, time\n\
                  from oslo_concurrency import lockutils\n\
                  def note(what):\n\
                  \x20   open(sys.argv[3], 'a').write('%s %d\\n' % (what, time.time_ns()))\n\
                  with lockutils.lock(sys.argv[1], external=True, lock_path=sys.argv[2]):\n\
                  \x20   note('enter')\n\
                  \x20   time.sleep(0.5)\n\
                  \x20   note('exit')\n";
    let mut cmd = Command::new(peer_python());
    cmd.args(["-c", script, name])
        .arg(dir)
        .arg(&log)
        .stdin(Stdio::null());
    let mut oslo = Proc {
        what: format!("{cmd:?}"),
        child: cmd.spawn().unwrap(),
    };
    wait_for("the oslo waiter to open the file", || {
        has_open(oslo.pid(), &path).then_some(())
    });

    assert_eq!(
        log_text().matches("enter").count(),
        1,
        "the first holder let go before the oslo waiter started polling"
    );
    // oslo's retries back off towards 0.1 s apart: a removal lands in the
    // gap after the release more often once they have.
    std::thread::sleep(Duration::from_secs(1));
    fs::write(&go, b"").unwrap();
    let mut in_use_reports = 0;
    while log_text().matches("enter").count() < 2 {
        let out = remove(dir, name);
        let text = stdout(&out);
        assert_eq!(code(&out), CONFLICT, "removed while in use:\n{text}");
        if text.contains(&format!("open in process {}", oslo.pid())) {
            in_use_reports += 1;
        }
        assert!(path.exists());
    }
    let mut newcomer = hold("0.1");
    assert_eq!(first.code(), 0);
    assert!(oslo.wait().success());
    assert_eq!(newcomer.code(), 0);
    assert_eq!(assert_no_overlap(&log), 3);
    in_use_reports
}
