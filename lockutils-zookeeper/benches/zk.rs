//! Distributed lock cost on a local ZooKeeper server, beside the bare
//! `zookeeper-client` lock recipe and kazoo's `Lock`, in the same run:
//!
//! - `uncontended`: one acquire + release cycle, nobody else contending;
//! - `handoff`: a second process acquires and releases the same lock in a
//!   loop, so every acquisition here waits for the other process and every
//!   release hands the lock over (one iteration = two hand-offs).
//!
//! Before any row, ours and the bare recipe run alternately for a few
//! seconds: a server just started compiles its request paths during the
//! first thousands of requests, and the row measured first paid for that
//! (ours 1.44x the recipe against a cold server, 1.08x right after). Then
//! `zk_interleaved` (a printed line) times the two uncontended cycles in
//! alternating blocks, so that a drifting machine moves both alike.
//!
//! Needs a server: `scripts/zookeeper.sh start` (address from
//! `LOCKUTILS_TEST_ZK`, default 127.0.0.1:2181), and kazoo for its rows
//! (`scripts/kazoo-peer.sh`; python from `LOCKUTILS_TEST_KAZOO` or `.venv`).
//!
//!     cargo bench -p lockutils-zookeeper --bench zk

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use lockutils_core::LockOptions;
use lockutils_zookeeper::ZkBackend;
use zookeeper_client as zk;

fn server() -> String {
    let addr = std::env::var("LOCKUTILS_TEST_ZK").unwrap_or_else(|_| "127.0.0.1:2181".to_owned());
    assert!(
        std::net::TcpStream::connect(&addr).is_ok(),
        "no ZooKeeper on {addr}: run scripts/zookeeper.sh start"
    );
    addr
}

fn url(kind: &str) -> String {
    format!(
        "zookeeper://{}/lockutils-bench/{kind}-{}",
        server(),
        std::process::id()
    )
}

fn kazoo_python() -> Option<PathBuf> {
    let python = std::env::var_os("LOCKUTILS_TEST_KAZOO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"));
    let ok = Command::new(&python)
        .args(["-c", "import kazoo"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!(
            "kazoo not found with {}: run scripts/kazoo-peer.sh; kazoo rows skipped",
            python.display()
        );
    }
    ok.then_some(python)
}

/// kazoo, timing N cycles per request ("N\n" in, nanoseconds out), or
/// contending in a loop until stdin closes. One `Lock` object reused, as
/// tooz does.
const KAZOO: &str = r#"
import sys, time, threading
from kazoo.client import KazooClient
hosts, path, mode = sys.argv[1:4]
zk = KazooClient(hosts=hosts)
zk.start(timeout=10)
lock = zk.Lock(path, "bench")
lock.acquire(); lock.release()
print("ready", flush=True)
if mode == "time":
    for line in sys.stdin:
        n = int(line)
        t = time.perf_counter_ns()
        for _ in range(n):
            lock.acquire()
            lock.release()
        print(time.perf_counter_ns() - t, flush=True)
else:
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    while not stop.is_set():
        lock.acquire()
        lock.release()
zk.stop()
"#;

struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Peer {
    fn spawn(mut cmd: Command) -> Peer {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "peer did not start");
        Peer {
            child,
            stdin,
            stdout,
        }
    }

    fn kazoo(python: &PathBuf, url: &str, name: &str, mode: &str) -> Peer {
        let hosts = url
            .trim_start_matches("zookeeper://")
            .split('/')
            .next()
            .unwrap();
        let root = &url[url.find('/').unwrap() + 2 + hosts.len()..];
        let mut cmd = Command::new(python);
        cmd.args(["-c", KAZOO, hosts, &format!("{root}/{name}"), mode]);
        Peer::spawn(cmd)
    }

    fn holder(url: &str, name: &str, which: &str) -> Peer {
        // The example; `cargo bench` does not build it: build it first with
        // `cargo build --release -p lockutils-zookeeper --example lockutils-zk-holder`.
        let exe = std::env::current_exe().unwrap();
        let holder = exe.parent().unwrap().parent().unwrap();
        let mut cmd = Command::new(holder.join("examples/lockutils-zk-holder"));
        cmd.args(["contend", url, name, which]);
        Peer::spawn(cmd)
    }

    fn time(&mut self, iters: u64) -> Duration {
        writeln!(self.stdin.as_mut().unwrap(), "{iters}").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        Duration::from_nanos(line.trim().parse().unwrap())
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// The bare recipe: `Client::lock` with the Curator prefix, on its own
/// runtime thread (as ours runs on one), driven from the bench thread.
struct Bare {
    rt: tokio::runtime::Runtime,
    client: zk::Client,
    dir: String,
    options: zk::LockOptions<'static>,
}

impl Bare {
    fn new(url: &str, name: &str) -> Bare {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let client = rt.block_on(zk::Client::connect(&server())).unwrap();
        let root = url.rsplit_once(&server()).unwrap().1;
        Bare {
            rt,
            client,
            dir: format!("{root}/{name}"),
            options: zk::LockOptions::new(zk::Acls::anyone_all())
                .with_ancestor_options(zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()))
                .unwrap(),
        }
    }

    fn cycle(&self) {
        self.rt.block_on(async {
            let prefix = zk::LockPrefix::new_curator(&self.dir, "lock-").unwrap();
            let lock = self
                .client
                .lock(prefix, b"", self.options.clone())
                .await
                .unwrap();
            drop(lock); // deletes in the background, as ours does
        });
    }
}

