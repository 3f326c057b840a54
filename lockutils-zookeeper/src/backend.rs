//! ZooKeeper behind the one lock API: [`ZkBackend`] implements
//! [`lockutils_core::backend::Backend`], so `LockOptions::new("x")
//! .backend(&zk)` (or `.backend_url("zookeeper://…")`) gives the ordinary
//! [`LockGuard`](lockutils_core::LockGuard) /
//! [`AsyncLockGuard`](lockutils_core::AsyncLockGuard), with fencing tokens,
//! loss notification and revocation reported through them.
//!
//! It drives the same recipe as [`ZkLockOptions`] (one session per URL,
//! candidate nodes, the kazoo/curator layouts); the core's in-process layer
//! in front has already queued this process's threads and tasks, so each
//! acquisition here meets only other processes.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use lockutils_core::backend::{
    self as core_backend, Admin, Backend, BackendHold, BoxHold, Capabilities, Capability, Cleared,
    ContenderInfo as CoreContender, HoldFuture, Location, LockInfo as CoreLockInfo, Loss,
    LossFuture, LossKind, ReleaseFuture, Removal, Request, Wait,
};
use lockutils_core::{Error, Mode, Registry, Result};
use zookeeper_client as zk;

use crate::coordinator::check_identity;
use crate::hold::LossReason;
use crate::layout::Layout;
use crate::lock::{AsyncZkLockGuard, ZkLockOptions};
use crate::{runtime, Coordinator};

/// The in-process step of [`ZkLockOptions`], which the core's in-process
/// layer has already taken for the caller: a registry of its own, so it
/// never contends with the caller's (uncontended: one compare-and-swap).
static INNER: Registry = Registry::new();

/// A ZooKeeper ensemble as a lock backend: the URL's session, root and
/// layout. Build it from a URL ([`ZkBackend::new`]) or a [`Coordinator`];
/// [`register`](crate::register) makes `zookeeper://` URLs select it.
///
/// Capabilities: shared locks (except with `layout=curator`), fencing tokens,
/// loss notification, revocation, administration.
#[derive(Clone)]
pub struct ZkBackend {
    inner: Arc<Inner>,
}

struct Inner {
    coordinator: Coordinator,
    shown: String,
}

impl ZkBackend {
    /// The backend for a coordination URL, on the process's shared session
    /// for it ([`Coordinator::shared`]). No server is contacted yet.
    ///
    /// # Errors
    /// [`Error::Backend`] if the URL does not parse.
    pub fn new(url: &str) -> Result<Self> {
        Ok(Self::from_coordinator(Coordinator::shared(url)?))
    }

    /// The backend for this coordinator (and its session).
    pub fn from_coordinator(coordinator: Coordinator) -> Self {
        ZkBackend {
            inner: Arc::new(Inner {
                shown: coordinator.url().to_string(),
                coordinator,
            }),
        }
    }

    /// The coordinator, for ZooKeeper-specific operations.
    pub fn coordinator(&self) -> &Coordinator {
        &self.inner.coordinator
    }

    fn layout(&self) -> Layout {
        self.inner.coordinator.url().layout()
    }
}

impl fmt::Debug for ZkBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ZkBackend").field(&self.inner.shown).finish()
    }
}

/// Options for one acquisition on `coordinator`, waiting as `wait` says.
fn options<'a>(
    coordinator: &'a Coordinator,
    request: &'a Request,
    wait: Wait,
) -> ZkLockOptions<'a> {
    let mut o = ZkLockOptions::new(&request.identity)
        .coordinator(coordinator)
        .registry(&INNER)
        .mode(request.mode)
        .fair(false);
    if let Some(c) = request.caller {
        o = o.caller(c);
    }
    match wait {
        Wait::Never => o.blocking(false),
        Wait::Forever => o,
        Wait::Until(d) => o.timeout(d.saturating_duration_since(Instant::now())),
    }
}

/// Contention is `Ok(None)`; other errors name the caller's lock name.
fn outcome(
    got: Result<AsyncZkLockGuard>,
    request: &Request,
    backend: &Arc<Inner>,
) -> Result<Option<BoxHold>> {
    match got {
        Ok(guard) => Ok(Some(Box::new(ZkHold {
            guard,
            backend: backend.clone(),
        }))),
        Err(e) if e.is_contention() => Ok(None),
        Err(e) => Err(renamed(e, &request.name)),
    }
}

