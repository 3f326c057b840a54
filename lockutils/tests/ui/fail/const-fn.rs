use lockutils::synchronized;

#[synchronized("inventory")]
pub const fn capacity() -> u32 {
    42
}

fn main() {
    let _ = capacity();
}
