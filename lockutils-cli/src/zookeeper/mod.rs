//! The ZooKeeper backend: `--backend zookeeper://HOST:PORT/ROOT` for
//! `list`, `show`, `remove`, `clean` and `hold`, on the locks of
//! `lockutils-zookeeper` (and of kazoo, tooz and Curator clients of the same
//! lock nodes), as zktools' `zooky` shows them.
//!
//! The URL's password is never printed: messages show the URL as the
//! library displays it (`zookeeper://svc@zk1:2181/app`), or its error
//! messages do (`svc:***@`).

pub(crate) mod hold;
pub(crate) mod inspect;
pub(crate) mod remove;
pub(crate) mod report;

use std::borrow::Cow;

use lockutils_zookeeper::{CoordinationUrl, Coordinator, ZkLockOptions};

use crate::Failure;

/// A session with the ensemble of a `--backend` URL.
pub(crate) struct Zk {
    pub(crate) coordinator: Coordinator,
    /// The URL as shown: without the password.
    pub(crate) shown: String,
}

impl Zk {
    /// A coordinator for `url`, not connected yet.
    pub(crate) fn new(url: &CoordinationUrl) -> Zk {
        Zk {
            coordinator: Coordinator::from_url(url.clone()),
            shown: url.to_string(),
        }
    }

    /// Connects, within the URL's `connect_timeout`: an unreachable ensemble
    /// or refused credentials are an error (exit 1) naming the URL and the
    /// fix.
    pub(crate) fn connect(url: &CoordinationUrl) -> Result<Zk, Failure> {
        let zk = Zk::new(url);
        zk.establish()?;
        Ok(zk)
    }

    /// Opens the session now.
    pub(crate) fn establish(&self) -> Result<(), Failure> {
        self.coordinator.connect().map_err(|e| match &e {
            lockutils_core::Error::Backend {
                backend, reason, ..
            } => Failure::error(format!(
                "cannot connect to ZooKeeper at {backend} (--backend): {reason}"
            )),
            e => failure(e),
        })
    }

    /// The lock node of a lock identity.
    pub(crate) fn lock_node(&self, identity: &str) -> String {
        let root = self.coordinator.url().root();
        if root == "/" {
            format!("/{identity}")
        } else {
            format!("{root}/{identity}")
        }
    }
}

/// A library error as one clause, without the `lock ""` of errors that are
/// about no lock in particular.
pub(crate) fn describe(e: &lockutils_core::Error) -> String {
    match e {
        lockutils_core::Error::Backend {
            name,
            backend,
            reason,
            ..
        } if name.is_empty() => format!("{backend}: {reason}"),
        e => e.to_string(),
    }
}

/// A library error as a failure: exit 2 for a bad name or options, 1
/// otherwise.
pub(crate) fn failure(e: &lockutils_core::Error) -> Failure {
    match e {
        lockutils_core::Error::InvalidName { .. }
        | lockutils_core::Error::InvalidOptions { .. } => Failure::usage(describe(e)),
        _ => Failure::error(describe(e)),
    }
}

/// The identity (lock node name) of `name` with `prefix` in the URL's
/// layout, as the library names it (the file backend's name, except that the
/// kazoo layout nests names containing `/` as tooz does); a usage error if it
/// cannot be one.
pub(crate) fn identity<'a>(
    url: &CoordinationUrl,
    name: &'a str,
    prefix: Option<&'a str>,
) -> Result<Cow<'a, str>, Failure> {
    let mut opts = ZkLockOptions::new(name);
    if let Some(p) = prefix {
        opts = opts.prefix(p);
    }
    opts.identity_in(url.layout()).map_err(|e| failure(&e))
}

/// `--lock-path` names a directory of lock files: meaningless here.
pub(crate) fn refuse_lock_path(lock_path: Option<&std::path::Path>) -> Result<(), Failure> {
    match lock_path {
        Some(dir) => Err(Failure::usage(format!(
            "--lock-path {} is for lock files; with a ZooKeeper --backend, locks are nodes \
             under the URL's /ROOT: drop --lock-path, or change the root in the URL",
            dir.display()
        ))),
        None => Ok(()),
    }
}

/// This host's name, for the data of the candidate nodes the command
/// creates (as the library writes `host:pid`).
pub(crate) fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is writable for its full length, which is passed.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown-host".to_owned();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
