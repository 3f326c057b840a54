//! A server that accepts connections and never answers (a stopped or hung
//! PostgreSQL: its kernel still completes the TCP handshake) bounds opening
//! a session by `connect_timeout` and an acquisition by its deadline.
//! No server needed: a listener that never accepts plays it.

use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lockutils_core::{Error, LockOptions, Registry};
use lockutils_postgres::PgBackend;

/// Runs `f` on a thread of its own; what it returned and how long it took,
/// or `None` if it had not returned within `limit` (the thread is left).
fn within<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<(T, Duration)> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let start = Instant::now();
        let out = f();
        let _ = tx.send((out, start.elapsed()));
    });
    rx.recv_timeout(limit).ok()
}

/// A URL on a listener whose connections the kernel accepts and nobody
/// answers; the listener lives as long as the test.
fn silent(params: &str) -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = format!("postgresql://u:s3cret@127.0.0.1:{port}/db?sslmode=disable&{params}");
    (listener, url)
}

#[test]
fn a_try_lock_on_a_silent_server_fails_within_connect_timeout() {
    let (_listener, url) = silent("connect_timeout=1");
    let got = within(Duration::from_secs(20), move || {
        let pg = PgBackend::new(&url).unwrap();
        let registry = Registry::new();
        LockOptions::new("silent-try")
            .registry(&registry)
            .backend(&pg)
            .try_lock()
            .map(drop)
    });
    let (result, took) = got.expect("try_lock still waiting for the server after 20 s");
    let e = result.unwrap_err();
    assert!(
        matches!(&e, Error::Backend { name, .. } if name == "silent-try"),
        "{e:?}"
    );
    assert!(!format!("{e} {e:?}").contains("s3cret"), "{e:?}");
    // Bound: connect_timeout, with slack for a loaded machine.
    assert!(took < Duration::from_secs(4), "failed after {took:?}");
}

#[test]
fn a_timed_lock_on_a_silent_server_times_out_at_its_deadline() {
    // connect_timeout (60 s) is longer than the lock's timeout: the deadline
    // bounds opening the session.
    let (_listener, url) = silent("connect_timeout=60");
    let got = within(Duration::from_secs(20), move || {
        let pg = PgBackend::new(&url).unwrap();
        let registry = Registry::new();
        LockOptions::new("silent-timed")
            .registry(&registry)
            .backend(&pg)
            .timeout(Duration::from_secs(1))
            .lock()
            .map(drop)
    });
    let (result, took) = got.expect("lock still waiting for the server after 20 s");
    let e = result.unwrap_err();
    assert!(
        matches!(&e, Error::Timeout { name, .. } if name == "silent-timed"),
        "{e:?}"
    );
    assert!(took < Duration::from_secs(4), "timed out after {took:?}");
}
