//! The state of lock files: free or held, by whom, who waits. The report
//! types here are also the `--json` schema (see docs/cli.md).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use lockutils_core::file_inspect::{self, FileOwner};
use lockutils_core::procfs::{LockKey, LockMode};
use serde::Serialize;

use crate::duration;

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

impl From<&FileOwner> for Owner {
    fn from(o: &FileOwner) -> Self {
        Owner {
            pid: o.pid,
            command: o.command.clone(),
            mode: o.mode.map(LockMode::as_str),
            kind: o.kind.as_str(),
            fds: o.fds.clone(),
            process_started: o.started_unix.map(duration::rfc3339),
            process_started_unix: o.started_unix,
            evidence: o.evidence,
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
/// descriptors of the files asked about, taken once for many files (the
/// library's [`file_inspect::Snapshot`]), reported in the `--json` schema.
pub(crate) struct Snapshot(file_inspect::Snapshot);

impl Snapshot {
    /// Takes the snapshot for the given lock files (their metadata).
    pub(crate) fn take<'m>(files: impl IntoIterator<Item = &'m fs::Metadata>) -> Self {
        Snapshot(file_inspect::Snapshot::take(files))
    }

    /// The report for the lock file `path` (named `name`), whose metadata
    /// (from `symlink_metadata`, before the snapshot) is `meta`.
    pub(crate) fn report(&self, name: &str, path: &Path, meta: &fs::Metadata) -> LockReport {
        let found = self.0.inspect(path, meta);
        LockReport {
            name: name.to_owned(),
            backend: "file",
            path: path.to_owned(),
            state: match found.state {
                file_inspect::State::Free => State::Free,
                file_inspect::State::HeldExclusive => State::HeldExclusive,
                file_inspect::State::HeldShared => State::HeldShared,
                file_inspect::State::Unknown => State::Unknown,
            },
            holder_count: found.holder_count,
            holders: found.holders.iter().map(Owner::from).collect(),
            waiters: found.waiters.iter().map(Owner::from).collect(),
            flock_locks: found.flock_locks,
            hidden_processes: found.hidden_processes,
            error: found.error,
            file: Some(file_info(meta)),
        }
    }
}

pub(crate) use file_inspect::probe_path;

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

    #[test]
    fn truncation_marks_the_cut() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("abcdef", 4), "abc…");
    }
}
