//! The backend abstraction with the file backend: the builder, the guards
//! and `StaticLock` over `FileBackend` and `file://` URLs, capability
//! errors, URL errors and the file admin interface.

mod common;

use std::time::{Duration, Instant};

use lockutils_core::backend::{
    backend_for_url, set_default_url, Backend, Capability, FileBackend, Location, Removal,
};
use lockutils_core::{AsyncLockGuard, Error, LockGuard, LockOptions, Registry, StaticLock};

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

static R1: Registry = Registry::new();
static R2: Registry = Registry::new();

#[test]
fn a_file_backend_excludes_other_registries_and_reports_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let files = FileBackend::new(dir.path());
    let g = LockOptions::new("a/b")
        .registry(&R1)
        .backend(&files)
        .lock()
        .unwrap();
    assert_eq!(LockGuard::path(&g), Some(dir.path().join("a_b").as_path()));
    assert_eq!(
        LockGuard::location(&g),
        Some(Location::Path(&dir.path().join("a_b")))
    );
    // Another registry is another contender: only the file excludes it.
    let e = LockOptions::new("a/b")
        .registry(&R2)
        .backend(&files)
        .try_lock()
        .unwrap_err();
    assert!(
        matches!(e, Error::WouldBlock { ref name } if name == "a/b"),
        "{e}"
    );
    drop(g);
    drop(
        LockOptions::new("a/b")
            .registry(&R2)
            .backend(&files)
            .try_lock()
            .unwrap(),
    );
}

#[test]
fn one_deadline_covers_both_layers_and_names_the_full_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let files = FileBackend::new(dir.path());
    // Held by another thread: the same thread waiting would be WouldDeadlock.
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let files2 = files.clone();
    let holder = std::thread::spawn(move || {
        let _g = LockOptions::new("t")
            .registry(&R1)
            .backend(&files2)
            .lock()
            .unwrap();
        held_tx.send(()).unwrap();
        let _ = done_rx.recv();
    });
    held_rx.recv().unwrap();
    let started = Instant::now();
    let e = LockOptions::new("t")
        .registry(&R2)
        .backend(&files)
        .timeout(Duration::from_millis(100))
        .lock()
        .unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(100));
    drop(done_tx);
    holder.join().unwrap();
    assert!(
        matches!(e, Error::Timeout { timeout, .. } if timeout == Duration::from_millis(100)),
        "{e}"
    );
}

#[test]
fn async_acquisition_on_a_backend_waits_then_acquires() {
    let dir = tempfile::tempdir().unwrap();
    let files = FileBackend::new(dir.path());
    let g = block_on(
        LockOptions::new("w")
            .registry(&R1)
            .backend(&files)
            .lock_async(),
    )
    .unwrap();
    let file = dir.path().join("w");
    let releaser = std::thread::spawn(move || {
        // Released 50 ms after the waiter queued in the kernel, however
        // late it started.
        common::wait_until("a kernel waiter on w", Duration::from_secs(10), || {
            common::kernel_waiters_on(&file) > 0
        });
        std::thread::sleep(Duration::from_millis(50));
        drop(g);
    });
    let got = block_on(
        LockOptions::new("w")
            .registry(&R2)
            .backend(&files)
            .timeout(Duration::from_secs(10))
            .lock_async(),
    )
    .unwrap();
    assert!(AsyncLockGuard::waited(&got) >= Duration::from_millis(50));
    assert_eq!(
        AsyncLockGuard::path(&got),
        Some(dir.path().join("w").as_path())
    );
    releaser.join().unwrap();
}

#[test]
fn the_in_process_layer_stays_in_front_of_every_backend() {
    let dir = tempfile::tempdir().unwrap();
    let files = FileBackend::new(dir.path());
    let _g = LockOptions::new("d").backend(&files).lock().unwrap();
    let e = LockOptions::new("d").backend(&files).lock().unwrap_err();
    assert!(matches!(e, Error::WouldDeadlock { .. }), "{e}");
    // Readers share through the backend too.
    let r1 = LockOptions::new("s")
        .registry(&R1)
        .backend(&files)
        .shared()
        .lock()
        .unwrap();
    let r2 = LockOptions::new("s")
        .registry(&R2)
        .backend(&files)
        .shared()
        .try_lock()
        .unwrap();
    drop((r1, r2));
}

#[test]
fn capabilities_a_backend_lacks_are_typed_errors_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let files = FileBackend::new(dir.path());
    assert!(files.capabilities().has(Capability::Shared));
    assert!(!files.capabilities().has(Capability::FencingTokens));
    let g = LockOptions::new("c").backend(&files).lock().unwrap();
    match LockGuard::fencing_token(&g).unwrap_err() {
        Error::Unsupported {
            name,
            backend,
            capability,
        } => {
            assert_eq!(name, "c");
            assert_eq!(backend, files.url());
            assert_eq!(capability, Capability::FencingTokens);
        }
        e => panic!("{e}"),
    }
    let e = LockGuard::lost(&g).err().unwrap();
    assert!(e.to_string().contains("loss notification"), "{e}");
    assert!(!LockGuard::is_lost(&g));
    drop(g);
    let g = LockOptions::new("c").lock().unwrap();
    let e = LockGuard::fencing_token(&g).unwrap_err();
    assert!(
        matches!(e, Error::Unsupported { ref backend, .. } if backend == "in-process"),
        "{e}"
    );
    let e = files.admin().unwrap().clear("c").unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }), "{e}");
}

