//! `PgCoordinator`: one server (URL) and its sessions, and the server half
//! of every acquisition.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lockutils_core::backend::Capability;
use lockutils_core::{Error, Mode, Result};
use parking_lot::Mutex;
use tokio::sync::{oneshot, OnceCell};
use tokio_postgres::error::SqlState;

use crate::hold::{LossReason, PgHold};
use crate::key::LockKey;
use crate::names::Names;
use crate::session::{OpenError, Pool, Session};
use crate::url::{Fencing, PgUrl};
use crate::{caller, runtime};

/// How long an acquisition may wait on the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Not at all: [`Error::WouldBlock`] if the lock is held.
    Now,
    /// Until this instant: then [`Error::Timeout`], with the server-side
    /// wait already ended (by `lock_timeout`).
    Until(Instant),
    /// As long as it takes.
    Forever,
}

/// A PostgreSQL server to lock on: its [`PgUrl`], credentials, TLS set-up and
/// a small pool of idle sessions. Cheap to clone (the clones share all that).
///
/// Its [`acquire_task`] is the server half of every acquisition, one session
/// each; [`PgBackend`](crate::PgBackend) puts it behind the core's
/// in-process layer.
#[derive(Clone)]
pub(crate) struct PgCoordinator(Arc<Inner>);

struct Inner {
    url: PgUrl,
    shown: String,
    pool: Pool,
    names: Names,
    fencing_table: OnceCell<()>,
    /// The role's own `lock_timeout` or `statement_timeout` ended a plain
    /// untimed wait: untimed waits override them from then on.
    role_timeouts: AtomicBool,
}

static SHARED: LazyLock<Mutex<HashMap<String, PgCoordinator>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

impl PgCoordinator {
    /// A coordinator for a parsed URL. Opens no session yet.
    ///
    /// # Errors
    /// [`Error::Backend`] for an unreadable `sslrootcert`.
    pub(crate) fn from_url(url: PgUrl) -> Result<Self> {
        let shown = url.to_string();
        let pool = Pool::new(&url).map_err(|reason| Error::Backend {
            name: String::new(),
            backend: shown.clone(),
            reason,
            source: None,
        })?;
        Ok(PgCoordinator(Arc::new(Inner {
            names: Names::new(url.layout()),
            url,
            shown,
            pool,
            fencing_table: OnceCell::new(),
            role_timeouts: AtomicBool::new(false),
        })))
    }

