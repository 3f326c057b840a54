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
//! with a `#[synchronized_with_prefix]` of their own; function bodies are
//! not entered.
//!
//! The block is walked as tokens, item by item, never parsed whole: a
//! function in it whose body does not parse leaves the others prefixed, and
//! the compiler reports that body's error alone.

use proc_macro2::{Delimiter, Group, Spacing, Span, TokenStream, TokenTree};
use quote::{quote, ToTokens};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Error, LitStr, Meta, Token};

use crate::args::RawArgs;

/// What the block gives each `#[synchronized(...)]` inside that does not
/// say it itself: `prefix = "nova"`, and with `crate = path` on the block,
/// `crate = path`.
struct Block {
    prefix: LitStr,
    krate: Option<syn::Path>,
}

pub(crate) fn synchronized_with_prefix(args: TokenStream, item: TokenStream) -> TokenStream {
    let block = match parse_prefix(args) {
        Ok(b) => b,
        Err(e) => return crate::with_error(item, e),
    };
    let tokens: Vec<TokenTree> = item.clone().into_iter().collect();
    let head = Head::of(&tokens);
    let error = match (head.kind, tokens.last()) {
        (Kind::Block, Some(TokenTree::Group(body))) if body.delimiter() == Delimiter::Brace => {
            let mut out: TokenStream = tokens[..tokens.len() - 1].iter().cloned().collect();
            out.extend([TokenTree::Group(regroup(
                body,
                apply(body.stream(), &block),
            ))]);
            return out;
        }
        (Kind::Block, last) => Error::new(
            last.map_or_else(Span::call_site, TokenTree::span),
            "`#[synchronized_with_prefix]` needs the module's items: use it on an inline \
             `mod name { ... }`, or on each `impl` block of the module file",
        ),
        (Kind::Fn, _) => Error::new(
            head.keyword,
            format!(
                "`#[synchronized_with_prefix]` applies to a `mod`, `impl` or `trait` block; on \
                 one function write `#[synchronized(\"...\", prefix = {})]`",
                block.prefix.to_token_stream()
            ),
        ),
        (Kind::Other, _) => Error::new(
            tokens.first().map_or_else(Span::call_site, TokenTree::span),
            "`#[synchronized_with_prefix]` applies to a `mod`, `impl` or `trait` block",
        ),
    };
    crate::with_error(item, error)
}

/// `"nova"` or `"nova", crate = path`.
fn parse_prefix(args: TokenStream) -> syn::Result<Block> {
    let missing = "`#[synchronized_with_prefix]` takes the prefix as a string literal, e.g. \
                   `#[synchronized_with_prefix(\"nova\")]`";
    if args.is_empty() {
        return Err(Error::new(Span::call_site(), missing));
    }
    let parse = |input: syn::parse::ParseStream<'_>| -> syn::Result<Block> {
        let prefix: LitStr = input.parse().map_err(|e| Error::new(e.span(), missing))?;
        let mut krate = None;
        while !input.is_empty() {
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                break;
            }
            if input.peek(LitStr) {
                return Err(
                    input.error("`#[synchronized_with_prefix]` takes one prefix; remove this one")
                );
            }
            if !input.peek(Token![crate]) {
                return Err(input.error(
                    "`#[synchronized_with_prefix]` takes the prefix and, if the facade is \
                     renamed or re-exported, `crate = path`, e.g. \
                     `#[synchronized_with_prefix(\"nova\", crate = my_framework::locks)]`",
                ));
            }
            let key = input.parse::<Token![crate]>()?;
            if krate.is_some() {
                return Err(Error::new(
                    key.span,
                    "`crate` given twice; remove one of them",
                ));
            }
            input.parse::<Token![=]>()?;
            krate = Some(if input.peek(LitStr) {
                input
                    .parse::<LitStr>()?
                    .parse_with(syn::Path::parse_mod_style)?
            } else {
                syn::Path::parse_mod_style(input)?
            });
        }
        Ok(Block { prefix, krate })
    };
    parse.parse2(args)
}

/// What an item is, from the keywords before its body.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A function: its braces are a body, not entered.
    Fn,
    /// A `mod`, `impl` or `trait`: its braces hold items.
    Block,
    /// Anything else (`struct`, `const`, `macro_rules!` ...): not entered.
    Other,
}

/// The keywords of one item up to its braces (or `;`), outer attributes
/// skipped.
struct Head {
    kind: Kind,
    /// The span of the keyword that decided the kind.
    keyword: Span,
    /// Whether the item has a `#[synchronized_with_prefix]` of its own.
    own_prefix: bool,
}

