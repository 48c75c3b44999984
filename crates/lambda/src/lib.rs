//! The Lambda handler of the SQS + Lambda process. Each SQS message holds an S3 event for one
//! file UNLOADed to `<prefix>/<job id>/input/<schema>/<table>/`; the handler reads the job's
//! table spec and consistency key from `<prefix>/<job id>/spec/` (written by the worker before
//! the UNLOAD), streams the file through the same [`PartTransform`] as Data Pipeline V2, writes
//! `…/output/<schema>/<table>/<same file name>` and a small result object
//! (`…/results/<schema>/<table>/<file>.json`: records, bytes, seconds, or the error — table,
//! column, record number, never a value), and prints one JSON line per file (CloudWatch Logs).
//!
//! S3 test events and events for unknown jobs are acknowledged and ignored; keys are
//! URL-decoded; the event JSON is read leniently (AWS and moto differ in optional fields). A file
//! that fails is reported as a batch item failure, so SQS retries it and, after the queue's
//! `maxReceiveCount`, moves it to the dead-letter queue; the others of the batch are not retried.
//! The handler never connects to a database.

#![warn(missing_docs)]

use bytes::Bytes;
use mirage_connectors::staging::{self, FileResult, JobFile, Location, Staging};
use mirage_core::QualifiedName;
use mirage_transform::PartTransform;
use mirage_transform::codec::count_records;
use mirage_transform::spec::{ConsistencyKey, TableSpec};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A job's staging area and what the handler read from it once.
struct Job {
    staging: Staging,
    key: ConsistencyKey,
    transforms: Mutex<HashMap<QualifiedName, Arc<PartTransform>>>,
}

/// What one S3 event asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    /// Transform this file.
    File {
        /// The bucket.
        bucket: String,
        /// The object's key, decoded.
        key: String,
    },
    /// Nothing to do (a test event, a manifest, another prefix): acknowledge.
    Ignore(String),
}

/// The handler: S3 clients and jobs are kept between invocations of a warm function.
pub struct Handler {
    region: String,
    endpoint: Option<String>,
    jobs: Mutex<HashMap<(String, String), Arc<Job>>>,
}

/// `+` → space, then `%XX` → byte (S3 event keys).
pub fn decode_key(key: &str) -> String {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The work an SQS message's body asks for: one item per S3 record (test events and bodies that
/// are not S3 events give [`Work::Ignore`]).
pub fn work_of(body: &str) -> Vec<Work> {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return vec![Work::Ignore("a message that is not JSON".into())];
    };
    if v.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return vec![Work::Ignore("the S3 test event".into())];
    }
    let Some(records) = v.get("Records").and_then(Value::as_array) else {
        return vec![Work::Ignore("a message without S3 records".into())];
    };
    records
        .iter()
        .map(|r| {
            let name = r.get("eventName").and_then(Value::as_str).unwrap_or("");
            let bucket = r.pointer("/s3/bucket/name").and_then(Value::as_str);
            let key = r.pointer("/s3/object/key").and_then(Value::as_str);
            match (bucket, key) {
                (Some(b), Some(k))
                    if name.starts_with("ObjectCreated")
                        || name.starts_with("s3:ObjectCreated") =>
                {
                    let key = decode_key(k);
                    match staging::parse_input_key(&key) {
                        Some((_, _, file)) if file == "manifest" => {
                            Work::Ignore(format!("{key} is the UNLOAD manifest"))
                        }
                        Some(_) => Work::File {
                            bucket: b.to_string(),
                            key,
                        },
                        None => Work::Ignore(format!("{key} is not an UNLOAD input file")),
                    }
                }
                _ => Work::Ignore(format!("event {name}")),
            }
        })
        .collect()
}

fn failpoint(kind: &str, table: &QualifiedName) -> bool {
    std::env::var("MIRAGE_FAILPOINT")
        .is_ok_and(|v| v.split(',').any(|f| f == format!("{kind}:{table}")))
}

/// One JSON log line (CloudWatch Logs reads stdout); a closed stdout is ignored.
fn log(line: Value) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{line}");
}

/// Why a file was not transformed.
enum Failure {
    /// The job's spec is gone: the job is over or not mirage's. Acknowledged.
    UnknownJob,
    /// The file failed: reported, retried, and at last dead-lettered.
    Failed(String),
}

