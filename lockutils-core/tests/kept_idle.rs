//! A kept lock file is closed once unused for `KEPT_IDLE_CLOSE`, and not
//! before. Its own test binary: the descriptor cache is per process.

use std::time::{Duration, Instant};

use lockutils_core::file::{kept_descriptors, KEPT_IDLE_CLOSE};
use lockutils_core::LockOptions;

#[test]
fn a_kept_lock_file_is_closed_once_idle_for_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let opts = LockOptions::new("kept-idle")
        .external(true)
        .lock_path(dir.path());
    drop(opts.lock().unwrap());
    let released = Instant::now();
    assert_eq!(kept_descriptors(), 1, "kept after its release");
    while kept_descriptors() != 0 {
        assert!(
            released.elapsed() < KEPT_IDLE_CLOSE * 5,
            "still open {:?} after its last use",
            released.elapsed()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // The idle clock ticks every few milliseconds: it may read up to a tick early.
    let closed_after = released.elapsed();
    assert!(
        closed_after + Duration::from_millis(20) >= KEPT_IDLE_CLOSE,
        "closed after {closed_after:?}, before the idle limit"
    );
}
