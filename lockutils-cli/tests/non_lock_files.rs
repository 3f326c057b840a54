//! What the command never does to a lock directory: unlink a file that is
//! not a lock file (data, a FIFO, a directory, a symbolic link), report one
//! as a free lock, or unlink a lock file that has other hard links (a process
//! that has the old file open would take it for the current lock file while
//! a newcomer locks a new one: two holders).
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
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

/// A lock directory in `tmp` whose lock file `job` was locked and released
/// by this process, which keeps it open for its next acquisition, and has
/// `links` more hard links outside the directory (a backup with `cp -al`, …).
fn kept_with_links(tmp: &Path, links: usize) -> PathBuf {
    let dir = tmp.join("locks");
    std::fs::create_dir(&dir).unwrap();
    drop(job(&dir).lock().unwrap());
    for i in 0..links {
        std::fs::hard_link(dir.join("job"), tmp.join(format!("job.bak{i}"))).unwrap();
    }
    dir
}

fn job(dir: &Path) -> lockutils_core::LockOptions<'_, 'static> {
    lockutils_core::LockOptions::new("job")
        .external(true)
        .lock_path(dir)
}

/// This process's next hold of `job` and another process's exclude each
/// other.
fn assert_one_holder(dir: &Path) {
    let mine = job(dir).try_lock().expect("free");
    let out = lockutils(dir, &["hold", "--no-wait", "job", "--", "true"]);
    drop(mine);
    assert_eq!(out.status.code(), Some(75), "two holders:\n{}", text(&out));
}

#[test]
fn remove_refuses_a_lock_file_with_another_hard_link() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = kept_with_links(tmp.path(), 1);

    // Removing it would leave the kept file with a link, looking current.
    let out = lockutils(&dir, &["remove", "job"]);
    let said = text(&out);
    assert_ne!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("2 links"), "{said}");
    assert!(dir.join("job").exists(), "removed:\n{said}");
    assert_one_holder(&dir);
}

/// A lock file with other links whose path was unlinked by a remover that
/// does not lock (`rm`, oslo's `remove_external_lock_file`) while the other
/// links remain: the identity check compares inodes for files with more than
/// one link, so the kept old file is not taken for the new one at the path.
#[test]
fn a_kept_file_with_other_links_is_checked_against_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = kept_with_links(tmp.path(), 2);
    std::fs::remove_file(dir.join("job")).unwrap();
    assert_one_holder(&dir);
}
