//! Server sessions: opening them (credentials, TLS, keep-alive), watching
//! them close, and the small pool that reuses idle ones.

use std::sync::Arc;
use std::time::{Duration, Instant};

use native_tls::{Certificate, TlsConnector};
use parking_lot::Mutex;
use postgres_native_tls::MakeTlsConnector;
use tokio::sync::watch;
use tokio_postgres::error::SqlState;
use tokio_postgres::{CancelToken, Client, Config, SimpleQueryMessage};

use crate::hold::LossReason;
use crate::url::{PgUrl, SslMode};

/// Why a session ended, with the server's or the socket's words.
pub(crate) type Ended = Option<(LossReason, Arc<str>)>;

/// One server session: at most one advisory lock held or awaited on it at a
/// time, so that its loss, its cancellation and `pg_advisory_unlock_all`
/// concern that lock alone.
pub(crate) struct Session {
    pub(crate) client: Client,
    cancel: CancelToken,
    /// The server process serving this session (`pg_backend_pid()`).
    pub(crate) pid: i32,
    /// Set once the connection is gone.
    pub(crate) ended: watch::Receiver<Ended>,
}

impl Session {
    pub(crate) fn is_usable(&self) -> bool {
        self.ended.borrow().is_none() && !self.client.is_closed()
    }

    /// Asks the server to cancel whatever this session is running (a new
    /// connection carrying the session's secret key). Errors are ignored:
    /// the caller follows up on the session itself.
    pub(crate) async fn cancel(&self, tls: &MakeTlsConnector) {
        let _ = self.cancel.cancel_query(tls.clone()).await;
    }

    /// Runs one simple-protocol query and returns its first column of its
    /// first row, as text.
    pub(crate) async fn scalar(&self, sql: &str) -> Result<Option<String>, tokio_postgres::Error> {
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
    config: Config,
    pub(crate) tls: MakeTlsConnector,
    idle: Mutex<Vec<Session>>,
    max_idle: usize,
}

impl Pool {
    pub(crate) fn new(url: &PgUrl) -> Result<Pool, String> {
        let mut config = Config::new();
        config
            .host(url.host())
            .port(url.port())
            .application_name(url.application_name())
            .connect_timeout(url.connect_timeout())
            // Keep-alive probes after one check interval of silence, then
            // every second; the kernel gives up after three unanswered ones.
            .keepalives(true)
            .keepalives_idle(url.check_interval())
            .keepalives_interval(Duration::from_secs(1))
            .keepalives_retries(3)
            // Data sent but not acknowledged for this long breaks the
            // connection too (Linux).
            .tcp_user_timeout(url.check_interval() * 2)
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
            tls: tls_connector(url)?,
            idle: Mutex::new(Vec::new()),
            max_idle: url.pool(),
        })
    }

    /// An idle session, or a new one opened before `deadline`.
    pub(crate) async fn checkout(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Session, tokio_postgres::Error> {
        loop {
            let Some(s) = self.idle.lock().pop() else {
                break;
            };
            if s.is_usable() {
                return Ok(s);
            }
        }
        let mut config = self.config.clone();
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            let limit = config
                .get_connect_timeout()
                .map_or(left, |c| (*c).min(left));
            config.connect_timeout(limit.max(Duration::from_millis(1)));
        }
        let (client, connection) = config.connect(self.tls.clone()).await?;
        let (tx, ended) = watch::channel(None);
        tokio::spawn(async move {
            let why = match connection.await {
                Ok(()) => (
                    LossReason::ConnectionLost,
                    Arc::from("the server closed the connection"),
                ),
                Err(e) => (reason_of(&e), Arc::from(describe(&e))),
            };
            let _ = tx.send(Some(why));
        });
        let cancel = client.cancel_token();
        let mut session = Session {
            client,
            cancel,
            pid: 0,
            ended,
        };
        session.pid = session
            .scalar("SELECT pg_backend_pid()")
            .await?
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        Ok(session)
    }

    /// Keeps `session` for reuse if it is healthy and the pool has room.
    pub(crate) fn checkin(&self, session: Session) {
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

fn tls_connector(url: &PgUrl) -> Result<MakeTlsConnector, String> {
    let mut b = TlsConnector::builder();
    if let Some(path) = url.ssl_root_cert() {
        let pem = std::fs::read(path).map_err(|e| {
            format!(
                "cannot read sslrootcert {}: {e}; give a readable PEM file",
                path.display()
            )
        })?;
        let cert = Certificate::from_pem(&pem).map_err(|e| {
            format!(
                "sslrootcert {} is not a PEM certificate: {e}",
                path.display()
            )
        })?;
        b.add_root_certificate(cert);
    }
    match url.ssl_mode() {
        SslMode::Disable | SslMode::Prefer => {
            b.danger_accept_invalid_certs(true);
        }
        SslMode::Require if url.ssl_root_cert().is_none() => {
            b.danger_accept_invalid_certs(true);
        }
        SslMode::Require | SslMode::VerifyCa => {
            b.danger_accept_invalid_hostnames(true);
        }
        _ => {}
    }
    let connector = b.build().map_err(|e| format!("cannot set up TLS: {e}"))?;
    Ok(MakeTlsConnector::new(connector))
}
