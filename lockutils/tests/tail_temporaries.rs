//! Temporaries of the body's tail expression (a `MutexGuard`, a `BufWriter`,
//! a transaction committed on drop) are dropped while the lock is still held,
//! for every kind of name and body: the whole body runs under the lock.
//!
//! Each body ends in `Probe { .. }.value()`: the `Probe` is a temporary of
//! the tail expression, and its destructor records whether the lock was free
//! at that point (`try_lock` succeeds only on a free lock).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

use async_trait::async_trait;
use lockutils::{synchronized, Error, LockOptions};

/// In its destructor, records in `free_at_drop` whether `name` was free.
struct Probe {
    name: &'static str,
    free_at_drop: &'static AtomicBool,
}

impl Probe {
    fn value(&self) -> u32 {
        1
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let free = LockOptions::new(self.name).try_lock().is_ok();
        self.free_at_drop.store(free, SeqCst);
    }
}

/// Calls `f`, which drops a probe recording into `free`, and says whether
/// the probe found the lock held.
fn held_at_tail(free: &'static AtomicBool, f: impl FnOnce() -> u32) -> bool {
    free.store(true, SeqCst);
    assert_eq!(f(), 1);
    !free.load(SeqCst)
}

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

static STATIC: AtomicBool = AtomicBool::new(true);

#[synchronized("tail-static")]
fn static_name() -> u32 {
    Probe {
        name: "tail-static",
        free_at_drop: &STATIC,
    }
    .value()
}

#[test]
fn static_name_holds_the_lock_while_tail_temporaries_drop() {
    assert!(held_at_tail(&STATIC, static_name));
}

static PLACEHOLDER: AtomicBool = AtomicBool::new(true);

#[synchronized("tail-{id}")]
fn placeholder(id: u32) -> u32 {
    assert_eq!(id, 7);
    Probe {
        name: "tail-7",
        free_at_drop: &PLACEHOLDER,
    }
    .value()
}

#[test]
fn placeholder_name_holds_the_lock_while_tail_temporaries_drop() {
    assert!(held_at_tail(&PLACEHOLDER, || placeholder(7)));
}

static EXPRESSION: AtomicBool = AtomicBool::new(true);

#[synchronized(name = format!("tail-expr-{id}"), blocking = false)]
fn expression(id: u32) -> Result<u32, Error> {
    assert_eq!(id, 3);
    Ok(Probe {
        name: "tail-expr-3",
        free_at_drop: &EXPRESSION,
    }
    .value())
}

#[test]
fn expression_name_holds_the_lock_while_tail_temporaries_drop() {
    assert!(held_at_tail(&EXPRESSION, || expression(3).unwrap()));
}

static ASYNC: AtomicBool = AtomicBool::new(true);

#[synchronized("tail-async")]
async fn asynchronous() -> u32 {
    tokio::task::yield_now().await;
    Probe {
        name: "tail-async",
        free_at_drop: &ASYNC,
    }
    .value()
}

#[test]
fn async_fn_holds_the_lock_while_tail_temporaries_drop() {
    assert!(held_at_tail(&ASYNC, || block_on(asynchronous())));
}

static METHOD: AtomicBool = AtomicBool::new(true);
static ASYNC_TRAIT: AtomicBool = AtomicBool::new(true);
static BOXED: AtomicBool = AtomicBool::new(true);

struct Service;

impl Service {
    #[synchronized("tail-method")]
    fn method(&self) -> u32 {
        Probe {
            name: "tail-method",
            free_at_drop: &METHOD,
        }
        .value()
    }

    /// The shape `#[async_trait]` leaves, written by hand.
    #[synchronized("tail-boxed")]
    fn boxed(&self) -> Pin<Box<dyn Future<Output = u32> + Send + '_>> {
        Box::pin(async move {
            Probe {
                name: "tail-boxed",
                free_at_drop: &BOXED,
            }
            .value()
        })
    }
}

#[async_trait]
trait Driver {
    async fn reboot(&self) -> u32;
}

#[async_trait]
impl Driver for Service {
    #[synchronized("tail-async-trait")]
    async fn reboot(&self) -> u32 {
        Probe {
            name: "tail-async-trait",
            free_at_drop: &ASYNC_TRAIT,
        }
        .value()
    }
}

#[test]
fn methods_hold_the_lock_while_tail_temporaries_drop() {
    assert!(held_at_tail(&METHOD, || Service.method()));
    assert!(held_at_tail(&BOXED, || block_on(Service.boxed())));
    assert!(held_at_tail(&ASYNC_TRAIT, || block_on(Service.reboot())));
}

/// The body is still in tail position for the return type: coercions,
/// `impl Trait`, `?` and an early `return` work as in the function alone.
mod shapes {
    use std::fmt::Display;

    use lockutils::synchronized;

    #[synchronized("tail-shape-dyn")]
    fn boxed_dyn(n: u32) -> Box<dyn Display> {
        Box::new(n)
    }

    #[synchronized("tail-shape-slice")]
    fn unsized_coercion() -> Box<[u32]> {
        Box::new([1, 2, 3])
    }

    #[synchronized("tail-shape-ref")]
    fn deref_coercion(s: &String) -> &str {
        s
    }

    #[synchronized("tail-shape-impl")]
    fn impl_trait(n: u32) -> impl Iterator<Item = u32> {
        (0..n).map(|i| i * 2)
    }

    #[synchronized("tail-shape-question")]
    fn question(s: &str) -> Result<u32, std::num::ParseIntError> {
        let n: u32 = s.parse()?;
        Ok(n + 1)
    }

    #[synchronized("tail-shape-return")]
    fn early_return(n: u32) -> u32 {
        if n > 10 {
            return 10;
        }
        n
    }

    #[synchronized("tail-shape-never")]
    fn never() -> ! {
        panic!("never returns")
    }

    #[synchronized("tail-shape-async-dyn")]
    async fn async_dyn(n: u32) -> Box<dyn Display + Send> {
        Box::new(n)
    }

    #[test]
    fn the_return_type_reaches_the_body() {
        assert_eq!(boxed_dyn(4).to_string(), "4");
        assert_eq!(&*unsized_coercion(), &[1, 2, 3]);
        assert_eq!(deref_coercion(&"s".to_owned()), "s");
        assert_eq!(impl_trait(3).collect::<Vec<_>>(), [0, 2, 4]);
        assert_eq!(question("1"), Ok(2));
        assert!(question("x").is_err());
        assert_eq!(early_return(20), 10);
        assert_eq!(early_return(2), 2);
        assert!(std::panic::catch_unwind(|| never()).is_err());
        assert_eq!(super::block_on(async_dyn(5)).to_string(), "5");
    }
}
