//! What the kernel tells about file locks and the processes behind them,
//! read from Linux's `/proc`.
//!
//! - `/proc/locks` lists every granted lock and every blocked request (marked
//!   `->`) with its kind, mode, owner pid and file (`MAJOR:MINOR:INODE`). For
//!   classic POSIX locks (oslo.concurrency, fasteners) the pid is the holder;
//!   for open-file-description (OFD) locks, which lockutils takes, it is `-1`.
//! - `/proc/PID/fdinfo/FD` lists, in `lock:` lines of the same format, the
//!   locks owned through that descriptor's open file: that is how OFD holders
//!   are found.
//! - `/proc/PID/task/TID/syscall` shows a thread blocked in
//!   `fcntl(FD, F_OFD_SETLKW, …)`, which identifies an OFD waiter exactly;
//!   where it is not readable, `/proc/PID/task/TID/wchan` still says that the
//!   thread sleeps in a file-lock wait.
//!
//! Nothing here guesses: what cannot be read is reported as not visible.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::ops::ControlFlow;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A file as `/proc/locks` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LockKey {
    /// Device major number.
    pub major: u32,
    /// Device minor number.
    pub minor: u32,
    /// Inode number.
    pub ino: u64,
}

impl LockKey {
    /// The key of a file from its metadata. Equal to what the kernel prints
    /// on most file systems; the kernel prints the super block's device, so on
    /// some (btrfs subvolumes, overlayfs) it differs, which is why keys seen in
    /// a holder's `fdinfo` win over this one.
    pub fn of(meta: &fs::Metadata) -> Self {
        let dev = meta.dev();
        LockKey {
            major: libc::major(dev),
            minor: libc::minor(dev),
            ino: meta.ino(),
        }
    }

    /// `MAJOR:MINOR` as the kernel prints it (hex).
    pub fn device(&self) -> String {
        format!("{:02x}:{:02x}", self.major, self.minor)
    }
}

/// Kinds of file locks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Classic process-associated `fcntl`/`lockf` lock (oslo, fasteners).
    Posix,
    /// Open-file-description `fcntl` lock (lockutils on Linux).
    Ofd,
    /// `flock(2)` lock: does not conflict with the two above.
    Flock,
    /// Leases, delegations and anything else.
    Other,
    /// Not known (a waiter seen only through `wchan`).
    Unknown,
}

impl Kind {
    /// Whether locks of this kind exclude lockutils (and oslo) holders.
    pub fn is_fcntl(self) -> bool {
        matches!(self, Kind::Posix | Kind::Ofd)
    }

    /// The name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Posix => "posix",
            Kind::Ofd => "ofd",
            Kind::Flock => "flock",
            Kind::Other => "other",
            Kind::Unknown => "unknown",
        }
    }
}

/// Read (shared) or write (exclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LockMode {
    /// A read lock: shared with other readers.
    Shared,
    /// A write lock: exclusive.
    Exclusive,
}

impl LockMode {
    /// The name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Shared => "shared",
            LockMode::Exclusive => "exclusive",
        }
    }
}

/// One line of `/proc/locks` (or a `lock:` line of fdinfo).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LockLine {
    /// A blocked request (`->`) rather than a granted lock.
    pub blocked: bool,
    /// The lock's kind.
    pub kind: Kind,
    /// The mode; `None` for kinds without one (leases being broken, …).
    pub mode: Option<LockMode>,
    /// The owner pid as printed: `-1` for OFD locks, `0` when not visible.
    pub pid: i32,
    /// The file.
    pub key: LockKey,
}

/// Parses `ID: [->] KIND ADVISORY|MANDATORY READ|WRITE PID MAJ:MIN:INO START END`.
pub fn parse_lock_line(line: &str) -> Option<LockLine> {
    let mut fields = line.split_whitespace();
    let id = fields.next()?;
    if !id.ends_with(':') {
        return None;
    }
    let mut kind = fields.next()?;
    let blocked = kind == "->";
    if blocked {
        kind = fields.next()?;
    }
    let kind = match kind {
        "POSIX" => Kind::Posix,
        "OFDLCK" => Kind::Ofd,
        "FLOCK" => Kind::Flock,
        _ => Kind::Other,
    };
    let _advisory = fields.next()?;
    let mode = match fields.next()? {
        "READ" => Some(LockMode::Shared),
        "WRITE" => Some(LockMode::Exclusive),
        _ => None,
    };
    let pid = fields.next()?.parse().ok()?;
    let mut file = fields.next()?.split(':');
    let key = LockKey {
        major: u32::from_str_radix(file.next()?, 16).ok()?,
        minor: u32::from_str_radix(file.next()?, 16).ok()?,
        ino: file.next()?.parse().ok()?,
    };
    Some(LockLine {
        blocked,
        kind,
        mode,
        pid,
        key,
    })
}

