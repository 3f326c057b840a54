//! The attributes of lockutils: `#[synchronized]` and
//! `#[synchronized_with_prefix]`.
//!
//! Use them through the `lockutils` crate, which re-exports them and documents
//! every option; the code they generate calls `lockutils::__private`, so they
//! do not work without it (or a re-export of it named with `crate = path`).
//!
//! `#[synchronized]` is one chain, each step reading only what the one before
//! returned:
//!
//! 1. parse: `args` turns the attribute into spanned `RawArgs` (its
//!    option table is written once), `item` turns the function into an
//!    `Func` whose shape (sync, `async fn`, `#[async_trait]` future)
//!    is found there, once, and whose body stays as written;
//! 2. validate: `validate` checks the options against each other and the
//!    signature and returns the final `Options`;
//! 3. expand: `expand` turns `Options` and the `Func` into code.
//!
//! On an error at any step the function is emitted as written with the
//! error beside it, so its callers see that one error and no follow-on ones.
//! `stacked` nests several `#[synchronized]` on one function in the order
//! written, and `prefix` applies `#[synchronized_with_prefix]` to the
//! functions of a module or impl block.
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![doc(test(attr(deny(warnings))))]

mod args;
mod expand;
mod item;
mod prefix;
mod stacked;
mod validate;

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;

/// Holds a named lock for the whole body of a function; see the `lockutils`
/// crate for the options and examples.
#[proc_macro_attribute]
pub fn synchronized(args: TokenStream, item: TokenStream) -> TokenStream {
    synchronized2(args.into(), item.into()).into()
}

/// Gives every `#[synchronized]` function of a `mod` or `impl` block a lock
/// prefix; see the `lockutils` crate.
#[proc_macro_attribute]
pub fn synchronized_with_prefix(args: TokenStream, item: TokenStream) -> TokenStream {
    prefix::synchronized_with_prefix(args.into(), item.into()).into()
}

/// `#[synchronized(args)] item`: parse → validate → expand, or on any error
/// the item as written plus the error.
fn synchronized2(args: TokenStream2, item: TokenStream2) -> TokenStream2 {
    let func = match item::parse(item.clone()) {
        Ok(func) => func,
        Err(Some(e)) => return with_error(item, e),
        // Not valid Rust: emitted as is, for the compiler to say why; the
        // options' own syntax errors are still reported.
        Err(None) => {
            return match syn::parse2::<args::RawArgs>(args) {
                Ok(_) => item,
                Err(e) => with_error(item, e),
            }
        }
    };
    stacked::expand(args, func)
}

/// One `#[synchronized(args)]` on `func`: validate → expand, or on an error
/// the function as written plus the error.
fn expand_one(args: TokenStream2, func: item::Func) -> Result<TokenStream2, TokenStream2> {
    match syn::parse2::<args::RawArgs>(args).and_then(|raw| raw.build(&func)) {
        Ok(opts) => Ok(expand::expand(&opts, func)),
        Err(e) => Err(with_error(func.into_tokens(), e)),
    }
}

/// The item as written, plus the error (tokio's `token_stream_with_error`).
fn with_error(mut item: TokenStream2, e: syn::Error) -> TokenStream2 {
    item.extend(e.into_compile_error());
    item
}
