//! What `list` and `show` say about a ZooKeeper lock: the report types are
//! the `--json` schema (docs/cli.md, "ZooKeeper backend"), and the sentences
//! and cells of the text output.

use std::time::{Duration, UNIX_EPOCH};

use lockutils_core::Mode;
use lockutils_zookeeper::{ContenderInfo, LockInfo};
use serde::Serialize;

use crate::duration;
use crate::inspect::{truncate, State};

/// One ZooKeeper lock: an element of `list --json`, and the output of
/// `show --json`.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ZkLockReport {
    /// The lock's identity: its node name under the root (prefix included).
    pub(crate) name: String,
    /// Always `"zookeeper"` (the file backend's reports say `"file"`).
    pub(crate) backend: &'static str,
    /// The coordination URL, without its password.
    pub(crate) url: String,
    /// The lock node's path.
    pub(crate) path: String,
    /// Whether the lock node exists. ZooKeeper removes a free lock's node
    /// (a container node) some time after its last contender left.
    pub(crate) exists: bool,
    /// `free`, `held_exclusive`, `held_shared` or `unknown`.
    pub(crate) state: State,
    /// How many contenders hold the lock; `null` when `unknown`.
    pub(crate) holder_count: Option<usize>,
    /// How many contenders wait for it; `null` when `unknown`.
    pub(crate) waiter_count: Option<usize>,
    /// The holders, in queue order.
    pub(crate) holders: Vec<Contender>,
    /// The waiters, in queue order (the next to get the lock first).
    pub(crate) waiters: Vec<Contender>,
    /// Why the state is `unknown`, otherwise `null`.
    pub(crate) error: Option<String>,
}

/// One contender: a candidate node under the lock node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Contender {
    /// The candidate node's name (a child of the lock node).
    pub(crate) node: String,
    /// `exclusive` (writer) or `shared` (reader).
    pub(crate) mode: &'static str,
    /// The naming scheme, so which kind of client: `native` (lockutils),
    /// `kazoo` (kazoo, tooz) or `curator`.
    pub(crate) layout: &'static str,
    /// The sequence number the server gave it: its place in the queue.
    pub(crate) sequence: i64,
    /// The fencing token it holds (or will hold) the lock with: the `czxid`
    /// of its node.
    pub(crate) fencing_token: u64,
    /// The session owning the node, in ZooKeeper's hexadecimal notation
    /// (`0x…`; a string, as session ids do not fit a JSON double).
    pub(crate) session_id: String,
    /// The node's data as text (invalid UTF-8 replaced): the contender's
    /// identifier, `host:pid …` for lockutils; `unlock` once revocation was
    /// requested.
    pub(crate) data: String,
    /// Whether a revocation request (`unlock`) was written into the node.
    pub(crate) revoke_requested: bool,
    /// When the node was created (RFC 3339, UTC, server clock): when the
    /// contender queued. A holder has held the lock at most since then.
    pub(crate) created: String,
    /// The same, in milliseconds since the Unix epoch.
    pub(crate) created_unix_ms: i64,
    /// How long ago it was created, by this host's clock (text output only).
    #[serde(skip)]
    pub(crate) age: Duration,
}

impl Contender {
    pub(crate) fn from_info(c: &ContenderInfo) -> Self {
        let ms = match c.created.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_millis() as i64,
            Err(_) => 0,
        };
        Contender {
            node: c.node.clone(),
            mode: c.mode.as_str(),
            layout: c.layout.as_str(),
            sequence: c.sequence,
            fencing_token: c.fencing_token,
            session_id: session_hex(c.session),
            data: c.data_lossy().into_owned(),
            revoke_requested: c.revoke_requested,
            created: duration::rfc3339(ms.div_euclid(1000)),
            created_unix_ms: ms,
            age: c.age(),
        }
    }

    /// Who it is, for sentences: its data (escaped), else its session.
    pub(crate) fn who(&self) -> String {
        if self.data.is_empty() {
            format!("session {}", self.session_id)
        } else {
            truncate(&escape(&self.data), 80)
        }
    }

    /// `host:42 lockutils hold x (session 0x1…, queued 3s ago)`.
    pub(crate) fn describe(&self) -> String {
        let mut s = self.who();
        if !self.data.is_empty() {
            s.push_str(&format!(" (session {}, ", self.session_id));
        } else {
            s.push_str(" (");
        }
        s.push_str(&format!("queued {} ago)", duration::human(self.age)));
        s
    }

    /// The `show` line: `exclusive  NODE  seq 3  token 42  session 0x…
    /// queued 3s ago  data "…"`.
    pub(crate) fn line(&self) -> String {
        let mut s = format!(
            "{}  {}  seq {}  token {}  session {}  queued {} ago  data {:?}",
            self.mode,
            self.node,
            self.sequence,
            self.fencing_token,
            self.session_id,
            duration::human(self.age),
            self.data
        );
        if self.layout != "native" {
            s.push_str(&format!("  ({} layout)", self.layout));
        }
        if self.revoke_requested {
            s.push_str("  release requested (revocation)");
        }
        s
    }
}

