//! A lock directory given as a relative path names another directory once the
//! process changes its working directory: the lock file opened under the old
//! one must not be reused for the new one (it would still pass the link
//! check, and exclude nobody who locks the new file). Its own test binary:
//! it changes the process's working directory, and the descriptor cache is
//! per process.

use std::fs::File;
use std::path::Path;
use std::os::unix::io::AsRawFd;

use lockutils_core::file::kept_descriptors;
use lockutils_core::{Error, LockOptions};

/// Takes a whole-file OFD write lock on `file`, as another holder would.
fn ofd_write_lock(file: &File) {
    // SAFETY: all-zero bytes are a valid `flock`; zero start and length with
    // SEEK_SET cover the whole file, and OFD requests need `l_pid == 0`.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as _;
    fl.l_whence = libc::SEEK_SET as _;
    // SAFETY: `file` is open for the call; `fl` outlives it.
    let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &fl) };
    assert_eq!(r, 0, "lock: {}", std::io::Error::last_os_error());
}

#[test]
fn a_relative_lock_directory_follows_the_working_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let (old, new) = (tmp.path().join("old"), tmp.path().join("new"));
    for dir in [&old, &new] {
        std::fs::create_dir_all(dir.join("locks")).unwrap();
    }
    let opts = LockOptions::new("rel").external(true).lock_path(Path::new("locks"));

    std::env::set_current_dir(&old).unwrap();
    drop(opts.lock().unwrap());
    assert!(
        old.join("locks/rel").exists(),
        "locked under the old directory"
    );
    assert_eq!(kept_descriptors(), 0, "a relative lock file is not kept");

    std::env::set_current_dir(&new).unwrap();
    let other = File::create(new.join("locks/rel")).unwrap();
    ofd_write_lock(&other);
    match opts.try_lock() {
        Err(Error::WouldBlock { .. }) => {}
        other => {
            panic!("the new directory's lock file is held: expected WouldBlock, got {other:?}")
        }
    }
    drop(other);
    drop(opts.lock().unwrap());
}
