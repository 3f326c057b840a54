//! Inter-process locks on lock files.
//!
//! On Linux these are open-file-description (OFD) `fcntl` locks over the whole
//! file: owned by the open file rather than the process (so two threads, or two
//! open files in one process, exclude each other and closing an unrelated
//! descriptor drops nothing), released by the kernel when the holder dies, and
//! in conflict with the classic `fcntl`/`lockf` locks that oslo.concurrency and
//! fasteners take on the same files. Every wait sleeps in the kernel: blocking
//! ones in the caller's thread, timed and async ones on a waiter thread
//! ([`waiter_threads`]) that can be left behind at a deadline.
//!
//! Elsewhere on Unix, the fallback is classic process-associated `fcntl` locks,
//! which still exclude other processes and oslo, but rely on the in-process lock
//! for exclusion inside one process.
//!
//! Every acquisition checks, while holding the lock, that the file it locked is
//! still the one linked at the path; if a remover unlinked or replaced it in the
//! meantime, the acquisition starts again on the new file. This is what makes
//! removing lock files safe.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::task::Waker;

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};
use crate::fd_cache;
use crate::lock_fds::LockFile;
pub use crate::fd_cache::{kept_descriptors, KEPT_IDLE_CLOSE, MAX_KEPT};
use crate::file_wait::KernelWait;
pub use crate::file_wait::{kernel_waits, waiter_threads, MAX_WAITERS, WAITER_IDLE_EXIT};
use crate::in_use::{self, InUse};
use crate::raw::Mode;
use crate::{diagnose, lock_path};

#[cfg(target_os = "linux")]
const SETLK: libc::c_int = libc::F_OFD_SETLK;
#[cfg(target_os = "linux")]
const SETLKW: libc::c_int = libc::F_OFD_SETLKW;
#[cfg(target_os = "linux")]
const GETLK: libc::c_int = libc::F_OFD_GETLK;
#[cfg(not(target_os = "linux"))]
const SETLK: libc::c_int = libc::F_SETLK;
#[cfg(not(target_os = "linux"))]
const SETLKW: libc::c_int = libc::F_SETLKW;
#[cfg(not(target_os = "linux"))]
const GETLK: libc::c_int = libc::F_GETLK;

/// Default permission bits of new lock files.
pub const DEFAULT_FILE_MODE: u32 = 0o600;

fn whole_file(l_type: libc::c_int) -> libc::flock {
    // SAFETY: `flock` is a plain C struct for which all-zero bytes are valid;
    // zero start and length with SEEK_SET mean "the whole file", and OFD
    // requests require `l_pid` to be zero.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = l_type as _;
    fl.l_whence = libc::SEEK_SET as _;
    fl
}

fn lock_type(mode: Mode) -> libc::c_int {
    match mode {
        Mode::Exclusive => libc::F_WRLCK,
        Mode::Shared => libc::F_RDLCK,
    }
}

/// One `fcntl` lock request on the whole file. `Ok(false)`: held by another.
fn fcntl_lock(file: &File, l_type: libc::c_int, wait: bool) -> io::Result<bool> {
    let fl = whole_file(l_type);
    loop {
        // SAFETY: the descriptor is open for the lifetime of `file`, and `fl`
        // is a valid `flock` that lives across the call.
        let r = unsafe {
            libc::fcntl(
                file.as_raw_fd(),
                if wait { SETLKW } else { SETLK },
                &fl as *const libc::flock,
            )
        };
        if r == 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) | Some(libc::EACCES) if !wait => return Ok(false),
            _ => return Err(err),
        }
    }
}

/// What a conflicting holder looks like to `F_GETLK`, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conflict {
    /// The mode the conflicting holder has.
    pub mode: Mode,
    /// The holder's pid: `-1` for OFD locks, whose owner is an open file.
    pub pid: i32,
}

