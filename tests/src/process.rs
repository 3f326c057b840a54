//! Child processes for the tests: `lockutils-holder` invocations and Python
//! peers. Every wait is bounded, and a child still running when its
//! [`Spawned`] handle drops (say, because an assertion failed) is killed by its
//! own pid, so a failing test leaves no process holding a lock.

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A `lockutils-holder` command line under construction; see the binary's
/// docs for what each flag does.
#[derive(Debug)]
pub struct Holder {
    cmd: Command,
    what: String,
}

impl Holder {
    /// `exe --name name --lock-path lock_path`; `exe` is
    /// `env!("CARGO_BIN_EXE_lockutils-holder")`.
    pub fn new(exe: &str, name: &str, lock_path: &Path) -> Self {
        let mut cmd = Command::new(exe);
        cmd.arg("--name")
            .arg(name)
            .arg("--lock-path")
            .arg(lock_path);
        Holder {
            cmd,
            what: format!("lockutils-holder {name:?}"),
        }
    }

    fn flag(mut self, flag: &str, value: Option<&OsStr>) -> Self {
        self.cmd.arg(flag);
        if let Some(v) = value {
            self.cmd.arg(v);
        }
        self
    }

    /// `--prefix P`.
    pub fn prefix(self, prefix: &str) -> Self {
        self.flag("--prefix", Some(prefix.as_ref()))
    }

    /// `--shared`.
    pub fn shared(self) -> Self {
        self.flag("--shared", None)
    }

    /// `--hold-ms MS`.
    pub fn hold_ms(self, ms: u64) -> Self {
        self.flag("--hold-ms", Some(ms.to_string().as_ref()))
    }

    /// `--rounds K`.
    pub fn rounds(self, rounds: u32) -> Self {
        self.flag("--rounds", Some(rounds.to_string().as_ref()))
    }

    /// `--log FILE`.
    pub fn log(self, file: &Path) -> Self {
        self.flag("--log", Some(file.as_ref()))
    }

    /// `--timeout-ms MS`.
    pub fn timeout_ms(self, ms: u64) -> Self {
        self.flag("--timeout-ms", Some(ms.to_string().as_ref()))
    }

    /// `--no-wait`.
    pub fn no_wait(self) -> Self {
        self.flag("--no-wait", None)
    }

    /// `--remove-after`.
    pub fn remove_after(self) -> Self {
        self.flag("--remove-after", None)
    }

    /// `--ready FILE`.
    pub fn ready(self, file: &Path) -> Self {
        self.flag("--ready", Some(file.as_ref()))
    }

    /// Starts it with `--ready FILE` (an old `file` is removed first) and
    /// returns once it has created `file`: it holds the lock.
    ///
    /// # Panics
    /// As [`wait_for_file`].
    pub fn spawn_ready(self, file: &Path, timeout: Duration) -> Spawned {
        let _ = std::fs::remove_file(file);
        let mut child = self.ready(file).spawn();
        wait_for_file(file, &mut child, timeout);
        child
    }

    /// Starts it.
    ///
    /// # Panics
    /// If the binary cannot be started.
    pub fn spawn(self) -> Spawned {
        Spawned::start(self.cmd, self.what)
    }

    /// Runs it to completion (bounded by `timeout`) and returns how it ended.
    ///
    /// # Panics
    /// As [`Spawned::wait`].
    pub fn run(self, timeout: Duration) -> Exit {
        self.spawn().wait(timeout)
    }
}

/// How a child ended.
#[derive(Debug)]
pub struct Exit {
    /// Its exit status.
    pub status: ExitStatus,
    /// What it printed on stdout.
    pub stdout: String,
    /// What it printed on stderr.
    pub stderr: String,
}

impl Exit {
    /// Its exit code; `None` if a signal ended it.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Asserts the exit code, showing stderr otherwise.
    ///
    /// # Panics
    /// If the code differs.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code(),
            Some(code),
            "unexpected exit ({}); stderr:\n{}",
            self.status,
            self.stderr
        );
        self
    }

    /// The signal that ended the child, if one did.
    pub fn signal(&self) -> Option<i32> {
        self.status.signal()
    }
}

/// A running child with piped output, killed on drop if still running.
#[derive(Debug)]
pub struct Spawned {
    child: Child,
    what: String,
    reaped: bool,
}

impl Spawned {
    /// Starts `cmd` with stdout and stderr captured; `what` names it in
    /// panic messages.
    ///
    /// # Panics
    /// If it cannot be started.
    pub fn start(mut cmd: Command, what: String) -> Self {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        Spawned {
            child,
            what,
            reaped: false,
        }
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it has exited (without reaping it for [`wait`](Self::wait)).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits for the child to exit and collects its output.
    ///
    /// The output is read after exit, so children must print little (pipe
    /// buffers hold 64 KiB); every child here does.
    ///
    /// # Panics
    /// If it is still running after `timeout` (it is killed first).
    pub fn wait(mut self, timeout: Duration) -> Exit {
        let deadline = Instant::now() + timeout;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Ok(None) => panic!("{} still running after {timeout:?}", self.what),
                Err(e) => panic!("cannot wait for {}: {e}", self.what),
            }
        };
        self.reaped = true;
        let mut stdout = String::new();
        let mut stderr = String::new();
        if let Some(out) = self.child.stdout.as_mut() {
            let _ = out.read_to_string(&mut stdout);
        }
        if let Some(err) = self.child.stderr.as_mut() {
            let _ = err.read_to_string(&mut stderr);
        }
        Exit {
            status,
            stdout,
            stderr,
        }
    }

    /// Sends SIGKILL to this child (by its pid) and reaps it.
    ///
    /// # Panics
    /// If it had already exited: a test killing a child expects it running.
    pub fn kill(mut self) -> Exit {
        assert!(
            !self.has_exited(),
            "{} exited before it was to be killed",
            self.what
        );
        self.child
            .kill()
            .unwrap_or_else(|e| panic!("cannot kill {}: {e}", self.what));
        self.wait(Duration::from_secs(10))
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if !self.reaped {
            // Only this child, by its own handle; never a process we did not
            // start. Errors mean it is already gone.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits until the file at `path` exists, e.g. a holder's `--ready` file.
///
/// # Panics
/// If `child` exits first (showing its stderr) or `timeout` passes.
pub fn wait_for_file(path: &Path, child: &mut Spawned, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !path.exists() {
        if child.has_exited() {
            let what = child.what.clone();
            let mut stderr = String::new();
            if let Some(err) = child.child.stderr.as_mut() {
                let _ = err.read_to_string(&mut stderr);
            }
            panic!(
                "{what} exited before creating {}; stderr:\n{stderr}",
                path.display()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{} did not create {} within {timeout:?}",
            child.what,
            path.display()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}
