//! A lock file another process has open is never unlinked (issue 9): a
//! waiter that polls on its descriptor (oslo.concurrency, fasteners) would
//! lock the unlinked file while a newcomer locks a new one at the path.
//!
//! The Python tests need the peer: `LOCKUTILS_TEST_PYTHON=$(scripts/python-peer.sh)
//! cargo test -p lockutils-core --test remove_in_use -- --include-ignored`.
#![cfg(target_os = "linux")]

mod common;

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::wait_until;
use lockutils_core::backend::{Admin, FileBackend, Removal};
use lockutils_core::{Error, InUse, LockGuard, LockOptions, Registry};

/// Set in the child that [`a_plain_process_with_the_file_open_blocks_removal`]
/// starts from this test binary: the file it opens and keeps open.
const OPEN_FILE_ENV: &str = "LOCKUTILS_TEST_KEEP_OPEN";

/// Set with [`OPEN_FILE_ENV`]: how the child opens the file ([`Opener`]).
const OPENER_ENV: &str = "LOCKUTILS_TEST_KEEP_OPEN_AS";

/// How the child of [`keep_open`] opens the file.
#[derive(Clone, Copy, Debug)]
enum Opener {
    /// A plain `open`, as oslo.concurrency's waiters do.
    Plain,
    /// `O_NONBLOCK`, as a program that polls on the descriptor may.
    Nonblocking,
    /// As lockutils: locked and released, so the descriptor is kept open.
    Lockutils,
}

/// One test at a time in this process: a child forked by one test holds
/// copies of every descriptor the process has open until it execs, so it
/// would hold another test's lock (an open file description's lock lives
/// until its last descriptor closes) or have its file open for a moment,
/// and that test would see the file busy or in use.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The child's body: opens the file named by [`OPEN_FILE_ENV`] (no lock),
/// says so on stdout, and keeps it open until its stdin closes.
#[test]
fn keep_file_open_child() {
    let Some(path) = std::env::var_os(OPEN_FILE_ENV) else {
        return;
    };
    let opener = std::env::var(OPENER_ENV).unwrap_or_default();
    let _file = if opener == format!("{:?}", Opener::Lockutils) {
        let path = PathBuf::from(path);
        let (dir, name) = (path.parent().unwrap(), path.file_name().unwrap());
        drop(
            LockOptions::new(name.to_str().unwrap())
                .external(true)
                .lock_path(dir)
                .lock()
                .unwrap(),
        );
        assert_eq!(lockutils_core::file::kept_descriptors(), 1);
        None
    } else if opener == format!("{:?}", Opener::Nonblocking) {
        use std::os::unix::fs::OpenOptionsExt;
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .unwrap();
        Some(file)
    } else {
        Some(fs::File::open(path).unwrap())
    };
    println!("open");
    let _ = io::Read::read(&mut io::stdin(), &mut [0u8; 1]);
}

/// A child process, killed when dropped.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Peer {
    fn pid(&self) -> u32 {
        self.0.id()
    }
}

/// Whether process `pid` has the file at `path` open.
fn has_open(pid: u32, path: &Path) -> bool {
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

fn opts<'a>(name: &'a str, dir: &'a Path, registry: &'a Registry) -> LockOptions<'a, 'a> {
    LockOptions::new(name)
        .external(true)
        .lock_path(dir)
        .registry(registry)
}

fn assert_in_use_by(result: lockutils_core::Result<bool>, pid: u32) {
    match result {
        Err(e) => {
            let in_use = InUse::of(&e).unwrap_or_else(|| panic!("not an InUse error: {e:?}"));
            assert_eq!(in_use.pid(), Some(pid), "{e}");
            assert!(
                matches!(&e, Error::LockFile { source, .. } if source.kind() == io::ErrorKind::ResourceBusy)
            );
            assert!(
                e.report().to_string().contains(&format!("process {pid}")),
                "{}",
                e.report()
            );
        }
        Ok(removed) => {
            panic!("removal went ahead (removed: {removed}) while pid {pid} has the file open")
        }
    }
}

