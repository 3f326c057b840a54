//! `lockutils hold` as a process supervisor: how CMD is started (search in
//! `PATH`, scripts without `#!`, exit codes 126 and 127, the signal mask
//! and dispositions it inherits), signals forwarded to it, a signal while
//! waiting for the lock, and CMD killed with `hold` so that it never runs
//! without the lock. Real processes and signals throughout.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;

/// `lockutils hold --lock-path DIR NAME -- ARGS…` to completion.
fn hold(dir: &Path, name: &str, cmd: &[&OsStr]) -> std::process::Output {
    let mut args: Vec<&OsStr> = vec![
        "hold".as_ref(),
        "--lock-path".as_ref(),
        dir.as_ref(),
        name.as_ref(),
        "--".as_ref(),
    ];
    args.extend_from_slice(cmd);
    lockutils(args)
}

/// `lockutils hold` of NAME in the background, CMD writing its pid to
/// `pid_file` then sleeping; returns once CMD runs, with CMD's pid.
fn holder(dir: &Path, name: &str, pid_file: &Path, stderr: Option<&Path>) -> (Proc, i32) {
    let args: Vec<&OsStr> = vec![
        "hold".as_ref(),
        "--lock-path".as_ref(),
        dir.as_ref(),
        name.as_ref(),
        "--".as_ref(),
        "sh".as_ref(),
        "-c".as_ref(),
        "echo $$ > \"$1.tmp\"; mv \"$1.tmp\" \"$1\"; exec sleep 30".as_ref(),
        "sh".as_ref(),
        pid_file.as_ref(),
    ];
    let p = spawn_to(args, stderr);
    let pid = wait_for("CMD to start", || {
        fs::read_to_string(pid_file).ok()?.trim().parse().ok()
    });
    (p, pid)
}

/// Whether `pid` is gone or a zombie nobody reaped yet (a process whose
/// parent died is reaped by whoever adopts it, maybe late).
fn dead(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

fn free(dir: &Path, name: &str) -> bool {
    let out = lockutils([
        OsStr::new("hold"),
        "--lock-path".as_ref(),
        dir.as_ref(),
        "--no-wait".as_ref(),
        name.as_ref(),
        "true".as_ref(),
    ]);
    code(&out) == 0
}

#[test]
fn signals_are_forwarded_to_cmd_and_its_status_returned() {
    let tmp = tempfile::tempdir().unwrap();
    let pid_file = tmp.path().join("cmd.pid");
    for (sig, expected) in [
        (libc::SIGTERM, 143),
        (libc::SIGINT, 130),
        (libc::SIGHUP, 129),
    ] {
        let _ = fs::remove_file(&pid_file);
        let (mut hold, cmd) = holder(tmp.path(), "fwd", &pid_file, None);
        hold.signal(sig);
        assert_eq!(hold.code(), expected, "signal {sig} reached CMD");
        assert!(dead(cmd), "CMD still runs after signal {sig}");
        assert!(free(tmp.path(), "fwd"), "the lock is released");
    }
}

#[test]
fn cmd_is_killed_with_hold_and_the_lock_is_free() {
    let tmp = tempfile::tempdir().unwrap();
    let pid_file = tmp.path().join("cmd.pid");
    let (mut hold, cmd) = holder(tmp.path(), "pdeath", &pid_file, None);
    assert!(!free(tmp.path(), "pdeath"), "held while CMD runs");
    hold.signal(libc::SIGKILL);
    assert_eq!(hold.code(), 137);
    wait_for("CMD to be killed with hold", || dead(cmd).then_some(()));
    assert!(free(tmp.path(), "pdeath"), "the lock went with hold");
}

#[test]
fn a_signal_while_waiting_interrupts_hold_and_cmd_never_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let (_holder, _) = holder(tmp.path(), "busy", &tmp.path().join("a.pid"), None);
    let log = tmp.path().join("waiter.err");
    let ran = tmp.path().join("ran");
    let mut waiter = spawn_to(
        [
            OsStr::new("hold"),
            "--lock-path".as_ref(),
            tmp.path().as_ref(),
            "busy".as_ref(),
            "--".as_ref(),
            "touch".as_ref(),
            ran.as_ref(),
        ],
        Some(&log),
    );
    // The waiter says who holds the lock after a second of waiting: it is
    // then surely waiting.
    wait_for("the waiter to wait", || {
        fs::read_to_string(&log)
            .ok()
            .filter(|t| t.contains("waiting for lock"))
    });
    waiter.signal(libc::SIGTERM);
    assert_eq!(waiter.code(), 143);
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.contains("interrupted while waiting"), "{text}");
    assert!(!ran.exists(), "CMD ran after the interruption");
}

