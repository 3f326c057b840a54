//! Coordination URLs in the style of OpenStack's tooz:
//! `zookeeper://[USER:PASSWORD@]HOST[:PORT][,HOST[:PORT]…][/ROOT][?KEY=VALUE&…]`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use lockutils_core::DisplayDuration;

use lockutils_core::Error;

use crate::layout::Layout;

/// The root used when the URL has no path (or just `/`).
pub const DEFAULT_ROOT: &str = "/lockutils";
/// The session timeout asked of the server unless the URL says otherwise.
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// How long establishing a session may take unless the URL says otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

const DEFAULT_PORT: u16 = 2181;
const SCHEME: &str = "zookeeper://";
const KEYS: &str = "`session_timeout` (alias `timeout`), `connect_timeout`, `layout`";
const SHAPE: &str = "zookeeper://[USER:PASSWORD@]HOST[:PORT][,HOST[:PORT]…][/ROOT][?session_timeout=SECS&connect_timeout=SECS&layout=native|kazoo|curator]";

/// A parsed coordination URL: where the ZooKeeper ensemble is, under which
/// node the locks live, and how to talk to it.
///
/// | part | meaning | default |
/// |---|---|---|
/// | `USER:PASSWORD@` | digest authentication; nodes the library creates get an ACL giving them to this identity only (others may read) | none: open ACLs |
/// | `HOST[:PORT],…` | the ensemble's servers | port 2181 |
/// | `/ROOT` | the node under which each lock is a child node named by its identity | `/lockutils` |
/// | `session_timeout` (or `timeout`, tooz's name) | session timeout asked of the server, in seconds (`2.5`) or with a unit (`1500ms`, `10s`); the server clamps it to its own bounds | 10 s |
/// | `connect_timeout` | how long establishing a session may take before the acquisition fails | 5 s |
/// | `layout` | candidate node names: `native`, `kazoo` (interoperates with kazoo and tooz), `curator` | `native` |
///
/// Parsing never contacts the server. The [`Display`](fmt::Display) form
/// never shows the password.
///
/// ```
/// use std::time::Duration;
/// use lockutils_zookeeper::{CoordinationUrl, Layout};
///
/// let url: CoordinationUrl = "zookeeper://zk1:2181,zk2/tooz/locks?session_timeout=4&layout=kazoo"
///     .parse()
///     .unwrap();
/// assert_eq!(url.hosts(), ["zk1:2181", "zk2:2181"]);
/// assert_eq!(url.root(), "/tooz/locks");
/// assert_eq!(url.session_timeout(), Duration::from_secs(4));
/// assert_eq!(url.layout(), Layout::Kazoo);
///
/// let secret: CoordinationUrl = "zookeeper://svc:s3cret@127.0.0.1:2181".parse().unwrap();
/// assert_eq!(secret.to_string(), "zookeeper://svc@127.0.0.1:2181/lockutils");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct CoordinationUrl {
    hosts: Vec<String>,
    root: String,
    session_timeout: Duration,
    connect_timeout: Duration,
    layout: Layout,
    auth: Option<(String, String)>,
}

impl CoordinationUrl {
    /// Parses `url`.
    ///
    /// # Errors
    /// [`Error::Backend`] naming the URL (without its password), what is
    /// wrong and the expected shape. `lock` is the lock the URL is for, for
    /// the error's `name` (empty when there is none).
    pub fn parse_for(url: &str, lock: &str) -> Result<Self, Error> {
        parse(url).map_err(|reason| Error::Backend {
            name: lock.to_owned(),
            backend: redact(url),
            reason: format!("invalid coordination URL: {reason}; expected {SHAPE}"),
            source: None,
        })
    }

    /// The servers, each as `host:port`.
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// The node under which locks live, e.g. `/lockutils`.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The session timeout asked of the server.
    pub fn session_timeout(&self) -> Duration {
        self.session_timeout
    }

    /// How long establishing a session may take.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The node layout for candidate nodes this process creates.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The digest user, if the URL has credentials.
    pub fn user(&self) -> Option<&str> {
        self.auth.as_ref().map(|(u, _)| u.as_str())
    }

