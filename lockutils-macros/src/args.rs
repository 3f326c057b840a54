//! Parse, step one of `#[synchronized]`: the attribute's tokens into
//! [`RawArgs`], every option as written with the span of its keyword, so that
//! validation can point at it. Nothing here looks at the function.
//!
//! The options are listed once, in the [`options!`] table below: it declares
//! the fields of [`RawArgs`], the keyword list that "unknown option" errors
//! and their "did you mean" hints draw from, and the parser of each value.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{Error, Expr, Ident, LitBool, LitStr, Path, Result, Token};

/// One option as written: its value, the span of its keyword (or of the
/// literal, for a positional name) and its position among the options.
#[derive(Clone)]
pub(crate) struct Opt<T> {
    pub(crate) value: T,
    pub(crate) span: Span,
    pub(crate) pos: usize,
}

/// The lock name as written.
#[derive(Clone)]
pub(crate) enum NameArg {
    /// `"literal"`, positional or as `name = "literal"`.
    Lit(LitStr),
    /// `name = <expr>`.
    Expr(Expr),
}

/// `mode = read | write`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ModeArg {
    Read,
    Write,
}

/// `distributed` as written.
#[derive(Clone)]
pub(crate) enum DistributedArg {
    /// `distributed = false`: an ordinary lock.
    Off,
    /// `distributed` or `distributed = true`: on the default coordination URL.
    DefaultUrl,
    /// `distributed = "zookeeper://..."` or `distributed = <expr>`: on this
    /// coordination URL.
    Url(Expr),
}

