//! `lockutils hold NAME CMD`: CMD under a named lock, on any backend,
//! through the library's one lock API ([`LockOptions`] and its guards).
//!
//! The lock has the library's identity for NAME and `--prefix`, so the
//! command excludes, and is excluded by, library holders of the same lock
//! (and oslo.concurrency's, kazoo's, tooz's where the backend's layout is
//! theirs). A lock on a backend that can lose it while held (a ZooKeeper
//! session expires, an operator clears it) is watched through the guard's
//! loss API: CMD then gets `SIGTERM` and `hold` exits with [`exit::LOST`],
//! so a script knows CMD may have overlapped with another holder.

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use lockutils_core::backend::{Backend, Capability, Location};
use lockutils_core::{AsyncLockGuard, LockOptions, LOCK_PATH_ENV};

use crate::child::{self, BeforeChild, Cmd, Spawned, Supervisor};
use crate::output::message;
use crate::park::{park_on, park_on_or_wait};
use crate::report::{one_line, LockReport};
use crate::{admin_identity, exit, identity, Failure, HoldArgs};

/// How long `hold` waits before saying who holds the lock, and how often it
/// looks again for a change of holder.
const REPORT_AFTER: Duration = Duration::from_secs(1);

/// How long an interrupted `hold` waits for the backend to forget its queued
/// acquisition before exiting.
const WITHDRAW_WITHIN: Duration = Duration::from_secs(2);

/// How long saying who holds a busy lock may add to a failed acquisition.
const WHO_WITHIN: Duration = Duration::from_secs(1);

