//! A waiter thread (the kernel wait of a timed or async acquisition of a lock
//! file) runs on its caller's CPU only while it waits for that caller:
//! afterwards every waiter thread has the process's whole CPU set again. Its
//! own test binary, so that no other test's wait runs alongside.
#![cfg(target_os = "linux")]

use std::time::{Duration, Instant};

use lockutils_core::{LockOptions, Registry};

fn allowed(task: &str) -> String {
    let status = std::fs::read_to_string(format!("{task}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn waiter_threads_get_their_cpu_set_back_after_a_wait() {
    let tmp = tempfile::tempdir().unwrap();
    // Two registries: the holder and the waiter meet on the file only, so the
    // waiter's timed acquisition waits in the kernel, on a waiter thread.
    let (holders, waiters_reg) = (Registry::new(), Registry::new());
    let opts = |r| {
        LockOptions::new("affinity")
            .external(true)
            .lock_path(tmp.path())
            .registry(r)
    };
    for _ in 0..3 {
        let taken = std::sync::Barrier::new(2);
        std::thread::scope(|s| {
            s.spawn(|| {
                let held = opts(&holders).lock().unwrap();
                taken.wait();
                std::thread::sleep(Duration::from_millis(20));
                drop(held);
            });
            taken.wait();
            let got = opts(&waiters_reg).timeout(Duration::from_secs(10)).lock();
            assert!(got.is_ok(), "{got:?}");
        });
    }
    let whole = allowed("/proc/self");
    // The waiter gives its set back after handing over the file: allow it
    // the moment that takes, well within the time an idle waiter thread
    // stays before it exits (1 s).
    let deadline = Instant::now() + Duration::from_millis(500);
    loop {
        let (mut waiters, mut pinned) = (0, Vec::new());
        for task in std::fs::read_dir("/proc/self/task").unwrap() {
            let task = task.unwrap().path();
            let comm = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
            if comm.starts_with("lockutils-file") {
                waiters += 1;
                let cpus = allowed(task.to_str().unwrap());
                if cpus != whole {
                    pinned.push(cpus);
                }
            }
        }
        assert!(waiters > 0, "no waiter thread found");
        if pinned.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "waiter threads left pinned to {pinned:?} (process: {whole})"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
