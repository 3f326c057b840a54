use lockutils::synchronized;

#[synchronized("inventory")]
pub struct Inventory {
    items: u32,
}

#[synchronized("nova")]
mod compute {}

fn main() {
    let _ = Inventory { items: 1 }.items;
}
