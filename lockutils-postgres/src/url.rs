//! Coordination URLs for PostgreSQL, in libpq's and tooz's shape:
//! `postgresql://[USER[:PASSWORD]@]HOST[:PORT][/DBNAME][?KEY=VALUE&…]`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use lockutils_core::DisplayDuration;

use lockutils_core::Error;

use crate::key::Layout;

/// The port used when the URL has none.
pub const DEFAULT_PORT: u16 = 5432;
/// How long opening a session may take unless the URL says otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a held lock's session is checked unless the URL says otherwise;
/// a silently broken connection is reported within twice this.
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(5);
/// The `application_name` sessions show in `pg_stat_activity`.
pub const DEFAULT_APPLICATION_NAME: &str = "lockutils";
/// Idle sessions kept per coordinator unless the URL says otherwise.
pub const DEFAULT_POOL: usize = 4;

const SCHEMES: [&str; 2] = ["postgresql://", "postgres://"];
const KEYS: &str = "`dbname`, `user`, `sslmode`, `sslrootcert`, `connect_timeout`, \
                    `check_interval`, `application_name`, `layout`, `fencing`, `pool`";
const SHAPE: &str = "postgresql://[USER[:PASSWORD]@]HOST[:PORT][/DBNAME][?sslmode=disable|prefer|require|verify-ca|verify-full&layout=native|tooz&fencing=none|table&connect_timeout=SECS&check_interval=SECS]";

/// How a session uses TLS, as libpq's `sslmode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS if the server offers it, without verifying its certificate
    /// (libpq's default).
    Prefer,
    /// TLS or no session; the certificate is verified only against
    /// `sslrootcert` when one is given (libpq's rule).
    Require,
    /// TLS with a certificate signed by a trusted CA; the host name is not
    /// checked.
    VerifyCa,
    /// TLS with a trusted certificate issued for the host name in the URL.
    VerifyFull,
}

