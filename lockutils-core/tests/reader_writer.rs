//! Shared and exclusive holds: named locks in-process, lock files across open
//! files, and the standalone `ReaderWriterLock`.

mod common;

use std::sync::{mpsc, Barrier};
use std::task::Poll;
use std::thread;
use std::time::Duration;

use common::{
    assert_pending_then_woken, block_on, gettid, poll_once, wait_until_sleeping, Occupancy,
    WakeCounter,
};
use lockutils_core::{Error, LockOptions, Mode, ReaderWriterLock, Registry, RwGuard};

fn busy<T>(r: lockutils_core::Result<T>) -> bool {
    matches!(r, Err(Error::WouldBlock { .. }))
}

#[test]
fn shared_holders_share() {
    let reg = Registry::new();
    let opts = LockOptions::new("rw-share").registry(&reg).shared();
    let readers = 4;
    let barrier = Barrier::new(readers + 1);
    let first = opts.lock().unwrap();
    let all_in = thread::scope(|s| {
        let handles: Vec<_> = (0..readers)
            .map(|_| {
                s.spawn(|| {
                    let g = opts.try_lock();
                    // Everyone holds (or failed to take) a shared hold here, at
                    // the same time.
                    barrier.wait();
                    g.is_ok()
                })
            })
            .collect();
        barrier.wait();
        handles.into_iter().all(|h| h.join().unwrap())
    });
    assert!(all_in, "a reader was kept out by other readers");
    drop(first);
    assert!(reg.is_empty());
}

#[test]
fn exclusive_excludes_both_ways() {
    let reg = Registry::new();
    let opts = LockOptions::new("rw-excl").registry(&reg);
    let probe = |mode: Mode| {
        thread::scope(|s| s.spawn(|| busy(opts.mode(mode).try_lock())).join().unwrap())
    };
    let w = opts.lock().unwrap();
    assert!(probe(Mode::Shared), "reader entered beside a writer");
    assert!(probe(Mode::Exclusive), "writer entered beside a writer");
    drop(w);
    let r = opts.shared().lock().unwrap();
    assert!(probe(Mode::Exclusive), "writer entered beside a reader");
    assert!(!probe(Mode::Shared));
    drop(r);
    assert!(reg.is_empty());
}

#[test]
fn a_waiting_writer_blocks_new_readers() {
    let reg = Registry::new();
    let opts = LockOptions::new("rw-writer-first").registry(&reg);
    let reader = opts.shared().lock().unwrap();
    let (wakes, waker) = WakeCounter::new();
    let mut writer = opts.lock_async();
    assert!(poll_once(&mut writer, &waker).is_pending());
    thread::scope(|s| {
        s.spawn(|| {
            assert!(
                busy(opts.shared().try_lock()),
                "reader overtook a waiting writer"
            );
            assert!(matches!(
                opts.shared().timeout(Duration::from_millis(20)).lock(),
                Err(Error::Timeout { .. })
            ));
        });
    });
    drop(reader);
    assert!(wakes.count() > 0);
    let w = match poll_once(&mut writer, &waker) {
        Poll::Ready(r) => r.unwrap(),
        Poll::Pending => panic!("writer not granted after the reader left"),
    };
    drop(w);
    drop(writer);
    drop(opts.shared().try_lock().unwrap());
    assert!(reg.is_empty());
}

#[cfg(target_os = "linux")]
#[test]
fn a_blocked_writer_thread_blocks_new_readers() {
    let reg = Registry::new();
    let opts = LockOptions::new("rw-writer-thread").registry(&reg);
    let reader = opts.shared().lock().unwrap();
    thread::scope(|s| {
        let (tid_tx, tid_rx) = mpsc::channel();
        s.spawn(move || {
            tid_tx.send(gettid()).unwrap();
            drop(opts.lock().unwrap());
        });
        wait_until_sleeping(tid_rx.recv().unwrap());
        s.spawn(|| assert!(busy(opts.shared().try_lock())))
            .join()
            .unwrap();
        drop(reader);
    });
    assert!(reg.is_empty());
}

/// When a queued writer gives up, the readers queued behind it go ahead.
#[test]
fn readers_behind_a_writer_that_times_out_proceed() {
    let reg = Registry::new();
    let opts = LockOptions::new("rw-writer-gives-up").registry(&reg);
    let reader = opts.shared().lock().unwrap();
    let (_, wk) = WakeCounter::new();
    let mut writer = opts.timeout(Duration::from_millis(30)).lock_async();
    assert!(poll_once(&mut writer, &wk).is_pending());
    let (rwakes, rk) = WakeCounter::new();
    let mut late_reader = opts.shared().lock_async();
    assert!(poll_once(&mut late_reader, &rk).is_pending());
    // The writer times out (woken by the timer), leaving the queue.
    assert!(matches!(block_on(writer), Err(Error::Timeout { .. })));
    assert!(rwakes.count() > 0, "the queued reader was not woken");
    match poll_once(&mut late_reader, &rk) {
        Poll::Ready(r) => drop(r.unwrap()),
        Poll::Pending => panic!("reader still waits although only readers hold"),
    }
    drop(reader);
    assert!(reg.is_empty());
}

