use lockutils::synchronized;

#[synchronized("inventory", external, fair, external = false)]
fn reserve() {}

#[synchronized("inventory", name = format!("x"))]
fn release() {}

fn main() {
    reserve();
    release();
}
