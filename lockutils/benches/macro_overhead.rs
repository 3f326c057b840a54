//! What `#[synchronized]` costs on an uncontended call, against the
//! hand-written alternatives:
//!
//! - a fixed name against the same function guarded by a bare
//!   `parking_lot::Mutex` (target: within 2x);
//! - a name from an argument against a `dashmap` lookup plus that mutex
//!   (target: within 2x).
//!
//! `cargo bench -p lockutils --bench macro_overhead`

use std::hint::black_box;
use std::sync::LazyLock;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use dashmap::DashMap;
use parking_lot::Mutex;

#[lockutils::synchronized("bench-static")]
fn with_macro(x: u64) -> u64 {
    x.wrapping_mul(3)
}

static MUTEX: Mutex<()> = parking_lot::const_mutex(());

fn with_mutex(x: u64) -> u64 {
    let _guard = MUTEX.lock();
    x.wrapping_mul(3)
}

#[lockutils::synchronized(name = key)]
fn with_macro_dynamic(key: &str, x: u64) -> u64 {
    x.wrapping_mul(3)
}

#[lockutils::synchronized("bench-{key}")]
fn with_macro_placeholder(key: &str, x: u64) -> u64 {
    x.wrapping_mul(3)
}

static BY_HAND: lockutils::StaticLock =
    lockutils::StaticLock::new(lockutils::LockOptions::new("bench-by-hand"));

/// The runtime call the macro expands to, written by hand: the macro's own
/// share of the cost is the difference to `with_macro`.
fn with_static_lock(x: u64) -> u64 {
    let _guard = BY_HAND.lock().expect("uncontended");
    x.wrapping_mul(3)
}

static MAP: LazyLock<DashMap<String, Mutex<()>>> = LazyLock::new(DashMap::new);

/// A map of per-name mutexes that are never removed (it grows with every
/// name ever used, which the registry does not).
fn with_dashmap(key: &str, x: u64) -> u64 {
    let entry = match MAP.get(key) {
        Some(e) => e,
        None => MAP.entry(key.to_owned()).or_default().downgrade(),
    };
    let _guard = entry.lock();
    x.wrapping_mul(3)
}

fn uncontended(c: &mut Criterion) {
    let mut g = c.benchmark_group("static name");
    g.bench_function("parking_lot::Mutex", |b| {
        b.iter(|| with_mutex(black_box(7)));
    });
    g.bench_function("#[synchronized(\"x\")]", |b| {
        b.iter(|| with_macro(black_box(7)));
    });
    g.bench_function("StaticLock::lock by hand", |b| {
        b.iter(|| with_static_lock(black_box(7)));
    });
    g.finish();

    let mut g = c.benchmark_group("dynamic name");
    g.bench_function("dashmap + parking_lot::Mutex", |b| {
        b.iter(|| with_dashmap(black_box("instance-42"), black_box(7)));
    });
    g.bench_function("#[synchronized(name = key)]", |b| {
        b.iter(|| with_macro_dynamic(black_box("instance-42"), black_box(7)));
    });
    g.bench_function("#[synchronized(\"bench-{key}\")]", |b| {
        b.iter(|| with_macro_placeholder(black_box("42"), black_box(7)));
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(30);
    targets = uncontended
}
criterion_main!(benches);
