//! The file backend: today's lock files (`file.rs`) behind the
//! [`Backend`] trait, so a `file://` URL selects them like any engine.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use super::{
    Admin, Backend, BackendHold, BoxHold, Capabilities, Capability, ContenderInfo, FileFacts,
    HoldFuture, Listing, Location, LockInfo, LockState, Removal, Request, Wait,
};
use crate::error::{Error, Result};
use crate::file::{self, AsyncWait, FileLock, Outcome, Step, Target, Unlink, DEFAULT_FILE_MODE};
use crate::raw::Mode;
use crate::timer;

/// Lock files in one directory, compatible with oslo.concurrency and
/// fasteners: what [`LockOptions::external`](crate::LockOptions::external)
/// uses, as a [`Backend`]. Its URL is `file:///the/dir` (optionally
/// `?file_mode=0640`).
///
/// Shared locks, no fencing tokens (a lock file has no counter), no loss
/// (the kernel keeps the lock while the holder lives), no revocation.
#[derive(Clone)]
pub struct FileBackend {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    url: String,
    file_mode: u32,
    /// The directory is the per-user default: checked to be this user's
    /// and private before first use, as for the library's own default.
    user_default: bool,
}

impl FileBackend {
    /// Lock files in `dir` (created on first use), mode `0o600`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self::with_mode(dir.into(), DEFAULT_FILE_MODE)
    }

    fn with_mode(dir: PathBuf, file_mode: u32) -> Self {
        let url = if file_mode == DEFAULT_FILE_MODE {
            format!("file://{}", dir.display())
        } else {
            format!("file://{}?file_mode={file_mode:o}", dir.display())
        };
        let user_default = dir == crate::lock_path::user_default_dir();
        FileBackend {
            inner: Arc::new(Inner {
                dir,
                url,
                file_mode,
                user_default,
            }),
        }
    }

    /// The same directory, creating lock files with permission bits `mode`.
    pub fn file_mode(self, mode: u32) -> Self {
        Self::with_mode(self.inner.dir.clone(), mode)
    }

    /// The lock directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Parses `file:///dir[?file_mode=OCTAL]` (also `file://localhost/dir`).
    pub(crate) fn from_url(url: &str) -> std::result::Result<Self, String> {
        let rest = url
            .strip_prefix("file://")
            .ok_or("expected file:///absolute/lock/directory")?;
        let rest = rest.strip_prefix("localhost").unwrap_or(rest);
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if !path.starts_with('/') {
            return Err(format!(
                "the lock directory must be absolute (file:///var/lib/app/locks), not {path:?}"
            ));
        }
        let mut mode = DEFAULT_FILE_MODE;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("file_mode", v)) => {
                    mode = u32::from_str_radix(v, 8)
                        .ok()
                        .filter(|m| *m <= 0o7777)
                        .ok_or_else(|| {
                            format!("file_mode must be octal bits such as 0640, not {v:?}")
                        })?;
                }
                _ => {
                    return Err(format!(
                        "unknown option {pair:?}; file URLs take file_mode=OCTAL"
                    ))
                }
            }
        }
        Ok(Self::with_mode(PathBuf::from(path), mode))
    }

    fn target<'a>(&'a self, request: &'a Request, mode: Mode, create: bool) -> Target<'a> {
        Target {
            name: &request.name,
            dir: &self.inner.dir,
            file_name: &request.identity,
            mode,
            file_mode: self.inner.file_mode,
            create,
            user_default_dir: self.inner.user_default,
        }
    }

    fn hold(&self, lock: FileLock) -> BoxHold {
        Box::new(FileHold {
            lock,
            backend: self.inner.clone(),
        })
    }
}

impl fmt::Debug for FileBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("FileBackend").field(&self.inner.url).finish()
    }
}

impl Backend for FileBackend {
    fn kind(&self) -> &'static str {
        "file"
    }

    fn url(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.inner.url)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
            .with(Capability::Shared)
            .with(Capability::Admin)
            .with(Capability::Age)
    }

    fn acquire(&self, request: &Request, wait: Wait) -> Result<Option<BoxHold>> {
        let wait = match wait {
            Wait::Never => file::Wait::Never,
            Wait::Forever => file::Wait::Forever,
            Wait::Until(d) => file::Wait::Until(d),
        };
        let target = self.target(request, request.mode, true);
        // As `external(true)` does: a wait for a file this thread holds
        // through the shorthand would wait on the thread itself.
        let first = target.acquire_outcome(file::Wait::Never)?;
        let got = match first {
            Outcome::Busy if !matches!(wait, file::Wait::Never) => {
                if crate::held::holds_file(&self.inner.dir.join(&request.identity)) {
                    return Err(Error::WouldDeadlock {
                        name: request.name.clone(),
                    });
                }
                target.acquire(wait)?
            }
            Outcome::Locked(lock) => Some(lock),
            Outcome::Busy | Outcome::Absent => None,
        };
        Ok(got.map(|lock| self.hold(lock)))
    }

    fn acquire_async(&self, request: Request, wait: Wait) -> HoldFuture {
        Box::pin(FileAcquire {
            backend: self.clone(),
            request,
            wait,
            file: AsyncWait::default(),
            sleep: None,
        })
    }

    fn admin(&self) -> Result<&dyn Admin> {
        Ok(self)
    }
}

