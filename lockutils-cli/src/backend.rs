//! `--backend`: where locks live. `file` (lock files in a lock directory),
//! or ZooKeeper (`zookeeper://HOST:PORT/ROOT`, or `zookeeper` for the URL in
//! `LOCKUTILS_COORDINATION_URL`) in builds with the `zookeeper` feature.
//!
//! A coordination URL may carry a password (`zookeeper://svc:secret@zk1/app`).
//! It is never printed: clap would echo a rejected value in its error
//! message, so this value parser makes its own errors, showing the URL with
//! the password replaced by `***`.

use std::ffi::OsStr;

use clap::builder::TypedValueParser;
use clap::error::ErrorKind;

/// The environment variable `--backend zookeeper` reads (the library's).
pub(crate) const URL_ENV: &str = "LOCKUTILS_COORDINATION_URL";

/// Where locks live.
#[derive(Clone, Debug)]
pub(crate) enum Backend {
    /// Lock files in a lock directory.
    File,
    /// ZooKeeper nodes under the URL's root.
    #[cfg(feature = "zookeeper")]
    ZooKeeper(lockutils_zookeeper::CoordinationUrl),
    /// PostgreSQL advisory locks in the URL's database.
    #[cfg(feature = "postgresql")]
    Postgres(lockutils_postgres::PgUrl),
}

/// Parses `--backend` values; see the module documentation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BackendParser;

