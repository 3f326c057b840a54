//! Kept descriptors: lock files a process locks again and again stay open
//! between acquisitions, so an uncontended cycle is `F_OFD_SETLK`, the
//! identity check and `F_UNLCK`, without `open` and `close`.
//!
//! - A kept file is unlocked before it is kept, and taken out of the cache
//!   while in use: no two acquisitions ever share an open file (which would
//!   share its OFD lock).
//! - Every acquisition still checks, while holding the lock, that the locked
//!   file is still linked at its path; a kept file that a remover (in any
//!   process) unlinked fails the check and is closed, and the acquisition
//!   opens the file now at the path.
//! - Kept files are keyed by their absolute path, byte for byte as
//!   [`join`] spells it, so changing the lock directory (`set_defaults`,
//!   `lock_path`, the environment) never reuses a file of the old
//!   directory. A file reached through a relative lock directory is not
//!   kept: after a change of working directory its path names another file.
//!   Two spellings of one directory keep two open files: their OFD locks
//!   exclude each other like any two, and a removal closes every kept file
//!   of the file it removes, whatever its spelling.
//! - Only on Linux, where locks belong to the open file: elsewhere closing
//!   any descriptor of a file releases the process's locks on it.
//! - They are opened `O_CLOEXEC` like every lock file: no command started by
//!   the process inherits them. A child forked without `exec` does inherit
//!   them, sharing their open files (and so their OFD locks) with the parent;
//!   a `pthread_atfork` child hook (no signal handler) makes the child forget
//!   the parent's kept files, and it closes them on its first use (see
//!   [`fork_hooks`](crate::fork_hooks)).
//! - At most [`MAX_KEPT`] descriptors are kept (least recently used evicted);
//!   each is closed after [`KEPT_IDLE_CLOSE`] unused.

use std::fs::{File, Metadata};

use crate::lock_fds::LockFile;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use crate::timer;

/// Most lock files kept open by a process between acquisitions.
pub const MAX_KEPT: usize = 16;

/// How long a kept lock file stays open unused.
pub const KEPT_IDLE_CLOSE: Duration = Duration::from_secs(2);

/// Least pause before the next sweep: more than a coarse clock tick.
const COARSE_SLACK: Duration = Duration::from_millis(20);

struct Kept {
    path: PathBuf,
    file: LockFile,
    /// [`coarse_now`] when it was put back.
    last_used: Duration,
}

/// The monotonic clock at its tick resolution (a few milliseconds), which
/// costs a memory read where the precise clock costs a counter read and its
/// conversion: the idle limit is seconds, and this is read on every release.
fn coarse_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC_COARSE
    // exists on every Linux this crate builds for (2.6.32 and later).
    let r = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    debug_assert_eq!(r, 0, "clock_gettime(CLOCK_MONOTONIC_COARSE)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

struct Cache {
    kept: Vec<Kept>,
    /// The fork generation these files belong to.
    generation: u64,
    sweep_scheduled: bool,
}

static CACHE: Mutex<Cache> = Mutex::new(Cache {
    kept: Vec::new(),
    generation: 0,
    sweep_scheduled: false,
});

/// Bumped in the child of every `fork`.
static FORKS: AtomicU64 = AtomicU64::new(0);
/// Bumped at every `fork` while the fork hooks still hold their locks (see
/// [`epoch`]).
static EPOCH: AtomicU64 = AtomicU64::new(0);
static WATCH_FORKS: Once = Once::new();

/// Moves the fork generation on; the fork hooks' child hook calls it.
pub(crate) fn forked() {
    FORKS.fetch_add(1, Ordering::Relaxed);
}

/// Moves the [`epoch`] on; the fork hooks' parent and child hooks call it
/// after the fork, before they release the cache's and the descriptor
/// list's locks. (Before the fork would not do: a thread could read the new
/// epoch, open a file, and list it or keep it once the fork is done.)
pub(crate) fn fork_done() {
    EPOCH.fetch_add(1, Ordering::Relaxed);
}

/// Makes [`generation`] change in the child of every later `fork`, and
/// registers the hooks that keep lockutils' own threads from splitting a
/// lock across a fork ([`fork_hooks`](crate::fork_hooks)); false if that
/// cannot be arranged (then nothing that would be wrong in a forked child
/// may be kept).
pub(crate) fn watch_forks() -> bool {
    WATCH_FORKS.call_once(|| {
        if !crate::fork_hooks::register() {
            FORKS.store(u64::MAX, Ordering::Relaxed);
        }
    });
    FORKS.load(Ordering::Relaxed) != u64::MAX
}

/// The cache's lock, held across a fork by the fork hooks.
pub(crate) fn hold_for_fork() -> Box<dyn std::any::Any> {
    Box::new(CACHE.lock().unwrap_or_else(|e| e.into_inner()))
}

/// The fork epoch: moves on at every `fork`, in parent and child. A file
/// open at a fork is shared with the child (a child forked without `exec`
/// inherits the descriptor), and a lock the parent later takes on it would
/// be the child's too: it would outlive the parent, even a SIGKILLed one,
/// until the child exits. So the child closes its copies of the kept files
/// at once (the fork hooks' child hook), and a file out of the cache at a
/// fork (held, or being locked or waited on) is never kept again: [`put`]
/// takes only a file opened or taken in the current epoch, which it checks
/// under the cache's lock, the lock the fork hooks hold across the fork and
/// until the epoch has moved on.
///
/// The fork hooks are registered first, so that no fork goes uncounted
/// between this reading and the file's open.
pub(crate) fn epoch() -> u64 {
    watch_forks();
    EPOCH.load(Ordering::Relaxed)
}

/// In a forked child: closes the parent's kept files now, so that none of
/// their open files stays shared with the parent (see [`epoch`]).
pub(crate) fn close_inherited() {
    drop(cache());
}

/// The fork generation of this process: changes in the child of a `fork`.
pub(crate) fn generation() -> u64 {
    FORKS.load(Ordering::Relaxed)
}

fn cache() -> MutexGuard<'static, Cache> {
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache.enter(FORKS.load(Ordering::Relaxed));
    cache
}

