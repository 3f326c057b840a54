//! PostgreSQL behind the one lock API: [`PgBackend`] implements
//! [`lockutils_core::backend::Backend`], so `LockOptions::new("x")
//! .backend_url("postgresql://…")` (or `.backend(&pg)`) gives the ordinary
//! [`LockGuard`](lockutils_core::LockGuard) /
//! [`AsyncLockGuard`](lockutils_core::AsyncLockGuard) and
//! [`StaticLock`](lockutils_core::StaticLock), with loss notification (and
//! fencing tokens with `fencing=table`) reported through them.
//!
//! The core's in-process layer in front has already queued this process's
//! threads and tasks, so each acquisition here takes one session and meets
//! only other processes.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use lockutils_core::backend::{
    self as core_backend, Admin, Backend, BackendHold, BoxHold, Capabilities, Capability,
    CleanOptions, Cleaned, Cleared, ContenderInfo, HoldFuture, Location, LockInfo, Loss,
    LossFuture, LossKind, ReleaseFuture, Removal, Request, Wait,
};
use lockutils_core::{Error, Result};

use crate::admin::{PgLockInfo, PgSessionInfo, RemoveOutcome};
use crate::coordinator::{
    acquire_blocking, acquire_task, AcquireTask, PgCoordinator, Wait as PgWait,
};
use crate::hold::{LossReason, PgHold};
use crate::key::Layout;
use crate::url::Fencing;

/// A PostgreSQL server (one URL: its database, layout and fencing choice) as
/// a lock backend. Build it from a URL ([`PgBackend::new`]); [`register`]
/// makes `postgresql://` and `postgres://` URLs select it.
///
/// Capabilities: loss notification and administration always; shared locks
/// in the native layout only (tooz's has exclusive locks only); fencing
/// tokens only with `fencing=table`. No revocation: advisory locks cannot
/// ask a holder to let go ([`Admin::clear`] ends the holders' sessions
/// instead).
///
/// ```no_run
/// use lockutils_core::backend::{Backend, Capability};
/// use lockutils_core::LockOptions;
/// use lockutils_postgres::PgBackend;
///
/// let pg = PgBackend::new("postgresql://locker@db1/app?fencing=table")?;
/// assert!(pg.capabilities().has(Capability::FencingTokens));
/// let guard = LockOptions::new("instance-42").backend(&pg).lock()?;
/// # drop(guard);
/// # Ok::<(), lockutils_core::Error>(())
/// ```
#[derive(Clone)]
pub struct PgBackend {
    inner: Arc<Inner>,
}

struct Inner {
    coordinator: PgCoordinator,
    /// The URL without user or password.
    shown: String,
}

impl PgBackend {
    /// The backend for a coordination URL. Backends of the same URL share
    /// one pool of sessions in the process. No session is opened yet.
    ///
    /// # Errors
    /// [`Error::Backend`] for a URL that does not parse.
    pub fn new(url: &str) -> Result<Self> {
        let coordinator = PgCoordinator::shared(url)?;
        let shown = without_user(coordinator.shown());
        Ok(PgBackend {
            inner: Arc::new(Inner { coordinator, shown }),
        })
    }

    /// Closes the idle sessions kept for reuse (held locks keep theirs).
    pub fn close_idle(&self) {
        self.inner.coordinator.close_idle();
    }
}

/// `postgresql://user@h:5432/db` → `postgresql://h:5432/db`: the user is
/// part of the credentials, and messages need neither.
pub(crate) fn without_user(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

impl fmt::Debug for PgBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PgBackend").field(&self.inner.shown).finish()
    }
}

fn pg_wait(wait: Wait) -> PgWait {
    match wait {
        Wait::Never => PgWait::Now,
        Wait::Forever => PgWait::Forever,
        Wait::Until(d) => PgWait::Until(d),
    }
}

impl Inner {
    fn check(&self, request: &Request) -> Result<()> {
        if !self.coordinator.url().layout().supports(request.mode) {
            // The core checks the capability first; this covers direct calls.
            return Err(Error::Unsupported {
                name: request.name.clone(),
                backend: self.shown.clone(),
                capability: Capability::Shared,
            });
        }
        Ok(())
    }

    /// The server half of one acquisition, to run on the crate's runtime.
    fn start(&self, request: &Request, wait: Wait) -> Result<AcquireTask> {
        self.check(request)?;
        Ok(acquire_task(
            &self.coordinator,
            request.name.clone(),
            request.identity.clone(),
            request.mode,
            pg_wait(wait),
        ))
    }
}

/// Contention is `Ok(None)`; the engine's other errors already name the lock.
fn outcome(got: Result<PgHold>, backend: &Arc<Inner>) -> Result<Option<BoxHold>> {
    match got {
        Ok(hold) => Ok(Some(Box::new(PgBackendHold::new(hold, backend.clone())))),
        Err(e) if e.is_contention() => Ok(None),
        Err(e) => Err(e),
    }
}

