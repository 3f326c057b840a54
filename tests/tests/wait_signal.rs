//! Opt-in signal interruption of timed file waits
//! ([`lockutils::interrupt_timed_waits_with`]): nothing is installed until the
//! program asks; once it has, a timed wait sleeps in `F_OFD_SETLKW` on the
//! calling thread itself (no waiter thread), keeps its deadline, leaves no
//! request in the kernel when it gives up, and falls back to a waiter thread
//! where the signal cannot reach it. Async waits never block their thread.
//!
//! One test, in steps, in its own binary: signal dispositions are per
//! process, and the first step needs a process that has not opted in.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lockutils::{Error, LockOptions, WaitSignalError};
use lockutils_core::file::kernel_waits;
use lockutils_tests::kernel::blocked_waiters;
use lockutils_tests::{block_on, wait_until_blocked, Holder, Spawned};

const HOLDER: &str = env!("CARGO_BIN_EXE_lockutils-holder");
const PATIENCE: Duration = Duration::from_secs(20);

/// A child holding `name` in `dir` until killed.
fn hold_in_child(name: &str, dir: &Path) -> Spawned {
    Holder::new(HOLDER, name, dir)
        .hold_ms(600_000)
        .spawn_ready(&dir.join(format!("{name}.ready")), PATIENCE)
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn gettid() -> i32 {
    // SAFETY: `gettid` has no preconditions.
    unsafe { libc::gettid() }
}

/// Whether thread `tid` of this process sleeps in `fcntl(_, F_OFD_SETLKW, _)`.
fn sleeps_in_setlkw(tid: i32) -> bool {
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

/// Every signal's handler address (or SIG_DFL/SIG_IGN), to compare.
fn dispositions() -> Vec<libc::sighandler_t> {
    (1..=libc::SIGRTMAX())
        .map(|signal| {
            // SAFETY: a zeroed `sigaction` is valid, and a null new action
            // only reads the current one into `old`.
            let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
            unsafe { libc::sigaction(signal, std::ptr::null(), &mut old) };
            old.sa_sigaction
        })
        .collect()
}

extern "C" fn program_handler(_: libc::c_int) {}

fn set_disposition(signal: i32, handler: libc::sighandler_t) {
    // SAFETY: a zeroed `sigaction` is valid; the handler is SIG_IGN, SIG_DFL
    // or an `extern "C" fn(c_int)` doing nothing.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = handler;
    assert_eq!(
        unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) },
        0
    );
}

/// How a timed wait ended, and after how long.
type Outcome = (Result<(), Error>, Duration);

/// A timed `lock()` on another thread; returns its tid and how it ended.
fn timed_wait_on_thread(
    name: &'static str,
    dir: &Path,
    timeout: Duration,
    block_signal: Option<i32>,
) -> (i32, std::thread::JoinHandle<Outcome>) {
    let dir = dir.to_owned();
    let tid = Arc::new(AtomicI32::new(0));
    let tid_out = Arc::clone(&tid);
    let waiter = std::thread::spawn(move || {
        if let Some(signal) = block_signal {
            // SAFETY: zeroed then filled sigset; only this thread's mask
            // changes.
            let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
            unsafe {
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, signal);
                libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            }
        }
        tid_out.store(gettid(), Ordering::Release);
        let started = Instant::now();
        let r = LockOptions::new(name)
            .external(true)
            .lock_path(&dir)
            .timeout(timeout)
            .lock()
            .map(drop);
        (r, started.elapsed())
    });
    wait_for("the waiter thread started", || {
        tid.load(Ordering::Acquire) != 0
    });
    (tid.load(Ordering::Acquire), waiter)
}

