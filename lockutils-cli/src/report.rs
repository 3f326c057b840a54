//! What `list`, `show`, `hold`, `remove` and `clean` say about a lock, for
//! every backend alike: the report types here are the one `--json` schema
//! (docs/cli.md, "JSON output"), built from the library's
//! [`LockInfo`]/[`ContenderInfo`]; every key is present for every backend,
//! `null` (or empty) where the backend cannot tell.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lockutils_core::backend::{ContenderInfo, LockInfo, LockState};
use lockutils_core::Mode;
use serde::Serialize;

use crate::duration;
use crate::output::{Cell, Paint};

/// Whether a lock is held, as one word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum State {
    /// Nobody holds it.
    Free,
    /// One exclusive holder.
    HeldExclusive,
    /// One or more shared holders.
    HeldShared,
    /// It could not be examined.
    Unknown,
}

impl State {
    fn of(state: LockState) -> Self {
        match state {
            LockState::Free => State::Free,
            LockState::HeldExclusive => State::HeldExclusive,
            LockState::HeldShared => State::HeldShared,
            _ => State::Unknown,
        }
    }

    /// A table cell showing `text` in this state's colour.
    pub(crate) fn cell(self, text: String, paint: &Paint) -> Cell {
        let shown = match self {
            State::Free => paint.green(&text),
            State::HeldExclusive => paint.red(&text),
            State::HeldShared => paint.yellow(&text),
            State::Unknown => paint.dim(&text),
        };
        Cell::new(text, shown)
    }
}

/// One holder or waiter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Contender {
    /// Its process id, where known (lock files; ZooKeeper contenders of
    /// this library, from their data).
    pub(crate) pid: Option<u32>,
    /// Its host (ZooKeeper: from the data; PostgreSQL: the client address).
    pub(crate) host: Option<String>,
    /// The database role (PostgreSQL).
    pub(crate) user: Option<String>,
    /// `exclusive` or `shared`; `null` when not known.
    pub(crate) mode: Option<&'static str>,
    /// How it locks: `ofd` or `posix` (lock files), `native`, `kazoo` or
    /// `curator` (ZooKeeper layouts), `advisory` (PostgreSQL).
    pub(crate) kind: Option<&'static str>,
    /// Its command line (lock files).
    pub(crate) command: Option<String>,
    /// Its `application_name` (PostgreSQL).
    pub(crate) application_name: Option<String>,
    /// Its candidate node's data (ZooKeeper).
    pub(crate) data: Option<String>,
    /// Its candidate node (ZooKeeper).
    pub(crate) node: Option<String>,
    /// Its place in the queue (ZooKeeper sequence number).
    pub(crate) sequence: Option<i64>,
    /// Its server session: ZooKeeper's hexadecimal id (`0x…`), PostgreSQL's
    /// server process id; a string.
    pub(crate) session_id: Option<String>,
    /// Its fencing token, where the backend has them.
    pub(crate) fencing_token: Option<u64>,
    /// Whether it was asked to release (revocation); `null` where the backend
    /// has no revocation.
    pub(crate) revoke_requested: Option<bool>,
    /// Its descriptors open on the lock file (empty when not known).
    pub(crate) fds: Vec<i32>,
    /// How it was found (lock files): `fdinfo`, `proc_locks`, `syscall`,
    /// `wchan`.
    pub(crate) evidence: Option<&'static str>,
    /// When its process started (RFC 3339, UTC): lock files record no lock
    /// time, a holder has held at most since then.
    pub(crate) process_started: Option<String>,
    /// The same, in seconds since the Unix epoch.
    pub(crate) process_started_unix: Option<i64>,
    /// Since when it holds or waits, as the server records it (ZooKeeper:
    /// when its node was created, i.e. it queued; PostgreSQL: when the lock
    /// was granted or requested). RFC 3339, UTC.
    pub(crate) since: Option<String>,
    /// The same, in milliseconds since the Unix epoch.
    pub(crate) since_unix_ms: Option<i64>,
}

fn unix_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

