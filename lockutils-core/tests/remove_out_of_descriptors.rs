//! A removal that cannot look (the process is out of descriptors while it
//! walks `/proc`) removes nothing, even with `LOCKUTILS_REMOVE_UNVERIFIED=1`,
//! which only trusts processes this user may not read; and an acquisition
//! out of descriptors says so.
//!
//! Its own binary: it sets an environment variable and lowers the
//! process's descriptor limit.
#![cfg(target_os = "linux")]

use std::fs::File;
use std::process::{Command, Stdio};

use lockutils_core::{Error, LockGuard, LockOptions, REMOVE_UNVERIFIED_ENV};

#[test]
fn a_removal_out_of_descriptors_removes_nothing_even_when_unverified_removal_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("emfile");
    let opts = LockOptions::new("emfile")
        .external(true)
        .lock_path(dir.path());
    drop(opts.lock().unwrap());
    // Another process has the file open (as an oslo waiter that polls
    // would), so the removal's lease is refused and it must look.
    let mut peer = Command::new("sleep")
        .arg("60")
        .stdin(Stdio::from(File::open(&path).unwrap()))
        .spawn()
        .unwrap();
    // SAFETY: no other thread of this test binary reads the environment.
    unsafe { std::env::set_var(REMOVE_UNVERIFIED_ENV, "1") };
    let g = opts.lock().unwrap();

    // Out of descriptors: a low limit, filled.
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0
    );
    let low = libc::rlimit {
        rlim_cur: 256.min(limit.rlim_cur),
        rlim_max: limit.rlim_max,
    };
    // SAFETY: as above; only lowers the soft limit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &low) }, 0);
    let mut filler = Vec::new();
    loop {
        match File::open("/dev/null") {
            Ok(f) => filler.push(f),
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => break,
            Err(e) => panic!("{e}"),
        }
    }
    let removed = LockGuard::unlock_and_remove(g);
    // Opening a lock file fails too (once the descriptors the removal let
    // go of are taken again): the message says why and what to do, not that
    // the directory may not be writable.
    while let Ok(f) = File::open("/dev/null") {
        filler.push(f);
    }
    let open = LockOptions::new("emfile-open")
        .external(true)
        .lock_path(dir.path())
        .lock()
        .map(drop);
    drop(filler);
    // SAFETY: restores the limit read above.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);

    let _ = peer.kill();
    let _ = peer.wait();
    assert!(path.exists(), "removed without looking: {removed:?}");
    let e = open.expect_err("an open with no descriptor left");
    let shown = e.to_string();
    assert!(
        shown.contains("too many open files: raise its limit (ulimit -n)")
            && !shown.contains("writable"),
        "{shown}"
    );
    let e = removed.expect_err("a removal that could not look");
    assert!(matches!(e, Error::LockFile { .. }), "{e:?}");
    let shown = format!("{e}: {:?}", std::error::Error::source(&e));
    assert!(shown.contains("listing /proc failed"), "{shown}");
}
