//! The per-user default lock directory is checked before every lock file is
//! opened in it, not once per process: after a temp cleaner removed it and
//! someone created it again writable by others, it is refused.
//!
//! Its own binary: it sets the environment that picks the directory.

use std::os::unix::fs::PermissionsExt;

use lockutils_core::{Error, LockOptions, LOCK_PATH_ENV, OSLO_LOCK_PATH_ENV};

#[test]
fn a_per_user_directory_replaced_after_use_is_checked_again() {
    let run = tempfile::tempdir().unwrap();
    // SAFETY: no other thread of this test binary reads the environment.
    unsafe {
        std::env::remove_var(LOCK_PATH_ENV);
        std::env::remove_var(OSLO_LOCK_PATH_ENV);
        std::env::set_var("XDG_RUNTIME_DIR", run.path());
    }
    let dir = run.path().join("lockutils");
    assert_eq!(lockutils_core::lock_path(None), dir);
    drop(LockOptions::new("first").external(true).lock().unwrap());
    assert!(dir.join("first").exists());

    // A cleaner removes it; someone makes it again, world-writable.
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    for name in ["first", "second"] {
        let e = LockOptions::new(name).external(true).lock().unwrap_err();
        match &e {
            Error::LockPath { path, reason, .. } => {
                assert_eq!(path, &dir);
                assert!(reason.contains("writable by other users"), "{reason}");
            }
            other => panic!("{name}: expected LockPath, got {other:?}"),
        }
    }
    assert!(
        std::fs::read_dir(&dir).unwrap().next().is_none(),
        "a lock file was created in the refused directory"
    );

    // Put right by its owner, it is used again.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    drop(LockOptions::new("second").external(true).lock().unwrap());
}
