//! `external`, `prefix` and `lock_path`: a lock file named after the prefixed
//! name, in the given directory, locked while the body runs (so another open
//! file description of it, as another process has, cannot take it).

use std::path::{Path, PathBuf};

use lockutils::{synchronized, Error, LockOptions, Registry};

const TMP: &str = env!("CARGO_TARGET_TMPDIR");

/// Whether the lock file of `name` (with `prefix`) in `dir` is locked by
/// someone else: tried through another registry, so only the file lock can
/// refuse.
fn file_is_locked(name: &str, prefix: Option<&str>, dir: &Path) -> bool {
    static PROBE: Registry = Registry::new();
    let mut opts = LockOptions::new(name)
        .external(true)
        .lock_path(dir)
        .registry(&PROBE);
    if let Some(p) = prefix {
        opts = opts.prefix(p);
    }
    // On another thread: this thread's own holds are no evidence.
    std::thread::scope(|s| {
        s.spawn(|| match opts.try_lock() {
            Ok(_) => false,
            Err(Error::WouldBlock { .. }) => true,
            Err(e) => panic!("{e}"),
        })
        .join()
        .unwrap()
    })
}

#[synchronized("ext-job", external, prefix = "nova", lock_path = env!("CARGO_TARGET_TMPDIR"))]
fn job() -> (bool, Vec<lockutils::HeldLock>) {
    (
        file_is_locked("ext-job", Some("nova"), Path::new(TMP)),
        lockutils::held_locks(),
    )
}

#[test]
fn creates_and_locks_the_prefixed_file_in_lock_path() {
    let file = Path::new(TMP).join("nova-ext-job");
    let (locked, held) = job();
    assert!(locked, "the lock file was not locked while the body ran");
    assert!(file.exists());
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].name, "nova-ext-job");
    assert_eq!(held[0].path.as_deref(), Some(file.as_path()));
    assert!(!file_is_locked("ext-job", Some("nova"), Path::new(TMP)));
}

#[synchronized(
    "ext-literal",
    external,
    lock_path = "/tmp/lockutils-macro-test-literal"
)]
fn literal_path() -> bool {
    file_is_locked(
        "ext-literal",
        None,
        Path::new("/tmp/lockutils-macro-test-literal"),
    )
}

#[test]
fn literal_lock_path_is_created() {
    assert!(literal_path());
    assert!(Path::new("/tmp/lockutils-macro-test-literal/ext-literal").exists());
}

struct ImageCache {
    lock_path: PathBuf,
}

impl ImageCache {
    /// Nova's `lock_path=self.lock_path`: a directory known only at run time.
    #[synchronized("image-{name}", external, lock_path = &self.lock_path)]
    fn fetch(&self, name: &str) -> bool {
        file_is_locked(&format!("image-{name}"), None, &self.lock_path)
    }
}

#[synchronized("ext-param", external, prefix = "glance-", lock_path = dir)]
fn in_dir(dir: &Path) -> bool {
    file_is_locked("ext-param", Some("glance-"), dir)
}

#[test]
fn lock_path_from_self_or_a_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let cache = ImageCache {
        lock_path: dir.path().join("images"),
    };
    assert!(cache.fetch("cirros"));
    assert!(dir.path().join("images/image-cirros").exists());
    assert!(in_dir(dir.path()));
    assert!(dir.path().join("glance-ext-param").exists());
}

#[synchronized("ext-default", external)]
fn in_default_dir() -> Option<PathBuf> {
    lockutils::held_locks().pop().and_then(|l| l.path)
}

#[test]
fn default_lock_path_follows_set_defaults() {
    let dir = tempfile::tempdir().unwrap();
    lockutils::set_defaults(dir.path());
    assert_eq!(in_default_dir(), Some(dir.path().join("ext-default")));
    lockutils::clear_defaults();
}

#[synchronized("ext-bad", external, lock_path = "/proc/lockutils-cannot-create-this")]
fn bad_lock_path() {}

#[test]
fn an_unusable_lock_path_panics_naming_lock_and_directory() {
    let err = std::panic::catch_unwind(bad_lock_path).unwrap_err();
    let msg = err.downcast_ref::<String>().expect("a formatted message");
    assert!(msg.contains("bad_lock_path"), "{msg}");
    assert!(msg.contains("\"ext-bad\""), "{msg}");
    assert!(msg.contains("/proc/lockutils-cannot-create-this"), "{msg}");
}
