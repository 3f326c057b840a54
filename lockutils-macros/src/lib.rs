//! The attributes of lockutils: `#[synchronized]` and
//! `#[synchronized_with_prefix]`.
//!
//! Use them through the `lockutils` crate, which re-exports them and documents
//! every option; the code they generate calls `lockutils::__private`, so they
//! do not work without it (or a re-export of it named with `crate = path`).
//!
//! Layout: `args` parses the attribute into spanned raw options, `validate`
//! checks them against the function and builds the final `Options`, `expand`
//! turns `Options` and the function into code, and `prefix` applies
//! `#[synchronized_with_prefix]` to the functions of a module or impl block.
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![doc(test(attr(deny(warnings))))]

mod args;
mod expand;
mod prefix;
mod validate;

use proc_macro::TokenStream;

/// Holds a named lock for the whole body of a function; see the `lockutils`
/// crate for the options and examples.
#[proc_macro_attribute]
pub fn synchronized(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::synchronized(args.into(), item.into()).into()
}

/// Gives every `#[synchronized]` function of a `mod` or `impl` block a lock
/// prefix; see the `lockutils` crate.
#[proc_macro_attribute]
pub fn synchronized_with_prefix(args: TokenStream, item: TokenStream) -> TokenStream {
    prefix::synchronized_with_prefix(args.into(), item.into()).into()
}
