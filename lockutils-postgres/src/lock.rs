//! `PgLockOptions`: a PostgreSQL lock taken in-process first and then on the
//! server, under one deadline.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use lockutils_core::{AsyncLockGuard, Error, LockGuard, LockOptions, Mode, Registry, Result};

use crate::coordinator::{PgCoordinator, Wait};
use crate::hold::{LossReason, PgHold};
use crate::key::LockKey;
use crate::runtime;
use crate::url::PgUrl;

/// The environment variable read when no URL is given.
pub const COORDINATION_URL_ENV: &str = "LOCKUTILS_COORDINATION_URL";

/// A PostgreSQL lock to take: the same name, prefix, timeout, blocking,
/// mode and fairness as [`LockOptions`], plus where the server is.
///
/// Taking it takes the in-process lock of the same identity first (so the
/// threads and tasks of one process queue in memory and one session per
/// name reaches the server), then the advisory lock, under one deadline.
///
/// | method | meaning | default |
/// |---|---|---|
/// | [`prefix`](Self::prefix) | as [`LockOptions::prefix`] | none |
/// | [`timeout`](Self::timeout) | bounds the whole acquisition, in-process and server waits together | none |
/// | [`blocking`](Self::blocking) | `false`: fail at once with [`Error::WouldBlock`] | `true` |
/// | [`mode`](Self::mode) / [`shared`](Self::shared) | reader/writer | exclusive |
/// | [`fair`](Self::fair) | FIFO in-process | `true` |
/// | [`registry`](Self::registry) | the in-process lock container | [`Registry::global`] |
/// | [`url`](Self::url) / [`coordinator`](Self::coordinator) | the server | `LOCKUTILS_COORDINATION_URL` |
///
/// ```no_run
/// use std::time::Duration;
/// use lockutils_postgres::PgLockOptions;
///
/// let guard = PgLockOptions::new("instance-42")
///     .prefix("nova")
///     .url("postgresql://locker@db1/app?sslmode=verify-full")
///     .timeout(Duration::from_secs(30))
///     .lock()?;
/// if guard.is_lost() { /* stop: someone else may hold it now */ }
/// guard.unlock()?; // or drop it
/// # Ok::<(), lockutils_core::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct PgLockOptions<'a> {
    name: &'a str,
    prefix: Option<&'a str>,
    target: Target<'a>,
    timeout: Option<Duration>,
    blocking: bool,
    mode: Mode,
    fair: bool,
    registry: &'static Registry,
}