    /// The process's coordinator for `url`: one per distinct URL string.
    ///
    /// # Errors
    /// As [`from_url`](Self::from_url), and for a URL that does not parse.
    pub(crate) fn shared(url: &str) -> Result<Self> {
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
    pub(crate) fn url(&self) -> &PgUrl {
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
    pub(crate) fn key(&self, identity: &str) -> LockKey {
        self.0.names.get(identity).key
    }

    /// Closes the idle sessions (held locks keep theirs).
    pub(crate) fn close_idle(&self) {
        self.0.pool.clear();
    }

    /// The server half of an acquisition, run on the crate's runtime.
    pub(crate) fn server_acquire(
        &self,
        name: String,
        identity: String,
        mode: Mode,
        wait: Wait,
        orphan: Option<Orphan>,
    ) -> impl Future<Output = Result<PgHold>> + Send + 'static {
        let c = self.clone();
        let started = Instant::now();
        async move {
            let layout = c.url().layout();
            if !layout.supports(mode) {
                // The error `PgBackend` gives before it gets here (the tooz
                // layout has exclusive locks only, as tooz's driver).
                return Err(Error::Unsupported {
                    name,
                    backend: crate::backend::without_user(c.shown()),
                    capability: Capability::Shared,
                });
            }
            let sql = c.0.names.get(&identity);
            let key = sql.key;
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
                Err(e) => return Err(c.open_error(&name, e)),
            };
            let mut pending = Pending {
                coordinator: c.clone(),
                session: Some(session),
                in_flight: false,
                orphan: orphan.clone(),
            };
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let mut contended = false;
            if wait == Wait::Now || left.is_some_and(|l| l.is_zero()) {
                // Bounded as a wait is (past the deadline, or one check
                // interval): a pooled session's hung server answers nothing.
                let limit = c.url().check_interval();
                let until = deadline.unwrap_or_else(|| Instant::now() + limit);
                let got = match pending.wait(sql.try_lock(mode), Some(until)).await {
                    Some(got) => got.map_err(|e| c.error(&name, "cannot try the lock", e))?,
                    None => {
                        // A try does not wait for the lock: closing the
                        // session ends it, with anything it got, once the
                        // server runs again.
                        drop(pending.session.take());
                        return Err(match deadline {
                            Some(d) => timeout_error(d),
                            None => {
                                c.no_answer(&name, "to the try", limit + Duration::from_secs(2))
                            }
                        });
                    }
                };
                if got.as_deref() != Some("t") {
                    pending.checkin();
                    return Err(match deadline {
                        Some(d) => timeout_error(d),
                        None => Error::WouldBlock { name },
                    });
                }
            } else {
                // One round trip whether the lock is free or not. With a
                // deadline, one implicit transaction whose `SET LOCAL`s
                // bound this wait only (`lock_timeout`, ended by the server
                // itself) and lift the role's `statement_timeout` for it;
                // without, the plain call (prepared once it repeats), and
                // the overriding form with no bound once the role's own
                // `lock_timeout` or `statement_timeout` has ended one.
                let call = sql.wait(mode);
                let overriding = |ms: u32| {
                    format!(
                        "SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = {ms}; {call}"
                    )
                };
                // The statement for what is left until the deadline (or for
                // no deadline), and whether its `lock_timeout` was capped
                // below the deadline.
                let next = || match deadline {
                    Some(d) => {
                        let (ms, capped) = lock_timeout_until(d);
                        (Cow::Owned(overriding(ms)), capped)
                    }
                    None if c.0.role_timeouts.load(Ordering::Relaxed) => {
                        (Cow::Owned(overriding(0)), false)
                    }
                    None => (Cow::Borrowed(call), false),
                };
                let (first, mut capped) = next();
                let mut result = pending.wait(&first, deadline).await;
                let ended_by = |r: &Option<std::result::Result<_, tokio_postgres::Error>>,
                                code: &SqlState| {
                    matches!(r, Some(Err(e)) if e.code() == Some(code))
                };
                // Ended as by a cancel request: an external one (or the
                // server delivering one twice), or the role's
                // `statement_timeout`, which reports the same. Release
                // whatever the statement got and wait again, once, with the
                // role's timeouts lifted.
                if ended_by(&result, &SqlState::QUERY_CANCELED) && Box::pin(pending.reset()).await {
                    if deadline.is_none() {
                        c.0.role_timeouts.store(true, Ordering::Relaxed);
                    }
                    let again;
                    (again, capped) = next();
                    result = pending.wait(&again, deadline).await;
                }
                if deadline.is_none() && ended_by(&result, &SqlState::LOCK_NOT_AVAILABLE) {
                    // The role's own `lock_timeout`.
                    c.0.role_timeouts.store(true, Ordering::Relaxed);
                    result = pending.wait(&overriding(0), None).await;
                }
                // A `lock_timeout` capped at the server's maximum ran out
                // before the deadline: wait again.
                while capped
                    && ended_by(&result, &SqlState::LOCK_NOT_AVAILABLE)
                    && deadline.is_some_and(|d| Instant::now() < d)
                {
                    let again;
                    (again, capped) = next();
                    result = pending.wait(&again, deadline).await;
                }
                match result {
                    Some(Ok(answer)) => contended = answer.as_deref() != Some("free"),
                    // The client-side bound passed: cancel the wait and
                    // wait for that, so that none is left when this returns.
                    None => {
                        Box::pin(pending.clean_up()).await;
                        return Err(timeout_error(deadline.unwrap_or(started)));
                    }
                    Some(Err(e)) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => {
                        // The error comes before the server has left the
                        // lock's queue and ended the statement: one more
                        // round trip on the session waits for both.
                        Box::pin(pending.clean_up()).await;
                        return Err(timeout_error(deadline.unwrap_or(started)));
                    }
                    Some(Err(e)) => return Err(c.error(&name, "waiting for the lock failed", e)),
                }
            }
            let session = pending.disarm();
            let token = match c.url().fencing() {
                Fencing::None => None,
                Fencing::Table => match Box::pin(c.next_token(&session, key, &sql.tag)).await {
                    Ok(t) => Some(t),
                    Err(e) => {
                        // Release by closing the session.
                        drop(session);
                        return Err(c.error(&name, fencing_failed(&e), e));
                    }
                },
            };
            let mut hold = PgHold::start(c, session, name, sql, mode, token);
            hold.contended = contended;
            Ok(hold)
        }
    }

