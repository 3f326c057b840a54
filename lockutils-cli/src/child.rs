//! Running CMD: signal forwarding, waiting, and the exit status.
//!
//! The forwarded signals are blocked in every thread (the mask is set before
//! any thread starts and inherited), and one thread receives them with
//! `sigwaitinfo`: no asynchronous signal handler runs at all. That thread
//! forwards each signal to the running child by its pid. The child is reaped
//! only after the supervisor has stopped forwarding (it first waits for the
//! exit with `WNOWAIT`), so a signal can never reach a recycled pid.
//!
//! The child would inherit the blocked mask, so `spawn` unblocks the
//! forwarded signals in it between `fork` and `exec`: CMD starts with the
//! signal mask lockutils itself was started with.

use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::exit;

/// Signals forwarded to CMD.
pub(crate) const FORWARDED: [libc::c_int; 4] =
    [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// `si_code` of a signal the kernel generated, e.g. the terminal's Ctrl-C,
/// which the kernel sends to the whole foreground process group, CMD included.
const SI_KERNEL: libc::c_int = 0x80;

/// What a forwarded signal does while no child runs yet.
#[derive(Clone, Debug)]
pub(crate) enum BeforeChild {
    /// Exit at once with 128+N, printing this message (e.g. while waiting
    /// for a lock: nothing to clean up, the kernel drops a half-taken lock).
    Exit(String),
    /// Remember it: `spawn` then starts nothing and reports it, so the caller
    /// can clean up and exit with 128+N.
    Defer,
    /// Remember it, as `Defer`, and unpark this thread, which is waiting for
    /// something it can abandon (a ZooKeeper lock) and checks
    /// [`Supervisor::pending_signal`] when it wakes.
    #[cfg_attr(not(feature = "zookeeper"), allow(dead_code))]
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

/// Runs one child with signal forwarding. Create it first thing, before any
/// other thread exists.
pub(crate) struct Supervisor {
    shared: Arc<Shared>,
    /// The signals blocked here and received by the signal thread.
    set: libc::sigset_t,
}

/// The outcome of [`Supervisor::spawn`].
pub(crate) enum Spawned {
    /// CMD runs.
    Child(Child),
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

impl Supervisor {
    /// Blocks the forwarded signals in the calling thread (and so in every
    /// thread started later) and starts the thread that receives them.
    pub(crate) fn start(before_child: BeforeChild) -> io::Result<Self> {
        let set = signal_set();
        // SAFETY: `set` is an initialised signal set; the old mask is not
        // asked for.
        let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if r != 0 {
            return Err(io::Error::from_raw_os_error(r));
        }
        let shared = Arc::new(Shared {
            phase: Mutex::new(Phase::NoChild(None)),
            before_child: Mutex::new(before_child),
        });
        let receiver = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("lockutils-signals".into())
            .spawn(move || receive_signals(&receiver, set))?;
        Ok(Supervisor { shared, set })
    }

    /// Changes what a forwarded signal does until CMD starts.
    #[cfg_attr(not(feature = "zookeeper"), allow(dead_code))]
    pub(crate) fn set_before_child(&self, before_child: BeforeChild) {
        *self.shared.before_child() = before_child;
    }

    /// The forwarded signal that arrived before CMD started, if one did (in
    /// the `Defer` and `Wake` modes).
    #[cfg_attr(not(feature = "zookeeper"), allow(dead_code))]
    pub(crate) fn pending_signal(&self) -> Option<libc::c_int> {
        match *self.shared.phase() {
            Phase::NoChild(pending) => pending,
            _ => None,
        }
    }

    /// A handle that signals CMD from another thread while it runs.
    #[cfg_attr(not(feature = "zookeeper"), allow(dead_code))]
    pub(crate) fn child_signaller(&self) -> ChildSignaller {
        ChildSignaller(Arc::clone(&self.shared))
    }

    /// Starts `cmd`, unless a forwarded signal already arrived.
    pub(crate) fn spawn(&self, cmd: &mut Command) -> io::Result<Spawned> {
        let set = self.set;
        // SAFETY: the closure runs in the child between fork and exec and
        // only calls pthread_sigmask, which is async-signal-safe, on a set
        // initialised before the fork.
        unsafe {
            cmd.pre_exec(move || {
                let r = libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
                if r == 0 {
                    Ok(())
                } else {
                    Err(io::Error::from_raw_os_error(r))
                }
            });
        }
        let mut phase = self.shared.phase();
        if let Phase::NoChild(Some(sig)) = *phase {
            return Ok(Spawned::Interrupted(sig));
        }
        let child = cmd.spawn()?;
        *phase = Phase::Running(child.id() as libc::pid_t);
        Ok(Spawned::Child(child))
    }

    /// Waits for the child to exit, stops forwarding, then reaps it.
    pub(crate) fn wait(&self, mut child: Child) -> io::Result<ExitStatus> {
        let pid = child.id() as libc::id_t;
        loop {
            // SAFETY: `info` is a valid siginfo_t for the kernel to fill in;
            // WNOWAIT leaves the child unreaped, so its pid stays ours.
            let r = unsafe {
                let mut info: libc::siginfo_t = std::mem::zeroed();
                libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOWAIT)
            };
            if r == 0 {
                break;
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                break; // `child.wait()` below reports the real problem, if any.
            }
        }
        *self.shared.phase() = Phase::Done;
        child.wait()
    }
}

/// Sends signals to the running CMD from any thread; see
/// [`Supervisor::child_signaller`].
#[derive(Clone)]
#[cfg_attr(not(feature = "zookeeper"), allow(dead_code))]
pub(crate) struct ChildSignaller(Arc<Shared>);

#[cfg_attr(not(feature = "zookeeper"), allow(dead_code))]
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

fn receive_signals(shared: &Shared, set: libc::sigset_t) {
    loop {
        // SAFETY: `set` is initialised and `info` is a valid siginfo_t for
        // the kernel to fill in.
        let (sig, info) = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            (libc::sigwaitinfo(&set, &mut info), info)
        };
        if sig < 0 {
            if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return;
        }
        let mut phase = shared.phase();
        match &mut *phase {
            Phase::NoChild(pending) => match &*shared.before_child() {
                BeforeChild::Exit(message) => {
                    eprintln!("lockutils: {message} (signal {sig})");
                    std::process::exit(128 + sig);
                }
                BeforeChild::Defer => {
                    pending.get_or_insert(sig);
                }
                BeforeChild::Wake(thread) => {
                    pending.get_or_insert(sig);
                    thread.unpark();
                }
            },
            Phase::Running(pid) => {
                // A terminal's Ctrl-C (or Ctrl-\, hang-up) already reached CMD,
                // which runs in our process group: sending it again could cut
                // short CMD's own handling of the first one.
                if info.si_code != SI_KERNEL {
                    // SAFETY: kill has no memory arguments; the child is not
                    // reaped while the phase is `Running`, so `pid` is ours.
                    unsafe { libc::kill(*pid, sig) };
                }
            }
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
        eprintln!("lockutils: cannot run {program}: command not found (check the name and PATH)");
        exit::NOT_FOUND
    } else {
        eprintln!("lockutils: cannot run {program}: {e}");
        exit::CANNOT_EXECUTE
    }
}
