//! `lockutils run CMD`: CMD with a private, temporary lock directory.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use lockutils_core::{LOCK_PATH_ENV, OSLO_LOCK_PATH_ENV};

use crate::child::{self, BeforeChild, Cmd, Spawned, Supervisor};
use crate::exit;
use crate::output::message;

/// Runs `command` (program and arguments; never empty, clap requires it)
/// with a fresh lock directory, and returns the exit code.
pub(crate) fn run(command: &[OsString]) -> i32 {
    let supervisor = match Supervisor::start(BeforeChild::Defer) {
        Ok(s) => s,
        Err(e) => {
            message!("cannot set up signal forwarding: {e}");
            return exit::FAILURE;
        }
    };
    let dir = match tempfile::Builder::new()
        .prefix("lockutils-run-")
        .permissions(fs::Permissions::from_mode(0o700))
        .tempdir()
    {
        Ok(d) => RunDir(d.keep()),
        Err(e) => {
            message!(
                "cannot create a temporary lock directory in {}: {e}; \
                 set TMPDIR to a writable directory",
                std::env::temp_dir().display()
            );
            return exit::FAILURE;
        }
    };
    let cmd = Cmd {
        argv: command,
        env: vec![
            (LOCK_PATH_ENV.as_ref(), dir.0.clone().into_os_string()),
            (OSLO_LOCK_PATH_ENV.as_ref(), dir.0.clone().into_os_string()),
        ],
        // The directory is private to this run: nothing to outlive.
        die_with_parent: false,
    };
    match supervisor.spawn(&cmd) {
        Ok(Spawned::Child(c)) => match supervisor.wait(c) {
            Ok(status) => child::exit_code(status),
            Err(e) => {
                message!("cannot wait for {}: {e}", command[0].to_string_lossy());
                exit::FAILURE
            }
        },
        Ok(Spawned::Interrupted(sig)) => 128 + sig,
        Err(e) => child::spawn_failure(&command[0], &e),
    }
    // `dir` is removed here, whatever happened (a panic included).
}

/// The run's lock directory, removed when dropped, so that no way out of
/// [`run`] (an early return, a panic) leaves it behind.
struct RunDir(PathBuf);

impl Drop for RunDir {
    fn drop(&mut self) {
        if let Err(e) = remove_tree(&self.0) {
            message!(
                "cannot remove the temporary lock directory {}: {e}; remove it by hand",
                self.0.display()
            );
        }
    }
}

/// Removes `dir` and everything in it; if that fails (say, CMD left a
/// directory without write permission), makes the directories in it
/// writable and tries once more. Symbolic links are removed, never followed.
fn remove_tree(dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(_) => {
            make_dirs_writable(dir);
            fs::remove_dir_all(dir)
        }
    }
}

fn make_dirs_writable(dir: &Path) {
    let Ok(meta) = fs::symlink_metadata(dir) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            make_dirs_writable(&entry.path());
        }
    }
}
