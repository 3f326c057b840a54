//! Every kind of function `#[synchronized]` goes on, each shown to exclude
//! concurrent callers with a critical-section counter: free functions,
//! methods with every receiver, trait implementations, generics with
//! where-clauses and lifetimes, `impl Trait` returns and `unsafe fn`.

mod common;

use std::sync::Arc;

use common::{on_threads, Section, HOLD};
use lockutils::synchronized;

const THREADS: usize = 4;
const ROUNDS: usize = 5;

/// Runs `f` `ROUNDS` times on each of `THREADS` threads and checks that the
/// section saw every visit, one at a time.
fn assert_excludes(section: &Section, f: impl Fn(usize) + Sync) {
    on_threads(THREADS, |i| (0..ROUNDS).for_each(|_| f(i)));
    assert_eq!(section.visits(), THREADS * ROUNDS);
    assert_eq!(section.max(), 1, "two callers were inside at once");
}

#[test]
fn the_counter_sees_overlap_without_a_lock() {
    static SECTION: Section = Section::new();
    on_threads(THREADS, |_| SECTION.visit(HOLD * 4));
    assert!(SECTION.max() > 1, "the check would prove nothing");
}

#[synchronized("forms-free")]
fn free(section: &Section) {
    section.visit(HOLD);
}

#[test]
fn free_function() {
    static SECTION: Section = Section::new();
    assert_excludes(&SECTION, |_| free(&SECTION));
}

#[synchronized("forms-returns")]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

#[test]
fn return_value_passes_through() {
    assert_eq!(add(40, 2), 42);
}

struct Account {
    section: Arc<Section>,
    balance: u64,
}

impl Account {
    #[synchronized("forms-account")]
    fn by_ref(&self) -> u64 {
        self.section.visit(HOLD);
        self.balance
    }

    #[synchronized("forms-account")]
    fn by_mut(&mut self, amount: u64) -> u64 {
        self.section.visit(HOLD);
        self.balance += amount;
        self.balance
    }

    #[synchronized("forms-account")]
    fn by_value(self) -> u64 {
        self.section.visit(HOLD);
        self.balance
    }

    #[synchronized("forms-account")]
    fn by_arc(self: Arc<Self>) -> u64 {
        self.section.visit(HOLD);
        self.balance
    }

    #[synchronized("forms-account")]
    fn associated(section: &Section) -> Self {
        section.visit(HOLD);
        Account {
            section: Arc::new(Section::new()),
            balance: 0,
        }
    }
}

/// All receivers share one lock name, so they exclude each other even on
/// different values.
#[test]
fn methods_with_every_receiver() {
    let section = Arc::new(Section::new());
    let shared = Arc::new(Account {
        section: section.clone(),
        balance: 10,
    });
    assert_excludes(&section, |i| {
        let mut own = Account {
            section: section.clone(),
            balance: 1,
        };
        let got = match i % 4 {
            0 => shared.by_ref(),
            1 => own.by_mut(1) - 1,
            2 => own.by_value(),
            _ => Arc::clone(&shared).by_arc(),
        };
        assert!(got == 1 || got == 10);
    });
    let fresh = Account::associated(&section);
    assert_eq!(fresh.balance, 0);
}

trait Store {
    fn put(&self, key: u32) -> u32;
    fn put_mut(&mut self, key: u32) -> u32;
}

struct Disk(Arc<Section>);

impl Store for Disk {
    #[synchronized("forms-trait")]
    fn put(&self, key: u32) -> u32 {
        self.0.visit(HOLD);
        key
    }

    #[synchronized("forms-trait")]
    fn put_mut(&mut self, key: u32) -> u32 {
        self.0.visit(HOLD);
        key + 1
    }
}

#[test]
fn trait_impl_methods() {
    let section = Arc::new(Section::new());
    let shared = Disk(section.clone());
    assert_excludes(&section, |i| {
        let key = u32::try_from(i).unwrap();
        if i % 2 == 0 {
            assert_eq!(shared.put(key), key);
        } else {
            assert_eq!(Disk(section.clone()).put_mut(key), key + 1);
        }
    });
}

