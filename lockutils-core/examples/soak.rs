//! Soak test of the lock engine: threads, async tasks and processes taking the
//! same names for a given time, with timeouts, cancelled futures, panics in
//! critical sections, lock file removals and SIGKILLed holders, checking that
//! no two holders ever overlap. Reports acquisitions and violations; exits
//! non-zero on any violation.
//!
//! ```text
//! cargo run --release -p lockutils-core --example soak -- [SECONDS] [THREADS] [TASKS] [PROCESSES]
//! ```
//! (defaults: 10 s, 4 threads, 8 tasks, 2 processes). What it mixes:
//! - in-process names `mem-0..3`: threads and tasks, shared and exclusive,
//!   fair and unfair, blocking, non-blocking and timed, checked by counting
//!   holders inside;
//! - external names `ext-0..1`: threads, tasks and child processes,
//!   exclusive, checked by a marker file created exclusively inside the lock
//!   (a marker left by a SIGKILLed holder names a dead process and is taken
//!   over; one naming a live process is a violation);
//! - async acquisitions cancelled by `tokio::time::timeout` mid-wait, panics
//!   inside critical sections, non-blocking removals of the lock files, and
//!   a child process SIGKILLed (and replaced) every few milliseconds.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lockutils_core::{Error, InUse, LockOptions, Mode};

const MEM_NAMES: usize = 4;
const EXT_NAMES: usize = 2;

/// A small xorshift generator: reproducible, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

#[derive(Default)]
struct Stats {
    acquired: AtomicU64,
    timeouts: AtomicU64,
    busy: AtomicU64,
    cancelled: AtomicU64,
    panics: AtomicU64,
    removed: AtomicU64,
    /// Removals refused because another process had the file open (or might).
    removal_refused: AtomicU64,
    kills: AtomicU64,
    stale_markers: AtomicU64,
    violations: AtomicU64,
}

/// Holders inside one in-process name: writers (bit 32 up) and readers.
struct Occupancy(AtomicUsize);

const WRITER: usize = 1 << 32;

impl Occupancy {
    fn enter(&self, mode: Mode, stats: &Stats) {
        let add = if mode == Mode::Exclusive { WRITER } else { 1 };
        let before = self.0.fetch_add(add, SeqCst);
        let bad = match mode {
            Mode::Exclusive => before != 0,
            Mode::Shared => before >= WRITER,
        };
        if bad {
            stats.violations.fetch_add(1, SeqCst);
            eprintln!("VIOLATION: overlapping in-process holders ({before:#x}, {mode:?})");
        }
    }

    fn leave(&self, mode: Mode) {
        let sub = if mode == Mode::Exclusive { WRITER } else { 1 };
        self.0.fetch_sub(sub, SeqCst);
    }
}

/// Whether `pid` is gone (or a zombie: killed, not reaped yet).
fn dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

