//! Server sessions: opening them (credentials, TLS, keep-alive), watching
//! them close, and the small pool that reuses idle ones.

mod deferred;
mod link;
mod statements;
mod stream;

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{CancelToken, Client, Config, SimpleQueryMessage};

pub(crate) use link::{Link, Watch};
use statements::{Plan, Statements};
use stream::{Mode, SessionStream};

use crate::hold::LossReason;
use crate::url::{PgUrl, SslMode};

/// Why a session ended, with the server's or the socket's words.
pub(crate) type Ended = Option<(LossReason, Arc<str>)>;

/// One server session: at most one advisory lock held or awaited on it at a
/// time, so that its loss, its cancellation and `pg_advisory_unlock_all`
/// concern that lock alone.
pub(crate) struct Session {
    /// Shared (weakly) with the link's checks while a lock is held.
    pub(crate) client: Arc<Client>,
    cancel: CancelToken,
    /// The server process serving this session (`pg_backend_pid()`).
    pub(crate) pid: i32,
    /// Set once the connection is gone.
    pub(crate) ended: watch::Receiver<Ended>,
    /// Who drives the connection.
    pub(crate) link: Arc<Link>,
    statements: Mutex<Statements>,
}

impl Drop for Session {
    fn drop(&mut self) {
        // The connection ends once the client is gone, if someone polls it.
        self.link.unpark();
    }
}

impl Session {
    pub(crate) fn is_usable(&self) -> bool {
        self.ended.borrow().is_none() && !self.client.is_closed()
    }

    /// Runs one statement and returns its first column of its first row,
    /// as text; prepared the second time the session runs it (see
    /// [`statements`]).
    pub(crate) async fn scalar(&self, sql: &str) -> Result<Option<String>, tokio_postgres::Error> {
        let plan = self.statements.lock().plan(sql);
        let statement = match plan {
            // Boxed: the prepared path is the one that repeats.
            Plan::Simple => return Box::pin(self.simple_scalar(sql)).await,
            Plan::Run(s) => s,
            Plan::Prepare => {
                // Boxed: once per statement and session.
                let s = Box::pin(self.client.prepare(sql)).await?;
                if !self.statements.lock().prepared(sql, &s) {
                    return Box::pin(self.simple_scalar(sql)).await;
                }
                s
            }
        };
        match self.client.query(&statement, &[]).await?.first() {
            Some(row) => statements::text_of(row),
            None => Ok(None),
        }
    }

    async fn simple_scalar(&self, sql: &str) -> Result<Option<String>, tokio_postgres::Error> {
        for m in self.client.simple_query(sql).await? {
            if let SimpleQueryMessage::Row(row) = m {
                return Ok(row.get(0).map(str::to_owned));
            }
        }
        Ok(None)
    }
}

/// What opens sessions for one URL, and the idle ones kept for reuse.
pub(crate) struct Pool {
    /// Credentials, database, application name and `sslmode`; the socket
    /// is opened by [`SessionStream::connect`].
    config: Config,
    host: String,
    port: u16,
    connect_timeout: Duration,
    check_interval: Duration,
    pub(crate) tls: crate::tls::Connector,
    idle: Mutex<Vec<Session>>,
    max_idle: usize,
}

impl Pool {
    pub(crate) fn new(url: &PgUrl) -> Result<Pool, String> {
        let mut config = Config::new();
        config
            .application_name(url.application_name())
            .ssl_mode(match url.ssl_mode() {
                SslMode::Disable => tokio_postgres::config::SslMode::Disable,
                SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                _ => tokio_postgres::config::SslMode::Require,
            });
        let user = url
            .user()
            .map(str::to_owned)
            .or_else(|| std::env::var("PGUSER").ok().filter(|u| !u.is_empty()));
        if let Some(user) = &user {
            config.user(user);
        }
        let dbname = url.dbname().map(str::to_owned).or_else(|| user.clone());
        if let Some(db) = &dbname {
            config.dbname(db);
        }
        if let Some(password) = crate::pgpass::password(url, user.as_deref(), dbname.as_deref()) {
            config.password(password);
        }
        Ok(Pool {
            config,
            host: url.host().to_owned(),
            port: url.port(),
            connect_timeout: url.connect_timeout(),
            check_interval: url.check_interval(),
            tls: crate::tls::connector(url)?,
            idle: Mutex::new(Vec::new()),
            max_idle: url.pool(),
        })
    }

