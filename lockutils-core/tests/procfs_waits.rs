//! `procfs::blocked_threads`: a wait is counted for a file only while the
//! descriptor its system call names is still that file, so a descriptor
//! number closed and opened again on another file between the scan and the
//! look at the threads does not lend that other file's wait to this one.
#![cfg(target_os = "linux")]

mod common;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;

use lockutils_core::procfs::{blocked_threads, Kind, WaitEvidence};

/// An OFD lock request on the whole file; blocking if `wait`.
fn ofd_lock(file: &File, l_type: libc::c_int, wait: bool) -> bool {
    // SAFETY: all-zero bytes are a valid `flock`; zero start and length
    // cover the whole file, and OFD requests need `l_pid == 0`.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = l_type as _;
    fl.l_whence = libc::SEEK_SET as _;
    let cmd = if wait {
        libc::F_OFD_SETLKW
    } else {
        libc::F_OFD_SETLK
    };
    // SAFETY: `file` is open and `fl` outlives the call.
    unsafe { libc::fcntl(file.as_raw_fd(), cmd, &fl) == 0 }
}

fn id(file: &File) -> (u64, u64) {
    let m = file.metadata().unwrap();
    (m.dev(), m.ino())
}

#[test]
fn a_wait_counts_for_the_file_its_descriptor_still_is() {
    let dir = common::tempdir();
    let open = |name: &str| {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.path().join(name))
            .unwrap()
    };
    let (a, b) = (open("a"), open("b"));
    let holder = open("b");
    assert!(ofd_lock(&holder, libc::F_WRLCK, false));
    let me = std::process::id() as i32;
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::channel();
        let b = &b;
        let waiter = s.spawn(move || {
            // SAFETY: gettid has no preconditions.
            tx.send(unsafe { libc::gettid() }).unwrap();
            ofd_lock(b, libc::F_WRLCK, true)
        });
        common::wait_until_sleeping(rx.recv().unwrap());
        let fd = b.as_raw_fd();
        // The wait is on `b`'s descriptor: counted for `b`.
        let seen = blocked_threads(me, &[fd], Some(id(b)), false);
        let seen_b = seen.as_ref().map(|t| (t.evidence, t.kinds.clone()));
        // Had the scan recorded that descriptor number as `a`'s, the wait
        // must not be counted for `a`.
        let seen_a = blocked_threads(me, &[fd], Some(id(&a)), false);
        assert!(ofd_lock(&holder, libc::F_UNLCK, false));
        assert!(waiter.join().unwrap());
        assert_eq!(seen_b, Some((WaitEvidence::Syscall, vec![Kind::Ofd])));
        assert_eq!(seen_a, None);
    });
}
