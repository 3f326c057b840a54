//! What this crate's ZooKeeper tests share beyond `common` (which the
//! command's tests include too): a simulated host as a backend with its own
//! session, and the core guards' ZooKeeper accessors written as methods.
#![allow(dead_code, unreachable_pub)]

use std::ops::Deref;
use std::time::Duration;

use lockutils_core::backend::{Location, LossFuture};
use lockutils_core::{AsyncLockGuard, LockGuard};
use lockutils_zookeeper::{Coordinator, LossReason, ZkBackend};

/// One simulated host: a backend with a session of its own. Dereferences to
/// its coordinator, for inspecting, clearing and revoking.
#[derive(Clone, Debug)]
pub struct Host(ZkBackend);

impl Host {
    pub fn new(url: &str) -> Host {
        Host(ZkBackend::from_coordinator(Coordinator::new(url).unwrap()))
    }

    /// The backend to give `LockOptions::backend`.
    pub fn zk(&self) -> &ZkBackend {
        &self.0
    }
}

impl Deref for Host {
    type Target = Coordinator;

    fn deref(&self) -> &Coordinator {
        self.0.coordinator()
    }
}

/// Runs `fut` to completion on a private one-thread runtime, for at most
/// `within` (`None` past it).
pub fn block_on_for<T>(within: Duration, fut: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async { tokio::time::timeout(within, fut).await.ok() })
}

/// Waits for a loss notification for at most `within`: the ZooKeeper reason,
/// or `None` if the hold was released (or the time ran out) first.
pub fn wait_lost(lost: LossFuture, within: Duration) -> Option<LossReason> {
    let loss = block_on_for(within, lost).flatten()?;
    Some(LossReason::of(&loss).expect("a ZooKeeper loss"))
}

/// The one guard family's ZooKeeper answers, as methods (the guards have
/// associated functions, so these shadow nothing).
pub trait ZkGuard {
    fn fencing_token(&self) -> u64;
    /// The candidate node's path.
    fn node(&self) -> String;
    fn is_lost(&self) -> bool;
    fn loss(&self) -> Option<LossReason>;
    fn is_revoked(&self) -> bool;
    fn lost(&self) -> LossFuture;

    /// Blocks until the lock is lost (`Some`), released, or `within` passes.
    fn wait_lost(&self, within: Duration) -> Option<LossReason> {
        wait_lost(self.lost(), within)
    }

    /// Polls until release is requested (`true`) or `within` passes.
    fn wait_revoked(&self, within: Duration) -> bool {
        let until = std::time::Instant::now() + within;
        while !self.is_revoked() {
            if std::time::Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }
}

fn node(location: Option<Location<'_>>) -> String {
    match location {
        Some(Location::Node(n)) => n.to_owned(),
        other => panic!("not a ZooKeeper hold: {other:?}"),
    }
}

macro_rules! zk_guard {
    ($guard:ident) => {
        impl ZkGuard for $guard<'_> {
            fn fencing_token(&self) -> u64 {
                $guard::fencing_token(self).unwrap()
            }
            fn node(&self) -> String {
                node($guard::location(self))
            }
            fn is_lost(&self) -> bool {
                $guard::is_lost(self)
            }
            fn loss(&self) -> Option<LossReason> {
                $guard::loss(self).map(|l| LossReason::of(&l).expect("a ZooKeeper loss"))
            }
            fn is_revoked(&self) -> bool {
                $guard::is_revoked(self)
            }
            fn lost(&self) -> LossFuture {
                $guard::lost(self).unwrap()
            }
        }
    };
}

zk_guard!(LockGuard);
zk_guard!(AsyncLockGuard);
