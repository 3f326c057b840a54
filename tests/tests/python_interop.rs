//! Interop with the Python peer: lockutils and oslo.concurrency (whose
//! external locks are fasteners' `fcntl.lockf` locks) exclude each other on
//! the same lock files, and lockutils' shared/exclusive modes match fasteners'
//! `InterProcessReaderWriterLock` read/write locks.
//!
//! Ignored in a plain run; they need `LOCKUTILS_TEST_PYTHON` (see
//! `scripts/python-peer.sh`) and fail, never skip, without it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lockutils::{Error, LockGuard, LockOptions};
use lockutils_tests::process::Spawned;
use lockutils_tests::python::spawn_script;
use lockutils_tests::wait_for_file;

const PATIENCE: Duration = Duration::from_secs(20);

/// Takes the lock non-blocking with oslo's `lockutils.lock` and prints the
/// lock file path oslo computes, then `acquired` or `busy`.
///
/// argv: name, prefix, lock_path.
const OSLO_TRY: &str = r#"
import os, sys
from oslo_concurrency import lockutils
name, prefix, lock_path = sys.argv[1:4]
print(os.fsdecode(lockutils.external_lock(name, prefix, lock_path).path))
try:
    with lockutils.lock(name, lock_file_prefix=prefix, external=True,
                        lock_path=lock_path, blocking=False):
        print("acquired")
except lockutils.AcquireLockFailedException:
    print("busy")
"#;

/// Holds a lock until the release file appears (at most a minute): oslo's
/// external lock (argv: oslo, ready, release, name, prefix, lock_path) or a
/// fasteners reader/writer lock (argv: read|write, ready, release, path).
/// Creates the ready file once it holds.
const HOLD: &str = r#"
import os, sys, time
kind, ready, release = sys.argv[1:4]
if kind == "oslo":
    from oslo_concurrency import lockutils
    name, prefix, lock_path = sys.argv[4:7]
    held = lockutils.lock(name, lock_file_prefix=prefix, external=True,
                          lock_path=lock_path)
else:
    import fasteners
    rw = fasteners.InterProcessReaderWriterLock(sys.argv[4])
    held = rw.read_lock() if kind == "read" else rw.write_lock()
with held:
    open(ready, "w").close()
    deadline = time.monotonic() + 60
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.005)
"#;

/// Tries fasteners read and write locks without blocking and prints whether
/// each was acquired (`read True`, `write False`, ...). argv: path.
const FASTENERS_TRY: &str = r#"
import sys, fasteners
rw = fasteners.InterProcessReaderWriterLock(sys.argv[1])
got = rw.acquire_read_lock(blocking=False)
print("read", got)
if got:
    rw.release_read_lock()
got = rw.acquire_write_lock(blocking=False)
print("write", got)
if got:
    rw.release_write_lock()
"#;

/// A Python process holding a lock, released by creating a file.
struct PythonHolder {
    child: Spawned,
    release: PathBuf,
}

impl PythonHolder {
    /// Starts the `HOLD` script with `lock` arguments and waits until it holds.
    fn start(dir: &Path, kind: &str, lock: &[&str]) -> Self {
        let ready = dir.join(format!("{kind}.ready"));
        let release = dir.join(format!("{kind}.release"));
        let mut args = vec![kind, path_str(&ready), path_str(&release)];
        args.extend_from_slice(lock);
        let mut child = spawn_script(HOLD, args);
        wait_for_file(&ready, &mut child, PATIENCE);
        PythonHolder { child, release }
    }