/// The lines of `/proc/locks` about files with one of the inode numbers
/// `inos` (on any device); `None` if it cannot be read consistently.
///
/// The kernel renders this table afresh, from the current position, for
/// each `read`, at most a page at a time: when locks come and go between two
/// reads, lines at the seams are repeated or skipped, and on a busy table
/// that happens to the same lines again and again. (`read_to_string` starts
/// with a 32-byte read, so it would split even a short table.) So the table
/// is used only when one read returns all of it, or when two consecutive
/// readings are identical, byte for byte: nothing changed while they were
/// taken. A table that keeps changing is not used at all.
pub fn read_proc_locks(inos: &HashSet<u64>) -> Option<Vec<LockLine>> {
    let path = Path::new("/proc/locks");
    let mut previous: Option<Vec<u8>> = None;
    for _ in 0..6 {
        let (text, reads) = read_in_chunks(path, 1 << 16).ok()?;
        if reads <= 1 || previous.as_ref() == Some(&text) {
            return Some(
                String::from_utf8_lossy(&text)
                    .lines()
                    .filter_map(parse_lock_line)
                    .filter(|l| inos.contains(&l.key.ino))
                    .collect(),
            );
        }
        previous = Some(text);
    }
    None
}

/// A whole file, read `size` bytes at a time, and how many reads returned
/// data.
fn read_in_chunks(path: &Path, size: usize) -> io::Result<(Vec<u8>, usize)> {
    use std::io::Read;
    let mut file = fs::File::open(path)?;
    let mut text = Vec::new();
    let mut chunk = vec![0u8; size];
    let mut reads = 0;
    loop {
        match file.read(&mut chunk) {
            Ok(0) => return Ok((text, reads)),
            Ok(n) => {
                text.extend_from_slice(&chunk[..n]);
                reads += 1;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// An open descriptor, in some process, of one of the files looked for.
#[derive(Clone, Debug)]
pub struct OpenFd {
    /// The process.
    pub pid: i32,
    /// The descriptor number in that process.
    pub fd: i32,
    /// The locks owned through this descriptor's open file (its `lock:`
    /// lines); empty when it holds none or fdinfo was not readable.
    pub locks: Vec<LockLine>,
}

/// The result of scanning every process's descriptors.
#[derive(Debug, Default)]
pub struct FdScan {
    /// Open descriptors of each looked-for file, by `(st_dev, st_ino)`.
    pub by_file: HashMap<(u64, u64), Vec<OpenFd>>,
    /// Processes whose descriptors could not be listed (other users'
    /// processes, when not privileged): holders among them are not visible.
    pub hidden_processes: usize,
}

/// A process's open descriptors, as [`other_processes`] finds them.
pub(crate) enum Descriptors {
    /// Its `/proc/PID/fd` listing.
    Listed(fs::ReadDir),
    /// Not readable by this process (another user's, without ptrace
    /// access): whatever it has open is out of sight.
    Hidden,
}

/// Visits the descriptors of every live process but this one, until `visit`
/// breaks. Processes that exit meanwhile, zombies and kernel threads (none of
/// which has descriptors) are skipped.
///
/// `Ok(None)`: `/proc` cannot be listed (not mounted, or not readable).
/// `Err`: the walk failed for a reason that may pass (out of descriptors or
/// memory): unlike a process this user may not read, that says nothing about
/// who has what open, so callers must not take it as "out of sight".
pub(crate) fn other_processes<B>(
    visit: impl FnMut(u32, Descriptors) -> ControlFlow<B>,
) -> io::Result<Option<ControlFlow<B>>> {
    processes(false, visit)
}

/// [`other_processes`], this one included when `with_self` says so.
fn processes<B>(
    with_self: bool,
    mut visit: impl FnMut(u32, Descriptors) -> ControlFlow<B>,
) -> io::Result<Option<ControlFlow<B>>> {
    let me = std::process::id();
    let procs = match fs::read_dir("/proc") {
        Ok(procs) => procs,
        Err(e) if is_out_of_sight(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me && !with_self {
            continue;
        }
        let fds = match fs::read_dir(entry.path().join("fd")) {
            Ok(fds) => Descriptors::Listed(fds),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // exited
            Err(e) if !is_out_of_sight(&e) => return Err(e),
            Err(_) if !has_descriptors(pid) => continue,
            Err(_) => Descriptors::Hidden,
        };
        if let ControlFlow::Break(b) = visit(pid, fds) {
            return Ok(Some(ControlFlow::Break(b)));
        }
    }
    Ok(Some(ControlFlow::Continue(())))
}

/// Whether `e` means "not this user's to read" (or not there at all), as
/// opposed to a failure that may pass.
fn is_out_of_sight(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EACCES | libc::EPERM | libc::ENOENT | libc::ESRCH)
    )
}

/// Whether process `pid` may still hold descriptors: false for zombies and
/// kernel threads, whose descriptor lists the kernel lets nobody read.
pub(crate) fn has_descriptors(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return true;
    };
    let mut fields = rest.split_whitespace();
    let state = fields.next().unwrap_or("");
    // Field 9 (flags) is the 7th after the state; PF_KTHREAD is 0x00200000.
    let kthread = fields
        .nth(6)
        .and_then(|f| f.parse::<u64>().ok())
        .is_some_and(|flags| flags & 0x0020_0000 != 0);
    !(state == "Z" || state == "X" || kthread)
}

/// Finds every descriptor, in every process (this one too: its own holds and
/// waits are as much the lock's as anyone's), open on one of the `files` (by
/// `(st_dev, st_ino)`), with the locks owned through it.
pub fn scan_open_files(files: &HashSet<(u64, u64)>) -> FdScan {
    let mut scan = FdScan::default();
    if files.is_empty() {
        return scan;
    }
    let walked = processes::<()>(true, |pid, fds| {
        let fds = match fds {
            Descriptors::Listed(fds) => fds,
            Descriptors::Hidden => {
                scan.hidden_processes += 1;
                return ControlFlow::Continue(());
            }
        };
        let pid = pid as i32;
        for fd in fds.flatten() {
            let Some(fd_num) = fd.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            // Sockets, pipes and anonymous inodes do not link to a path.
            match fs::read_link(fd.path()) {
                Ok(target) if target.is_absolute() => {}
                _ => continue,
            }
            // `stat` through the magic link reaches the open file itself.
            let Ok(meta) = fs::metadata(fd.path()) else {
                continue;
            };
            let id = (meta.dev(), meta.ino());
            if !files.contains(&id) {
                continue;
            }
            let locks = fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd_num}"))
                .map(|info| {
                    info.lines()
                        .filter_map(|l| l.strip_prefix("lock:"))
                        .filter_map(parse_lock_line)
                        .collect()
                })
                .unwrap_or_default();
            scan.by_file.entry(id).or_default().push(OpenFd {
                pid,
                fd: fd_num,
                locks,
            });
        }
        ControlFlow::Continue(())
    });
    if !matches!(walked, Ok(Some(_))) {
        // Some processes went unread: say that holders may be out of sight.
        scan.hidden_processes += 1;
    }
    scan
}

/// How a waiting thread was identified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitEvidence {
    /// `/proc/PID/task/TID/syscall`: blocked in `fcntl(FD, F_*SETLKW)` on a
    /// descriptor of this file. Exact.
    Syscall,
    /// `/proc/PID/task/TID/wchan`: sleeping in a file-lock wait while the
    /// process has this file open and holds no lock through it (the syscall
    /// was not readable).
    Wchan,
}

