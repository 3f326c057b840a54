//! The one error type of lockutils: every variant names the lock, and where a
//! file is involved the path, and says how to fix the problem.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Why a lock could not be taken, or a lock file not managed.
///
/// Every variant names the lock (`name` is the name the caller gave), so a log
/// line alone says which lock failed.
///
/// ```
/// use lockutils_core::{Error, LockOptions};
///
/// let held = LockOptions::new("doc-error-example").lock().unwrap();
/// let err = std::thread::scope(|s| {
///     s.spawn(|| LockOptions::new("doc-error-example").try_lock().unwrap_err())
///         .join()
///         .unwrap()
/// });
/// assert!(matches!(err, Error::WouldBlock { .. }));
/// assert_eq!(err.lock_name(), "doc-error-example");
/// drop(held);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A non-blocking acquisition found the lock held.
    #[error(
        "lock {shown} is held by another owner (non-blocking acquisition)",
        shown = crate::diagnose::name_excerpt(name)
    )]
    WouldBlock {
        /// The lock's name.
        name: String,
    },

    /// The acquisition did not succeed before its deadline.
    #[error(
        "timed out after {timeout:?} waiting for lock {shown}",
        shown = crate::diagnose::name_excerpt(name)
    )]
    Timeout {
        /// The lock's name.
        name: String,
        /// The timeout that ran out.
        timeout: Duration,
    },

    /// The current thread already holds this lock; waiting would hang forever.
    #[error(
        "lock {shown} is already held by this thread; locks are not reentrant: \
         release the outer guard first or restructure the call",
        shown = crate::diagnose::name_excerpt(name)
    )]
    WouldDeadlock {
        /// The lock's name.
        name: String,
    },

    /// The name cannot be used as a lock name.
    #[error("invalid lock name {}: {reason}", crate::diagnose::name_excerpt(name))]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it and what to do instead.
        reason: &'static str,
    },

    /// The lock directory could not be found, created or used.
    #[error(
        "cannot use lock directory {} for lock {shown}: {reason}; \
         choose another with lock_path, lockutils::set_defaults or LOCKUTILS_LOCK_PATH",
        path.display(),
        shown = crate::diagnose::name_excerpt(name)
    )]
    LockPath {
        /// The lock's name.
        name: String,
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
        /// The OS error, where there is one.
        #[source]
        source: Option<io::Error>,
    },

    /// The lock file could not be opened, locked or removed.
    #[error(
        "cannot {action} lock file {} for lock {shown}{}",
        path.display(),
        crate::diagnose::generic_fix(source),
        shown = crate::diagnose::name_excerpt(name)
    )]
    LockFile {
        /// The lock's name.
        name: String,
        /// The lock file.
        path: PathBuf,
        /// What was being done: `open`, `lock`, `inspect` or `remove`.
        action: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// A distributed backend (such as ZooKeeper) failed or could not be
    /// reached.
    #[error(
        "lock {shown} on {backend}: {reason}",
        shown = crate::diagnose::name_excerpt(name)
    )]
    Backend {
        /// The lock's name.
        name: String,
        /// The backend, e.g. its coordination URL (without credentials).
        backend: String,
        /// What went wrong and what to do about it.
        reason: String,
        /// The backend's own error, where there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// The backend cannot do what was asked (fencing tokens, loss
    /// notification, revocation, shared locks on its layout, …).
    #[error(
        "lock {shown} on {backend}: this backend does not support {capability}; \
         check Backend::capabilities() first, or choose a backend that has it",
        shown = crate::diagnose::name_excerpt(name)
    )]
    Unsupported {
        /// The lock's name (empty for an operation on no particular lock).
        name: String,
        /// The backend's URL (without credentials), or `in-process`.
        backend: String,
        /// What it lacks.
        capability: crate::backend::Capability,
    },

    /// A coordination URL whose scheme no engine knows.
    #[error(
        "lock {shown}: no lock backend for {scheme}:// in {url}; \
         known schemes are file:// and those of the engine crates (zookeeper://, postgresql://), \
         or register one with lockutils::backend::register_scheme",
        shown = crate::diagnose::name_excerpt(name)
    )]
    UnknownScheme {
        /// The lock's name (empty when resolving a URL alone).
        name: String,
        /// The URL, without credentials.
        url: String,
        /// Its scheme.
        scheme: String,
    },

    /// A coordination URL for an engine that this build leaves out.
    #[error(
        "lock {shown}: {url} needs the {feature} engine, which is not enabled; \
         build lockutils with features = [\"{feature}\"] and call \
         lockutils::register_backends() once at start (the macros do it for you)",
        shown = crate::diagnose::name_excerpt(name)
    )]
    FeatureDisabled {
        /// The lock's name (empty when resolving a URL alone).
        name: String,
        /// The URL, without credentials.
        url: String,
        /// The `lockutils` feature that brings the engine in.
        feature: &'static str,
    },

    /// A coordination URL its engine refuses (a bad port, an unknown option),
    /// or text that is not a coordination URL at all.
    #[error(
        "invalid coordination URL {url} for lock {shown}: {reason}",
        shown = crate::diagnose::name_excerpt(name)
    )]
    InvalidUrl {
        /// The lock's name (empty when resolving a URL alone).
        name: String,
        /// The URL, without credentials.
        url: String,
        /// What is wrong with it and what to write instead.
        reason: String,
    },

    /// An option combination that cannot work.
    #[error(
        "invalid options for lock {shown}: {reason}",
        shown = crate::diagnose::name_excerpt(name)
    )]
    InvalidOptions {
        /// The lock's name.
        name: String,
        /// What conflicts and how to fix it.
        reason: &'static str,
    },
}

