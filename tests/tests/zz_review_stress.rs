//! Review (held up): every way of taking one name excludes every other:
//! pinned short path, pinned slow path (fair), dynamic sync, shared readers
//! vs writers, async static and dynamic, with timeouts and cancellations.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lockutils::{synchronized, LockOptions};

static INSIDE: AtomicUsize = AtomicUsize::new(0);
static READERS: AtomicUsize = AtomicUsize::new(0);
static BAD: AtomicBool = AtomicBool::new(false);
static COUNT: AtomicUsize = AtomicUsize::new(0);

fn section() {
    if INSIDE.fetch_add(1, Ordering::SeqCst) != 0 || READERS.load(Ordering::SeqCst) != 0 {
        BAD.store(true, Ordering::SeqCst);
    }
    let v = COUNT.load(Ordering::Relaxed);
    std::hint::spin_loop();
    COUNT.store(v + 1, Ordering::Relaxed);
    INSIDE.fetch_sub(1, Ordering::SeqCst);
}

fn read_section() {
    READERS.fetch_add(1, Ordering::SeqCst);
    if INSIDE.load(Ordering::SeqCst) != 0 {
        BAD.store(true, Ordering::SeqCst);
    }
    READERS.fetch_sub(1, Ordering::SeqCst);
}

#[synchronized("zz-stress")]
fn pinned() {
    section()
}

#[synchronized("zz-stress", fair)]
fn pinned_fair() {
    section()
}

#[synchronized("zz-stress", mode = read)]
fn reader() {
    read_section()
}

#[synchronized("zz-{n}")]
fn dynamic(n: &str) {
    let _ = n;
    section()
}

#[synchronized("zz-stress")]
async fn pinned_async() {
    section()
}

#[synchronized("zz-stress", timeout = "1ms")]
async fn timed_async() -> Result<(), lockutils::Error> {
    section();
    Ok(())
}

#[test]
fn all_paths_exclude_each_other() {
    let until = Instant::now() + Duration::from_secs(3);
    let mut handles = Vec::new();
    for t in 0..8 {
        handles.push(std::thread::spawn(move || {
            let mut i = 0u64;
            while Instant::now() < until {
                i += 1;
                match (t + i) % 8 {
                    0 => pinned(),
                    1 => pinned_fair(),
                    2 => reader(),
                    3 => dynamic("stress"),
                    4 => lockutils_tests::block_on(pinned_async()),
                    5 => {
                        let _ = lockutils_tests::block_on(timed_async());
                    }
                    6 => {
                        // A queued acquisition dropped after one poll.
                        let mut f = Box::pin(LockOptions::new("zz-stress").fair(i % 2 == 0).lock_async());
                        let waker = std::task::Waker::noop();
                        if let std::task::Poll::Ready(g) =
                            f.as_mut().poll(&mut std::task::Context::from_waker(waker))
                        {
                            let _g = g.unwrap();
                            section();
                        }
                    }
                    _ => {
                        if let Ok(_g) = LockOptions::new("zz-stress").try_lock() {
                            section();
                        }
                    }
                }
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    assert!(!BAD.load(Ordering::SeqCst), "two holders overlapped");
    assert!(LockOptions::new("zz-stress").try_lock().is_ok(), "left held");
}
