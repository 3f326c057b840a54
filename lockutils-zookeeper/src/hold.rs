//! A held distributed lock: its fencing token, and the watch that tells the
//! holder when the lock is lost or its release is requested.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lockutils_core::{Error, Mode, Result};
use tokio::sync::watch;
use zookeeper_client as zk;

use crate::coordinator::{Coordinator, UNLOCK};
use crate::requests;
use crate::runtime;
use crate::session::{HeldOn, Lease, Session};

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
    /// The server has not been heard from for so long that it may have
    /// expired the session (and given the lock away), though the client
    /// cannot hear it say so: the latest request the server answered was
    /// sent more than 4/5 of the session timeout ago. Reported before the
    /// server can expire the session (it waits the whole timeout after the
    /// last message). Provisional: if the client later learns what happened
    /// (the session expired, the node was deleted), a guard's [`loss`](lockutils_core::LockGuard::loss)
    /// says that instead. The session may also have survived; the candidate
    /// node is then deleted when the guard is released.
    ConnectionLost,
    /// The candidate node was deleted by someone else while held (an
    /// operator cleared the lock), the session being alive: reported only
    /// once a request on the session succeeded after the deletion, so a
    /// deletion by the session's expiry is reported as `SessionExpired`.
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

impl LossReason {
    /// What happened, in words (the [`Display`](fmt::Display) form, and the
    /// detail of the [`Loss`](lockutils_core::backend::Loss) the core guards
    /// report).
    pub fn as_str(self) -> &'static str {
        match self {
            LossReason::SessionExpired => "the ZooKeeper session expired",
            LossReason::SessionClosed => "the ZooKeeper session was closed",
            LossReason::AuthFailed => "the ZooKeeper session failed authentication",
            LossReason::ConnectionLost => {
                "ZooKeeper was not heard from for 4/5 of the session timeout"
            }
            LossReason::NodeDeleted => "the lock's candidate node was deleted (lock cleared)",
        }
    }

    /// The ZooKeeper reason behind a loss a guard reports
    /// ([`LockGuard::loss`](lockutils_core::LockGuard::loss), or what
    /// [`LockGuard::lost`](lockutils_core::LockGuard::lost) resolves with);
    /// `None` for a loss on another backend. The loss's
    /// [`kind`](lockutils_core::backend::Loss::kind) is the engine-neutral
    /// summary: `SessionEnded` for the first three reasons, `ConnectionLost`,
    /// `Cleared` for [`NodeDeleted`](Self::NodeDeleted).
    ///
    /// ```
    /// use lockutils_core::backend::{Loss, LossKind};
    /// use lockutils_zookeeper::LossReason;
    ///
    /// let loss = Loss { kind: LossKind::SessionEnded, detail: LossReason::SessionExpired.as_str().into() };
    /// assert_eq!(LossReason::of(&loss), Some(LossReason::SessionExpired));
    /// ```
    pub fn of(loss: &lockutils_core::backend::Loss) -> Option<LossReason> {
        [
            LossReason::SessionExpired,
            LossReason::SessionClosed,
            LossReason::AuthFailed,
            LossReason::ConnectionLost,
            LossReason::NodeDeleted,
        ]
        .into_iter()
        .find(|r| loss.detail == r.as_str())
    }
}

impl fmt::Display for LossReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Status {
    lost: Option<LossReason>,
    revoked: bool,
    suspended: bool,
    /// The hold was released: nothing more will be reported.
    ended: bool,
}

struct Shared {
    /// Set on release: from then on the node's deletion is expected.
    released: AtomicBool,
    name: String,
    node: String,
    backend: String,
    token: u64,
    mode: Mode,
    /// When the server last proved the session alive.
    lease: Arc<Lease>,
    /// Whoever learns something first (the monitor, or a look at the lease)
    /// reports it here.
    status: watch::Sender<Status>,
}

impl Shared {
    /// The status, after checking the lease: a hold whose session the server
    /// has not proved alive within the lease horizon is lost from then on.
    fn status(&self) -> Status {
        let s = *self.status.borrow();
        if s.lost.is_none() && !s.ended && self.lease.ran_out() {
            lose(self, LossReason::ConnectionLost);
            return *self.status.borrow();
        }
        s
    }
}

