//! Guards: what they tell about the held lock, which threads they may move
//! to, and `StaticLock` sharing its lock with the dynamic API.

mod common;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use lockutils_core::{
    Acquire, AsyncLockGuard, Error, LockGuard, LockOptions, Mode, Registry, StaticLock,
};

#[test]
fn lock_guard_accessors() {
    let dir = common::tempdir();
    let reg = Registry::new();
    let g = LockOptions::new("gd/a").registry(&reg).lock().unwrap();
    assert_eq!(LockGuard::name(&g), "gd_a");
    assert_eq!(LockGuard::path(&g), None);
    assert_eq!(LockGuard::waited(&g), Duration::ZERO, "uncontended");
    assert_eq!(LockGuard::mode(&g), Mode::Exclusive);
    drop(g);
    let g = LockOptions::new("b")
        .prefix("gd")
        .registry(&reg)
        .external(true)
        .lock_path(dir.path())
        .shared()
        .lock()
        .unwrap();
    assert_eq!(LockGuard::name(&g), "gd-b");
    assert_eq!(LockGuard::path(&g), Some(dir.path().join("gd-b").as_path()));
    assert_eq!(LockGuard::mode(&g), Mode::Shared);
    drop(g);
}

#[cfg(target_os = "linux")]
#[test]
fn waited_measures_a_contended_acquisition() {
    let reg = Registry::new();
    let opts = LockOptions::new("gd-waited").registry(&reg);
    let (held_tx, held_rx) = mpsc::channel();
    let me = common::gettid();
    let hold = Duration::from_millis(20);
    let (waited, total) = thread::scope(|s| {
        s.spawn(move || {
            let g = opts.lock().unwrap();
            held_tx.send(()).unwrap();
            // Keep holding for a while after the other thread started waiting.
            common::wait_until_sleeping(me);
            thread::sleep(hold);
            drop(g);
        });
        held_rx.recv().unwrap();
        let start = std::time::Instant::now();
        let waited = LockGuard::waited(&opts.lock().unwrap());
        (waited, start.elapsed())
    });
    assert!(waited >= hold, "{waited:?}");
    assert!(waited <= total, "{waited:?} > {total:?}");
}

#[test]
fn debug_shows_name_backend_and_path() {
    let dir = common::tempdir();
    let reg = Registry::new();
    let g = LockOptions::new("gd-debug").registry(&reg).lock().unwrap();
    let s = format!("{g:?}");
    assert!(s.starts_with("LockGuard"), "{s}");
    assert!(s.contains("gd-debug") && s.contains("in-process"), "{s}");
    drop(g);
    let g = LockOptions::new("gd-debug")
        .registry(&reg)
        .external(true)
        .lock_path(dir.path())
        .lock()
        .unwrap();
    let s = format!("{g:?}");
    assert!(s.contains("gd-debug") && s.contains("file"), "{s}");
    assert!(
        s.contains(&*dir.path().join("gd-debug").to_string_lossy()),
        "{s}"
    );
    drop(g);
    let g = common::block_on(LockOptions::new("gd-debug").registry(&reg).lock_async()).unwrap();
    let s = format!("{g:?}");
    assert!(
        s.starts_with("AsyncLockGuard") && s.contains("gd-debug"),
        "{s}"
    );
}

#[test]
fn async_guard_accessors() {
    let dir = common::tempdir();
    let reg = Registry::new();
    let g = common::block_on(
        LockOptions::new("gd/async")
            .registry(&reg)
            .external(true)
            .lock_path(dir.path())
            .shared()
            .lock_async(),
    )
    .unwrap();
    assert_eq!(AsyncLockGuard::name(&g), "gd_async");
    assert_eq!(
        AsyncLockGuard::path(&g),
        Some(dir.path().join("gd_async").as_path())
    );
    assert_eq!(AsyncLockGuard::mode(&g), Mode::Shared);
    assert_eq!(AsyncLockGuard::waited(&g), Duration::ZERO);
    assert!(AsyncLockGuard::unlock_and_remove(g).unwrap());
    assert!(!dir.path().join("gd_async").exists());
    assert!(reg.is_empty());
}

