use lockutils::synchronized;
use lockutils::Error;

#[synchronized("a", timeout = "250")]
fn no_unit() -> Result<(), Error> {
    Ok(())
}

#[synchronized("b", timeout = "2h")]
fn unknown_unit() -> Result<(), Error> {
    Ok(())
}

#[synchronized("c", timeout = "0ms")]
fn zero() -> Result<(), Error> {
    Ok(())
}

#[synchronized("d", timeout = 250)]
fn not_a_string() -> Result<(), Error> {
    Ok(())
}

fn main() {
    let _ = (no_unit(), unknown_unit(), zero(), not_a_string());
}