/// Takes the lock, runs CMD, releases, and returns the exit code.
pub(crate) fn hold(backend: Arc<dyn Backend>, args: &HoldArgs) -> Result<i32, Failure> {
    // A usage error known from the backend alone: said at once, server or not.
    if args.shared && !backend.capabilities().has(Capability::Shared) {
        return Err(Failure::usage(format!(
            "--shared is not possible with {}: this backend (or its layout) has no shared \
             (reader) locks; drop --shared, or choose a backend that has them",
            backend.url()
        )));
    }
    let identity = identity(&args.name, args.prefix.as_deref())?;
    // Names and places in messages are shown escaped, as in `list`; the
    // lock is looked at under the backend's name for it.
    let shown_name = one_line(&args.name);
    let (identity, place) = match backend.admin() {
        Ok(admin) => {
            let identity = admin_identity(admin, &args.name, &identity)?;
            let place = format!("{} on {}", admin.location(&identity), backend.url());
            (identity, place)
        }
        Err(_) => {
            let place = format!("{identity} on {}", backend.url());
            (identity, place)
        }
    };
    let place = one_line(&place);

    // Before any thread exists (engines start theirs on first use), so that
    // every thread blocks the forwarded signals.
    let supervisor = Supervisor::start(BeforeChild::Defer)
        .map_err(|e| Failure::error(format!("cannot set up signal forwarding: {e}")))?;

    let program = Path::new(&args.command[0])
        .file_name()
        .unwrap_or(args.command[0].as_os_str())
        .to_string_lossy()
        .into_owned();
    // Who takes the lock, for backends that record it (a ZooKeeper
    // candidate's data, readable by every client: not CMD's arguments). The
    // process ends soon after; the string lives until then.
    let caller: &'static str = Box::leak(format!("lockutils hold {program}").into_boxed_str());
    let mut opts = LockOptions::new(&args.name)
        .backend(&*backend)
        .caller(caller);
    if let Some(p) = &args.prefix {
        opts = opts.prefix(p);
    }
    if args.shared {
        opts = opts.shared();
    }
    if args.no_wait {
        opts = opts.blocking(false);
    } else if let Some(t) = args.timeout {
        opts = opts.timeout(t);
    }

    // While waiting, a signal wakes this thread, which withdraws from the
    // queue before exiting. A lock taken at once needs neither the thread
    // that receives signals meanwhile nor the one that says who holds it:
    // a signal that arrived meanwhile is still pending, and stops CMD from
    // starting.
    supervisor.set_before_child(BeforeChild::Wake(std::thread::current()));
    let mut reporter = None;
    let acquired = park_on_or_wait(
        opts.lock_async(),
        || supervisor.pending_signal(),
        || {
            if let Err(e) = supervisor.receive_in_background() {
                message!("cannot receive signals while waiting: {e}");
            }
            if !args.no_wait {
                reporter = Some(Reporter::start(&backend, &identity, &shown_name, &place));
            }
        },
    );
    drop(reporter);
    let guard = match acquired {
        Ok(Ok(g)) => g,
        Ok(Err(e)) if e.kind().is_contention() => {
            let who = holders_within(&backend, &identity, WHO_WITHIN)
                .map(|r| format!("; it is {}", r.holders_sentence()))
                .unwrap_or_default();
            let hint = if args.no_wait {
                "try again later, or wait for it with --timeout DUR"
            } else {
                "try again later, or give a longer --timeout"
            };
            // `-E 0` makes a busy lock a success (skip if busy): say nothing.
            if args.conflict_exit_code != 0 {
                message!("{} ({place}){who}; {hint}", one_line(&e.to_string()));
            }
            return Ok(i32::from(args.conflict_exit_code));
        }
        Ok(Err(e)) => return Err(Failure::from_lock_error(&e)),
        Err(sig) => {
            // The acquisition was dropped; its clean-up (a queued candidate
            // node) is the backend's to finish, and it says when it has.
            let note = if backend.settle(WITHDRAW_WITHIN) {
                ""
            } else {
                "; its queue entry goes when the session ends"
            };
            message!(
                "interrupted while waiting for lock \"{shown_name}\" ({place}) (signal {sig}){note}"
            );
            return Ok(128 + sig);
        }
    };

    if let Some(loss) = AsyncLockGuard::loss(&guard) {
        // Lost before CMD could start: do not start it.
        message!("lost lock \"{shown_name}\" ({place}) before {program} started: {loss}");
        let _ = park_on(AsyncLockGuard::unlock_async(guard), || None);
        return Ok(exit::LOST);
    }

    let cmd = Cmd {
        argv: &args.command,
        env: held_lock_env(&args.name, &guard, args.shared),
        // The backend releases the lock when this process dies: CMD must not
        // go on without it.
        die_with_parent: true,
    };
    let lost = Arc::new(AtomicBool::new(false));
    let code = match supervisor.spawn(&cmd) {
        Ok(Spawned::Child(c)) => {
            let watcher = AsyncLockGuard::lost(&guard).ok().map(|loss| {
                let signaller = supervisor.child_signaller();
                let (lost, what) = (
                    Arc::clone(&lost),
                    format!("lock \"{shown_name}\" ({place})"),
                );
                let program = program.clone();
                LossWatcher::start(loss, move |reason| {
                    lost.store(true, Ordering::Release);
                    match signaller.send(libc::SIGTERM) {
                        Some(pid) => message!(
                            "lost {what} while {program} ran: {reason}; another holder \
                             may have it now; terminating {program} (SIGTERM to pid {pid})"
                        ),
                        None => message!(
                            "lost {what}: {reason}; another holder may have it now; \
                             {program} may have run without it"
                        ),
                    }
                })
            });
            let status = supervisor.wait(c);
            drop(watcher);
            match status {
                Ok(status) => child::exit_code(status),
                Err(e) => {
                    message!("cannot wait for {program}: {e}");
                    exit::FAILURE
                }
            }
        }
        Ok(Spawned::Interrupted(sig)) => 128 + sig,
        Err(e) => child::spawn_failure(&args.command[0], &e),
    };
    let was_lost = lost.load(Ordering::Acquire) || AsyncLockGuard::is_lost(&guard);
    if matches!(AsyncLockGuard::location(&guard), Some(Location::Path(_))) {
        // A lock file's lock goes with this process's last descriptor of it,
        // as the process exits next: unlocking first would only keep the
        // descriptor for reuse and start a timer thread to close it later.
        std::mem::forget(guard);
    } else if let Ok(Err(e)) = park_on(AsyncLockGuard::unlock_async(guard), || None) {
        if !was_lost {
            message!("{}", crate::describe(&e));
        }
    }
    Ok(if was_lost { exit::LOST } else { code })
}

