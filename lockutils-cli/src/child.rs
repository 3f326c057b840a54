//! Running CMD: signal forwarding, waiting, and the exit status.
//!
//! The forwarded signals and `SIGCHLD` are blocked in every thread (the
//! mask is set before any thread starts and inherited), and received with
//! `sigwaitinfo`: no asynchronous signal handler runs at all. While CMD
//! runs, the thread that started it waits for both at once, forwarding each
//! signal to CMD by its pid until `SIGCHLD` says CMD has exited; no other
//! thread is needed. Before CMD starts, a forwarded signal stays pending
//! and stops CMD from being started, unless the caller has something to
//! abandon meanwhile (a lock it waits for): then
//! [`Supervisor::receive_in_background`] starts one thread that receives
//! them at once. CMD is reaped only after forwarding has stopped (the exit
//! is first seen with `WNOWAIT`), so a signal can never reach a recycled
//! pid.
//!
//! CMD starts with the signal mask lockutils itself was started with.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::exit;
use crate::output::message;

/// Signals forwarded to CMD.
pub(crate) const FORWARDED: [libc::c_int; 4] =
    [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// `si_code` of a signal the kernel generated, e.g. the terminal's Ctrl-C,
/// which the kernel sends to the whole foreground process group, CMD included.
const SI_KERNEL: libc::c_int = 0x80;

/// What a forwarded signal does while no child runs yet.
#[derive(Clone, Debug)]
pub(crate) enum BeforeChild {
    /// Remember it: `spawn` then starts nothing and reports it, so the caller
    /// can clean up and exit with 128+N.
    Defer,
    /// Remember it, as `Defer`, and unpark this thread, which is waiting for
    /// something it can abandon (a lock) and checks
    /// [`Supervisor::pending_signal`] when it wakes. Signals are seen at
    /// once only after [`Supervisor::receive_in_background`].
    Wake(std::thread::Thread),
}

enum Phase {
    NoChild(Option<libc::c_int>),
    Running(libc::pid_t),
    Done,
}

struct Shared {
    phase: Mutex<Phase>,
    /// Locked only while `phase` is locked, or alone.
    before_child: Mutex<BeforeChild>,
}

impl Shared {
    fn phase(&self) -> MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn before_child(&self) -> MutexGuard<'_, BeforeChild> {
        self.before_child.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// CMD: program, arguments, and what it gets besides this process's
/// environment.
pub(crate) struct Cmd<'a> {
    /// Program (searched in `PATH`) and arguments; never empty.
    pub(crate) argv: &'a [OsString],
    /// Variables set for CMD.
    pub(crate) env: Vec<(&'a OsStr, OsString)>,
    /// Kill CMD (`SIGKILL`) if lockutils dies first, even by `SIGKILL`
    /// (`PR_SET_PDEATHSIG`, Linux): for a CMD that must not outlive a lock.
    /// Only CMD's own process: the processes it starts do not inherit this.
    pub(crate) die_with_parent: bool,
}

/// Runs one child with signal forwarding. Create it first thing, before any
/// other thread exists.
pub(crate) struct Supervisor {
    shared: Arc<Shared>,
    /// The forwarded signals, blocked here.
    set: libc::sigset_t,
    /// The mask this process was started with, CMD's.
    original_mask: libc::sigset_t,
    /// Set once the background receiver runs (or could not be started).
    receiver: OnceLock<io::Result<()>>,
}

/// The outcome of [`Supervisor::spawn`].
pub(crate) enum Spawned {
    /// CMD runs, with this pid.
    Child(libc::pid_t),
    /// A forwarded signal arrived before CMD could start; it was not started.
    Interrupted(libc::c_int),
}

/// The forwarded signals, except those this process was started with set to
/// be ignored (`nohup`, background jobs of a non-interactive shell): they
/// stay ignored, for lockutils and for CMD, which inherits that.
fn signal_set() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set it is given; sigaddset only
    // adds valid signal numbers to an initialised set; sigaction with a null
    // new action only reads the current one into `old`.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in FORWARDED {
            let mut old: libc::sigaction = std::mem::zeroed();
            let ignored = libc::sigaction(sig, std::ptr::null(), &mut old) == 0
                && old.sa_sigaction == libc::SIG_IGN;
            if !ignored {
                libc::sigaddset(&mut set, sig);
            }
        }
        set
    }
}

/// `set` plus `SIGCHLD`.
fn with_sigchld(set: &libc::sigset_t) -> libc::sigset_t {
    let mut with = *set;
    // SAFETY: `with` is an initialised set; SIGCHLD is a valid signal.
    unsafe { libc::sigaddset(&mut with, libc::SIGCHLD) };
    with
}

