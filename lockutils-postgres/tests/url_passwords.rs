//! A password is never printed, even from a URL that fails to parse: one
//! holding an unescaped `/` or `?` (a common mistake) ends what looks like
//! the host early. Such URLs are refused with a hint to percent-encode, and
//! everything up to the last `@` is hidden in the message.

use lockutils_postgres::{PgBackend, PgUrl};

fn assert_hidden(url: &str, shown: &str) {
    assert!(
        !shown.contains("TOPSECRET") && !shown.contains("hunter2"),
        "password printed for {url:?}: {shown}"
    );
}

#[test]
fn password_with_slash_is_not_printed_by_a_parse_error() {
    let url = "postgresql://svc:hunter2/TOPSECRET@127.0.0.1:5432/app";
    let e = url.parse::<PgUrl>().unwrap_err();
    assert_hidden(url, &format!("{e} / {e:?}"));
    let e = PgBackend::new(url).unwrap_err();
    assert_hidden(url, &format!("{e} / {e:?}"));
}

#[test]
fn password_with_question_mark_is_not_printed_by_a_parse_error() {
    let url = "postgresql://svc:x?TOPSECRET@127.0.0.1:5432/app";
    let e = url.parse::<PgUrl>().unwrap_err();
    assert_hidden(url, &format!("{e} / {e:?}"));
}

/// A password that starts with digits and holds a `/` would parse as a valid
/// URL (host = the user name, port = the digits, database = the rest), whose
/// `Display` (in every error and log line) would print the password's tail.
#[test]
fn password_with_digits_and_slash_is_not_printed_by_display() {
    let url = "postgresql://svc:1234/TOPSECRET@127.0.0.1:5432/app";
    let shown = match url.parse::<PgUrl>() {
        Ok(u) => format!("{u} / {u:?}"),
        Err(e) => format!("{e} / {e:?}"),
    };
    assert_hidden(url, &shown);
}
