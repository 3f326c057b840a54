//! Candidate node names: how a contender names its ephemeral sequential node
//! under the lock node, and how the names of others are read back.
//!
//! Every contender creates one node named `PREFIX` + a sequence number the
//! server appends (10 digits; ZooKeeper counts per parent). The prefix carries
//! a random UUID so a contender can find its own node again when the reply to
//! its `create` was lost (the Curator trick), and the kind of hold.
//!
//! | layout | exclusive (writer) | shared (reader) |
//! |---|---|---|
//! | [`Native`](Layout::Native) (default) | `write-{uuid}-{seq}` | `read-{uuid}-{seq}` |
//! | [`Kazoo`](Layout::Kazoo) | `{uuid}__lock__{seq}` | `{uuid}__rlock__{seq}` |
//! | [`Curator`](Layout::Curator) | `_c_{uuid}-lock-{seq}` | – (exclusive only) |
//!
//! Whatever the layout, every form above is read back as a contender, so a
//! lock never ignores a known foreign node. Other children are ignored.

use std::cmp::Ordering;

use lockutils_core::Mode;

/// How candidate nodes are named.
///
/// ```
/// use lockutils_zookeeper::Layout;
/// assert_eq!(Layout::default(), Layout::Native);
/// assert_eq!("kazoo".parse::<Layout>().unwrap(), Layout::Kazoo);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Layout {
    /// `write-{uuid}-{seq}` / `read-{uuid}-{seq}`: kind first, so `ls`
    /// output reads at a glance.
    #[default]
    Native,
    /// kazoo's `Lock`/`WriteLock` (`{uuid}__lock__{seq}`) and `ReadLock`
    /// (`{uuid}__rlock__{seq}`): Rust services and Python services using
    /// kazoo or tooz on the same lock node exclude each other.
    Kazoo,
    /// Apache Curator's `InterProcessMutex` (`_c_{uuid}-lock-{seq}`), which
    /// `zookeeper-client`'s lock recipe also uses. Exclusive locks only.
    Curator,
}

impl Layout {
    /// The name used in URLs (`layout=…`) and listings.
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Native => "native",
            Layout::Kazoo => "kazoo",
            Layout::Curator => "curator",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Layout> {
        match name {
            "native" => Some(Layout::Native),
            "kazoo" => Some(Layout::Kazoo),
            "curator" => Some(Layout::Curator),
            _ => None,
        }
    }

    /// Whether lock nodes are plain persistent nodes, as kazoo creates them
    /// (`ensure_path`), rather than containers. The server reaps an empty
    /// container about a minute after its last child goes, and a kazoo
    /// `Lock` (or tooz lock) object that created or checked the path once
    /// never checks it again: its next `acquire()` fails with `NoNodeError`.
    pub(crate) fn persistent_lock_nodes(self) -> bool {
        self == Layout::Kazoo
    }

    /// Whether lock names keep their `/`, making nested lock nodes as tooz
    /// does (`get_lock("a/b")` locks `/tooz/locks/a/b`), rather than mapping
    /// it to `_` as lock file names do.
    pub(crate) fn nests_names(self) -> bool {
        self == Layout::Kazoo
    }

    /// Whether this layout can express `mode`.
    pub fn supports(self, mode: Mode) -> bool {
        !(self == Layout::Curator && mode == Mode::Shared)
    }

    /// The node-name prefix (before the server's sequence number) for a new
    /// candidate with unique id `uuid` (32 lowercase hex digits).
    pub(crate) fn prefix(self, mode: Mode, uuid: &uuid::Uuid) -> String {
        let hex = uuid.simple();
        match (self, mode) {
            (Layout::Native, Mode::Exclusive) => format!("write-{hex}-"),
            (Layout::Native, Mode::Shared) => format!("read-{hex}-"),
            (Layout::Kazoo, Mode::Exclusive) => format!("{hex}__lock__"),
            (Layout::Kazoo, Mode::Shared) => format!("{hex}__rlock__"),
            (Layout::Curator, _) => format!("_c_{}-lock-", uuid.hyphenated()),
        }
    }
}

impl std::str::FromStr for Layout {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Layout::from_name(s).ok_or_else(|| {
            format!("unknown layout `{s}` (expected `native`, `kazoo` or `curator`)")
        })
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A child of a lock node that is a lock contender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Contender {
    pub(crate) name: String,
    pub(crate) mode: Mode,
    pub(crate) seq: i64,
    pub(crate) layout: Layout,
}

impl Contender {
    /// Reads a child name; `None` for children that are not contenders.
    pub(crate) fn parse(name: &str) -> Option<Contender> {
        let (mode, layout, seq) = parse_parts(name)?;
        Some(Contender {
            name: name.to_owned(),
            mode,
            seq,
            layout,
        })
    }