/// The error with the lock named as the caller named it.
fn renamed(e: Error, lock: &str) -> Error {
    match e {
        Error::Backend {
            backend,
            reason,
            source,
            ..
        } => Error::Backend {
            name: lock.to_owned(),
            backend,
            reason,
            source,
        },
        Error::InvalidName { reason, .. } => Error::InvalidName {
            name: lock.to_owned(),
            reason,
        },
        Error::InvalidOptions { reason, .. } => Error::InvalidOptions {
            name: lock.to_owned(),
            reason,
        },
        e => e,
    }
}

impl Backend for ZkBackend {
    fn kind(&self) -> &'static str {
        "zookeeper"
    }

    fn url(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.inner.shown)
    }

    fn capabilities(&self) -> Capabilities {
        let caps = Capabilities::NONE
            .with(Capability::FencingTokens)
            .with(Capability::LossNotification)
            .with(Capability::Revocation)
            .with(Capability::Admin)
            .with(Capability::Clear);
        if self.layout().supports(Mode::Shared) {
            caps.with(Capability::Shared)
        } else {
            caps
        }
    }

    fn acquire(&self, request: &Request, wait: Wait) -> Result<Option<BoxHold>> {
        let (inner, req) = (self.inner.clone(), request.clone());
        // The acquisition runs on the crate's runtime thread; this thread
        // parks until it is done.
        let got =
            runtime::block_on(
                async move { options(&inner.coordinator, &req, wait).lock_async().await },
            );
        outcome(got, request, &self.inner)
    }

    fn acquire_async(&self, request: Request, wait: Wait) -> HoldFuture {
        let inner = self.inner.clone();
        Box::pin(async move {
            let got = options(&inner.coordinator, &request, wait)
                .lock_async()
                .await;
            outcome(got, &request, &inner)
        })
    }

    fn admin(&self) -> Result<&dyn Admin> {
        Ok(self)
    }

    /// Waits for the candidate nodes of dropped acquisitions to be deleted.
    fn settle(&self, within: std::time::Duration) -> bool {
        runtime::settle(within)
    }
}

/// A ZooKeeper lock held through the core guards.
struct ZkHold {
    guard: AsyncZkLockGuard,
    backend: Arc<Inner>,
}

impl fmt::Debug for ZkHold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ZkHold").field(&self.guard).finish()
    }
}

fn to_loss(reason: LossReason) -> Loss {
    let kind = match reason {
        LossReason::SessionExpired | LossReason::SessionClosed | LossReason::AuthFailed => {
            LossKind::SessionEnded
        }
        LossReason::ConnectionLost => LossKind::ConnectionLost,
        LossReason::NodeDeleted => LossKind::Cleared,
        #[allow(unreachable_patterns)] // LossReason may grow.
        _ => LossKind::Other,
    };
    Loss {
        kind,
        detail: reason.to_string().into(),
    }
}

impl BackendHold for ZkHold {
    fn backend(&self) -> &str {
        &self.backend.shown
    }

    fn location(&self) -> Location<'_> {
        Location::Node(self.guard.node())
    }

    fn fencing_token(&self) -> Option<u64> {
        Some(self.guard.fencing_token())
    }

    fn loss(&self) -> Option<Loss> {
        self.guard.loss().map(to_loss)
    }

    fn lost(&self) -> Option<LossFuture> {
        let lost = self.guard.lost();
        Some(Box::pin(async move { lost.await.map(to_loss) }))
    }

    fn is_revoked(&self) -> bool {
        self.guard.is_revoked()
    }

    fn release(self: Box<Self>) -> Result<()> {
        let guard = self.guard;
        runtime::block_on(guard.unlock())
    }

    fn release_async(self: Box<Self>) -> ReleaseFuture {
        Box::pin(self.guard.unlock())
    }
}

impl ZkBackend {
    /// The lock's contenders, in the core's shape.
    fn inspect_node(&self, identity: &str) -> Result<CoreLockInfo> {
        let info = self.inner.coordinator.inspect(identity)?;
        let mut out = CoreLockInfo::new(identity, info.path.clone());
        for c in &info.contenders {
            let mut x = CoreContender::new(Some(c.mode));
            let data = c.data_lossy();
            // This crate writes `host:pid[ caller]`; kazoo writes its identifier.
            let first = data.split(' ').next().unwrap_or("");
            if let Some((host, pid)) = first.rsplit_once(':') {
                if let Ok(pid) = pid.parse() {
                    x.host = Some(host.to_owned());
                    x.pid = Some(pid);
                }
            }
            x.since = Some(c.created);
            x.token = Some(c.fencing_token);
            x.kind = Some(c.layout.as_str());
            x.node = Some(c.node.clone());
            x.sequence = Some(c.sequence);
            x.session = Some(format!("0x{:x}", c.session as u64));
            x.data = Some(data.clone().into_owned());
            x.revoke_requested = Some(c.revoke_requested);
            x.detail = format!("{} {}", c.node, data);
            if c.holder {
                out.holders.push(x);
            } else {
                out.waiters.push(x);
            }
        }
        out.settle_state();
        Ok(out)
    }
}

