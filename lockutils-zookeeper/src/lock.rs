//! `ZkLockOptions`: a distributed lock, taken in-process first and then on
//! ZooKeeper, under one deadline.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use lockutils_core::{AsyncLockGuard, Error, LockGuard, LockOptions, Mode, Registry, Result};
use zookeeper_client as zk;

use crate::coordinator::{check_identity, Coordinator, UNLOCK};
use crate::hold::{Acquired, Hold, HoldWatch, LossReason};
use crate::layout::{self, Layout};
use crate::requests::{self, retrying, transient, within, Failed};
use crate::runtime;
use crate::session::Session;

/// A distributed lock to take: its name and options, mirroring
/// [`LockOptions`] — the same name, prefix, timeout, blocking and mode mean
/// the same thing — plus where the ZooKeeper ensemble is.
///
/// Taking it takes the in-process lock of the same identity first (so
/// threads and tasks of one process queue in memory, not on the server), then
/// the ZooKeeper lock, all under one deadline: the lock node is
/// `{root}/{identity}`, where the identity is the lock file name
/// [`LockOptions`] would use (`nova-instance-42`).
///
/// | method | meaning | default |
/// |---|---|---|
/// | [`prefix`](Self::prefix) | as [`LockOptions::prefix`] | none |
/// | [`timeout`](Self::timeout) | bounds the whole acquisition, in-process and ZooKeeper parts together | none |
/// | [`blocking`](Self::blocking) | `false`: fail at once with [`Error::WouldBlock`] | `true` |
/// | [`mode`](Self::mode) / [`shared`](Self::shared) | reader/writer | exclusive |
/// | [`fair`](Self::fair) | FIFO in-process too (ZooKeeper waiters are always FIFO) | `true` |
/// | [`registry`](Self::registry) | the in-process lock container | [`Registry::global`] |
/// | [`url`](Self::url) / [`coordinator`](Self::coordinator) | the ensemble | [`default_url`](crate::default_url) |
/// | [`layout`](Self::layout) | node names (kazoo interop) | the URL's `layout` |
/// | [`identifier`](Self::identifier) | data of the candidate node | `host:pid` |
/// | [`revoke_blockers`](Self::revoke_blockers) | ask holders to release while waiting | `false` |
///
/// All builder methods are `const`, so a `static` can hold the options
/// (which is what `#[synchronized(…, distributed)]` expands to).
///
/// ```no_run
/// use std::time::Duration;
/// use lockutils_zookeeper::ZkLockOptions;
///
/// let guard = ZkLockOptions::new("instance-42")
///     .prefix("nova")
///     .url("zookeeper://zk1:2181,zk2:2181/lockutils")
///     .timeout(Duration::from_secs(30))
///     .lock()?;
/// let token = guard.fencing_token(); // give this to the store you write to
/// # let _ = token;
/// if guard.is_lost() { /* stop: someone else may hold it now */ }
/// guard.unlock()?; // or drop it
/// # Ok::<(), lockutils_core::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct ZkLockOptions<'a> {
    name: &'a str,
    prefix: Option<&'a str>,
    target: Target<'a>,
    timeout: Option<Duration>,
    blocking: bool,
    mode: Mode,
    fair: bool,
    registry: &'static Registry,
    caller: Option<&'static str>,
    identifier: Option<&'a str>,
    layout: Option<Layout>,
    revoke_blockers: bool,
}