/// A held lock file; closing it (on drop) releases the lock.
struct FileHold {
    lock: FileLock,
    backend: Arc<Inner>,
}

impl fmt::Debug for FileHold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("FileHold").field(&self.lock.path).finish()
    }
}

/// The lock file of a hold taken through a [`FileBackend`], so that the
/// thread's record of it counts for self-deadlock detection as an
/// `external(true)` hold's does.
pub(crate) fn held_file(hold: &dyn BackendHold) -> Option<&FileLock> {
    (hold as &dyn std::any::Any)
        .downcast_ref::<FileHold>()
        .map(|h| &h.lock)
}

impl BackendHold for FileHold {
    fn backend(&self) -> &str {
        &self.backend.url
    }

    fn location(&self) -> Location<'_> {
        Location::Path(&self.lock.path)
    }
}

/// An async wait for a lock file: the file layer's own
/// ([`Target::poll_acquire`]), so it sleeps in the kernel on a waiter thread
/// and is woken by the release, exactly as `external(true)` is. The timer
/// wakes it at the deadline. Dropping it (or running out of time) calls the
/// kernel wait off: it is orphaned, releases the lock at once if granted, and
/// is adopted by the next acquirer of the file (see
/// [`file_wait`](crate::file_wait)).
struct FileAcquire {
    backend: FileBackend,
    request: Request,
    wait: Wait,
    /// The kernel wait in progress, if any.
    file: AsyncWait,
    /// Wakes the task at the deadline (or at the next attempt when no
    /// waiter thread can be had).
    sleep: Option<timer::Sleep>,
}

impl Future for FileAcquire {
    type Output = Result<Option<BoxHold>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let target = this.backend.target(&this.request, this.request.mode, true);
        let blocking = !matches!(this.wait, Wait::Never);
        let step = target.poll_acquire(&mut this.file, blocking, cx.waker());
        let out = match step {
            Err(e) => Err(e),
            Ok(Step::Ready(Outcome::Locked(lock))) => Ok(Some(this.backend.hold(lock))),
            Ok(Step::Ready(Outcome::Busy | Outcome::Absent)) => Ok(None),
            Ok(Step::Pending { .. }) if this.wait.expired() => Ok(None),
            Ok(Step::Pending { retry_at }) => {
                let at = match (retry_at, this.wait.deadline()) {
                    (Some(r), Some(d)) => Some(r.min(d)),
                    (r, d) => r.or(d),
                };
                this.sleep = at.map(|at| timer::Sleep::new(at, cx.waker()));
                return Poll::Pending;
            }
        };
        // Finished: call off a kernel wait still in progress (a timeout) now
        // rather than when the future is dropped, and stop the timer.
        this.file = AsyncWait::default();
        this.sleep = None;
        Poll::Ready(out)
    }
}

impl FileBackend {
    fn lock_error(&self, identity: &str, path: &Path, action: &'static str, e: io::Error) -> Error {
        Error::LockFile {
            name: identity.to_owned(),
            path: path.to_owned(),
            action,
            source: e,
        }
    }

    /// The per-user default directory's ownership check (see
    /// [`lock_path`](crate::lock_path)), before the directory is used.
    fn verify_user_default(&self, identity: &str) -> Result<()> {
        if self.inner.user_default {
            crate::lock_path::verify_user_default(identity, &self.inner.dir)?;
        }
        Ok(())
    }

