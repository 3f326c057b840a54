//! Who holds and who waits for a lock file, as far as the kernel tells:
//! `F_GETLK`, `/proc/locks`, every process's descriptors and their fdinfo,
//! and blocked threads' system calls ([`procfs`](crate::procfs)). What the
//! `lockutils list/show` command reports, for library users too.
//!
//! ```
//! use lockutils_core::file_inspect::{Snapshot, State};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let guard = lockutils_core::LockOptions::new("x").external(true).lock_path(dir.path()).lock().unwrap();
//! let path = dir.path().join("x");
//! let meta = std::fs::symlink_metadata(&path).unwrap();
//! let state = Snapshot::take([&meta]).inspect(&path, &meta);
//! assert_eq!(state.state, State::HeldExclusive);
//! drop(guard);
//! let state = Snapshot::take([&meta]).inspect(&path, &meta);
//! assert_eq!(state.state, State::Free);
//! ```

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use crate::file::{probe, Conflict};
use crate::procfs::{FdScan, Kind, LockKey, LockLine, LockMode, OpenFd, WaitEvidence};
use crate::raw::Mode;

/// Whether a lock file is held, as one word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// No `fcntl` lock on the file.
    Free,
    /// One exclusive (write) holder.
    HeldExclusive,
    /// One or more shared (read) holders.
    HeldShared,
    /// The file could not be examined.
    Unknown,
}

/// One holder or waiter of a lock file: a process, or an owner that cannot
/// be seen (`pid` and the process facts then `None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileOwner {
    /// The process id; `None` when not visible.
    pub pid: Option<i32>,
    /// Its command line; `None` when not visible.
    pub command: Option<String>,
    /// Exclusive or shared; `None` when not known.
    pub mode: Option<LockMode>,
    /// OFD (lockutils) or POSIX (oslo.concurrency, fasteners, lockf).
    pub kind: Kind,
    /// Its descriptors open on the lock file (empty when not known).
    pub fds: Vec<i32>,
    /// When the process started, in seconds since the Unix epoch. The kernel
    /// does not record when a lock was taken: a holder has held it at most
    /// since then.
    pub started_unix: Option<i64>,
    /// How it was found: `"fdinfo"`, `"proc_locks"`, `"syscall"` or
    /// `"wchan"`; `None` for an owner that is not visible.
    pub evidence: Option<&'static str>,
}

impl FileOwner {
    fn unknown(kind: Kind, mode: Option<LockMode>) -> Self {
        FileOwner {
            pid: None,
            command: None,
            mode,
            kind,
            fds: Vec::new(),
            started_unix: None,
            evidence: None,
        }
    }

    fn process(
        pid: i32,
        kind: Kind,
        mode: Option<LockMode>,
        fds: Vec<i32>,
        evidence: &'static str,
    ) -> Self {
        let info = crate::procfs::process_info(pid);
        FileOwner {
            pid: Some(pid),
            command: info.command,
            mode,
            kind,
            fds,
            started_unix: info.started_unix,
            evidence: Some(evidence),
        }
    }
}

/// Everything known about who holds and waits for one lock file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileLockState {
    /// Free, held exclusive or shared, or unknown.
    pub state: State,
    /// How many `fcntl` locks the kernel lists as granted on the file;
    /// `None` when that could not be read.
    pub holder_count: Option<usize>,
    /// Who holds it: one entry per holding process, plus one entry per
    /// granted lock whose owner is not visible.
    pub holders: Vec<FileOwner>,
    /// Who waits for it: one entry per waiting thread identified (a process
    /// waiting in two threads appears twice), plus one per blocked request
    /// whose owner is not visible.
    pub waiters: Vec<FileOwner>,
    /// `flock(2)` locks on the file (they do not exclude lockutils or oslo).
    pub flock_locks: usize,
    /// Processes whose descriptors this user cannot inspect: holders among
    /// them appear with no pid.
    pub hidden_processes: usize,
    /// Why the state is unknown.
    pub error: Option<String>,
}

