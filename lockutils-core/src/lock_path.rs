//! Where lock files live: choosing the lock directory and making sure it exists.
//!
//! Order of precedence: an explicit `lock_path` option, then the process-wide
//! default from [`set_defaults`], then `LOCKUTILS_LOCK_PATH`, then oslo's
//! `OSLO_LOCK_PATH`, then a per-user directory that needs no configuration.

use std::borrow::Cow;
use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use crate::diagnose;
use crate::error::{Error, Result};

/// Environment variable naming the lock directory (read at each acquisition).
pub const LOCK_PATH_ENV: &str = "LOCKUTILS_LOCK_PATH";
/// oslo.concurrency's variable, honoured so both libraries share a directory.
pub const OSLO_LOCK_PATH_ENV: &str = "OSLO_LOCK_PATH";

static DEFAULT_LOCK_PATH: RwLock<Option<PathBuf>> = RwLock::new(None);

/// Sets the process-wide lock directory, used when a lock gives no `lock_path`.
/// It wins over the environment variables, like oslo's `set_defaults`.
///
/// ```
/// lockutils_core::set_defaults(std::env::temp_dir().join("doc-set-defaults"));
/// assert_eq!(
///     lockutils_core::lock_path(None),
///     std::env::temp_dir().join("doc-set-defaults")
/// );
/// lockutils_core::clear_defaults();
/// ```
pub fn set_defaults(lock_path: impl Into<PathBuf>) {
    *DEFAULT_LOCK_PATH.write().unwrap_or_else(|e| e.into_inner()) = Some(lock_path.into());
}

/// Forgets the directory given to [`set_defaults`].
///
/// ```
/// lockutils_core::clear_defaults();
/// ```
pub fn clear_defaults() {
    *DEFAULT_LOCK_PATH.write().unwrap_or_else(|e| e.into_inner()) = None;
}

/// The lock directory a lock would use, given its explicit `lock_path`.
///
/// ```
/// use std::path::Path;
/// assert_eq!(lockutils_core::lock_path(Some(Path::new("/srv/locks"))), Path::new("/srv/locks"));
/// ```
pub fn lock_path(explicit: Option<&Path>) -> PathBuf {
    resolve(explicit).dir.into_owned()
}

/// A resolved lock directory, and whether it is the per-user default (which
/// is checked for ownership before first use).
pub(crate) struct Resolved<'a> {
    pub(crate) dir: Cow<'a, Path>,
    pub(crate) user_default: bool,
}

pub(crate) fn resolve(explicit: Option<&Path>) -> Resolved<'_> {
    let found = |dir| Resolved {
        dir,
        user_default: false,
    };
    if let Some(p) = explicit {
        return found(Cow::Borrowed(p));
    }
    if let Some(p) = &*DEFAULT_LOCK_PATH.read().unwrap_or_else(|e| e.into_inner()) {
        return found(Cow::Owned(p.clone()));
    }
    for var in [LOCK_PATH_ENV, OSLO_LOCK_PATH_ENV] {
        if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            return found(Cow::Owned(PathBuf::from(v)));
        }
    }
    Resolved {
        dir: Cow::Owned(user_default_dir()),
        user_default: true,
    }
}

/// The per-user default: `$XDG_RUNTIME_DIR/lockutils` (private to the user by
/// construction), or `{temp_dir}/lockutils-{uid}`.
pub fn user_default_dir() -> PathBuf {
    if let Some(run) = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        let run = PathBuf::from(run);
        if run.is_dir() {
            return run.join("lockutils");
        }
    }
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    std::env::temp_dir().join(format!("lockutils-{uid}"))
}

