//! Review reproducers against a real PostgreSQL server:
//! `PG_PORT=5491 scripts/postgres.sh start`, then
//! `LOCKUTILS_TEST_POSTGRES_URL=… cargo test -p lockutils-postgres --test zz_review_pg -- --ignored`.

use std::time::{Duration, Instant};

use lockutils_core::{LockGuard, LockOptions, Registry};
use lockutils_postgres::PgBackend;

#[path = "support/server.rs"]
mod server;
use server::{unique, url};

fn min_url() -> String {
    url().replacen("lockutils:lockutils@", "lockutils_min:lockutils_min@", 1)
}

fn sql_as(url: &str, query: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = url.to_owned();
    rt.block_on(async move {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client.simple_query(query).await.unwrap();
    });
}

/// A role default `statement_timeout` (common in production) ends the
/// server-side wait the same way a cancel request does (SQLSTATE 57014).
/// The engine overrides the role's `lock_timeout` but not its
/// `statement_timeout`, so an acquisition that may wait, with no timeout or
/// with a timeout longer than the role's `statement_timeout`, fails with
/// `Error::Backend` ("waiting for the lock failed") after about twice the
/// role's `statement_timeout` instead of waiting.
#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn an_untimed_wait_outlasts_the_roles_own_statement_timeout() {
    sql_as(
        &min_url(),
        "ALTER ROLE CURRENT_USER SET statement_timeout = '300ms'",
    );
    let name = unique("stmttimeout");
    let holder_backend = PgBackend::new(&url()).unwrap();
    let holder_registry = Registry::new();
    let held = LockOptions::new(&name)
        .registry(&holder_registry)
        .backend(&holder_backend)
        .try_lock()
        .unwrap();
    let n = name.clone();
    let waiter = std::thread::spawn(move || {
        let backend = PgBackend::new(&min_url()).unwrap();
        let registry = Registry::new();
        let start = Instant::now();
        let got = LockOptions::new(&n)
            .registry(&registry)
            .backend(&backend)
            .timeout(Duration::from_secs(30))
            .lock()
            .map(|g| LockGuard::unlock(g).unwrap());
        (got, start.elapsed())
    });
    std::thread::sleep(Duration::from_secs(3));
    LockGuard::unlock(held).unwrap();
    let (got, took) = waiter.join().unwrap();
    sql_as(
        &min_url(),
        "ALTER ROLE CURRENT_USER RESET statement_timeout",
    );
    assert!(
        got.is_ok(),
        "a 30 s acquisition gave up after {took:?} while the lock was held for 3 s: {:?}",
        got.unwrap_err()
    );
}

/// As above, for an acquisition without any timeout: the docs promise it
/// waits "as long as it takes".
#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn an_untimed_wait_without_timeout_outlasts_statement_timeout() {
    sql_as(
        &min_url(),
        "ALTER ROLE CURRENT_USER SET statement_timeout = '300ms'",
    );
    let name = unique("stmttimeout-forever");
    let holder_backend = PgBackend::new(&url()).unwrap();
    let holder_registry = Registry::new();
    let held = LockOptions::new(&name)
        .registry(&holder_registry)
        .backend(&holder_backend)
        .try_lock()
        .unwrap();
    let n = name.clone();
    let waiter = std::thread::spawn(move || {
        let backend = PgBackend::new(&min_url()).unwrap();
        let registry = Registry::new();
        let start = Instant::now();
        let got = LockOptions::new(&n)
            .registry(&registry)
            .backend(&backend)
            .lock()
            .map(|g| LockGuard::unlock(g).unwrap());
        (got, start.elapsed())
    });
    std::thread::sleep(Duration::from_secs(3));
    LockGuard::unlock(held).unwrap();
    let (got, took) = waiter.join().unwrap();
    sql_as(
        &min_url(),
        "ALTER ROLE CURRENT_USER RESET statement_timeout",
    );
    assert!(
        got.is_ok(),
        "an untimed acquisition gave up after {took:?}: {:?}",
        got.unwrap_err()
    );
}

