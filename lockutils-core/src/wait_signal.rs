//! Opt-in: timed file waits sleep in `F_OFD_SETLKW` on the caller's own
//! thread, called off at the deadline by a signal the program gives lockutils.
//!
//! Without it, a timed wait sleeps on a waiter thread ([`file_wait`]) and the
//! hand-off costs one more thread wake-up. A blocked `F_OFD_SETLKW` ends only
//! when it is granted or a signal interrupts it, and a signal handler is a
//! process-wide resource, so lockutils takes one only when the program calls
//! [`interrupt_timed_waits_with`]. The handler does nothing: its only effect is
//! that the interrupted `fcntl` returns `EINTR`.
//!
//! Each such wait arms a POSIX timer that sends the signal to the waiting
//! thread alone (`SIGEV_THREAD_ID`) at the deadline, and every millisecond
//! after it: a signal that lands between two `fcntl` calls (after an `EINTR`
//! from another signal) is not lost for good, the next one comes 1 ms later.
//! The timer is deleted before the wait returns, which also discards a signal
//! of it still pending. An interrupted wait leaves no waiter in the kernel,
//! so there is no orphan to account for.
//!
//! A wait falls back to the waiter thread whenever the signal cannot reach it:
//! the calling thread blocks the signal, or the program replaced the handler.
//!
//! [`file_wait`]: crate::file_wait

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The signal given by [`interrupt_timed_waits_with`]; 0 until then.
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// Serializes installations, so two threads opting in at once cannot both
/// see no handler and install twice.
static INSTALL: Mutex<()> = Mutex::new(());

/// How often the timer fires again after the deadline, until the wait sees it.
const REFIRE: Duration = Duration::from_millis(1);

/// Why [`interrupt_timed_waits_with`] refused a signal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WaitSignalError {
    /// Not a signal an application may use for this.
    #[error(
        "signal {signal} cannot interrupt lockutils' timed waits: use a real-time signal \
         (libc::SIGRTMIN() to libc::SIGRTMAX()) or SIGUSR1/SIGUSR2 that nothing else in the \
         program handles"
    )]
    NotAllowed {
        /// The signal number given.
        signal: i32,
    },
    /// The program (or another library) already handles or ignores it.
    #[error(
        "signal {signal} already has a handler or is ignored in this process: lockutils \
         installs its handler only on a signal left at its default action; pick another \
         real-time signal"
    )]
    InUse {
        /// The signal number given.
        signal: i32,
    },
    /// Timed waits already use another signal.
    #[error(
        "timed waits are already interrupted by signal {current}; a process uses one signal \
         for them (asked for {signal})"
    )]
    AlreadyUsing {
        /// The signal in use.
        current: i32,
        /// The signal number given.
        signal: i32,
    },
    /// `sigaction` failed.
    #[error("could not install the handler of signal {signal}: {source}")]
    Install {
        /// The signal number given.
        signal: i32,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

/// The handler: nothing to do, the interrupted `fcntl` returns `EINTR`.
extern "C" fn on_signal(_: libc::c_int) {}

fn handler_address() -> libc::sighandler_t {
    on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t
}

/// The current disposition of `signal`.
fn disposition(signal: i32) -> io::Result<libc::sighandler_t> {
    // SAFETY: all-zero bytes are a valid `sigaction`; with a null new action,
    // `sigaction` only writes the current one into `old`, which outlives the
    // call.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::sigaction(signal, std::ptr::null(), &mut old) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(old.sa_sigaction)
}

/// Opts in: from now on, a timed acquisition of a lock file (a
/// [`LockOptions::timeout`](crate::LockOptions::timeout), `#[synchronized]` with
/// `timeout` on a plain `fn`) sleeps in `F_OFD_SETLKW` on the calling thread and
/// is interrupted by `signal` at its deadline, instead of waiting on a waiter
/// thread. Hand-offs then cost what a blocking acquisition's do.
///
/// lockutils installs a handler that does nothing on `signal` (without
/// `SA_RESTART`), and sends it only to a thread inside such a wait, by a timer
/// deleted before the wait returns. Give it a signal nothing else in the
/// program uses: a real-time one (`libc::SIGRTMIN()` to `libc::SIGRTMAX()`) or
/// `SIGUSR1`/`SIGUSR2`. It must be at its default action; calling again with the
/// same signal is a no-op. Async acquisitions are not affected: an executor
/// thread must never sleep in the kernel.
///
/// Linux only (elsewhere timed waits retry, see docs/design.md).
///
/// ```
/// lockutils_core::interrupt_timed_waits_with(libc::SIGRTMIN() + 3).unwrap();
/// assert_eq!(lockutils_core::timed_wait_signal(), Some(libc::SIGRTMIN() + 3));
/// ```
pub fn interrupt_timed_waits_with(signal: i32) -> Result<(), WaitSignalError> {
    let allowed = (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&signal)
        || signal == libc::SIGUSR1
        || signal == libc::SIGUSR2;
    if !allowed {
        return Err(WaitSignalError::NotAllowed { signal });
    }
    let _serial = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    match SIGNAL.load(Ordering::Acquire) {
        0 => {}
        current if current == signal => return Ok(()),
        current => return Err(WaitSignalError::AlreadyUsing { current, signal }),
    }
    let install = |source| WaitSignalError::Install { signal, source };
    if disposition(signal).map_err(install)? != libc::SIG_DFL {
        return Err(WaitSignalError::InUse { signal });
    }
    // SAFETY: all-zero bytes are a valid `sigaction` (empty mask, no flags);
    // the handler is an `extern "C" fn(c_int)` that touches nothing, so it is
    // async-signal-safe, and it lives for the whole program. No SA_RESTART:
    // the point is that `fcntl` returns EINTR.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = handler_address();
    action.sa_flags = libc::SA_ONSTACK;
    let r = unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) };
    if r != 0 {
        return Err(install(io::Error::last_os_error()));
    }
    SIGNAL.store(signal, Ordering::Release);
    tracing::debug!(signal, "timed file waits are interrupted by a signal");
    Ok(())
}