    /// Lets it release and checks it exited cleanly.
    fn release(self) {
        std::fs::File::create(&self.release).unwrap();
        self.child.wait(PATIENCE).assert_code(0);
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

fn oslo_try(name: &str, prefix: &str, dir: &Path) -> Vec<String> {
    let exit = spawn_script(OSLO_TRY, [name, prefix, path_str(dir)]).wait(PATIENCE);
    exit.assert_code(0);
    exit.stdout.lines().map(str::to_owned).collect()
}

fn fasteners_try(path: &Path) -> (bool, bool) {
    let exit = spawn_script(FASTENERS_TRY, [path_str(path)]).wait(PATIENCE);
    exit.assert_code(0);
    match exit.stdout.split_whitespace().collect::<Vec<_>>()[..] {
        ["read", read, "write", write] => (read == "True", write == "True"),
        _ => panic!("unexpected output from fasteners: {:?}", exit.stdout),
    }
}

#[track_caller]
fn assert_would_block<T: std::fmt::Debug>(result: lockutils::Result<T>) {
    match result {
        Err(Error::WouldBlock { .. }) => {}
        other => panic!("expected WouldBlock, got {other:?}"),
    }
}

#[test]
#[ignore = "needs Python oslo.concurrency; run `bash .ci/run`, or LOCKUTILS_TEST_PYTHON=$(scripts/python-peer.sh) cargo test -p lockutils-tests -- --ignored"]
fn a_rust_holder_excludes_oslo_on_the_same_file_name() {
    let dir = tempfile::tempdir().unwrap();
    // oslo joins the prefix with `-` unless it ends with one, and turns `/`
    // in the name into `_`.
    for (name, prefix, file) in [
        ("instance/1", "nova", "nova-instance_1"),
        ("instance/2", "nova-", "nova-instance_2"),
    ] {
        let guard = LockOptions::new(name)
            .prefix(prefix)
            .external(true)
            .lock_path(dir.path())
            .lock()
            .unwrap();
        let path = dir.path().join(file);
        assert_eq!(LockGuard::path(&guard), Some(path.as_path()));
        let expected = [path_str(&path), "busy"];
        assert_eq!(
            oslo_try(name, prefix, dir.path()),
            expected,
            "while Rust holds {name}"
        );

        drop(guard);
        let expected = [path_str(&path), "acquired"];
        assert_eq!(
            oslo_try(name, prefix, dir.path()),
            expected,
            "after Rust released {name}"
        );
    }
}

#[test]
#[ignore = "needs Python oslo.concurrency; run `bash .ci/run`, or LOCKUTILS_TEST_PYTHON=$(scripts/python-peer.sh) cargo test -p lockutils-tests -- --ignored"]
fn an_oslo_holder_makes_rust_try_lock_would_block_until_released() {
    let dir = tempfile::tempdir().unwrap();
    let opts = LockOptions::new("compute/host-1")
        .prefix("nova")
        .external(true)
        .lock_path(dir.path());
    let python = PythonHolder::start(
        dir.path(),
        "oslo",
        &["compute/host-1", "nova", path_str(dir.path())],
    );
    assert!(dir.path().join("nova-compute_host-1").exists());

    assert_would_block(opts.try_lock());
    let timed = opts.timeout(Duration::from_millis(100)).lock();
    assert!(matches!(timed, Err(Error::Timeout { .. })), "{timed:?}");

    python.release();
    let guard = opts.timeout(PATIENCE).lock().unwrap();
    assert_eq!(
        LockGuard::path(&guard),
        Some(dir.path().join("nova-compute_host-1").as_path())
    );
}

#[test]
#[ignore = "needs Python oslo.concurrency; run `bash .ci/run`, or LOCKUTILS_TEST_PYTHON=$(scripts/python-peer.sh) cargo test -p lockutils-tests -- --ignored"]
fn a_fasteners_read_lock_admits_rust_shared_but_not_exclusive() {
    let dir = tempfile::tempdir().unwrap();
    let opts = LockOptions::new("rw-read")
        .external(true)
        .lock_path(dir.path());
    let file = dir.path().join("rw-read");
    let python = PythonHolder::start(dir.path(), "read", &[path_str(&file)]);

    let shared = opts.shared().try_lock().expect("readers share the file");
    drop(shared);
    assert_would_block(opts.try_lock());

    python.release();
    drop(opts.try_lock().expect("free after the Python reader left"));
}

#[test]
#[ignore = "needs Python oslo.concurrency; run `bash .ci/run`, or LOCKUTILS_TEST_PYTHON=$(scripts/python-peer.sh) cargo test -p lockutils-tests -- --ignored"]
fn a_fasteners_write_lock_excludes_rust_shared_and_exclusive() {
    let dir = tempfile::tempdir().unwrap();
    let opts = LockOptions::new("rw-write")
        .external(true)
        .lock_path(dir.path());
    let file = dir.path().join("rw-write");
    let python = PythonHolder::start(dir.path(), "write", &[path_str(&file)]);

    assert_would_block(opts.shared().try_lock());
    assert_would_block(opts.try_lock());

    python.release();
    drop(
        opts.shared()
            .try_lock()
            .expect("free after the Python writer left"),
    );
}

#[test]
#[ignore = "needs Python oslo.concurrency; run `bash .ci/run`, or LOCKUTILS_TEST_PYTHON=$(scripts/python-peer.sh) cargo test -p lockutils-tests -- --ignored"]
fn rust_shared_and_exclusive_holds_are_seen_by_fasteners() {
    let dir = tempfile::tempdir().unwrap();
    let opts = LockOptions::new("rw-rust")
        .external(true)
        .lock_path(dir.path());
    let file = dir.path().join("rw-rust");

    let shared = opts.shared().lock().unwrap();
    assert_eq!(fasteners_try(&file), (true, false), "while Rust reads");
    drop(shared);

    let exclusive = opts.lock().unwrap();
    assert_eq!(fasteners_try(&file), (false, false), "while Rust writes");
    drop(exclusive);

    assert_eq!(fasteners_try(&file), (true, true), "after Rust released");
}
