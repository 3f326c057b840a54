//! An uncontended in-process `lock_async` makes no system call, for
//! `LockOptions` and `StaticLock` alike: the test runs the acquisitions in a
//! child process under a seccomp filter that kills the process at its first
//! system call other than `exit_group`.

use std::future::Future;
use std::os::unix::process::ExitStatusExt;
use std::pin::pin;
use std::process::Command;
use std::task::{Context, Poll, Waker};

use lockutils_core::{LockOptions, StaticLock};

const CHILD: &str = "LOCKUTILS_TEST_NO_SYSCALLS_CHILD";
const ROUNDS: usize = 1000;

static PINNED: StaticLock = StaticLock::new(LockOptions::new("no-syscalls"));
static STATIC: StaticLock = StaticLock::new(LockOptions::new("no-syscalls-static"));

/// Polls an uncontended acquisition once: it must be ready.
fn ready<F: Future>(f: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(f).poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("an uncontended acquisition was pending"),
    }
}

fn acquisitions() {
    for _ in 0..ROUNDS {
        drop(ready(LockOptions::new("no-syscalls").lock_async()).unwrap());
        drop(ready(STATIC.lock_async()).unwrap());
    }
}

/// From here on, any system call but `exit_group` kills this process
/// (`SIGSYS`), every thread with it.
fn forbid_system_calls() {
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let filter = [
        // The system call's number (`seccomp_data.nr`, at offset 0).
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: libc::SYS_exit_group as u32,
        },
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_KILL_PROCESS),
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at `filter`, both alive across the calls; the
    // filter only restricts this process.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog
            ),
            0,
            "seccomp: {}",
            std::io::Error::last_os_error()
        );
    }
}

fn child() -> ! {
    // Pins the dynamic name's entry, so that no release schedules the
    // registry's sweep (a wake-up of the timer thread); then warms up
    // (first allocations, thread-locals, log call sites).
    drop(PINNED.lock().unwrap());
    acquisitions();
    forbid_system_calls();
    acquisitions();
    // SAFETY: ends the process with status 0, the one call allowed.
    unsafe {
        libc::syscall(libc::SYS_exit_group, 0);
    }
    unreachable!("exit_group returned")
}

#[test]
fn uncontended_in_process_lock_async_makes_no_system_call() {
    if std::env::var_os(CHILD).is_some() {
        child();
    }
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "uncontended_in_process_lock_async_makes_no_system_call",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .status()
        .unwrap();
    assert_eq!(
        status.signal(),
        None,
        "{ROUNDS} rounds of lock_async made a system call (killed by SIGSYS = {})",
        libc::SIGSYS
    );
    assert!(status.success(), "{status:?}");
}
