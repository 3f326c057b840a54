//! Bad names and bad lock directories: typed errors that name the lock, the
//! path and the fix, and nothing ever created outside the lock directory.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use common::{block_on, walk};
use lockutils_core::{lock_file_name, Error, LockGuard, LockOptions, Registry, MAX_FILE_NAME};

/// A scratch root with a `locks` directory inside; everything a case creates
/// must be below `locks` (or be what the case itself set up).
struct Sandbox {
    root: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let root = common::tempdir();
        std::fs::create_dir(root.path().join("locks")).unwrap();
        Sandbox { root }
    }

    fn root(&self) -> &Path {
        self.root.path()
    }

    fn locks(&self) -> PathBuf {
        self.root.path().join("locks")
    }

    /// Asserts that every path under the root is one of `allowed` or below
    /// the lock directory.
    fn assert_contained(&self, allowed: &[PathBuf]) {
        let locks = self.locks();
        for p in walk(self.root()) {
            assert!(
                p.starts_with(&locks) || allowed.contains(&p),
                "created outside the lock directory: {}",
                p.display()
            );
        }
    }
}

/// Every way of taking the lock; each must fail with an error `check` accepts.
fn every_acquisition_fails(opts: LockOptions<'_, '_>, check: impl Fn(&Error)) {
    check(&opts.lock().unwrap_err());
    check(&opts.try_lock().unwrap_err());
    check(&opts.shared().lock().unwrap_err());
    check(&block_on(opts.lock_async()).unwrap_err());
}

#[test]
fn empty_nul_dot_and_dotdot_are_invalid_names() {
    let sb = Sandbox::new();
    let locks = sb.locks();
    let reg = Registry::new();
    for bad in ["", "a\0b", ".", ".."] {
        for external in [false, true] {
            let opts = LockOptions::new(bad)
                .registry(&reg)
                .external(external)
                .lock_path(&locks);
            every_acquisition_fails(opts, |e| {
                assert!(matches!(e, Error::InvalidName { .. }), "{bad:?}: {e:?}");
                assert_eq!(e.lock_name(), bad);
                let msg = e.report().to_string();
                assert!(msg.contains(&format!("{bad:?}")), "{msg}");
                // The reason says what to do.
                assert!(
                    ["give", "remove", "choose"].iter().any(|w| msg.contains(w)),
                    "no fix in: {msg}"
                );
            });
            assert!(matches!(
                opts.remove_lock_file(),
                Err(Error::InvalidName { .. })
            ));
        }
    }
    // A NUL byte in the prefix is refused too.
    let e = LockOptions::new("x")
        .prefix("p\0")
        .registry(&reg)
        .lock()
        .unwrap_err();
    assert!(matches!(e, Error::InvalidName { .. }), "{e:?}");
    assert!(reg.is_empty());
    assert!(walk(&locks).is_empty(), "files created for invalid names");
    sb.assert_contained(&[]);
}

#[test]
fn names_with_slashes_and_dots_stay_inside_the_lock_dir() {
    let sb = Sandbox::new();
    let locks = sb.locks();
    let reg = Registry::new();
    for (name, file) in [
        ("a/b", "a_b"),
        ("../../x", ".._.._x"),
        ("../..", ".._.."),
        ("/etc/passwd", "_etc_passwd"),
        ("./x", "._x"),
        ("...", "..."),
        ("/", "_"),
        ("x/", "x_"),
    ] {
        let g = LockOptions::new(name)
            .registry(&reg)
            .external(true)
            .lock_path(&locks)
            .lock()
            .unwrap();
        assert_eq!(LockGuard::name(&g), file);
        let path = LockGuard::path(&g).unwrap().to_owned();
        assert_eq!(path, locks.join(file), "{name:?}");
        assert_eq!(path.parent(), Some(locks.as_path()), "{name:?}");
        drop(g);
        sb.assert_contained(&[]);
    }
    // With a prefix, even ".." is an ordinary name; the prefix is sanitised.
    let g = LockOptions::new("..")
        .prefix("../p")
        .registry(&reg)
        .external(true)
        .lock_path(&locks)
        .lock()
        .unwrap();
    assert_eq!(LockGuard::path(&g).unwrap().parent(), Some(locks.as_path()));
    drop(g);
    sb.assert_contained(&[]);
    assert!(!sb.root().join("x").exists());
    assert!(reg.is_empty());
}

