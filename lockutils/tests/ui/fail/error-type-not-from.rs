use lockutils::synchronized;

// An error type without `From<lockutils::Error>`: the compiler points at the
// return type. (A local type rather than `String`, whose list of `From`
// impls in the message depends on the crates in the build, e.g. `uuid` with
// the `zookeeper` feature.)
#[derive(Debug)]
pub struct AppError;

#[synchronized("inventory", blocking = false)]
fn reserve() -> Result<(), AppError> {
    Ok(())
}

fn main() {
    let _ = reserve();
}
