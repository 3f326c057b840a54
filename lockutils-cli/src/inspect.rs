//! The state of lock files: free or held, by whom, who waits. The report
//! types here are also the `--json` schema (see docs/cli.md).

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use lockutils_core::file::{probe, Conflict};
use lockutils_core::Mode;
use serde::Serialize;

use crate::duration;
use crate::procfs::{self, FdScan, Kind, LockKey, LockLine, LockMode, OpenFd, WaitEvidence};

/// Whether a lock file is held, as one word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum State {
    /// No `fcntl` lock on the file.
    Free,
    /// One exclusive (write) holder.
    HeldExclusive,
    /// One or more shared (read) holders.
    HeldShared,
    /// The file could not be examined.
    Unknown,
}

impl State {
    /// A table cell showing `text` in this state's colour.
    pub(crate) fn cell(self, text: String, paint: &crate::output::Paint) -> crate::output::Cell {
        let shown = match self {
            State::Free => paint.green(&text),
            State::HeldExclusive => paint.red(&text),
            State::HeldShared => paint.yellow(&text),
            State::Unknown => paint.dim(&text),
        };
        crate::output::Cell::new(text, shown)
    }
}

/// One holder or waiter of a lock: a process, or an owner that cannot be
/// seen (every field but `kind` and `mode` then `null`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Owner {
    /// The process id; `null` when not visible.
    pub(crate) pid: Option<i32>,
    /// Its command line; `null` when not visible.
    pub(crate) command: Option<String>,
    /// `"exclusive"` or `"shared"`; `null` when not known.
    pub(crate) mode: Option<&'static str>,
    /// `"ofd"` (lockutils) or `"posix"` (oslo.concurrency, fasteners, lockf).
    pub(crate) kind: &'static str,
    /// Its descriptors open on the lock file (empty when not known).
    pub(crate) fds: Vec<i32>,
    /// When the process started (RFC 3339, UTC). The kernel does not record
    /// when a lock was taken: a holder has held it at most since then.
    pub(crate) process_started: Option<String>,
    /// The same, in seconds since the Unix epoch.
    pub(crate) process_started_unix: Option<i64>,
    /// How it was found: `"fdinfo"`, `"proc_locks"`, `"syscall"` or
    /// `"wchan"`; `null` for an owner that is not visible.
    pub(crate) evidence: Option<&'static str>,
}

impl Owner {
    fn unknown(kind: Kind, mode: Option<LockMode>) -> Self {
        Owner {
            pid: None,
            command: None,
            mode: mode.map(LockMode::as_str),
            kind: kind.as_str(),
            fds: Vec::new(),
            process_started: None,
            process_started_unix: None,
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
        let info = procfs::process_info(pid);
        Owner {
            pid: Some(pid),
            command: info.command,
            mode: mode.map(LockMode::as_str),
            kind: kind.as_str(),
            fds,
            process_started: info.started_unix.map(duration::rfc3339),
            process_started_unix: info.started_unix,
            evidence: Some(evidence),
        }
    }
}

/// The file itself.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct FileInfo {
    /// Device as the kernel prints it in `/proc/locks` (`MAJOR:MINOR`, hex).
    pub(crate) device: String,
    /// Inode number.
    pub(crate) inode: u64,
    /// Permission bits, octal (`"0600"`).
    pub(crate) mode: String,
    /// Owner uid.
    pub(crate) uid: u32,
    /// Owner gid.
    pub(crate) gid: u32,
    /// Size in bytes (lock files are empty).
    pub(crate) size: u64,
    /// Last modification (RFC 3339, UTC): for lock files, creation.
    pub(crate) mtime: String,
    /// The same, in seconds since the Unix epoch.
    pub(crate) mtime_unix: i64,
}

