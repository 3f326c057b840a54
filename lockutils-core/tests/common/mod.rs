//! Helpers shared by the integration tests of lockutils-core: a runtime-free
//! executor, wakers that count, an exclusion checker, a small random number
//! generator and a few Linux `/proc` probes.
//!
//! Every test file includes this module with `mod common;` and uses only part
//! of it, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use lockutils_core::Mode;

// ---------------------------------------------------------------------------
// Executors and wakers
// ---------------------------------------------------------------------------

/// A waker that unparks the thread that made it.
struct Unparker {
    thread: Thread,
    woken: AtomicBool,
}

impl Wake for Unparker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, SeqCst);
        self.thread.unpark();
    }
}

/// Runs `fut` to completion on this thread, parking between polls: an
/// executor without any async runtime.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    block_on_with(fut, |_| {})
}

/// Like [`block_on`], and calls `on_pending(n)` after the `n`-th poll that
/// returned `Pending` (before parking). A lock future that returned `Pending`
/// once is queued, so `on_pending(1)` is an exact "now waiting" signal.
pub fn block_on_with<F: Future>(fut: F, mut on_pending: impl FnMut(usize)) -> F::Output {
    let unparker = Arc::new(Unparker {
        thread: std::thread::current(),
        woken: AtomicBool::new(false),
    });
    let waker = Waker::from(Arc::clone(&unparker));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    let mut pendings = 0;
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        pendings += 1;
        on_pending(pendings);
        while !unparker.woken.swap(false, SeqCst) {
            std::thread::park();
        }
    }
}

/// A waker that counts its wake-ups.
#[derive(Default)]
pub struct WakeCounter(AtomicUsize);

impl WakeCounter {
    /// A fresh counter and a waker feeding it.
    pub fn new() -> (Arc<WakeCounter>, Waker) {
        let c = Arc::new(WakeCounter::default());
        let w = Waker::from(Arc::clone(&c));
        (c, w)
    }

    /// Wake-ups so far.
    pub fn count(&self) -> usize {
        self.0.load(SeqCst)
    }
}

impl Wake for WakeCounter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// Polls `fut` once with `waker`.
pub fn poll_once<F: Future + Unpin>(fut: &mut F, waker: &Waker) -> Poll<F::Output> {
    std::pin::Pin::new(fut).poll(&mut Context::from_waker(waker))
}

/// The life of a contended in-process acquisition, as async-lock's
/// `check_yields_when_contended`: pending, still pending when polled again,
/// woken by the time `release` returns (an in-process release wakes the next
/// waiter synchronously), then ready.
pub fn assert_pending_then_woken<F: Future + Unpin>(
    fut: &mut F,
    release: impl FnOnce(),
) -> F::Output {
    let (wakes, waker) = WakeCounter::new();
    assert!(poll_once(fut, &waker).is_pending(), "contended: must wait");
    assert!(poll_once(fut, &waker).is_pending(), "still held: must wait");
    assert_eq!(wakes.count(), 0, "woken while the holder still holds");
    release();
    assert!(wakes.count() > 0, "the release did not wake the waiter");
    match poll_once(fut, &waker) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("woken but not ready after the release"),
    }
}

// ---------------------------------------------------------------------------
// Exclusion checking
// ---------------------------------------------------------------------------

/// Who is inside one critical section: at most one writer and no reader, or
/// readers only. Violations are counted, not panicked on, so the checking
/// thread can finish and release its lock.
#[derive(Default, Debug)]
pub struct Occupancy {
    writers: AtomicUsize,
    readers: AtomicUsize,
    max_readers: AtomicUsize,
    violations: AtomicUsize,
    entries: AtomicUsize,
}

impl Occupancy {
    /// An empty critical section, usable in a `static`.
    pub const fn new_const() -> Self {
        Occupancy {
            writers: AtomicUsize::new(0),
            readers: AtomicUsize::new(0),
            max_readers: AtomicUsize::new(0),
            violations: AtomicUsize::new(0),
            entries: AtomicUsize::new(0),
        }
    }

    /// Enters in `mode`; leave by dropping the returned token.
    pub fn enter(&self, mode: Mode) -> Inside<'_> {
        self.entries.fetch_add(1, SeqCst);
        match mode {
            Mode::Exclusive => {
                let w = self.writers.fetch_add(1, SeqCst);
                let r = self.readers.load(SeqCst);
                if w != 0 || r != 0 {
                    self.violations.fetch_add(1, SeqCst);
                }
            }
            Mode::Shared => {
                let r = self.readers.fetch_add(1, SeqCst) + 1;
                self.max_readers.fetch_max(r, SeqCst);
                if self.writers.load(SeqCst) != 0 {
                    self.violations.fetch_add(1, SeqCst);
                }
            }
        }
        Inside { occ: self, mode }
    }

    /// Overlaps seen so far.
    pub fn violations(&self) -> usize {
        self.violations.load(SeqCst)
    }

    /// Most readers seen inside at once.
    pub fn max_readers(&self) -> usize {
        self.max_readers.load(SeqCst)
    }

    /// Times anyone entered.
    pub fn entries(&self) -> usize {
        self.entries.load(SeqCst)
    }

    /// Whether nobody is inside now.
    pub fn is_vacant(&self) -> bool {
        self.writers.load(SeqCst) == 0 && self.readers.load(SeqCst) == 0
    }
}

/// A stay inside an [`Occupancy`].
pub struct Inside<'a> {
    occ: &'a Occupancy,
    mode: Mode,
}

