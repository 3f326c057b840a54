//! Review (held up): re-entering a `#[synchronized]` lock on the same thread
//! panics with `WouldDeadlock` instead of hanging, for every shape.

use lockutils::synchronized;

#[synchronized("zz-reenter")]
fn fixed(depth: u32) {
    if depth > 0 {
        fixed(depth - 1)
    }
}

#[synchronized("zz-reenter-fair", fair)]
fn fair(depth: u32) {
    if depth > 0 {
        fair(depth - 1)
    }
}

#[synchronized("zz-reenter-read", mode = read)]
fn read(depth: u32) {
    if depth > 0 {
        read(depth - 1)
    }
}

#[synchronized("zz-reenter-{depth}-x")]
fn dynamic(depth: u32) {
    let _ = depth;
    dynamic_again(depth)
}

#[synchronized("zz-reenter-{depth}-x")]
fn dynamic_again(depth: u32) {
    let _ = depth;
}

#[synchronized("zz-reenter-ext", external, lock_path = env!("CARGO_TARGET_TMPDIR"))]
fn external(depth: u32) {
    if depth > 0 {
        external(depth - 1)
    }
}

#[synchronized("zz-reenter-timeout", timeout = "5s")]
fn timed(depth: u32) -> Result<(), lockutils::Error> {
    if depth > 0 {
        return timed(depth - 1);
    }
    Ok(())
}

fn panics_with_would_deadlock(f: impl FnOnce() + std::panic::UnwindSafe) {
    let msg = std::panic::catch_unwind(f).expect_err("must panic");
    let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("already held by this thread"), "{msg}");
}

#[test]
fn reentry_is_an_error_not_a_hang() {
    for _ in 0..2 {
        // twice: the second time through the pinned short path
        panics_with_would_deadlock(|| fixed(1));
        panics_with_would_deadlock(|| fair(1));
        panics_with_would_deadlock(|| read(1));
        panics_with_would_deadlock(|| dynamic(3));
        panics_with_would_deadlock(|| external(1));
        let started = std::time::Instant::now();
        let e = timed(1).unwrap_err();
        assert!(matches!(e, lockutils::Error::WouldDeadlock { .. }), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
    assert!(lockutils::held_locks().is_empty());
}