#[test]
fn timed_waits_sleep_on_the_calling_thread_once_the_program_gives_a_signal() {
    let dir = tempfile::tempdir().unwrap();
    let signal = libc::SIGRTMIN() + 2;

    // 1. Not opted in: a timed wait sleeps on a waiter thread, and lockutils
    //    installs no handler anywhere.
    let before = dispositions();
    assert_eq!(lockutils::timed_wait_signal(), None);
    let holder = hold_in_child("plain", dir.path());
    let (tid, waiter) = timed_wait_on_thread("plain", dir.path(), Duration::from_secs(60), None);
    wait_until_blocked(&dir.path().join("plain"), PATIENCE);
    assert_eq!(kernel_waits(), 1, "step 1: the wait is on a waiter thread");
    assert!(!sleeps_in_setlkw(tid), "step 1: the caller is not in fcntl");
    holder.kill();
    waiter.join().unwrap().0.unwrap();
    assert_eq!(dispositions(), before, "step 1: no handler was installed");

    // 2. Refusals, each typed: signals not for applications, and signals the
    //    program already handles or ignores.
    for bad in [libc::SIGSEGV, libc::SIGKILL, libc::SIGINT, 0, 1000] {
        let r = lockutils::interrupt_timed_waits_with(bad);
        assert!(
            matches!(r, Err(WaitSignalError::NotAllowed { signal }) if signal == bad),
            "step 2: {bad}: {r:?}"
        );
    }
    let handled = libc::SIGRTMIN() + 4;
    set_disposition(
        handled,
        program_handler as extern "C" fn(libc::c_int) as libc::sighandler_t,
    );
    let ignored = libc::SIGRTMIN() + 5;
    set_disposition(ignored, libc::SIG_IGN);
    for taken in [handled, ignored] {
        let r = lockutils::interrupt_timed_waits_with(taken);
        assert!(
            matches!(r, Err(WaitSignalError::InUse { signal }) if signal == taken),
            "step 2: {taken}: {r:?}"
        );
        assert!(r
            .unwrap_err()
            .to_string()
            .contains("another real-time signal"));
    }
    assert_eq!(
        lockutils::timed_wait_signal(),
        None,
        "step 2: nothing taken"
    );

    // 3. Opting in; again with the same signal is a no-op, another is refused.
    lockutils::interrupt_timed_waits_with(signal).unwrap();
    lockutils::interrupt_timed_waits_with(signal).unwrap();
    let other = libc::SIGRTMIN() + 6;
    assert!(matches!(
        lockutils::interrupt_timed_waits_with(other),
        Err(WaitSignalError::AlreadyUsing { current, signal: asked }) if current == signal && asked == other
    ));
    assert_eq!(lockutils::timed_wait_signal(), Some(signal));

    // 4. A timed wait now sleeps in F_OFD_SETLKW on the calling thread, with
    //    no waiter thread, and is woken by the release.
    let holder = hold_in_child("own-thread", dir.path());
    let (tid, waiter) =
        timed_wait_on_thread("own-thread", dir.path(), Duration::from_secs(60), None);
    // (A thread preempted inside fcntl before it queues shows the call too:
    // its request in /proc/locks says it is queued.)
    let path = dir.path().join("own-thread");
    wait_for("the caller sleeps in F_OFD_SETLKW", || {
        sleeps_in_setlkw(tid) && blocked_waiters(&path) == 1
    });
    assert_eq!(kernel_waits(), 0, "step 4: no waiter thread");
    holder.kill();
    waiter.join().unwrap().0.unwrap();

    // 5. The deadline ends it, and nothing is left blocked in the kernel (no
    //    orphan to take the lock for nobody).
    let holder = hold_in_child("deadline", dir.path());
    let path = dir.path().join("deadline");
    let timeout = Duration::from_millis(300);
    let (tid, waiter) = timed_wait_on_thread("deadline", dir.path(), timeout, None);
    wait_for("the caller sleeps in F_OFD_SETLKW", || {
        sleeps_in_setlkw(tid) && blocked_waiters(&path) == 1
    });
    let (r, waited) = waiter.join().unwrap();
    assert!(matches!(r, Err(Error::Timeout { .. })), "step 5: {r:?}");
    assert!(waited >= timeout, "step 5: gave up after {waited:?}");
    assert!(waited < timeout + PATIENCE, "step 5: only after {waited:?}");
    assert_eq!(
        blocked_waiters(&path),
        0,
        "step 5: a request stayed blocked"
    );
    assert_eq!(kernel_waits(), 0, "step 5: an orphan was left");
    holder.kill();
    // The lock is free at once for another open file.
    let free = LockOptions::new("deadline")
        .external(true)
        .lock_path(dir.path())
        .timeout(Duration::ZERO)
        .lock();
    drop(free.unwrap());

    // 6. Other signals that interrupt the wait neither end it early nor
    //    keep it past its deadline (the wait goes back to the kernel).
    set_disposition(
        libc::SIGUSR1,
        program_handler as extern "C" fn(libc::c_int) as libc::sighandler_t,
    );
    let holder = hold_in_child("noisy", dir.path());
    let timeout = Duration::from_millis(500);
    let (tid, waiter) = timed_wait_on_thread("noisy", dir.path(), timeout, None);
    let stop = Arc::new(AtomicBool::new(false));
    let noise = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut sent = 0u32;
            while !stop.load(Ordering::Acquire) {
                // SAFETY: tgkill to a thread of this process; SIGUSR1 has the
                // do-nothing handler installed above.
                if unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, libc::SIGUSR1) }
                    == 0
                {
                    sent += 1;
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            sent
        })
    };
    let (r, waited) = waiter.join().unwrap();
    stop.store(true, Ordering::Release);
    let sent = noise.join().unwrap();
    assert!(matches!(r, Err(Error::Timeout { .. })), "step 6: {r:?}");
    assert!(waited >= timeout, "step 6: gave up after {waited:?}");
    assert!(waited < timeout + PATIENCE, "step 6: only after {waited:?}");
    assert!(sent > 20, "step 6: only {sent} signals sent");
    holder.kill();

    // 7. A thread that blocks the signal waits on a waiter thread instead,
    //    and still keeps its deadline.
    let holder = hold_in_child("blocked", dir.path());
    let timeout = Duration::from_millis(300);
    let (tid, waiter) = timed_wait_on_thread("blocked", dir.path(), timeout, Some(signal));
    wait_for("the wait is on a waiter thread", || kernel_waits() == 1);
    assert!(!sleeps_in_setlkw(tid), "step 7: the caller is not in fcntl");
    let (r, waited) = waiter.join().unwrap();
    assert!(matches!(r, Err(Error::Timeout { .. })), "step 7: {r:?}");
    assert!(waited >= timeout, "step 7: gave up after {waited:?}");
    holder.kill();
    wait_for("the orphan ended", || kernel_waits() == 0);

    // 8. Async waits never block their thread: still a waiter thread.
    let holder = hold_in_child("async", dir.path());
    let dir_path = dir.path().to_owned();
    let waiter = std::thread::spawn(move || {
        block_on(
            LockOptions::new("async")
                .external(true)
                .lock_path(&dir_path)
                .timeout(Duration::from_secs(60))
                .lock_async(),
        )
        .map(drop)
    });
    wait_for("the async wait is on a waiter thread", || {
        kernel_waits() == 1
    });
    holder.kill();
    waiter.join().unwrap().unwrap();

    // 9. A program that later replaces the handler (here: ignores the
    //    signal, which would never interrupt) gets waiter threads again.
    set_disposition(signal, libc::SIG_IGN);
    let holder = hold_in_child("replaced", dir.path());
    let timeout = Duration::from_millis(300);
    let (tid, waiter) = timed_wait_on_thread("replaced", dir.path(), timeout, None);
    wait_for("the wait is on a waiter thread", || kernel_waits() == 1);
    assert!(!sleeps_in_setlkw(tid), "step 9: the caller is not in fcntl");
    let (r, waited) = waiter.join().unwrap();
    assert!(matches!(r, Err(Error::Timeout { .. })), "step 9: {r:?}");
    assert!(waited >= timeout, "step 9: gave up after {waited:?}");
    holder.kill();
}