/// Whether the marker's owner `pid` is a killed process: it is dead, or dies
/// within a moment while its marker stays unchanged. (A SIGKILLed process's
/// lock is released as it exits, a moment before `/proc` shows it dead.)
fn dying(pid: i32, marker: &Path, owner: &str) -> bool {
    let until = Instant::now() + Duration::from_millis(500);
    loop {
        if dead(pid) {
            return true;
        }
        if Instant::now() > until || std::fs::read_to_string(marker).ok().as_deref() != Some(owner)
        {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Enters an external name's critical section: creates its marker, which no
/// live holder may have left. Returns false on a violation.
fn enter_marker(marker: &Path, stats: &Stats) -> bool {
    loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(marker)
        {
            Ok(mut f) => {
                let _ = write!(f, "{}", std::process::id());
                return true;
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                let mut owner = String::new();
                if let Ok(mut f) = std::fs::File::open(marker) {
                    let _ = f.read_to_string(&mut owner);
                }
                match owner.trim().parse::<i32>() {
                    Ok(pid) if pid as u32 != std::process::id() && dying(pid, marker, &owner) => {
                        stats.stale_markers.fetch_add(1, SeqCst);
                        let _ = std::fs::remove_file(marker);
                    }
                    // Created but not written yet by a holder killed in
                    // between: only a dead process can leave it empty for
                    // long, so look again.
                    Err(_) if owner.is_empty() => {
                        std::thread::sleep(Duration::from_millis(1));
                        if std::fs::read_to_string(marker).is_ok_and(|s| s.is_empty()) {
                            stats.stale_markers.fetch_add(1, SeqCst);
                            let _ = std::fs::remove_file(marker);
                        }
                    }
                    _ => {
                        stats.violations.fetch_add(1, SeqCst);
                        eprintln!("VIOLATION: {} held by live pid {owner}", marker.display());
                        return false;
                    }
                }
            }
            Err(e) => panic!("marker {}: {e}", marker.display()),
        }
    }
}

fn leave_marker(marker: &Path) {
    let _ = std::fs::remove_file(marker);
}

struct World {
    dir: PathBuf,
    mem: Vec<Occupancy>,
    stats: Stats,
    stop: AtomicBool,
}

impl World {
    fn ext_name(i: usize) -> String {
        format!("ext-{i}")
    }

    fn marker(&self, i: usize) -> PathBuf {
        self.dir.join(format!("ext-{i}.inside"))
    }

    fn count_error(&self, e: &Error) {
        match e {
            Error::Timeout { .. } => self.stats.timeouts.fetch_add(1, SeqCst),
            Error::WouldBlock { .. } => self.stats.busy.fetch_add(1, SeqCst),
            // Another process has the file open: the removal is refused, as
            // documented (other processes keep their lock files open between
            // acquisitions, so this is common here).
            other if InUse::of(other).is_some() => {
                let before = self.stats.removal_refused.fetch_add(1, SeqCst);
                if before == 0 {
                    eprintln!("soak: first refused removal: {}", other.report());
                }
                before
            }
            other => panic!("unexpected error: {}", other.report()),
        };
    }

    /// One blocking acquisition by a thread.
    fn thread_op(&self, rng: &mut Rng) {
        let timeout = match rng.below(3) {
            0 => None,
            1 => Some(Duration::from_micros(rng.below(2000))),
            _ => Some(Duration::from_millis(50)),
        };
        let blocking = !rng.one_in(8);
        if rng.one_in(8) {
            let i = rng.below(EXT_NAMES as u64) as usize;
            let name = World::ext_name(i);
            let mut opts = LockOptions::new(&name)
                .external(true)
                .lock_path(&self.dir)
                .blocking(blocking)
                .fair(rng.one_in(2));
            if let Some(t) = timeout {
                opts = opts.timeout(t);
            }
            if rng.one_in(50) {
                match opts.blocking(false).remove_lock_file() {
                    Ok(true) => {
                        self.stats.removed.fetch_add(1, SeqCst);
                    }
                    Ok(false) => {}
                    Err(e) => self.count_error(&e),
                }
                return;
            }
            match opts.lock() {
                Ok(g) => {
                    self.stats.acquired.fetch_add(1, SeqCst);
                    let marker = self.marker(i);
                    if enter_marker(&marker, &self.stats) {
                        std::hint::spin_loop();
                        leave_marker(&marker);
                    }
                    drop(g);
                }
                Err(e) => self.count_error(&e),
            }
        } else {
            let i = rng.below(MEM_NAMES as u64) as usize;
            let name = format!("mem-{i}");
            let mode = if rng.one_in(3) {
                Mode::Shared
            } else {
                Mode::Exclusive
            };
            let mut opts = LockOptions::new(&name)
                .mode(mode)
                .blocking(blocking)
                .fair(rng.one_in(2));
            if let Some(t) = timeout {
                opts = opts.timeout(t);
            }
            let panic_inside = rng.one_in(500);
            let r = catch_unwind(AssertUnwindSafe(|| match opts.lock() {
                Ok(g) => {
                    self.stats.acquired.fetch_add(1, SeqCst);
                    self.mem[i].enter(mode, &self.stats);
                    if rng.one_in(64) {
                        std::thread::yield_now();
                    }
                    self.mem[i].leave(mode);
                    if panic_inside {
                        panic!("soak: panic inside a critical section");
                    }
                    drop(g);
                }
                Err(e) => self.count_error(&e),
            }));
            if r.is_err() {
                self.stats.panics.fetch_add(1, SeqCst);
            }
        }
    }

    /// One async acquisition by a task, sometimes cancelled mid-wait.
    async fn task_op(&self, rng: &mut Rng) {
        let external = rng.one_in(4);
        let i = rng.below(if external { EXT_NAMES } else { MEM_NAMES } as u64) as usize;
        let name = if external {
            World::ext_name(i)
        } else {
            format!("mem-{i}")
        };
        let mode = if !external && rng.one_in(3) {
            Mode::Shared
        } else {
            Mode::Exclusive
        };
        let mut opts = LockOptions::new(&name)
            .external(external)
            .lock_path(&self.dir)
            .mode(mode)
            .fair(rng.one_in(2));
        if rng.one_in(3) {
            opts = opts.timeout(Duration::from_micros(rng.below(3000)));
        }
        let cancel_after = Duration::from_micros(50 + rng.below(2000));
        match tokio::time::timeout(cancel_after, opts.lock_async()).await {
            Err(_) => {
                self.stats.cancelled.fetch_add(1, SeqCst);
            }
            Ok(Err(e)) => self.count_error(&e),
            Ok(Ok(g)) => {
                self.stats.acquired.fetch_add(1, SeqCst);
                if external {
                    let marker = self.marker(i);
                    if enter_marker(&marker, &self.stats) {
                        if rng.one_in(8) {
                            tokio::task::yield_now().await;
                        }
                        leave_marker(&marker);
                    }
                } else {
                    self.mem[i].enter(mode, &self.stats);
                    if rng.one_in(8) {
                        tokio::task::yield_now().await;
                    }
                    self.mem[i].leave(mode);
                }
                drop(g);
            }
        }
    }
}

/// A child process: takes the external names in a loop until killed or the
/// time is up, reporting its acquisitions on stdout.
fn child(dir: &Path, seconds: u64, seed: u64) -> ! {
    let stats = Stats::default();
    let mut rng = Rng(seed | 1);
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut out = std::io::stdout();
    let mut n = 0u64;
    while Instant::now() < end {
        let i = rng.below(EXT_NAMES as u64) as usize;
        let name = World::ext_name(i);
        let mut opts = LockOptions::new(&name).external(true).lock_path(dir);
        if rng.one_in(2) {
            opts = opts.timeout(Duration::from_micros(rng.below(5000)));
        }
        match opts.lock() {
            Ok(g) => {
                n += 1;
                let marker = dir.join(format!("ext-{i}.inside"));
                if !enter_marker(&marker, &stats) {
                    let _ = writeln!(out, "violation");
                    std::process::exit(3);
                }
                leave_marker(&marker);
                drop(g);
            }
            Err(Error::Timeout { .. }) => {}
            Err(e) => panic!("child: {e}"),
        }
        if n.is_multiple_of(256) {
            let _ = writeln!(out, "acquired {n}");
        }
    }
    let _ = writeln!(out, "acquired {n}");
    std::process::exit(0)
}

/// A child and the acquisitions it last reported.
struct Proc {
    child: Child,
    reported: Arc<AtomicU64>,
    violated: Arc<AtomicBool>,
}

fn spawn_child(dir: &Path, seconds: u64, seed: u64) -> Proc {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("--child")
        .arg(dir)
        .arg(seconds.to_string())
        .arg(seed.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let reported = Arc::new(AtomicU64::new(0));
    let violated = Arc::new(AtomicBool::new(false));
    let out = child.stdout.take().unwrap();
    let (r, v) = (reported.clone(), violated.clone());
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(n) = line.strip_prefix("acquired ") {
                r.store(n.parse().unwrap_or(0), SeqCst);
            } else if line == "violation" {
                v.store(true, SeqCst);
            }
        }
    });
    Proc {
        child,
        reported,
        violated,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        child(
            Path::new(&args[2]),
            args[3].parse().unwrap(),
            args[4].parse().unwrap(),
        );
    }
    let arg = |i: usize, default: u64| args.get(i).map_or(default, |a| a.parse().unwrap());
    let (seconds, threads, tasks, procs) = (arg(1, 10), arg(2, 4), arg(3, 8), arg(4, 2));
    // Panics inside critical sections are part of the mix: keep them quiet.
    std::panic::set_hook(Box::new(|info| {
        if !info.to_string().contains("soak: panic inside") {
            eprintln!("{info}");
        }
    }));
    let dir = tempfile::tempdir().unwrap();
    let world = Arc::new(World {
        dir: dir.path().to_owned(),
        mem: (0..MEM_NAMES)
            .map(|_| Occupancy(AtomicUsize::new(0)))
            .collect(),
        stats: Stats::default(),
        stop: AtomicBool::new(false),
    });
    let started = Instant::now();
    let end = started + Duration::from_secs(seconds);

    let mut handles = Vec::new();
    for t in 0..threads {
        let w = world.clone();
        handles.push(std::thread::spawn(move || {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (t + 1));
            while !w.stop.load(SeqCst) {
                w.thread_op(&mut rng);
            }
        }));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let task_handles: Vec<_> = (0..tasks)
        .map(|t| {
            let w = world.clone();
            rt.spawn(async move {
                let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ (t + 1));
                while !w.stop.load(SeqCst) {
                    w.task_op(&mut rng).await;
                }
            })
        })
        .collect();

    // Children, one SIGKILLed and replaced every few milliseconds.
    let mut seed = 1u64;
    let mut children: Vec<Proc> = (0..procs)
        .map(|_| {
            seed += 1;
            spawn_child(dir.path(), seconds, seed)
        })
        .collect();
    let mut finished_children = 0u64;
    let mut rng = Rng(42);
    let child_violation = Mutex::new(false);
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5 + rng.below(20)));
        if !children.is_empty() && Instant::now() + Duration::from_millis(500) < end {
            let k = rng.below(children.len() as u64) as usize;
            let mut p = children.swap_remove(k);
            let _ = p.child.kill();
            let _ = p.child.wait();
            world.stats.kills.fetch_add(1, SeqCst);
            // Give the reader a moment to drain what it reported.
            std::thread::sleep(Duration::from_millis(1));
            finished_children += p.reported.load(SeqCst);
            if p.violated.load(SeqCst) {
                *child_violation.lock().unwrap() = true;
            }
            let left = end.saturating_duration_since(Instant::now()).as_secs() + 1;
            seed += 1;
            children.push(spawn_child(dir.path(), left, seed));
        }
    }
    world.stop.store(true, SeqCst);
    for h in handles {
        h.join().unwrap();
    }
    rt.block_on(async {
        for h in task_handles {
            h.await.unwrap();
        }
    });
    for mut p in children {
        let status = p.child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        finished_children += p.reported.load(SeqCst);
        if status.code() == Some(3) || p.violated.load(SeqCst) {
            *child_violation.lock().unwrap() = true;
        }
    }

    let s = &world.stats;
    let in_parent = s.acquired.load(SeqCst);
    let violations = s.violations.load(SeqCst) + u64::from(*child_violation.lock().unwrap());
    println!(
        "soak: {:.1} s, {threads} threads, {tasks} tasks, {procs} processes",
        started.elapsed().as_secs_f64()
    );
    println!(
        "acquisitions: {} ({in_parent} threads and tasks, {finished_children} reported by processes)",
        in_parent + finished_children
    );
    println!(
        "timeouts {} busy {} cancelled futures {} panics {} lock files removed {} (refused while open elsewhere {}) processes killed {} stale markers taken over {}",
        s.timeouts.load(SeqCst),
        s.busy.load(SeqCst),
        s.cancelled.load(SeqCst),
        s.panics.load(SeqCst),
        s.removed.load(SeqCst),
        s.removal_refused.load(SeqCst),
        s.kills.load(SeqCst),
        s.stale_markers.load(SeqCst),
    );
    println!("violations: {violations}");
    if violations != 0 {
        std::process::exit(1);
    }
}
