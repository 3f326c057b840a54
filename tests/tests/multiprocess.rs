//! Several real processes (`lockutils-holder` children, and the test process
//! itself) contend for external locks; each test checks from the children's
//! event logs and exit codes what its name promises.

use std::path::Path;
use std::time::{Duration, Instant};

use lockutils::{LockGuard, LockOptions};
use lockutils_tests::{
    assert_no_overlap, assert_rounds, by_pid, read_intervals, read_log, unix_micros, wait_for_file,
    wait_until_blocked, Event, Holder, Interval,
};

const HOLDER: &str = env!("CARGO_BIN_EXE_lockutils-holder");
/// Bound for any child to finish: generous, so a loaded CI machine does not
/// fail the tests; they check correctness, not speed.
const PATIENCE: Duration = Duration::from_secs(20);

fn holder(name: &str, dir: &Path) -> Holder {
    Holder::new(HOLDER, name, dir)
}

#[test]
fn exclusive_holders_in_many_processes_never_overlap() {
    const PROCESSES: usize = 8;
    const ROUNDS: u32 = 6;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.log");
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            holder("contended", dir.path())
                .rounds(ROUNDS)
                .hold_ms(3)
                .log(&log)
                .spawn()
        })
        .collect();
    let pids: Vec<u32> = children.iter().map(|c| c.pid()).collect();
    for child in children {
        child.wait(PATIENCE).assert_code(0);
    }

    let intervals = read_intervals(&log);
    assert_rounds(&intervals, &pids, ROUNDS as usize);
    assert_no_overlap(&intervals);
}

#[test]
fn shared_holders_overlap_while_an_exclusive_one_waits() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.log");
    // The first reader holds longer, so the second surely joins it even on
    // a slow machine.
    let reader = |ready: &str, hold_ms| {
        let ready = dir.path().join(ready);
        let mut child = holder("readers-writer", dir.path())
            .shared()
            .hold_ms(hold_ms)
            .log(&log)
            .ready(&ready)
            .spawn();
        wait_for_file(&ready, &mut child, PATIENCE);
        child
    };
    let first = reader("first.ready", 800);
    let second = reader("second.ready", 400);
    let writer = holder("readers-writer", dir.path()).log(&log).spawn();
    // Both readers hold; the writer is queued in the kernel behind them.
    wait_until_blocked(&dir.path().join("readers-writer"), PATIENCE);
    let pids = [first.pid(), second.pid(), writer.pid()];
    for child in [first, second, writer] {
        child.wait(PATIENCE).assert_code(0);
    }

    let intervals = read_intervals(&log);
    assert_rounds(&intervals, &pids, 1);
    let holds = by_pid(&intervals);
    let [r1, r2, w]: [Interval; 3] = pids.map(|pid| holds[&pid][0]);
    assert!(r1.overlaps(&r2), "shared holds must overlap: {r1} and {r2}");
    assert!(
        w.enter >= r1.exit.max(r2.exit),
        "the exclusive hold {w} began before the shared ones {r1}, {r2} ended"
    );
}

#[test]
fn a_killed_holder_frees_the_lock_for_a_blocked_waiter() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("holder.ready");
    let waiter_log = dir.path().join("waiter.log");
    let mut doomed = holder("killed", dir.path())
        .hold_ms(600_000)
        .ready(&ready)
        .spawn();
    wait_for_file(&ready, &mut doomed, PATIENCE);
    let waiter = holder("killed", dir.path()).log(&waiter_log).spawn();
    wait_until_blocked(&dir.path().join("killed"), PATIENCE);

    let killed_at = unix_micros();
    let killed = doomed.kill();
    assert_eq!(killed.signal(), Some(libc::SIGKILL), "{:?}", killed.status);
    waiter.wait(PATIENCE).assert_code(0);

    let holds = read_intervals(&waiter_log);
    assert_eq!(holds.len(), 1, "{holds:?}");
    let enter = holds[0].enter;
    assert!(
        enter >= killed_at,
        "the waiter entered at {enter}, before the kill at {killed_at}"
    );
    let after = Duration::from_micros(enter - killed_at);
    assert!(
        after < Duration::from_secs(5),
        "the waiter took {after:?} after the kill"
    );
}

#[test]
fn a_lock_held_by_the_test_process_excludes_a_child_until_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let guard = LockOptions::new("held-in-test")
        .external(true)
        .lock_path(dir.path())
        .lock()
        .unwrap();
    assert_eq!(
        LockGuard::path(&guard),
        Some(dir.path().join("held-in-test").as_path())
    );
    let busy = holder("held-in-test", dir.path()).no_wait().run(PATIENCE);
    busy.assert_code(2);
    assert!(busy.stderr.contains("held-in-test"), "{}", busy.stderr);

    drop(guard);
    holder("held-in-test", dir.path())
        .no_wait()
        .run(PATIENCE)
        .assert_code(0);
}

#[test]
fn a_timeout_bounds_the_wait_while_the_lock_is_held() {
    const TIMEOUT_MS: u64 = 300;
    let timeout = Duration::from_millis(TIMEOUT_MS);
    let dir = tempfile::tempdir().unwrap();
    let opts = LockOptions::new("timed")
        .external(true)
        .lock_path(dir.path());
    let guard = opts.lock().unwrap();

    // Measured around the whole child, so a child that gave up early could
    // only pass if starting it took longer than the timeout.
    let started = Instant::now();
    let timed_out = holder("timed", dir.path())
        .timeout_ms(TIMEOUT_MS)
        .run(PATIENCE);
    let waited = started.elapsed();
    timed_out.assert_code(3);
    assert!(
        waited >= timeout,
        "gave up after {waited:?}, before the {timeout:?} timeout"
    );
    assert!(
        waited < timeout + Duration::from_secs(5),
        "gave up only after {waited:?}"
    );

    drop(guard);
    holder("timed", dir.path())
        .timeout_ms(TIMEOUT_MS)
        .run(PATIENCE)
        .assert_code(0);
}

