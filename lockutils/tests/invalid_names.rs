//! Names that cannot name a lock: refused at compile time when fixed
//! (`tests/ui/fail/invalid-fixed-name.rs`); a name built at run time fails
//! at the call, and the panic shows it escaped, as `{:?}` does.

use lockutils::synchronized;

#[synchronized("{name}")]
fn named(name: &str) {}

fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
    let err = std::panic::catch_unwind(f).expect_err("an invalid name panics");
    err.downcast_ref::<String>().cloned().unwrap_or_default()
}

#[test]
fn the_panic_shows_the_name_escaped() {
    let msg = panic_message(|| named("a\0b\n"));
    assert!(msg.contains(r#"could not take lock "a\0b\n": "#), "{msg}");
    let msg = panic_message(|| named(""));
    assert!(msg.contains(r#"could not take lock "": "#), "{msg}");
}