#[derive(Clone, Copy)]
enum Target<'a> {
    Default,
    Url(&'a str),
    Coordinator(&'a Coordinator),
}

impl<'a> ZkLockOptions<'a> {
    /// An exclusive, blocking distributed lock named `name`, on the default
    /// coordination URL.
    pub const fn new(name: &'a str) -> Self {
        ZkLockOptions {
            name,
            prefix: None,
            target: Target::Default,
            timeout: None,
            blocking: true,
            mode: Mode::Exclusive,
            fair: true,
            registry: Registry::global(),
            caller: None,
            identifier: None,
            layout: None,
            revoke_blockers: false,
        }
    }

    /// Prefix of the lock's identity, as [`LockOptions::prefix`].
    pub const fn prefix(mut self, prefix: &'a str) -> Self {
        self.prefix = Some(prefix);
        self
    }

    /// The coordination URL for this lock (see
    /// [`CoordinationUrl`](crate::CoordinationUrl)); the process shares one
    /// session per URL.
    pub const fn url(mut self, url: &'a str) -> Self {
        self.target = Target::Url(url);
        self
    }

    /// Lock through this coordinator (and its session).
    pub const fn coordinator(mut self, coordinator: &'a Coordinator) -> Self {
        self.target = Target::Coordinator(coordinator);
        self
    }

    /// Bounds the whole acquisition; past it, [`Error::Timeout`].
    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// With `false`, fail at once with [`Error::WouldBlock`] instead of
    /// waiting (in-process or on ZooKeeper).
    pub const fn blocking(mut self, blocking: bool) -> Self {
        self.blocking = blocking;
        self
    }

    /// Shared (reader) or exclusive (writer).
    pub const fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Shorthand for `mode(Mode::Shared)`.
    pub const fn shared(self) -> Self {
        self.mode(Mode::Shared)
    }

    /// FIFO among in-process waiters too (default `true`: ZooKeeper serves
    /// its queue in order, and an unfair in-process step would let a newer
    /// thread overtake an older one of the same process).
    pub const fn fair(mut self, fair: bool) -> Self {
        self.fair = fair;
        self
    }

    /// The in-process lock container, as [`LockOptions::registry`].
    pub const fn registry(mut self, registry: &'static Registry) -> Self {
        self.registry = registry;
        self
    }

    /// Who takes the lock, for logs and the candidate node's data.
    pub const fn caller(mut self, caller: &'static str) -> Self {
        self.caller = Some(caller);
        self
    }

    /// The data written into the candidate node, shown by listings and
    /// kazoo's `contenders()` (default `host:pid`).
    pub const fn identifier(mut self, identifier: &'a str) -> Self {
        self.identifier = Some(identifier);
        self
    }

    /// Candidate node names, overriding the URL's `layout`.
    pub const fn layout(mut self, layout: Layout) -> Self {
        self.layout = Some(layout);
        self
    }

    /// While waiting, ask the holders ahead to release (zktools'
    /// `acquire(revoke=True)`): their guards report
    /// [`is_revoked`](ZkLockGuard::is_revoked).
    pub const fn revoke_blockers(mut self, revoke: bool) -> Self {
        self.revoke_blockers = revoke;
        self
    }

    /// The name as given.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The in-process part: the [`LockOptions`] taken before the ZooKeeper
    /// lock.
    pub fn local(&self) -> LockOptions<'a, 'static> {
        let mut o = LockOptions::new(self.name)
            .registry(self.registry)
            .blocking(self.blocking)
            .mode(self.mode)
            .fair(self.fair);
        if let Some(p) = self.prefix {
            o = o.prefix(p);
        }
        if let Some(t) = self.timeout {
            o = o.timeout(t);
        }
        if let Some(c) = self.caller {
            o = o.caller(c);
        }
        o
    }

    /// The lock's identity: its node name under the root, in the layout
    /// this lock uses (see [`identity_in`](Self::identity_in)); the native
    /// layout's when no coordinator can be resolved.
    ///
    /// # Errors
    /// As [`identity_in`](Self::identity_in).
    pub fn identity(&self) -> Result<Cow<'a, str>> {
        let layout = self.layout.unwrap_or_else(|| {
            self.resolve_coordinator()
                .map(|c| c.url().layout())
                .unwrap_or_default()
        });
        self.identity_in(layout)
    }

    /// The lock's identity in `layout`: the lock file name
    /// ([`lockutils_core::lock_file_name`], which maps `/` to `_`), except
    /// in the kazoo layout, which maps names as tooz does: the name (after
    /// the prefix) is a path below the root, so `a/b` is the node `a/b`
    /// nested in `a`, as tooz's `get_lock("a/b")` makes it.
    ///
    /// # Errors
    /// [`Error::InvalidName`] as [`lockutils_core::lock_file_name`], or for
    /// characters ZooKeeper refuses, or (kazoo layout) for an empty, `.` or
    /// `..` path segment or a leading or trailing `/`.
    pub fn identity_in(&self, layout: Layout) -> Result<Cow<'a, str>> {
        let id = if layout.nests_names() {
            // Checked as a file name first (empty, NUL), then kept as a path.
            lockutils_core::lock_file_name(self.name, self.prefix)?;
            match self.prefix.filter(|p| !p.is_empty()) {
                None => Cow::Borrowed(self.name),
                Some(p) => {
                    let sep = if p.ends_with('-') { "" } else { "-" };
                    Cow::Owned(format!("{p}{sep}{}", self.name))
                }
            }
        } else {
            lockutils_core::lock_file_name(self.name, self.prefix)?
        };
        check_identity(&id, layout.nests_names()).map_err(|e| match e {
            Error::InvalidName { reason, .. } => Error::InvalidName {
                name: self.name.to_owned(),
                reason,
            },
            e => e,
        })?;
        Ok(id)
    }

    /// The coordinator this lock uses.
    ///
    /// # Errors
    /// [`Error::Backend`] for a bad URL or when no URL is configured.
    pub fn resolve_coordinator(&self) -> Result<Coordinator> {
        match self.target {
            Target::Coordinator(c) => Ok(c.clone()),
            Target::Url(u) => Coordinator::shared_for(u, self.name),
            Target::Default => Coordinator::default_for(self.name),
        }
    }

    /// Everything checked before waiting for anything.
    fn plan(&self) -> Result<Plan> {
        let coordinator = self.resolve_coordinator()?;
        let layout = self.layout.unwrap_or(coordinator.url().layout());
        let identity = self.identity_in(layout)?.into_owned();
        if !layout.supports(self.mode) {
            return Err(Error::InvalidOptions {
                name: self.name.to_owned(),
                reason: "the curator layout has exclusive locks only (InterProcessMutex); \
                         use layout=native or layout=kazoo for shared locks",
            });
        }
        let data = match (self.identifier, self.caller) {
            (Some(id), _) => id.as_bytes().to_vec(),
            (None, Some(caller)) => format!("{} {caller}", host_pid()).into_bytes(),
            (None, None) => host_pid().as_bytes().to_vec(),
        };
        Ok(Plan {
            path: coordinator.lock_path(&identity),
            coordinator,
            name: self.name.to_owned(),
            identity,
            mode: self.mode,
            layout,
            data,
            blocking: self.blocking,
            timeout: self.timeout,
            revoke_blockers: self.revoke_blockers,
        })
    }

    /// Takes the lock, blocking the thread while it waits (unless
    /// [`blocking(false)`](Self::blocking)), for at most the
    /// [`timeout`](Self::timeout).
    ///
    /// # Errors
    /// - [`Error::WouldBlock`] when not blocking and the lock is held (here
    ///   or on ZooKeeper);
    /// - [`Error::Timeout`] when the timeout ran out;
    /// - [`Error::WouldDeadlock`] when this thread already holds the lock;
    /// - [`Error::InvalidName`], [`Error::InvalidOptions`];
    /// - [`Error::Backend`] for a bad or missing coordination URL, an
    ///   unreachable ensemble (after at most the URL's `connect_timeout`, or
    ///   the timeout if shorter), a refused operation or an expired session,
    ///   naming the URL.
    ///
    /// Every request is bounded by the timeout, so the call returns within it
    /// (plus at most 100 ms to withdraw the candidate) whatever the server
    /// does. A non-blocking call without a timeout has the URL's
    /// `connect_timeout` as its budget.
    ///
    /// # Blocking
    /// Parks the thread; the ZooKeeper protocol runs on the crate's own
    /// runtime thread. Do not call this from async code: use
    /// [`lock_async`](Self::lock_async).
    pub fn lock(&self) -> Result<ZkLockGuard> {
        let deadline = deadline_after(self.timeout);
        let plan = self.plan()?;
        let local = self.local().lock()?;
        let hold = runtime::block_on(acquire(plan, deadline))?;
        Ok(ZkLockGuard {
            hold,
            _local: local,
        })
    }

    /// Takes the lock only if that needs no waiting.
    ///
    /// # Errors
    /// As [`lock`](Self::lock).
    pub fn try_lock(&self) -> Result<ZkLockGuard> {
        self.blocking(false).lock()
    }

    /// Takes the lock from async code, on any executor, without blocking it.
    ///
    /// # Errors
    /// As [`lock`](Self::lock), except that re-acquiring a lock the same
    /// task holds is not detected (as with [`LockOptions::lock_async`]).
    ///
    /// # Cancel safety
    /// Dropping the future before it resolves leaves the in-process queue and
    /// deletes the ZooKeeper candidate node (the delete is sent at once), so
    /// no waiter is left queued and the lock is not left held.
    pub fn lock_async(&self) -> impl Future<Output = Result<AsyncZkLockGuard>> + Send + 'a {
        let opts = *self;
        async move {
            let deadline = deadline_after(opts.timeout);
            let plan = opts.plan()?;
            let local = opts.local().lock_async().await?;
            let hold = runtime::spawn_tracked(acquire(plan, deadline)).await?;
            Ok(AsyncZkLockGuard {
                hold,
                _local: local,
            })
        }
    }

    /// Runs `f` while holding the lock.
    ///
    /// # Errors
    /// Any acquisition error; `f` does not run then.
    pub fn synchronized<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        let _guard = self.lock()?;
        Ok(f())
    }
}

