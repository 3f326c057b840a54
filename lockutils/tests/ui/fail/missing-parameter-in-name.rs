use lockutils::synchronized;

#[synchronized("instance-{instance}")]
fn spawn(instance_id: &str, host: u32) {}

#[synchronized("cell-{cell}")]
fn sync_cells() {}

#[synchronized("slot-{}")]
fn claim(slot: u32) {}

fn main() {
    spawn("x", 1);
    sync_cells();
    claim(1);
}
