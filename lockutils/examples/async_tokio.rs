//! Async tasks on a multi-threaded tokio runtime share a lock with
//! `#[synchronized]` on an `async fn`: it is awaited (no worker thread is
//! blocked) and held across the body's awaits.
//!
//! ```text
//! cargo run -p lockutils --example async_tokio
//! ```

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use lockutils::synchronized;

static INSIDE: AtomicUsize = AtomicUsize::new(0);

#[synchronized("migrations")]
async fn migrate(task: usize) -> Duration {
    let started = Instant::now();
    assert_eq!(INSIDE.fetch_add(1, SeqCst), 0, "two tasks inside");
    tokio::time::sleep(Duration::from_millis(20)).await; // still held here
    INSIDE.fetch_sub(1, SeqCst);
    println!("task {task} ran its migration");
    started.elapsed()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let started = Instant::now();
    let tasks: Vec<_> = (0..5).map(|i| tokio::spawn(migrate(i))).collect();
    for t in tasks {
        t.await.expect("task");
    }
    let total = started.elapsed();
    println!("5 tasks, one at a time: {total:?} in total");
    assert!(total >= Duration::from_millis(100));
}
