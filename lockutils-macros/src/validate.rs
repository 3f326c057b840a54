//! Validate, step two of `#[synchronized]`: from [`RawArgs`] and the parsed
//! [`Func`] to the checked [`Options`], every cross-check between options and
//! between options and the signature. Reads the parse step's types only;
//! expansion reads what this returns.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Error, Expr, FnArg, LitStr, Pat, Path, Result, ReturnType, Signature, Type};

use crate::args::{DistributedArg, ModeArg, NameArg, Opt, RawArgs};
use crate::item::Func;

/// What to generate, checked.
pub(crate) struct Options {
    pub(crate) name: Name,
    pub(crate) prefix: Option<LitStr>,
    pub(crate) external: bool,
    pub(crate) lock_path: Option<LockPath>,
    /// As written: `None` keeps the lock's own default (`false` in-process,
    /// `true` for a ZooKeeper lock).
    pub(crate) fair: Option<bool>,
    pub(crate) blocking: bool,
    /// Nanoseconds.
    pub(crate) timeout: Option<u64>,
    pub(crate) semaphores: Option<Path>,
    pub(crate) shared: bool,
    /// `Some` for a ZooKeeper lock (`distributed`).
    pub(crate) distributed: Option<Coordination>,
    /// `Some` for a lock on a backend chosen with `backend = …`.
    pub(crate) backend: Option<Coordination>,
    /// The path of the facade crate, `::lockutils` unless `crate = ...`.
    pub(crate) krate: Path,
    pub(crate) on_error: OnError,
}

/// The lock name.
pub(crate) enum Name {
    /// A fixed name (braces already unescaped): the lock is a per-call-site
    /// static.
    Static(LitStr),
    /// A literal with `{param}` placeholders, all naming parameters.
    Format(LitStr),
    /// `name = <expr>`, evaluated at each call.
    Expr(Expr),
}

/// The lock directory.
pub(crate) enum LockPath {
    /// A `&'static str` known at compile time (a literal, `env!(..)`,
    /// `concat!(..)`): part of the static lock.
    Const(Expr),
    /// Any other expression, evaluated at each call (`AsRef<Path>`).
    Dynamic(Expr),
}

/// Where a `distributed` lock's ZooKeeper ensemble is.
pub(crate) enum Coordination {
    /// The default coordination URL (`set_default_url`, then
    /// `LOCKUTILS_COORDINATION_URL`), resolved at each acquisition.
    DefaultUrl,
    /// A `&'static str` known at compile time (a literal, `env!(..)`,
    /// `concat!(..)`): part of the static lock.
    Const(Expr),
    /// Any other expression, evaluated at each call (`AsRef<str>`).
    Dynamic(Expr),
}

/// What an acquisition error does.
pub(crate) enum OnError {
    /// Panics, naming the lock and the error: the lock waits forever, so only
    /// a broken setup (a bad lock directory, re-entering a held lock) fails.
    Panic,
    /// `return Err(From::from(e))`; the span is the return type's.
    Return(Span),
}

impl Options {
    /// Whether the whole lock is known at compile time (one static per call
    /// site, no lookup per call).
    pub(crate) fn is_static(&self) -> bool {
        matches!(self.name, Name::Static(_))
            && !matches!(self.lock_path, Some(LockPath::Dynamic(_)))
            && !matches!(self.distributed, Some(Coordination::Dynamic(_)))
            && !matches!(self.backend, Some(Coordination::Dynamic(_)))
    }
}

impl RawArgs {
    /// Checks the options against each other and against `func`, for the
    /// features this crate was built with (set by the facade's).
    pub(crate) fn build(self, func: &Func) -> Result<Options> {
        self.build_for(
            func,
            Features {
                zookeeper: cfg!(feature = "zookeeper"),
                postgresql: cfg!(feature = "postgresql"),
            },
        )
    }