/// Tells CMD which lock it runs under (as etcdctl's `ETCD_LOCK_KEY`), from
/// the guard: `LOCKUTILS_LOCK_NAME`, where the lock lives
/// (`LOCKUTILS_LOCK_FILE` for a lock file, `LOCKUTILS_LOCK_NODE` for a node,
/// `LOCKUTILS_LOCK_KEY` otherwise), `LOCKUTILS_LOCK_MODE` (`exclusive` or
/// `shared`) and, where the backend gives one, `LOCKUTILS_FENCING_TOKEN`.
///
/// For a lock file, `LOCKUTILS_LOCK_PATH` is also set to its directory (both
/// absolute): the library and this command read that variable as the lock
/// directory, so lockutils used inside CMD finds the same lock directory.
/// Other backends leave it as it was.
fn held_lock_env<'a>(
    name: &str,
    guard: &AsyncLockGuard<'_>,
    shared: bool,
) -> Vec<(&'a OsStr, OsString)> {
    let mut env = vec![
        (OsStr::new("LOCKUTILS_LOCK_NAME"), OsString::from(name)),
        (
            OsStr::new("LOCKUTILS_LOCK_MODE"),
            OsString::from(if shared { "shared" } else { "exclusive" }),
        ),
    ];
    match AsyncLockGuard::location(guard) {
        Some(Location::Path(p)) => {
            // CMD runs in this directory too, but may change it.
            let file = std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
            if let Some(dir) = file.parent() {
                env.push((OsStr::new(LOCK_PATH_ENV), dir.into()));
            }
            env.push((OsStr::new("LOCKUTILS_LOCK_FILE"), file.into()));
        }
        Some(Location::Node(n)) => env.push((OsStr::new("LOCKUTILS_LOCK_NODE"), n.into())),
        Some(other) => env.push((OsStr::new("LOCKUTILS_LOCK_KEY"), other.to_string().into())),
        None => {}
    }
    if let Ok(token) = AsyncLockGuard::fencing_token(guard) {
        env.push((
            OsStr::new("LOCKUTILS_FENCING_TOKEN"),
            token.to_string().into(),
        ));
    }
    env
}

/// The report on the lock, if the backend can say, without this command's
/// own wait among the waiters.
fn holders_of(backend: &dyn Backend, identity: &str) -> Option<LockReport> {
    let info = backend.admin().ok()?.inspect(identity).ok()?;
    Some(
        LockReport::new(&info, backend.kind(), &backend.url())
            .without_waiters_of(std::process::id(), lockutils_core::backend::host_name()),
    )
}

/// [`holders_of`], given up after `limit`: the lock's own timeout has run
/// out already, and a server that does not answer would add its connect
/// timeout to it. The thread asking ends on its own.
fn holders_within(
    backend: &Arc<dyn Backend>,
    identity: &str,
    limit: Duration,
) -> Option<LockReport> {
    let (tx, rx) = mpsc::channel();
    let (backend, identity) = (Arc::clone(backend), identity.to_owned());
    std::thread::Builder::new()
        .name("lockutils-who".into())
        .spawn(move || {
            let _ = tx.send(holders_of(&*backend, &identity));
        })
        .ok()?;
    rx.recv_timeout(limit).ok().flatten()
}

/// Runs `on_loss` if the guard's loss future says the lock was lost; stops
/// (and is joined) when dropped.
struct LossWatcher {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LossWatcher {
    fn start(
        loss: lockutils_core::backend::LossFuture,
        on_loss: impl FnOnce(lockutils_core::backend::Loss) + Send + 'static,
    ) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&done);
        let thread = std::thread::Builder::new()
            .name("lockutils-loss".into())
            .spawn(move || {
                if let Ok(Some(reason)) =
                    park_on(loss, || stop.load(Ordering::Acquire).then_some(0))
                {
                    on_loss(reason);
                }
            })
            .ok();
        LossWatcher { done, thread }
    }
}

impl Drop for LossWatcher {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// Says on stderr who holds the lock, after `REPORT_AFTER` of waiting and
/// whenever the holders change; silent once dropped (not joined: a look at
/// the lock may take as long as the server takes to answer, and the
/// acquisition must not wait for it).
struct Reporter {
    stop: mpsc::Sender<()>,
}

impl Reporter {
    fn start(backend: &Arc<dyn Backend>, identity: &str, name: &str, place: &str) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let backend = Arc::clone(backend);
        let (identity, name, place) = (identity.to_owned(), name.to_owned(), place.to_owned());
        let me = std::process::id();
        let _ = std::thread::Builder::new()
            .name("lockutils-report".into())
            .spawn(move || {
                let mut last = None;
                // Ends when the sender is dropped (lock acquired or failed).
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(REPORT_AFTER)
                {
                    let Some(report) = holders_of(&*backend, &identity) else {
                        continue;
                    };
                    // Nobody to name: free for a moment, or ours already.
                    if report.holders.is_empty() || report.holders.iter().any(|h| h.pid == Some(me))
                    {
                        continue;
                    }
                    let seen = Some((report.state, report.holder_ids()));
                    if seen != last && stopped.try_recv() == Err(mpsc::TryRecvError::Empty) {
                        message!(
                            "waiting for lock \"{name}\" ({place}): {}",
                            report.holders_sentence()
                        );
                        last = seen;
                    }
                }
            });
        Reporter { stop }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        let _ = self.stop.send(());
    }
}
