//! `PgCoordinator`: one server (URL) and its sessions, and the server half
//! of every acquisition.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use lockutils_core::{Error, Mode, Result};
use parking_lot::Mutex;
use tokio::sync::OnceCell;
use tokio_postgres::error::SqlState;

use crate::hold::PgHold;
use crate::key::{tag, LockKey};
use crate::runtime;
use crate::session::{Pool, Session};
use crate::url::{Fencing, PgUrl};

/// How long an acquisition may wait on the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Not at all: [`Error::WouldBlock`] if the lock is held.
    Now,
    /// Until this instant: then [`Error::Timeout`], with the server-side
    /// wait already ended (by `lock_timeout`).
    Until(Instant),
    /// As long as it takes.
    Forever,
}

impl Wait {
    /// `Until(now + timeout)`.
    pub fn timeout(timeout: Duration) -> Wait {
        Instant::now()
            .checked_add(timeout)
            .map_or(Wait::Forever, Wait::Until)
    }
}

/// A PostgreSQL server to lock on: its [`PgUrl`], credentials, TLS set-up and
/// a small pool of idle sessions. Cheap to clone (the clones share all that).
///
/// [`acquire`](Self::acquire) is the engine's raw operation: the server lock
/// only, one session per acquisition. [`PgLockOptions`](crate::PgLockOptions)
/// puts the in-process layer in front, so that the threads and tasks of one
/// process queue in memory and use one session per lock name.
#[derive(Clone)]
pub struct PgCoordinator(Arc<Inner>);

struct Inner {
    url: PgUrl,
    shown: String,
    pool: Pool,
    fencing_table: OnceCell<()>,
}

static SHARED: LazyLock<Mutex<HashMap<String, PgCoordinator>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

impl PgCoordinator {
    /// A coordinator for `url`. Opens no session yet.
    ///
    /// # Errors
    /// [`Error::Backend`] for a bad URL or an unreadable `sslrootcert`.
    pub fn new(url: &str) -> Result<Self> {
        Self::from_url(PgUrl::parse_for(url, "")?)
    }

