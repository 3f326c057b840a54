//! From lock names to PostgreSQL advisory-lock keys, and the SQL that takes
//! and releases them.

use std::fmt;

use lockutils_core::Mode;
use md5::Md5;
use sha2::{Digest, Sha256};

/// How lock names map to advisory-lock keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Layout {
    /// One 64-bit key per name: the first eight bytes (big-endian, as a
    /// signed `bigint`) of SHA-256 over `lockutils\0` followed by the lock's
    /// identity. Two of a million names share a key with probability about
    /// 3·10⁻⁸; exclusive and shared modes.
    #[default]
    Native,
    /// tooz's PostgreSQL driver: the key pair `(md5[0], md5[1])` — the first
    /// two bytes of the MD5 of the name — taken with the two-`integer` form
    /// of `pg_advisory_lock`. Excludes tooz holders of the same name, but
    /// has only 65,536 keys: unrelated names wait on each other once a
    /// deployment has a few hundred. Exclusive locks only, as tooz.
    Tooz,
}

impl Layout {
    pub(crate) fn from_name(s: &str) -> Option<Layout> {
        match s {
            "native" => Some(Layout::Native),
            "tooz" => Some(Layout::Tooz),
            _ => None,
        }
    }

    /// The name used in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Native => "native",
            Layout::Tooz => "tooz",
        }
    }

    /// Whether this layout has locks in `mode`.
    pub fn supports(self, mode: Mode) -> bool {
        self == Layout::Native || mode == Mode::Exclusive
    }

    /// The key of the lock with this identity.
    ///
    /// ```
    /// use lockutils_postgres::{Layout, LockKey};
    ///
    /// // tooz: md5("nova-instance-42") starts with e4 54.
    /// assert_eq!(Layout::Tooz.key("nova-instance-42"), LockKey::Pair(0xe4, 0x54));
    /// assert!(matches!(Layout::Native.key("nova-instance-42"), LockKey::Big(_)));
    /// ```
    pub fn key(self, identity: &str) -> LockKey {
        match self {
            Layout::Native => {
                let digest = Sha256::new()
                    .chain_update(b"lockutils\0")
                    .chain_update(identity.as_bytes())
                    .finalize();
                let mut first = [0u8; 8];
                first.copy_from_slice(&digest[..8]);
                LockKey::Big(i64::from_be_bytes(first))
            }
            Layout::Tooz => {
                let digest = Md5::digest(identity.as_bytes());
                LockKey::Pair(i32::from(digest[0]), i32::from(digest[1]))
            }
        }
    }
}

/// An advisory-lock key, in one of PostgreSQL's two key spaces (which never
/// overlap: `pg_locks.objsubid` is 1 for the first, 2 for the second).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LockKey {
    /// `pg_advisory_lock(bigint)`.
    Big(i64),
    /// `pg_advisory_lock(integer, integer)`.
    Pair(i32, i32),
}

impl LockKey {
    /// The key of a `pg_locks` row (`classid`, `objid`, `objsubid`), if the
    /// row is an advisory lock in either key space.
    pub fn from_pg_locks(classid: u32, objid: u32, objsubid: i16) -> Option<LockKey> {
        match objsubid {
            1 => Some(LockKey::Big(
                ((u64::from(classid) << 32) | u64::from(objid)) as i64,
            )),
            2 => Some(LockKey::Pair(classid as i32, objid as i32)),
            _ => None,
        }
    }

    /// The SQL arguments of the advisory-lock functions: `123` or `1, 2`.
    pub(crate) fn args(self) -> String {
        match self {
            LockKey::Big(k) => k.to_string(),
            LockKey::Pair(a, b) => format!("{a}, {b}"),
        }
    }

    /// A statement calling the advisory-lock function for this key: `verb`
    /// is `try_advisory_lock`, `advisory_lock` or `advisory_unlock`.
    pub(crate) fn call(self, verb: &str, mode: Mode) -> String {
        let shared = if mode == Mode::Shared { "_shared" } else { "" };
        format!("SELECT pg_{verb}{shared}({})", self.args())
    }