    /// [`build`](Self::build) for the given features.
    pub(crate) fn build_for(self, func: &Func, features: Features) -> Result<Options> {
        let mut errors = Errors::default();
        if let Some(c) = &func.sig.constness {
            errors.push(Error::new(
                c.span,
                "`#[synchronized]` cannot be used on a `const fn`: the lock is taken at run \
                 time; remove `const` or the attribute",
            ));
        }

        let name = match self.name {
            None => {
                errors.push(Error::new(
                    Span::call_site(),
                    "missing lock name: write `#[synchronized(\"mylock\")]`, or \
                     `#[synchronized(name = <expr>)]` for a name computed from the arguments",
                ));
                None
            }
            Some(Opt {
                value: NameArg::Lit(lit),
                ..
            }) => errors.check(name_literal(&lit, &func.sig)),
            Some(Opt {
                value: NameArg::Expr(expr),
                ..
            }) => Some(Name::Expr(expr)),
        };

        let distributed = match &self.distributed {
            None
            | Some(Opt {
                value: DistributedArg::Off,
                ..
            }) => None,
            Some(opt) => Some(opt),
        };
        if let Some(d) = distributed {
            if !features.zookeeper {
                errors.push(Error::new(
                    d.span,
                    "`distributed` needs the ZooKeeper backend: enable the `zookeeper` feature \
                     of lockutils (`lockutils = { version = \"..\", features = [\"zookeeper\"] }`)",
                ));
            }
            // The ZooKeeper lock replaces the lock file: each conflict is
            // reported at the later of the two options.
            let later = |other: Span, pos: usize| if pos > d.pos { other } else { d.span };
            if let Some(e) = self.external.as_ref().filter(|o| o.value) {
                errors.push(Error::new(
                    later(e.span, e.pos),
                    "`external` cannot be combined with `distributed`: the ZooKeeper lock \
                     replaces the lock file; remove `external`",
                ));
            }
            if let Some(lp) = &self.lock_path {
                errors.push(Error::new(
                    later(lp.span, lp.pos),
                    "`lock_path` cannot be combined with `distributed`: the ZooKeeper lock \
                     replaces the lock file; remove `lock_path`",
                ));
            }
        }
        let coordination = distributed.and_then(|d| match &d.value {
            DistributedArg::Off => None,
            DistributedArg::DefaultUrl => Some(Coordination::DefaultUrl),
            DistributedArg::Url(expr) => errors.check(coordination_url(expr)),
        });

        let backend = self.backend.as_ref().and_then(|b| {
            // `backend` replaces the lock file and the ZooKeeper shorthand:
            // each conflict is reported at the later of the two options.
            let later = |other: Span, pos: usize| if pos > b.pos { other } else { b.span };
            if let Some(e) = self.external.as_ref().filter(|o| o.value) {
                errors.push(Error::new(
                    later(e.span, e.pos),
                    "`external` cannot be combined with `backend`: `external` is the lock-file \
                     backend (`backend = \"file:///dir\"`); keep one of them",
                ));
            }
            if let Some(d) = distributed {
                errors.push(Error::new(
                    later(d.span, d.pos),
                    "`distributed` cannot be combined with `backend`: `distributed` is the \
                     ZooKeeper backend (`backend = \"zookeeper://…\"`); keep one of them",
                ));
            }
            if let Some(lp) = &self.lock_path {
                errors.push(Error::new(
                    later(lp.span, lp.pos),
                    "`lock_path` cannot be combined with `backend`: a file backend's directory \
                     is in its URL (`backend = \"file:///var/lib/app/locks\"`)",
                ));
            }
            errors.check(backend_url(&b.value, features))
        });

        let external = self.external.as_ref().is_some_and(|o| o.value);
        if let Some(lp) = &self.lock_path {
            if !external && distributed.is_none() && self.backend.is_none() {
                errors.push(Error::new(
                    lp.span,
                    "`lock_path` only applies to external locks; add `external` or remove \
                     `lock_path`",
                ));
            }
        }
        let lock_path = self.lock_path.map(|o| lock_path(o.value));

        let timeout = self.timeout.as_ref().and_then(|o| {
            errors.check(
                parse_duration(&o.value.value()).map_err(|msg| Error::new(o.value.span(), msg)),
            )
        });
        let blocking = self.blocking.as_ref().is_none_or(|o| o.value);
        if let (Some(b), Some(t)) = (&self.blocking, &self.timeout) {
            if !b.value {
                let later = if b.pos > t.pos { b.span } else { t.span };
                errors.push(Error::new(
                    later,
                    "`timeout` has no effect with `blocking = false`, which never waits; \
                     remove one of them",
                ));
            }
        }

        if let Some(s) = &self.semaphores {
            if s.value
                .segments
                .first()
                .is_some_and(|seg| seg.ident == "Self")
            {
                errors.push(Error::new_spanned(
                    &s.value,
                    "`semaphores` must name a `static` (there are no associated statics): \
                     write its full path, e.g. `semaphores = crate::MY_LOCKS`",
                ));
            }
        }

        // Only a lock that may give up (not blocking, or a timeout) has an
        // error worth handing to the caller; see `OnError::Panic`.
        let can_give_up = self
            .blocking
            .as_ref()
            .filter(|o| !o.value)
            .map(|o| ("`blocking = false`", o.span))
            .or_else(|| self.timeout.as_ref().map(|o| ("`timeout`", o.span)));
        let on_error = match can_give_up {
            None => OnError::Panic,
            Some((what, _)) => match &func.output() {
                ReturnType::Type(_, ty) if returns_result(ty) => OnError::Return(ty.span()),
                output => {
                    let found = match output {
                        ReturnType::Type(..) => "this return type cannot carry it",
                        ReturnType::Default => "the function returns `()`",
                    };
                    let msg = format!(
                        "with {what}, taking the lock can fail, and {found}: return \
                         `Result<T, E>` where `E: From<lockutils::Error>` (e.g. \
                         `-> Result<(), lockutils::Error>`), or remove {what}"
                    );
                    errors.push(match output {
                        ReturnType::Type(_, ty) => Error::new_spanned(ty, msg),
                        ReturnType::Default => Error::new(func.sig.paren_token.span.close(), msg),
                    });
                    OnError::Panic
                }
            },
        };

        if let Some(p) = &self.prefix {
            if p.value.value().contains('\0') {
                errors.push(Error::new(
                    p.value.span(),
                    "the prefix contains a NUL byte, which no lock name can hold; remove it",
                ));
            }
        }
        if let Some(name) = &name {
            let prefixed = self
                .prefix
                .as_ref()
                .is_some_and(|p| !p.value.value().is_empty());
            errors.check(fixed_name(name, prefixed));
        }

        errors.finish()?;
        Ok(Options {
            name: name.expect("no error means a name"),
            prefix: self.prefix.map(|o| o.value),
            external,
            lock_path,
            fair: self.fair.map(|o| o.value),
            blocking,
            timeout,
            semaphores: self.semaphores.map(|o| o.value),
            shared: self.mode.is_some_and(|o| o.value == ModeArg::Read),
            distributed: coordination,
            backend,
            krate: self
                .krate
                .map_or_else(|| syn::parse_quote!(::lockutils), |o| o.value),
            on_error,
        })
    }
}

