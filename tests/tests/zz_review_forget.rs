//! Review (held up): leaking guards and futures, then dropping their
//! registry, leaves nothing dangling: the thread's records stay readable,
//! re-entry is still refused, and the names stay held.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Waker};
use std::time::Duration;

use lockutils::{LockOptions, Registry};

#[test]
fn forgotten_guards_and_futures_outlive_their_registry_safely() {
    let dir = tempfile::tempdir().unwrap();
    {
        let registry = Registry::new();
        let g = LockOptions::new("zz-forget")
            .registry(&registry)
            .external(true)
            .lock_path(dir.path())
            .lock()
            .unwrap();
        std::mem::forget(g);
        let shared = LockOptions::new("zz-forget-shared")
            .registry(&registry)
            .shared()
            .lock()
            .unwrap();
        std::mem::forget(shared);
        // A queued, timed future, forgotten.
        let blocker = LockOptions::new("zz-forget-queued").registry(&registry).lock().unwrap();
        let mut fut = LockOptions::new("zz-forget-queued")
            .registry(&registry)
            .timeout(Duration::from_millis(50))
            .lock_async();
        assert!(Pin::new(&mut fut).poll(&mut Context::from_waker(Waker::noop())).is_pending());
        std::mem::forget(fut);
        drop(blocker);
        drop(registry);
    }
    // The records of the leaked holds still read (slot and lock file leaked).
    let held: Vec<_> = lockutils::held_locks().into_iter().map(|h| h.name).collect();
    assert_eq!(held, ["zz-forget", "zz-forget-shared"]);
    // The file is still locked by the leaked guard: this thread waiting for
    // it through another registry is refused, not a hang.
    let r = LockOptions::new("zz-forget")
        .external(true)
        .lock_path(dir.path())
        .lock();
    assert!(matches!(r, Err(lockutils::Error::WouldDeadlock { .. })), "{r:?}");
    // The forgotten future's deadline fires on the timer without harm.
    std::thread::sleep(Duration::from_millis(200));
    drop(lockutils::lock("zz-forget-after").unwrap());
}