    /// An idle session, or a new one opened before `deadline`.
    pub(crate) async fn checkout(&self, deadline: Option<Instant>) -> Result<Session, OpenError> {
        loop {
            let Some(s) = self.idle.lock().pop() else {
                break;
            };
            // Driven by this caller, which has read what came meanwhile,
            // or else by the runtime, which may not have yet.
            let read = crate::caller::attach(&s.link);
            if s.is_usable() && (read || !s.link.has_unread()) {
                return Ok(s);
            }
        }
        // Boxed: opening a session is rare, and its future is kilobytes,
        // which every acquisition's future would carry otherwise.
        Box::pin(self.open(deadline)).await
    }

    /// A new session, opened before `deadline` and within `connect_timeout`:
    /// the whole of it, not the TCP connection only, since a stopped or hung
    /// server's kernel completes the handshake and then nothing answers.
    async fn open(&self, deadline: Option<Instant>) -> Result<Session, OpenError> {
        let limit = match deadline {
            Some(d) => self
                .connect_timeout
                .min(d.saturating_duration_since(Instant::now())),
            None => self.connect_timeout,
        }
        .max(Duration::from_millis(1));
        match tokio::time::timeout(limit, self.open_within(limit)).await {
            Ok(opened) => opened,
            Err(_) => Err(OpenError::Socket(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the server did not answer within {limit:?}"),
            ))),
        }
    }

    async fn open_within(&self, limit: Duration) -> Result<Session, OpenError> {
        // Keep-alive probes after one check interval of silence, then every
        // second; the kernel gives up after three unanswered ones, and data
        // unacknowledged for two check intervals breaks the connection too.
        let stream = SessionStream::connect(&self.host, self.port, limit, self.check_interval)
            .await
            .map_err(OpenError::Socket)?;
        let mode = stream.mode();
        let fd = stream.raw_fd();
        let tls = MarkTls {
            inner: MakeTlsConnect::<SessionStream>::make_tls_connect(
                &mut self.tls.clone(),
                &self.host,
            )
            .map_err(|e| OpenError::Socket(std::io::Error::other(e)))?,
            mode: mode.clone(),
        };
        let (client, connection) = self.config.connect_raw(stream, tls).await?;
        let (link, ended) = Link::start(Box::pin(connection), mode, fd, self.check_interval);
        crate::caller::attach(&link);
        let cancel = client.cancel_token();
        let mut session = Session {
            client: Arc::new(client),
            cancel,
            pid: 0,
            ended,
            link,
            statements: Mutex::default(),
        };
        session.pid = session
            .scalar(&first_statement(self.check_interval))
            .await?
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        Ok(session)
    }

    /// Asks the server to cancel whatever `session` is running (a new
    /// connection carrying the session's secret key). Errors are ignored:
    /// the caller follows up on the session itself.
    pub(crate) async fn cancel(&self, session: &Session) {
        let Ok(stream) = SessionStream::connect(
            &self.host,
            self.port,
            self.connect_timeout,
            self.check_interval,
        )
        .await
        else {
            return;
        };
        let Ok(tls) =
            MakeTlsConnect::<SessionStream>::make_tls_connect(&mut self.tls.clone(), &self.host)
        else {
            return;
        };
        let _ = session.cancel.cancel_query_raw(stream, tls).await;
    }

    /// Keeps `session` for reuse if it is healthy and the pool has room.
    pub(crate) fn checkin(&self, session: Session) {
        // In the pool the runtime drives it, whoever takes it next.
        crate::caller::detach(&session.link);
        if session.is_usable() {
            let mut idle = self.idle.lock();
            if idle.len() < self.max_idle {
                idle.push(session);
            }
        }
    }

    /// Closes the idle sessions.
    pub(crate) fn clear(&self) {
        self.idle.lock().clear();
    }
}

