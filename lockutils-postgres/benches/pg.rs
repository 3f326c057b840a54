//! PostgreSQL lock cost on a local server, beside a bare
//! `pg_advisory_lock`/`pg_advisory_unlock` loop on one connection and
//! tooz's PostgreSQL driver, in the same run:
//!
//! - `uncontended`: one acquire + release cycle, nobody else contending;
//! - `handoff`: a second process acquires and releases the same lock in a
//!   loop (the same client kind), so acquisitions here wait for it and
//!   releases hand the lock over. Every release, here and in the peer,
//!   waits for the server's answer (`LockGuard::unlock` for ours), as the
//!   bare loop's does.
//!
//! Rows: `ours` (`LockOptions::backend(&PgBackend)`: in-process + server),
//! `ours_tls` (`ours` over TLS), `ours_peer_drops` (hand-off only: the
//! peer releases by dropping its guard, which sends the unlock from the
//! crate's runtime without waiting for it),
//! `bare` (prepared statements on one connection driven by the bench thread
//! itself), `bare_threaded` (the same with the connection on a runtime
//! thread of its own, as ours runs), `tooz`.
//!
//! After the rows it prints, per uncontended cycle: the calling thread's
//! context switches and CPU time, the crate runtime thread's wake-ups, and
//! ours beside `bare` run in alternating blocks (the median ratio). On a
//! machine with few cores the figures move with where the scheduler puts
//! the server process: on the caller's core (a round trip costs the two
//! processes' CPU time) or on another (it costs two cross-core wake-ups).
//!
//! Needs a server (`scripts/postgres.sh start`; URL from
//! `LOCKUTILS_TEST_POSTGRES_URL`) and tooz for its rows (`scripts/tooz-peer.sh`;
//! python from `LOCKUTILS_TEST_TOOZ` or `.venv`).
//!
//!     cargo build --release -p lockutils-postgres --example lockutils-pg-holder
//!     cargo bench -p lockutils-postgres --bench pg

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use lockutils_core::{LockGuard, LockOptions};
use lockutils_postgres::PgBackend;

#[path = "../tests/support/runtime_thread.rs"]
mod runtime_thread;
use runtime_thread::runtime_thread_wakeups;
#[path = "../tests/support/holder_bin.rs"]
mod holder_bin;
use holder_bin::holder_bin;

/// The server, without TLS: the bare loop and tooz talk plaintext, so ours
/// does too (`uncontended/ours_tls` shows what TLS adds).
fn url() -> String {
    format!("{}?sslmode=disable", server())
}

fn server() -> String {
    let u = std::env::var("LOCKUTILS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgresql://lockutils:lockutils@127.0.0.1:5433/lockutils".to_owned());
    u.split('?').next().unwrap().to_owned()
}

fn tooz_python() -> Option<PathBuf> {
    let python = std::env::var_os("LOCKUTILS_TEST_TOOZ")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"));
    let ok = Command::new(&python)
        .args(["-c", "import tooz.drivers.pgsql"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!(
            "tooz not found with {}: run scripts/tooz-peer.sh; tooz rows skipped",
            python.display()
        );
    }
    ok.then_some(python)
}

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

    fn tooz(python: &PathBuf, name: &str, mode: &str) -> Peer {
        let mut cmd = Command::new(python);
        cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tooz_peer.py"))
            .args([mode, url().split('?').next().unwrap(), name]);
        Peer::spawn(cmd)
    }

    fn holder(name: &str, which: &str) -> Peer {
        let mut cmd = Command::new(holder_bin());
        cmd.args(["contend", &url(), name, which]);
        Peer::spawn(cmd)
    }

    /// Stops a `contend` holder after its next release.
    fn pause(&mut self) {
        writeln!(self.stdin.as_mut().unwrap(), "pause").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "paused", "peer did not pause");
    }

    /// Lets a paused `contend` holder go on.
    fn resume(&mut self) {
        writeln!(self.stdin.as_mut().unwrap(), "go").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "going", "peer did not resume");
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

/// The bare loop: prepared `pg_advisory_lock($1)` / `pg_advisory_unlock($1)`
/// on one tokio-postgres connection driven from the bench thread.
struct Bare {
    rt: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
    lock: tokio_postgres::Statement,
    unlock: tokio_postgres::Statement,
    key: i64,
}

impl Bare {
    fn new(name: &str) -> Bare {
        Bare::on(name, tokio::runtime::Builder::new_current_thread())
    }

    /// The same loop with the connection on a runtime thread of its own (as
    /// ours runs on one), the bench thread only sending and waiting.
    fn threaded(name: &str) -> Bare {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(1);
        Bare::on(name, b)
    }