impl Error {
    /// The lock's name as this error's message shows it: quoted and escaped
    /// as `{:?}` shows a string, and for a name over 64 characters only its
    /// start, with its length in bytes (a message stays readable whatever
    /// the name).
    ///
    /// ```
    /// use lockutils_core::LockOptions;
    /// let long = "x".repeat(10_000);
    /// let dir = std::path::Path::new("/dev/null/locks");
    /// let e = LockOptions::new(&long).external(true).lock_path(dir).lock().unwrap_err();
    /// assert!(e.name_excerpt().ends_with("… (10000 bytes)"));
    /// assert!(e.to_string().len() < 400, "{e}");
    /// ```
    pub fn name_excerpt(&self) -> String {
        crate::diagnose::name_excerpt(self.lock_name())
    }

    /// The name of the lock this error is about.
    pub fn lock_name(&self) -> &str {
        match self {
            Error::WouldBlock { name }
            | Error::Timeout { name, .. }
            | Error::WouldDeadlock { name }
            | Error::InvalidName { name, .. }
            | Error::LockPath { name, .. }
            | Error::LockFile { name, .. }
            | Error::Backend { name, .. }
            | Error::InvalidOptions { name, .. }
            | Error::Unsupported { name, .. }
            | Error::UnknownScheme { name, .. }
            | Error::FeatureDisabled { name, .. }
            | Error::InvalidUrl { name, .. } => name,
        }
    }

    /// What kind of failure this is, for callers that act on it (retry,
    /// exit codes) without matching variants or messages.
    ///
    /// ```
    /// use lockutils_core::ErrorKind;
    /// let e = lockutils_core::backend::backend_for_url("file://relative").unwrap_err();
    /// assert_eq!(e.kind(), ErrorKind::InvalidUrl);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::WouldBlock { .. } => ErrorKind::Contention,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::WouldDeadlock { .. } => ErrorKind::WouldDeadlock,
            Error::InvalidName { .. } => ErrorKind::InvalidName,
            Error::InvalidOptions { .. } => ErrorKind::InvalidOptions,
            Error::LockPath { .. } | Error::LockFile { .. } => ErrorKind::Io,
            Error::Backend { .. } => ErrorKind::Connection,
            Error::Unsupported { .. } => ErrorKind::Unsupported,
            Error::UnknownScheme { .. }
            | Error::FeatureDisabled { .. }
            | Error::InvalidUrl { .. } => ErrorKind::InvalidUrl,
        }
    }

    /// The error and its causes on one line (`Display` leaves the causes to
    /// [`source`](std::error::Error::source)), for logs and messages:
    /// `cannot open lock file /srv/locks/x for lock "x": the lock file's name
    /// is a symbolic link …: Too many levels of symbolic links (os error 40)`.
    ///
    /// ```
    /// let e = lockutils_core::backend::backend_for_url("file://relative").unwrap_err();
    /// assert!(e.report().to_string().contains("absolute"));
    /// ```
    pub fn report(&self) -> Report<'_> {
        Report(self)
    }

    /// Whether this error only means "not now": the lock was busy.
    pub fn is_contention(&self) -> bool {
        matches!(self, Error::WouldBlock { .. } | Error::Timeout { .. })
    }
}

/// An [`Error`] with its causes, from [`Error::report`].
#[derive(Debug)]
pub struct Report<'a>(&'a Error);

impl std::fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut shown = self.0.to_string();
        let mut source = std::error::Error::source(self.0);
        while let Some(s) = source {
            let more = s.to_string();
            // A cause that wraps another may say the same; say it once.
            if !more.is_empty() && !shown.contains(&more) {
                shown.push_str(": ");
                shown.push_str(&more);
            }
            source = s.source();
        }
        f.write_str(&shown)
    }
}

/// What kind of failure an [`Error`] is: [`Error::kind`]. Grows with the
/// engines (hence `#[non_exhaustive]`); match the kinds you act on and treat
/// the rest as failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The lock is held by someone else (a non-blocking acquisition).
    Contention,
    /// The lock was still held when the deadline came.
    Timeout,
    /// This thread already holds the lock.
    WouldDeadlock,
    /// The name cannot be a lock name.
    InvalidName,
    /// The options conflict.
    InvalidOptions,
    /// The coordination URL is unusable: malformed, an unknown scheme, or an
    /// engine this build leaves out.
    InvalidUrl,
    /// The backend lacks a capability that was asked for.
    Unsupported,
    /// A distributed backend failed or could not be reached.
    Connection,
    /// A lock directory or lock file could not be used.
    Io,
}

