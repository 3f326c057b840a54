use lockutils::synchronized;

#[synchronized]
fn reserve() {}

#[synchronized(external, fair)]
fn release() {}

fn main() {
    reserve();
    release();
}