    fn on(name: &str, mut builder: tokio::runtime::Builder) -> Bare {
        let rt = builder.enable_all().build().unwrap();
        let key = match lockutils_postgres::Layout::Native.key(name) {
            lockutils_postgres::LockKey::Big(k) => k,
            _ => unreachable!(),
        };
        let (client, lock, unlock) = rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            let lock = client
                .prepare("SELECT pg_advisory_lock($1::bigint)")
                .await
                .unwrap();
            let unlock = client
                .prepare("SELECT pg_advisory_unlock($1::bigint)")
                .await
                .unwrap();
            (client, lock, unlock)
        });
        Bare {
            rt,
            client,
            lock,
            unlock,
            key,
        }
    }

    fn cycle(&self) {
        if self.threaded_flag() {
            let (c, l, u, k) = (&self.client, &self.lock, &self.unlock, self.key);
            park(async move {
                c.query(l, &[&k]).await.unwrap();
                c.query(u, &[&k]).await.unwrap();
            });
            return;
        }
        self.rt.block_on(async {
            self.client.query(&self.lock, &[&self.key]).await.unwrap();
            self.client.query(&self.unlock, &[&self.key]).await.unwrap();
        });
    }
}

impl Bare {
    fn threaded_flag(&self) -> bool {
        matches!(
            self.rt.handle().runtime_flavor(),
            tokio::runtime::RuntimeFlavor::MultiThread
        )
    }
}

/// Polls `fut` on this thread, parking between polls (the connection's task
/// runs on the runtime's thread).
fn park<F: std::future::Future>(fut: F) {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    while fut.as_mut().poll(&mut cx).is_pending() {
        std::thread::park();
    }
}

fn bench(c: &mut Criterion) {
    let u = url();
    let tooz = tooz_python();
    let pid = std::process::id();

    let mut g = c.benchmark_group("uncontended");
    let name = format!("bench-unc-{pid}");
    let pg = PgBackend::new(&u).unwrap();
    g.bench_function("ours", |b| {
        let opts = LockOptions::new(&name).backend(&pg);
        b.iter(|| LockGuard::unlock(opts.lock().unwrap()).unwrap())
    });
    let tls = PgBackend::new(&format!("{}?sslmode=require", server())).unwrap();
    g.bench_function("ours_tls", |b| {
        let opts = LockOptions::new(&name).backend(&tls);
        b.iter(|| LockGuard::unlock(opts.lock().unwrap()).unwrap())
    });
    let bare = Bare::new(&name);
    g.bench_function("bare", |b| b.iter(|| bare.cycle()));
    let threaded = Bare::threaded(&name);
    g.bench_function("bare_threaded", |b| b.iter(|| threaded.cycle()));
    if let Some(py) = &tooz {
        let mut peer = Peer::tooz(py, &format!("{name}-tooz"), "time");
        g.bench_function("tooz", |b| b.iter_custom(|iters| peer.time(iters)));
    }
    g.finish();

    let mut g = c.benchmark_group("handoff");
    g.measurement_time(Duration::from_secs(5));
    {
        let name = format!("bench-ho-ours-{pid}");
        let _other = Peer::holder(&name, "ours");
        let opts = LockOptions::new(&name).backend(&pg);
        g.bench_function("ours", |b| {
            b.iter(|| LockGuard::unlock(opts.lock().unwrap()).unwrap())
        });
    }
    {
        let name = format!("bench-ho-drop-{pid}");
        let _other = Peer::holder(&name, "ours-drop");
        let opts = LockOptions::new(&name).backend(&pg);
        g.bench_function("ours_peer_drops", |b| {
            b.iter(|| LockGuard::unlock(opts.lock().unwrap()).unwrap())
        });
    }
    {
        let name = format!("bench-ho-bare-{pid}");
        let _other = Peer::holder(&name, "bare");
        let bare = Bare::new(&name);
        g.bench_function("bare", |b| b.iter(|| bare.cycle()));
        let threaded = Bare::threaded(&name);
        g.bench_function("bare_threaded", |b| b.iter(|| threaded.cycle()));
    }
    if let Some(py) = &tooz {
        let name = format!("bench-ho-tooz-{pid}");
        let _other = Peer::tooz(py, &name, "contend");
        let mut peer = Peer::tooz(py, &name, "time");
        g.bench_function("tooz", |b| b.iter_custom(|iters| peer.time(iters)));
    }
    g.finish();
}

/// This thread's context switches so far (voluntary, involuntary), from
/// `/proc/thread-self/status`.
fn switches() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap()
    };
    (
        field("voluntary_ctxt_switches:"),
        field("nonvoluntary_ctxt_switches:"),
    )
}

/// This thread's time on a CPU so far, in nanoseconds
/// (`/proc/thread-self/schedstat`).
fn cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    stat.split_whitespace().next().unwrap().parse().unwrap()
}

/// Wall time per cycle of `a` and `b` run in alternating blocks, so that
/// both see the same load on a shared machine: the median over the blocks
/// of each, and the median of the blocks' ratios, which is steadier than
/// the ratio of two criterion rows measured seconds apart.
fn interleaved(a: &mut dyn FnMut(), b: &mut dyn FnMut()) -> (Duration, Duration, f64) {
    interleaved_with(a, b, &mut |_, _| {})
}

