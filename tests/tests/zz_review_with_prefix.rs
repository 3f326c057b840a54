//! Review reproducers for `#[synchronized_with_prefix]` (see each test).
//!
//! 1. The block is walked as tokens, and the first `{ .. }` group after an
//!    item's keywords is taken for that item's body. A braced const-generic
//!    argument (`Buf<{ 2 * 4 }>`) is such a group, so the real body of that
//!    `impl` is never entered and its `#[synchronized]` methods silently lose
//!    the block's prefix: they lock `x`, not `nova-x`, and no longer exclude
//!    the rest of the project.
//! 2. Attributes spelled through a re-export of the facade (the `crate =`
//! use case) are not recognized: `#[path::synchronized]` is left without the
//! prefix, and a nested `#[path::synchronized_with_prefix("glance")]` is not
//! seen as the block's own prefix, so `nova` silently replaces `glance`.

use lockutils::synchronized_with_prefix;

pub struct Buf<const N: usize>;

#[synchronized_with_prefix("nova")]
mod compute {
    use super::Buf;
    use lockutils::synchronized;

    /// Control: a plain impl gets the prefix.
    impl Buf<4> {
        #[synchronized("zz-brace-control")]
        pub fn plain(&self) -> Vec<String> {
            lockutils::held_locks().into_iter().map(|h| h.name).collect()
        }
    }

    /// The same, with the const argument in braces.
    impl Buf<{ 2 * 4 }> {
        #[synchronized("zz-brace-method")]
        pub fn braced(&self) -> Vec<String> {
            lockutils::held_locks().into_iter().map(|h| h.name).collect()
        }
    }
}

#[test]
fn plain_impl_gets_the_prefix() {
    assert_eq!(Buf::<4>.plain(), ["nova-zz-brace-control"]);
}

#[test]
fn braced_const_argument_impl_gets_the_prefix() {
    assert_eq!(Buf::<8>.braced(), ["nova-zz-brace-method"]);
}

/// The facade re-exported under another path, as docs/macros.md's
/// `crate = path` section shows (`my_framework::locks`).
pub mod my_framework {
    pub mod locks {
        pub use lockutils::*;
    }
}

#[synchronized_with_prefix("nova")]
mod reexported {
    pub struct S;

    impl S {
        /// The attribute through the re-export: left without the block's prefix.
        #[crate::my_framework::locks::synchronized("zz-reexport-fn", crate = crate::my_framework::locks)]
        pub fn f(&self) -> Vec<String> {
            lockutils::held_locks().into_iter().map(|h| h.name).collect()
        }
    }

    /// A nested block with its own prefix, given through the re-export: the
    /// outer block does not see it as "its own" prefix and prefixes the
    /// functions inside with `nova` first, so `glance` is silently ignored.
    #[crate::my_framework::locks::synchronized_with_prefix("glance")]
    pub mod images {
        use lockutils::synchronized;

        #[synchronized("zz-reexport-image")]
        pub fn cache() -> Vec<String> {
            lockutils::held_locks().into_iter().map(|h| h.name).collect()
        }
    }
}

#[test]
fn reexported_synchronized_gets_the_prefix() {
    assert_eq!(reexported::S.f(), ["nova-zz-reexport-fn"]);
}

#[test]
fn reexported_inner_synchronized_with_prefix_wins() {
    assert_eq!(reexported::images::cache(), ["glance-zz-reexport-image"]);
}