impl Head {
    fn of(tokens: &[TokenTree]) -> Head {
        let mut head = Head {
            kind: Kind::Other,
            keyword: Span::call_site(),
            own_prefix: false,
        };
        let mut angles = Angles::default();
        let mut i = 0;
        while i < tokens.len() {
            if angles.ends_item(&tokens[..=i]) {
                return head;
            }
            match &tokens[i] {
                TokenTree::Punct(p) if p.as_char() == '#' => {
                    if let Some(TokenTree::Group(attr)) = tokens.get(i + 1) {
                        head.own_prefix |= attr_is(attr, "synchronized_with_prefix");
                        i += 1;
                    }
                }
                // `impl Trait for fn()` is a block, not a function.
                TokenTree::Ident(word) if head.kind == Kind::Other => {
                    match word.to_string().as_str() {
                        "fn" => {
                            return Head {
                                kind: Kind::Fn,
                                keyword: word.span(),
                                ..head
                            }
                        }
                        "mod" | "impl" | "trait" => {
                            head.kind = Kind::Block;
                            head.keyword = word.span();
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
            i += 1;
        }
        head
    }
}

/// The items of a block, each `#[synchronized(...)]` on them given the
/// prefix, nested blocks entered.
fn apply(items: TokenStream, block: &Block) -> TokenStream {
    let tokens: Vec<TokenTree> = items.into_iter().collect();
    let mut out = Vec::with_capacity(tokens.len());
    // Where the current item starts.
    let mut start = 0;
    let mut angles = Angles::default();
    let mut i = 0;
    while i < tokens.len() {
        let ends_item = angles.ends_item(&tokens[..=i]);
        match &tokens[i] {
            TokenTree::Punct(p) if p.as_char() == '#' => {
                out.push(tokens[i].clone());
                if let Some(TokenTree::Group(attr)) = tokens.get(i + 1) {
                    out.push(TokenTree::Group(prefixed_attr(attr, block)));
                    i += 1;
                }
            }
            TokenTree::Group(g) if ends_item => {
                let head = Head::of(&tokens[start..=i]);
                if head.kind == Kind::Block && !head.own_prefix {
                    out.push(TokenTree::Group(regroup(g, apply(g.stream(), block))));
                } else {
                    out.push(tokens[i].clone());
                }
                start = i + 1;
            }
            other => {
                out.push(other.clone());
                if ends_item {
                    start = i + 1;
                }
            }
        }
        i += 1;
    }
    out.into_iter().collect()
}

/// Where an item ends, token by token: at a `;`, or at braces outside the
/// `<..>` of generics. In `impl Buf<{ 2 * 4 }> { .. }` the first braces are a
/// const argument and the second the body; the `>` of `->` closes nothing
/// (`fn f() -> Buf<{ N }> { .. }`). Braces inside `(..)` or `[..]` (`where
/// [(); { N }]: Sized`) are inside a group and never seen here. A `<` that is
/// an operator (`const B: bool = 1 < 2;`) only lasts until its item's `;`.
#[derive(Default)]
struct Angles {
    depth: usize,
}

impl Angles {
    /// Whether the last token of `seen` ends an item; called once per token,
    /// in order.
    fn ends_item(&mut self, seen: &[TokenTree]) -> bool {
        match seen {
            [.., TokenTree::Punct(p)] if p.as_char() == ';' => {
                self.depth = 0;
                true
            }
            [.., TokenTree::Punct(p)] if p.as_char() == '<' => {
                self.depth += 1;
                false
            }
            [.., TokenTree::Punct(dash), TokenTree::Punct(p)]
                if p.as_char() == '>'
                    && dash.as_char() == '-'
                    && dash.spacing() == Spacing::Joint =>
            {
                false
            }
            [.., TokenTree::Punct(p)] if p.as_char() == '>' => {
                self.depth = self.depth.saturating_sub(1);
                false
            }
            [.., TokenTree::Group(g)] => g.delimiter() == Delimiter::Brace && self.depth == 0,
            _ => false,
        }
    }
}

fn regroup(old: &Group, stream: TokenStream) -> Group {
    let mut new = Group::new(old.delimiter(), stream);
    new.set_span(old.span());
    new
}

/// Whether the `[...]` of an attribute is a path ending in `name`.
fn attr_is(attr: &Group, name: &str) -> bool {
    attr.delimiter() == Delimiter::Bracket
        && syn::parse2::<Meta>(attr.stream()).is_ok_and(|meta| is_ours(meta.path(), name))
}

/// Whether `path` ends in `name`: `name`, `lockutils::name`, or a re-export
/// of the facade such as `my_framework::locks::name` (what `crate = path`
/// is for). A macro cannot tell where a path leads, so the last segment is
/// what counts, as it is for `#[synchronized]` stacked on one function.
pub(crate) fn is_ours(path: &syn::Path, name: &str) -> bool {
    path.segments.last().is_some_and(|last| last.ident == name)
}

/// The `[...]` of an attribute, with `prefix = ...` (and the block's
/// `crate = ...`) added if it is a `#[synchronized(...)]` with none.
/// Arguments that do not parse are left alone: `#[synchronized]` reports
/// them.
fn prefixed_attr(attr: &Group, block: &Block) -> Group {
    if attr.delimiter() != Delimiter::Bracket {
        return attr.clone();
    }
    let Ok(meta) = syn::parse2::<Meta>(attr.stream()) else {
        return attr.clone();
    };
    match prefixed_meta(&meta, block) {
        Some(tokens) => regroup(attr, tokens),
        None => attr.clone(),
    }
}

/// One attribute's meta with the block's options added, or `None` to keep
/// it as written: a `synchronized(...)` that lacks them, or a
/// `cfg_attr(pred, ..)` holding one (each of its attributes, nested
/// `cfg_attr`s too), so that the prefix applies whenever the predicate
/// holds.
fn prefixed_meta(meta: &Meta, block: &Block) -> Option<TokenStream> {
    if meta.path().is_ident("cfg_attr") {
        let Meta::List(list) = meta else {
            return None;
        };
        let parts = Punctuated::<Meta, Token![,]>::parse_terminated
            .parse2(list.tokens.clone())
            .ok()?;
        let mut changed = false;
        let parts: Vec<TokenStream> = parts
            .iter()
            .enumerate()
            .map(|(i, part)| {
                // The first is the predicate.
                match (i > 0).then(|| prefixed_meta(part, block)).flatten() {
                    Some(tokens) => {
                        changed = true;
                        tokens
                    }
                    None => part.to_token_stream(),
                }
            })
            .collect();
        let path = &list.path;
        return changed.then(|| quote!(#path(#(#parts),*)));
    }
    if !is_ours(meta.path(), "synchronized") {
        return None;
    }
    let tokens = match meta {
        Meta::List(list) => list.tokens.clone(),
        Meta::Path(_) => TokenStream::new(),
        Meta::NameValue(_) => return None,
    };
    let raw = syn::parse2::<RawArgs>(tokens.clone()).ok()?;
    let mut added = Vec::new();
    if raw.prefix.is_none() {
        let prefix = &block.prefix;
        added.push(quote!(prefix = #prefix));
    }
    if let (None, Some(krate)) = (&raw.krate, &block.krate) {
        added.push(quote!(crate = #krate));
    }
    if added.is_empty() {
        return None;
    }
    let trailing_comma = tokens
        .clone()
        .into_iter()
        .last()
        .is_some_and(|t| matches!(&t, TokenTree::Punct(p) if p.as_char() == ','));
    let tokens = if tokens.is_empty() || trailing_comma {
        quote!(#tokens #(#added),*)
    } else {
        quote!(#tokens, #(#added),*)
    };
    let path = meta.path();
    Some(quote!(#path(#tokens)))
}

#[cfg(test)]
mod tests {
    use super::synchronized_with_prefix;
    use quote::quote;

    #[test]
    fn a_function_that_does_not_parse_leaves_the_others_prefixed() {
        let out = synchronized_with_prefix(
            quote!("nova"),
            quote! {
                mod compute {
                    #[synchronized("spawn")]
                    fn spawn() { let x = ; }
                    #[lockutils::synchronized("build")]
                    fn build() {}
                    #[synchronized("own", prefix = "glance")]
                    fn own() {}
                    impl S {
                        #[synchronized("method")]
                        fn method(&self) {
                            #[synchronized("local")]
                            fn local() {}
                        }
                    }
                    #[lockutils::synchronized_with_prefix("cinder")]
                    mod other {
                        #[synchronized("volume")]
                        fn volume() {}
                    }
                }
            },
        )
        .to_string();
        for prefixed in [
            "synchronized (\"spawn\" , prefix = \"nova\")",
            "synchronized (\"build\" , prefix = \"nova\")",
            "synchronized (\"method\" , prefix = \"nova\")",
        ] {
            assert!(out.contains(prefixed), "{prefixed}: {out}");
        }
        for alone in [
            "synchronized (\"own\" , prefix = \"glance\")]",
            "synchronized (\"local\")]",
            "synchronized (\"volume\")]",
        ] {
            assert!(out.contains(alone), "{alone}: {out}");
        }
        assert!(out.contains("let x = ;"), "{out}");
        assert!(!out.contains("compile_error"), "{out}");
    }

    #[test]
    fn the_blocks_crate_path_goes_to_each_attribute_without_one() {
        let out = synchronized_with_prefix(
            quote!("nova", crate = crate::deps::locks),
            quote! {
                impl S {
                    #[locks::synchronized("a")]
                    fn a(&self) {}
                    #[synchronized("b", crate = other::locks)]
                    fn b(&self) {}
                    #[synchronized("c", prefix = "glance")]
                    fn c(&self) {}
                }
            },
        )
        .to_string();
        for expected in [
            "synchronized (\"a\" , prefix = \"nova\" , crate = crate :: deps :: locks)",
            "synchronized (\"b\" , crate = other :: locks , prefix = \"nova\")]",
            "synchronized (\"c\" , prefix = \"glance\" , crate = crate :: deps :: locks)",
        ] {
            assert!(out.contains(expected), "{expected}: {out}");
        }
        assert!(!out.contains("compile_error"), "{out}");

        for (args, error) in [
            (quote!("nova", "cinder"), "takes one prefix"),
            (quote!("nova", extern = x), "`crate = path`"),
            (quote!("nova", crate = a, crate = b), "`crate` given twice"),
        ] {
            let out = synchronized_with_prefix(
                args.clone(),
                quote!(
                    mod m {}
                ),
            )
            .to_string();
            assert!(out.contains(error), "{args}: {out}");
        }
    }

    #[test]
    fn cfg_attr_synchronized_gets_the_prefix() {
        let out = synchronized_with_prefix(
            quote!("nova"),
            quote! {
                mod m {
                    #[cfg_attr(all(), synchronized("a"))]
                    fn a() {}
                    #[cfg_attr(test, inline, lockutils::synchronized("b"), allow(dead_code))]
                    fn b() {}
                    #[cfg_attr(unix, cfg_attr(test, synchronized("c")))]
                    fn c() {}
                    #[cfg_attr(unix, synchronized("d", prefix = "own"))]
                    fn d() {}
                    #[cfg_attr(unix, inline)]
                    fn e() {}
                }
            },
        )
        .to_string();
        for expected in [
            "cfg_attr (all () , synchronized (\"a\" , prefix = \"nova\"))",
            "cfg_attr (test , inline , lockutils :: synchronized (\"b\" , prefix = \"nova\") , allow (dead_code))",
            "cfg_attr (unix , cfg_attr (test , synchronized (\"c\" , prefix = \"nova\")))",
            "cfg_attr (unix , synchronized (\"d\" , prefix = \"own\"))",
            "cfg_attr (unix , inline)",
        ] {
            assert!(out.contains(expected), "{expected}: {out}");
        }
    }

    #[test]
    fn bodies_are_found_past_braces_in_generics() {
        let out = synchronized_with_prefix(
            quote!("nova"),
            quote! {
                mod compute {
                    impl<const N: usize> Tr<{ N }> for U<{ N + 1 }>
                    where
                        [(); { N }]: Sized,
                        Assert<{ N > 0 }>: IsTrue,
                    {
                        #[synchronized("where")]
                        fn f() {}
                    }
                    fn g<const N: usize>() -> impl Fn() -> Buf<{ N }> where Buf<{ N }>: Sized {}
                    #[synchronized("after-fn")]
                    fn h() {}
                    impl Tr for fn() -> Buf<{ 1 }> {
                        #[synchronized("fn-pointer")]
                        fn f() {}
                    }
                    const LESS: bool = 1 < 2 && { true };
                    #[synchronized("after-operator")]
                    fn i() {}
                }
            },
        )
        .to_string();
        for name in ["where", "after-fn", "fn-pointer", "after-operator"] {
            let prefixed = format!("synchronized (\"{name}\" , prefix = \"nova\")");
            assert!(out.contains(&prefixed), "{prefixed}: {out}");
        }
    }
}
