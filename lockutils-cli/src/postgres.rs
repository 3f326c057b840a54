//! The PostgreSQL backend: `--backend postgresql://USER@HOST:PORT/DBNAME` for
//! `list`, `show`, `remove`, `clean` and `hold`, on the advisory locks of
//! `lockutils-postgres` (and of any other client of the same database, tooz
//! among them). What is known about a lock comes from the library's admin
//! view (`pg_locks` joined with `pg_stat_activity`); this module only prints.
//!
//! The URL's password is never printed: messages show the URL as the
//! library displays it (`postgresql://svc@db1:5432/app`).

use std::future::Future;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, SystemTime};

use lockutils_postgres::{
    Mode, PgCoordinator, PgLockInfo, PgLockOptions, PgSessionInfo, PgUrl, RemoveOutcome,
};
use serde::Serialize;

use crate::child::{self, BeforeChild, Spawned, Supervisor};
use crate::output::{print_table, Cell, Paint};
use crate::{exit, Failure, HoldArgs};

fn coordinator(url: &PgUrl) -> Result<PgCoordinator, Failure> {
    PgCoordinator::from_url(url.clone()).map_err(|e| failure(&e))
}

/// A library error as a failure: exit 2 for a bad name or options, 1
/// otherwise; without the `lock ""` of errors about no lock in particular.
fn failure(e: &lockutils_core::Error) -> Failure {
    let text = match e {
        lockutils_core::Error::Backend {
            name,
            backend,
            reason,
            ..
        } if name.is_empty() => format!("{backend}: {reason}"),
        e => e.to_string(),
    };
    match e {
        lockutils_core::Error::InvalidName { .. }
        | lockutils_core::Error::InvalidOptions { .. } => Failure::usage(text),
        _ => Failure::error(text),
    }
}

/// `--lock-path` names a directory of lock files: meaningless here.
pub(crate) fn refuse_lock_path(lock_path: Option<&Path>) -> Result<(), Failure> {
    match lock_path {
        Some(dir) => Err(Failure::usage(format!(
            "--lock-path {} is for lock files; with a PostgreSQL --backend, locks are \
             advisory locks in the URL's database: drop --lock-path",
            dir.display()
        ))),
        None => Ok(()),
    }
}

fn identity(name: &str, prefix: Option<&str>) -> Result<String, Failure> {
    let mut opts = PgLockOptions::new(name);
    if let Some(p) = prefix {
        opts = opts.prefix(p);
    }
    opts.identity()
        .map(|c| c.into_owned())
        .map_err(|e| failure(&e))
}

/// One lock as `list --json` and `show --json` print it.
#[derive(Debug, Serialize)]
struct LockReport {
    /// The lock's identity, when known (`null` for other clients' keys).
    name: Option<String>,
    /// `free` or `held`.
    state: &'static str,
    /// The advisory-lock key: a number, or `(a,b)` for two-integer keys.
    key: String,
    backend: String,
    holders: Vec<SessionReport>,
    waiters: Vec<SessionReport>,
}

#[derive(Debug, Serialize)]
struct SessionReport {
    pid: i32,
    mode: &'static str,
    application_name: String,
    user: Option<String>,
    client_addr: Option<String>,
    /// Seconds since the lock was taken (holders) or awaited (waiters).
    for_secs: Option<f64>,
}

impl LockReport {
    fn new(info: &PgLockInfo, backend: &str) -> LockReport {
        LockReport {
            name: info.name.clone(),
            state: if info.is_free() { "free" } else { "held" },
            key: info.key.to_string(),
            backend: backend.to_owned(),
            holders: info.holders.iter().map(SessionReport::new).collect(),
            waiters: info.waiters.iter().map(SessionReport::new).collect(),
        }
    }
}

impl SessionReport {
    fn new(s: &PgSessionInfo) -> SessionReport {
        SessionReport {
            pid: s.pid,
            mode: match s.mode {
                Mode::Shared => "shared",
                _ => "exclusive",
            },
            application_name: s.application_name.clone(),
            user: s.user.clone(),
            client_addr: s.client_addr.clone(),
            for_secs: s.since.map(|t| {
                SystemTime::now()
                    .duration_since(t)
                    .unwrap_or_default()
                    .as_secs_f64()
            }),
        }
    }