impl Cache {
    /// Readies the cache for use in fork generation `generation`.
    fn enter(&mut self, generation: u64) {
        if self.generation != generation {
            // Inherited from the parent: its open files are not ours to
            // lock. Closing our copies leaves the parent's locks alone.
            self.kept.clear();
            self.generation = generation;
            // The parent's sweep was due on its timer thread; this process
            // schedules its own (and starts its own timer thread).
            self.sweep_scheduled = false;
        }
    }
}

/// How many lock files this process keeps open between acquisitions.
pub fn kept_descriptors() -> usize {
    cache().kept.len()
}

/// Closes every kept open file of the same file as `held` (a removal is
/// about to ask whether anyone else has it open), whatever spelling of its
/// path it was kept under: one `fstat` per kept file, on a cold path.
pub(crate) fn close_same_file(held: &File) -> io::Result<()> {
    let held = held.metadata()?;
    let same = same_file_as(&held);
    let closed: Vec<Kept> = cache().kept.extract_if(.., |k| same(k)).collect();
    // Closed outside the lock.
    drop(closed);
    Ok(())
}

/// Picks the kept files of the file `held` describes.
fn same_file_as(held: &Metadata) -> impl Fn(&Kept) -> bool + '_ {
    |k| {
        k.file
            .metadata()
            .is_ok_and(|m| m.dev() == held.dev() && m.ino() == held.ino())
    }
}

/// Whether a file opened at `path` may be kept open (see [`put`]).
fn may_keep(path: &Path) -> bool {
    path.is_absolute() && cfg!(target_os = "linux")
}

/// Takes the kept open file of lock file `file_name` in `dir`, with its path
/// (as [`join`] spells it), without building that path first: this is every
/// uncontended acquisition's lookup.
pub(crate) fn take_in(dir: &Path, file_name: &str) -> Option<(PathBuf, LockFile)> {
    let mut cache = cache();
    let i = cache
        .kept
        .iter()
        .rposition(|k| is_join(&k.path, dir, file_name))?;
    let kept = cache.kept.swap_remove(i);
    Some((kept.path, kept.file))
}

/// The path of lock file `file_name` in `dir`: as `dir.join(file_name)` for
/// a plain file name, built in one allocation of its final size. Kept files
/// are keyed by this spelling.
pub(crate) fn join(dir: &Path, file_name: &str) -> PathBuf {
    let dir = dir.as_os_str();
    let mut path = std::ffi::OsString::with_capacity(dir.len() + 1 + file_name.len());
    path.push(dir);
    if needs_separator(dir.as_bytes()) {
        path.push("/");
    }
    path.push(file_name);
    PathBuf::from(path)
}

fn needs_separator(dir: &[u8]) -> bool {
    !dir.is_empty() && !dir.ends_with(b"/")
}

/// Whether `path` is [`join`]`(dir, file_name)`, byte for byte.
fn is_join(path: &Path, dir: &Path, file_name: &str) -> bool {
    let (path, dir, name) = (
        path.as_os_str().as_bytes(),
        dir.as_os_str().as_bytes(),
        file_name.as_bytes(),
    );
    let sep = usize::from(needs_separator(dir));
    path.len() == dir.len() + sep + name.len()
        && path.ends_with(name)
        && path.starts_with(dir)
        && (sep == 0 || path[dir.len()] == b'/')
}

