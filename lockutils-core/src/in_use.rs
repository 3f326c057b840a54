//! Whether another process has a lock file open: the check that makes
//! removing a lock file safe against waiters that poll.
//!
//! Locking the file before unlinking it keeps out every waiter that sleeps
//! in the kernel or re-checks the file after locking it (lockutils does). It
//! does not keep out oslo.concurrency's and fasteners' waiters, which retry
//! `F_SETLK` on the descriptor they opened before the removal, and never look
//! at the path again: once the file is unlinked, such a waiter locks the
//! orphaned file while a newcomer locks a new one at the path, and two
//! processes hold the lock. So a lock file is unlinked only when no other
//! process has it open, checked while holding its lock:
//!
//! 1. A write lease (`F_SETLEASE`, Linux) is granted only when no other open
//!    file description of the inode exists, in any process, in any PID
//!    namespace: one system call answers for the whole host. While the lease
//!    is held, an `open` of the file by anyone waits for its release, which
//!    follows the unlink at once. A lease needs the caller to own the file (or
//!    `CAP_LEASE`) and a file system that grants leases; its break
//!    notification is set to `SIGURG`, which is ignored unless the program
//!    handles it, so no signal can end the process.
//! 2. Otherwise, every process's descriptors are compared with the file
//!    (`stat` of `/proc/PID/fd/*`, by device and inode; this process's own
//!    are skipped, and so are other processes' descriptors that lockutils
//!    opened, marked `O_NONBLOCK | O_DSYNC`, which means nothing for a
//!    regular file never read or written: lockutils re-checks the file
//!    after every lock; a descriptor with `O_NONBLOCK` alone, as another
//!    program may open a file it polls on, is not taken for lockutils'). A
//!    process whose descriptors cannot be read (another user's, under
//!    `hidepid`, without ptrace access) might have it open: the file is
//!    treated as in use, unless [`REMOVE_UNVERIFIED_ENV`] says otherwise.
//!
//! What remains: a process that opens the file after the check and before the
//! unlink (an `open` whose path lookup falls in that window, which is one
//! `unlink` long under a lease and one scan of `/proc` long without one) gets
//! the old file. The scan's window grows with the number of descriptors on
//! the host; oslo.concurrency and fasteners open the file
//! once per acquisition, so only one that starts acquiring inside it can
//! end up on the unlinked file.

use std::fmt;
use std::fs::File;
use std::io;
#[cfg(target_os = "linux")]
use std::os::fd::AsRawFd;
#[cfg(target_os = "linux")]
use std::os::unix::fs::MetadataExt;

/// Setting this environment variable to `1` lets removals go ahead when
/// some processes' descriptors cannot be read (other users' processes for an
/// unprivileged caller, `/proc` mounted with `hidepid`, systems without
/// `/proc`), trusting that none of them has the lock file open. Without it,
/// such a removal is refused as [`InUse`] with no pid. Set it only where
/// every process that may lock the files runs as the user removing them.
pub const REMOVE_UNVERIFIED_ENV: &str = "LOCKUTILS_REMOVE_UNVERIFIED";

/// A lock file not removed because another process has it open (or might:
/// see [`pid`](Self::pid)). Removing it could let two processes hold the
/// lock, so the removal was refused; it succeeds once the file is closed.
///
/// Carried as the source of [`Error::LockFile`](crate::Error::LockFile)
/// (with [`io::ErrorKind::ResourceBusy`]) by
/// [`LockOptions::remove_lock_file`](crate::LockOptions::remove_lock_file);
/// [`InUse::of`] finds it there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InUse {
    pid: Option<u32>,
    unreadable: usize,
}

impl InUse {
    /// A process that has the file open; `None` when the opener is not
    /// visible to this process (see [`unreadable_processes`](Self::unreadable_processes)).
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// How many processes' descriptors could not be read, when no visible
    /// process has the file open.
    pub fn unreadable_processes(&self) -> usize {
        self.unreadable
    }