impl fmt::Debug for ZkLockOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = match self.target {
            Target::Default => "default".to_owned(),
            Target::Url(u) => crate::url::redact(u),
            Target::Coordinator(c) => c.shown().to_owned(),
        };
        f.debug_struct("ZkLockOptions")
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .field("backend", &target)
            .field("timeout", &self.timeout)
            .field("blocking", &self.blocking)
            .field("mode", &self.mode)
            .field("fair", &self.fair)
            .field("layout", &self.layout)
            .finish()
    }
}

fn deadline_after(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

fn host_pid() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let mut buf = [0u8; 256];
        // SAFETY: `buf` is writable for its full length, which is passed.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        let host = if rc == 0 {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            String::from_utf8_lossy(&buf[..end]).into_owned()
        } else {
            "unknown-host".to_owned()
        };
        format!("{host}:{}", std::process::id())
    })
}

/// An acquisition, checked and ready for the ZooKeeper part.
struct Plan {
    coordinator: Coordinator,
    name: String,
    identity: String,
    path: String,
    mode: Mode,
    layout: Layout,
    data: Vec<u8>,
    blocking: bool,
    timeout: Option<Duration>,
    revoke_blockers: bool,
}

impl Plan {
    fn busy(&self) -> Error {
        match (self.blocking, self.timeout) {
            (true, Some(timeout)) => Error::Timeout {
                name: self.name.clone(),
                timeout,
            },
            _ => Error::WouldBlock {
                name: self.name.clone(),
            },
        }
    }