/// The option table: `"keyword" => field: Type = parser;`, where the parser
/// is a `fn(ParseStream, Span) -> Result<Type>` given the input after the
/// keyword and the keyword's span. Declares [`RawArgs`], [`KEYWORDS`] and the
/// dispatch from a keyword to its parser.
macro_rules! options {
    ($( $(#[$doc:meta])* $key:literal => $field:ident: $ty:ty = $parse:expr; )*) => {
        /// The options of one `#[synchronized(...)]`, as written, unchecked.
        #[derive(Default, Clone)]
        pub(crate) struct RawArgs {
            $( $(#[$doc])* pub(crate) $field: Option<Opt<$ty>>, )*
        }

        /// Every option keyword, in table order.
        pub(crate) const KEYWORDS: &[&str] = &[$($key),*];

        impl RawArgs {
            /// Parses the value of option `key`, whose keyword (at `span`)
            /// was just read, and stores it; `None` if `key` is no option.
            fn parse_value(
                &mut self,
                key: &str,
                span: Span,
                pos: usize,
                input: ParseStream<'_>,
            ) -> Option<Result<()>> {
                match key {
                    $($key => {
                        let parse: fn(ParseStream<'_>, Span) -> Result<$ty> = $parse;
                        Some(parse(input, span).and_then(|value| {
                            set_once(&mut self.$field, Opt { value, span, pos }, $key)
                        }))
                    })*
                    _ => None,
                }
            }
        }
    };
}

options! {
    /// `"name"` (positional) or `name = "literal" | <expr>`.
    "name" => name: NameArg = name_value;
    "external" => external: bool = |input, _| flag(input, "external");
    "prefix" => prefix: LitStr = |input, key| {
        equals(input, key, "prefix", "prefix = \"nova\"")?;
        input.parse::<LitStr>().map_err(|e| {
            Error::new(e.span(), "`prefix` takes a string literal, e.g. `prefix = \"nova\"`")
        })
    };
    "lock_path" => lock_path: Expr = |input, key| {
        equals(input, key, "lock_path", "lock_path = \"/var/lib/nova/tmp\"")?;
        input.parse()
    };
    "fair" => fair: bool = |input, _| flag(input, "fair");
    "blocking" => blocking: bool = |input, _| flag(input, "blocking");
    "timeout" => timeout: LitStr = timeout_value;
    "semaphores" => semaphores: Path = semaphores_value;
    "mode" => mode: ModeArg = mode_value;
    "backend" => backend: Expr = |input, key| {
        equals(input, key, "backend", "backend = \"zookeeper://zk1:2181/lockutils\"")?;
        input.parse()
    };
    "distributed" => distributed: DistributedArg = distributed_value;
    /// The path of the facade crate (`crate = my::lockutils`).
    "crate" => krate: Path = crate_value;
}

/// "Unknown option" errors list these.
pub(crate) fn valid_options() -> String {
    let keys: Vec<String> = KEYWORDS.iter().map(|k| format!("`{k}`")).collect();
    format!("a lock name (`\"mylock\"`), {}", keys.join(", "))
}

/// Stores an option, failing with "`key` given twice" at the repeat.
pub(crate) fn set_once<T>(slot: &mut Option<Opt<T>>, opt: Opt<T>, key: &str) -> Result<()> {
    if slot.is_some() {
        let what = match key {
            "name" => "the lock name".to_owned(),
            _ => format!("`{key}`"),
        };
        return Err(Error::new(
            opt.span,
            format!("{what} given twice; remove one of them"),
        ));
    }
    *slot = Some(opt);
    Ok(())
}

impl Parse for RawArgs {
    fn parse(input: ParseStream<'_>) -> Result<Self> {
        let mut args = RawArgs::default();
        let mut pos = 0;
        while !input.is_empty() {
            args.parse_one(input, pos)?;
            pos += 1;
            if input.is_empty() {
                break;
            }
            if !input.peek(Token![,]) {
                return Err(input.error("expected `,` between options"));
            }
            input.parse::<Token![,]>()?;
        }
        Ok(args)
    }
}

impl RawArgs {
    fn parse_one(&mut self, input: ParseStream<'_>, pos: usize) -> Result<()> {
        if input.peek(LitStr) {
            let lit: LitStr = input.parse()?;
            let opt = Opt {
                span: lit.span(),
                value: NameArg::Lit(lit),
                pos,
            };
            return set_once(&mut self.name, opt, "name");
        }
        let fork = input.fork();
        if let Ok(key) = Ident::parse_any(&fork) {
            let word = key.to_string();
            if KEYWORDS.contains(&word.as_str()) {
                Ident::parse_any(input)?;
                if let Some(done) = self.parse_value(&word, key.span(), pos, input) {
                    return done;
                }
            }
        }
        unknown(input)
    }
}

fn name_value(input: ParseStream<'_>, key: Span) -> Result<NameArg> {
    equals(
        input,
        key,
        "name",
        "name = format!(\"instance-{}\", instance.uuid)",
    )?;
    Ok(match input.parse::<Expr>()? {
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(lit),
            attrs,
        }) if attrs.is_empty() => NameArg::Lit(lit),
        expr => NameArg::Expr(expr),
    })
}

fn timeout_value(input: ParseStream<'_>, key: Span) -> Result<LitStr> {
    equals(input, key, "timeout", "timeout = \"250ms\"")?;
    input.parse::<LitStr>().map_err(|e| {
        Error::new(
            e.span(),
            format!(
                "`timeout` takes a duration string, e.g. `timeout = \"250ms\"`: {}",
                lockutils_duration::SYNTAX
            ),
        )
    })
}

fn semaphores_value(input: ParseStream<'_>, key: Span) -> Result<Path> {
    equals(input, key, "semaphores", "semaphores = crate::MY_LOCKS")?;
    Path::parse_mod_style(input).map_err(|e| {
        Error::new(
            e.span(),
            "`semaphores` takes the path of a `static` `lockutils::Registry`, \
             e.g. `semaphores = crate::MY_LOCKS`",
        )
    })
}

fn mode_value(input: ParseStream<'_>, key: Span) -> Result<ModeArg> {
    equals(input, key, "mode", "mode = read")?;
    let fork = input.fork();
    let mode = match fork.parse::<Ident>() {
        Ok(word) if word == "read" => ModeArg::Read,
        Ok(word) if word == "write" => ModeArg::Write,
        _ => {
            return Err(input.error(
                "`mode` is `read` (shared with other readers) or `write` (exclusive), \
                 e.g. `mode = read`",
            ))
        }
    };
    input.parse::<Ident>()?;
    Ok(mode)
}

fn distributed_value(input: ParseStream<'_>, _key: Span) -> Result<DistributedArg> {
    if !input.peek(Token![=]) {
        return Ok(DistributedArg::DefaultUrl);
    }
    input.parse::<Token![=]>()?;
    if input.peek(LitBool) {
        return Ok(if input.parse::<LitBool>()?.value {
            DistributedArg::DefaultUrl
        } else {
            DistributedArg::Off
        });
    }
    input.parse::<Expr>().map(DistributedArg::Url).map_err(|e| {
        Error::new(
            e.span(),
            "`distributed` is a flag (`distributed`: the default coordination \
             URL) or takes a coordination URL, e.g. \
             `distributed = \"zookeeper://zk1:2181/lockutils\"`",
        )
    })
}

fn crate_value(input: ParseStream<'_>, key: Span) -> Result<Path> {
    equals(input, key, "crate", "crate = my_crate::lockutils")?;
    if input.peek(LitStr) {
        input.parse::<LitStr>()?.parse_with(Path::parse_mod_style)
    } else {
        Path::parse_mod_style(input)
    }
}

/// A flag: `external` alone means `true`; `external = false` is explicit.
fn flag(input: ParseStream<'_>, name: &str) -> Result<bool> {
    if !input.peek(Token![=]) {
        return Ok(true);
    }
    input.parse::<Token![=]>()?;
    input.parse::<LitBool>().map(|b| b.value).map_err(|e| {
        Error::new(
            e.span(),
            format!("`{name}` is a flag: write `{name}`, `{name} = true` or `{name} = false`"),
        )
    })
}

/// The `=` of a valued option, with an example in the error (spanned at the
/// option's keyword).
fn equals(input: ParseStream<'_>, key: Span, name: &str, example: &str) -> Result<()> {
    if input.peek(Token![=]) {
        input.parse::<Token![=]>()?;
        return Ok(());
    }
    Err(Error::new(
        key,
        format!("`{name}` takes a value, e.g. `{example}`"),
    ))
}

/// The option a misspelled word most likely meant: within two edits, and
/// fewer than a third of its letters.
fn closest(word: &str) -> Option<&'static str> {
    KEYWORDS
        .iter()
        .map(|o| (edit_distance(word, o), *o))
        .filter(|&(d, o)| d > 0 && d <= 2 && d * 3 < o.len())
        .min()
        .map(|(_, o)| o)
}

/// Levenshtein distance.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Anything else: an unknown option, or a name that is not a string literal.
fn unknown(input: ParseStream<'_>) -> Result<()> {
    let fork = input.fork();
    if let Ok(ident) = Ident::parse_any(&fork) {
        let option_like = fork.is_empty() || fork.peek(Token![,]) || fork.peek(Token![=]);
        if option_like {
            let mut msg = format!(
                "unknown option `{ident}`; expected one of {}",
                valid_options()
            );
            let word = ident.to_string();
            let hint = match (closest(&word), word.as_str()) {
                (Some(near), _) => format!("; did you mean `{near}`?"),
                (None, "lock_file_prefix") => {
                    " (oslo's `lock_file_prefix` is `prefix` here)".into()
                }
                (None, "delay") => " (oslo's `delay` has no equivalent: waiters wake as soon as \
                                    the lock is free)"
                    .into(),
                (None, "shared" | "reader") => " (for a shared lock write `mode = read`)".into(),
                (None, "zookeeper" | "zk") => {
                    " (for a lock on ZooKeeper write `distributed`)".into()
                }
                (None, "url" | "backend_url" | "coordination_url") => {
                    " (a lock's coordination URL is written \
                     `backend = \"zookeeper://host:2181/root\"`)"
                        .into()
                }
                (None, _) if !fork.peek(Token![=]) => {
                    format!("; a lock name computed at run time is written `name = {ident}`")
                }
                (None, _) => String::new(),
            };
            msg.push_str(&hint);
            return Err(Error::new(ident.span(), msg));
        }
    }
    let expr: Expr = input.parse()?;
    Err(Error::new_spanned(
        expr,
        "the lock name must be a string literal, e.g. `\"mylock\"` or `\"instance-{id}\"`; \
         for a name computed at run time write `name = <expr>`",
    ))
}

#[cfg(test)]
mod tests {
    use super::{closest, valid_options, RawArgs, KEYWORDS};
    use quote::quote;

    #[test]
    fn every_keyword_parses_and_is_listed_once() {
        let args: RawArgs = syn::parse2(quote!(
            name = "x",
            external,
            prefix = "p",
            lock_path = "/tmp",
            fair,
            blocking = false,
            timeout = "1s",
            semaphores = crate::L,
            mode = read,
            backend = "file:///tmp",
            distributed,
            crate = my::lockutils
        ))
        .unwrap();
        assert!(args.name.is_some() && args.krate.is_some() && args.distributed.is_some());
        let listed = valid_options();
        for key in KEYWORDS {
            assert_eq!(listed.matches(&format!("`{key}`")).count(), 1, "{key}");
        }
        assert_eq!(closest("extrnal"), Some("external"));
        assert_eq!(closest("crat"), Some("crate"));
    }
}
