//! `Coordinator`: one ZooKeeper ensemble and root, and the session this
//! process holds with it.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use lockutils_core::{Error, Mode, Result};
use zookeeper_client as zk;

use crate::layout::{self, Layout};
use crate::runtime;
use crate::session::Session;
use crate::url::CoordinationUrl;

/// Data a revocation request writes into a holder's candidate node (the
/// zktools protocol).
pub(crate) const UNLOCK: &[u8] = b"unlock";

/// ACL of nodes created by an authenticated coordinator: everything for the
/// creating identity, read-only for everyone else (so tools can list locks).
static PROTECTED: [zk::Acl; 2] = [
    zk::Acl::new_const(zk::Permission::ALL, "auth", ""),
    zk::Acl::new_const(zk::Permission::READ, "world", "anyone"),
];

/// A ZooKeeper ensemble and the root node under which locks live, with the
/// session this process uses for it.
///
/// A coordinator connects lazily, on first use, and reconnects with a fresh
/// session when its session has expired or been closed, so the acquisition
/// after a session loss starts clean. Cloning is cheap and shares the session.
///
/// Most code does not build one: [`ZkBackend::new`](crate::ZkBackend::new)
/// (and so `LockOptions::backend_url`) uses [`Coordinator::shared`] for its
/// URL, so each URL gets one session per process, as a process has one
/// `KazooClient`. [`Coordinator::new`] makes a private session, which is
/// what a test simulating several hosts in one process needs.
///
/// The listing and clearing methods are what the `lockutils` command line
/// uses for `list`, `show` and `remove`.
///
/// ```
/// use lockutils_zookeeper::Coordinator;
///
/// let zk = Coordinator::new("zookeeper://127.0.0.1:2181/lockutils?session_timeout=4").unwrap();
/// assert_eq!(zk.url().root(), "/lockutils");
/// assert!(Coordinator::new("zookeeper://127.0.0.1:x").is_err()); // no server contacted
/// ```
#[derive(Clone)]
pub struct Coordinator {
    inner: Arc<Inner>,
}

struct Inner {
    url: CoordinationUrl,
    /// `url` as shown in errors and logs (no password).
    shown: String,
    session: Mutex<Option<Session>>,
    connecting: tokio::sync::Mutex<()>,
}

static SHARED: Mutex<Option<HashMap<String, Coordinator>>> = Mutex::new(None);

impl Coordinator {
    /// A coordinator with a session of its own (not shared with
    /// [`Coordinator::shared`] users). No server is contacted until it is
    /// used.
    ///
    /// # Errors
    /// [`Error::Backend`] if the URL does not parse.
    pub fn new(url: &str) -> Result<Coordinator> {
        Ok(Coordinator::from_url(CoordinationUrl::parse_for(url, "")?))
    }

