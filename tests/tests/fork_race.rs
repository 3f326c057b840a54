//! Forks racing acquisitions on other threads: a child never keeps an open
//! file that its parent locks. Threads lock and release external locks in a
//! loop (some kept open, some waited on) while the main thread forks again
//! and again; each child watches its copies of the lock files for a while
//! and fails if one of them ever shows a lock (`/proc/self/fdinfo/N`
//! lists the locks held through that open file, which a copy shares).
//!
//! The first forks race the threads' first acquisitions: lockutils' fork
//! hooks are registered as the process starts, not at its first lock (a
//! fork that began while they were being registered ran none of them, and
//! its child kept a lock file opened then, unlisted; this test saw it).
//!
//! One test in its own binary: it forks a multi-threaded process, and the
//! children only read `/proc` and exit.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lockutils::{LockOptions, Registry};

const FORKS: usize = 400;

/// In the child: whether any of its descriptors into `dir` is an open file
/// with a lock held through it, checked a few times over 10 ms. Says which
/// on stderr.
fn child_sees_a_lock(dir: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_millis(10);
    loop {
        for fd in std::fs::read_dir("/proc/self/fd")
            .into_iter()
            .flatten()
            .flatten()
        {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            if !target.starts_with(dir) {
                continue;
            }
            let info = format!("/proc/self/fdinfo/{}", fd.file_name().to_string_lossy());
            let Ok(info) = std::fs::read_to_string(info) else {
                continue;
            };
            if info.lines().any(|l| l.starts_with("lock:")) {
                let msg = format!("fd {:?} -> {}: {info}\n", fd.file_name(), target.display());
                // SAFETY: writes a live buffer to stderr.
                unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
                return true;
            }
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_forked_child_never_shares_a_lock_its_parent_takes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    let stop = AtomicBool::new(false);
    let (mut clean, mut shared) = (0, 0);
    std::thread::scope(|s| {
        for t in 0..4 {
            let (dir, stop) = (&dir, &stop);
            s.spawn(move || {
                let reg = Registry::new();
                let names = ["a", "b", "c"];
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let opts = LockOptions::new(names[i % 3])
                        .external(true)
                        .lock_path(dir)
                        .registry(&reg);
                    let held = if i % 2 == 0 {
                        opts.try_lock().ok()
                    } else {
                        opts.timeout(Duration::from_millis(20)).lock().ok()
                    };
                    drop(held);
                }
            });
        }
        for _ in 0..FORKS {
            // SAFETY: the child only reads /proc and exits.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0);
            if pid == 0 {
                let code = if child_sees_a_lock(&dir) { 3 } else { 0 };
                // SAFETY: ends the child without running the parent's
                // destructors or test harness.
                unsafe { libc::_exit(code) };
            }
            let mut status = 0;
            // SAFETY: our own child.
            assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
            assert!(libc::WIFEXITED(status), "child status {status}");
            match libc::WEXITSTATUS(status) {
                0 => clean += 1,
                3 => shared += 1,
                other => panic!("child exited with {other}"),
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    assert_eq!(
        shared, 0,
        "{shared} of {FORKS} children saw a lock through a copy of their parent's open file ({clean} clean)"
    );
}
