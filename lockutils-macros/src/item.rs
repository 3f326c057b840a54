//! Parse, step one for the item: the function `#[synchronized]` sits on, as
//! [`Func`], with its shape (sync, `async fn`, or what `#[async_trait]` made
//! of an `async fn`) found here, once, for validation and expansion alike.
//!
//! The body is kept as written, unparsed, unless it is `#[async_trait]`'s
//! `Box::pin(async move { .. })`: a body with a syntax error is still
//! expanded, and the compiler reports that error, alone, at the user's tokens
//! (tracing's `MaybeItemFn` does the same).

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::parse::{Parse, ParseStream};
use syn::{token, Attribute, Block, Error, Expr, Item, ReturnType, Signature, Stmt, Type};
use syn::{Path, Visibility};

/// A function, its body as written.
pub(crate) struct Func {
    pub(crate) outer_attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) sig: Signature,
    pub(crate) brace: token::Brace,
    pub(crate) inner_attrs: Vec<Attribute>,
    pub(crate) body: Body,
}

/// The body, by shape.
pub(crate) enum Body {
    /// The statements as written (parsed or not), of a sync or `async fn`.
    Stmts(TokenStream),
    /// `Box::pin(async move { .. })`, what `#[async_trait]` makes of an
    /// `async fn`: the lock belongs inside that future, awaited there.
    AsyncTrait {
        /// The whole call; [`future_block`] reaches into it.
        call: Box<syn::ExprCall>,
        /// The future's `Output`, read from the return type
        /// `Pin<Box<dyn Future<Output = T> + Send + '_>>`.
        output: Option<Type>,
    },
}

impl Parse for Func {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let outer_attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        let sig: Signature = input.parse()?;
        let content;
        let brace = syn::braced!(content in input);
        let inner_attrs = content.call(Attribute::parse_inner)?;
        let stmts: TokenStream = content.parse()?;
        let body = async_trait_body(&sig, &stmts).unwrap_or(Body::Stmts(stmts));
        Ok(Func {
            outer_attrs,
            vis,
            sig,
            brace,
            inner_attrs,
            body,
        })
    }
}

impl Func {
    /// Whether the lock is taken in an async context (`.lock_async().await`).
    pub(crate) fn is_async(&self) -> bool {
        self.sig.asyncness.is_some() || matches!(self.body, Body::AsyncTrait { .. })
    }

    /// The type a caller gets: the return type, or for an `#[async_trait]`
    /// method its future's `Output`.
    pub(crate) fn output(&self) -> ReturnType {
        match (&self.body, &self.sig.output) {
            (
                Body::AsyncTrait {
                    output: Some(ty), ..
                },
                ReturnType::Type(arrow, _),
            ) => ReturnType::Type(*arrow, Box::new(ty.clone())),
            (_, output) => output.clone(),
        }
    }

