//! A password must never be printed: docs/postgresql.md says URLs that fail
//! to parse are shown with `***` in its place. A password holding an
//! unescaped `/` or `?` ends the authority early for both the parser and
//! `redact`, which then finds no `@` and shows the URL as given.

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

/// Worse: a password that starts with digits and holds a `/` parses as a
/// valid URL (host = the user name, port = the digits,
/// database = the rest of the password and the real authority), and its
/// `Display` (used in every error and log line) prints the password's tail.
#[test]
fn password_with_digits_and_slash_is_not_printed_by_display() {
    let url = "postgresql://svc:1234/TOPSECRET@127.0.0.1:5432/app";
    let shown = match url.parse::<PgUrl>() {
        Ok(u) => format!("{u} / {u:?}"),
        Err(e) => format!("{e} / {e:?}"),
    };
    assert_hidden(url, &shown);
}