    /// A coordinator for a parsed URL.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn from_url(url: PgUrl) -> Result<Self> {
        let shown = url.to_string();
        let pool = Pool::new(&url).map_err(|reason| Error::Backend {
            name: String::new(),
            backend: shown.clone(),
            reason,
            source: None,
        })?;
        Ok(PgCoordinator(Arc::new(Inner {
            url,
            shown,
            pool,
            fencing_table: OnceCell::new(),
        })))
    }

    /// The process's coordinator for `url`: one per distinct URL string.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn shared(url: &str) -> Result<Self> {
        Self::shared_for(url, "")
    }

    pub(crate) fn shared_for(url: &str, lock: &str) -> Result<Self> {
        let mut map = SHARED.lock();
        if let Some(c) = map.get(url) {
            return Ok(c.clone());
        }
        let c = Self::from_url(PgUrl::parse_for(url, lock)?)?;
        map.insert(url.to_owned(), c.clone());
        Ok(c)
    }

    /// The URL.
    pub fn url(&self) -> &PgUrl {
        &self.0.url
    }

    /// The URL as shown in errors and logs (no password).
    pub(crate) fn shown(&self) -> &str {
        &self.0.shown
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.0.pool
    }

    /// The advisory-lock key of a lock identity, in this URL's layout.
    pub fn key(&self, identity: &str) -> LockKey {
        self.0.url.layout().key(identity)
    }

    /// Closes the idle sessions (held locks keep theirs).
    pub fn close_idle(&self) {
        self.0.pool.clear();
    }

    /// Takes the server lock `identity` in `mode`, parking the thread while
    /// it waits. No in-process layer: see [`PgLockOptions`](crate::PgLockOptions).
    ///
    /// # Errors
    /// [`Error::WouldBlock`] ([`Wait::Now`]), [`Error::Timeout`]
    /// ([`Wait::Until`]), [`Error::InvalidOptions`] (a mode the layout lacks),
    /// [`Error::Backend`] when the server cannot be reached or fails.
    pub fn acquire(&self, identity: &str, mode: Mode, wait: Wait) -> Result<PgHold> {
        runtime::block_on(self.server_acquire(identity.to_owned(), identity.to_owned(), mode, wait))
    }

    /// [`acquire`](Self::acquire) for async code: never blocks the executor,
    /// works on any executor.
    ///
    /// # Cancel safety
    /// Dropping the future cancels the server-side wait (a cancel request),
    /// then releases whatever the session may have obtained in the meantime
    /// (`pg_advisory_unlock_all`), before the session is reused; no lock and
    /// no waiting query is left behind.
    pub fn acquire_async(
        &self,
        identity: &str,
        mode: Mode,
        wait: Wait,
    ) -> impl Future<Output = Result<PgHold>> + Send + 'static {
        runtime::spawn(self.server_acquire(identity.to_owned(), identity.to_owned(), mode, wait))
    }

    /// The server half of an acquisition, run on the crate's runtime.
    pub(crate) fn server_acquire(
        &self,
        name: String,
        identity: String,
        mode: Mode,
        wait: Wait,
    ) -> impl Future<Output = Result<PgHold>> + Send + 'static {
        let c = self.clone();
        let started = Instant::now();
        async move {
            let layout = c.url().layout();
            if !layout.supports(mode) {
                return Err(Error::InvalidOptions {
                    name,
                    reason: "the tooz layout has exclusive locks only (as tooz's driver); \
                             use layout=native for shared locks",
                });
            }
            let key = layout.key(&identity);
            let timeout_error = |deadline: Instant| Error::Timeout {
                name: name.clone(),
                timeout: deadline.saturating_duration_since(started),
            };
            let deadline = match wait {
                Wait::Until(d) => Some(d),
                _ => None,
            };
            let session = match c.pool().checkout(deadline).await {
                Ok(s) => s,
                // Connecting took what was left of the deadline.
                Err(_) if deadline.is_some_and(|d| Instant::now() >= d) => {
                    return Err(timeout_error(deadline.unwrap_or(started)))
                }
                Err(e) => return Err(c.error(&name, "cannot open a session", e)),
            };
            let mut pending = Pending {
                coordinator: c.clone(),
                session: Some(session),
            };
            let t = tag(&identity);
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if wait == Wait::Now || left.is_some_and(|l| l.is_zero()) {
                let try_sql = format!("{}{t}", key.call("try_advisory_lock", mode));
                let got = pending
                    .session()
                    .scalar(&try_sql)
                    .await
                    .map_err(|e| c.error(&name, "cannot try the lock", e))?;
                if got.as_deref() != Some("t") {
                    pending.checkin();
                    return Err(match deadline {
                        Some(d) => timeout_error(d),
                        None => Error::WouldBlock { name },
                    });
                }
            } else {
                // One round trip whether the lock is free or not. With a
                // deadline, one implicit transaction whose `SET LOCAL` bounds
                // this wait only, ended by the server itself; without, the
                // plain call, and the bounded form with no bound if the
                // role's own `lock_timeout` ended it.
                let call = format!("{}{t}", key.call("advisory_lock", mode));
                let bounded = |ms: u128| format!("SET LOCAL lock_timeout = {ms}; {call}");
                let first = match left {
                    Some(l) => bounded(l.as_millis().max(1)),
                    None => call.clone(),
                };
                let mut result = pending.wait(&first, deadline).await;
                if deadline.is_none()
                    && matches!(&result, Some(Err(e)) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE))
                {
                    result = pending.wait(&bounded(0), None).await;
                }
                match result {
                    Some(Ok(())) => {}
                    // The client-side bound passed: `Pending::drop` cancels.
                    None => return Err(timeout_error(deadline.unwrap_or(started))),
                    Some(Err(e)) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => {
                        pending.checkin();
                        return Err(timeout_error(deadline.unwrap_or(started)));
                    }
                    Some(Err(e)) => return Err(c.error(&name, "waiting for the lock failed", e)),
                }
            }
            let session = pending.disarm();
            let token = match c.url().fencing() {
                Fencing::None => None,
                Fencing::Table => match c.next_token(&session, key).await {
                    Ok(t) => Some(t),
                    Err(e) => {
                        // Release by closing the session.
                        drop(session);
                        return Err(c.error(&name, "cannot take a fencing token", e));
                    }
                },
            };
            Ok(PgHold::start(c, session, name, &identity, key, mode, token))
        }
    }

    /// The next fencing token of `key`, from the `lockutils_fencing` table
    /// (created on first use).
    async fn next_token(
        &self,
        session: &Session,
        key: LockKey,
    ) -> std::result::Result<u64, tokio_postgres::Error> {
        self.0
            .fencing_table
            .get_or_try_init(|| async {
                let create = "CREATE TABLE IF NOT EXISTS lockutils_fencing (\
                     kind smallint NOT NULL, lock_key bigint NOT NULL, token bigint NOT NULL, \
                     PRIMARY KEY (kind, lock_key))";
                match session.client.batch_execute(create).await {
                    // Two processes creating it at once: one wins, the
                    // other sees the type exist; the table is there.
                    Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Ok(()),
                    r => r,
                }
            })
            .await?;
        let (kind, k) = fencing_row(key);
        let sql = format!(
            "INSERT INTO lockutils_fencing AS f (kind, lock_key, token) VALUES ({kind}, {k}, 1) \
             ON CONFLICT (kind, lock_key) DO UPDATE SET token = f.token + 1 RETURNING token"
        );
        let token = session.scalar(&sql).await?;
        Ok(token.and_then(|t| t.parse().ok()).unwrap_or(0))
    }

    pub(crate) fn error(&self, name: &str, doing: &str, e: tokio_postgres::Error) -> Error {
        let hint = if e.code() == Some(&SqlState::INVALID_PASSWORD)
            || e.code() == Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION)
        {
            "; check the user and password (URL, PGPASSWORD or .pgpass) and pg_hba.conf"
        } else if e.as_db_error().is_none() && !e.is_closed() {
            "; check that the server runs at the URL's host and port and admits this client"
        } else {
            ""
        };
        Error::Backend {
            name: name.to_owned(),
            backend: self.shown().to_owned(),
            reason: format!("{doing}{hint}"),
            source: Some(Box::new(e)),
        }
    }
}