/// A session id as ZooKeeper prints it: `0x1000a2b3c4d0000`.
pub(crate) fn session_hex(session: i64) -> String {
    format!("0x{:x}", session as u64)
}

/// Control characters and the like escaped, for a terminal.
fn escape(text: &str) -> String {
    text.escape_debug().to_string()
}

impl ZkLockReport {
    /// A lock with its contenders, as `inspect` found them.
    pub(crate) fn from_info(info: &LockInfo, url: &str, exists: bool) -> Self {
        let holders: Vec<Contender> = info.holders().map(Contender::from_info).collect();
        let waiters: Vec<Contender> = info.waiters().map(Contender::from_info).collect();
        ZkLockReport::new(&info.name, &info.path, url, exists, holders, waiters)
    }

    pub(crate) fn new(
        name: &str,
        path: &str,
        url: &str,
        exists: bool,
        holders: Vec<Contender>,
        waiters: Vec<Contender>,
    ) -> Self {
        let state = if holders.is_empty() {
            State::Free
        } else if holders.iter().any(|h| h.mode == Mode::Exclusive.as_str()) {
            State::HeldExclusive
        } else {
            State::HeldShared
        };
        ZkLockReport {
            name: name.to_owned(),
            backend: "zookeeper",
            url: url.to_owned(),
            path: path.to_owned(),
            exists,
            state,
            holder_count: Some(holders.len()),
            waiter_count: Some(waiters.len()),
            holders,
            waiters,
            error: None,
        }
    }

    /// A lock that could not be read.
    pub(crate) fn unknown(name: &str, path: &str, url: &str, error: String) -> Self {
        ZkLockReport {
            state: State::Unknown,
            holder_count: None,
            waiter_count: None,
            error: Some(error),
            ..ZkLockReport::new(name, path, url, true, Vec::new(), Vec::new())
        }
    }

    /// `free`, `held exclusive`, `held shared by N`, `unknown`.
    pub(crate) fn state_text(&self) -> String {
        match self.state {
            State::Free => "free".into(),
            State::HeldExclusive => "held exclusive".into(),
            State::HeldShared => format!("held shared by {}", self.holders.len()),
            State::Unknown => "unknown".into(),
        }
    }

    /// One clause saying who holds the lock: `held exclusive by host:42
    /// lockutils hold x (session 0x…, queued 3s ago)`.
    pub(crate) fn holders_clause(&self) -> String {
        let state = self.state_text();
        if self.holders.is_empty() {
            return state;
        }
        let who: Vec<String> = self.holders.iter().map(Contender::describe).collect();
        match self.state {
            State::HeldShared => format!("{state}: {}", who.join("; ")),
            _ => format!("{state} by {}", who.join("; ")),
        }
    }

    /// [`holders_clause`](Self::holders_clause) and how many wait, for
    /// messages: `…, 2 waiters`.
    pub(crate) fn holders_sentence(&self) -> String {
        let mut s = self.holders_clause();
        if self.holders.is_empty() {
            return s;
        }
        match self.waiters.len() {
            0 => {}
            1 => s.push_str(", 1 waiter"),
            n => s.push_str(&format!(", {n} waiters")),
        }
        s
    }

    /// How long the lock has been held at most: the age of the oldest
    /// holder's node (a contender queues before it holds).
    pub(crate) fn held_at_most(&self) -> Option<Duration> {
        self.holders.iter().map(|h| h.age).max()
    }

    /// The holders' node names, to notice a change of holder.
    pub(crate) fn holder_nodes(&self) -> Vec<&str> {
        self.holders.iter().map(|h| h.node.as_str()).collect()
    }
}

