//! A lock held on the server: the task that watches its session, reports
//! its loss, and releases it.

use std::fmt;
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::sync::Arc;

use lockutils_core::{Error, Mode, Result};
use parking_lot::Mutex;
use tokio::sync::{oneshot, watch};

use crate::coordinator::PgCoordinator;
use crate::key::{tag, LockKey};
use crate::{caller, runtime};
use crate::session::{describe, reason_of, Session};

/// Why a held lock was lost. Whatever the reason, the server has released
/// the lock (it dies with its session) and another holder may have it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub(crate) enum LossReason {
    /// The server ended the session: `pg_terminate_backend`, a shutdown, or
    /// an idle-session timeout.
    Terminated,
    /// The connection broke (reset, closed, or keep-alive probes
    /// unanswered).
    ConnectionLost,
    /// The periodic check got no answer within the check interval: the
    /// server or the network is unresponsive, and the server will drop the
    /// session (and the lock) when its own keep-alive gives up.
    CheckTimedOut,
}

impl fmt::Display for LossReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LossReason::Terminated => "the server ended the lock's session",
            LossReason::ConnectionLost => "the connection to PostgreSQL broke",
            LossReason::CheckTimedOut => {
                "the lock's session did not answer its periodic check in time"
            }
        })
    }
}

type Reply = oneshot::Sender<Result<()>>;

/// A held lock's session, between uses: the keeper task takes it out for a
/// check, a blocking release for the unlock. Empty once the hold ended.
type Slot = Arc<Mutex<Option<Session>>>;

/// A lock held on the PostgreSQL server, without the in-process layer (which
/// the core's guards hold beside it).
///
/// The lock lives in one server session of its own. A task on the crate's
/// runtime checks that session every `check_interval` and learns at once
/// when the server closes it; a loss is logged at `ERROR` (target
/// `lockutils`) and reported by [`is_lost`](Self::is_lost),
/// [`loss`](Self::loss) and [`lost`](Self::lost).
///
/// Dropping the hold releases the lock without waiting for the server's
/// answer; [`release`](Self::release) waits for it.
pub(crate) struct PgHold {
    name: String,
    key: LockKey,
    mode: Mode,
    pid: i32,
    token: Option<u64>,
    backend: String,
    status: watch::Receiver<Option<LossReason>>,
    release: Option<oneshot::Sender<Reply>>,
    coordinator: PgCoordinator,
    session: Slot,
    /// The acquisition waited for another holder.
    pub(crate) contended: bool,
}

impl PgHold {
    pub(crate) fn start(
        coordinator: PgCoordinator,
        session: Session,
        name: String,
        identity: &str,
        key: LockKey,
        mode: Mode,
        token: Option<u64>,
    ) -> PgHold {
        let (status_tx, status) = watch::channel(None);
        let (release, release_rx) = oneshot::channel();
        let pid = session.pid;
        let slot: Slot = Arc::new(Mutex::new(Some(session)));
        let hold = PgHold {
            name,
            key,
            mode,
            pid,
            token,
            backend: coordinator.shown().to_owned(),
            status,
            release: Some(release),
            coordinator: coordinator.clone(),
            session: slot.clone(),
            contended: false,
        };
        let keeper = Keeper {
            coordinator,
            session: slot,
            pid,
            name: hold.name.clone(),
            check_sql: check_statement(identity),
            key,
            mode,
            status: status_tx,
        };
        tokio::spawn(keeper.run(release_rx));
        hold
    }

    /// The advisory-lock key.
    pub(crate) fn key(&self) -> LockKey {
        self.key
    }

    /// The fencing token: larger for every successive holder of the name.
    /// `None` unless the URL asks for `fencing=table` (advisory locks keep
    /// no counter of their own).
    pub(crate) fn fencing_token(&self) -> Option<u64> {
        self.token
    }

    /// Why the lock was lost, if it was.
    pub(crate) fn loss(&self) -> Option<LossReason> {
        *self.status.borrow()
    }

    /// Resolves when the lock is lost, with the reason, or with `None` once
    /// the hold ended without being lost. Works on any executor.
    pub(crate) fn lost(&self) -> impl Future<Output = Option<LossReason>> + Send + 'static {
        let mut rx = self.status.clone();
        async move {
            match rx.wait_for(Option::is_some).await {
                Ok(s) => *s,
                Err(_) => None,
            }
        }
    }

    /// Releases the lock and waits for the server to confirm.
    ///
    /// # Errors
    /// [`Error::Backend`] if the lock had been lost, or the server did not
    /// confirm the release (the session is then closed, which releases it).
    pub(crate) fn release(mut self) -> Result<()> {
        if caller::usable() {
            // Unlocks on this thread, which reads the session's socket
            // itself, if the keeper task is not using the session (a check)
            // and it has not ended (the keeper reports that).
            let taken = {
                let mut slot = self.session.lock();
                match slot.take() {
                    Some(s) if s.is_usable() => Some(s),
                    other => {
                        *slot = other;
                        None
                    }
                }
            };
            if let Some(session) = taken {
                // The keeper, woken by the closed channel, finds the slot
                // empty and ends.
                self.release_detached();
                let (c, name) = (self.coordinator.clone(), self.name.clone());
                let (key, mode) = (self.key, self.mode);
                let limit = c.url().check_interval();
                return caller::block_on(async move {
                    caller::attach(&session.link);
                    unlock(&c, session, &name, key, mode, limit).await
                });
            }
        }
        let rx = self.ask_release();
        runtime::park_on(rx).unwrap_or(Ok(()))
    }

    /// [`release`](Self::release) for async code, on any executor.
    ///
    /// # Errors
    /// As [`release`](Self::release).
    pub(crate) async fn release_async(mut self) -> Result<()> {
        let rx = self.ask_release();
        rx.await.unwrap_or(Ok(()))
    }

    /// Releases without waiting (what dropping does).
    pub(crate) fn release_detached(&mut self) {
        drop(self.release.take());
    }

    fn ask_release(&mut self) -> oneshot::Receiver<Result<()>> {
        let (tx, rx) = oneshot::channel();
        if let Some(release) = self.release.take() {
            let _ = release.send(tx);
        }
        rx
    }
}

