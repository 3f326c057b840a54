//! `crate = path`: the facade under another name.
mod deps {
    pub extern crate lockutils as locks;
}

use deps::locks::synchronized;

#[synchronized("renamed", crate = deps::locks)]
fn renamed() -> u8 {
    1
}

#[synchronized("renamed-str", crate = "deps::locks")]
async fn renamed_async() {}

fn main() {
    assert_eq!(renamed(), 1);
    let _ = renamed_async();
}
