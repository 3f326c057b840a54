//! Review reproducer: a hard link to a lock file defeats the link-count
//! check (`file::is_current` only tests `st_nlink != 0`), so a process that
//! kept its descriptor across a `lockutils remove` locks the unlinked inode
//! while `lockutils hold` creates and locks a new file at the path: two
//! exclusive holders of one lock.
#![cfg(target_os = "linux")]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_lockutils");

#[test]
fn a_hard_link_lets_two_processes_hold_one_lock_after_remove() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("locks");
    std::fs::create_dir(&dir).unwrap();
    let path = dir.join("job");

    // A long-running library user: takes and releases the lock; its
    // descriptor is kept (fd_cache) for the next acquisition.
    drop(
        lockutils_core::LockOptions::new("job").external(true)
            .lock_path(&dir)
            .lock()
            .unwrap(),
    );

    // Someone hard-links the lock file elsewhere on the file system
    // (a backup, `cp -al`, any user that may open the file).
    std::fs::hard_link(&path, tmp.path().join("job.bak")).unwrap();

    // An operator removes the free lock file: the library's safe removal.
    let out = Command::new(BIN)
        .args(["remove", "--lock-path"])
        .arg(&dir)
        .arg("job")
        .output()
        .unwrap();
    eprintln!("remove: {}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(out.status.code(), Some(0));

    // The library user locks again: it reuses its kept descriptor, whose
    // inode still has a link (job.bak), so it passes the identity check.
    let mine = lockutils_core::LockOptions::new("job").external(true)
        .lock_path(&dir)
        .blocking(false)
        .lock()
        .expect("free: the file was removed");

    // Meanwhile another process takes the same lock by name.
    let out = Command::new(BIN)
        .args(["hold", "--no-wait", "--lock-path"])
        .arg(&dir)
        .args(["job", "--", "true"])
        .output()
        .unwrap();
    eprintln!(
        "hold: exit {:?} {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    drop(mine);
    assert_eq!(
        out.status.code(),
        Some(75),
        "`hold --no-wait job` got the lock while this process held it: two exclusive holders"
    );
}

/// The same hole without any removal: a lock directory reached through a
/// symbolic link that is switched (`ln -sfn releases/2 current`, an atomic
/// rename of the link, not of the lock directory) while a process keeps its
/// descriptor. Its next acquisition reuses the kept file of the old
/// directory (still linked there), while a newcomer locks the file of the
/// new one: two exclusive holders of the lock at `current/job`.
#[test]
fn a_switched_directory_symlink_lets_two_processes_hold_one_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let (one, two) = (tmp.path().join("releases-1"), tmp.path().join("releases-2"));
    std::fs::create_dir(&one).unwrap();
    std::fs::create_dir(&two).unwrap();
    let current = tmp.path().join("current");
    std::os::unix::fs::symlink(&one, &current).unwrap();

    drop(
        lockutils_core::LockOptions::new("job").external(true)
            .lock_path(&current)
            .lock()
            .unwrap(),
    );
    // Deployment switches the link atomically.
    let next = tmp.path().join("current.new");
    std::os::unix::fs::symlink(&two, &next).unwrap();
    std::fs::rename(&next, &current).unwrap();

    let mine = lockutils_core::LockOptions::new("job").external(true)
        .lock_path(&current)
        .blocking(false)
        .lock()
        .expect("free");
    let out = Command::new(BIN)
        .args(["hold", "--no-wait", "--lock-path"])
        .arg(&current)
        .args(["job", "--", "true"])
        .output()
        .unwrap();
    drop(mine);
    assert_eq!(
        out.status.code(),
        Some(75),
        "`hold --no-wait` of {}/job got the lock while this process held it",
        current.display()
    );
}
