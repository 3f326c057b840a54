use lockutils::synchronized;

// A mistake in a stacked attribute is reported there, once.
#[synchronized("compute-resources")]
#[synchronized("instance-{id}", extrnal)]
fn resize(id: u32) {
    let _ = id;
}

// A mistake in the first one, with a correct one below it.
#[synchronized("compute-resources", blocking = flase)]
#[synchronized("instance-{id}")]
fn migrate(id: u32) {
    let _ = id;
}

fn main() {
    // No follow-on "cannot find function" errors: the functions still exist.
    resize(1);
    migrate(1);
}
