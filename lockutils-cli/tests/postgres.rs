//! `lockutils --backend postgresql://…`: the built binary against a real
//! PostgreSQL server, with the library (`lockutils-postgres`) in this process
//! as the other party.
//!
//! Ignored in a plain `cargo test`; run them with a server
//! (`scripts/postgres.sh start`, `LOCKUTILS_TEST_POSTGRES_URL=$(scripts/postgres.sh url)`,
//! then `cargo test -p lockutils-cli --test postgres -- --ignored`), or
//! `bash .ci/run`. They fail, never skip, without a server.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lockutils_core::backend::Backend;
use lockutils_core::{LockGuard, LockOptions, Registry};
use lockutils_postgres::PgBackend;

mod common;
use common::*;

fn url() -> String {
    std::env::var("LOCKUTILS_TEST_POSTGRES_URL")
        .expect("LOCKUTILS_TEST_POSTGRES_URL is not set: run scripts/postgres.sh start")
}

fn unique(what: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "cli-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn hold_list_show_remove_against_the_library() {
    let u = url();
    let name = unique("hold");
    // The library holds: the command cannot take it, and says who holds it.
    let b = PgBackend::new(&u).unwrap();
    let admin = b.admin().unwrap();
    let g = LockOptions::new(&name).backend(&b).lock().unwrap();
    // The server session (its backend pid) holding it, as the admin sees it.
    let session = admin.inspect(&name).unwrap().holders[0]
        .session
        .clone()
        .expect("the holder's session");
    let out = lockutils(["hold", "--no-wait", "--backend", &u, &name, "--", "true"]);
    assert_eq!(code(&out), 75, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("session {session}")),
        "{}",
        stderr(&out)
    );
    // list and show name the holder's session.
    let listed = json(&lockutils(["list", "--json", "--backend", &u]));
    let mine = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == name.as_str())
        .expect("our lock listed");
    assert_eq!(mine["state"], "held_exclusive");
    assert_eq!(mine["holders"][0]["session_id"], session.as_str());
    assert_eq!(mine["holders"][0]["kind"], "advisory");
    let shown = json(&lockutils(["show", "--json", "--backend", &u, &name]));
    assert_eq!(shown["holders"][0]["mode"], "exclusive");
    assert_eq!(shown["holders"][0]["application_name"], "lockutils");
    // remove skips a held lock.
    let out = lockutils(["remove", "--backend", &u, &name]);
    assert_eq!(code(&out), 75, "{}", stderr(&out));
    LockGuard::unlock(g).unwrap();
    // Free: the command holds it around CMD, excluding the library.
    let mut held = spawn(["hold", "--backend", &u, &name, "--", "sleep", "30"]);
    wait_for("hold took the lock", || {
        admin.inspect(&name).unwrap().is_held().then_some(())
    });
    // Another registry: this process's in-process layer is not what is tested.
    let other = Registry::new();
    let library = LockOptions::new(&name).registry(&other).backend(&b);
    assert!(library.try_lock().is_err());
    // remove --force ends its session: hold sees the loss, stops CMD, exits 69.
    let out = lockutils(["remove", "--force", "--backend", &u, &name]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(held.code(), 69);
    LockGuard::unlock(library.timeout(Duration::from_secs(5)).lock().unwrap()).unwrap();
    let out = lockutils(["clean", "--backend", &u]);
    assert_eq!(code(&out), 0);
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn remove_force_reports_a_holder_it_kept() {
    // In the tooz layout a holder whose lock name is unknown (here another
    // role's session, whose statement this role cannot see) may hold another
    // name with the same key: clearing keeps it. remove --force must say the
    // lock is still held, with the conflict exit code, not that it was
    // cleared and its holder told.
    let u = url();
    let sep = if u.contains('?') { '&' } else { '?' };
    let tooz = format!("{u}{sep}layout=tooz");
    let min = tooz.replacen("lockutils:lockutils@", "lockutils_min:lockutils_min@", 1);
    let name = unique("kept");
    let b = PgBackend::new(&min).unwrap();
    let g = LockOptions::new(&name).backend(&b).lock().unwrap();
    let out = lockutils(["remove", "--force", "--backend", &tooz, &name]);
    let said = stdout(&out);
    assert_eq!(code(&out), 75, "{said}{}", stderr(&out));
    assert!(said.contains("still held"), "{said}");
    assert!(!said.contains("see the lock as lost"), "{said}");
    assert!(!said.starts_with("removed"), "{said}");
    assert!(!LockGuard::is_lost(&g));
    LockGuard::unlock(g).unwrap();
}

#[test]
fn hold_timeout_is_kept_on_a_server_that_does_not_answer() {
    // No server needed: a listener that never accepts plays a stopped one
    // (its kernel completes the TCP handshake, and nothing answers). The
    // lock's timeout ends the wait, and the report of who holds it must not
    // add another connect_timeout (5 s) to it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = format!("postgresql://u:s3cret@127.0.0.1:{port}/db?sslmode=disable");
    let start = std::time::Instant::now();
    let out = lockutils([
        "hold",
        "--timeout",
        "1",
        "--backend",
        &silent,
        "x",
        "--",
        "true",
    ]);
    let took = start.elapsed();
    assert_eq!(code(&out), 75, "{}", stderr(&out));
    assert!(!stderr(&out).contains("s3cret"), "{}", stderr(&out));
    assert!(
        took < Duration::from_secs(4),
        "took {took:?}: {}",
        stderr(&out)
    );
    drop(listener);
}

#[test]
#[ignore = "needs PostgreSQL: scripts/postgres.sh start; see scripts/ci-postgres.sh"]
fn show_says_why_a_postgres_holders_time_is_unknown() {
    // Held by another role: this role cannot see its statement, which
    // carries the time. The reason given is the server's, not a kernel's.
    let u = url();
    let min = u.replacen("lockutils:lockutils@", "lockutils_min:lockutils_min@", 1);
    let name = unique("since");
    let b = PgBackend::new(&min).unwrap();
    let g = LockOptions::new(&name).backend(&b).lock().unwrap();
    let out = lockutils(["show", "--backend", &u, &name]);
    let said = stdout(&out);
    assert!(said.contains("held for  unknown"), "{said}");
    assert!(!said.contains("kernel"), "{said}");
    assert!(said.contains("pg_read_all_stats"), "{said}");
    LockGuard::unlock(g).unwrap();
}
