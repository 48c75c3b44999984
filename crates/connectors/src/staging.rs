//! The job's S3 staging area: `s3://<bucket>/<prefix>/<job-id>/{input,output}/<schema>/<table>/`.
//! Every job has its own folder, so a re-run after a crash never meets the previous job's files;
//! input files go once a table's parts are read, output files once it is loaded (unless kept),
//! and the job's folder at the end.
//!
//! Used by the Redshift connector (UNLOAD reads, COPY files and manifests) and by the Lambda
//! handler, which transforms one `input/` file into one `output/` file: the layout
//! ([`Staging::input_prefix`], [`Staging::output_prefix`]), the file format ([`format()`],
//! [`NULL_SENTINEL`]), compression ([`compress`], [`decompress`]) and the manifest writer
//! ([`Staging::write_manifest`]) are public here.

use crate::check::Checks;
use crate::{ChunkStream, ConnectorError, Format, PartStream, Result};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use mirage_core::QualifiedName;
use mirage_core::workspace::{Compression, StagingConfig};
use mirage_transform::codec::{RecordSplitter, count_records};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use std::io::Read;
use std::sync::Arc;

/// Test hook: `MIRAGE_FAILPOINT=s3-write:<schema.table>` fails writing that table's output;
/// `copy:<schema.table>` writes a malformed record into it so the COPY fails.
fn failpoint(kind: &str, table: &QualifiedName) -> bool {
    std::env::var("MIRAGE_FAILPOINT")
        .is_ok_and(|v| v.split(',').any(|f| f == format!("{kind}:{table}")))
}

/// What UNLOAD writes for NULL, so NULL and '' stay apart through CSV (a value equal to it would
/// read back as NULL).
pub const NULL_SENTINEL: &str = "__MIRAGE_NULL__";

/// The record format of staged files: CSV, comma-separated, NULL as [`NULL_SENTINEL`].
pub fn format() -> Format {
    Format::Csv {
        delimiter: b',',
        null: NULL_SENTINEL.as_bytes().to_vec(),
    }
}

/// Size of an output file before compression (at most: a COPY batch may be smaller).
const OUTPUT_FILE: usize = 16 << 20;

/// A job's folder in the staging bucket, and the object store behind it.
pub struct Staging {
    store: Arc<dyn ObjectStore>,
    bucket: String,
    /// `<prefix>/<job-id>`
    root: String,
    iam_role: String,
    kms_key_id: Option<String>,
    keep_output: bool,
    max_file_size: u64,
    compression: Compression,
    /// Bytes (before compression) of files loaded by one COPY.
    copy_batch: usize,
    region: String,
    endpoint: Option<String>,
    /// Statements writing into the job's folder (UNLOADs) that may still run.
    writers: std::sync::Mutex<Vec<Writer>>,
}

/// A statement writing into the staging folder: whether it ended, and how to stop it.
pub struct Writer {
    /// Becomes true when the statement ends.
    pub done: tokio::sync::watch::Receiver<bool>,
    /// Asks the server to stop it.
    pub cancel: Box<dyn FnOnce() -> futures_util::future::BoxFuture<'static, ()> + Send>,
}

fn s3_error(what: String) -> impl FnOnce(object_store::Error) -> ConnectorError {
    move |e| ConnectorError::Database {
        what,
        detail: e.to_string(),
    }
}

/// The S3 client of a bucket: credentials and region from the environment (or the arguments),
/// SSE-KMS on every put when a key is given.
fn s3_store(
    bucket: &str,
    region: &str,
    endpoint: Option<&str>,
    kms_key_id: Option<&str>,
) -> Result<object_store::aws::AmazonS3> {
    // Parts are not hashed for the request signature (S3 is reached over TLS, which
    // protects the body): hashing every byte cost the worker about 2% of a table's CPU.
    let mut b = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_region(region)
        .with_credentials(Arc::new(crate::aws::ChainCredentials::default()))
        .with_unsigned_payload(true);
    if let Some(e) = endpoint.filter(|e| !e.is_empty()) {
        b = b.with_endpoint(e).with_allow_http(e.starts_with("http://"));
    }
    if let Some(k) = kms_key_id {
        b = b.with_sse_kms_encryption(k);
    }
    b.build()
        .map_err(|e| ConnectorError::Invalid(format!("staging bucket {bucket}: {e}")))
}

/// How long a job's lease may go unrenewed before the job counts as dead (killed) and the
/// next job removes what it left.
pub const DEAD_AFTER: std::time::Duration = std::time::Duration::from_secs(600);

/// [`DEAD_AFTER`], or `$MIRAGE_DEAD_AFTER` seconds (tests, and operators who know a job is
/// gone).
/// After how long a `mirage check` probe (object, queue) is left over from a killed check.
pub fn probe_bound() -> std::time::Duration {
    dead_after().min(std::time::Duration::from_secs(120))
}

/// After how many seconds without a renewal a job is dead.
pub fn dead_after_secs() -> u64 {
    dead_after().as_secs()
}

fn dead_after() -> std::time::Duration {
    std::env::var("MIRAGE_DEAD_AFTER")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(DEAD_AFTER, std::time::Duration::from_secs)
}

/// How often a running job renews its lease.
const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(60);

/// Where a job's staging area is, for a worker that has no workspace (the Lambda handler finds
/// it in an S3 event).
#[derive(Debug, Clone)]
pub struct Location {
    /// The bucket.
    pub bucket: String,
    /// Its region.
    pub region: String,
    /// An S3 endpoint other than AWS's (moto, MinIO), if any.
    pub endpoint: Option<String>,
    /// `<prefix>/<job-id>`
    pub root: String,
}

/// What the worker tells the Lambda handler about a job (`<root>/spec/job.json`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct JobFile {
    /// The version of this file.
    pub version: u32,
    /// How input files come and output files go.
    pub compression: Compression,
    /// The KMS key output files are encrypted with, if any.
    pub kms_key_id: Option<String>,
}

