use lockutils::synchronized;
use lockutils::Error;

#[synchronized("a", timeout = "1e3")]
fn exponent() -> Result<(), Error> {
    Ok(())
}

#[synchronized("b", timeout = "2y")]
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
    let _ = (exponent(), unknown_unit(), zero(), not_a_string());
}
