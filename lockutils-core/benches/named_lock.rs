//! Uncontended in-process named lock: take and release, beside a plain
//! concurrent map of mutexes.
//!
//! Group `named_lock/one_name` (one name, locked over and over):
//! - `lockutils/dynamic`: `LockOptions::new("bench").lock()` then drop. Nobody
//!   else uses the name, so it goes idle at every release: this is the case
//!   the registry's collection of idle names must keep cheap.
//! - `lockutils/dynamic_live_entry`: the same call on a name whose entry can
//!   never be collected (a `StaticLock` of the same name pins it): the cost of
//!   the lookup alone, without any entry creation or removal.
//! - `lockutils/static`: a `StaticLock` (the form `#[synchronized("x")]`
//!   expands to): no hashing, no lookup.
//! - `lockutils/dynamic_async`, `lockutils/static_async`: the same two
//!   through `lock_async()`, polled once (uncontended, it is ready at once),
//!   to compare with their sync forms above.
//! - `baseline/dashmap_mutex`: `DashMap<String, parking_lot::Mutex<()>>`
//!   (default hasher), pre-populated with the key: lookup, lock, unlock.
//!
//! Group `named_lock/1000_names` (1000 distinct names, cycled):
//! - `lockutils/dynamic`: each name goes idle after its release and comes
//!   back 999 acquisitions later.
//! - `baseline/dashmap_mutex`: the same map pre-populated with the 1000 keys.
//!
//! Run: `cargo bench -p lockutils-core --bench named_lock`.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use dashmap::DashMap;
use lockutils_core::{LockOptions, StaticLock};
use parking_lot::Mutex;

const NAMES: usize = 1000;

static STATIC_BENCH: StaticLock = StaticLock::new(LockOptions::new("bench-static"));
static PIN_LIVE: StaticLock = StaticLock::new(LockOptions::new("bench-live"));

/// Polls an uncontended acquisition once: it must be ready.
fn ready<F: Future>(f: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(f).poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("an uncontended acquisition was pending"),
    }
}

// Each measured operation is a function of its own, not inlined into
// criterion's loop, so that the sync and async forms are compiled alike:
// inlined, their cost moved by ±40% with where the loop's code happened to
// land, which is not a property of either form.
#[inline(never)]
fn dynamic_sync(name: &str) {
    drop(LockOptions::new(name).lock().unwrap())
}

#[inline(never)]
fn dynamic_async(name: &str) {
    drop(ready(LockOptions::new(name).lock_async()).unwrap())
}

#[inline(never)]
fn static_sync(lock: &StaticLock) {
    drop(lock.lock().unwrap())
}

#[inline(never)]
fn static_async(lock: &StaticLock) {
    drop(ready(lock.lock_async()).unwrap())
}

#[inline(never)]
fn map_lock(map: &DashMap<String, Mutex<()>>, name: &str) {
    let entry = map.get(name).unwrap();
    drop(black_box(entry.lock()));
}

fn configure<'c>(c: &'c mut Criterion, name: &str) -> BenchmarkGroup<'c, WallTime> {
    let mut g = c.benchmark_group(name);
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(40);
    g
}

fn one_name(c: &mut Criterion) {
    let mut g = configure(c, "named_lock/one_name");

    g.bench_function("lockutils/dynamic", |b| {
        b.iter(|| dynamic_sync(black_box("bench")))
    });

    // Pin the entry of "bench-live" for the life of the process.
    drop(PIN_LIVE.lock().unwrap());
    g.bench_function("lockutils/dynamic_live_entry", |b| {
        b.iter(|| dynamic_sync(black_box("bench-live")))
    });

    g.bench_function("lockutils/static", |b| {
        b.iter(|| static_sync(black_box(&STATIC_BENCH)))
    });

    g.bench_function("lockutils/dynamic_async", |b| {
        b.iter(|| dynamic_async(black_box("bench")))
    });

    g.bench_function("lockutils/static_async", |b| {
        b.iter(|| static_async(black_box(&STATIC_BENCH)))
    });

    let map: DashMap<String, Mutex<()>> = DashMap::new();
    map.insert("bench".to_owned(), Mutex::new(()));
    g.bench_function("baseline/dashmap_mutex", |b| {
        b.iter(|| map_lock(&map, black_box("bench")))
    });
    g.finish();
}

fn many_names(c: &mut Criterion) {
    let names: Vec<String> = (0..NAMES).map(|i| format!("bench-{i}")).collect();
    let mut g = configure(c, "named_lock/1000_names");

    let mut i = 0;
    g.bench_function("lockutils/dynamic", |b| {
        b.iter(|| {
            i = (i + 1) % NAMES;
            dynamic_sync(black_box(&names[i]));
        })
    });

    let map: DashMap<String, Mutex<()>> = DashMap::new();
    for n in &names {
        map.insert(n.clone(), Mutex::new(()));
    }
    let mut i = 0;
    g.bench_function("baseline/dashmap_mutex", |b| {
        b.iter(|| {
            i = (i + 1) % NAMES;
            map_lock(&map, black_box(names[i].as_str()));
        })
    });
    g.finish();
}

criterion_group!(benches, one_name, many_names);
criterion_main!(benches);