/// Makes sure `dir` is a usable directory, creating it (with parents) if it is
/// missing. The per-user default is created 0700 and must be owned by us.
pub(crate) fn ensure_dir(name: &str, dir: &Path) -> Result<()> {
    let err = |reason: String, source: Option<io::Error>| Error::LockPath {
        name: name.to_owned(),
        path: dir.to_owned(),
        reason,
        source,
    };
    let is_user_default = dir == user_default_dir();
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(err("it exists and is not a directory".into(), None)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Creating `a/stray/../locks` would create `a/stray` too: a
            // directory that is neither the lock directory nor its parent.
            if dir
                .components()
                .any(|c| c == std::path::Component::ParentDir)
            {
                return Err(err(
                    "it is missing, and its path has `..` in it: lockutils creates only the \
                     lock directory and its missing parents; give the path without `..`"
                        .into(),
                    None,
                ));
            }
            // Creating succeeds too when another process created the
            // directory meanwhile (several starting at once).
            let mode = if is_user_default { 0o700 } else { 0o755 };
            if let Err(e) = DirBuilder::new().recursive(true).mode(mode).create(dir) {
                if fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink()) {
                    return Err(err(
                        "it is a symbolic link to a missing target; point it at a directory or remove it"
                            .into(),
                        None,
                    ));
                }
                let why = diagnose::dir_failure(dir, &e).unwrap_or_else(|| e.to_string());
                return Err(err(
                    format!("it is missing and cannot be created ({why})"),
                    Some(e),
                ));
            }
            tracing::info!(target: "lockutils", path = %dir.display(), "created lock path");
        }
        Err(e) => {
            let why = diagnose::dir_failure(dir, &e).unwrap_or_else(|| e.to_string());
            return Err(err(format!("it cannot be examined ({why})"), Some(e)));
        }
    }
    if is_user_default {
        verify_private(dir).map_err(|reason| err(reason, None))?;
    }
    Ok(())
}

/// Checks that the per-user default directory is ours and not writable by
/// others, so no other user can plant or replace files in it; creates it if
/// missing. Called before every lock file is opened there (one `lstat`; a
/// kept file is not opened again): the directory a temp cleaner removed and
/// another user created again is refused, not trusted for having been
/// checked once.
pub(crate) fn verify_user_default(name: &str, dir: &Path) -> Result<()> {
    if verify_private(dir).is_ok() {
        return Ok(());
    }
    // Missing (created now, then checked), or refused with the reason.
    ensure_dir(name, dir)
}

fn verify_private(dir: &Path) -> std::result::Result<(), String> {
    let m = fs::symlink_metadata(dir).map_err(|e| format!("it cannot be examined ({e})"))?;
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    if m.uid() != uid {
        return Err(format!(
            "the per-user lock directory is owned by uid {}, not by this user (uid {uid})",
            m.uid()
        ));
    }
    if m.permissions().mode() & 0o022 != 0 {
        return Err("the per-user lock directory is writable by other users".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_path_wins() {
        assert_eq!(resolve(Some(Path::new("/x/y"))).dir, Path::new("/x/y"));
    }

    #[test]
    fn a_missing_directory_with_dot_dot_is_not_created() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("stray/../locks");
        let err = ensure_dir("n", &dir).unwrap_err().to_string();
        assert!(err.contains("`..`"), "{err}");
        assert!(!tmp.path().join("stray").exists() && !tmp.path().join("locks").exists());
        std::fs::create_dir(tmp.path().join("stray")).unwrap();
        std::fs::create_dir(tmp.path().join("locks")).unwrap();
        ensure_dir("n", &dir).unwrap(); // an existing one is used as given
    }

    #[test]
    fn missing_directory_is_created_with_parents() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/c");
        ensure_dir("n", &dir).unwrap();
        assert!(dir.is_dir());
    }

    #[test]
    fn a_file_is_not_a_lock_path() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        fs::write(&file, b"").unwrap();
        let err = ensure_dir("n", &file).unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
    }

    #[test]
    fn a_dangling_symlink_is_named_as_such() {
        let tmp = tempfile::tempdir().unwrap();
        let link = tmp.path().join("l");
        std::os::unix::fs::symlink(tmp.path().join("missing"), &link).unwrap();
        let err = ensure_dir("n", &link).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(
            !tmp.path().join("missing").exists(),
            "must not create the target"
        );
    }

    #[test]
    fn uncreatable_directory_names_lock_dir_and_reason() {
        // A path below a regular file can never be created, whatever the user.
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        fs::write(&file, b"").unwrap();
        let dir = file.join("sub");
        let err = ensure_dir("availability_zone", &dir).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("availability_zone"), "{msg}");
        assert!(msg.contains(&*dir.to_string_lossy()), "{msg}");
        assert!(
            msg.contains("cannot be created") || msg.contains("cannot be examined"),
            "{msg}"
        );
    }
}
