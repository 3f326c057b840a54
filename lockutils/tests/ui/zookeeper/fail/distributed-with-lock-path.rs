use lockutils::synchronized;

#[synchronized("inventory", distributed, lock_path = "/var/lib/nova/tmp")]
fn reserve() {}

fn main() {
    reserve();
}
