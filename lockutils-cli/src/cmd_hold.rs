//! `lockutils hold NAME CMD`: CMD under a named lock.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use lockutils_core::LockOptions;

use crate::child::{self, BeforeChild, Spawned, Supervisor};
use crate::inspect::{LockReport, Snapshot};
use crate::{exit, Failure, HoldArgs};

/// How long `hold` waits before saying who holds the lock, and how often it
/// looks again for a change of holder.
const REPORT_AFTER: Duration = Duration::from_secs(1);

/// Takes the lock, runs CMD, releases, and returns the exit code.
pub(crate) fn hold(args: &HoldArgs) -> Result<i32, Failure> {
    let mut opts = LockOptions::new(&args.name).external(true);
    if let Some(p) = &args.prefix {
        opts = opts.prefix(p);
    }
    if let Some(dir) = &args.dir.lock_path {
        opts = opts.lock_path(dir);
    }
    if args.shared {
        opts = opts.shared();
    }
    if args.no_wait {
        opts = opts.blocking(false);
    } else if let Some(t) = args.timeout {
        opts = opts.timeout(t);
    }
    let path = opts.file_path().map_err(|e| Failure::from_lock_error(&e))?;

    let supervisor = Supervisor::start(BeforeChild::Exit(format!(
        "interrupted while waiting for lock \"{}\" ({})",
        args.name,
        path.display()
    )))
    .map_err(|e| Failure::error(format!("cannot set up signal forwarding: {e}")))?;

    // Holder discovery reads Linux's /proc; elsewhere there is nothing to say.
    // The reporter thread only starts once the lock turns out to be busy.
    let acquired = match opts.blocking(false).lock() {
        Err(e) if e.is_contention() && !args.no_wait => {
            let reporter =
                cfg!(target_os = "linux").then(|| Reporter::start(&args.name, path.clone()));
            let acquired = opts.lock();
            drop(reporter);
            acquired
        }
        acquired => acquired,
    };
    let guard = match acquired {
        Ok(g) => g,
        Err(e) if e.is_contention() => {
            let who = holders_of(&path)
                .map(|r| format!("; it is {}", r.holders_sentence()))
                .unwrap_or_default();
            let hint = if args.no_wait {
                "try again later, or wait for it with --timeout DUR"
            } else {
                "try again later, or give a longer --timeout"
            };
            // `-E 0` makes a busy lock a success (skip if busy): say nothing.
            if args.conflict_exit_code != 0 {
                eprintln!("lockutils: {e} ({}){who}; {hint}", path.display());
            }
            return Ok(i32::from(args.conflict_exit_code));
        }
        Err(e) => return Err(Failure::from_lock_error(&e)),
    };

    let mut cmd = Command::new(&args.command[0]);
    cmd.args(&args.command[1..]);
    held_lock_env(
        &mut cmd,
        &args.name,
        &path,
        "LOCKUTILS_LOCK_PATH",
        args.shared,
    );
    kill_with_parent(&mut cmd);
    let code = match supervisor.spawn(&mut cmd) {
        Ok(Spawned::Child(c)) => match supervisor.wait(c) {
            Ok(status) => child::exit_code(status),
            Err(e) => {
                eprintln!(
                    "lockutils: cannot wait for {}: {e}",
                    args.command[0].to_string_lossy()
                );
                exit::FAILURE
            }
        },
        Ok(Spawned::Interrupted(sig)) => 128 + sig,
        Err(e) => child::spawn_failure(&args.command[0], &e),
    };
    // The process exits next, and with it goes the last descriptor of the
    // lock file, which releases the lock: dropping the guard first would only
    // start the registry's clean-up timer thread on the way out.
    std::mem::forget(guard);
    Ok(code)
}

/// Tells CMD which lock it runs under (as etcdctl's `ETCD_LOCK_KEY`):
/// `LOCKUTILS_LOCK_NAME`, the lock's place (`where_var`: the lock file's
/// `LOCKUTILS_LOCK_PATH` or the ZooKeeper `LOCKUTILS_LOCK_NODE`) and
/// `LOCKUTILS_LOCK_MODE` (`exclusive` or `shared`).
pub(crate) fn held_lock_env(
    cmd: &mut Command,
    name: &str,
    place: impl AsRef<std::ffi::OsStr>,
    where_var: &str,
    shared: bool,
) {
    cmd.env("LOCKUTILS_LOCK_NAME", name)
        .env(where_var, place)
        .env(
            "LOCKUTILS_LOCK_MODE",
            if shared { "shared" } else { "exclusive" },
        );
}

/// The report on the lock file at `path`, if it exists.
fn holders_of(path: &Path) -> Option<LockReport> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    let name = path.file_name()?.to_string_lossy();
    Some(Snapshot::take([&meta]).report(&name, path, &meta))
}

/// Makes CMD die (SIGKILL) if `hold` dies first, even by SIGKILL: the kernel
/// releases the lock when `hold` dies, and CMD must not go on without it.
pub(crate) fn kill_with_parent(cmd: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure runs in the child between fork and exec and
        // only makes async-signal-safe system calls (prctl, getppid, raise).
        let parent = unsafe { libc::getpid() };
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died before prctl took effect.
                if libc::getppid() != parent {
                    libc::raise(libc::SIGKILL);
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cmd;
}

/// Says on stderr who holds the lock, after `REPORT_AFTER` of waiting and
/// whenever the holders change; stops when dropped.
struct Reporter {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Reporter {
    fn start(name: &str, path: PathBuf) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let name = name.to_owned();
        let thread = std::thread::Builder::new()
            .name("lockutils-report".into())
            .spawn(move || {
                // Reported again only when the state or the holders change.
                let mut last = None;
                // Ends when the sender is dropped (lock acquired or failed).
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(REPORT_AFTER)
                {
                    let Some(report) = holders_of(&path) else {
                        continue;
                    };
                    let seen = Some((report.state, report.holder_pids()));
                    if seen != last {
                        eprintln!(
                            "lockutils: waiting for lock \"{name}\" ({}): {}",
                            path.display(),
                            report.holders_sentence()
                        );
                        last = seen;
                    }
                }
            })
            .ok();
        Reporter {
            stop: Some(stop),
            thread,
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