    /// An error if something that is not a lock file (not a regular file,
    /// not empty) is at the lock's path: `remove` never unlinks it, and
    /// `inspect` does not report it as a free lock. A missing file is fine.
    fn refuse_non_lock_file(&self, identity: &str, action: &'static str) -> Result<()> {
        let path = self.inner.dir.join(identity);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(_) => return Ok(()),
        };
        let why = if meta.is_file() {
            not_a_lock_file(Some(identity), &meta)
        } else {
            Some("not a regular file, so not a lock file".to_owned())
        };
        match why {
            None => Ok(()),
            Some(why) => Err(self.lock_error(
                identity,
                &path,
                action,
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{why}; left alone: check the name and the lock directory"),
                ),
            )),
        }
    }

    fn check_identity(&self, identity: &str) -> Result<()> {
        let name = crate::name::lock_file_name(identity, None)?;
        if name != identity {
            return Err(Error::InvalidName {
                name: identity.to_owned(),
                reason: "not a lock file name: give the identity as listed (after prefix and sanitising)",
            });
        }
        Ok(())
    }
}

impl FileBackend {
    /// Holders (and, on Linux, waiters with pids) of these lock files, from
    /// one look at the kernel's tables.
    #[cfg(target_os = "linux")]
    fn inspect_all(&self, identities: &[String]) -> Result<Vec<LockInfo>> {
        use crate::file_inspect::{FileOwner, Snapshot};
        let mut found = Vec::new();
        for identity in identities {
            let path = self.inner.dir.join(identity);
            match std::fs::symlink_metadata(&path) {
                Ok(meta) => found.push((identity, path, Some(meta))),
                Err(e) if e.kind() == io::ErrorKind::NotFound => found.push((identity, path, None)),
                Err(e) => return Err(self.lock_error(identity, &path, "inspect", e)),
            }
        }
        let snapshot = Snapshot::take(found.iter().filter_map(|(_, _, m)| m.as_ref()));
        let contender = |o: &FileOwner| {
            let mut c = ContenderInfo::new(o.mode.map(|m| match m {
                crate::procfs::LockMode::Shared => Mode::Shared,
                crate::procfs::LockMode::Exclusive => Mode::Exclusive,
            }));
            c.pid = o.pid.and_then(|p| u32::try_from(p).ok());
            c.process_started = o
                .started_unix
                .and_then(|t| u64::try_from(t).ok())
                .map(|t| std::time::UNIX_EPOCH + Duration::from_secs(t));
            c.kind = Some(o.kind.as_str());
            c.command.clone_from(&o.command);
            c.fds.clone_from(&o.fds);
            c.evidence = o.evidence;
            c.detail = format!(
                "{}{}",
                o.kind.as_str(),
                o.command
                    .as_deref()
                    .map(|c| format!(" {c}"))
                    .unwrap_or_default()
            );
            c
        };
        Ok(found
            .iter()
            .map(|(identity, path, meta)| {
                let mut info = LockInfo::new(identity.as_str(), path.display().to_string());
                info.exists = Some(meta.is_some());
                if let Some(meta) = meta {
                    let state = snapshot.inspect(path, meta);
                    info.holders = state.holders.iter().map(contender).collect();
                    info.waiters = state.waiters.iter().map(contender).collect();
                    info.holder_count = state.holder_count;
                    info.foreign_locks = Some(state.flock_locks);
                    info.hidden_processes = Some(state.hidden_processes);
                    info.error = state.error;
                    info.state = match state.state {
                        crate::file_inspect::State::Free => LockState::Free,
                        crate::file_inspect::State::HeldExclusive => LockState::HeldExclusive,
                        crate::file_inspect::State::HeldShared => LockState::HeldShared,
                        crate::file_inspect::State::Unknown => LockState::Unknown,
                    };
                    info.file = Some(file_facts(meta));
                    info.created = info.file.as_ref().map(|f| f.modified);
                }
                info
            })
            .collect())
    }

    /// Holders of these lock files, as `F_GETLK` tells (no waiters).
    #[cfg(not(target_os = "linux"))]
    fn inspect_all(&self, identities: &[String]) -> Result<Vec<LockInfo>> {
        identities
            .iter()
            .map(|identity| {
                let path = self.inner.dir.join(identity);
                let mut info = LockInfo::new(identity.as_str(), path.display().to_string());
                let f = match file::open_lock_file(&path, false, self.inner.file_mode) {
                    Ok(f) => f,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        info.exists = Some(false);
                        return Ok(info);
                    }
                    Err(e) => return Err(self.lock_error(identity, &path, "open", e)),
                };
                info.exists = Some(true);
                if let Ok(meta) = f.metadata() {
                    info.file = Some(file_facts(&meta));
                    info.created = info.file.as_ref().map(|f| f.modified);
                }
                if let Some(c) = file::probe(&f, Mode::Exclusive)
                    .map_err(|e| self.lock_error(identity, &path, "inspect", e))?
                {
                    let mut holder = ContenderInfo::new(Some(c.mode));
                    holder.pid = u32::try_from(c.pid).ok().filter(|p| *p > 0);
                    info.holders.push(holder);
                }
                info.settle_state();
                Ok(info)
            })
            .collect()
    }
}

