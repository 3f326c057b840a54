//! A short contended run for counting system calls (`strace -f -c -e
//! trace=futex`): THREADS threads take and release one name (or NAMES names)
//! ITERS times each, and the run prints the operations per second.
//!
//! `floor` instead of `fair` runs the contended bench's floor
//! (`DashMap<String, std::sync::Mutex<()>>`) in the same way.
//!
//! Run: `cargo run --release -p lockutils-core --example contend -- THREADS
//! ITERS [fair|unfair|floor] [NAMES]`.

use std::time::Instant;

use lockutils_core::{LockOptions, Registry};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let threads: usize = args.first().map_or(2, |a| a.parse().expect("THREADS"));
    let iters: usize = args.get(1).map_or(1_000_000, |a| a.parse().expect("ITERS"));
    let fair = args.get(2).is_some_and(|a| a == "fair");
    let floor = args.get(2).is_some_and(|a| a == "floor");
    let spread: usize = args.get(3).map_or(1, |a| a.parse().expect("NAMES"));
    let names: Vec<String> = (0..spread).map(|i| format!("contend-{i}")).collect();
    let reg = Registry::new();
    let map: dashmap::DashMap<String, std::sync::Mutex<()>> = names
        .iter()
        .map(|n| (n.clone(), std::sync::Mutex::new(())))
        .collect();
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (reg, names, map) = (&reg, &names, &map);
            s.spawn(move || {
                for i in 0..iters {
                    let name = &names[(t * 17 + i) % spread];
                    if floor {
                        drop(map.get(name.as_str()).unwrap().lock().unwrap());
                    } else {
                        drop(
                            LockOptions::new(name)
                                .registry(reg)
                                .fair(fair)
                                .lock()
                                .unwrap(),
                        );
                    }
                }
            });
        }
    });
    let ops = (threads * iters) as f64;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{threads} threads, {spread} name(s), fair={fair}, floor={floor}: {ops} ops in {secs:.3} s = {:.2} M ops/s",
        ops / secs / 1e6
    );
}
