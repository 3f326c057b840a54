//! ZooKeeper behind the one lock API: [`ZkBackend`] implements
//! [`lockutils_core::backend::Backend`], so `LockOptions::new("x")
//! .backend(&zk)` (or `.backend_url("zookeeper://…")`) gives the ordinary
//! [`LockGuard`](lockutils_core::LockGuard) /
//! [`AsyncLockGuard`](lockutils_core::AsyncLockGuard), with fencing tokens,
//! loss notification and revocation reported through them.
//!
//! Each acquisition runs the recipe (candidate nodes, the kazoo/tooz/curator
//! layouts) on the URL's one session per process; the core's in-process
//! layer in front has already queued this process's threads and tasks, so
//! each acquisition here meets only other processes.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use lockutils_core::backend::{
    self as core_backend, Admin, Backend, BackendHold, BoxHold, Capabilities, Capability, Cleared,
    ContenderInfo as CoreContender, HoldFuture, Listing, Location, LockInfo as CoreLockInfo, Loss,
    LossFuture, LossKind, ReleaseFuture, Removal, Request, Wait,
};
use lockutils_core::{Error, Mode, Result};
use zookeeper_client as zk;

use crate::coordinator::{check_identity, not_a_lock_node};
use crate::hold::{Hold, LossReason};
use crate::layout::Layout;
use crate::recipe::{self, host_pid, Plan};
use crate::{runtime, Coordinator};

