//! The descriptors of the lock files this process has open, so that a child
//! forked without `exec` lets go of its copies at once.
//!
//! A child forked without `exec` inherits every descriptor, and so shares
//! each open file (and the OFD lock on it) with its parent. A lock the parent
//! holds at the fork, or is granted later on a file it had open then, is
//! then the child's too: if the parent dies without releasing it, even by
//! SIGKILL, the lock lasts until the child exits (oslo.concurrency's
//! process-owned `lockf` locks are not inherited at all). So every lock
//! file lockutils opens is a [`LockFile`], whose descriptor is listed here
//! from its open to its close, and the fork hooks' child hook points the
//! child's copy of each listed descriptor at a dead pipe (`dup3`): the number
//! stays taken (a guard of the parent's in the child still closes it once),
//! and the open file is the parent's alone.
//!
//! Every descriptor a lock is ever taken on is listed: it is listed before
//! any lock is taken on it and unlisted only while it is closed, both under
//! the list's lock, which the fork hooks hold across the fork. A fork
//! between a file's `open` and its listing is seen (the fork epoch moves on
//! after the fork, before the hooks let go of the list) and the file is
//! closed and opened again; the child then keeps its copy of that first
//! open, on which no lock was ever taken.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::{Mutex, MutexGuard};

/// The listed descriptors (few: held, kept, and waited-on lock files).
static OPEN: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());

fn open_list() -> MutexGuard<'static, Vec<RawFd>> {
    OPEN.lock().unwrap_or_else(|e| e.into_inner())
}

/// A lock file lockutils opened, listed while it is open (see the module
/// docs). Derefs to the [`File`].
#[derive(Debug)]
pub(crate) struct LockFile {
    /// Always `Some` until dropped.
    file: Option<File>,
}

impl LockFile {
    /// Lists `file`, opened in fork epoch `epoch` (read before the `open`);
    /// gives it back if a fork may have copied it unlisted since.
    pub(crate) fn list(file: File, epoch: u64) -> Result<LockFile, File> {
        let mut open = open_list();
        // The epoch moves on after a fork, before the fork hooks release
        // this lock: a fork since the caller read `epoch` shows here.
        if crate::fd_cache::epoch() != epoch {
            return Err(file);
        }
        open.push(file.as_raw_fd());
        Ok(LockFile { file: Some(file) })
    }

    fn file(&self) -> &File {
        self.file.as_ref().expect("present until dropped")
    }
}

impl std::ops::Deref for LockFile {
    type Target = File;

    fn deref(&self) -> &File {
        self.file()
    }
}

impl AsFd for LockFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file().as_fd()
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        let Some(file) = self.file.take() else {
            return;
        };
        let fd = file.as_raw_fd();
        let mut open = open_list();
        if let Some(i) = open.iter().position(|&f| f == fd) {
            open.swap_remove(i);
        }
        // Closed under the lock: a fork sees it listed and open, or neither.
        drop(file);
        drop(open);
    }
}

/// The list's lock, held across a fork by the fork hooks.
pub(crate) fn hold_for_fork() -> Box<dyn std::any::Any> {
    Box::new(open_list())
}

/// In a forked child: points every listed descriptor at the read end of a
/// pipe whose write end is closed, and empties the list. Only system calls
/// that are safe after a fork. Best effort: without a pipe (no descriptor
/// left), the copies stay.
#[cfg(target_os = "linux")]
pub(crate) fn let_go_in_child() {
    let mut open = open_list();
    let mut pipe = [0; 2];
    // SAFETY: `pipe` is a writable array of two descriptors.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return;
    }
    for &fd in open.iter() {
        // SAFETY: `fd` is a descriptor this process has open (listed), and
        // replacing it keeps its number taken; the pipe end is open.
        unsafe { libc::dup3(pipe[0], fd, libc::O_CLOEXEC) };
    }
    open.clear();
    // SAFETY: both ends were opened above and are not used again.
    unsafe {
        libc::close(pipe[0]);
        libc::close(pipe[1]);
    }
}

/// Elsewhere a lock belongs to the process, which a child is not: nothing
/// to let go of.
#[cfg(not(target_os = "linux"))]
pub(crate) fn let_go_in_child() {}
