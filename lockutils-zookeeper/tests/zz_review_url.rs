//! A password must never be printed, even from a URL that fails to parse.
//! A password holding an unescaped `/` or `?` (a common mistake) ends the
//! authority early for both the parser and `redact`, which then finds no `@`
//! and shows the URL as given.

use lockutils_zookeeper::{CoordinationUrl, ZkBackend};

const SECRET: &str = "hunter2-TOPSECRET";

fn assert_hidden(url: &str, shown: &str) {
    assert!(
        !shown.contains("TOPSECRET") && !shown.contains("hunter2"),
        "password printed for {url:?}: {shown}"
    );
}

#[test]
fn password_with_slash_is_not_printed_by_a_parse_error() {
    let url = format!("zookeeper://svc:{}/x@127.0.0.1:2181/app", SECRET);
    let e = url.parse::<CoordinationUrl>().unwrap_err();
    assert_hidden(&url, &format!("{e} / {e:?}"));
    let e = ZkBackend::new(&url).unwrap_err();
    assert_hidden(&url, &format!("{e} / {e:?}"));
}

#[test]
fn password_with_question_mark_is_not_printed_by_a_parse_error() {
    let url = format!("zookeeper://svc:x?{}@127.0.0.1:2181/app", SECRET);
    let e = url.parse::<CoordinationUrl>().unwrap_err();
    assert_hidden(&url, &format!("{e} / {e:?}"));
}
