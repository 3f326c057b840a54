//! Every way out of a synchronized function releases the lock: falling off
//! the end, `return`, `?`, a panic, and dropping an unfinished async call.
//! After each, another thread (and this one) can take the lock at once.

use std::time::Duration;

use lockutils::{synchronized, LockOptions};

/// The lock is free: this thread takes it, and so does another thread, both
/// without waiting.
fn assert_free(name: &str) {
    assert!(lockutils::held_locks().is_empty(), "still held: {name}");
    drop(
        LockOptions::new(name)
            .try_lock()
            .expect("free on this thread"),
    );
    let name = name.to_owned();
    std::thread::spawn(move || drop(LockOptions::new(&name).try_lock().expect("free elsewhere")))
        .join()
        .unwrap();
}

#[synchronized("exits-return")]
fn early_return(stop: bool) -> u32 {
    if stop {
        return 1;
    }
    2
}

#[test]
fn return_releases() {
    assert_eq!(early_return(true), 1);
    assert_free("exits-return");
    assert_eq!(early_return(false), 2);
    assert_free("exits-return");
}

#[synchronized("exits-question-mark")]
fn parse(s: &str) -> Result<u32, std::num::ParseIntError> {
    let n: u32 = s.parse()?;
    Ok(n * 2)
}

#[test]
fn question_mark_releases() {
    assert!(parse("x").is_err());
    assert_free("exits-question-mark");
    assert_eq!(parse("21"), Ok(42));
    assert_free("exits-question-mark");
}

#[synchronized("exits-option")]
fn first_char(s: &str) -> Option<char> {
    let c = s.chars().next()?;
    Some(c)
}

#[test]
fn question_mark_on_option_releases() {
    assert_eq!(first_char(""), None);
    assert_free("exits-option");
}

#[synchronized("exits-panic")]
fn explode() {
    panic!("boom");
}

#[test]
fn panic_releases() {
    let caught = std::panic::catch_unwind(explode);
    assert!(caught.is_err());
    assert_free("exits-panic");
    // And a panic on another thread releases it for this one.
    assert!(std::thread::spawn(explode).join().is_err());
    assert_free("exits-panic");
}

#[synchronized("exits-loop")]
fn find(items: &[u32], wanted: u32) -> Option<usize> {
    for (i, &item) in items.iter().enumerate() {
        if item == wanted {
            return Some(i);
        }
    }
    None
}

#[test]
fn return_from_a_loop_releases() {
    assert_eq!(find(&[1, 2, 3], 2), Some(1));
    assert_free("exits-loop");
}

#[synchronized("exits-async")]
async fn slow() {
    tokio::time::sleep(Duration::from_secs(60)).await;
}

#[synchronized("exits-async")]
async fn fails() -> Result<(), String> {
    Err("no".to_string())?;
    Ok(())
}

#[tokio::test]
async fn dropped_future_and_async_question_mark_release() {
    // Cancelled while holding the lock inside the body.
    let timed_out = tokio::time::timeout(Duration::from_millis(20), slow()).await;
    assert!(timed_out.is_err());
    assert_free("exits-async");
    assert!(fails().await.is_err());
    assert_free("exits-async");
}
