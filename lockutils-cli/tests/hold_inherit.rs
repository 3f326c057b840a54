//! `lockutils hold` with a lock file: CMD shares the locked open file, so it
//! keeps the lock if `hold` is killed, and CMD's leftover background
//! processes do not keep it once CMD is done.
#![cfg(target_os = "linux")]

mod common;

use std::ffi::OsStr;
use std::fs;
use std::path::Path;

use common::{code, lockutils, spawn, wait_for, CONFLICT};

fn try_hold(dir: &Path) -> i32 {
    code(&lockutils([
        OsStr::new("hold"),
        "--lock-path".as_ref(),
        dir.as_ref(),
        "--no-wait".as_ref(),
        "inherited".as_ref(),
        "true".as_ref(),
    ]))
}

fn read_pid(path: &Path) -> Option<i32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn kill(pid: i32) {
    // SAFETY: kill has no memory arguments; the pid was written by a process
    // this test started, which is still running.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

fn gone(pid: i32) -> bool {
    // SAFETY: as in `kill`; signal 0 only checks for existence.
    unsafe { libc::kill(pid, 0) != 0 }
}

#[test]
fn cmd_keeps_the_lock_when_hold_is_killed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let pid_file = dir.join("cmd.pid");
    let script = "echo $$ > \"$1\"; exec sleep 30";
    let mut hold = spawn([
        OsStr::new("hold"),
        "--lock-path".as_ref(),
        dir.as_ref(),
        "inherited".as_ref(),
        "--".as_ref(),
        "sh".as_ref(),
        "-c".as_ref(),
        script.as_ref(),
        "sh".as_ref(),
        pid_file.as_ref(),
    ]);
    let cmd = wait_for("CMD to start", || read_pid(&pid_file));
    hold.signal(libc::SIGKILL);
    hold.wait();
    assert!(!gone(cmd), "CMD was killed with hold");
    assert_eq!(try_hold(dir), CONFLICT, "the lock went with hold");
    kill(cmd);
    // Its descriptors close as it dies (whoever reaps it).
    wait_for("the lock to go with CMD", || {
        (try_hold(dir) == 0).then_some(())
    });
}

#[test]
fn background_processes_of_cmd_do_not_keep_the_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let pid_file = dir.join("bg.pid");
    // The background sleep inherits the lock's descriptor.
    let script = "sleep 30 & echo $! > \"$1\"";
    let out = lockutils([
        OsStr::new("hold"),
        "--lock-path".as_ref(),
        dir.as_ref(),
        "inherited".as_ref(),
        "--".as_ref(),
        "sh".as_ref(),
        "-c".as_ref(),
        script.as_ref(),
        "sh".as_ref(),
        pid_file.as_ref(),
    ]);
    assert_eq!(code(&out), 0);
    let bg = read_pid(&pid_file).expect("background pid");
    assert!(!gone(bg));
    assert_eq!(
        try_hold(dir),
        0,
        "a background process of CMD kept the lock"
    );
    kill(bg);
}
