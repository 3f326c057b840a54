//! Review: lock names and prefixes the macro can see are invalid at compile
//! time compile fine and fail at every call (a panic, by `expect_lock`).
//! docs/macros.md's table of compile-time errors covers "a bad flag value,
//! `mode`, `prefix`"; the runtime API refuses these names with
//! `Error::InvalidName`.

use lockutils::synchronized;

#[synchronized("")]
fn empty_name() {}

#[synchronized("..")]
fn dot_dot() {}

#[synchronized("a\0b")]
fn nul_in_name() {}

#[synchronized("x", prefix = "p\0")]
fn nul_in_prefix() {}

fn panics(f: fn()) -> String {
    let err = std::panic::catch_unwind(f).expect_err("compiled, so it should run");
    err.downcast_ref::<String>().cloned().unwrap_or_default()
}

#[test]
fn names_known_invalid_at_compile_time_compile_and_panic_at_run_time() {
    for (what, f) in [
        ("empty", empty_name as fn()),
        ("..", dot_dot),
        ("NUL in name", nul_in_name),
        ("NUL in prefix", nul_in_prefix),
    ] {
        let msg = panics(f);
        eprintln!("{what}: {msg}");
        assert!(msg.contains("could not take lock"), "{what}: {msg}");
    }
    panic!("all four compiled; each call panics (see the messages above)");
}
