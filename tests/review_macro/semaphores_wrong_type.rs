//! Review: `semaphores` naming a static of the wrong type.
use lockutils::synchronized;

static NOT_A_REGISTRY: u32 = 0;

#[synchronized("zz-sem", semaphores = NOT_A_REGISTRY)]
fn f() {}

fn main() {
    f();
}