impl ErrorKind {
    /// Whether this kind only means "not now": the lock was busy.
    pub const fn is_contention(self) -> bool {
        matches!(self, ErrorKind::Contention | ErrorKind::Timeout)
    }

    /// Whether this kind is a mistake in what the caller asked for (a name,
    /// options, a URL, a capability), which retrying cannot fix.
    pub const fn is_usage(self) -> bool {
        matches!(
            self,
            ErrorKind::InvalidName
                | ErrorKind::InvalidOptions
                | ErrorKind::InvalidUrl
                | ErrorKind::Unsupported
        )
    }
}

/// For functions returning `io::Result`: contention maps to
/// [`WouldBlock`](io::ErrorKind::WouldBlock) or
/// [`TimedOut`](io::ErrorKind::TimedOut), a bad name to
/// [`InvalidInput`](io::ErrorKind::InvalidInput), file and directory errors to
/// the OS error's kind; the message and source chain are kept.
///
/// ```
/// fn reserve() -> std::io::Result<()> {
///     let _g = lockutils_core::LockOptions::new("doc-io").try_lock()?;
///     Ok(())
/// }
/// reserve().unwrap();
/// ```
impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match &e {
            Error::WouldBlock { .. } => io::ErrorKind::WouldBlock,
            Error::Timeout { .. } => io::ErrorKind::TimedOut,
            Error::InvalidName { .. }
            | Error::InvalidOptions { .. }
            | Error::UnknownScheme { .. }
            | Error::FeatureDisabled { .. }
            | Error::InvalidUrl { .. } => io::ErrorKind::InvalidInput,
            Error::Unsupported { .. } => io::ErrorKind::Unsupported,
            Error::LockFile { source, .. } => source.kind(),
            Error::LockPath {
                source: Some(source),
                ..
            } => source.kind(),
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

/// `Result` with lockutils' [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync + 'static>() {}

    #[test]
    fn error_is_send_sync_static() {
        assert_send_sync::<Error>();
    }

    #[test]
    fn converts_to_io_error_with_kind_and_message() {
        let e: io::Error = Error::Timeout {
            name: "x".into(),
            timeout: Duration::from_millis(5),
        }
        .into();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(e.to_string().contains("\"x\""), "{e}");
    }

    #[test]
    fn display_does_not_repeat_the_source() {
        use std::error::Error as _;
        let os = io::Error::from_raw_os_error(libc::EACCES);
        let os_text = os.to_string();
        let e = Error::LockFile {
            name: "az".into(),
            path: "/srv/locks/az".into(),
            action: "open",
            source: os,
        };
        let msg = e.to_string();
        assert!(!msg.contains(&os_text), "{msg}");
        assert!(
            msg.contains("/srv/locks/az") && msg.contains("\"az\""),
            "{msg}"
        );
        assert_eq!(e.source().unwrap().to_string(), os_text);
    }

    #[test]
    fn every_variant_has_a_kind() {
        let name = || "x".to_owned();
        let cases = [
            (Error::WouldBlock { name: name() }, ErrorKind::Contention),
            (
                Error::Timeout {
                    name: name(),
                    timeout: Duration::ZERO,
                },
                ErrorKind::Timeout,
            ),
            (
                Error::InvalidName {
                    name: name(),
                    reason: "r",
                },
                ErrorKind::InvalidName,
            ),
            (
                Error::Backend {
                    name: name(),
                    backend: "zookeeper://h/".into(),
                    reason: "refused".into(),
                    source: None,
                },
                ErrorKind::Connection,
            ),
            (
                Error::InvalidUrl {
                    name: name(),
                    url: "zookeeper://h:port".into(),
                    reason: "bad port".into(),
                },
                ErrorKind::InvalidUrl,
            ),
            (
                Error::FeatureDisabled {
                    name: name(),
                    url: "postgresql://h/db".into(),
                    feature: "postgresql",
                },
                ErrorKind::InvalidUrl,
            ),
        ];
        for (e, kind) in cases {
            assert_eq!(e.kind(), kind, "{e}");
            assert_eq!(e.is_contention(), kind.is_contention());
        }
        assert!(ErrorKind::Unsupported.is_usage());
        assert!(!ErrorKind::Connection.is_usage());
    }

    #[test]
    fn messages_name_lock_path_and_fix() {
        let e = Error::LockPath {
            name: "az".into(),
            path: "/opt/stack".into(),
            reason: "permission denied".into(),
            source: None,
        };
        let msg = e.to_string();
        assert!(msg.contains("\"az\""), "{msg}");
        assert!(msg.contains("/opt/stack"), "{msg}");
        assert!(msg.contains("LOCKUTILS_LOCK_PATH"), "{msg}");
        assert_eq!(e.lock_name(), "az");
    }
}
