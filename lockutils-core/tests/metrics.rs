//! The `metrics` feature: wait and hold histograms and contention counters,
//! checked through metrics-util's `DebuggingRecorder` (installed for the
//! test's thread only, so other tests' locks are not counted).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use lockutils_core::{Error, LockGuard, LockOptions, Registry};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

/// One series: its name and its labels, `key=value` sorted.
type Series = (String, Vec<String>);

/// Runs `f` with a fresh recorder on this thread; returns every series.
fn recorded(f: impl FnOnce()) -> BTreeMap<Series, DebugValue> {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, f);
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let mut labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            ((key.name().to_owned(), labels), value)
        })
        .collect()
}

fn series(name: &str, labels: &[&str]) -> Series {
    (
        name.to_owned(),
        labels.iter().map(|l| (*l).to_owned()).collect(),
    )
}

fn histogram(all: &BTreeMap<Series, DebugValue>, s: &Series) -> Vec<f64> {
    match all.get(s) {
        Some(DebugValue::Histogram(v)) => v.iter().map(|x| x.into_inner()).collect(),
        other => panic!("{s:?}: {other:?} in {:?}", all.keys().collect::<Vec<_>>()),
    }
}

fn counter(all: &BTreeMap<Series, DebugValue>, s: &Series) -> u64 {
    match all.get(s) {
        Some(DebugValue::Counter(n)) => *n,
        None => 0,
        other => panic!("{s:?}: {other:?}"),
    }
}

const MEM_X: &[&str] = &["backend=memory", "mode=exclusive"];

#[test]
fn wait_hold_contention_and_timeouts_are_recorded_with_bounded_labels() {
    let reg = Registry::new();
    let dir = common::tempdir();

    // Uncontended in-process: no wait, a hold of at least the sleep.
    let all = recorded(|| {
        let g = LockOptions::new("m-plain").registry(&reg).lock().unwrap();
        assert!(LockGuard::held(&g).is_some(), "timed with the feature");
        std::thread::sleep(Duration::from_millis(30));
        assert!(LockGuard::held(&g).unwrap() >= Duration::from_millis(30));
        drop(g);
    });
    let mem = series("lockutils_wait_seconds", MEM_X);
    assert_eq!(histogram(&all, &mem), [0.0]);
    let hold = histogram(&all, &series("lockutils_hold_seconds", MEM_X));
    assert_eq!(hold.len(), 1);
    assert!(hold[0] >= 0.030, "{hold:?}");
    assert_eq!(
        counter(&all, &series("lockutils_contended_total", MEM_X)),
        0
    );

    // External and shared: their own labels, never the name.
    let all = recorded(|| {
        drop(
            LockOptions::new("m-file")
                .registry(&reg)
                .external(true)
                .lock_path(dir.path())
                .shared()
                .lock()
                .unwrap(),
        );
    });
    let file = &["backend=file", "mode=shared"];
    assert_eq!(
        histogram(&all, &series("lockutils_wait_seconds", file)).len(),
        1
    );
    assert_eq!(
        histogram(&all, &series("lockutils_hold_seconds", file)).len(),
        1
    );
    assert!(all
        .keys()
        .all(|(_, labels)| labels.iter().all(|l| !l.starts_with("lock="))));

    // Busy, from another thread than the holder's: one would-block, one
    // timeout, then one contended acquisition.
    let holder = LockOptions::new("m-busy").registry(&reg).lock().unwrap();
    let all = std::thread::scope(|s| {
        s.spawn(|| {
            recorded(|| {
                let e = LockOptions::new("m-busy")
                    .registry(&reg)
                    .try_lock()
                    .unwrap_err();
                assert!(matches!(e, Error::WouldBlock { .. }));
                let e = LockOptions::new("m-busy")
                    .registry(&reg)
                    .timeout(Duration::from_millis(20))
                    .lock()
                    .unwrap_err();
                assert!(matches!(e, Error::Timeout { .. }));
            })
        })
        .join()
        .unwrap()
    });
    assert_eq!(
        counter(&all, &series("lockutils_would_block_total", MEM_X)),
        1
    );
    assert_eq!(counter(&all, &series("lockutils_timeouts_total", MEM_X)), 1);

    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let all = std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            tid_tx.send(common::gettid()).unwrap();
            recorded(|| {
                let g = LockOptions::new("m-busy").registry(&reg).lock().unwrap();
                assert!(LockGuard::waited(&g) >= Duration::from_millis(50));
            })
        });
        // Released 50 ms after the waiter parked, however late it started.
        common::wait_until_sleeping(tid_rx.recv().unwrap());
        std::thread::sleep(Duration::from_millis(50));
        drop(holder);
        waiter.join().unwrap()
    });
    assert_eq!(
        counter(&all, &series("lockutils_contended_total", MEM_X)),
        1
    );
    let waited = histogram(&all, &series("lockutils_wait_seconds", MEM_X));
    assert!(waited.len() == 1 && waited[0] >= 0.050, "{waited:?}");

    // Asked for: a `lock` label with the identity.
    lockutils_core::metrics::label_lock_names(true);
    let all = recorded(|| drop(LockOptions::new("m-named").registry(&reg).lock().unwrap()));
    lockutils_core::metrics::label_lock_names(false);
    let named = &["backend=memory", "lock=m-named", "mode=exclusive"];
    assert_eq!(
        histogram(&all, &series("lockutils_hold_seconds", named)).len(),
        1
    );
}

/// A lock on a backend chosen by the options is labelled with the backend's
/// kind (from its URL's scheme), never with the URL or the name.
#[test]
fn holds_on_a_chosen_backend_are_labelled_with_its_kind() {
    let reg = Registry::new();
    let dir = common::tempdir();
    let files = lockutils_core::backend::FileBackend::new(dir.path());
    let all = recorded(|| {
        drop(
            LockOptions::new("m-backend")
                .registry(&reg)
                .backend(&files)
                .lock()
                .unwrap(),
        );
    });
    let file = &["backend=file", "mode=exclusive"];
    assert_eq!(
        histogram(&all, &series("lockutils_wait_seconds", file)).len(),
        1
    );
    assert_eq!(
        histogram(&all, &series("lockutils_hold_seconds", file)).len(),
        1
    );
    // Released through `unlock` (the hold is released on its backend
    // first), and busy: still the backend's kind, never `memory`.
    let other = Registry::new();
    let all = recorded(|| {
        let g = LockOptions::new("m-backend")
            .registry(&reg)
            .backend(&files)
            .lock()
            .unwrap();
        let e = LockOptions::new("m-backend")
            .registry(&other)
            .backend(&files)
            .try_lock()
            .unwrap_err();
        assert!(matches!(e, Error::WouldBlock { .. }), "{e}");
        LockGuard::unlock(g).unwrap();
    });
    assert_eq!(
        histogram(&all, &series("lockutils_hold_seconds", file)).len(),
        1
    );
    assert_eq!(
        counter(&all, &series("lockutils_would_block_total", file)),
        1
    );
    assert!(
        all.keys()
            .all(|(_, labels)| !labels.contains(&"backend=memory".to_owned())),
        "{:?}",
        all.keys().collect::<Vec<_>>()
    );
    assert!(
        all.keys().all(|(_, labels)| labels
            .iter()
            .all(|l| !l.contains("m-backend") && !l.contains("://"))),
        "{:?}",
        all.keys().collect::<Vec<_>>()
    );
}