    fn order(&self, other: &Contender) -> Ordering {
        self.seq
            .cmp(&other.seq)
            .then_with(|| self.name.cmp(&other.name))
    }
}

/// A sequence suffix as the server writes it: `-?\d{10}` (or 19 digits once
/// a 64-bit counter is used).
fn parse_seq(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if !(digits.len() == 10 || digits.len() == 19) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_parts(name: &str) -> Option<(Mode, Layout, i64)> {
    // kazoo: `(?:__lock__|__rlock__)(-?\d{10})$`, anything before.
    for (marker, mode) in [("__rlock__", Mode::Shared), ("__lock__", Mode::Exclusive)] {
        if let Some(i) = name.rfind(marker) {
            if let Some(seq) = parse_seq(&name[i + marker.len()..]) {
                return Some((mode, Layout::Kazoo, seq));
            }
        }
    }
    // native: `write-{32 hex}-{seq}` / `read-{32 hex}-{seq}`.
    for (kind, mode) in [("write-", Mode::Exclusive), ("read-", Mode::Shared)] {
        if let Some(rest) = name.strip_prefix(kind) {
            if rest.len() > 33
                && rest.as_bytes()[..32].iter().all(u8::is_ascii_hexdigit)
                && rest.as_bytes()[32] == b'-'
            {
                if let Some(seq) = parse_seq(&rest[33..]) {
                    return Some((mode, Layout::Native, seq));
                }
            }
        }
    }
    // Curator `InterProcessMutex`: `_c_{uuid}-lock-{seq}`.
    if name.starts_with("_c_") {
        if let Some(i) = name.rfind("-lock-") {
            if let Some(seq) = parse_seq(&name[i + "-lock-".len()..]) {
                return Some((Mode::Exclusive, Layout::Curator, seq));
            }
        }
    }
    None
}

/// The contenders among `children`, in queue order.
pub(crate) fn contenders<S: AsRef<str>>(children: &[S]) -> Vec<Contender> {
    let mut out: Vec<Contender> = children
        .iter()
        .filter_map(|c| Contender::parse(c.as_ref()))
        .collect();
    out.sort_by(Contender::order);
    out
}

/// Whether a contender in `mode` must wait for `earlier`.
fn conflicts(mode: Mode, earlier: &Contender) -> bool {
    mode == Mode::Exclusive || earlier.mode == Mode::Exclusive
}

/// The contender `own` must wait for, if any: the last earlier contender it
/// conflicts with (a writer waits for everyone before it; a reader only for
/// writers). Watching only that one avoids waking the whole queue at each
/// release. `None` also if `own` is not among `queue`.
pub(crate) fn blocker<'q>(queue: &'q [Contender], own: &str) -> Option<&'q Contender> {
    let i = queue.iter().position(|c| c.name == own)?;
    let me = &queue[i];
    queue[..i].iter().rev().find(|c| conflicts(me.mode, c))
}

/// Whether the contender at index `i` of `queue` holds the lock.
pub(crate) fn holds(queue: &[Contender], i: usize) -> bool {
    let me = &queue[i];
    !queue[..i].iter().any(|c| conflicts(me.mode, c))
}

