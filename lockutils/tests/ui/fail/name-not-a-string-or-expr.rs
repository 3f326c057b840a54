use lockutils::synchronized;

#[synchronized(42)]
fn reserve() {}

#[synchronized(format!("instance-{}", id))]
fn spawn(id: u32) {}

#[synchronized(instance_id)]
fn reboot(instance_id: u32) {}

fn main() {
    reserve();
    spawn(1);
    reboot(1);
}
