use lockutils::synchronized;

#[synchronized("inventory", distributed = port)]
fn reserve(port: u16) {}

#[synchronized("inventory", distributed = 2181)]
fn release() {}

fn main() {
    reserve(2181);
    release();
}
