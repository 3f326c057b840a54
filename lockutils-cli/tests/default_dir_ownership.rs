//! The command's per-user default lock directory gets the library's check:
//! one that another user owns or may write to (planted before first use, as
//! in a shared `/tmp` without `XDG_RUNTIME_DIR`) is refused, so nobody else
//! can unlink or plant lock files under a holder.
//!
//! Its own binary: it changes the environment.
#![cfg(target_os = "linux")]

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_lockutils");

#[test]
fn a_default_directory_writable_by_others_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    std::env::set_var("TMPDIR", tmp.path());
    std::env::remove_var("XDG_RUNTIME_DIR");
    let dir = lockutils_core::user_default_dir();
    assert!(dir.starts_with(tmp.path()), "{}", dir.display());
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();

    for args in [
        &["hold", "job", "--", "true"][..],
        &["list"][..],
        &["show", "job"][..],
    ] {
        let out = Command::new(BIN)
            .args(args)
            .env("TMPDIR", tmp.path())
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("LOCKUTILS_LOCK_PATH")
            .env_remove("OSLO_LOCK_PATH")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{args:?} used it: {stderr}");
        assert!(
            stderr.contains("writable by other users"),
            "{args:?}: {stderr}"
        );
    }
    assert!(
        !dir.join("job").exists(),
        "a lock file was created in the refused directory"
    );
}