    /// The next fencing token of `key`, from the `lockutils_fencing` table
    /// (created on first use).
    /// Its statement carries the lock's `tag`, as the acquisition's did, so
    /// that the admin view still names the holder's lock.
    async fn next_token(
        &self,
        session: &Session,
        key: LockKey,
        tag: &str,
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
             ON CONFLICT (kind, lock_key) DO UPDATE SET token = f.token + 1 RETURNING token{tag}"
        );
        let token = session.scalar(&sql).await?;
        Ok(token.and_then(|t| t.parse().ok()).unwrap_or(0))
    }

    /// The error of a statement the server did not answer in time; its
    /// session is closed.
    fn no_answer(&self, name: &str, what: &str, limit: Duration) -> Error {
        Error::Backend {
            name: name.to_owned(),
            backend: self.shown().to_owned(),
            reason: format!(
                "no answer {what} within {limit:?}; the session is closed; check that the \
                 server runs and is not overloaded"
            ),
            source: None,
        }
    }

    /// The error of a session that could not be opened.
    pub(crate) fn open_error(&self, name: &str, e: OpenError) -> Error {
        match e {
            OpenError::Server(e) => self.error(name, "cannot open a session", e),
            OpenError::Socket(e) => Error::Backend {
                name: name.to_owned(),
                backend: self.shown().to_owned(),
                reason: match crate::tls::failure(&e) {
                    Some(tls) => format!("cannot open a session: {tls}"),
                    None => format!(
                        "cannot open a session: {e}; check that the server runs at the URL's \
                         host and port and admits this client"
                    ),
                },
                source: Some(Box::new(e)),
            },
        }
    }

    pub(crate) fn error(&self, name: &str, doing: &str, e: tokio_postgres::Error) -> Error {
        if let Some(tls) = crate::tls::failure(&e) {
            return Error::Backend {
                name: name.to_owned(),
                backend: self.shown().to_owned(),
                reason: format!("{doing}: {tls}"),
                source: Some(Box::new(e)),
            };
        }
        let hint = if e.code() == Some(&SqlState::INVALID_PASSWORD)
            || e.code() == Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION)
        {
            "; check the user and password (URL, PGPASSWORD or .pgpass) and pg_hba.conf"
        } else if e.is_closed() || crate::session::reason_of(&e) == LossReason::Terminated {
            // The session ended under the statement; the server is there.
            "; the server ended the session (pg_terminate_backend, a restart or shutdown, an \
             idle timeout): try again"
        } else if e.as_db_error().is_none() {
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

/// PostgreSQL's largest `lock_timeout` (an `int` of milliseconds, about
/// 24.8 days).
const MAX_LOCK_TIMEOUT_MS: u32 = i32::MAX as u32;

/// The `lock_timeout` of a wait until `deadline`: the milliseconds left (at
/// least 1, as 0 would mean none), capped at [`MAX_LOCK_TIMEOUT_MS`]; and
/// whether it was capped (the server then ends the wait before the
/// deadline, and the acquisition waits again).
fn lock_timeout_until(deadline: Instant) -> (u32, bool) {
    lock_timeout_for(deadline.saturating_duration_since(Instant::now()))
}

fn lock_timeout_for(left: Duration) -> (u32, bool) {
    match u32::try_from(left.as_millis().max(1)) {
        Ok(ms) if ms <= MAX_LOCK_TIMEOUT_MS => (ms, false),
        _ => (MAX_LOCK_TIMEOUT_MS, true),
    }
}

/// What failed when a held lock's fencing token could not be taken, with
/// the fix when the role lacks the privileges `fencing=table` needs.
fn fencing_failed(e: &tokio_postgres::Error) -> &'static str {
    if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) {
        "cannot take a fencing token, so the lock is released: fencing=table needs CREATE on \
         the schema once, or the table lockutils_fencing created beforehand and GRANT SELECT, \
         INSERT, UPDATE ON lockutils_fencing TO this role"
    } else {
        "cannot take a fencing token, so the lock is released"
    }
}

