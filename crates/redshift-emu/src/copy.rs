//! Executing `COPY table FROM 's3://…'` the way Redshift reads files: a manifest (honouring
//! `mandatory`) or a bare key prefix (which also matches `t10…` for `t1`), GZIP, IGNOREHEADER per
//! file, and Redshift's CSV rules — with `NULL AS`, an unquoted field equal to it is NULL; an empty
//! field is `''` in character columns (NULL with EMPTYASNULL) and NULL in other columns. Each file
//! is rewritten into PostgreSQL's CSV with an explicit NULL marker and streamed with
//! `COPY … FROM STDIN`, all inside one transaction.

use crate::statement::{Compression, CopyFrom, FileFormat, Rejected};
use crate::unload::split_url;
use bytes::Bytes;
use futures_util::{SinkExt, TryStreamExt};
use mirage_transform::codec::{CsvReader, csv_escape};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use std::io::Read;
use tokio_postgres::Client;

/// The NULL marker of the rewritten files (never data: it holds a NUL-free private-use char).
const MARKER: &str = "\u{F8FF}NULL\u{F8FF}";

/// The keys to load: the manifest's entries (missing mandatory ones are an error) or every key
/// starting with the prefix.
async fn keys(store: &dyn ObjectStore, c: &CopyFrom) -> Result<Vec<String>, Rejected> {
    let (_, key) = split_url(&c.from)?;
    if c.manifest {
        let raw = store
            .get(&Path::from(key))
            .await
            .map_err(|_| Rejected(format!("Manifest file is not found: {}", c.from)))?
            .bytes()
            .await
            .map_err(Rejected::from)?;
        let manifest: serde_json::Value =
            serde_json::from_slice(&raw).map_err(|e| Rejected(format!("Invalid manifest: {e}")))?;
        let mut out = Vec::new();
        for e in manifest["entries"].as_array().cloned().unwrap_or_default() {
            let url = e["url"].as_str().unwrap_or_default();
            let (_, k) = split_url(url)?;
            let exists = store.head(&Path::from(k)).await.is_ok();
            match (exists, e["mandatory"].as_bool().unwrap_or(false)) {
                (true, _) => out.push(k.to_string()),
                (false, true) => {
                    return Err(Rejected(format!(
                        "The specified S3 prefix '{url}' does not exist"
                    )));
                }
                (false, false) => {}
            }
        }
        return Ok(out);
    }
    let parent = key.rsplit_once('/').map_or("", |(p, _)| p);
    let mut out: Vec<String> = store
        .list(Some(&Path::from(parent)))
        .map_ok(|m| m.location.to_string())
        .try_collect::<Vec<_>>()
        .await
        .map_err(Rejected::from)?
        .into_iter()
        .filter(|k| k.starts_with(key))
        .collect();
    out.sort();
    if out.is_empty() {
        return Err(Rejected(format!(
            "The specified S3 prefix '{key}' does not exist"
        )));
    }
    Ok(out)
}

