use lockutils::synchronized;

#[synchronized("inventory", blocking = false)]
fn reserve() {}

#[synchronized("inventory", blocking = false)]
fn count() -> u32 {
    1
}

fn main() {
    reserve();
    count();
}