/// The threads of one process that wait for a lock on a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockedThreads {
    /// How they were seen.
    pub evidence: WaitEvidence,
    /// The kind of each request the system calls show, one per thread (for
    /// [`WaitEvidence::Syscall`]); empty when only `wchan` told, which
    /// says that some thread waits, not how many.
    pub kinds: Vec<Kind>,
}

/// The threads of process `pid` that wait for a lock on one of `fds` (its
/// descriptors of one file): every thread whose system call shows it, or,
/// when no system call was readable, whether a thread sleeps in the
/// kernel's file-lock wait while the process holds no lock (`holds_lock`
/// false).
///
/// With `file` (its `(st_dev, st_ino)`), a descriptor a system call names is
/// checked to be that file still: the descriptors were listed a moment
/// before, and one closed since and opened again on another file would
/// otherwise count a wait for that other file as one for this.
pub fn blocked_threads(
    pid: i32,
    fds: &[i32],
    file: Option<(u64, u64)>,
    holds_lock: bool,
) -> Option<BlockedThreads> {
    let tasks = fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let still_the_file = |fd: i32| {
        file.is_none_or(|id| {
            fs::metadata(format!("/proc/{pid}/fd/{fd}")).is_ok_and(|m| (m.dev(), m.ino()) == id)
        })
    };
    let mut wchan_hit = false;
    let mut kinds = Vec::new();
    for task in tasks.flatten() {
        let path = task.path();
        match fs::read_to_string(path.join("syscall")) {
            Ok(line) => kinds.extend(
                fcntl_wait(&line, fds)
                    .filter(|&(fd, _)| still_the_file(fd))
                    .map(|(_, kind)| kind),
            ),
            Err(_) => {
                let wchan = fs::read_to_string(path.join("wchan")).unwrap_or_default();
                if !holds_lock && is_lock_wait_channel(wchan.trim()) {
                    wchan_hit = true;
                }
            }
        }
    }
    if !kinds.is_empty() {
        return Some(BlockedThreads {
            evidence: WaitEvidence::Syscall,
            kinds,
        });
    }
    wchan_hit.then_some(BlockedThreads {
        evidence: WaitEvidence::Wchan,
        kinds,
    })
}