/// A new session's first statement: its server process, and settings.
///
/// The server's TCP keep-alive and (PostgreSQL 12+) `tcp_user_timeout`: a
/// holder whose host dies (no FIN, no RST) is otherwise dropped, and its
/// lock freed, only when the server's system default gives up, over two
/// hours later. They give up after 5 × `check_interval` of silence (idle
/// 2 ×, then 3 probes 1 × apart) or 4 × of unacknowledged data: never before
/// a live holder's own side reports the loss, within 2 × (see [`Link`]), so
/// that the server does not free a lock its holder still believes held.
///
/// On PostgreSQL 14 and later, no `idle_session_timeout` (a role's would end
/// a held lock's session between its checks, and the lock with it).
fn first_statement(check_interval: Duration) -> String {
    let idle = stream::keepalive_idle(check_interval * 2).as_secs();
    let interval = stream::keepalive_idle(check_interval).as_secs();
    let user_timeout = stream::user_timeout(check_interval * 2).as_millis();
    format!(
        "SELECT pg_backend_pid(), \
         set_config('tcp_keepalives_idle', '{idle}', false), \
         set_config('tcp_keepalives_interval', '{interval}', false), \
         set_config('tcp_keepalives_count', '3', false), \
         CASE WHEN current_setting('server_version_num')::int >= 120000 \
         THEN set_config('tcp_user_timeout', '{user_timeout}', false) END, \
         CASE WHEN current_setting('server_version_num')::int >= 140000 \
         THEN set_config('idle_session_timeout', '0', false) END"
    )
}

/// Why a session could not be opened.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// No socket to the server (or no TLS set-up for it).
    Socket(std::io::Error),
    /// The server refused the session or its first query.
    Server(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for OpenError {
    fn from(e: tokio_postgres::Error) -> Self {
        OpenError::Server(e)
    }
}

/// Why a session failed, from the error that ended it.
pub(crate) fn reason_of(e: &tokio_postgres::Error) -> LossReason {
    match e.code() {
        Some(c)
            if *c == SqlState::ADMIN_SHUTDOWN
                || *c == SqlState::CRASH_SHUTDOWN
                || *c == SqlState::IDLE_SESSION_TIMEOUT
                || *c == SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT =>
        {
            LossReason::Terminated
        }
        _ => LossReason::ConnectionLost,
    }
}

/// The error with the server's message, which `tokio_postgres::Error`'s own
/// `Display` leaves to its source.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} {} ({})", db.severity(), db.message(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(src) => format!("{e}: {src}"),
            None => e.to_string(),
        },
    }
}

/// The TLS connector, which records in the session's [`Mode`] that the
/// server agreed to TLS (the runtime then keeps driving the session).
struct MarkTls<T> {
    inner: T,
    mode: Arc<Mode>,
}

impl<T: TlsConnect<SessionStream>> TlsConnect<SessionStream> for MarkTls<T> {
    type Stream = T::Stream;
    type Error = T::Error;
    type Future = T::Future;

    fn connect(self, stream: SessionStream) -> T::Future {
        self.mode.set_tls();
        self.inner.connect(stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
    fn the_server_gives_up_on_a_silent_client_after_the_client_does() {
        let url = std::env::var("LOCKUTILS_TEST_POSTGRES_URL")
            .expect("LOCKUTILS_TEST_POSTGRES_URL is not set: run scripts/postgres.sh start");
        let sep = if url.contains('?') { '&' } else { '?' };
        let url = PgUrl::parse_for(&format!("{url}{sep}check_interval=2"), "").unwrap();
        let pool = Pool::new(&url).unwrap();
        let got = crate::runtime::block_on(async move {
            let s = pool.checkout(None).await.expect("a session");
            s.scalar(
                "SELECT concat_ws(',', current_setting('tcp_keepalives_idle'), \
                 current_setting('tcp_keepalives_interval'), \
                 current_setting('tcp_keepalives_count'), current_setting('tcp_user_timeout'))",
            )
            .await
            .map_err(|e| e.to_string())
        });
        // Probes after 4 s of silence, every 2 s, three of them; data
        // unacknowledged for 8 s: later than the client gives up (4 s).
        assert_eq!(got.unwrap().as_deref(), Some("4,2,3,8000"));
    }
}