/// Asks the kernel whether a lock in `mode` on `file` would conflict.
pub fn probe(file: &File, mode: Mode) -> io::Result<Option<Conflict>> {
    let mut fl = whole_file(lock_type(mode));
    // SAFETY: as in `fcntl_lock`; the kernel writes the conflicting lock's
    // description into `fl`.
    let r = unsafe { libc::fcntl(file.as_raw_fd(), GETLK, &mut fl as *mut libc::flock) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(match fl.l_type as libc::c_int {
        libc::F_UNLCK => None,
        libc::F_RDLCK => Some(Conflict {
            mode: Mode::Shared,
            pid: fl.l_pid as i32,
        }),
        _ => Some(Conflict {
            mode: Mode::Exclusive,
            pid: fl.l_pid as i32,
        }),
    })
}

/// Opens (and by default creates) a lock file without following a symlink at
/// the final component, so nothing outside the lock directory is touched.
///
/// The file is opened `O_NONBLOCK | O_DSYNC`, which changes nothing for a
/// regular file that is never read or written, or for its `fcntl` locks. The
/// pair tells a remover in another process that this descriptor is
/// lockutils' own, and lockutils checks the file after locking it, so the
/// descriptor does not stop the removal (see [`InUse`]). `O_NONBLOCK` alone
/// would not do: another program may open a lock file so and poll on it
/// without looking at the path again; none has a reason to ask for
/// synchronous writes to a file it never writes. Being part of the open,
/// the mark is there from the descriptor's first moment. An open with
/// `O_NONBLOCK` fails with `EWOULDBLOCK`, instead of waiting, while a
/// remover holds its lease (for the few microseconds of an `unlink`): it is
/// then tried again after a short pause, for at most [`LEASE_PATIENCE`]. A
/// lease held longer (a stopped remover, another program's lease) gives the
/// `EWOULDBLOCK` error rather than stalling a non-blocking or async caller
/// until the kernel breaks the lease (`/proc/sys/fs/lease-break-time`,
/// 45 s by default).
pub fn open_lock_file(path: &Path, create: bool, file_mode: u32) -> io::Result<File> {
    let mut pause = Duration::from_micros(50);
    let mut waited = Duration::ZERO;
    loop {
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .mode(file_mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY | LOCKUTILS_MARK)
            .open(path)
        {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && waited < LEASE_PATIENCE => {
                std::thread::sleep(pause);
                waited += pause;
                pause = (pause * 2).min(MAX_RETRY);
            }
            opened => return opened,
        }
    }
}

/// [`open_lock_file`], listed for the fork hooks (see
/// [`lock_fds`](crate::lock_fds)); opened again if a fork may have copied it
/// before it was listed.
///
/// Something that is not a regular file at the path (a FIFO, a device) is
/// refused here, before any lock is taken on it.
fn open_listed(path: &Path, create: bool, file_mode: u32) -> io::Result<LockFile> {
    loop {
        let epoch = fd_cache::epoch();
        let file = open_lock_file(path, create, file_mode)?;
        if let Some(kind) = not_regular(&file)? {
            return Err(not_a_lock_file(&format!("{kind} is in the lock file's place")));
        }
        if let Ok(listed) = LockFile::list(file, epoch) {
            return Ok(listed);
        }
    }
}

/// How long [`open_lock_file`] waits for a lease on the file to go.
pub const LEASE_PATIENCE: Duration = Duration::from_millis(100);

/// The file status flags that together mark lockutils' own lock file
/// descriptors (see [`open_lock_file`]).
pub(crate) const LOCKUTILS_MARK: libc::c_int = libc::O_NONBLOCK | libc::O_DSYNC;

/// Whether the open `file` is still the file linked at `path`.
///
/// Lock files are only ever unlinked (by lockutils, oslo.concurrency and
/// fasteners alike), never renamed, so a file with one link that still has it
/// is still the one at its path: one `fstat`, no path lookup. A file with
/// more links (someone hard-linked it) is compared with the file at `path`
/// by device and inode; lockutils' own removal refuses to unlink such a file
/// (`remove_external_lock_file`, `lockutils remove`), which would leave the other link
/// looking current. A lock file renamed away by hand would go unnoticed;
/// don't do that to lock files.
///
/// A plain `fstat`: `File::metadata` asks `statx` with an empty path, which
/// the kernel copies in and looks up before it finds the descriptor.
pub fn is_current(file: &File, path: &Path) -> io::Result<bool> {
    match fstat(file)?.st_nlink {
        0 => Ok(false),
        1 => Ok(true),
        _ => is_linked_at(file, path),
    }
}

/// A file that is not a lock file (every lock file is an empty regular
/// file), found where one should be: refused, and never removed.
fn not_a_lock_file(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{what}, so it is not a lock file (lock files are empty regular files), and \
             lockutils neither locks nor removes it; move it away, or give the lock another \
             name or directory"
        ),
    )
}

