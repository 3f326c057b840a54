//! Helpers shared by the command's integration tests: running the built
//! binary with a time limit, reading its output, and checking logs of
//! critical sections written by the commands it runs.
#![allow(dead_code)] // each test file uses its own subset

use std::ffi::OsStr;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_lockutils");

/// Upper bound for anything a test waits for.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// Exit code of `hold` when the lock is busy.
pub const CONFLICT: i32 = 75;

/// A spawned child, killed (by its pid) and reaped on drop if still running.
pub struct Proc {
    pub child: Child,
    pub what: String,
}

impl Proc {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits for the exit, at most `PATIENCE`.
    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit in time",
                self.what
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the exit and returns the exit code (128+N for signal N).
    pub fn code(&mut self) -> i32 {
        code_of(self.wait())
    }

    /// Sends `sig` to this child only.
    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill has no memory arguments; the child is not reaped yet,
        // so the pid is still this child's.
        assert_eq!(unsafe { libc::kill(self.pid(), sig) }, 0);
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.is_running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn code_of(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap())
}

/// `lockutils ARGS…` in the background; stderr to `stderr` if given.
pub fn spawn_to<I, S>(args: I, stderr: Option<&Path>) -> Proc
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(BIN);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null());
    match stderr {
        Some(path) => cmd.stderr(fs::File::create(path).unwrap()),
        None => cmd.stderr(Stdio::null()),
    };
    let what = format!("{cmd:?}");
    Proc {
        child: cmd.spawn().unwrap(),
        what,
    }
}

/// `lockutils ARGS…` to completion (at most `PATIENCE`), with its output.
pub fn lockutils<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    lockutils_env::<_, _, &str>(args, &[])
}

pub fn lockutils_env<I, S, V>(args: I, env: &[(&str, V)]) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let mut cmd = Command::new(BIN);
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v.as_ref());
    }
    let what = format!("{cmd:?}");
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(PATIENCE) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            // SAFETY: kill by the pid of our own child, not yet reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("{what} did not finish in time");
        }
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn code(out: &Output) -> i32 {
    code_of(out.status)
}

pub fn json(out: &Output) -> Value {
    assert_eq!(code(out), 0, "stderr: {}", stderr(out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)))
}

/// Polls `f` until it returns `Some`, at most `PATIENCE`.
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A log of `enter NANOS` / `exit NANOS` lines appended by CMDs, for
/// checking that critical sections never overlapped.
pub fn log_cmd(log: &Path, hold_secs: &str) -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        format!(
            "echo \"enter $(date +%s%N)\" >> \"$1\"; sleep {hold_secs}; echo \"exit $(date +%s%N)\" >> \"$1\""
        ),
        "sh".into(),
        log.display().to_string(),
    ]
}

/// Asserts the log alternates enter/exit, with non-decreasing times, and
/// returns how many critical sections it holds.
pub fn assert_no_overlap(log: &Path) -> usize {
    let text = fs::read_to_string(log).unwrap();
    let mut inside = false;
    let mut last = 0u128;
    let mut sections = 0;
    for line in text.lines() {
        let (what, when) = line.split_once(' ').unwrap();
        let when: u128 = when.parse().unwrap();
        assert!(when >= last, "time went backwards in\n{text}");
        last = when;
        match what {
            "enter" => {
                assert!(!inside, "two holders at once:\n{text}");
                inside = true;
                sections += 1;
            }
            "exit" => {
                assert!(inside, "exit without enter:\n{text}");
                inside = false;
            }
            other => panic!("unexpected {other:?} in\n{text}"),
        }
    }
    assert!(!inside, "unfinished section:\n{text}");
    sections
}

/// `lockutils ARGS…` in the background, its output discarded.
pub fn spawn<I, S>(args: I) -> Proc
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    spawn_to(args, None)
}