/// What a holder watches: whether its lock is still held and whether its
/// release was requested. Cloneable, `Send` and `'static`, so another thread
/// or task can watch a lock held elsewhere; get one from a guard's `watch()`.
///
/// ZooKeeper locks can be lost while held — the session expires, or an
/// operator clears the lock — and then another contender may hold the lock
/// while this holder still runs. The watch reports it before the server can
/// expire the session, and the loss is logged at `ERROR` (target
/// `lockutils`). Work that must not overlap should stop when
/// [`lost`](Self::lost) resolves, and pass the
/// [`fencing_token`](Self::fencing_token) to any store that can reject stale
/// writers.
#[derive(Clone)]
pub(crate) struct HoldWatch {
    shared: Arc<Shared>,
    rx: watch::Receiver<Status>,
}

impl HoldWatch {
    /// Why the lock was lost, if it was: the best knowledge so far (a
    /// provisional [`LossReason::ConnectionLost`] is replaced by what the
    /// client learns later).
    pub(crate) fn loss(&self) -> Option<LossReason> {
        self.shared.status().lost
    }

    /// Whether someone asked the holders to release the lock
    /// ([`Coordinator::revoke`](crate::Coordinator::revoke), or a waiter on
    /// a [`revoke_blockers`](crate::ZkBackend::revoke_blockers) backend).
    pub(crate) fn is_revoked(&self) -> bool {
        self.rx.borrow().revoked
    }

    /// Resolves when the lock is lost, with the reason known then; or with
    /// `None` once the hold ended by a release without being lost. Works on
    /// any executor.
    pub(crate) fn lost(&self) -> impl Future<Output = Option<LossReason>> + Send + 'static {
        let mut rx = self.rx.clone();
        async move {
            match rx.wait_for(|s| s.lost.is_some() || s.ended).await {
                Ok(s) => s.lost,
                Err(_) => None,
            }
        }
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
    /// while zxids only ever grow across the whole ensemble — as long as
    /// its data directory is kept: an ensemble started afresh (data wiped)
    /// counts from 0 again. Shared holders hold together: their tokens order
    /// them against writers, not against each other.
    pub(crate) fn fencing_token(&self) -> u64 {
        self.shared.token
    }

    /// The candidate node's path.
    pub(crate) fn node(&self) -> &str {
        &self.shared.node
    }
}

impl fmt::Debug for HoldWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.shared.status();
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
/// (the request is sent at once; the answer is awaited, and the request
/// repeated while the connection is down, in the background).
pub(crate) struct Hold {
    watch: HoldWatch,
    /// The session, counted as holding a lock (which keeps its lease fresh)
    /// until the release.
    session: Option<HeldOn>,
    coordinator: Coordinator,
    monitor: Option<tokio::task::AbortHandle>,
}

pub(crate) struct Acquired {
    pub(crate) session: Session,
    pub(crate) coordinator: Coordinator,
    pub(crate) name: String,
    pub(crate) node: String,
    pub(crate) backend: String,
    pub(crate) token: u64,
    pub(crate) mode: Mode,
    pub(crate) waited: Duration,
}

impl Hold {
    /// Starts watching a freshly acquired lock. Runs on the crate runtime.
    pub(crate) fn start(a: Acquired) -> Hold {
        let (status, rx) = watch::channel(Status::default());
        let shared = Arc::new(Shared {
            released: AtomicBool::new(false),
            name: a.name,
            node: a.node,
            backend: a.backend,
            token: a.token,
            mode: a.mode,
            lease: a.session.lease().clone(),
            status,
        });
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
        let monitor = tokio::spawn(monitor(a.session.client().clone(), shared.clone()));
        Hold {
            watch: HoldWatch { shared, rx },
            session: Some(a.session.hold()),
            coordinator: a.coordinator,
            monitor: Some(monitor.abort_handle()),
        }
    }

    pub(crate) fn watch(&self) -> &HoldWatch {
        &self.watch
    }

