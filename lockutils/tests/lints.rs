//! The generated code is lint-clean: synchronized functions of every shape
//! under `deny(warnings)`, clippy's `all` and `pedantic` groups,
//! `unused_qualifications` and `dead_code` (checked by `cargo clippy
//! --all-targets`; rustc's lints by every build).
#![deny(
    warnings,
    clippy::all,
    clippy::pedantic,
    unused_qualifications,
    dead_code,
    unused_results,
    let_underscore_drop,
    unreachable_pub,
    missing_debug_implementations
)]

use std::path::Path;
use std::sync::Arc;

use lockutils::{synchronized, synchronized_with_prefix, Error, Registry};

static LOCKS: Registry = Registry::new();

#[synchronized("lints-static")]
fn fixed() -> u32 {
    1
}

#[synchronized("lints-{id}")]
fn placeholder(id: u32) -> u32 {
    id
}

#[synchronized(name = format!("lints-{}", id.len()), semaphores = LOCKS)]
fn expression(id: &str) -> usize {
    id.len()
}

#[synchronized("lints-path", external, lock_path = dir)]
fn dynamic_path(dir: &Path) -> bool {
    dir.is_dir()
}

#[synchronized("lints-nb", blocking = false, mode = read, fair)]
fn non_blocking() -> Result<u32, Error> {
    Ok(2)
}

#[synchronized("lints-timeout", timeout = "1s")]
async fn with_timeout() -> Result<u32, Error> {
    Ok(3)
}

// Body shapes, one line each as users write them (rustc's `unused_braces`
// only looks at one-line blocks; tests/ui/pass/body-*.rs has one file each).
#[rustfmt::skip]
mod shapes {
    use lockutils::synchronized;

    static SEVEN: u32 = 7;

    #[synchronized("lints-shape-expr")] pub(crate) fn expr() -> u32 { 1 }
    #[synchronized("lints-shape-empty")] pub(crate) fn empty() {}
    // SAFETY: a static's address is valid for reads.
    #[synchronized("lints-shape-unsafe")] pub(crate) fn with_unsafe() -> u32 { unsafe { core::ptr::addr_of!(SEVEN).read() } }
    #[allow(clippy::needless_return)] // the shape under test
    #[synchronized("lints-shape-return")] pub(crate) fn ret() -> u32 { return 2; }
    #[synchronized("lints-shape-async")] pub(crate) async fn expr_async() -> u32 { 3 }
    #[synchronized("lints-shape-async-empty")] pub(crate) async fn empty_async() {}
}

#[derive(Debug)]
struct Service {
    name: String,
}

#[synchronized_with_prefix("lints")]
impl Service {
    #[synchronized(name = &self.name)]
    fn by_ref(&self) -> usize {
        self.name.len()
    }

    #[synchronized("mut")]
    fn by_mut(&mut self) {
        self.name.push('!');
    }

    #[synchronized("arc")]
    fn by_arc(self: Arc<Self>) -> String {
        self.name.clone()
    }

    #[synchronized("{self:?}")]
    async fn by_value_async(self) -> String {
        self.name
    }
}

#[test]
fn lint_clean_expansions() {
    assert_eq!(fixed(), 1);
    assert_eq!(placeholder(5), 5);
    assert_eq!(expression("abc"), 3);
    let dir = tempfile::tempdir().unwrap();
    assert!(dynamic_path(dir.path()));
    assert_eq!(non_blocking().unwrap(), 2);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(with_timeout()).unwrap(), 3);
    let mut s = Service { name: "s".into() };
    assert_eq!(s.by_ref(), 1);
    s.by_mut();
    assert_eq!(Arc::new(Service { name: "a".into() }).by_arc(), "a");
    assert_eq!(rt.block_on(s.by_value_async()), "s!");
    shapes::empty();
    assert_eq!(shapes::expr() + shapes::with_unsafe() + shapes::ret(), 10);
    rt.block_on(shapes::empty_async());
    assert_eq!(rt.block_on(shapes::expr_async()), 3);
}
