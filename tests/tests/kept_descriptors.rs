//! Lock files kept open between acquisitions: reused, never a file that is no
//! longer at the path (removed by another process, or in a lock directory no
//! longer configured), never inherited by a command, bounded, and closed when
//! idle.
//!
//! The set of kept files is per process, so every test takes [`SERIAL`].

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lockutils::{LockGuard, LockOptions};
use lockutils_core::file::{kept_descriptors, KEPT_IDLE_CLOSE, MAX_KEPT};
use lockutils_tests::{Holder, Spawned};

const HOLDER: &str = env!("CARGO_BIN_EXE_lockutils-holder");
const PATIENCE: Duration = Duration::from_secs(20);

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn hold_in_child(name: &str, dir: &Path) -> Spawned {
    Holder::new(HOLDER, name, dir)
        .hold_ms(600_000)
        .spawn_ready(&dir.join(format!("{name}.ready")), PATIENCE)
}

/// How many of this process's descriptors are open on the file at `path`.
fn open_descriptors_on(path: &Path) -> usize {
    let ino = std::fs::metadata(path).unwrap().ino();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::metadata(e.ok()?.path()).ok())
        .filter(|m| m.ino() == ino)
        .count()
}

#[test]
fn a_lock_file_locked_again_reuses_the_kept_descriptor() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("again");
    let opts = LockOptions::new("again")
        .external(true)
        .lock_path(dir.path());
    drop(opts.lock().unwrap());
    assert!(kept_descriptors() >= 1);
    assert_eq!(open_descriptors_on(&path), 1, "kept open while unlocked");
    for _ in 0..3 {
        let g = opts.lock().unwrap();
        assert_eq!(open_descriptors_on(&path), 1, "the kept file, not another");
        drop(g);
    }
    // Kept unlocked: another process can take it.
    Holder::new(HOLDER, "again", dir.path())
        .no_wait()
        .run(PATIENCE)
        .assert_code(0);
}

#[test]
fn a_kept_file_removed_by_another_process_is_never_locked_again() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let opts = LockOptions::new("removed")
        .external(true)
        .lock_path(dir.path());
    drop(opts.lock().unwrap());
    let kept_ino = std::fs::metadata(dir.path().join("removed")).unwrap().ino();
    // Another process removes the file safely, and a third holds the new one.
    Holder::new(HOLDER, "removed", dir.path())
        .remove_after()
        .run(PATIENCE)
        .assert_code(0);
    let holder = hold_in_child("removed", dir.path());
    let new_ino = std::fs::metadata(dir.path().join("removed")).unwrap().ino();
    assert_ne!(kept_ino, new_ino);
    let r = opts.try_lock();
    assert!(
        r.as_ref().is_err_and(|e| e.is_contention()),
        "locked the kept, removed file while another process holds the new one: {r:?}"
    );
    holder.kill();
    let g = opts.lock().unwrap();
    let held = std::fs::metadata(LockGuard::path(&g).unwrap())
        .unwrap()
        .ino();
    assert_eq!(held, new_ino);
    drop(g);
}

#[test]
fn a_changed_lock_directory_never_reuses_a_file_of_the_old_one() {
    let _serial = serial();
    let (old, new) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    lockutils::set_defaults(old.path());
    drop(lockutils::external_lock("moved").unwrap());
    lockutils::set_defaults(new.path());
    let holder = hold_in_child("moved", new.path());
    let r = LockOptions::new("moved").external(true).try_lock();
    lockutils::clear_defaults();
    assert!(
        r.as_ref().is_err_and(|e| e.is_contention()),
        "locked the old directory's file: {r:?}"
    );
    drop(holder);

    // The same with an explicit lock path.
    drop(
        LockOptions::new("moved")
            .external(true)
            .lock_path(old.path())
            .lock()
            .unwrap(),
    );
    let holder = hold_in_child("moved", new.path());
    let r = LockOptions::new("moved")
        .external(true)
        .lock_path(new.path())
        .try_lock();
    assert!(r.as_ref().is_err_and(|e| e.is_contention()), "{r:?}");
    drop(holder);
}

#[test]
fn kept_and_held_lock_files_are_not_inherited_by_commands() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let opts = LockOptions::new("inherit")
        .external(true)
        .lock_path(dir.path());
    drop(opts.lock().unwrap());
    let held = LockOptions::new("inherit-held")
        .external(true)
        .lock_path(dir.path())
        .lock()
        .unwrap();
    assert!(kept_descriptors() >= 1);
    let out = Command::new("ls")
        .args(["-l", "/proc/self/fd/"])
        .output()
        .expect("run ls");
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        !listing.contains(dir.path().to_str().unwrap()),
        "a lock file descriptor leaked into a child:\n{listing}"
    );
    drop(held);
}

#[test]
fn kept_descriptors_are_bounded_and_closed_when_idle() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    for i in 0..MAX_KEPT + 8 {
        let name = format!("many-{i}");
        drop(
            LockOptions::new(&name)
                .external(true)
                .lock_path(dir.path())
                .lock()
                .unwrap(),
        );
        assert!(kept_descriptors() <= MAX_KEPT);
    }
    assert_eq!(kept_descriptors(), MAX_KEPT);
    let idle_since = Instant::now();
    while kept_descriptors() != 0 {
        assert!(
            idle_since.elapsed() < KEPT_IDLE_CLOSE + PATIENCE,
            "kept files never closed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(idle_since.elapsed() + Duration::from_millis(50) >= KEPT_IDLE_CLOSE);
}