impl Handler {
    /// A handler for the function's region (`AWS_REGION`) and S3 endpoint
    /// (`AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`, for moto).
    pub fn from_env() -> Handler {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Handler::new(
            var("AWS_REGION")
                .or_else(|| var("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| "us-east-1".into()),
            var("AWS_ENDPOINT_URL_S3").or_else(|| var("AWS_ENDPOINT_URL")),
        )
    }

    /// A handler for a region and an S3 endpoint other than AWS's.
    pub fn new(region: String, endpoint: Option<String>) -> Handler {
        Handler {
            region,
            endpoint,
            jobs: Mutex::new(HashMap::new()),
        }
    }

    /// Handle an SQS event; returns the `SqsBatchResponse` naming the messages that failed.
    pub async fn handle(&self, event: Value) -> Value {
        let mut failures = Vec::new();
        let records = event
            .get("Records")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for record in records {
            let id = record
                .get("messageId")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let body = record.get("body").and_then(Value::as_str).unwrap_or("");
            let mut failed = false;
            for work in work_of(body) {
                match work {
                    Work::Ignore(why) => log(json!({"event": "ignored", "why": why})),
                    Work::File { bucket, key } => {
                        if self.file(&bucket, &key).await.is_err() {
                            failed = true;
                        }
                    }
                }
            }
            if failed && !id.is_empty() {
                failures.push(json!({ "itemIdentifier": id }));
            }
        }
        json!({ "batchItemFailures": failures })
    }

    /// The job a root belongs to, read once; `None` when it has no spec (not a live job).
    async fn job(&self, bucket: &str, root: &str) -> Result<Option<Arc<Job>>, String> {
        let id = (bucket.to_string(), root.to_string());
        if let Some(j) = self.jobs.lock().ok().and_then(|j| j.get(&id).cloned()) {
            return Ok(Some(j));
        }
        let location = Location {
            bucket: bucket.to_string(),
            region: self.region.clone(),
            endpoint: self.endpoint.clone(),
            root: root.to_string(),
        };
        let probe = Staging::at(
            &location,
            &JobFile {
                version: 1,
                compression: Default::default(),
                kms_key_id: None,
            },
        )
        .map_err(|e| e.to_string())?;
        let Some(job) = probe
            .get(&probe.job_key())
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let job: JobFile = serde_json::from_slice(&job).map_err(|e| format!("job.json: {e}"))?;
        let staging = Staging::at(&location, &job).map_err(|e| e.to_string())?;
        let Some(secret) = staging
            .get(&staging.secret_key())
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let key = ConsistencyKey::from_secret_text(&String::from_utf8_lossy(&secret))
            .map_err(|e| e.to_string())?;
        let job = Arc::new(Job {
            staging,
            key,
            transforms: Mutex::new(HashMap::new()),
        });
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.insert(id, job.clone());
        }
        Ok(Some(job))
    }

    /// Transform one file and report it; `Err` when the message must be retried.
    async fn file(&self, bucket: &str, key: &str) -> Result<(), ()> {
        let Some((root, table, file)) = staging::parse_input_key(key) else {
            return Ok(());
        };
        // Test hooks: `MIRAGE_FAILPOINT=lambda-crash:<schema.table>` ends the process on that
        // table's files (no result, as when Lambda kills a handler out of memory);
        // `lambda-hang:<schema.table>` sleeps past any timeout.
        if failpoint("lambda-crash", &table) {
            log(json!({"event": "crash", "table": table.to_string(), "file": file}));
            std::process::exit(70);
        }
        if failpoint("lambda-hang", &table) {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
        let started = Instant::now();
        let job = match self.job(bucket, &root).await {
            Ok(Some(j)) => j,
            Ok(None) => {
                log(
                    json!({"event": "ignored", "why": "no live mirage job", "table": table.to_string(), "file": file}),
                );
                return Ok(());
            }
            Err(e) => {
                log(
                    json!({"event": "failed", "table": table.to_string(), "file": file, "error": e}),
                );
                return Err(());
            }
        };
        let outcome = self.transform(&job, &table, key, &file).await;
        let mut result = match outcome {
            Ok(r) => r,
            Err(Failure::UnknownJob) => {
                log(
                    json!({"event": "ignored", "why": "no spec for the table", "table": table.to_string(), "file": file}),
                );
                return Ok(());
            }
            Err(Failure::Failed(e)) => FileResult {
                file: file.clone(),
                error: Some(e),
                ..FileResult::default()
            },
        };
        result.seconds = started.elapsed().as_secs_f64();
        let failed = result.error.is_some();
        let report = serde_json::to_vec(&result).unwrap_or_default();
        let written = job
            .staging
            .put(
                &format!("{}{file}.json", job.staging.results_prefix(&table)),
                Bytes::from(report),
            )
            .await;
        log(json!({
            "event": if failed { "file_failed" } else { "file_done" },
            "table": table.to_string(),
            "file": file,
            "records_in": result.records_in,
            "records_out": result.records_out,
            "bytes_in": result.bytes_in,
            "bytes_out": result.bytes_out,
            "seconds": result.seconds,
            "error": result.error,
        }));
        if failed || written.is_err() {
            Err(())
        } else {
            Ok(())
        }
    }

    async fn transform(
        &self,
        job: &Job,
        table: &QualifiedName,
        key: &str,
        file: &str,
    ) -> Result<FileResult, Failure> {
        let transform = {
            let cached = job
                .transforms
                .lock()
                .ok()
                .and_then(|t| t.get(table).cloned());
            match cached {
                Some(t) => t,
                None => {
                    let Some(text) = job
                        .staging
                        .get(&job.staging.spec_key(table))
                        .await
                        .map_err(|e| Failure::Failed(e.to_string()))?
                    else {
                        return Err(Failure::UnknownJob);
                    };
                    let spec = TableSpec::from_json(&String::from_utf8_lossy(&text))
                        .map_err(|e| Failure::Failed(e.to_string()))?;
                    let t = Arc::new(
                        spec.transform(&job.key)
                            .map_err(|e| Failure::Failed(e.to_string()))?,
                    );
                    if let Ok(mut all) = job.transforms.lock() {
                        all.insert(table.clone(), t.clone());
                    }
                    t
                }
            }
        };
        let Some(raw) = job
            .staging
            .get(key)
            .await
            .map_err(|e| Failure::Failed(e.to_string()))?
        else {
            // Gone: the job ended (its files are deleted) — nothing to do.
            return Err(Failure::UnknownJob);
        };
        let compression = job.staging.compression();
        let bytes_in = raw.len() as u64;
        let table_name = table.to_string();
        let done = tokio::task::spawn_blocking(move || {
            let data = staging::decompress(compression, &raw)
                .map_err(|e| format!("{table_name}: the file does not decompress: {e}"))?;
            let records_in = count_records(&staging::format(), &data);
            let mut out = Vec::with_capacity(data.len() + data.len() / 8);
            let stats = transform
                .apply(&data, &mut out)
                .map_err(|e| format!("{table_name}: {e}"))?;
            let packed = staging::compress(compression, &out)
                .map_err(|e| format!("{table_name}: compressing: {e}"))?;
            let raw = (data.len() as u64, out.len() as u64);
            Ok::<_, String>((records_in, stats.rows, packed, raw))
        })
        .await
        .map_err(|e| Failure::Failed(format!("the transform task failed: {e}")))?
        .map_err(Failure::Failed)?;
        let (records_in, records_out, packed, raw_bytes) = done;
        let bytes_out = packed.len() as u64;
        let out_key = format!("{}{file}", job.staging.output_prefix(table));
        job.staging
            .put(&out_key, Bytes::from(packed))
            .await
            .map_err(|e| Failure::Failed(e.to_string()))?;
        Ok(FileResult {
            file: file.to_string(),
            records_in,
            records_out,
            bytes_in,
            bytes_out,
            raw_bytes,
            seconds: 0.0,
            error: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_decoded() {
        assert_eq!(decode_key("a+b%2Fc%3D"), "a b/c=");
        assert_eq!(decode_key("100%"), "100%");
        assert_eq!(decode_key("%zz"), "%zz");
        assert_eq!(decode_key("caf%C3%A9"), "café");
    }

    #[test]
    fn events_are_read_leniently() {
        assert_eq!(
            work_of(r#"{"Service":"Amazon S3","Event":"s3:TestEvent"}"#),
            [Work::Ignore("the S3 test event".into())]
        );
        // moto: no userIdentity, eventTime without a zone, `/` as %2F.
        let moto = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventTime":"2026-01-01T00:00:00.000","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"m%2Fjob%2Finput%2Fsales%2Forders%2F0000_part_00.zst","size":3}}}]}"#;
        assert_eq!(
            work_of(moto),
            [Work::File {
                bucket: "b".into(),
                key: "m/job/input/sales/orders/0000_part_00.zst".into()
            }]
        );
        let manifest = r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"m/job/input/sales/orders/manifest"}}}]}"#;
        assert!(matches!(&work_of(manifest)[0], Work::Ignore(_)));
        let output = r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"m/job/output/sales/orders/x"}}}]}"#;
        assert!(matches!(&work_of(output)[0], Work::Ignore(_)));
        assert!(matches!(&work_of("not json")[0], Work::Ignore(_)));
    }
}
