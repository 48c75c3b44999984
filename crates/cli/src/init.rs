//! `mirage init`: a starter workspace listing every table and column with the generator the
//! scan suggests (all passthrough with `--no-scan`).

use mirage_connectors::registry::connector_for;
use mirage_core::display::printable;
use mirage_core::schema::{Catalog, TableKind};
use mirage_core::workspace::{SchemaFilter, Workspace};
use mirage_engine::RunError;
use std::fmt::Write;
use std::path::Path;

/// `url` without a password (`postgres://user:secret@h/db` → `postgres://user@h/db`).
pub fn strip_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

/// The password of `url`, if it has one (`postgres://user:secret@h/db` → `secret`),
/// percent-decoded.
fn url_password(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let userinfo = authority.rsplit_once('@')?.0;
    let raw = userinfo.split_once(':')?.1;
    Some(mirage_core::display::percent_decode(raw))
}

/// A TOML key, quoted when it is not a bare key.
fn key(name: &str) -> String {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        name.to_string()
    } else {
        // A basic string on one line (a key cannot be a multi-line string): quotes,
        // backslashes and control characters escaped.
        let mut out = String::from("\"");
        for c in name.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }
}

/// Read the source's catalog for `init` (the password from $MIRAGE_SOURCE_PASSWORD), and scan
/// a sample of `sample` rows of each table when asked.
pub async fn source_catalog(
    url: &str,
    filter: &SchemaFilter,
    base: &Path,
    sample: Option<usize>,
) -> Result<(Catalog, Vec<mirage_engine::review::ColumnScan>), RunError> {
    let connector = connector_for(url).map_err(|m| {
        RunError::Connector(mirage_connectors::ConnectorError::Invalid(format!(
            "--source: {m}"
        )))
    })?;
    // A workspace holding just the source, so the connector opens it as a run would; a
    // password in the URL given on the command line is handed over as given, not in the URL.
    let text = format!(
        "[source]\nurl = {}\npassword_env = \"MIRAGE_SOURCE_PASSWORD\"\n[destination]\nurl = \"files:./unused\"\n",
        toml::Value::String(strip_password(url))
    );
    let mut ws = Workspace::parse(&base.join("(--source)"), &text)?;
    ws.source.given_password = url_password(url);
    let source = connector.open_source(&ws).await?;
    let catalog = source.catalog(filter).await?;
    let found = match sample {
        Some(limit) => mirage_engine::review::scan(source.as_ref(), &catalog, limit).await?,
        None => Vec::new(),
    };
    Ok((catalog, found))
}

/// The `[staging]` block of a Redshift workspace.
pub const STAGING_TEMPLATE: &str = "[staging]
# Where Redshift UNLOADs to and COPYs from: s3://<bucket>/<prefix>/<job-id>/{input,output}/…
bucket = \"mirage-staging-acme\"          # in the cluster's region
prefix = \"mirage\"
region = \"us-east-1\"
# The role Redshift assumes for UNLOAD and COPY (attached to both clusters).
iam_role = \"arn:aws:iam::123456789012:role/mirage-redshift\"
# kms_key_id = \"arn:aws:kms:us-east-1:123456789012:key/…\"   # encrypt UNLOAD output with this key
process = \"v2\"                       # Data Pipeline V2: transform in the mirage worker
keep_output = false                  # true keeps the transformed files for inspection
compression = \"zstd\"                # or \"gzip\": how the staged files are compressed
max_file_size = \"50MB\"               # UNLOAD MAXFILESIZE
# endpoint = \"http://127.0.0.1:5000\"  # an S3-compatible endpoint (moto, MinIO); unset for AWS";

