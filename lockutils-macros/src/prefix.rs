//! `#[synchronized_with_prefix("nova")]` on a `mod`, `impl` or `trait` block:
//! adds `prefix = "nova"` to every `#[synchronized(...)]` inside that gives
//! none of its own.
//!
//! (A file of its own rather than part of `expand.rs`: it rewrites attributes
//! across a whole block, while `expand.rs` generates code for one function.)
//!
//! The block's attribute runs before the attributes inside it, so it sees
//! them unexpanded and can edit their arguments; `#[synchronized]` then
//! expands each function as usual. Nested blocks are included, except those
//! with a `#[synchronized_with_prefix]` of their own.

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Attribute, Error, ImplItem, Item, LitStr, Meta, Token, TraitItem};

use crate::args::RawArgs;

pub(crate) fn synchronized_with_prefix(args: TokenStream, item: TokenStream) -> TokenStream {
    let prefix = match parse_prefix(args) {
        Ok(p) => p,
        Err(e) => return with_error(item, e),
    };
    let mut parsed = match syn::parse2::<Item>(item.clone()) {
        Ok(parsed) => parsed,
        Err(_) => return item,
    };
    let applied = match &mut parsed {
        Item::Mod(m) => match &mut m.content {
            Some((_, items)) => {
                items.iter_mut().for_each(|i| apply_item(i, &prefix));
                Ok(())
            }
            None => Err(Error::new(
                m.semi.map_or(m.mod_token.span, |s| s.span),
                "`#[synchronized_with_prefix]` needs the module's items: use it on an inline \
                 `mod name { ... }`, or on each `impl` block of the module file",
            )),
        },
        Item::Impl(i) => {
            i.items.iter_mut().for_each(|i| apply_impl_item(i, &prefix));
            Ok(())
        }
        Item::Trait(t) => {
            t.items
                .iter_mut()
                .for_each(|i| apply_trait_item(i, &prefix));
            Ok(())
        }
        Item::Fn(f) => Err(Error::new(
            f.sig.fn_token.span,
            format!(
                "`#[synchronized_with_prefix]` applies to a `mod`, `impl` or `trait` block; on \
                 one function write `#[synchronized(\"...\", prefix = {})]`",
                prefix.to_token_stream()
            ),
        )),
        other => Err(Error::new(
            other
                .to_token_stream()
                .into_iter()
                .next()
                .map_or_else(proc_macro2::Span::call_site, |t| t.span()),
            "`#[synchronized_with_prefix]` applies to a `mod`, `impl` or `trait` block",
        )),
    };
    match applied {
        Ok(()) => parsed.into_token_stream(),
        Err(e) => with_error(item, e),
    }
}

fn with_error(mut item: TokenStream, e: Error) -> TokenStream {
    item.extend(e.into_compile_error());
    item
}

fn parse_prefix(args: TokenStream) -> syn::Result<LitStr> {
    let missing = "`#[synchronized_with_prefix]` takes the prefix as a string literal, e.g. \
                   `#[synchronized_with_prefix(\"nova\")]`";
    if args.is_empty() {
        return Err(Error::new(proc_macro2::Span::call_site(), missing));
    }
    let lits = Punctuated::<LitStr, Token![,]>::parse_terminated
        .parse2(args)
        .map_err(|e| Error::new(e.span(), missing))?;
    let mut lits = lits.into_iter();
    let first = lits
        .next()
        .ok_or_else(|| Error::new(proc_macro2::Span::call_site(), missing))?;
    if let Some(extra) = lits.next() {
        return Err(Error::new(
            extra.span(),
            "`#[synchronized_with_prefix]` takes one prefix; remove this one",
        ));
    }
    Ok(first)
}

fn apply_item(item: &mut Item, prefix: &LitStr) {
    match item {
        Item::Fn(f) => apply_attrs(&mut f.attrs, prefix),
        Item::Mod(m) if !has_own_prefix(&m.attrs) => {
            if let Some((_, items)) = &mut m.content {
                items.iter_mut().for_each(|i| apply_item(i, prefix));
            }
        }
        Item::Impl(i) if !has_own_prefix(&i.attrs) => {
            i.items.iter_mut().for_each(|i| apply_impl_item(i, prefix));
        }
        Item::Trait(t) if !has_own_prefix(&t.attrs) => {
            t.items.iter_mut().for_each(|i| apply_trait_item(i, prefix));
        }
        _ => {}
    }
}

fn apply_impl_item(item: &mut ImplItem, prefix: &LitStr) {
    if let ImplItem::Fn(f) = item {
        apply_attrs(&mut f.attrs, prefix);
    }
}

fn apply_trait_item(item: &mut TraitItem, prefix: &LitStr) {
    if let TraitItem::Fn(f) = item {
        apply_attrs(&mut f.attrs, prefix);
    }
}

/// Whether `path` is `synchronized` or `…::lockutils::synchronized`.
fn is_ours(path: &syn::Path, name: &str) -> bool {
    let segs: Vec<_> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    match segs.as_slice() {
        [only] => only == name,
        [.., krate, last] => last == name && krate == "lockutils",
        [] => false,
    }
}

fn has_own_prefix(attrs: &[Attribute]) -> bool {
    attrs
        .iter()
        .any(|a| is_ours(a.path(), "synchronized_with_prefix"))
}

/// Adds `prefix = ...` to each `#[synchronized(...)]` that has none. Arguments
/// that do not parse are left alone: `#[synchronized]` reports them.
fn apply_attrs(attrs: &mut [Attribute], prefix: &LitStr) {
    for attr in attrs {
        if !is_ours(attr.path(), "synchronized") {
            continue;
        }
        let tokens = match &attr.meta {
            Meta::List(list) => list.tokens.clone(),
            Meta::Path(_) => TokenStream::new(),
            Meta::NameValue(_) => continue,
        };
        let Ok(raw) = syn::parse2::<RawArgs>(tokens.clone()) else {
            continue;
        };
        if raw.prefix.is_some() {
            continue;
        }
        let trailing_comma =
            tokens.clone().into_iter().last().is_some_and(
                |t| matches!(&t, proc_macro2::TokenTree::Punct(p) if p.as_char() == ','),
            );
        let tokens = if tokens.is_empty() || trailing_comma {
            quote!(#tokens prefix = #prefix)
        } else {
            quote!(#tokens, prefix = #prefix)
        };
        let path = attr.path().clone();
        attr.meta = syn::parse_quote!(#path(#tokens));
    }
}
