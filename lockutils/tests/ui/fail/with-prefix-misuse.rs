use lockutils::synchronized_with_prefix;

#[synchronized_with_prefix("nova")]
fn spawn() {}

#[synchronized_with_prefix]
mod compute {}

#[synchronized_with_prefix(nova)]
mod network {}

// The prefix is applied, and the inner attribute still reports its own error.
#[synchronized_with_prefix("nova")]
mod scheduler {
    use lockutils::synchronized;

    #[synchronized(external)]
    pub fn select() {}
}

fn main() {
    spawn();
    scheduler::select();
}