impl Backend for PgBackend {
    fn kind(&self) -> &'static str {
        "postgresql"
    }

    fn url(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.inner.shown)
    }

    fn capabilities(&self) -> Capabilities {
        let url = self.inner.coordinator.url();
        let mut caps = Capabilities::NONE
            .with(Capability::LossNotification)
            .with(Capability::Admin)
            .with(Capability::Clear);
        if url.layout() == Layout::Native {
            caps = caps.with(Capability::Shared);
        }
        if url.fencing() == Fencing::Table {
            caps = caps.with(Capability::FencingTokens);
        }
        caps
    }

    fn acquire(&self, request: &Request, wait: Wait) -> Result<Option<BoxHold>> {
        // Runs on this thread, which reads the session's socket itself.
        self.inner.check(request)?;
        let got = acquire_blocking(
            &self.inner.coordinator,
            request.name.clone(),
            request.identity.clone(),
            request.mode,
            pg_wait(wait),
        );
        outcome(got, &self.inner)
    }

    fn acquire_async(&self, request: Request, wait: Wait) -> HoldFuture {
        let inner = self.inner.clone();
        // Dropping the task cancels the acquisition on the runtime, whose
        // clean-up sends a cancel request and `pg_advisory_unlock_all`.
        let task = inner.start(&request, wait);
        Box::pin(async move { outcome(task?.await, &inner) })
    }

    fn admin(&self) -> Result<&dyn Admin> {
        Ok(self)
    }
}

/// A PostgreSQL lock held through the core guards.
struct PgBackendHold {
    hold: PgHold,
    /// The advisory-lock key, as `Location::Key`.
    key: String,
    backend: Arc<Inner>,
}

impl PgBackendHold {
    fn new(hold: PgHold, backend: Arc<Inner>) -> Self {
        PgBackendHold {
            key: hold.key().to_string(),
            hold,
            backend,
        }
    }
}

impl fmt::Debug for PgBackendHold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PgBackendHold").field(&self.hold).finish()
    }
}

fn to_loss(reason: LossReason) -> Loss {
    let kind = match reason {
        LossReason::Terminated => LossKind::SessionEnded,
        LossReason::ConnectionLost | LossReason::CheckTimedOut => LossKind::ConnectionLost,
        #[allow(unreachable_patterns)] // LossReason may grow.
        _ => LossKind::Other,
    };
    Loss {
        kind,
        detail: reason.to_string().into(),
    }
}

impl BackendHold for PgBackendHold {
    fn backend(&self) -> &str {
        &self.backend.shown
    }

    fn location(&self) -> Location<'_> {
        Location::Key(&self.key)
    }

    fn contended(&self) -> Option<bool> {
        Some(self.hold.contended)
    }

    fn fencing_token(&self) -> Option<u64> {
        self.hold.fencing_token()
    }

    fn loss(&self) -> Option<Loss> {
        self.hold.loss().map(to_loss)
    }

    fn lost(&self) -> Option<LossFuture> {
        let lost = self.hold.lost();
        Some(Box::pin(async move { lost.await.map(to_loss) }))
    }

    fn release(self: Box<Self>) -> Result<()> {
        self.hold.release()
    }

    fn release_async(self: Box<Self>) -> ReleaseFuture {
        Box::pin(self.hold.release_async())
    }
}

fn contender(s: &PgSessionInfo) -> ContenderInfo {
    let mut c = ContenderInfo::new(Some(s.mode));
    // The server knows the client's address, not its process id: the
    // session is named by the server process that serves it.
    c.host = s.client_addr.clone();
    c.since = s.since;
    c.session = Some(s.pid.to_string());
    c.user = s.user.clone();
    c.application = Some(s.application_name.clone());
    c.kind = Some("advisory");
    c.detail = format!(
        "server pid {}, application_name {:?}{}{}",
        s.pid,
        s.application_name,
        s.user
            .as_deref()
            .map(|u| format!(", user {u}"))
            .unwrap_or_default(),
        if s.name.is_none() {
            ", lock name unknown (another client's session, or one whose statement \
             this role cannot see)"
        } else {
            ""
        }
    );
    c
}

fn lock_info(info: &PgLockInfo) -> LockInfo {
    let key = info.key.to_string();
    let mut out = LockInfo::new(
        info.name.clone().unwrap_or_else(|| key.clone()),
        key.clone(),
    );
    out.key = Some(key);
    out.holders = info.holders.iter().map(contender).collect();
    out.waiters = info.waiters.iter().map(contender).collect();
    out.settle_state();
    out
}

