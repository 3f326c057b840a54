//! Operations: who holds and who waits for which lock, from `pg_locks`
//! joined with `pg_stat_activity`, and ending holders' sessions.
//!
//! Advisory locks leave no state behind (no node, no file): a lock nobody
//! holds or awaits does not exist on the server, so there is nothing to
//! remove or clean. The fencing table, when used, is never cleaned: a
//! deleted row would restart its tokens and let a stale holder through.
//!
//! Visibility: a role sees the `query`, `state` and client address of its
//! own sessions only, unless it has `pg_read_all_stats`; lock names (carried
//! in our statements' comments) and times of other roles' sessions are then
//! unknown, though their pids, modes and application names are shown.
//!
//! One lock, its key: a key can stand for several names (the tooz layout has
//! 65,536 keys). A session of this library names its lock in its statement's
//! comment, so a session whose comment names another identity is left out of
//! [`PgCoordinator::show`] and never ended by
//! [`PgCoordinator::terminate_holders`]. A session whose name is unknown
//! (another client's, or one whose statement this role cannot see) is shown
//! as such; it is ended only in the native layout, where a key stands for one
//! name.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lockutils_core::{Error, Mode, Result};
use tokio_postgres::SimpleQueryMessage;

use crate::coordinator::PgCoordinator;
use crate::key::{untag, Layout, LockKey};
use crate::runtime;

/// How long [`PgCoordinator::terminate_holders`] waits for ended sessions to
/// release the lock.
const TERMINATION_WAIT: Duration = Duration::from_secs(10);

/// A lock with holders or waiters on the server.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) struct PgLockInfo {
    /// The advisory-lock key.
    pub(crate) key: LockKey,
    /// The lock's identity, when a session of this library holds or awaits
    /// it and its statement is visible (other clients' locks have keys only).
    pub(crate) name: Option<String>,
    /// Sessions holding it, longest-held first where known.
    pub(crate) holders: Vec<PgSessionInfo>,
    /// Sessions waiting for it, longest-waiting first where known.
    pub(crate) waiters: Vec<PgSessionInfo>,
}

impl PgLockInfo {
    /// Whether nobody holds it.
    pub(crate) fn is_free(&self) -> bool {
        self.holders.is_empty()
    }
}

/// One session holding or awaiting a lock.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) struct PgSessionInfo {
    /// The server process (`pg_terminate_backend` takes it).
    pub(crate) pid: i32,
    /// The mode held or awaited.
    pub(crate) mode: Mode,
    /// The session's `application_name` (this library's default:
    /// `lockutils`; tooz leaves psycopg's default, empty).
    pub(crate) application_name: String,
    /// The session's role, if visible.
    pub(crate) user: Option<String>,
    /// The client's address, if visible (`None` also for Unix sockets).
    pub(crate) client_addr: Option<String>,
    /// Since when the lock is held (holders) or awaited (waiters), if known.
    pub(crate) since: Option<SystemTime>,
    /// The lock identity its statement's comment names, if it is a session
    /// of this library whose statement this role can see (and the name
    /// maps to the key); `None`: unknown.
    pub(crate) name: Option<String>,
}

/// What [`PgCoordinator::terminate_holders`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Terminated {
    /// The sessions ended, which no longer hold the lock.
    pub(crate) ended: Vec<i32>,
    /// Holders of the key whose lock name is unknown, left alone: in the
    /// tooz layout they may hold another name with the same key.
    pub(crate) kept: Vec<i32>,
}

/// What [`PgCoordinator::remove_if_free`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum RemoveOutcome {
    /// Nobody holds or awaits the lock; advisory locks leave no state, so
    /// nothing was there to remove.
    Free,
    /// The lock is held: nothing was done.
    Held,
}

