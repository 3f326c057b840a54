//! Where lock files go when a lock names no directory: explicit `lock_path`,
//! then `set_defaults`, then `LOCKUTILS_LOCK_PATH`, then `OSLO_LOCK_PATH`,
//! then the per-user default directory.
//!
//! This changes process-wide state (environment variables and the default
//! set by `set_defaults`), so the whole file is one test: nothing else in
//! this test binary can observe the changes.

mod common;

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use lockutils_core::{
    clear_defaults, lock_path, set_defaults, user_default_dir, Error, LockGuard, LockOptions,
    Registry, LOCK_PATH_ENV, OSLO_LOCK_PATH_ENV,
};

/// Restores the environment variables it saved when dropped, also if an
/// assertion fails midway.
struct SavedEnv(Vec<(&'static str, Option<OsString>)>);

impl SavedEnv {
    fn save(vars: &[&'static str]) -> Self {
        SavedEnv(vars.iter().map(|v| (*v, std::env::var_os(v))).collect())
    }
}

impl Drop for SavedEnv {
    fn drop(&mut self) {
        for (var, value) in &self.0 {
            match value {
                Some(v) => std::env::set_var(var, v),
                None => std::env::remove_var(var),
            }
        }
        clear_defaults();
    }
}

/// Takes an external lock without a `lock_path` and returns its file.
fn locked_file(reg: &Registry, name: &str) -> PathBuf {
    let g = LockOptions::new(name)
        .registry(reg)
        .external(true)
        .lock()
        .unwrap();
    let p = LockGuard::path(&g).unwrap().to_owned();
    assert!(p.is_file());
    p
}

fn mode_of(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn lock_path_precedence() {
    let _saved = SavedEnv::save(&[
        LOCK_PATH_ENV,
        OSLO_LOCK_PATH_ENV,
        "XDG_RUNTIME_DIR",
        "TMPDIR",
    ]);
    let tmp = common::tempdir();
    let t = |s: &str| tmp.path().join(s);
    let reg = Registry::new();
    let name = "prec-x";

    // Nothing configured: the per-user default under $XDG_RUNTIME_DIR,
    // created 0700 on first use.
    std::env::remove_var(LOCK_PATH_ENV);
    std::env::remove_var(OSLO_LOCK_PATH_ENV);
    clear_defaults();
    std::fs::create_dir(t("run")).unwrap();
    std::env::set_var("XDG_RUNTIME_DIR", t("run"));
    assert_eq!(user_default_dir(), t("run/lockutils"));
    assert_eq!(lock_path(None), t("run/lockutils"));
    assert!(!t("run/lockutils").exists());
    assert_eq!(locked_file(&reg, name), t("run/lockutils").join(name));
    assert_eq!(mode_of(&t("run/lockutils")), 0o700);

    // Without XDG_RUNTIME_DIR: {temp_dir}/lockutils-{uid}, also 0700.
    std::env::remove_var("XDG_RUNTIME_DIR");
    std::env::set_var("TMPDIR", tmp.path());
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let fallback = t(&format!("lockutils-{uid}"));
    assert_eq!(user_default_dir(), fallback);
    assert_eq!(locked_file(&reg, name), fallback.join(name));
    assert_eq!(mode_of(&fallback), 0o700);

    // A per-user default that others can write to is refused.
    std::fs::create_dir(t("shared-run")).unwrap();
    std::fs::create_dir(t("shared-run/lockutils")).unwrap();
    std::fs::set_permissions(
        t("shared-run/lockutils"),
        std::fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    std::env::set_var("XDG_RUNTIME_DIR", t("shared-run"));
    let e = LockOptions::new(name)
        .registry(&reg)
        .external(true)
        .lock()
        .unwrap_err();
    assert!(
        matches!(&e, Error::LockPath { path, .. } if path == &t("shared-run/lockutils")),
        "{e:?}"
    );
    assert!(e.to_string().contains("writable by other users"), "{e}");
    assert!(!t("shared-run/lockutils").join(name).exists());
    std::env::set_var("XDG_RUNTIME_DIR", t("run"));

    // OSLO_LOCK_PATH beats the per-user default.
    std::env::set_var(OSLO_LOCK_PATH_ENV, t("oslo"));
    assert_eq!(lock_path(None), t("oslo"));
    assert_eq!(locked_file(&reg, name), t("oslo").join(name));

    // LOCKUTILS_LOCK_PATH beats OSLO_LOCK_PATH; an empty one is ignored.
    std::env::set_var(LOCK_PATH_ENV, "");
    assert_eq!(lock_path(None), t("oslo"));
    std::env::set_var(LOCK_PATH_ENV, t("lockutils-env"));
    assert_eq!(lock_path(None), t("lockutils-env"));
    assert_eq!(locked_file(&reg, name), t("lockutils-env").join(name));

    // set_defaults beats both variables.
    set_defaults(t("defaults"));
    assert_eq!(lock_path(None), t("defaults"));
    assert_eq!(locked_file(&reg, name), t("defaults").join(name));
    assert_eq!(
        LockOptions::new(name).prefix("p").file_path().unwrap(),
        t("defaults").join("p-prec-x")
    );

    // An explicit lock_path beats everything.
    let explicit = t("explicit");
    assert_eq!(lock_path(Some(&explicit)), explicit);
    let g = LockOptions::new(name)
        .registry(&reg)
        .external(true)
        .lock_path(&explicit)
        .lock()
        .unwrap();
    assert_eq!(LockGuard::path(&g), Some(explicit.join(name).as_path()));
    drop(g);

    // The free function uses the same resolution.
    let g = lockutils_core::external_lock("prec-fn").unwrap();
    assert_eq!(
        LockGuard::path(&g),
        Some(t("defaults").join("prec-fn").as_path())
    );
    drop(g);

    // Clearing the default falls back to the variables, in order.
    clear_defaults();
    assert_eq!(lock_path(None), t("lockutils-env"));
    std::env::remove_var(LOCK_PATH_ENV);
    assert_eq!(lock_path(None), t("oslo"));
    std::env::remove_var(OSLO_LOCK_PATH_ENV);
    assert_eq!(lock_path(None), t("run/lockutils"));

    // Removal resolves the directory the same way.
    std::env::set_var(OSLO_LOCK_PATH_ENV, t("oslo"));
    assert!(lockutils_core::remove_external_lock_file(name, None, None).unwrap());
    assert!(!t("oslo").join(name).exists());
    assert!(reg.is_empty());
}
