//! Parameters named with raw identifiers (`r#type`) are interpolated as in
//! `format!`, without `r#`: `"{type}"`. (`"{r#type}"` is refused at compile
//! time with that fix, `tests/ui/fail/raw-identifier-in-name.rs`.)

use lockutils::{held_locks, synchronized};

#[synchronized("kind-{type}-{in}", fair)] // `fair`: listed by `held_locks`
fn with_keywords(r#type: u32, r#in: &str) -> Vec<String> {
    let _ = (r#type, r#in);
    held_locks()
        .into_iter()
        .map(|h| h.name.to_string())
        .collect()
}

#[test]
fn raw_identifier_parameters_name_the_lock() {
    assert_eq!(with_keywords(3, "x"), ["kind-3-x"]);
}
