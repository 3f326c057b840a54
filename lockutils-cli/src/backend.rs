//! `--backend`: where locks live, resolved through the library's URL scheme
//! registry, so the command knows no engine by name. `file` (lock files in
//! the lock directory, the default), a coordination URL of any registered
//! scheme (`zookeeper://…`, `postgresql://…`, `file:///dir`), or a bare
//! scheme word (`zookeeper`) for the URL in `LOCKUTILS_COORDINATION_URL`.
//!
//! A coordination URL may carry a password (`zookeeper://svc:secret@zk1/app`).
//! It is never printed: clap would echo a rejected value in its error
//! message, so this value parser makes its own errors, showing the URL with
//! the password replaced by `***`.

use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;

use clap::builder::TypedValueParser;
use clap::error::ErrorKind;
use lockutils_core::backend::{self as core_backend, Backend, FileBackend};

use crate::Failure;

/// The environment variable a scheme word reads (the library's).
pub(crate) const URL_ENV: &str = core_backend::COORDINATION_URL_ENV;

/// Registers every engine this build has with the library's scheme
/// registry: the only place the command names engines, and only through
/// their `register` functions.
pub(crate) fn register_engines() {
    #[cfg(feature = "zookeeper")]
    lockutils_zookeeper::register();
    #[cfg(feature = "postgresql")]
    lockutils_postgres::register();
}

/// What `--backend` chose.
#[derive(Clone, Debug)]
pub(crate) enum Choice {
    /// Lock files in the lock directory (`--lock-path`, or the library's
    /// default), the library's `external` locks.
    LockDir,
    /// The backend of a coordination URL (from the registry, one per URL).
    Url(Arc<dyn Backend>),
}

impl Choice {
    /// The backend, with the lock directory and file mode options that only
    /// `--backend file` takes.
    pub(crate) fn open(
        &self,
        lock_path: Option<&Path>,
        file_mode: Option<u32>,
    ) -> Result<Arc<dyn Backend>, Failure> {
        match self {
            Choice::LockDir => {
                let files = FileBackend::new(lockutils_core::lock_path(lock_path));
                Ok(Arc::new(match file_mode {
                    Some(mode) => files.file_mode(mode),
                    None => files,
                }))
            }
            Choice::Url(backend) => {
                if let Some(dir) = lock_path {
                    return Err(Failure::usage(format!(
                        "--lock-path {} is for lock files (--backend file); a coordination \
                         URL says where its locks are: drop --lock-path, or change the URL",
                        dir.display()
                    )));
                }
                if file_mode.is_some() {
                    return Err(Failure::usage(
                        "--file-mode is for lock files (--backend file); with a file:// URL, \
                         give ?file_mode=OCTAL in the URL",
                    ));
                }
                Ok(Arc::clone(backend))
            }
        }
    }
}

/// Parses `--backend` values; see the module documentation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BackendParser;

impl TypedValueParser for BackendParser {
    type Value = Choice;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<Choice, clap::Error> {
        let env = std::env::var(URL_ENV).ok().filter(|u| !u.is_empty());
        let parsed = match value.to_str() {
            Some(text) => parse(text, env.as_deref()),
            None => Err("--backend is not valid UTF-8".to_owned()),
        };
        parsed.map_err(|message| {
            let mut cmd = cmd.clone();
            cmd.error(ErrorKind::ValueValidation, message)
        })
    }
}

/// `--backend TEXT`, with `env_url` the value of `LOCKUTILS_COORDINATION_URL`.
/// The error is one sentence with any password masked.
pub(crate) fn parse(text: &str, env_url: Option<&str>) -> Result<Choice, String> {
    if text == "file" {
        return Ok(Choice::LockDir);
    }
    if text.contains("://") {
        return resolve(text, "");
    }
    if core_backend::scheme_of(&format!("{text}:")) != Some(text) {
        return Err(unknown(text));
    }
    // A scheme word: the URL from the environment, if it is of that scheme.
    let Some(url) = env_url else {
        return Err(format!(
            "--backend {text} takes the coordination URL from {URL_ENV}, which is not set; \
             set it (e.g. {text}://HOST/…) or give the URL to --backend"
        ));
    };
    let scheme = core_backend::scheme_of(url).unwrap_or_default();
    if !same_engine(scheme, text) {
        return Err(format!(
            "--backend {text} takes the coordination URL from {URL_ENV}, which is {} (a \
             {scheme}:// URL); give --backend {scheme} or the URL itself",
            redact(url)
        ));
    }
    resolve(url, &format!(" (from {URL_ENV})"))
}

