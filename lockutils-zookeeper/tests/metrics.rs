//! The `metrics` feature on ZooKeeper locks: wait and hold histograms and
//! contention and timeout counters, labelled `backend=zookeeper` (never with
//! the URL or the lock's name), checked through metrics-util's
//! `DebuggingRecorder` against a real server. The recorder is installed for
//! the measuring thread only, so the other host's locks are not counted.
//!
//! Ignored in a plain `cargo test`; `bash .ci/run` runs it, as does
//! `scripts/zookeeper.sh start && cargo test -p lockutils-zookeeper
//! --features metrics --test metrics -- --ignored`.

mod common;
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{registries, url};
use lockutils_core::{Error, LockGuard, LockOptions};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use support::Host;

/// One series: its name and its labels, `key=value` sorted.
type Series = (String, Vec<String>);

/// Runs `f` with a fresh recorder on this thread; returns every series.
fn recorded<T>(f: impl FnOnce() -> T) -> (T, BTreeMap<Series, DebugValue>) {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let out = metrics::with_local_recorder(&recorder, f);
    let all = snapshotter
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
        .collect();
    (out, all)
}

const ZK_X: &[&str] = &["backend=zookeeper", "mode=exclusive"];

fn series(name: &str) -> Series {
    (
        name.to_owned(),
        ZK_X.iter().map(|l| (*l).to_owned()).collect(),
    )
}

fn histogram(all: &BTreeMap<Series, DebugValue>, name: &str) -> Vec<f64> {
    match all.get(&series(name)) {
        Some(DebugValue::Histogram(v)) => v.iter().map(|x| x.into_inner()).collect(),
        other => panic!("{name}: {other:?} in {:?}", all.keys().collect::<Vec<_>>()),
    }
}

fn counter(all: &BTreeMap<Series, DebugValue>, name: &str) -> u64 {
    match all.get(&series(name)) {
        Some(DebugValue::Counter(n)) => *n,
        None => 0,
        other => panic!("{name}: {other:?}"),
    }
}

/// Only the `backend` and `mode` labels, whatever the URL and lock name.
fn labels_are_bounded(all: &BTreeMap<Series, DebugValue>) {
    for (name, labels) in all.keys() {
        assert_eq!(labels, ZK_X, "{name}: {labels:?}");
    }
}

#[test]
#[ignore = "needs ZooKeeper on 127.0.0.1:2181; run scripts/zookeeper.sh start, or bash .ci/run"]
fn holds_waits_and_timeouts_on_zookeeper_are_recorded_with_its_backend_label() {
    let regs = registries();
    let url = url("metrics", "");
    // Two hosts: separate sessions and in-process registries.
    let (a, b) = (Host::new(&url), Host::new(&url));
    a.connect().unwrap();
    b.connect().unwrap();
    let on_a = LockOptions::new("m").backend(a.zk()).registry(&regs[0]);
    let on_b = LockOptions::new("m").backend(b.zk()).registry(&regs[1]);

    // A hold: one wait sample (the round trips, no holder ahead) and one
    // hold of at least the time it was kept.
    let ((), all) = recorded(|| {
        let g = on_a.lock().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert!(LockGuard::held(&g).unwrap() >= Duration::from_millis(50));
        LockGuard::unlock(g).unwrap();
    });
    labels_are_bounded(&all);
    let waited = histogram(&all, "lockutils_wait_seconds");
    assert_eq!(waited.len(), 1, "{waited:?}");
    assert!(waited[0] < 5.0, "{waited:?}");
    let held = histogram(&all, "lockutils_hold_seconds");
    assert!(held.len() == 1 && held[0] >= 0.050, "{held:?}");
    assert_eq!(counter(&all, "lockutils_timeouts_total"), 0);

    // A timeout while the other host holds the lock.
    let holder = on_b.lock().unwrap();
    let (e, all) = recorded(|| on_a.timeout(Duration::from_millis(200)).lock().unwrap_err());
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    labels_are_bounded(&all);
    assert_eq!(counter(&all, "lockutils_timeouts_total"), 1);
    assert_eq!(counter(&all, "lockutils_contended_total"), 0);
    assert!(!all.contains_key(&series("lockutils_wait_seconds")));
    // And a non-blocking attempt.
    let (e, all) = recorded(|| on_a.try_lock().unwrap_err());
    assert!(matches!(e, Error::WouldBlock { .. }), "{e}");
    assert_eq!(counter(&all, "lockutils_would_block_total"), 1);

    // A contended wait: queued behind the other host's hold for 300 ms.
    let (waited_for, all) = std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            recorded(|| {
                let g = on_a.timeout(Duration::from_secs(10)).lock().unwrap();
                let waited = LockGuard::waited(&g);
                std::thread::sleep(Duration::from_millis(20));
                drop(g);
                waited
            })
        });
        common::wait_for(&b, "m", Duration::from_secs(5), |i| i.contenders.len() == 2);
        std::thread::sleep(Duration::from_millis(300));
        drop(holder);
        waiter.join().unwrap()
    });
    labels_are_bounded(&all);
    assert!(waited_for >= Duration::from_millis(300), "{waited_for:?}");
    assert_eq!(counter(&all, "lockutils_contended_total"), 1);
    let waited = histogram(&all, "lockutils_wait_seconds");
    assert!(
        waited.len() == 1 && waited[0] >= 0.300 && waited[0] == waited_for.as_secs_f64(),
        "{waited:?} vs {waited_for:?}"
    );
    let held = histogram(&all, "lockutils_hold_seconds");
    assert!(held.len() == 1 && held[0] >= 0.020, "{held:?}");
    assert_eq!(counter(&all, "lockutils_timeouts_total"), 0);
}
