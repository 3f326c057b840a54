//! `blocking = false` and `timeout`: the acquisition error is returned
//! through the function's `Result` (converted with `From`), and the body does
//! not run.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::{Duration, Instant};

use lockutils::{synchronized, Error};

/// Holds `name` on another thread while `f` runs.
fn while_held_elsewhere<T>(name: &'static str, f: impl FnOnce() -> T) -> T {
    let (taken_tx, taken_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let guard = lockutils::lock(name).unwrap();
        taken_tx.send(()).unwrap();
        let _ = done_rx.recv();
        drop(guard);
    });
    taken_rx.recv().unwrap();
    let out = f();
    done_tx.send(()).unwrap();
    holder.join().unwrap();
    out
}

static RAN: AtomicBool = AtomicBool::new(false);

#[synchronized("nb-plain", blocking = false)]
fn try_work() -> Result<u32, Error> {
    RAN.store(true, SeqCst);
    Ok(1)
}

#[test]
fn blocking_false_returns_would_block_when_held() {
    let err = while_held_elsewhere("nb-plain", try_work).unwrap_err();
    assert!(
        matches!(&err, Error::WouldBlock { name } if name == "nb-plain"),
        "{err}"
    );
    assert!(!RAN.load(SeqCst), "the body ran without the lock");
    assert_eq!(try_work().unwrap(), 1, "free again");
    assert!(RAN.load(SeqCst));
}

#[derive(Debug)]
enum AppError {
    Lock(Error),
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError::Lock(e)
    }
}

/// A crate's own `Result` alias: any path ending in `Result` will do.
type AppResult<T> = std::result::Result<T, AppError>;

mod app {
    pub type Result<T> = std::result::Result<T, super::AppError>;
}

#[synchronized("nb-alias", blocking = false)]
fn with_alias() -> AppResult<&'static str> {
    Ok("done")
}

#[synchronized("nb-alias", blocking = false)]
fn with_module_alias() -> app::Result<&'static str> {
    Ok("done")
}

#[test]
fn errors_convert_into_the_callers_error_type() {
    let err = while_held_elsewhere("nb-alias", with_alias).unwrap_err();
    assert!(matches!(err, AppError::Lock(Error::WouldBlock { .. })));
    let err = while_held_elsewhere("nb-alias", with_module_alias).unwrap_err();
    assert!(matches!(err, AppError::Lock(Error::WouldBlock { .. })));
    assert_eq!(with_alias().unwrap(), "done");
}

#[synchronized("nb-timeout", timeout = "100ms")]
fn patient() -> Result<(), Error> {
    Ok(())
}

#[test]
fn timeout_returns_timeout_after_waiting() {
    let started = Instant::now();
    let err = while_held_elsewhere("nb-timeout", patient).unwrap_err();
    let waited = started.elapsed();
    assert!(
        matches!(&err, Error::Timeout { name, timeout } if name == "nb-timeout" && *timeout == Duration::from_millis(100)),
        "{err}"
    );
    assert!(
        waited >= Duration::from_millis(100),
        "gave up after {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");
    patient().unwrap();
}

#[synchronized("nb-timeout-ok", timeout = "2s")]
fn patient_enough() -> Result<u8, Error> {
    Ok(3)
}

#[test]
fn timeout_succeeds_when_the_holder_releases_in_time() {
    let holder = std::thread::spawn(|| {
        let guard = lockutils::lock("nb-timeout-ok").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        drop(guard);
    });
    std::thread::sleep(Duration::from_millis(10));
    assert_eq!(patient_enough().unwrap(), 3);
    holder.join().unwrap();
}

#[synchronized("nb-async", blocking = false)]
async fn try_async() -> Result<(), Error> {
    Ok(())
}

#[synchronized("nb-async-timeout", timeout = "1.5ms")]
async fn patient_async() -> Result<(), Error> {
    Ok(())
}

#[test]
fn async_functions_return_the_error_too() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let err = while_held_elsewhere("nb-async", || rt.block_on(try_async())).unwrap_err();
    assert!(matches!(err, Error::WouldBlock { .. }));
    let err =
        while_held_elsewhere("nb-async-timeout", || rt.block_on(patient_async())).unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }));
    rt.block_on(try_async()).unwrap();
}

#[synchronized("nb-external", external, blocking = false, lock_path = env!("CARGO_TARGET_TMPDIR"))]
fn try_external() -> Result<(), Error> {
    Ok(())
}

#[test]
fn blocking_false_on_an_external_lock_held_by_another_open_file() {
    // Another open file description of the same lock file (as another process
    // would have): the file lock, not the in-process lock, is what is busy.
    static OTHER: lockutils::Registry = lockutils::Registry::new();
    let guard = lockutils::LockOptions::new("nb-external")
        .external(true)
        .lock_path(env!("CARGO_TARGET_TMPDIR").as_ref())
        .registry(&OTHER)
        .lock()
        .unwrap();
    let err = std::thread::spawn(try_external)
        .join()
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, Error::WouldBlock { .. }), "{err}");
    drop(guard);
    try_external().unwrap();
}