/// Waits for a signal of `set`; `None` on an error other than `EINTR`.
fn wait_signal(set: &libc::sigset_t) -> Option<(libc::c_int, libc::siginfo_t)> {
    loop {
        // SAFETY: `set` is initialised and `info` is a valid siginfo_t for
        // the kernel to fill in.
        let (sig, info) = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            (libc::sigwaitinfo(set, &mut info), info)
        };
        if sig >= 0 {
            return Some((sig, info));
        }
        if io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return None;
        }
    }
}

/// A signal of `set` already pending, taken without waiting.
fn take_pending(set: &libc::sigset_t) -> Option<libc::c_int> {
    let now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `set` is initialised; a null info is allowed; `now` is valid.
    let sig = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &now) };
    (sig > 0).then_some(sig)
}

impl Supervisor {
    /// Blocks the forwarded signals and `SIGCHLD` in the calling thread (and
    /// so in every thread started later). No thread is started.
    pub(crate) fn start(before_child: BeforeChild) -> io::Result<Self> {
        let set = signal_set();
        let blocked = with_sigchld(&set);
        // SAFETY: `blocked` is an initialised signal set; `original_mask` is
        // a set for the call to fill in.
        let original_mask = unsafe {
            let mut original_mask: libc::sigset_t = std::mem::zeroed();
            let r = libc::pthread_sigmask(libc::SIG_BLOCK, &blocked, &mut original_mask);
            if r != 0 {
                return Err(io::Error::from_raw_os_error(r));
            }
            original_mask
        };
        Ok(Supervisor {
            shared: Arc::new(Shared {
                phase: Mutex::new(Phase::NoChild(None)),
                before_child: Mutex::new(before_child),
            }),
            set,
            original_mask,
            receiver: OnceLock::new(),
        })
    }

    /// Starts (once) the thread that receives forwarded signals at once,
    /// for a caller about to wait for something it can abandon; until
    /// then, they stay pending until `spawn` or `wait`.
    pub(crate) fn receive_in_background(&self) -> io::Result<()> {
        let started = self.receiver.get_or_init(|| {
            let (shared, set) = (Arc::clone(&self.shared), self.set);
            std::thread::Builder::new()
                .name("lockutils-signals".into())
                .spawn(move || receive_signals(&shared, set))
                .map(drop)
        });
        match started {
            Ok(()) => Ok(()),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        }
    }

    /// Changes what a forwarded signal does until CMD starts.
    pub(crate) fn set_before_child(&self, before_child: BeforeChild) {
        *self.shared.before_child() = before_child;
    }

    /// The forwarded signal that arrived before CMD started, if one did and
    /// was received (see [`Supervisor::receive_in_background`]).
    pub(crate) fn pending_signal(&self) -> Option<libc::c_int> {
        match *self.shared.phase() {
            Phase::NoChild(pending) => pending,
            _ => None,
        }
    }

    /// A handle that signals CMD from another thread while it runs.
    pub(crate) fn child_signaller(&self) -> ChildSignaller {
        ChildSignaller(Arc::clone(&self.shared))
    }

    /// Starts `cmd`, unless a forwarded signal already arrived.
    pub(crate) fn spawn(&self, cmd: &Cmd<'_>) -> io::Result<Spawned> {
        let mut phase = self.shared.phase();
        if let Phase::NoChild(Some(sig)) = *phase {
            return Ok(Spawned::Interrupted(sig));
        }
        if let Some(sig) = take_pending(&self.set) {
            *phase = Phase::NoChild(Some(sig));
            return Ok(Spawned::Interrupted(sig));
        }
        let pid = start_process(cmd, &self.original_mask)?;
        *phase = Phase::Running(pid);
        Ok(Spawned::Child(pid))
    }

    /// Waits for the child to exit, forwarding signals to it, stops
    /// forwarding, then reaps it.
    pub(crate) fn wait(&self, pid: libc::pid_t) -> io::Result<ExitStatus> {
        let set = with_sigchld(&self.set);
        loop {
            let Some((sig, info)) = wait_signal(&set) else {
                wait_unreaped(pid);
                break;
            };
            if sig == libc::SIGCHLD {
                if has_exited(pid) {
                    break;
                }
            } else {
                forward(pid, sig, &info);
            }
        }
        *self.shared.phase() = Phase::Done;
        let mut status = 0;
        loop {
            // SAFETY: `status` is a valid int for the kernel to fill in;
            // `pid` is our child.
            if unsafe { libc::waitpid(pid, &mut status, 0) } == pid {
                return Ok(ExitStatus::from_raw(status));
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(e);
            }
        }
    }
}

/// Starts CMD without a `fork` (see the `spawn` module).
#[cfg(target_os = "linux")]
fn start_process(cmd: &Cmd<'_>, mask: &libc::sigset_t) -> io::Result<libc::pid_t> {
    let env: Vec<(&OsStr, &OsStr)> = cmd.env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
    crate::spawn::spawn(&crate::spawn::Start {
        argv: cmd.argv,
        env: &env,
        mask: *mask,
        die_with_parent: cmd.die_with_parent,
    })
}