/// The cargo features of the facade that change what the macro accepts.
#[derive(Clone, Copy)]
pub(crate) struct Features {
    /// `distributed` locks on ZooKeeper, and `zookeeper://` backends.
    pub(crate) zookeeper: bool,
    /// `postgresql://` (and `postgres://`) backends.
    pub(crate) postgresql: bool,
}

/// Several independent errors, reported together.
#[derive(Default)]
struct Errors(Option<Error>);

impl Errors {
    fn push(&mut self, e: Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    fn check<T>(&mut self, r: Result<T>) -> Option<T> {
        r.map_err(|e| self.push(e)).ok()
    }

    fn finish(self) -> Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// A return type that can carry the error: a path whose last segment is
/// `Result` or ends in it (`Result<T, E>`, `io::Result<T>`, `AppResult<T>`).
/// An alias that is not a `Result` after all fails to type-check at the
/// return type, which the generated `return Err(..)` is spanned at.
fn returns_result(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => p
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident.to_string().ends_with("Result")),
        Type::Group(g) => returns_result(&g.elem),
        Type::Paren(p) => returns_result(&p.elem),
        _ => false,
    }
}

/// The URL of `distributed = ...`: a literal must be a coordination URL
/// (the rest of it is checked at run time, where a bad URL is an error naming
/// it); `env!(..)` and `concat!(..)` are fixed at compile time too; anything
/// else is evaluated at each call.
fn coordination_url(expr: &Expr) -> Result<Coordination> {
    const SCHEME: &str = "zookeeper://";
    match expr {
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(lit),
            ..
        }) => {
            let url = lit.value();
            if !url.starts_with(SCHEME) {
                let found = match url.split_once("://") {
                    _ if url.is_empty() => "an empty string".to_owned(),
                    Some((scheme, _)) => format!("the scheme `{scheme}://`"),
                    None => "no scheme".to_owned(),
                };
                return Err(Error::new(
                    lit.span(),
                    format!(
                        "`distributed` takes a ZooKeeper coordination URL starting with \
                         `{SCHEME}`, e.g. `distributed = \"zookeeper://zk1:2181/lockutils\"`, \
                         but found {found}; or write `distributed` alone for the default URL \
                         (`LOCKUTILS_COORDINATION_URL`)"
                    ),
                ));
            }
            if url.len() == SCHEME.len() {
                return Err(Error::new(
                    lit.span(),
                    "the coordination URL names no server: write \
                     `zookeeper://HOST[:PORT][,HOST[:PORT]…][/ROOT]`, e.g. \
                     `zookeeper://zk1:2181/lockutils`",
                ));
            }
            Ok(Coordination::Const(expr.clone()))
        }
        Expr::Lit(_) => Err(Error::new_spanned(
            expr,
            "`distributed` takes a coordination URL string, e.g. \
             `distributed = \"zookeeper://zk1:2181/lockutils\"`, or `true`/`false`",
        )),
        Expr::Macro(m) if m.mac.path.is_ident("env") || m.mac.path.is_ident("concat") => {
            Ok(Coordination::Const(expr.clone()))
        }
        _ => Ok(Coordination::Dynamic(expr.clone())),
    }
}

