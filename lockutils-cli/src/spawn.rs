//! Starting CMD without copying this process (Linux).
//!
//! `fork` copies the page tables of a multi-megabyte process and leaves
//! every page it touches afterwards to a copy-on-write fault, only for the
//! copy to be thrown away by `exec`. `posix_spawn` avoids that, but cannot
//! run `prctl(PR_SET_PDEATHSIG)` in the child, which `hold` needs so that
//! CMD's process never outlives the lock (the processes CMD starts do not
//! inherit the setting). So this module does what glibc's
//! `posix_spawn` does, plus that one call: `clone(CLONE_VM | CLONE_VFORK)`
//! runs a small function on a stack of its own, in this process's memory,
//! while the calling thread is suspended until the child has called
//! `execve` (or exited).
//!
//! What the child does between `clone` and `execve` is limited to system
//! calls on memory prepared here beforehand: no allocation, no locks, no
//! panics. Every signal is blocked across the `clone`, so no handler of this
//! process can run in the child on the shared memory; the child resets the
//! handled signals to their default before restoring the mask CMD gets.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;

/// What CMD is started with, besides this process's environment and open
/// descriptors that are not close-on-exec.
pub(crate) struct Start<'a> {
    /// Program (searched in `PATH` unless it has a `/`) and arguments.
    pub(crate) argv: &'a [OsString],
    /// Variables set for CMD (replacing any of the same name).
    pub(crate) env: &'a [(&'a OsStr, &'a OsStr)],
    /// CMD's signal mask.
    pub(crate) mask: libc::sigset_t,
    /// Kill CMD (`SIGKILL`) when this process dies, by `PR_SET_PDEATHSIG`.
    pub(crate) die_with_parent: bool,
}

/// Starts CMD and returns its pid; the child is this process's to reap.
/// An error is the reason CMD could not be executed (`NotFound` when no
/// file of that name was found), no child remaining.
pub(crate) fn spawn(start: &Start<'_>) -> io::Result<libc::pid_t> {
    let prepared = Prepared::new(start)?;
    prepared.run(start)
}

/// A C string of `s`, or `InvalidInput` if it contains a NUL byte.
fn c_string(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} contains a NUL byte", s.to_string_lossy()),
        )
    })
}

/// A NULL-terminated array of pointers into `strings`, which must outlive it.
fn pointers(strings: &[CString]) -> Vec<*const libc::c_char> {
    let mut ptrs: Vec<*const libc::c_char> = strings.iter().map(|s| s.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    ptrs
}

/// Everything the child reads, made before the `clone`.
struct Prepared {
    args: Vec<CString>,
    vars: Vec<CString>,
    /// The files to try to execute, in `PATH` order.
    candidates: Vec<CString>,
}

impl Prepared {
    fn new(start: &Start<'_>) -> io::Result<Self> {
        let args: Vec<CString> = start
            .argv
            .iter()
            .map(|a| c_string(a))
            .collect::<io::Result<_>>()?;
        let Some(program) = args.first() else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "no command"));
        };
        let mut vars = Vec::new();
        let mut path = None;
        for (key, value) in std::env::vars_os() {
            if key == "PATH" {
                path = Some(value.clone());
            }
            if !start.env.iter().any(|(k, _)| *k == key) {
                vars.push(assignment(&key, &value)?);
            }
        }
        for (key, value) in start.env {
            if *key == "PATH" {
                path = Some(value.to_os_string());
            }
            vars.push(assignment(key, value)?);
        }
        let candidates = candidates(program, path.as_deref())?;
        Ok(Prepared {
            args,
            vars,
            candidates,
        })
    }

    fn run(&self, start: &Start<'_>) -> io::Result<libc::pid_t> {
        let argv = pointers(&self.args);
        let envp = pointers(&self.vars);
        let candidates = pointers(&self.candidates);
        // For a file without a `#!` line (ENOEXEC): `/bin/sh FILE ARGS…`, as
        // execvp(3) does; the child fills in FILE.
        let mut shell_argv = Vec::with_capacity(argv.len() + 1);
        shell_argv.push(c"/bin/sh".as_ptr());
        shell_argv.push(std::ptr::null());
        shell_argv.extend_from_slice(&argv[1..]);

        let mut context = Context {
            candidates: candidates.as_ptr(),
            argv: argv.as_ptr(),
            envp: envp.as_ptr(),
            shell_argv: shell_argv.as_mut_ptr(),
            mask: start.mask,
            signals_end: libc::SIGRTMAX() + 1,
            // SAFETY: getpid has no arguments and cannot fail.
            parent: if start.die_with_parent {
                unsafe { libc::getpid() }
            } else {
                0
            },
            error: 0,
        };
        // The child's stack: it calls a handful of libc functions, each with
        // a small frame. 64 KiB, 16-byte aligned at the top, left
        // uninitialised (the child writes before it reads).
        let mut stack: Vec<u128> = Vec::with_capacity(CHILD_STACK / 16);
        // SAFETY: one past the end of the allocation, which is in bounds.
        let top = unsafe { stack.as_mut_ptr().add(stack.capacity()) }.cast::<libc::c_void>();

        // SAFETY: `full` and `old` are signal sets for the calls to fill in.
        // `clone` runs `child` on `stack`, in this memory, with a pointer
        // to `context`; with CLONE_VFORK this thread resumes only after the
        // child has exec'd or exited, so `context`, the pointer arrays, the
        // strings and the stack it reads all outlive its use of them. All
        // signals are blocked across the clone (see the module docs) and
        // the old mask is restored at once.
        let pid = unsafe {
            let mut full: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut full);
            libc::pthread_sigmask(libc::SIG_SETMASK, &full, &mut old);
            let pid = libc::clone(
                child,
                top,
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                std::ptr::addr_of_mut!(context).cast(),
            );
            let clone_error = io::Error::last_os_error();
            libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
            if pid < 0 {
                return Err(clone_error);
            }
            pid
        };
        drop(stack);
        // Written by the child, in this memory, during the clone.
        // SAFETY: `context` is a live local; a volatile read of an int.
        let error = unsafe { std::ptr::read_volatile(std::ptr::addr_of!(context.error)) };
        if error != 0 {
            // The child exited without exec: reap it.
            let mut status = 0;
            // SAFETY: `status` is a valid int; `pid` is our unreaped child.
            while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
                && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
            {}
            return Err(io::Error::from_raw_os_error(error));
        }
        Ok(pid)
    }
}

