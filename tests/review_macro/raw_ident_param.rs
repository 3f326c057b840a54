//! Review: a parameter with a raw identifier cannot be interpolated: the
//! macro lists it as `r#type` and accepts `{r#type}`, which `format!` then
//! refuses; `{type}` is refused by the macro.
use lockutils::synchronized;

#[synchronized("zz-raw-{r#type}")]
fn f(r#type: u32) -> u32 {
    r#type
}

#[synchronized("zz-raw-{type}")]
fn g(r#type: u32) -> u32 {
    r#type
}

fn main() {
    f(1);
    g(1);
}
