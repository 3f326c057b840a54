//! Regressions of the lock engine's edges: what a user can forget or drop,
//! wakers that drop their task, self-deadlocks the kernel would not report,
//! removal where there is nothing, and a thread holding very many locks.
//!
//! Anything that could hang runs on a helper thread joined with a bounded wait,
//! so a regression fails the test instead of hanging CI.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use lockutils_core::{
    held_locks, remove_external_lock_file, AsyncLockGuard, Error, LockOptions, Mode, Registry,
    StaticLock,
};

/// Runs `f` on its own thread and returns its result, or panics if it has not
/// finished within `limit` (the thread is left behind).
fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => v,
        Err(_) => panic!("{what}: did not finish within {limit:?}"),
    }
}

fn is_would_deadlock<T>(r: &lockutils_core::Result<T>) -> bool {
    matches!(r, Err(Error::WouldDeadlock { .. }))
}

// ---------------------------------------------------------------------------
// 1. Records that cannot dangle
// ---------------------------------------------------------------------------

/// Leaks a guard, drops its registry, then lists the held locks and takes
/// unrelated locks (shared ones consult the records every time) through new
/// registries whose entries reuse the freed memory. Run under AddressSanitizer
/// or valgrind this also proves no freed memory is read.
#[test]
fn forgotten_guard_then_dropped_registry_keeps_records_sound() {
    within(Duration::from_secs(60), "forget + drop registry", || {
        let reg = Box::new(Registry::new());
        let g = LockOptions::new("eng-forgotten")
            .registry(&reg)
            .lock()
            .unwrap();
        std::mem::forget(g);
        drop(reg);

        for round in 0..200 {
            let held = held_locks();
            assert_eq!(held.len(), 1, "round {round}: {held:?}");
            assert_eq!(held[0].name, "eng-forgotten");
            assert_eq!(held[0].mode, Mode::Exclusive);

            let fresh = Registry::new();
            let name = format!("eng-unrelated-{round}");
            for mode in [Mode::Shared, Mode::Exclusive] {
                let r = LockOptions::new(&name).registry(&fresh).mode(mode).lock();
                assert!(
                    r.is_ok(),
                    "round {round}: unrelated {mode:?} lock refused: {:?}",
                    r.err()
                );
            }
        }
    });
}

/// The same with an external lock (whose record carries the lock file).
#[test]
fn forgotten_external_guard_then_dropped_registry_keeps_records_sound() {
    let dir = common::tempdir();
    let path = dir.path().to_owned();
    within(
        Duration::from_secs(60),
        "forget external + drop registry",
        move || {
            let reg = Registry::new();
            let g = LockOptions::new("eng-forgotten-ext")
                .registry(&reg)
                .external(true)
                .lock_path(&path)
                .lock()
                .unwrap();
            std::mem::forget(g);
            drop(reg);
            let held = held_locks();
            assert_eq!(held.len(), 1, "{held:?}");
            assert_eq!(
                held[0].path.as_deref(),
                Some(&*path.join("eng-forgotten-ext"))
            );
            let fresh = Registry::new();
            let g = LockOptions::new("eng-other-ext")
                .registry(&fresh)
                .mode(Mode::Shared)
                .lock()
                .unwrap();
            assert_eq!(held_locks().len(), 2);
            drop(g);
        },
    );
}

// ---------------------------------------------------------------------------
// 2. No waker woken or dropped under an engine lock
// ---------------------------------------------------------------------------

type Task = Pin<Box<dyn Future<Output = lockutils_core::Result<AsyncLockGuard<'static>>> + Send>>;

/// A waker owning its task, which it drops when woken: what an executor that
/// has shut down does.
struct DropOnWake(Mutex<Option<Task>>);

impl Wake for DropOnWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let task = self.0.lock().unwrap().take();
        drop(task);
    }
}

fn queue_task_that_drops_itself_when_woken(name: &'static str, fair: bool) -> Arc<DropOnWake> {
    let owner = Arc::new(DropOnWake(Mutex::new(None)));
    let waker = Waker::from(Arc::clone(&owner));
    let mut task: Task = Box::pin(LockOptions::new(name).fair(fair).lock_async());
    assert!(task
        .as_mut()
        .poll(&mut Context::from_waker(&waker))
        .is_pending());
    *owner.0.lock().unwrap() = Some(task);
    owner
}