/// The backend of `backend = ...`: a literal must be a coordination URL of
/// a scheme this build has (the rest is checked at run time); `env!(..)` and
/// `concat!(..)` are fixed at compile time too; anything else is a reference
/// to a backend or a URL, evaluated at each call.
fn backend_url(expr: &Expr, features: Features) -> Result<Coordination> {
    match expr {
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(lit),
            ..
        }) => {
            let url = lit.value();
            let Some((scheme, _)) = url.split_once("://") else {
                return Err(Error::new(
                    lit.span(),
                    "`backend` takes a coordination URL such as \
                     `backend = \"zookeeper://zk1:2181/lockutils\"` or \
                     `backend = \"file:///var/lib/app/locks\"`, or an expression \
                     (`backend = &MY_BACKEND`)",
                ));
            };
            backend_scheme(scheme, features).map_err(|msg| Error::new(lit.span(), msg))?;
            Ok(Coordination::Const(expr.clone()))
        }
        Expr::Lit(_) => Err(Error::new_spanned(
            expr,
            "`backend` takes a coordination URL string or an expression giving a backend, \
             e.g. `backend = \"zookeeper://zk1:2181/lockutils\"` or `backend = &MY_BACKEND`",
        )),
        Expr::Macro(m) if m.mac.path.is_ident("env") || m.mac.path.is_ident("concat") => {
            Ok(Coordination::Const(expr.clone()))
        }
        _ => Ok(Coordination::Dynamic(expr.clone())),
    }
}

/// The schemes lockutils has an engine for, each with the feature of the
/// facade that brings it in (`None`: always there).
const SCHEMES: &[(&str, Option<&str>)] = &[
    ("file", None),
    ("zookeeper", Some("zookeeper")),
    ("postgresql", Some("postgresql")),
    ("postgres", Some("postgresql")),
];