/// The fencing table's row for a key.
pub(crate) fn fencing_row(key: LockKey) -> (i16, i64) {
    match key {
        LockKey::Big(k) => (1, k),
        LockKey::Pair(a, b) => (2, (i64::from(a) << 32) | i64::from(b as u32)),
    }
}

/// Where a dropped [`Pending`] leaves its session for the task that
/// cancels the acquisition to clean up before it ends (see [`acquire_task`]).
pub(crate) type Orphan = Arc<Mutex<Option<(Session, bool)>>>;

/// How long cleaning up an abandoned acquisition may take: the cancel
/// request and the round trip after it, each bounded by the URL's
/// `check_interval`. Past it the session is closed instead (see
/// [`Pending::clean_up`]).
pub(crate) fn clean_up_limit(url: &PgUrl) -> Duration {
    url.check_interval() * 2
}

/// A session during an acquisition. Dropped armed (the acquisition failed,
/// or its future was dropped), it cancels whatever the session runs and
/// releases anything the session obtained before the session is reused (or
/// closed, if it was sent a cancel request; see [`clean_up`]): in the task
/// given its `orphan` slot (which waits for that), or else in a task of its
/// own.
struct Pending {
    coordinator: PgCoordinator,
    session: Option<Session>,
    /// A waiting statement was sent and has not answered.
    in_flight: bool,
    orphan: Option<Orphan>,
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
        &mut self,
        sql: &str,
        deadline: Option<Instant>,
    ) -> Option<std::result::Result<Option<String>, tokio_postgres::Error>> {
        self.in_flight = true;
        let waiting = self.session().scalar(sql);
        let out = match deadline {
            Some(d) => tokio::time::timeout_at((d + Duration::from_secs(2)).into(), waiting)
                .await
                .ok(),
            None => Some(waiting.await),
        };
        self.in_flight = out.is_none();
        out
    }

    /// Releases whatever the session holds, after a statement ended (a
    /// cancelled one may have taken the lock first); whether it did.
    async fn reset(&mut self) -> bool {
        let limit = self.coordinator.url().check_interval();
        for _ in 0..2 {
            let unlock = self.session().scalar("SELECT pg_advisory_unlock_all()");
            match tokio::time::timeout(limit, unlock).await {
                Ok(Ok(_)) => return true,
                Ok(Err(e)) if e.code() == Some(&SqlState::QUERY_CANCELED) => continue,
                _ => break,
            }
        }
        false
    }

    /// Cancels what the session runs and releases what it holds, waiting
    /// for both (see [`clean_up`]).
    async fn clean_up(&mut self) {
        if let Some(session) = self.session.take() {
            clean_up(&self.coordinator, session, self.in_flight).await;
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
        if let Some(orphan) = &self.orphan {
            *orphan.lock() = Some((session, self.in_flight));
            return;
        }
        let c = self.coordinator.clone();
        let in_flight = self.in_flight;
        runtime::spawn(async move { clean_up(&c, session, in_flight).await }).detach();
    }
}