#[test]
fn a_file_nobody_else_has_open_is_removed() {
    let _serial = serial();
    let dir = common::tempdir();
    let reg = Registry::new();
    let path = dir.path().join("nobody");
    // Locked and released here: this process keeps it open, which does not count.
    drop(opts("nobody", dir.path(), &reg).lock().unwrap());
    assert!(path.exists());
    assert!(opts("nobody", dir.path(), &reg).remove_lock_file().unwrap());
    assert!(!path.exists());
    // Through the admin interface, and after a process that had it open exited.
    drop(opts("nobody", dir.path(), &reg).lock().unwrap());
    let mut peer = Peer(
        Command::new("cat")
            .stdin(fs::File::open(&path).unwrap())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    peer.0.wait().unwrap();
    let admin = FileBackend::new(dir.path());
    assert_eq!(admin.remove_if_free("nobody").unwrap(), Removal::Removed);
    assert!(!path.exists());
}

/// Starts this test binary as a child that keeps `path` open, opened as
/// `opener` says (see [`keep_file_open_child`]), and waits until it has.
fn keep_open(path: &Path, opener: Opener) -> Peer {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "keep_file_open_child",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(OPEN_FILE_ENV, path)
    .env(OPENER_ENV, format!("{opener:?}"))
    .stdin(Stdio::piped())
    .stdout(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut out = io::BufReader::new(child.stdout.take().unwrap());
    let peer = Peer(child);
    let mut line = String::new();
    while !line.contains("open") {
        line.clear();
        let read = io::BufRead::read_line(&mut out, &mut line).unwrap();
        assert_ne!(read, 0, "child exited");
    }
    assert!(has_open(peer.pid(), path));
    peer
}

#[test]
fn a_plain_process_with_the_file_open_blocks_removal() {
    let _serial = serial();
    let dir = common::tempdir();
    let reg = Registry::new();
    let path = dir.path().join("kept-open");
    drop(opts("kept-open", dir.path(), &reg).lock().unwrap());
    let peer = keep_open(&path, Opener::Plain);

    assert_in_use_by(
        opts("kept-open", dir.path(), &reg).remove_lock_file(),
        peer.pid(),
    );
    let admin = FileBackend::new(dir.path());
    let removal = admin.remove_if_free("kept-open").unwrap();
    assert!(
        matches!(removal, Removal::InUse(u) if u.pid() == Some(peer.pid())),
        "{removal:?}"
    );
    assert!(admin.clean().unwrap().is_empty());
    let guard = opts("kept-open", dir.path(), &reg).lock().unwrap();
    assert!(!LockGuard::unlock_and_remove(guard).unwrap());
    assert!(path.exists(), "removed while open in pid {}", peer.pid());

    drop(peer);
    assert!(opts("kept-open", dir.path(), &reg)
        .remove_lock_file()
        .unwrap());
    assert!(!path.exists());
}

/// A program that opened the lock file `O_NONBLOCK` (one half of lockutils'
/// mark) and polls on it is still a process that has the file open.
#[test]
fn a_process_with_the_file_open_nonblocking_blocks_removal() {
    let _serial = serial();
    let dir = common::tempdir();
    let reg = Registry::new();
    let path = dir.path().join("nonblocking");
    drop(opts("nonblocking", dir.path(), &reg).lock().unwrap());
    let peer = keep_open(&path, Opener::Nonblocking);
    assert_in_use_by(
        opts("nonblocking", dir.path(), &reg).remove_lock_file(),
        peer.pid(),
    );
    assert!(path.exists(), "removed while open in pid {}", peer.pid());
}

// ---- Python peers: waiters that poll on the descriptor they opened ----

fn peer_python() -> PathBuf {
    let python = std::env::var_os("LOCKUTILS_TEST_PYTHON")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .expect(
            "LOCKUTILS_TEST_PYTHON is not set; run `bash .ci/run`, or \
             LOCKUTILS_TEST_PYTHON=$(scripts/python-peer.sh) cargo test -p lockutils-core \
             --test remove_in_use -- --include-ignored",
        );
    let ok = Command::new(&python)
        .args(["-c", "import oslo_concurrency.lockutils, fasteners"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{} cannot import oslo_concurrency and fasteners",
        python.display()
    );
    python
}

/// A waiter that polls (non-blocking `fcntl` with sleeps) on the lock file,
/// logs `enter`/`exit` around a hold of `hold_secs`.
const OSLO_WAITER: &str = "import sys, time\n\
from oslo_concurrency import lockutils\n\
name, lock_path, log, hold = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])\n\
with lockutils.lock(name, external=True, lock_path=lock_path):\n\
\x20   open(log, 'a').write('enter\\n')\n\
\x20   time.sleep(hold)\n\
\x20   open(log, 'a').write('exit\\n')\n";

const FASTENERS_WAITER: &str = "import sys, os, time, fasteners\n\
name, lock_path, log, hold = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])\n\
with fasteners.InterProcessLock(os.path.join(lock_path, name)):\n\
\x20   open(log, 'a').write('enter\\n')\n\
\x20   time.sleep(hold)\n\
\x20   open(log, 'a').write('exit\\n')\n";

fn spawn_waiter(script: &str, name: &str, dir: &Path, log: &Path) -> Peer {
    Peer(
        Command::new(peer_python())
            .args([OsStr::new("-c"), script.as_ref(), name.as_ref()])
            .arg(dir)
            .arg(log)
            .arg("2")
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn log_of(log: &Path) -> String {
    fs::read_to_string(log).unwrap_or_default()
}

/// How the lockutils side lets go of the lock while the peer polls.
#[derive(Clone, Copy, Debug)]
enum Order {
    /// Release, then remove (`remove_lock_file` and the admin interface).
    ReleaseThenRemove,
    /// Remove while releasing (`unlock_and_remove`).
    RemoveOnRelease,
}

/// A lockutils holder; the peer starts waiting (polling, file open); the
/// holder lets go and removal is attempted: it must be refused, the peer
/// must get the lock on the file still at the path, and a newcomer must be
/// kept out while the peer holds it: never two holders.
fn polling_waiter_keeps_the_file(script: &str, order: Order) {
    let dir = common::tempdir();
    let name = "polled";
    let path = dir.path().join(name);
    let log = dir.path().join("peer.log");
    let (reg, newcomer) = (Registry::new(), Registry::new());
    let holder = opts(name, dir.path(), &reg).lock().unwrap();
    let peer = spawn_waiter(script, name, dir.path(), &log);
    wait_until(
        "the peer opens the lock file",
        Duration::from_secs(30),
        || has_open(peer.pid(), &path),
    );
    // Still polling: it cannot have the lock.
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(log_of(&log), "", "{order:?}");

    match order {
        Order::ReleaseThenRemove => {
            drop(holder);
            match opts(name, dir.path(), &reg)
                .blocking(false)
                .remove_lock_file()
            {
                // The peer won the race to the lock: held, so not removed either.
                Err(e) if e.is_contention() => {}
                other => assert_in_use_by(other, peer.pid()),
            }
            let admin = FileBackend::new(dir.path());
            let removal = admin.remove_if_free(name).unwrap();
            let by_peer = matches!(removal, Removal::InUse(u) if u.pid() == Some(peer.pid()));
            assert!(removal == Removal::Busy || by_peer, "{removal:?}");
        }
        Order::RemoveOnRelease => {
            assert!(!LockGuard::unlock_and_remove(holder).unwrap(), "removed");
        }
    }
    assert!(
        path.exists(),
        "{order:?}: removed while the peer polls on it"
    );

    wait_until("the peer takes the lock", Duration::from_secs(30), || {
        log_of(&log).contains("enter")
    });
    // The peer holds the file at the path: a newcomer is kept out.
    if !log_of(&log).contains("exit") {
        match opts(name, dir.path(), &newcomer).try_lock() {
            Err(e) if e.is_contention() => {}
            Ok(_) if log_of(&log).contains("exit") => {}
            other => panic!("{order:?}: a newcomer got in while the peer holds it: {other:?}"),
        }
    }
    let mut peer = peer;
    assert!(peer.0.wait().unwrap().success());
    assert_eq!(log_of(&log), "enter\nexit\n");
    // Nobody has it open any more: now it goes.
    assert!(opts(name, dir.path(), &reg).remove_lock_file().unwrap());
    assert!(!path.exists());
}

#[test]
#[ignore = "needs Python oslo.concurrency; run `bash .ci/run`, or LOCKUTILS_TEST_PYTHON=$(scripts/python-peer.sh) cargo test -p lockutils-core --test remove_in_use -- --include-ignored"]
fn an_oslo_polling_waiter_keeps_the_file_release_then_remove() {
    let _serial = serial();
    polling_waiter_keeps_the_file(OSLO_WAITER, Order::ReleaseThenRemove);
}

#[test]
#[ignore = "needs Python oslo.concurrency; run `bash .ci/run`, or LOCKUTILS_TEST_PYTHON=$(scripts/python-peer.sh) cargo test -p lockutils-core --test remove_in_use -- --include-ignored"]
fn an_oslo_polling_waiter_keeps_the_file_remove_on_release() {
    let _serial = serial();
    polling_waiter_keeps_the_file(OSLO_WAITER, Order::RemoveOnRelease);
}

#[test]
#[ignore = "needs Python fasteners; run `bash .ci/run`, or LOCKUTILS_TEST_PYTHON=$(scripts/python-peer.sh) cargo test -p lockutils-core --test remove_in_use -- --include-ignored"]
fn a_fasteners_polling_waiter_keeps_the_file_release_then_remove() {
    let _serial = serial();
    polling_waiter_keeps_the_file(FASTENERS_WAITER, Order::ReleaseThenRemove);
}

#[test]
#[ignore = "needs Python fasteners; run `bash .ci/run`, or LOCKUTILS_TEST_PYTHON=$(scripts/python-peer.sh) cargo test -p lockutils-core --test remove_in_use -- --include-ignored"]
fn a_fasteners_polling_waiter_keeps_the_file_remove_on_release() {
    let _serial = serial();
    polling_waiter_keeps_the_file(FASTENERS_WAITER, Order::RemoveOnRelease);
}

#[test]
fn another_lockutils_process_keeping_the_file_open_does_not_block_removal() {
    let _serial = serial();
    let dir = common::tempdir();
    let reg = Registry::new();
    let path = dir.path().join("kept-by-lockutils");
    drop(opts("kept-by-lockutils", dir.path(), &reg).lock().unwrap());
    // Its kept descriptor is checked again before it is ever locked.
    let _peer = keep_open(&path, Opener::Lockutils);
    assert!(opts("kept-by-lockutils", dir.path(), &reg)
        .remove_lock_file()
        .unwrap());
    assert!(!path.exists());
}
