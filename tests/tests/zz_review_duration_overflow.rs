//! Review reproducer: `parse_duration` multiplies the fraction's digits by
//! the unit's nanoseconds in a `u128` that overflows from 25 fraction digits
//! for `d` (26 for `h`, 28 for `m`, 30 for `s`): a panic ("attempt to
//! multiply with overflow") where overflow checks are on, a silently wrong
//! duration where they are off (release builds of the command, of a service
//! parsing a coordination URL's `session_timeout`, and of the proc macro
//! when built without overflow checks). The same input in
//! `#[synchronized(timeout = "..")]` is a proc-macro panic, not a spanned
//! error (tests/review_macro/timeout_overflow.rs).

#[test]
fn a_long_fraction_is_an_error_or_a_value_not_a_panic() {
    let mut panicked = Vec::new();
    for text in [
        "0.9999999999999999999999999d",    // 25 digits
        "0.99999999999999999999999999h",   // 26
        "0.9999999999999999999999999999m", // 28
        "0.999999999999999999999999999999s", // 30
    ] {
        let got = std::panic::catch_unwind(|| lockutils::parse_duration(text));
        if got.is_err() {
            panicked.push(text);
        }
    }
    assert!(panicked.is_empty(), "parse_duration panicked on {panicked:?}");
}
