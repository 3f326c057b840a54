//! `fair`: waiters get the lock in the order they asked for it.

use std::sync::Mutex;
use std::time::Duration;

use lockutils::synchronized;

static ORDER: Mutex<Vec<usize>> = Mutex::new(Vec::new());

#[synchronized("fair-queue", fair)]
fn served(i: usize) {
    ORDER.lock().unwrap().push(i);
    std::thread::sleep(Duration::from_millis(2));
}

#[test]
fn waiters_are_served_first_come_first_served() {
    let holder = lockutils::LockOptions::new("fair-queue")
        .fair(true)
        .lock()
        .unwrap();
    let waiters: Vec<_> = (0..5)
        .map(|i| {
            let t = std::thread::spawn(move || served(i));
            // Let this waiter queue up before the next one arrives.
            std::thread::sleep(Duration::from_millis(50));
            t
        })
        .collect();
    drop(holder);
    waiters.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(*ORDER.lock().unwrap(), [0, 1, 2, 3, 4]);
}
