//! `LockOptions`: what to lock and how, mirroring oslo's `lock()` parameters.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use crate::backend::Backend;
use crate::error::Result;
use crate::file::DEFAULT_FILE_MODE;
use crate::raw::Mode;
use crate::registry::Registry;

/// A lock to take: its name and options. Build one, then call
/// [`lock`](Self::lock), [`try_lock`](Self::try_lock),
/// [`lock_async`](Self::lock_async) or [`synchronized`](Self::synchronized).
///
/// Options and their oslo.concurrency counterparts:
///
/// | method | oslo | default |
/// |---|---|---|
/// | [`prefix`](Self::prefix) | `lock_file_prefix` | none |
/// | [`external`](Self::external) | `external` | `false` |
/// | [`lock_path`](Self::lock_path) | `lock_path` | see [`lock_path`](crate::lock_path()) |
/// | [`fair`](Self::fair) | `fair` | `false` |
/// | [`blocking`](Self::blocking) | `blocking` (of `acquire`) | `true` |
/// | [`timeout`](Self::timeout) | – | none |
/// | [`mode`](Self::mode) / [`shared`](Self::shared) | `ReaderWriterLock` | exclusive |
/// | [`registry`](Self::registry) | `semaphores` | [`Registry::global`] |
/// | [`file_mode`](Self::file_mode) | – | `0o600` |
/// | [`remove_on_release`](Self::remove_on_release) | – | `false` |
/// | [`backend`](Self::backend) / [`backend_url`](Self::backend_url) / [`coordinated`](Self::coordinated) | tooz `backend_url` | none (in-process) |
///
/// Every option means the same on every backend; see
/// [`backend`](crate::backend) for what is shared and what each engine adds.
///
/// ```
/// use std::time::Duration;
/// use lockutils_core::LockOptions;
///
/// let dir = tempfile::tempdir().unwrap();
/// let guard = LockOptions::new("instance-1234")
///     .external(true)
///     .prefix("nova")
///     .lock_path(dir.path())
///     .timeout(Duration::from_secs(5))
///     .lock()
///     .unwrap();
/// assert!(dir.path().join("nova-instance-1234").exists());
/// drop(guard);
/// ```
#[derive(Clone, Copy)]
pub struct LockOptions<'a, 'r> {
    pub(crate) name: &'a str,
    pub(crate) prefix: Option<&'a str>,
    pub(crate) external: bool,
    pub(crate) lock_path: Option<LockDir<'a>>,
    pub(crate) fair: bool,
    pub(crate) blocking: bool,
    pub(crate) timeout: Option<Duration>,
    pub(crate) mode: Mode,
    pub(crate) registry: &'r Registry,
    pub(crate) file_mode: u32,
    pub(crate) remove_on_release: bool,
    pub(crate) caller: Option<&'static str>,
    pub(crate) backend: Selected<'a>,
}

/// Which backend, if any, stands behind the in-process lock (besides the
/// `external` lock-file shorthand, which keeps its own short path).
#[derive(Clone, Copy)]
pub(crate) enum Selected<'a> {
    /// In-process only (or lock files, with `external`).
    None,
    /// This backend.
    Backend(&'a dyn Backend),
    /// The backend of this coordination URL, resolved at each acquisition
    /// (one backend per URL per process).
    Url(&'a str),
    /// The process's default coordination URL.
    Default,
}

impl<'a> LockOptions<'a, 'static> {
    /// An in-process, exclusive, blocking, unfair lock named `name` in the
    /// global registry.
    ///
    /// ```
    /// let g = lockutils_core::LockOptions::new("doc-new").lock().unwrap();
    /// # drop(g);
    /// ```
    pub const fn new(name: &'a str) -> Self {
        LockOptions {
            name,
            prefix: None,
            external: false,
            lock_path: None,
            fair: false,
            blocking: true,
            timeout: None,
            mode: Mode::Exclusive,
            registry: Registry::global(),
            file_mode: DEFAULT_FILE_MODE,
            remove_on_release: false,
            caller: None,
            backend: Selected::None,
        }
    }
}

impl<'a, 'r> LockOptions<'a, 'r> {
    /// The name as given.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// Prefix of the lock file name (and of the lock's identity); joined with
    /// `-` unless it ends with one.
    ///
    /// ```
    /// let g = lockutils_core::LockOptions::new("x").prefix("nova").lock().unwrap();
    /// assert_eq!(lockutils_core::LockGuard::name(&g), "nova-x");
    /// ```
    pub const fn prefix(mut self, prefix: &'a str) -> Self {
        self.prefix = Some(prefix);
        self
    }

