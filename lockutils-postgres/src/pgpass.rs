//! Where a session's password comes from when the URL has none: libpq's
//! `PGPASSWORD`, then its password file.

use std::path::{Path, PathBuf};

use crate::url::PgUrl;

/// The password for a session: the URL's, else `PGPASSWORD`, else the first
/// matching line of the password file (`PGPASSFILE`, else `~/.pgpass`),
/// which is ignored, as libpq does, when group or others can read it.
pub(crate) fn password(url: &PgUrl, user: Option<&str>, dbname: Option<&str>) -> Option<String> {
    if let Some(p) = url.password() {
        return Some(p.to_owned());
    }
    if let Some(p) = std::env::var("PGPASSWORD").ok().filter(|p| !p.is_empty()) {
        return Some(p);
    }
    let file = std::env::var_os("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".pgpass")))?;
    let user = user
        .map(str::to_owned)
        .or_else(|| std::env::var("USER").ok())?;
    let dbname = dbname.unwrap_or(&user);
    from_file(&file, url.host(), url.port(), dbname, &user)
}

fn from_file(file: &Path, host: &str, port: u16, dbname: &str, user: &str) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(file).ok()?;
    if meta.mode() & 0o077 != 0 {
        tracing::warn!(
            target: "lockutils",
            "password file {} has group or world access and is ignored; chmod 0600 it",
            file.display()
        );
        return None;
    }
    let text = std::fs::read_to_string(file).ok()?;
    let port = port.to_string();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(fields)
        .find(|f| {
            let hit = |field: &str, value: &str| field == "*" || field == value;
            hit(&f[0], host) && hit(&f[1], &port) && hit(&f[2], dbname) && hit(&f[3], user)
        })
        .map(|f| f[4].clone())
}

/// The five `:`-separated fields of a line, with `\:` and `\\` unescaped.
fn fields(line: &str) -> Option<[String; 5]> {
    let mut out: Vec<String> = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.last_mut()?.push(chars.next().unwrap_or('\\')),
            ':' if out.len() < 5 => out.push(String::new()),
            c => out.last_mut()?.push(c),
        }
    }
    out.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn lines_match_with_wildcards_and_escapes() {
        let dir = std::env::temp_dir().join(format!("lockutils-pgpass-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pgpass");
        std::fs::write(
            &file,
            "# comment\nother:5432:*:*:nope\ndb1:*:locks:svc:pa\\:ss\\\\w:rd\n*:*:*:*:fallback\n",
        )
        .unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            from_file(&file, "db1", 6432, "locks", "svc").as_deref(),
            Some("pa:ss\\w:rd")
        );
        assert_eq!(
            from_file(&file, "db2", 5432, "x", "y").as_deref(),
            Some("fallback")
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(from_file(&file, "db2", 5432, "x", "y"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