/// What the open `file` is, in words, if it is not a regular file.
fn not_regular(file: &File) -> io::Result<Option<&'static str>> {
    Ok(match fstat(file)?.st_mode & libc::S_IFMT {
        libc::S_IFREG => None,
        libc::S_IFIFO => Some("a FIFO"),
        libc::S_IFCHR => Some("a character device"),
        libc::S_IFBLK => Some("a block device"),
        libc::S_IFSOCK => Some("a socket"),
        libc::S_IFDIR => Some("a directory"),
        _ => Some("a file that is not a regular file"),
    })
}

/// A plain `fstat` of the open `file` (see [`is_current`] for why not
/// `File::metadata`).
#[inline]
fn fstat(file: &File) -> io::Result<libc::stat> {
    // SAFETY: all-zero bytes are a valid `stat` (integers only).
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `file` is an open descriptor for the call, and `st` is a
    // writable `stat` that outlives it.
    if unsafe { fstat_raw(file.as_raw_fd(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

/// The `fstat` system call itself. glibc's `fstat` is `fstatat(fd, "",
/// AT_EMPTY_PATH)`, which makes the kernel read and check an empty path
/// first: about 50 ns more on a call that every acquisition of a kept file
/// makes. On these targets the kernel's `struct stat` is libc's.
///
/// # Safety
/// As `libc::fstat`: `st` must be valid for a write of a `libc::stat`.
#[cfg(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64")))]
#[inline]
unsafe fn fstat_raw(fd: std::os::fd::RawFd, st: *mut libc::stat) -> libc::c_int {
    // SAFETY: the caller's contract; the call writes one `stat` to `st`.
    let r = unsafe { libc::syscall(libc::SYS_fstat, fd, st) };
    // 0 or -1, as the system call returns.
    r as libc::c_int
}

/// Elsewhere, libc's `fstat`.
///
/// # Safety
/// As `libc::fstat`.
#[cfg(not(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64"))))]
#[inline]
unsafe fn fstat_raw(fd: std::os::fd::RawFd, st: *mut libc::stat) -> libc::c_int {
    // SAFETY: the caller's contract.
    unsafe { libc::fstat(fd, st) }
}

/// Whether the open `file` is the file linked at `path` right now, checked by
/// inode (for tools that inspect lock files, not on the locking path).
pub fn is_linked_at(file: &File, path: &Path) -> io::Result<bool> {
    let open = file.metadata()?;
    if open.nlink() == 0 {
        return Ok(false);
    }
    match std::fs::symlink_metadata(path) {
        Ok(linked) => Ok(linked.dev() == open.dev() && linked.ino() == open.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// A held inter-process lock. Dropping it releases the lock and keeps the
/// open file for the next acquisition of the same path (see
/// [`fd_cache`](crate::fd_cache)), unless a removal was attempted on it.
#[derive(Debug)]
pub(crate) struct FileLock {
    /// Always `Some` until dropped.
    file: Option<LockFile>,
    pub(crate) path: PathBuf,
    /// Keep the file open after release (cleared by removal attempts).
    keep: AtomicBool,
    /// The fork generation the lock was taken in.
    generation: u64,
    /// The [`fd_cache::epoch`] before the file was opened or taken from the
    /// cache: a file open across a later fork is shared with the child, and
    /// is closed on release instead of kept.
    epoch: u64,
    /// The process that took it, where fork generations cannot be told
    /// apart (no fork hook); else 0.
    pid: u32,
}

impl FileLock {
    fn new(file: LockFile, path: PathBuf, epoch: u64) -> FileLock {
        // The fork hook is registered before the generation is read: a child
        // forked from now on sees another generation, and so never unlocks
        // (or removes) this lock, which its copy of the file shares with us.
        let pid = if fd_cache::watch_forks() {
            0
        } else {
            std::process::id()
        };
        FileLock {
            file: Some(file),
            path,
            keep: AtomicBool::new(true),
            generation: fd_cache::generation(),
            epoch,
            pid,
        }
    }

    /// Whether this process took the lock: false in a child forked while it
    /// was held, where the open file (and its lock) is shared with the
    /// parent, so that only closing the child's copy is safe.
    fn taken_here(&self) -> bool {
        self.generation == fd_cache::generation()
            && (self.pid == 0 || self.pid == std::process::id())
    }

    pub(crate) fn file(&self) -> &File {
        self.file.as_ref().expect("present until dropped")
    }

    /// Unlinks the lock file while still holding it, if it is still linked,
    /// no other holder shares it, and no other process has it open (see
    /// [`in_use`](crate::in_use)).
    pub(crate) fn remove_while_held(&self, mode: Mode) -> io::Result<Unlink> {
        if !self.taken_here() {
            // A forked child's copy: the lock (and the file) are the parent's.
            return Ok(Unlink::NotRemoved);
        }
        self.keep.store(false, Ordering::Relaxed);
        if mode == Mode::Shared && !fcntl_lock(self.file(), libc::F_WRLCK, false)? {
            return Ok(Unlink::NotRemoved);
        }
        if !is_linked_at(self.file(), &self.path)? {
            return Ok(Unlink::NotRemoved);
        }
        // Unlinking one of several links would leave a file that still has
        // a link: a process that opened it (or keeps it open) would take it
        // for the current lock file while a newcomer locks a new one.
        let meta = self.file().metadata()?;
        // Lock files are always empty: one with data in it is another
        // program's file that happens to have the lock's name.
        if meta.len() != 0 {
            return Err(not_a_lock_file(&format!(
                "the file has {} bytes in it",
                meta.len()
            )));
        }
        let links = meta.nlink();
        if links != 1 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the lock file has {links} links (hard links to it elsewhere): removing \
                     this one could let two processes hold the lock, so nothing was removed; \
                     remove the other links first"
                ),
            ));
        }
        // This process's own idle descriptors of the file would only make
        // the check below look further.
        fd_cache::close_same_file(self.file())?;
        let sole = match in_use::sole_opener(self.file())? {
            Ok(sole) => sole,
            Err(in_use) => return Ok(Unlink::InUse(in_use)),
        };
        let removed = match std::fs::remove_file(&self.path) {
            Ok(()) => Unlink::Removed,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Unlink::NotRemoved,
            Err(e) => return Err(e),
        };
        drop(sole);
        Ok(removed)
    }
}

/// What [`FileLock::remove_while_held`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unlink {
    /// The file is gone.
    Removed,
    /// Not linked any more, or shared with another holder: left alone.
    NotRemoved,
    /// Another process has it open: left alone.
    InUse(InUse),
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let Some(file) = self.file.take() else {
            return;
        };
        // In a child forked while this was held, the open file (and its lock)
        // is shared with the parent: only closing our copy is safe there.
        if !self.taken_here() {
            return;
        }
        // Unlocked explicitly even when the file is then closed: a child
        // forked while it was open shares the open file, and closing ours
        // alone would leave the lock held until that child exits. Kept open
        // for the next acquisition unless a removal was attempted; if
        // unlocking fails, closing it releases the lock.
        let unlocked = fcntl_lock(&file, libc::F_UNLCK, false).unwrap_or(false);
        if unlocked && *self.keep.get_mut() {
            fd_cache::put(std::mem::take(&mut self.path), file, self.epoch);
        }
    }
}

/// First pause between attempts of a timed wait without a waiter thread.
pub(crate) const FIRST_RETRY: Duration = Duration::from_micros(200);
/// Longest pause between attempts of a timed wait without a waiter thread.
pub(crate) const MAX_RETRY: Duration = Duration::from_millis(10);

/// Releases a lock nobody will use and closes its file. Unlocked explicitly:
/// a child forked while the file was open shares it, and closing our copy
/// alone would leave the lock held until that child exits. Only for a lock
/// this process took (not in a forked child, whose copy shares the parent's
/// lock).
pub(crate) fn unlock_and_close(file: LockFile) {
    // Closing releases it anyway if unlocking fails.
    let _ = fcntl_lock(&file, libc::F_UNLCK, false);
}

/// Sleeps in the kernel until `file` is locked in `mode`.
pub(crate) fn wait_in_kernel(file: &File, mode: Mode) -> io::Result<()> {
    fcntl_lock(file, lock_type(mode), true).map(|_| ())
}

/// The fallback timed wait, when no waiter thread can be had (see
/// [`file_wait`](crate::file_wait)): non-blocking attempts with exponential
/// backoff until the deadline.
fn retry_until(file: &File, l_type: libc::c_int, deadline: Instant) -> io::Result<bool> {
    let mut pause = FIRST_RETRY;
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        std::thread::sleep(pause.min(deadline - now));
        if fcntl_lock(file, l_type, false)? {
            return Ok(true);
        }
        pause = (pause * 2).min(MAX_RETRY);
    }
}

