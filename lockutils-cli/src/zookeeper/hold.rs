//! `lockutils hold NAME CMD` with a ZooKeeper backend: CMD under a
//! distributed lock.
//!
//! The lock is `ZkLockOptions` with the same identity as the library's
//! (`lock_file_name(NAME, PREFIX)`), so the command excludes, and is
//! excluded by, library holders of the same lock on the same root. A
//! ZooKeeper lock can be lost while held (the session expires, an operator
//! clears the lock): then CMD is told with `SIGTERM` and `hold` exits with
//! its own code ([`exit::LOST`]), so a script knows CMD may have overlapped
//! with another holder.

use std::future::Future;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use lockutils_zookeeper::{CoordinationUrl, HoldWatch, Layout, ZkLockOptions};

use super::report::ZkLockReport;
use super::{describe, failure, host_name, identity, refuse_lock_path, Zk};
use crate::child::{self, BeforeChild, ChildSignaller, Spawned, Supervisor};
use crate::{exit, Failure, HoldArgs};

/// How long `hold` waits before saying who holds the lock, and how often it
/// looks again for a change of holder.
const REPORT_AFTER: Duration = Duration::from_secs(1);

/// How long an interrupted `hold` waits for its queued candidate node to be
/// gone before exiting (otherwise it stays until the session expires).
const WITHDRAW_WITHIN: Duration = Duration::from_secs(2);

/// Takes the lock, runs CMD, releases (waiting until the server deleted the
/// node), and returns the exit code.
pub(crate) fn hold(url: &CoordinationUrl, args: &HoldArgs) -> Result<i32, Failure> {
    refuse_lock_path(args.dir.lock_path.as_deref())?;
    // A usage error, known from the URL alone: said at once, server or not.
    if args.shared && url.layout() == Layout::Curator {
        return Err(Failure::usage(
            "--shared is not possible with layout=curator: Curator's lock has no readers; \
             drop --shared, or use layout=native or layout=kazoo",
        ));
    }
    let identity = identity(url, &args.name, args.prefix.as_deref())?.into_owned();
    let zk = Zk::new(url);
    let place = format!("{} on {}", zk.lock_node(&identity), zk.shown);

    // Before any thread exists (the library starts its runtime thread on
    // first use), so that every thread blocks the forwarded signals.
    let supervisor = Supervisor::start(BeforeChild::Exit(format!(
        "interrupted while connecting for lock \"{}\" ({place})",
        args.name
    )))
    .map_err(|e| Failure::error(format!("cannot set up signal forwarding: {e}")))?;
    zk.establish()?;

    let program = Path::new(&args.command[0])
        .file_name()
        .unwrap_or(args.command[0].as_os_str())
        .to_string_lossy()
        .into_owned();
    // The candidate node's data: who waits or holds, for `show` and kazoo's
    // `contenders()`. Not CMD's arguments: node data is readable by every
    // client of the ensemble.
    let identifier = format!(
        "{}:{} lockutils hold {program}",
        host_name(),
        std::process::id()
    );
    let mut opts = ZkLockOptions::new(&args.name)
        .coordinator(&zk.coordinator)
        .identifier(&identifier);
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
    // queue before exiting.
    supervisor.set_before_child(BeforeChild::Wake(std::thread::current()));
    let reporter = (!args.no_wait).then(|| Reporter {
        stopped: Arc::new(Mutex::new(false)),
    });
    if let Some(r) = &reporter {
        r.start(&zk, &identity, &identifier, &args.name, &place);
    }
    let acquired = park_on(opts.lock_async(), || supervisor.pending_signal());
    drop(reporter);
    let guard = match acquired {
        Ok(Ok(g)) => g,
        Ok(Err(e)) if e.is_contention() => {
            let who = zk
                .coordinator
                .inspect(&identity)
                .map(|info| {
                    let report = ZkLockReport::from_info(&info, &zk.shown, true);
                    format!("; it is {}", report.holders_sentence())
                })
                .unwrap_or_default();
            let hint = if args.no_wait {
                "try again later, or wait for it with --timeout DUR"
            } else {
                "try again later, or give a longer --timeout"
            };
            // `-E 0` makes a busy lock a success (skip if busy): say nothing.
            if args.conflict_exit_code != 0 {
                eprintln!("lockutils: {e} ({place}){who}; {hint}");
            }
            return Ok(i32::from(args.conflict_exit_code));
        }
        Ok(Err(e)) => return Err(failure(&e)),
        Err(sig) => {
            let gone = withdraw(&zk, &identity, &identifier);
            let note = if gone {
                ""
            } else {
                "; its queue entry goes when the session expires"
            };
            eprintln!(
                "lockutils: interrupted while waiting for lock \"{}\" ({place}) (signal {sig}){note}",
                args.name
            );
            return Ok(128 + sig);
        }
    };

    let loss = Arc::new(Loss {
        watch: guard.watch(),
        signaller: supervisor.child_signaller(),
        announced: AtomicBool::new(false),
        terminated: Mutex::new(false),
        what: format!("lock \"{}\" ({place})", args.name),
        program: program.clone(),
    });
    if loss.check() {
        // Lost before CMD could start: do not start it.
        let _ = park_on(guard.unlock(), || None);
        return Ok(exit::LOST);
    }
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (loss, done) = (Arc::clone(&loss), Arc::clone(&done));
        std::thread::Builder::new()
            .name("lockutils-loss".into())
            .spawn(move || {
                while !done.load(Ordering::Acquire) {
                    if loss.watch.wait_lost(Duration::from_secs(1)).is_some() {
                        loss.check();
                        return;
                    }
                }
            })
            .map_err(|e| Failure::error(format!("cannot start a thread: {e}")))?
    };

    let mut cmd = Command::new(&args.command[0]);
    cmd.args(&args.command[1..]);
    crate::cmd_hold::held_lock_env(
        &mut cmd,
        &args.name,
        guard.node(),
        "LOCKUTILS_LOCK_NODE",
        args.shared,
    );
    cmd.env("LOCKUTILS_FENCING_TOKEN", guard.fencing_token().to_string());
    crate::cmd_hold::kill_with_parent(&mut cmd);
    let code = match supervisor.spawn(&mut cmd) {
        Ok(Spawned::Child(c)) => {
            // The watcher may have seen the loss before CMD ran.
            loss.check();
            match supervisor.wait(c) {
                Ok(status) => child::exit_code(status),
                Err(e) => {
                    eprintln!("lockutils: cannot wait for {program}: {e}");
                    exit::FAILURE
                }
            }
        }
        Ok(Spawned::Interrupted(sig)) => 128 + sig,
        Err(e) => child::spawn_failure(&args.command[0], &e),
    };
    done.store(true, Ordering::Release);
    let lost = loss.check();
    if let Ok(Err(e)) = park_on(guard.unlock(), || None) {
        if !lost {
            eprintln!("lockutils: {}", describe(&e));
        }
    }
    let _ = watcher.join();
    Ok(if lost { exit::LOST } else { code })
}

