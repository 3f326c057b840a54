//! Review: a `timeout` whose fraction overflows `parse_duration` (see
//! tests/tests/zz_review_duration_overflow.rs) panics inside the proc macro
//! instead of giving a spanned error at the literal. Built by run.sh.
use lockutils::synchronized;

#[synchronized("zz-timeout-overflow", timeout = "0.999999999999999999999999999999s")]
fn f() -> Result<(), lockutils::Error> {
    Ok(())
}

fn main() {
    f().unwrap();
}
