use lockutils::synchronized;

struct Instance {
    uuid: String,
}

// A name expression is ordinary code: the compiler points at the unknown
// identifier.
#[synchronized(name = format!("instance-{}", instance.uuid))]
fn spawn(inst: &Instance) {}

fn main() {
    spawn(&Instance { uuid: String::new() });
}
