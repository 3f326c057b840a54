//! A held distributed lock: its fencing token, and the watch that tells the
//! holder when the lock is lost or its release is requested.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lockutils_core::{Error, Mode, Result};
use tokio::sync::watch;
use zookeeper_client as zk;

use crate::coordinator::UNLOCK;
use crate::runtime;

/// Why a held lock was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LossReason {
    /// The server expired the session: its ephemeral nodes, this lock's
    /// among them, are gone and another contender may hold the lock.
    SessionExpired,
    /// The session was closed (by [`Coordinator::close`](crate::Coordinator::close)
    /// or a client shutdown).
    SessionClosed,
    /// The server refused the session's credentials.
    AuthFailed,
    /// The connection has been down so long that the server may have
    /// expired the session (and given the lock away), though the client
    /// cannot hear it say so: the client declares a connection down after
    /// 2/5 of the session timeout without a word from the server, and the
    /// loss is reported half a session timeout after that — about 0.9 of the
    /// session timeout after the last message, before the server (which
    /// waits the whole timeout, rounded up to its tick) can expire it.
    ConnectionLost,
    /// The candidate node was deleted while held (an operator cleared the
    /// lock).
    NodeDeleted,
}

impl LossReason {
    fn from_state(state: zk::SessionState) -> LossReason {
        match state {
            zk::SessionState::AuthFailed => LossReason::AuthFailed,
            zk::SessionState::Closed => LossReason::SessionClosed,
            _ => LossReason::SessionExpired,
        }
    }
}

impl fmt::Display for LossReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LossReason::SessionExpired => "the ZooKeeper session expired",
            LossReason::SessionClosed => "the ZooKeeper session was closed",
            LossReason::AuthFailed => "the ZooKeeper session failed authentication",
            LossReason::ConnectionLost => {
                "the connection to ZooKeeper was down for longer than the session timeout"
            }
            LossReason::NodeDeleted => "the lock's candidate node was deleted (lock cleared)",
        })
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Status {
    lost: Option<LossReason>,
    revoked: bool,
    suspended: bool,
}

struct Shared {
    /// Set on release: from then on the node's deletion is expected.
    released: AtomicBool,
    name: String,
    node: String,
    backend: String,
    token: u64,
    sequence: i64,
    mode: Mode,
    session_timeout: Duration,
}

/// What a holder watches: whether its lock is still held and whether its
/// release was requested. Cloneable, `Send` and `'static`, so another thread
/// or task can watch a lock held elsewhere; get one from a guard's `watch()`.
///
/// ZooKeeper locks can be lost while held — the session expires, or an
/// operator clears the lock — and then another contender may hold the lock
/// while this holder still runs. The watch reports it within the session
/// timeout, and the loss is logged at `ERROR` (target `lockutils`). Work that
/// must not overlap should stop when [`lost`](Self::lost) resolves, and pass
/// the [`fencing_token`](Self::fencing_token) to any store that can reject
/// stale writers.
#[derive(Clone)]
pub struct HoldWatch {
    shared: Arc<Shared>,
    rx: watch::Receiver<Status>,
}

impl HoldWatch {
    /// Whether the lock was lost.
    pub fn is_lost(&self) -> bool {
        self.rx.borrow().lost.is_some()
    }

    /// Why the lock was lost, if it was.
    pub fn loss(&self) -> Option<LossReason> {
        self.rx.borrow().lost
    }

    /// Whether someone asked the holders to release the lock
    /// ([`Coordinator::revoke`](crate::Coordinator::revoke), or a waiter with
    /// [`revoke_blockers`](crate::ZkLockOptions::revoke_blockers)).
    pub fn is_revoked(&self) -> bool {
        self.rx.borrow().revoked
    }

    /// Whether the connection is down right now. The lock is still held
    /// unless the session expires; if the connection stays down long enough
    /// for that to be possible, the lock is reported lost
    /// ([`LossReason::ConnectionLost`]).
    pub fn is_suspended(&self) -> bool {
        self.rx.borrow().suspended
    }

