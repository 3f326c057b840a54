//! `#[synchronized(.., external)]` across processes: this program starts
//! copies of itself that each run a synchronized function a few times and
//! log when they enter and leave it; the parent then checks from the log that
//! no two processes were ever inside at once.
//!
//! ```text
//! cargo run -p lockutils --example external_processes
//! ```

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lockutils::synchronized;

const CHILD_ENV: &str = "LOCKUTILS_EXAMPLE_CHILD_LOG";
const CHILDREN: usize = 4;
const ROUNDS: usize = 3;

fn now_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros()
}

fn append(log: &Path, line: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("open the log");
    f.write_all(format!("{line}\n").as_bytes())
        .expect("write the log");
}

/// The lock file is `{lock directory}/demo-image-cache`; the directory comes
/// from `lockutils::set_defaults` (set by the parent through the environment).
#[synchronized("image-cache", external, prefix = "demo")]
fn update_image_cache(log: &Path) {
    let pid = std::process::id();
    append(log, &format!("enter {pid} {}", now_us()));
    std::thread::sleep(Duration::from_millis(20));
    append(log, &format!("exit {pid} {}", now_us()));
}

fn child(log: &Path) {
    lockutils::set_defaults(log.parent().expect("log in a directory"));
    for _ in 0..ROUNDS {
        update_image_cache(log);
    }
}

fn main() {
    if let Some(log) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&log));
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let log = dir.path().join("log");
    let children: Vec<_> = (0..CHILDREN)
        .map(|_| {
            Command::new(std::env::current_exe().expect("this program"))
                .env(CHILD_ENV, &log)
                .spawn()
                .expect("start a child")
        })
        .collect();
    for mut c in children {
        assert!(c.wait().expect("wait for a child").success());
    }

    let text = std::fs::read_to_string(&log).expect("read the log");
    let mut inside: Option<&str> = None;
    for line in text.lines() {
        let mut f = line.split(' ');
        match (f.next(), f.next()) {
            (Some("enter"), Some(pid)) => {
                assert!(
                    inside.is_none(),
                    "{pid} entered while {inside:?} was inside"
                );
                inside = Some(pid);
            }
            (Some("exit"), Some(pid)) => assert_eq!(inside.take(), Some(pid)),
            _ => panic!("bad log line {line:?}"),
        }
    }
    let runs = text.lines().count() / 2;
    assert_eq!(runs, CHILDREN * ROUNDS);
    assert!(dir.path().join("demo-image-cache").exists());
    println!("{CHILDREN} processes x {ROUNDS} rounds: {runs} runs, never two at once");
}
