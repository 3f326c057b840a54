//! Test and benchmark helper: takes a distributed lock in its own process.
//!
//!     lockutils-zk-holder hold URL NAME [--shared] [--hold-ms N] [--log FILE]
//!         acquire (blocking), append `enter PID NANOS` to FILE, hold N ms,
//!         append `exit PID NANOS`, release (waiting for the server)
//!     lockutils-zk-holder hold-forever URL NAME
//!         acquire, print `held TOKEN SESSION_TIMEOUT_MS` on stdout, sleep
//!     lockutils-zk-holder contend URL NAME ours|bare
//!         acquire and release in a loop until stdin closes, printing
//!         `ready` first (for the hand-off benchmark)
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_else(|| usage());
    match arg(0).as_str() {
        "hold" => hold(&arg(1), &arg(2), &args[3..]),
        "hold-forever" => hold_forever(&arg(1), &arg(2)),
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
    let mut opts = lockutils_zookeeper::ZkLockOptions::new(name).url(url);
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
            writeln!(f, "{what} {pid} {} {}", now_ns(), guard.fencing_token()).unwrap();
        }
    };
    append("enter");
    std::thread::sleep(std::time::Duration::from_millis(hold_ms));
    append("exit");
    guard.unlock().unwrap();
}

fn hold_forever(url: &str, name: &str) {
    let guard = lockutils_zookeeper::ZkLockOptions::new(name)
        .url(url)
        .lock()
        .unwrap_or_else(|e| panic!("cannot take {name}: {e}"));
    println!(
        "held {} {}",
        guard.fencing_token(),
        guard.watch().session_timeout().as_millis()
    );
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
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
            let opts = lockutils_zookeeper::ZkLockOptions::new(name).url(url);
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