    /// A coordinator for a parsed URL, with a session of its own.
    pub fn from_url(url: CoordinationUrl) -> Coordinator {
        Coordinator {
            inner: Arc::new(Inner {
                shown: url.to_string(),
                url,
                session: Mutex::new(None),
                connecting: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The process-wide coordinator for `url`: one session per URL string.
    ///
    /// # Errors
    /// [`Error::Backend`] if the URL does not parse.
    pub fn shared(url: &str) -> Result<Coordinator> {
        Coordinator::shared_for(url, "")
    }

    pub(crate) fn shared_for(url: &str, lock: &str) -> Result<Coordinator> {
        let mut map = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        let map = map.get_or_insert_with(HashMap::new);
        if let Some(c) = map.get(url) {
            return Ok(c.clone());
        }
        let c = Coordinator::from_url(CoordinationUrl::parse_for(url, lock)?);
        map.insert(url.to_owned(), c.clone());
        Ok(c)
    }

    /// The coordination URL.
    pub fn url(&self) -> &CoordinationUrl {
        &self.inner.url
    }

    /// The session timeout the server granted, once connected.
    pub fn session_timeout(&self) -> Option<Duration> {
        self.live_session().map(|s| s.client().session_timeout())
    }

    /// Whether a session is established and not terminated (no server is
    /// contacted).
    pub fn is_connected(&self) -> bool {
        self.live_session().is_some()
    }

    /// Connects now rather than at the first acquisition, within the
    /// URL's `connect_timeout`.
    ///
    /// # Errors
    /// [`Error::Backend`] naming the URL and what was tried.
    pub fn connect(&self) -> Result<()> {
        let this = self.clone();
        runtime::block_on(async move { this.session("", None).await.map(drop) })
    }

    /// Drops `session` if it is still the current one, so that the next use
    /// connects again (its session ended, or must not be used any more).
    pub(crate) fn forget(&self, session: &Session) {
        let mut slot = self.inner.session.lock().unwrap_or_else(|e| e.into_inner());
        if slot
            .as_ref()
            .is_some_and(|s| s.client().session_id() == session.client().session_id())
        {
            *slot = None;
        }
    }

    fn live_session(&self) -> Option<Session> {
        let slot = self.inner.session.lock().unwrap_or_else(|e| e.into_inner());
        slot.as_ref()
            .filter(|s| !s.client().state().is_terminated())
            .cloned()
    }

    /// The current session, connecting (again) if there is none or it has
    /// terminated, by `deadline` at the latest. Runs on the crate runtime.
    pub(crate) async fn session(&self, lock: &str, deadline: Option<Instant>) -> Result<Session> {
        if let Some(s) = self.live_session() {
            return Ok(s);
        }
        // Another acquisition may be connecting, with a later deadline.
        let connecting = self.inner.connecting.lock();
        let _connecting = match deadline {
            Some(d) => tokio::time::timeout_at(d.into(), connecting)
                .await
                .map_err(|_| self.not_connected_in_time(lock))?,
            None => connecting.await,
        };
        if let Some(s) = self.live_session() {
            return Ok(s);
        }
        let session = Session::start(self.connect_session(lock, deadline).await?);
        *self.inner.session.lock().unwrap_or_else(|e| e.into_inner()) = Some(session.clone());
        Ok(session)
    }

    /// The current session's client, connecting if needed (admin calls).
    pub(crate) async fn client(&self, lock: &str) -> Result<zk::Client> {
        Ok(self.session(lock, None).await?.client().clone())
    }

    fn not_connected_in_time(&self, lock: &str) -> Error {
        Error::Backend {
            name: lock.to_owned(),
            backend: self.inner.shown.clone(),
            reason: format!(
                "cannot establish a ZooKeeper session with {} before the lock's timeout ran out \
                 (another acquisition of this process was still connecting); check that ZooKeeper \
                 runs and listens there",
                self.inner.url.connect_string()
            ),
            source: None,
        }
    }

    async fn connect_session(&self, lock: &str, deadline: Option<Instant>) -> Result<zk::Client> {
        let url = &self.inner.url;
        let started = Instant::now();
        let mut until = started + url.connect_timeout();
        let mut cut_by_lock_timeout = false;
        if let Some(d) = deadline {
            if d < until {
                until = d;
                cut_by_lock_timeout = true;
            }
        }
        let hosts = url.connect_string();
        let mut attempts = 0u32;
        let mut last: Option<zk::Error> = None;
        let mut pause = Duration::from_millis(50);
        loop {
            attempts += 1;
            let mut connector = zk::Client::connector()
                .with_session_timeout(url.session_timeout())
                .with_fail_eagerly();
            if let Some(digest) = url.digest() {
                connector = connector.with_auth("digest", digest.as_bytes());
            }
            match tokio::time::timeout_at(until.into(), connector.connect(&hosts)).await {
                Ok(Ok(client)) => {
                    tracing::debug!(
                        target: "lockutils",
                        backend = %self.inner.shown,
                        session = %client.session_id(),
                        session_timeout_ms = client.session_timeout().as_millis() as u64,
                        "ZooKeeper session established"
                    );
                    return Ok(client);
                }
                Ok(Err(e @ zk::Error::AuthFailed)) => {
                    return Err(self.error(lock, "authenticating", e));
                }
                Ok(Err(e)) => last = Some(e),
                Err(_elapsed) => break,
            }
            let wait = pause.min(until.saturating_duration_since(Instant::now()));
            if wait.is_zero() {
                break;
            }
            tokio::time::sleep(wait).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
        let waited = started.elapsed();
        let last = match &last {
            Some(e) => format!("last error: {e}"),
            None => "no answer".to_owned(),
        };
        // Raising connect_timeout does nothing for a lock whose own timeout
        // is shorter.
        let (why, longer) = if cut_by_lock_timeout {
            (
                "the lock's timeout ran out",
                "give the lock a longer timeout",
            )
        } else {
            (
                "connect_timeout ran out",
                "raise connect_timeout in the URL",
            )
        };
        Err(Error::Backend {
            name: lock.to_owned(),
            backend: self.inner.shown.clone(),
            reason: format!(
                "cannot establish a ZooKeeper session with {hosts}: {attempts} attempt(s) in {:.1?} \
                 ({last}) before {why}; check that ZooKeeper runs and listens there \
                 (scripts/zookeeper.sh start), or {longer}",
                waited
            ),
            source: None,
        })
    }

    /// A typed error for a failed ZooKeeper operation.
    pub(crate) fn error(&self, lock: &str, doing: &str, err: zk::Error) -> Error {
        let hint = match err {
            zk::Error::NoAuth => {
                "; not authorized: the node's ACL does not allow this identity: use the credentials \
                 (USER:PASSWORD@ in the URL) of whoever created the lock"
            }
            zk::Error::SessionExpired | zk::Error::ClientClosed => {
                "; the ZooKeeper session ended: the next acquisition starts a new one"
            }
            zk::Error::ConnectionLoss => "; the connection to ZooKeeper was lost: retry",
            zk::Error::AuthFailed => "; check the credentials in the URL",
            _ => "",
        };
        Error::Backend {
            name: lock.to_owned(),
            backend: self.inner.shown.clone(),
            reason: format!("{doing} failed{hint}"),
            source: Some(Box::new(err)),
        }
    }

    pub(crate) fn shown(&self) -> &str {
        &self.inner.shown
    }

    /// ACLs for nodes this coordinator creates.
    pub(crate) fn acls(&self) -> zk::Acls<'static> {
        if self.inner.url.digest().is_some() {
            zk::Acls::new(&PROTECTED)
        } else {
            zk::Acls::anyone_all()
        }
    }

    /// Creates the lock node `dir` and the nodes above it. A container node
    /// (which the server removes some time after its last child is gone),
    /// except in the kazoo layout, where lock nodes are persistent as kazoo
    /// makes them: kazoo and tooz lock objects keep referring to the node.
    pub(crate) async fn ensure_lock_node(
        &self,
        client: &zk::Client,
        dir: &str,
        layout: Layout,
    ) -> Result<(), zk::Error> {
        let acls = self.acls();
        if layout.persistent_lock_nodes() {
            return client
                .mkdir(dir, &zk::CreateMode::Persistent.with_acls(acls))
                .await;
        }
        for _ in 0..3 {
            match client
                .create(dir, b"", &zk::CreateMode::Container.with_acls(acls))
                .await
            {
                Ok(_) | Err(zk::Error::NodeExists) => return Ok(()),
                Err(zk::Error::NoNode) => {
                    let parent = &dir[..dir.rfind('/').unwrap_or(0)];
                    if !parent.is_empty() {
                        client
                            .mkdir(parent, &zk::CreateMode::Persistent.with_acls(acls))
                            .await?;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(zk::Error::NoNode)
    }

    /// Checks an identity for this coordinator's layout: one node name, or
    /// in the kazoo layout a `/`-separated path of them (tooz nests names).
    fn check_identity(&self, identity: &str) -> Result<()> {
        check_identity(identity, self.inner.url.layout().nests_names())
    }

    /// A lock node path for `identity`.
    pub(crate) fn lock_path(&self, identity: &str) -> String {
        self.inner.url.lock_path(identity)
    }

    // ---- listing and clearing ------------------------------------------

    /// Every lock node under the root, with its holders and waiters counted.
    ///
    /// # Errors
    /// [`Error::Backend`] if ZooKeeper cannot be reached or read.
    pub fn locks(&self) -> Result<Vec<LockSummary>> {
        let this = self.clone();
        runtime::block_on(async move { this.locks_inner().await })
    }

    /// [`locks`](Self::locks) for async code.
    ///
    /// # Errors
    /// As [`locks`](Self::locks).
    pub async fn locks_async(&self) -> Result<Vec<LockSummary>> {
        let this = self.clone();
        runtime::spawn(async move { this.locks_inner().await }).await
    }

    async fn locks_inner(&self) -> Result<Vec<LockSummary>> {
        let client = self.client("").await?;
        let root = self.inner.url.root();
        let mut names = match client.list_children(root).await {
            Ok(n) => n,
            Err(zk::Error::NoNode) => return Ok(Vec::new()),
            Err(e) => return Err(self.error("", &format!("listing {root}"), e)),
        };
        let nested = self.inner.url.layout().nests_names();
        let mut out = Vec::with_capacity(names.len());
        // Level by level: in the kazoo layout, a lock node's children that
        // are not contenders are nested lock nodes (tooz's `a/b`).
        for _depth in 0..16 {
            if names.is_empty() {
                break;
            }
            names.sort();
            // Send every listing at once (requests go out in call order),
            // then collect the answers: one round trip per level.
            let paths: Vec<String> = names.iter().map(|n| self.lock_path(n)).collect();
            let pending: Vec<_> = paths.iter().map(|p| client.list_children(p)).collect();
            let mut deeper = Vec::new();
            for (name, answer) in std::mem::take(&mut names).into_iter().zip(pending) {
                let children = match answer.await {
                    Ok(c) => c,
                    Err(zk::Error::NoNode) => continue,
                    Err(e) => return Err(self.error(&name, "listing lock contenders", e)),
                };
                let queue = layout::contenders(&children);
                let below: Vec<String> = if nested {
                    children
                        .iter()
                        .filter(|c| !queue.iter().any(|q| q.name == c.as_str()))
                        .map(|c| format!("{name}/{c}"))
                        .collect()
                } else {
                    Vec::new()
                };
                // A node holding only nested locks is a path, not a lock.
                if !queue.is_empty() || below.is_empty() {
                    let holders: Vec<usize> = (0..queue.len())
                        .filter(|&i| layout::holds(&queue, i))
                        .collect();
                    out.push(LockSummary {
                        mode: holders.first().map(|&i| queue[i].mode),
                        holders: holders.len(),
                        waiters: queue.len() - holders.len(),
                        path: self.lock_path(&name),
                        name,
                    });
                }
                deeper.extend(below);
            }
            names = deeper;
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The error for a node at a lock's place that is not a lock node.
    pub(crate) fn not_a_lock_node_error(&self, identity: &str, path: &str, why: &str) -> Error {
        Error::Backend {
            name: identity.to_owned(),
            backend: self.inner.shown.clone(),
            reason: format!("{path} {why}; left alone: check the name and the root in the URL"),
            source: None,
        }
    }

    /// The nodes among `identities` that are not lock nodes, with why (see
    /// [`not_a_lock_node`]); one round trip.
    pub(crate) fn not_lock_nodes(&self, identities: &[String]) -> Result<Vec<(String, String)>> {
        let (this, identities) = (self.clone(), identities.to_vec());
        runtime::block_on(async move {
            let client = this.client("").await?;
            let paths: Vec<String> = identities.iter().map(|i| this.lock_path(i)).collect();
            let pending: Vec<_> = paths.iter().map(|p| client.check_stat(p)).collect();
            let mut out = Vec::new();
            for (identity, answer) in identities.into_iter().zip(pending) {
                match answer.await {
                    Ok(Some(stat)) => out.extend(not_a_lock_node(&stat).map(|why| (identity, why))),
                    Ok(None) => {}
                    Err(e) => return Err(this.error(&identity, "reading a lock node", e)),
                }
            }
            Ok(out)
        })
    }

    /// One lock in detail: every contender in queue order, whether it holds
    /// the lock, its data, age and session. A lock with no node is returned
    /// with no contenders.
    ///
    /// `identity` is the lock's name after prefix and sanitising, as
    /// [`lockutils_core::lock_file_name`] gives it and [`locks`](Self::locks)
    /// lists it.
    ///
    /// # Errors
    /// [`Error::InvalidName`] for an identity that cannot be a node name;
    /// [`Error::Backend`] if ZooKeeper cannot be reached or read.
    pub fn inspect(&self, identity: &str) -> Result<LockInfo> {
        self.check_identity(identity)?;
        let (this, identity) = (self.clone(), identity.to_owned());
        runtime::block_on(async move { this.inspect_inner(&identity).await })
    }

    /// [`inspect`](Self::inspect) for async code.
    ///
    /// # Errors
    /// As [`inspect`](Self::inspect).
    pub async fn inspect_async(&self, identity: &str) -> Result<LockInfo> {
        self.check_identity(identity)?;
        let (this, identity) = (self.clone(), identity.to_owned());
        runtime::spawn(async move { this.inspect_inner(&identity).await }).await
    }

    async fn inspect_inner(&self, identity: &str) -> Result<LockInfo> {
        let client = self.client(identity).await?;
        let path = self.lock_path(identity);
        let children = match client.list_children(&path).await {
            Ok(c) => c,
            Err(zk::Error::NoNode) => Vec::new(),
            Err(e) => return Err(self.error(identity, &format!("listing {path}"), e)),
        };
        let queue = layout::contenders(&children);
        let node_paths: Vec<String> = queue.iter().map(|c| format!("{path}/{}", c.name)).collect();
        let pending: Vec<_> = node_paths.iter().map(|p| client.get_data(p)).collect();
        let now = SystemTime::now();
        let mut contenders = Vec::with_capacity(queue.len());
        for (i, answer) in pending.into_iter().enumerate() {
            let (data, stat) = match answer.await {
                Ok(x) => x,
                Err(zk::Error::NoNode) => continue,
                Err(e) => return Err(self.error(identity, "reading a contender", e)),
            };
            let c = &queue[i];
            contenders.push(ContenderInfo {
                node: c.name.clone(),
                mode: c.mode,
                layout: c.layout,
                sequence: c.seq,
                holder: layout::holds(&queue, i),
                revoke_requested: data == UNLOCK,
                data,
                created: millis(stat.ctime),
                modified: millis(stat.mtime),
                session: stat.ephemeral_owner,
                fencing_token: stat.czxid.max(0) as u64,
                observed_at: now,
            });
        }
        Ok(LockInfo {
            name: identity.to_owned(),
            path,
            contenders,
        })
    }

    /// Clears a lock as an operator: deletes every child of its node (holders
    /// and waiters alike), then — except in the kazoo layout — the node.
    /// Nodes with data are some application's, not a lock's: a lock node
    /// with data is refused, and other children with data stay.
    /// Holders are not asked: their guards report the lock as lost. Use it
    /// for locks whose holders are known to be dead or stuck;
    /// [`revoke`](Self::revoke) asks politely. Returns how many candidate
    /// nodes were deleted.
    ///
    /// In the kazoo layout the lock node is kept: kazoo and tooz lock objects
    /// check the node's path once and then refer to it, so deleting it would
    /// make their next `acquire()` fail with `NoNodeError`. Delete it
    /// explicitly with [`delete_lock_node`](Self::delete_lock_node) when no
    /// such object can remain.
    ///
    /// # Errors
    /// [`Error::InvalidName`] for a bad identity; [`Error::Backend`] if
    /// ZooKeeper cannot be reached or refuses (for example a lock protected by
    /// another identity's ACL).
    pub fn clear(&self, identity: &str) -> Result<usize> {
        self.check_identity(identity)?;
        let (this, identity) = (self.clone(), identity.to_owned());
        runtime::block_on(async move { this.clear_inner(&identity).await })
    }

    async fn clear_inner(&self, identity: &str) -> Result<usize> {
        let client = self.client(identity).await?;
        let path = self.lock_path(identity);
        let nested = self.inner.url.layout().nests_names();
        let (children, stat) = match client.get_children(&path).await {
            Ok(c) => c,
            Err(zk::Error::NoNode) => return Ok(0),
            Err(e) => return Err(self.error(identity, &format!("listing {path}"), e)),
        };
        if let Some(why) = not_a_lock_node(&stat).filter(|_| !nested) {
            return Err(self.not_a_lock_node_error(identity, &path, &why));
        }
        // Last in the queue first, holders last: deleting a holder while
        // waiters remain would hand the lock to the next waiter for a moment.
        // Nodes that are not contenders (foreign children) go first, except
        // in the kazoo layout, where they are nested locks (tooz's `a/b`),
        // and except those with data, which are some application's.
        let queue = layout::contenders(&children);
        let foreign: Vec<String> = children
            .iter()
            .filter(|c| !nested && !queue.iter().any(|q| q.name == c.as_str()))
            .map(|c| format!("{path}/{c}"))
            .collect();
        let stats: Vec<_> = foreign.iter().map(|p| client.check_stat(p)).collect();
        let mut node_paths = Vec::new();
        for (node, answer) in foreign.into_iter().zip(stats) {
            match answer.await {
                Ok(Some(stat)) if not_a_lock_node(&stat).is_none() => node_paths.push(node),
                Ok(_) => {}
                Err(e) => return Err(self.error(identity, "reading a foreign node", e)),
            }
        }
        node_paths.extend(queue.iter().rev().map(|c| format!("{path}/{}", c.name)));
        let mut removed = 0;
        for node in &node_paths {
            // One at a time, in order: the server may answer pipelined
            // deletes in order too, but waiters see each deletion at once.
            match client.delete(node, None).await {
                Ok(()) => removed += 1,
                Err(zk::Error::NoNode) => {}
                Err(e) => return Err(self.error(identity, "deleting a contender node", e)),
            }
        }
        if !self.inner.url.layout().persistent_lock_nodes() {
            match client.delete(&path, None).await {
                Ok(()) | Err(zk::Error::NoNode) | Err(zk::Error::NotEmpty) => {}
                Err(e) => return Err(self.error(identity, "deleting the lock node", e)),
            }
        }
        tracing::warn!(target: "lockutils", lock = identity, backend = %self.inner.shown, removed, "lock cleared by operator");
        Ok(removed)
    }

    /// Deletes a lock's node if nobody contends for it (no child): what
    /// [`clear`](Self::clear) does not do in the kazoo layout. Returns
    /// whether a node was deleted. Only for a lock that no kazoo or tooz lock
    /// object may still use: such an object fails at its next `acquire()`.
    ///
    /// # Errors
    /// [`Error::InvalidName`] for a bad identity; [`Error::Backend`] if the
    /// node has children, or ZooKeeper cannot be reached or refuses.
    pub fn delete_lock_node(&self, identity: &str) -> Result<bool> {
        self.check_identity(identity)?;
        let (this, identity) = (self.clone(), identity.to_owned());
        runtime::block_on(async move {
            let client = this.client(&identity).await?;
            match client.delete(&this.lock_path(&identity), None).await {
                Ok(()) => Ok(true),
                Err(zk::Error::NoNode) => Ok(false),
                Err(e) => Err(this.error(&identity, "deleting the lock node", e)),
            }
        })
    }

    /// Asks the current holders of a lock to release it (zktools'
    /// revocation): writes `unlock` into their candidate nodes. Holders using
    /// this crate see it through `is_revoked()` / `revoked()` on their
    /// guards; releasing is up to them. Returns how many holders were asked.
    ///
    /// # Errors
    /// As [`clear`](Self::clear).
    pub fn revoke(&self, identity: &str) -> Result<usize> {
        self.check_identity(identity)?;
        let (this, identity) = (self.clone(), identity.to_owned());
        runtime::block_on(async move { this.revoke_inner(&identity).await })
    }

    /// [`revoke`](Self::revoke) for async code.
    ///
    /// # Errors
    /// As [`revoke`](Self::revoke).
    pub async fn revoke_async(&self, identity: &str) -> Result<usize> {
        self.check_identity(identity)?;
        let (this, identity) = (self.clone(), identity.to_owned());
        runtime::spawn(async move { this.revoke_inner(&identity).await }).await
    }

    async fn revoke_inner(&self, identity: &str) -> Result<usize> {
        let client = self.client(identity).await?;
        let path = self.lock_path(identity);
        let children = match client.list_children(&path).await {
            Ok(c) => c,
            Err(zk::Error::NoNode) => return Ok(0),
            Err(e) => return Err(self.error(identity, &format!("listing {path}"), e)),
        };
        let queue = layout::contenders(&children);
        let holders: Vec<String> = (0..queue.len())
            .filter(|&i| layout::holds(&queue, i))
            .map(|i| format!("{path}/{}", queue[i].name))
            .collect();
        let pending: Vec<_> = holders
            .iter()
            .map(|p| client.set_data(p, UNLOCK, None))
            .collect();
        let mut asked = 0;
        for answer in pending {
            match answer.await {
                Ok(_) => asked += 1,
                Err(zk::Error::NoNode) => {}
                Err(e) => return Err(self.error(identity, "writing a revocation request", e)),
            }
        }
        Ok(asked)
    }

    /// Ends this coordinator's session once no guard of it remains (its
    /// ephemeral nodes then go at once, rather than when the session times
    /// out). The next use connects again.
    pub fn close(&self) {
        let session = self
            .inner
            .session
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(session) = session {
            // Dropping the last handle closes the session; do it on the
            // runtime, where the session task runs.
            runtime::block_on(async move { drop(session) });
        }
    }
}

impl fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coordinator")
            .field("url", &self.inner.shown)
            .field("connected", &self.is_connected())
            .finish()
    }
}

fn millis(ms: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

/// The longest lock identity, in bytes. The server closes the connection
/// on a request longer than its `jute.maxbuffer` (1 MiB by default), which
/// a client sees as a connection loss and retries: an acquisition of a
/// name near that long waited out its whole timeout (forever without one),
/// then said the lock was busy. Only the kazoo layout keeps long names
/// whole; the others shorten them as lock file names.
const MAX_IDENTITY: usize = 64 * 1024;

/// Checks that a lock identity can be one ZooKeeper node name, or with
/// `nested`, a relative path of node names (`a/b`).
pub(crate) fn check_identity(identity: &str, nested: bool) -> Result<()> {
    let reason = if identity.is_empty() {
        Some("a lock name must not be empty")
    } else if identity.len() > MAX_IDENTITY {
        Some(
            "a lock node name is at most 64 KiB: ZooKeeper drops the connection on a request \
             longer than its packet bound (jute.maxbuffer); give the lock a shorter name",
        )
    } else if identity.contains('/') && !nested {
        Some(
            "a lock identity is one node name: it must not contain `/` (lock names map `/` to `_`, \
             except in the kazoo layout, which nests them as tooz does)",
        )
    } else if identity.starts_with('/') || identity.ends_with('/') || identity.contains("//") {
        Some(
            "in the kazoo layout a lock name is a relative node path, as tooz takes it: no leading, \
             trailing or doubled `/`",
        )
    } else if identity.split('/').any(|n| n == "." || n == "..") {
        // Only the top-level `/zookeeper` is the server's: a lock node is
        // below the root, and `{root}/zookeeper` is a node like any other
        // (tooz's `get_lock("zookeeper")` makes it).
        Some("`.` and `..` cannot be lock node names")
    } else if nested
        && identity
            .split('/')
            .skip(1)
            .any(|n| layout::Contender::parse(n).is_some())
    {
        // Inside a lock node, a persistent node named like a contender
        // would be read by every reader of that lock's queue as a holder
        // that never leaves.
        Some(
            "in the kazoo layout a nested name's parts below the first must not look like lock \
             contenders (`…__lock__NNNNNNNNNN`, `…__rlock__…`, `write-…`, `read-…`, `_c_…-lock-…`): \
             they would sit in another lock's queue forever",
        )
    } else if !identity.chars().all(layout::valid_node_char) {
        Some(
            "ZooKeeper node names cannot contain control characters, U+E000–U+F8FF, or U+FFF0 \
             and above (emoji among them: ZooKeeper refuses their UTF-16 surrogates); choose \
             another name",
        )
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidName {
            name: identity.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Why a node under the root is not a lock node, if it is not: lock nodes
/// carry no data (this crate, kazoo and Curator create them empty), so a
/// node with data is some application's, which `remove` and `clean` leave
/// alone, as they leave a file with data in a lock directory.
pub(crate) fn not_a_lock_node(stat: &zk::Stat) -> Option<String> {
    (stat.data_length > 0).then(|| {
        format!(
            "has data ({} bytes), so it is not a lock node (lock nodes are empty)",
            stat.data_length
        )
    })
}

/// One lock node, as [`Coordinator::locks`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LockSummary {
    /// The lock's identity (its node name).
    pub name: String,
    /// The lock node's path.
    pub path: String,
    /// How many contenders hold it.
    pub holders: usize,
    /// How many contenders wait for it.
    pub waiters: usize,
    /// How it is held (`None` when free).
    pub mode: Option<Mode>,
}

/// One lock in detail, from [`Coordinator::inspect`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LockInfo {
    /// The lock's identity (its node name).
    pub name: String,
    /// The lock node's path.
    pub path: String,
    /// Every contender, in queue order: holders first.
    pub contenders: Vec<ContenderInfo>,
}

impl LockInfo {
    /// The contenders holding the lock.
    pub fn holders(&self) -> impl Iterator<Item = &ContenderInfo> {
        self.contenders.iter().filter(|c| c.holder)
    }

    /// The contenders waiting for it.
    pub fn waiters(&self) -> impl Iterator<Item = &ContenderInfo> {
        self.contenders.iter().filter(|c| !c.holder)
    }
}

/// One candidate node of a lock.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ContenderInfo {
    /// The node's name (child of the lock node).
    pub node: String,
    /// Shared (reader) or exclusive (writer).
    pub mode: Mode,
    /// Which naming scheme created it (which kind of client).
    pub layout: Layout,
    /// The sequence number the server gave it: its place in the queue.
    pub sequence: i64,
    /// Whether it holds the lock (otherwise it waits).
    pub holder: bool,
    /// The node's data: the contender's identifier (`host:pid` for this
    /// crate, the identifier given to kazoo's `Lock`), or `unlock` once
    /// revocation was requested.
    pub data: Vec<u8>,
    /// Whether a revocation request was written into it.
    pub revoke_requested: bool,
    /// When the node was created (server clock).
    pub created: SystemTime,
    /// When its data last changed (server clock).
    pub modified: SystemTime,
    /// The session that owns the ephemeral node.
    pub session: i64,
    /// The fencing token this contender got (or gets) for the lock.
    pub fencing_token: u64,
    observed_at: SystemTime,
}

impl ContenderInfo {
    /// How long ago the node was created (against this host's clock).
    pub fn age(&self) -> Duration {
        self.observed_at
            .duration_since(self.created)
            .unwrap_or_default()
    }

    /// The data as text, with invalid UTF-8 replaced.
    pub fn data_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.data)
    }
}

#[cfg(test)]
mod tests {
    use super::check_identity;

    /// A nested part named like a contender would sit in its parent lock's
    /// queue forever (the node is persistent): refused in every layout's
    /// spelling; the first part, a lock node of its own, is not in a queue.
    #[test]
    fn nested_parts_that_look_like_contenders_are_refused() {
        for bad in [
            "volume/x__lock__0000000000",
            "volume/x__rlock__0000000007",
            "a/b/write-0123456789abcdef0123456789abcdef-0000000001",
            "volume/_c_0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0-lock-0000000003",
        ] {
            let err = check_identity(bad, true).unwrap_err().to_string();
            assert!(err.contains("look like lock contenders"), "{bad}: {err}");
        }
        for fine in [
            "volume/x",
            "x__lock__0000000000",
            "volume/x__lock__",
            "a/b/c",
        ] {
            assert!(check_identity(fine, true).is_ok(), "{fine}");
        }
    }
}
