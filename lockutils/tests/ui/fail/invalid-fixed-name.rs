use lockutils::synchronized;

#[synchronized("")]
fn empty() {}

#[synchronized("..")]
fn parent_directory() {}

#[synchronized("a\0b")]
fn nul_in_name() {}

#[synchronized("instance-\0{id}")]
fn nul_beside_a_placeholder(id: u32) {}

#[synchronized("x", prefix = "p\0")]
fn nul_in_prefix() {}

// With a prefix, `..` is an ordinary name (`p-..`).
#[synchronized("..", prefix = "p")]
fn prefixed_parent_directory() {}

fn main() {
    empty();
    parent_directory();
    nul_in_name();
    nul_beside_a_placeholder(1);
    nul_in_prefix();
    prefixed_parent_directory();
}