    /// Also lock across processes, with a lock file in the lock directory.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let g = lockutils_core::LockOptions::new("x").external(true).lock_path(dir.path()).lock().unwrap();
    /// assert_eq!(lockutils_core::LockGuard::path(&g), Some(dir.path().join("x").as_path()));
    /// ```
    ///
    /// `external(true)` is the lock-file backend at [`lock_path`](Self::lock_path)
    /// (with [`file_mode`](Self::file_mode) and
    /// [`remove_on_release`](Self::remove_on_release)), and replaces any
    /// [`backend`](Self::backend) given before.
    pub const fn external(mut self, external: bool) -> Self {
        self.external = external;
        if external {
            self.backend = Selected::None;
        }
        self
    }

    /// Lock on this backend too, behind the in-process lock (replacing
    /// [`external`](Self::external)). The same options mean the same thing
    /// on every backend; a capability the backend lacks (a shared lock on an
    /// engine without them) fails with
    /// [`Error::Unsupported`](crate::Error::Unsupported) naming it.
    ///
    /// ```
    /// use lockutils_core::backend::FileBackend;
    /// let dir = tempfile::tempdir().unwrap();
    /// let files = FileBackend::new(dir.path());
    /// let g = lockutils_core::LockOptions::new("x").backend(&files).lock().unwrap();
    /// assert!(dir.path().join("x").exists());
    /// # drop(g);
    /// ```
    pub const fn backend(mut self, backend: &'a dyn Backend) -> Self {
        self.backend = Selected::Backend(backend);
        self.external = false;
        self
    }

    /// Lock on the backend of this coordination URL (`file:///dir`,
    /// `zookeeper://h1:2181,h2:2181/root`), one per URL per process; see
    /// [`backend_for_url`](crate::backend::backend_for_url). Usable in
    /// `const` contexts such as a [`StaticLock`](crate::StaticLock).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let url = format!("file://{}", dir.path().display());
    /// let g = lockutils_core::LockOptions::new("x").backend_url(&url).lock().unwrap();
    /// assert!(dir.path().join("x").exists());
    /// # drop(g);
    /// ```
    pub const fn backend_url(mut self, url: &'a str) -> Self {
        self.backend = Selected::Url(url);
        self.external = false;
        self
    }

    /// Lock on a backend given as a reference to one (`&files`,
    /// `&Arc<dyn Backend>`) or to a coordination URL (`&String`, `&str`):
    /// what `#[synchronized(backend = <expr>)]` expands to.
    ///
    /// ```
    /// use lockutils_core::backend::FileBackend;
    /// let dir = tempfile::tempdir().unwrap();
    /// let files = FileBackend::new(dir.path());
    /// let url = format!("file://{}", dir.path().display());
    /// drop(lockutils_core::LockOptions::new("a").backend_from(&files).lock().unwrap());
    /// drop(lockutils_core::LockOptions::new("b").backend_from(&url).lock().unwrap());
    /// assert!(dir.path().join("a").exists() && dir.path().join("b").exists());
    /// ```
    pub fn backend_from<B: AsBackend + ?Sized>(mut self, backend: &'a B) -> Self {
        self.backend = backend.as_backend().0;
        self.external = false;
        self
    }

    /// Lock on the process's default backend: the URL set by
    /// [`set_default_url`](crate::backend::set_default_url), else
    /// `LOCKUTILS_COORDINATION_URL`.
    pub const fn coordinated(mut self) -> Self {
        self.backend = Selected::Default;
        self.external = false;
        self
    }

    /// The directory for the lock file; see [`lock_path`](crate::lock_path())
    /// for the default.
    ///
    /// ```
    /// let opts = lockutils_core::LockOptions::new("x").lock_path("/srv/locks".as_ref());
    /// assert_eq!(opts.file_path().unwrap(), std::path::Path::new("/srv/locks/x"));
    /// ```
    pub const fn lock_path(mut self, dir: &'a Path) -> Self {
        self.lock_path = Some(LockDir::Path(dir));
        self
    }

