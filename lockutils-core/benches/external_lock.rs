//! Uncontended external lock: take and release, beside the bare system calls
//! an OFD file lock needs.
//!
//! Group `external_lock`, all in one directory under `std::env::temp_dir()`
//! (the file system matters: see docs/performance.md):
//! - `lockutils/lock_unlock`: `LockOptions::new("bench").external(true)
//!   .lock_path(dir).lock()` then drop.
//! - `baseline/raw_ofd`: `open(O_RDWR|O_CREAT|O_CLOEXEC)`, `fcntl(F_OFD_SETLK,
//!   F_WRLCK)` over the whole file, `fcntl(F_OFD_SETLK, F_UNLCK)`, `close`.
//! - `baseline/raw_ofd_verify`: the same plus the `fstat` and `lstat` that
//!   check the locked file is still the one linked at the path (what makes
//!   removing lock files safe), to show what that check costs on its own.
//! - `baseline/kept_ofd`: `F_OFD_SETLK` + `F_UNLCK` on a descriptor kept open
//!   (the floor of lockutils' kept descriptors, target within 1.5x);
//!   `baseline/kept_ofd_verify` adds the `fstat` link-count check.
//!
//! Run: `cargo bench -p lockutils-core --bench external_lock`.

use std::ffi::CString;
use std::hint::black_box;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use lockutils_core::LockOptions;

fn whole_file(l_type: libc::c_int) -> libc::flock {
    // SAFETY: all-zero bytes are a valid `flock`; zero start and length with
    // SEEK_SET cover the whole file, and OFD requests need `l_pid == 0`.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = l_type as _;
    fl.l_whence = libc::SEEK_SET as _;
    fl
}

fn c_path(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("no NUL in the temp path")
}

/// One raw lock cycle; `verify` adds the `fstat` + `lstat` identity check.
fn raw_cycle(path: &CString, verify: bool) {
    // SAFETY: plain system calls on a descriptor this function owns and
    // closes; every pointer passed lives across its call.
    unsafe {
        let fd = libc::open(
            path.as_ptr(),
            libc::O_RDWR | libc::O_CREAT | libc::O_CLOEXEC,
            0o600,
        );
        assert!(fd >= 0, "open: {}", std::io::Error::last_os_error());
        let lk = whole_file(libc::F_WRLCK);
        let r = libc::fcntl(fd, libc::F_OFD_SETLK, &lk as *const libc::flock);
        assert_eq!(r, 0, "lock: {}", std::io::Error::last_os_error());
        if verify {
            let mut open: libc::stat = std::mem::zeroed();
            let mut linked: libc::stat = std::mem::zeroed();
            assert_eq!(libc::fstat(fd, &mut open), 0);
            assert_eq!(libc::lstat(path.as_ptr(), &mut linked), 0);
            assert!(open.st_nlink > 0 && open.st_ino == linked.st_ino);
        }
        let un = whole_file(libc::F_UNLCK);
        let r = libc::fcntl(fd, libc::F_OFD_SETLK, &un as *const libc::flock);
        assert_eq!(r, 0, "unlock: {}", std::io::Error::last_os_error());
        libc::close(fd);
    }
}

fn external_lock(c: &mut Criterion) {
    let dir = tempfile::Builder::new()
        .prefix("lockutils-bench-")
        .tempdir_in(std::env::temp_dir())
        .expect("temp dir");
    let path = dir.path();

    let mut g = c.benchmark_group("external_lock");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(40);

    let opts = LockOptions::new("bench").external(true).lock_path(path);
    g.bench_function("lockutils/lock_unlock", |b| {
        b.iter(|| drop(black_box(&opts).lock().unwrap()))
    });

    let raw = c_path(&path.join("bench-raw"));
    g.bench_function("baseline/raw_ofd", |b| {
        b.iter(|| raw_cycle(black_box(&raw), false))
    });

    let raw_verify = c_path(&path.join("bench-raw-verify"));
    g.bench_function("baseline/raw_ofd_verify", |b| {
        b.iter(|| raw_cycle(black_box(&raw_verify), true))
    });

    // The floor of a kept descriptor: lock and unlock an open file.
    let kept_path = c_path(&path.join("bench-kept"));
    // SAFETY: opens a descriptor this bench owns until the end of the group.
    let kept = unsafe {
        libc::open(
            kept_path.as_ptr(),
            libc::O_RDWR | libc::O_CREAT | libc::O_CLOEXEC,
            0o600,
        )
    };
    assert!(kept >= 0, "open: {}", std::io::Error::last_os_error());
    g.bench_function("baseline/kept_ofd", |b| {
        b.iter(|| kept_cycle(black_box(kept), false))
    });
    g.bench_function("baseline/kept_ofd_verify", |b| {
        b.iter(|| kept_cycle(black_box(kept), true))
    });
    // SAFETY: closes the descriptor opened above, used by nothing else.
    unsafe { libc::close(kept) };
    g.finish();
}

/// `F_OFD_SETLK` + `F_UNLCK` on a kept descriptor; `verify` adds the `fstat`
/// that checks the file is still linked.
fn kept_cycle(fd: libc::c_int, verify: bool) {
    // SAFETY: `fd` is open for the whole group; the structs outlive the calls.
    unsafe {
        let lk = whole_file(libc::F_WRLCK);
        let r = libc::fcntl(fd, libc::F_OFD_SETLK, &lk as *const libc::flock);
        assert_eq!(r, 0, "lock: {}", std::io::Error::last_os_error());
        if verify {
            let mut open: libc::stat = std::mem::zeroed();
            assert_eq!(libc::fstat(fd, &mut open), 0);
            assert!(open.st_nlink > 0);
        }
        let un = whole_file(libc::F_UNLCK);
        let r = libc::fcntl(fd, libc::F_OFD_SETLK, &un as *const libc::flock);
        assert_eq!(r, 0, "unlock: {}", std::io::Error::last_os_error());
    }
}

criterion_group!(benches, external_lock);
criterion_main!(benches);
