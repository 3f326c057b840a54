//! A waiter thread (the kernel wait of a timed or async acquisition of a lock
//! file) runs on its caller's CPU only while it waits for that caller, stays
//! there while idle, and moves to the CPU of its next caller, even from the
//! one CPU a pinned caller that started it had. Its own test binary, so that
//! no other test's wait runs alongside.
#![cfg(target_os = "linux")]

use std::path::PathBuf;
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

/// The waiter threads' `/proc/self/task/TID` directories.
fn waiter_tasks() -> Vec<PathBuf> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .map(|t| t.unwrap().path())
        .filter(|t| {
            std::fs::read_to_string(t.join("comm"))
                .unwrap_or_default()
                .starts_with("lockutils-file")
        })
        .collect()
}

fn cpu_set(cpus: &[usize]) -> libc::cpu_set_t {
    // SAFETY: an all-zero `cpu_set_t` is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        // SAFETY: test CPUs are below `CPU_SETSIZE`.
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    set
}

/// Runs task `tid` (0: the calling thread) on `cpus` only.
fn pin(tid: libc::pid_t, cpus: &[usize]) {
    let set = cpu_set(cpus);
    // SAFETY: `set` is a valid `cpu_set_t` of the size passed.
    let r = unsafe { libc::sched_setaffinity(tid, std::mem::size_of_val(&set), &set) };
    assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
}

/// The CPUs this process may run on.
fn process_cpus() -> Vec<usize> {
    let mut set = cpu_set(&[]);
    // SAFETY: `set` is a writable `cpu_set_t` of the size passed.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    assert_eq!(r, 0);
    // SAFETY: `set` was filled in above; every index is below `CPU_SETSIZE`.
    (0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

/// One timed acquisition from a thread running on `caller_cpu` that has to
/// wait in the kernel (a holder in another registry has the file); returns
/// the task of the waiter thread that waited for it, and its CPU list then.
fn timed_wait_from(caller_cpu: usize, dir: &std::path::Path) -> (PathBuf, String) {
    let (holders, waiters) = (Registry::new(), Registry::new());
    let opts = |r| {
        LockOptions::new("affinity")
            .external(true)
            .lock_path(dir)
            .registry(r)
    };
    let held = opts(&holders).lock().unwrap();
    let seen = std::sync::Mutex::new(None);
    std::thread::scope(|s| {
        let caller = s.spawn(|| {
            pin(0, &[caller_cpu]);
            let got = opts(&waiters).timeout(Duration::from_secs(10)).lock();
            assert!(got.is_ok(), "{got:?}");
        });
        // While the caller waits: the waiter thread that took its wait sits
        // in `fcntl(_, F_OFD_SETLKW, _)`.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let blocked: Vec<_> = waiter_tasks()
                .into_iter()
                .filter(|t| {
                    std::fs::read_to_string(t.join("syscall")).is_ok_and(|line| {
                        let mut f = line.split_whitespace();
                        f.next() == Some(&libc::SYS_fcntl.to_string())
                            && f.nth(1) == Some(&format!("{:#x}", libc::F_OFD_SETLKW))
                    })
                })
                .collect();
            if let [task] = &blocked[..] {
                *seen.lock().unwrap() = Some((task.clone(), allowed(task.to_str().unwrap())));
                break;
            }
            assert!(Instant::now() < deadline, "no waiter thread blocked");
            std::thread::sleep(Duration::from_millis(2));
        }
        drop(held);
        caller.join().unwrap();
    });
    seen.into_inner().unwrap().unwrap()
}

#[test]
fn a_waiter_thread_waits_on_its_callers_cpu_and_stays_there_while_idle() {
    let cpus = process_cpus();
    let tmp = tempfile::tempdir().unwrap();
    let whole = allowed("/proc/self");
    if cpus.len() < 2 {
        // Nothing to choose from: the waiter threads are never pinned.
        let (_, seen) = timed_wait_from(cpus[0], tmp.path());
        assert_eq!(seen, whole);
        return;
    }
    let (a, b) = (cpus[0], cpus[1]);
    // The first waiter thread is started by a caller pinned to `a`, whose
    // set it inherits; it still follows a caller to `b`.
    for cpu in [a, b, a] {
        let (task, seen) = timed_wait_from(cpu, tmp.path());
        assert_eq!(seen, cpu.to_string(), "waiting for a caller on CPU {cpu}");
        // Idle now (for up to a second before it exits), the waiter thread
        // stays where its last caller was.
        let task = task.to_str().unwrap();
        assert_eq!(allowed(task), cpu.to_string(), "{task}, idle");
    }
}