/// A snapshot of the kernel's lock tables and of every process's open
/// descriptors of the files asked about, taken once for many files.
#[derive(Debug)]
pub struct Snapshot {
    proc_locks: Option<Vec<LockLine>>,
    scan: FdScan,
}

impl Snapshot {
    /// Takes the snapshot for the given lock files (their metadata).
    pub fn take<'m>(files: impl IntoIterator<Item = &'m fs::Metadata>) -> Self {
        let ids: HashSet<(u64, u64)> = files.into_iter().map(|m| (m.dev(), m.ino())).collect();
        let inos: HashSet<u64> = ids.iter().map(|&(_, ino)| ino).collect();
        Snapshot {
            proc_locks: crate::procfs::read_proc_locks(&inos),
            scan: crate::procfs::scan_open_files(&ids),
        }
    }

    /// The state of the lock file `path`, whose metadata (from
    /// `symlink_metadata`, before the snapshot) is `meta`.
    pub fn inspect(&self, path: &Path, meta: &fs::Metadata) -> FileLockState {
        let fds: &[OpenFd] = self
            .scan
            .by_file
            .get(&(meta.dev(), meta.ino()))
            .map_or(&[], Vec::as_slice);
        // The key the kernel uses for this file: as a holder's fdinfo shows
        // it, or else computed from the metadata.
        let key = fds
            .iter()
            .flat_map(|f| &f.locks)
            .map(|l| l.key)
            .find(|k| k.ino == meta.ino())
            .unwrap_or_else(|| LockKey::of(meta));
        let mut report = FileLockState {
            state: State::Unknown,
            holder_count: None,
            holders: Vec::new(),
            waiters: Vec::new(),
            flock_locks: 0,
            hidden_processes: self.scan.hidden_processes,
            error: None,
        };

        // What the kernel itself says about the file, by asking for a lock.
        let probed = probe_path(path);
        let on_file: Vec<&LockLine> = self
            .proc_locks
            .iter()
            .flatten()
            .filter(|l| l.key == key)
            .collect();
        report.flock_locks = on_file
            .iter()
            .filter(|l| l.kind == Kind::Flock && !l.blocked)
            .count();
        let granted: Vec<&LockLine> = on_file
            .iter()
            .copied()
            .filter(|l| !l.blocked && l.kind.is_fcntl())
            .collect();
        let blocked: Vec<&LockLine> = on_file
            .iter()
            .copied()
            .filter(|l| l.blocked && l.kind.is_fcntl())
            .collect();
        // `/proc/locks` is authoritative when it was read and agrees with the
        // probe; otherwise (file identity mismatch, unreadable table) only the
        // probe's answer is used and the count stays unknown.
        let table_agrees = match &probed {
            Ok(None) => granted.is_empty(),
            Ok(Some(_)) => !granted.is_empty(),
            Err(_) => true,
        };
        let table = self.proc_locks.is_some() && table_agrees;
        report.state = if table && !granted.is_empty() {
            if granted.iter().any(|l| l.mode == Some(LockMode::Exclusive)) {
                State::HeldExclusive
            } else {
                State::HeldShared
            }
        } else {
            match &probed {
                Ok(None) => State::Free,
                Ok(Some(c)) if c.mode == Mode::Shared => State::HeldShared,
                Ok(Some(_)) => State::HeldExclusive,
                // The file cannot be opened (another user's, say), but the
                // table lists no lock on its inode on any device: free.
                Err(_)
                    if table
                        && !self
                            .proc_locks
                            .iter()
                            .flatten()
                            .any(|l| l.key.ino == meta.ino() && l.kind.is_fcntl()) =>
                {
                    State::Free
                }
                Err(e) => {
                    report.error = Some(format!("cannot open the lock file to probe it: {e}"));
                    State::Unknown
                }
            }
        };
        if report.state == State::Free {
            if table {
                report.holder_count = Some(0);
            }
            return report;
        }

        let (holders, count) = holders(fds, if table { Some(&granted) } else { None });
        report.holders = holders;
        report.holder_count = count;
        if report.holders.is_empty() {
            // Held, but by no one visible.
            let mode = match report.state {
                State::HeldShared => Some(LockMode::Shared),
                State::HeldExclusive => Some(LockMode::Exclusive),
                _ => None,
            };
            let kind = match &probed {
                Ok(Some(c)) if c.pid > 0 => Kind::Posix,
                _ => Kind::Ofd,
            };
            report.holders.push(FileOwner::unknown(kind, mode));
        }
        report.waiters = waiters(
            fds,
            (meta.dev(), meta.ino()),
            if table { Some(&blocked) } else { None },
        );
        report
    }
}