/// Characters ZooKeeper accepts in a node name (see its `PathUtils`). It
/// checks UTF-16 code units: a character past U+FFFF (an emoji) is a
/// surrogate pair there, which it refuses as U+D800–U+DFFF.
pub(crate) fn valid_node_char(c: char) -> bool {
    !matches!(c,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{e000}'..='\u{f8ff}' | '\u{fff0}'..=char::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn prefixes_per_layout() {
        let u = uuid::Uuid::parse_str(U).unwrap();
        assert_eq!(
            Layout::Native.prefix(Mode::Exclusive, &u),
            format!("write-{U}-")
        );
        assert_eq!(
            Layout::Native.prefix(Mode::Shared, &u),
            format!("read-{U}-")
        );
        assert_eq!(
            Layout::Kazoo.prefix(Mode::Exclusive, &u),
            format!("{U}__lock__")
        );
        assert_eq!(
            Layout::Kazoo.prefix(Mode::Shared, &u),
            format!("{U}__rlock__")
        );
        assert_eq!(
            Layout::Curator.prefix(Mode::Exclusive, &u),
            "_c_01234567-89ab-cdef-0123-456789abcdef-lock-"
        );
        assert!(!Layout::Curator.supports(Mode::Shared));
    }

    #[test]
    fn parses_every_known_form() {
        let cases = [
            (
                format!("write-{U}-0000000007"),
                Mode::Exclusive,
                Layout::Native,
                7,
            ),
            (
                format!("read-{U}-0000000008"),
                Mode::Shared,
                Layout::Native,
                8,
            ),
            (
                format!("{U}__lock__0000000009"),
                Mode::Exclusive,
                Layout::Kazoo,
                9,
            ),
            (
                format!("{U}__rlock__0000000010"),
                Mode::Shared,
                Layout::Kazoo,
                10,
            ),
            // kazoo accepts any text before the marker, and a negative
            // sequence after a counter overflow.
            (
                "x__lock__-0000000001".to_owned(),
                Mode::Exclusive,
                Layout::Kazoo,
                -1,
            ),
            (
                "_c_01234567-89ab-cdef-0123-456789abcdef-lock-0000000011".to_owned(),
                Mode::Exclusive,
                Layout::Curator,
                11,
            ),
            (
                format!("write-{U}-0000000000000000012"),
                Mode::Exclusive,
                Layout::Native,
                12,
            ),
        ];
        for (name, mode, layout, seq) in cases {
            let c = Contender::parse(&name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!((c.mode, c.layout, c.seq), (mode, layout, seq), "{name}");
        }
    }

    #[test]
    fn ignores_non_contenders() {
        for name in [
            "lease",
            "write-nothex-0000000001",
            &format!("write-{U}-12"),
            &format!("write-{U}-00000000x1"),
            "__lock__",
            "abc__lock__000000001",
            "_c_x-latch-0000000001",
            "lock-0000000001",
        ] {
            assert_eq!(Contender::parse(name), None, "{name}");
        }
    }

    #[test]
    fn queue_order_is_by_sequence_across_layouts() {
        let children = [
            format!("read-{U}-0000000003"),
            format!("{U}__lock__0000000001"),
            "junk".to_owned(),
            format!("write-{U}-0000000002"),
            format!("{U}__rlock__0000000010"),
        ];
        let q = contenders(&children);
        let seqs: Vec<i64> = q.iter().map(|c| c.seq).collect();
        assert_eq!(seqs, [1, 2, 3, 10]);
    }

    fn q(spec: &[(&str, i64)]) -> Vec<Contender> {
        let names: Vec<String> = spec
            .iter()
            .map(|(k, s)| match *k {
                "w" => format!("write-{U}-{s:010}"),
                _ => format!("read-{U}-{s:010}"),
            })
            .collect();
        contenders(&names)
    }

    #[test]
    fn writers_wait_for_the_one_before_them() {
        let queue = q(&[("w", 1), ("r", 2), ("w", 3)]);
        assert_eq!(blocker(&queue, &queue[0].name), None);
        assert_eq!(blocker(&queue, &queue[2].name).unwrap().seq, 2);
        assert!(holds(&queue, 0));
        assert!(!holds(&queue, 2));
    }

    #[test]
    fn readers_wait_only_for_earlier_writers() {
        let queue = q(&[("r", 1), ("r", 2), ("w", 3), ("r", 4), ("r", 5)]);
        assert_eq!(blocker(&queue, &queue[1].name), None, "readers share");
        assert_eq!(
            blocker(&queue, &queue[2].name).unwrap().seq,
            2,
            "writer waits for the last reader"
        );
        assert_eq!(
            blocker(&queue, &queue[4].name).unwrap().seq,
            3,
            "reader queues behind the writer"
        );
        let holding: Vec<bool> = (0..queue.len()).map(|i| holds(&queue, i)).collect();
        assert_eq!(holding, [true, true, false, false, false]);
    }

    #[test]
    fn a_missing_own_node_has_no_blocker() {
        let queue = q(&[("w", 1)]);
        assert_eq!(blocker(&queue, "gone"), None);
    }

    #[test]
    fn node_characters() {
        assert!(valid_node_char('a'));
        assert!(valid_node_char('é'));
        assert!(!valid_node_char('\0'));
        assert!(!valid_node_char('\u{7f}'));
        assert!(!valid_node_char('\u{fff5}'));
        assert!(!valid_node_char('😀'));
        assert!(valid_node_char('\u{d7ff}'));
    }
}