#[test]
fn urls_select_the_file_backend_for_builders_static_locks_and_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let url: &'static str =
        Box::leak(format!("file://{}?file_mode=640", dir.path().display()).into_boxed_str());
    let g = LockOptions::new("u").backend_url(url).lock().unwrap();
    assert_eq!(LockGuard::backend(&g), Some(url));
    drop(g);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("u"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);

    let lock: &'static StaticLock = Box::leak(Box::new(StaticLock::new(
        LockOptions::new("st").backend_url(url),
    )));
    let g = lock.lock().unwrap();
    assert!(dir.path().join("st").exists());
    assert!(LockOptions::new("st")
        .registry(&R2)
        .backend_url(url)
        .try_lock()
        .is_err());
    drop(g);

    set_default_url(url).unwrap();
    let g = LockOptions::new("def").coordinated().lock().unwrap();
    assert!(dir.path().join("def").exists());
    drop(g);
    lockutils_core::backend::clear_default_url();
}

#[test]
fn bad_urls_are_typed_errors_that_name_the_fix() {
    let e = LockOptions::new("x")
        .backend_url("etcd3://h:2379")
        .lock()
        .unwrap_err();
    assert!(
        matches!(e, Error::UnknownScheme { ref name, .. } if name == "x"),
        "{e}"
    );
    assert!(e.to_string().contains("register_scheme"), "{e}");
    let e = backend_for_url("zookeeper://h:2181/x").err();
    // Registered only when the ZooKeeper crate is linked and registered.
    if let Some(e) = e {
        assert!(
            matches!(
                e,
                Error::FeatureDisabled {
                    feature: "zookeeper",
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("features = [\"zookeeper\"]"), "{e}");
    }
    let e = backend_for_url("file://relative/dir").unwrap_err();
    assert!(e.to_string().contains("absolute"), "{e}");
    let e = backend_for_url("not a url").unwrap_err();
    assert!(matches!(e, Error::InvalidUrl { .. }), "{e}");
    // Nothing is waited for when the backend cannot be resolved.
    let _g = LockOptions::new("x").lock().unwrap();
    let e = LockOptions::new("x")
        .backend_url("etcd3://h")
        .lock()
        .unwrap_err();
    assert!(matches!(e, Error::UnknownScheme { .. }), "{e}");
}

/// A process that holds or waits for a lock file is named by its own
/// inspection as any other would be (it was left out: its hold showed as
/// "not visible", its wait as someone else's).
#[cfg(target_os = "linux")]
#[test]
fn the_file_admin_names_this_process_as_holder_and_waiter() {
    let dir = tempfile::tempdir().unwrap();
    let files = FileBackend::new(dir.path());
    let admin = files.admin().unwrap();
    let me = std::process::id();
    let held = LockOptions::new("own").backend(&files).lock().unwrap();
    let info = admin.inspect("own").unwrap();
    let pids: Vec<Option<u32>> = info.holders.iter().map(|h| h.pid).collect();
    assert_eq!(pids, [Some(me)], "{info:?}");
    assert!(info.waiters.is_empty(), "{info:?}");
    // Two timed waits through two more registries sleep in the kernel: two
    // waiters, both this process, seen in their system calls.
    let (one, two) = (Registry::new(), Registry::new());
    std::thread::scope(|s| {
        let waiters: Vec<_> = [&one, &two]
            .into_iter()
            .map(|reg| {
                let files = &files;
                s.spawn(move || {
                    LockOptions::new("own")
                        .registry(reg)
                        .backend(files)
                        .timeout(Duration::from_secs(20))
                        .lock()
                        .map(drop)
                })
            })
            .collect();
        // Released before any assertion, so that the waiters end either way.
        let started = Instant::now();
        let (seen, last) = loop {
            let info = admin.inspect("own").unwrap();
            let waiters: Vec<(Option<u32>, Option<&str>)> =
                info.waiters.iter().map(|w| (w.pid, w.evidence)).collect();
            if waiters == [(Some(me), Some("syscall")); 2] {
                break (true, waiters);
            }
            if started.elapsed() > Duration::from_secs(10) {
                break (false, waiters);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        drop(held);
        for w in waiters {
            w.join().unwrap().unwrap();
        }
        assert!(seen, "waiters: {last:?}");
    });
}

#[test]
fn the_file_admin_lists_inspects_and_removes_only_free_locks() {
    let dir = tempfile::tempdir().unwrap();
    let files = FileBackend::new(dir.path());
    let admin = files.admin().unwrap();
    let held = LockOptions::new("held").backend(&files).lock().unwrap();
    drop(LockOptions::new("free").backend(&files).lock().unwrap());
    let list = admin.list().unwrap();
    let names: Vec<&str> = list.iter().map(|l| l.identity.as_str()).collect();
    assert_eq!(names, ["free", "held"]);
    assert!(!list[0].is_held());
    assert!(list[1].is_held());
    assert_eq!(admin.remove_if_free("held").unwrap(), Removal::Busy);
    assert_eq!(admin.clean().unwrap(), ["free"]);
    assert!(!dir.path().join("free").exists());
    assert!(dir.path().join("held").exists());
    assert_eq!(admin.remove_if_free("gone").unwrap(), Removal::Absent);
    drop(held);
    assert_eq!(admin.remove_if_free("held").unwrap(), Removal::Removed);
    assert!(matches!(
        admin.inspect("../x").unwrap_err(),
        Error::InvalidName { .. }
    ));
}
