//! `#[synchronized_with_prefix]` on modules, impl blocks and traits with
//! default methods.
use lockutils::{synchronized, synchronized_with_prefix};

#[synchronized_with_prefix("nova")]
mod compute {
    #[lockutils::synchronized("instance-{id}")]
    pub fn spawn(id: u32) -> u32 {
        id
    }
}

struct Scheduler;

#[synchronized_with_prefix("nova")]
impl Scheduler {
    #[synchronized("select", prefix = "other")]
    fn select(&self) {}
}

#[synchronized_with_prefix("nova")]
trait Driver {
    #[synchronized("driver")]
    fn reboot(&self) -> u32 {
        1
    }
}

impl Driver for Scheduler {}

fn main() {
    assert_eq!(compute::spawn(1), 1);
    Scheduler.select();
    assert_eq!(Scheduler.reboot(), 1);
}