/// Keeps `file`, unlocked, open at `path` for the next acquisition; or
/// closes it where keeping it would not be safe:
/// - a file opened (or taken from the cache) before the [`epoch`] moved on
///   was open at a fork, and may be shared with a child;
/// - a relative `path` names another file once the process changes its
///   working directory, and the kept one would still pass the link check;
/// - outside Linux, locks are the process's, not the open file's, and
///   closing any descriptor of a file (a kept one swept while another of
///   the same file is locked) releases them all;
/// - with no fork hook, a forked child could use the parent's open files.
pub(crate) fn put(path: PathBuf, file: LockFile, epoch: u64) {
    if !may_keep(&path) || !watch_forks() {
        return;
    }
    let now = coarse_now();
    let mut cache = cache();
    if epoch != EPOCH.load(Ordering::Relaxed) {
        drop(cache);
        return;
    }
    if cache.kept.len() >= MAX_KEPT {
        let oldest = (0..cache.kept.len())
            .min_by_key(|&i| cache.kept[i].last_used)
            .expect("the cache is full");
        cache.kept.swap_remove(oldest);
    }
    cache.kept.push(Kept {
        path,
        file,
        last_used: now,
    });
    if !cache.sweep_scheduled {
        cache.sweep_scheduled = true;
        timer::run_at(Instant::now() + KEPT_IDLE_CLOSE, sweep);
    }
}

/// Closes the files unused for [`KEPT_IDLE_CLOSE`]; runs on the timer thread.
fn sweep() {
    let mut cache = cache();
    let now = coarse_now();
    let closed: Vec<Kept> = cache
        .kept
        .extract_if(.., |k| now.saturating_sub(k.last_used) >= KEPT_IDLE_CLOSE)
        .collect();
    match cache.kept.iter().map(|k| k.last_used).min() {
        Some(oldest) => {
            let left = (oldest + KEPT_IDLE_CLOSE).saturating_sub(now);
            // A coarse tick late at worst; never a busy loop of sweeps.
            timer::run_at(Instant::now() + left.max(COARSE_SLACK), sweep);
        }
        None => cache.sweep_scheduled = false,
    }
    drop(cache);
    // Closed outside the lock.
    drop(closed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::{open_lock_file, DEFAULT_FILE_MODE};

    fn kept(path: &Path) -> Kept {
        Kept {
            path: path.to_owned(),
            file: LockFile::list(open_lock_file(path, true, DEFAULT_FILE_MODE).unwrap(), epoch())
                .unwrap(),
            last_used: coarse_now(),
        }
    }

    // On a cache of its own: the process's cache is shared with the tests
    // running beside this one.
    #[test]
    fn a_forked_child_forgets_the_parents_kept_files() {
        let tmp = tempfile::tempdir().unwrap();
        let mut cache = Cache {
            kept: vec![kept(&tmp.path().join("forked"))],
            generation: 0,
            sweep_scheduled: true,
        };
        cache.enter(0);
        assert_eq!(cache.kept.len(), 1, "same process: kept");
        // What the fork hook makes a child's generation.
        cache.enter(1);
        assert!(cache.kept.is_empty(), "a forked child kept its parent's files");
        assert!(
            !cache.sweep_scheduled,
            "a forked child counted on its parent's sweep"
        );
    }

    #[test]
    fn a_removal_closes_the_kept_files_of_its_file_under_every_spelling() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::create_dir(dir.join("sub")).unwrap();
        let mut kept_files = vec![
            kept(&join(dir, "a")),
            kept(&join(&dir.join("."), "a")),
            kept(&join(&dir.join("sub").join(".."), "a")),
            kept(&join(dir, "b")),
        ];
        let held = open_lock_file(&join(dir, "a"), false, DEFAULT_FILE_MODE).unwrap();
        let held = held.metadata().unwrap();
        let same = same_file_as(&held);
        let closed: Vec<Kept> = kept_files.extract_if(.., |k| same(k)).collect();
        assert_eq!(closed.len(), 3, "every spelling of `a` is closed");
        assert_eq!(kept_files.len(), 1);
        assert!(is_join(&kept_files[0].path, dir, "b"), "`b` stays kept");
    }

    #[test]
    fn only_absolute_paths_are_kept() {
        assert!(may_keep(Path::new("/run/lock/a")) == cfg!(target_os = "linux"));
        assert!(!may_keep(Path::new("locks/a")));
        assert!(!may_keep(Path::new("a")));
    }

    #[test]
    fn join_spells_paths_as_path_join_and_is_join_matches_only_them() {
        for (dir, name) in [("/run/lock", "a"), ("/run/lock/", "a"), ("rel", "x-y"), ("", "a")] {
            let joined = join(Path::new(dir), name);
            assert_eq!(joined.as_os_str(), Path::new(dir).join(name).as_os_str());
            assert!(is_join(&joined, Path::new(dir), name), "{dir:?} {name:?}");
        }
        let path = join(Path::new("/run/lock"), "ab");
        for (dir, name) in [
            ("/run/lock", "a"),
            ("/run/lock", "b"),
            ("/run/loc", "kab"),
            ("/run/lock/a", "b"),
            ("/run/lockx", "ab"),
            ("/run", "lock/ab"),
        ] {
            assert_eq!(
                is_join(&path, Path::new(dir), name),
                Path::new(dir).join(name).as_os_str() == path.as_os_str(),
                "{dir:?} {name:?}"
            );
        }
        assert!(!is_join(&path, Path::new("/run/lock"), "a"));
        assert!(!is_join(&path, Path::new("/run/lockx"), "ab"));
        assert!(!is_join(Path::new("/run/lockxab"), Path::new("/run/lock"), "ab"));
    }
}
