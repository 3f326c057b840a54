//! From a lock's name and prefix to its identity: the lock file's name.
//!
//! The file name is the identity of a lock, in-process as well as on disk, so
//! two names that map to one file (`"a/b"` and `"a_b"`) are one lock.

use std::borrow::Cow;
use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The longest file name Linux file systems accept, in bytes.
pub const MAX_FILE_NAME: usize = 255;
/// Bytes of the original name kept readable when a long name is shortened.
const KEPT_PREFIX: usize = 200;

/// Computes the lock file name for `name` with an optional `prefix`, as
/// oslo.concurrency does: path separators become `_`, and the prefix is joined
/// with `-` unless it already ends with one.
///
/// Names longer than the file-name limit keep their first 200 bytes followed by
/// `-` and 32 hex digits of the SHA-256 of the full file name, so they stay
/// readable and distinct.
///
/// # Errors
/// [`Error::InvalidName`] for an empty name, a name or prefix with a NUL byte,
/// and names that would be `.` or `..`.
///
/// ```
/// use lockutils_core::lock_file_name;
///
/// assert_eq!(lock_file_name("instance/1", Some("nova")).unwrap(), "nova-instance_1");
/// assert_eq!(lock_file_name("x", Some("nova-")).unwrap(), "nova-x");
/// assert!(lock_file_name("..", None).is_err());
/// ```
#[inline]
pub fn lock_file_name<'a>(name: &'a str, prefix: Option<&str>) -> Result<Cow<'a, str>> {
    // The common case, checked in one pass: no prefix, a short name with no
    // separator or NUL that is not `.` or `..`.
    if prefix.is_none_or(str::is_empty)
        && !name.is_empty()
        && name.len() <= MAX_FILE_NAME
        && !has_slash_or_nul(name.as_bytes())
        && name != "."
        && name != ".."
    {
        return Ok(Cow::Borrowed(name));
    }
    slow_lock_file_name(name, prefix)
}

/// Whether `bytes` holds a `/` or a NUL, eight bytes at a time: every
/// acquisition by name asks this, and a byte loop was a sixth of an
/// uncontended in-process cycle.
#[inline]
fn has_slash_or_nul(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const SLASHES: u64 = u64::from_ne_bytes([b'/'; 8]);
    // Non-zero exactly when some byte of `w` is zero (bits above the first
    // zero byte may be wrong, which a yes-or-no answer does not mind).
    let has_zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGHS != 0;
    let hit = |w: u64| has_zero(w) || has_zero(w ^ SLASHES);
    let word = |at: usize| u64::from_ne_bytes(bytes[at..at + 8].try_into().expect("eight bytes"));
    if bytes.len() < 8 {
        return bytes.iter().any(|&b| b == b'/' || b == 0);
    }
    let mut at = 0;
    while at + 8 < bytes.len() {
        if hit(word(at)) {
            return true;
        }
        at += 8;
    }
    // The last eight bytes, overlapping the words before if need be.
    hit(word(bytes.len() - 8))
}

#[cold]
fn slow_lock_file_name<'a>(name: &'a str, prefix: Option<&str>) -> Result<Cow<'a, str>> {
    let invalid = |reason| Error::InvalidName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid(
            "the name is empty; give every lock a non-empty name",
        ));
    }
    if name.contains('\0') {
        return Err(invalid("the name contains a NUL byte; remove it"));
    }
    let prefix = prefix.filter(|p| !p.is_empty());
    if prefix.is_some_and(|p| p.contains('\0')) {
        return Err(invalid("the prefix contains a NUL byte; remove it"));
    }
    let file: Cow<'a, str> = match prefix {
        None if !name.contains('/') => Cow::Borrowed(name),
        None => Cow::Owned(name.replace('/', "_")),
        Some(p) => {
            let sep = if p.ends_with('-') { "" } else { "-" };
            Cow::Owned(format!("{p}{sep}{name}").replace('/', "_"))
        }
    };
    if file == "." || file == ".." {
        return Err(invalid(
            "`.` and `..` name directories, not lock files; choose another name",
        ));
    }
    if file.len() <= MAX_FILE_NAME {
        return Ok(file);
    }
    Ok(Cow::Owned(shorten(&file)))
}

fn shorten(file: &str) -> String {
    let mut cut = KEPT_PREFIX;
    while !file.is_char_boundary(cut) {
        cut -= 1;
    }
    let digest = Sha256::digest(file.as_bytes());
    let mut out = String::with_capacity(cut + 33);
    out.push_str(&file[..cut]);
    out.push('-');
    for byte in &digest[..16] {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_are_borrowed_unchanged() {
        assert!(matches!(
            lock_file_name("mylock", None).unwrap(),
            Cow::Borrowed("mylock")
        ));
    }

    #[test]
    fn prefix_joins_like_oslo() {
        assert_eq!(lock_file_name("x", Some("nova")).unwrap(), "nova-x");
        assert_eq!(lock_file_name("x", Some("nova-")).unwrap(), "nova-x");
        assert_eq!(lock_file_name("x", Some("")).unwrap(), "x");
    }

    #[test]
    fn slashes_and_nuls_are_found_at_every_offset() {
        for len in 0..40 {
            let clean = vec![b'a'; len];
            assert!(!has_slash_or_nul(&clean), "{len}");
            // Bytes next to the two sought, and high bytes, are no hits.
            let near: Vec<u8> = (0..len).map(|i| [b'.', b'0', 0x01, 0xff, 0x80, 0xaf][i % 6]).collect();
            assert!(!has_slash_or_nul(&near), "{near:?}");
            for at in 0..len {
                for hit in [b'/', 0] {
                    let mut b = clean.clone();
                    b[at] = hit;
                    assert!(has_slash_or_nul(&b), "{hit} at {at} of {len}");
                }
            }
        }
    }

    #[test]
    fn separators_alias_to_one_identity() {
        assert_eq!(
            lock_file_name("a/b", None).unwrap(),
            lock_file_name("a_b", None).unwrap()
        );
        assert_eq!(
            lock_file_name("../../etc/passwd", None).unwrap(),
            ".._.._etc_passwd"
        );
        assert_eq!(lock_file_name("x", Some("p/q")).unwrap(), "p_q-x");
    }

    #[test]
    fn bad_names_are_typed_errors() {
        for bad in ["", ".", "..", "a\0b"] {
            let err = lock_file_name(bad, None).unwrap_err();
            assert!(matches!(err, Error::InvalidName { .. }), "{bad:?}: {err}");
        }
        assert!(lock_file_name("x", Some("p\0")).is_err());
        // With a prefix, `..` is an ordinary file name.
        assert_eq!(lock_file_name("..", Some("p")).unwrap(), "p-..");
    }

    #[test]
    fn long_names_keep_a_readable_prefix_and_stay_distinct() {
        let a = "é".repeat(200);
        let b = format!("{}x", "é".repeat(200));
        let fa = lock_file_name(&a, None).unwrap();
        let fb = lock_file_name(&b, None).unwrap();
        assert!(fa.len() <= MAX_FILE_NAME);
        assert!(fa.starts_with("éé"));
        assert_ne!(fa, fb);
        assert_eq!(fa, lock_file_name(&a, None).unwrap(), "stable");
        let exact = "a".repeat(MAX_FILE_NAME);
        assert_eq!(lock_file_name(&exact, None).unwrap(), exact);
    }
}
