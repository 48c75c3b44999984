//! Where a PostgreSQL password and connection settings come from besides the URL, in libpq's
//! order: a connection service (`service=` in the URL or `$PGSERVICE`, read from
//! `$PGSERVICEFILE` or `~/.pg_service.conf`, then `$PGSYSCONFDIR/pg_service.conf`), then for the
//! password the workspace's `password_env` variable, the service's `password`, `$PGPASSWORD`,
//! and the password file (`$PGPASSFILE` or `~/.pgpass`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The settings of service `name`: the first service file that has it wins. `None` when no file
/// names it.
pub fn service(name: &str) -> Option<(PathBuf, BTreeMap<String, String>)> {
    let mut files = Vec::new();
    match std::env::var_os("PGSERVICEFILE") {
        Some(f) => files.push(PathBuf::from(f)),
        None => {
            if let Some(home) = std::env::var_os("HOME") {
                files.push(PathBuf::from(home).join(".pg_service.conf"));
            }
        }
    }
    match std::env::var_os("PGSYSCONFDIR") {
        Some(d) => files.push(PathBuf::from(d).join("pg_service.conf")),
        None => files.push(PathBuf::from("/etc/postgresql-common/pg_service.conf")),
    }
    files.into_iter().find_map(|f| {
        let text = std::fs::read_to_string(&f).ok()?;
        parse_service(&text, name).map(|s| (f, s))
    })
}

/// Section `name` of a service file (INI: `[name]`, then `key=value` lines; `#` comments).
fn parse_service(text: &str, name: &str) -> Option<BTreeMap<String, String>> {
    let mut current: Option<&str> = None;
    let mut found = None::<BTreeMap<String, String>>;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(section.trim());
            if current == Some(name) && found.is_none() {
                found = Some(BTreeMap::new());
            }
            continue;
        }
        if current == Some(name)
            && let (Some(map), Some((k, v))) = (found.as_mut(), line.split_once('='))
        {
            map.entry(k.trim().to_string())
                .or_insert_with(|| v.trim().to_string());
        }
    }
    found
}

/// The password file, when it exists but others can read it (libpq and mirage skip it).
pub fn skipped_passfile() -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = passfile()?;
    let meta = std::fs::metadata(&path).ok()?;
    (meta.is_file() && meta.permissions().mode() & 0o077 != 0).then_some(path)
}

/// Why a service was not found: `$PGSERVICEFILE` names a file that does not exist.
pub fn missing_service_file() -> Option<PathBuf> {
    std::env::var_os("PGSERVICEFILE")
        .map(PathBuf::from)
        .filter(|p| !p.is_file())
}

/// The password file's path: `$PGPASSFILE`, else `~/.pgpass`.
pub fn passfile() -> Option<PathBuf> {
    std::env::var_os("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pgpass")))
}

/// The password the password file gives for (host, port, database, user): the first line whose
/// fields match (`*` matches anything; `\:` and `\\` are a colon and a backslash). A file that
/// others can read is ignored, as libpq does.
pub fn from_passfile(
    path: &Path,
    host: &str,
    port: u16,
    database: &str,
    user: &str,
) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.permissions().mode() & 0o077 != 0 {
        if meta.is_file() {
            tracing::warn!(
                file = %path.display(),
                "the password file is readable by others and is ignored (chmod 0600 it)"
            );
        }
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let port = port.to_string();
    let wanted = [host, port.as_str(), database, user];
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .find_map(|line| {
            let fields = split_fields(line);
            if fields.len() != 5 {
                return None;
            }
            let matches = fields[..4]
                .iter()
                .zip(wanted)
                .all(|(f, w)| f == "*" || f == w);
            matches.then(|| fields[4].clone())
        })
}

/// A password-file line's five fields, `\` escaping the next character.
fn split_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(n), Some(f)) = (chars.next(), fields.last_mut()) {
                    f.push(n);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => {
                if let Some(f) = fields.last_mut() {
                    f.push(c);
                }
            }
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_sections_and_password_lines_match_as_libpq_reads_them() {
        let text =
            "# comment\n[other]\nhost=x\n[app]\nhost = db.internal\nport=6432\ndbname=shop\n";
        let s = parse_service(text, "app").unwrap();
        assert_eq!(s["host"], "db.internal");
        assert_eq!(s["port"], "6432");
        assert!(parse_service(text, "missing").is_none());

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pgpass");
        std::fs::write(
            &path,
            "# comment\nother:5432:*:app:wrong\ndb:*:shop:app:pa\\:ss\\\\word\n*:*:*:*:fallback\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            from_passfile(&path, "db", 5432, "shop", "app").as_deref(),
            Some("pa:ss\\word")
        );
        assert_eq!(
            from_passfile(&path, "db", 5432, "other", "app").as_deref(),
            Some("fallback")
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(from_passfile(&path, "db", 5432, "shop", "app"), None);
    }

    use std::os::unix::fs::PermissionsExt;
}