    /// The error for a request that failed or that the deadline cut.
    ///
    /// A blocking acquisition whose timeout runs out gets
    /// [`Error::Timeout`] whether it was waiting for the lock or for the
    /// server (both mean "not within the time asked"); the server's silence
    /// is logged. A non-blocking one gets [`Error::Backend`]: its budget is
    /// the URL's `connect_timeout`, and the lock may well be free.
    fn failed(&self, doing: &str, f: Failed) -> Error {
        match f {
            Failed::Zk(e) => self.coordinator.error(&self.name, doing, e),
            Failed::Deadline => {
                tracing::warn!(
                    target: "lockutils",
                    lock = %self.name,
                    backend = %self.coordinator.shown(),
                    doing,
                    "ZooKeeper did not answer before the acquisition's deadline"
                );
                if self.blocking && self.timeout.is_some() {
                    return self.busy();
                }
                let budget = match self.timeout {
                    Some(t) => format!("the lock's timeout ({t:?})"),
                    None => format!(
                        "connect_timeout ({:?}), the budget of a non-blocking acquisition",
                        self.coordinator.url().connect_timeout()
                    ),
                };
                Error::Backend {
                    name: self.name.clone(),
                    backend: self.coordinator.shown().to_owned(),
                    reason: format!(
                        "{doing}: ZooKeeper did not answer within {budget}; the server is down, \
                         paused or unreachable (the connection is retried in the background)"
                    ),
                    source: None,
                }
            }
        }
    }
}

/// How long a failed acquisition waits for its candidate node's deletion
/// before it returns (the deletion goes on in the background): enough for a
/// server that answers, and the most a deadline is overrun by.
pub(crate) const WITHDRAW_GRACE: Duration = Duration::from_millis(100);

