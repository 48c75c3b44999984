//! Executing `UNLOAD` against PostgreSQL and an object store, the way Redshift lays out its output:
//! files `<prefix>NNNN_part_NN[.gz]` per slice (a new part when MAXFILESIZE is reached), a header in
//! every file when asked, and a manifest at `<prefix>manifest` (VERBOSE adds sizes, record counts
//! and the schema). Existing files under the prefix make UNLOAD fail unless ALLOWOVERWRITE or
//! CLEANPATH is given, as on Redshift.

use crate::csvfile::RecordCutter;
use crate::statement::{Compression, FileFormat, Rejected, Unload};
use crate::wire::Backend;
use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

/// Slices of the emulated cluster: PARALLEL ON writes one file series per slice.
pub const SLICES: usize = 2;

/// What an UNLOAD wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct UnloadOutcome {
    /// (s3 url, bytes as stored, records) of every data file, in order.
    pub files: Vec<(String, u64, u64)>,
    /// Records unloaded over all files (header lines not counted).
    pub rows: u64,
}

/// `s3://bucket/key…` → (bucket, key).
pub fn split_url(url: &str) -> Result<(&str, &str), Rejected> {
    url.strip_prefix("s3://")
        .and_then(|r| r.split_once('/'))
        .ok_or_else(|| Rejected(format!("S3 path \"{url}\" has no bucket and key")))
}

/// One slice's output files, being filled.
struct Slice {
    index: usize,
    part: usize,
    buffer: Vec<u8>,
    records: u64,
}

