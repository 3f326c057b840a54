//! `#[synchronized]` on `#[test]` and `#[tokio::test]` functions, in either
//! attribute order. The tests of this file share one lock and run on
//! parallel threads; each checks that it is alone in the section.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use lockutils::synchronized;

static INSIDE: AtomicUsize = AtomicUsize::new(0);

fn alone() {
    assert_eq!(INSIDE.fetch_add(1, SeqCst), 0, "another test is inside");
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(
        lockutils::held_locks()
            .iter()
            .filter(|l| l.name == "test-fns")
            .count(),
        1
    );
    INSIDE.fetch_sub(1, SeqCst);
}

async fn alone_async() {
    assert_eq!(INSIDE.fetch_add(1, SeqCst), 0, "another test is inside");
    tokio::time::sleep(Duration::from_millis(30)).await;
    INSIDE.fetch_sub(1, SeqCst);
}

#[test]
#[synchronized("test-fns")]
fn test_then_synchronized() {
    alone();
}

#[synchronized("test-fns")]
#[test]
fn synchronized_then_test() {
    alone();
}

#[test]
#[synchronized("test-fns", timeout = "10s")]
fn with_result() -> Result<(), lockutils::Error> {
    alone();
    Ok(())
}

// `#[tokio::test]` first: it turns the function into a blocking one, which
// `#[synchronized]` then locks around the whole runtime.
#[tokio::test]
#[synchronized("test-fns")]
async fn tokio_test_then_synchronized() {
    alone_async().await;
}

// `#[synchronized]` first: the async body awaits the lock inside the runtime.
#[synchronized("test-fns")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synchronized_then_tokio_test() {
    alone_async().await;
}
