//! Test and benchmark helper: takes a PostgreSQL lock in its own process.
//!
//!     lockutils-pg-holder hold URL NAME [--shared]
//!         acquire (blocking), print `held KEY` on stdout, then hold
//!         until stdin closes (or the process is killed), and release
//!     lockutils-pg-holder contend URL NAME ours|bare
//!         acquire and release in a loop until stdin closes, printing
//!         `ready` first (for the hand-off benchmark)
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use lockutils_core::{LockGuard, LockOptions, Mode};
use lockutils_postgres::PgUrl;

fn main() {
    lockutils_postgres::register();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_else(|| usage());
    match arg(0).as_str() {
        "hold" => hold(
            &arg(1),
            &arg(2),
            args.get(3).map(String::as_str) == Some("--shared"),
        ),
        "contend" => contend(&arg(1), &arg(2), &arg(3)),
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!("usage: lockutils-pg-holder hold|contend URL NAME …");
    std::process::exit(2)
}

fn hold(url: &str, name: &str, shared: bool) {
    let mode = if shared {
        Mode::Shared
    } else {
        Mode::Exclusive
    };
    let guard = LockOptions::new(name)
        .backend_url(url)
        .mode(mode)
        .lock()
        .unwrap_or_else(|e| panic!("cannot take {name}: {e}"));
    let key = LockGuard::location(&guard).map(|l| l.to_string());
    println!("held {}", key.unwrap_or_default());
    std::io::stdout().flush().unwrap();
    for _ in std::io::stdin().lock().lines() {}
    LockGuard::unlock(guard).unwrap();
}

static STOP: AtomicBool = AtomicBool::new(false);

fn contend(url: &str, name: &str, which: &str) {
    std::thread::spawn(|| {
        let mut sink = String::new();
        let _ = std::io::stdin().read_line(&mut sink);
        STOP.store(true, Ordering::SeqCst);
    });
    match which {
        "ours" => {
            let opts = LockOptions::new(name).backend_url(url);
            drop(opts.lock().unwrap());
            println!("ready");
            while !STOP.load(Ordering::SeqCst) {
                drop(opts.lock().unwrap());
            }
        }
        "bare" => {
            let parsed: PgUrl = url.parse().unwrap();
            let key = parsed.layout().key(name).to_string();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let (client, conn) =
                    tokio_postgres::connect(&bare_conninfo(url), tokio_postgres::NoTls)
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
                let key: i64 = key.parse().unwrap();
                client.query(&lock, &[&key]).await.unwrap();
                client.query(&unlock, &[&key]).await.unwrap();
                println!("ready");
                while !STOP.load(Ordering::SeqCst) {
                    client.query(&lock, &[&key]).await.unwrap();
                    client.query(&unlock, &[&key]).await.unwrap();
                }
            });
        }
        _ => usage(),
    }
}

/// The URL without this library's own parameters, for a bare client.
fn bare_conninfo(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_owned()
}