    /// Ends the hold. Returns the clean-up still to finish: deleting the
    /// candidate node, unless it is already gone (the session ended, or the
    /// node was deleted). The delete is sent before this returns.
    ///
    /// A hold reported lost by [`LossReason::ConnectionLost`] is cleaned up
    /// too: its session may have survived the silence, and then its node
    /// would block every other contender (and this process) for as long as
    /// the session lives.
    ///
    /// The monitor is not aborted: the deletion fires its watch on the node,
    /// and it ends quietly, seeing the release. (Dropping a watch that has not
    /// fired would cost a `RemoveWatches` request per release.)
    fn release(&mut self) -> Option<impl Future<Output = Result<(), Error>> + Send + 'static> {
        let held_on = self.session.take()?;
        let shared = self.watch.shared.clone();
        shared.released.store(true, Ordering::Release);
        let loss = shared.status.borrow().lost;
        shared.status.send_modify(|s| s.ended = true);
        let monitor = self.monitor.take();
        tracing::debug!(target: "lockutils", lock = %shared.name, node = %shared.node, "distributed lock released");
        if loss.is_some_and(|l| l != LossReason::ConnectionLost) {
            // The session or the node is gone, and the node with it.
            if let Some(m) = monitor {
                m.abort();
            }
            return None;
        }
        let session = held_on.session().clone();
        drop(held_on);
        let delete = requests::delete_until_gone(session.client().clone(), shared.node.clone());
        let coordinator = self.coordinator.clone();
        Some(async move {
            delete.await.map_err(|e| {
                // The node stays until the session ends: make sure it does,
                // once the locks still held on it are released.
                if let Some(m) = monitor {
                    m.abort();
                }
                coordinator.forget(&session);
                tracing::warn!(
                    target: "lockutils",
                    lock = %shared.name,
                    node = %shared.node,
                    error = %e,
                    "could not delete the candidate node on release; its session is closed once no \
                     other lock of this process holds it"
                );
                Error::Backend {
                    name: shared.name.clone(),
                    backend: shared.backend.clone(),
                    reason: format!(
                        "releasing: deleting candidate node {} failed; the session is closed \
                         once no other lock of this process uses it, which removes the node",
                        shared.node
                    ),
                    source: Some(Box::new(e)),
                }
            })
        })
    }

    /// Releases and waits until the candidate node is gone: deleted, or
    /// taken by the end of its session (at most 7/5 of the session timeout
    /// after the server was last heard from).
    pub(crate) async fn unlock(mut self) -> Result<()> {
        match self.release() {
            Some(pending) => runtime::spawn(pending).await,
            None => Ok(()),
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if let Some(pending) = self.release() {
            runtime::spawn(async move {
                let _ = pending.await;
            })
            .detach();
        }
    }
}

