//! Review: `#[synchronized]` in a 2018 or 2024 edition crate. Built by
//! tests/review_editions/run.sh with rustc directly (the workspace is 2021).
#![deny(warnings)]
use std::future::Future;

use lockutils::synchronized;

#[synchronized("zz-ed-fixed")]
fn fixed() -> u32 {
    1
}

#[synchronized("zz-ed-{id}", timeout = "1s")]
fn dynamic(id: u32) -> Result<u32, lockutils::Error> {
    Ok(id)
}

#[synchronized(name = format!("zz-ed-{}", id), blocking = false)]
async fn asynchronous(id: u32) -> Result<u32, lockutils::Error> {
    Ok(id)
}

struct Probe;
impl Probe {
    fn v(&self) -> bool {
        true
    }
}
impl Drop for Probe {
    fn drop(&mut self) {
        // Whether this thread still holds the lock while the body's tail
        // temporary is dropped.
        let held = lockutils::held_locks().iter().any(|h| h.name == "zz-ed-tail");
        println!("tail temporary dropped under the lock: {}", held);
    }
}

#[synchronized("zz-ed-tail", fair)]
fn tail() -> bool {
    Probe.v()
}

fn main() {
    assert_eq!(fixed(), 1);
    assert_eq!(dynamic(2).unwrap(), 2);
    let f = asynchronous(3);
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(&waker);
    let mut f = Box::pin(f);
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => assert_eq!(v.unwrap(), 3),
        std::task::Poll::Pending => panic!("pending"),
    }
    assert!(tail());
    println!("ok");
}