/// The scheme of a `backend = "..."` literal: one of lockutils' engines
/// whose feature is on; an engine whose feature is off, or a scheme that is
/// a misspelling of one of them (`fille`, `File`, `zookeper`), is refused
/// with the fix. Any other scheme is taken as an engine the program
/// registers itself (`lockutils::backend::register_scheme`), checked at the
/// first lock.
fn backend_scheme(scheme: &str, features: Features) -> std::result::Result<(), String> {
    let enabled = |feature: &str| match feature {
        "zookeeper" => features.zookeeper,
        "postgresql" => features.postgresql,
        _ => false,
    };
    match SCHEMES.iter().find(|(known, _)| *known == scheme) {
        Some((_, None)) => return Ok(()),
        Some((_, Some(feature))) if enabled(feature) => return Ok(()),
        Some((_, Some(feature))) => {
            let engine = match *feature {
                "zookeeper" => "ZooKeeper",
                _ => "PostgreSQL",
            };
            return Err(format!(
                "`{scheme}://` needs the {engine} backend: enable the `{feature}` feature of \
                 lockutils (`lockutils = {{ version = \"..\", features = [\"{feature}\"] }}`)"
            ));
        }
        None => {}
    }
    let lower = scheme.to_ascii_lowercase();
    let near = SCHEMES
        .iter()
        .map(|(known, _)| (scheme_distance(&lower, known), *known))
        .filter(|&(d, known)| d <= 2 && d * 2 < known.len())
        .min()
        .map(|(_, known)| known);
    let Some(near) = near else {
        return Ok(());
    };
    let known: Vec<String> = SCHEMES
        .iter()
        .map(|(scheme, feature)| match feature {
            None => format!("`{scheme}://`"),
            Some(f) => format!("`{scheme}://` (feature `{f}`)"),
        })
        .collect();
    Err(format!(
        "unknown backend scheme `{scheme}://`; did you mean `{near}://`? lockutils' schemes \
         are {} (a scheme of an engine the program registers itself with \
         `lockutils::backend::register_scheme` is accepted when it is not this close to one \
         of them)",
        known.join(", ")
    ))
}

/// Edit distance with adjacent transpositions counting one (`fiel` is one
/// edit from `file`).
fn scheme_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

fn lock_path(expr: Expr) -> LockPath {
    match &expr {
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(_),
            ..
        }) => LockPath::Const(expr),
        Expr::Macro(m)
            if m.mac.path.is_ident("env")
                || m.mac.path.is_ident("concat")
                || m.mac.path.is_ident("option_env") =>
        {
            // `option_env!` is an `Option`; leave it to the dynamic path,
            // where `AsRef<Path>` reports the mismatch.
            if m.mac.path.is_ident("option_env") {
                LockPath::Dynamic(expr)
            } else {
                LockPath::Const(expr)
            }
        }
        _ => LockPath::Dynamic(expr),
    }
}