    /// The `InUse` behind an error from a removal, if that is why it failed.
    pub fn of(err: &crate::Error) -> Option<InUse> {
        match err {
            crate::Error::LockFile { source, .. } => Self::of_io(source),
            _ => None,
        }
    }

    pub(crate) fn of_io(err: &io::Error) -> Option<InUse> {
        err.get_ref()?.downcast_ref::<InUse>().copied()
    }

    pub(crate) fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::ResourceBusy, self)
    }
}

impl fmt::Display for InUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pid {
            Some(pid) => write!(f, "the lock file is open in process {pid}")?,
            None if self.unreadable > 0 => write!(
                f,
                "the lock file may be open in one of {} processes whose descriptors \
                 this user cannot read",
                self.unreadable
            )?,
            None => write!(f, "the lock file is open in a process this user cannot see")?,
        }
        write!(
            f,
            "; a waiter polling on it would lock the unlinked file while a newcomer locks \
             a new one, so it was not removed: retry once it is closed"
        )?;
        if self.pid.is_none() {
            write!(
                f,
                ", run as root, or set {REMOVE_UNVERIFIED_ENV}=1 if no other user's process \
                 locks these files"
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for InUse {}

/// Proof that no other process had the file open when checked; holds the
/// lease, if one was taken, until dropped (right after the unlink).
#[derive(Debug)]
pub(crate) struct SoleOpener<'f> {
    leased: Option<&'f File>,
}

impl Drop for SoleOpener<'_> {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        if let Some(file) = self.leased {
            // SAFETY: plain fcntl on a descriptor open for the borrow's life.
            // Failing leaves the lease until the file is closed, which the
            // caller does next (a removed file is never kept).
            unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLEASE, libc::F_UNLCK) };
        }
        #[cfg(not(target_os = "linux"))]
        let _ = self.leased;
    }
}

/// Checks, while the caller holds the file's lock, that no other process has
/// `file` open. `Ok(Err(in_use))`: someone does (or might); do not unlink.
pub(crate) fn sole_opener(file: &File) -> io::Result<Result<SoleOpener<'_>, InUse>> {
    #[cfg(target_os = "linux")]
    {
        let meta = file.metadata()?;
        let (dev, ino) = (meta.dev(), meta.ino());
        let in_use = |pid, unreadable| Ok(Err(InUse { pid, unreadable }));
        let mut attempts = 0;
        loop {
            attempts += 1;
            let lease = take_lease(file);
            if lease == Lease::Granted {
                return Ok(Ok(SoleOpener { leased: Some(file) }));
            }
            let lockutils_seen = match scan(dev, ino) {
                Scan::OpenIn(pid) => return in_use(Some(pid), 0),
                Scan::Failed(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!(
                            "cannot tell whether another process has the lock file open: \
                             listing /proc failed ({e}); nothing was removed, retry"
                        ),
                    ))
                }
                Scan::Unreadable(n) if !allow_unverified() => return in_use(None, n),
                Scan::Unreadable(_) => true,
                Scan::NotOpen(seen) => seen,
            };
            // The lease was refused because the file is open elsewhere, yet
            // no other visible process has it but lockutils: unless it is
            // this process's own (a kept descriptor, a waiter thread;
            // lockutils re-checks those), the opener is out of sight
            // (another PID namespace), or it closed the file after the
            // lease was refused. Asking again tells these apart: an opener
            // that has gone lets the lease through.
            let out_of_sight = lease == Lease::OpenElsewhere
                && !lockutils_seen
                && !open_here_twice(dev, ino, file.as_raw_fd())
                && !allow_unverified();
            if !out_of_sight {
                return Ok(Ok(SoleOpener { leased: None }));
            }
            if attempts == OUT_OF_SIGHT_ATTEMPTS {
                return in_use(None, 0);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        Ok(if allow_unverified() {
            Ok(SoleOpener { leased: None })
        } else {
            Err(InUse {
                pid: None,
                unreadable: 0,
            })
        })
    }
}

/// How many times a refused lease with no opener in sight is asked again
/// before the file counts as open out of sight: an opener that closed the
/// file between the refusal and the scan (a thread of this process, a
/// waiter that gave up) is gone by then.
#[cfg(target_os = "linux")]
const OUT_OF_SIGHT_ATTEMPTS: u32 = 4;