    /// `user:password` for digest authentication.
    pub(crate) fn digest(&self) -> Option<String> {
        self.auth.as_ref().map(|(u, p)| format!("{u}:{p}"))
    }

    /// The connect string the client takes: `host:port,host:port`.
    pub(crate) fn connect_string(&self) -> String {
        self.hosts.join(",")
    }

    /// The lock node for a lock identity.
    pub(crate) fn lock_path(&self, identity: &str) -> String {
        if self.root == "/" {
            format!("/{identity}")
        } else {
            format!("{}/{identity}", self.root)
        }
    }

    /// A copy with another layout.
    pub fn with_layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    /// A copy with another root node.
    ///
    /// # Errors
    /// [`Error::Backend`] if `root` is not an absolute ZooKeeper path.
    pub fn with_root(mut self, root: &str) -> Result<Self, Error> {
        self.root = parse_root(root).map_err(|reason| Error::Backend {
            name: String::new(),
            backend: self.to_string(),
            reason: format!("invalid root: {reason}"),
            source: None,
        })?;
        Ok(self)
    }
}

impl FromStr for CoordinationUrl {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        CoordinationUrl::parse_for(s, "")
    }
}

impl fmt::Display for CoordinationUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SCHEME)?;
        if let Some(user) = self.user() {
            write!(f, "{user}@")?;
        }
        write!(f, "{}{}", self.hosts.join(","), self.root)?;
        let mut sep = '?';
        let mut param = |f: &mut fmt::Formatter<'_>, k: &str, v: &dyn fmt::Display| {
            let r = write!(f, "{sep}{k}={v}");
            sep = '&';
            r
        };
        if self.session_timeout != DEFAULT_SESSION_TIMEOUT {
            param(f, "session_timeout", &DisplayDuration(self.session_timeout))?;
        }
        if self.connect_timeout != DEFAULT_CONNECT_TIMEOUT {
            param(f, "connect_timeout", &DisplayDuration(self.connect_timeout))?;
        }
        if self.layout != Layout::Native {
            param(f, "layout", &self.layout.as_str())?;
        }
        Ok(())
    }
}

impl fmt::Debug for CoordinationUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CoordinationUrl({self})")
    }
}

/// The URL as given, with any password replaced by `***`, for error messages.
pub(crate) fn redact(url: &str) -> String {
    let Some(rest) = url.strip_prefix(SCHEME) else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or("");
            format!("{SCHEME}{user}:***{}", &rest[at..])
        }
        // An `@` only past the first `/` or `?`: a password holding one of
        // them unescaped, or an `@` in the path. Everything up to the last
        // `@` is hidden, which may hide more than the password, never less.
        None => match rest.rfind('@') {
            Some(at) => format!("{SCHEME}***{}", &rest[at..]),
            None => url.to_owned(),
        },
    }
}

fn parse(url: &str) -> Result<CoordinationUrl, String> {
    let rest = url
        .strip_prefix(SCHEME)
        .ok_or_else(|| match url.find("://") {
            Some(i) => format!(
                "unsupported scheme `{}` (only `zookeeper` is supported)",
                &url[..i]
            ),
            None => "missing the `zookeeper://` scheme".to_owned(),
        })?;
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if !authority.contains('@') && (path.contains('@') || query.is_some_and(|q| q.contains('@'))) {
        // Parsed on, it would show part of a password as a host, a port or
        // the root node.
        return Err("an `@` after the first `/` or `?`: a user name or password holding `/`, `?` or `@` must be percent-encoded (%2F, %3F, %40)".to_owned());
    }
    let (auth, hosts) = match authority.rfind('@') {
        Some(at) => (Some(parse_auth(&authority[..at])?), &authority[at + 1..]),
        None => (None, authority),
    };
    if hosts.is_empty() {
        return Err("no server given".to_owned());
    }
    let hosts = hosts
        .split(',')
        .map(parse_host)
        .collect::<Result<Vec<_>, _>>()?;
    let root = if path.is_empty() || path == "/" {
        DEFAULT_ROOT.to_owned()
    } else {
        parse_root(path)?
    };
    let mut out = CoordinationUrl {
        hosts,
        root,
        session_timeout: DEFAULT_SESSION_TIMEOUT,
        connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        layout: Layout::Native,
        auth,
    };
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("parameter `{pair}` has no value (write `{pair}=…`)"))?;
        match key {
            "session_timeout" | "timeout" => out.session_timeout = parse_duration(key, value)?,
            "connect_timeout" => out.connect_timeout = parse_duration(key, value)?,
            "layout" => {
                out.layout = Layout::from_name(value).ok_or_else(|| {
                    format!("unknown layout `{value}` (expected `native`, `kazoo` or `curator`)")
                })?
            }
            _ => return Err(format!("unknown parameter `{key}` (expected {KEYS})")),
        }
    }
    Ok(out)
}

