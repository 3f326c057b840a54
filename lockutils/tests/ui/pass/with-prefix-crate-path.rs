//! `crate = path` on `#[synchronized_with_prefix]`: the facade under another
//! name, given once for every `#[synchronized]` of the block.
mod deps {
    pub extern crate lockutils as locks;
}

use deps::locks::synchronized_with_prefix;

#[synchronized_with_prefix("nova", crate = crate::deps::locks)]
mod compute {
    use crate::deps::locks::synchronized;

    #[synchronized("spawn")]
    pub fn spawn() -> Vec<String> {
        crate::deps::locks::held_locks()
            .into_iter()
            .map(|l| l.name)
            .collect()
    }

    #[synchronized("own", crate = "crate::deps::locks", prefix = "glance")]
    pub async fn own() {}
}

struct Scheduler;

#[synchronized_with_prefix("nova", crate = "crate::deps::locks")]
impl Scheduler {
    #[deps::locks::synchronized("select")]
    fn select(&self) -> usize {
        deps::locks::held_locks().len()
    }
}

fn main() {
    assert_eq!(compute::spawn(), ["nova-spawn"]);
    let _ = compute::own();
    assert_eq!(Scheduler.select(), 1);
}