/// A timed wait: in the kernel on this thread if the program gave a signal
/// to interrupt it (see [`wait_signal`](crate::wait_signal)); else on a waiter
/// thread, while this thread sleeps until the deadline; by retrying if no
/// waiter thread can be had. Returns the
/// locked file (which may be another open file of the same path, adopted from
/// an earlier wait), or `None` at the deadline.
///
/// `epoch` is the [`fd_cache::epoch`] `file` was opened in; the one returned
/// with the locked file is that of the file returned (an adopted one may be
/// older).
fn wait_until(
    file: LockFile,
    path: &Path,
    mode: Mode,
    deadline: Instant,
    epoch: u64,
) -> io::Result<Option<(LockFile, u64)>> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsFd;
        let request = whole_file(lock_type(mode));
        if let Some(got) = crate::wait_signal::lock_until(file.as_fd(), &request, deadline) {
            return Ok(got?.then_some((file, epoch)));
        }
    }
    match KernelWait::start(file, path, mode, epoch) {
        Ok(mut wait) => {
            let epoch = wait.epoch();
            Ok(wait.wait_until(deadline).transpose()?.map(|f| (f, epoch)))
        }
        Err(file) => Ok(retry_until(&file, lock_type(mode), deadline)?.then_some((file, epoch))),
    }
}

