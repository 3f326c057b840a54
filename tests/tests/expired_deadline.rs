//! A deadline that has passed (a zero timeout, say) on a busy lock file is
//! one attempt, as `try_lock`: it starts no kernel wait, which would be
//! orphaned at once and hold a waiter thread and an open file for as long
//! as the holder holds. Its own binary: it counts the process's kernel waits.

use std::time::Duration;

use lockutils::{LockOptions, Registry};
use lockutils_core::file::{kernel_waits, waiter_threads};
use lockutils_tests::block_on;

fn opts<'a>(name: &'a str, dir: &'a std::path::Path, r: &'a Registry) -> LockOptions<'a, 'a> {
    LockOptions::new(name)
        .external(true)
        .lock_path(dir)
        .registry(r)
}

#[test]
fn an_expired_deadline_starts_no_kernel_wait() {
    let tmp = tempfile::tempdir().unwrap();
    let holders = Registry::new();
    let names: Vec<String> = (0..8).map(|i| format!("z{i}")).collect();
    let held: Vec<_> = names
        .iter()
        .map(|n| opts(n, tmp.path(), &holders).lock().unwrap())
        .collect();
    // Another registry and thread, so that each attempt reaches the busy
    // file (a thread's second hold of a name would be refused first).
    std::thread::scope(|s| {
        s.spawn(|| {
            let callers = Registry::new();
            for n in &names {
                let e = opts(n, tmp.path(), &callers)
                    .timeout(Duration::ZERO)
                    .lock()
                    .unwrap_err();
                assert!(e.is_contention(), "{e}");
                let e = block_on(
                    opts(n, tmp.path(), &callers)
                        .timeout(Duration::ZERO)
                        .lock_async(),
                )
                .unwrap_err();
                assert!(e.is_contention(), "{e}");
            }
        });
    });
    assert_eq!(
        (kernel_waits(), waiter_threads()),
        (0, 0),
        "kernel waits and waiter threads after 16 zero-timeout attempts"
    );
    drop(held);
}