/// The loss of a held lock: said once, and CMD terminated once.
struct Loss {
    watch: HoldWatch,
    signaller: ChildSignaller,
    announced: AtomicBool,
    terminated: Mutex<bool>,
    what: String,
    program: String,
}

impl Loss {
    /// Whether the lock was lost. The first time it is seen lost, says so on
    /// stderr; the first time CMD runs then, sends it SIGTERM.
    fn check(&self) -> bool {
        let Some(reason) = self.watch.loss() else {
            return false;
        };
        let mut terminated = self.terminated.lock().unwrap_or_else(|e| e.into_inner());
        let sent = if *terminated {
            None
        } else {
            self.signaller.send(libc::SIGTERM)
        };
        *terminated |= sent.is_some();
        let first = !self.announced.swap(true, Ordering::AcqRel);
        match sent {
            Some(pid) => eprintln!(
                "lockutils: lost {} while {} ran: {reason}; another holder may have it now; \
                 terminating {} (SIGTERM to pid {pid})",
                self.what, self.program, self.program
            ),
            None if first => eprintln!(
                "lockutils: lost {}: {reason}; another holder may have it now; {} may have \
                 run without it",
                self.what, self.program
            ),
            None => {}
        }
        true
    }
}

/// Polls `fut` on this thread, parking between polls, until it is ready or
/// `interrupted` says a signal arrived (the signal thread unparks this one).
fn park_on<F: Future>(
    fut: F,
    interrupted: impl Fn() -> Option<libc::c_int>,
) -> Result<F::Output, libc::c_int> {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Some(sig) = interrupted() {
            return Err(sig);
        }
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return Ok(v);
        }
        std::thread::park();
    }
}

/// After an abandoned acquisition (its future dropped, which deletes the
/// candidate node): waits until no contender of the lock carries this
/// process's identifier, so the queue does not wait for a node whose owner
/// is gone. Whether it is gone.
fn withdraw(zk: &Zk, identity: &str, identifier: &str) -> bool {
    let until = Instant::now() + WITHDRAW_WITHIN;
    loop {
        match zk.coordinator.inspect(identity) {
            Ok(info)
                if info
                    .contenders
                    .iter()
                    .any(|c| c.data == identifier.as_bytes()) => {}
            Ok(_) => return true,
            Err(_) => return false,
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Says on stderr who holds the lock, after `REPORT_AFTER` of waiting and
/// whenever the holders change; silent once dropped.
struct Reporter {
    stopped: Arc<Mutex<bool>>,
}

impl Reporter {
    /// Starts the reporting thread; `identifier` is our own candidate's data.
    fn start(&self, zk: &Zk, identity: &str, identifier: &str, name: &str, place: &str) {
        let (coordinator, shown) = (zk.coordinator.clone(), zk.shown.clone());
        let (identity, name, place) = (identity.to_owned(), name.to_owned(), place.to_owned());
        let identifier = identifier.as_bytes().to_vec();
        let flag = Arc::clone(&self.stopped);
        // Not joined: a look at the lock may take as long as the server
        // does to answer, and the acquisition must not wait for it.
        let _ = std::thread::Builder::new()
            .name("lockutils-report".into())
            .spawn(move || {
                let mut last = None;
                loop {
                    std::thread::sleep(REPORT_AFTER);
                    if *flag.lock().unwrap_or_else(|e| e.into_inner()) {
                        return;
                    }
                    let Ok(info) = coordinator.inspect(&identity) else {
                        continue;
                    };
                    // Nobody to name: free for a moment, or ours already.
                    if info.holders().next().is_none()
                        || info.holders().any(|h| h.data == identifier)
                    {
                        continue;
                    }
                    let report = ZkLockReport::from_info(&info, &shown, true);
                    let seen: Vec<String> = report
                        .holder_nodes()
                        .into_iter()
                        .map(str::to_owned)
                        .collect();
                    if last.as_ref() == Some(&seen) {
                        continue;
                    }
                    let stopped = flag.lock().unwrap_or_else(|e| e.into_inner());
                    if *stopped {
                        return;
                    }
                    eprintln!(
                        "lockutils: waiting for lock \"{name}\" ({place}): {}",
                        report.holders_clause()
                    );
                    drop(stopped);
                    last = Some(seen);
                }
            });
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
    }
}