impl SslMode {
    fn from_name(s: &str) -> Option<SslMode> {
        Some(match s {
            "disable" => SslMode::Disable,
            "prefer" | "allow" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    /// The name used in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Where fencing tokens come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Fencing {
    /// No tokens: advisory locks keep no counter, and this engine creates no
    /// table unless asked, and a guard's
    /// [`fencing_token`](lockutils_core::LockGuard::fencing_token) is an
    /// `Unsupported` error.
    None,
    /// A counter per lock in the table `lockutils_fencing`, created on first
    /// use (the URL's role needs `CREATE` on its schema, or the table created
    /// beforehand), incremented by each holder while it holds the lock.
    Table,
}

/// A parsed PostgreSQL coordination URL.
///
/// | part | meaning | default |
/// |---|---|---|
/// | `USER[:PASSWORD]@` | the role; the password may also come from `PGPASSWORD` or a `.pgpass` file (`PGPASSFILE`, else `~/.pgpass`, mode 0600) | `PGUSER`, else the OS user |
/// | `HOST[:PORT]` | the server | port 5432 |
/// | `/DBNAME` (or `dbname=`, tooz's form) | the database | the role's name |
/// | `sslmode` | `disable`, `prefer`, `require`, `verify-ca`, `verify-full`, as libpq | `prefer` |
/// | `sslrootcert` | PEM file of the CA to trust (besides the system's) | none |
/// | `connect_timeout` | how long opening a session may take | 5 s |
/// | `check_interval` | how often a held lock's session is checked; a silent break is reported within twice this | 5 s |
/// | `application_name` | shown in `pg_stat_activity` | `lockutils` |
/// | `layout` | how names map to advisory-lock keys: `native` (64-bit SHA-256) or `tooz` (tooz's driver) | `native` |
/// | `fencing` | `none`, or `table` for fencing tokens from a table | `none` |
/// | `pool` | idle sessions kept for reuse | 4 |
///
/// Parsing never contacts the server. Neither [`Display`](fmt::Display) nor
/// [`Debug`](fmt::Debug) shows the password.
///
/// ```
/// use lockutils_postgres::{Layout, PgUrl, SslMode};
///
/// let url: PgUrl = "postgresql://svc:s3cret@db1:6432/locks?sslmode=verify-full&layout=tooz"
///     .parse()
///     .unwrap();
/// assert_eq!(url.host(), "db1");
/// assert_eq!(url.port(), 6432);
/// assert_eq!(url.dbname(), Some("locks"));
/// assert_eq!(url.ssl_mode(), SslMode::VerifyFull);
/// assert_eq!(url.layout(), Layout::Tooz);
/// assert_eq!(
///     url.to_string(),
///     "postgresql://svc@db1:6432/locks?sslmode=verify-full&layout=tooz"
/// );
/// assert!(!format!("{url:?}").contains("s3cret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct PgUrl {
    host: String,
    port: u16,
    dbname: Option<String>,
    user: Option<String>,
    password: Option<String>,
    ssl_mode: SslMode,
    ssl_root_cert: Option<PathBuf>,
    connect_timeout: Duration,
    check_interval: Duration,
    application_name: String,
    layout: Layout,
    fencing: Fencing,
    pool: usize,
}

impl PgUrl {
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

    /// Whether `url` has a PostgreSQL scheme (`postgresql://` or `postgres://`).
    pub fn is_postgres(url: &str) -> bool {
        SCHEMES.iter().any(|s| url.starts_with(s))
    }

    /// The server's host name or address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The database, if the URL names one.
    pub fn dbname(&self) -> Option<&str> {
        self.dbname.as_deref()
    }

    /// The role, if the URL names one.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Whether the URL itself carries a password.
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    pub(crate) fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// TLS use.
    pub fn ssl_mode(&self) -> SslMode {
        self.ssl_mode
    }

    /// The CA file to trust, if given.
    pub fn ssl_root_cert(&self) -> Option<&std::path::Path> {
        self.ssl_root_cert.as_deref()
    }

    /// How long opening a session may take.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// How often a held lock's session is checked.
    pub fn check_interval(&self) -> Duration {
        self.check_interval
    }

    /// The `application_name` of the sessions.
    pub fn application_name(&self) -> &str {
        &self.application_name
    }

    /// How names map to keys.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Where fencing tokens come from.
    pub fn fencing(&self) -> Fencing {
        self.fencing
    }

    /// Idle sessions kept for reuse.
    pub fn pool(&self) -> usize {
        self.pool
    }

    /// A copy with another layout.
    pub fn with_layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }
}

impl FromStr for PgUrl {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        PgUrl::parse_for(s, "")
    }
}

impl fmt::Display for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("postgresql://")?;
        if let Some(user) = &self.user {
            write!(f, "{}@", Encoded(user))?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)?;
        } else {
            write!(f, "{}:{}", self.host, self.port)?;
        }
        if let Some(db) = &self.dbname {
            write!(f, "/{}", Encoded(db))?;
        }
        let mut sep = '?';
        let mut param = |f: &mut fmt::Formatter<'_>, k: &str, v: &dyn fmt::Display| {
            let r = write!(f, "{sep}{k}={v}");
            sep = '&';
            r
        };
        if self.ssl_mode != SslMode::Prefer {
            param(f, "sslmode", &self.ssl_mode.as_str())?;
        }
        if let Some(p) = &self.ssl_root_cert {
            param(f, "sslrootcert", &Encoded(&p.to_string_lossy()))?;
        }
        if self.connect_timeout != DEFAULT_CONNECT_TIMEOUT {
            param(f, "connect_timeout", &DisplayDuration(self.connect_timeout))?;
        }
        if self.check_interval != DEFAULT_CHECK_INTERVAL {
            param(f, "check_interval", &DisplayDuration(self.check_interval))?;
        }
        if self.application_name != DEFAULT_APPLICATION_NAME {
            param(f, "application_name", &Encoded(&self.application_name))?;
        }
        if self.layout != Layout::Native {
            param(f, "layout", &self.layout.as_str())?;
        }
        if self.fencing != Fencing::None {
            param(f, "fencing", &"table")?;
        }
        if self.pool != DEFAULT_POOL {
            param(f, "pool", &self.pool)?;
        }
        Ok(())
    }
}

impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgUrl({self})")
    }
}

/// Percent-encodes what a URL part cannot hold as is.
struct Encoded<'a>(&'a str);

impl fmt::Display for Encoded<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "%{b:02X}")?;
            }
        }
        Ok(())
    }
}

/// The URL as given, with any password (in the authority or a `password=`
/// parameter) replaced by `***`, for error messages.
pub(crate) fn redact(url: &str) -> String {
    let Some(scheme) = SCHEMES.iter().find(|s| url.starts_with(**s)) else {
        return url.to_owned();
    };
    let rest = &url[scheme.len()..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let mut out = match rest[..authority_end].rfind('@') {
        Some(at) if rest[..at].contains(':') => {
            let user = rest[..at].split(':').next().unwrap_or("");
            format!("{scheme}{user}:***{}", &rest[at..])
        }
        Some(_) => url.to_owned(),
        // An `@` only past the first `/` or `?`: a password holding one of
        // them unescaped, or an `@` in the database name or the query.
        // Everything up to the last `@` is hidden, which may hide more than
        // the password, never less.
        None => match rest.rfind('@') {
            Some(at) => format!("{scheme}***{}", &rest[at..]),
            None => url.to_owned(),
        },
    };
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query = query
            .split('&')
            .map(|p| {
                if p.starts_with("password=") {
                    "password=***".to_owned()
                } else {
                    p.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("&");
        out = format!("{head}{query}");
    }
    out
}

fn parse(url: &str) -> Result<PgUrl, String> {
    let rest = SCHEMES
        .iter()
        .find_map(|s| url.strip_prefix(s))
        .ok_or_else(|| match url.find("://") {
            Some(i) => format!(
                "unsupported scheme `{}` (expected `postgresql` or `postgres`)",
                &url[..i]
            ),
            None => "missing the `postgresql://` scheme".to_owned(),
        })?;
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    if !authority.contains('@') && (path.contains('@') || query.is_some_and(|q| q.contains('@'))) {
        // Parsed on, it would take part of a password for a host, a port or
        // the database, and show it.
        return Err("an `@` after the first `/` or `?`: a user name or password holding `/`, `?` or `@` must be percent-encoded (%2F, %3F, %40)".to_owned());
    }
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        None => (None, None),
        Some(info) => {
            let (u, p) = match info.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (info, None),
            };
            let u = percent_decode(u, "user name")?;
            if u.is_empty() {
                return Err("empty user name before `@`".to_owned());
            }
            (
                Some(u),
                p.map(|p| percent_decode(p, "password")).transpose()?,
            )
        }
    };
    let (host, port) = parse_host(hostport)?;
    let dbname = if path.is_empty() {
        None
    } else {
        Some(percent_decode(path, "database name")?)
    };
    let mut out = PgUrl {
        host,
        port,
        dbname,
        user,
        password,
        ssl_mode: SslMode::Prefer,
        ssl_root_cert: None,
        connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        check_interval: DEFAULT_CHECK_INTERVAL,
        application_name: DEFAULT_APPLICATION_NAME.to_owned(),
        layout: Layout::Native,
        fencing: Fencing::None,
        pool: DEFAULT_POOL,
    };
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("parameter `{pair}` has no value (write `{pair}=…`)"))?;
        let value = percent_decode(value, key)?;
        match key {
            "dbname" => out.dbname = Some(value),
            "user" => out.user = Some(value),
            "password" => out.password = Some(value),
            "host" => out.host = value,
            "port" => out.port = parse_port(&value)?,
            "sslmode" => {
                out.ssl_mode = SslMode::from_name(&value).ok_or_else(|| {
                    format!(
                        "unknown sslmode `{value}` (expected `disable`, `prefer`, `require`, \
                         `verify-ca` or `verify-full`)"
                    )
                })?
            }
            "sslrootcert" => out.ssl_root_cert = Some(PathBuf::from(value)),
            "connect_timeout" => out.connect_timeout = parse_duration(key, &value)?,
            "check_interval" => out.check_interval = parse_duration(key, &value)?,
            "application_name" => out.application_name = value,
            "layout" => {
                out.layout = Layout::from_name(&value).ok_or_else(|| {
                    format!("unknown layout `{value}` (expected `native` or `tooz`)")
                })?
            }
            "fencing" => {
                out.fencing = match value.as_str() {
                    "none" => Fencing::None,
                    "table" => Fencing::Table,
                    _ => return Err(format!("`fencing={value}`: expected `none` or `table`")),
                }
            }
            "pool" => {
                out.pool = value
                    .parse()
                    .ok()
                    .filter(|n| *n <= 1024)
                    .ok_or_else(|| format!("`pool={value}` is not a number from 0 to 1024"))?
            }
            _ => return Err(format!("unknown parameter `{key}` (expected {KEYS})")),
        }
    }
    if out.host.is_empty() {
        return Err("no server given".to_owned());
    }
    Ok(out)
}