/// The text of a starter workspace.
pub fn starter(
    source_url: &str,
    destination_url: &str,
    filter: &SchemaFilter,
    catalog: &Catalog,
    found: &[mirage_engine::review::ColumnScan],
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# mirage workspace, written by `mirage init`.\n\
         # Every column is listed with the generator `mirage scan` suggests from a sample of its\n\
         # values (the comment says why; passthrough = copied unchanged). Review each one\n\
         # (`mirage generators` lists the generators), check with `mirage plan`, copy with\n\
         # `mirage run`. `type` is the column's type when it was reviewed: a column added to the\n\
         # source later, or whose type changes, stops the run until it is listed here (see\n\
         # [run] unreviewed).\n"
    );
    let _ = writeln!(s, "[source]");
    let _ = writeln!(
        s,
        "url = {}",
        toml::Value::String(strip_password(source_url))
    );
    let iam = |url: &str| url.contains("iam=true") || url.contains("iam=1");
    let _ = writeln!(
        s,
        "{}",
        if iam(source_url) {
            "# iam=true: the login uses temporary credentials from the Redshift API; this\n\
             # variable is not read."
        } else {
            "# The password is read from this environment variable (never write it here)."
        }
    );
    let _ = writeln!(s, "password_env = \"MIRAGE_SOURCE_PASSWORD\"\n");
    let _ = writeln!(s, "[destination]");
    let _ = writeln!(
        s,
        "url = {}",
        toml::Value::String(strip_password(destination_url))
    );
    let _ = writeln!(s, "password_env = \"MIRAGE_DESTINATION_PASSWORD\"");
    let _ = writeln!(
        s,
        "# Copy owners and privileges too (the destination user must be a superuser)."
    );
    let _ = writeln!(s, "preserve_ownership = false\n");
    let _ = writeln!(s, "[schemas]");
    let _ = writeln!(
        s,
        "# Empty include = every schema. These schemas are dropped and recreated in the destination."
    );
    let list = |v: &[String]| {
        v.iter()
            .map(|x| toml::Value::String(x.clone()).to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(s, "include = [{}]", list(&filter.include));
    let _ = writeln!(s, "exclude = [{}]\n", list(&filter.exclude));
    let _ = writeln!(s, "[consistency]");
    let _ = writeln!(
        s,
        "# Same seed => same fake for the same value, across tables and runs. Keep it secret."
    );
    let _ = writeln!(s, "seed_env = \"MIRAGE_SEED\"\n");
    let _ = writeln!(s, "[run]");
    let _ = writeln!(s, "parallelism = 4          # tables copied at once");
    let _ = writeln!(
        s,
        "part_size = \"4MiB\"       # rows are transformed in parts of about this size"
    );
    let _ = writeln!(
        s,
        "parts_in_flight = 4      # parts of one table being read/transformed/written at once"
    );
    let _ = writeln!(s, "transform_threads = 0    # 0 = one per CPU core");
    let _ = writeln!(
        s,
        "unreviewed = \"fail\"      # a source column this file does not list: fail | null | passthrough"
    );
    if source_url.starts_with("redshift://") {
        let _ = writeln!(s, "\n{STAGING_TEMPLATE}");
    }
    for t in &catalog.tables {
        if t.kind.settings_parent().is_some() {
            continue;
        }
        let name = t.name.to_string();
        let _ = writeln!(s);
        let partitions: Vec<String> = catalog
            .tables
            .iter()
            .filter(|p| matches!(&p.kind, TableKind::Partition { parent } if parent == &t.name))
            .map(|p| p.name.to_string())
            .collect();
        if !partitions.is_empty() {
            let _ = writeln!(
                s,
                "# partitioned; these settings apply to its partitions: {}",
                printable(&partitions.join(", "))
            );
        }
        let _ = writeln!(s, "[tables.{}]", key(&name));
        // Redshift destinations keep no rows of their own (preserve-destination is PostgreSQL's
        // and files').
        let modes = if source_url.starts_with("redshift://") {
            "de-identify | truncate"
        } else {
            "de-identify | truncate | preserve-destination"
        };
        let _ = writeln!(s, "mode = \"de-identify\"   # {modes}");
        let _ = writeln!(s, "[tables.{}.columns]", key(&name));
        for c in &t.columns {
            let mut notes = vec![c.type_name.clone()];
            if c.not_null {
                notes.push("not null".into());
            }
            if t.primary_key.contains(&c.name) {
                notes.push("primary key".into());
            }
            if let Some(fk) = catalog
                .foreign_keys
                .iter()
                .find(|f| f.table == t.name && f.columns.contains(&c.name))
            {
                notes.push(format!("references {}", fk.referenced));
            }
            if c.generated {
                notes.push("generated".into());
            }
            // The scan's suggestion, when the column was sampled; passthrough otherwise.
            let scanned = found.iter().find(|f| f.table == name && f.column == c.name);
            let (generator, options) = match scanned {
                Some(f) => {
                    let (g, o, comment, _) = crate::scan::entry_for(f, catalog);
                    notes.push(comment);
                    (g, o)
                }
                None => ("passthrough".to_string(), toml::Table::new()),
            };
            // A comment ends at the line's end: control characters of the names it quotes are
            // escaped, so no name can start a line of its own.
            let _ = writeln!(
                s,
                "{:<28} # {}",
                format!(
                    "{} = {}",
                    key(&c.name),
                    crate::scan::inline_entry(&generator, &options, &c.type_name)
                ),
                printable(&notes.join(", "))
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_passwords() {
        assert_eq!(
            strip_password("postgres://u:p@h:5432/db"),
            "postgres://u@h:5432/db"
        );
        assert_eq!(strip_password("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(strip_password("files:./x"), "files:./x");
    }

    #[test]
    fn quotes_odd_keys() {
        assert_eq!(key("email"), "email");
        assert_eq!(key("public.users"), "\"public.users\"");
        assert_eq!(key("Mixed Case"), "\"Mixed Case\"");
        for odd in ["a\nb", "q\"uote", "back\\slash", "bell\u{7}", "'\"\"'"] {
            let text = format!("[t]\n{} = 1\n", key(odd));
            let parsed: toml::Table = toml::from_str(&text).expect("parses");
            assert!(parsed["t"].get(odd).is_some(), "{odd:?}: {text}");
        }
    }
}