fn age_of(t: SystemTime) -> Duration {
    SystemTime::now().duration_since(t).unwrap_or_default()
}

impl Contender {
    fn from_info(c: &ContenderInfo) -> Self {
        let started = c.process_started.map(duration::unix_secs);
        let since = c.since.map(unix_ms);
        Contender {
            pid: c.pid,
            host: c.host.clone(),
            user: c.user.clone(),
            mode: c.mode.map(Mode::as_str),
            kind: c.kind,
            command: c.command.clone(),
            application_name: c.application.clone(),
            data: c.data.clone(),
            node: c.node.clone(),
            sequence: c.sequence,
            session_id: c.session.clone(),
            fencing_token: c.token,
            revoke_requested: c.revoke_requested,
            fds: c.fds.clone(),
            evidence: c.evidence,
            process_started: started.map(duration::rfc3339),
            process_started_unix: started,
            since: since.map(|ms| duration::rfc3339(ms.div_euclid(1000))),
            since_unix_ms: since,
        }
    }

    fn process_age(&self) -> Option<Duration> {
        self.process_started_unix.map(duration::age)
    }

    fn since_age(&self) -> Option<Duration> {
        self.since_unix_ms
            .map(|ms| age_of(UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)))
    }

    /// The longest this contender can have held: since its record, else
    /// since its process started.
    fn held_at_most(&self) -> Option<Duration> {
        self.since_age().or_else(|| self.process_age())
    }

    /// Who it is, in a few words: its data, else its pid, else its session.
    pub(crate) fn who(&self) -> String {
        match (&self.data, self.pid, &self.session_id) {
            (Some(d), _, _) if !d.is_empty() => truncate(d, 80),
            (_, Some(pid), _) => format!("pid {pid}"),
            (_, None, Some(s)) => format!("session {s}"),
            _ => "an owner not visible to this user".to_owned(),
        }
    }

    /// `pid 42 (sleep 30, process started 3s ago)`, `writer-1 (session
    /// 0x…, started 3s ago)`: for sentences.
    pub(crate) fn describe(&self) -> String {
        let who = self.who();
        let mut extra = Vec::new();
        if let Some(cmd) = &self.command {
            extra.push(truncate(cmd, 80));
        }
        if let Some(app) = self.application_name.as_deref().filter(|a| !a.is_empty()) {
            extra.push(truncate(app, 40));
        }
        match (&self.user, &self.host) {
            (Some(u), Some(h)) if self.data.is_none() => extra.push(format!("{u}@{h}")),
            (Some(u), _) => extra.push(u.clone()),
            (None, Some(h)) if self.data.is_none() => extra.push(h.clone()),
            _ => {}
        }
        if let Some(s) = &self.session_id {
            if !who.starts_with("session ") {
                extra.push(format!("session {s}"));
            }
        }
        if let Some(age) = self.since_age() {
            extra.push(format!("started {} ago", duration::human(age)));
        } else if let Some(age) = self.process_age() {
            extra.push(format!("process started {} ago", duration::human(age)));
        }
        if extra.is_empty() {
            who
        } else {
            format!("{who} ({})", extra.join(", "))
        }
    }

    /// The `show` line: everything known, two spaces apart.
    pub(crate) fn line(&self) -> String {
        let mut parts: Vec<String> = vec![self.mode.unwrap_or("mode unknown").to_owned()];
        if let Some(n) = &self.node {
            parts.push(n.clone());
        }
        if let Some(s) = self.sequence {
            parts.push(format!("seq {s}"));
        }
        if let Some(t) = self.fencing_token {
            parts.push(format!("token {t}"));
        }
        match self.pid {
            Some(pid) => parts.push(format!("pid {pid}")),
            None if self.session_id.is_none() && self.node.is_none() => {
                parts.push("not visible to this user".to_owned())
            }
            None => {}
        }
        if let Some(k) = self.kind {
            parts.push(k.to_owned());
        }
        if !self.fds.is_empty() {
            let fds: Vec<String> = self.fds.iter().map(i32::to_string).collect();
            parts.push(format!("fd {}", fds.join(",")));
        }
        if let Some(s) = &self.session_id {
            parts.push(format!("session {s}"));
        }
        if let Some(age) = self.since_age() {
            parts.push(format!("started {} ago", duration::human(age)));
        }
        if let Some(age) = self.process_age() {
            parts.push(format!("process started {} ago", duration::human(age)));
        }
        if let Some(e) = self.evidence {
            parts.push(format!("(via {e})"));
        }
        if let Some(d) = &self.data {
            parts.push(format!("data {d:?}"));
        }
        if let Some(a) = &self.application_name {
            parts.push(format!("application {a:?}"));
        }
        match (&self.user, &self.host) {
            (Some(u), Some(h)) if self.data.is_none() => parts.push(format!("{u}@{h}")),
            (Some(u), _) => parts.push(format!("user {u}")),
            (None, Some(h)) if self.data.is_none() => parts.push(format!("host {h}")),
            _ => {}
        }
        if self.revoke_requested == Some(true) {
            parts.push("release requested (revocation)".to_owned());
        }
        if let Some(cmd) = &self.command {
            parts.push(truncate(cmd, 200));
        }
        parts.join("  ")
    }
}