fn allow_unverified() -> bool {
    std::env::var_os(REMOVE_UNVERIFIED_ENV).is_some_and(|v| v == "1")
}

/// What asking for a write lease said.
#[cfg(target_os = "linux")]
#[derive(Debug, PartialEq, Eq)]
enum Lease {
    /// Granted: no other open file description of the inode exists.
    Granted,
    /// Refused because one does (`EAGAIN`).
    OpenElsewhere,
    /// Not available here (not the owner, file system without leases, …).
    Unavailable,
}

/// `fcntl` command setting the signal of I/O and lease notifications
/// (`<fcntl.h>`; not in the `libc` crate).
#[cfg(target_os = "linux")]
const F_SETSIG: libc::c_int = 10;

/// Takes a write lease on `file`: granted only if no other open file
/// description of its inode exists anywhere.
#[cfg(target_os = "linux")]
fn take_lease(file: &File) -> Lease {
    let fd = file.as_raw_fd();
    // SAFETY: plain fcntls on a descriptor open for the borrow's life. The
    // break notification goes to this process as SIGURG, whose default
    // action is to ignore it; it is set before the lease exists, so the
    // default SIGIO (which would end the process) is never sent.
    unsafe {
        if libc::fcntl(fd, F_SETSIG, libc::SIGURG) != 0 {
            return Lease::Unavailable;
        }
        if libc::fcntl(fd, libc::F_SETLEASE, libc::F_WRLCK) == 0 {
            return Lease::Granted;
        }
    }
    match io::Error::last_os_error().raw_os_error() {
        Some(libc::EAGAIN) => Lease::OpenElsewhere,
        _ => Lease::Unavailable,
    }
}

/// Whether this process has the file `(dev, ino)` open on a descriptor other
/// than `own_fd`.
#[cfg(target_os = "linux")]
fn open_here_twice(dev: u64, ino: u64, own_fd: i32) -> bool {
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
        return false;
    };
    fds.flatten().any(|fd| {
        fd.file_name().to_str().and_then(|n| n.parse().ok()) != Some(own_fd)
            && std::fs::metadata(fd.path()).is_ok_and(|m| m.ino() == ino && m.dev() == dev)
    })
}

/// What a scan of every process's descriptors found.
#[cfg(target_os = "linux")]
#[derive(Debug)]
enum Scan {
    /// Open in this other process, not by lockutils.
    OpenIn(u32),
    /// Not open in any readable process but by lockutils; this many
    /// processes could not be read.
    Unreadable(usize),
    /// Not open in any other process but by lockutils (`true` if some other
    /// lockutils process has it open), and every process was read.
    NotOpen(bool),
    /// The walk failed for a reason that may pass (out of descriptors or
    /// memory): nothing is known, and nothing may be removed, whatever
    /// [`REMOVE_UNVERIFIED_ENV`] says.
    Failed(io::Error),
}

/// Whether descriptor `fd` of process `pid` carries lockutils' mark (see
/// [`open_lock_file`](crate::file::open_lock_file)): its `fdinfo` `flags:`
/// field, in octal. `None` once the descriptor is closed.
#[cfg(target_os = "linux")]
fn marked(pid: u32, fd: &std::ffi::OsStr) -> Option<bool> {
    let path = format!("/proc/{pid}/fdinfo/{}", fd.to_string_lossy());
    let info = match std::fs::read_to_string(path) {
        Ok(info) => info,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(_) => return Some(false),
    };
    Some(
        info.lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .and_then(|f| i64::from_str_radix(f.trim(), 8).ok())
            .is_some_and(|flags| {
                let mark = i64::from(crate::file::LOCKUTILS_MARK);
                flags & mark == mark
            }),
    )
}

