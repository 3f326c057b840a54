//! Fairness of timed and async file waits against blocking waiters in other
//! processes: does a waiter with a deadline get the lock at all while two
//! processes pass it back and forth?
//!
//! # Protocol
//! Two child processes (this binary re-executed with [`CHILD_ENV`] set) each
//! loop: `LockOptions::new("fairness").external(true).lock()` (a blocking
//! wait, `F_OFD_SETLKW` in the calling thread), hold 1 ms, release, and at
//! once ask again. Once both are cycling, the parent makes [`TRIALS`]
//! attempts, rotating `lock()` with `timeout(2 s)` (on a waiter thread),
//! `lock_async()` with `timeout(2 s)` (on a minimal park/unpark executor) and
//! `lock()` with `timeout(2 s)` on a thread the signal given by
//! `interrupt_timed_waits_with` may reach (the caller itself sleeps in
//! `F_OFD_SETLKW`); each attempt that gets the lock holds it 1 ms. It prints how many attempts got the lock within
//! the 2 s and the slowest successful wait. The target is every trial (20 of 20 asked; 21 here, 7 of each kind).
//!
//! Run: `cargo bench -p lockutils-core --bench file_fairness`. Without
//! `--bench` (as `cargo test --benches` runs it) it makes 4 attempts.

use std::future::Future;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use lockutils_core::LockOptions;

const CHILD_ENV: &str = "LOCKUTILS_BENCH_FAIRNESS_DIR";
const NAME: &str = "fairness";
const HOLD: Duration = Duration::from_millis(1);
const TIMEOUT: Duration = Duration::from_secs(2);
const TRIALS: usize = 21;

struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

fn block_on<F: Future>(fut: F) -> F::Output {
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// Blocks or unblocks `signal` on this thread.
fn set_signal_blocked(signal: libc::c_int, blocked: bool) {
    // SAFETY: a zeroed sigset is valid before `sigemptyset`; only this
    // thread's mask changes.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        let how = if blocked {
            libc::SIG_BLOCK
        } else {
            libc::SIG_UNBLOCK
        };
        assert_eq!(libc::pthread_sigmask(how, &set, std::ptr::null_mut()), 0);
    }
}

/// A blocking competitor: holds 1 ms at a time until killed.
fn child_main(dir: PathBuf) {
    let opts = LockOptions::new(NAME).external(true).lock_path(&dir);
    loop {
        let g = opts.lock().expect("competitor lock");
        std::thread::sleep(HOLD);
        drop(g);
    }
}

fn main() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        return child_main(dir.into());
    }
    let full = std::env::args().any(|a| a == "--bench");
    let trials = if full { TRIALS } else { 6 };
    let dir = tempfile::Builder::new()
        .prefix("lockutils-fairness-")
        .tempdir_in(std::env::temp_dir())
        .expect("temp dir");
    let mut children: Vec<_> = (0..2)
        .map(|_| {
            Command::new(std::env::current_exe().expect("current_exe"))
                .env(CHILD_ENV, dir.path())
                .stdin(Stdio::null())
                .spawn()
                .expect("spawn competitor")
        })
        .collect();
    // Let both competitors start cycling.
    std::thread::sleep(Duration::from_millis(200));

    let opts = LockOptions::new(NAME)
        .external(true)
        .lock_path(dir.path())
        .timeout(TIMEOUT);
    // The process opts in; the waiter-thread trials block the signal on
    // this thread, which gives them the waits of a process that did not.
    let signal = libc::SIGRTMIN() + 1;
    lockutils_core::interrupt_timed_waits_with(signal).expect("opt in");
    let (mut got, mut slowest) = ([0usize; 3], Duration::ZERO);
    for i in 0..trials {
        let kind = i % 3;
        set_signal_blocked(signal, kind != 2);
        let started = Instant::now();
        let ok = if kind == 1 {
            block_on(opts.lock_async()).map(|g| {
                std::thread::sleep(HOLD);
                drop(g)
            })
        } else {
            opts.lock().map(|g| {
                std::thread::sleep(HOLD);
                drop(g)
            })
        };
        match ok {
            Ok(()) => {
                got[kind] += 1;
                slowest = slowest.max(started.elapsed());
            }
            Err(e) => assert!(e.is_contention(), "unexpected error: {e}"),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    for mut c in children.drain(..) {
        let _ = c.kill();
        let _ = c.wait();
    }
    let total: usize = got.iter().sum();
    let tried = |kind: usize| (kind..trials).step_by(3).count();
    println!(
        "file_fairness: timed or async waiter against two blocking processes: got the lock within {TIMEOUT:?} in {total} of {trials} trials (timed {} of {}, async {} of {}, timed with a signal {} of {}); slowest success {:.1} ms; target {trials} of {trials}: {}",
        got[0],
        tried(0),
        got[1],
        tried(1),
        got[2],
        tried(2),
        slowest.as_secs_f64() * 1e3,
        if total == trials { "met" } else { "MISSED" }
    );
}