/// This machine, as a lease names it: host name and boot id (two machines with one name, or
/// one machine rebooted, differ). Empty where neither can be read.
fn host_id() -> String {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    format!(
        "{}/{}",
        read("/proc/sys/kernel/hostname"),
        read("/proc/sys/kernel/random/boot_id")
    )
}

/// A destination's identity (`host:port/db`) as a key segment: letters, digits and `-` kept,
/// anything else `_`, then a hash of the whole identity so that two never share a name.
fn destination_name(identity: &str) -> String {
    let readable: String = identity
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // FNV-1a, 64 bits: stable across versions and machines.
    let hash = identity.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{readable}-{hash:016x}")
}

/// Whether process `pid` of this machine runs mirage.
fn mirage_alive(pid: u32) -> bool {
    host_id() != "/"
        && std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains("mirage"))
            .unwrap_or(false)
}

/// Whether a name is a job id: `YYYYMMDD-HHMMSS-xxxx`.
pub fn is_job_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'-'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15] == b'-'
        && b[16..].iter().all(u8::is_ascii_hexdigit)
}

/// What a job's lease says of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Running (or kept on purpose, or this job).
    Alive,
    /// Its lease is missing or older than the bound: its folder and resources may go.
    Dead,
    /// Its process `pid` is gone from this machine, but its lease is only `age` seconds old.
    Stopped {
        /// The process that ran it.
        pid: u32,
        /// Seconds since its lease was renewed.
        age: i64,
    },
}

/// Seconds since a Unix time.
fn chrono_age(then: i64) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    now - then
}

/// The outcome of one file's transform, written by the Lambda handler next to the output
/// (`<root>/results/<schema>/<table>/<file>.json`). Never holds a value.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FileResult {
    /// The input file's name.
    pub file: String,
    /// Records read.
    pub records_in: u64,
    /// Records written.
    pub records_out: u64,
    /// Bytes read (as stored).
    pub bytes_in: u64,
    /// Bytes written (as stored).
    pub bytes_out: u64,
    /// Bytes read and written, uncompressed (0 from handlers that did not say).
    #[serde(default)]
    pub raw_bytes: (u64, u64),
    /// Seconds the transform took.
    pub seconds: f64,
    /// Why it failed: table, column and record number, never a value.
    pub error: Option<String>,
}

/// A schema or table name as one folder of the layout: letters, digits, `_` and `-` as they
/// are, every other byte as `+HH`. So any name — with `/`, `%`, `?`, spaces, `..` or unicode —
/// is one plain path segment that S3, its event notifications and object_store all keep as is.
pub fn folder(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    if out.is_empty() {
        out.push('+');
    }
    out
}