/// Ends whatever `session` runs and releases what it holds, and returns once
/// the server has done both: a cancel request if a statement may still be
/// waiting, then `pg_advisory_unlock_all()`, which the server runs after the
/// waiting statement has ended (whichever way it ended), so its answer means
/// no waiting statement and no lock are left. The session is then reused,
/// unless it was sent a cancel request: that one is closed. The server
/// delivers a cancel request asynchronously, at times after the statement it
/// was meant for has ended (or twice), so on a reused session it could end
/// whatever statement runs next (another acquisition, a release).
///
/// Each step is bounded by `check_interval`; past that (a server that does
/// not answer) the session is closed instead. The server then ends a wait it
/// is still in only when the lock comes its way (it finds the connection
/// closed when it answers, and the lock dies with the session at once).
async fn clean_up(c: &PgCoordinator, session: Session, in_flight: bool) {
    let limit = c.url().check_interval();
    if in_flight
        && tokio::time::timeout(limit, c.pool().cancel(&session))
            .await
            .is_err()
    {
        return drop(session);
    }
    // A cancel request that arrives late can cancel this statement instead
    // of the wait: then it is run again.
    for _ in 0..2 {
        match tokio::time::timeout(limit, session.scalar("SELECT pg_advisory_unlock_all()")).await {
            // Closed once sent a cancel request (which may still come).
            Ok(Ok(_)) if in_flight => return drop(session),
            Ok(Ok(_)) => return c.pool().checkin(session),
            Ok(Err(e)) if e.code() == Some(&SqlState::QUERY_CANCELED) => continue,
            _ => break,
        }
    }
    drop(session);
}

/// The server half of an acquisition with its clean-up: the future
/// resolves once a session the acquisition abandoned (cancelled through the
/// returned sender, or on an error) has been cleaned up; `None` when
/// cancelled.
fn acquisition(
    c: &PgCoordinator,
    name: String,
    identity: String,
    mode: Mode,
    wait: Wait,
) -> (
    impl Future<Output = Option<Result<PgHold>>> + Send + 'static,
    oneshot::Sender<()>,
) {
    let (cancel, cancelled) = oneshot::channel::<()>();
    let orphan: Orphan = Arc::default();
    let acquiring = c.server_acquire(name, identity, mode, wait, Some(orphan.clone()));
    let coordinator = c.clone();
    let fut = async move {
        let got = tokio::select! {
            biased;
            got = acquiring => Some(got),
            _ = cancelled => None,
        };
        // The acquisition's future is dropped: a session it abandoned
        // (cancelled, or on an error) is in the orphan slot.
        let left = orphan.lock().take();
        if let Some((session, in_flight)) = left {
            Box::pin(clean_up(&coordinator, session, in_flight)).await;
        }
        got
    };
    (fut, cancel)
}

/// Runs the server half of an acquisition on the crate's runtime as a task
/// that can be cancelled and waited for: dropping the returned
/// [`AcquireTask`] cancels it and waits until its clean-up is done.
pub(crate) fn acquire_task(
    c: &PgCoordinator,
    name: String,
    identity: String,
    mode: Mode,
    wait: Wait,
) -> AcquireTask {
    let (fut, cancel) = acquisition(c, name, identity, mode, wait);
    AcquireTask {
        task: Some(runtime::spawn(fut)),
        cancel: Some(cancel),
        limit: clean_up_limit(c.url()),
    }
}