/// The removal protocol (lock, check the locked file is still the one at the
/// path, unlink while holding) together with acquirers that retry when their
/// file was unlinked must never let two processes hold the lock, even while
/// the file is removed and recreated all the time.
#[test]
fn safe_removal_under_contention_never_lets_two_processes_hold() {
    const ACQUIRERS: usize = 4;
    const REMOVERS: usize = 2;
    const ROUNDS: u32 = 30;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.log");
    let spawn = |remove_after: bool| {
        let mut h = holder("removed", dir.path())
            .rounds(ROUNDS)
            .hold_ms(1)
            .log(&log);
        if remove_after {
            h = h.remove_after();
        }
        h.spawn()
    };
    let mut children: Vec<_> = (0..ACQUIRERS)
        .map(|_| spawn(false))
        .chain((0..REMOVERS).map(|_| spawn(true)))
        .collect();
    let pids: Vec<u32> = children.iter().map(|c| c.pid()).collect();

    // The test process removes the file too, between the children's holds.
    let mut removed_here = 0;
    while children.iter_mut().any(|c| !c.has_exited()) {
        if lockutils::remove_external_lock_file("removed", None, Some(dir.path()))
            .expect("a blocking removal waits; it does not fail")
        {
            removed_here += 1;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    for child in children {
        child.wait(PATIENCE).assert_code(0);
    }

    let removed_by_children = read_log(&log)
        .iter()
        .filter(|r| r.event == Event::Removed)
        .count();
    assert!(
        removed_by_children > 0 && removed_here > 0,
        "the lock file was not removed often enough to test anything \
         (by children: {removed_by_children}, by the test: {removed_here})"
    );
    let intervals = read_intervals(&log);
    assert_rounds(&intervals, &pids, ROUNDS as usize);
    assert_no_overlap(&intervals);
}

/// A blocking removal (no timeout) waits for the lock; it may find no file to
/// remove, but it must never fail as if it had been asked not to block, even
/// when other processes remove and recreate the file around it.
#[test]
fn blocking_removal_never_reports_would_block_while_others_recreate_the_file() {
    const REMOVERS: usize = 4;
    const ROUNDS: u32 = 300;
    let dir = tempfile::tempdir().unwrap();
    let mut children: Vec<_> = (0..REMOVERS)
        .map(|_| {
            holder("recreated", dir.path())
                .rounds(ROUNDS)
                .remove_after()
                .spawn()
        })
        .collect();
    let mut errors = Vec::new();
    let mut calls = 0;
    while children.iter_mut().any(|c| !c.has_exited()) {
        calls += 1;
        if let Err(e) = lockutils::remove_external_lock_file("recreated", None, Some(dir.path())) {
            errors.push(e);
        }
    }
    let failed: Vec<String> = children
        .into_iter()
        .map(|c| c.wait(PATIENCE))
        .filter(|exit| exit.code() != Some(0))
        .map(|exit| format!("{}: {}", exit.status, exit.stderr.trim()))
        .collect();
    assert!(
        errors.is_empty() && failed.is_empty(),
        "blocking removals failed: {} of {calls} in the test process (first: {:?}); \
         children: {failed:?}",
        errors.len(),
        errors.first()
    );
}

#[test]
fn names_aliasing_one_file_exclude_each_other_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("slash.ready");
    let mut slash = holder("a/b", dir.path())
        .hold_ms(600_000)
        .ready(&ready)
        .spawn();
    wait_for_file(&ready, &mut slash, PATIENCE);

    holder("a_b", dir.path())
        .no_wait()
        .run(PATIENCE)
        .assert_code(2);
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f != "slash.ready")
        .collect();
    assert_eq!(files, ["a_b"], "both names must use one lock file");

    slash.kill();
    holder("a_b", dir.path())
        .no_wait()
        .run(PATIENCE)
        .assert_code(0);
}

#[test]
fn the_file_admin_names_holder_and_waiter_processes() {
    use lockutils::backend::{Backend, FileBackend, Removal};
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("holder.ready");
    let mut held = holder("seen", dir.path())
        .hold_ms(600_000)
        .ready(&ready)
        .spawn();
    wait_for_file(&ready, &mut held, PATIENCE);
    let waiter = holder("seen", dir.path()).spawn();
    wait_until_blocked(&dir.path().join("seen"), PATIENCE);

    let files = FileBackend::new(dir.path());
    let admin = files.admin().unwrap();
    let info = admin.inspect("seen").unwrap();
    assert_eq!(info.holders.len(), 1, "{info:?}");
    assert_eq!(info.holders[0].pid, Some(held.pid()));
    assert_eq!(info.holders[0].mode, Some(lockutils::Mode::Exclusive));
    // When the holder process started (a lock's own start is recorded
    // nowhere in the kernel).
    assert!(info.holders[0].process_started.is_some(), "{info:?}");
    assert_eq!(
        info.waiters.iter().map(|w| w.pid).collect::<Vec<_>>(),
        [Some(waiter.pid())],
        "{info:?}"
    );
    assert_eq!(admin.remove_if_free("seen").unwrap(), Removal::Busy);
    drop(waiter.kill());
    drop(held.kill());
}