/// `KEY=VALUE` as a C string.
fn assignment(key: &OsStr, value: &OsStr) -> io::Result<CString> {
    let mut kv = OsString::with_capacity(key.len() + value.len() + 1);
    kv.push(key);
    kv.push("=");
    kv.push(value);
    c_string(&kv)
}

/// The files `execvp` would try for `program`: itself if it has a `/`,
/// else `DIR/program` for each `DIR` of `path` (an empty entry is the
/// current directory), or of `/bin:/usr/bin` without a `PATH`.
fn candidates(program: &CString, path: Option<&OsStr>) -> io::Result<Vec<CString>> {
    let name = program.as_bytes();
    if name.is_empty() {
        return Err(io::Error::from_raw_os_error(libc::ENOENT));
    }
    if name.contains(&b'/') {
        return Ok(vec![program.clone()]);
    }
    let path = path.map_or(&b"/bin:/usr/bin"[..], OsStr::as_bytes);
    path.split(|b| *b == b':')
        .map(|dir| {
            let mut file = Vec::with_capacity(dir.len() + name.len() + 1);
            if dir.is_empty() {
                file.extend_from_slice(b"./");
            } else {
                file.extend_from_slice(dir);
                file.push(b'/');
            }
            file.extend_from_slice(name);
            c_string(OsStr::from_bytes(&file))
        })
        .collect()
}

/// What the child reads (and its one write, `error`).
#[repr(C)]
struct Context {
    candidates: *const *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    /// `[/bin/sh, FILE, argv[1..], NULL]`, FILE set by the child.
    shell_argv: *mut *const libc::c_char,
    mask: libc::sigset_t,
    /// One past the highest signal number.
    signals_end: libc::c_int,
    /// This process's pid, for `PR_SET_PDEATHSIG`; 0 for none.
    parent: libc::pid_t,
    /// The errno of the last failed `execve`, for the parent.
    error: libc::c_int,
}

/// The size of the child's stack.
const CHILD_STACK: usize = 64 * 1024;

/// The child, between `clone` and `execve`: only system calls.
extern "C" fn child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the parent's `Context`, alive and not otherwise
    // accessed while the parent is suspended (CLONE_VFORK). Every pointer in
    // it points into NULL-terminated arrays of C strings the parent keeps
    // alive until the child has exec'd or exited. The calls are
    // async-signal-safe system call wrappers on those and on local values.
    unsafe {
        let cx = &mut *arg.cast::<Context>();
        // The handlers are this process's code on this process's memory:
        // back to the default for each handled signal (ignored ones stay
        // ignored, as across exec), and SIGPIPE, which the Rust runtime
        // ignores, to its default as for any Rust-spawned program.
        for sig in 1..cx.signals_end {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 {
                continue;
            }
            if sig == libc::SIGPIPE || old.sa_sigaction != libc::SIG_IGN {
                if old.sa_sigaction == libc::SIG_DFL {
                    continue;
                }
                let mut default: libc::sigaction = std::mem::zeroed();
                default.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(sig, &default, std::ptr::null_mut());
            }
        }
        if cx.parent != 0 {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                cx.error = *libc::__errno_location();
                libc::_exit(127);
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() != cx.parent {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &cx.mask, std::ptr::null_mut());
        // execvp's search: go on past files that are missing or not
        // executable; report EACCES if one was seen, else the last error.
        let mut error = libc::ENOENT;
        let mut denied = false;
        let mut file = cx.candidates;
        while !(*file).is_null() {
            libc::execve(*file, cx.argv, cx.envp);
            let e = *libc::__errno_location();
            if e == libc::ENOEXEC {
                *cx.shell_argv.add(1) = *file;
                libc::execve(*cx.shell_argv, cx.shell_argv, cx.envp);
            }
            match e {
                libc::EACCES => denied = true,
                libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {}
                _ => {
                    error = e;
                    break;
                }
            }
            file = file.add(1);
        }
        cx.error = if denied && error == libc::ENOENT {
            libc::EACCES
        } else {
            error
        };
        libc::_exit(127)
    }
}
