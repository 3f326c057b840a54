//! A lock directory given as a relative path names another directory once the
//! process changes its working directory: nothing opened under the old one
//! may stand in for the new one (it would still pass the link check, and
//! exclude nobody who locks the new file). Neither a lock file kept open
//! between acquisitions nor an orphaned kernel wait left by a timed-out
//! acquisition. Its own test binary, with one test: it changes the process's
//! working directory, and the kept files and orphaned waits are per process.

mod common;

use std::fs::File;
use std::path::Path;
use std::time::Duration;

use lockutils_core::file::kept_descriptors;
use lockutils_core::{Error, LockOptions};

/// `dir/locks/name`, created and locked by another holder.
fn held_elsewhere(dir: &Path, name: &str) -> File {
    let file = File::create(dir.join("locks").join(name)).unwrap();
    assert!(
        common::ofd_lock(&file, libc::F_WRLCK, false),
        "lock: {}",
        std::io::Error::last_os_error()
    );
    file
}

#[test]
fn a_relative_lock_directory_follows_the_working_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let (old, new) = (tmp.path().join("old"), tmp.path().join("new"));
    for dir in [&old, &new] {
        std::fs::create_dir_all(dir.join("locks")).unwrap();
    }
    a_kept_file_is_not_reused(&old, &new);
    an_orphaned_wait_is_not_adopted(&old, &new);
}

fn a_kept_file_is_not_reused(old: &Path, new: &Path) {
    let opts = LockOptions::new("kept")
        .external(true)
        .lock_path(Path::new("locks"));
    std::env::set_current_dir(old).unwrap();
    drop(opts.lock().unwrap());
    assert!(
        old.join("locks/kept").exists(),
        "locked under the old directory"
    );
    assert_eq!(kept_descriptors(), 0, "a relative lock file is not kept");

    std::env::set_current_dir(new).unwrap();
    let other = held_elsewhere(new, "kept");
    match opts.try_lock() {
        Err(Error::WouldBlock { .. }) => {}
        got => panic!("the new directory's lock file is held: expected WouldBlock, got {got:?}"),
    }
    drop(other);
    drop(opts.lock().unwrap());
}

fn an_orphaned_wait_is_not_adopted(old: &Path, new: &Path) {
    let opts = LockOptions::new("orphan")
        .external(true)
        .lock_path(Path::new("locks"));
    std::env::set_current_dir(old).unwrap();
    let old_holder = held_elsewhere(old, "orphan");
    // Times out, leaving its kernel wait on the old file orphaned.
    let timed_out = opts.timeout(Duration::from_millis(50)).lock();
    assert!(
        matches!(timed_out, Err(Error::Timeout { .. })),
        "{timed_out:?}"
    );

    std::env::set_current_dir(new).unwrap();
    let new_holder = held_elsewhere(new, "orphan");
    // The old file frees up while the next wait runs: a wait that adopted
    // the orphan would be granted the old file, and hold the lock beside
    // `new_holder`.
    let release_old = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        drop(old_holder);
    });
    let got = opts.timeout(Duration::from_millis(600)).lock();
    release_old.join().unwrap();
    assert!(
        matches!(got, Err(Error::Timeout { .. })),
        "the new directory's lock file is held: expected a timeout, got {got:?}"
    );
    drop(new_holder);
    drop(opts.lock().unwrap());
}