#[synchronized("forms-generic")]
fn longest<'a, 'b: 'a, T>(a: &'a [T], b: &'b [T], section: &Section) -> &'a [T]
where
    T: Clone + Send + Sync,
{
    section.visit(HOLD);
    if a.len() >= b.len() {
        a
    } else {
        b
    }
}

struct Wrapper<T>(T);

impl<T: Clone> Wrapper<T> {
    #[synchronized("forms-generic")]
    fn get<U>(&self, extra: U, section: &Section) -> (T, U)
    where
        U: std::fmt::Debug,
    {
        section.visit(HOLD);
        (self.0.clone(), extra)
    }
}

#[test]
fn generics_with_where_clauses_and_lifetimes() {
    let section = Section::new();
    let (short, long) = (vec![1], vec![1, 2, 3]);
    let w = Wrapper("w".to_string());
    assert_excludes(&section, |i| {
        if i % 2 == 0 {
            assert_eq!(longest(&short, &long, &section), &long[..]);
        } else {
            assert_eq!(w.get(i, &section), ("w".to_string(), i));
        }
    });
}

/// The lock covers building the iterator, not iterating it.
#[synchronized("forms-impl-trait")]
fn evens(limit: u32, section: &Section) -> impl Iterator<Item = u32> {
    section.visit(HOLD);
    (0..limit).filter(|n| n % 2 == 0)
}

#[synchronized("forms-impl-trait")]
fn boxed<'a>(items: &'a [u32], section: &Section) -> Box<dyn Iterator<Item = &'a u32> + 'a> {
    section.visit(HOLD);
    Box::new(items.iter())
}

#[test]
fn impl_trait_returns() {
    let section = Section::new();
    let items = [1, 2];
    assert_excludes(&section, |i| {
        if i % 2 == 0 {
            assert_eq!(evens(5, &section).collect::<Vec<_>>(), [0, 2, 4]);
        } else {
            assert_eq!(boxed(&items, &section).count(), 2);
        }
    });
}

/// # Safety
/// `p` must be valid for reads.
#[synchronized("forms-unsafe")]
unsafe fn read_raw(p: *const u32, section: &Section) -> u32 {
    section.visit(HOLD);
    // SAFETY: the caller guarantees `p` is valid.
    unsafe { *p }
}

#[test]
fn unsafe_fn() {
    let section = Section::new();
    let value = 7u32;
    assert_excludes(&section, |_| {
        // SAFETY: `value` outlives the call.
        assert_eq!(unsafe { read_raw(&value, &section) }, 7);
    });
}

#[synchronized("forms-extern")]
extern "C" fn callback(x: i32) -> i32 {
    x * 2
}

#[test]
fn extern_c_fn() {
    assert_eq!(callback(21), 42);
}

/// Nested in a function body, with attributes and docs kept.
#[test]
fn nested_fn_keeps_attributes() {
    #[synchronized("forms-nested")]
    #[inline]
    #[must_use]
    /// Docs after the attribute stay too.
    fn double(x: u8) -> u8 {
        x * 2
    }
    assert_eq!(double(4), 8);
}

/// The caller's lock is visible while the body runs, and gone after.
#[test]
fn lock_is_held_only_during_the_body() {
    #[synchronized("forms-held")]
    fn names() -> Vec<String> {
        lockutils::held_locks()
            .into_iter()
            .map(|l| l.name)
            .collect()
    }
    assert_eq!(names(), ["forms-held"]);
    assert!(lockutils::held_locks().is_empty());
    drop(
        lockutils::LockOptions::new("forms-held")
            .try_lock()
            .unwrap(),
    );
}

mod renamed {
    pub extern crate lockutils as locks;
}

#[lockutils::synchronized("forms-crate", crate = renamed::locks)]
fn through_crate_path() -> u8 {
    1
}

#[test]
fn crate_path_option() {
    assert_eq!(through_crate_path(), 1);
}