/// How long an acquisition may wait for the file lock.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wait {
    /// Do not wait.
    Never,
    /// Wait in the kernel until the lock is free.
    Forever,
    /// Wait until this instant (in the kernel, on a waiter thread).
    Until(Instant),
}

/// The result of trying to lock an existing-or-not lock file.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Locked, and verified to be the file linked at the path.
    Locked(FileLock),
    /// Held by someone else (past the wait allowed).
    Busy,
    /// No file at the path (only when not creating it).
    Absent,
}

/// Everything needed to lock one lock file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Target<'a> {
    pub(crate) name: &'a str,
    pub(crate) dir: &'a Path,
    pub(crate) file_name: &'a str,
    pub(crate) mode: Mode,
    pub(crate) file_mode: u32,
    pub(crate) create: bool,
    pub(crate) user_default_dir: bool,
}

impl Target<'_> {
    fn file_err(&self, path: &Path, action: &'static str, source: io::Error) -> Error {
        Error::LockFile {
            name: self.name.to_owned(),
            path: path.to_owned(),
            action,
            source,
        }
    }

    /// Opens the lock file, creating the lock directory on first need.
    /// `Ok(None)`: the file (or its directory) does not exist and `create` is
    /// off; then nothing is created.
    pub(crate) fn open(&self, path: &Path) -> Result<Option<LockFile>> {
        if !self.create && !self.dir.is_dir() {
            return Ok(None);
        }
        if self.user_default_dir {
            lock_path::verify_user_default(self.name, self.dir)?;
        }
        match open_listed(path, self.create, self.file_mode) {
            Ok(f) => Ok(Some(f)),
            Err(e) if e.kind() == io::ErrorKind::NotFound && !self.create => {
                match std::fs::metadata(self.dir) {
                    Ok(m) if m.is_dir() => Ok(None),
                    _ => Err(self.dir_err(e)),
                }
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => {
                lock_path::ensure_dir(self.name, self.dir)?;
                open_listed(path, self.create, self.file_mode)
                    .map(Some)
                    .map_err(|e| {
                        self.file_err(path, "open", diagnose::open_failure(self.dir, path, e))
                    })
            }
            Err(e) => Err(self.file_err(path, "open", diagnose::open_failure(self.dir, path, e))),
        }
    }

    /// The file kept open from an earlier acquisition if there is one (its
    /// identity is checked once locked, like any other), else
    /// [`open`](Self::open); with its path.
    fn open_kept(&self) -> Result<Option<(PathBuf, LockFile)>> {
        if let Some(kept) = fd_cache::take_in(self.dir, self.file_name) {
            return Ok(Some(kept));
        }
        let path = self.path();
        Ok(self.open(&path)?.map(|file| (path, file)))
    }

    fn dir_err(&self, e: io::Error) -> Error {
        match lock_path::ensure_dir(self.name, self.dir) {
            Err(err) => err,
            Ok(()) => self.file_err(&self.dir.join(self.file_name), "open", e),
        }
    }

    /// Takes the file lock, waiting as `wait` says. `Ok(None)`: not acquired
    /// (busy or timed out; or absent, when `create` is off).
    pub(crate) fn acquire(&self, wait: Wait) -> Result<Option<FileLock>> {
        Ok(match self.acquire_outcome(wait)? {
            Outcome::Locked(f) => Some(f),
            Outcome::Busy | Outcome::Absent => None,
        })
    }

    /// Takes the file lock, telling a busy lock from a missing file (which
    /// only happens when `create` is off, for example when a concurrent
    /// remover unlinked the file while this caller waited on it).
    pub(crate) fn acquire_outcome(&self, wait: Wait) -> Result<Outcome> {
        loop {
            let epoch = fd_cache::epoch();
            let Some((path, file)) = self.open_kept()? else {
                return Ok(Outcome::Absent);
            };
            let l_type = lock_type(self.mode);
            let locked = fcntl_lock(&file, l_type, false)
                .and_then(|got| match (got, wait) {
                    (true, _) => Ok(Some((file, epoch))),
                    (false, Wait::Never) => Ok(None),
                    (false, Wait::Forever) => {
                        Ok(fcntl_lock(&file, l_type, true)?.then_some((file, epoch)))
                    }
                    // A deadline already past starts no kernel wait (it would
                    // be orphaned at once): this was the attempt.
                    (false, Wait::Until(deadline)) if Instant::now() >= deadline => Ok(None),
                    (false, Wait::Until(deadline)) => {
                        wait_until(file, &path, self.mode, deadline, epoch)
                    }
                })
                .map_err(|e| self.file_err(&path, "lock", e))?;
            let Some((file, epoch)) = locked else {
                return Ok(Outcome::Busy);
            };
            if self.is_current(&file, &path)? {
                return Ok(Outcome::Locked(FileLock::new(file, path, epoch)));
            }
            // Unlinked or replaced by a remover while we waited: try the new file.
        }
    }

    /// The lock file's path.
    fn path(&self) -> PathBuf {
        fd_cache::join(self.dir, self.file_name)
    }

    /// Whether the locked `file` is still the one linked at `path`.
    fn is_current(&self, file: &File, path: &Path) -> Result<bool> {
        is_current(file, path).map_err(|e| self.file_err(path, "inspect", e))
    }

    /// The held lock, if the locked `file` is still the one linked at `path`.
    fn verified(&self, file: LockFile, path: PathBuf, epoch: u64) -> Result<Option<FileLock>> {
        Ok(self
            .is_current(&file, &path)?
            .then(|| FileLock::new(file, path, epoch)))
    }

    /// One step of an async acquisition: takes the lock if it is free, else
    /// (when `blocking`) starts or checks a kernel wait that wakes `waker`.
    pub(crate) fn poll_acquire(
        &self,
        wait: &mut AsyncWait,
        blocking: bool,
        waker: &Waker,
    ) -> Result<Step> {
        loop {
            if let Some(kernel) = &mut wait.kernel {
                let Some(granted) = kernel.poll(waker) else {
                    return Ok(Step::Pending { retry_at: None });
                };
                let epoch = kernel.epoch();
                wait.kernel = None;
                let path = self.path();
                let file = granted.map_err(|e| self.file_err(&path, "lock", e))?;
                match self.verified(file, path, epoch)? {
                    Some(held) => return Ok(Step::Ready(Outcome::Locked(held))),
                    None => continue,
                }
            }
            let epoch = fd_cache::epoch();
            let Some((path, file)) = self.open_kept()? else {
                return Ok(Step::Ready(Outcome::Absent));
            };
            let got = fcntl_lock(&file, lock_type(self.mode), false)
                .map_err(|e| self.file_err(&path, "lock", e))?;
            if got {
                match self.verified(file, path, epoch)? {
                    Some(held) => return Ok(Step::Ready(Outcome::Locked(held))),
                    None => continue,
                }
            }
            if !blocking {
                return Ok(Step::Ready(Outcome::Busy));
            }
            match KernelWait::start(file, &path, self.mode, epoch) {
                Ok(kernel) => wait.kernel = Some(kernel),
                Err(_) => {
                    // No waiter thread: try again after a backoff pause.
                    let at = Instant::now() + wait.pause;
                    wait.pause = (wait.pause * 2).min(MAX_RETRY);
                    return Ok(Step::Pending { retry_at: Some(at) });
                }
            }
        }
    }
}