    /// Resolves when the lock is lost, with the reason; or with `None` once
    /// the hold ended by a release without being lost. Works on any executor.
    pub fn lost(&self) -> impl Future<Output = Option<LossReason>> + Send + 'static {
        let mut rx = self.rx.clone();
        async move {
            match rx.wait_for(|s| s.lost.is_some()).await {
                Ok(s) => s.lost,
                Err(_) => None,
            }
        }
    }

    /// Resolves with `true` when release of the lock is requested, or with
    /// `false` once the hold ended (released or lost) without a request.
    /// Works on any executor.
    pub fn revoked(&self) -> impl Future<Output = bool> + Send + 'static {
        let mut rx = self.rx.clone();
        async move {
            match rx.wait_for(|s| s.revoked || s.lost.is_some()).await {
                Ok(s) => s.revoked,
                Err(_) => false,
            }
        }
    }

    /// Blocks the thread until the lock is lost (returning why) or `timeout`
    /// passes or the hold ends (returning `None`).
    pub fn wait_lost(&self, timeout: Duration) -> Option<LossReason> {
        let lost = self.lost();
        runtime::block_on(async move { tokio::time::timeout(timeout, lost).await.ok().flatten() })
    }

    /// Blocks the thread until release is requested (`true`), or `timeout`
    /// passes or the hold ends (`false`).
    pub fn wait_revoked(&self, timeout: Duration) -> bool {
        let revoked = self.revoked();
        runtime::block_on(async move {
            tokio::time::timeout(timeout, revoked)
                .await
                .unwrap_or(false)
        })
    }

    /// The fencing token of this hold: the ZooKeeper transaction id that
    /// created its candidate node (`czxid`).
    ///
    /// Successive holders of one lock get increasing tokens, so a store that
    /// remembers the highest token it has seen can refuse a holder that lost
    /// the lock without noticing. Why `czxid` and not the node's sequence
    /// number: holders are served in sequence order, and a node with a later
    /// sequence was created by a later transaction, so both increase along
    /// the queue; but the sequence counter belongs to the lock node and
    /// restarts at 0 when the lock node is deleted and created again (an
    /// operator clears it, or the server removes the empty container node),
    /// while zxids only ever grow across the whole ensemble. Shared holders
    /// hold together: their tokens order them against writers, not against
    /// each other.
    pub fn fencing_token(&self) -> u64 {
        self.shared.token
    }

    /// The candidate node's sequence number: its place in the lock's queue.
    pub fn sequence(&self) -> i64 {
        self.shared.sequence
    }

    /// The candidate node's path.
    pub fn node(&self) -> &str {
        &self.shared.node
    }

    /// The lock's identity (its node name under the root).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Shared or exclusive.
    pub fn mode(&self) -> Mode {
        self.shared.mode
    }

    /// The session timeout granted by the server: the bound within which a
    /// crash of this holder frees the lock, and a loss is reported.
    pub fn session_timeout(&self) -> Duration {
        self.shared.session_timeout
    }
}

impl fmt::Debug for HoldWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = *self.rx.borrow();
        f.debug_struct("HoldWatch")
            .field("name", &self.shared.name)
            .field("node", &self.shared.node)
            .field("backend", &self.shared.backend)
            .field("mode", &self.shared.mode)
            .field("fencing_token", &self.shared.token)
            .field("lost", &s.lost)
            .field("revoked", &s.revoked)
            .field("suspended", &s.suspended)
            .finish()
    }
}

/// The ZooKeeper part of a held lock. Dropping it deletes the candidate node
/// (the request is sent at once; the answer is awaited in the background).
pub(crate) struct Hold {
    watch: HoldWatch,
    client: zk::Client,
    monitor: Option<tokio::task::AbortHandle>,
    released: bool,
}

