//! Several processes contend for one external lock; each reports how long it
//! waited, and the parent checks from their logs that no two ever held the lock
//! at the same time.
//!
//! ```text
//! cargo run --release -p lockutils --example contention -- [WORKERS] [ROUNDS] [HOLD_MS]
//! ```
//!
//! No server and no configuration: the lock file lives in the per-user default
//! lock directory (or `LOCKUTILS_LOCK_PATH` if set).

use std::fs::OpenOptions;
use std::io::Write;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lockutils::{LockGuard, LockOptions};

const LOCK_NAME: &str = "contention-demo";
const WORKER_ENV: &str = "LOCKUTILS_DEMO_WORKER";
const LOG_ENV: &str = "LOCKUTILS_DEMO_LOG";

fn now_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros()
}

fn arg(n: usize, default: u64) -> u64 {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn worker(id: &str, log: &str) -> Result<(), lockutils::Error> {
    let rounds = arg(2, 3);
    let hold = Duration::from_millis(arg(3, 50));
    let pid = std::process::id();
    for round in 1..=rounds {
        let asked = Instant::now();
        let guard = LockOptions::new(LOCK_NAME).external(true).lock()?;
        let entered = now_us();
        println!(
            "worker {id} (pid {pid}) round {round}: got the lock after waiting {:>8.1} ms",
            asked.elapsed().as_secs_f64() * 1e3
        );
        std::thread::sleep(hold);
        let left = now_us();
        let mut f = OpenOptions::new()
            .append(true)
            .create(true)
            .open(log)
            .expect("log");
        writeln!(
            f,
            "{pid} {entered} {left} {}",
            LockGuard::waited(&guard).as_micros()
        )
        .expect("log");
        drop(guard);
    }
    Ok(())
}

fn main() -> ExitCode {
    if let (Ok(id), Ok(log)) = (std::env::var(WORKER_ENV), std::env::var(LOG_ENV)) {
        return match worker(&id, &log) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("worker {id}: {e}");
                ExitCode::FAILURE
            }
        };
    }

    let workers = arg(1, 4);
    let path = LockOptions::new(LOCK_NAME)
        .file_path()
        .expect("valid lock name");
    println!(
        "{workers} processes contend for external lock \"{LOCK_NAME}\" ({})",
        path.display()
    );
    let log = std::env::temp_dir().join(format!("lockutils-demo-{}.log", std::process::id()));
    let exe = std::env::current_exe().expect("own executable");
    let started = Instant::now();
    let children: Vec<_> = (1..=workers)
        .map(|i| {
            Command::new(&exe)
                .args(std::env::args().skip(1))
                .env(WORKER_ENV, i.to_string())
                .env(LOG_ENV, &log)
                .spawn()
                .expect("spawn worker")
        })
        .collect();
    let mut ok = true;
    for mut c in children {
        ok &= c.wait().map(|s| s.success()).unwrap_or(false);
    }

    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let mut spans: Vec<(u128, u128, u64)> = text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((
                f.get(1)?.parse().ok()?,
                f.get(2)?.parse().ok()?,
                f.first()?.parse().ok()?,
            ))
        })
        .collect();
    spans.sort();
    let overlaps = spans.windows(2).filter(|w| w[1].0 < w[0].1).count();
    let max_wait = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3)?.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    println!(
        "{} critical sections in {:.2} s, longest wait {:.1} ms, overlapping holders: {overlaps}",
        spans.len(),
        started.elapsed().as_secs_f64(),
        max_wait as f64 / 1e3
    );
    if ok && overlaps == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("FAILED: a worker failed or two holders overlapped");
        ExitCode::FAILURE
    }
}