/// A name literal: fixed, or with `{param}` placeholders that must each name a
/// parameter of `func`.
fn name_literal(lit: &LitStr, sig: &Signature) -> Result<Name> {
    let params = parameters(sig);
    let value = lit.value();
    let err = |msg: String| Error::new(lit.span(), msg);
    let mut fixed = String::with_capacity(value.len());
    let mut placeholders = false;
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                fixed.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                fixed.push('}');
            }
            '}' => {
                return Err(err(
                    "unmatched `}` in the lock name; write `}}` for a literal brace".into(),
                ))
            }
            '{' => {
                let mut inner = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => inner.push(c),
                        None => {
                            return Err(err(
                                "unclosed `{` in the lock name; close the placeholder, or \
                                 write `{{` for a literal brace"
                                    .into(),
                            ))
                        }
                    }
                }
                let (arg, spec) = inner.split_once(':').unwrap_or((&inner, ""));
                let arg = arg.trim();
                if let Some(unraw) = arg.strip_prefix("r#") {
                    return Err(err(format!(
                        "`{{{arg}}}` in the lock name: write `{{{unraw}}}`; placeholders name \
                         parameters without `r#`, even keywords (as in `format!`)"
                    )));
                }
                if arg.is_empty() || arg.chars().all(|c| c.is_ascii_digit()) {
                    return Err(err(format!(
                        "`{{{inner}}}` in the lock name: placeholders name a parameter, e.g. \
                         `{{{}}}`",
                        params.first().map_or("id", String::as_str)
                    )));
                }
                let no_parameter = |what: &str| {
                    let listed = if params.is_empty() {
                        format!("`{}` has no parameters", sig.ident)
                    } else {
                        format!(
                            "its parameters are {}",
                            params
                                .iter()
                                .map(|p| format!("`{p}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    };
                    err(format!(
                        "{what} in the lock name names no parameter of `{}`; {listed}",
                        sig.ident
                    ))
                };
                if !params.iter().any(|p| p == arg) {
                    return Err(no_parameter(&format!("`{{{arg}}}`")));
                }
                // A width or precision taken from an argument (`{id:w$}`,
                // `{id:.p$}`) must name a parameter too: the lock's name
                // must not depend on anything else in scope.
                for count in spec_arguments(spec) {
                    match count {
                        SpecArg::Named(name) if params.iter().any(|p| p == name) => {}
                        SpecArg::Named(name) => {
                            return Err(no_parameter(&format!("`{name}` of `{{{inner}}}`")));
                        }
                        SpecArg::Positional(what) => {
                            return Err(err(format!(
                                "`{{{inner}}}` in the lock name takes a width or precision \
                                 from a positional argument (`{what}`), and a lock name has \
                                 none: name a parameter (`{{{arg}:.prec$}}`) or write the \
                                 number"
                            )));
                        }
                    }
                }
                placeholders = true;
            }
            c => fixed.push(c),
        }
    }
    if placeholders {
        Ok(Name::Format(lit.clone()))
    } else {
        Ok(Name::Static(LitStr::new(&fixed, lit.span())))
    }
}

/// An argument of a format spec: the width or precision of `{id:w$}`,
/// `{id:.p$}`, `{id:1$}` or `{id:.*}`.
enum SpecArg<'a> {
    /// `w$`: an argument by name.
    Named(&'a str),
    /// `1$` or `.*`: an argument by position.
    Positional(&'a str),
}

/// The arguments a format spec (after the `:`) takes its width and
/// precision from: each `NAME$` or `N$`, and `.*`. A `$` right after the
/// `:` is a fill character, not an argument.
fn spec_arguments(spec: &str) -> Vec<SpecArg<'_>> {
    let mut out = Vec::new();
    if let Some(at) = spec.find(".*") {
        out.push(SpecArg::Positional(&spec[at..at + 2]));
    }
    for (at, _) in spec.match_indices('$') {
        let before = &spec[..at];
        let start = before
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| {
                i + before[i..].chars().next().map_or(1, char::len_utf8)
            });
        let word = &before[start..];
        if word.is_empty() {
            continue;
        }
        if word.chars().all(|c| c.is_ascii_digit()) {
            out.push(SpecArg::Positional(&spec[start..=at]));
        } else {
            // The `0` flag may come right before a width (`{id:0w$}`).
            out.push(SpecArg::Named(
                word.trim_start_matches(|c: char| c.is_ascii_digit()),
            ));
        }
    }
    out
}

/// The rules of `lockutils_core::lock_file_name`, for what of the name is
/// known at compile time: a fixed name that is empty, holds a NUL byte or is
/// `.` or `..` without a prefix, or a name with placeholders whose literal
/// part holds a NUL byte, would fail at every call.
fn fixed_name(name: &Name, prefixed: bool) -> Result<()> {
    let (lit, value) = match name {
        Name::Static(lit) | Name::Format(lit) => (lit, lit.value()),
        Name::Expr(_) => return Ok(()),
    };
    let problem = if value.contains('\0') {
        "the lock name contains a NUL byte, which no lock name can hold; remove it"
    } else if !matches!(name, Name::Static(_)) {
        return Ok(());
    } else if value.is_empty() {
        "the lock name is empty; give the lock a non-empty name, e.g. `\"mylock\"`"
    } else if !prefixed && (value == "." || value == "..") {
        "`.` and `..` name directories, not lock files; choose another name, or add a \
         `prefix`"
    } else {
        return Ok(());
    };
    Err(Error::new(lit.span(), problem))
}