/// Our candidate node while the acquisition is pending. Dropping it (the
/// acquisition failed, timed out or was cancelled) deletes the node, retrying
/// while the connection is down; if the `create` was sent but its answer not
/// seen, the node is found by its unique prefix and deleted.
struct Candidate {
    client: zk::Client,
    dir: String,
    /// The node-name prefix, unique to this acquisition.
    prefix: String,
    /// The node's path, once known.
    node: Option<String>,
    /// Whether a `create` may have been applied without us knowing the name.
    unknown: bool,
}

impl Candidate {
    /// The clean-up this candidate still needs, its first request sent now.
    fn clean_up(&mut self) -> Option<impl Future<Output = ()> + Send + 'static> {
        let node = self.node.take();
        let unknown = std::mem::replace(&mut self.unknown, false);
        let delete = node.map(|n| requests::delete_until_gone(self.client.clone(), n));
        let search = unknown.then(|| {
            requests::delete_by_prefix(self.client.clone(), self.dir.clone(), self.prefix.clone())
        });
        if delete.is_none() && search.is_none() {
            return None;
        }
        Some(async move {
            if let Some(d) = delete {
                let _ = d.await;
            }
            if let Some(s) = search {
                let _ = s.await;
            }
        })
    }

    /// Deletes the candidate, waiting for it at most [`WITHDRAW_GRACE`].
    async fn withdraw(&mut self) {
        if let Some(clean_up) = self.clean_up() {
            let mut task = runtime::spawn_tracked(clean_up);
            if tokio::time::timeout(WITHDRAW_GRACE, &mut task)
                .await
                .is_err()
            {
                task.detach();
            }
        }
    }

    fn disarm(&mut self) {
        self.node = None;
        self.unknown = false;
    }

    async fn find(&self) -> Result<Option<String>, zk::Error> {
        let children = self.client.list_children(&self.dir).await?;
        Ok(children
            .into_iter()
            .find(|c| c.starts_with(&self.prefix))
            .map(|c| format!("{}/{c}", self.dir)))
    }
}

impl Drop for Candidate {
    fn drop(&mut self) {
        if let Some(clean_up) = self.clean_up() {
            runtime::spawn_tracked(clean_up).detach();
        }
    }
}

/// The ZooKeeper part of an acquisition. Runs on the crate runtime.
///
/// Every request is bounded by the deadline: the lock's timeout, or for a
/// non-blocking acquisition without one, the URL's `connect_timeout`. A
/// failed acquisition withdraws its candidate before it returns (waiting at
/// most [`WITHDRAW_GRACE`] for the server to confirm; the deletion is
/// retried in the background after that).
///
/// A session that turns out to have ended (expired while the process was cut
/// off, say) is replaced once: the acquisition after a session loss starts
/// clean, on a new session.
async fn acquire(plan: Plan, deadline: Option<Instant>) -> Result<Hold> {
    let started = Instant::now();
    let deadline = deadline
        .or_else(|| (!plan.blocking).then(|| started + plan.coordinator.url().connect_timeout()));
    let mut retried = false;
    loop {
        let session = plan.coordinator.session(&plan.name, deadline).await?;
        let mut cand = Candidate {
            client: session.client().clone(),
            dir: plan.path.clone(),
            prefix: plan.layout.prefix(plan.mode, &uuid::Uuid::new_v4()),
            node: None,
            unknown: false,
        };
        match acquire_on(&plan, &session, &mut cand, deadline, started).await {
            Ok(hold) => {
                cand.disarm();
                return Ok(hold);
            }
            Err(e) => {
                cand.withdraw().await;
                if !retried && session_ended(&e) {
                    retried = true;
                    plan.coordinator.forget(&session);
                    continue;
                }
                return Err(e);
            }
        }
    }
}

fn gone_is_empty(children: Result<Vec<String>, Failed>) -> Result<Vec<String>, Failed> {
    match children {
        Err(Failed::Zk(zk::Error::NoNode)) => Ok(Vec::new()),
        other => other,
    }
}

fn session_ended(e: &Error) -> bool {
    let Error::Backend {
        source: Some(source),
        ..
    } = e
    else {
        return false;
    };
    matches!(
        source.downcast_ref::<zk::Error>(),
        Some(zk::Error::SessionExpired | zk::Error::ClientClosed | zk::Error::SessionMoved)
    )
}