/// The file a lock lives in, for lock-file backends.
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

/// One lock: an element of `list --json`, and the output of `show --json`.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct LockReport {
    /// The lock's identity (prefix included): file name, node name.
    pub(crate) name: String,
    /// The engine: `file`, `zookeeper`, `postgresql`, …
    pub(crate) backend: &'static str,
    /// The backend's coordination URL, without its password.
    pub(crate) url: String,
    /// Where the lock lives: the lock file's path, the lock node's path,
    /// the advisory-lock key.
    pub(crate) path: String,
    /// Whether its record (file, node) exists; `null` where locks leave none.
    pub(crate) exists: Option<bool>,
    /// `free`, `held_exclusive`, `held_shared` or `unknown`.
    pub(crate) state: State,
    /// How many holds the backend counts; `null` when `unknown`.
    pub(crate) holder_count: Option<usize>,
    /// How many wait; `null` when `unknown`.
    pub(crate) waiter_count: Option<usize>,
    /// Who holds it (lock files: one entry per holding process, plus one
    /// per granted lock whose owner is not visible).
    pub(crate) holders: Vec<Contender>,
    /// Who waits for it, in queue order where the backend has one.
    pub(crate) waiters: Vec<Contender>,
    /// The backend's own key, where it is not the path (PostgreSQL).
    pub(crate) key: Option<String>,
    /// Why the state is `unknown`, otherwise `null`.
    pub(crate) error: Option<String>,
    /// `flock(2)` locks on a lock file (they do not exclude lockutils or
    /// oslo); `null` for other backends.
    pub(crate) flock_locks: Option<usize>,
    /// Processes whose descriptors this user cannot inspect (lock files);
    /// `null` for other backends.
    pub(crate) hidden_processes: Option<usize>,
    /// The lock file's metadata; `null` for other backends, or if it could
    /// not be read.
    pub(crate) file: Option<FileInfo>,
}