    /// [`lock_path`](Self::lock_path) from a string, usable in `const`
    /// contexts such as a [`StaticLock`](crate::StaticLock).
    ///
    /// ```
    /// let opts = lockutils_core::LockOptions::new("x").lock_path_str("/srv/locks");
    /// assert_eq!(opts.file_path().unwrap(), std::path::Path::new("/srv/locks/x"));
    /// ```
    pub const fn lock_path_str(mut self, dir: &'a str) -> Self {
        self.lock_path = Some(LockDir::Str(dir));
        self
    }

    /// The explicit lock directory, if one was given.
    pub fn lock_dir(&self) -> Option<&'a Path> {
        self.lock_path.map(|d| match d {
            LockDir::Path(p) => p,
            LockDir::Str(s) => Path::new(s),
        })
    }

    /// Strict FIFO among waiters: the lock is handed to the longest waiter and
    /// never taken by a newcomer while others wait. (A thread that finds the
    /// lock held checks it again for about a tenth of a microsecond before it
    /// lines up, and may take it then only if nobody is in line.)
    ///
    /// ```
    /// let g = lockutils_core::LockOptions::new("x").fair(true).lock().unwrap();
    /// # drop(g);
    /// ```
    pub const fn fair(mut self, fair: bool) -> Self {
        self.fair = fair;
        self
    }

    /// With `false`, [`lock`](Self::lock) fails at once with
    /// [`Error::WouldBlock`](crate::Error::WouldBlock) instead of waiting.
    ///
    /// ```
    /// let g = lockutils_core::LockOptions::new("x").blocking(false).lock().unwrap();
    /// # drop(g);
    /// ```
    pub const fn blocking(mut self, blocking: bool) -> Self {
        self.blocking = blocking;
        self
    }

    /// Bounds the whole acquisition (in-process wait and file wait together);
    /// past it, [`Error::Timeout`](crate::Error::Timeout).
    ///
    /// ```
    /// use std::time::Duration;
    /// let g = lockutils_core::LockOptions::new("x").timeout(Duration::from_millis(250)).lock().unwrap();
    /// # drop(g);
    /// ```
    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Shared (reader) or exclusive (writer) mode.
    ///
    /// ```
    /// use lockutils_core::{LockOptions, Mode};
    /// let a = LockOptions::new("x").mode(Mode::Shared).lock().unwrap();
    /// let b = std::thread::spawn(|| LockOptions::new("x").shared().try_lock().is_ok()).join().unwrap();
    /// assert!(b, "readers share");
    /// # drop(a);
    /// ```
    pub const fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Shorthand for `mode(Mode::Shared)`.
    ///
    /// ```
    /// let g = lockutils_core::LockOptions::new("x").shared().lock().unwrap();
    /// # drop(g);
    /// ```
    pub const fn shared(self) -> Self {
        self.mode(Mode::Shared)
    }

    /// The container of in-process locks to use (oslo's `semaphores`).
    ///
    /// ```
    /// static MINE: lockutils_core::Registry = lockutils_core::Registry::new();
    /// let g = lockutils_core::LockOptions::new("x").registry(&MINE).lock().unwrap();
    /// assert!(MINE.contains("x"));
    /// # drop(g);
    /// ```
    pub const fn registry<'r2>(self, registry: &'r2 Registry) -> LockOptions<'a, 'r2> {
        LockOptions {
            name: self.name,
            prefix: self.prefix,
            external: self.external,
            lock_path: self.lock_path,
            fair: self.fair,
            blocking: self.blocking,
            timeout: self.timeout,
            mode: self.mode,
            registry,
            file_mode: self.file_mode,
            remove_on_release: self.remove_on_release,
            caller: self.caller,
            backend: self.backend,
        }
    }

    /// Permission bits for lock files this lock creates (default `0o600`;
    /// the process umask still applies).
    ///
    /// ```
    /// use std::os::unix::fs::PermissionsExt;
    /// let dir = tempfile::tempdir().unwrap();
    /// let g = lockutils_core::LockOptions::new("x").external(true).lock_path(dir.path())
    ///     .file_mode(0o400).lock().unwrap();
    /// let mode = std::fs::metadata(dir.path().join("x")).unwrap().permissions().mode();
    /// assert_eq!(mode & 0o777, 0o400);
    /// # drop(g);
    /// ```
    pub const fn file_mode(mut self, mode: u32) -> Self {
        self.file_mode = mode;
        self
    }

    /// Remove the lock file when the lock is released (if no other holder
    /// shares it), with the safe removal protocol: waiters in other processes
    /// notice and retry on a new file.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let g = lockutils_core::LockOptions::new("x").external(true)
    ///     .lock_path(dir.path()).remove_on_release(true).lock().unwrap();
    /// drop(g);
    /// assert!(!dir.path().join("x").exists());
    /// ```
    pub const fn remove_on_release(mut self, remove: bool) -> Self {
        self.remove_on_release = remove;
        self
    }

    /// Who takes the lock, for log lines (the macros pass the function path).
    ///
    /// ```
    /// let g = lockutils_core::LockOptions::new("x").caller("my_crate::reserve").lock().unwrap();
    /// # drop(g);
    /// ```
    pub const fn caller(mut self, caller: &'static str) -> Self {
        self.caller = Some(caller);
        self
    }

    /// The lock's identity and lock file name.
    ///
    /// # Errors
    /// [`Error::InvalidName`](crate::Error::InvalidName), as
    /// [`lock_file_name`](crate::lock_file_name).
    ///
    /// ```
    /// let opts = lockutils_core::LockOptions::new("a/b").prefix("p");
    /// assert_eq!(opts.file_name().unwrap(), "p-a_b");
    /// ```
    #[inline]
    pub fn file_name(&self) -> Result<std::borrow::Cow<'a, str>> {
        crate::name::lock_file_name(self.name, self.prefix)
    }

    /// The lock file path this lock uses when external.
    ///
    /// # Errors
    /// As [`file_name`](Self::file_name).
    ///
    /// ```
    /// let opts = lockutils_core::LockOptions::new("x").lock_path("/srv/locks".as_ref());
    /// assert_eq!(opts.file_path().unwrap(), std::path::Path::new("/srv/locks/x"));
    /// ```
    pub fn file_path(&self) -> Result<std::path::PathBuf> {
        let name = self.file_name()?;
        Ok(crate::lock_path::resolve(self.lock_dir()).dir.join(&*name))
    }

    /// Runs `f` while holding the lock: the closure form of `#[synchronized]`.
    ///
    /// # Errors
    /// Any acquisition error; `f` does not run then.
    ///
    /// ```
    /// let n = lockutils_core::LockOptions::new("doc-sync").synchronized(|| 41 + 1).unwrap();
    /// assert_eq!(n, 42);
    /// ```
    pub fn synchronized<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        let _guard = self.lock()?;
        Ok(f())
    }
}