#[test]
fn external_shared_and_exclusive_within_one_process() {
    let dir = common::tempdir();
    let (a, b, c) = (Registry::new(), Registry::new(), Registry::new());
    let opts = LockOptions::new("rw-file")
        .external(true)
        .lock_path(dir.path());
    // Readers on separate open files share the lock file.
    let ra = opts.registry(&a).shared().lock().unwrap();
    let rb = opts.registry(&b).shared().try_lock().unwrap();
    assert!(
        busy(opts.registry(&c).try_lock()),
        "writer beside file readers"
    );
    drop(ra);
    assert!(
        busy(opts.registry(&c).try_lock()),
        "writer beside a file reader"
    );
    drop(rb);
    // A writer excludes readers and writers on other open files.
    let w = opts.registry(&a).lock().unwrap();
    assert!(
        busy(opts.registry(&b).shared().try_lock()),
        "reader beside a file writer"
    );
    assert!(
        busy(opts.registry(&c).try_lock()),
        "writer beside a file writer"
    );
    drop(w);
    drop(opts.registry(&c).try_lock().unwrap());
    // Two shared holders in one registry hold the file together too.
    let r1 = opts.registry(&a).shared().lock().unwrap();
    let r2 = thread::scope(|s| {
        s.spawn(|| opts.registry(&a).shared().try_lock().is_ok())
            .join()
            .unwrap()
    });
    assert!(r2);
    drop(r1);
    assert!(a.is_empty() && b.is_empty() && c.is_empty());
}

#[test]
fn reader_writer_lock_sync() {
    let l = ReaderWriterLock::new();
    let r1 = l.read();
    let r2 = l.try_read().expect("readers share");
    assert_eq!(RwGuard::mode(&r2), Mode::Shared);
    assert!(l.try_write().is_none());
    drop((r1, r2));
    let w = l.write();
    assert_eq!(RwGuard::mode(&w), Mode::Exclusive);
    assert!(l.try_read().is_none());
    assert!(l.try_write().is_none());
    drop(w);
    assert!(l.try_write().is_some());
}

#[cfg(target_os = "linux")]
#[test]
fn reader_writer_lock_waiting_writer_blocks_new_readers() {
    for l in [ReaderWriterLock::new(), ReaderWriterLock::new_fair()] {
        let r = l.read();
        thread::scope(|s| {
            let (tid_tx, tid_rx) = mpsc::channel();
            let l = &l;
            s.spawn(move || {
                tid_tx.send(gettid()).unwrap();
                drop(l.write());
            });
            wait_until_sleeping(tid_rx.recv().unwrap());
            assert!(
                l.try_read().is_none(),
                "{l:?}: reader overtook a waiting writer"
            );
            drop(r);
        });
        assert!(l.try_write().is_some());
    }
}

#[test]
fn reader_writer_lock_async() {
    let l = ReaderWriterLock::new();
    let w = l.write();
    let mut read = l.read_async();
    let r = assert_pending_then_woken(&mut read, || drop(w));
    assert_eq!(RwGuard::mode(&r), Mode::Shared);
    let r2 = block_on(l.read_async());
    let mut write = l.write_async();
    let w = assert_pending_then_woken(&mut write, || drop((r, r2)));
    assert_eq!(RwGuard::mode(&w), Mode::Exclusive);
    drop(w);
}

#[test]
fn reader_writer_lock_dropped_async_wait_leaves_no_waiter() {
    for l in [ReaderWriterLock::new(), ReaderWriterLock::new_fair()] {
        let r = l.read();
        let (_, waker) = WakeCounter::new();
        let mut write = l.write_async();
        assert!(poll_once(&mut write, &waker).is_pending());
        assert!(l.try_read().is_none(), "queued writer must block readers");
        drop(write);
        assert!(
            l.try_read().is_some(),
            "{l:?}: a dropped writer still blocks readers"
        );
        drop(r);
        assert!(l.try_write().is_some(), "{l:?}: lock left taken");
    }
}

#[test]
fn reader_writer_lock_threads_and_tasks_keep_exclusion() {
    static L: ReaderWriterLock = ReaderWriterLock::new_fair();
    let occ = Occupancy::default();
    thread::scope(|s| {
        for t in 0..6 {
            let occ = &occ;
            s.spawn(move || {
                for i in 0..500 {
                    let write = (i + t) % 4 == 0;
                    let g = match (write, t % 2 == 0) {
                        (true, true) => L.write(),
                        (true, false) => block_on(L.write_async()),
                        (false, true) => L.read(),
                        (false, false) => block_on(L.read_async()),
                    };
                    let inside = occ.enter(RwGuard::mode(&g));
                    thread::yield_now();
                    drop(inside);
                    drop(g);
                }
            });
        }
    });
    assert_eq!(occ.violations(), 0);
    assert!(occ.max_readers() >= 1);
    assert!(L.try_write().is_some());
}