/// The name a [`folder`] stands for; `None` when it is not one.
pub fn unfolder(folder: &str) -> Option<String> {
    if folder == "+" {
        return Some(String::new());
    }
    let b = folder.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'+' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// An UNLOAD file's key, `<root>/input/<schema>/<table>/<file>`: (root, table, file name).
pub fn parse_input_key(key: &str) -> Option<(String, QualifiedName, String)> {
    let parts: Vec<&str> = key.split('/').collect();
    let n = parts.len();
    if n < 5 || parts[n - 4] != "input" || parts[n - 1].is_empty() {
        return None;
    }
    Some((
        parts[..n - 4].join("/"),
        QualifiedName::new(unfolder(parts[n - 3])?, unfolder(parts[n - 2])?),
        parts[n - 1].to_string(),
    ))
}

impl Staging {
    /// The staging area of job `job_id` as `[staging]` configures it (no request is made).
    pub fn new(config: &StagingConfig, job_id: &str) -> Result<Staging> {
        let store = s3_store(
            &config.bucket,
            &config.region,
            config.endpoint.as_deref(),
            config.kms_key_id.as_deref(),
        )?;
        Ok(Staging {
            store: Arc::new(store),
            bucket: config.bucket.clone(),
            root: format!("{}/{job_id}", config.prefix),
            iam_role: config.iam_role.clone(),
            kms_key_id: config.kms_key_id.clone(),
            keep_output: config.keep_output,
            compression: config.compression,
            max_file_size: config.max_file_size.0,
            copy_batch: config.copy_batch.0 as usize,
            region: config.region.clone(),
            endpoint: config.endpoint.clone().filter(|e| !e.is_empty()),
            writers: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// A job's staging area at `location`, as the Lambda handler sees it: files compressed as
    /// `job` says, output encrypted with its KMS key.
    pub fn at(location: &Location, job: &JobFile) -> Result<Staging> {
        let store = s3_store(
            &location.bucket,
            &location.region,
            location.endpoint.as_deref(),
            job.kms_key_id.as_deref(),
        )?;
        Ok(Staging {
            store: Arc::new(store),
            bucket: location.bucket.clone(),
            root: location.root.clone(),
            iam_role: String::new(),
            kms_key_id: job.kms_key_id.clone(),
            keep_output: false,
            compression: job.compression,
            max_file_size: 0,
            copy_batch: 0,
            region: location.region.clone(),
            endpoint: location.endpoint.clone(),
            writers: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// `<prefix>`: the folder every job's folder is in.
    fn jobs_prefix(&self) -> &str {
        self.root.rsplit_once('/').map_or("", |(p, _)| p)
    }

    /// This job's id (the last segment of the root).
    pub fn job_id(&self) -> &str {
        self.root.rsplit('/').next().unwrap_or(&self.root)
    }

    /// `<prefix>/<job id>/lease`: renewed while the job runs.
    fn lease_key_of(&self, job_id: &str) -> String {
        format!("{}/{job_id}/lease", self.jobs_prefix())
    }

    /// Write the lease now, then renew it every minute until the returned task is aborted (the
    /// job's end): a job whose lease is older than [`DEAD_AFTER`] is dead.
    pub async fn hold_lease(self: &Arc<Self>) -> Result<tokio::task::JoinHandle<()>> {
        let renew = |me: Arc<Staging>| async move {
            let body = serde_json::json!({
                "job": me.job_id(),
                "host": host_id(),
                "pid": std::process::id(),
                "renewed": std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0),
            });
            me.put(&me.lease_key_of(me.job_id()), body.to_string().into())
                .await
        };
        renew(self.clone()).await?;
        let me = self.clone();
        Ok(tokio::spawn(async move {
            loop {
                tokio::time::sleep(HEARTBEAT).await;
                if let Err(e) = renew(me.clone()).await {
                    tracing::warn!(error = %e, "could not renew the job's lease");
                }
            }
        }))
    }

    /// Whether another job under the same prefix is dead: its lease is missing or older than
    /// [`DEAD_AFTER`]. This job is never dead.
    pub async fn is_dead(&self, job_id: &str) -> Result<bool> {
        Ok(self.liveness(job_id).await? == Liveness::Dead)
    }

    /// Whether another job under the same prefix is alive, dead, or stopped too recently to
    /// be called dead.
    pub async fn liveness(&self, job_id: &str) -> Result<Liveness> {
        if job_id == self.job_id() {
            return Ok(Liveness::Alive);
        }
        let kept = format!("{}/{job_id}/kept", self.jobs_prefix());
        if self.store.head(&Path::from(kept.as_str())).await.is_ok() {
            return Ok(Liveness::Alive);
        }
        let key = self.lease_key_of(job_id);
        match self.store.get(&Path::from(key.as_str())).await {
            Ok(got) => {
                let age = chrono_age(got.meta.last_modified.timestamp());
                let body = got.bytes().await.unwrap_or_default();
                let lease: serde_json::Value =
                    serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                let pid = lease["pid"].as_u64().map(|p| p as u32);
                let here = lease["host"].as_str() == Some(host_id().as_str());
                // A job of this machine whose process still runs is alive, however old its
                // lease (a stalled renewal, or a short MIRAGE_DEAD_AFTER).
                if here && pid.is_some_and(mirage_alive) {
                    return Ok(Liveness::Alive);
                }
                if age > dead_after().as_secs() as i64 {
                    return Ok(Liveness::Dead);
                }
                // Its process is gone from this machine, but another machine's job could
                // share the name and the boot (containers on the host's network): wait for the
                // lease to age.
                Ok(match (here, pid) {
                    (true, Some(pid)) => Liveness::Stopped { pid, age },
                    _ => Liveness::Alive,
                })
            }
            Err(object_store::Error::NotFound { .. }) => Ok(Liveness::Dead),
            Err(e) => Err(s3_error(format!("reading {}", self.url(&key)))(e)),
        }
    }

    /// Jobs of this machine whose process is gone but whose lease is still young: removed by
    /// a later sweep (or at once with `MIRAGE_DEAD_AFTER=0`).
    pub async fn stopped_jobs(&self) -> Result<Vec<(String, u32, i64)>> {
        let mut out = Vec::new();
        for id in self.job_folders().await? {
            if let Liveness::Stopped { pid, age } = self.liveness(&id).await? {
                out.push((id, pid, age));
            }
        }
        Ok(out)
    }

    /// The job folders under the prefix (`_…` folders are not jobs').
    async fn job_folders(&self) -> Result<Vec<String>> {
        let prefix = self.jobs_prefix().to_string();
        let listed = self
            .store
            .list_with_delimiter(Some(&Path::from(prefix.as_str())))
            .await
            .map_err(s3_error(format!("listing {}", self.url(&prefix))))?;
        Ok(listed
            .common_prefixes
            .iter()
            .map(|p| p.filename().unwrap_or_default().to_string())
            .filter(|id| is_job_id(id))
            .collect())
    }

    /// The ids of dead jobs that left a folder under the prefix (only folders named like job
    /// ids are jobs'; anything else under the prefix is never touched).
    pub async fn dead_jobs(&self) -> Result<Vec<String>> {
        let mut dead = Vec::new();
        for id in self.job_folders().await? {
            if self.is_dead(&id).await? {
                dead.push(id);
            }
        }
        Ok(dead)
    }

    /// Delete a dead job's folder (its raw UNLOAD files included).
    pub async fn remove_job(&self, job_id: &str) -> Result<()> {
        self.delete_prefix(&format!("{}/{job_id}/", self.jobs_prefix()))
            .await
    }

    /// What the Lambda handler needs to know about this job.
    pub fn job_file(&self) -> JobFile {
        JobFile {
            version: 1,
            compression: self.compression,
            kms_key_id: self.kms_key_id.clone(),
        }
    }

    /// `<root>/spec/job.json`
    pub fn job_key(&self) -> String {
        format!("{}/spec/job.json", self.root)
    }

    /// `<root>/spec/key`: the consistency key, an object of its own.
    pub fn secret_key(&self) -> String {
        format!("{}/spec/key", self.root)
    }

    /// `<root>/spec/<schema>/<table>.json`: a table's spec.
    pub fn spec_key(&self, t: &QualifiedName) -> String {
        format!(
            "{}/spec/{}/{}.json",
            self.root,
            folder(&t.schema),
            folder(&t.name)
        )
    }

    /// `<root>/results/<schema>/<table>/`: where the handler reports each file.
    pub fn results_prefix(&self, t: &QualifiedName) -> String {
        format!(
            "{}/results/{}/{}/",
            self.root,
            folder(&t.schema),
            folder(&t.name)
        )
    }

    /// An object's bytes; `None` when there is no such object.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let what = format!("reading {}", self.url(key));
        match self.store.get(&Path::from(key)).await {
            Ok(r) => Ok(Some(r.bytes().await.map_err(s3_error(what))?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(s3_error(what)(e)),
        }
    }

    /// Store an object (encrypted with the job's KMS key when there is one).
    pub async fn put(&self, key: &str, data: Bytes) -> Result<()> {
        self.store
            .put(&Path::from(key), data.into())
            .await
            .map(|_| ())
            .map_err(s3_error(format!("writing {}", self.url(key))))
    }

    /// `<prefix>/_destinations/<destination>.<what>`: what the jobs writing one destination
    /// share (its lock, the foreign keys a job dropped). Outside every job's folder: no sweep
    /// removes it.
    pub fn destination_key(&self, destination: &str, what: &str) -> String {
        format!(
            "{}/_destinations/{}.{what}",
            self.jobs_prefix(),
            destination_name(destination)
        )
    }

    /// Remove the locks of destinations whose job is dead; their ids.
    pub async fn free_dead_locks(&self) -> Result<Vec<String>> {
        let mut freed = Vec::new();
        let prefix = format!("{}/_destinations/", self.jobs_prefix());
        for (key, _) in self.list(&prefix).await? {
            if !key.ends_with(".lock") {
                continue;
            }
            let Some(body) = self.get(&key).await? else {
                continue;
            };
            let Ok(tag) = serde_json::from_slice::<crate::JobTag>(&body) else {
                continue;
            };
            if self.liveness(&tag.job).await? != Liveness::Alive {
                self.delete(&key).await?;
                freed.push(tag.job);
            }
        }
        Ok(freed)
    }

    /// Take `destination` for this job: `Ok(None)` once held, `Ok(Some(holder))` when a live
    /// job holds it. The lock is an object created only if absent (S3 conditional writes); one
    /// whose job is dead, or whose process is gone from this machine, is taken over (only if
    /// unchanged since read, so two jobs never both take it).
    pub async fn take_destination(
        &self,
        destination: &str,
        tag: &crate::JobTag,
    ) -> Result<Option<String>> {
        use object_store::{PutMode, PutOptions, UpdateVersion};
        let key = self.destination_key(destination, "lock");
        let path = Path::from(key.as_str());
        let body = Bytes::from(serde_json::to_vec(tag).unwrap_or_default());
        let what = || format!("locking the destination with {}", self.url(&key));
        for _ in 0..5 {
            let create = PutOptions::from(PutMode::Create);
            match self
                .store
                .put_opts(&path, body.clone().into(), create)
                .await
            {
                Ok(_) => return Ok(None),
                Err(object_store::Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(s3_error(what())(e)),
            }
            let got = match self.store.get(&path).await {
                Ok(g) => g,
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(s3_error(what())(e)),
            };
            let version = UpdateVersion {
                e_tag: got.meta.e_tag.clone(),
                version: got.meta.version.clone(),
            };
            let held = got.bytes().await.map_err(s3_error(what()))?;
            let holder: Option<crate::JobTag> = serde_json::from_slice(&held).ok();
            let live = match &holder {
                Some(h) => self.liveness(&h.job).await? == Liveness::Alive,
                None => false,
            };
            if live {
                return Ok(Some(holder.map_or_else(
                    || "another mirage job".to_string(),
                    |h| h.to_string(),
                )));
            }
            let update = PutOptions::from(PutMode::Update(version));
            match self
                .store
                .put_opts(&path, body.clone().into(), update)
                .await
            {
                Ok(_) => return Ok(None),
                Err(object_store::Error::Precondition { .. })
                | Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(s3_error(what())(e)),
            }
        }
        Ok(Some(
            "another mirage job (the lock kept changing hands)".into(),
        ))
    }

    /// Give `destination` back, if this job holds it.
    pub async fn free_destination(&self, destination: &str) -> Result<()> {
        let key = self.destination_key(destination, "lock");
        let held = self.get(&key).await?;
        let ours = held
            .and_then(|b| serde_json::from_slice::<crate::JobTag>(&b).ok())
            .is_some_and(|t| t.job == self.job_id());
        if ours {
            self.delete(&key).await?;
        }
        Ok(())
    }

    /// Delete one object (none is fine).
    pub async fn delete(&self, key: &str) -> Result<()> {
        match self.store.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(s3_error(format!("deleting {}", self.url(key)))(e)),
        }
    }

    /// The objects under a prefix: (key, size).
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>> {
        self.store
            .list(Some(&Path::from(prefix.trim_end_matches('/'))))
            .map_ok(|m| (m.location.to_string(), m.size))
            .try_collect()
            .await
            .map_err(s3_error(format!("listing {}", self.url(prefix))))
    }

    /// `s3://bucket/key`
    pub fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// `<prefix>/<job-id>`: the job's folder.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// Where a table's UNLOAD files go: `<root>/input/<schema>/<table>/`.
    pub fn input_prefix(&self, t: &QualifiedName) -> String {
        format!(
            "{}/input/{}/{}/",
            self.root,
            folder(&t.schema),
            folder(&t.name)
        )
    }

    /// Where a table's transformed files go: `<root>/output/<schema>/<table>/`.
    pub fn output_prefix(&self, t: &QualifiedName) -> String {
        format!(
            "{}/output/{}/{}/",
            self.root,
            folder(&t.schema),
            folder(&t.name)
        )
    }

    /// UNLOAD's and COPY's `IAM_ROLE '…'` clause.
    pub fn authorization(&self) -> String {
        format!("IAM_ROLE '{}'", self.iam_role.replace('\'', "''"))
    }

    /// UNLOAD's encryption clause, when a KMS key is configured.
    pub fn encryption(&self) -> String {
        match &self.kms_key_id {
            Some(k) => format!(" KMS_KEY_ID '{}' ENCRYPTED", k.replace('\'', "''")),
            None => String::new(),
        }
    }

    /// How UNLOAD writes, the worker writes and COPY reads the files.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// UNLOAD's MAXFILESIZE, in bytes.
    pub fn max_file_size(&self) -> u64 {
        self.max_file_size
    }

    fn key_of<'a>(&self, url: &'a str) -> Option<&'a str> {
        url.strip_prefix("s3://")?
            .strip_prefix(self.bucket.as_str())?
            .strip_prefix('/')
    }

    /// The data files an UNLOAD manifest lists: (key, bytes, records).
    pub async fn manifest_parts(&self, key: &str) -> Result<Vec<(String, u64, u64)>> {
        let raw = self
            .store
            .get(&Path::from(key))
            .await
            .map_err(s3_error(format!(
                "reading the UNLOAD manifest {}",
                self.url(key)
            )))?
            .bytes()
            .await
            .map_err(s3_error(format!(
                "reading the UNLOAD manifest {}",
                self.url(key)
            )))?;
        let manifest: serde_json::Value = serde_json::from_slice(&raw).map_err(|e| {
            ConnectorError::Invalid(format!(
                "the UNLOAD manifest {} is not JSON: {e}",
                self.url(key)
            ))
        })?;
        let mut out = Vec::new();
        for e in manifest["entries"].as_array().cloned().unwrap_or_default() {
            let url = e["url"].as_str().unwrap_or_default();
            let key = self.key_of(url).ok_or_else(|| {
                ConnectorError::Invalid(format!(
                    "the UNLOAD manifest lists {url}, outside bucket {}",
                    self.bucket
                ))
            })?;
            out.push((
                key.to_string(),
                e["meta"]["content_length"].as_u64().unwrap_or(0),
                e["meta"]["record_count"].as_u64().unwrap_or(0),
            ));
        }
        Ok(out)
    }

    /// The records of an UNLOAD's parts, decompressed, in about 1 MB chunks (at most two wait),
    /// read while `unload` runs: parts appear in S3 whole as slices fill them, so the transform
    /// starts before the UNLOAD ends. When it ends, its manifest is the list of record: parts not
    /// yet read are read, and a part read that it does not list is an error. `done` gets the bytes
    /// UNLOAD wrote; the input files are deleted once all are read.
    pub fn stream_unload(
        self: Arc<Self>,
        unload: tokio::task::JoinHandle<Result<()>>,
        prefix: String,
        done: impl FnOnce(u64) + Send + 'static,
    ) -> ChunkStream {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes>>(2);
        tokio::spawn(async move {
            let mut unload = Some(unload);
            let mut seen: Vec<String> = Vec::new();
            loop {
                let finished = match unload.as_ref() {
                    Some(h) if h.is_finished() => match unload.take() {
                        Some(h) => match h.await {
                            Ok(Ok(())) => true,
                            Ok(Err(e)) => {
                                let _ = tx.send(Err(e)).await;
                                return;
                            }
                            Err(e) => {
                                let _ = tx
                                    .send(Err(ConnectorError::Invalid(format!(
                                        "the UNLOAD task failed: {e}"
                                    ))))
                                    .await;
                                return;
                            }
                        },
                        None => true,
                    },
                    Some(_) => false,
                    None => true,
                };
                if finished {
                    let parts = match self.manifest_parts(&format!("{prefix}manifest")).await {
                        Ok(p) => p,
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    };
                    if let Some(extra) =
                        seen.iter().find(|k| !parts.iter().any(|(p, _, _)| p == *k))
                    {
                        let _ = tx
                            .send(Err(ConnectorError::Invalid(format!(
                                "{} was read during the UNLOAD but its manifest does not list it",
                                self.url(extra)
                            ))))
                            .await;
                        return;
                    }
                    for (key, _, _) in &parts {
                        if !seen.contains(key) && !self.send_part(key, &tx).await {
                            return;
                        }
                    }
                    done(parts.iter().map(|p| p.1).sum());
                    if let Err(e) = self.delete_prefix(&prefix).await {
                        tracing::warn!(error = %e, "could not delete UNLOAD files");
                    }
                    return;
                }
                // Parts written so far (the manifest comes last).
                let listed: std::result::Result<Vec<String>, _> = self
                    .store
                    .list(Some(&Path::from(prefix.trim_end_matches('/'))))
                    .map_ok(|m| m.location.to_string())
                    .try_collect()
                    .await;
                let mut new: Vec<String> = listed
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|k| {
                        k.starts_with(&prefix) && !k.ends_with("manifest") && !seen.contains(k)
                    })
                    .collect();
                new.sort();
                if new.is_empty() {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                for key in new {
                    if !self.send_part(&key, &tx).await {
                        return;
                    }
                    seen.push(key);
                }
            }
        });
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) })
            .boxed()
    }

    /// Fetch one part, decompress it and send its records on; false when the stream is over
    /// (an error was sent, or nobody listens any more).
    async fn send_part(&self, key: &str, tx: &tokio::sync::mpsc::Sender<Result<Bytes>>) -> bool {
        let what = format!("reading {}", self.url(key));
        let data = match self.store.get(&Path::from(key)).await {
            Ok(r) => r.bytes().await.map_err(s3_error(what.clone())),
            Err(e) => Err(s3_error(what.clone())(e)),
        };
        let data = match data {
            Ok(d) => d,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return false;
            }
        };
        let tx = tx.clone();
        let compression = self.compression;
        tokio::task::spawn_blocking(move || {
            // What UNLOAD was asked to write.
            let mut decoder: Box<dyn Read> = match compression {
                Compression::Zstd => match zstd::stream::read::Decoder::new(&data[..]) {
                    Ok(d) => Box::new(d),
                    Err(e) => {
                        let _ = tx.blocking_send(Err(ConnectorError::io(what, e)));
                        return false;
                    }
                },
                Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(&data[..])),
            };
            loop {
                // Up to 1 MiB into a buffer that is not zeroed first.
                let mut buf = Vec::with_capacity(1 << 20);
                if let Err(e) = (&mut decoder).take(1 << 20).read_to_end(&mut buf) {
                    let _ = tx.blocking_send(Err(ConnectorError::io(what, e)));
                    return false;
                }
                if buf.is_empty() {
                    return true;
                }
                if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                    return false;
                }
            }
        })
        .await
        .unwrap_or(false)
    }

    /// Write a table's transformed parts as compressed files (two uploads at once), and for every
    /// `copy_batch` bytes of them a COPY manifest listing exactly those files, whose key goes to
    /// `batches`. Returns (records, bytes stored).
    pub async fn write_parts(
        &self,
        table: &QualifiedName,
        parts: PartStream,
        batches: tokio::sync::mpsc::Sender<String>,
    ) -> Result<(u64, u64)> {
        let prefix = self.output_prefix(table);
        // Parts are joined into files of about OUTPUT_FILE bytes (uncompressed): COPY reads
        // fewer, larger files faster, and AWS advises files of 1 MB to 1 GB compressed.
        let (tx, rx) = tokio::sync::mpsc::channel::<std::result::Result<Bytes, crate::Aborted>>(1);
        let file_size = OUTPUT_FILE.min(self.copy_batch);
        let producer = async move {
            let mut parts = parts;
            let mut file = Vec::new();
            while let Some(part) = parts.next().await {
                match part {
                    Ok(p) => {
                        // Parts are whole records: a file is the parts that reach file_size,
                        // which needs no scan for record boundaries.
                        if file.is_empty() && p.len() >= file_size && p.len() < 2 * file_size {
                            if tx.send(Ok(p)).await.is_err() {
                                return;
                            }
                            continue;
                        }
                        file.extend_from_slice(&p);
                        if file.len() >= 2 * file_size {
                            // Parts much larger than a file (a small copy_batch): cut files of
                            // about file_size on record boundaries.
                            while file.len() >= file_size {
                                let cut = match RecordSplitter::new(format())
                                    .complete_len(&file[..file_size])
                                {
                                    0 => file.len(),
                                    n => n,
                                };
                                let rest = file.split_off(cut);
                                let whole = std::mem::replace(&mut file, rest);
                                if tx.send(Ok(Bytes::from(whole))).await.is_err() {
                                    return;
                                }
                            }
                        } else if file.len() >= file_size {
                            let whole = std::mem::replace(
                                &mut file,
                                Vec::with_capacity(file_size + file_size / 8),
                            );
                            if tx.send(Ok(Bytes::from(whole))).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
            }
            if !file.is_empty() {
                let _ = tx.send(Ok(Bytes::from(file))).await;
            }
        };
        let files =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|f| (f, rx)) },
            );
        let uploads = files
            .enumerate()
            .map(|(i, file)| {
                let prefix = &prefix;
                async move {
                    let prefix: &str = prefix;
                    let file = file.map_err(|_| ConnectorError::Aborted)?;
                    self.upload_part(table, prefix, i, file).await
                }
            })
            .buffered(2);
        // The consumer owns the uploads (and so the receiver): when it stops on an error, the
        // producer's next send fails and it stops too. Every `copy_batch` bytes of files get a manifest
        // of their own, handed to `batches` so their COPY runs while later files are made.
        let prefix = &prefix;
        let consumer = async move {
            let mut uploads = Box::pin(uploads);
            let (mut keys, mut rows, mut bytes, mut pending) = (Vec::new(), 0u64, 0u64, 0usize);
            let mut manifests = 0usize;
            while let Some(done) = uploads.next().await {
                let (key, n, len, raw) = done?;
                keys.push(key);
                rows += n;
                bytes += len;
                pending += raw;
                if pending >= self.copy_batch {
                    self.send_batch(prefix, &mut keys, &mut manifests, &batches)
                        .await?;
                    pending = 0;
                }
            }
            if !keys.is_empty() || manifests == 0 {
                if keys.is_empty() {
                    // An empty table: one empty file, so the manifest lists something to COPY.
                    let (key, _, len, _) = self.upload_part(table, prefix, 0, Bytes::new()).await?;
                    keys.push(key);
                    bytes += len;
                }
                self.send_batch(prefix, &mut keys, &mut manifests, &batches)
                    .await?;
            }
            Ok::<_, ConnectorError>((rows, bytes))
        };
        let ((), consumed) = futures_util::future::join(producer, consumer).await;
        consumed
    }

    /// A COPY manifest listing exactly `keys` (all mandatory), in the table's output folder.
    pub async fn copy_manifest(&self, table: &QualifiedName, keys: &[String]) -> Result<String> {
        self.write_manifest(&self.output_prefix(table), 0, keys)
            .await
    }

    /// Write `<prefix>manifest-NNNN` listing exactly `keys`, every one mandatory; returns its key.
    pub async fn write_manifest(&self, prefix: &str, n: usize, keys: &[String]) -> Result<String> {
        let manifest = serde_json::json!({
            "entries": keys.iter().map(|k| serde_json::json!({"url": self.url(k), "mandatory": true})).collect::<Vec<_>>()
        });
        let key = format!("{prefix}manifest-{n:04}");
        self.store
            .put(
                &Path::from(key.as_str()),
                Bytes::from(manifest.to_string()).into(),
            )
            .await
            .map_err(s3_error(format!("writing {}", self.url(&key))))?;
        Ok(key)
    }

    /// Write a COPY manifest listing exactly `keys` (then cleared) and hand its key on.
    async fn send_batch(
        &self,
        prefix: &str,
        keys: &mut Vec<String>,
        manifests: &mut usize,
        batches: &tokio::sync::mpsc::Sender<String>,
    ) -> Result<()> {
        let key = self.write_manifest(prefix, *manifests, keys).await?;
        keys.clear();
        *manifests += 1;
        // The loader stopped (its COPY failed): stop making files.
        batches.send(key).await.map_err(|_| ConnectorError::Aborted)
    }

    /// Compress and store file `index`; (key, records, bytes stored, bytes before compression).
    async fn upload_part(
        &self,
        table: &QualifiedName,
        prefix: &str,
        index: usize,
        part: Bytes,
    ) -> Result<(String, u64, u64, usize)> {
        let rows = count_records(&format(), &part);
        let raw = part.len();
        let mut part = part;
        if index == 0 && failpoint("copy", table) {
            let mut bad = part.to_vec();
            bad.extend_from_slice(b"a record,with,too,many,fields,for,any,table,of,this,test\n");
            part = Bytes::from(bad);
        }
        let key = format!(
            "{prefix}part-{index:05}.csv.{}",
            self.compression.extension()
        );
        let what = format!("writing {}", self.url(&key));
        if failpoint("s3-write", table) {
            return Err(ConnectorError::Database {
                what,
                detail: "injected failure (MIRAGE_FAILPOINT)".into(),
            });
        }
        let compression = self.compression;
        let packed = tokio::task::spawn_blocking(move || compress(compression, &part))
            .await
            .map_err(|e| ConnectorError::Invalid(format!("compressing a part: {e}")))?
            .map_err(|e| ConnectorError::io("compressing a part", e))?;
        let len = packed.len() as u64;
        self.store
            .put(&Path::from(key.as_str()), Bytes::from(packed).into())
            .await
            .map_err(s3_error(what))?;
        Ok((key, rows, len, raw))
    }

    /// `mirage check`'s probe: put, get, list and delete one object under the job prefix, and
    /// with a KMS key, put one encrypted with it. Each step with its outcome.
    /// (With a KMS key every put is encrypted with it.)
    pub async fn probe(&self) -> Vec<(String, std::result::Result<(), String>)> {
        let key = format!("{}/probe.txt", self.root);
        let path = Path::from(key.as_str());
        let body = Bytes::from_static(b"mirage check probe");
        let mut out = Vec::new();
        let url = self.url(&key);
        let put = self.store.put(&path, body.clone().into()).await.map(|_| ());
        let failed = put.is_err();
        out.push((
            format!("bucket {} exists and accepts a put of {url}", self.bucket),
            put.map_err(|e| e.to_string()),
        ));
        if failed {
            return out;
        }
        let got = match self.store.get(&path).await {
            Ok(r) => r.bytes().await.map_err(|e| e.to_string()).and_then(|b| {
                if b == body {
                    Ok(())
                } else {
                    Err("read back different bytes".into())
                }
            }),
            Err(e) => Err(e.to_string()),
        };
        out.push((format!("get {url}"), got));
        let listed: std::result::Result<Vec<Path>, _> = self
            .store
            .list(Some(&Path::from(self.root.as_str())))
            .map_ok(|m| m.location)
            .try_collect()
            .await;
        out.push((
            format!("list s3://{}/{}/", self.bucket, self.root),
            match listed {
                Ok(l) if l.contains(&path) => Ok(()),
                Ok(_) => Err("the probe object is not listed".into()),
                Err(e) => Err(e.to_string()),
            },
        ));
        out.push((
            format!("delete {url}"),
            self.store.delete(&path).await.map_err(|e| e.to_string()),
        ));
        if let Some(k) = &self.kms_key_id {
            let encrypted = match self.kms_store(k) {
                Ok(store) => {
                    let r = store.put(&path, body.into()).await.map(|_| ());
                    let _ = store.delete(&path).await;
                    r.map_err(|e| e.to_string())
                }
                Err(e) => Err(e),
            };
            out.push((format!("KMS key {k} encrypts a put"), encrypted));
        }
        out
    }

    fn kms_store(&self, key: &str) -> std::result::Result<object_store::aws::AmazonS3, String> {
        let mut b = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(&self.bucket)
            .with_region(&self.region)
            .with_credentials(Arc::new(crate::aws::ChainCredentials::default()))
            .with_sse_kms_encryption(key);
        if let Some(e) = &self.endpoint {
            b = b.with_endpoint(e).with_allow_http(e.starts_with("http://"));
        }
        b.build().map_err(|e| e.to_string())
    }

    /// Delete a table's output files, unless they are kept for inspection.
    pub async fn forget_output(&self, table: &QualifiedName) {
        if !self.keep_output {
            let _ = self.delete_prefix(&self.output_prefix(table)).await;
        }
    }

    /// Delete every object under a prefix.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<()> {
        let what = format!("cleaning {}", self.url(prefix));
        // Listed, then deleted in batches (one DeleteObjects request per 1000 keys).
        let keys = self
            .store
            .list(Some(&Path::from(prefix.trim_end_matches('/'))))
            .map_ok(|m| m.location)
            .boxed();
        self.store
            .delete_stream(keys)
            .try_for_each(|_| futures_util::future::ready(Ok(())))
            .await
            .map_err(s3_error(what))
    }

    /// Remove what `mirage check` runs killed before their cleanup left under
    /// `<prefix>/_mirage_check/` (a check takes seconds: objects older than two minutes, or
    /// than `MIRAGE_DEAD_AFTER` when shorter). Returns how many objects went.
    pub async fn remove_stale_probes(&self) -> Result<usize> {
        let prefix = format!("{}/_mirage_check", self.jobs_prefix());
        let bound = probe_bound().as_secs() as i64;
        let stale: Vec<Path> = self
            .store
            .list(Some(&Path::from(prefix.as_str())))
            .try_filter(|m| {
                futures_util::future::ready(chrono_age(m.last_modified.timestamp()) > bound)
            })
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .map_err(s3_error(format!("listing {}", self.url(&prefix))))?;
        let n = stale.len();
        for key in stale {
            self.store
                .delete(&key)
                .await
                .map_err(s3_error(format!("deleting {}", self.url(key.as_ref()))))?;
        }
        Ok(n)
    }

    /// Record a statement that writes into the job's folder, so the end of the job stops it
    /// and waits for it before deleting the folder (a job interrupted during an UNLOAD would
    /// otherwise find new files after its cleanup).
    pub fn track(&self, writer: Writer) {
        if let Ok(mut w) = self.writers.lock() {
            w.retain(|x| !*x.done.borrow());
            w.push(writer);
        }
    }

    /// Stop the statements still writing into the folder and wait (up to a minute) until
    /// they end.
    async fn stop_writers(&self) {
        let writers: Vec<Writer> = self
            .writers
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default();
        for w in writers {
            if *w.done.borrow() {
                continue;
            }
            (w.cancel)().await;
            let mut done = w.done;
            let _ = tokio::time::timeout(std::time::Duration::from_secs(60), done.wait_for(|d| *d))
                .await;
        }
    }

    /// The end of a job: its folder goes, except `output/` when kept.
    pub async fn cleanup(&self) -> Result<()> {
        self.stop_writers().await;
        if self.keep_output {
            for part in ["input", "spec", "results"] {
                self.delete_prefix(&format!("{}/{part}/", self.root))
                    .await?;
            }
            // Kept on purpose: later jobs leave the folder alone.
            self.put(
                &format!("{}/kept", self.root),
                Bytes::from_static(b"keep_output"),
            )
            .await?;
            let _ = self
                .store
                .delete(&Path::from(self.lease_key_of(self.job_id())))
                .await;
            return Ok(());
        }
        self.delete_prefix(&format!("{}/", self.root)).await
    }
}

