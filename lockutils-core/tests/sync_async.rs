//! Blocking threads and async tasks on the same locks: they exclude each
//! other, async waits never block the executor, any executor works, and
//! dropping a pending acquisition leaves nothing behind.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::task::Poll;
use std::thread;
use std::time::{Duration, Instant};

use common::{
    assert_pending_then_woken, block_on, block_on_with, gettid, poll_once, wait_until,
    wait_until_sleeping, Occupancy, WakeCounter,
};
use lockutils_core::{AsyncLockGuard, Error, LockGuard, LockOptions, Mode, Registry};

/// Holds `opts` on a new thread until the sender is used or dropped.
fn hold_on_thread(
    opts: LockOptions<'static, 'static>,
) -> (mpsc::Sender<()>, thread::JoinHandle<()>) {
    let (held_tx, held_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let h = thread::spawn(move || {
        let g = opts.lock().unwrap();
        held_tx.send(()).unwrap();
        let _ = release_rx.recv_timeout(Duration::from_secs(20));
        drop(g);
    });
    held_rx.recv().unwrap();
    (release_tx, h)
}

#[test]
fn a_thread_holder_blocks_an_async_waiter_until_it_releases() {
    static REG: Registry = Registry::new();
    let opts = LockOptions::new("sa-thread-holds").registry(&REG);
    let (release, holder) = hold_on_thread(opts);
    let mut fut = opts.lock_async();
    let g = assert_pending_then_woken(&mut fut, || {
        release.send(()).unwrap();
        holder.join().unwrap();
    })
    .unwrap();
    assert_eq!(AsyncLockGuard::name(&g), "sa-thread-holds");
    drop(g);
    assert!(REG.is_empty());
}

#[cfg(target_os = "linux")]
#[test]
fn an_async_holder_blocks_a_thread_waiter_until_it_releases() {
    let reg = Registry::new();
    let opts = LockOptions::new("sa-task-holds").registry(&reg);
    let g = block_on(opts.lock_async()).unwrap();
    let done = AtomicBool::new(false);
    thread::scope(|s| {
        let (tid_tx, tid_rx) = mpsc::channel();
        let done = &done;
        s.spawn(move || {
            tid_tx.send(gettid()).unwrap();
            let g = opts.lock().unwrap();
            done.store(true, SeqCst);
            drop(g);
        });
        wait_until_sleeping(tid_rx.recv().unwrap());
        assert!(!done.load(SeqCst), "the thread got the lock the task holds");
        drop(g);
    });
    assert!(done.load(SeqCst));
    assert!(reg.is_empty());
}

#[tokio::test(flavor = "current_thread")]
async fn an_async_waiter_does_not_block_the_executor_thread() {
    static REG: Registry = Registry::new();
    let opts = LockOptions::new("sa-executor").registry(&REG);
    let (release, holder) = hold_on_thread(opts);
    let waiter = tokio::spawn(async move {
        let g = opts.lock_async().await.unwrap();
        AsyncLockGuard::name(&g).to_owned()
    });
    let progress = Arc::new(AtomicUsize::new(0));
    let p = Arc::clone(&progress);
    let other = tokio::spawn(async move {
        for _ in 0..100 {
            p.fetch_add(1, SeqCst);
            tokio::task::yield_now().await;
        }
    });
    // Both tasks share this one thread; the second finishes while the first
    // still waits for the lock the holder thread keeps.
    other.await.unwrap();
    assert_eq!(progress.load(SeqCst), 100);
    assert!(!waiter.is_finished(), "the waiter got a lock that is held");
    release.send(()).unwrap();
    assert_eq!(waiter.await.unwrap(), "sa-executor");
    holder.join().unwrap();
    assert!(REG.is_empty());
}

#[test]
fn lock_async_works_without_any_async_runtime() {
    static REG: Registry = Registry::new();
    let opts = LockOptions::new("sa-no-runtime").registry(&REG);
    let (release, holder) = hold_on_thread(opts);
    let mut release = Some(release);
    // Release the holder once this acquisition is queued; the thread-unpark
    // waker must then be woken and the acquisition complete.
    let g = block_on_with(opts.lock_async(), |n| {
        if n == 1 {
            release.take().unwrap().send(()).unwrap();
        }
    })
    .unwrap();
    assert!(AsyncLockGuard::waited(&g) > Duration::ZERO);
    drop(g);
    holder.join().unwrap();
    assert!(REG.is_empty());
}

#[tokio::test(flavor = "current_thread")]
async fn async_timeout_returns_timeout() {
    static REG: Registry = Registry::new();
    let opts = LockOptions::new("sa-timeout").registry(&REG);
    let (release, holder) = hold_on_thread(opts);
    let timeout = Duration::from_millis(100);
    let start = Instant::now();
    let err = opts.timeout(timeout).lock_async().await.unwrap_err();
    assert!(start.elapsed() >= timeout);
    assert!(
        matches!(err, Error::Timeout { timeout: t, .. } if t == timeout),
        "{err:?}"
    );
    assert_eq!(err.lock_name(), "sa-timeout");
    assert_eq!(REG.names(), vec!["sa-timeout".to_owned()]);
    release.send(()).unwrap();
    holder.join().unwrap();
    assert!(REG.is_empty());
}

/// A dropped pending acquisition must leave the queue: with a fair lock a
/// leftover waiter would be handed the lock on release and keep it forever;
/// with an unfair one it would keep new readers out.
#[tokio::test(flavor = "current_thread")]
async fn dropping_a_pending_lock_async_leaves_no_waiter() {
    static REG: Registry = Registry::new();
    for fair in [true, false] {
        let opts = LockOptions::new("sa-cancel").registry(&REG).fair(fair);
        let (release, holder) = hold_on_thread(opts);
        // Dropped by a timeout combinator...
        let r = tokio::time::timeout(Duration::from_millis(20), opts.lock_async()).await;
        assert!(r.is_err(), "acquired a held lock");
        // ... by losing a select! ...
        tokio::select! {
            _ = opts.shared().lock_async() => panic!("acquired a held lock"),
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
        // ... and by hand after one poll.
        let (_, waker) = WakeCounter::new();
        let mut fut = opts.lock_async();
        assert!(poll_once(&mut fut, &waker).is_pending());
        drop(fut);
        release.send(()).unwrap();
        holder.join().unwrap();
        assert!(REG.is_empty(), "fair={fair}: left {:?}", REG.names());
        let g = opts
            .try_lock()
            .expect("lock left taken by a dropped waiter");
        drop(g);
        let r = opts
            .shared()
            .try_lock()
            .expect("readers kept out by a dropped waiter");
        drop(r);
        assert!(REG.is_empty());
    }
}

#[test]
fn a_future_dropped_right_after_its_grant_passes_the_lock_on() {
    let reg = Registry::new();
    let opts = LockOptions::new("sa-granted-drop")
        .registry(&reg)
        .fair(true);
    let holder = opts.lock().unwrap();
    let (w1, k1) = WakeCounter::new();
    let (w2, k2) = WakeCounter::new();
    let mut first = opts.lock_async();
    let mut second = opts.lock_async();
    assert!(poll_once(&mut first, &k1).is_pending());
    assert!(poll_once(&mut second, &k2).is_pending());
    drop(holder);
    assert_eq!(w1.count(), 1, "the first waiter was handed the lock");
    assert_eq!(w2.count(), 0);
    // Its owner goes away without polling it again.
    drop(first);
    assert!(w2.count() > 0, "the lock was not passed on");
    match poll_once(&mut second, &k2) {
        Poll::Ready(r) => drop(r.unwrap()),
        Poll::Pending => panic!("second waiter not granted"),
    }
    assert!(reg.is_empty());
}

#[test]
fn threads_and_tasks_exclude_each_other_on_one_name() {
    static REG: Registry = Registry::new();
    static OCC: Occupancy = Occupancy::new_const();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let threads: Vec<_> = (0..3)
        .map(|t| {
            thread::spawn(move || {
                for i in 0..300 {
                    let mode = if (i + t) % 3 == 0 {
                        Mode::Shared
                    } else {
                        Mode::Exclusive
                    };
                    let g = LockOptions::new("sa-mixed")
                        .registry(&REG)
                        .mode(mode)
                        .fair(i % 2 == 0)
                        .lock()
                        .unwrap();
                    let inside = OCC.enter(mode);
                    thread::yield_now();
                    drop(inside);
                    drop(g);
                }
            })
        })
        .collect();
    rt.block_on(async {
        let tasks: Vec<_> = (0..8)
            .map(|t| {
                tokio::spawn(async move {
                    for i in 0..100 {
                        let mode = if (i + t) % 3 == 0 {
                            Mode::Shared
                        } else {
                            Mode::Exclusive
                        };
                        let g = LockOptions::new("sa-mixed")
                            .registry(&REG)
                            .mode(mode)
                            .fair(i % 2 == 1)
                            .lock_async()
                            .await
                            .unwrap();
                        let inside = OCC.enter(mode);
                        tokio::task::yield_now().await;
                        drop(inside);
                        drop(g);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(OCC.violations(), 0);
    assert_eq!(OCC.entries(), 3 * 300 + 8 * 100);
    assert!(REG.is_empty());
}

#[test]
fn external_async_waits_for_a_file_held_by_another_open_file() {
    let dir = common::tempdir();
    let (a, b) = (Registry::new(), Registry::new());
    let opts = LockOptions::new("sa-file-wait")
        .external(true)
        .lock_path(dir.path());
    let holder = opts.registry(&b).lock().unwrap();
    let (wakes, waker) = WakeCounter::new();
    let mut fut = opts.registry(&a).lock_async();
    // However often it is polled (or woken to look again), it waits while
    // the other open file holds the lock.
    for _ in 0..5 {
        assert!(poll_once(&mut fut, &waker).is_pending());
        thread::sleep(Duration::from_millis(1));
    }
    drop(holder);
    // Then it is woken by itself (nobody else polls it), and polled only
    // when woken, it completes.
    let g = loop {
        let seen = wakes.count();
        if let Poll::Ready(r) = poll_once(&mut fut, &waker) {
            break r.unwrap();
        }
        wait_until(
            "the file wait wakes the task",
            Duration::from_secs(10),
            || wakes.count() > seen,
        );
    };
    assert_eq!(
        AsyncLockGuard::path(&g),
        Some(dir.path().join("sa-file-wait").as_path())
    );
    // It really holds the file: another open file cannot take it.
    assert!(matches!(
        opts.registry(&b).try_lock(),
        Err(Error::WouldBlock { .. })
    ));
    drop(g);
    drop(fut);
    assert!(a.is_empty() && b.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_async_wait_completes_on_tokio_when_the_holder_leaves() {
    static A: Registry = Registry::new();
    static B: Registry = Registry::new();
    let dir = common::tempdir();
    let path: &'static std::path::Path = Box::leak(dir.path().to_path_buf().into_boxed_path());
    let opts = LockOptions::new("sa-file-tokio")
        .external(true)
        .lock_path(path);
    let (release, holder) = hold_on_thread(opts.registry(&B));
    let task = tokio::spawn(async move {
        let g = opts.registry(&A).lock_async().await.unwrap();
        // Held across an await: the guard and the future are Send.
        tokio::task::yield_now().await;
        AsyncLockGuard::path(&g).map(|p| p.to_owned())
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!task.is_finished());
    release.send(()).unwrap();
    let p = task.await.unwrap();
    assert_eq!(p.as_deref(), Some(path.join("sa-file-tokio").as_path()));
    holder.join().unwrap();
    assert!(A.is_empty() && B.is_empty());
}

/// Dropping an acquisition that waits for the lock file gives back its
/// in-process lock at once, and once the holder goes the file is free again:
/// the kernel wait left behind (it cannot be called off) takes the lock for
/// nobody and lets go at once, so no lock stays behind.
#[test]
fn cancelling_an_external_async_wait_leaves_no_lock_behind() {
    let dir = common::tempdir();
    let (a, b, c) = (Registry::new(), Registry::new(), Registry::new());
    let name = "sa-file-cancel";
    let opts = LockOptions::new(name).external(true).lock_path(dir.path());
    let holder = opts.registry(&b).lock().unwrap();
    let (_, waker) = WakeCounter::new();
    let mut fut = opts.registry(&a).lock_async();
    assert!(poll_once(&mut fut, &waker).is_pending());
    // Waiting for the file, it holds registry a's in-process lock...
    assert!(a.contains(name));
    drop(fut);
    // ... which the drop gives back.
    assert!(a.is_empty());
    drop(LockOptions::new(name).registry(&a).try_lock().unwrap());
    drop(holder);
    common::wait_until(
        "the lock file is free again after the wait was dropped",
        Duration::from_secs(2),
        || opts.registry(&c).try_lock().is_ok(),
    );
    assert!(a.is_empty() && b.is_empty() && c.is_empty());
}

/// A dropped pending external acquisition leaves one kernel wait behind
/// (it cannot be called off), which takes the lock for nobody when the holder
/// releases and lets go at once.
#[cfg(target_os = "linux")]
#[test]
fn cancelling_an_external_async_wait_leaves_a_waiter_that_lets_go_at_once() {
    let dir = common::tempdir();
    let (a, b, c) = (Registry::new(), Registry::new(), Registry::new());
    let opts = LockOptions::new("sa-file-kernel")
        .external(true)
        .lock_path(dir.path());
    let holder = opts.registry(&b).lock().unwrap();
    let path = LockGuard::path(&holder).unwrap().to_owned();
    let (_, waker) = WakeCounter::new();
    let mut fut = opts.registry(&a).lock_async();
    assert!(poll_once(&mut fut, &waker).is_pending());
    thread::yield_now();
    assert!(poll_once(&mut fut, &waker).is_pending());
    drop(fut);
    assert!(a.is_empty());
    assert!(common::settled_kernel_waiters_on(&path) <= 1);
    drop(holder);
    common::assert_no_kernel_waiters(
        &path,
        "the left-behind wait took the lock and let go",
        Duration::from_secs(2),
    );
    common::wait_until(
        "the lock file is free again",
        Duration::from_secs(2),
        || opts.registry(&c).try_lock().is_ok(),
    );
}

/// A task notified of a free lock may not be polled for a long while (its
/// future kept but not polled, or forgotten): a thread queued behind one or
/// two such tasks is notified too, and takes the free lock, instead of
/// sleeping by it until its timeout.
#[test]
fn a_thread_behind_tasks_that_are_not_polled_gets_the_free_lock() {
    for (tasks, forget) in [(1, false), (1, true), (2, false), (2, true)] {
        // Outlives the forgotten futures, which borrow it.
        let reg: &'static Registry = Box::leak(Box::new(Registry::new()));
        let opts = LockOptions::new("unpolled").registry(reg);
        let held = opts.lock().unwrap();
        let (_, waker) = WakeCounter::new();
        let mut futures: Vec<_> = (0..tasks).map(|_| Box::pin(opts.lock_async())).collect();
        for f in &mut futures {
            assert!(poll_once(f, &waker).is_pending(), "queued first");
        }
        let (tid_tx, tid_rx) = mpsc::channel();
        let thread = thread::spawn(move || {
            tid_tx.send(gettid()).unwrap();
            let started = Instant::now();
            let got = LockOptions::new("unpolled")
                .registry(reg)
                .timeout(Duration::from_secs(10))
                .lock()
                .map(drop);
            (got, started.elapsed())
        });
        // Parked in line behind the tasks.
        wait_until_sleeping(tid_rx.recv().unwrap());
        drop(held);
        // The tasks are notified but not polled again (or never: forgotten).
        if forget {
            std::mem::forget(futures);
            let (got, took) = thread.join().unwrap();
            assert!(
                got.is_ok() && took < Duration::from_secs(5),
                "{tasks}: {got:?} after {took:?}"
            );
        } else {
            let (got, took) = thread.join().unwrap();
            assert!(
                got.is_ok() && took < Duration::from_secs(5),
                "{tasks}: {got:?} after {took:?}"
            );
            // Polled at last, each task gets the lock in its turn.
            for mut f in futures {
                match poll_once(&mut f, &waker) {
                    Poll::Ready(Ok(guard)) => drop(guard),
                    Poll::Ready(Err(e)) => panic!("{e}"),
                    Poll::Pending => panic!("a task polled by a free lock is pending"),
                }
            }
        }
    }
}

/// Notifying a thread past unpolled tasks never lets a reader in before a
/// queued writer: with a reader task, a writer task and then a reader thread
/// queued, a release notifies the reader task only, and the reader thread
/// stays behind the writer.
#[test]
fn a_reader_thread_is_not_notified_past_a_queued_writer_task() {
    let reg: &'static Registry = Box::leak(Box::new(Registry::new()));
    let opts = LockOptions::new("rw-unpolled").registry(reg);
    let held = opts.lock().unwrap();
    let (_, waker) = WakeCounter::new();
    let mut reader_task = Box::pin(opts.shared().lock_async());
    assert!(poll_once(&mut reader_task, &waker).is_pending());
    let mut writer_task = Box::pin(opts.lock_async());
    assert!(poll_once(&mut writer_task, &waker).is_pending());
    let (tid_tx, tid_rx) = mpsc::channel();
    let reader_thread = thread::spawn(move || {
        tid_tx.send(gettid()).unwrap();
        LockOptions::new("rw-unpolled")
            .registry(reg)
            .shared()
            .timeout(Duration::from_millis(300))
            .lock()
            .map(drop)
    });
    wait_until_sleeping(tid_rx.recv().unwrap());
    drop(held);
    let got = reader_thread.join().unwrap();
    assert!(
        matches!(&got, Err(e) if e.is_contention()),
        "a reader entered past a queued writer: {got:?}"
    );
    // The tasks, polled, go in their order: the reader, then the writer.
    let Poll::Ready(Ok(read)) = poll_once(&mut reader_task, &waker) else {
        panic!("the notified reader task did not enter");
    };
    assert!(poll_once(&mut writer_task, &waker).is_pending());
    drop(read);
    assert!(matches!(
        poll_once(&mut writer_task, &waker),
        Poll::Ready(Ok(_))
    ));
}
