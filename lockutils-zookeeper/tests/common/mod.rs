//! Helpers for the tests against a real ZooKeeper server. The command's and
//! the macros' ZooKeeper tests include this file too (`#[path]`), so it uses
//! nothing specific to this crate's package.
#![allow(dead_code, unreachable_pub)]

use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lockutils_core::Registry;
use lockutils_zookeeper::{Coordinator, LockInfo};

pub const NEEDS_ZK: &str =
    "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run";

/// Separate in-process containers, so that contenders in one test process
/// meet only on ZooKeeper (as separate hosts would). Fresh for each test, so
/// tests running in parallel never share an in-process lock.
pub fn registries() -> &'static [Registry; 8] {
    Box::leak(Box::new([const { Registry::new() }; 8]))
}

/// The server under test: `LOCKUTILS_TEST_ZK`, default `127.0.0.1:2181`.
/// Panics with instructions when it does not answer: these tests never skip.
pub fn server() -> String {
    let addr = std::env::var("LOCKUTILS_TEST_ZK").unwrap_or_else(|_| "127.0.0.1:2181".to_owned());
    let reachable = addr
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok());
    assert!(
        reachable,
        "no ZooKeeper server answers on {addr}: start one with `scripts/zookeeper.sh start` \
         (or set LOCKUTILS_TEST_ZK=HOST:PORT), or run `bash .ci/run`"
    );
    addr
}

/// A URL with a root of its own for this test, plus `params`.
pub fn url(test: &str, params: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let sep = if params.is_empty() { "" } else { "?" };
    format!(
        "zookeeper://{}/lockutils-test/{test}-{}-{nanos}-{n}{sep}{params}",
        server(),
        std::process::id()
    )
}

/// A coordinator with its own session: one simulated host.
pub fn host(url: &str) -> Coordinator {
    Coordinator::new(url).unwrap()
}

/// Polls `inspect` until `pred` holds, for at most `within`.
pub fn wait_for(
    c: &Coordinator,
    name: &str,
    within: Duration,
    pred: impl Fn(&LockInfo) -> bool,
) -> LockInfo {
    let until = Instant::now() + within;
    loop {
        let info = c.inspect(name).unwrap();
        if pred(&info) {
            return info;
        }
        assert!(
            Instant::now() < until,
            "condition not reached within {within:?}: {info:#?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The python with kazoo: `LOCKUTILS_TEST_KAZOO`, else the repo's `.venv`
/// (set up by `scripts/kazoo-peer.sh`). Panics with instructions if kazoo
/// cannot be imported.
pub fn kazoo_python() -> PathBuf {
    let python = std::env::var_os("LOCKUTILS_TEST_KAZOO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"));
    let ok = Command::new(&python)
        .args(["-c", "import kazoo.recipe.lock"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "kazoo is not importable with {}: run `scripts/kazoo-peer.sh` (it installs kazoo into .venv \
         and prints the python to put in LOCKUTILS_TEST_KAZOO), or `bash .ci/run`",
        python.display()
    );
    python
}

/// Intervals `[enter, exit]` from a holder log, with fencing tokens.
pub fn intervals(log: &str) -> Vec<(u32, u128, u128, u64)> {
    let mut open = std::collections::HashMap::new();
    let mut out = Vec::new();
    for line in log.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (pid, t, token): (u32, u128, u64) = (
            f[1].parse().unwrap(),
            f[2].parse().unwrap(),
            f[3].parse().unwrap(),
        );
        match f[0] {
            "enter" => {
                open.insert(pid, t);
            }
            "exit" => out.push((
                pid,
                open.remove(&pid).expect("exit without enter"),
                t,
                token,
            )),
            other => panic!("bad log line {other}"),
        }
    }
    assert!(open.is_empty(), "holders never exited: {open:?}");
    out.sort_by_key(|i| i.1);
    out
}

/// A TCP proxy to the server that the test can cut (a network partition
/// between one client and the ensemble, on 127.0.0.1) or slow down.
pub struct Proxy {
    pub port: u16,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Added before every answer from the server is passed on, in µs.
    latency: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Proxy {
    pub fn start(upstream: &str) -> Proxy {
        use std::io::{Read, Write};
        use std::net::{Shutdown, TcpListener};
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let latency = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let upstream = upstream.to_owned();
        let flag = cut.clone();
        let slow = latency.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(down) = conn else { continue };
                if flag.load(Ordering::SeqCst) {
                    // Partitioned: new connections go nowhere.
                    let _ = down.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(up) = TcpStream::connect(&upstream) else {
                    continue;
                };
                for (mut from, mut to, answers) in [
                    (down.try_clone().unwrap(), up.try_clone().unwrap(), false),
                    (up, down, true),
                ] {
                    let flag = flag.clone();
                    let slow = slow.clone();
                    from.set_read_timeout(Some(Duration::from_millis(50)))
                        .unwrap();
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16 * 1024];
                        loop {
                            match from.read(&mut buf) {
                                Ok(0) => break,
                                // Partitioned: bytes are lost, nothing is closed.
                                Ok(_) if flag.load(Ordering::SeqCst) => {}
                                Ok(n) => {
                                    let delay = slow.load(Ordering::SeqCst);
                                    if answers && delay > 0 {
                                        std::thread::sleep(Duration::from_micros(delay));
                                    }
                                    if to.write_all(&buf[..n]).is_err() {
                                        break;
                                    }
                                }
                                Err(e)
                                    if matches!(
                                        e.kind(),
                                        std::io::ErrorKind::WouldBlock
                                            | std::io::ErrorKind::TimedOut
                                    ) => {}
                                Err(_) => break,
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Proxy { port, cut, latency }
    }

    pub fn partition(&self, cut: bool) {
        self.cut.store(cut, Ordering::SeqCst);
    }

    /// Holds every answer from the server back by `latency` from now on.
    pub fn slow_down(&self, latency: Duration) {
        self.latency
            .store(latency.as_micros() as u64, Ordering::SeqCst);
    }
}

/// The helper that holds or contends for a lock in its own process: the
/// `lockutils-zk-holder` example, which `cargo test` builds beside this test.
pub fn holder_bin() -> std::path::PathBuf {
    // target/{profile}/deps/zookeeper-{hash} -> target/{profile}/examples/
    let exe = std::env::current_exe().unwrap();
    let holder = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/lockutils-zk-holder");
    assert!(
        holder.is_file(),
        "{} is missing: run `cargo test -p lockutils-zookeeper` (which builds the \
         example) or `cargo build -p lockutils-zookeeper --example lockutils-zk-holder`",
        holder.display()
    );
    holder
}
