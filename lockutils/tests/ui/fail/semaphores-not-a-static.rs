use lockutils::{synchronized, Registry};

// A `const` is a new, empty registry at every use.
#[allow(clippy::declare_interior_mutable_const)]
const LOCKS: Registry = Registry::new();

#[synchronized("inventory", semaphores = LOCKS)]
fn reserve() {}

struct Pool;

impl Pool {
    #[synchronized("pool", semaphores = Self::LOCKS)]
    fn take(&self) {}
}

#[synchronized("inventory", semaphores = &LOCKS)]
fn release() {}

fn main() {
    reserve();
    Pool.take();
    release();
}
