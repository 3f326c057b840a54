use lockutils::synchronized;

#[synchronized("inventory", distributed, external)]
fn reserve() {}

#[synchronized("inventory", external = true, distributed = "zookeeper://zk1:2181")]
fn release() {}

fn main() {
    reserve();
    release();
}
