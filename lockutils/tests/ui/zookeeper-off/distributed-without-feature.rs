use lockutils::synchronized;

#[synchronized("inventory", distributed)]
fn reserve() {}

#[synchronized("inventory", distributed = "zookeeper://zk1:2181/nova", prefix = "nova")]
fn release() {}

// `false` needs nothing from the feature.
#[synchronized("inventory", distributed = false)]
fn audit() {}

fn main() {
    reserve();
    release();
    audit();
}
