use lockutils::synchronized;

#[synchronized("kind-{r#type}")]
fn by_kind(r#type: u32) -> u32 {
    r#type
}

fn main() {
    by_kind(1);
}