#[derive(Clone, Copy)]
enum Target<'a> {
    Default,
    Url(&'a str),
    Coordinator(&'a PgCoordinator),
}

impl<'a> PgLockOptions<'a> {
    /// An exclusive, blocking lock named `name`, on the default URL.
    pub const fn new(name: &'a str) -> Self {
        PgLockOptions {
            name,
            prefix: None,
            target: Target::Default,
            timeout: None,
            blocking: true,
            mode: Mode::Exclusive,
            fair: true,
            registry: Registry::global(),
        }
    }

    /// Prefix of the lock's identity, as [`LockOptions::prefix`].
    pub const fn prefix(mut self, prefix: &'a str) -> Self {
        self.prefix = Some(prefix);
        self
    }

    /// The server's URL (see [`PgUrl`]); the process shares one
    /// [`PgCoordinator`] per URL.
    pub const fn url(mut self, url: &'a str) -> Self {
        self.target = Target::Url(url);
        self
    }

    /// Lock through this coordinator.
    pub const fn coordinator(mut self, coordinator: &'a PgCoordinator) -> Self {
        self.target = Target::Coordinator(coordinator);
        self
    }

    /// Bounds the whole acquisition; past it, [`Error::Timeout`].
    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// With `false`, fail at once with [`Error::WouldBlock`] instead of
    /// waiting (in-process or on the server).
    pub const fn blocking(mut self, blocking: bool) -> Self {
        self.blocking = blocking;
        self
    }

    /// Exclusive or shared.
    pub const fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Shared mode (`pg_advisory_lock_shared`).
    pub const fn shared(self) -> Self {
        self.mode(Mode::Shared)
    }

    /// FIFO among the waiters of this process, as [`LockOptions::fair`].
    pub const fn fair(mut self, fair: bool) -> Self {
        self.fair = fair;
        self
    }

    /// The in-process lock container, as [`LockOptions::registry`].
    pub const fn registry(mut self, registry: &'static Registry) -> Self {
        self.registry = registry;
        self
    }

    /// The name as given.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The in-process part: the [`LockOptions`] taken before the server lock.
    pub fn local(&self) -> LockOptions<'a, 'static> {
        let mut o = LockOptions::new(self.name)
            .registry(self.registry)
            .blocking(self.blocking)
            .mode(self.mode)
            .fair(self.fair);
        if let Some(p) = self.prefix {
            o = o.prefix(p);
        }
        if let Some(t) = self.timeout {
            o = o.timeout(t);
        }
        o
    }

    /// The lock's identity (the lock file name [`LockOptions`] would use),
    /// from which its key is derived.
    ///
    /// # Errors
    /// [`Error::InvalidName`] as [`lockutils_core::lock_file_name`].
    pub fn identity(&self) -> Result<Cow<'a, str>> {
        lockutils_core::lock_file_name(self.name, self.prefix)
    }

    /// The coordinator this lock uses.
    ///
    /// # Errors
    /// [`Error::Backend`] for a bad URL or when none is configured.
    pub fn resolve_coordinator(&self) -> Result<PgCoordinator> {
        match self.target {
            Target::Coordinator(c) => Ok(c.clone()),
            Target::Url(u) => PgCoordinator::shared_for(u, self.name),
            Target::Default => match std::env::var(COORDINATION_URL_ENV) {
                Ok(u) if PgUrl::is_postgres(&u) => PgCoordinator::shared_for(&u, self.name),
                _ => Err(Error::Backend {
                    name: self.name.to_owned(),
                    backend: "postgresql".to_owned(),
                    reason: format!(
                        "no PostgreSQL URL: give one with PgLockOptions::url or set \
                         {COORDINATION_URL_ENV}=postgresql://USER@HOST/DBNAME"
                    ),
                    source: None,
                }),
            },
        }
    }

    fn wait(&self, deadline: Option<Instant>) -> Wait {
        match (self.blocking, deadline) {
            (false, _) => Wait::Now,
            (true, Some(d)) => Wait::Until(d),
            (true, None) => Wait::Forever,
        }
    }

    /// Takes the lock, parking the thread while it waits.
    ///
    /// # Errors
    /// [`Error::WouldBlock`], [`Error::Timeout`], [`Error::WouldDeadlock`]
    /// (this thread holds it already), [`Error::InvalidName`],
    /// [`Error::InvalidOptions`] (shared mode on the tooz layout),
    /// [`Error::Backend`] naming the URL (without password).
    ///
    /// # Blocking
    /// Do not call this from async code: use [`lock_async`](Self::lock_async).
    pub fn lock(&self) -> Result<PgLockGuard> {
        let deadline = self.timeout.and_then(|t| Instant::now().checked_add(t));
        let coordinator = self.resolve_coordinator()?;
        let identity = self.identity()?.into_owned();
        let local = self.local().lock()?;
        let hold = runtime::park_on(crate::coordinator::acquire_task(
            &coordinator,
            self.name.to_owned(),
            identity,
            self.mode,
            self.wait(deadline),
        ))
        .map_err(|e| self.with_timeout(e))?;
        Ok(PgLockGuard {
            hold: Some(hold),
            _local: local,
        })
    }

    /// Takes the lock only if that needs no waiting.
    ///
    /// # Errors
    /// As [`lock`](Self::lock).
    pub fn try_lock(&self) -> Result<PgLockGuard> {
        self.blocking(false).lock()
    }

    /// Takes the lock from async code, on any executor, without blocking it.
    ///
    /// # Errors
    /// As [`lock`](Self::lock), except that re-acquiring a lock the same task
    /// holds is not detected (as with [`LockOptions::lock_async`]).
    ///
    /// # Cancel safety
    /// Dropping the future leaves the in-process queue and cancels the
    /// server-side wait; see [`PgCoordinator::acquire_async`].
    pub fn lock_async(&self) -> impl Future<Output = Result<AsyncPgLockGuard>> + Send + 'a {
        let opts = *self;
        async move {
            let deadline = opts.timeout.and_then(|t| Instant::now().checked_add(t));
            let coordinator = opts.resolve_coordinator()?;
            let identity = opts.identity()?.into_owned();
            let local = opts.local().lock_async().await?;
            let hold = crate::coordinator::acquire_task(
                &coordinator,
                opts.name.to_owned(),
                identity,
                opts.mode,
                opts.wait(deadline),
            )
            .await
            .map_err(|e| opts.with_timeout(e))?;
            Ok(AsyncPgLockGuard {
                hold: Some(hold),
                _local: local,
            })
        }
    }

    /// Runs `f` while holding the lock.
    ///
    /// # Errors
    /// Any acquisition error; `f` does not run then.
    pub fn synchronized<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        let _guard = self.lock()?;
        Ok(f())
    }

    /// Reports the timeout the caller gave, not what was left of it.
    fn with_timeout(&self, e: Error) -> Error {
        match (e, self.timeout) {
            (Error::Timeout { name, .. }, Some(timeout)) => Error::Timeout { name, timeout },
            (e, _) => e,
        }
    }
}

