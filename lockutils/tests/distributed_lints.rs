//! `distributed` expansions are lint-clean too (see `lints.rs`): every shape
//! under `deny(warnings)`, clippy's `all` and `pedantic` groups and the rest.
//! Compiling is the test; `distributed.rs` runs them against a server.
#![cfg(feature = "zookeeper")]
#![deny(
    warnings,
    clippy::all,
    clippy::pedantic,
    unused_qualifications,
    dead_code,
    unused_results,
    let_underscore_drop,
    unreachable_pub,
    missing_debug_implementations
)]

use std::sync::Arc;

use lockutils::{synchronized, synchronized_with_prefix, Error, Registry};

static LOCKS: Registry = Registry::new();

#[synchronized("lints-zk-static", distributed)]
fn fixed() -> u32 {
    1
}

#[synchronized("lints-zk-{id}", distributed = "zookeeper://127.0.0.1:2181/lints")]
fn placeholder(id: u32) -> u32 {
    id
}

#[synchronized(
    name = format!("lints-zk-{}", id.len()),
    distributed = url,
    semaphores = LOCKS,
    fair = false
)]
fn expression(id: &str, url: &str) -> usize {
    id.len() + url.len()
}

#[synchronized("lints-zk-nb", distributed, blocking = false, mode = read, fair)]
fn non_blocking() -> Result<u32, Error> {
    Ok(2)
}

#[synchronized("lints-zk-timeout", distributed, timeout = "1s")]
async fn with_timeout() -> Result<u32, Error> {
    Ok(3)
}

#[derive(Debug)]
struct Service {
    name: String,
    url: String,
}

#[synchronized_with_prefix("lints")]
impl Service {
    #[synchronized(name = &self.name, distributed = &self.url)]
    fn by_ref(&self) -> usize {
        self.name.len()
    }

    #[synchronized("zk-mut", distributed)]
    fn by_mut(&mut self) {
        self.name.push('!');
    }

    #[synchronized("zk-arc", distributed)]
    fn by_arc(self: Arc<Self>) -> String {
        self.name.clone()
    }

    #[synchronized("{self:?}", distributed)]
    async fn by_value_async(self) -> String {
        self.name
    }
}

fn assert_send<T: Send>(_: &T) {}

#[test]
fn lint_clean_distributed_expansions() {
    let _: fn() -> u32 = fixed;
    let _: fn(u32) -> u32 = placeholder;
    let _: fn(&str, &str) -> usize = expression;
    let _: fn() -> Result<u32, Error> = non_blocking;
    let _: fn(&Service) -> usize = Service::by_ref;
    let _: fn(&mut Service) = Service::by_mut;
    let _: fn(Arc<Service>) -> String = Service::by_arc;
    assert_send(&with_timeout());
    let service = Service {
        name: "s".into(),
        url: "zookeeper://127.0.0.1:2181".into(),
    };
    assert_send(&service.by_value_async());
}