/// Whether URL scheme `scheme` is what the word `word` names (`postgres`
/// and `postgresql` are one engine).
fn same_engine(scheme: &str, word: &str) -> bool {
    let canon = |s: &str| if s == "postgres" { "postgresql" } else { s }.to_owned();
    canon(scheme) == canon(word)
}

/// The backend of `url` through the registry; `source` says where the URL
/// came from, for messages.
fn resolve(url: &str, source: &str) -> Result<Choice, String> {
    match core_backend::backend_for_url(url) {
        Ok(b) => Ok(Choice::Url(b)),
        Err(lockutils_core::Error::InvalidUrl { reason, .. }) => Err(format!(
            "invalid --backend {}{source}: {reason}",
            redact(url)
        )),
        Err(lockutils_core::Error::FeatureDisabled { feature, .. }) => Err(format!(
            "this lockutils was built without the {feature} backend, so --backend {}{source} \
             cannot be used; build it with `cargo install --path lockutils-cli --features \
             {feature}`, or use --backend file (the default) for lock files",
            redact(url)
        )),
        Err(lockutils_core::Error::UnknownScheme { .. }) => Err(unknown(url)),
        Err(e) => Err(format!(
            "invalid --backend {}{source}: {}",
            redact(url),
            crate::describe(&e)
        )),
    }
}

fn unknown(text: &str) -> String {
    let mut schemes: Vec<String> = core_backend::registered_schemes()
        .into_iter()
        .filter(|s| *s != "file")
        .map(|s| format!("`{s}://…`"))
        .collect();
    schemes.sort();
    let urls = if schemes.is_empty() {
        String::from("`file:///DIR`")
    } else {
        format!("{}, `file:///DIR`", schemes.join(", "))
    };
    let missing = core_backend::engines_not_registered();
    let not_built = if missing.is_empty() {
        String::new()
    } else {
        let urls: Vec<String> = missing.iter().map(|(s, _)| format!("`{s}://…`")).collect();
        let features: Vec<&str> = missing.iter().map(|(_, f)| *f).collect();
        let verb = if urls.len() == 1 { "needs" } else { "need" };
        format!(
            "; {} {verb} this command built with `--features {}`",
            urls.join(" and "),
            features.join(",")
        )
    };
    format!(
        "unknown backend `{}`: expected `file` (lock files, the default), a coordination \
         URL ({urls}), or a scheme word such as `zookeeper` for the URL in {URL_ENV}{not_built}",
        redact(text)
    )
}