/// The file part of an async acquisition in progress. Dropping it calls off
/// the wait: an unfinished kernel wait is orphaned (see
/// [`file_wait`](crate::file_wait)) and nothing stays locked for this caller.
#[derive(Debug)]
pub(crate) struct AsyncWait {
    kernel: Option<KernelWait>,
    /// Pause before the next attempt, when no waiter thread can be had.
    pause: Duration,
}

impl Default for AsyncWait {
    fn default() -> Self {
        AsyncWait {
            kernel: None,
            pause: FIRST_RETRY,
        }
    }
}

/// How far an async acquisition of a lock file got.
#[derive(Debug)]
pub(crate) enum Step {
    /// Finished: locked, busy (not blocking) or absent.
    Ready(Outcome),
    /// Waiting: the waker is woken when the kernel wait ends, or (without a
    /// waiter thread) the caller should try again at `retry_at`.
    Pending { retry_at: Option<Instant> },
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A write lease that is not let go (a stopped remover, another
    /// program) makes opening the file an error after [`LEASE_PATIENCE`],
    /// not a stall until the kernel breaks the lease (45 s by default).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_lease_that_is_not_let_go_gives_an_error_not_a_stall() {
        use std::os::fd::AsRawFd;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("leased");
        let holder = File::create(&path).unwrap();
        // SAFETY: plain fcntls on a descriptor this test owns. The lease
        // break is signalled as SIGURG (ignored by default), not SIGIO.
        let leased = unsafe {
            libc::fcntl(holder.as_raw_fd(), 10 /* F_SETSIG */, libc::SIGURG) == 0
                && libc::fcntl(holder.as_raw_fd(), libc::F_SETLEASE, libc::F_WRLCK) == 0
        };
        assert!(leased, "{}", io::Error::last_os_error());
        let started = std::time::Instant::now();
        let e = open_lock_file(&path, true, DEFAULT_FILE_MODE).unwrap_err();
        let took = started.elapsed();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "{e}");
        assert!(took >= LEASE_PATIENCE, "{took:?}");
        assert!(took < Duration::from_secs(10), "stalled for {took:?}");
        // Once the lease goes, the file opens.
        // SAFETY: as above.
        unsafe { libc::fcntl(holder.as_raw_fd(), libc::F_SETLEASE, libc::F_UNLCK) };
        open_lock_file(&path, true, DEFAULT_FILE_MODE).unwrap();
    }

    fn target<'a>(dir: &'a Path, mode: Mode) -> Target<'a> {
        Target {
            name: "t",
            dir,
            file_name: "t",
            mode,
            file_mode: DEFAULT_FILE_MODE,
            create: true,
            user_default_dir: false,
        }
    }

    #[test]
    fn two_open_files_in_one_process_exclude_each_other() {
        let tmp = tempfile::tempdir().unwrap();
        let t = target(tmp.path(), Mode::Exclusive);
        let held = t.acquire(Wait::Never).unwrap().expect("first acquires");
        assert!(t.acquire(Wait::Never).unwrap().is_none(), "second must not");
        drop(held);
        assert!(t.acquire(Wait::Never).unwrap().is_some());
    }

    #[test]
    fn shared_holders_share_and_exclude_writers() {
        let tmp = tempfile::tempdir().unwrap();
        let r = target(tmp.path(), Mode::Shared);
        let a = r.acquire(Wait::Never).unwrap().unwrap();
        let b = r.acquire(Wait::Never).unwrap().unwrap();
        assert!(target(tmp.path(), Mode::Exclusive)
            .acquire(Wait::Never)
            .unwrap()
            .is_none());
        drop((a, b));
    }

    #[test]
    fn timed_wait_times_out_then_succeeds_after_release() {
        let tmp = tempfile::tempdir().unwrap();
        let t = target(tmp.path(), Mode::Exclusive);
        let held = t.acquire(Wait::Never).unwrap().unwrap();
        let deadline = Instant::now() + Duration::from_millis(50);
        assert!(t.acquire(Wait::Until(deadline)).unwrap().is_none());
        assert!(Instant::now() >= deadline);
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            drop(held);
        });
        let got = t.acquire(Wait::Until(Instant::now() + Duration::from_secs(10)));
        assert!(got.unwrap().is_some());
        releaser.join().unwrap();
    }

    #[test]
    fn probe_reports_conflicts() {
        let tmp = tempfile::tempdir().unwrap();
        let t = target(tmp.path(), Mode::Exclusive);
        let held = t.acquire(Wait::Never).unwrap().unwrap();
        let other = open_lock_file(&tmp.path().join("t"), false, DEFAULT_FILE_MODE).unwrap();
        let c = probe(&other, Mode::Shared).unwrap().expect("conflict");
        assert_eq!(c.mode, Mode::Exclusive);
        drop(held);
        assert_eq!(probe(&other, Mode::Exclusive).unwrap(), None);
    }

    #[test]
    fn an_unlinked_or_replaced_file_is_detected() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t");
        let f = open_lock_file(&path, true, DEFAULT_FILE_MODE).unwrap();
        assert!(is_current(&f, &path).unwrap());
        assert!(is_linked_at(&f, &path).unwrap());
        std::fs::remove_file(&path).unwrap();
        assert!(!is_current(&f, &path).unwrap());
        let _g = open_lock_file(&path, true, DEFAULT_FILE_MODE).unwrap();
        assert!(!is_current(&f, &path).unwrap());
        assert!(!is_linked_at(&f, &path).unwrap());
    }

    #[test]
    fn symlinked_lock_file_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path().join("victim"), tmp.path().join("t")).unwrap();
        let err = target(tmp.path(), Mode::Exclusive)
            .acquire(Wait::Never)
            .unwrap_err();
        assert!(err.report().to_string().contains("symbolic link"), "{err}");
        assert!(!outside.path().join("victim").exists());
    }

    #[test]
    fn new_lock_files_are_private() {
        let tmp = tempfile::tempdir().unwrap();
        let _held = target(tmp.path(), Mode::Exclusive)
            .acquire(Wait::Never)
            .unwrap()
            .unwrap();
        let mode = std::fs::metadata(tmp.path().join("t")).unwrap().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "mode {mode:o}");
    }
}
