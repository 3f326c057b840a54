//! The administration interface a backend may offer: what operators (and
//! the `lockutils` command) do to locks they do not hold.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use super::Capability;
use crate::error::{Error, Result};
use crate::raw::Mode;

/// One holder or waiter of a lock, as far as the backend can tell.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ContenderInfo {
    /// Shared or exclusive; `None` when the backend cannot tell.
    pub mode: Option<Mode>,
    /// Process id, where known (on the holder's host).
    pub pid: Option<u32>,
    /// Host name, where known.
    pub host: Option<String>,
    /// Since when it holds or waits, where known.
    pub since: Option<SystemTime>,
    /// Its fencing token, where the backend has them.
    pub token: Option<u64>,
    /// Anything else the backend records (a candidate node, a command line).
    pub detail: String,
    /// The database role it connected as, where known.
    pub user: Option<String>,
    /// How it locks, one word: `ofd` or `posix` for lock files, the node
    /// layout (`native`, `kazoo`, `curator`) on ZooKeeper, `advisory` on
    /// PostgreSQL.
    pub kind: Option<&'static str>,
    /// Its command line, where the backend can see the process.
    pub command: Option<String>,
    /// The application name it gave the server (PostgreSQL's
    /// `application_name`).
    pub application: Option<String>,
    /// What it wrote into its own record (a ZooKeeper candidate's data).
    pub data: Option<String>,
    /// Its own record on the backend: a candidate node's name.
    pub node: Option<String>,
    /// Its place in the backend's queue (a sequence number).
    pub sequence: Option<i64>,
    /// The server session it holds or waits through, as the server writes it.
    pub session: Option<String>,
    /// Whether someone asked it to release ([`Admin::revoke`]); `None` where
    /// the backend has no revocation.
    pub revoke_requested: Option<bool>,
    /// Its descriptors open on the lock (lock files; empty when not known).
    pub fds: Vec<i32>,
    /// When its process started: a bound on how long it has held, where the
    /// backend records no lock time (lock files).
    pub process_started: Option<SystemTime>,
    /// How it was found, where the backend has several ways (`fdinfo`,
    /// `proc_locks`, `syscall`, `wchan` for lock files).
    pub evidence: Option<&'static str>,
}

impl ContenderInfo {
    /// A contender in `mode`, with nothing else known.
    pub fn new(mode: Option<Mode>) -> Self {
        ContenderInfo {
            mode,
            ..ContenderInfo::default()
        }
    }
}

/// Whether a lock is held, as one word.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LockState {
    /// Nobody holds it.
    #[default]
    Free,
    /// One exclusive holder.
    HeldExclusive,
    /// One or more shared holders.
    HeldShared,
    /// It could not be examined ([`LockInfo::error`] says why).
    Unknown,
}

impl LockState {
    /// `free`, `held_exclusive`, `held_shared`, `unknown`.
    pub const fn as_str(self) -> &'static str {
        match self {
            LockState::Free => "free",
            LockState::HeldExclusive => "held_exclusive",
            LockState::HeldShared => "held_shared",
            LockState::Unknown => "unknown",
        }
    }
}

/// A lock file's metadata, for backends whose locks are files.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileFacts {
    /// Device as the kernel prints it in `/proc/locks` (`MAJOR:MINOR`, hex).
    pub device: String,
    /// Inode number.
    pub inode: u64,
    /// Permission bits.
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Size in bytes (lock files are empty).
    pub size: u64,
    /// Last modification: for lock files, creation.
    pub modified: SystemTime,
}

/// One lock as seen by [`Admin::inspect`] or [`Admin::list`]: the same
/// shape for every backend, with `None` (or empty) where a backend cannot
/// tell.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LockInfo {
    /// The lock's identity.
    pub identity: String,
    /// Where it lives (a path, a node, a key).
    pub location: String,
    /// Whether it is held; [`LockInfo::settle_state`] derives it from the
    /// holders.
    pub state: LockState,
    /// Who holds it.
    pub holders: Vec<ContenderInfo>,
    /// Who waits for it (empty where the backend cannot see waiters).
    pub waiters: Vec<ContenderInfo>,
    /// How many holds the backend counts, where it differs from what can be
    /// attributed to a holder (lock files: granted `fcntl` locks).
    pub holder_count: Option<usize>,
    /// Whether the lock's record (file, node) exists; `None` where locks
    /// leave none.
    pub exists: Option<bool>,
    /// The backend's own key for the lock, where it is not the location (an
    /// advisory-lock key).
    pub key: Option<String>,
    /// Why the lock could not be examined ([`LockState::Unknown`]).
    pub error: Option<String>,
    /// Locks on the record that do not exclude this library's (`flock(2)`
    /// locks on a lock file).
    pub foreign_locks: Option<usize>,
    /// Processes whose holds could not be inspected (other users'): holders
    /// among them appear without a pid.
    pub hidden_processes: Option<usize>,
    /// The lock file's metadata, for file backends.
    pub file: Option<FileFacts>,
    /// When the lock's record was created, where the backend records it
    /// (a lock file's modification time, which locking never changes).
    pub created: Option<SystemTime>,
}

