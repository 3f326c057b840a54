//! A child forked without `exec` while its parent holds a lock through a
//! relative lock directory (whose files are never kept open) does not
//! release the parent's lock when it drops its copy of the guard.
//!
//! One test in its own binary: it changes the working directory, its lock
//! must be the process's first, and forking is only safe while no other
//! test thread may hold a lock the child needs.

use lockutils::{Error, LockGuard, LockOptions, Registry};
use lockutils_core::file::{kept_descriptors, waiter_threads};

#[test]
fn a_forked_child_does_not_release_a_lock_taken_through_a_relative_directory() {
    let tmp = tempfile::tempdir().unwrap();
    std::env::set_current_dir(tmp.path()).unwrap();
    let opts = LockOptions::new("forked")
        .external(true)
        .lock_path(std::path::Path::new("locks"));
    assert_eq!((kept_descriptors(), waiter_threads()), (0, 0));
    let g = opts.lock().unwrap();
    // SAFETY: this thread is the only one using lockutils; the child drops
    // its bitwise copy of the guard (the original is never dropped there:
    // the child `_exit`s) and takes no other lock.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // SAFETY: see above.
        drop(unsafe { std::ptr::read(&g as *const LockGuard<'_>) });
        // SAFETY: ends the child at once.
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    let probe = Registry::new();
    let absolute = tmp.path().join("locks");
    let r = opts.lock_path(&absolute).registry(&probe).try_lock();
    assert!(
        matches!(r, Err(Error::WouldBlock { .. })),
        "the child's drop released the parent's lock: {r:?}"
    );
    drop(r);
    drop(g);
}