/// The signal that interrupts timed waits, if the program opted in.
pub fn timed_wait_signal() -> Option<i32> {
    match SIGNAL.load(Ordering::Acquire) {
        0 => None,
        signal => Some(signal),
    }
}

/// The signal to use for a wait on this thread now: opted in, still our
/// handler, and not blocked by the thread.
fn usable_signal() -> Option<i32> {
    let signal = timed_wait_signal()?;
    if disposition(signal).ok()? != handler_address() {
        return None;
    }
    // SAFETY: all-zero bytes are a valid (empty) `sigset_t`; with a null new
    // set, `pthread_sigmask` only writes the thread's mask into `mask`.
    let mut mask: libc::sigset_t = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask) };
    // SAFETY: `mask` is initialized above.
    (r == 0 && unsafe { libc::sigismember(&mask, signal) } == 0).then_some(signal)
}

/// A POSIX timer that sends the signal to this thread; deleted on drop.
struct Timer(libc::timer_t);

impl Timer {
    /// Sends `signal` to the calling thread after `after`, then every
    /// [`REFIRE`].
    fn arm(signal: i32, after: Duration) -> io::Result<Timer> {
        // SAFETY: all-zero bytes are a valid `sigevent`; the fields set
        // below ask for `signal` sent to this thread (a live thread id of
        // this process, from `gettid`).
        let mut event: libc::sigevent = unsafe { std::mem::zeroed() };
        event.sigev_notify = libc::SIGEV_THREAD_ID;
        event.sigev_signo = signal;
        event.sigev_notify_thread_id = unsafe { libc::gettid() };
        let mut id: libc::timer_t = std::ptr::null_mut();
        // SAFETY: `event` and `id` outlive the call; the kernel copies the
        // event and writes the new timer's id into `id`.
        if unsafe { libc::timer_create(libc::CLOCK_MONOTONIC, &mut event, &mut id) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let timer = Timer(id);
        // A zero `it_value` would disarm the timer: at least 1 ns.
        let after = after.max(Duration::from_nanos(1));
        let spec = libc::itimerspec {
            it_interval: timespec(REFIRE),
            it_value: timespec(after),
        };
        // SAFETY: `timer.0` is the timer created above (deleted only by
        // `Drop`); `spec` outlives the call; the old value is not asked for.
        if unsafe { libc::timer_settime(timer.0, 0, &spec, std::ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(timer)
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        // SAFETY: `self.0` is a timer this value created and nothing else
        // deletes. Deleting it also drops a signal of it still queued.
        unsafe { libc::timer_delete(self.0) };
    }
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timer").finish_non_exhaustive()
    }
}

fn timespec(d: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: d.subsec_nanos() as _,
    }
}

/// A timed `F_OFD_SETLKW` on the calling thread: `Some(Ok(true))` when
/// granted, `Some(Ok(false))` at the deadline, `None` when this thread cannot
/// be interrupted (not opted in, handler replaced, signal blocked, no timer):
/// the caller then waits on a waiter thread.
pub(crate) fn lock_until(
    fd: BorrowedFd<'_>,
    request: &libc::flock,
    deadline: Instant,
) -> Option<io::Result<bool>> {
    let signal = usable_signal()?;
    let now = Instant::now();
    if now >= deadline {
        return Some(Ok(false));
    }
    let _timer = Timer::arm(signal, deadline - now).ok()?;
    loop {
        // SAFETY: `fd` is open for the borrow, and `request` is a valid
        // `flock` that lives across the call.
        let r = unsafe {
            libc::fcntl(
                fd.as_raw_fd(),
                libc::F_OFD_SETLKW,
                request as *const libc::flock,
            )
        };
        if r == 0 {
            return Some(Ok(true));
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Some(Err(err));
        }
        // Our timer, or another signal: only the clock says which.
        if Instant::now() >= deadline {
            return Some(Ok(false));
        }
    }
}
