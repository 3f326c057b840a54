use lockutils::{synchronized, Error};

#[synchronized("inventory", blocking = false, timeout = "1s")]
fn reserve() -> Result<(), Error> {
    Ok(())
}

fn main() {
    let _ = reserve();
}