/// The names a placeholder can use: `self` and every binding of the
/// parameter patterns.
fn parameters(sig: &Signature) -> Vec<String> {
    let mut out = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(_) => out.push("self".to_owned()),
            FnArg::Typed(t) => bindings(&t.pat, &mut out),
        }
    }
    out
}

fn bindings(pat: &Pat, out: &mut Vec<String>) {
    match pat {
        Pat::Ident(i) => {
            // `r#type` is `{type}` in a format string.
            out.push(i.ident.unraw().to_string());
            if let Some((_, sub)) = &i.subpat {
                bindings(sub, out);
            }
        }
        Pat::Tuple(t) => t.elems.iter().for_each(|p| bindings(p, out)),
        Pat::TupleStruct(t) => t.elems.iter().for_each(|p| bindings(p, out)),
        Pat::Struct(s) => s.fields.iter().for_each(|f| bindings(&f.pat, out)),
        Pat::Slice(s) => s.elems.iter().for_each(|p| bindings(p, out)),
        Pat::Reference(r) => bindings(&r.pat, out),
        Pat::Paren(p) => bindings(&p.pat, out),
        Pat::Type(t) => bindings(&t.pat, out),
        Pat::Or(o) => {
            if let Some(first) = o.cases.first() {
                bindings(first, out);
            }
        }
        _ => {}
    }
}

/// A `timeout = ".."` value to nanoseconds, in lockutils' one duration
/// syntax (`lockutils_duration`); zero is refused, as it never waits.
pub(crate) fn parse_duration(s: &str) -> std::result::Result<u64, String> {
    let d =
        lockutils_duration::parse_duration(s).map_err(|e| format!("`timeout = \"{s}\"`: {e}"))?;
    if d.is_zero() {
        return Err(format!(
            "`timeout = \"{s}\"` never waits; write `blocking = false` instead"
        ));
    }
    // At most u64::MAX nanoseconds by the syntax.
    u64::try_from(d.as_nanos()).map_err(|_| format!("`timeout = \"{s}\"` is too long"))
}

#[cfg(test)]
mod tests {
    use super::{parse_duration, spec_arguments, SpecArg};

    #[test]
    fn spec_arguments_are_found() {
        let named = |spec| -> Vec<String> {
            spec_arguments(spec)
                .into_iter()
                .map(|a| match a {
                    SpecArg::Named(n) => n.to_owned(),
                    SpecArg::Positional(p) => format!("#{p}"),
                })
                .collect()
        };
        assert_eq!(named("03"), Vec::<String>::new());
        assert_eq!(named("$>5"), Vec::<String>::new(), "`$` as fill");
        assert_eq!(named("width$"), ["width"]);
        assert_eq!(named(">0w$.p$"), ["w", "p"]);
        assert_eq!(named("0w$"), ["w"]);
        assert_eq!(named(".*"), ["#.*"]);
        assert_eq!(named("1$"), ["#1$"]);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(250_000_000));
        assert_eq!(parse_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_duration("2m"), Ok(120_000_000_000));
        assert_eq!(parse_duration("500us"), Ok(500_000));
        assert_eq!(parse_duration(" 10 s "), Ok(10_000_000_000));
        assert_eq!(parse_duration("0.001ms"), Ok(1_000));
        assert_eq!(parse_duration("10"), Ok(10_000_000_000), "seconds");
        assert_eq!(parse_duration("1h"), Ok(3_600_000_000_000));
        for bad in ["", "ms", "10x", "1.s", ".5s", "1..2s", "-1s", "0s", "1e3ms"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_duration("99999999999999999999999m").is_err());
    }
}
