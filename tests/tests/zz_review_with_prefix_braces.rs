//! Review reproducer: `#[synchronized_with_prefix]` walks its block as
//! tokens and takes the first `{ .. }` group after an item's keywords for
//! that item's body. A braced const-generic argument (`Buf<{ 2 * 2 }>`)
//! is such a group, so the real body of that `impl` is never entered and
//! its `#[synchronized]` methods silently lose the block's prefix: they lock
//! `x`, not `nova-x`, and no longer exclude the rest of the project.

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
