//! The opt-in signal-interrupted timed wait at the engine's level, in its own
//! binary (signal dispositions are per process) and under AddressSanitizer in
//! CI with the rest of the engine's tests: the caller sleeps in
//! `F_OFD_SETLKW`, is woken by the release, gives up at its deadline with
//! nothing left queued, and other signals do not cut it short. The holder is
//! another registry of this process: its lock belongs to another open file,
//! which excludes like another process. (The multi-process version, with the
//! fallbacks, is `tests/tests/wait_signal.rs`.)

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{gettid, wait_until};
use lockutils_core::file::kernel_waits;
use lockutils_core::{Error, LockOptions, Registry};

const PATIENCE: Duration = Duration::from_secs(20);

static HOLDER: Registry = Registry::new();

/// Whether thread `tid` of this process is inside `fcntl(_, F_OFD_SETLKW, _)`.
fn in_setlkw(tid: i32) -> bool {
    let Ok(line) = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")) else {
        return false;
    };
    let mut fields = line.split_whitespace();
    let number = fields.next().and_then(|n| n.parse::<i64>().ok());
    let cmd = fields
        .nth(1)
        .and_then(|c| u64::from_str_radix(c.trim_start_matches("0x"), 16).ok());
    number == Some(libc::SYS_fcntl) && cmd == Some(libc::F_OFD_SETLKW as u64)
}

extern "C" fn ignore(_: libc::c_int) {}

#[test]
fn a_timed_wait_sleeps_in_the_kernel_on_its_own_thread() {
    let dir = tempfile::tempdir().unwrap();
    lockutils_core::interrupt_timed_waits_with(libc::SIGRTMIN() + 2).unwrap();
    let opts = |name| LockOptions::new(name).external(true).lock_path(dir.path());

    // Woken by the release: the waiter is seen in F_OFD_SETLKW, then gets it.
    let held = opts("woken").registry(&HOLDER).lock().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            tx.send(gettid()).unwrap();
            opts("woken").timeout(PATIENCE).lock().map(drop)
        });
        let tid = rx.recv().unwrap();
        wait_until("the caller sleeps in F_OFD_SETLKW", PATIENCE, || {
            in_setlkw(tid)
        });
        assert_eq!(kernel_waits(), 0, "no waiter thread");
        drop(held);
        waiter.join().unwrap().unwrap();
    });

    // The deadline ends it, under a storm of another signal's interruptions,
    // and the lock is free for another open file right after.
    // SAFETY: a zeroed sigaction with a do-nothing handler and no
    // SA_RESTART, so the storm interrupts fcntl.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = ignore as extern "C" fn(libc::c_int) as libc::sighandler_t;
        assert_eq!(
            libc::sigaction(libc::SIGUSR2, &action, std::ptr::null_mut()),
            0
        );
    }
    let held = opts("deadline").registry(&HOLDER).lock().unwrap();
    let timeout = Duration::from_millis(300);
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            tx.send(gettid()).unwrap();
            let started = Instant::now();
            let r = opts("deadline").timeout(timeout).lock().map(drop);
            stop.store(true, Ordering::Release);
            (r, started.elapsed())
        });
        let tid = rx.recv().unwrap();
        let pid = std::process::id() as libc::pid_t;
        let mut sent = 0u32;
        while !stop.load(Ordering::Acquire) {
            // SAFETY: tgkill to a thread of this process, which has the
            // do-nothing SIGUSR2 handler; ESRCH once it has ended is fine.
            if unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, libc::SIGUSR2) } == 0 {
                sent += 1;
            }
            std::thread::sleep(Duration::from_micros(300));
        }
        let (r, waited) = waiter.join().unwrap();
        assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
        assert!(waited >= timeout, "gave up after {waited:?}");
        assert!(waited < PATIENCE, "only after {waited:?}");
        assert!(sent > 10, "only {sent} interruptions sent");
    });
    drop(held);
    let other = Registry::new();
    let free = opts("deadline").registry(&other).try_lock();
    assert!(free.is_ok(), "nothing was left holding it: {free:?}");
}