    /// The function exactly as written, for output beside an error.
    pub(crate) fn into_tokens(self) -> TokenStream {
        let Func {
            outer_attrs,
            vis,
            sig,
            brace,
            inner_attrs,
            body,
        } = self;
        let mut out = quote::quote!(#(#outer_attrs)* #vis #sig);
        brace.surround(&mut out, |t| {
            t.extend(inner_attrs.iter().map(ToTokens::to_token_stream));
            match body {
                Body::Stmts(stmts) => t.extend(stmts),
                Body::AsyncTrait { call, .. } => call.to_tokens(t),
            }
        });
        out
    }
}

/// The statements of the future in an `#[async_trait]` body.
pub(crate) fn future_block(call: &mut syn::ExprCall) -> &mut Block {
    match call.args.first_mut() {
        Some(Expr::Async(future)) => &mut future.block,
        _ => unreachable!("checked by `async_trait_body`"),
    }
}

/// `Box::pin(async move { .. })` as the only statement of a non-`async`
/// function: the shape `#[async_trait]` leaves (tracing checks the same).
fn async_trait_body(sig: &Signature, stmts: &TokenStream) -> Option<Body> {
    if sig.asyncness.is_some() {
        return None;
    }
    let block: Block = syn::parse2(quote::quote!({ #stmts })).ok()?;
    let [Stmt::Expr(Expr::Call(call), None)] = block.stmts.as_slice() else {
        return None;
    };
    let Expr::Path(callee) = &*call.func else {
        return None;
    };
    let mut segs = callee.path.segments.iter().rev();
    let box_pin = segs.next().is_some_and(|s| s.ident == "pin")
        && segs.next().is_some_and(|s| s.ident == "Box");
    let one_async_move = call.args.len() == 1
        && matches!(call.args.first(), Some(Expr::Async(a)) if a.capture.is_some());
    if !(box_pin && one_async_move) {
        return None;
    }
    let output = match &sig.output {
        ReturnType::Type(_, ty) => future_output(ty).cloned(),
        ReturnType::Default => None,
    };
    Some(Body::AsyncTrait {
        call: Box::new(call.clone()),
        output,
    })
}

/// `T` in `Pin<Box<dyn Future<Output = T> + Send + '_>>`.
fn future_output(ty: &Type) -> Option<&Type> {
    match ty {
        Type::Path(p) => path_output(&p.path),
        Type::TraitObject(obj) => obj.bounds.iter().find_map(|b| match b {
            syn::TypeParamBound::Trait(t) => path_output(&t.path),
            _ => None,
        }),
        Type::Group(g) => future_output(&g.elem),
        Type::Paren(p) => future_output(&p.elem),
        _ => None,
    }
}

fn path_output(path: &Path) -> Option<&Type> {
    path.segments.iter().find_map(|seg| match &seg.arguments {
        syn::PathArguments::AngleBracketed(args) => args.args.iter().find_map(|a| match a {
            syn::GenericArgument::AssocType(assoc) if assoc.ident == "Output" => Some(&assoc.ty),
            syn::GenericArgument::Type(t) => future_output(t),
            _ => None,
        }),
        _ => None,
    })
}

/// What the attribute sits on: a function, or the error to report about
/// another item (`None`: not valid Rust; the compiler reports it).
pub(crate) fn parse(item: TokenStream) -> Result<Func, Option<Error>> {
    if let Ok(func) = syn::parse2::<Func>(item.clone()) {
        return Ok(func);
    }
    let what = |span: Span, kind: &str| {
        Some(Error::new(
            span,
            format!(
                "`#[synchronized]` applies to functions, not {kind}; put it on the `fn` that \
                 needs the lock"
            ),
        ))
    };
    let prefix_hint = |span: Span, kind: &str| {
        Some(Error::new(
            span,
            format!(
                "`#[synchronized]` applies to functions, not {kind}; to give every \
                 `#[synchronized]` function of this block a prefix use \
                 `#[synchronized_with_prefix(\"...\")]`"
            ),
        ))
    };
    match syn::parse2::<Item>(item.clone()) {
        Ok(Item::Struct(s)) => Err(what(s.struct_token.span, "structs")),
        Ok(Item::Enum(e)) => Err(what(e.enum_token.span, "enums")),
        Ok(Item::Union(u)) => Err(what(u.union_token.span, "unions")),
        Ok(Item::Static(s)) => Err(what(s.static_token.span, "statics")),
        Ok(Item::Const(c)) => Err(what(c.const_token.span, "constants")),
        Ok(Item::Type(t)) => Err(what(t.type_token.span, "type aliases")),
        Ok(Item::Mod(m)) => Err(prefix_hint(m.mod_token.span, "modules")),
        Ok(Item::Impl(i)) => Err(prefix_hint(i.impl_token.span, "impl blocks")),
        Ok(Item::Trait(t)) => Err(prefix_hint(t.trait_token.span, "traits")),
        // A method without a body (in a trait) parses as verbatim tokens.
        Ok(Item::Verbatim(_)) | Err(_) => match syn::parse2::<syn::TraitItemFn>(item) {
            Ok(f) if f.default.is_none() => Err(Some(Error::new(
                f.sig.fn_token.span,
                "`#[synchronized]` needs a function body; put it on the implementations of \
                 this trait method, or give it a default body",
            ))),
            _ => Err(None),
        },
        Ok(other) => Err(what(first_span(&other), "this kind of item")),
    }
}

fn first_span(t: &impl ToTokens) -> Span {
    t.to_token_stream()
        .into_iter()
        .next()
        .map_or_else(Span::call_site, |t| t.span())
}
