//! Review reproducer: guards dropped by a thread-local's destructor when the
//! thread holds more than eight locks. Records past the eighth live in the
//! `SPILL` thread-local (lockutils-core/src/held.rs), which has a destructor;
//! `erase` only guards the destructor-free `HELD` with `try_with` ("During
//! thread-local destruction ... there is nothing left to erase") and then
//! reads `SPILL` with `with`, which panics once `SPILL` is gone. A panic in a
//! thread-local destructor aborts the process.
//!
//! The scenario runs in a child process (this test binary, re-run with an
//! environment variable) so the abort is observed, not suffered.

use std::cell::RefCell;
use std::process::Command;

use lockutils::LockGuard;

thread_local! {
    static KEEP: RefCell<Vec<LockGuard<'static>>> = const { RefCell::new(Vec::new()) };
}

const CHILD: &str = "LOCKUTILS_REVIEW_TLS_CHILD";

fn scenario() {
    std::thread::spawn(|| {
        // Registered first, so destroyed after `SPILL` (destructors run in
        // reverse order of registration).
        KEEP.with(|_| {});
        let guards: Vec<_> = (0..10)
            .map(|i| lockutils::lock(&format!("zz-tls-{i}")).unwrap())
            .collect();
        KEEP.with(|k| k.borrow_mut().extend(guards));
        // The thread exits holding them: KEEP's destructor drops them.
    })
    .join()
    .unwrap();
    println!("thread exited cleanly");
}

#[test]
fn guards_dropped_during_thread_teardown() {
    if std::env::var_os(CHILD).is_some() {
        scenario();
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "guards_dropped_during_thread_teardown", "--nocapture"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the child failed ({:?}):\n{stderr}",
        out.status
    );
}