#[test]
fn cmd_gets_the_signal_mask_and_sigpipe_lockutils_was_started_with() {
    let tmp = tempfile::tempdir().unwrap();
    // cat reports its own status: what exec left of lockutils' state.
    let out = hold(
        tmp.path(),
        "mask",
        &["cat".as_ref(), "/proc/self/status".as_ref()],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let status = stdout(&out);
    let field = |name: &str| {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in {status}"));
        u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    // The test's child (lockutils) starts with nothing blocked.
    assert_eq!(field("SigBlk:"), 0, "CMD inherited blocked signals");
    let pipe = 1u64 << (libc::SIGPIPE - 1);
    assert_eq!(
        field("SigIgn:") & pipe,
        0,
        "CMD inherited an ignored SIGPIPE"
    );
}

#[test]
fn cmd_is_searched_in_path_and_not_found_or_not_executable_are_127_and_126() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    fs::create_dir(&bin).unwrap();
    // A script without `#!`, run by /bin/sh as execvp(3) does.
    let script = bin.join("no-shebang");
    fs::write(&script, "echo \"ran $1 $LOCKUTILS_LOCK_NAME\"\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let unexecutable = bin.join("not-executable");
    fs::write(&unexecutable, "echo no\n").unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let hold_with_path = |cmd: &str| {
        lockutils_env(
            [
                OsStr::new("hold"),
                "--lock-path".as_ref(),
                tmp.path().as_ref(),
                "p".as_ref(),
                "--".as_ref(),
                cmd.as_ref(),
                "arg".as_ref(),
            ],
            &[("PATH", &path)],
        )
    };

    let out = hold_with_path("no-shebang");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "ran arg p\n");

    let out = hold_with_path("no-such-command-anywhere");
    assert_eq!(code(&out), 127, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("command not found"),
        "{}",
        stderr(&out)
    );

    let out = hold_with_path("not-executable");
    assert_eq!(code(&out), 126, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("ermission denied"),
        "{}",
        stderr(&out)
    );

    let out = hold_with_path(tmp.path().join("missing").to_str().unwrap());
    assert_eq!(code(&out), 127, "{}", stderr(&out));

    // Each failure left the lock free.
    assert!(free(tmp.path(), "p"));
}

/// `lockutils ARGS…` started with `SIGTERM` blocked and already pending, as
/// if it arrived while a free lock was being taken (or the directory made).
fn with_sigterm_pending(args: &[&OsStr]) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(args).stdin(std::process::Stdio::null());
    // SAFETY: runs in the child between fork and exec and only makes
    // async-signal-safe calls on a local signal set; the pending signal
    // survives exec, the mask too.
    unsafe {
        cmd.pre_exec(|| {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            libc::kill(libc::getpid(), libc::SIGTERM);
            Ok(())
        });
    }
    cmd.output().unwrap()
}

#[test]
fn a_signal_pending_before_cmd_starts_keeps_cmd_from_starting() {
    let tmp = tempfile::tempdir().unwrap();
    let ran = tmp.path().join("ran");
    let out = with_sigterm_pending(&[
        "hold".as_ref(),
        "--lock-path".as_ref(),
        tmp.path().as_ref(),
        "pending".as_ref(),
        "--".as_ref(),
        "touch".as_ref(),
        ran.as_ref(),
    ]);
    assert_eq!(code(&out), 143, "{}", stderr(&out));
    assert!(!ran.exists(), "hold started CMD after the signal");
    assert!(free(tmp.path(), "pending"), "the lock was released");

    let out = with_sigterm_pending(&["run".as_ref(), "touch".as_ref(), ran.as_ref()]);
    assert_eq!(code(&out), 143, "{}", stderr(&out));
    assert!(!ran.exists(), "run started CMD after the signal");
}