pub(crate) struct Acquired {
    pub(crate) client: zk::Client,
    pub(crate) name: String,
    pub(crate) node: String,
    pub(crate) backend: String,
    pub(crate) token: u64,
    pub(crate) sequence: i64,
    pub(crate) mode: Mode,
    pub(crate) waited: Duration,
}

impl Hold {
    /// Starts watching a freshly acquired lock. Runs on the crate runtime.
    pub(crate) fn start(a: Acquired) -> Hold {
        let shared = Arc::new(Shared {
            released: AtomicBool::new(false),
            name: a.name,
            node: a.node,
            backend: a.backend,
            token: a.token,
            sequence: a.sequence,
            mode: a.mode,
            session_timeout: a.client.session_timeout(),
        });
        let (tx, rx) = watch::channel(Status::default());
        tracing::debug!(
            target: "lockutils",
            lock = %shared.name,
            node = %shared.node,
            backend = %shared.backend,
            mode = shared.mode.as_str(),
            fencing_token = shared.token,
            waited_secs = a.waited.as_secs_f64(),
            "distributed lock acquired"
        );
        let monitor = tokio::spawn(monitor(a.client.clone(), tx, shared.clone()));
        Hold {
            watch: HoldWatch { shared, rx },
            client: a.client,
            monitor: Some(monitor.abort_handle()),
            released: false,
        }
    }

    pub(crate) fn watch(&self) -> &HoldWatch {
        &self.watch
    }

    /// Sends the delete; returns the pending answer.
    ///
    /// The monitor is not aborted: the deletion fires its watch on the node,
    /// and it ends quietly, seeing the release. (Dropping a watch that has not
    /// fired would cost a `RemoveWatches` request per release.)
    fn release(&mut self) -> Option<impl Future<Output = Result<(), zk::Error>> + Send + 'static> {
        if std::mem::replace(&mut self.released, true) {
            return None;
        }
        self.watch.shared.released.store(true, Ordering::Release);
        let monitor = self.monitor.take();
        tracing::debug!(target: "lockutils", lock = %self.watch.shared.name, node = %self.watch.shared.node, "distributed lock released");
        // A lost hold has nothing left to delete: its session or node is gone.
        if self.watch.is_lost() {
            if let Some(m) = monitor {
                m.abort();
            }
            return None;
        }
        let delete = self.client.delete(&self.watch.shared.node, None);
        Some(async move {
            match delete.await {
                Ok(()) | Err(zk::Error::NoNode) => Ok(()),
                Err(e) => {
                    // The node stays until the session ends: stop watching it.
                    if let Some(m) = monitor {
                        m.abort();
                    }
                    Err(e)
                }
            }
        })
    }

    /// Releases and waits until the server has deleted the candidate node.
    pub(crate) async fn unlock(mut self) -> Result<()> {
        let Some(pending) = self.release() else {
            return Ok(());
        };
        let shared = self.watch.shared.clone();
        runtime::spawn(pending).await.map_err(|e| Error::Backend {
            name: shared.name.clone(),
            backend: shared.backend.clone(),
            reason: format!(
                "releasing: deleting candidate node {} failed: {e}; the server removes it when the session ends",
                shared.node
            ),
            source: Some(Box::new(e)),
        })
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let Some(pending) = self.release() else {
            return;
        };
        let (name, node) = (
            self.watch.shared.name.clone(),
            self.watch.shared.node.clone(),
        );
        runtime::spawn(async move {
            if let Err(e) = pending.await {
                tracing::warn!(
                    target: "lockutils",
                    lock = %name,
                    node = %node,
                    error = %e,
                    "could not delete the candidate node on release; the server removes it when the session ends"
                );
            }
        })
        .detach();
    }
}

fn mark_revoked(tx: &watch::Sender<Status>, shared: &Shared) {
    let fresh = tx.send_if_modified(|s| !std::mem::replace(&mut s.revoked, true));
    if fresh {
        tracing::warn!(
            target: "lockutils",
            lock = %shared.name,
            node = %shared.node,
            backend = %shared.backend,
            "release of the distributed lock was requested (revocation)"
        );
    }
}

