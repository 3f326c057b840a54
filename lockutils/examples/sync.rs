//! Threads share an account; `#[synchronized]` makes each read-modify-write
//! of the balance happen alone, so no deposit is lost.
//!
//! ```text
//! cargo run -p lockutils --example sync
//! ```

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use lockutils::synchronized;

static BALANCE: AtomicU64 = AtomicU64::new(0);

/// A deliberately racy read-modify-write: without the lock, concurrent
/// deposits overwrite each other.
#[synchronized("account-42")]
fn deposit(amount: u64) {
    let before = BALANCE.load(Relaxed);
    std::thread::sleep(Duration::from_micros(50));
    BALANCE.store(before + amount, Relaxed);
}

fn main() {
    let (threads, deposits) = (8, 50);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| (0..deposits).for_each(|_| deposit(1)));
        }
    });
    let balance = BALANCE.load(Relaxed);
    println!("{threads} threads x {deposits} deposits of 1: balance {balance}");
    assert_eq!(balance, threads * deposits, "a deposit was lost");
}