impl Admin for ZkBackend {
    fn backend(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.inner.shown)
    }

    fn list(&self) -> Result<Vec<CoreLockInfo>> {
        let summaries = self.inner.coordinator.locks()?;
        Ok(summaries
            .iter()
            .map(|s| {
                // A free lock needs no second look.
                let mut info = if s.holders == 0 && s.waiters == 0 {
                    let mut free = CoreLockInfo::new(s.name.clone(), s.path.clone());
                    free.settle_state();
                    free
                } else {
                    self.inspect_node(&s.name)
                        .unwrap_or_else(|e| CoreLockInfo::unknown(&s.name, &s.path, e.to_string()))
                };
                info.exists = Some(true);
                info
            })
            .collect())
    }

    fn location(&self, identity: &str) -> String {
        self.inner.coordinator.lock_path(identity)
    }

    /// The lock's contenders; a lock without a node is free (`exists` says
    /// whether its node is there).
    fn inspect(&self, identity: &str) -> Result<CoreLockInfo> {
        let mut info = self.inspect_node(identity)?;
        let exists = info.is_held()
            || !info.waiters.is_empty()
            || self
                .inner
                .coordinator
                .locks()?
                .iter()
                .any(|s| s.name == identity);
        info.exists = Some(exists);
        Ok(info)
    }

    fn remove_if_free(&self, identity: &str) -> Result<Removal> {
        let coordinator = self.inner.coordinator.clone();
        let layout = coordinator.url().layout();
        check_identity(identity, layout.nests_names())?;
        if layout.nests_names() {
            // kazoo and tooz lock objects keep using their lock node: deleting
            // it would make their next acquire() fail. Nothing but candidates
            // is ever removed in this layout, and a free lock has none.
            let info = coordinator.inspect(identity)?;
            return Ok(if info.contenders.is_empty() {
                Removal::Absent
            } else {
                Removal::Busy
            });
        }
        let path = coordinator.lock_path(identity);
        let id = identity.to_owned();
        runtime::block_on(async move {
            let client = coordinator.client(&id).await?;
            // Deleting a node with children fails: a contender that arrived
            // meanwhile keeps its lock node.
            match client.delete(&path, None).await {
                Ok(()) => Ok(Removal::Removed),
                Err(zk::Error::NoNode) => Ok(Removal::Absent),
                Err(zk::Error::NotEmpty) => Ok(Removal::Busy),
                Err(e) => Err(coordinator.error(&id, &format!("deleting lock node {path}"), e)),
            }
        })
    }

    fn clear(&self, identity: &str) -> Result<usize> {
        self.inner.coordinator.clear(identity)
    }

    /// In the kazoo layout the lock node stays (kazoo and tooz lock objects
    /// refer to it); only the candidates go.
    fn clear_with_report(&self, identity: &str) -> Result<Cleared> {
        let before = self.inspect(identity)?;
        let removed = self.clear(identity)?;
        let kept = self.layout().nests_names().then(|| {
            "the lock node stays (kazoo layout: kazoo and tooz lock objects refer to it)".to_owned()
        });
        Ok(Cleared::new(before, removed, kept))
    }

    fn revoke(&self, identity: &str) -> Result<usize> {
        self.inner.coordinator.revoke(identity)
    }
}

/// Makes `zookeeper://` coordination URLs select [`ZkBackend`] (the
/// `lockutils` facade calls this when its `zookeeper` feature is on).
///
/// ```
/// lockutils_zookeeper::register();
/// let b = lockutils_core::backend::backend_for_url("zookeeper://127.0.0.1:1/doc").unwrap();
/// assert_eq!(b.kind(), "zookeeper");
/// ```
pub fn register() {
    core_backend::register_scheme("zookeeper", |url| {
        ZkBackend::new(url)
            .map(|b| Arc::new(b) as Arc<dyn Backend>)
            .map_err(|e| match e {
                Error::Backend { reason, .. } => reason,
                e => e.to_string(),
            })
    });
}
