//! Randomised contention: many threads, many names, every way of acquiring,
//! random give-ups; exclusion must hold throughout and the registries must
//! end up empty.

mod common;

use std::pin::pin;
use std::thread;
use std::time::{Duration, Instant};

use common::{block_on, poll_once, Occupancy, WakeCounter, XorShift};
use lockutils_core::{Error, LockOptions, Mode, Registry};

const THREADS: usize = 8;
const NAMES: usize = 64;
/// Names from this index on are external: their exclusion across the two
/// registries comes from the lock file alone.
const FIRST_EXTERNAL: usize = 56;
const OPS_PER_THREAD: usize = 12_000;
/// Half the operations go to these few names, so that they are contended.
const HOT: [usize; 6] = [0, 1, 2, 3, 56, 57];

#[test]
fn random_contention_keeps_exclusion_and_leaves_registries_empty() {
    let started = Instant::now();
    let dir = common::tempdir();
    let names: Vec<String> = (0..NAMES).map(|i| format!("stress-{i}")).collect();
    let occupancy: Vec<Occupancy> = (0..NAMES).map(|_| Occupancy::default()).collect();
    let primary = Registry::new();
    let secondary = Registry::new();
    let outcomes = std::sync::Mutex::new([0usize; 4]); // held, would-block, timeout, dropped

    thread::scope(|s| {
        for t in 0..THREADS {
            let (names, occupancy, outcomes) = (&names, &occupancy, &outcomes);
            let (primary, secondary, dir) = (&primary, &secondary, dir.path());
            s.spawn(move || {
                let mut rng = XorShift::new(0x5EED_0000 + t as u64);
                let mut local = [0usize; 4];
                for _ in 0..OPS_PER_THREAD {
                    let i = if rng.one_in(2) {
                        HOT[rng.below(HOT.len() as u64) as usize]
                    } else {
                        rng.below(NAMES as u64) as usize
                    };
                    let external = i >= FIRST_EXTERNAL;
                    let registry = if external && rng.one_in(2) {
                        secondary
                    } else {
                        primary
                    };
                    let mode = if rng.one_in(3) {
                        Mode::Exclusive
                    } else {
                        Mode::Shared
                    };
                    let mut opts = LockOptions::new(&names[i])
                        .registry(registry)
                        .mode(mode)
                        .fair(rng.one_in(2));
                    if external {
                        opts = opts.external(true).lock_path(dir);
                    }
                    let hold = |local: &mut [usize; 4], rng: &mut XorShift| {
                        local[0] += 1;
                        let _inside = occupancy[i].enter(mode);
                        for _ in 0..rng.below(4) {
                            thread::yield_now();
                        }
                        if rng.one_in(64) {
                            thread::sleep(Duration::from_micros(200));
                        }
                    };
                    match rng.below(6) {
                        0 | 1 => {
                            let g = opts.lock().unwrap();
                            hold(&mut local, &mut rng);
                            drop(g);
                        }
                        2 => match opts.try_lock() {
                            Ok(g) => {
                                hold(&mut local, &mut rng);
                                drop(g);
                            }
                            Err(Error::WouldBlock { .. }) => local[1] += 1,
                            Err(e) => panic!("try_lock: {e}"),
                        },
                        3 => {
                            let timeout = Duration::from_micros(rng.below(2_000));
                            match opts.timeout(timeout).lock() {
                                Ok(g) => {
                                    hold(&mut local, &mut rng);
                                    drop(g);
                                }
                                Err(Error::Timeout { .. }) => local[2] += 1,
                                Err(e) => panic!("timed lock: {e}"),
                            }
                        }
                        4 => {
                            let g = block_on(opts.lock_async()).unwrap();
                            hold(&mut local, &mut rng);
                            drop(g);
                        }
                        _ => {
                            // Start an async acquisition and give it up early:
                            // after one poll, or after it was woken.
                            let (wakes, waker) = WakeCounter::new();
                            let mut fut = pin!(opts.lock_async());
                            let mut got = None;
                            for _ in 0..rng.below(3) + 1 {
                                match poll_once(&mut fut, &waker) {
                                    std::task::Poll::Ready(r) => {
                                        got = Some(r.unwrap());
                                        break;
                                    }
                                    std::task::Poll::Pending if wakes.count() == 0 => {
                                        thread::yield_now()
                                    }
                                    std::task::Poll::Pending => {}
                                }
                            }
                            match got {
                                Some(g) => {
                                    hold(&mut local, &mut rng);
                                    drop(g);
                                }
                                None => local[3] += 1,
                            }
                        }
                    }
                }
                let mut all = outcomes.lock().unwrap();
                for (a, l) in all.iter_mut().zip(local) {
                    *a += l;
                }
            });
        }
    });

    let outcomes = *outcomes.lock().unwrap();
    for (i, occ) in occupancy.iter().enumerate() {
        assert_eq!(occ.violations(), 0, "exclusion broken on {}", names[i]);
        assert!(occ.is_vacant());
    }
    assert!(outcomes[0] > 0, "nothing was ever held: {outcomes:?}");
    assert!(
        primary.is_empty() && secondary.is_empty(),
        "left in the registries: {:?} {:?}",
        primary.names(),
        secondary.names()
    );
    // Nobody holds anything: every name can be taken exclusively without
    // waiting, in-process and on its lock file.
    let fresh = Registry::new();
    for (i, name) in names.iter().enumerate() {
        let mut opts = LockOptions::new(name).registry(&fresh);
        if i >= FIRST_EXTERNAL {
            opts = opts.external(true).lock_path(dir.path());
        }
        for registry in [&primary, &secondary, &fresh] {
            let r = opts.registry(registry).try_lock();
            assert!(r.is_ok(), "{name} left held: {r:?}");
        }
    }
    assert!(fresh.is_empty());
    let elapsed = started.elapsed();
    eprintln!("stress: {outcomes:?} (held, would-block, timeout, dropped) in {elapsed:?}");
    assert!(
        elapsed < Duration::from_secs(30),
        "far too slow: {elapsed:?}"
    );
}