impl Admin for FileBackend {
    fn backend(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.inner.url)
    }

    fn list(&self) -> Result<Vec<LockInfo>> {
        Ok(self.list_all()?.locks)
    }

    /// The lock files of the directory; regular files that are not lock
    /// files (not empty, or not named as a lock file) and anything that is
    /// not a regular file are `ignored`, with why. A missing directory has
    /// no locks.
    fn list_all(&self) -> Result<Listing> {
        let dir = &self.inner.dir;
        self.verify_user_default("*")?;
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Listing::default()),
            Err(e) => return Err(self.lock_error("*", dir, "list", e)),
        };
        let mut names = Vec::new();
        let mut ignored = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| self.lock_error("*", dir, "list", e))?;
            let shown = entry.file_name().to_string_lossy().into_owned();
            let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
                continue; // removed meanwhile
            };
            if !meta.is_file() {
                ignored.push((shown, "not a regular file, so not a lock file".to_owned()));
                continue;
            }
            match not_a_lock_file(entry.file_name().to_str(), &meta) {
                None => names.push(shown),
                Some(why) => ignored.push((shown, why)),
            }
        }
        names.sort();
        ignored.sort();
        Ok(Listing {
            locks: self.inspect_all(&names)?,
            ignored,
        })
    }

    fn location(&self, identity: &str) -> String {
        self.inner.dir.join(identity).display().to_string()
    }

    /// The lock file's holders and waiters; a missing lock file is an
    /// [`Error::LockFile`] naming its path.
    fn inspect(&self, identity: &str) -> Result<LockInfo> {
        self.check_identity(identity)?;
        self.verify_user_default(identity)?;
        self.refuse_non_lock_file(identity, "inspect")?;
        let mut all = self.inspect_all(&[identity.to_owned()])?;
        let info = all.pop().expect("one lock asked, one answered");
        if info.exists == Some(false) {
            let path = self.inner.dir.join(identity);
            let os = io::Error::from(io::ErrorKind::NotFound);
            return Err(self.lock_error(
                identity,
                &path,
                "inspect",
                crate::diagnose::diagnosed(
                    "there is no such lock file: check the name, the prefix and the lock \
                     directory",
                    os,
                ),
            ));
        }
        Ok(info)
    }

    fn remove_if_free(&self, identity: &str) -> Result<Removal> {
        self.check_identity(identity)?;
        self.refuse_non_lock_file(identity, "remove")?;
        let request = Request {
            name: identity.to_owned(),
            identity: identity.to_owned(),
            mode: Mode::Exclusive,
            caller: None,
        };
        match self
            .target(&request, Mode::Exclusive, false)
            .acquire_outcome(file::Wait::Never)?
        {
            Outcome::Locked(lock) => Ok({
                // Looked at again now that it is locked: the file at the
                // path may have been replaced since.
                self.refuse_non_lock_file(identity, "remove")?;
                match lock
                    .remove_while_held(Mode::Exclusive)
                    .map_err(|e| self.lock_error(identity, &lock.path, "remove", e))?
                {
                    Unlink::Removed => Removal::Removed,
                    Unlink::NotRemoved => Removal::Absent,
                    Unlink::InUse(in_use) => Removal::InUse(in_use),
                }
            }),
            Outcome::Busy => Ok(Removal::Busy),
            Outcome::Absent => Ok(Removal::Absent),
        }
    }
}

/// Why the regular file named `name` (`None`: not UTF-8) is not a lock file,
/// or `None` if it is one. A lock file is empty (no lock implementation
/// writes to it) and its name is its own lock file name, so the library locks
/// exactly this file.
fn not_a_lock_file(name: Option<&str>, meta: &std::fs::Metadata) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let Some(name) = name else {
        return Some("the name is not UTF-8, so not a lock name".into());
    };
    if meta.size() > 0 {
        return Some(format!(
            "not empty ({} bytes), so not a lock file (lock files are always empty)",
            meta.size()
        ));
    }
    if crate::name::lock_file_name(name, None).ok().as_deref() != Some(name) {
        return Some("not a lock file name".into());
    }
    None
}

/// A lock file's metadata.
fn file_facts(meta: &std::fs::Metadata) -> FileFacts {
    use std::os::unix::fs::MetadataExt;
    FileFacts {
        device: crate::procfs::LockKey::of(meta).device(),
        inode: meta.ino(),
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        size: meta.size(),
        modified: meta.modified().unwrap_or(std::time::UNIX_EPOCH),
    }
}