/// What [`LockOptions::backend_from`] accepts: a backend, or a coordination
/// URL.
pub trait AsBackend {
    /// The backend selection.
    fn as_backend(&self) -> BackendRef<'_>;
}

/// A backend selection, as [`AsBackend`] gives it.
#[derive(Clone, Copy, Debug)]
pub struct BackendRef<'a>(Selected<'a>);

impl<T: Backend> AsBackend for T {
    fn as_backend(&self) -> BackendRef<'_> {
        BackendRef(Selected::Backend(self))
    }
}

impl AsBackend for dyn Backend {
    fn as_backend(&self) -> BackendRef<'_> {
        BackendRef(Selected::Backend(self))
    }
}

impl<T: AsBackend + ?Sized> AsBackend for std::sync::Arc<T> {
    fn as_backend(&self) -> BackendRef<'_> {
        (**self).as_backend()
    }
}

impl AsBackend for str {
    fn as_backend(&self) -> BackendRef<'_> {
        BackendRef(Selected::Url(self))
    }
}

impl AsBackend for String {
    fn as_backend(&self) -> BackendRef<'_> {
        BackendRef(Selected::Url(self))
    }
}

impl fmt::Debug for Selected<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selected::None => f.write_str("None"),
            Selected::Backend(b) => write!(f, "{}", b.url()),
            Selected::Url(u) => write!(f, "{}", crate::backend::redact(u)),
            Selected::Default => f.write_str("default coordination URL"),
        }
    }
}

/// An explicit lock directory, as a path or (for `const` use) a string.
#[derive(Clone, Copy, Debug)]
pub(crate) enum LockDir<'a> {
    Path(&'a Path),
    Str(&'a str),
}

impl fmt::Debug for LockOptions<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockOptions")
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .field("external", &self.external)
            .field("lock_path", &self.lock_dir())
            .field("fair", &self.fair)
            .field("blocking", &self.blocking)
            .field("timeout", &self.timeout)
            .field("mode", &self.mode)
            .field("file_mode", &format_args!("{:o}", self.file_mode))
            .field("remove_on_release", &self.remove_on_release)
            .field("backend", &self.backend)
            .finish()
    }
}