#[test]
fn waker_that_drops_its_task_on_wake_does_not_hang_the_releaser() {
    for (name, fair) in [("eng-waker-unfair", false), ("eng-waker-fair", true)] {
        within(Duration::from_secs(20), name, move || {
            let g = LockOptions::new(name).lock().unwrap();
            let owner = queue_task_that_drops_itself_when_woken(name, fair);
            drop(g); // wakes the queued task, whose waker drops it
            assert!(owner.0.lock().unwrap().is_none(), "task was not woken");
            // The lock is free again and nobody is left queued.
            drop(LockOptions::new(name).try_lock().unwrap());
        });
    }
}

/// A waker replaced by a newer one is dropped outside the engine's locks too.
#[test]
fn replaced_waker_is_dropped_outside_engine_locks() {
    within(Duration::from_secs(20), "replaced waker", || {
        let name = "eng-waker-replaced";
        let g = LockOptions::new(name).lock().unwrap();
        // The first waker's last reference is the one the queue keeps; when
        // it is replaced it is dropped, and its drop takes the same lock.
        struct LocksOnDrop;
        impl Wake for LocksOnDrop {
            fn wake(self: Arc<Self>) {}
        }
        impl Drop for LocksOnDrop {
            fn drop(&mut self) {
                // Cancels a second queued acquisition of the same name: it
                // takes the queue lock of the very lock being polled.
                let mut f = Box::pin(LockOptions::new("eng-waker-replaced").lock_async());
                let _ = f.as_mut().poll(&mut Context::from_waker(Waker::noop()));
            }
        }
        let mut fut = Box::pin(LockOptions::new(name).lock_async());
        let first = Waker::from(Arc::new(LocksOnDrop));
        assert!(fut
            .as_mut()
            .poll(&mut Context::from_waker(&first))
            .is_pending());
        drop(first);
        let (_count, second) = common::WakeCounter::new();
        assert!(fut
            .as_mut()
            .poll(&mut Context::from_waker(&second))
            .is_pending());
        drop(g);
        assert!(common::poll_once(&mut fut, &second).is_ready());
    });
}

// ---------------------------------------------------------------------------
// 3. Self-deadlocks the kernel would not report
// ---------------------------------------------------------------------------

#[test]
fn same_external_lock_through_two_registries_is_would_deadlock() {
    let dir = common::tempdir();
    let path = dir.path().to_owned();
    within(Duration::from_secs(20), "two registries", move || {
        let (r1, r2) = (Registry::new(), Registry::new());
        let opts = LockOptions::new("eng-two-regs")
            .external(true)
            .lock_path(&path);
        let g = opts.registry(&r1).lock().unwrap();
        for mode in [Mode::Exclusive, Mode::Shared] {
            let second = opts.registry(&r2).mode(mode);
            assert!(is_would_deadlock(&second.lock()), "{mode:?} untimed");
            let timed = second.timeout(Duration::from_secs(30)).lock();
            assert!(
                is_would_deadlock(&timed),
                "{mode:?} timed: {:?}",
                timed.err()
            );
            // Not blocking: busy, as for any held lock.
            assert!(matches!(second.try_lock(), Err(Error::WouldBlock { .. })));
        }
        drop(g);
        drop(opts.registry(&r2).lock().unwrap());
    });
}

/// A shared hold through one registry and a shared request through another
/// do not conflict: no false deadlock.
#[test]
fn shared_holds_through_two_registries_share() {
    let dir = common::tempdir();
    let opts = LockOptions::new("eng-two-regs-shared")
        .external(true)
        .lock_path(dir.path())
        .mode(Mode::Shared);
    let (r1, r2) = (Registry::new(), Registry::new());
    let a = opts.registry(&r1).lock().unwrap();
    let b = opts.registry(&r2).lock().unwrap();
    drop((a, b));
}

#[test]
fn removing_a_lock_file_this_thread_holds_is_would_deadlock() {
    let dir = common::tempdir();
    let path = dir.path().to_owned();
    within(Duration::from_secs(20), "remove while held", move || {
        for (i, mode) in [Mode::Exclusive, Mode::Shared].into_iter().enumerate() {
            let name = format!("eng-rm-held-{i}");
            let opts = LockOptions::new(&name).external(true).lock_path(&path);
            // Through the global registry, and through one of its own.
            let reg = Registry::new();
            for registry in [Registry::global(), &reg] {
                let g = opts.registry(registry).mode(mode).lock().unwrap();
                let r = remove_external_lock_file(&name, None, Some(&path));
                assert!(is_would_deadlock(&r), "{mode:?}: {r:?}");
                assert!(path.join(&name).exists());
                drop(g);
            }
            assert!(remove_external_lock_file(&name, None, Some(&path)).unwrap());
        }
    });
}

