//! Parsing `#[synchronized(...)]` into [`RawArgs`]: every option as written,
//! with the span of its keyword, so that later checks can point at it.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{Error, Expr, Ident, LitBool, LitStr, Path, Result, Token};

/// The option keywords.
pub(crate) mod kw {
    syn::custom_keyword!(name);
    syn::custom_keyword!(external);
    syn::custom_keyword!(prefix);
    syn::custom_keyword!(lock_path);
    syn::custom_keyword!(fair);
    syn::custom_keyword!(blocking);
    syn::custom_keyword!(timeout);
    syn::custom_keyword!(semaphores);
    syn::custom_keyword!(mode);
    syn::custom_keyword!(read);
    syn::custom_keyword!(write);
    syn::custom_keyword!(distributed);
    syn::custom_keyword!(backend);
}

/// Every option, for "unknown option" errors.
pub(crate) const VALID_OPTIONS: &str = "a lock name (`\"mylock\"`), `name`, `external`, `prefix`, \
     `lock_path`, `fair`, `blocking`, `timeout`, `semaphores`, `mode`, `backend`, `distributed`, `crate`";

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

/// The options of one `#[synchronized(...)]`, unchecked.
#[derive(Default, Clone)]
pub(crate) struct RawArgs {
    pub(crate) name: Option<Opt<NameArg>>,
    pub(crate) external: Option<Opt<bool>>,
    pub(crate) prefix: Option<Opt<LitStr>>,
    pub(crate) lock_path: Option<Opt<Expr>>,
    pub(crate) fair: Option<Opt<bool>>,
    pub(crate) blocking: Option<Opt<bool>>,
    pub(crate) timeout: Option<Opt<LitStr>>,
    pub(crate) semaphores: Option<Opt<Path>>,
    pub(crate) mode: Option<Opt<ModeArg>>,
    pub(crate) distributed: Option<Opt<DistributedArg>>,
    /// `backend = "scheme://…"` or `backend = <expr>`.
    pub(crate) backend: Option<Opt<Expr>>,
    pub(crate) krate: Option<Opt<Path>>,
}

