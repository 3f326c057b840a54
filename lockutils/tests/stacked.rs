//! Several `#[synchronized]` on one function: the locks are taken in the
//! order written (the first attribute's first, as oslo's stacked decorators
//! do) and released in reverse, whatever the function's shape.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use lockutils::{synchronized, synchronized_with_prefix, LockOptions};

fn held() -> Vec<String> {
    lockutils::held_locks()
        .into_iter()
        .map(|h| h.name)
        .collect()
}

/// Whether another thread can take `name` now (and lets it go again).
fn free_elsewhere(name: &str) -> bool {
    let name = name.to_owned();
    std::thread::spawn(move || LockOptions::new(&name).try_lock().is_ok())
        .join()
        .unwrap()
}

#[synchronized("stack-a-{n}")]
#[synchronized("stack-b-{n}")]
fn two(n: u32) -> Vec<String> {
    held()
}

#[test]
fn two_attributes_in_written_order_then_released() {
    // held_locks(): oldest first.
    assert_eq!(two(1), ["stack-a-1", "stack-b-1"]);
    assert!(held().is_empty());
    assert!(free_elsewhere("stack-a-1"));
    assert!(free_elsewhere("stack-b-1"));
}

mod deps {
    pub extern crate lockutils as locks;
}

/// Three, through different paths, with other attributes between them.
#[synchronized("stack-three-1")]
/// A doc comment between.
#[lockutils::synchronized("stack-three-2", crate = deps::locks)]
#[inline]
#[deps::locks::synchronized("stack-three-3", crate = deps::locks)]
fn three() -> Vec<String> {
    held()
}

#[test]
fn three_attributes_through_any_path() {
    assert_eq!(three(), ["stack-three-1", "stack-three-2", "stack-three-3"]);
    assert!(held().is_empty());
}

struct Host {
    id: u32,
}

impl Host {
    #[synchronized(name = format!("stack-host-{}", self.id))]
    #[synchronized("stack-host-network")]
    fn method(&self) -> Vec<String> {
        held()
    }

    #[synchronized("stack-early-a")]
    #[synchronized("stack-early-b")]
    fn early_return(&mut self, fail: bool) -> Result<u32, String> {
        if fail {
            return Err(format!("{:?}", held()));
        }
        self.id += 1;
        Ok(self.id)
    }
}

#[test]
fn methods_and_early_returns() {
    let mut host = Host { id: 7 };
    assert_eq!(host.method(), ["stack-host-7", "stack-host-network"]);
    assert_eq!(
        host.early_return(true).unwrap_err(),
        r#"["stack-early-a", "stack-early-b"]"#
    );
    assert_eq!(host.early_return(false), Ok(8));
    assert!(held().is_empty());
}

#[synchronized("stack-panic-a")]
#[synchronized("stack-panic-b")]
fn panics() {
    panic!("inside both locks");
}

#[test]
fn a_panic_releases_both() {
    assert!(std::panic::catch_unwind(panics).is_err());
    assert!(held().is_empty());
    assert!(free_elsewhere("stack-panic-a"));
    assert!(free_elsewhere("stack-panic-b"));
}

#[synchronized_with_prefix("nova")]
mod compute {
    use lockutils::synchronized;

    #[synchronized("stack-prefixed-a")]
    #[synchronized("stack-prefixed-b", prefix = "glance")]
    pub fn both() -> Vec<String> {
        super::held()
    }
}

#[test]
fn a_block_prefix_reaches_every_attribute() {
    assert_eq!(
        compute::both(),
        ["nova-stack-prefixed-a", "glance-stack-prefixed-b"]
    );
}

/// Async guards are not listed per thread, so the order is seen from
/// outside: with `second` held elsewhere, the function waits for it while
/// already holding `first`. Taken the other way round, it would wait for
/// `second` holding nothing, and `first` would stay free.
async fn check_async_order<F>(first: &str, second: &str, call: F)
where
    F: std::future::Future<Output = u32> + Send + 'static,
{
    let blocker = LockOptions::new(second).lock().unwrap();
    let task = tokio::spawn(call);
    let deadline = Instant::now() + Duration::from_secs(10);
    while free_elsewhere(first) {
        assert!(
            Instant::now() < deadline,
            "`{first}` not taken while waiting for `{second}`: not in written order"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(!task.is_finished());
    drop(blocker);
    assert_eq!(task.await.unwrap(), 42);
    assert!(free_elsewhere(first));
    assert!(free_elsewhere(second));
}

#[synchronized("stack-async-a")]
#[synchronized("stack-async-b")]
async fn two_async() -> u32 {
    tokio::task::yield_now().await;
    42
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_fn_in_written_order_then_released() {
    check_async_order("stack-async-a", "stack-async-b", two_async()).await;
}

#[async_trait]
trait Driver {
    async fn reboot(&self) -> u32;
}

struct Libvirt;

#[async_trait]
impl Driver for Libvirt {
    #[synchronized("stack-trait-a")]
    #[synchronized("stack-trait-b")]
    async fn reboot(&self) -> u32 {
        tokio::task::yield_now().await;
        42
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_trait_method_in_written_order_then_released() {
    check_async_order("stack-trait-a", "stack-trait-b", async {
        Libvirt.reboot().await
    })
    .await;
}

/// rustc applies `cfg_attr` before the first attribute runs, so a lock from
/// `cfg_attr` is one of the stack, in its place.
#[synchronized("stack-cfg-a")]
#[cfg_attr(all(), synchronized("stack-cfg-b"))]
fn from_cfg_attr() -> Vec<String> {
    held()
}

#[test]
fn a_cfg_attr_lock_in_written_order() {
    assert_eq!(from_cfg_attr(), ["stack-cfg-a", "stack-cfg-b"]);
}

/// Another attribute between two: both locks are held in the test's body
/// and released after it.
#[synchronized("stack-tokio-a")]
#[tokio::test]
#[synchronized("stack-tokio-b")]
async fn with_tokio_test_between() {
    tokio::task::yield_now().await;
    assert!(!free_elsewhere("stack-tokio-a"));
    assert!(!free_elsewhere("stack-tokio-b"));
}