impl TypedValueParser for BackendParser {
    type Value = Backend;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<Backend, clap::Error> {
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
pub(crate) fn parse(text: &str, env_url: Option<&str>) -> Result<Backend, String> {
    if text == "file" {
        return Ok(Backend::File);
    }
    if text == "postgresql" || text.starts_with("postgresql://") || text.starts_with("postgres://")
    {
        return postgres_url(text, env_url);
    }
    let (url, from_env) = if text == "zookeeper" {
        match env_url {
            Some(url) => (url, true),
            None => {
                return Err(format!(
                    "--backend zookeeper takes the coordination URL from {URL_ENV}, which is \
                     not set; set it (e.g. zookeeper://127.0.0.1:2181/lockutils) or give \
                     --backend zookeeper://HOST:PORT/ROOT"
                ))
            }
        }
    } else if text.starts_with("zookeeper://") {
        (text, false)
    } else {
        return Err(format!(
            "unknown backend `{}`: expected `file` (lock files, the default), \
             `zookeeper://[USER:PASSWORD@]HOST:PORT[/ROOT]`, \
             `postgresql://[USER[:PASSWORD]@]HOST[:PORT]/DBNAME`, or `zookeeper` / \
             `postgresql` (the URL in {URL_ENV})",
            redact(text)
        ));
    };
    zookeeper_url(url, from_env)
}

#[cfg(feature = "zookeeper")]
fn zookeeper_url(url: &str, from_env: bool) -> Result<Backend, String> {
    let source = if from_env {
        format!(" (from {URL_ENV})")
    } else {
        String::new()
    };
    match lockutils_zookeeper::CoordinationUrl::parse_for(url, "") {
        Ok(url) => Ok(Backend::ZooKeeper(url)),
        // The library shows the URL with its password masked.
        Err(lockutils_core::Error::Backend {
            backend, reason, ..
        }) => Err(format!("invalid --backend {backend}{source}: {reason}")),
        Err(e) => Err(format!("invalid --backend {}{source}: {e}", redact(url))),
    }
}

#[cfg(not(feature = "zookeeper"))]
fn zookeeper_url(url: &str, _from_env: bool) -> Result<Backend, String> {
    Err(format!(
        "this lockutils was built without the ZooKeeper backend, so --backend {} cannot \
         be used; build it with `cargo install --path lockutils-cli --features zookeeper`, \
         or use --backend file (the default) for lock files",
        redact(url)
    ))
}

/// `--backend postgresql://…`, or `postgresql` for the URL in the
/// environment.
fn postgres_url(text: &str, env_url: Option<&str>) -> Result<Backend, String> {
    let (url, source) = if text == "postgresql" {
        match env_url {
            Some(url) => (url, format!(" (from {URL_ENV})")),
            None => {
                return Err(format!(
                    "--backend postgresql takes the coordination URL from {URL_ENV}, which is \
                     not set; set it (e.g. postgresql://locker@127.0.0.1/app) or give \
                     --backend postgresql://USER@HOST:PORT/DBNAME"
                ))
            }
        }
    } else {
        (text, String::new())
    };
    postgres_parse(url, &source)
}

#[cfg(feature = "postgresql")]
fn postgres_parse(url: &str, source: &str) -> Result<Backend, String> {
    match lockutils_postgres::PgUrl::parse_for(url, "") {
        Ok(url) => Ok(Backend::Postgres(url)),
        Err(lockutils_core::Error::Backend {
            backend, reason, ..
        }) => Err(format!("invalid --backend {backend}{source}: {reason}")),
        Err(e) => Err(format!("invalid --backend {}{source}: {e}", redact(url))),
    }
}

#[cfg(not(feature = "postgresql"))]
fn postgres_parse(url: &str, _source: &str) -> Result<Backend, String> {
    Err(format!(
        "this lockutils was built without the PostgreSQL backend, so --backend {} cannot \
         be used; build it with `cargo install --path lockutils-cli --features postgresql`, \
         or use --backend file (the default) for lock files",
        redact(url)
    ))
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
        return text.to_owned();
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
        // `@` after the authority is not userinfo.
        assert_eq!(redact("zookeeper://h/r@x"), "zookeeper://h/r@x");
        assert_eq!(redact("redis://u:pw@h"), "redis://u:***@h");
        assert_eq!(redact("zookeeper://user@h"), "zookeeper://user@h");
        assert_eq!(redact("file"), "file");
        assert_eq!(redact("zookeeper://:pw@h"), "zookeeper://:***@h");
    }

    #[test]
    fn file_and_unknown_backends() {
        assert!(matches!(parse("file", None), Ok(Backend::File)));
        let e = parse("redis://u:topsecret@x", None).unwrap_err();
        assert!(e.contains("unknown backend `redis://u:***@x`"), "{e}");
        assert!(!e.contains("topsecret"), "{e}");
        assert!(e.contains("zookeeper://"), "{e}");
    }

    #[test]
    fn zookeeper_from_the_environment_needs_it_set() {
        let e = parse("zookeeper", None).unwrap_err();
        assert!(e.contains(URL_ENV), "{e}");
    }

    #[cfg(feature = "zookeeper")]
    #[test]
    fn zookeeper_urls_are_parsed_and_their_errors_masked() {
        let Ok(Backend::ZooKeeper(u)) = parse("zookeeper://svc:topsecret@zk1:2181/app", None)
        else {
            panic!()
        };
        assert_eq!(u.root(), "/app");
        assert!(!u.to_string().contains("topsecret"));
        let Ok(Backend::ZooKeeper(u)) = parse("zookeeper", Some("zookeeper://zk9/from-env")) else {
            panic!()
        };
        assert_eq!(u.hosts(), ["zk9:2181"]);
        let e = parse("zookeeper://svc:topsecret@zk1:port/app", None).unwrap_err();
        assert!(!e.contains("topsecret"), "{e}");
        assert!(
            e.starts_with("invalid --backend zookeeper://svc:***@zk1:port/app: "),
            "{e}"
        );
        assert!(e.contains("port `port`"), "{e}");
        let e = parse("zookeeper", Some("zookeeper://u:topsecret@h?layout=x")).unwrap_err();
        assert!(!e.contains("topsecret"), "{e}");
        assert!(e.contains(&format!("(from {URL_ENV})")), "{e}");
    }

    #[cfg(feature = "postgresql")]
    #[test]
    fn postgres_urls_are_parsed_and_their_errors_masked() {
        let Ok(Backend::Postgres(u)) = parse("postgresql://svc:topsecret@db1/app", None) else {
            panic!()
        };
        assert_eq!(u.dbname(), Some("app"));
        assert!(!u.to_string().contains("topsecret"));
        let Ok(Backend::Postgres(u)) = parse("postgresql", Some("postgres://db9:6000/x")) else {
            panic!()
        };
        assert_eq!(u.port(), 6000);
        let e = parse("postgresql://svc:topsecret@db1:port/app", None).unwrap_err();
        assert!(!e.contains("topsecret"), "{e}");
        assert!(e.contains("port `port`"), "{e}");
        assert!(parse("postgresql", None).unwrap_err().contains(URL_ENV));
    }

    #[cfg(not(feature = "zookeeper"))]
    #[test]
    fn zookeeper_is_refused_without_the_feature() {
        let e = parse("zookeeper://u:topsecret@zk1:2181/app", None).unwrap_err();
        assert!(e.contains("built without the ZooKeeper backend"), "{e}");
        assert!(!e.contains("topsecret"), "{e}");
    }
}