/// A staged file's bytes, decompressed.
pub fn decompress(compression: Compression, data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() * 4);
    match compression {
        Compression::Zstd => zstd::stream::read::Decoder::new(data)?.read_to_end(&mut out)?,
        Compression::Gzip => flate2::read::MultiGzDecoder::new(data).read_to_end(&mut out)?,
    };
    Ok(out)
}

/// A file's bytes compressed as COPY will read them: the fastest level of either codec (the
/// files are read once, moments later).
pub fn compress(compression: Compression, data: &[u8]) -> std::io::Result<Vec<u8>> {
    match compression {
        Compression::Zstd => zstd::bulk::compress(data, 1),
        Compression::Gzip => {
            use std::io::Write;
            let mut e = flate2::write::GzEncoder::new(
                Vec::with_capacity(data.len() / 2),
                flate2::Compression::fast(),
            );
            e.write_all(data)?;
            e.finish()
        }
    }
}

/// The staging bucket's checks: named with the policy prefix, and a probe object put, read,
/// listed and deleted under the job prefix (with the KMS key when one is set).
pub async fn checks(config: &StagingConfig, out: &mut Checks) {
    const A: &str = "staging";
    let named = format!(
        "bucket name {} starts with the policy prefix {}",
        config.bucket, config.resource_prefix
    );
    if config.bucket.starts_with(&config.resource_prefix) {
        out.pass(A, named);
    } else {
        out.fail(
            A,
            named,
            Some("the policies from `mirage policy` grant access to buckets named <prefix>… only".into()),
            format!(
                "use a bucket named {}…, or set [staging] resource_prefix and print matching policies with `mirage policy --prefix <prefix>`",
                config.resource_prefix
            ),
        );
    }
    // Without credentials every request below would fail, each in its own words (an instance
    // metadata 403 …): say so once, with where they are looked for.
    if let Err(why) = crate::aws::resolve().await {
        out.fail(
            A,
            "AWS credentials for the staging bucket",
            Some(why),
            "export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), or \
             AWS_PROFILE=<profile>, or run where an instance or task role applies",
        );
        return;
    }
    let probe_job = format!("_mirage_check/{}", std::process::id());
    let store = match Staging::new(config, &probe_job) {
        Ok(s) => s,
        Err(e) => {
            out.fail(
                A,
                format!("bucket {}", config.bucket),
                Some(e.to_string()),
                "fix [staging] in the workspace",
            );
            return;
        }
    };
    for (step, result) in store.probe().await {
        match result {
            Ok(()) => out.pass(A, step),
            Err(e) if e.contains("NoSuchBucket") || e.contains("does not exist") => {
                out.fail(
                    A,
                    step,
                    Some(e),
                    format!(
                        "create the bucket: aws s3 mb s3://{} --region {}",
                        config.bucket, config.region
                    ),
                );
                break;
            }
            Err(e) => {
                out.fail(
                    A,
                    step,
                    Some(e),
                    "give the worker the S3 statements of `mirage policy` (worker-v2-policy.json)",
                );
                break;
            }
        }
    }
    lifecycle_check(config, out).await;
}

