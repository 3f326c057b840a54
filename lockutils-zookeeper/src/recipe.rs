//! The ZooKeeper lock recipe: one acquisition's candidate node, its place in
//! the queue, and the wait for the contenders ahead, all under one deadline.
//! [`ZkBackend`](crate::ZkBackend) drives it for the core's lock API.

use std::collections::HashSet;
use std::future::Future;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use lockutils_core::{Error, Mode, Result};
use zookeeper_client as zk;

use crate::coordinator::{Coordinator, UNLOCK};
use crate::hold::{Acquired, Hold};
use crate::layout::{self, Layout};
use crate::requests::{self, retrying, transient, within, Failed};
use crate::runtime;
use crate::session::Session;

pub(crate) fn host_pid() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let host = match lockutils_core::backend::host_name() {
            "" => "unknown-host",
            host => host,
        };
        format!("{host}:{}", std::process::id())
    })
}

/// An acquisition, checked and ready for the ZooKeeper part.
pub(crate) struct Plan {
    pub(crate) coordinator: Coordinator,
    pub(crate) name: String,
    pub(crate) identity: String,
    pub(crate) path: String,
    pub(crate) mode: Mode,
    pub(crate) layout: Layout,
    pub(crate) data: Vec<u8>,
    pub(crate) blocking: bool,
    pub(crate) timeout: Option<Duration>,
    pub(crate) revoke_blockers: bool,
    /// What runs on this acquisition's behalf (see [`runtime::Pending`]).
    pub(crate) pending: runtime::Pending,
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
    /// Counts the clean-up while it runs, for whoever waits on the
    /// acquisition.
    pending: runtime::Pending,
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
            let mut task = runtime::spawn_tracked(counted(self.pending.enter(), clean_up));
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
            // Counted now, before the acquisition's own count goes.
            runtime::spawn_tracked(counted(self.pending.enter(), clean_up)).detach();
        }
    }
}

/// The ZooKeeper part of an acquisition. Runs on the crate runtime.
///
/// Every request is bounded by the deadline: the lock's timeout, or for a
/// non-blocking acquisition (a zero timeout is one), the URL's
/// `connect_timeout`. A failed acquisition withdraws its candidate before it
/// returns (waiting at most [`WITHDRAW_GRACE`] for the server to confirm;
/// the deletion is retried in the background after that).
///
/// A session that turns out to have ended (expired while the process was cut
/// off, say) is replaced once: the acquisition after a session loss starts
/// clean, on a new session.
/// `fut`, counted in its acquisition's [`runtime::Pending`] until it ends.
async fn counted(guard: runtime::PendingGuard, fut: impl Future<Output = ()>) {
    fut.await;
    drop(guard);
}

pub(crate) async fn acquire(plan: Plan, deadline: Option<Instant>) -> Result<Hold> {
    // Dropped last, after any candidate has counted its clean-up.
    let _alive = plan.pending.enter();
    let started = Instant::now();
    let deadline = if plan.blocking {
        deadline
    } else {
        Some(started + plan.coordinator.url().connect_timeout())
    };
    let mut retried = false;
    loop {
        let session = plan.coordinator.session(&plan.name, deadline).await?;
        let mut cand = Candidate {
            client: session.client().clone(),
            dir: plan.path.clone(),
            prefix: plan.layout.prefix(plan.mode, &uuid::Uuid::new_v4()),
            node: None,
            unknown: false,
            pending: plan.pending.clone(),
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
