//! Review (held up): `fair` serves threads and async tasks in arrival order.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lockutils::LockOptions;

#[test]
fn fair_waiters_threads_and_tasks_are_served_in_arrival_order() {
    let opts = LockOptions::new("zz-fair").fair(true);
    let held = opts.lock().unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for i in 0..8 {
        let order = Arc::clone(&order);
        handles.push(std::thread::spawn(move || {
            let opts = LockOptions::new("zz-fair").fair(true);
            if i % 2 == 0 {
                let _g = opts.lock().unwrap();
                order.lock().unwrap().push(i);
            } else {
                lockutils_tests::block_on(async {
                    let _g = opts.lock_async().await.unwrap();
                    order.lock().unwrap().push(i);
                });
            }
        }));
        // Let waiter i queue before waiter i + 1 arrives.
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(held);
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(*order.lock().unwrap(), (0..8).collect::<Vec<_>>());
}
