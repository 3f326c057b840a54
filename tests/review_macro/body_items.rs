//! Review: items declared in the function body are in scope in the whole
//! original body, but the guard is a statement *outside* the body's block
//! (docs/expansion.md), so options naming them fail to resolve.
use lockutils::{synchronized, Registry};

#[synchronized("zz-body-items", semaphores = LOCKS)]
fn private_registry() {
    static LOCKS: Registry = Registry::new();
}

#[synchronized(name = NAME)]
fn const_name() {
    const NAME: &str = "zz-body-items-name";
}

fn main() {
    private_registry();
    const_name();
}
