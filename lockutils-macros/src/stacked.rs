//! Several `#[synchronized]` on one function take their locks in the order
//! written, as oslo's stacked decorators do: the first (outermost) first,
//! released last.
//!
//! rustc expands the first attribute first, on the function that still
//! carries the others. Left to expand one by one, each later attribute would
//! put its guard before the guards already there, so the locks would be
//! taken last-written first. Instead the first attribute takes the others
//! off the function (any attribute whose path ends in `synchronized`, as
//! `#[synchronized_with_prefix]` recognizes them) and expands them itself,
//! innermost first and its own last. Each keeps its own options, `crate =`
//! included; each expansion is the function with one more guard before its
//! body (or, for an `#[async_trait]` method, inside its future), so the
//! result is a chain of guards in written order whatever the function's
//! shape.

use proc_macro2::{Span, TokenStream};
use syn::{Attribute, Error, Meta};

use crate::item::{self, Func};

/// `#[synchronized(args)]` on `func`, and every further `#[synchronized]`
/// `func` carries, nested in written order.
pub(crate) fn expand(args: TokenStream, mut func: Func) -> TokenStream {
    let mut further = Vec::new();
    func.outer_attrs.retain(|attr| match stacked_args(attr) {
        Some(args) => {
            further.push(args);
            false
        }
        None => true,
    });
    // Innermost first: each expansion is the function with one more guard.
    for args in further.into_iter().rev() {
        let tokens = match crate::expand_one(args, func) {
            Ok(tokens) => tokens,
            // The function with the guards so far and the error: callers
            // still see the function, and the build fails on that error.
            Err(with_error) => return with_error,
        };
        func = match item::parse(tokens.clone()) {
            Ok(func) => func,
            Err(_) => {
                return crate::with_error(
                    tokens,
                    Error::new(
                        Span::call_site(),
                        "cannot stack this `#[synchronized]` on the ones below it; put each \
                         lock on its own function, each calling the next",
                    ),
                )
            }
        };
    }
    crate::expand_one(args, func).unwrap_or_else(|with_error| with_error)
}

/// The arguments of a further `#[synchronized]` / `#[synchronized(..)]` (any
/// path ending in `synchronized`), or `None` for any other attribute.
fn stacked_args(attr: &Attribute) -> Option<TokenStream> {
    if !crate::prefix::is_ours(attr.path(), "synchronized") {
        return None;
    }
    match &attr.meta {
        Meta::Path(_) => Some(TokenStream::new()),
        Meta::List(list) => Some(list.tokens.clone()),
        Meta::NameValue(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::synchronized2 as synchronized;
    use quote::quote;

    /// The guards in written order, `a` outermost, each with its own
    /// `crate =`; the other attributes kept.
    #[test]
    fn written_order_outermost_first() {
        let out = synchronized(
            quote!("a"),
            quote! {
                /// doc
                #[inline]
                #[lockutils::synchronized("b", crate = my::locks)]
                #[synchronized("c")]
                fn f() {}
            },
        )
        .to_string();
        let at = |name: &str| out.find(&format!("\"{name}\"")).expect(&out);
        assert!(at("a") < at("b") && at("b") < at("c"), "{out}");
        for own in [
            ":: lockutils :: __private :: LockOptions :: new (\"a\")",
            "my :: locks :: __private :: LockOptions :: new (\"b\")",
            ":: lockutils :: __private :: LockOptions :: new (\"c\")",
        ] {
            assert!(out.contains(own), "{own}: {out}");
        }
        assert!(!out.contains("synchronized"), "{out}");
        assert!(
            out.starts_with("# [doc = r\" doc\"] # [inline] fn f"),
            "{out}"
        );
    }

    /// A mistake in a further attribute: the function as written, one error.
    #[test]
    fn an_error_below_keeps_the_function() {
        let out = synchronized(
            quote!("a"),
            quote! {
                #[synchronized("b", extrnal)]
                fn f() {}
            },
        )
        .to_string();
        assert!(out.starts_with("fn f"), "{out}");
        assert_eq!(out.matches("compile_error").count(), 1, "{out}");
        assert!(out.contains("extrnal"), "{out}");
    }
}