impl Drop for Inside<'_> {
    fn drop(&mut self) {
        match self.mode {
            Mode::Exclusive => self.occ.writers.fetch_sub(1, SeqCst),
            Mode::Shared => self.occ.readers.fetch_sub(1, SeqCst),
        };
    }
}

// ---------------------------------------------------------------------------
// Randomness
// ---------------------------------------------------------------------------

/// xorshift64*: enough randomness for schedules, reproducible from a seed.
#[derive(Clone, Debug)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator; a zero seed is replaced by a fixed non-zero one.
    pub fn new(seed: u64) -> Self {
        XorShift(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `1 / n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

// ---------------------------------------------------------------------------
// Waiting for conditions that become true by themselves
// ---------------------------------------------------------------------------

/// Polls `cond` until it holds, panicking with `what` after `limit`. Only for
/// conditions another thread makes true on its own; never as a replacement
/// for synchronising with a thread the test controls.
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

// ---------------------------------------------------------------------------
// Linux /proc probes
// ---------------------------------------------------------------------------

/// The kernel thread id of the calling thread.
pub fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() }
}

/// The scheduler state letter (`R`, `S`, `D`, ...) of thread `tid` of this
/// process, from `/proc/self/task/{tid}/stat`.
pub fn thread_state(tid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().next()?.chars().next()
}

/// Waits until thread `tid` sleeps (state `S`) on three reads in a row, a
/// millisecond apart: a lock waiter that has parked.
pub fn wait_until_sleeping(tid: i32) {
    let mut streak = 0;
    wait_until(
        &format!("thread {tid} sleeps"),
        Duration::from_secs(10),
        || {
            if thread_state(tid) == Some('S') {
                streak += 1;
            } else {
                streak = 0;
            }
            streak >= 3
        },
    );
}

/// Threads of this process whose name is `name` (as the kernel keeps it:
/// cut to 15 bytes).
pub fn threads_named(name: &str) -> usize {
    let name = &name.as_bytes()[..name.len().min(15)];
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    dir.filter_map(Result::ok)
        .filter(|e| {
            std::fs::read(e.path().join("comm"))
                .is_ok_and(|c| c.strip_suffix(b"\n").unwrap_or(&c) == name)
        })
        .count()
}

/// The `/proc/locks` identity of a file: `MAJOR:MINOR:INODE`.
fn proc_locks_id(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).expect("lock file exists");
    let dev = m.dev();
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    format!("{major:02x}:{minor:02x}:{}", m.ino())
}

/// A whole-file OFD lock request of `l_type` (`F_WRLCK`, `F_RDLCK`,
/// `F_UNLCK`) on `file`, as another holder would make it: `F_OFD_SETLKW`
/// when `wait`, else `F_OFD_SETLK`. Whether it was granted.
pub fn ofd_lock(file: &std::fs::File, l_type: libc::c_int, wait: bool) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: all-zero bytes are a valid `flock`; zero start and length with
    // SEEK_SET cover the whole file, and OFD requests need `l_pid == 0`.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = l_type as _;
    fl.l_whence = libc::SEEK_SET as _;
    let cmd = if wait {
        libc::F_OFD_SETLKW
    } else {
        libc::F_OFD_SETLK
    };
    // SAFETY: `file` is open for the call; `fl` outlives it.
    unsafe { libc::fcntl(file.as_raw_fd(), cmd, &fl) == 0 }
}

/// Waiters queued in the kernel for a lock on `path`, as `/proc/locks`
/// lists them (lines `N: -> ...`).
///
/// `/proc/locks` is read in page-sized chunks, each a consistent snapshot of
/// the system-wide lock list but not of each other: while other locks come
/// and go, an entry can be missed or seen twice. A waiter can be missed, but
/// none is ever invented, so "no waiter" is checked on several reads in a
/// row ([`assert_no_kernel_waiters`]).
pub fn kernel_waiters_on(path: &Path) -> usize {
    let id = proc_locks_id(path);
    let table = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    table
        .lines()
        .filter(|line| {
            let mut fields = line.split_whitespace().skip(1);
            // "->", type, advisory, mode, pid, dev:ino
            fields.next() == Some("->") && fields.nth(4) == Some(id.as_str())
        })
        .count()
}

/// The count of kernel waiters on `path` in one consistent reading of
/// `/proc/locks` (`lockutils_core::procfs::read_proc_locks`: the whole table
/// in one read, or two readings alike), for assertions on a count that
/// should hold still (a bound, an exact number). A plain read
/// ([`kernel_waiters_on`]) can repeat or drop a whole block of waiters when
/// other tests' locks come and go between its pages.
#[cfg(target_os = "linux")]
pub fn settled_kernel_waiters_on(path: &Path) -> usize {
    use lockutils_core::procfs::{read_proc_locks, LockKey};
    let key = LockKey::of(&std::fs::metadata(path).expect("lock file exists"));
    let inos = std::collections::HashSet::from([key.ino]);
    for _ in 0..500 {
        if let Some(lines) = read_proc_locks(&inos) {
            return lines.iter().filter(|l| l.blocked && l.key == key).count();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("no consistent reading of /proc/locks in 500 tries");
}

/// Waits until `/proc/locks` shows no waiter for `path` on five reads in a
/// row, panicking with `what` after `limit`.
pub fn assert_no_kernel_waiters(path: &Path, what: &str, limit: Duration) {
    let mut clean = 0;
    wait_until(what, limit, || {
        if kernel_waiters_on(path) == 0 {
            clean += 1;
        } else {
            clean = 0;
        }
        clean >= 5
    });
}

// ---------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------

/// A fresh temporary directory for lock files.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

/// Every path below `root`, recursively, without following symlinks.
pub fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.filter_map(Result::ok) {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}
