use lockutils::{synchronized, synchronized_with_prefix};

// One function of the block does not parse: that error is the only one
// reported, and the block's other functions still compile and get the prefix.
#[synchronized_with_prefix("nova")]
mod compute {
    use super::synchronized;

    #[synchronized("spawn")]
    pub fn spawn() -> u32 {
        let x = ;
        x
    }

    #[synchronized("build", timeout = "1x")]
    pub fn build() -> u32 {
        1
    }
}

fn main() {
    let _ = compute::spawn();
    let _ = compute::build();
}
