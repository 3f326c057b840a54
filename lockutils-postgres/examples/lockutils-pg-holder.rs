//! Test and benchmark helper: takes a PostgreSQL lock in its own process.
//!
//!     lockutils-pg-holder hold URL NAME [--shared]
//!         acquire (blocking), print `held KEY` on stdout, then hold
//!         until stdin closes (or the process is killed), and release
//!     lockutils-pg-holder contend URL NAME ours|ours-drop|bare
//!         acquire and release in a loop until stdin closes, printing
//!         `ready` first (for the hand-off benchmark); a `pause` line on
//!         stdin stops it after a release (it prints `paused`), `go`
//!         resumes it (it prints `going`)
use std::io::{BufRead, Write};
use std::sync::{Condvar, LazyLock, Mutex};

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

/// The contending loop's controls, from stdin: `pause` (the loop stops
/// after its next release and prints `paused`), `go` (it resumes), end of
/// input (it ends). Each is acknowledged before the next is sent, so none
/// overtakes another.
#[derive(Default)]
struct Control {
    state: Mutex<(bool, bool)>,
    changed: Condvar,
}

static CONTROL: LazyLock<Control> = LazyLock::new(Control::default);

impl Control {
    fn read_stdin(&self) {
        for line in std::io::stdin().lock().lines() {
            let mut state = self.state.lock().unwrap();
            match line.as_deref().map(str::trim) {
                Ok("pause") => state.0 = true,
                Ok("go") => state.0 = false,
                _ => break,
            }
            self.changed.notify_all();
        }
        self.state.lock().unwrap().1 = true;
        self.changed.notify_all();
    }

    /// Whether to go on with another cycle; waits while paused.
    fn go_on(&self) -> bool {
        let mut state = self.state.lock().unwrap();
        if state.0 && !state.1 {
            println!("paused");
            std::io::stdout().flush().unwrap();
            while state.0 && !state.1 {
                state = self.changed.wait(state).unwrap();
            }
            println!("going");
            std::io::stdout().flush().unwrap();
        }
        !state.1
    }
}

fn contend(url: &str, name: &str, which: &str) {
    std::thread::spawn(|| CONTROL.read_stdin());
    match which {
        "ours" => {
            // Each release waits for the server's answer, as the bare
            // loop's does (dropping the guard would release on the
            // crate's runtime without waiting).
            let opts = LockOptions::new(name).backend_url(url);
            LockGuard::unlock(opts.lock().unwrap()).unwrap();
            println!("ready");
            while CONTROL.go_on() {
                LockGuard::unlock(opts.lock().unwrap()).unwrap();
            }
        }
        "ours-drop" => {
            // Releases by dropping the guard: the unlock runs on the
            // crate's runtime and the loop goes on without its answer.
            let opts = LockOptions::new(name).backend_url(url);
            drop(opts.lock().unwrap());
            println!("ready");
            while CONTROL.go_on() {
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
                while CONTROL.go_on() {
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