/// Whether this is a measuring run (`cargo bench`), not a smoke test.
fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Ours and the bare recipe alternately, for `secs` seconds.
fn warm_server(opts: &LockOptions<'_, '_>, bare: &Bare, secs: u64) {
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        drop(opts.lock().unwrap());
        bare.cycle();
    }
}

/// Ours and the bare recipe in alternating blocks of 20 uncontended cycles
/// (101 blocks each), printed with the median of the blocks' ratios.
fn interleaved(opts: &LockOptions<'_, '_>, bare: &Bare) {
    let (blocks, cycles) = if measuring() { (101, 20) } else { (1, 2) };
    let block = |f: &dyn Fn()| {
        let t = Instant::now();
        for _ in 0..cycles {
            f();
        }
        t.elapsed() / cycles
    };
    let (mut ours, mut recipe, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..blocks {
        let o = block(&|| drop(opts.lock().unwrap()));
        let b = block(&|| bare.cycle());
        ours.push(o);
        recipe.push(b);
        ratios.push(o.as_secs_f64() / b.as_secs_f64());
    }
    ours.sort();
    recipe.sort();
    ratios.sort_by(f64::total_cmp);
    let ratio = ratios[blocks / 2];
    println!(
        "zk_interleaved uncontended cycle (medians of {blocks} blocks of {cycles}): ours {:?}, \
         recipe {:?}, median of the blocks' ratios {ratio:.2}x (target <= 1.2x: {})",
        ours[blocks / 2],
        recipe[blocks / 2],
        match (measuring(), ratio <= 1.2) {
            (false, _) => "no verdict from a smoke run",
            (true, true) => "met",
            (true, false) => "MISSED",
        }
    );
}

fn uncontended(c: &mut Criterion) {
    let mut g = c.benchmark_group("zk_uncontended");
    g.sample_size(30)
        .measurement_time(Duration::from_secs(6))
        .warm_up_time(Duration::from_secs(1));

    let ours_url = url("ours");
    let zk = ZkBackend::new(&ours_url).unwrap();
    let opts = LockOptions::new("u").backend(&zk);
    drop(opts.lock().unwrap());
    let bare = Bare::new(&url("bare"), "u");
    bare.cycle();
    warm_server(&opts, &bare, if measuring() { 3 } else { 0 });
    interleaved(&opts, &bare);
    g.bench_function(BenchmarkId::new("acquire_release", "lockutils"), |b| {
        b.iter(|| drop(opts.lock().unwrap()))
    });

    g.bench_function(
        BenchmarkId::new("acquire_release", "zookeeper-client recipe"),
        |b| b.iter(|| bare.cycle()),
    );

    if let Some(python) = kazoo_python() {
        let mut peer = Peer::kazoo(&python, &url("kazoo"), "u", "time");
        g.bench_function(BenchmarkId::new("acquire_release", "kazoo Lock"), |b| {
            b.iter_custom(|n| peer.time(n))
        });
    }
    g.finish();
}

fn handoff(c: &mut Criterion) {
    let mut g = c.benchmark_group("zk_handoff_two_processes");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(1));

    let ours_url = url("ours-handoff");
    let zk = ZkBackend::new(&ours_url).unwrap();
    let opts = LockOptions::new("h").backend(&zk);
    drop(opts.lock().unwrap());
    {
        let _peer = Peer::holder(&ours_url, "h", "ours");
        g.bench_function(BenchmarkId::new("acquire_release", "lockutils"), |b| {
            b.iter(|| drop(opts.lock().unwrap()))
        });
    }

    let bare_url = url("bare-handoff");
    let bare = Bare::new(&bare_url, "h");
    bare.cycle();
    {
        let _peer = Peer::holder(&bare_url, "h", "bare");
        g.bench_function(
            BenchmarkId::new("acquire_release", "zookeeper-client recipe"),
            |b| b.iter(|| bare.cycle()),
        );
    }

    if let Some(python) = kazoo_python() {
        let kazoo_url = url("kazoo-handoff");
        let _peer = Peer::kazoo(&python, &kazoo_url, "h", "contend");
        let mut timer = Peer::kazoo(&python, &kazoo_url, "h", "time");
        g.bench_function(BenchmarkId::new("acquire_release", "kazoo Lock"), |b| {
            b.iter_custom(|n| timer.time(n))
        });
    }
    g.finish();
}

criterion_group!(benches, uncontended, handoff);
criterion_main!(benches);