/// Async guards and the acquisition future move between threads (a future
/// holding the guard across `.await` stays `Send`); errors do too.
#[test]
fn async_guard_and_future_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}
    assert_send_sync::<AsyncLockGuard<'static>>();
    assert_send::<Acquire<'static, 'static>>();
    assert_send_sync::<Error>();
    assert_send_sync::<Registry>();
    assert_send_sync::<StaticLock>();
    // And really crossing threads: taken here, released there.
    let reg = Registry::new();
    let g = common::block_on(LockOptions::new("gd-send").registry(&reg).lock_async()).unwrap();
    thread::scope(|s| s.spawn(move || drop(g)).join().unwrap());
    assert!(reg.is_empty());
}

/// `LockGuard` is `!Send` (and `!Sync`): it must be released on the thread
/// that took it, which self-deadlock detection and `held_locks` rely on.
///
/// Checked at compile time with the ambiguity trick of `static_assertions`'
/// `assert_not_impl_any!`: if `LockGuard` were `Send` (or `Sync`), both
/// blanket impls would apply and the `some_item` path below would be
/// ambiguous, failing to compile.
#[test]
fn lock_guard_is_neither_send_nor_sync() {
    trait AmbiguousIfSend<A> {
        fn some_item() {}
    }
    impl<T: ?Sized> AmbiguousIfSend<()> for T {}
    #[allow(dead_code)]
    struct IsSend;
    impl<T: ?Sized + Send> AmbiguousIfSend<IsSend> for T {}
    let _ = <LockGuard<'static> as AmbiguousIfSend<_>>::some_item;

    trait AmbiguousIfSync<A> {
        fn some_item() {}
    }
    impl<T: ?Sized> AmbiguousIfSync<()> for T {}
    #[allow(dead_code)]
    struct IsSync;
    impl<T: ?Sized + Sync> AmbiguousIfSync<IsSync> for T {}
    let _ = <LockGuard<'static> as AmbiguousIfSync<_>>::some_item;
}

static SHARED_NAME: StaticLock = StaticLock::new(LockOptions::new("gd-static"));
static SHARED_NAME_TRY: StaticLock = StaticLock::new(LockOptions::new("gd-static").blocking(false));
static BAD_NAME: StaticLock = StaticLock::new(LockOptions::new(""));

#[test]
fn static_lock_shares_the_lock_with_the_dynamic_api() {
    // Static held: the dynamic API sees it busy (other thread) or as a
    // re-acquisition (this thread).
    let g = SHARED_NAME.lock().unwrap();
    assert_eq!(LockGuard::name(&g), "gd-static");
    assert!(lockutils_core::Registry::global().contains("gd-static"));
    let other = thread::scope(|s| {
        s.spawn(|| LockOptions::new("gd-static").try_lock().map(drop))
            .join()
            .unwrap()
    });
    assert!(matches!(other, Err(Error::WouldBlock { .. })), "{other:?}");
    assert!(matches!(
        LockOptions::new("gd-static").lock(),
        Err(Error::WouldDeadlock { .. })
    ));
    drop(g);
    // Dynamic held: the static lock sees it busy, from another thread, sync
    // and async.
    let g = LockOptions::new("gd-static").lock().unwrap();
    let (sync, asynchronous) = thread::scope(|s| {
        s.spawn(|| {
            (
                SHARED_NAME_TRY.lock().map(drop),
                common::block_on(SHARED_NAME_TRY.lock_async()).map(drop),
            )
        })
        .join()
        .unwrap()
    });
    assert!(matches!(sync, Err(Error::WouldBlock { .. })), "{sync:?}");
    assert!(
        matches!(asynchronous, Err(Error::WouldBlock { .. })),
        "{asynchronous:?}"
    );
    assert!(matches!(
        SHARED_NAME.lock(),
        Err(Error::WouldDeadlock { .. })
    ));
    drop(g);
    drop(common::block_on(SHARED_NAME.lock_async()).unwrap());
    drop(SHARED_NAME_TRY.lock().unwrap());
}