#[test]
fn very_long_names_are_shortened_readably_and_distinctly() {
    let sb = Sandbox::new();
    let locks = sb.locks();
    let reg = Registry::new();
    let long_a = format!("{}-one", "a".repeat(300));
    let long_b = format!("{}-two", "a".repeat(300));
    let long_utf8 = "é".repeat(200); // 400 bytes, two-byte characters
    let names = [long_a.as_str(), long_b.as_str(), long_utf8.as_str()];
    let opts = |n| {
        LockOptions::new(n)
            .registry(&reg)
            .external(true)
            .lock_path(&locks)
    };
    // All held at once: distinct names are distinct locks.
    let guards: Vec<_> = names.iter().map(|n| opts(n).lock().unwrap()).collect();
    let files: Vec<String> = guards
        .iter()
        .map(|g| LockGuard::name(g).to_owned())
        .collect();
    for (name, file) in names.iter().zip(&files) {
        assert!(file.len() <= MAX_FILE_NAME, "{} bytes", file.len());
        // A readable prefix of the original name is kept.
        let kept: String = name.chars().take(20).collect();
        assert!(file.starts_with(&kept), "{file}");
        assert_eq!(*file, lock_file_name(name, None).unwrap());
    }
    assert_ne!(files[0], files[1], "names differing at the end collide");
    for g in &guards {
        let p = LockGuard::path(g).unwrap();
        assert_eq!(p.parent(), Some(locks.as_path()));
        assert!(p.is_file());
    }
    drop(guards);
    // The shortened name is stable: the same name is the same lock again.
    let g = opts(&long_a).lock().unwrap();
    assert_eq!(LockGuard::name(&g), files[0]);
    drop(g);
    // A long prefix counts towards the limit too.
    let long_prefix = "p".repeat(250);
    let g = opts("x").prefix(&long_prefix).lock().unwrap();
    assert!(LockGuard::name(&g).len() <= MAX_FILE_NAME);
    drop(g);
    // A name of exactly the limit is kept as is.
    let exact = "e".repeat(MAX_FILE_NAME);
    let g = opts(&exact).lock().unwrap();
    assert_eq!(LockGuard::name(&g), exact);
    drop(g);
    sb.assert_contained(&[]);
    assert!(reg.is_empty());
}

/// Checks a lock directory error: typed, naming the lock, the directory and
/// the ways to choose another.
fn assert_lock_path_error(e: &Error, name: &str, dir: &Path, reason: &str) {
    match e {
        Error::LockPath { path, .. } => assert_eq!(path, dir),
        other => panic!("expected LockPath, got {other:?}"),
    }
    assert_eq!(e.lock_name(), name);
    let msg = e.report().to_string();
    assert!(msg.contains(&format!("\"{name}\"")), "no lock name: {msg}");
    assert!(msg.contains(&*dir.to_string_lossy()), "no path: {msg}");
    assert!(msg.contains(reason), "no reason {reason:?}: {msg}");
    assert!(
        msg.contains("lock_path") && msg.contains("LOCKUTILS_LOCK_PATH"),
        "no fix: {msg}"
    );
}

