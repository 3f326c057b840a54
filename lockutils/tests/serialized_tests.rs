//! Serializing tests across threads and processes: the replacement for
//! oslo's (and Tempest's) `LockFixture('availability_zone')`.
//!
//! The `az_*` tests share one external lock. Each records `enter`/`exit`
//! lines (test, pid, time) to the log named by `LOCKUTILS_AZ_LOG` when that is
//! set. The driver tests run this same binary as a child:
//!
//! - as `cargo test` does: one process, the `az_*` tests on 4 threads;
//! - as `cargo nextest run` does: one process per test, all started at once;
//!
//! and check from the log that no two `az_*` tests were ever inside at once.
//! Under `cargo nextest run` itself the `az_*` tests also run one process
//! each; `verify_az_log` (ignored by default) checks a log written that way.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lockutils::synchronized;

const LOG_ENV: &str = "LOCKUTILS_AZ_LOG";
const AZ_TESTS: [&str; 4] = [
    "az_create_aggregate",
    "az_update_aggregate",
    "az_add_host",
    "az_remove_host",
];

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos()
}

fn log(event: &str, test: &str) {
    if let Some(path) = std::env::var_os(LOG_ENV) {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open the log");
        // One write per line: appends of a short line do not interleave.
        f.write_all(format!("{event} {test} {} {}\n", std::process::id(), now_ns()).as_bytes())
            .expect("write the log");
    }
}

/// What each `az_*` test does: holds the shared resource for a while.
fn use_availability_zone(test: &str) {
    log("enter", test);
    std::thread::sleep(Duration::from_millis(40));
    log("exit", test);
}

#[test]
#[synchronized("availability_zone", external, lock_path = env!("CARGO_TARGET_TMPDIR"))]
fn az_create_aggregate() {
    use_availability_zone("az_create_aggregate");
}

#[test]
#[synchronized("availability_zone", external, lock_path = env!("CARGO_TARGET_TMPDIR"))]
fn az_update_aggregate() {
    use_availability_zone("az_update_aggregate");
}

#[test]
#[synchronized("availability_zone", external, lock_path = env!("CARGO_TARGET_TMPDIR"))]
fn az_add_host() {
    use_availability_zone("az_add_host");
}

#[test]
#[synchronized("availability_zone", external, lock_path = env!("CARGO_TARGET_TMPDIR"))]
fn az_remove_host() {
    use_availability_zone("az_remove_host");
}

/// Checks the log: every test entered and left once, strictly one after the
/// other (in file order and in time); returns the distinct pids seen.
fn check_log(path: &Path, expected_runs: usize) -> Vec<u32> {
    let text = std::fs::read_to_string(path).expect("read the log");
    let mut inside: Option<(String, u32, u128)> = None;
    let mut last_exit = 0u128;
    let mut runs = 0;
    let mut pids = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let [event, test, pid, t] = f[..] else {
            panic!("bad log line {line:?}")
        };
        let (pid, t): (u32, u128) = (pid.parse().unwrap(), t.parse().unwrap());
        match event {
            "enter" => {
                assert!(
                    inside.is_none(),
                    "{test} (pid {pid}) entered while {inside:?} was inside:\n{text}"
                );
                assert!(
                    t >= last_exit,
                    "{test} entered before the previous exit:\n{text}"
                );
                inside = Some((test.to_owned(), pid, t));
                if !pids.contains(&pid) {
                    pids.push(pid);
                }
            }
            "exit" => {
                let (who, who_pid, entered) = inside.take().expect("exit without enter");
                assert_eq!((who.as_str(), who_pid), (test, pid), "{text}");
                assert!(t >= entered);
                last_exit = t;
                runs += 1;
            }
            _ => panic!("bad log line {line:?}"),
        }
    }
    assert!(inside.is_none(), "a test never left:\n{text}");
    assert_eq!(runs, expected_runs, "{text}");
    pids
}

fn child(log: &Path) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("this test binary"));
    cmd.env(LOG_ENV, log)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    cmd
}

/// `cargo test` style: one process, the tests on several threads.
#[test]
fn lock_fixture_serializes_tests_on_threads() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("threads.log");
    let status = child(&log)
        .args(["az_", "--test-threads=4"])
        .status()
        .unwrap();
    assert!(status.success());
    let pids = check_log(&log, AZ_TESTS.len());
    assert_eq!(pids.len(), 1, "one process");
}

/// `cargo nextest run` style: one process per test, all started at once.
#[test]
fn lock_fixture_serializes_tests_in_processes() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("processes.log");
    let children: Vec<_> = AZ_TESTS
        .iter()
        .map(|test| child(&log).args(["--exact", test]).spawn().unwrap())
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let pids = check_log(&log, AZ_TESTS.len());
    assert_eq!(pids.len(), AZ_TESTS.len(), "one process per test");
}

/// Checks a log written by a real runner, e.g.
/// `LOCKUTILS_AZ_LOG=/tmp/az.log cargo nextest run -p lockutils --test serialized_tests -E 'test(/^az_/)'`
/// followed by this test with `--ignored` and the same `LOCKUTILS_AZ_LOG`, as
/// `.ci/run` does. Without the log it fails: there would be nothing checked.
#[test]
#[ignore = "checks the log of a separate `cargo nextest run` (LOCKUTILS_AZ_LOG); run `bash .ci/run`"]
fn verify_az_log() {
    let Some(log) = std::env::var_os(LOG_ENV) else {
        panic!(
            "{LOG_ENV} is not set: run the az_* tests under `cargo nextest run` with it set \
             first (as .ci/run does), then this check on the same log"
        );
    };
    let pids = check_log(Path::new(&log), AZ_TESTS.len());
    eprintln!(
        "{} runs in {} processes, no overlap",
        AZ_TESTS.len(),
        pids.len()
    );
}
