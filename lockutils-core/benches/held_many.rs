//! One thread holding many locks: take N, release them newest first (LIFO)
//! or oldest first (FIFO). The per-lock cost (criterion's throughput, in
//! elements) follows `baseline/unrecorded` (the same acquisitions through
//! `lock_async`, whose guards are not recorded per thread) as N grows from
//! 1 000 to 100 000: recording and erasing a hold is O(1) in either order,
//! and what grows with N is the registry's memory, not the records.
//!
//! Run: `cargo bench -p lockutils-core --bench held_many`.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lockutils_core::{AsyncLockGuard, LockGuard, LockOptions, Registry};

fn ready<F: Future>(f: F) -> F::Output {
    match pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("uncontended acquisition pending"),
    }
}

fn take_unrecorded<'r>(reg: &'r Registry, names: &[String]) -> Vec<AsyncLockGuard<'r>> {
    names
        .iter()
        .map(|n| ready(LockOptions::new(n).registry(reg).lock_async()).unwrap())
        .collect()
}

fn take<'r>(reg: &'r Registry, names: &[String]) -> Vec<LockGuard<'r>> {
    names
        .iter()
        .map(|n| LockOptions::new(n).registry(reg).lock().unwrap())
        .collect()
}

fn held_many(c: &mut Criterion) {
    let mut g = c.benchmark_group("held_many");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10);
    let reg = Registry::new();
    for n in [1_000usize, 10_000, 100_000] {
        let names: Vec<String> = (0..n).map(|i| format!("held-{i}")).collect();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("lifo", n), &names, |b, names| {
            b.iter(|| {
                let mut guards = take(&reg, names);
                while let Some(g) = guards.pop() {
                    drop(g);
                }
            })
        });
        g.bench_with_input(
            BenchmarkId::new("baseline/unrecorded", n),
            &names,
            |b, names| {
                b.iter(|| {
                    let mut guards = take_unrecorded(&reg, names);
                    while let Some(g) = guards.pop() {
                        drop(g);
                    }
                })
            },
        );
        g.bench_with_input(BenchmarkId::new("fifo", n), &names, |b, names| {
            b.iter(|| {
                for g in take(&reg, names) {
                    drop(g);
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, held_many);
criterion_main!(benches);