impl fmt::Debug for PgLockOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = match self.target {
            Target::Default => "default".to_owned(),
            Target::Url(u) => crate::url::redact(u),
            Target::Coordinator(c) => c.url().to_string(),
        };
        f.debug_struct("PgLockOptions")
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .field("backend", &target)
            .field("timeout", &self.timeout)
            .field("blocking", &self.blocking)
            .field("mode", &self.mode)
            .field("fair", &self.fair)
            .finish()
    }
}

macro_rules! hold_accessors {
    () => {
        /// The lock's name as given.
        pub fn name(&self) -> &str {
            self.hold().name()
        }

        /// The advisory-lock key.
        pub fn key(&self) -> LockKey {
            self.hold().key()
        }

        /// Exclusive or shared.
        pub fn mode(&self) -> Mode {
            self.hold().mode()
        }

        /// The server process holding the lock (`pg_stat_activity.pid`).
        pub fn backend_pid(&self) -> i32 {
            self.hold().backend_pid()
        }

        /// See [`PgHold::fencing_token`].
        pub fn fencing_token(&self) -> Option<u64> {
            self.hold().fencing_token()
        }

        /// Whether the lock was lost (its session ended or stopped
        /// answering).
        pub fn is_lost(&self) -> bool {
            self.hold().is_lost()
        }

        /// Why the lock was lost, if it was.
        pub fn loss(&self) -> Option<LossReason> {
            self.hold().loss()
        }

        /// Resolves when the lock is lost, with the reason.
        pub fn lost(&self) -> impl Future<Output = Option<LossReason>> + Send + 'static {
            self.hold().lost()
        }

        /// The server part of the lock.
        pub fn hold(&self) -> &PgHold {
            self.hold.as_ref().expect("hold present until drop")
        }
    };
}

/// A PostgreSQL lock held by this thread: the server lock and the
/// in-process lock. Dropping it releases both, the server lock first (the
/// thread waits for the server's answer, at most the check interval).
#[must_use = "if unused the lock is released immediately"]
pub struct PgLockGuard {
    hold: Option<PgHold>,
    _local: LockGuard<'static>,
}

impl PgLockGuard {
    hold_accessors!();

    /// Releases the lock, waiting for the server to confirm.
    ///
    /// # Errors
    /// [`Error::Backend`] if the lock had been lost or the release failed.
    pub fn unlock(mut self) -> Result<()> {
        self.hold.take().map_or(Ok(()), PgHold::release)
    }
}

impl Drop for PgLockGuard {
    fn drop(&mut self) {
        if let Some(h) = self.hold.take() {
            let _ = h.release();
        }
    }
}

impl fmt::Debug for PgLockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PgLockGuard").field(&self.hold).finish()
    }
}

/// A PostgreSQL lock held by an async task. Dropping it releases the
/// in-process lock at once and the server lock without waiting; use
/// [`unlock`](Self::unlock) to wait for the server.
#[must_use = "if unused the lock is released immediately"]
pub struct AsyncPgLockGuard {
    hold: Option<PgHold>,
    _local: AsyncLockGuard<'static>,
}

impl AsyncPgLockGuard {
    hold_accessors!();

    /// Releases the lock, waiting for the server to confirm.
    ///
    /// # Errors
    /// As [`PgLockGuard::unlock`].
    pub async fn unlock(mut self) -> Result<()> {
        match self.hold.take() {
            Some(h) => h.release_async().await,
            None => Ok(()),
        }
    }
}

impl fmt::Debug for AsyncPgLockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AsyncPgLockGuard").field(&self.hold).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let o = PgLockOptions::new("x").url("postgresql://svc:hunter2@db1/app");
        let shown = format!("{o:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("svc:***@db1"), "{shown}");
    }

    #[test]
    fn a_missing_url_says_how_to_give_one() {
        let e = PgLockOptions::new("x")
            .url("mysql://h")
            .resolve_coordinator()
            .unwrap_err();
        assert!(e.to_string().contains("unsupported scheme `mysql`"), "{e}");
    }
}