/// A ZooKeeper ensemble as a lock backend: the URL's session, root and
/// layout. Build it from a URL ([`ZkBackend::new`]) or a [`Coordinator`];
/// [`register`](crate::register) makes `zookeeper://` URLs select it.
///
/// | setting | meaning | default |
/// |---|---|---|
/// | the URL | ensemble, root, `session_timeout`, `connect_timeout`, `layout` ([`CoordinationUrl`](crate::CoordinationUrl)) | – |
/// | [`identifier`](Self::identifier) | data of the candidate node, shown by listings and kazoo's `contenders()` | `host:pid[ caller]` |
/// | [`revoke_blockers`](Self::revoke_blockers) | while waiting, ask the holders ahead to release | `false` |
///
/// Capabilities: shared locks (except with `layout=curator`), fencing tokens,
/// loss notification, revocation, administration.
///
/// ```no_run
/// use lockutils_core::{LockGuard, LockOptions};
/// use lockutils_zookeeper::ZkBackend;
///
/// let zk = ZkBackend::new("zookeeper://zk1:2181,zk2:2181/lockutils")?;
/// let guard = LockOptions::new("instance-42").prefix("nova").backend(&zk).lock()?;
/// let token = LockGuard::fencing_token(&guard)?; // give this to the store you write to
/// # let _ = token;
/// if LockGuard::is_lost(&guard) { /* stop: someone else may hold it now */ }
/// LockGuard::unlock(guard)?; // or drop it
/// # Ok::<(), lockutils_core::Error>(())
/// ```
#[derive(Clone)]
pub struct ZkBackend {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    coordinator: Coordinator,
    shown: String,
    identifier: Option<String>,
    revoke_blockers: bool,
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
                identifier: None,
                revoke_blockers: false,
            }),
        }
    }

    /// The data written into the candidate nodes of this backend's
    /// acquisitions, shown by listings and kazoo's `contenders()` (default
    /// `host:pid`, followed by the caller when the options name one).
    ///
    /// ```
    /// let zk = lockutils_zookeeper::ZkBackend::new("zookeeper://127.0.0.1:1/doc")
    ///     .unwrap()
    ///     .identifier("compute-7");
    /// # drop(zk);
    /// ```
    #[must_use]
    pub fn identifier(self, identifier: impl Into<String>) -> Self {
        self.with(|i| i.identifier = Some(identifier.into()))
    }

    /// While waiting, ask the holders ahead to release (zktools'
    /// `acquire(revoke=True)`): their guards report
    /// [`is_revoked`](lockutils_core::LockGuard::is_revoked). Default `false`.
    #[must_use]
    pub fn revoke_blockers(self, revoke: bool) -> Self {
        self.with(|i| i.revoke_blockers = revoke)
    }

    fn with(self, f: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Arc::unwrap_or_clone(self.inner);
        f(&mut inner);
        ZkBackend {
            inner: Arc::new(inner),
        }
    }

    /// The coordinator, for ZooKeeper-specific operations.
    pub fn coordinator(&self) -> &Coordinator {
        &self.inner.coordinator
    }

    fn layout(&self) -> Layout {
        self.inner.coordinator.url().layout()
    }

    /// The lock node's name under the root for a lock of this name and
    /// identity (the identity as the options give it: the lock file name).
    ///
    /// In every layout but kazoo's this is the identity. The kazoo layout
    /// maps names as tooz does: the name (after the prefix) is a path below
    /// the root, so `a/b` is the node `a/b` nested in `a`, as tooz's
    /// `get_lock("a/b")` makes it, where the identity has `a_b`; a long name
    /// stays whole (tooz does not shorten names as lock files must be).
    ///
    /// # Errors
    /// [`Error::InvalidName`], naming the lock, for characters ZooKeeper
    /// refuses or (kazoo layout) an empty, `.` or `..` path segment or a
    /// leading or trailing `/`.
    ///
    /// ```
    /// use lockutils_zookeeper::ZkBackend;
    ///
    /// let tooz = ZkBackend::new("zookeeper://127.0.0.1:1/tooz/locks?layout=kazoo").unwrap();
    /// assert_eq!(tooz.node_identity("a/b", "p-a_b").unwrap(), "p-a/b");
    /// let native = ZkBackend::new("zookeeper://127.0.0.1:1/doc").unwrap();
    /// assert_eq!(native.node_identity("a/b", "a_b").unwrap(), "a_b");
    /// ```
    pub fn node_identity<'a>(&self, name: &'a str, identity: &'a str) -> Result<Cow<'a, str>> {
        let nested = self.layout().nests_names();
        let id = if nested {
            nested_identity(name, identity)
        } else {
            Cow::Borrowed(identity)
        };
        check_identity(&id, nested).map_err(|e| match e {
            Error::InvalidName { reason, .. } => Error::InvalidName {
                name: name.to_owned(),
                reason,
            },
            e => e,
        })?;
        Ok(id)
    }

    /// Everything checked before waiting for anything.
    fn plan(&self, request: &Request, wait: Wait) -> Result<Plan> {
        let coordinator = self.inner.coordinator.clone();
        let layout = self.layout();
        if !layout.supports(request.mode) {
            return Err(self.unsupported(&request.name, Capability::Shared));
        }
        let identity = self
            .node_identity(&request.name, &request.identity)?
            .into_owned();
        let data = match (&self.inner.identifier, request.caller) {
            (Some(id), _) => id.as_bytes().to_vec(),
            (None, Some(caller)) => format!("{} {caller}", host_pid()).into_bytes(),
            (None, None) => host_pid().as_bytes().to_vec(),
        };
        let (blocking, timeout) = match wait {
            Wait::Never => (false, None),
            // A deadline already past (a zero timeout) is one attempt, as
            // `try_lock` and lock files make it: its requests get the URL's
            // `connect_timeout`, rather than none, which refused a free lock.
            Wait::Until(_) if wait.expired() => (false, None),
            Wait::Forever => (true, None),
            Wait::Until(d) => (true, Some(d.saturating_duration_since(Instant::now()))),
        };
        Ok(Plan {
            path: coordinator.lock_path(&identity),
            coordinator,
            name: request.name.clone(),
            identity,
            mode: request.mode,
            layout,
            data,
            blocking,
            timeout,
            revoke_blockers: self.inner.revoke_blockers,
            pending: runtime::Pending::default(),
        })
    }

    /// How long a dropped acquisition waits for its candidate node's
    /// deletion before the drop returns: the grace a timed-out one gives its
    /// withdrawal too ([`recipe::WITHDRAW_GRACE`]), so that a deadline is
    /// overrun by no more than that. A server that cannot answer that soon
    /// gets the deletion in the background, and the session's end removes
    /// the node in any case.
    fn settle_bound(&self) -> std::time::Duration {
        recipe::WITHDRAW_GRACE
    }

    /// Contention is `Ok(None)`.
    fn outcome(&self, got: Result<Hold>) -> Result<Option<BoxHold>> {
        match got {
            Ok(hold) => Ok(Some(Box::new(ZkHold {
                hold,
                backend: self.inner.clone(),
            }))),
            Err(e) if e.is_contention() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The tooz form of a lock's node name: the identity with the flattened
/// name at its end replaced by the name itself. The identity is the lock
/// file name, `{prefix}-{name}` with `/` made `_` (or, for a long name, its
/// first 200 bytes and a hash): the prefix part is what is left of it once
/// the flattened name is taken off the end, or, for a shortened name, the
/// prefix whose file name is the identity.
fn nested_identity<'a>(name: &'a str, identity: &'a str) -> Cow<'a, str> {
    if name == identity {
        return Cow::Borrowed(name);
    }
    let flat = name.replace('/', "_");
    if let Some(prefix) = identity.strip_suffix(flat.as_str()) {
        return Cow::Owned(format!("{prefix}{name}"));
    }
    // A shortened name: find the prefix part (empty, or ending with `-`).
    let found = (0..=identity.len())
        .filter(|&l| identity.is_char_boundary(l))
        .filter(|&l| l == 0 || identity.as_bytes()[l - 1] == b'-')
        .find(|&l| {
            let prefix = &identity[..l];
            lockutils_core::lock_file_name(name, (l > 0).then_some(prefix))
                .is_ok_and(|f| f == identity)
        });
    match found {
        Some(l) => Cow::Owned(format!("{}{name}", &identity[..l])),
        None => Cow::Borrowed(identity),
    }
}

impl fmt::Debug for ZkBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ZkBackend").field(&self.inner.shown).finish()
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
        let plan = self.plan(request, wait)?;
        // The acquisition runs on the crate's runtime thread; this thread
        // parks until it is done (a timed-out one has withdrawn its
        // candidate, waiting for that at most `WITHDRAW_GRACE`).
        let got = runtime::block_on(recipe::acquire(plan, wait.deadline()));
        self.outcome(got)
    }

    fn acquire_async(&self, request: Request, wait: Wait) -> HoldFuture {
        let this = self.clone();
        Box::pin(async move {
            let plan = this.plan(&request, wait)?;
            // Dropping this future drops the task, which withdraws the
            // candidate node (see `recipe::acquire`); the drop returns once
            // that is done (or past the bound).
            let mut settle = SettleOnDrop {
                pending: plan.pending.clone(),
                within: Some(this.settle_bound()),
            };
            let got = runtime::spawn_tracked(recipe::acquire(plan, wait.deadline())).await;
            settle.within = None;
            this.outcome(got)
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

/// Held by a pending async acquisition: if it is dropped before it ends,
/// waits (at most `within`) until its candidate node is deleted, so that a
/// cancelled acquisition leaves nothing behind once the drop returns.
struct SettleOnDrop {
    pending: runtime::Pending,
    /// `None` once the acquisition ended by itself.
    within: Option<std::time::Duration>,
}

impl Drop for SettleOnDrop {
    fn drop(&mut self) {
        if let Some(within) = self.within {
            if !self.pending.wait(within) {
                tracing::warn!(
                    "a cancelled ZooKeeper acquisition's candidate node was not deleted within \
                     {within:?}; its deletion goes on in the background"
                );
            }
        }
    }
}

/// A ZooKeeper lock held through the core guards.
struct ZkHold {
    hold: Hold,
    backend: Arc<Inner>,
}

impl fmt::Debug for ZkHold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ZkHold").field(self.hold.watch()).finish()
    }
}

fn to_loss(reason: LossReason) -> Loss {
    let kind = match reason {
        LossReason::SessionExpired | LossReason::SessionClosed | LossReason::AuthFailed => {
            LossKind::SessionEnded
        }
        LossReason::ConnectionLost => LossKind::ConnectionLost,
        LossReason::NodeDeleted => LossKind::Cleared,
    };
    Loss {
        kind,
        detail: Cow::Borrowed(reason.as_str()),
    }
}

impl BackendHold for ZkHold {
    fn backend(&self) -> &str {
        &self.backend.shown
    }

    fn location(&self) -> Location<'_> {
        Location::Node(self.hold.watch().node())
    }

    fn fencing_token(&self) -> Option<u64> {
        Some(self.hold.watch().fencing_token())
    }

    fn loss(&self) -> Option<Loss> {
        self.hold.watch().loss().map(to_loss)
    }

    fn lost(&self) -> Option<LossFuture> {
        let lost = self.hold.watch().lost();
        Some(Box::pin(async move { lost.await.map(to_loss) }))
    }

    fn is_revoked(&self) -> bool {
        self.hold.watch().is_revoked()
    }

    fn release(self: Box<Self>) -> Result<()> {
        runtime::block_on(self.hold.unlock())
    }

    fn release_async(self: Box<Self>) -> ReleaseFuture {
        let unlock = runtime::spawn(self.hold.unlock());
        Box::pin(unlock)
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

    /// Nodes under the root that are not lock nodes (with data) are
    /// `ignored`, so that `clean` leaves them alone.
    fn list_all(&self) -> Result<Listing> {
        let mut locks = self.list()?;
        let free: Vec<String> = locks
            .iter()
            .filter(|l| !l.is_held() && l.waiters.is_empty())
            .map(|l| l.identity.clone())
            .collect();
        let data = self.inner.coordinator.not_lock_nodes(&free)?;
        locks.retain(|l| !data.iter().any(|(n, _)| *n == l.identity));
        let mut listing = Listing::default();
        (listing.locks, listing.ignored) = (locks, data);
        Ok(listing)
    }

    /// The node name: in the kazoo layout, `a/b` where the identity has
    /// `a_b` ([`node_identity`](ZkBackend::node_identity)).
    fn identity_of(&self, name: &str, identity: &str) -> Result<String> {
        self.node_identity(name, identity).map(Cow::into_owned)
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
        if exists && !info.is_held() && info.waiters.is_empty() {
            // A free node with data is no lock: not shown as a free one,
            // as remove leaves it alone.
            let coordinator = &self.inner.coordinator;
            if let Some((_, why)) = coordinator.not_lock_nodes(&[identity.to_owned()])?.pop() {
                return Err(coordinator.not_a_lock_node_error(identity, &info.location, &why));
            }
        }
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
            loop {
                let stat = match client.check_stat(&path).await {
                    Ok(Some(stat)) => stat,
                    Ok(None) => return Ok(Removal::Absent),
                    Err(e) => {
                        return Err(coordinator.error(&id, &format!("reading lock node {path}"), e))
                    }
                };
                if let Some(why) = not_a_lock_node(&stat) {
                    return Err(coordinator.not_a_lock_node_error(&id, &path, &why));
                }
                // Deleting a node with children fails: a contender that
                // arrived meanwhile keeps its lock node. The version read
                // keeps data written since from going with it: look again.
                match client.delete(&path, Some(stat.version)).await {
                    Ok(()) => return Ok(Removal::Removed),
                    Err(zk::Error::NoNode) => return Ok(Removal::Absent),
                    Err(zk::Error::NotEmpty) => return Ok(Removal::Busy),
                    Err(zk::Error::BadVersion) => {}
                    Err(e) => {
                        return Err(coordinator.error(
                            &id,
                            &format!("deleting lock node {path}"),
                            e,
                        ))
                    }
                }
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
