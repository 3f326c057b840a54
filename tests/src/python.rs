//! The Python peer for the interop tests: an interpreter that can import
//! oslo.concurrency and fasteners, named by `LOCKUTILS_TEST_PYTHON`.
//!
//! Interop tests are ignored in a plain `cargo test`; when they do run, a
//! missing peer is a failure, never a skip, so CI cannot pass without them.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::process::Spawned;

/// The environment variable naming the peer's interpreter.
pub const PYTHON_ENV: &str = "LOCKUTILS_TEST_PYTHON";

const HOW_TO: &str = "run `bash .ci/run`, or \
    `LOCKUTILS_TEST_PYTHON=$(scripts/python-peer.sh) cargo test -p lockutils-tests -- --ignored`";

fn find_peer() -> Result<PathBuf, String> {
    let python = std::env::var_os(PYTHON_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| format!("{PYTHON_ENV} is not set; {HOW_TO}"))?;
    let out = Command::new(&python)
        .args(["-c", "import oslo_concurrency.lockutils, fasteners"])
        .output()
        .map_err(|e| {
            format!(
                "cannot run {PYTHON_ENV}={}: {e}; {HOW_TO}",
                python.display()
            )
        })?;
    if !out.status.success() {
        return Err(format!(
            "{PYTHON_ENV}={} cannot import oslo_concurrency and fasteners ({}):\n{}\n{HOW_TO}",
            python.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(python)
}

/// The peer interpreter, checked once per test binary.
///
/// # Panics
/// If `LOCKUTILS_TEST_PYTHON` is unset or its interpreter cannot import
/// `oslo_concurrency.lockutils` and `fasteners`, saying how to set it up.
pub fn peer_python() -> PathBuf {
    static PEER: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PEER.get_or_init(find_peer) {
        Ok(python) => python.clone(),
        Err(why) => panic!("the Python peer is required: {why}"),
    }
}

/// Starts `python -c script args...` with the peer interpreter.
///
/// # Panics
/// As [`peer_python`], or if it cannot be started.
pub fn spawn_script<I, S>(script: &str, args: I) -> Spawned
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut cmd = Command::new(peer_python());
    cmd.arg("-c").arg(script).args(args);
    Spawned::start(cmd, "python peer".to_owned())
}