#[test]
fn a_lock_path_that_is_a_regular_file() {
    let sb = Sandbox::new();
    let file = sb.root().join("plain-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let reg = Registry::new();
    let opts = LockOptions::new("bad-file-dir")
        .registry(&reg)
        .external(true)
        .lock_path(&file);
    every_acquisition_fails(opts, |e| {
        assert_lock_path_error(e, "bad-file-dir", &file, "not a directory")
    });
    assert_eq!(std::fs::read(&file).unwrap(), b"not a directory");
    assert!(reg.is_empty());
    sb.assert_contained(&[file]);
}

#[test]
fn a_lock_path_that_is_a_dangling_symlink() {
    let sb = Sandbox::new();
    let link = sb.root().join("dangling");
    let target = sb.root().join("missing-target");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let reg = Registry::new();
    let opts = LockOptions::new("bad-dangling")
        .registry(&reg)
        .external(true)
        .lock_path(&link);
    every_acquisition_fails(opts, |e| {
        assert_lock_path_error(e, "bad-dangling", &link, "symbolic link")
    });
    assert!(!target.exists(), "the symlink target was created");
    assert!(reg.is_empty());
    sb.assert_contained(&[link]);
}

#[test]
fn a_lock_path_below_a_regular_file_cannot_be_created() {
    let sb = Sandbox::new();
    let file = sb.root().join("plain-file");
    std::fs::write(&file, b"").unwrap();
    let dir = file.join("sub").join("locks");
    let reg = Registry::new();
    let opts = LockOptions::new("bad-below-file")
        .registry(&reg)
        .external(true)
        .lock_path(&dir);
    every_acquisition_fails(opts, |e| {
        assert_lock_path_error(e, "bad-below-file", &dir, "cannot be");
    });
    assert!(reg.is_empty());
    sb.assert_contained(&[file]);
}

/// oslo's `Permission denied: '/opt/stack'`: a lock directory this user may
/// not create. Root may create anything, so as root the test runs itself
/// again in a child process that dropped to uid/gid 65534 (nobody), and
/// requires that run to pass.
#[test]
fn a_lock_path_without_permission() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        use std::os::unix::process::CommandExt;
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "a_lock_path_without_permission",
                "--test-threads=1",
            ])
            .uid(65534)
            .gid(65534)
            .output()
            .expect("run this test again as uid 65534");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("1 passed"),
            "the unprivileged run failed or did not run:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let sb = Sandbox::new();
    let ro = sb.root().join("read-only");
    std::fs::create_dir(&ro).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o500)).unwrap();
    let dir = ro.join("stack");
    let reg = Registry::new();
    let opts = LockOptions::new("availability_zone")
        .registry(&reg)
        .external(true)
        .lock_path(&dir);
    let e = opts.lock().unwrap_err();
    assert_lock_path_error(&e, "availability_zone", &dir, "cannot be created");
    let source = std::error::Error::source(&e).expect("the OS error is kept as the source");
    assert!(
        source.to_string().to_lowercase().contains("permission"),
        "{source}"
    );
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o700)).unwrap();
    sb.assert_contained(&[ro]);
}

#[test]
fn a_missing_lock_path_is_created_with_its_parents() {
    let sb = Sandbox::new();
    let dir = sb.locks().join("a").join("b");
    let reg = Registry::new();
    let g = LockOptions::new("bad-missing")
        .registry(&reg)
        .external(true)
        .lock_path(&dir)
        .lock()
        .unwrap();
    assert!(dir.join("bad-missing").is_file());
    drop(g);
    sb.assert_contained(&[]);
}

#[test]
fn a_symlink_in_place_of_the_lock_file_is_refused() {
    let sb = Sandbox::new();
    let locks = sb.locks();
    let victim = sb.root().join("victim");
    let link = sb.locks().join("bad-link");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let reg = Registry::new();
    let opts = LockOptions::new("bad-link")
        .registry(&reg)
        .external(true)
        .lock_path(&locks);
    every_acquisition_fails(opts, |e| {
        assert!(matches!(e, Error::LockFile { .. }), "{e:?}");
        let msg = e.report().to_string();
        assert!(
            msg.contains("bad-link") && msg.contains("symbolic link") && msg.contains("remove"),
            "{msg}"
        );
        assert!(!msg.contains("writable"), "blames the directory: {msg}");
    });
    assert!(!victim.exists(), "followed the symlink");
    assert!(reg.is_empty());
    sb.assert_contained(&[]);
}

#[test]
fn a_directory_in_place_of_the_lock_file_is_a_lock_file_error() {
    let sb = Sandbox::new();
    let locks = sb.locks();
    let squatter = sb.locks().join("bad-dir");
    std::fs::create_dir(&squatter).unwrap();
    let reg = Registry::new();
    let opts = LockOptions::new("bad-dir")
        .registry(&reg)
        .external(true)
        .lock_path(&locks);
    let e = opts.lock().unwrap_err();
    match &e {
        Error::LockFile { path, .. } => assert_eq!(path, &squatter),
        other => panic!("expected LockFile, got {other:?}"),
    }
    let msg = e.report().to_string();
    assert!(
        msg.contains("\"bad-dir\"") && msg.contains(&*squatter.to_string_lossy()),
        "{msg}"
    );
    assert!(
        msg.contains("a directory is in the lock file's place; remove or rename it"),
        "cause and fix not named: {msg}"
    );
    assert!(!msg.contains("writable"), "blames the directory: {msg}");
    sb.assert_contained(&[]);
}