/// The lock recipe, on one session.
async fn acquire_on(
    plan: &Plan,
    session: &Session,
    cand: &mut Candidate,
    deadline: Option<Instant>,
    started: Instant,
) -> Result<Hold> {
    let client = session.client();
    let create_path = format!("{}/{}", plan.path, cand.prefix);
    let acls = plan.coordinator.acls();
    let mut asked: HashSet<String> = HashSet::new();
    'create: loop {
        let mut lock_node_attempts = 0;
        // 1. Create the candidate (ephemeral, sequential) and list the queue.
        //    Requests are applied in the order sent, so the listing sent right
        //    behind the create already includes our node: one round trip.
        let (node, stat, mut children) = loop {
            cand.unknown = true;
            let sent = Instant::now();
            let created = client.create(
                &create_path,
                &plan.data,
                &zk::CreateMode::EphemeralSequential.with_acls(acls),
            );
            let listing = client.list_children(&plan.path);
            match within(deadline, created).await {
                Ok((stat, seq)) => {
                    let node = format!("{create_path}{seq}");
                    cand.node = Some(node.clone());
                    cand.unknown = false;
                    session.lease().renew(sent);
                    let children = match within(deadline, listing).await {
                        Err(Failed::Zk(e)) if transient(&e) => {
                            retrying(deadline, || client.list_children(&plan.path)).await
                        }
                        other => other,
                    };
                    let children = gone_is_empty(children)
                        .map_err(|f| plan.failed("listing the lock queue", f))?;
                    break (node, stat, children);
                }
                // The lock node is missing (first use, or the server just
                // removed the empty container): create it and retry.
                Err(Failed::Zk(zk::Error::NoNode)) if lock_node_attempts < 3 => {
                    cand.unknown = false;
                    lock_node_attempts += 1;
                    within(
                        deadline,
                        plan.coordinator
                            .ensure_lock_node(client, &plan.path, plan.layout),
                    )
                    .await
                    .map_err(|f| plan.failed(&format!("creating lock node {}", plan.path), f))?;
                }
                Err(Failed::Zk(e)) if transient(&e) => {
                    // The create may have been applied: look for our prefix.
                    match retrying(deadline, || cand.find()).await {
                        Ok(Some(node)) => {
                            cand.node = Some(node.clone());
                            cand.unknown = false;
                            let (_, stat) = retrying(deadline, || client.get_data(&node))
                                .await
                                .map_err(|f| plan.failed("reading our candidate node", f))?;
                            let sent = Instant::now();
                            let children = retrying(deadline, || client.list_children(&plan.path))
                                .await
                                .map_err(|f| plan.failed("listing the lock queue", f))?;
                            session.lease().renew(sent);
                            break (node, stat, children);
                        }
                        Ok(None) => cand.unknown = false,
                        Err(f) => return Err(plan.failed("looking for our candidate node", f)),
                    }
                }
                // Deadline: `unknown` stays set, and the withdrawal looks for
                // the node by its prefix.
                Err(f) => {
                    return Err(
                        plan.failed(&format!("creating a candidate node under {}", plan.path), f)
                    );
                }
            }
        };
        let own = node.rsplit('/').next().unwrap_or(&node).to_owned();
        let token = if stat.is_invalid() {
            // Servers that answer `create` without a stat: read it.
            let (_, stat) = retrying(deadline, || client.get_data(&node))
                .await
                .map_err(|f| plan.failed("reading our candidate node", f))?;
            stat.czxid
        } else {
            stat.czxid
        };

        // 2. Wait until no earlier conflicting contender is left.
        loop {
            let queue = layout::contenders(&children);
            if !queue.iter().any(|c| c.name == own) {
                // Our node is gone (an operator cleared the lock): queue again.
                cand.node = None;
                continue 'create;
            }
            let Some(blocker) = layout::blocker(&queue, &own) else {
                cand.disarm();
                return Ok(Hold::start(Acquired {
                    session: session.clone(),
                    coordinator: plan.coordinator.clone(),
                    name: plan.identity.clone(),
                    node,
                    backend: plan.coordinator.shown().to_owned(),
                    token: token.max(0) as u64,
                    sequence: queue.iter().find(|c| c.name == own).map_or(-1, |c| c.seq),
                    mode: plan.mode,
                    waited: started.elapsed(),
                }));
            };
            let expired = deadline.is_some_and(|d| Instant::now() >= d);
            if !plan.blocking || expired {
                return Err(plan.busy());
            }
            if plan.revoke_blockers {
                let own_pos = queue.iter().position(|c| c.name == own).unwrap_or(0);
                for c in queue[..own_pos]
                    .iter()
                    .filter(|c| plan.mode == Mode::Exclusive || c.mode == Mode::Exclusive)
                {
                    if asked.insert(c.name.clone()) {
                        let ask =
                            client.set_data(&format!("{}/{}", plan.path, c.name), UNLOCK, None);
                        runtime::spawn(async move {
                            let _ = ask.await;
                        })
                        .detach();
                    }
                }
            }
            let blocker_path = format!("{}/{}", plan.path, blocker.name);
            match retrying(deadline, || client.check_and_watch_stat(&blocker_path)).await {
                Ok((None, _)) => {}
                Ok((Some(_), watch)) => {
                    let changed = watch.changed();
                    match deadline {
                        Some(d) => {
                            if tokio::time::timeout_at(d.into(), changed).await.is_err() {
                                return Err(plan.busy());
                            }
                        }
                        None => {
                            changed.await;
                        }
                    }
                }
                Err(f) => return Err(plan.failed("watching the contender ahead", f)),
            }
            // A missing lock node (an operator cleared the lock) reads as an
            // empty queue: our candidate is gone and we queue again.
            let sent = Instant::now();
            children = gone_is_empty(retrying(deadline, || client.list_children(&plan.path)).await)
                .map_err(|f| plan.failed("listing the lock queue", f))?;
            session.lease().renew(sent);
        }
    }
}

