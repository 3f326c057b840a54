//! Garbage collection of the named-lock registry: entries live exactly as
//! long as someone holds or waits for the name.

mod common;

use std::thread;
use std::time::Duration;

use common::{block_on, wait_until, Occupancy, XorShift};
use lockutils_core::{Error, LockOptions, Mode, Registry};

/// Entries of idle names are collected: memory stays bounded while names
/// stream through, and the registry empties by itself afterwards.
#[test]
fn hundred_thousand_names_leave_an_empty_registry() {
    let reg = Registry::new();
    let mut most = 0;
    for i in 0..100_000u32 {
        let name = format!("gc-{i}");
        let opts = LockOptions::new(&name).registry(&reg);
        let g = match i % 4 {
            0 => opts.lock().unwrap(),
            1 => opts.try_lock().unwrap(),
            2 => opts
                .shared()
                .timeout(Duration::from_secs(1))
                .lock()
                .unwrap(),
            _ => {
                drop(block_on(opts.lock_async()).unwrap());
                continue;
            }
        };
        if i % 10_000 == 0 {
            assert!(reg.contains(&name));
            assert_eq!(reg.len(), 1);
        }
        drop(g);
        most = most.max(reg.entries());
    }
    assert!(reg.is_empty(), "{} names left in use", reg.len());
    assert!(reg.names().is_empty());
    // Bounded whatever the number of names: an inline sweep runs once 1024
    // names beyond those in use (here at most one) have been inserted. A
    // deferred sweep on the timer thread may overlap an inline one, so allow
    // the few inserted meanwhile.
    assert!(
        most <= 1024 + 64,
        "{most} entries kept for 100000 idle names"
    );
    // Collected by itself shortly after the names went idle.
    wait_until("idle entries are collected", Duration::from_secs(5), || {
        reg.entries() == 0
    });
}

#[test]
fn collect_removes_idle_entries_at_once() {
    let reg = Registry::new();
    for i in 0..100 {
        drop(
            LockOptions::new(&format!("gc-now-{i}"))
                .registry(&reg)
                .lock()
                .unwrap(),
        );
    }
    let held = LockOptions::new("gc-now-held")
        .registry(&reg)
        .lock()
        .unwrap();
    reg.collect();
    assert_eq!(reg.entries(), 1, "only the held name stays");
    assert_eq!(reg.names(), vec!["gc-now-held".to_owned()]);
    drop(held);
    reg.collect();
    assert_eq!(reg.entries(), 0);
}

#[test]
fn many_names_held_at_once_are_all_collected() {
    let reg = Registry::new();
    let names: Vec<String> = (0..1_000).map(|i| format!("gc-many-{i}")).collect();
    let guards: Vec<_> = names
        .iter()
        .map(|n| LockOptions::new(n).registry(&reg).lock().unwrap())
        .collect();
    assert_eq!(reg.len(), 1_000);
    drop(guards);
    assert!(reg.is_empty());
    reg.collect();
    assert_eq!(reg.entries(), 0);
}

#[test]
fn failed_acquisitions_leave_no_name_in_use() {
    let reg = Registry::new();
    // Bad names never create entries.
    for bad in ["", ".", "..", "a\0b"] {
        let err = LockOptions::new(bad).registry(&reg).lock().unwrap_err();
        assert!(matches!(err, Error::InvalidName { .. }), "{bad:?}: {err}");
    }
    assert_eq!(reg.entries(), 0, "entries created for invalid names");

    let held = LockOptions::new("gc-busy").registry(&reg).lock().unwrap();
    thread::scope(|s| {
        s.spawn(|| {
            let opts = LockOptions::new("gc-busy").registry(&reg);
            assert!(matches!(opts.try_lock(), Err(Error::WouldBlock { .. })));
            assert!(matches!(
                opts.timeout(Duration::from_millis(10)).lock(),
                Err(Error::Timeout { .. })
            ));
            assert!(matches!(
                block_on(opts.timeout(Duration::from_millis(10)).lock_async()),
                Err(Error::Timeout { .. })
            ));
            assert!(matches!(
                block_on(opts.blocking(false).lock_async()),
                Err(Error::WouldBlock { .. })
            ));
        });
    });
    assert_eq!(reg.names(), vec!["gc-busy".to_owned()]);
    drop(held);
    assert!(reg.is_empty(), "left: {:?}", reg.names());
    reg.collect();
    assert_eq!(reg.entries(), 0);
}

/// The drop-vs-lookup race: idle entries are removed (here by a thread
/// collecting without pause) while others look the names up. A lookup must
/// find the live entry or make a new one after the old is gone; two holders
/// in two entries would overlap.
#[test]
fn removal_racing_lookup_never_admits_two_holders() {
    let reg = Registry::new();
    let names: Vec<String> = (0..3).map(|i| format!("gc-race-{i}")).collect();
    let occupancy: Vec<Occupancy> = (0..3).map(|_| Occupancy::default()).collect();
    let workers_left = std::sync::atomic::AtomicUsize::new(8);
    thread::scope(|s| {
        s.spawn(|| {
            let mut removed = 0;
            while workers_left.load(std::sync::atomic::Ordering::SeqCst) > 0 {
                removed += reg.collect();
            }
            // Busy names are rarely idle at a given instant: in a rare run
            // every removal falls to the registry's own sweep. The names are
            // idle now, and this loop is faster than that sweep's delay.
            if removed == 0 {
                removed += reg.collect();
            }
            assert!(removed > 0, "the collector never removed an entry");
        });
        for t in 0..8u64 {
            let workers_left = &workers_left;
            let (reg, names, occupancy) = (&reg, &names, &occupancy);
            s.spawn(move || {
                let mut rng = XorShift::new(t + 1);
                for _ in 0..6_000 {
                    let k = rng.below(3) as usize;
                    let opts = LockOptions::new(&names[k]).registry(reg);
                    let g = if rng.one_in(2) {
                        opts.lock().unwrap()
                    } else {
                        match opts.try_lock() {
                            Ok(g) => g,
                            Err(Error::WouldBlock { .. }) => continue,
                            Err(e) => panic!("{e}"),
                        }
                    };
                    let inside = occupancy[k].enter(Mode::Exclusive);
                    drop(inside);
                    drop(g);
                }
                workers_left.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            });
        }
    });
    for (k, occ) in occupancy.iter().enumerate() {
        assert_eq!(occ.violations(), 0, "two holders of {}", names[k]);
        assert!(occ.entries() > 0);
    }
    assert!(reg.is_empty(), "left: {:?}", reg.names());
    reg.collect();
    assert_eq!(reg.entries(), 0);
}
