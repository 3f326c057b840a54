//! A crate that `forbid`s lints can use `#[synchronized]`: the expansion
//! carries no `#[allow(..)]` (which `forbid` would reject, E0453), and trips
//! none of these lints, for every construct it generates. rustc's lints are
//! checked by every build, clippy's by `cargo clippy --all-targets`.
//!
//! Clippy lints are forbidden one by one: forbidding a group is itself
//! warned about (`forbidden_lint_groups`); `lints.rs` denies the groups.
#![forbid(
    unused_qualifications,
    unused_results,
    clippy::needless_borrow,
    clippy::items_after_statements,
    clippy::used_underscore_binding,
    clippy::match_single_binding
)]

use std::future::Future;
use std::path::Path;
use std::pin::Pin;

use lockutils::backend::FileBackend;
use lockutils::{synchronized, Error, Registry};

static LOCKS: Registry = Registry::new();

#[synchronized("forbid-static", semaphores = LOCKS)]
fn fixed() -> u32 {
    1
}

#[synchronized("forbid-{id}")]
fn placeholder(id: u32) -> u32 {
    id
}

#[synchronized(name = id, semaphores = LOCKS)]
fn reference_name(id: &str) -> usize {
    id.len()
}

#[synchronized("forbid-path", external, lock_path = dir)]
fn dynamic_path(dir: &Path) -> bool {
    dir.is_dir()
}

#[synchronized("forbid-backend", backend = files)]
fn dynamic_backend(files: &FileBackend) -> u32 {
    let _ = files;
    4
}

#[synchronized("forbid-nb", blocking = false, semaphores = LOCKS)]
fn non_blocking() -> Result<u32, Error> {
    Ok(2)
}

#[synchronized("forbid-timeout", timeout = "1s")]
async fn with_timeout() -> Result<u32, Error> {
    Ok(3)
}

struct Libvirt;

impl Libvirt {
    /// The shape `#[async_trait]` leaves, written by hand: async-trait's own
    /// output allows `clippy::used_underscore_binding`, so a crate forbidding
    /// that lint cannot use `#[async_trait]` itself.
    #[synchronized("forbid-{id}-async")]
    fn reboot(&self, id: u32) -> Pin<Box<dyn Future<Output = u32> + Send + '_>> {
        Box::pin(async move {
            let _ = self;
            id
        })
    }
}

#[test]
fn a_crate_forbidding_lints_compiles() {
    assert_eq!(fixed(), 1);
    assert_eq!(placeholder(5), 5);
    assert_eq!(reference_name("abc"), 3);
    let dir = tempfile::tempdir().unwrap();
    assert!(dynamic_path(dir.path()));
    assert_eq!(dynamic_backend(&FileBackend::new(dir.path())), 4);
    assert_eq!(non_blocking().unwrap(), 2);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(with_timeout()).unwrap(), 3);
    assert_eq!(rt.block_on(Libvirt.reboot(6)), 6);
}
