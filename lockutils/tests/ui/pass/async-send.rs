//! `async fn` futures stay `Send` (spawnable on a multi-thread runtime),
//! for static and dynamic names, methods and fallible locks.
use std::sync::Arc;

use lockutils::{synchronized, Error};

fn assert_send<T: Send>(_: &T) {}

#[synchronized("async")]
async fn fixed() -> u32 {
    tokio::task::yield_now().await;
    1
}

#[synchronized("async-{id}", external, timeout = "1s")]
async fn dynamic(id: String) -> Result<String, Error> {
    tokio::task::yield_now().await;
    Ok(id)
}

struct Service {
    name: String,
}

impl Service {
    #[synchronized(name = &self.name, mode = read)]
    async fn by_ref(&self) -> usize {
        tokio::task::yield_now().await;
        self.name.len()
    }

    #[synchronized("service", blocking = false)]
    async fn by_arc(self: Arc<Self>) -> Result<usize, Error> {
        Ok(self.by_ref().await)
    }
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    lockutils::set_defaults(dir.path());
    let service = Arc::new(Service { name: "s".into() });
    assert_send(&fixed());
    assert_send(&dynamic("x".into()));
    assert_send(&service.by_ref());
    assert_send(&service.clone().by_arc());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        assert_eq!(tokio::spawn(fixed()).await.unwrap(), 1);
        assert_eq!(tokio::spawn(dynamic("x".into())).await.unwrap().unwrap(), "x");
        assert_eq!(tokio::spawn(service.by_arc()).await.unwrap().unwrap(), 1);
    });
}