    /// `pid 123 (lockutils, svc@10.0.0.5, exclusive, 12s)`.
    fn sentence(&self) -> String {
        let mut parts = vec![];
        if !self.application_name.is_empty() {
            parts.push(self.application_name.clone());
        }
        match (&self.user, &self.client_addr) {
            (Some(u), Some(a)) => parts.push(format!("{u}@{a}")),
            (Some(u), None) => parts.push(u.clone()),
            (None, Some(a)) => parts.push(a.clone()),
            (None, None) => {}
        }
        parts.push(self.mode.to_owned());
        if let Some(s) = self.for_secs {
            parts.push(crate::duration::human(Duration::from_secs_f64(s)));
        }
        format!("pid {} ({})", self.pid, parts.join(", "))
    }
}

fn sessions(list: &[SessionReport]) -> String {
    if list.is_empty() {
        "-".to_owned()
    } else {
        list.iter()
            .map(SessionReport::sentence)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// `lockutils list --backend postgresql://…`.
pub(crate) fn list(url: &PgUrl, json: bool) -> Result<i32, Failure> {
    let c = coordinator(url)?;
    let shown = url.to_string();
    let reports: Vec<LockReport> = c
        .list()
        .map_err(|e| failure(&e))?
        .iter()
        .map(|i| LockReport::new(i, &shown))
        .collect();
    if json {
        crate::output::print_json(&reports)?;
        return Ok(exit::OK);
    }
    if reports.is_empty() {
        eprintln!("lockutils: no advisory locks held or awaited on {shown}");
        return Ok(exit::OK);
    }
    let paint = Paint::stdout();
    let mut rows = vec![["NAME", "KEY", "STATE", "HOLDERS", "WAITERS"]
        .iter()
        .map(|h| Cell::new(*h, paint.bold(h)))
        .collect::<Vec<_>>()];
    for r in &reports {
        let name = r.name.clone().unwrap_or_else(|| "?".to_owned());
        rows.push(vec![
            Cell::plain(name),
            Cell::plain(r.key.clone()),
            Cell::new(r.state, paint.red(r.state)),
            Cell::plain(sessions(&r.holders)),
            Cell::plain(sessions(&r.waiters)),
        ]);
    }
    print_table(&rows);
    Ok(exit::OK)
}

/// `lockutils show NAME --backend postgresql://…`.
pub(crate) fn show(
    url: &PgUrl,
    name: &str,
    prefix: Option<&str>,
    json: bool,
) -> Result<i32, Failure> {
    let id = identity(name, prefix)?;
    let c = coordinator(url)?;
    let info = c.show(&id).map_err(|e| failure(&e))?;
    let report = LockReport::new(&info, &url.to_string());
    if json {
        crate::output::print_json(&report)?;
        return Ok(exit::OK);
    }
    println!("lock:     {id}");
    println!(
        "key:      {} ({} layout)",
        report.key,
        url.layout().as_str()
    );
    println!("backend:  {}", report.backend);
    println!("state:    {}", report.state);
    println!("holders:  {}", sessions(&report.holders));
    println!("waiters:  {}", sessions(&report.waiters));
    Ok(exit::OK)
}

/// `lockutils remove NAME… --backend postgresql://…`: advisory locks leave
/// nothing to remove; a held lock is reported (exit 75), or with `--force`
/// its holders' sessions are ended.
pub(crate) fn remove(
    url: &PgUrl,
    names: &[String],
    prefix: Option<&str>,
    force: bool,
) -> Result<i32, Failure> {
    let c = coordinator(url)?;
    let shown = url.to_string();
    let mut code = exit::OK;
    for name in names {
        let id = identity(name, prefix)?;
        if force {
            let pids = c.terminate_holders(&id).map_err(|e| failure(&e))?;
            if pids.is_empty() {
                println!("lock \"{name}\" on {shown} is free: nothing to remove");
            } else {
                let list: Vec<String> = pids.iter().map(i32::to_string).collect();
                println!(
                    "lock \"{name}\" on {shown}: ended the holders' sessions (pid {}); they \
                     see the lock lost",
                    list.join(", ")
                );
            }
            continue;
        }
        match c.remove_if_free(&id).map_err(|e| failure(&e))? {
            RemoveOutcome::Held => {
                let info = c.show(&id).map_err(|e| failure(&e))?;
                let report = LockReport::new(&info, &shown);
                eprintln!(
                    "lockutils: lock \"{name}\" on {shown} is held by {}; skipped (--force \
                     ends the holders' sessions)",
                    sessions(&report.holders)
                );
                code = exit::CONFLICT;
            }
            _ => println!(
                "lock \"{name}\" on {shown} is free: advisory locks leave nothing to remove"
            ),
        }
    }
    Ok(code)
}

/// `lockutils clean --backend postgresql://…`: nothing to do.
pub(crate) fn clean(url: &PgUrl) -> Result<i32, Failure> {
    println!("nothing to clean on {url}: PostgreSQL advisory locks leave no state once released");
    Ok(exit::OK)
}

/// `lockutils hold NAME CMD --backend postgresql://…`: CMD under the lock;
/// if the lock is lost while CMD runs, CMD gets SIGTERM and `hold` exits
/// with 69.
pub(crate) fn hold(url: &PgUrl, args: &HoldArgs) -> Result<i32, Failure> {
    refuse_lock_path(args.dir.lock_path.as_deref())?;
    let id = identity(&args.name, args.prefix.as_deref())?;
    let place = format!("{id} on {url}");
    // Before any thread exists, so that every thread blocks the forwarded
    // signals.
    let supervisor = Supervisor::start(BeforeChild::Wake(std::thread::current()))
        .map_err(|e| Failure::error(format!("cannot set up signal forwarding: {e}")))?;
    let c = coordinator(url)?;
    let mut opts = PgLockOptions::new(&args.name).coordinator(&c);
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
    let guard = match park_on(opts.lock_async(), || supervisor.pending_signal()) {
        Ok(Ok(g)) => g,
        Ok(Err(e)) if e.is_contention() => {
            let who = c
                .show(&id)
                .map(|i| {
                    format!(
                        "; it is held by {}",
                        sessions(&LockReport::new(&i, "").holders)
                    )
                })
                .unwrap_or_default();
            eprintln!("lockutils: {e} ({place}){who}");
            return Ok(i32::from(args.conflict_exit_code));
        }
        Ok(Err(e)) => return Err(failure(&e)),
        Err(sig) => {
            // The dropped acquisition cancels its server-side wait.
            eprintln!(
                "lockutils: interrupted while waiting for lock \"{}\" ({place}) (signal {sig})",
                args.name
            );
            return Ok(128 + sig);
        }
    };
    let mut cmd = Command::new(&args.command[0]);
    cmd.args(&args.command[1..]);
    crate::cmd_hold::kill_with_parent(&mut cmd);
    let program = args.command[0].to_string_lossy().into_owned();
    let done = Arc::new(AtomicBool::new(false));
    let lost = Arc::new(AtomicBool::new(false));
    let code = match supervisor.spawn(&mut cmd) {
        Ok(Spawned::Child(child)) => {
            let signaller = supervisor.child_signaller();
            let watch = guard.lost();
            let (done2, lost2, what) = (done.clone(), lost.clone(), place.clone());
            let watcher = std::thread::spawn(move || {
                let reason = park_on(watch, || done2.load(Ordering::Acquire).then_some(0));
                if let Ok(Some(reason)) = reason {
                    lost2.store(true, Ordering::Release);
                    let pid = signaller.send(libc::SIGTERM);
                    eprintln!(
                        "lockutils: lost lock {what} while {program} ran: {reason}; another \
                         holder may have it now; terminating {program}{}",
                        pid.map(|p| format!(" (SIGTERM to pid {p})"))
                            .unwrap_or_default()
                    );
                }
            });
            let status = supervisor.wait(child);
            done.store(true, Ordering::Release);
            watcher.thread().unpark();
            let _ = watcher.join();
            match status {
                Ok(s) => child::exit_code(s),
                Err(e) => {
                    eprintln!("lockutils: cannot wait for CMD: {e}");
                    exit::FAILURE
                }
            }
        }
        Ok(Spawned::Interrupted(sig)) => 128 + sig,
        Err(e) => child::spawn_failure(&args.command[0], &e),
    };
    let was_lost = lost.load(Ordering::Acquire) || guard.is_lost();
    let released = park_on(guard.unlock(), || None);
    if let Ok(Err(e)) = released {
        if !was_lost {
            eprintln!("lockutils: {e}");
        }
    }
    Ok(if was_lost { exit::LOST } else { code })
}

/// Polls `fut` on this thread, parking between polls, until it is ready or
/// `interrupted` says to stop (a signal arrived, or the work is done).
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
        std::thread::park_timeout(Duration::from_millis(200));
    }
}