/// The kind of lock a `/proc/…/syscall` line waits for, if it is
/// `fcntl(fd, F_OFD_SETLKW | F_SETLKW, …)` on one of `fds`.
pub fn waits_in_fcntl(line: &str, fds: &[i32]) -> Option<Kind> {
    fcntl_wait(line, fds).map(|(_, kind)| kind)
}

/// [`waits_in_fcntl`], with the descriptor the call names.
fn fcntl_wait(line: &str, fds: &[i32]) -> Option<(i32, Kind)> {
    let mut fields = line.split_whitespace();
    // "running", or "-1 …" when not in a system call, do not parse or match.
    let nr = fields.next()?.parse::<i64>().ok()?;
    if nr != libc::SYS_fcntl {
        return None;
    }
    let hex = |s: Option<&str>| {
        s.and_then(|s| s.strip_prefix("0x"))
            .and_then(|s| u64::from_str_radix(s, 16).ok())
    };
    let fd = hex(fields.next())?;
    let cmd = hex(fields.next())?;
    let fd = *fds.iter().find(|&&f| f as u64 == fd)?;
    if cmd == libc::F_OFD_SETLKW as u64 {
        Some((fd, Kind::Ofd))
    } else if cmd == libc::F_SETLKW as u64 {
        Some((fd, Kind::Posix))
    } else {
        None
    }
}

/// Kernel functions a thread sleeps in while waiting for an `fcntl` lock.
fn is_lock_wait_channel(wchan: &str) -> bool {
    matches!(
        wchan,
        "fcntl_setlk" | "do_lock_file_wait" | "locks_lock_inode_wait" | "posix_lock_inode_wait"
    )
}

/// Whether two descriptors refer to one open file (`kcmp(KCMP_FILE)`).
/// `None` when the kernel will not say (no `kcmp`, not permitted).
pub fn same_open_file(a: (i32, i32), b: (i32, i32)) -> Option<bool> {
    if a == b {
        return Some(true);
    }
    const KCMP_FILE: libc::c_long = 0;
    // SAFETY: kcmp only reads its integer arguments; no memory is passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_kcmp,
            a.0 as libc::c_long,
            b.0 as libc::c_long,
            KCMP_FILE,
            a.1 as libc::c_long,
            b.1 as libc::c_long,
        )
    };
    match r {
        0 => Some(true),
        1..=2 => Some(false),
        _ => None,
    }
}

/// What is known about a process, for display.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessInfo {
    /// Its command line, arguments joined by spaces (`[comm]` when empty).
    pub command: Option<String>,
    /// When it started, in seconds since the Unix epoch.
    pub started_unix: Option<i64>,
}

/// Reads a process's command line and start time; fields it cannot read
/// stay `None`.
pub fn process_info(pid: i32) -> ProcessInfo {
    if pid <= 0 {
        return ProcessInfo::default();
    }
    let dir = Path::new("/proc").join(pid.to_string());
    let command = fs::read(dir.join("cmdline")).ok().and_then(|raw| {
        let args: Vec<String> = raw
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.is_empty() {
            let comm = fs::read_to_string(dir.join("comm")).ok()?;
            Some(format!("[{}]", comm.trim_end()))
        } else {
            Some(args.join(" "))
        }
    });
    let started_unix = fs::read_to_string(dir.join("stat"))
        .ok()
        .and_then(|stat| start_ticks(&stat))
        .and_then(|ticks| {
            let hz = clock_ticks()?;
            Some(boot_time()? + (ticks / hz) as i64)
        });
    ProcessInfo {
        command,
        started_unix,
    }
}

