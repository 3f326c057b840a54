//! Contended in-process locking: T threads take and release the same name(s)
//! in a loop, beside floors in the same run.
//!
//! - `unfair/1_name/{2,4}_threads`, `unfair/64_names/4_threads`:
//!   `LockOptions::new(name).lock()` against `baseline/dashmap_std_mutex`
//!   (`DashMap<String, std::sync::Mutex<()>>`: lookup, lock, unlock).
//! - `fair/1_name/2_threads`: `.fair(true)` (strict FIFO hand-off) against
//!   `baseline/parking_lot_unlock_fair` (`DashMap` lookup, `parking_lot::Mutex`
//!   lock, `MutexGuard::unlock_fair`).
//!
//! Each sample runs `iters` acquisitions split over the threads; the time per
//! acquisition is the wall time over all threads divided by `iters`.
//!
//! Run: `cargo bench -p lockutils-core --bench contended`.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use dashmap::DashMap;
use lockutils_core::{LockOptions, Registry};

/// Runs `op(thread, i)` `iters` times over `threads` threads; wall time.
fn run(threads: usize, iters: u64, op: &(dyn Fn(usize, u64) + Sync)) -> Duration {
    let per = iters / threads as u64 + 1;
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        for t in 0..threads {
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait();
                for i in 0..per {
                    op(t, i);
                }
                barrier.wait();
            });
        }
        barrier.wait();
        let start = Instant::now();
        barrier.wait();
        start.elapsed()
    })
}

fn contended(c: &mut Criterion) {
    let names: Vec<String> = (0..64).map(|i| format!("contended-{i}")).collect();
    let reg = Registry::new();
    let std_map: DashMap<String, std::sync::Mutex<()>> = DashMap::new();
    let pl_map: DashMap<String, parking_lot::Mutex<()>> = DashMap::new();
    for n in &names {
        std_map.insert(n.clone(), std::sync::Mutex::new(()));
        pl_map.insert(n.clone(), parking_lot::Mutex::new(()));
    }
    let mut g = c.benchmark_group("contended");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);

    for (label, threads, spread) in [
        ("1_name/2_threads", 2usize, 1usize),
        ("1_name/4_threads", 4, 1),
        ("64_names/4_threads", 4, 64),
    ] {
        let name = |t: usize, i: u64| &names[(t * 17 + i as usize) % spread];
        g.bench_function(format!("unfair/{label}/lockutils"), |b| {
            b.iter_custom(|iters| {
                run(threads, iters, &|t, i| {
                    drop(LockOptions::new(name(t, i)).registry(&reg).lock().unwrap())
                })
            })
        });
        g.bench_function(format!("unfair/{label}/baseline/dashmap_std_mutex"), |b| {
            b.iter_custom(|iters| {
                run(threads, iters, &|t, i| {
                    let m = std_map.get(name(t, i).as_str()).unwrap();
                    drop(m.lock().unwrap());
                })
            })
        });
    }

    g.bench_function("fair/1_name/2_threads/lockutils", |b| {
        b.iter_custom(|iters| {
            run(2, iters, &|_, _| {
                drop(
                    LockOptions::new(&names[0])
                        .registry(&reg)
                        .fair(true)
                        .lock()
                        .unwrap(),
                )
            })
        })
    });
    g.bench_function(
        "fair/1_name/2_threads/baseline/parking_lot_unlock_fair",
        |b| {
            b.iter_custom(|iters| {
                run(2, iters, &|_, _| {
                    let m = pl_map.get(names[0].as_str()).unwrap();
                    parking_lot::MutexGuard::unlock_fair(m.lock());
                })
            })
        },
    );
    g.finish();
}

criterion_group!(benches, contended);
criterion_main!(benches);
