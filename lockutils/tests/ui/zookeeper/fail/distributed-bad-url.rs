use lockutils::synchronized;

#[synchronized("inventory", distributed = "zk1:2181,zk2:2181/nova")]
fn reserve() {}

#[synchronized("inventory", distributed = "kazoo://zk1:2181")]
fn release() {}

#[synchronized("inventory", distributed = "zookeeper://")]
fn audit() {}

fn main() {
    reserve();
    release();
    audit();
}