/// Looks for a descriptor of the file `(dev, ino)` in every process but this
/// one: one `stat` per descriptor, stopping at the first found.
#[cfg(target_os = "linux")]
fn scan(dev: u64, ino: u64) -> Scan {
    use crate::procfs::{other_processes, Descriptors};
    use std::ops::ControlFlow;
    let mut unreadable = usize::from(hidepid_hides_processes());
    let mut lockutils_seen = false;
    let walked = other_processes(|pid, fds| {
        let Descriptors::Listed(fds) = fds else {
            unreadable += 1;
            return ControlFlow::Continue(());
        };
        for fd in fds.flatten() {
            // `stat` through the magic link reaches the open file itself
            // (sockets and pipes answer with their own inodes).
            if let Ok(meta) = std::fs::metadata(fd.path()) {
                if meta.ino() == ino && meta.dev() == dev {
                    if marked(pid, &fd.file_name()) == Some(false) {
                        return ControlFlow::Break(pid);
                    }
                    lockutils_seen = true;
                }
            }
        }
        ControlFlow::Continue(())
    });
    match walked {
        Err(e) => Scan::Failed(e),
        Ok(None) => Scan::Unreadable(1),
        Ok(Some(ControlFlow::Break(pid))) => Scan::OpenIn(pid),
        Ok(Some(ControlFlow::Continue(()))) if unreadable > 0 => Scan::Unreadable(unreadable),
        Ok(Some(ControlFlow::Continue(()))) => Scan::NotOpen(lockutils_seen),
    }
}

/// Whether `/proc` is mounted with `hidepid=invisible` (or `2`), which
/// leaves other users' processes out of the listing entirely: they count as
/// unreadable, unless this process is privileged enough to see them all.
#[cfg(target_os = "linux")]
fn hidepid_hides_processes() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return false;
    }
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    info.lines()
        .filter(|l| l.split_whitespace().nth(4) == Some("/proc"))
        .any(|l| {
            l.split(" - ")
                .nth(1)
                .and_then(|fs| fs.split_whitespace().nth(2))
                .is_some_and(|opts| {
                    opts.split(',')
                        .any(|o| o == "hidepid=2" || o == "hidepid=invisible")
                })
        })
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn meta(f: &File) -> (u64, u64) {
        let m = f.metadata().unwrap();
        (m.dev(), m.ino())
    }

    #[test]
    fn a_file_open_only_here_is_leased_and_not_found_by_the_scan() {
        let tmp = tempfile::tempdir().unwrap();
        let f = File::create(tmp.path().join("t")).unwrap();
        let (dev, ino) = meta(&f);
        // This process is skipped by the scan.
        assert!(!matches!(scan(dev, ino), Scan::OpenIn(_)));
        assert!(!open_here_twice(dev, ino, f.as_raw_fd()));
        let sole = sole_opener(&f).unwrap().expect("sole opener");
        assert!(sole.leased.is_some(), "a lease on a temp file");
        drop(sole);
        // A second open file of the inode in this process refuses the lease,
        // and is this process's own.
        let g = File::open(tmp.path().join("t")).unwrap();
        assert_eq!(take_lease(&f), Lease::OpenElsewhere);
        assert!(open_here_twice(dev, ino, f.as_raw_fd()));
        let sole = sole_opener(&f)
            .unwrap()
            .expect("own descriptors do not count");
        assert!(sole.leased.is_none());
        drop((sole, g));
        assert_eq!(take_lease(&f), Lease::Granted);
    }

    #[test]
    fn this_process_is_described_by_its_stat() {
        assert!(crate::procfs::has_descriptors(std::process::id()));
    }

    #[test]
    fn in_use_says_who_and_what_to_do() {
        let by_pid = InUse {
            pid: Some(42),
            unreadable: 0,
        };
        assert!(by_pid.to_string().contains("process 42"), "{by_pid}");
        let hidden = InUse {
            pid: None,
            unreadable: 3,
        };
        let msg = hidden.to_string();
        assert!(
            msg.contains("3 processes") && msg.contains(REMOVE_UNVERIFIED_ENV),
            "{msg}"
        );
        let io = by_pid.into_io();
        assert_eq!(io.kind(), io::ErrorKind::ResourceBusy);
        assert_eq!(InUse::of_io(&io), Some(by_pid));
    }
}