/// Everything known about one lock file: an element of `list --json`, and
/// the output of `show --json`.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct LockReport {
    /// The lock file name: the lock's identity (prefix included).
    pub(crate) name: String,
    /// Always `"file"` (ZooKeeper reports say `"zookeeper"`).
    pub(crate) backend: &'static str,
    /// The lock file's path.
    pub(crate) path: PathBuf,
    /// `free`, `held_exclusive`, `held_shared` or `unknown`.
    pub(crate) state: State,
    /// How many `fcntl` locks the kernel lists as granted on the file;
    /// `null` when that could not be read.
    pub(crate) holder_count: Option<usize>,
    /// Who holds it: one entry per holding process, plus one entry per
    /// granted lock whose owner is not visible.
    pub(crate) holders: Vec<Owner>,
    /// Who waits for it: identified processes, plus one entry per blocked
    /// request whose owner is not visible.
    pub(crate) waiters: Vec<Owner>,
    /// `flock(2)` locks on the file (they do not exclude lockutils or oslo).
    pub(crate) flock_locks: usize,
    /// Processes whose descriptors this user cannot inspect: holders among
    /// them appear with `pid: null`.
    pub(crate) hidden_processes: usize,
    /// Why the state is `unknown`, otherwise `null`.
    pub(crate) error: Option<String>,
    /// The file's metadata; `null` if it could not be read.
    pub(crate) file: Option<FileInfo>,
}

impl LockReport {
    /// Holder pids that are visible, in order.
    pub(crate) fn holder_pids(&self) -> Vec<i32> {
        self.holders.iter().filter_map(|h| h.pid).collect()
    }

    /// `free`, `held exclusive`, `held shared by N`, `unknown`.
    pub(crate) fn state_text(&self) -> String {
        match self.state {
            State::Free => "free".into(),
            State::HeldExclusive => "held exclusive".into(),
            State::HeldShared => match self.holder_count {
                Some(n) => format!("held shared by {n}"),
                None => "held shared".into(),
            },
            State::Unknown => "unknown".into(),
        }
    }

    /// One line saying who holds the lock, for messages:
    /// `held exclusive by pid 42 (sleep 30), process started 3s ago`.
    pub(crate) fn holders_sentence(&self) -> String {
        let state = self.state_text();
        if self.state == State::Free || self.state == State::Unknown {
            return state;
        }
        let who: Vec<String> = self.holders.iter().map(describe_owner).collect();
        match (who.is_empty(), self.state) {
            (true, _) => format!("{state} (holder not visible to this user)"),
            (false, State::HeldShared) => format!("{state}: {}", who.join("; ")),
            (false, _) => format!("{state} by {}", who.join("; ")),
        }
    }
}

/// `pid 42 (sleep 30), process started 3s ago` or `a holder not visible to
/// this user`.
pub(crate) fn describe_owner(o: &Owner) -> String {
    let Some(pid) = o.pid else {
        return "an owner not visible to this user".into();
    };
    let mut s = format!("pid {pid}");
    if let Some(cmd) = &o.command {
        s.push_str(&format!(" ({})", truncate(cmd, 80)));
    }
    if let Some(t) = o.process_started_unix {
        s.push_str(&format!(
            ", process started {} ago",
            duration::human(duration::age(t))
        ));
    }
    s
}

/// `text` on one line (control characters such as a newline in a command
/// line escaped, `\n`), cut to `max` characters, with `…` when cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    let mut one_line = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            one_line.extend(c.escape_default());
        } else {
            one_line.push(c);
        }
    }
    let text = one_line;
    if text.chars().count() <= max {
        text
    } else {
        let mut t: String = text.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// A snapshot of the kernel's lock tables and of every process's open
/// descriptors of the files asked about, taken once for many files.
pub(crate) struct Snapshot {
    proc_locks: Option<Vec<LockLine>>,
    scan: FdScan,
}

impl Snapshot {
    /// Takes the snapshot for the given lock files (their metadata).
    pub(crate) fn take<'m>(files: impl IntoIterator<Item = &'m fs::Metadata>) -> Self {
        let ids: HashSet<(u64, u64)> = files.into_iter().map(|m| (m.dev(), m.ino())).collect();
        let inos: HashSet<u64> = ids.iter().map(|&(_, ino)| ino).collect();
        Snapshot {
            proc_locks: procfs::read_proc_locks(&inos),
            scan: procfs::scan_open_files(&ids),
        }
    }

    /// The report for the lock file `path` (named `name`), whose metadata
    /// (from `symlink_metadata`, before the snapshot) is `meta`.
    pub(crate) fn report(&self, name: &str, path: &Path, meta: &fs::Metadata) -> LockReport {
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
        let mut report = LockReport {
            name: name.to_owned(),
            backend: "file",
            path: path.to_owned(),
            state: State::Unknown,
            holder_count: None,
            holders: Vec::new(),
            waiters: Vec::new(),
            flock_locks: 0,
            hidden_processes: self.scan.hidden_processes,
            error: None,
            file: Some(file_info(meta)),
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
            report.holders.push(Owner::unknown(kind, mode));
        }
        report.waiters = waiters(fds, if table { Some(&blocked) } else { None });
        report
    }
}

