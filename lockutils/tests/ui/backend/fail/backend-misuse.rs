use lockutils::synchronized;

#[synchronized("a", backend = "file:///tmp/x", external)]
fn with_external() {}

#[synchronized("b", backend = "no-scheme")]
fn without_scheme() {}

#[synchronized("c", backend = 42)]
fn not_a_url() {}

#[synchronized("d", lock_path = "/tmp", backend = "file:///tmp/x")]
fn with_lock_path() {}

#[synchronized("e", backend = "file:///tmp/x", backend = "file:///tmp/y")]
fn twice() {}

#[synchronized("f", backend)]
fn no_value() {}

fn main() {}
