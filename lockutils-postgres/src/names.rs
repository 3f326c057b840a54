//! Each lock name's key and statements, worked out once per coordinator.
//!
//! A name's key is a SHA-256 (or, in the tooz layout, an MD5) of its
//! identity, and its statements carry the key and the name's tag: building
//! them on every acquisition cost about as much CPU as the rest of the
//! client's share of an uncontended cycle. The cache is bounded: past
//! [`CAPACITY`] names it starts again from empty (a name then pays its
//! hashing once more), so a process that locks ever new names keeps a
//! bounded set.

use std::collections::HashMap;
use std::sync::Arc;

use lockutils_core::Mode;
use parking_lot::Mutex;

use crate::key::{tag, Layout, LockKey};

/// Names kept at most.
const CAPACITY: usize = 1024;

/// A name's key, its tag, and the statements of its acquisitions and
/// releases, by mode (`[exclusive, shared]`).
#[derive(Debug)]
pub(crate) struct NameSql {
    pub(crate) key: LockKey,
    /// The lock's [`tag`] (a comment naming it, for the admin view).
    pub(crate) tag: Arc<str>,
    try_lock: [String; 2],
    wait: [String; 2],
    unlock: [String; 2],
}

fn at(mode: Mode) -> usize {
    usize::from(mode == Mode::Shared)
}

impl NameSql {
    fn new(layout: Layout, identity: &str) -> NameSql {
        let key = layout.key(identity);
        let tag = tag(identity);
        let both = |f: &dyn Fn(Mode) -> String| [f(Mode::Exclusive), f(Mode::Shared)];
        NameSql {
            key,
            try_lock: both(&|m| format!("{}{tag}", key.call("try_advisory_lock", m))),
            wait: both(&|m| format!("{}{tag}", key.wait_call(m))),
            unlock: both(&|m| key.call("advisory_unlock", m)),
            tag: Arc::from(tag),
        }
    }

    /// Takes the lock if it is free (`t`) or answers `f`.
    pub(crate) fn try_lock(&self, mode: Mode) -> &str {
        &self.try_lock[at(mode)]
    }

    /// Takes the lock, waiting if it must (see [`LockKey::wait_call`]).
    pub(crate) fn wait(&self, mode: Mode) -> &str {
        &self.wait[at(mode)]
    }

    /// Releases the lock.
    pub(crate) fn unlock(&self, mode: Mode) -> &str {
        &self.unlock[at(mode)]
    }
}

/// The names a coordinator has locked, with their [`NameSql`].
pub(crate) struct Names {
    layout: Layout,
    known: Mutex<HashMap<Box<str>, Arc<NameSql>>>,
}

impl Names {
    pub(crate) fn new(layout: Layout) -> Names {
        Names {
            layout,
            known: Mutex::new(HashMap::new()),
        }
    }

    /// The key and statements of a lock identity.
    pub(crate) fn get(&self, identity: &str) -> Arc<NameSql> {
        if let Some(sql) = self.known.lock().get(identity) {
            return sql.clone();
        }
        // Hashed outside the lock.
        let sql = Arc::new(NameSql::new(self.layout, identity));
        let mut known = self.known.lock();
        if known.len() >= CAPACITY {
            known.clear();
        }
        known.insert(identity.into(), sql.clone());
        sql
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_those_the_key_builds() {
        let names = Names::new(Layout::Native);
        let sql = names.get("a b");
        let key = Layout::Native.key("a b");
        assert_eq!(sql.key, key);
        assert_eq!(&*sql.tag, tag("a b"));
        for mode in [Mode::Exclusive, Mode::Shared] {
            assert_eq!(
                sql.try_lock(mode),
                format!("{}{}", key.call("try_advisory_lock", mode), tag("a b"))
            );
            assert_eq!(
                sql.wait(mode),
                format!("{}{}", key.wait_call(mode), tag("a b"))
            );
            assert_eq!(sql.unlock(mode), key.call("advisory_unlock", mode));
        }
        assert!(Arc::ptr_eq(&sql, &names.get("a b")));
    }

    #[test]
    fn the_cache_stays_bounded() {
        let names = Names::new(Layout::Tooz);
        for i in 0..3 * CAPACITY {
            let name = format!("n{i}");
            assert_eq!(names.get(&name).key, Layout::Tooz.key(&name));
        }
        assert!(names.known.lock().len() <= CAPACITY);
    }
}