impl LockReport {
    /// The report on `info`, from the backend `kind` at `url`.
    pub(crate) fn new(info: &LockInfo, kind: &'static str, url: &str) -> Self {
        let state = State::of(info.state);
        let known = state != State::Unknown;
        LockReport {
            name: info.identity.clone(),
            backend: kind,
            url: url.to_owned(),
            path: info.location.clone(),
            exists: info.exists,
            state,
            holder_count: info.holder_count.or(known.then_some(info.holders.len())),
            waiter_count: known.then_some(info.waiters.len()),
            holders: info.holders.iter().map(Contender::from_info).collect(),
            waiters: info.waiters.iter().map(Contender::from_info).collect(),
            key: info.key.clone(),
            error: info.error.clone(),
            flock_locks: info.foreign_locks,
            hidden_processes: info.hidden_processes,
            file: info.file.as_ref().map(|f| {
                let mtime = duration::unix_secs(f.modified);
                FileInfo {
                    device: f.device.clone(),
                    inode: f.inode,
                    mode: format!("{:04o}", f.mode),
                    uid: f.uid,
                    gid: f.gid,
                    size: f.size,
                    mtime: duration::rfc3339(mtime),
                    mtime_unix: mtime,
                }
            }),
        }
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

    /// One clause saying who holds the lock: `held exclusive by pid 42
    /// (sleep 30, process started 3s ago)`; an unknown state says why.
    pub(crate) fn holders_sentence(&self) -> String {
        let state = self.state_text();
        match (self.state, &self.error) {
            (State::Unknown, Some(why)) => return format!("{state} ({why})"),
            (State::Free | State::Unknown, _) => return state,
            _ => {}
        }
        let who: Vec<String> = self.holders.iter().map(Contender::describe).collect();
        let mut s = match (who.is_empty(), self.state) {
            (true, _) => format!("{state} (holder not visible to this user)"),
            (false, State::HeldShared) => format!("{state}: {}", who.join("; ")),
            (false, _) => format!("{state} by {}", who.join("; ")),
        };
        match self.waiters.len() {
            0 => {}
            1 => s.push_str(", 1 waiter"),
            n => s.push_str(&format!(", {n} waiters")),
        }
        s
    }

    /// Leaves out the waiters that are process `pid` on host `host`: this
    /// command's own wait, or, after a timeout, its wait left in the kernel
    /// until the lock frees, which are not other waiters. Lock files: by pid
    /// (a lock file's waiters are this host's); ZooKeeper: by the `HOST:PID`
    /// a contender of this library writes in its node; elsewhere none.
    pub(crate) fn without_waiters_of(mut self, pid: u32, host: &str) -> Self {
        let own = |w: &Contender| match self.backend {
            "file" => w.pid == Some(pid),
            "zookeeper" => w.pid == Some(pid) && w.host.as_deref() == Some(host),
            _ => false,
        };
        self.waiters.retain(|w| !own(w));
        if let Some(n) = &mut self.waiter_count {
            *n = self.waiters.len();
        }
        self
    }

    /// The holders, to notice a change of holder while waiting.
    pub(crate) fn holder_ids(&self) -> Vec<(Option<u32>, Option<String>, Option<String>)> {
        self.holders
            .iter()
            .map(|h| (h.pid, h.node.clone(), h.session_id.clone()))
            .collect()
    }

    /// The longest any holder can have held, if every holder tells.
    fn held_at_most(&self) -> Option<Duration> {
        let ages: Option<Vec<Duration>> =
            self.holders.iter().map(Contender::held_at_most).collect();
        ages?.into_iter().max()
    }

    fn state_cell(&self, paint: &Paint) -> Cell {
        self.state.cell(self.state_text(), paint)
    }
}

/// `text` on one line, with control characters escaped (a newline as `\n`,
/// an escape as `\u{1b}`): for whatever others can choose and the command
/// prints, lock file names as much as holders' command lines, so that a name
/// can neither forge a line nor send the terminal escape sequences.
pub(crate) fn one_line(text: &str) -> String {
    let mut one_line = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            one_line.extend(c.escape_default());
        } else {
            one_line.push(c);
        }
    }
    one_line
}