// ---------------------------------------------------------------------------
// 4. Removal where there is nothing to remove
// ---------------------------------------------------------------------------

#[test]
fn removal_in_a_missing_directory_removes_nothing_and_creates_nothing() {
    let dir = common::tempdir();
    let missing = dir.path().join("missing").join("deeper");
    let removed = remove_external_lock_file("eng-rm-missing", None, Some(&missing));
    assert!(!removed.unwrap(), "nothing to remove");
    assert!(
        !dir.path().join("missing").exists(),
        "created the directory"
    );
    // A missing file in an existing directory: the same.
    assert!(!remove_external_lock_file("eng-rm-missing", None, Some(dir.path())).unwrap());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

// ---------------------------------------------------------------------------
// 5. Many locks held by one thread
// ---------------------------------------------------------------------------

const MANY: usize = 100_000;

fn hold_many(reg: &Registry) -> Vec<lockutils_core::LockGuard<'_>> {
    (0..MANY)
        .map(|i| {
            LockOptions::new(&format!("eng-many-{i}"))
                .registry(reg)
                .lock()
                .unwrap()
        })
        .collect()
}

/// A hang guard only: the speed is a criterion bench (`held_many`).
#[test]
fn holding_100k_locks_releases_in_both_orders() {
    within(Duration::from_secs(120), "100k held", || {
        let reg = Registry::new();
        // Newest first (LIFO).
        let mut guards = hold_many(&reg);
        assert_eq!(held_locks().len(), MANY);
        while let Some(g) = guards.pop() {
            drop(g);
        }
        assert!(held_locks().is_empty());
        // Oldest first (FIFO).
        let guards = hold_many(&reg);
        for g in guards {
            drop(g);
        }
        assert!(held_locks().is_empty());
        assert!(reg.is_empty());
    });
}

/// Out-of-order releases keep the list exact: what is listed is what is held,
/// oldest first.
#[test]
fn out_of_order_releases_keep_the_held_list_exact() {
    let reg = Registry::new();
    let mut guards: Vec<Option<_>> = (0..40)
        .map(|i| {
            Some(
                LockOptions::new(&format!("eng-ooo-{i}"))
                    .registry(&reg)
                    .lock()
                    .unwrap(),
            )
        })
        .collect();
    let mut rng = common::XorShift::new(7);
    let mut live: Vec<usize> = (0..40).collect();
    while !live.is_empty() {
        let k = rng.below(live.len() as u64) as usize;
        let i = live.remove(k);
        guards[i] = None;
        let listed: Vec<String> = held_locks().into_iter().map(|h| h.name).collect();
        let expected: Vec<String> = live.iter().map(|i| format!("eng-ooo-{i}")).collect();
        assert_eq!(listed, expected);
        // A re-acquisition of a live name is still refused, a released one is not.
        if let Some(&j) = live.first() {
            let r = LockOptions::new(&format!("eng-ooo-{j}"))
                .registry(&reg)
                .lock();
            assert!(is_would_deadlock(&r));
        }
        let again = LockOptions::new(&format!("eng-ooo-{i}"))
            .registry(&reg)
            .lock();
        assert!(again.is_ok());
    }
}

/// Every call site of a name pins the same slot: a hold through either is
/// listed once by `held_locks`, like any other hold.
#[test]
fn a_name_pinned_at_two_call_sites_is_listed_once_while_held() {
    static FIRST: StaticLock = StaticLock::new(LockOptions::new("pinned-twice"));
    static SECOND: StaticLock = StaticLock::new(LockOptions::new("pinned-twice"));
    // The first call of each pins it; later calls take the short path.
    drop(FIRST.lock().unwrap());
    drop(SECOND.lock().unwrap());
    let g = SECOND.lock().unwrap();
    let names: Vec<_> = held_locks().into_iter().map(|h| h.name).collect();
    assert_eq!(names, ["pinned-twice"]);
    drop(g);
}