/// Starts CMD with `fork` and `exec`, restoring the signal mask between.
#[cfg(not(target_os = "linux"))]
fn start_process(cmd: &Cmd<'_>, mask: &libc::sigset_t) -> io::Result<libc::pid_t> {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new(&cmd.argv[0]);
    command.args(&cmd.argv[1..]);
    for (key, value) in &cmd.env {
        command.env(key, value);
    }
    let mask = *mask;
    // SAFETY: the closure runs in the child between fork and exec and only
    // calls pthread_sigmask, which is async-signal-safe, on a set
    // initialised before the fork.
    unsafe {
        command.pre_exec(move || {
            match libc::pthread_sigmask(libc::SIG_SETMASK, &mask, std::ptr::null_mut()) {
                0 => Ok(()),
                r => Err(io::Error::from_raw_os_error(r)),
            }
        });
    }
    // The child is reaped by pid in `Supervisor::wait`; `Child` neither
    // kills nor reaps when dropped.
    Ok(command.spawn()?.id() as libc::pid_t)
}

/// Whether child `pid` has exited (left unreaped); also `true` if it cannot
/// be waited for at all, which reaping then reports.
fn has_exited(pid: libc::pid_t) -> bool {
    loop {
        // SAFETY: `info` is a valid siginfo_t for the kernel to fill in;
        // WNOWAIT leaves the child unreaped, so its pid stays ours.
        let (r, info) = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let r = libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT | libc::WNOHANG,
            );
            (r, info)
        };
        if r == 0 {
            // SAFETY: filled in by a successful waitid (0 if none exited).
            return unsafe { info.si_pid() } != 0;
        }
        if io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return true;
        }
    }
}

/// Waits until child `pid` has exited, leaving it unreaped (`WNOWAIT`).
/// Errors other than `EINTR` end the wait; reaping then reports them.
fn wait_unreaped(pid: libc::pid_t) {
    loop {
        // SAFETY: `info` is a valid siginfo_t for the kernel to fill in;
        // WNOWAIT leaves the child unreaped, so its pid stays ours.
        let r = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}

/// Forwards `sig` to the running, unreaped child `pid`.
fn forward(pid: libc::pid_t, sig: libc::c_int, info: &libc::siginfo_t) {
    // A terminal's Ctrl-C (or Ctrl-\, hang-up) already reached CMD, which
    // runs in our process group: sending it again could cut short CMD's own
    // handling of the first one.
    if info.si_code != SI_KERNEL {
        // SAFETY: kill has no memory arguments; the child is not reaped
        // while it counts as running, so `pid` is ours.
        unsafe { libc::kill(pid, sig) };
    }
}

/// Sends signals to the running CMD from any thread; see
/// [`Supervisor::child_signaller`].
#[derive(Clone)]
pub(crate) struct ChildSignaller(Arc<Shared>);

impl ChildSignaller {
    /// Sends `sig` to CMD if it runs, returning its pid. CMD is not reaped
    /// while it counts as running, so its pid cannot have been reused.
    pub(crate) fn send(&self, sig: libc::c_int) -> Option<libc::pid_t> {
        match *self.0.phase() {
            // SAFETY: kill has no memory arguments; the pid is our unreaped child.
            Phase::Running(pid) if unsafe { libc::kill(pid, sig) } == 0 => Some(pid),
            _ => None,
        }
    }
}

/// The background receiver: before CMD runs, records (and wakes the
/// waiter); while it runs, forwards, as the waiting thread does too.
fn receive_signals(shared: &Shared, set: libc::sigset_t) {
    while let Some((sig, info)) = wait_signal(&set) {
        let mut phase = shared.phase();
        match &mut *phase {
            Phase::NoChild(pending) => {
                pending.get_or_insert(sig);
                if let BeforeChild::Wake(thread) = &*shared.before_child() {
                    thread.unpark();
                }
            }
            Phase::Running(pid) => forward(*pid, sig, &info),
            Phase::Done => {}
        }
    }
}

/// The exit code for CMD's status: its own code, or 128+N if a signal N
/// killed it.
pub(crate) fn exit_code(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => 128 + sig,
        (None, None) => exit::FAILURE,
    }
}

/// The exit code and message for a CMD that could not be started: 127 when
/// it was not found, 126 otherwise (as shells do).
pub(crate) fn spawn_failure(program: &std::ffi::OsStr, e: &io::Error) -> i32 {
    let program = program.to_string_lossy();
    if e.kind() == io::ErrorKind::NotFound {
        message!("cannot run {program}: command not found (check the name and PATH)");
        exit::NOT_FOUND
    } else {
        message!("cannot run {program}: {e}");
        exit::CANNOT_EXECUTE
    }
}