const LIST_SQL: &str = "SELECT l.classid::text, l.objid::text, l.objsubid::text, l.mode, \
     l.granted, l.pid::text, coalesce(a.application_name, ''), a.usename, \
     host(a.client_addr), a.state, a.query, \
     extract(epoch from a.state_change)::float8::text, \
     extract(epoch from a.query_start)::float8::text, \
     extract(epoch from (to_jsonb(l) ->> 'waitstart')::timestamptz)::float8::text \
     FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid \
     WHERE l.locktype = 'advisory' AND l.pid IS NOT NULL \
     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())";

impl PgCoordinator {
    /// Every advisory lock held or awaited in the URL's database, ours and
    /// other clients' alike, ordered by key.
    ///
    /// # Errors
    /// [`Error::Backend`] when the server cannot be reached or queried.
    pub(crate) fn list(&self) -> Result<Vec<PgLockInfo>> {
        let c = self.clone();
        runtime::block_on(async move { c.list_async().await })
    }

    /// The lock `identity` (its key in this URL's layout): holders and
    /// waiters, both empty when it is free. Sessions of this library whose
    /// statement names another identity with the same key are left out;
    /// sessions whose lock name is unknown are kept (with `name: None`).
    ///
    /// # Errors
    /// As [`list`](Self::list).
    pub(crate) fn show(&self, identity: &str) -> Result<PgLockInfo> {
        let key = self.key(identity);
        let mut info = self
            .list()?
            .into_iter()
            .find(|l| l.key == key)
            .unwrap_or(PgLockInfo {
                key,
                name: None,
                holders: Vec::new(),
                waiters: Vec::new(),
            });
        let this = |s: &PgSessionInfo| s.name.as_deref().is_none_or(|n| n == identity);
        info.holders.retain(this);
        info.waiters.retain(this);
        info.name = Some(identity.to_owned());
        Ok(info)
    }

    /// Checks that `identity` is free; advisory locks leave nothing to
    /// delete, so this never changes the server.
    ///
    /// # Errors
    /// As [`list`](Self::list).
    pub(crate) fn remove_if_free(&self, identity: &str) -> Result<RemoveOutcome> {
        Ok(if self.show(identity)?.is_free() {
            RemoveOutcome::Free
        } else {
            RemoveOutcome::Held
        })
    }

