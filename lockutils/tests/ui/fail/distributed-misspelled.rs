use lockutils::synchronized;

#[synchronized("inventory", distribute)]
fn reserve() {}

#[synchronized("inventory", zookeeper)]
fn release() {}

#[synchronized("inventory", backend_url = "zookeeper://zk1:2181")]
fn audit() {}

fn main() {
    reserve();
    release();
    audit();
}
