use lockutils::synchronized;

#[synchronized("inventory", extrnal)]
fn reserve() {}

// oslo's name for the prefix.
#[synchronized("inventory", lock_file_prefix = "nova")]
fn release() {}

fn main() {
    // No follow-on "cannot find function" errors: the functions still exist.
    reserve();
    release();
}