/// Stores an option, failing with "`what` given twice" at the repeat.
pub(crate) fn set_once<T>(slot: &mut Option<Opt<T>>, opt: Opt<T>, what: &str) -> Result<()> {
    if slot.is_some() {
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
            return set_once(&mut self.name, opt, "the lock name");
        }
        if input.peek(kw::name) {
            let span = input.parse::<kw::name>()?.span;
            equals(
                input,
                span,
                "name",
                "name = format!(\"instance-{}\", instance.uuid)",
            )?;
            let value = match input.parse::<Expr>()? {
                Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(lit),
                    attrs,
                }) if attrs.is_empty() => NameArg::Lit(lit),
                expr => NameArg::Expr(expr),
            };
            return set_once(&mut self.name, Opt { value, span, pos }, "the lock name");
        }
        if input.peek(kw::external) {
            let span = input.parse::<kw::external>()?.span;
            let value = flag(input, "external")?;
            return set_once(&mut self.external, Opt { value, span, pos }, "`external`");
        }
        if input.peek(kw::fair) {
            let span = input.parse::<kw::fair>()?.span;
            let value = flag(input, "fair")?;
            return set_once(&mut self.fair, Opt { value, span, pos }, "`fair`");
        }
        if input.peek(kw::blocking) {
            let span = input.parse::<kw::blocking>()?.span;
            let value = flag(input, "blocking")?;
            return set_once(&mut self.blocking, Opt { value, span, pos }, "`blocking`");
        }
        if input.peek(kw::prefix) {
            let span = input.parse::<kw::prefix>()?.span;
            equals(input, span, "prefix", "prefix = \"nova\"")?;
            let value = input.parse::<LitStr>().map_err(|e| {
                Error::new(
                    e.span(),
                    "`prefix` takes a string literal, e.g. `prefix = \"nova\"`",
                )
            })?;
            return set_once(&mut self.prefix, Opt { value, span, pos }, "`prefix`");
        }
        if input.peek(kw::lock_path) {
            let span = input.parse::<kw::lock_path>()?.span;
            equals(
                input,
                span,
                "lock_path",
                "lock_path = \"/var/lib/nova/tmp\"",
            )?;
            let value = input.parse::<Expr>()?;
            return set_once(&mut self.lock_path, Opt { value, span, pos }, "`lock_path`");
        }
        if input.peek(kw::timeout) {
            let span = input.parse::<kw::timeout>()?.span;
            equals(input, span, "timeout", "timeout = \"250ms\"")?;
            let value = input.parse::<LitStr>().map_err(|e| {
                Error::new(
                    e.span(),
                    format!(
                        "`timeout` takes a duration string, e.g. `timeout = \"250ms\"`: {}",
                        lockutils_duration::SYNTAX
                    ),
                )
            })?;
            return set_once(&mut self.timeout, Opt { value, span, pos }, "`timeout`");
        }
        if input.peek(kw::semaphores) {
            let span = input.parse::<kw::semaphores>()?.span;
            equals(input, span, "semaphores", "semaphores = crate::MY_LOCKS")?;
            let value = Path::parse_mod_style(input).map_err(|e| {
                Error::new(
                    e.span(),
                    "`semaphores` takes the path of a `static` `lockutils::Registry`, \
                     e.g. `semaphores = crate::MY_LOCKS`",
                )
            })?;
            return set_once(
                &mut self.semaphores,
                Opt { value, span, pos },
                "`semaphores`",
            );
        }
        if input.peek(kw::mode) {
            let span = input.parse::<kw::mode>()?.span;
            equals(input, span, "mode", "mode = read")?;
            let value = if input.peek(kw::read) {
                input.parse::<kw::read>()?;
                ModeArg::Read
            } else if input.peek(kw::write) {
                input.parse::<kw::write>()?;
                ModeArg::Write
            } else {
                return Err(input.error(
                    "`mode` is `read` (shared with other readers) or `write` (exclusive), \
                     e.g. `mode = read`",
                ));
            };
            return set_once(&mut self.mode, Opt { value, span, pos }, "`mode`");
        }
        if input.peek(kw::distributed) {
            let span = input.parse::<kw::distributed>()?.span;
            let value = if !input.peek(Token![=]) {
                DistributedArg::DefaultUrl
            } else {
                input.parse::<Token![=]>()?;
                if input.peek(LitBool) {
                    if input.parse::<LitBool>()?.value {
                        DistributedArg::DefaultUrl
                    } else {
                        DistributedArg::Off
                    }
                } else {
                    DistributedArg::Url(input.parse::<Expr>().map_err(|e| {
                        Error::new(
                            e.span(),
                            "`distributed` is a flag (`distributed`: the default coordination \
                             URL) or takes a coordination URL, e.g. \
                             `distributed = \"zookeeper://zk1:2181/lockutils\"`",
                        )
                    })?)
                }
            };
            return set_once(
                &mut self.distributed,
                Opt { value, span, pos },
                "`distributed`",
            );
        }
        if input.peek(kw::backend) {
            let span = input.parse::<kw::backend>()?.span;
            equals(
                input,
                span,
                "backend",
                "backend = \"zookeeper://zk1:2181/lockutils\"",
            )?;
            let value = input.parse::<Expr>()?;
            return set_once(&mut self.backend, Opt { value, span, pos }, "`backend`");
        }
        if input.peek(Token![crate]) {
            let span = input.parse::<Token![crate]>()?.span;
            equals(input, span, "crate", "crate = my_crate::lockutils")?;
            let value = if input.peek(LitStr) {
                input.parse::<LitStr>()?.parse_with(Path::parse_mod_style)?
            } else {
                Path::parse_mod_style(input)?
            };
            return set_once(&mut self.krate, Opt { value, span, pos }, "`crate`");
        }
        unknown(input)
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
    const OPTIONS: [&str; 12] = [
        "name",
        "external",
        "prefix",
        "lock_path",
        "fair",
        "blocking",
        "timeout",
        "semaphores",
        "mode",
        "distributed",
        "backend",
        "crate",
    ];
    OPTIONS
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
            let mut msg = format!("unknown option `{ident}`; expected one of {VALID_OPTIONS}");
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