#[test]
fn lock_files_have_no_group_or_other_permissions() {
    let sb = Sandbox::new();
    let locks = sb.locks();
    let reg = Registry::new();
    for (name, shared) in [("perm-x", false), ("perm-shared", true)] {
        let mut opts = LockOptions::new(name)
            .registry(&reg)
            .external(true)
            .lock_path(&locks);
        if shared {
            opts = opts.shared();
        }
        let g = opts.lock().unwrap();
        let mode = std::fs::metadata(LockGuard::path(&g).unwrap())
            .unwrap()
            .mode();
        assert_eq!(mode & 0o077, 0, "{name}: mode {:o}", mode & 0o777);
        assert_ne!(
            mode & 0o600,
            0,
            "{name}: owner cannot use it: {:o}",
            mode & 0o777
        );
        drop(g);
    }
    let g = block_on(
        LockOptions::new("perm-async")
            .registry(&reg)
            .external(true)
            .lock_path(&locks)
            .lock_async(),
    )
    .unwrap();
    let mode = std::fs::metadata(lockutils_core::AsyncLockGuard::path(&g).unwrap())
        .unwrap()
        .mode();
    assert_eq!(mode & 0o077, 0, "async: mode {:o}", mode & 0o777);
}

#[test]
fn errors_are_send_sync_and_keep_their_source() {
    fn assert_send_sync<T: Send + Sync + 'static>(_: &T) {}
    let sb = Sandbox::new();
    let file = sb.root().join("f");
    std::fs::write(&file, b"").unwrap();
    let e = LockOptions::new("bad-source")
        .registry(&Registry::new())
        .external(true)
        .lock_path(&file.join("sub"))
        .lock()
        .unwrap_err();
    assert_send_sync(&e);
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(e);
    assert!(boxed.to_string().contains("bad-source"));
}

/// Where a test that runs itself again as another user finds what root set
/// up for it.
const FIXTURE_ENV: &str = "LOCKUTILS_TEST_FIXTURE";

