use lockutils::{synchronized, synchronized_with_prefix};

// One function of the block does not parse: that error is reported, and the
// block's other functions are still expanded (and their own mistakes
// reported); nothing is reported about the callers.
#[synchronized_with_prefix("nova")]
mod compute {
    use super::synchronized;

    #[synchronized("spawn")]
    pub fn spawn() -> u32 {
        let x = ;
        x
    }

    #[synchronized("build", mode = shared)]
    pub fn build() -> u32 {
        1
    }
}

fn main() {
    let _ = compute::spawn();
    let _ = compute::build();
}