/// [`interleaved`], calling `around(side, true)` before each block of side
/// `0` (`a`) or `1` (`b`) and `around(side, false)` after it (untimed).
fn interleaved_with(
    a: &mut dyn FnMut(),
    b: &mut dyn FnMut(),
    around: &mut dyn FnMut(usize, bool),
) -> (Duration, Duration, f64) {
    const BLOCKS: usize = 101;
    const CYCLES: u32 = 20;
    let mut block = |side: usize, f: &mut dyn FnMut()| {
        around(side, true);
        let t = std::time::Instant::now();
        for _ in 0..CYCLES {
            f();
        }
        let per_cycle = t.elapsed() / CYCLES;
        around(side, false);
        per_cycle
    };
    let (mut ta, mut tb, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..BLOCKS {
        let (x, y) = (block(0, a), block(1, b));
        ta.push(x);
        tb.push(y);
        ratios.push(x.as_secs_f64() / y.as_secs_f64());
    }
    ta.sort();
    tb.sort();
    ratios.sort_by(f64::total_cmp);
    (ta[BLOCKS / 2], tb[BLOCKS / 2], ratios[BLOCKS / 2])
}

/// Context switches of the calling thread per uncontended cycle: a measure
/// of thread hand-overs that the machine's load does not move (each time
/// the thread sleeps waiting for another thread or the socket is one
/// voluntary switch).
fn switches_per_cycle(c: &mut Criterion) {
    let _ = c;
    const CYCLES: u64 = 2000;
    let name = format!("bench-ctx-{}", std::process::id());
    let per_cycle = |f: &mut dyn FnMut()| {
        f();
        let (v0, n0) = switches();
        let (c0, r0) = (cpu_ns(), runtime_thread_wakeups());
        for _ in 0..CYCLES {
            f();
        }
        let (v1, n1) = switches();
        let (c1, r1) = (cpu_ns(), runtime_thread_wakeups());
        let per = |a: u64, b: u64| (b - a) as f64 / CYCLES as f64;
        eprintln!(
            "  CPU of the calling thread {:.1} µs, wake-ups of the crate's runtime thread {:.2}",
            per(c0, c1) / 1000.0,
            per(r0, r1)
        );
        (per(v0, v1), per(n0, n1))
    };
    let pg = PgBackend::new(&url()).unwrap();
    let opts = LockOptions::new(&name).backend(&pg);
    let ours = per_cycle(&mut || LockGuard::unlock(opts.lock().unwrap()).unwrap());
    let bare = Bare::new(&name);
    let bare_sw = per_cycle(&mut || bare.cycle());
    let threaded = Bare::threaded(&name);
    let threaded_sw = per_cycle(&mut || threaded.cycle());
    eprintln!(
        "context switches per uncontended cycle (voluntary, involuntary): \
         ours {ours:?}, bare {bare_sw:?}, bare_threaded {threaded_sw:?}"
    );
    let (o, b, ratio) = interleaved(
        &mut || LockGuard::unlock(opts.lock().unwrap()).unwrap(),
        &mut || bare.cycle(),
    );
    eprintln!(
        "interleaved uncontended cycle (medians of 101 blocks of 20): ours {o:?}, bare {b:?}, \
         ours / bare {ratio:.2}x"
    );
    use lockutils_core::backend::{Backend, Request, Wait};
    let request = Request {
        name: name.clone(),
        identity: name.clone(),
        mode: lockutils_core::Mode::Exclusive,
        caller: None,
    };
    let (o, b, ratio) = interleaved(
        &mut || {
            pg.acquire(&request, Wait::Forever)
                .unwrap()
                .unwrap()
                .release()
                .unwrap()
        },
        &mut || bare.cycle(),
    );
    eprintln!("interleaved raw: ours {o:?}, bare {b:?}, ours / bare {ratio:.2}x");
}

/// The two-process hand-off, ours beside the bare loop in alternating
/// blocks: each side's peer contends only during that side's blocks (the
/// other is paused after a release), so both see the same load.
fn handoff_interleaved(c: &mut Criterion) {
    let _ = c;
    let pid = std::process::id();
    let (ours_name, bare_name) = (
        format!("bench-hi-ours-{pid}"),
        format!("bench-hi-bare-{pid}"),
    );
    let mut ours_peer = Peer::holder(&ours_name, "ours");
    ours_peer.pause();
    let mut bare_peer = Peer::holder(&bare_name, "bare");
    bare_peer.pause();
    let pg = PgBackend::new(&url()).unwrap();
    let opts = LockOptions::new(&ours_name).backend(&pg);
    let bare = Bare::new(&bare_name);
    let peers = std::cell::RefCell::new([ours_peer, bare_peer]);
    let (o, b, ratio) = interleaved_with(
        &mut || LockGuard::unlock(opts.lock().unwrap()).unwrap(),
        &mut || bare.cycle(),
        &mut |side, starts| {
            let peer = &mut peers.borrow_mut()[side];
            if starts {
                peer.resume()
            } else {
                peer.pause()
            }
        },
    );
    eprintln!(
        "interleaved two-process hand-off (medians of 101 blocks of 20): ours {o:?}, \
         bare {b:?}, ours / bare {ratio:.2}x"
    );
}

criterion_group!(benches, bench, switches_per_cycle, handoff_interleaved);
criterion_main!(benches);