/// Asks the kernel whether anyone holds an `fcntl` lock on the file, opening
/// it read-only (enough for `F_GETLK`) without following a symlink.
pub fn probe_path(path: &Path) -> io::Result<Option<Conflict>> {
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(path)?;
    probe(&file, Mode::Exclusive)
}

/// Holders from the descriptors' `lock:` lines (OFD) and from `/proc/locks`
/// (POSIX, whose pid it shows), plus one unknown entry for each granted lock
/// no visible process accounts for; and how many locks are granted (`None`
/// without the table).
///
/// An OFD lock can be invisible even when every process of this pid
/// namespace could be inspected: `/proc/locks` lists OFD locks of processes
/// in other namespaces (containers sharing the lock directory) too.
fn holders(fds: &[OpenFd], granted: Option<&[&LockLine]>) -> (Vec<FileOwner>, Option<usize>) {
    let mut out = Vec::new();
    // OFD: group the holding descriptors into open files (descriptions),
    // since a lock belongs to an open file, which dup() and fork() share.
    let holding: Vec<(&OpenFd, LockMode)> = fds
        .iter()
        .filter_map(|f| {
            f.locks
                .iter()
                .find(|l| l.kind == Kind::Ofd && !l.blocked)
                .and_then(|l| l.mode)
                .map(|m| (f, m))
        })
        .collect();
    let mut descriptions: Vec<Vec<(&OpenFd, LockMode)>> = Vec::new();
    for &(fd, mode) in &holding {
        let found = descriptions.iter_mut().find(|d| {
            let (first, first_mode) = d[0];
            first_mode == mode
                && match crate::procfs::same_open_file((first.pid, first.fd), (fd.pid, fd.fd)) {
                    Some(same) => same,
                    // Cannot compare: assume one process's descriptors with the
                    // same mode share one open file (the common case of dup).
                    None => first.pid == fd.pid,
                }
        });
        match found {
            Some(d) => d.push((fd, mode)),
            None => descriptions.push(vec![(fd, mode)]),
        }
    }
    // One entry per process holding through each open file, the process
    // that started first (the one that took the lock, before any child it
    // forked shares it) first.
    let mut seen_pids: Vec<(i32, LockMode)> = Vec::new();
    for d in &descriptions {
        let mode = d[0].1;
        let mut pids: Vec<i32> = d.iter().map(|(f, _)| f.pid).collect();
        pids.sort_by_key(|&pid| (crate::procfs::start_ticks_of(pid), pid));
        pids.dedup();
        for pid in pids {
            if seen_pids.contains(&(pid, mode)) {
                continue;
            }
            seen_pids.push((pid, mode));
            let fds_of_pid: Vec<i32> = d
                .iter()
                .filter(|(f, _)| f.pid == pid)
                .map(|(f, _)| f.fd)
                .collect();
            out.push(FileOwner::process(
                pid,
                Kind::Ofd,
                Some(mode),
                fds_of_pid,
                "fdinfo",
            ));
        }
    }
    let Some(granted) = granted else {
        // Without the table, POSIX holders are only known from fdinfo.
        for f in fds {
            for l in f.locks.iter().filter(|l| l.kind == Kind::Posix) {
                if !out.iter().any(|o| o.pid == Some(f.pid)) {
                    out.push(FileOwner::process(
                        f.pid,
                        Kind::Posix,
                        l.mode,
                        vec![f.fd],
                        "fdinfo",
                    ));
                }
            }
        }
        return (out, None);
    };
    let mut count = descriptions.len();
    // OFD locks the kernel lists but no visible descriptor accounts for.
    for mode in [LockMode::Exclusive, LockMode::Shared] {
        let listed = granted
            .iter()
            .filter(|l| l.kind == Kind::Ofd && l.mode == Some(mode))
            .count();
        let seen = descriptions.iter().filter(|d| d[0].1 == mode).count();
        for _ in seen..listed {
            out.push(FileOwner::unknown(Kind::Ofd, Some(mode)));
            count += 1;
        }
    }
    // POSIX locks: the table names the process, which has at most one lock
    // on the whole file (a repeated line is a repeated reading).
    let mut posix: Vec<(i32, Option<LockMode>)> = Vec::new();
    for l in granted.iter().filter(|l| l.kind == Kind::Posix) {
        if l.pid > 0 && posix.contains(&(l.pid, l.mode)) {
            continue;
        }
        posix.push((l.pid, l.mode));
        count += 1;
        out.push(posix_owner(fds, l));
    }
    (out, Some(count))
}