fn parse_auth(userinfo: &str) -> Result<(String, String), String> {
    let (user, password) = userinfo
        .split_once(':')
        .ok_or("credentials must be USER:PASSWORD")?;
    let user = percent_decode(user)?;
    let password = percent_decode(password)?;
    if user.is_empty() {
        return Err("empty user name in the credentials".to_owned());
    }
    Ok((user, password))
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("bad percent-escape in the credentials")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| "credentials are not UTF-8 after percent-decoding".to_owned())
}

fn parse_host(host: &str) -> Result<String, String> {
    if host.is_empty() {
        return Err("empty server in the server list".to_owned());
    }
    // `[v6]:port`, `[v6]`, `name:port` or `name`.
    let (name, port) = if let Some(v6) = host.strip_prefix('[') {
        let end = v6
            .find(']')
            .ok_or_else(|| format!("server `{host}`: missing `]`"))?;
        let after = &v6[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(format!("server `{host}`: unexpected `{after}`")),
        };
        (&host[..end + 2], port)
    } else {
        match host.rsplit_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, None),
        }
    };
    if name.is_empty() || name.contains([':', ' ']) && !name.starts_with('[') {
        return Err(format!("server `{host}` is not HOST or HOST:PORT"));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
            format!("server `{host}`: port `{p}` is not a number from 1 to 65535")
        })?,
    };
    Ok(format!("{name}:{port}"))
}

pub(crate) fn parse_root(path: &str) -> Result<String, String> {
    if !path.starts_with('/') {
        return Err(format!("root `{path}` must start with `/`"));
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok("/".to_owned());
    }
    for part in trimmed[1..].split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return Err(format!("root `{path}` has an empty, `.` or `..` component"));
        }
        if let Some(c) = part.chars().find(|c| !crate::layout::valid_node_char(*c)) {
            return Err(format!(
                "root `{path}` contains {c:?}, which ZooKeeper does not allow"
            ));
        }
    }
    Ok(trimmed.to_owned())
}

