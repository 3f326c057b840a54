//! One lock per instance, named from the arguments: operations on one
//! instance take turns, operations on different instances run in parallel
//! (Nova's `@utils.synchronized(instance['uuid'])` inner function, as an
//! attribute).
//!
//! ```text
//! cargo run -p lockutils --example per_instance
//! ```

use std::time::{Duration, Instant};

use lockutils::synchronized;

struct Instance {
    uuid: String,
}

#[synchronized("instance-{uuid}")]
fn reboot(uuid: &str) {
    std::thread::sleep(Duration::from_millis(50));
    println!("rebooted {uuid}");
}

#[synchronized(name = format!("instance-{}", instance.uuid), prefix = "nova")]
fn resize(instance: &Instance) {
    std::thread::sleep(Duration::from_millis(50));
    println!("resized {}", instance.uuid);
}

/// Runs `f` on four threads at once and returns how long that took.
fn four_at_once(f: impl Fn(usize) + Sync) -> Duration {
    let started = Instant::now();
    std::thread::scope(|s| {
        for i in 0..4 {
            let f = &f;
            s.spawn(move || f(i));
        }
    });
    started.elapsed()
}

fn main() {
    let uuids = ["6f0f5a4e", "9b2c7d1a", "3d1c2b7e", "c0ffee00"];
    let different = four_at_once(|i| reboot(uuids[i]));
    println!("4 reboots of 4 instances: {different:?} (in parallel)");
    let same = four_at_once(|_| reboot(uuids[0]));
    println!("4 reboots of 1 instance:  {same:?} (one at a time)");
    assert!(same >= Duration::from_millis(200));
    assert!(different < same);

    let instance = Instance {
        uuid: uuids[1].to_owned(),
    };
    let resized = four_at_once(|_| resize(&instance));
    println!("4 resizes of 1 instance:  {resized:?} (one at a time)");
    assert!(resized >= Duration::from_millis(200));
}