/// Runs `check` as uid/gid 65534 (nobody) on a directory `setup` prepared as
/// root: the test runs itself again in a child process that dropped its
/// privileges, and requires that run to pass. Root may open any file, so
/// these causes can only be shown unprivileged; a run that is neither root
/// nor that child cannot make another user's files and says so.
fn as_another_user(test: &str, setup: impl FnOnce(&Path), check: impl FnOnce(&Path)) {
    if let Some(fixture) = std::env::var_os(FIXTURE_ENV) {
        check(Path::new(&fixture));
        return;
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("{test}: needs root to make another user's files; not checked");
        return;
    }
    use std::os::unix::process::CommandExt;
    let root = common::tempdir();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    setup(root.path());
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--test-threads=1", "--nocapture"])
        .env(FIXTURE_ENV, root.path())
        .uid(65534)
        .gid(65534)
        .output()
        .expect("run this test again as uid 65534");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("1 passed"),
        "the unprivileged run failed or did not run:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The lock error of taking `name` in `dir` (as this user), as text.
fn lock_error(name: &str, dir: &Path) -> (Error, String) {
    let reg = Registry::new();
    let e = LockOptions::new(name)
        .registry(&reg)
        .external(true)
        .lock_path(dir)
        .lock()
        .unwrap_err();
    let msg = e.report().to_string();
    (e, msg)
}

/// Another user's 0600 lock file in a directory everyone may write: the
/// error names the file's owner and the fixes, not the directory.
#[test]
fn another_users_lock_file_names_its_owner() {
    as_another_user(
        "another_users_lock_file_names_its_owner",
        |root| {
            let dir = root.join("shared");
            std::fs::create_dir(&dir).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
            let file = dir.join("theirs");
            std::fs::write(&file, b"").unwrap();
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        },
        |root| {
            let (e, msg) = lock_error("theirs", &root.join("shared"));
            assert!(matches!(e, Error::LockFile { .. }), "{e:?}");
            assert!(
                msg.contains("the lock file belongs to uid 0")
                    && msg.contains("mode 600")
                    && msg.contains("run as its owner"),
                "cause or fix missing: {msg}"
            );
            assert!(!msg.contains("writable"), "blames the directory: {msg}");
            let os = std::error::Error::source(&e).unwrap();
            assert_eq!(
                std::error::Error::source(os)
                    .and_then(|s| s.downcast_ref::<std::io::Error>())
                    .and_then(std::io::Error::raw_os_error),
                Some(libc::EACCES),
                "the OS error is kept as the source"
            );
        },
    );
}

/// A directory this user may read but not write, the lock file not there:
/// the error says the directory is not writable, with its owner and mode.
#[test]
fn an_unwritable_lock_directory_says_so() {
    as_another_user(
        "an_unwritable_lock_directory_says_so",
        |root| std::fs::create_dir(root.join("read-only")).unwrap(),
        |root| {
            let (e, msg) = lock_error("mine", &root.join("read-only"));
            assert!(matches!(e, Error::LockFile { .. }), "{e:?}");
            assert!(
                msg.contains(
                    "may not create files in the lock directory (owned by uid 0, mode 755)"
                ) && msg.contains("choose another with lock_path"),
                "cause or fix missing: {msg}"
            );
        },
    );
}

/// A lock directory behind one this user cannot search: the error says it
/// cannot be reached, not that it is not writable or missing.
#[test]
fn an_unreachable_lock_directory_says_so() {
    as_another_user(
        "an_unreachable_lock_directory_says_so",
        |root| {
            let private = root.join("private");
            std::fs::create_dir_all(private.join("locks")).unwrap();
            std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
        },
        |root| {
            let dir = root.join("private").join("locks");
            let (e, msg) = lock_error("x", &dir);
            assert!(matches!(e, Error::LockFile { .. }), "{e:?}");
            assert!(
                msg.contains("cannot reach the lock directory")
                    && msg.contains("no x permission")
                    && msg.contains("choose a directory this user can reach"),
                "cause missing: {msg}"
            );
            assert!(!msg.contains("writable"), "{msg}");
        },
    );
}

/// A lock directory with a component longer than the system allows.
#[test]
fn a_lock_directory_name_too_long_says_so() {
    let sb = Sandbox::new();
    let dir = sb.locks().join("d".repeat(300));
    let (e, msg) = lock_error("x", &dir);
    assert!(matches!(e, Error::LockFile { .. }), "{e:?}");
    assert!(
        msg.contains("the path is too long for the system")
            && msg.contains("300 in its longest component")
            && msg.contains("choose a shorter lock directory"),
        "cause or fix missing: {msg}"
    );
    sb.assert_contained(&[]);
}

/// A huge invalid name is quoted as a short excerpt with its length; the
/// error still holds the whole name.
#[test]
fn invalid_name_shows_a_bounded_excerpt() {
    let name = format!("{}\0", "n".repeat(1 << 20));
    let e = LockOptions::new(&name).lock().unwrap_err();
    let msg = e.report().to_string();
    assert!(matches!(e, Error::InvalidName { .. }), "{e:?}");
    assert!(msg.len() < 300, "{} bytes: {}", msg.len(), &msg[..300]);
    assert!(
        msg.contains(&format!("{}\"… ({} bytes)", "n".repeat(64), name.len())),
        "{msg}"
    );
    assert!(msg.contains("NUL byte"), "{msg}");
    assert_eq!(e.lock_name(), name);
    let short = LockOptions::new("a\0b").lock().unwrap_err().to_string();
    assert!(
        short.contains("\"a\\0b\""),
        "short names are quoted whole: {short}"
    );
}

/// Several processes starting at once create the same missing lock
/// directory: each acquisition succeeds, whichever creates it. (Seeing the
/// directory missing and then, a moment later, present used to be reported
/// as "a symbolic link to a missing target".)
#[test]
fn a_lock_directory_created_by_several_at_once_is_no_error() {
    const THREADS: usize = 8;
    for round in 0..100 {
        let root = common::tempdir();
        let dir = root.path().join("fresh").join("locks");
        let start = std::sync::Barrier::new(THREADS);
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (dir, start) = (&dir, &start);
                s.spawn(move || {
                    // A registry each: the threads meet in the file system
                    // only, as processes do.
                    let registry = Registry::new();
                    start.wait();
                    let got = LockOptions::new(&format!("n{t}"))
                        .external(true)
                        .lock_path(dir)
                        .registry(&registry)
                        .lock();
                    if let Err(e) = got {
                        panic!("round {round}, thread {t}: {}", e.report());
                    }
                });
            }
        });
    }
}