/// The backstop for files a killed job leaves (raw rows among them): a lifecycle rule of the
/// bucket that expires objects under the job prefix.
async fn lifecycle_check(config: &StagingConfig, out: &mut Checks) {
    const A: &str = "staging";
    let aws = crate::redshift::lambda::Aws::new(config).await;
    let what = format!(
        "a lifecycle rule of bucket {} expires s3://{}/{}/",
        config.bucket, config.bucket, config.prefix
    );
    let fix = "apply staging-lifecycle.json of `mirage policy`: aws s3api \
               put-bucket-lifecycle-configuration --bucket <bucket> --lifecycle-configuration \
               file://staging-lifecycle.json";
    match aws
        .s3
        .get_bucket_lifecycle_configuration()
        .bucket(&config.bucket)
        .send()
        .await
    {
        Ok(c) => {
            let covers = c.rules().iter().any(|r| {
                let prefix = r.filter().and_then(|f| f.prefix()).unwrap_or("");
                r.status() == &aws_sdk_s3::types::ExpirationStatus::Enabled
                    && r.expiration().is_some_and(|e| e.days().is_some())
                    && format!("{}/", config.prefix).starts_with(prefix)
            });
            if covers {
                out.pass(A, what);
            } else {
                out.warn(
                    A,
                    what,
                    format!("no enabled rule expires that prefix; {fix}"),
                );
            }
        }
        Err(e) => {
            let code = aws_sdk_s3::error::ProvideErrorMetadata::code(&e).unwrap_or_default();
            let why = if code == "NoSuchLifecycleConfiguration" {
                "the bucket has no lifecycle rules: files a killed job leaves stay until the next \
                 run or `mirage clean`"
                    .to_string()
            } else {
                format!(
                    "could not read the bucket's lifecycle ({}); give the worker \
                     s3:GetLifecycleConfiguration",
                    crate::redshift::lambda::short_error(&e)
                )
            };
            out.warn(A, what, format!("{why}; {fix}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_name_is_one_plain_folder_and_back() {
        for name in [
            "orders",
            "t+plus/slash",
            "ta%20ble?x=1#frag",
            "ünï表",
            "..",
            "",
            "a b",
        ] {
            let f = folder(name);
            assert!(
                f.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-+".contains(&b)),
                "{f}"
            );
            assert_eq!(unfolder(&f).as_deref(), Some(name));
        }
        assert_eq!(folder("sales"), "sales");
        let t = QualifiedName::new("odd schema", "t/x");
        let key = format!(
            "jobs/j/input/{}/{}/0000_part_00.zst",
            folder(&t.schema),
            folder(&t.name)
        );
        assert_eq!(
            parse_input_key(&key),
            Some(("jobs/j".into(), t, "0000_part_00.zst".into()))
        );
    }

    #[test]
    fn compression_round_trips() {
        let data = b"1,a\n2,\"b,c\"\n".repeat(1000);
        for c in [Compression::Zstd, Compression::Gzip] {
            let packed = compress(c, &data).unwrap();
            assert!(packed.len() < data.len());
            assert_eq!(decompress(c, &packed).unwrap(), data);
        }
    }
}
