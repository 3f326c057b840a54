//! Methods of `#[async_trait]` impls: the lock is taken inside the boxed
//! future, which stays `Send`.
use async_trait::async_trait;
use lockutils::{synchronized, Error};

fn assert_send<T: Send>(_: &T) {}

#[async_trait]
trait Driver {
    async fn reboot(&self, id: u32) -> u32;
    async fn try_stop(&self) -> Result<(), Error>;
}

struct Libvirt {
    uuid: String,
}

#[async_trait]
impl Driver for Libvirt {
    #[synchronized("instance-{id}")]
    async fn reboot(&self, id: u32) -> u32 {
        tokio::task::yield_now().await;
        id
    }

    #[synchronized(name = &self.uuid, timeout = "1s")]
    async fn try_stop(&self) -> Result<(), Error> {
        Ok(())
    }
}

fn main() {
    let d = Libvirt { uuid: "u".into() };
    assert_send(&d.reboot(1));
    assert_send(&d.try_stop());
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(rt.block_on(d.reboot(2)), 2);
    rt.block_on(d.try_stop()).unwrap();
}
