//! `fair`: waiters get the lock in the order they asked for it.
#![cfg(target_os = "linux")] // reads /proc to see a waiter park

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
            let (tid_tx, tid_rx) = std::sync::mpsc::channel();
            let t = std::thread::spawn(move || {
                tid_tx.send(own_tid()).unwrap();
                served(i)
            });
            // This waiter queues up before the next one arrives: its only
            // sleep after announcing itself is the lock's.
            wait_until_sleeping(&tid_rx.recv().unwrap());
            t
        })
        .collect();
    drop(holder);
    waiters.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(*ORDER.lock().unwrap(), [0, 1, 2, 3, 4]);
}

/// This thread's id in `/proc/self/task`.
fn own_tid() -> String {
    let link = std::fs::read_link("/proc/thread-self").unwrap();
    link.file_name().unwrap().to_string_lossy().into_owned()
}

/// Waits until thread `tid` of this process sleeps (state `S`) on three
/// reads in a row, a millisecond apart: a lock waiter that has parked.
fn wait_until_sleeping(tid: &str) {
    let start = std::time::Instant::now();
    let mut streak = 0;
    while streak < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "thread {tid} never slept"
        );
        let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
        // The command name is in parentheses and may contain spaces.
        let state = stat[stat.rfind(')').unwrap() + 1..]
            .split_whitespace()
            .next();
        streak = if state == Some("S") { streak + 1 } else { 0 };
        std::thread::sleep(Duration::from_millis(1));
    }
}
