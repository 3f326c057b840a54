//! An empty body, sync and async.
#![deny(warnings, unused_braces, unused_qualifications, clippy::all, clippy::pedantic)]

use lockutils::synchronized;

#[synchronized("shape-empty")]
fn e() {}

#[synchronized("shape-empty-async")]
async fn ae() {}

fn main() {
    e();
    drop(ae());
}