impl Drop for PgHold {
    fn drop(&mut self) {
        self.release_detached();
    }
}

impl fmt::Debug for PgHold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgHold")
            .field("name", &self.name)
            .field("key", &self.key)
            .field("mode", &self.mode)
            .field("backend", &self.backend)
            .field("backend_pid", &self.pid)
            .field("fencing_token", &self.token)
            .field("lost", &self.loss())
            .finish()
    }
}

/// The statement of the periodic check. Its comment keeps the lock's name
/// and the time it was taken in `pg_stat_activity.query` for the admin view.
fn check_statement(identity: &str) -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let t = tag(identity);
    format!("SELECT 1{} since={since} */", &t[..t.len() - 3])
}

/// The task that watches a held lock's session.
struct Keeper {
    coordinator: PgCoordinator,
    session: Slot,
    pid: i32,
    name: String,
    check_sql: String,
    key: LockKey,
    mode: Mode,
    status: watch::Sender<Option<LossReason>>,
}

impl Keeper {
    async fn run(self, mut release: oneshot::Receiver<Reply>) {
        let interval = self.coordinator.url().check_interval();
        let Some(mut ended) = self.session.lock().as_ref().map(|s| s.ended.clone()) else {
            return;
        };
        loop {
            tokio::select! {
                reply = &mut release => {
                    // Empty: a blocking release took the session.
                    let Some(session) = self.session.lock().take() else {
                        return;
                    };
                    let result = unlock(
                        &self.coordinator, session, &self.name, self.key, self.mode, interval,
                    ).await;
                    if let Ok(reply) = reply {
                        let _ = reply.send(result);
                    }
                    return;
                }
                _ = ended.changed() => {
                    if self.session.lock().is_none() {
                        // Ended during a blocking release, which reports it.
                        return;
                    }
                    let (reason, detail) = ended
                        .borrow()
                        .clone()
                        .unwrap_or((LossReason::ConnectionLost, "closed".into()));
                    self.lose(reason, &detail);
                    break;
                }
                _ = tokio::time::sleep(interval) => {
                    let Some(session) = self.session.lock().take() else {
                        return;
                    };
                    let check = session.client.simple_query(&self.check_sql);
                    let checked = tokio::time::timeout(interval, check).await;
                    *self.session.lock() = Some(session);
                    match checked {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => {
                            self.lose(reason_of(&e), &describe(&e));
                            break;
                        }
                        Err(_) => {
                            self.lose(
                                LossReason::CheckTimedOut,
                                &format!("no answer within {interval:?}"),
                            );
                            break;
                        }
                    }
                }
            }
        }
        // Lost: the session is dropped here (which closes it); a later
        // release request learns of the loss.
        let reason = *self.status.borrow();
        drop(self.session.lock().take());
        if let Ok(reply) = release.await {
            let _ = reply.send(Err(Error::Backend {
                name: self.name.clone(),
                backend: self.coordinator.shown().to_owned(),
                reason: format!(
                    "the lock had been lost before its release: {}",
                    reason.unwrap_or(LossReason::ConnectionLost)
                ),
                source: None,
            }));
        }
    }

    fn lose(&self, reason: LossReason, detail: &str) {
        tracing::error!(
            target: "lockutils",
            lock = %self.name,
            backend = %self.coordinator.shown(),
            backend_pid = self.pid,
            "PostgreSQL lock lost: {reason} ({detail}); another holder may have it now"
        );
        let _ = self.status.send(Some(reason));
    }

}

/// Unlocks `key` on the lock's session and returns the session to the pool;
/// on a failure the session is closed, which releases the lock.
async fn unlock(
    coordinator: &PgCoordinator,
    session: Session,
    name: &str,
    key: LockKey,
    mode: Mode,
    limit: Duration,
) -> Result<()> {
    let sql = key.call("advisory_unlock", mode);
    let backend = || coordinator.shown().to_owned();
    match tokio::time::timeout(limit, session.scalar(&sql)).await {
        Ok(Ok(Some(t))) if t == "t" => {
            coordinator.pool().checkin(session);
            Ok(())
        }
        Ok(Ok(_)) => Err(Error::Backend {
            name: name.to_owned(),
            backend: backend(),
            reason: "the server says this session did not hold the lock at release".to_owned(),
            source: None,
        }),
        Ok(Err(e)) => Err(Error::Backend {
            name: name.to_owned(),
            backend: backend(),
            reason: "release failed; the session is closed, which releases the lock".to_owned(),
            source: Some(Box::new(e)),
        }),
        Err(_) => Err(Error::Backend {
            name: name.to_owned(),
            backend: backend(),
            reason: format!(
                "no answer to the release within {limit:?}; the session is closed, \
                 which releases the lock"
            ),
            source: None,
        }),
    }
}
