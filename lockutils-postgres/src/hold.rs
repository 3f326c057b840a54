//! A lock held on the server: its session, watched by the session's driver
//! (see [`Watch`]), and its release.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lockutils_core::{Error, Mode, Result};
use tokio::sync::watch;

use crate::coordinator::PgCoordinator;
use crate::key::LockKey;
use crate::names::NameSql;
use crate::session::{Session, Watch};
use crate::{caller, runtime};

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

/// A lock held on the PostgreSQL server, without the in-process layer (which
/// the core's guards hold beside it).
///
/// The lock lives in one server session of its own. The session's driver
/// on the crate's runtime checks it every `check_interval` and learns at
/// once when the server closes it; a loss is logged at `ERROR` (target
/// `lockutils`) and reported by [`loss`](Self::loss) and
/// [`lost`](Self::lost).
///
/// Dropping the hold releases the lock without waiting for the server's
/// answer; [`release`](Self::release) waits for it.
pub(crate) struct PgHold {
    name: Arc<str>,
    /// The name's key and statements.
    sql: Arc<NameSql>,
    mode: Mode,
    pid: i32,
    token: Option<u64>,
    status: watch::Receiver<Option<LossReason>>,
    coordinator: PgCoordinator,
    /// `None` once released.
    session: Option<Session>,
    /// The acquisition waited for another holder.
    pub(crate) contended: bool,
}

impl PgHold {
    pub(crate) fn start(
        coordinator: PgCoordinator,
        session: Session,
        name: String,
        sql: Arc<NameSql>,
        mode: Mode,
        token: Option<u64>,
    ) -> PgHold {
        let (status_tx, status) = watch::channel(None);
        let name: Arc<str> = name.into();
        session.link.watch(Watch {
            status: status_tx,
            client: Arc::downgrade(&session.client),
            tag: sql.tag.clone(),
            since: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis()),
            name: name.clone(),
            backend: coordinator.clone(),
            pid: session.pid,
        });
        PgHold {
            name,
            sql,
            mode,
            pid: session.pid,
            token,
            status,
            coordinator,
            session: Some(session),
            contended: false,
        }
    }

    /// The advisory-lock key.
    pub(crate) fn key(&self) -> LockKey {
        self.sql.key
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

    /// Releases the lock and waits for the server to confirm: on this
    /// thread, which reads the session's socket itself (see
    /// [`crate::caller`]).
    ///
    /// # Errors
    /// [`Error::Backend`] if the lock had been lost, or the server did not
    /// confirm the release (the session is then closed, which releases it).
    pub(crate) fn release(mut self) -> Result<()> {
        let Some(unlock) = self.unlock() else {
            return self.lost_error();
        };
        if caller::usable() {
            caller::block_on(unlock)
        } else {
            runtime::block_on(unlock)
        }
    }

    /// [`release`](Self::release) for async code, on any executor (the
    /// unlock runs on the crate's runtime).
    ///
    /// # Errors
    /// As [`release`](Self::release).
    pub(crate) async fn release_async(mut self) -> Result<()> {
        match self.unlock() {
            Some(unlock) => runtime::spawn(unlock).await,
            None => self.lost_error(),
        }
    }

    /// Stops the watch and returns the unlock to run, or `None` (the
    /// session closed) if the lock had been lost.
    fn unlock(&mut self) -> Option<impl Future<Output = Result<()>> + Send + 'static> {
        let session = self.session.take()?;
        // From here on no loss is reported; one reported before shows.
        session.link.unwatch();
        if self.loss().is_some() {
            return None;
        }
        let (c, name) = (self.coordinator.clone(), self.name.clone());
        let (sql, mode) = (self.sql.clone(), self.mode);
        Some(async move {
            // Driven by this thread if a blocking caller runs it.
            caller::attach(&session.link);
            let limit = c.url().check_interval();
            unlock(&c, session, &name, sql.unlock(mode), limit).await
        })
    }

    fn lost_error(&self) -> Result<()> {
        Err(Error::Backend {
            name: self.name.to_string(),
            backend: self.coordinator.shown().to_owned(),
            reason: format!(
                "the lock had been lost before its release: {}",
                self.loss().unwrap_or(LossReason::ConnectionLost)
            ),
            source: None,
        })
    }
}

impl Drop for PgHold {
    /// Releases without waiting: the unlock runs on the crate's runtime.
    fn drop(&mut self) {
        if let Some(unlock) = self.unlock() {
            runtime::spawn(async move {
                let _ = unlock.await;
            })
            .detach();
        }
    }
}

impl fmt::Debug for PgHold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgHold")
            .field("name", &self.name)
            .field("key", &self.sql.key)
            .field("mode", &self.mode)
            .field("backend", &self.coordinator.shown())
            .field("backend_pid", &self.pid)
            .field("fencing_token", &self.token)
            .field("lost", &self.loss())
            .finish()
    }
}

/// The statement of the periodic check, from the lock's
/// [`tag`](crate::key::tag) and when it was taken (ms since the epoch). Its
/// comment keeps both in `pg_stat_activity.query` for the admin view.
pub(crate) fn check_statement(tag: &str, since: u128) -> String {
    format!("SELECT 1{} since={since} */", &tag[..tag.len() - 3])
}

/// Unlocks `key` on the lock's session and returns the session to the pool;
/// on a failure the session is closed, which releases the lock.
async fn unlock(
    coordinator: &PgCoordinator,
    session: Session,
    name: &str,
    sql: &str,
    limit: Duration,
) -> Result<()> {
    let backend = || coordinator.shown().to_owned();
    match tokio::time::timeout(limit, session.scalar(sql)).await {
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