/// Run `u` in the backend's session (so the user's privileges apply), writing to `store` (the
/// bucket named in `u.to`).
pub async fn unload(
    backend: &mut Backend,
    store: &dyn ObjectStore,
    u: &Unload,
) -> Result<UnloadOutcome, Rejected> {
    if !matches!(u.format, FileFormat::Csv | FileFormat::Text) {
        return Err(Rejected("the emulator unloads CSV and text only".into()));
    }
    if matches!(u.compression, Some(Compression::Bzip2 | Compression::Lzop)) {
        return Err(Rejected("the emulator compresses with GZIP or ZSTD".into()));
    }
    let (bucket, prefix) = split_url(&u.to)?;
    // Existing files under the prefix.
    let existing: Vec<Path> = store
        .list(Some(&Path::from(prefix.trim_end_matches('/'))))
        .map_ok(|m| m.location)
        .try_collect::<Vec<_>>()
        .await
        .map_err(Rejected::from)?
        .into_iter()
        .filter(|p| p.as_ref().starts_with(prefix))
        .collect();
    if !existing.is_empty() {
        if u.clean_path {
            for p in existing {
                store.delete(&p).await.map_err(Rejected::from)?;
            }
        } else if !u.allow_overwrite {
            return Err(Rejected(
                "Specified unload destination on S3 is not empty. Consider using a different bucket / prefix, \
                 manually removing the target files in S3, or using the ALLOWOVERWRITE option."
                    .into(),
            ));
        }
    }
    let described = backend.describe_query(&u.query).await?;
    let names: Vec<String> = described.iter().map(|c| c.0.clone()).collect();
    let oids = described
        .iter()
        .map(|c| c.1.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let type_names = backend
        .run(
            "SELECT t.oid::text, t.typname::text FROM pg_type t WHERE t.oid = ANY($1::oid[])",
            &[Some(&format!("{{{oids}}}"))],
        )
        .await?;
    let types: Vec<String> = described
        .iter()
        .map(|c| {
            type_names
                .rows
                .iter()
                .find(|r| r[0].as_deref() == Some(&c.1.to_string()))
                .and_then(|r| r[1].clone())
                .unwrap_or_default()
        })
        .collect();
    let delimiter = u.delimiter.clone().unwrap_or_else(|| {
        if u.format == FileFormat::Csv {
            ",".into()
        } else {
            "|".into()
        }
    });
    if delimiter.len() != 1 {
        return Err(Rejected("DELIMITER must be a single character".into()));
    }
    let null = u.null_as.clone().unwrap_or_default();
    // The comment names the target as Redshift's `stv_recents.query` shows the UNLOAD, so a
    // session can find a running UNLOAD by where it writes and cancel it.
    let sql = format!(
        "/* UNLOAD TO '{}' */ COPY ({}) TO STDOUT WITH (FORMAT {}, DELIMITER '{}', NULL '{}')",
        u.to.replace("*/", "* /"),
        u.query,
        if u.format == FileFormat::Csv {
            "csv"
        } else {
            "text"
        },
        delimiter.replace('\'', "''"),
        null.replace('\'', "''")
    );
    let mut cutter = if u.format == FileFormat::Csv {
        RecordCutter::csv(delimiter.as_bytes()[0])
    } else {
        RecordCutter::text()
    };
    let header = if u.header {
        crate::csvfile::record(&names, delimiter.as_bytes()[0])
    } else {
        Vec::new()
    };
    let slices = if u.parallel { SLICES } else { 1 };
    let max = u.max_file_size.unwrap_or(6_200 << 20) as usize;
    let mut state: Vec<Slice> = (0..slices)
        .map(|index| Slice {
            index,
            part: 0,
            buffer: header.clone(),
            records: 0,
        })
        .collect();
    let mut out = UnloadOutcome {
        files: Vec::new(),
        rows: 0,
    };
    let name = |s: &Slice| {
        let ext = crate::compress::extension(u.compression);
        let extra = u
            .extension
            .as_deref()
            .map(|e| format!(".{}", e.trim_start_matches('.')))
            .unwrap_or_default();
        if u.parallel {
            format!("{prefix}{:04}_part_{:02}{extra}{ext}", s.index, s.part)
        } else {
            format!("{prefix}{:03}{extra}{ext}", s.part)
        }
    };
    let compress = |data: &[u8]| -> Result<Vec<u8>, Rejected> {
        crate::compress::compress(u.compression, data)
            .map_err(|e| Rejected(format!("compressing: {e}")))
    };
    async fn flush(
        store: &dyn ObjectStore,
        path: String,
        data: Vec<u8>,
        records: u64,
        bucket: &str,
        out: &mut UnloadOutcome,
    ) -> Result<(), Rejected> {
        let len = data.len() as u64;
        store
            .put(&Path::from(path.as_str()), Bytes::from(data).into())
            .await
            .map_err(Rejected::from)?;
        out.files
            .push((format!("s3://{bucket}/{path}"), len, records));
        Ok(())
    }
    // Records go to slices in turns of about 1 MB, like rows spread over a cluster's slices.
    backend.copy_out_start(&sql).await?;
    let mut pending: Vec<u8> = Vec::new();
    let mut turn = 0usize;
    let mut done = false;
    while !done {
        match backend.copy_out_next().await? {
            Some(chunk) => pending.extend_from_slice(&chunk),
            None => done = true,
        }
        if pending.len() < (1 << 20) && !done {
            continue;
        }
        let (records, n) = cutter.cut(&mut pending, done);
        if records.is_empty() {
            continue;
        }
        out.rows += n;
        let slice = &mut state[turn % slices];
        turn += 1;
        if slice.records > 0 && slice.buffer.len() + records.len() > max {
            let data = std::mem::replace(&mut slice.buffer, header.clone());
            let path = name(slice);
            let written = match compress(&data) {
                Ok(z) => flush(store, path, z, slice.records, bucket, &mut out).await,
                Err(e) => Err(e),
            };
            if let Err(e) = written {
                // Leave the session usable: read the rest of the COPY before failing.
                backend.copy_out_drain().await?;
                return Err(e);
            }
            slice.part += 1;
            slice.records = 0;
        }
        slice.buffer.extend_from_slice(&records);
        slice.records += n;
    }
    for slice in &mut state {
        // Every slice writes a file, even an empty one (Redshift's CSV unload does too).
        let data = std::mem::take(&mut slice.buffer);
        let path = name(slice);
        flush(
            store,
            path,
            compress(&data)?,
            slice.records,
            bucket,
            &mut out,
        )
        .await?;
    }
    if u.manifest {
        let entries: Vec<serde_json::Value> = out
            .files
            .iter()
            .map(|(url, len, records)| {
                if u.manifest_verbose {
                    serde_json::json!({"url": url, "meta": {"content_length": len, "record_count": records}})
                } else {
                    serde_json::json!({"url": url})
                }
            })
            .collect();
        let mut manifest = serde_json::json!({ "entries": entries });
        if u.manifest_verbose {
            manifest["schema"] = serde_json::json!({
                "elements": names.iter().zip(&types).map(|(n, t)| serde_json::json!({"name": n, "type": {"base": t}})).collect::<Vec<_>>()
            });
            manifest["meta"] = serde_json::json!({
                "content_length": out.files.iter().map(|f| f.1).sum::<u64>(),
                "record_count": out.rows + if u.header { out.files.len() as u64 } else { 0 },
            });
            manifest["author"] = serde_json::json!({"name": "Amazon Redshift", "version": "1.0.0"});
        }
        let text = serde_json::to_vec_pretty(&manifest).map_err(|e| Rejected(e.to_string()))?;
        store
            .put(
                &Path::from(format!("{prefix}manifest").as_str()),
                Bytes::from(text).into(),
            )
            .await
            .map_err(Rejected::from)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csvfile::FieldReader;
    use crate::testing::*;
    use object_store::local::LocalFileSystem;
    use std::io::Read;

    #[tokio::test(flavor = "multi_thread")]
    async fn unload_writes_redshift_shaped_parts_and_a_manifest() {
        let (_pg, mut client) = crate::testing::database(
            "CREATE TABLE t (id int, v text);
             INSERT INTO t SELECT i, CASE i % 4 WHEN 0 THEN NULL WHEN 1 THEN '' WHEN 2 THEN E'a,\"b\"\\nc' ELSE repeat('x', 80) END
             FROM generate_series(1, 400000) i;",
        )
        .await;
        let dir = tempfile::tempdir().unwrap();
        let store = LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        let u = unload_of(
            "UNLOAD ('select id, v from t') TO 's3://bucket/job/input/t/' IAM_ROLE default \
             CSV NULL AS '__NULL__' GZIP PARALLEL ON MAXFILESIZE 5 MB MANIFEST VERBOSE",
        );
        let out = run_unload(&mut client, &store, &u).await.unwrap();
        assert_eq!(out.rows, 400_000);
        assert!(out.files.len() > SLICES, "{:?}", out.files);
        assert!(
            out.files
                .iter()
                .all(|f| f.0.starts_with("s3://bucket/job/input/t/00") && f.0.ends_with(".gz"))
        );
        // Every file decompresses to whole CSV records; NULL and '' stay apart.
        let (mut nulls, mut empties, mut rows) = (0, 0, 0);
        for (url, len, records) in &out.files {
            let key = url.strip_prefix("s3://bucket/").unwrap();
            let raw = std::fs::read(dir.path().join(key)).unwrap();
            assert_eq!(raw.len() as u64, *len);
            let mut text = Vec::new();
            flate2::read::GzDecoder::new(&raw[..])
                .read_to_end(&mut text)
                .unwrap();
            assert!(
                text.len() <= (5 << 20) + (1 << 20),
                "MAXFILESIZE respected (approximately)"
            );
            let mut r = FieldReader::new(&text, b',');
            let mut n = 0;
            while let Some(f) = r.next_field().unwrap() {
                if !f.last {
                    continue;
                }
                n += 1;
                let v = r.value();
                nulls += usize::from(v == b"__NULL__" && !f.quoted);
                // With a NULL sentinel, an empty field (quoted or not) is the empty string.
                empties += usize::from(v.is_empty());
            }
            assert_eq!(n, *records);
            rows += n;
        }
        assert_eq!((rows, nulls, empties), (400_000, 100_000, 100_000));
        let manifest: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.path().join("job/input/t/manifest")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            manifest["entries"].as_array().unwrap().len(),
            out.files.len()
        );
        assert_eq!(manifest["meta"]["record_count"], 400_000);
        assert_eq!(manifest["schema"]["elements"][1]["name"], "v");
        // Existing files: refused, unless CLEANPATH (which removes them) or ALLOWOVERWRITE.
        let again = run_unload(&mut client, &store, &u).await.unwrap_err();
        assert!(again.0.contains("not empty"), "{again}");
        let small = unload_of(
            "UNLOAD ('select id from t where id <= 10') TO 's3://bucket/job/input/t/' IAM_ROLE default CSV PARALLEL OFF CLEANPATH HEADER",
        );
        let out = run_unload(&mut client, &store, &small).await.unwrap();
        assert_eq!(out.files.len(), 1);
        let left = std::fs::read_dir(dir.path().join("job/input/t"))
            .unwrap()
            .count();
        assert_eq!(
            left, 1,
            "CLEANPATH removed the earlier parts and the manifest"
        );
        let text = std::fs::read_to_string(dir.path().join("job/input/t/000")).unwrap();
        assert!(text.starts_with("id\n1\n"), "{text}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn blank_lines_and_quoted_line_breaks_count_as_one_record_each() {
        let (_pg, mut client) = crate::testing::database(
            "CREATE TABLE t (id int, \"odd, \"\"name\"\"\" text);
             INSERT INTO t VALUES (1, NULL), (2, ''), (3, E'two\\nlines'), (4, E'cr\\r\\nlf'), (5, NULL);",
        )
        .await;
        let dir = tempfile::tempdir().unwrap();
        let store = LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        // One column without NULL AS: a NULL is an empty line, which is still a record.
        let u = unload_of(
            "UNLOAD ('select \"odd, \"\"name\"\"\" from t order by id') TO 's3://b/one/' IAM_ROLE default \
             CSV HEADER PARALLEL OFF MANIFEST VERBOSE",
        );
        let out = run_unload(&mut client, &store, &u).await.unwrap();
        assert_eq!((out.rows, out.files[0].2), (5, 5));
        let text = std::fs::read_to_string(dir.path().join("one/000")).unwrap();
        assert_eq!(
            text,
            "\"odd, \"\"name\"\"\"\n\n\"\"\n\"two\nlines\"\n\"cr\r\nlf\"\n\n"
        );
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("one/manifest")).unwrap())
                .unwrap();
        assert_eq!(manifest["meta"]["record_count"], 6, "5 rows and the header");
    }
}
