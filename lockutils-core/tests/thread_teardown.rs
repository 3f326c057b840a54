//! Guards dropped by a thread-local's destructor while the thread exits,
//! holding more than the eight holds recorded inline (the rest live in a
//! thread-local vector with a destructor of its own, which may be gone by
//! then): the thread exits cleanly and every lock is released.
//!
//! The scenario runs in a child process (this binary, re-run with an
//! environment variable): a panic in a thread-local destructor aborts the
//! process, which the parent observes instead of suffering.

use std::cell::RefCell;
use std::process::Command;

use lockutils_core::LockGuard;

thread_local! {
    static KEEP: RefCell<Vec<LockGuard<'static>>> = const { RefCell::new(Vec::new()) };
}

const CHILD: &str = "LOCKUTILS_TEST_TEARDOWN_CHILD";
const HOLDS: usize = 12;

fn scenario() {
    std::thread::spawn(|| {
        // Used first, so destroyed after the holds' own thread-locals
        // (destructors run in the reverse order of registration).
        KEEP.with(|_| {});
        let guards: Vec<_> = (0..HOLDS)
            .map(|i| lockutils_core::lock(&format!("teardown-{i}")).unwrap())
            .collect();
        KEEP.with(|k| k.borrow_mut().extend(guards));
        // The thread exits holding them: KEEP's destructor drops them.
    })
    .join()
    .unwrap();
    for i in 0..HOLDS {
        let name = format!("teardown-{i}");
        let again = lockutils_core::LockOptions::new(&name).try_lock();
        assert!(again.is_ok(), "{name} stayed held: {again:?}");
    }
    println!("thread exited cleanly, every lock released");
}

#[test]
fn guards_dropped_while_their_thread_exits_release_cleanly() {
    if std::env::var_os(CHILD).is_some() {
        scenario();
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "guards_dropped_while_their_thread_exits_release_cleanly",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("every lock released"),
        "the child failed ({:?}):\n{stdout}\n{stderr}",
        out.status
    );
}