impl fmt::Debug for PgCoordinator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgCoordinator({})", self.shown())
    }
}

/// The fencing table's row for a key.
pub(crate) fn fencing_row(key: LockKey) -> (i16, i64) {
    match key {
        LockKey::Big(k) => (1, k),
        LockKey::Pair(a, b) => (2, (i64::from(a) << 32) | i64::from(b as u32)),
    }
}

/// A session during an acquisition. Dropped armed (the acquisition failed,
/// timed out on the client side, or its future was dropped), it cancels
/// whatever the session runs and releases anything the session obtained
/// before the session is reused; if that release fails the session is
/// closed instead, which releases everything.
struct Pending {
    coordinator: PgCoordinator,
    session: Option<Session>,
}

impl Pending {
    fn session(&self) -> &Session {
        self.session.as_ref().expect("pending session present")
    }

    /// The session is clean (nothing held, nothing running): reuse it.
    fn checkin(&mut self) {
        if let Some(s) = self.session.take() {
            self.coordinator.pool().checkin(s);
        }
    }

    /// Runs a waiting statement; `None` if the server has not answered 2 s
    /// past `deadline` (the server ends the wait itself at the deadline;
    /// this bound only covers a server that does not answer).
    async fn wait(
        &self,
        sql: &str,
        deadline: Option<Instant>,
    ) -> Option<std::result::Result<(), tokio_postgres::Error>> {
        let waiting = self.session().client.simple_query(sql);
        match deadline {
            Some(d) => tokio::time::timeout_at((d + Duration::from_secs(2)).into(), waiting)
                .await
                .ok()
                .map(|r| r.map(drop)),
            None => Some(waiting.await.map(drop)),
        }
    }

    /// The lock is held: the session now belongs to the hold.
    fn disarm(mut self) -> Session {
        self.session.take().expect("pending session present")
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        let c = self.coordinator.clone();
        runtime::spawn(async move {
            session.cancel(&c.pool().tls).await;
            // Queued behind the cancelled statement on the same session, so
            // it runs once the wait has ended, whichever way it ended.
            match session.scalar("SELECT pg_advisory_unlock_all()").await {
                Ok(_) => c.pool().checkin(session),
                Err(_) => drop(session),
            }
        })
        .detach();
    }
}
