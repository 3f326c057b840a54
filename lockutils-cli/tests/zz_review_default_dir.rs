//! Review reproducer: the library refuses a per-user default lock
//! directory that other users can write to ("so no other user can plant
//! files in it"); `lockutils hold` resolves the same default itself and
//! passes it to `FileBackend` as an explicit directory, skipping the check.
#![cfg(target_os = "linux")]

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_lockutils");

#[test]
fn hold_uses_a_default_directory_the_library_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    // The only test of this binary: nothing else reads the environment.
    std::env::set_var("TMPDIR", tmp.path());
    std::env::remove_var("XDG_RUNTIME_DIR");
    std::env::remove_var("LOCKUTILS_LOCK_PATH");
    std::env::remove_var("OSLO_LOCK_PATH");
    let dir = lockutils_core::user_default_dir();
    assert!(dir.starts_with(tmp.path()), "{}", dir.display());
    // Planted before first use, writable by every user.
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();

    let lib = lockutils_core::LockOptions::new("job").external(true).lock();
    let lib_err = lib.as_ref().err().map(|e| e.to_string());
    assert!(
        lib_err.as_deref().is_some_and(|e| e.contains("writable by other users")),
        "the library accepts it too: {lib_err:?}"
    );
    drop(lib);

    let out = Command::new(BIN)
        .args(["hold", "job", "--", "true"])
        .env("TMPDIR", tmp.path())
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("LOCKUTILS_LOCK_PATH")
        .env_remove("OSLO_LOCK_PATH")
        .output()
        .unwrap();
    assert_ne!(
        out.status.code(),
        Some(0),
        "the library refuses {} ({}), `lockutils hold` used it",
        dir.display(),
        lib_err.unwrap_or_default()
    );
}