/// Asks the kernel whether anyone holds an `fcntl` lock on the file, opening
/// it read-only (enough for `F_GETLK`) without following a symlink.
pub(crate) fn probe_path(path: &Path) -> io::Result<Option<Conflict>> {
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
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
fn holders(fds: &[OpenFd], granted: Option<&[&LockLine]>) -> (Vec<Owner>, Option<usize>) {
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
                && match procfs::same_open_file((first.pid, first.fd), (fd.pid, fd.fd)) {
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
        pids.sort_by_key(|&pid| (procfs::start_ticks_of(pid), pid));
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
            out.push(Owner::process(
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
                    out.push(Owner::process(
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
            out.push(Owner::unknown(Kind::Ofd, Some(mode)));
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
fn posix_owner(fds: &[OpenFd], l: &LockLine) -> Owner {
    if l.pid <= 0 {
        return Owner::unknown(Kind::Posix, l.mode);
    }
    let fds_of_pid = fds
        .iter()
        .filter(|f| f.pid == l.pid)
        .map(|f| f.fd)
        .collect();
    Owner::process(l.pid, Kind::Posix, l.mode, fds_of_pid, "proc_locks")
}

/// Waiters: the threads found blocked in `fcntl` on a descriptor of the
/// file (exact; for POSIX waiters also the pid the table shows); with the
/// table, blocked requests no identified thread accounts for are shown as
/// not visible.
fn waiters(fds: &[OpenFd], blocked: Option<&[&LockLine]>) -> Vec<Owner> {
    let mut out: Vec<Owner> = Vec::new();
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
        let Some((evidence, kind)) = procfs::blocked_thread(pid, &fd_nums, holds) else {
            continue;
        };
        let (evidence, kind) = match (evidence, kind) {
            (WaitEvidence::Syscall, Some(kind)) => ("syscall", kind),
            // Seen asleep in a lock wait only. With the table, that is one
            // of its blocked OFD requests (POSIX ones show their pid), if
            // it lists any.
            (_, _) if blocked.is_some() && ofd.is_empty() => continue,
            (_, _) if blocked.is_some() => ("wchan", Kind::Ofd),
            (_, kind) => ("wchan", kind.unwrap_or(Kind::Unknown)),
        };
        let mode = if kind == Kind::Ofd { common_mode } else { None };
        if kind == Kind::Ofd {
            identified_ofd += 1;
        }
        out.push(Owner::process(pid, kind, mode, fd_nums, evidence));
    }
    for l in ofd.iter().skip(identified_ofd) {
        out.push(Owner::unknown(Kind::Ofd, l.mode));
    }
    out
}

fn file_info(meta: &fs::Metadata) -> FileInfo {
    let key = LockKey::of(meta);
    FileInfo {
        device: key.device(),
        inode: meta.ino(),
        mode: format!("{:04o}", meta.mode() & 0o7777),
        uid: meta.uid(),
        gid: meta.gid(),
        size: meta.size(),
        mtime: duration::rfc3339(meta.mtime()),
        mtime_unix: meta.mtime(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> LockLine {
        procfs::parse_lock_line(text).unwrap()
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
        assert_eq!(h[0].mode, Some("exclusive"));
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
        assert_eq!(h[0].kind, "posix");
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
        let w = waiters(&[], Some(&refs));
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].pid, None);
        assert_eq!(w[0].mode, Some("exclusive"));
    }

    #[test]
    fn truncation_marks_the_cut() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("abcdef", 4), "abc…");
    }
}