/// Run `c` on `client`, reading from `store` (the bucket named in `c.from`). Returns rows loaded.
pub async fn copy_from(
    client: &Client,
    store: &dyn ObjectStore,
    c: &CopyFrom,
) -> Result<u64, Rejected> {
    if c.format != FileFormat::Csv {
        return Err(Rejected("the emulator loads CSV only".into()));
    }
    if matches!(
        c.compression,
        Some(Compression::Zstd | Compression::Bzip2 | Compression::Lzop)
    ) {
        return Err(Rejected(
            "the emulator reads GZIP or uncompressed files only".into(),
        ));
    }
    // Columns and which of them hold characters (Redshift's empty-field rule depends on it).
    let (schema, table) = c
        .table
        .split_once('.')
        .unwrap_or(("public", c.table.as_str()));
    let rows = client
        .query(
            "SELECT a.attname::text, t.typcategory::text, a.attidentity::text FROM pg_attribute a \
             JOIN pg_class r ON r.oid = a.attrelid JOIN pg_namespace n ON n.oid = r.relnamespace \
             JOIN pg_type t ON t.oid = a.atttypid \
             WHERE n.nspname = $1 AND r.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            &[&schema, &table],
        )
        .await
        .map_err(Rejected::from)?;
    if rows.is_empty() {
        return Err(Rejected(format!("relation \"{}\" does not exist", c.table)));
    }
    let all: Vec<(String, bool, bool)> = rows
        .iter()
        .map(|r| {
            (
                r.get::<_, String>(0),
                r.get::<_, String>(1) == "S",
                r.get::<_, String>(2) == "a",
            )
        })
        .collect();
    let columns: Vec<&(String, bool, bool)> = if c.columns.is_empty() {
        all.iter().collect()
    } else {
        c.columns
            .iter()
            .map(|n| {
                all.iter().find(|a| &a.0 == n).ok_or_else(|| {
                    Rejected(format!(
                        "column \"{n}\" of relation \"{}\" does not exist",
                        c.table
                    ))
                })
            })
            .collect::<Result<_, _>>()?
    };
    if !c.explicit_ids && columns.iter().any(|col| col.2) {
        return Err(Rejected(
            "cannot set an identity column to a value; use EXPLICIT_IDS".into(),
        ));
    }
    let delimiter = c
        .delimiter
        .as_deref()
        .unwrap_or(",")
        .as_bytes()
        .first()
        .copied()
        .unwrap_or(b',');
    let null = c.null_as.clone().unwrap_or_else(|| "\\N".into());
    let list = columns
        .iter()
        .map(|col| format!("\"{}\"", col.0.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(", ");
    let target = c
        .table
        .split('.')
        .map(|p| format!("\"{}\"", p.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(".");
    // Resolve the files first, so a missing one fails before anything is sent.
    let keys = keys(store, c).await?;
    client
        .batch_execute("BEGIN")
        .await
        .map_err(Rejected::from)?;
    let sql = format!("COPY {target} ({list}) FROM STDIN WITH (FORMAT csv, NULL '{MARKER}')");
    let sink = client
        .copy_in::<_, Bytes>(&sql)
        .await
        .map_err(Rejected::from)?;
    let mut sink = Box::pin(sink);
    for key in keys {
        let raw = store
            .get(&Path::from(key.as_str()))
            .await
            .map_err(Rejected::from)?
            .bytes()
            .await
            .map_err(Rejected::from)?;
        let data = if c.compression == Some(Compression::Gzip) {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&raw[..])
                .read_to_end(&mut out)
                .map_err(|e| Rejected(format!("gzip: {key}: {e}")))?;
            out
        } else {
            raw.to_vec()
        };
        // Rewrite into PostgreSQL CSV with the private NULL marker.
        let mut reader = CsvReader::new(&data, delimiter);
        let mut out = Vec::with_capacity(data.len() + data.len() / 8);
        let (mut field, mut record) = (0usize, 0u64);
        let mut value = Vec::new();
        while !reader.at_end() {
            let f = reader
                .next_field()
                .map_err(|e| Rejected(format!("{key}: {}", e.0)))?;
            let skip = record < c.ignore_header;
            if !skip {
                if field > 0 {
                    out.push(b',');
                }
                value.clear();
                reader.decode(f, &mut value);
                let is_char = columns.get(field).is_some_and(|col| col.1);
                let is_null = (!f.quoted && value == null.as_bytes())
                    || (value.is_empty() && (!is_char || c.empty_as_null))
                    || (c.blanks_as_null
                        && is_char
                        && !value.is_empty()
                        && value.iter().all(|b| *b == b' '));
                if is_null {
                    out.extend_from_slice(MARKER.as_bytes());
                } else {
                    if c.accept_inv_chars.is_some() && std::str::from_utf8(&value).is_err() {
                        let fixed = String::from_utf8_lossy(&value)
                            .replace('\u{FFFD}', c.accept_inv_chars.as_deref().unwrap_or("?"));
                        value = fixed.into_bytes();
                    }
                    csv_escape(&value, b',', MARKER.as_bytes(), &mut out);
                }
            }
            field += 1;
            if f.last {
                if !skip {
                    if field != columns.len() {
                        return Err(Rejected(format!(
                            "Load into table '{}' failed. Check 'stl_load_errors' system table for details.",
                            c.table
                        )));
                    }
                    out.push(b'\n');
                }
                field = 0;
                record += 1;
            }
        }
        sink.send(Bytes::from(out)).await.map_err(Rejected::from)?;
    }
    let rows = sink.as_mut().finish().await.map_err(Rejected::from)?;
    client
        .batch_execute("COMMIT")
        .await
        .map_err(Rejected::from)?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use crate::unload::unload;
    use object_store::local::LocalFileSystem;

    #[tokio::test(flavor = "multi_thread")]
    async fn unload_then_copy_round_trips_and_follows_redshift_rules() {
        let (pg, client) = crate::testing::database(
            "CREATE TABLE src (id int, v varchar(100), n int);
             INSERT INTO src VALUES (1, 'plain', 1), (2, NULL, NULL), (3, '', 3), (4, E'a,\"b\"\\nc', 4), (5, ' ', 5);
             CREATE TABLE dst (id int, v varchar(100), n int);
             CREATE TABLE dst2 (id int, v varchar(100), n int);
             CREATE TABLE ids (id int GENERATED ALWAYS AS IDENTITY, v text);",
        )
        .await;
        let dir = tempfile::tempdir().unwrap();
        let store = LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        let u = unload_of(
            "UNLOAD ('select * from src') TO 's3://b/j/t1/' IAM_ROLE default CSV NULL AS '__N__' GZIP HEADER MANIFEST",
        );
        unload(&client, &store, &u).await.unwrap();
        // With the sentinel, NULL and '' come back apart.
        let c = copy_of(
            "COPY dst FROM 's3://b/j/t1/manifest' IAM_ROLE default MANIFEST CSV GZIP NULL AS '__N__' IGNOREHEADER 1",
        );
        assert_eq!(copy_from(&client, &store, &c).await.unwrap(), 5);
        let dump = |t: &str| {
            pg.psql("rs", &format!("SELECT string_agg(id || ':' || coalesce('[' || v || ']', 'NULL') || ':' || coalesce(n::text, 'NULL'), ' ' ORDER BY id) FROM {t}")).unwrap()
        };
        assert_eq!(dump("dst"), dump("src"));
        // Without NULL AS (a bare prefix this time): Redshift's CSV rule turns the NULL text into ''.
        let plain =
            unload_of("UNLOAD ('select * from src') TO 's3://b/j/t2/' IAM_ROLE default CSV");
        unload(&client, &store, &plain).await.unwrap();
        let c = copy_of("COPY dst2 FROM 's3://b/j/t2/' IAM_ROLE default CSV");
        copy_from(&client, &store, &c).await.unwrap();
        assert!(
            dump("dst2").starts_with("1:[plain]:1 2:[]:NULL 3:[]:3"),
            "{}",
            dump("dst2")
        );
        // EMPTYASNULL makes them NULL instead; a prefix matches t2… only, not t1's files.
        pg.psql("rs", "TRUNCATE dst2").unwrap();
        let c = copy_of("COPY dst2 FROM 's3://b/j/t2' IAM_ROLE default CSV EMPTYASNULL");
        assert_eq!(copy_from(&client, &store, &c).await.unwrap(), 5);
        assert!(
            dump("dst2").starts_with("1:[plain]:1 2:NULL:NULL 3:NULL:3"),
            "{}",
            dump("dst2")
        );
        // Identity columns need EXPLICIT_IDS; missing mandatory files fail.
        let c = copy_of("COPY ids (id, v) FROM 's3://b/j/t2/' IAM_ROLE default CSV");
        assert!(
            copy_from(&client, &store, &c)
                .await
                .unwrap_err()
                .0
                .contains("EXPLICIT_IDS")
        );
        std::fs::write(
            dir.path().join("j/bad.manifest"),
            r#"{"entries": [{"url": "s3://b/j/none", "mandatory": true}]}"#,
        )
        .unwrap();
        let c = copy_of("COPY dst2 FROM 's3://b/j/bad.manifest' IAM_ROLE default MANIFEST CSV");
        assert!(
            copy_from(&client, &store, &c)
                .await
                .unwrap_err()
                .0
                .contains("does not exist")
        );
    }
}
