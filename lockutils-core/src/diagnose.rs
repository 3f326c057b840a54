//! Why a lock file or lock directory could not be opened or created, said as
//! its actual cause with the fix for that cause.
//!
//! The OS says only `Permission denied` or `Too many levels of symbolic
//! links`; the same errno has several causes (another user's lock file, a
//! directory this user cannot write, one it cannot even reach). Called only
//! once an operation has failed, so its extra `lstat`s cost nothing on the
//! locking path.

use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The OS error wrapped with its diagnosed cause and fix; its `Display` says
/// both, its `source` is the OS error.
#[derive(Debug)]
struct Diagnosed {
    cause: String,
    os: io::Error,
}

impl fmt::Display for Diagnosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The OS error is the source, not repeated here.
        f.write_str(&self.cause)
    }
}

impl std::error::Error for Diagnosed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.os)
    }
}

/// `os` with a known cause and fix.
pub(crate) fn diagnosed(cause: impl Into<String>, os: io::Error) -> io::Error {
    io::Error::new(
        os.kind(),
        Diagnosed {
            cause: cause.into(),
            os,
        },
    )
}

/// The fix to print after an error that was not diagnosed, where its OS
/// error has one cause worth naming. Empty for a diagnosed error, which
/// carries its own, for an error of lockutils' own (its text is the cause),
/// and for any other OS error, whose text in the source says what it is:
/// no advice beats wrong advice.
pub(crate) fn generic_fix(source: &io::Error) -> &'static str {
    if source
        .get_ref()
        .is_some_and(|e| e.is::<Diagnosed>() || e.is::<crate::InUse>())
    {
        return "";
    }
    match source.raw_os_error() {
        Some(libc::EACCES | libc::EPERM) => {
            "; check that the lock directory is writable by this user"
        }
        Some(libc::EMFILE) => {
            "; this process has too many open files: raise its limit (ulimit -n) or close \
             descriptors"
        }
        Some(libc::ENFILE) => "; the system has too many open files: close some, or raise fs.file-max",
        Some(libc::ENOLCK) => {
            "; the system is out of lock records, or the lock directory's file system \
             does not support fcntl locks: choose another lock directory"
        }
        Some(libc::ENOSPC | libc::EDQUOT) => {
            "; the lock directory's file system is full or over quota: free space, or \
             choose another lock directory"
        }
        _ => "",
    }
}

/// Opening or creating the lock file `path` in `dir` failed with `os`: the
/// error with its cause and fix, or `os` unchanged if none is known.
pub(crate) fn open_failure(dir: &Path, path: &Path, os: io::Error) -> io::Error {
    let cause = match os.raw_os_error() {
        Some(libc::ELOOP) => Some(
            "the lock file's name is a symbolic link, which lockutils never follows; \
             remove the link (a lock file is a plain file)"
                .to_owned(),
        ),
        Some(libc::EISDIR) => Some(
            "a directory is in the lock file's place; remove or rename it, or give the \
             lock another name"
                .to_owned(),
        ),
        Some(libc::EACCES | libc::EPERM) => Some(permission(dir, path)),
        Some(libc::ENAMETOOLONG) => Some(too_long(path)),
        Some(libc::ENXIO) => Some(
            "a socket or device is in the lock file's place; remove it, or give the lock \
             another name"
                .to_owned(),
        ),
        Some(libc::EROFS) => Some(
            "the lock directory is on a read-only file system; choose one on a writable \
             file system with lock_path, lockutils::set_defaults or LOCKUTILS_LOCK_PATH"
                .to_owned(),
        ),
        _ => None,
    };
    match cause {
        Some(cause) => io::Error::new(os.kind(), Diagnosed { cause, os }),
        None => os,
    }
}

/// Why the lock directory `dir` could not be examined or created (`os`), for
/// `Error::LockPath`'s reason, or `None` if nothing better than the OS error
/// is known.
pub(crate) fn dir_failure(dir: &Path, os: &io::Error) -> Option<String> {
    let me = euid();
    match os.raw_os_error()? {
        libc::EACCES | libc::EPERM => match std::fs::symlink_metadata(dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Some(format!(
                "{os}: a directory above it does not let this user (uid {me}) create \
                 directories in it"
            )),
            Err(_) => Some(format!(
                "{os}: this user (uid {me}) cannot reach it, a directory above it does not \
                 let this user search it (no x permission)"
            )),
            Ok(_) => None,
        },
        libc::ENAMETOOLONG => Some(format!("{os}: {}", too_long(dir))),
        _ => None,
    }
}

fn permission(dir: &Path, path: &Path) -> String {
    let me = euid();
    match std::fs::symlink_metadata(path) {
        Ok(file) if file.uid() != me => format!(
            "the lock file belongs to uid {} and its mode {:o} does not let this user \
             (uid {me}) read and write it; run as its owner, have its owner remove it, or \
             share lock files through a group with .file_mode(0o660)",
            file.uid(),
            file.mode() & 0o7777
        ),
        Ok(file) => format!(
            "the lock file's mode {:o} does not let its owner (this user) read and write \
             it; chmod u+rw it or remove it",
            file.mode() & 0o7777
        ),
        Err(e) if e.kind() == io::ErrorKind::NotFound => match std::fs::metadata(dir) {
            Ok(d) => format!(
                "this user (uid {me}) may not create files in the lock directory (owned by \
                 uid {}, mode {:o}); make it writable for this user or choose another with \
                 lock_path, lockutils::set_defaults or LOCKUTILS_LOCK_PATH",
                d.uid(),
                d.mode() & 0o7777
            ),
            Err(_) => unreachable_dir(me),
        },
        Err(_) => unreachable_dir(me),
    }
}

fn unreachable_dir(me: u32) -> String {
    format!(
        "this user (uid {me}) cannot reach the lock directory: it, or a directory above \
         it, does not let this user search it (no x permission); choose a directory this \
         user can reach"
    )
}

fn too_long(path: &Path) -> String {
    let longest = path
        .components()
        .map(|c| c.as_os_str().as_bytes().len())
        .max()
        .unwrap_or(0);
    format!(
        "the path is too long for the system ({} bytes in all, {longest} in its longest \
         component; the usual limits are 4096 and 255): choose a shorter lock directory",
        path.as_os_str().as_bytes().len()
    )
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// At most this many characters of a name are quoted in an error message.
const NAME_EXCERPT_CHARS: usize = 64;

/// A bounded excerpt of a name for an error message: the name itself when
/// short, else its start and its length, so a huge name cannot flood a log.
pub(crate) fn name_excerpt(name: &str) -> String {
    match name.char_indices().nth(NAME_EXCERPT_CHARS) {
        None => format!("{name:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes)", &name[..cut], name.len()),
    }
}