/// Something other than a lock file where the lock file should be: refused
/// with what it is and what to do, never locked, never removed.
fn refused_in_place(name: &str, make: impl FnOnce(&Path), what: &str) {
    let sb = Sandbox::new();
    let locks = sb.locks();
    let squatter = locks.join(name);
    make(&squatter);
    let reg = Registry::new();
    let opts = LockOptions::new(name)
        .registry(&reg)
        .external(true)
        .lock_path(&locks);
    every_acquisition_fails(opts, |e| {
        match e {
            Error::LockFile { path, .. } => assert_eq!(path, &squatter),
            other => panic!("expected LockFile, got {other:?}"),
        }
        let msg = e.report().to_string();
        assert!(msg.contains(what), "{what:?} not named: {msg}");
        assert!(
            !e.to_string().contains("writable"),
            "blames the directory: {e}"
        );
    });
    let e = opts.remove_lock_file().unwrap_err();
    assert!(e.report().to_string().contains(what), "{}", e.report());
    assert!(
        std::fs::symlink_metadata(&squatter).is_ok(),
        "removed: {}",
        squatter.display()
    );
    sb.assert_contained(&[]);
}

#[test]
fn a_fifo_in_place_of_the_lock_file_is_refused_and_kept() {
    refused_in_place(
        "fifo",
        |p| {
            let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: `c` is a NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        },
        "a FIFO is in the lock file's place, so it is not a lock file",
    );
}

#[test]
fn a_socket_in_place_of_the_lock_file_is_refused_and_kept() {
    let mut listener = None;
    refused_in_place(
        "sock",
        |p| listener = Some(std::os::unix::net::UnixListener::bind(p).unwrap()),
        "a socket or device is in the lock file's place",
    );
}

/// However long a lock's name, every error message shows a bounded excerpt
/// of it (the name itself stays in `Error::lock_name`).
#[test]
fn every_error_shows_a_bounded_excerpt_of_a_long_name() {
    let name = "n".repeat(1_000_000);
    let reg = Registry::new();
    let opts = LockOptions::new(&name).registry(&reg);
    let held = opts.lock().unwrap();
    let again = opts.lock().unwrap_err();
    assert!(matches!(again, Error::WouldDeadlock { .. }), "{again:?}");
    let (busy, timed_out) = std::thread::scope(|s| {
        s.spawn(|| {
            (
                opts.try_lock().unwrap_err(),
                opts.timeout(std::time::Duration::from_millis(1))
                    .lock()
                    .unwrap_err(),
            )
        })
        .join()
        .unwrap()
    });
    drop(held);
    let dir = Path::new("/dev/null/locks");
    let lock_path = opts.external(true).lock_path(dir).lock().unwrap_err();
    for e in [again, busy, timed_out, lock_path] {
        assert_eq!(e.lock_name(), name);
        let shown = e.to_string();
        assert!(
            shown.len() < 400 && shown.contains("… (1000000 bytes)"),
            "{}…",
            &shown[..shown.len().min(400)]
        );
    }
}

/// A FIFO another program has open and locked: refused as what it is at
/// once, by every acquisition (a blocking one too), not waited for.
#[test]
fn a_locked_fifo_in_place_of_the_lock_file_is_refused_not_awaited() {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let sb = Sandbox::new();
    let fifo = sb.locks().join("locked-fifo");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let other = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let lock = libc::flock {
        l_type: libc::F_WRLCK as i16,
        l_whence: libc::SEEK_SET as i16,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    // SAFETY: a valid descriptor and a valid `flock`.
    assert_eq!(
        unsafe { libc::fcntl(other.as_raw_fd(), libc::F_OFD_SETLK, &lock) },
        0
    );
    let reg = Registry::new();
    let locks = sb.locks();
    let opts = LockOptions::new("locked-fifo")
        .registry(&reg)
        .external(true)
        .lock_path(&locks);
    every_acquisition_fails(opts, |e| {
        let msg = e.report().to_string();
        assert!(msg.contains("a FIFO is in the lock file's place"), "{msg}");
    });
    let e = opts
        .timeout(std::time::Duration::from_secs(5))
        .lock()
        .unwrap_err();
    assert!(!e.is_contention(), "waited for the FIFO: {e}");
    drop(other);
}