fn lose(tx: &watch::Sender<Status>, shared: &Shared, reason: LossReason) {
    tx.send_modify(|s| {
        s.lost.get_or_insert(reason);
        s.suspended = false;
    });
    tracing::error!(
        target: "lockutils",
        lock = %shared.name,
        node = %shared.node,
        backend = %shared.backend,
        fencing_token = shared.token,
        reason = %reason,
        "distributed lock lost while held: another holder may have it now; stop work that relies on it"
    );
}

/// What the node half of the monitor produced.
enum Step {
    Read(Result<(Vec<u8>, zk::OneshotWatcher), zk::Error>),
    Event(zk::WatchedEvent),
}

type StepFuture = std::pin::Pin<Box<dyn Future<Output = Step> + Send>>;

/// Reads the node and sets a watch on it, after `delay`.
fn read(client: &zk::Client, node: &str, delay: Duration) -> StepFuture {
    let (client, node) = (client.clone(), node.to_owned());
    Box::pin(async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Step::Read(
            client
                .get_and_watch_data(&node)
                .await
                .map(|(data, _, w)| (data, w)),
        )
    })
}

/// Watches the candidate node (deletion, revocation) and the session (expiry,
/// a disconnection long enough for the server to expire it) until the lock is
/// lost or released. After a release, the node's deletion (or the session's
/// end) ends it quietly.
async fn monitor(client: zk::Client, tx: watch::Sender<Status>, shared: Arc<Shared>) {
    let released = || shared.released.load(Ordering::Acquire);
    let end = |reason: LossReason| {
        if !released() {
            lose(&tx, &shared, reason);
        }
    };
    let mut states = client.state_watcher();
    let state = states.state();
    if state.is_terminated() {
        return end(LossReason::from_state(state));
    }
    let mut node: StepFuture = read(&client, &shared.node, Duration::ZERO);
    let mut down_since: Option<Instant> = None;
    loop {
        let expiry = async {
            match down_since {
                Some(t) => tokio::time::sleep_until((t + shared.session_timeout / 2).into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            step = &mut node => match step {
                Step::Read(Ok((data, watcher))) => {
                    if data == UNLOCK && !released() {
                        mark_revoked(&tx, &shared);
                    }
                    node = Box::pin(async move { Step::Event(watcher.changed().await) });
                }
                Step::Read(Err(zk::Error::NoNode)) => return end(LossReason::NodeDeleted),
                Step::Read(Err(_)) if client.state().is_terminated() => {
                    return end(LossReason::from_state(client.state()));
                }
                // Connection trouble: the session half tracks it; read again.
                Step::Read(Err(_)) => node = read(&client, &shared.node, Duration::from_millis(100)),
                Step::Event(event) => match event.event_type {
                    zk::EventType::NodeDeleted => return end(LossReason::NodeDeleted),
                    zk::EventType::Session if event.session_state.is_terminated() => {
                        return end(LossReason::from_state(event.session_state));
                    }
                    _ if released() => return,
                    // Data changed (a revocation request), or the connection
                    // dropped (which consumes one-shot watches): read again.
                    _ => node = read(&client, &shared.node, Duration::ZERO),
                },
            },
            state = states.changed() => {
                if state.is_terminated() {
                    return end(LossReason::from_state(state));
                }
                let down = state == zk::SessionState::Disconnected;
                if down {
                    down_since.get_or_insert_with(Instant::now);
                } else {
                    down_since = None;
                }
                tx.send_if_modified(|s| std::mem::replace(&mut s.suspended, down) != down);
                if down && !released() {
                    tracing::warn!(
                        target: "lockutils",
                        lock = %shared.name,
                        backend = %shared.backend,
                        "connection to ZooKeeper lost; the lock is held unless the session expires"
                    );
                }
            }
            () = expiry => return end(LossReason::ConnectionLost),
        }
    }
}
