use lockutils::synchronized;

#[synchronized("inventory", timeout = "250ms")]
fn items() -> impl Iterator<Item = u32> {
    0..3
}

#[synchronized("inventory", timeout = "250ms")]
async fn refresh() -> Option<u32> {
    None
}

fn main() {
    items();
    drop(refresh());
}
