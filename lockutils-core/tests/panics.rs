//! A panic inside the critical section releases the lock: in-process and on
//! the lock file, for blocking guards, closures and async guards.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::thread;
use std::time::{Duration, Instant};

use lockutils_core::{held_locks, LockOptions, Registry};

/// Asserts the lock can be taken at once from another thread.
fn free_at_once(opts: LockOptions<'_, '_>) {
    let start = Instant::now();
    let ok = thread::scope(|s| s.spawn(|| opts.try_lock().map(drop)).join().unwrap());
    assert!(ok.is_ok(), "still held after the panic: {ok:?}");
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[test]
fn a_panic_releases_an_in_process_lock() {
    let reg = Registry::new();
    let opts = LockOptions::new("panic-in-process").registry(&reg);
    let r = catch_unwind(AssertUnwindSafe(|| {
        let _g = opts.lock().unwrap();
        panic!("boom");
    }));
    assert!(r.is_err());
    assert!(
        held_locks().is_empty(),
        "the panicked guard is still listed"
    );
    assert!(reg.is_empty());
    free_at_once(opts);
    // This thread can take it again: no stale self-deadlock record.
    drop(opts.lock().unwrap());
}

#[test]
fn a_panicking_thread_releases_its_lock_file() {
    let dir = common::tempdir();
    let (a, b) = (Registry::new(), Registry::new());
    let opts = LockOptions::new("panic-file")
        .external(true)
        .lock_path(dir.path());
    let r = thread::scope(|s| {
        s.spawn(|| {
            let _g = opts.registry(&a).lock().unwrap();
            panic!("boom");
        })
        .join()
    });
    assert!(r.is_err());
    assert!(a.is_empty());
    // Another open file (registry b) gets the lock file at once, and so does
    // the same registry.
    free_at_once(opts.registry(&b));
    free_at_once(opts.registry(&a));
    assert!(b.is_empty());
}

#[test]
fn a_panic_in_a_synchronized_closure_releases() {
    let dir = common::tempdir();
    let reg = Registry::new();
    let opts = LockOptions::new("panic-sync")
        .registry(&reg)
        .external(true)
        .lock_path(dir.path())
        .shared();
    let r = catch_unwind(AssertUnwindSafe(|| opts.synchronized(|| panic!("boom"))));
    assert!(r.is_err());
    assert!(reg.is_empty());
    free_at_once(opts.mode(lockutils_core::Mode::Exclusive));
}

#[test]
fn a_panicking_task_releases_its_async_guard() {
    static REG: Registry = Registry::new();
    let dir = common::tempdir();
    let path: &'static std::path::Path = Box::leak(dir.path().to_path_buf().into_boxed_path());
    let opts = LockOptions::new("panic-task")
        .registry(&REG)
        .external(true)
        .lock_path(path);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let r = rt.block_on(async move {
        tokio::spawn(async move {
            let _g = opts.lock_async().await.unwrap();
            panic!("boom");
        })
        .await
    });
    assert!(r.unwrap_err().is_panic());
    assert!(REG.is_empty());
    free_at_once(opts.registry(&Registry::new()));
    free_at_once(opts);
}