fn parse_host(hostport: &str) -> Result<(String, u16), String> {
    if hostport.is_empty() {
        return Err("no server given".to_owned());
    }
    if hostport.contains(',') {
        return Err("several servers are not supported; give one HOST[:PORT]".to_owned());
    }
    if let Some(v6) = hostport.strip_prefix('[') {
        let end = v6
            .find(']')
            .ok_or_else(|| format!("server `{hostport}`: missing `]`"))?;
        let after = &v6[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => parse_port(p)?,
            None if after.is_empty() => DEFAULT_PORT,
            None => return Err(format!("server `{hostport}`: unexpected `{after}`")),
        };
        return Ok((v6[..end].to_owned(), port));
    }
    let (name, port) = match hostport.rsplit_once(':') {
        Some((n, p)) => (n, parse_port(p)?),
        None => (hostport, DEFAULT_PORT),
    };
    if name.is_empty() || name.contains([':', ' ']) {
        return Err(format!("server `{hostport}` is not HOST or HOST:PORT"));
    }
    Ok((name.to_owned(), port))
}

fn parse_port(p: &str) -> Result<u16, String> {
    p.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("port `{p}` is not a number from 1 to 65535"))
}

fn percent_decode(s: &str, what: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent-escape in the {what}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("the {what} is not UTF-8 after percent-decoding"))
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
        match url.parse::<PgUrl>() {
            Ok(u) => panic!("{url} parsed as {u:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn full_url() {
        let u: PgUrl =
            "postgres://svc:pw@[::1]:6000/db%20x?sslmode=require&sslrootcert=/etc/ca.pem\
                        &connect_timeout=750ms&check_interval=2&application_name=nova&layout=tooz\
                        &fencing=table&pool=0"
                .parse()
                .unwrap();
        assert_eq!(u.host(), "::1");
        assert_eq!(u.port(), 6000);
        assert_eq!(u.dbname(), Some("db x"));
        assert_eq!(u.user(), Some("svc"));
        assert_eq!(u.password(), Some("pw"));
        assert_eq!(u.ssl_mode(), SslMode::Require);
        assert_eq!(u.ssl_root_cert(), Some(std::path::Path::new("/etc/ca.pem")));
        assert_eq!(u.connect_timeout(), Duration::from_millis(750));
        assert_eq!(u.check_interval(), Duration::from_secs(2));
        assert_eq!(u.application_name(), "nova");
        assert_eq!(u.layout(), Layout::Tooz);
        assert_eq!(u.fencing(), Fencing::Table);
        assert_eq!(u.pool(), 0);
        let shown = u.to_string();
        assert_eq!(
            shown,
            "postgresql://svc@[::1]:6000/db%20x?sslmode=require&sslrootcert=/etc/ca.pem\
             &connect_timeout=750ms&check_interval=2&application_name=nova&layout=tooz\
             &fencing=table&pool=0"
        );
        let mut again: PgUrl = shown.parse().unwrap();
        again.password = Some("pw".to_owned());
        assert_eq!(again, u);
    }

    #[test]
    fn defaults_and_tooz_dbname() {
        let u: PgUrl = "postgresql://127.0.0.1".parse().unwrap();
        assert_eq!(u.port(), DEFAULT_PORT);
        assert_eq!(u.dbname(), None);
        assert_eq!(u.user(), None);
        assert_eq!(u.ssl_mode(), SslMode::Prefer);
        assert_eq!(u.layout(), Layout::Native);
        assert_eq!(u.to_string(), "postgresql://127.0.0.1:5432");
        let tooz: PgUrl = "postgresql://u:p@h:5433?dbname=locks".parse().unwrap();
        assert_eq!(tooz.dbname(), Some("locks"));
    }

    #[test]
    fn passwords_are_never_shown() {
        let u: PgUrl = "postgresql://svc:p%40ss%3Aw0rd@h:1/d".parse().unwrap();
        assert_eq!(u.password(), Some("p@ss:w0rd"));
        assert!(!u.to_string().contains("w0rd"));
        assert!(!format!("{u:?}").contains("w0rd"));
        let q: PgUrl = "postgresql://svc@h/d?password=hunter2".parse().unwrap();
        assert!(!q.to_string().contains("hunter2"));
        assert!(!format!("{q:?}").contains("hunter2"));
        for bad in [
            "postgresql://svc:topsecret@h:notaport/d",
            "postgresql://svc@h:notaport/d?password=topsecret",
        ] {
            let e = err(bad);
            assert!(!e.contains("topsecret"), "{e}");
            assert!(e.contains("***"), "{e}");
        }
    }

    #[test]
    fn durations_in_the_shared_syntax() {
        let u: PgUrl = "postgresql://h?connect_timeout=2m&check_interval=1500ms"
            .parse()
            .unwrap();
        assert_eq!(u.connect_timeout(), Duration::from_secs(120));
        assert_eq!(u.check_interval(), Duration::from_millis(1500));
        assert!(u.to_string().contains("connect_timeout=120"), "{u}");
        assert!(u.to_string().contains("check_interval=1500ms"), "{u}");
        for bad in ["1e1", ".5"] {
            let url = format!("postgresql://h?check_interval={bad}");
            assert!(url.parse::<PgUrl>().is_err(), "{url} parsed");
        }
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        for (url, needle) in [
            ("mysql://h", "unsupported scheme `mysql`"),
            ("h:5432", "missing the `postgresql://` scheme"),
            ("postgresql://", "no server given"),
            ("postgresql:///db", "no server given"),
            ("postgresql://h:x", "port `x` is not a number"),
            ("postgresql://h:0", "port `0`"),
            ("postgresql://a,b", "several servers"),
            ("postgresql://h?sslmode=maybe", "unknown sslmode `maybe`"),
            ("postgresql://h?layout=kazoo", "unknown layout `kazoo`"),
            ("postgresql://h?fencing=yes", "`fencing=yes`"),
            ("postgresql://h?check_interval=soon", "not a duration"),
            ("postgresql://h?connect_timeout=0", "must be positive"),
            (
                "postgresql://h?sslmod=require",
                "unknown parameter `sslmod`",
            ),
            ("postgresql://h?layout", "has no value"),
            ("postgresql://:pw@h", "empty user name"),
            ("postgresql://[::1/x", "missing `]`"),
            ("postgresql://h?pool=many", "`pool=many`"),
        ] {
            let e = err(url);
            assert!(e.contains(needle), "{url}: {e}");
            assert!(e.contains("expected postgresql://"), "{url}: {e}");
        }
    }

    #[test]
    fn redaction() {
        assert_eq!(redact("postgresql://u:p/w@h/d"), "postgresql://***@h/d");
        assert_eq!(
            redact("postgresql://u:1/w@h:5432/d"),
            "postgresql://***@h:5432/d"
        );
        assert_eq!(redact("postgresql://u:p@h/d@x"), "postgresql://u:***@h/d@x");
        assert_eq!(redact("postgresql://u@h/d"), "postgresql://u@h/d");
        assert_eq!(
            redact("postgres://h/d?sslmode=require&password=x"),
            "postgres://h/d?sslmode=require&password=***"
        );
        assert_eq!(redact("bogus"), "bogus");
    }
}