    /// Ends the sessions holding `identity` (`pg_terminate_backend`), which
    /// frees the lock and makes the holders' guards report
    /// [`LossReason::Terminated`](crate::hold::LossReason::Terminated). Returns the
    /// pids ended, once none of them holds the lock any longer. Needs the
    /// holders' role, or `pg_signal_backend`.
    ///
    /// Only holders of `identity` itself: a session of this library holding
    /// another name with the same key is left alone (see [`show`](Self::show)),
    /// and so, in the tooz layout, is a holder whose lock name is unknown
    /// (returned as kept): its key tells neither which name it holds. In the
    /// native layout a key stands for one name, so those are ended too.
    ///
    /// `pg_terminate_backend` only signals: the server process sends its
    /// client the end of the session and releases its locks after that,
    /// while it exits. Returning before the release would let a caller that
    /// clears and then tries the lock find it still held.
    ///
    /// # Errors
    /// As [`list`](Self::list); [`Error::Backend`] naming the pids the
    /// server refused to end, or that still held the lock after
    /// [`TERMINATION_WAIT`].
    pub(crate) fn terminate_holders(&self, identity: &str) -> Result<Terminated> {
        let info = self.show(identity)?;
        let known_name = self.url().layout() == Layout::Native;
        let (pids, kept): (Vec<i32>, Vec<i32>) = {
            let (ours, unknown): (Vec<_>, Vec<_>) = info
                .holders
                .iter()
                .partition(|h| known_name || h.name.is_some());
            (
                ours.iter().map(|h| h.pid).collect(),
                unknown.iter().map(|h| h.pid).collect(),
            )
        };
        if pids.is_empty() {
            return Ok(Terminated { ended: pids, kept });
        }
        let list = pids
            .iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let sql = format!(
            "SELECT p::text FROM unnest(ARRAY[{list}]::int[]) p WHERE NOT pg_terminate_backend(p)"
        );
        let refused = self.query_rows(identity, sql)?;
        if !refused.is_empty() {
            return Err(Error::Backend {
                name: identity.to_owned(),
                backend: self.shown().to_owned(),
                reason: format!(
                    "the server did not end sessions {}; they may have ended already",
                    refused
                        .iter()
                        .map(|r| r[0].clone().unwrap_or_default())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                source: None,
            });
        }
        self.await_release_by(identity, &pids)?;
        Ok(Terminated { ended: pids, kept })
    }

    /// Waits until none of `pids` holds `identity`: the ended sessions'
    /// server processes release their locks as they exit.
    fn await_release_by(&self, identity: &str, pids: &[i32]) -> Result<()> {
        let deadline = Instant::now() + TERMINATION_WAIT;
        let mut pause = Duration::from_millis(1);
        loop {
            let still: Vec<i32> = self
                .show(identity)?
                .holders
                .iter()
                .map(|h| h.pid)
                .filter(|p| pids.contains(p))
                .collect();
            if still.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Backend {
                    name: identity.to_owned(),
                    backend: self.shown().to_owned(),
                    reason: format!(
                        "sessions {} were told to end but still held the lock after {} s; \
                         the server may be overloaded: try again, or look at them in pg_stat_activity",
                        still
                            .iter()
                            .map(i32::to_string)
                            .collect::<Vec<_>>()
                            .join(", "),
                        TERMINATION_WAIT.as_secs()
                    ),
                    source: None,
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    fn query_rows(&self, name: &str, sql: String) -> Result<Vec<Vec<Option<String>>>> {
        let c = self.clone();
        let name = name.to_owned();
        runtime::block_on(async move { c.rows(&name, &sql).await })
    }

    async fn rows(&self, name: &str, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
        let session = self
            .pool()
            .checkout(None)
            .await
            .map_err(|e| self.open_error(name, e))?;
        let messages = session
            .client
            .simple_query(sql)
            .await
            .map_err(|e| self.error(name, "cannot query the server", e))?;
        self.pool().checkin(session);
        Ok(messages
            .into_iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
                }
                _ => None,
            })
            .collect())
    }

    /// [`list`](Self::list) for async callers on the crate's runtime.
    async fn list_async(&self) -> Result<Vec<PgLockInfo>> {
        let rows = self.rows("", LIST_SQL).await?;
        let mut locks: Vec<PgLockInfo> = Vec::new();
        for r in rows {
            let Some(row) = Row::parse(&r) else { continue };
            let i = match locks.iter().position(|l| l.key == row.key) {
                Some(i) => i,
                None => {
                    locks.push(PgLockInfo {
                        key: row.key,
                        name: None,
                        holders: Vec::new(),
                        waiters: Vec::new(),
                    });
                    locks.len() - 1
                }
            };
            let lock = &mut locks[i];
            if lock.name.is_none() {
                lock.name.clone_from(&row.session.name);
            }
            if row.granted {
                lock.holders.push(row.session);
            } else {
                lock.waiters.push(row.session);
            }
        }
        for l in &mut locks {
            l.holders.sort_by_key(|s| (s.since.is_none(), s.since));
            l.waiters.sort_by_key(|s| (s.since.is_none(), s.since));
        }
        locks.sort_by_key(|l| l.key);
        Ok(locks)
    }
}

/// Whether `name` maps to `key` in some layout (a statement's comment is
/// trusted only then).
fn names_key(name: &str, key: LockKey) -> bool {
    Layout::Native.key(name) == key || Layout::Tooz.key(name) == key
}

struct Row {
    key: LockKey,
    granted: bool,
    session: PgSessionInfo,
}

impl Row {
    fn parse(r: &[Option<String>]) -> Option<Row> {
        let get = |i: usize| r.get(i).and_then(|v| v.as_deref());
        let key = LockKey::from_pg_locks(
            get(0)?.parse().ok()?,
            get(1)?.parse().ok()?,
            get(2)?.parse().ok()?,
        )?;
        let mode = if get(3)? == "ShareLock" {
            Mode::Shared
        } else {
            Mode::Exclusive
        };
        let granted = get(4)? == "t";
        let pid = get(5)?.parse().ok()?;
        let query = get(10).unwrap_or("");
        let time = |i: usize| get(i).and_then(|t| t.parse::<f64>().ok()).and_then(epoch);
        let since = if granted {
            since_of(query).or_else(|| {
                (get(9) == Some("idle") && untag(query).is_some())
                    .then(|| time(11))
                    .flatten()
            })
        } else {
            time(13).or_else(|| time(12))
        };
        Some(Row {
            key,
            granted,
            session: PgSessionInfo {
                name: untag(query).filter(|n| names_key(n, key)),
                pid,
                mode,
                application_name: get(6).unwrap_or("").to_owned(),
                user: get(7).map(str::to_owned),
                client_addr: get(8).map(str::to_owned),
                since,
            },
        })
    }
}

fn epoch(secs: f64) -> Option<SystemTime> {
    (secs.is_finite() && secs >= 0.0).then(|| UNIX_EPOCH + Duration::from_secs_f64(secs))
}

/// The acquisition time the periodic check's comment carries.
fn since_of(query: &str) -> Option<SystemTime> {
    let rest = &query[query.find("/* lockutils name=")?..];
    let ms: u64 = rest
        .split_whitespace()
        .find_map(|w| w.strip_prefix("since="))?
        .parse()
        .ok()?;
    Some(UNIX_EPOCH + Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_read_from_the_check_comment() {
        assert_eq!(
            since_of("SELECT 1 /* lockutils name=a since=1500 */"),
            Some(UNIX_EPOCH + Duration::from_millis(1500))
        );
        assert_eq!(since_of("SELECT 1 /* since=1500 */"), None);
        assert_eq!(
            since_of("SELECT pg_try_advisory_lock(1) /* lockutils name=a */"),
            None
        );
    }

    #[test]
    fn a_comment_naming_a_name_of_another_key_is_not_trusted() {
        let s = |v: &str| Some(v.to_owned());
        let mut r = vec![s("0"), s("7"), s("1"), s("ExclusiveLock"), s("t"), s("42")];
        r.extend([s(""), None, None, s("idle")]);
        r.push(s("SELECT pg_try_advisory_lock(7) /* lockutils name=x */"));
        let row = Row::parse(&r).unwrap();
        assert_eq!(row.key, LockKey::Big(7));
        assert_eq!(row.session.name, None);
    }

    #[test]
    fn rows_parse() {
        let s = |v: &str| Some(v.to_owned());
        let LockKey::Big(x) = Layout::Native.key("x") else {
            unreachable!()
        };
        let (hi, lo) = (
            (x as u64 >> 32).to_string(),
            (x as u64 & 0xffff_ffff).to_string(),
        );
        let row = Row::parse(&[
            s(&hi),
            s(&lo),
            s("1"),
            s("ShareLock"),
            s("f"),
            s("42"),
            s("lockutils"),
            s("svc"),
            None,
            s("active"),
            s("SET LOCAL lock_timeout = 0; SELECT pg_advisory_lock_shared(…) /* lockutils name=x */"),
            s("10"),
            s("11"),
            s("12.5"),
        ])
        .unwrap();
        assert_eq!(row.key, LockKey::Big(x));
        assert!(!row.granted);
        assert_eq!(row.session.name.as_deref(), Some("x"));
        assert_eq!(row.session.mode, Mode::Shared);
        assert_eq!(row.session.pid, 42);
        assert_eq!(
            row.session.since,
            Some(UNIX_EPOCH + Duration::from_millis(12_500))
        );
    }
}