#[test]
fn static_lock_with_a_bad_name_reports_it() {
    assert!(matches!(BAD_NAME.lock(), Err(Error::InvalidName { .. })));
    assert!(matches!(
        common::block_on(BAD_NAME.lock_async()),
        Err(Error::InvalidName { .. })
    ));
    assert_eq!(BAD_NAME.options().name(), "");
}

#[test]
fn dropping_a_guard_releases_at_once() {
    let reg = Registry::new();
    let opts = LockOptions::new("gd-drop").registry(&reg);
    let g = opts.lock().unwrap();
    let probe = || thread::scope(|s| s.spawn(|| opts.try_lock().is_ok()).join().unwrap());
    assert!(!probe());
    drop(g);
    assert!(probe());
    assert!(reg.is_empty());
}

/// `held()` beside `waited()`: an external hold is timed from acquisition,
/// and so is every hold with the `metrics` feature; a plain uncontended
/// in-process hold without it skips the clock (`None`), unless DEBUG logs
/// are on.
#[test]
fn held_tells_how_long_the_lock_has_been_held() {
    let dir = common::tempdir();
    let reg = Registry::new();
    let g = LockOptions::new("gd-held")
        .registry(&reg)
        .external(true)
        .lock_path(dir.path())
        .lock()
        .unwrap();
    let first = LockGuard::held(&g).expect("external holds are timed");
    thread::sleep(Duration::from_millis(20));
    let later = LockGuard::held(&g).unwrap();
    assert!(
        later >= first + Duration::from_millis(20),
        "{first:?} then {later:?}"
    );
    drop(g);
    let g = common::block_on(
        LockOptions::new("gd-held-async")
            .registry(&reg)
            .external(true)
            .lock_path(dir.path())
            .lock_async(),
    )
    .unwrap();
    assert!(AsyncLockGuard::held(&g).is_some(), "async guards too");
    drop(g);
    let plain = LockOptions::new("gd-held-plain")
        .registry(&reg)
        .lock()
        .unwrap();
    assert_eq!(
        LockGuard::held(&plain).is_some(),
        cfg!(feature = "metrics"),
        "timed exactly when metrics are compiled in (no subscriber here)"
    );
}

#[test]
fn waited_measures_a_wait_for_the_lock_file() {
    // Two registries: the second one's acquisition gets the in-process lock
    // at once and waits for the file alone.
    let dir = tempfile::tempdir().unwrap();
    let (holder_reg, waiter_reg) = (Registry::new(), Registry::new());
    let opts = LockOptions::new("gd-file-waited")
        .external(true)
        .lock_path(dir.path());
    let hold = Duration::from_millis(30);
    let g = opts.registry(&holder_reg).lock().unwrap();
    let (tid_tx, tid_rx) = mpsc::channel();
    let (waited, timed) = thread::scope(|s| {
        let waiter = s.spawn(|| {
            tid_tx.send(common::gettid()).unwrap();
            let g = opts.registry(&waiter_reg).lock().unwrap();
            (LockGuard::waited(&g), LockGuard::held(&g).is_some())
        });
        // Released only once the waiter sleeps on the file.
        common::wait_until_sleeping(tid_rx.recv().unwrap());
        thread::sleep(hold);
        drop(g);
        waiter.join().unwrap()
    });
    assert!(waited >= hold, "waited {waited:?}");
    assert!(timed, "an external hold is timed");
    let g = opts.registry(&waiter_reg).lock().unwrap();
    assert_eq!(LockGuard::waited(&g), Duration::ZERO, "uncontended file");
}