/// Two different names whose tooz-layout keys collide (65,536 keys).
fn tooz_collision() -> (String, String) {
    use std::collections::HashMap;
    let base = unique("tooz-collide");
    let mut seen: HashMap<lockutils_postgres::LockKey, String> = HashMap::new();
    for i in 0.. {
        let n = format!("{base}-{i}");
        let k = lockutils_postgres::Layout::Tooz.key(&n);
        if let Some(other) = seen.insert(k, n.clone()) {
            return (other, n);
        }
    }
    unreachable!()
}

/// docs/postgresql.md: in the tooz layout "a collision never lets two
/// holders of one name in, it only makes strangers wait", and `clear`
/// "ends the holders' sessions". But `clear(a)` also ends the session of a
/// stranger holding a *different* name `b` whose key collides with `a`'s,
/// though the engine knows `b`'s name (its statements carry it, and `list`
/// shows it): an operator clearing one stuck lock takes an unrelated lock
/// away from its live holder.
#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn clearing_one_tooz_lock_does_not_end_a_colliding_strangers_hold() {
    let (a, b) = tooz_collision();
    let u = format!("{}?layout=tooz", url());
    let backend = PgBackend::new(&u).unwrap();
    let registry = Registry::new();
    let held_b = LockOptions::new(&b)
        .registry(&registry)
        .backend(&backend)
        .try_lock()
        .unwrap();
    let admin_backend = PgBackend::new(&u).unwrap();
    use lockutils_core::backend::Backend;
    let admin = admin_backend.admin().unwrap();
    let shown = admin.inspect(&a).unwrap();
    let cleared = admin.clear(&a);
    std::thread::sleep(Duration::from_millis(500));
    let lost = LockGuard::is_lost(&held_b);
    assert!(
        !lost,
        "clear({a:?}) ended the holder of the unrelated lock {b:?} (same tooz key); \
         clear returned {cleared:?}; inspect({a:?}) showed {shown:?}"
    );
}

/// A tiny xorshift, so the stress needs no extra crate.
fn rng(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut s = seed | 1;
    move |n| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s % n
    }
}