/// A URL's duration, in lockutils' one syntax (seconds such as `10` or
/// `2.5`, or `1500ms`, `10s`, `2m`; see `lockutils_core::parse_duration`).
fn parse_duration(key: &str, value: &str) -> Result<Duration, String> {
    let d = lockutils_core::parse_duration(value).map_err(|e| format!("`{key}={value}`: {e}"))?;
    if d.is_zero() {
        return Err(format!("`{key}={value}` must be positive"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(url: &str) -> String {
        match url.parse::<CoordinationUrl>() {
            Ok(u) => panic!("{url} parsed as {u:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn full_url() {
        let u: CoordinationUrl =
            "zookeeper://a:1,b,[::1]:3/x/y/?session_timeout=2.5&connect_timeout=750ms&layout=curator"
                .parse()
                .unwrap();
        assert_eq!(u.hosts(), ["a:1", "b:2181", "[::1]:3"]);
        assert_eq!(u.root(), "/x/y");
        assert_eq!(u.session_timeout(), Duration::from_millis(2500));
        assert_eq!(u.connect_timeout(), Duration::from_millis(750));
        assert_eq!(u.layout(), Layout::Curator);
        assert_eq!(u.connect_string(), "a:1,b:2181,[::1]:3");
        assert_eq!(u.lock_path("nova-x"), "/x/y/nova-x");
        assert_eq!(
            u.to_string(),
            "zookeeper://a:1,b:2181,[::1]:3/x/y?session_timeout=2500ms&connect_timeout=750ms&layout=curator"
        );
    }

    #[test]
    fn defaults_and_round_trip() {
        let u: CoordinationUrl = "zookeeper://127.0.0.1".parse().unwrap();
        assert_eq!(u.root(), DEFAULT_ROOT);
        assert_eq!(u.session_timeout(), DEFAULT_SESSION_TIMEOUT);
        assert_eq!(u.layout(), Layout::Native);
        assert_eq!(u.to_string(), "zookeeper://127.0.0.1:2181/lockutils");
        let again: CoordinationUrl = u.to_string().parse().unwrap();
        assert_eq!(again, u);
        let slash: CoordinationUrl = "zookeeper://h/".parse().unwrap();
        assert_eq!(slash.root(), DEFAULT_ROOT);
        let tooz: CoordinationUrl = "zookeeper://h?timeout=3".parse().unwrap();
        assert_eq!(tooz.session_timeout(), Duration::from_secs(3));
    }

    #[test]
    fn credentials_are_decoded_and_never_shown() {
        let u: CoordinationUrl = "zookeeper://svc:p%40ss%3Aw0rd@h:1/r".parse().unwrap();
        assert_eq!(u.user(), Some("svc"));
        assert_eq!(u.digest().unwrap(), "svc:p@ss:w0rd");
        assert!(!u.to_string().contains("w0rd"));
        assert!(!format!("{u:?}").contains("w0rd"));
        let e = err("zookeeper://svc:topsecret@h:notaport/r");
        assert!(!e.contains("topsecret"), "{e}");
        assert!(e.contains("zookeeper://svc:***@h:notaport/r"), "{e}");
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        for (url, needle) in [
            ("http://h:2181", "unsupported scheme `http`"),
            ("h:2181", "missing the `zookeeper://` scheme"),
            ("zookeeper://", "no server given"),
            ("zookeeper:///root", "no server given"),
            ("zookeeper://h:x", "port `x` is not a number"),
            ("zookeeper://h:0", "port `0`"),
            ("zookeeper://h:70000", "port `70000`"),
            ("zookeeper://a,,b", "empty server"),
            ("zookeeper://h/a//b", "empty, `.` or `..` component"),
            ("zookeeper://h/a/../b", "empty, `.` or `..` component"),
            ("zookeeper://h?session_timeout=soon", "not a duration"),
            ("zookeeper://h?session_timeout=-1", "not a duration"),
            ("zookeeper://h?session_timeout=1e1", "not a duration"),
            ("zookeeper://h?session_timeout=0", "must be positive"),
            ("zookeeper://h?connect_timeout=0", "must be positive"),
            ("zookeeper://h?layout=etcd", "unknown layout `etcd`"),
            (
                "zookeeper://h?sesion_timeout=1",
                "unknown parameter `sesion_timeout`",
            ),
            ("zookeeper://h?layout", "has no value"),
            ("zookeeper://user@h", "USER:PASSWORD"),
            ("zookeeper://[::1/x", "missing `]`"),
        ] {
            let e = err(url);
            assert!(e.contains(needle), "{url}: {e}");
            assert!(e.contains("expected zookeeper://"), "{url}: {e}");
        }
    }

    /// The one duration syntax of lockutils: minutes and microseconds too.
    #[test]
    fn durations_in_the_shared_syntax() {
        let u: CoordinationUrl = "zookeeper://h?session_timeout=2m&connect_timeout=1500us"
            .parse()
            .unwrap();
        assert_eq!(u.session_timeout(), Duration::from_secs(120));
        assert_eq!(u.connect_timeout(), Duration::from_micros(1500));
    }

    #[test]
    fn redaction() {
        assert_eq!(redact("zookeeper://u:p/w@h/r"), "zookeeper://***@h/r");
        assert_eq!(redact("zookeeper://u:p?w@h/r"), "zookeeper://***@h/r");
        assert_eq!(redact("zookeeper://u:p@h/r@x"), "zookeeper://u:***@h/r@x");
        assert_eq!(redact("zookeeper://h/r"), "zookeeper://h/r");
        assert_eq!(redact("bogus"), "bogus");
    }
}
