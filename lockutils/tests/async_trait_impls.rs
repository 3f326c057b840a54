//! Methods of `#[async_trait]` impls: async-trait turns them into plain
//! functions returning `Box::pin(async move { .. })`, and `#[synchronized]`
//! puts the lock inside that future (awaited, held across the body's
//! awaits), not around building it.

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::Section;
use lockutils::{synchronized, Error};

const HOLD: Duration = Duration::from_millis(20);

#[async_trait]
trait Driver {
    async fn reboot(&self, id: u32) -> u32;
    async fn try_reboot(&self) -> Result<(), Error>;
}

struct Libvirt {
    uuid: String,
    section: Section,
}

#[async_trait]
impl Driver for Libvirt {
    #[synchronized(name = format!("at-{}", self.uuid))]
    async fn reboot(&self, id: u32) -> u32 {
        self.section.visit_async(HOLD).await;
        id
    }

    #[synchronized("at-try", blocking = false)]
    async fn try_reboot(&self) -> Result<(), Error> {
        tokio::task::yield_now().await;
        Ok(())
    }
}

#[test]
fn the_lock_is_held_across_the_future() {
    let driver: Arc<dyn Driver + Send + Sync> = Arc::new(Libvirt {
        uuid: "u1".into(),
        section: Section::new(),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let tasks: Vec<_> = (0..4)
            .map(|i| {
                let d = driver.clone();
                tokio::spawn(async move { d.reboot(i).await })
            })
            .collect();
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await.unwrap(), u32::try_from(i).unwrap());
        }
    });
    // Building the futures took no lock; running them did, one at a time.
    let fut = driver.reboot(9);
    assert!(lockutils::held_locks().is_empty());
    assert_eq!(rt.block_on(fut), 9);
    let libvirt = Libvirt {
        uuid: "u3".into(),
        section: Section::new(),
    };
    rt.block_on(async {
        let (a, b) = tokio::join!(libvirt.reboot(1), libvirt.reboot(2));
        assert_eq!((a, b), (1, 2));
    });
    assert_eq!(libvirt.section.max(), 1);
}

#[test]
fn blocking_false_returns_the_error_from_the_future() {
    let driver = Libvirt {
        uuid: "u2".into(),
        section: Section::new(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (taken_tx, taken_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let held = std::thread::spawn(move || {
        let g = lockutils::lock("at-try").unwrap();
        taken_tx.send(()).unwrap();
        let _ = done_rx.recv();
        drop(g);
    });
    taken_rx.recv().unwrap();
    let err = rt.block_on(driver.try_reboot()).unwrap_err();
    assert!(matches!(err, Error::WouldBlock { .. }), "{err}");
    done_tx.send(()).unwrap();
    held.join().unwrap();
    rt.block_on(driver.try_reboot()).unwrap();
}
