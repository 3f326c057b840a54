//! The registry forgets released names: one million distinct names, each
//! locked once and released, on a caller-owned [`Registry`]. Afterwards no
//! name may be in use (`is_empty`), and the idle entries the registry caches
//! for a while must be collected by its own deferred sweep within 5 s
//! (`entries() == 0`); the process exits non-zero otherwise.
//!
//! Reports the time per name, the entries stored right after the loop, and
//! the process RSS (`/proc/self/statm`) before, right after, and after the
//! sweep, beside a baseline that never forgets: a
//! `DashMap<String, Arc<parking_lot::Mutex<()>>>` (default hasher) that gets
//! one entry per name, locked and unlocked once, as a weak-value-less name
//! table would.
//!
//! Run: `cargo bench -p lockutils-core --bench registry_memory`. Without
//! `--bench` (as `cargo test --benches` runs it) it uses 10,000 names.

use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use lockutils_core::{LockOptions, Registry};
use parking_lot::Mutex;

static REGISTRY: Registry = Registry::new();

/// Resident set size in KiB, from `/proc/self/statm`.
fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .expect("statm resident field");
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    pages * page / 1024
}

fn name(buf: &mut String, i: usize) -> &str {
    buf.clear();
    write!(buf, "instance-{i:08}").unwrap();
    buf
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n: usize = if full { 1_000_000 } else { 10_000 };
    if !full {
        println!("(smoke run without --bench: short, and the figures are no measurement)");
    }
    let mut buf = String::with_capacity(32);

    // Warm up allocator and registry so "before" is not the empty process.
    for i in 0..1000 {
        drop(
            LockOptions::new(name(&mut buf, i))
                .registry(&REGISTRY)
                .lock()
                .unwrap(),
        );
    }

    let before = rss_kib();
    let t = Instant::now();
    for i in 0..n {
        let g = LockOptions::new(name(&mut buf, i))
            .registry(&REGISTRY)
            .lock()
            .unwrap();
        drop(black_box(g));
    }
    let ours_ns = t.elapsed().as_nanos() as f64 / n as f64;
    let after = rss_kib();
    let in_use = REGISTRY.len();
    let stored = REGISTRY.entries();

    // The registry's own deferred sweep, not `collect()`, must empty it.
    let t = Instant::now();
    while REGISTRY.entries() != 0 && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let swept_ms = t.elapsed().as_millis();
    let left = REGISTRY.entries();
    let after_sweep = rss_kib();

    let map: DashMap<String, Arc<Mutex<()>>> = DashMap::new();
    let t = Instant::now();
    for i in 0..n {
        let key = name(&mut buf, i);
        let m = match map.get(key) {
            Some(e) => Arc::clone(&e),
            None => Arc::clone(&map.entry(key.to_owned()).or_default()),
        };
        drop(black_box(m.lock()));
    }
    let base_ns = t.elapsed().as_nanos() as f64 / n as f64;
    let base_after = rss_kib();
    let base_len = map.len();
    drop(map);

    println!("registry_memory: {n} distinct names, each locked once and released");
    println!(
        "registry_memory/lockutils          {ours_ns:>7.1} ns/name  RSS {before} KiB before, {after} KiB after (+{} KiB), {after_sweep} KiB after sweep",
        after.saturating_sub(before)
    );
    println!(
        "registry_memory/lockutils          names in use {in_use}, entries stored after the loop {stored}, after {swept_ms} ms {left}"
    );
    println!(
        "registry_memory/baseline/dashmap   {base_ns:>7.1} ns/name  RSS {base_after} KiB after (+{} KiB)  entries stored {base_len}",
        base_after.saturating_sub(after_sweep)
    );
    println!(
        "registry_memory/ratio lockutils/baseline: {:.2}x time per name",
        ours_ns / base_ns
    );
    if in_use != 0 || !REGISTRY.is_empty() || left != 0 {
        eprintln!("registry_memory: FAILED: {in_use} names in use, {left} entries still stored");
        std::process::exit(1);
    }
    println!("registry_memory/check registry empty: ok");
}
