//! Every shape of function takes `distributed` (with the `zookeeper`
//! feature), and `async fn` futures stay `Send`. Nothing here is called: the
//! behaviour against a server is in `tests/distributed.rs`.
use std::sync::Arc;

use lockutils::{synchronized, synchronized_with_prefix, Error, Registry};

static LOCKS: Registry = Registry::new();

fn assert_send<T: Send>(_: &T) {}

#[synchronized("fixed", distributed)]
fn fixed() -> u32 {
    1
}

#[synchronized("url", distributed = "zookeeper://zk1:2181,zk2:2181/app?session_timeout=4")]
fn url() {}

#[synchronized("env-url", distributed = concat!("zookeeper://", "zk1:2181", "/app"))]
fn const_url() {}

#[synchronized(
    "every-option",
    distributed,
    prefix = "nova",
    fair = false,
    timeout = "2s",
    mode = read,
    semaphores = LOCKS
)]
fn every_option() -> Result<(), Error> {
    Ok(())
}

#[synchronized("instance-{id}", distributed, blocking = false)]
fn placeholder(id: u32) -> Result<u32, Error> {
    Ok(id)
}

#[synchronized("generic", distributed)]
fn generic<T: Clone>(t: &T) -> T
where
    T: Send,
{
    t.clone()
}

struct Service {
    name: String,
    coordination_url: String,
}

impl Service {
    #[synchronized(name = &self.name, distributed = &self.coordination_url)]
    fn by_ref(&self) -> usize {
        self.name.len()
    }

    #[synchronized("service-{self}", distributed, fair)]
    fn by_mut(&mut self) {
        self.name.push('x');
    }

    #[synchronized("async", distributed)]
    async fn async_fixed(&self) -> usize {
        tokio::task::yield_now().await;
        self.name.len()
    }

    #[synchronized(name = &self.name, distributed = self.coordination_url.as_str(), timeout = "1s")]
    async fn async_dynamic(self: Arc<Self>) -> Result<usize, Error> {
        tokio::task::yield_now().await;
        Ok(self.name.len())
    }
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

#[async_trait::async_trait]
trait Job {
    async fn run(&self) -> u32;
}

#[async_trait::async_trait]
impl Job for Service {
    #[synchronized("job", distributed)]
    async fn run(&self) -> u32 {
        2
    }
}

#[synchronized_with_prefix("nova")]
mod compute {
    use lockutils::synchronized;

    #[synchronized("instance-{id}", distributed)]
    pub fn spawn(id: u32) -> u32 {
        id
    }
}

fn main() {
    let _: fn() -> u32 = fixed;
    let _: fn() = url;
    let _: fn() = const_url;
    let _: fn() -> Result<(), Error> = every_option;
    let _: fn(u32) -> Result<u32, Error> = placeholder;
    let _: fn(&u32) -> u32 = generic::<u32>;
    let _: fn(u32) -> u32 = compute::spawn;
    let _: fn(&Service) -> usize = Service::by_ref;
    let _: fn(&mut Service) = Service::by_mut;
    let service = Arc::new(Service {
        name: "s".into(),
        coordination_url: "zookeeper://127.0.0.1:2181".into(),
    });
    assert_send(&service.async_fixed());
    assert_send(&service.clone().async_dynamic());
    assert_send(&service.run());
}