    /// A statement that takes the lock, waiting if it must, in one round
    /// trip, and answers `free` if it did not wait for another holder.
    pub(crate) fn wait_call(self, mode: Mode) -> String {
        let shared = if mode == Mode::Shared { "_shared" } else { "" };
        let args = self.args();
        format!(
            "SELECT CASE WHEN pg_try_advisory_lock{shared}({args}) THEN 'free' \
             ELSE pg_advisory_lock{shared}({args})::text || 'waited' END"
        )
    }
}

impl fmt::Display for LockKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockKey::Big(k) => write!(f, "{k}"),
            LockKey::Pair(a, b) => write!(f, "({a},{b})"),
        }
    }
}

/// The comment our statements carry, so that `pg_stat_activity.query` tells
/// an administrator which lock a session holds or waits for. The name is
/// percent-encoded, which keeps `*/` (and anything else) out of the SQL.
pub(crate) fn tag(identity: &str) -> String {
    let mut out = String::with_capacity(identity.len() + 20);
    out.push_str(" /* lockutils name=");
    for b in identity.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.:@+=,".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out.push_str(" */");
    out
}

/// The lock identity in a statement carrying [`tag`], if there is one.
pub(crate) fn untag(query: &str) -> Option<String> {
    let start = query.find("/* lockutils name=")? + "/* lockutils name=".len();
    let rest = &query[start..];
    let end = rest.find([' ', '*'])?;
    let enc = &rest.as_bytes()[..end];
    let mut out = Vec::with_capacity(enc.len());
    let mut i = 0;
    while i < enc.len() {
        if enc[i] == b'%' {
            let hex = std::str::from_utf8(enc.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(enc[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_keys_are_sha256_prefixes() {
        let k = Layout::Native.key("a");
        let d = Sha256::digest(b"lockutils\0a");
        assert_eq!(
            k,
            LockKey::Big(i64::from_be_bytes(d[..8].try_into().unwrap()))
        );
        assert_ne!(Layout::Native.key("a"), Layout::Native.key("b"));
    }

    #[test]
    fn tooz_keys_are_two_md5_bytes() {
        // md5("nova-instance-42") = e454…, as observed from tooz in pg_locks.
        assert_eq!(Layout::Tooz.key("nova-instance-42"), LockKey::Pair(228, 84));
    }

    #[test]
    fn pg_locks_round_trip() {
        for k in [i64::MIN, -1, 0, 1, i64::MAX, 0x1234_5678_9abc_def0] {
            let u = k as u64;
            let key = LockKey::from_pg_locks((u >> 32) as u32, u as u32, 1);
            assert_eq!(key, Some(LockKey::Big(k)));
        }
        assert_eq!(
            LockKey::from_pg_locks(228, 84, 2),
            Some(LockKey::Pair(228, 84))
        );
        assert_eq!(LockKey::from_pg_locks(1, 2, 3), None);
    }

    #[test]
    fn statements() {
        assert_eq!(
            LockKey::Big(-5).call("try_advisory_lock", Mode::Shared),
            "SELECT pg_try_advisory_lock_shared(-5)"
        );
        assert_eq!(
            LockKey::Pair(1, 2).call("advisory_unlock", Mode::Exclusive),
            "SELECT pg_advisory_unlock(1, 2)"
        );
    }

    #[test]
    fn tags_cannot_close_the_comment() {
        let hostile = "x */; DROP TABLE t; /* é";
        let t = tag(hostile);
        assert_eq!(t.matches("*/").count(), 1, "{t}");
        assert!(t.ends_with(" */"));
        assert!(!t.contains(';'));
        assert_eq!(untag(&format!("SELECT 1{t}")).as_deref(), Some(hostile));
        assert_eq!(untag("SELECT 1"), None);
    }
}
