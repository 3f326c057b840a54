//! Review reproducer: a temporary created in the body's tail expression is
//! dropped after `#[synchronized]` released the lock (edition 2021 tail
//! temporaries outlive the function's locals, and the guard is a local).
//! docs/macros.md: "A guard is taken before the body and dropped after it".

use lockutils::synchronized;

/// Records, in its destructor, whether the current thread still holds `name`.
struct Probe {
    name: &'static str,
    held_at_drop: &'static std::sync::atomic::AtomicBool,
}

impl Probe {
    fn value(&self) -> u32 {
        1
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let held = lockutils::held_locks().iter().any(|h| h.name == self.name);
        self.held_at_drop.store(held, std::sync::atomic::Ordering::SeqCst);
    }
}

static STATIC_NAME: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static DYNAMIC_NAME: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[synchronized("zz-tail-static", fair)] // `fair`: the slow (listed) path
fn tail_static() -> u32 {
    Probe { name: "zz-tail-static", held_at_drop: &STATIC_NAME }.value()
}

#[synchronized("zz-tail-{id}")]
fn tail_dynamic(id: u32) -> u32 {
    let _ = id;
    Probe { name: "zz-tail-7", held_at_drop: &DYNAMIC_NAME }.value()
}

static CONTROL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Control: the same probe in a statement (not the tail) sees the lock held.
#[synchronized("zz-tail-control", fair)]
fn statement_control() -> u32 {
    let v = Probe { name: "zz-tail-control", held_at_drop: &CONTROL }.value();
    v
}

#[test]
fn control_statement_temporary_is_dropped_under_the_lock() {
    assert_eq!(statement_control(), 1);
    assert!(CONTROL.load(std::sync::atomic::Ordering::SeqCst));
}

#[test]
fn tail_temporary_is_dropped_under_the_lock_static_name() {
    assert_eq!(tail_static(), 1);
    assert!(
        STATIC_NAME.load(std::sync::atomic::Ordering::SeqCst),
        "the body's tail temporary was dropped after the lock was released"
    );
}

#[test]
fn tail_temporary_is_dropped_under_the_lock_dynamic_name() {
    assert_eq!(tail_dynamic(7), 1);
    assert!(
        DYNAMIC_NAME.load(std::sync::atomic::Ordering::SeqCst),
        "the body's tail temporary was dropped after the lock was released"
    );
}

/// Async variant: the probe checks with `try_lock` (async guards are not
/// listed by `held_locks`): `Ok` means the lock was already free.
struct TryProbe {
    name: &'static str,
    free_at_drop: &'static std::sync::atomic::AtomicBool,
}

impl TryProbe {
    fn value(&self) -> u32 {
        1
    }
}

impl Drop for TryProbe {
    fn drop(&mut self) {
        let free = lockutils::LockOptions::new(self.name).try_lock().is_ok();
        self.free_at_drop.store(free, std::sync::atomic::Ordering::SeqCst);
    }
}

static ASYNC_FREE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[synchronized("zz-tail-async")]
async fn tail_async() -> u32 {
    TryProbe { name: "zz-tail-async", free_at_drop: &ASYNC_FREE }.value()
}

#[test]
fn async_tail_temporary_is_dropped_under_the_lock() {
    assert_eq!(lockutils_tests::block_on(tail_async()), 1);
    assert!(
        !ASYNC_FREE.load(std::sync::atomic::Ordering::SeqCst),
        "the async body's tail temporary was dropped after the lock was released"
    );
}