/// A classic POSIX lock (or request) from `/proc/locks`: its pid is the
/// owner's, with that process's descriptors of the file; no pid, unknown.
fn posix_owner(fds: &[OpenFd], l: &LockLine) -> FileOwner {
    if l.pid <= 0 {
        return FileOwner::unknown(Kind::Posix, l.mode);
    }
    let fds_of_pid = fds
        .iter()
        .filter(|f| f.pid == l.pid)
        .map(|f| f.fd)
        .collect();
    FileOwner::process(l.pid, Kind::Posix, l.mode, fds_of_pid, "proc_locks")
}

/// Waiters: the threads found blocked in `fcntl` on a descriptor of the
/// file (exact; for POSIX waiters also the pid the table shows); with the
/// table, blocked requests no identified thread accounts for are shown as
/// not visible.
fn waiters(fds: &[OpenFd], file: (u64, u64), blocked: Option<&[&LockLine]>) -> Vec<FileOwner> {
    let mut out: Vec<FileOwner> = Vec::new();
    for l in blocked
        .into_iter()
        .flatten()
        .filter(|l| l.kind == Kind::Posix)
    {
        if l.pid > 0 && out.iter().any(|o| o.pid == Some(l.pid)) {
            continue;
        }
        out.push(posix_owner(fds, l));
    }
    let ofd: Vec<&LockLine> = blocked
        .into_iter()
        .flatten()
        .copied()
        .filter(|l| l.kind == Kind::Ofd)
        .collect();
    // Processes with the file open, except POSIX waiters already named.
    let mut pids: Vec<i32> = fds.iter().map(|f| f.pid).collect();
    pids.sort_unstable();
    pids.dedup();
    pids.retain(|p| !out.iter().any(|o| o.pid == Some(*p)));
    // The table gives the modes of the blocked requests but not whose they
    // are: a mode is attached only when all of them agree.
    let common_mode = ofd
        .first()
        .and_then(|l| l.mode)
        .filter(|m| ofd.iter().all(|l| l.mode == Some(*m)));
    let mut identified_ofd = 0;
    for pid in pids {
        let mine: Vec<&OpenFd> = fds.iter().filter(|f| f.pid == pid).collect();
        let fd_nums: Vec<i32> = mine.iter().map(|f| f.fd).collect();
        let holds = mine.iter().any(|f| f.locks.iter().any(|l| !l.blocked));
        let Some(threads) = crate::procfs::blocked_threads(pid, &fd_nums, Some(file), holds) else {
            continue;
        };
        // One entry per waiting thread: each is one blocked request.
        let seen: Vec<(&'static str, Kind)> = match threads.evidence {
            WaitEvidence::Syscall => threads.kinds.iter().map(|&k| ("syscall", k)).collect(),
            // Seen asleep in a lock wait only. With the table, that is one
            // of its blocked OFD requests (POSIX ones show their pid), if
            // it lists any.
            WaitEvidence::Wchan if blocked.is_some() && ofd.is_empty() => continue,
            WaitEvidence::Wchan if blocked.is_some() => vec![("wchan", Kind::Ofd)],
            WaitEvidence::Wchan => vec![("wchan", Kind::Unknown)],
        };
        for (evidence, kind) in seen {
            let mode = if kind == Kind::Ofd { common_mode } else { None };
            if kind == Kind::Ofd {
                identified_ofd += 1;
            }
            out.push(FileOwner::process(pid, kind, mode, fd_nums.clone(), evidence));
        }
    }
    for l in ofd.iter().skip(identified_ofd) {
        out.push(FileOwner::unknown(Kind::Ofd, l.mode));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> LockLine {
        crate::procfs::parse_lock_line(text).unwrap()
    }

    fn fd(pid: i32, fd: i32, locks: &[&str]) -> OpenFd {
        OpenFd {
            pid,
            fd,
            locks: locks.iter().map(|l| line(l)).collect(),
        }
    }

    const OFD_W: &str = "1: OFDLCK ADVISORY  WRITE -1 fe:00:7 0 EOF";
    const OFD_R: &str = "1: OFDLCK ADVISORY  READ -1 fe:00:7 0 EOF";

    #[test]
    fn a_granted_lock_without_a_visible_descriptor_is_unknown() {
        let granted = [line(OFD_W)];
        let refs: Vec<&LockLine> = granted.iter().collect();
        let (h, count) = holders(&[], Some(&refs));
        assert_eq!(count, Some(1));
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].pid, None);
        assert_eq!(h[0].mode, Some(LockMode::Exclusive));
        assert_eq!(h[0].evidence, None);
    }

    #[test]
    fn visible_and_invisible_shared_holders_add_up() {
        // The kernel lists three read locks; two descriptors in two (fake,
        // so not comparable) processes are visible.
        let granted = [line(OFD_R), line(OFD_R), line(OFD_R)];
        let refs: Vec<&LockLine> = granted.iter().collect();
        let fds = [fd(-7, 3, &[OFD_R]), fd(-8, 4, &[OFD_R])];
        let (h, count) = holders(&fds, Some(&refs));
        let pids: Vec<Option<i32>> = h.iter().map(|o| o.pid).collect();
        assert_eq!(pids, vec![Some(-7), Some(-8), None]);
        assert_eq!(count, Some(3));
    }

    #[test]
    fn posix_holders_come_from_the_table() {
        let granted = [line("1: POSIX ADVISORY  WRITE 4242 fe:00:7 0 EOF")];
        let refs: Vec<&LockLine> = granted.iter().collect();
        let (h, _) = holders(&[], Some(&refs));
        assert_eq!(h[0].pid, Some(4242));
        assert_eq!(h[0].kind, Kind::Posix);
        assert_eq!(h[0].evidence, Some("proc_locks"));
        let hidden = [line("1: POSIX ADVISORY  WRITE 0 fe:00:7 0 EOF")];
        let refs: Vec<&LockLine> = hidden.iter().collect();
        assert_eq!(holders(&[], Some(&refs)).0[0].pid, None);
        // A line read twice is one lock.
        let twice = [
            line("1: POSIX ADVISORY  WRITE 4242 fe:00:7 0 EOF"),
            line("2: POSIX ADVISORY  WRITE 4242 fe:00:7 0 EOF"),
        ];
        let refs: Vec<&LockLine> = twice.iter().collect();
        let (h, count) = holders(&[], Some(&refs));
        assert_eq!((h.len(), count), (1, Some(1)));
    }

    #[test]
    fn unidentified_ofd_waiters_are_unknown() {
        let blocked = [line("1: -> OFDLCK ADVISORY  WRITE -1 fe:00:7 0 EOF")];
        let refs: Vec<&LockLine> = blocked.iter().collect();
        let w = waiters(&[], (0, 0), Some(&refs));
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].pid, None);
        assert_eq!(w[0].mode, Some(LockMode::Exclusive));
    }
}