/// `text` with the password of a `scheme://USER:PASSWORD@…` URL replaced by
/// `***` (and a lone `USER@…` kept): for every message that shows a URL the
/// library has not parsed.
pub(crate) fn redact(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else {
        return text.to_owned();
    };
    let start = scheme_end + 3;
    let rest = &text[start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        // An `@` only past the first `/`, `?` or `#`: a password holding one
        // of them unescaped, or an `@` in the path. Hidden up to the last
        // `@`: more than the password, maybe, never less.
        return match rest.rfind('@') {
            Some(at) => format!("{}***{}", &text[..start], &rest[at..]),
            None => text.to_owned(),
        };
    };
    match rest[..at].split_once(':') {
        Some((user, _password)) => format!("{}{user}:***{}", &text[..start], &rest[at..]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            redact("zookeeper://svc:s3cret@zk1:2181,zk2/app?layout=kazoo"),
            "zookeeper://svc:***@zk1:2181,zk2/app?layout=kazoo"
        );
        // `@` in the password: the last `@` of the authority ends it.
        assert_eq!(redact("zookeeper://u:p@ss@h/r"), "zookeeper://u:***@h/r");
        // An `@` only after the authority may end a password holding an
        // unescaped `/` or `?`: everything before it is hidden.
        assert_eq!(redact("zookeeper://h/r@x"), "zookeeper://***@x");
        assert_eq!(redact("zookeeper://u:pw/x@h/r"), "zookeeper://***@h/r");
        assert_eq!(
            redact("postgresql://u:1234/SECRET@h:5432/d"),
            "postgresql://***@h:5432/d"
        );
        assert_eq!(
            redact("postgresql://u:x?SECRET@h/d"),
            "postgresql://***@h/d"
        );
        assert_eq!(redact("redis://u:pw@h"), "redis://u:***@h");
        assert_eq!(redact("zookeeper://user@h"), "zookeeper://user@h");
        assert_eq!(redact("file"), "file");
        assert_eq!(redact("zookeeper://:pw@h"), "zookeeper://:***@h");
    }

    #[test]
    fn file_and_unknown_backends() {
        register_engines();
        assert!(matches!(parse("file", None), Ok(Choice::LockDir)));
        let e = parse("redis://u:topsecret@x", None).unwrap_err();
        assert!(e.contains("unknown backend `redis://u:***@x`"), "{e}");
        assert!(!e.contains("topsecret"), "{e}");
        let e = parse("no such thing", None).unwrap_err();
        assert!(e.contains("unknown backend"), "{e}");
    }

    #[test]
    fn a_scheme_word_needs_the_environment_and_its_scheme() {
        let e = parse("zookeeper", None).unwrap_err();
        assert!(e.contains(URL_ENV), "{e}");
        let e = parse("zookeeper", Some("file:///tmp/x")).unwrap_err();
        assert!(e.contains("--backend file"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().display());
        let Ok(Choice::Url(b)) = parse(&url, None) else {
            panic!()
        };
        assert_eq!(b.kind(), "file");
    }

    #[cfg(feature = "zookeeper")]
    #[test]
    fn urls_are_resolved_by_the_registry_and_their_errors_masked() {
        register_engines();
        let Ok(Choice::Url(b)) = parse("zookeeper://svc:topsecret@zk1:2181/app", None) else {
            panic!()
        };
        assert_eq!(b.kind(), "zookeeper");
        assert!(!b.url().contains("topsecret"));
        let Ok(Choice::Url(b)) = parse("zookeeper", Some("zookeeper://zk9/from-env")) else {
            panic!()
        };
        assert!(b.url().contains("zk9"), "{}", b.url());
        let e = parse("zookeeper://svc:topsecret@zk1:port/app", None).unwrap_err();
        assert!(!e.contains("topsecret"), "{e}");
        assert!(
            e.starts_with("invalid --backend zookeeper://svc:***@zk1:port/app: "),
            "{e}"
        );
        let e = parse("zookeeper", Some("zookeeper://u:topsecret@h?layout=x")).unwrap_err();
        assert!(!e.contains("topsecret"), "{e}");
        assert!(e.contains(&format!("(from {URL_ENV})")), "{e}");
    }

    #[cfg(feature = "postgresql")]
    #[test]
    fn postgres_urls_and_both_scheme_words() {
        register_engines();
        let Ok(Choice::Url(b)) = parse("postgresql://svc:topsecret@db1/app", None) else {
            panic!()
        };
        assert_eq!(b.kind(), "postgresql");
        assert!(!b.url().contains("topsecret"));
        let Ok(Choice::Url(b)) = parse("postgresql", Some("postgres://db9:6000/x")) else {
            panic!()
        };
        assert!(b.url().contains("6000"), "{}", b.url());
        let e = parse("postgresql://svc:topsecret@db1:port/app", None).unwrap_err();
        assert!(!e.contains("topsecret"), "{e}");
        assert!(e.contains("port"), "{e}");
    }

    #[cfg(not(feature = "zookeeper"))]
    #[test]
    fn an_engine_left_out_is_named_with_the_fix() {
        register_engines();
        let e = parse("zookeeper://u:topsecret@zk1:2181/app", None).unwrap_err();
        assert!(e.contains("built without the zookeeper backend"), "{e}");
        assert!(!e.contains("topsecret"), "{e}");
    }
}