/// When process `pid` started, in clock ticks after boot (`u64::MAX` if it
/// cannot be read, so that unknown processes sort last).
pub fn start_ticks_of(pid: i32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| start_ticks(&stat))
        .unwrap_or(u64::MAX)
}

/// Field 22 of `/proc/PID/stat` (start time in clock ticks after boot). The
/// command name (field 2) may contain spaces and parentheses, so fields are
/// counted from the last `)`.
pub fn start_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After ")" come fields 3 (state) onwards: field 22 is the 20th of them.
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn clock_ticks() -> Option<u64> {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then_some(hz as u64)
}

fn boot_time() -> Option<i64> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_locks_lines() {
        let l = parse_lock_line("1: OFDLCK ADVISORY  WRITE -1 fe:00:10020001 0 EOF").unwrap();
        assert_eq!(
            l,
            LockLine {
                blocked: false,
                kind: Kind::Ofd,
                mode: Some(LockMode::Exclusive),
                pid: -1,
                key: LockKey {
                    major: 0xfe,
                    minor: 0,
                    ino: 10020001
                },
            }
        );
        let w = parse_lock_line("3: -> POSIX  ADVISORY  READ 4242 08:02:1234 0 EOF").unwrap();
        assert!(w.blocked);
        assert_eq!(w.kind, Kind::Posix);
        assert_eq!(w.mode, Some(LockMode::Shared));
        assert_eq!(w.pid, 4242);
        assert_eq!(w.key.device(), "08:02");
        // Deeper blocked requests are indented further.
        let deep = parse_lock_line("3:  -> OFDLCK ADVISORY  READ -1 103:05:77 0 EOF").unwrap();
        assert!(deep.blocked);
        assert_eq!(deep.key.major, 0x103);
        let flock = parse_lock_line("9: FLOCK  ADVISORY  WRITE 19999 fe:00:5374593 0 EOF").unwrap();
        assert_eq!(flock.kind, Kind::Flock);
        assert!(!flock.kind.is_fcntl());
        let lease = parse_lock_line("4: LEASE  BREAKING  READ 77 fe:00:1 0 EOF").unwrap();
        assert_eq!(lease.kind, Kind::Other);
        assert!(parse_lock_line("garbage").is_none());
        assert!(parse_lock_line("").is_none());
        assert!(parse_lock_line("1: POSIX ADVISORY WRITE x fe:00:1 0 EOF").is_none());
    }

    #[test]
    fn recognises_a_blocked_fcntl() {
        let nr = libc::SYS_fcntl;
        let ofd = format!("{nr} 0x3 0x26 0x7fffe56fdbb0 0x0 0x0 0x0 0x7ff 0x7f5");
        assert_eq!(waits_in_fcntl(&ofd, &[3]), Some(Kind::Ofd));
        assert_eq!(waits_in_fcntl(&ofd, &[4]), None);
        let posix = format!("{nr} 0x3 0x7 0x7fff 0x0 0x0 0x0 0x7ff 0x7f5");
        assert_eq!(waits_in_fcntl(&posix, &[3]), Some(Kind::Posix));
        let getlk = format!("{nr} 0x3 0x24 0x7fff 0x0 0x0 0x0 0x7ff 0x7f5");
        assert_eq!(
            waits_in_fcntl(&getlk, &[3]),
            None,
            "F_OFD_GETLK is not a wait"
        );
        assert_eq!(waits_in_fcntl("running", &[3]), None);
        assert_eq!(waits_in_fcntl("-1 0x7ffc 0x0", &[3]), None);
        assert_eq!(waits_in_fcntl("230 0x1 0x1 0x7ffc 0x0", &[1]), None);
    }

    #[test]
    fn start_time_survives_odd_command_names() {
        let stat = "42 (a) b) c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000";
        assert_eq!(start_ticks(stat), Some(98765));
        assert_eq!(start_ticks("42 (x"), None);
    }

    #[test]
    fn this_process_is_described() {
        let me = process_info(std::process::id() as i32);
        assert!(me.command.is_some());
        let started = me.started_unix.expect("start time");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!(started <= now);
        assert_eq!(process_info(-1), ProcessInfo::default());
    }
}