/// `text` on one line ([`one_line`]), cut to `max` characters, with `…`
/// when cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    let one_line = one_line(text);
    if one_line.chars().count() <= max {
        one_line
    } else {
        let mut t: String = one_line.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// A command line with its program's directory dropped, for narrow columns:
/// `/usr/bin/python3 x.py` → `python3 x.py`.
fn short_command(cmd: &str) -> String {
    let (program, rest) = cmd.split_once(' ').unwrap_or((cmd, ""));
    let program = program.rsplit('/').next().unwrap_or(program);
    if rest.is_empty() {
        program.to_owned()
    } else {
        format!("{program} {rest}")
    }
}

/// `list`: `NAME STATE WAITING HELD FOR HOLDERS`.
pub(crate) fn list_rows(reports: &[LockReport], paint: &Paint) -> Vec<Vec<Cell>> {
    let mut rows = vec![["NAME", "STATE", "WAITING", "HELD FOR", "HOLDERS"]
        .iter()
        .map(|h| Cell::new(*h, paint.bold(h)))
        .collect::<Vec<_>>()];
    for r in reports {
        let waiting = match r.waiter_count {
            Some(0) => "-".to_owned(),
            Some(n) => n.to_string(),
            None => "?".to_owned(),
        };
        let held_for = match (r.state, r.held_at_most()) {
            (State::Free, _) => Cell::plain("-"),
            (_, Some(age)) => Cell::plain(format!("≤{}", duration::human(age))),
            (_, None) => Cell::new("?", paint.dim("?")),
        };
        let holders = match &r.error {
            Some(e) => Cell::new(truncate(e, 60), paint.dim(&truncate(e, 60))),
            None if r.holders.is_empty() => Cell::plain("-"),
            None => {
                let text = r
                    .holders
                    .iter()
                    .map(|h| match (h.pid, &h.command) {
                        (Some(pid), Some(cmd)) => {
                            format!("{pid} {}", truncate(&short_command(cmd), 48))
                        }
                        _ => truncate(&h.who(), 48),
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                if r.holders
                    .iter()
                    .all(|h| h.pid.is_none() && h.session_id.is_none())
                {
                    Cell::new(text.clone(), paint.dim(&text))
                } else {
                    Cell::plain(text)
                }
            }
        };
        rows.push(vec![
            Cell::plain(one_line(&r.name)),
            r.state_cell(paint),
            Cell::plain(waiting),
            held_for,
            holders,
        ]);
    }
    rows
}

/// `show`: the lock, where it lives, its state, one line per contender, and
/// what the backend adds.
pub(crate) fn show_rows(r: &LockReport, paint: &Paint) -> Vec<Vec<Cell>> {
    let label = |l: &str| Cell::new(l, paint.bold(l));
    let place = if r.exists == Some(false) {
        format!(
            "{} (not there: nobody holds or waits for this lock, and the backend removes \
             the record of a free lock)",
            one_line(&r.path)
        )
    } else {
        one_line(&r.path)
    };
    let mut rows = vec![
        vec![label("lock"), Cell::plain(one_line(&r.name))],
        vec![label("location"), Cell::plain(place)],
        vec![label("backend"), Cell::plain(one_line(&r.url))],
    ];
    if let Some(k) = &r.key {
        if *k != r.path {
            rows.push(vec![label("key"), Cell::plain(one_line(k))]);
        }
    }
    let mut state = r.state_cell(paint);
    if let Some(e) = &r.error {
        state = Cell::plain(format!("{} ({e})", state.plain_text()));
    }
    rows.push(vec![label("state"), state]);
    rows.extend(
        r.holders
            .iter()
            .map(|h| vec![label("holder"), Cell::plain(h.line())]),
    );
    rows.extend(
        r.waiters
            .iter()
            .map(|w| vec![label("waiter"), Cell::plain(w.line())]),
    );
    if !matches!(r.state, State::Free | State::Unknown) {
        rows.push(vec![label("held for"), Cell::plain(held_for_sentence(r))]);
    }
    if let Some(n) = r.flock_locks.filter(|n| *n > 0) {
        rows.push(vec![
            label("flock"),
            Cell::plain(format!(
                "{n} flock(2) lock(s), which do not exclude lockutils or oslo holders"
            )),
        ]);
    }
    if let Some(f) = &r.file {
        rows.push(vec![
            label("file"),
            Cell::plain(format!(
                "inode {} on device {}, mode {}, uid {} gid {}, {} bytes",
                f.inode, f.device, f.mode, f.uid, f.gid, f.size
            )),
        ]);
        rows.push(vec![
            label("modified"),
            Cell::plain(format!(
                "{} ({} ago)",
                f.mtime,
                duration::human(duration::age(f.mtime_unix))
            )),
        ]);
    }
    if let Some(n) = r.hidden_processes.filter(|n| *n > 0) {
        rows.push(vec![
            label("not visible"),
            Cell::plain(format!(
                "{n} processes of other users cannot be inspected; holders among them show \
                 as not visible"
            )),
        ]);
    }
    rows
}

fn held_for_sentence(r: &LockReport) -> String {
    let by_record = r.holders.iter().all(|h| h.since_age().is_some());
    match (r.held_at_most(), by_record) {
        (Some(age), true) => format!(
            "at most {}: a holder's record is created when it starts waiting, before it holds",
            duration::human(age)
        ),
        (Some(age), false) => format!(
            "at most {}: the oldest holder process started then; the kernel does not record \
             when a lock was taken",
            duration::human(age)
        ),
        // A PostgreSQL session's statements, where the time is, are visible
        // to its own role only (or with pg_read_all_stats).
        (None, _) if r.backend == "postgresql" => "unknown: the server shows when a session \
            took its lock only to the session's own role (or one with pg_read_all_stats), and \
            not for other clients' sessions"
            .into(),
        (None, _) => "unknown: a holder is not visible, and the kernel does not record when a \
                      lock was taken"
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::table_lines;

    fn zk_contender(node: &str, mode: Mode, seq: i64, data: &str, age_secs: u64) -> ContenderInfo {
        let mut c = ContenderInfo::new(Some(mode));
        c.node = Some(node.to_owned());
        c.sequence = Some(seq);
        c.token = Some(4_294_967_296 + seq as u64);
        c.session = Some(format!("0x{:x}", 0x1000_0a2b_3c4d_0000_u64 + seq as u64));
        c.data = Some(data.to_owned());
        c.kind = Some("native");
        c.revoke_requested = Some(false);
        c.since = Some(SystemTime::now() - Duration::from_secs(age_secs));
        c
    }

    fn zk_lock() -> LockReport {
        let mut info = LockInfo::new("nova-1", "/lockutils/nova-1");
        info.holders = vec![zk_contender(
            "write-a-0000000000",
            Mode::Exclusive,
            0,
            "h:1 lockutils hold sh",
            125,
        )];
        info.waiters = vec![zk_contender("read-b-0000000001", Mode::Shared, 1, "h:2", 9)];
        info.exists = Some(true);
        info.settle_state();
        LockReport::new(&info, "zookeeper", "zookeeper://svc@zk1:2181/lockutils")
    }

    #[test]
    fn waiters_leave_out_this_process_where_the_backend_tells() {
        let mut info = LockInfo::new("x", "/run/lockutils/x");
        let mut holder = ContenderInfo::new(Some(Mode::Exclusive));
        holder.pid = Some(42);
        info.holders = vec![holder];
        info.waiters = [7, 8]
            .into_iter()
            .map(|pid| {
                let mut w = ContenderInfo::new(Some(Mode::Exclusive));
                w.pid = Some(pid);
                w
            })
            .collect();
        info.settle_state();
        let file =
            LockReport::new(&info, "file", "file:///run/lockutils").without_waiters_of(7, "h");
        assert_eq!(file.waiters.len(), 1);
        assert_eq!(file.waiters[0].pid, Some(8));
        assert_eq!(file.waiter_count, Some(1));
        assert!(file.holders_sentence().ends_with(", 1 waiter"));
        // A ZooKeeper contender is this process only with this host too.
        info.waiters[0].host = Some("h".into());
        info.waiters[1].host = Some("other".into());
        info.waiters[1].pid = Some(7);
        let zk = LockReport::new(&info, "zookeeper", "zookeeper://zk1:2181/x")
            .without_waiters_of(7, "h");
        let left: Vec<_> = zk.waiters.iter().map(|w| w.host.as_deref()).collect();
        assert_eq!(left, [Some("other")]);
        assert_eq!(zk.waiter_count, Some(1));
        // PostgreSQL's hosts are client addresses: nothing is left out.
        let pg =
            LockReport::new(&info, "postgresql", "postgresql://db/x").without_waiters_of(7, "h");
        assert_eq!(pg.waiters.len(), 2);
    }

    #[test]
    fn an_unknown_state_says_why() {
        let mut info = LockInfo::new("x", "/run/lockutils/x");
        info.state = LockState::Unknown;
        info.error = Some("cannot open the lock file to probe it: Too many open files".into());
        let r = LockReport::new(&info, "file", "file:///run/lockutils");
        assert_eq!(
            r.holders_sentence(),
            "unknown (cannot open the lock file to probe it: Too many open files)"
        );
        info.error = None;
        let r = LockReport::new(&info, "file", "file:///run/lockutils");
        assert_eq!(r.holders_sentence(), "unknown");
    }

    #[test]
    fn sentences_name_holders_with_what_each_backend_knows() {
        let r = zk_lock();
        assert_eq!(r.state, State::HeldExclusive);
        assert_eq!(
            r.holders_sentence(),
            "held exclusive by h:1 lockutils hold sh (session 0x10000a2b3c4d0000, started \
             2m05s ago), 1 waiter"
        );
        let mut file = ContenderInfo::new(Some(Mode::Exclusive));
        file.pid = Some(42);
        file.command = Some("sleep\n30".into());
        file.kind = Some("ofd");
        let mut pg = ContenderInfo::new(Some(Mode::Shared));
        pg.session = Some("4711".into());
        pg.application = Some("lockutils".into());
        pg.user = Some("svc".into());
        pg.host = Some("10.0.0.5".into());
        let (f, p) = (Contender::from_info(&file), Contender::from_info(&pg));
        assert_eq!(f.describe(), "pid 42 (sleep\\n30)");
        assert_eq!(p.describe(), "session 4711 (lockutils, svc@10.0.0.5)");
        assert_eq!(
            p.line(),
            "shared  session 4711  application \"lockutils\"  svc@10.0.0.5"
        );
    }

    #[test]
    fn show_lines() {
        let lines = table_lines(&show_rows(&zk_lock(), &Paint::plain()));
        assert_eq!(lines[0], "lock      nova-1");
        assert_eq!(lines[1], "location  /lockutils/nova-1");
        assert_eq!(lines[3], "state     held exclusive");
        assert_eq!(
            lines[4],
            "holder    exclusive  write-a-0000000000  seq 0  token 4294967296  native  \
             session 0x10000a2b3c4d0000  started 2m05s ago  data \"h:1 lockutils hold sh\""
        );
        assert!(lines[6].starts_with("held for  at most 2m05s"), "{lines:?}");
    }

    #[test]
    fn list_table() {
        let mut unknown = LockInfo::unknown("secret", "/lockutils/secret", "not authorized");
        unknown.exists = Some(true);
        let reports = [
            zk_lock(),
            LockReport::new(&unknown, "zookeeper", "zookeeper://svc@zk1:2181/lockutils"),
        ];
        assert_eq!(
            table_lines(&list_rows(&reports, &Paint::plain())),
            [
                "NAME    STATE           WAITING  HELD FOR  HOLDERS",
                "nova-1  held exclusive  1        ≤2m05s    h:1 lockutils hold sh",
                "secret  unknown         ?        ?         not authorized",
            ]
        );
    }

    #[test]
    fn one_schema_whatever_the_backend_knows() {
        let keys = |v: &serde_json::Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        let zk = serde_json::to_value(zk_lock()).unwrap();
        let mut info = LockInfo::new("x", "/tmp/x");
        info.holders.push(ContenderInfo::new(None));
        info.settle_state();
        let file = serde_json::to_value(LockReport::new(&info, "file", "file:///tmp")).unwrap();
        assert_eq!(keys(&zk), keys(&file));
        assert_eq!(keys(&zk["holders"][0]), keys(&file["holders"][0]));
        assert_eq!(zk["holders"][0]["session_id"], "0x10000a2b3c4d0000");
        assert!(zk["holders"][0]["since"].as_str().unwrap().ends_with('Z'));
        assert_eq!(file["holders"][0]["pid"], serde_json::Value::Null);
    }
}