impl Admin for PgBackend {
    fn backend(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.inner.shown)
    }

    /// Every advisory lock held or awaited in the URL's database; ours carry
    /// their identity, other clients' their key only.
    fn list(&self) -> Result<Vec<LockInfo>> {
        Ok(self
            .inner
            .coordinator
            .list()?
            .iter()
            .map(lock_info)
            .collect())
    }

    fn inspect(&self, identity: &str) -> Result<LockInfo> {
        Ok(lock_info(&self.inner.coordinator.show(identity)?))
    }

    /// The advisory-lock key of the identity in the URL's layout.
    fn location(&self, identity: &str) -> String {
        self.inner.coordinator.key(identity).to_string()
    }

    /// Advisory locks leave nothing behind: a free lock is
    /// [`Removal::Absent`], a held one [`Removal::Busy`]; the server is
    /// never changed.
    fn remove_if_free(&self, identity: &str) -> Result<Removal> {
        Ok(match self.inner.coordinator.remove_if_free(identity)? {
            RemoveOutcome::Held => Removal::Busy,
            _ => Removal::Absent,
        })
    }

    /// Nothing to clean: advisory locks leave no state.
    fn clean_with(&self, options: &CleanOptions) -> Result<Vec<(String, Cleaned)>> {
        if options.older_than.is_some() {
            return Err(Error::Unsupported {
                name: String::new(),
                backend: self.inner.shown.clone(),
                capability: Capability::Age,
            });
        }
        Ok(Vec::new())
    }

    /// Ends the holders' sessions (`pg_terminate_backend`), which frees the
    /// lock and makes their guards report the loss; waiters keep waiting,
    /// and the first of them gets the lock. Returns how many sessions ended,
    /// once their server processes have released the lock.
    ///
    /// Sessions of this library holding another name with the same key are
    /// never ended; in the tooz layout, neither are holders whose lock name
    /// is unknown (tooz clients, sessions whose statements this role cannot
    /// see): they may hold another name with the same key.
    /// [`clear_with_report`](Admin::clear_with_report) names them.
    fn clear(&self, identity: &str) -> Result<usize> {
        Ok(self
            .inner
            .coordinator
            .terminate_holders(identity)?
            .ended
            .len())
    }

    fn clear_with_report(&self, identity: &str) -> Result<Cleared> {
        let before = self.inspect(identity)?;
        let done = self.inner.coordinator.terminate_holders(identity)?;
        let kept = (!done.kept.is_empty()).then(|| {
            let pids = done
                .kept
                .iter()
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            let (sessions, them) = match done.kept.len() {
                1 => (format!("1 session (server pid {pids})"), "it"),
                n => (format!("{n} sessions (server pids {pids})"), "one"),
            };
            format!(
                "kept {sessions} holding key {} whose lock name is unknown: in the tooz \
                 layout {them} may hold another name with that key; if {them} holds this \
                 one, end it with SELECT pg_terminate_backend(<pid>)",
                self.inner.coordinator.key(identity),
            )
        });
        Ok(Cleared::new(before, done.ended.len(), kept))
    }
}

/// Makes `postgresql://` and `postgres://` coordination URLs select
/// [`PgBackend`] (the `lockutils` facade calls this when its `postgresql`
/// feature is on).
///
/// ```
/// lockutils_postgres::register();
/// let b = lockutils_core::backend::backend_for_url("postgres://u:pw@127.0.0.1:1/doc").unwrap();
/// assert_eq!(b.kind(), "postgresql");
/// assert!(!b.url().contains("pw"));
/// ```
pub fn register() {
    core_backend::register_scheme("postgresql", factory);
    core_backend::register_scheme("postgres", factory);
}

fn factory(url: &str) -> std::result::Result<Arc<dyn Backend>, String> {
    PgBackend::new(url)
        .map(|b| Arc::new(b) as Arc<dyn Backend>)
        .map_err(|e| match e {
            Error::Backend { reason, .. } => reason,
            e => e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lockutils_core::Mode;

    #[test]
    fn url_has_no_credentials_and_capabilities_follow_the_url() {
        let b = PgBackend::new("postgresql://u:s3cret@127.0.0.1:1/db").unwrap();
        assert_eq!(b.kind(), "postgresql");
        assert_eq!(b.url(), "postgresql://127.0.0.1:1/db");
        let caps = b.capabilities();
        assert!(caps.has(Capability::Shared));
        assert!(caps.has(Capability::LossNotification));
        assert!(caps.has(Capability::Admin));
        assert!(!caps.has(Capability::FencingTokens));
        assert!(!caps.has(Capability::Revocation));

        let tooz = PgBackend::new("postgresql://u@127.0.0.1:1/db?layout=tooz&fencing=table")
            .unwrap()
            .capabilities();
        assert!(!tooz.has(Capability::Shared));
        assert!(tooz.has(Capability::FencingTokens));
    }

    #[test]
    fn shared_in_the_tooz_layout_is_unsupported_without_a_server() {
        let b = PgBackend::new("postgresql://u@127.0.0.1:1/db?layout=tooz").unwrap();
        let request = Request {
            name: "x".into(),
            identity: "x".into(),
            mode: Mode::Shared,
            caller: None,
        };
        let e = b.acquire(&request, Wait::Never).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Unsupported {
                    capability: Capability::Shared,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn both_schemes_select_this_backend() {
        register();
        for url in ["postgresql://127.0.0.1:1/a", "postgres://127.0.0.1:1/a"] {
            let b = core_backend::backend_for_url(url).unwrap();
            assert_eq!(b.kind(), "postgresql", "{url}");
        }
    }
}