macro_rules! hold_accessors {
    () => {
        /// The fencing token: increases for successive holders of this lock;
        /// see [`HoldWatch::fencing_token`].
        pub fn fencing_token(&self) -> u64 {
            self.hold.watch().fencing_token()
        }

        /// The lock's identity (its node name under the root).
        pub fn name(&self) -> &str {
            self.hold.watch().name()
        }

        /// The candidate node's path.
        pub fn node(&self) -> &str {
            self.hold.watch().node()
        }

        /// Shared or exclusive.
        pub fn mode(&self) -> Mode {
            self.hold.watch().mode()
        }

        /// Whether the lock was lost while held (session expired, node
        /// deleted, server silent for 4/5 of the session timeout); see
        /// [`HoldWatch::is_lost`].
        pub fn is_lost(&self) -> bool {
            self.hold.watch().is_lost()
        }

        /// Why the lock was lost, if it was.
        pub fn loss(&self) -> Option<LossReason> {
            self.hold.watch().loss()
        }

        /// Whether release was requested (revocation).
        pub fn is_revoked(&self) -> bool {
            self.hold.watch().is_revoked()
        }

        /// Whether the connection is down right now (the lock is still held
        /// until the session expires).
        pub fn is_suspended(&self) -> bool {
            self.hold.watch().is_suspended()
        }

        /// A watch on this hold, for notification (`lost().await`,
        /// `revoked().await`, `wait_lost(…)`), usable from any thread or task.
        pub fn watch(&self) -> HoldWatch {
            self.hold.watch().clone()
        }
    };
}

/// A distributed lock held by the current thread, from
/// [`ZkLockOptions::lock`]. Dropping it deletes the candidate node (the
/// request is sent at once, and again in the background while the connection
/// is down) and then releases the in-process lock;
/// [`unlock`](Self::unlock) does the same and waits for the server's answer,
/// which a process about to exit should do.
///
/// It is `!Send`, like [`LockGuard`]. Its helpers are methods: the guard does
/// not dereference to anything, so they cannot shadow anything.
#[must_use = "if unused the lock is released immediately"]
#[clippy::has_significant_drop]
pub struct ZkLockGuard {
    // Field order is drop order: ZooKeeper first, then in-process.
    hold: Hold,
    _local: LockGuard<'static>,
}

impl ZkLockGuard {
    hold_accessors!();

