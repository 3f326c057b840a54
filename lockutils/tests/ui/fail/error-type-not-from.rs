use lockutils::synchronized;

// `String` has no `From<lockutils::Error>`: the compiler points at the
// return type.
#[synchronized("inventory", blocking = false)]
fn reserve() -> Result<(), String> {
    Ok(())
}

fn main() {
    let _ = reserve();
}
