//! What the kernel knows about a lock file, from Linux's `/proc/locks`.
//!
//! Tests use it to wait until a child is really blocked on a lock (instead of
//! sleeping and hoping), which makes "the waiter was blocked when the holder
//! went away" a checked fact rather than a timing assumption.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// How many lock requests on the file at `path` are blocked, waiting.
///
/// `/proc/locks` lists every lock and every blocked request (marked `->`),
/// identifying the file as `MAJOR:MINOR:INODE` (device numbers in hex).
///
/// # Panics
/// If `path` or `/proc/locks` cannot be read.
pub fn blocked_waiters(path: &Path) -> usize {
    let meta = std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("cannot stat lock file {}: {e}", path.display()));
    let dev = meta.dev();
    let id = format!(
        "{:02x}:{:02x}:{}",
        libc::major(dev),
        libc::minor(dev),
        meta.ino()
    );
    let locks = read_proc_locks();
    locks
        .lines()
        .filter(|line| {
            let mut fields = line.split_whitespace().skip(1);
            // Blocked requests read `N: -> KIND ADVISORY MODE PID DEV:INO START END`.
            fields.next() == Some("->") && fields.nth(4) == Some(id.as_str())
        })
        .count()
}

/// `/proc/locks` in one `read(2)` with a large buffer: the kernel renders the
/// table afresh on each read, so several small reads (as `read_to_string`
/// starts with) can repeat or skip lines while locks change.
fn read_proc_locks() -> String {
    use std::io::Read;
    let mut file = std::fs::File::open("/proc/locks")
        .unwrap_or_else(|e| panic!("cannot open /proc/locks: {e}"));
    let mut buf = vec![0u8; 1 << 20];
    let n = file
        .read(&mut buf)
        .unwrap_or_else(|e| panic!("cannot read /proc/locks: {e}"));
    buf.truncate(n);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Waits until at least one request on the file at `path` is blocked.
///
/// # Panics
/// If none is within `timeout`.
pub fn wait_until_blocked(path: &Path, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while blocked_waiters(path) == 0 {
        assert!(
            Instant::now() < deadline,
            "no process blocked on {} within {timeout:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}
