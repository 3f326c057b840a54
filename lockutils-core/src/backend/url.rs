//! Coordination URLs (tooz style) and the scheme registry: an engine crate
//! registers its scheme; a URL picks the engine at run time.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use super::{Backend, FileBackend};
use crate::error::{Error, Result};

/// The environment variable holding the process's default coordination URL.
pub const COORDINATION_URL_ENV: &str = "LOCKUTILS_COORDINATION_URL";

/// Builds a backend from a coordination URL of its scheme; `Err` is the
/// reason the URL is unusable, with the fix.
pub type BackendFactory = fn(&str) -> std::result::Result<Arc<dyn Backend>, String>;

/// Schemes of engines that live in other crates, and the `lockutils` feature
/// that brings each in: a URL of one of these, unregistered, is a feature
/// that is not enabled rather than a typo.
const KNOWN_ENGINES: &[(&str, &str)] = &[
    ("zookeeper", "zookeeper"),
    ("postgresql", "postgresql"),
    ("postgres", "postgresql"),
];

fn schemes() -> &'static RwLock<HashMap<&'static str, BackendFactory>> {
    static SCHEMES: OnceLock<RwLock<HashMap<&'static str, BackendFactory>>> = OnceLock::new();
    SCHEMES.get_or_init(|| {
        let mut map: HashMap<&'static str, BackendFactory> = HashMap::new();
        map.insert("file", file_factory);
        RwLock::new(map)
    })
}

/// One backend per URL per process: a URL names a session (a connection, a
/// directory), which every lock on it shares.
fn cache() -> &'static Mutex<HashMap<String, Arc<dyn Backend>>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<dyn Backend>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

static DEFAULT_URL: RwLock<Option<String>> = RwLock::new(None);

/// Registers the engine for URLs of `scheme` (replacing any earlier one).
/// Engine crates offer a `register()` that calls this; the `lockutils`
/// facade registers every engine whose feature is enabled.
///
/// ```
/// use std::sync::Arc;
/// use lockutils_core::backend::{register_scheme, backend_for_url, Backend, FileBackend};
///
/// fn scratch(url: &str) -> Result<Arc<dyn Backend>, String> {
///     let dir = url.strip_prefix("scratch://").ok_or("expected scratch://DIR")?;
///     Ok(Arc::new(FileBackend::new(std::env::temp_dir().join(dir))))
/// }
/// register_scheme("scratch", scratch);
/// assert_eq!(backend_for_url("scratch://doc-register").unwrap().kind(), "file");
/// ```
pub fn register_scheme(scheme: &'static str, factory: BackendFactory) {
    schemes()
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(scheme, factory);
}

/// The schemes registered so far (`file` always), sorted: for messages that
/// list what a URL may be.
pub fn registered_schemes() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = schemes()
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .keys()
        .copied()
        .collect();
    all.sort_unstable();
    all
}

/// The engines this crate knows of whose scheme nobody has registered, as
/// `(scheme, feature)` (one entry per engine, sorted): what a build without
/// those features lacks, for messages that say how to get it. An engine's
/// own scheme is its feature's name; aliases (`postgres`) are left out.
///
/// ```
/// let missing = lockutils_core::backend::engines_not_registered();
/// assert!(missing.contains(&("zookeeper", "zookeeper")), "{missing:?}");
/// ```
pub fn engines_not_registered() -> Vec<(&'static str, &'static str)> {
    let registered = registered_schemes();
    let mut missing: Vec<(&'static str, &'static str)> = KNOWN_ENGINES
        .iter()
        .copied()
        .filter(|(scheme, feature)| scheme == feature && !registered.contains(scheme))
        .collect();
    missing.sort_unstable();
    missing
}

/// The scheme of a URL (`zookeeper` for `zookeeper://h/`), if it has one.
pub fn scheme_of(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once(':')?;
    let ok = !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    ok.then_some(scheme)
}

/// The URL with any `user:password@` removed, for messages.
pub(crate) fn redact(url: &str) -> Cow<'_, str> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Cow::Borrowed(url);
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => Cow::Owned(format!("{scheme}://{}", &rest[at + 1..])),
        None => Cow::Borrowed(url),
    }
}

/// The backend for a coordination URL: one per URL per process, built by
/// the engine registered for its scheme.
///
/// # Errors
/// - [`Error::UnknownScheme`] for a scheme no engine knows;
/// - [`Error::FeatureDisabled`] for an engine whose feature is off;
/// - [`Error::InvalidUrl`] for a URL its engine refuses.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let url = format!("file://{}", dir.path().display());
/// let files = lockutils_core::backend::backend_for_url(&url).unwrap();
/// assert_eq!(files.url(), url);
/// let err = lockutils_core::backend::backend_for_url("etcd3://h:2379").unwrap_err();
/// assert!(matches!(err, lockutils_core::Error::UnknownScheme { .. }), "{err}");
/// ```
pub fn backend_for_url(url: &str) -> Result<Arc<dyn Backend>> {
    resolve(url, "")
}