/// Runs the server half of an acquisition, the same future as
/// [`acquire_task`]'s, on the calling thread, which reads and writes the
/// session's socket itself (see [`crate::caller`]); on the crate's runtime
/// thread, on the runtime as [`acquire_task`] does.
pub(crate) fn acquire_blocking(
    c: &PgCoordinator,
    name: String,
    identity: String,
    mode: Mode,
    wait: Wait,
) -> Result<PgHold> {
    if !caller::usable() {
        return runtime::park_on(acquire_task(c, name, identity, mode, wait));
    }
    // Nothing cancels a blocking acquisition: the sender lives until it ends.
    let (fut, _cancel) = acquisition(c, name, identity, mode, wait);
    caller::block_on(fut).expect("acquisition not cancelled")
}

/// An acquisition running on the crate's runtime (see [`acquire_task`]).
pub(crate) struct AcquireTask {
    task: Option<runtime::Task<Option<Result<PgHold>>>>,
    cancel: Option<oneshot::Sender<()>>,
    limit: Duration,
}

impl Future for AcquireTask {
    type Output = Result<PgHold>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<PgHold>> {
        let task = self
            .task
            .as_mut()
            .expect("AcquireTask polled after completion");
        match Pin::new(task).poll(cx) {
            Poll::Ready(got) => {
                self.task = None;
                // Not cancelled, so the task returned the acquisition's result.
                Poll::Ready(got.expect("acquisition not cancelled"))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for AcquireTask {
    /// Cancels the acquisition and waits, at most twice `check_interval`
    /// plus a second, until the server has ended its wait and released
    /// whatever it got; past that the clean-up goes on in the background.
    /// A lock obtained just as the future was dropped is released, waiting
    /// for the server as well.
    fn drop(&mut self) {
        let Some(mut task) = self.task.take() else {
            return;
        };
        drop(self.cancel.take());
        if runtime::on_runtime_thread() {
            // Parking here would stop the task waited for.
            return task.detach();
        }
        let until = Instant::now() + self.limit + Duration::from_secs(1);
        match runtime::park_on_until(&mut task, Some(until)) {
            Some(Some(Ok(hold))) => {
                let _ = hold.release();
            }
            Some(_) => {}
            None => {
                // Not aborted: the clean-up finishes (or closes the session)
                // on the runtime.
                task.detach();
                tracing::warn!(
                target: "lockutils",
                "cancelling a PostgreSQL lock acquisition took more than {:?}; its clean-up \
                 goes on in the background",
                    self.limit
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_timeout_past_the_servers_range_is_capped() {
        assert_eq!(lock_timeout_for(Duration::ZERO), (1, false));
        assert_eq!(lock_timeout_for(Duration::from_micros(1500)), (1, false));
        assert_eq!(lock_timeout_for(Duration::from_secs(30)), (30_000, false));
        let max = Duration::from_millis(i32::MAX as u64);
        assert_eq!(lock_timeout_for(max), (i32::MAX as u32, false));
        assert_eq!(
            lock_timeout_for(max + Duration::from_millis(1)),
            (i32::MAX as u32, true)
        );
        let days_30 = Duration::from_secs(30 * 24 * 3600);
        assert_eq!(lock_timeout_for(days_30), (i32::MAX as u32, true));
        assert_eq!(lock_timeout_for(Duration::MAX), (i32::MAX as u32, true));
    }

    #[test]
    fn shared_in_the_tooz_layout_is_unsupported_on_the_server_path_too() {
        // Refused before any session is opened: no server needed.
        let c = PgCoordinator::from_url(
            PgUrl::parse_for("postgresql://u@127.0.0.1:1/db?layout=tooz", "x").unwrap(),
        )
        .unwrap();
        let got = runtime::block_on(c.server_acquire(
            "x".into(),
            "x".into(),
            Mode::Shared,
            Wait::Now,
            None,
        ));
        let e = got.unwrap_err();
        assert!(
            matches!(
                &e,
                Error::Unsupported {
                    capability: Capability::Shared,
                    backend,
                    ..
                } if backend == "postgresql://127.0.0.1:1/db?layout=tooz"
            ),
            "{e:?}"
        );
    }
}