impl LockInfo {
    /// A lock with no holder or waiter known yet.
    pub fn new(identity: impl Into<String>, location: impl Into<String>) -> Self {
        LockInfo {
            identity: identity.into(),
            location: location.into(),
            ..LockInfo::default()
        }
    }

    /// Whether anyone holds it.
    pub fn is_held(&self) -> bool {
        !self.holders.is_empty()
    }

    /// Sets [`state`](Self::state) from the error and the holders' modes
    /// (a holder of unknown mode counts as exclusive).
    pub fn settle_state(&mut self) {
        self.state = if self.error.is_some() {
            LockState::Unknown
        } else if self.holders.is_empty() {
            LockState::Free
        } else if self.holders.iter().all(|h| h.mode == Some(Mode::Shared)) {
            LockState::HeldShared
        } else {
            LockState::HeldExclusive
        };
    }

    /// A lock that could not be examined, and why.
    pub fn unknown(
        identity: impl Into<String>,
        location: impl Into<String>,
        error: impl Into<String>,
    ) -> Self {
        LockInfo {
            state: LockState::Unknown,
            error: Some(error.into()),
            ..LockInfo::new(identity, location)
        }
    }
}

/// What [`Admin::clean_with`] may remove.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CleanOptions {
    /// Only locks whose record is at least this old (where the backend
    /// knows its age; elsewhere asking is [`Error::Unsupported`]).
    pub older_than: Option<Duration>,
    /// Say what would be removed; remove nothing.
    pub dry_run: bool,
}

impl CleanOptions {
    /// Every free lock, for real.
    pub const fn new() -> Self {
        CleanOptions {
            older_than: None,
            dry_run: false,
        }
    }

    /// Only locks at least `age` old.
    pub const fn older_than(mut self, age: Option<Duration>) -> Self {
        self.older_than = age;
        self
    }

    /// Remove nothing, report what would go.
    pub const fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }
}

/// What became of one entry in [`Admin::clean_with`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cleaned {
    /// Free, and removed.
    Removed,
    /// Free: a dry run would remove it.
    WouldRemove,
    /// Held or awaited: kept, with who holds it.
    Busy(Box<LockInfo>),
    /// Gone meanwhile.
    Absent,
    /// Newer than [`CleanOptions::older_than`]: kept; its age.
    TooYoung(Duration),
    /// Not a lock of this backend: kept, and why.
    Skipped(String),
    /// Free, but another process has its lock file open (see
    /// [`Removal::InUse`]): kept, with who has it and what to do.
    InUse(crate::InUse),
}

impl Cleared {
    /// `removed` records of the lock `before` removed; `kept` says what
    /// stayed and why.
    pub fn new(before: LockInfo, removed: usize, kept: Option<String>) -> Self {
        Cleared {
            before,
            removed,
            kept,
        }
    }
}

/// What [`Admin::list_all`] found: the locks, and the entries of the
/// backend's namespace that are not locks (files that are not lock files).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Listing {
    /// The locks, sorted by identity.
    pub locks: Vec<LockInfo>,
    /// Other entries and why each is not a lock, sorted by name.
    pub ignored: Vec<(String, String)>,
}

/// What [`Admin::clear`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Cleared {
    /// The lock as it was just before: its holders lost it.
    pub before: LockInfo,
    /// How many records (candidate nodes, sessions) were removed or ended.
    pub removed: usize,
    /// What the backend kept, and why (a kazoo lock node other clients
    /// refer to), if anything.
    pub kept: Option<String>,
}

/// What [`Admin::remove_if_free`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Removal {
    /// The lock was free and is gone.
    Removed,
    /// Someone holds (or waits for) it; nothing was removed.
    Busy,
    /// There was nothing to remove.
    Absent,
    /// Free, but another process has the lock file open (or might: its
    /// descriptors could not be read), so removing it could let two
    /// processes hold the lock; nothing was removed. The
    /// [`InUse`](crate::InUse) says who, and what to do.
    InUse(crate::InUse),
}

/// Operations on locks by name, beside acquiring them: listing, inspecting
/// (this process's own holds and waits included), removing and clearing.
/// Every backend offers what it can; the rest fail with
/// [`Error::Unsupported`] naming the backend.
pub trait Admin: Send + Sync {
    /// The backend's URL, for messages.
    fn backend(&self) -> Cow<'_, str>;

    /// Every lock the backend knows of, with holders where cheap to learn.
    ///
    /// # Errors
    /// The backend's errors.
    fn list(&self) -> Result<Vec<LockInfo>>;

    /// [`list`](Self::list), plus the entries that are not locks and why.
    ///
    /// # Errors
    /// The backend's errors.
    fn list_all(&self) -> Result<Listing> {
        Ok(Listing {
            locks: self.list()?,
            ignored: Vec::new(),
        })
    }