/// Many contenders on one name, each with a backend (so sessions) and an
/// in-process registry of its own, mixing async acquisitions dropped at a
/// random point, timed locks and try-locks. Never two holders; nothing the
/// engine reports but `Timeout`/`WouldBlock`; no hold lost; nothing left on
/// the server at the end.
#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn stress_dropped_and_timed_acquisitions() {
    enum G<'a> {
        A(lockutils_core::AsyncLockGuard<'a>),
        S(LockGuard<'a>),
    }
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    let name = unique("stress");
    let inside = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let got = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(20);
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let (name, inside, errors, got) =
                (name.clone(), inside.clone(), errors.clone(), got.clone());
            std::thread::spawn(move || {
                let backend = PgBackend::new(&url()).unwrap();
                let registry = Registry::new();
                let mut r = rng(0x9E37_79B9_7F4A_7C15 ^ ((t as u64 + 1) * 7919));
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                while Instant::now() < deadline {
                    let opts = LockOptions::new(&name)
                        .registry(&registry)
                        .backend(&backend);
                    let kind = r(3);
                    let res = match kind {
                        0 => {
                            let cut = Duration::from_micros(r(20_000));
                            match rt.block_on(async {
                                tokio::time::timeout(cut, opts.lock_async()).await
                            }) {
                                Ok(g) => g.map(|g| Some(G::A(g))),
                                Err(_) => Ok(None),
                            }
                        }
                        1 => opts
                            .timeout(Duration::from_millis(5 + r(60)))
                            .lock()
                            .map(|g| Some(G::S(g))),
                        _ => opts.try_lock().map(|g| Some(G::S(g))),
                    };
                    match res {
                        Ok(Some(g)) => {
                            assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                            std::thread::sleep(Duration::from_micros(200 + r(3000)));
                            inside.fetch_sub(1, Ordering::SeqCst);
                            got.fetch_add(1, Ordering::Relaxed);
                            let lost = match &g {
                                G::A(g) => lockutils_core::AsyncLockGuard::is_lost(g),
                                G::S(g) => LockGuard::is_lost(g),
                            };
                            if lost {
                                errors.lock().unwrap().push("a hold reported lost".into());
                            }
                            let released = match (g, r(2)) {
                                (g, 0) => {
                                    drop(g);
                                    Ok(())
                                }
                                (G::A(g), _) => {
                                    rt.block_on(lockutils_core::AsyncLockGuard::unlock_async(g))
                                }
                                (G::S(g), _) => LockGuard::unlock(g),
                            };
                            if let Err(e) = released {
                                errors.lock().unwrap().push(format!("unlock: {e:?}"));
                            }
                        }
                        Ok(None) => {}
                        Err(lockutils_core::Error::Timeout { .. })
                        | Err(lockutils_core::Error::WouldBlock { .. }) => {}
                        Err(e) => errors.lock().unwrap().push(format!(
                            "{} -> {e} (source: {:?})",
                            [
                                "async (dropped at a random point)",
                                "timed lock",
                                "try_lock"
                            ][kind as usize],
                            std::error::Error::source(&e).map(|s| format!("{s:?}"))
                        )),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    // Free at the end: a fresh contender gets it at once.
    let backend = PgBackend::new(&url()).unwrap();
    let registry = Registry::new();
    let _free = LockOptions::new(&name)
        .registry(&registry)
        .backend(&backend)
        .try_lock()
        .expect("the lock stays taken after every contender is done");
    let errors = errors.lock().unwrap();
    let mut kinds: Vec<String> = errors
        .iter()
        .map(|e| e.split(" -> ").next().unwrap().to_owned())
        .collect();
    kinds.sort();
    kinds.dedup();
    let examples: Vec<&String> = kinds
        .iter()
        .filter_map(|k| errors.iter().find(|e| e.starts_with(k.as_str())))
        .collect();
    assert!(
        errors.is_empty(),
        "{} unexpected errors out of {} acquisitions that got the lock; from: {kinds:?}; e.g. {:#?}",
        errors.len(),
        got.load(Ordering::Relaxed),
        examples
    );
    assert!(got.load(Ordering::Relaxed) > 0);
}

/// A timed acquisition's `SET LOCAL lock_timeout = <ms left>` overflows
/// PostgreSQL's range (at most 2147483647 ms, about 24.8 days): a lock with
/// a 30-day timeout that finds the lock busy fails at once with
/// `Error::Backend` instead of waiting.
#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn a_long_timeout_waits_instead_of_failing() {
    let name = unique("long-timeout");
    let holder_backend = PgBackend::new(&url()).unwrap();
    let holder_registry = Registry::new();
    let held = LockOptions::new(&name)
        .registry(&holder_registry)
        .backend(&holder_backend)
        .try_lock()
        .unwrap();
    let n = name.clone();
    let waiter = std::thread::spawn(move || {
        let backend = PgBackend::new(&url()).unwrap();
        let registry = Registry::new();
        let start = Instant::now();
        let got = LockOptions::new(&n)
            .registry(&registry)
            .backend(&backend)
            .timeout(Duration::from_secs(30 * 24 * 3600))
            .lock()
            .map(|g| LockGuard::unlock(g).unwrap());
        (got, start.elapsed())
    });
    std::thread::sleep(Duration::from_secs(2));
    LockGuard::unlock(held).unwrap();
    let (got, took) = waiter.join().unwrap();
    assert!(
        got.is_ok(),
        "a 30-day acquisition failed after {took:?} while the lock was held for 2 s: {:?}",
        got.unwrap_err()
    );
}
