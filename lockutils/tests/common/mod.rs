//! Helpers shared by the integration tests: a critical-section counter that
//! records how many callers were ever inside at once.
#![allow(dead_code)] // each test file uses a subset

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

/// Counts callers inside a critical section and the most ever inside at once.
#[derive(Debug, Default)]
pub struct Section {
    inside: AtomicUsize,
    max: AtomicUsize,
    visits: AtomicUsize,
}

impl Section {
    pub const fn new() -> Self {
        Section {
            inside: AtomicUsize::new(0),
            max: AtomicUsize::new(0),
            visits: AtomicUsize::new(0),
        }
    }

    pub fn enter(&self) {
        let now = self.inside.fetch_add(1, SeqCst) + 1;
        self.max.fetch_max(now, SeqCst);
    }

    pub fn leave(&self) {
        self.visits.fetch_add(1, SeqCst);
        self.inside.fetch_sub(1, SeqCst);
    }

    /// Enters, stays for `hold` (blocking the thread), leaves.
    pub fn visit(&self, hold: Duration) {
        self.enter();
        std::thread::sleep(hold);
        self.leave();
    }

    /// Enters, stays for `hold` across awaits, leaves.
    pub async fn visit_async(&self, hold: Duration) {
        self.enter();
        tokio::time::sleep(hold / 2).await;
        tokio::task::yield_now().await;
        tokio::time::sleep(hold / 2).await;
        self.leave();
    }

    pub fn inside(&self) -> usize {
        self.inside.load(SeqCst)
    }

    /// The most callers ever inside at once.
    pub fn max(&self) -> usize {
        self.max.load(SeqCst)
    }

    pub fn visits(&self) -> usize {
        self.visits.load(SeqCst)
    }
}

/// A short hold: long enough that unserialized callers overlap.
pub const HOLD: Duration = Duration::from_millis(5);

/// Runs `f(i)` on `n` threads started together.
pub fn on_threads(n: usize, f: impl Fn(usize) + Sync) {
    let start = std::sync::Barrier::new(n);
    std::thread::scope(|s| {
        for i in 0..n {
            let (f, start) = (&f, &start);
            s.spawn(move || {
                start.wait();
                f(i)
            });
        }
    });
}

/// Waits (up to 5 s) until `count` reaches `n`: whether it did. Used to show
/// that callers are inside together, without hanging if they are not.
pub fn rendezvous(count: &AtomicUsize, n: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while count.load(SeqCst) < n {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

/// The async form of [`rendezvous`].
pub async fn rendezvous_async(count: &AtomicUsize, n: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while count.load(SeqCst) < n {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    true
}
