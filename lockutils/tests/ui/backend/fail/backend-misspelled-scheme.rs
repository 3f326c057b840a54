use lockutils::synchronized;

#[synchronized("a", backend = "fille:///tmp/x")]
fn misspelled() {}

#[synchronized("b", backend = "File:///tmp/x")]
fn upper_case() {}

#[synchronized("c", backend = "zookeper://zk1:2181/app")]
fn misspelled_engine() {}

fn main() {}