    /// Releases the lock and waits until the candidate node is gone:
    /// deleted (the delete is sent again while the connection is down), or
    /// taken with the session when it ends — at the latest 7/5 of the
    /// session timeout after the server was last heard from. A hold reported
    /// lost is cleaned up too, since its session may have survived.
    ///
    /// # Errors
    /// [`Error::Backend`] if the server refused the delete; the session is
    /// then closed once no other lock of the process uses it, which removes
    /// the node. The lock is released either way.
    pub fn unlock(self) -> Result<()> {
        let ZkLockGuard { hold, _local } = self;
        runtime::block_on(hold.unlock())
    }
}

/// A distributed lock held by an async task, from
/// [`ZkLockOptions::lock_async`]. `Send`; otherwise as [`ZkLockGuard`].
#[must_use = "if unused the lock is released immediately"]
#[clippy::has_significant_drop]
pub struct AsyncZkLockGuard {
    hold: Hold,
    _local: AsyncLockGuard<'static>,
}

impl AsyncZkLockGuard {
    hold_accessors!();

    /// Resolves when the lock is lost (with why), or `None` if it is released
    /// first. Shorthand for `watch().lost()`.
    pub fn lost(&self) -> impl Future<Output = Option<LossReason>> + Send + 'static {
        self.hold.watch().lost()
    }

    /// Resolves with `true` when release is requested. Shorthand for
    /// `watch().revoked()`.
    pub fn revoked(&self) -> impl Future<Output = bool> + Send + 'static {
        self.hold.watch().revoked()
    }

    /// Releases the lock and waits until the candidate node is gone, as
    /// [`ZkLockGuard::unlock`].
    ///
    /// # Errors
    /// As [`ZkLockGuard::unlock`].
    pub async fn unlock(self) -> Result<()> {
        let AsyncZkLockGuard { hold, _local } = self;
        runtime::spawn(hold.unlock()).await
    }
}

impl fmt::Debug for ZkLockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ZkLockGuard")
            .field(self.hold.watch())
            .finish()
    }
}

impl fmt::Debug for AsyncZkLockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AsyncZkLockGuard")
            .field(self.hold.watch())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send<T: Send>() {}
    fn sync<T: Sync>() {}

    #[test]
    fn async_guard_and_options_are_send_and_sync() {
        send::<AsyncZkLockGuard>();
        sync::<AsyncZkLockGuard>();
        sync::<ZkLockOptions<'static>>();
        send::<HoldWatch>();
        sync::<Coordinator>();
    }

    #[test]
    fn options_can_be_static() {
        static OPTS: ZkLockOptions<'static> = ZkLockOptions::new("x")
            .prefix("p")
            .url("zookeeper://127.0.0.1:1")
            .timeout(Duration::from_secs(1))
            .blocking(false)
            .shared()
            .fair(false)
            .caller("me")
            .layout(Layout::Kazoo)
            .revoke_blockers(true);
        assert_eq!(OPTS.identity().unwrap(), "p-x");
        assert_eq!(OPTS.local().name(), "x");
    }

    #[test]
    fn bad_names_fail_before_any_connection() {
        let e = ZkLockOptions::new("")
            .url("zookeeper://127.0.0.1:1")
            .lock()
            .unwrap_err();
        assert!(matches!(e, Error::InvalidName { .. }), "{e}");
        let e = ZkLockOptions::new("a\u{1}b")
            .url("zookeeper://127.0.0.1:1")
            .lock()
            .unwrap_err();
        assert!(matches!(e, Error::InvalidName { .. }), "{e}");
        assert_eq!(ZkLockOptions::new("a/b").identity().unwrap(), "a_b");
    }

    #[test]
    fn shared_curator_locks_are_refused() {
        let e = ZkLockOptions::new("x")
            .url("zookeeper://127.0.0.1:1?layout=curator")
            .shared()
            .lock()
            .unwrap_err();
        assert!(matches!(e, Error::InvalidOptions { .. }), "{e}");
    }

    #[test]
    fn bad_url_is_a_typed_error_naming_the_lock() {
        let e = ZkLockOptions::new("x").url("zk://h").lock().unwrap_err();
        match &e {
            Error::Backend {
                name,
                backend,
                reason,
                ..
            } => {
                assert_eq!(name, "x");
                assert_eq!(backend, "zk://h");
                assert!(reason.contains("unsupported scheme"), "{reason}");
            }
            e => panic!("{e:?}"),
        }
    }
}
