//! What the command never does to a lock directory: unlink a file that is
//! not a lock file (data, a FIFO, a directory, a symbolic link), report one
//! as a free lock, or unlink a lock file that has other hard links (a process
//! that has the old file open would take it for the current lock file while
//! a newcomer locks a new one: two holders).
#![cfg(target_os = "linux")]

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_lockutils");

fn lockutils(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg(args[0])
        .arg("--lock-path")
        .arg(dir)
        .args(&args[1..]);
    cmd.output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn remove_and_show_leave_files_that_are_not_lock_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("data.txt"), "important data\n").unwrap();
    let fifo = std::ffi::CString::new(dir.join("fifo").to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    std::fs::create_dir(dir.join("dir")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.join("sym")).unwrap();

    for name in ["data.txt", "fifo", "dir", "sym"] {
        let out = lockutils(dir, &["remove", name]);
        let said = text(&out);
        assert_ne!(out.status.code(), Some(0), "remove {name}:\n{said}");
        assert!(said.contains("not a lock file"), "remove {name}:\n{said}");
        assert!(
            std::fs::symlink_metadata(dir.join(name)).is_ok(),
            "remove {name} unlinked it:\n{said}"
        );
        let out = lockutils(dir, &["show", name]);
        let said = text(&out);
        assert_ne!(out.status.code(), Some(0), "show {name}:\n{said}");
        assert!(
            !said.contains("free"),
            "show {name} calls it a free lock:\n{said}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("data.txt")).unwrap(),
        "important data\n"
    );
}

#[test]
fn remove_refuses_a_lock_file_with_another_hard_link() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("locks");
    std::fs::create_dir(&dir).unwrap();

    // A long-running user of the library: it takes and releases the lock,
    // and keeps the open file for its next acquisition.
    drop(
        lockutils_core::LockOptions::new("job")
            .external(true)
            .lock_path(&dir)
            .lock()
            .unwrap(),
    );
    // The lock file gets a second link (a backup with `cp -al`, …).
    std::fs::hard_link(dir.join("job"), tmp.path().join("job.bak")).unwrap();

    // Removing it would leave the kept file with a link, looking current.
    let out = lockutils(&dir, &["remove", "job"]);
    let said = text(&out);
    assert_ne!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("2 links"), "{said}");
    assert!(dir.join("job").exists(), "removed:\n{said}");

    // So the library's next hold and another process's exclude each other.
    let mine = lockutils_core::LockOptions::new("job")
        .external(true)
        .lock_path(&dir)
        .try_lock()
        .expect("free");
    let out = lockutils(&dir, &["hold", "--no-wait", "job", "--", "true"]);
    drop(mine);
    assert_eq!(out.status.code(), Some(75), "two holders:\n{}", text(&out));
}

/// A lock file with other links whose path was unlinked and re-created by a
/// remover that does not lock (`rm`, oslo's `remove_external_lock_file`)
/// while the other links remain: the identity check compares inodes for
/// files with more than one link, so the old file is not taken for the new.
#[test]
fn a_kept_file_with_other_links_is_checked_against_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("locks");
    std::fs::create_dir(&dir).unwrap();
    drop(
        lockutils_core::LockOptions::new("job")
            .external(true)
            .lock_path(&dir)
            .lock()
            .unwrap(),
    );
    std::fs::hard_link(dir.join("job"), tmp.path().join("job.bak1")).unwrap();
    std::fs::hard_link(dir.join("job"), tmp.path().join("job.bak2")).unwrap();
    std::fs::remove_file(dir.join("job")).unwrap();

    let mine = lockutils_core::LockOptions::new("job")
        .external(true)
        .lock_path(&dir)
        .try_lock()
        .expect("free");
    let out = lockutils(&dir, &["hold", "--no-wait", "job", "--", "true"]);
    drop(mine);
    assert_eq!(out.status.code(), Some(75), "two holders:\n{}", text(&out));
}
