//! Test and benchmark helper: takes a distributed lock in its own process.
//!
//!     lockutils-zk-holder hold URL NAME [--shared] [--hold-ms N] [--log FILE]
//!         acquire (blocking), append `enter PID NANOS` to FILE, hold N ms,
//!         append `exit PID NANOS`, release (waiting for the server)
//!     lockutils-zk-holder hold-forever URL NAME
//!         acquire, print `held TOKEN SESSION_TIMEOUT_MS` on stdout, sleep
//!     lockutils-zk-holder resume-check URL NAME
//!         per round: acquire, print `held TOKEN`, then look at `is_lost()`
//!         every millisecond; after a gap of more than a second (the process
//!         was stopped and continued), print `resumed FIRST_LOOK REASONS`:
//!         whether the first look said lost, and every loss reason seen until
//!         it settles (`,`-separated); release, and start the next round on
//!         a line from stdin (exit at end of input)
//!     lockutils-zk-holder contend URL NAME ours|bare
//!         acquire and release in a loop until stdin closes, printing
//!         `ready` first (for the hand-off benchmark)
use lockutils_core::{LockGuard, LockOptions};
use lockutils_zookeeper::{LossReason, ZkBackend};

/// The backend for `url`, on this process's one session for it.
fn backend(url: &str) -> ZkBackend {
    ZkBackend::new(url).unwrap_or_else(|e| panic!("{e}"))
}

/// The ZooKeeper reason of a guard's loss, if it was lost.
fn loss(guard: &LockGuard<'_>) -> Option<LossReason> {
    LockGuard::loss(guard).and_then(|l| LossReason::of(&l))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_else(|| usage());
    match arg(0).as_str() {
        "hold" => hold(&arg(1), &arg(2), &args[3..]),
        "hold-forever" => hold_forever(&arg(1), &arg(2)),
        "resume-check" => resume_check(&arg(1), &arg(2)),
        "contend" => contend(&arg(1), &arg(2), &arg(3)),
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!("usage: lockutils-zk-holder hold|hold-forever|contend URL NAME …");
    std::process::exit(2)
}

fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn hold(url: &str, name: &str, rest: &[String]) {
    use std::io::Write;
    let mut shared = false;
    let mut hold_ms = 0u64;
    let mut log = None;
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--shared" => shared = true,
            "--hold-ms" => {
                hold_ms = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            "--log" => log = Some(it.next().cloned().unwrap_or_else(|| usage())),
            _ => usage(),
        }
    }
    let zk = backend(url);
    let mut opts = LockOptions::new(name).backend(&zk);
    if shared {
        opts = opts.shared();
    }
    let guard = opts
        .lock()
        .unwrap_or_else(|e| panic!("cannot take {name}: {e}"));
    let pid = std::process::id();
    let append = |what: &str| {
        if let Some(path) = &log {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap();
            let token = LockGuard::fencing_token(&guard).unwrap();
            writeln!(f, "{what} {pid} {} {token}", now_ns()).unwrap();
        }
    };
    append("enter");
    std::thread::sleep(std::time::Duration::from_millis(hold_ms));
    append("exit");
    LockGuard::unlock(guard).unwrap();
}

fn hold_forever(url: &str, name: &str) {
    let zk = backend(url);
    let guard = LockOptions::new(name)
        .backend(&zk)
        .lock()
        .unwrap_or_else(|e| panic!("cannot take {name}: {e}"));
    println!(
        "held {} {}",
        LockGuard::fencing_token(&guard).unwrap(),
        zk.coordinator().session_timeout().unwrap().as_millis()
    );
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

fn resume_check(url: &str, name: &str) {
    use std::io::Write;
    use std::time::{Duration, Instant};
    let zk = backend(url);
    let opts = LockOptions::new(name).backend(&zk);
    let mut line = String::new();
    loop {
        let guard = opts
            .lock()
            .unwrap_or_else(|e| panic!("cannot take {name}: {e}"));
        // Timed from before the announcement: a stop right after it counts.
        let mut last = Instant::now();
        println!("held {}", LockGuard::fencing_token(&guard).unwrap());
        std::io::stdout().flush().unwrap();
        loop {
            std::thread::sleep(Duration::from_millis(1));
            let gap = last.elapsed();
            last = Instant::now();
            if gap > Duration::from_secs(1) {
                break;
            }
        }
        let first_look = LockGuard::is_lost(&guard);
        // Every reason seen until it settles: the provisional
        // ConnectionLost may give way to what happened.
        let mut reasons: Vec<String> = Vec::new();
        let until = Instant::now() + Duration::from_secs(15);
        while Instant::now() < until {
            let seen = format!("{:?}", loss(&guard));
            if reasons.last() != Some(&seen) {
                reasons.push(seen);
            }
            if !matches!(loss(&guard), None | Some(LossReason::ConnectionLost)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        println!("resumed {first_look} {}", reasons.join(","));
        std::io::stdout().flush().unwrap();
        drop(guard);
        line.clear();
        if std::io::stdin().read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
    }
}

fn contend(url: &str, name: &str, which: &str) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static STOP: AtomicBool = AtomicBool::new(false);
    std::thread::spawn(|| {
        let mut sink = String::new();
        let _ = std::io::stdin().read_line(&mut sink);
        STOP.store(true, Ordering::SeqCst);
    });
    match which {
        "ours" => {
            let zk = backend(url);
            let opts = LockOptions::new(name).backend(&zk);
            drop(opts.lock().unwrap());
            println!("ready");
            while !STOP.load(Ordering::SeqCst) {
                drop(opts.lock().unwrap());
            }
        }
        "bare" => {
            use zookeeper_client as zk;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let parsed: lockutils_zookeeper::CoordinationUrl = url.parse().unwrap();
            rt.block_on(async {
                let client = zk::Client::connector()
                    .with_session_timeout(parsed.session_timeout())
                    .connect(&parsed.hosts().join(","))
                    .await
                    .unwrap();
                let dir = format!("{}/{name}", parsed.root());
                let options = zk::LockOptions::new(zk::Acls::anyone_all())
                    .with_ancestor_options(
                        zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()),
                    )
                    .unwrap();
                let take = || async {
                    let prefix = zk::LockPrefix::new_curator(&dir, "lock-").unwrap();
                    client.lock(prefix, b"", options.clone()).await.unwrap()
                };
                drop(take().await);
                println!("ready");
                while !STOP.load(Ordering::SeqCst) {
                    drop(take().await);
                }
            });
        }
        _ => usage(),
    }
}