fn mark_revoked(shared: &Shared) {
    let fresh = shared
        .status
        .send_if_modified(|s| !std::mem::replace(&mut s.revoked, true));
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

/// Records a loss. The first is logged at `ERROR`; a provisional
/// `ConnectionLost` may be replaced once by what actually happened.
fn lose(shared: &Shared, reason: LossReason) {
    let mut was = None;
    let changed = shared.status.send_if_modified(|s| {
        was = s.lost;
        match s.lost {
            None => {}
            Some(LossReason::ConnectionLost) if reason != LossReason::ConnectionLost => {}
            Some(_) => return false,
        }
        s.lost = Some(reason);
        true
    });
    if !changed {
        return;
    }
    match was {
        None => tracing::error!(
            target: "lockutils",
            lock = %shared.name,
            node = %shared.node,
            backend = %shared.backend,
            fencing_token = shared.token,
            reason = %reason,
            "distributed lock lost while held: another holder may have it now; stop work that relies on it"
        ),
        Some(_) => tracing::warn!(
            target: "lockutils",
            lock = %shared.name,
            node = %shared.node,
            backend = %shared.backend,
            reason = %reason,
            "the lost distributed lock: now known why"
        ),
    }
}

/// What the node half of the monitor produced.
enum Step {
    Read(Result<(Vec<u8>, zk::OneshotWatcher), zk::Error>),
    Event(zk::WatchedEvent),
    /// The node was seen deleted; what deleted it (`None`: it is there).
    Confirmed(Option<LossReason>),
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

/// Finds out why the node is gone. The server deletes a session's ephemeral
/// nodes when it expires the session, and may tell the client about the
/// deletion before it drops the connection; only a request that succeeds on
/// the session afterwards shows that someone else deleted the node.
fn confirm_deleted(client: &zk::Client, node: &str) -> StepFuture {
    let (client, node) = (client.clone(), node.to_owned());
    Box::pin(async move {
        let mut states = client.state_watcher();
        loop {
            let state = client.state();
            if state.is_terminated() {
                return Step::Confirmed(Some(LossReason::from_state(state)));
            }
            match client.check_stat(&node).await {
                Ok(None) => return Step::Confirmed(Some(LossReason::NodeDeleted)),
                Ok(Some(_)) => return Step::Confirmed(None),
                Err(zk::Error::SessionExpired) => {
                    return Step::Confirmed(Some(LossReason::SessionExpired))
                }
                Err(_) if client.state().is_terminated() => {
                    return Step::Confirmed(Some(LossReason::from_state(client.state())));
                }
                // The connection failed: ask again once the client has
                // reconnected (or ended the session).
                Err(_) => {
                    let _ =
                        tokio::time::timeout(Duration::from_millis(100), states.changed()).await;
                }
            }
        }
    })
}

/// Watches the candidate node (deletion, revocation), the session (expiry)
/// and the lease (the server silent for too long) until the lock is lost
/// for good or released. After a release, the node's deletion (or the
/// session's end) ends it quietly.
async fn monitor(client: zk::Client, shared: Arc<Shared>) {
    let released = || shared.released.load(Ordering::Acquire);
    let end = |reason: LossReason| {
        if !released() {
            lose(&shared, reason);
        }
    };
    let mut states = client.state_watcher();
    let state = states.state();
    if state.is_terminated() {
        return end(LossReason::from_state(state));
    }
    let mut node: StepFuture = read(&client, &shared.node, Duration::ZERO);
    loop {
        let lease = async {
            if released() || shared.status.borrow().lost.is_some() {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep_until(shared.lease.runs_out().into()).await;
        };
        tokio::select! {
            step = &mut node => match step {
                Step::Read(Ok((data, watcher))) => {
                    if data == UNLOCK && !released() {
                        mark_revoked(&shared);
                    }
                    node = Box::pin(async move { Step::Event(watcher.changed().await) });
                }
                Step::Read(Err(_)) | Step::Event(_) if released() => return,
                Step::Read(Err(zk::Error::NoNode)) => node = confirm_deleted(&client, &shared.node),
                Step::Read(Err(_)) if client.state().is_terminated() => {
                    return end(LossReason::from_state(client.state()));
                }
                // Connection trouble: the session half tracks it; read again.
                Step::Read(Err(_)) => node = read(&client, &shared.node, Duration::from_millis(100)),
                Step::Event(event) => match event.event_type {
                    zk::EventType::NodeDeleted => node = confirm_deleted(&client, &shared.node),
                    zk::EventType::Session if event.session_state.is_terminated() => {
                        return end(LossReason::from_state(event.session_state));
                    }
                    // Data changed (a revocation request), or the connection
                    // dropped (which consumes one-shot watches): read again.
                    _ => node = read(&client, &shared.node, Duration::ZERO),
                },
                Step::Confirmed(Some(reason)) => return end(reason),
                Step::Confirmed(None) => node = read(&client, &shared.node, Duration::ZERO),
            },
            state = states.changed() => {
                if state.is_terminated() {
                    return end(LossReason::from_state(state));
                }
                let down = state == zk::SessionState::Disconnected;
                shared
                    .status
                    .send_if_modified(|s| std::mem::replace(&mut s.suspended, down) != down);
                if down && !released() {
                    tracing::warn!(
                        target: "lockutils",
                        lock = %shared.name,
                        backend = %shared.backend,
                        "connection to ZooKeeper lost; the lock is held unless the session expires"
                    );
                }
            }
            () = lease => {
                if shared.lease.ran_out() {
                    end(LossReason::ConnectionLost);
                }
            }
        }
    }
}