/// The command loads no unwinder library (`libgcc_s.so`) of its own:
/// `build.rs` links the C compiler's static one in, which spares every run
/// a library to map and its constructor's `cpuid` probe. Only where that
/// archive exists (a native GNU/Linux build with GCC's runtime installed).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn the_command_does_not_load_the_shared_unwinder() {
    // The compiler build.rs asks.
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let archive = std::process::Command::new(cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .expect("a C compiler (cargo links with it)");
    let archive = String::from_utf8_lossy(&archive.stdout).trim().to_owned();
    if !std::path::Path::new(&archive).is_absolute() {
        eprintln!("no libgcc_eh.a here ({archive}): the shared unwinder is the only one");
        return;
    }
    // The dynamic loader lists what it would load, and stops.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lockutils"))
        .arg("--version")
        .env("LD_TRACE_LOADED_OBJECTS", "1")
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains("libc.so"), "{listed}");
    assert!(!listed.contains("libgcc_s"), "{listed}");
}

/// `lockutils ARGS…` to completion with stderr a pipe whose reader is gone,
/// and `TMPDIR` set to `tmpdir`; its exit code.
fn with_stderr_closed(args: &[&OsStr], tmpdir: &Path) -> i32 {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both descriptors were just created and are owned by nobody else.
    let (reader, writer) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(reader);
    let mut child = std::process::Command::new(BIN);
    child
        .args(args)
        .env("TMPDIR", tmpdir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(writer);
    let what = format!("{child:?}");
    let mut p = Proc {
        child: child.spawn().unwrap(),
        what,
    };
    p.code()
}

/// The command's messages go to a stderr that may be a closed pipe (a log
/// reader that went away): the message is lost, but not the documented exit
/// code, and `run` still removes its directory.
#[test]
fn a_closed_stderr_pipe_changes_no_exit_code_and_run_still_cleans_up() {
    let tmp = tempfile::tempdir().unwrap();
    let scratch = tmp.path().join("tmp");
    fs::create_dir(&scratch).unwrap();
    let pid_file = tmp.path().join("cmd.pid");
    let (_holder, _) = holder(tmp.path(), "busy", &pid_file, None);
    let dir = tmp.path().as_os_str();
    let busy = [
        "hold".as_ref(),
        "--lock-path".as_ref(),
        dir,
        "--no-wait".as_ref(),
        "busy".as_ref(),
        "true".as_ref(),
    ];
    assert_eq!(with_stderr_closed(&busy, &scratch), CONFLICT, "lock busy");
    let missing = [
        "hold".as_ref(),
        "--lock-path".as_ref(),
        dir,
        "free".as_ref(),
        "/nonexistent/command".as_ref(),
    ];
    assert_eq!(with_stderr_closed(&missing, &scratch), 127, "hold, no CMD");
    let run = ["run".as_ref(), "/nonexistent/command".as_ref()];
    assert_eq!(with_stderr_closed(&run, &scratch), 127, "run, no CMD");
    let left: Vec<_> = fs::read_dir(&scratch).unwrap().flatten().collect();
    assert!(left.is_empty(), "run left {left:?}");
}

/// If `hold` is killed, CMD's own process dies with it, but a process CMD
/// started does not (it runs on without the lock), and `hold --help` says
/// so rather than promising that CMD never runs without the lock.
#[test]
fn only_cmds_own_process_dies_with_hold_and_the_help_says_so() {
    let help = stdout(&lockutils(["hold", "--help"]));
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        help.contains("CMD's own process is killed too, but not the processes CMD started"),
        "{help}"
    );
    assert!(!help.contains("never runs without the lock"), "{help}");

    let tmp = tempfile::tempdir().unwrap();
    let pids = tmp.path().join("pids");
    let mut hold = spawn([
        OsStr::new("hold"),
        "--lock-path".as_ref(),
        tmp.path().as_ref(),
        "job".as_ref(),
        "--".as_ref(),
        "sh".as_ref(),
        "-c".as_ref(),
        "sleep 30 & echo \"$$ $!\" > \"$1.tmp\"; mv \"$1.tmp\" \"$1\"; wait".as_ref(),
        "sh".as_ref(),
        pids.as_ref(),
    ]);
    let (cmd, started): (i32, i32) = wait_for("CMD to start", || {
        let text = fs::read_to_string(&pids).ok()?;
        let (a, b) = text.trim().split_once(' ')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    });
    hold.signal(libc::SIGKILL);
    assert_eq!(hold.code(), 137);
    wait_for("CMD to be killed with hold", || dead(cmd).then_some(()));
    let survived = !dead(started);
    // The test's own grandchild, by its pid.
    // SAFETY: kill has no memory arguments.
    unsafe { libc::kill(started, libc::SIGKILL) };
    assert!(survived, "what docs/cli.md says of CMD's children changed");
}