/// As [`backend_for_url`], naming the lock in errors.
pub(crate) fn resolve(url: &str, lock: &str) -> Result<Arc<dyn Backend>> {
    if let Some(b) = cache().lock().unwrap_or_else(|e| e.into_inner()).get(url) {
        return Ok(b.clone());
    }
    let shown = redact(url).into_owned();
    let Some(scheme) = scheme_of(url) else {
        return Err(Error::InvalidUrl {
            name: lock.to_owned(),
            url: shown,
            reason: "not a coordination URL: expected SCHEME://…, \
                     such as file:///var/lib/app/locks or zookeeper://host:2181/root"
                .into(),
        });
    };
    let factory = schemes()
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(scheme)
        .copied();
    let Some(factory) = factory else {
        return Err(match KNOWN_ENGINES.iter().find(|(s, _)| *s == scheme) {
            Some((_, feature)) => Error::FeatureDisabled {
                name: lock.to_owned(),
                url: shown,
                feature,
            },
            None => Error::UnknownScheme {
                name: lock.to_owned(),
                url: shown,
                scheme: scheme.to_owned(),
            },
        });
    };
    let backend = factory(url).map_err(|reason| Error::InvalidUrl {
        name: lock.to_owned(),
        url: shown,
        reason,
    })?;
    Ok(cache()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(url.to_owned())
        .or_insert(backend)
        .clone())
}

fn file_factory(url: &str) -> std::result::Result<Arc<dyn Backend>, String> {
    Ok(Arc::new(FileBackend::from_url(url)?))
}

/// Sets the process's default coordination URL, used by
/// [`LockOptions::coordinated`](crate::LockOptions::coordinated) (and over
/// [`COORDINATION_URL_ENV`]).
///
/// # Errors
/// As [`backend_for_url`]: the URL is checked now, not at the first lock.
pub fn set_default_url(url: &str) -> Result<()> {
    resolve(url, "")?;
    *DEFAULT_URL.write().unwrap_or_else(|e| e.into_inner()) = Some(url.to_owned());
    Ok(())
}

/// Forgets the URL set by [`set_default_url`].
pub fn clear_default_url() {
    *DEFAULT_URL.write().unwrap_or_else(|e| e.into_inner()) = None;
}

/// The process's default coordination URL: the one set by
/// [`set_default_url`], else [`COORDINATION_URL_ENV`], if either is set.
pub fn default_url() -> Option<String> {
    if let Some(u) = &*DEFAULT_URL.read().unwrap_or_else(|e| e.into_inner()) {
        return Some(u.clone());
    }
    std::env::var(COORDINATION_URL_ENV)
        .ok()
        .filter(|u| !u.is_empty())
}

/// The default backend, for a lock named `lock`.
pub(crate) fn resolve_default(lock: &str) -> Result<Arc<dyn Backend>> {
    match default_url() {
        Some(url) => resolve(&url, lock),
        None => Err(Error::Backend {
            name: lock.to_owned(),
            backend: "the default coordination URL".into(),
            reason: format!(
                "none is configured: set {COORDINATION_URL_ENV}, call \
                 lockutils::backend::set_default_url, or give the lock a backend"
            ),
            source: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_and_redaction() {
        assert_eq!(scheme_of("zookeeper://h:1/r"), Some("zookeeper"));
        assert_eq!(scheme_of("/tmp/x"), None);
        assert_eq!(
            redact("postgresql://u:secret@h:5432/db?x=1"),
            "postgresql://h:5432/db?x=1"
        );
        assert_eq!(redact("file:///a@b"), "file:///a@b");
    }

    #[test]
    fn unknown_and_disabled_schemes_are_typed_and_name_the_fix() {
        let e = resolve("etcd3://h", "x").unwrap_err();
        assert!(
            matches!(e, Error::UnknownScheme { ref scheme, .. } if scheme == "etcd3"),
            "{e}"
        );
        let e = resolve("postgresql://u:pw@h/db", "x").unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(
                e,
                Error::FeatureDisabled {
                    feature: "postgresql",
                    ..
                }
            ),
            "{msg}"
        );
        assert!(!msg.contains("pw@"), "{msg}");
        assert!(msg.contains("features = [\"postgresql\"]"), "{msg}");
    }

    #[test]
    fn one_backend_per_url() {
        let a = resolve("file:///tmp/lockutils-url-test", "x").unwrap();
        let b = resolve("file:///tmp/lockutils-url-test", "x").unwrap();
        assert!(Arc::ptr_eq(&a, &b));
    }
}
