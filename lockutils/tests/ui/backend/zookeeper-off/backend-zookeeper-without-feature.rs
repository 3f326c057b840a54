use lockutils::synchronized;

#[synchronized("a", backend = "zookeeper://zk1:2181/app")]
fn on_zookeeper() {}

fn main() {}