    /// The identity the other methods take for the lock `name`, whose
    /// identity after prefix and sanitising ([`lock_file_name`](crate::lock_file_name))
    /// is `identity`: that one, unless the backend names the lock otherwise
    /// (ZooKeeper's kazoo layout keeps a name's `/`, nesting it as tooz does).
    ///
    /// # Errors
    /// [`Error::InvalidName`] where the backend cannot name this lock.
    fn identity_of(&self, name: &str, identity: &str) -> Result<String> {
        let _ = name;
        Ok(identity.to_owned())
    }

    /// Where the lock `identity` lives or would live (a path, a node, a
    /// key), for messages about a lock that may not exist.
    fn location(&self, identity: &str) -> String {
        identity.to_owned()
    }

    /// One lock: holders, waiters, pids or hosts, ages, tokens.
    ///
    /// # Errors
    /// The backend's errors.
    fn inspect(&self, identity: &str) -> Result<LockInfo>;

    /// Removes the lock's trace (file, node) if nobody holds or waits for it,
    /// without ever letting two holders result.
    ///
    /// # Errors
    /// The backend's errors.
    fn remove_if_free(&self, identity: &str) -> Result<Removal>;

    /// Removes every free lock; returns the identities removed.
    ///
    /// # Errors
    /// The backend's errors.
    fn clean(&self) -> Result<Vec<String>> {
        Ok(self
            .clean_with(&CleanOptions::new())?
            .into_iter()
            .filter(|(_, c)| *c == Cleaned::Removed)
            .map(|(identity, _)| identity)
            .collect())
    }

    /// Removes (or with [`CleanOptions::dry_run`], reports) every free lock,
    /// saying for each entry of the backend what became of it, sorted by
    /// identity. By default: [`list`](Self::list), then
    /// [`remove_if_free`](Self::remove_if_free) for each free lock.
    ///
    /// # Errors
    /// The backend's errors; [`Error::Unsupported`] for an option the
    /// backend cannot honour (an age where it records none).
    fn clean_with(&self, options: &CleanOptions) -> Result<Vec<(String, Cleaned)>> {
        let listing = self.list_all()?;
        let mut out: Vec<(String, Cleaned)> = listing
            .ignored
            .into_iter()
            .map(|(name, why)| (name, Cleaned::Skipped(why)))
            .collect();
        for lock in listing.locks {
            let age = match (options.older_than, lock.created) {
                (None, _) => None,
                (Some(_), Some(t)) => Some(SystemTime::now().duration_since(t).unwrap_or_default()),
                (Some(_), None) => return Err(unsupported(self, &lock.identity, Capability::Age)),
            };
            let outcome = if let Some(age) = age.filter(|a| Some(*a) < options.older_than) {
                Cleaned::TooYoung(age)
            } else if lock.is_held() || !lock.waiters.is_empty() {
                Cleaned::Busy(Box::new(lock.clone()))
            } else if options.dry_run {
                Cleaned::WouldRemove
            } else {
                match self.remove_if_free(&lock.identity)? {
                    Removal::Removed => Cleaned::Removed,
                    Removal::Absent => Cleaned::Absent,
                    Removal::Busy => Cleaned::Busy(Box::new(self.inspect(&lock.identity)?)),
                    Removal::InUse(in_use) => Cleaned::InUse(in_use),
                }
            };
            out.push((lock.identity, outcome));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Forcibly removes every holder and waiter of the lock (they lose it).
    ///
    /// # Errors
    /// [`Error::Unsupported`] where the backend cannot take a lock away.
    fn clear(&self, identity: &str) -> Result<usize> {
        Err(unsupported(self, identity, Capability::Clear))
    }

    /// [`clear`](Self::clear), saying what the lock was and what was kept.
    ///
    /// # Errors
    /// As [`clear`](Self::clear).
    fn clear_with_report(&self, identity: &str) -> Result<Cleared> {
        let before = self.inspect(identity)?;
        let removed = self.clear(identity)?;
        Ok(Cleared::new(before, removed, None))
    }

    /// Asks the lock's holders to release it.
    ///
    /// # Errors
    /// [`Error::Unsupported`] where the backend has no revocation.
    fn revoke(&self, identity: &str) -> Result<usize> {
        Err(unsupported(self, identity, Capability::Revocation))
    }
}

fn unsupported<A: Admin + ?Sized>(admin: &A, identity: &str, capability: Capability) -> Error {
    Error::Unsupported {
        name: identity.to_owned(),
        backend: admin.backend().into_owned(),
        capability,
    }
}

/// This host's name (`gethostname`), read once: what engines write beside
/// their pid to name a contender (`HOST:PID`), so that a report can tell
/// this process's own contenders. Empty if it cannot be read.
pub fn host_name() -> &'static str {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        let mut buf = [0u8; 256];
        // SAFETY: `buf` is writable for its full length, which is passed.
        if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
            return String::new();
        }
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    })
}
