use lockutils::synchronized;

#[synchronized("inventory", lock_path = "/var/lib/nova/tmp")]
fn reserve() {}

#[synchronized("inventory", external = false, lock_path = "/var/lib/nova/tmp")]
fn release() {}

fn main() {
    reserve();
    release();
}
