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
    assert!(common::ofd_lock(&holder, libc::F_WRLCK, false));
    let me = std::process::id() as i32;
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::channel();
        let b = &b;
        let waiter = s.spawn(move || {
            // SAFETY: gettid has no preconditions.
            tx.send(unsafe { libc::gettid() }).unwrap();
            common::ofd_lock(b, libc::F_WRLCK, true)
        });
        common::wait_until_sleeping(rx.recv().unwrap());
        let fd = b.as_raw_fd();
        // The wait is on `b`'s descriptor: counted for `b`.
        let seen = blocked_threads(me, &[fd], Some(id(b)), false);
        let seen_b = seen.as_ref().map(|t| (t.evidence, t.kinds.clone()));
        // Had the scan recorded that descriptor number as `a`'s, the wait
        // must not be counted for `a`.
        let seen_a = blocked_threads(me, &[fd], Some(id(&a)), false);
        assert!(common::ofd_lock(&holder, libc::F_UNLCK, false));
        assert!(waiter.join().unwrap());
        assert_eq!(seen_b, Some((WaitEvidence::Syscall, vec![Kind::Ofd])));
        assert_eq!(seen_a, None);
    });
}