/// A contender created `age_secs` ago, for tests.
#[cfg(test)]
pub(crate) fn contender(node: &str, mode: Mode, seq: i64, data: &str, age_secs: u64) -> Contender {
    let created = std::time::SystemTime::now() - Duration::from_secs(age_secs);
    let ms = created.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    Contender {
        node: node.to_owned(),
        mode: mode.as_str(),
        layout: "native",
        sequence: seq,
        fencing_token: 4_294_967_296 + seq as u64,
        session_id: session_hex(0x1000_0a2b_3c4d_0000 + seq),
        data: data.to_owned(),
        revoke_requested: false,
        created: duration::rfc3339(ms / 1000),
        created_unix_ms: ms,
        age: Duration::from_secs(age_secs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held() -> ZkLockReport {
        ZkLockReport::new(
            "nova-x",
            "/lockutils/nova-x",
            "zookeeper://svc@zk1:2181/lockutils",
            true,
            vec![contender(
                "write-a-0000000000",
                Mode::Exclusive,
                0,
                "h:1 lockutils hold sh",
                125,
            )],
            vec![contender(
                "write-b-0000000001",
                Mode::Exclusive,
                1,
                "h:2",
                9,
            )],
        )
    }

    #[test]
    fn states_and_sentences() {
        let r = held();
        assert_eq!(r.state, State::HeldExclusive);
        assert_eq!(r.state_text(), "held exclusive");
        assert_eq!(
            r.holders_sentence(),
            "held exclusive by h:1 lockutils hold sh (session 0x10000a2b3c4d0000, queued 2m05s ago), 1 waiter"
        );
        assert_eq!(r.held_at_most(), Some(Duration::from_secs(125)));
        let shared = ZkLockReport::new(
            "db",
            "/l/db",
            "zookeeper://h:2181/l",
            true,
            vec![
                contender("read-a-0000000000", Mode::Shared, 0, "", 5),
                contender("read-b-0000000001", Mode::Shared, 1, "h:3", 4),
            ],
            vec![],
        );
        assert_eq!(shared.state_text(), "held shared by 2");
        assert_eq!(
            shared.holders_sentence(),
            "held shared by 2: session 0x10000a2b3c4d0000 (queued 5s ago); \
             h:3 (session 0x10000a2b3c4d0001, queued 4s ago)"
        );
        let free = ZkLockReport::new("f", "/l/f", "zookeeper://h:2181/l", false, vec![], vec![]);
        assert_eq!(free.state, State::Free);
        assert_eq!(free.holders_sentence(), "free");
        let unknown = ZkLockReport::unknown("u", "/l/u", "zookeeper://h:2181/l", "no".into());
        assert_eq!(unknown.state_text(), "unknown");
        assert_eq!(unknown.holder_count, None);
    }

    #[test]
    fn contender_lines_escape_data() {
        let mut c = contender("write-a-0000000003", Mode::Exclusive, 3, "h:1\x1b[31m", 2);
        c.layout = "kazoo";
        c.revoke_requested = true;
        assert_eq!(
            c.line(),
            "exclusive  write-a-0000000003  seq 3  token 4294967299  session 0x10000a2b3c4d0003  \
             queued 2s ago  data \"h:1\\u{1b}[31m\"  (kazoo layout)  release requested (revocation)"
        );
        assert_eq!(c.who(), "h:1\\u{1b}[31m");
        assert_eq!(session_hex(-1), "0xffffffffffffffff");
    }

    fn sorted<const N: usize>(mut keys: [&'static str; N]) -> Vec<&'static str> {
        keys.sort_unstable();
        keys.to_vec()
    }

    #[test]
    fn json_schema() {
        let v = serde_json::to_value(held()).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            sorted([
                "name",
                "backend",
                "url",
                "path",
                "exists",
                "state",
                "holder_count",
                "waiter_count",
                "holders",
                "waiters",
                "error"
            ])
        );
        assert_eq!(v["backend"], "zookeeper");
        assert_eq!(v["state"], "held_exclusive");
        assert_eq!(v["holder_count"], 1);
        assert_eq!(v["waiter_count"], 1);
        let h = &v["holders"][0];
        let mut keys: Vec<&str> = h.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            sorted([
                "node",
                "mode",
                "layout",
                "sequence",
                "fencing_token",
                "session_id",
                "data",
                "revoke_requested",
                "created",
                "created_unix_ms"
            ])
        );
        assert_eq!(h["mode"], "exclusive");
        assert_eq!(h["fencing_token"], 4_294_967_296u64);
        assert_eq!(h["session_id"], "0x10000a2b3c4d0000");
        assert!(h["created"].as_str().unwrap().ends_with('Z'));
    }
}
