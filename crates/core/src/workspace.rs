//! `workspace.toml`: what the user wrote, parsed once into typed structs whose every part remembers
//! the line it came from, so later checks (against the live schema, the generator registry) can
//! point at it.

use crate::size::ByteSize;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// A mistake in the workspace file: where it is and what to do about it. Never holds a data value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceError {
    /// The workspace file's path, as given to [`Workspace::load`] or [`Workspace::parse`].
    pub path: PathBuf,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// The dotted key the mistake is at, e.g. `tables."public.users".columns.email`.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for WorkspaceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for WorkspaceError {}

/// What happens to a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum TableMode {
    /// Copy every row; columns with a generator are replaced, the others pass through.
    #[default]
    DeIdentify,
    /// Create the table (schema, constraints) with no rows.
    Truncate,
    /// Leave the destination's table and its rows untouched.
    PreserveDestination,
}

impl TableMode {
    /// The mode as written in `workspace.toml`: `de-identify`, `truncate` or
    /// `preserve-destination`.
    pub fn as_str(self) -> &'static str {
        match self {
            TableMode::DeIdentify => "de-identify",
            TableMode::Truncate => "truncate",
            TableMode::PreserveDestination => "preserve-destination",
        }
    }
}

/// A database connection as configured.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// `postgres://user@host:port/db` or `files:./folder`. Passwords belong in the environment.
    pub url: String,
    /// Environment variable holding the password.
    pub password_env: String,
    /// 1-based line of `url` in the workspace file, for messages.
    pub line: usize,
    /// A password given outside the workspace (`mirage init --source` with one in its URL);
    /// never read from a workspace file.
    pub given_password: Option<String>,
}

impl ConnectionConfig {
    /// The password given, else the one from the environment, if set.
    pub fn password(&self) -> Option<String> {
        self.given_password.clone().or_else(|| {
            std::env::var(&self.password_env)
                .ok()
                .filter(|p| !p.is_empty())
        })
    }
}

/// How Redshift data moves through S3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Process {
    /// Data Pipeline V2: UNLOAD to S3, transform in the mirage worker, COPY.
    #[default]
    V2,
    /// S3 events on an SQS queue, transformed by an AWS Lambda function.
    Lambda,
}

/// Who runs the Lambda function's invocations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LambdaRunner {
    /// AWS Lambda, through an enabled event source mapping.
    #[default]
    Aws,
    /// `mirage-lambda-runner` on this machine; the mapping is created disabled.
    Local,
}

/// How the staged CSV files are compressed (UNLOAD's and COPY's keyword).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// ZSTD: about three times faster than GZIP to write and to read, for files as small.
    #[default]
    Zstd,
    /// GZIP, for tools that read the staged files and know only it.
    Gzip,
}

impl Compression {
    /// The UNLOAD / COPY keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            Compression::Zstd => "ZSTD",
            Compression::Gzip => "GZIP",
        }
    }

    /// The file name extension of a compressed part.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Zstd => "zst",
            Compression::Gzip => "gz",
        }
    }
}

/// The `[staging]` block: where Redshift jobs UNLOAD to and COPY from.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StagingConfig {
    /// S3 bucket (in the cluster's region).
    pub bucket: String,
    /// Key prefix for every job's files: `s3://bucket/<prefix>/<job-id>/…`.
    #[serde(default = "default_staging_prefix")]
    pub prefix: String,
    /// The bucket's AWS region, used by mirage's own S3 requests (default `us-east-1`).
    #[serde(default = "default_region")]
    pub region: String,
    /// The IAM role Redshift assumes for UNLOAD and COPY (ARN).
    pub iam_role: String,
    /// KMS key (id or ARN) for UNLOAD's server-side encryption, if any.
    #[serde(default)]
    pub kms_key_id: Option<String>,
    /// Who transforms the staged files: `v2` (default, the mirage worker) or `lambda`.
    #[serde(default)]
    pub process: Process,
    /// Compression of the UNLOADed and transformed files: `zstd` (default) or `gzip`.
    #[serde(default)]
    pub compression: Compression,
    /// Keep the transformed files (`…/output/…`) after the job, for inspection.
    #[serde(default)]
    pub keep_output: bool,
    /// UNLOAD's MAXFILESIZE.
    #[serde(default = "default_max_file_size")]
    pub max_file_size: ByteSize,
    /// S3 endpoint for S3-compatible stores and tests (e.g. `http://127.0.0.1:5000` for moto);
    /// empty means AWS.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The prefix every AWS resource mirage uses starts with (bucket, queue, function, log
    /// group); the policies `mirage policy` prints are scoped to it.
    #[serde(default = "default_resource_prefix")]
    pub resource_prefix: String,
    /// Lambda process: encrypt the SQS queue with `TONIC_LAMBDA_KMS_MASTER_KEY`.
    #[serde(default)]
    pub encrypt_queue: bool,
    /// Transformed bytes (before compression) per COPY: each batch is COPYed while the next is
    /// transformed, in one transaction.
    #[serde(default = "default_copy_batch")]
    pub copy_batch: ByteSize,
    /// Lambda process: the container image the function runs (an ECR image URI). When unset,
    /// mirage looks for an image in the ECR repository `<resource_prefix>lambda`, then falls
    /// back to `lambda_zip`.
    #[serde(default)]
    pub lambda_image: Option<String>,
    /// Lambda process: a zip holding the `mirage-lambda` binary as `bootstrap`, deployed on the
    /// `provided.al2023` runtime when no image is found (relative to the workspace file).
    #[serde(default)]
    pub lambda_zip: Option<std::path::PathBuf>,
    /// Lambda process: who polls the queue. `aws` (default): the event source mapping, enabled.
    /// `local`: the mapping is created disabled and `mirage-lambda-runner` polls the queue
    /// instead (tests and runs against moto, which cannot run the function).
    #[serde(default)]
    pub lambda_runner: LambdaRunner,
    /// 1-based line of the `[staging]` header, for messages (not read from the file).
    #[serde(skip)]
    pub line: usize,
}

fn default_staging_prefix() -> String {
    "mirage".into()
}
fn default_copy_batch() -> ByteSize {
    ByteSize(48 * ByteSize::MIB)
}
fn default_resource_prefix() -> String {
    "mirage-".into()
}
fn default_region() -> String {
    "us-east-1".into()
}
fn default_max_file_size() -> ByteSize {
    ByteSize(50 * ByteSize::MIB)
}

impl StagingConfig {
    /// Problems with the values, as (key, message).
    fn validate(&self) -> Option<(&'static str, String)> {
        let b = &self.bucket;
        if b.len() < 3
            || b.len() > 63
            || !b
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        {
            return Some((
                "staging.bucket",
                "an S3 bucket name: 3-63 lower-case letters, digits, '-' or '.'".into(),
            ));
        }
        if self.prefix.starts_with('/') || self.prefix.ends_with('/') || self.prefix.is_empty() {
            return Some((
                "staging.prefix",
                "a key prefix without leading or trailing '/', e.g. \"mirage\"".into(),
            ));
        }
        if !crate::lambda::is_role_arn(&self.iam_role) {
            return Some((
                "staging.iam_role",
                "the ARN of the role Redshift assumes, e.g. arn:aws:iam::123456789012:role/mirage-redshift".into(),
            ));
        }
        if self.copy_batch.0 < 4096 {
            return Some((
                "staging.copy_batch",
                "at least 4KiB; 48MiB is a good value".into(),
            ));
        }
        if self.max_file_size.0 < 5_000_000 || self.max_file_size.0 > 6200 * ByteSize::MIB {
            return Some((
                "staging.max_file_size",
                "UNLOAD's MAXFILESIZE is between 5MB and 6.2GB".into(),
            ));
        }
        None
    }
}

/// Which schemas are copied.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SchemaFilter {
    /// Schemas to copy; empty means every non-system schema.
    #[serde(default)]
    pub include: Vec<String>,
    /// Schemas never copied.
    #[serde(default)]
    pub exclude: Vec<String>,
}

impl SchemaFilter {
    /// Whether a schema is copied: it is in `include` (or `include` is empty) and not in
    /// `exclude`. System schemas are left out by the connectors, not here.
    pub fn admits(&self, schema: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|s| s == schema))
            && !self.exclude.iter().any(|s| s == schema)
    }
}

/// What a run does with a source column nobody decided about (a column the workspace does
/// not list, of a table it does not list, or whose type changed since it was listed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Unreviewed {
    /// Stop before anything is written, naming each such column (the default).
    #[default]
    Fail,
    /// Write NULL into it (a NOT NULL one stops the run).
    Null,
    /// Copy it unchanged, with a warning for each.
    Passthrough,
}

impl Unreviewed {
    /// As written in `workspace.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Unreviewed::Fail => "fail",
            Unreviewed::Null => "null",
            Unreviewed::Passthrough => "passthrough",
        }
    }
}

/// How the run is executed.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RunSettings {
    /// Tables copied at once.
    #[serde(default = "default_parallelism")]
    pub parallelism: usize,
    /// Target size of one part (a chunk of a table's rows transformed as one unit).
    #[serde(default = "default_part_size")]
    pub part_size: ByteSize,
    /// Threads transforming parts; 0 means one per CPU core.
    #[serde(default)]
    pub transform_threads: usize,
    /// Parts of one table in flight at once (read, being transformed, or being written).
    #[serde(default = "default_parts_in_flight")]
    pub parts_in_flight: usize,
    /// What happens to source columns the workspace does not decide about.
    #[serde(default)]
    pub unreviewed: Unreviewed,
}

fn default_parallelism() -> usize {
    4
}
fn default_part_size() -> ByteSize {
    ByteSize(4 * ByteSize::MIB)
}
fn default_parts_in_flight() -> usize {
    4
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            parallelism: default_parallelism(),
            part_size: default_part_size(),
            transform_threads: 0,
            parts_in_flight: default_parts_in_flight(),
            unreviewed: Unreviewed::Fail,
        }
    }
}

/// A column's generator as written: the name and its options, checked later by the registry.
#[derive(Debug, Clone)]
pub struct ColumnConfig {
    /// The column's name: the entry's key under `[tables."schema.table".columns]`.
    pub name: String,
    /// 1-based line of the column's entry.
    pub line: usize,
    /// The generator's name, the entry's `generator` value (e.g. `email`).
    pub generator: String,
    /// Every key of the column entry except `generator` and `type`.
    pub options: toml::Table,
    /// The column's type when it was reviewed (the entry's `type`, written by `mirage init`
    /// and `mirage scan --write`): a source column whose type differs is unreviewed again.
    pub reviewed_type: Option<String>,
}

/// A table's settings as written.
#[derive(Debug, Clone)]
pub struct TableConfig {
    /// `schema.table` as written.
    pub name: String,
    /// 1-based line of the table's key (its `[tables."schema.table"]` header).
    pub line: usize,
    /// What happens to the table (default `de-identify`).
    pub mode: TableMode,
    /// The column entries, ordered by column name.
    pub columns: Vec<ColumnConfig>,
}

/// The parsed workspace file.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The file's path as given to [`Workspace::load`] or [`Workspace::parse`]: messages name
    /// it, and relative `files:` URLs are resolved against its folder.
    pub path: PathBuf,
    /// `[source]`: the database (or folder) rows are read from.
    pub source: ConnectionConfig,
    /// `[destination]`: the database (or folder) the masked copy is written to.
    pub destination: ConnectionConfig,
    /// Copy owners (and privileges) of the source; the destination user must be a superuser.
    pub preserve_ownership: bool,
    /// `[schemas]`: which schemas are copied.
    pub schemas: SchemaFilter,
    /// Environment variable holding the consistency seed.
    pub seed_env: String,
    /// `[run]`: parallelism and part sizes.
    pub run: RunSettings,
    /// The `[tables."schema.table"]` entries, ordered by table name.
    pub tables: Vec<TableConfig>,
    /// `[staging]`: required when either end is Redshift.
    pub staging: Option<StagingConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConnection {
    url: Spanned<String>,
    password_env: Option<String>,
    #[serde(default)]
    preserve_ownership: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConsistency {
    seed_env: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    #[serde(default)]
    mode: TableMode,
    #[serde(default)]
    columns: BTreeMap<Spanned<String>, Spanned<toml::Table>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkspace {
    source: Spanned<RawConnection>,
    destination: Spanned<RawConnection>,
    #[serde(default)]
    schemas: SchemaFilter,
    #[serde(default)]
    consistency: RawConsistency,
    #[serde(default)]
    run: RunSettings,
    #[serde(default)]
    tables: BTreeMap<Spanned<String>, Spanned<RawTable>>,
    staging: Option<Spanned<StagingConfig>>,
}

/// 1-based line of a byte offset.
/// The 1-based line of byte offsets of a text, from its line ends found once: a workspace of
/// thousands of entries asks for thousands of lines.
struct Lines(Vec<usize>);

impl Lines {
    fn of(text: &str) -> Lines {
        Lines(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i)
                .collect(),
        )
    }

    fn line(&self, offset: usize) -> usize {
        self.0.partition_point(|&end| end < offset) + 1
    }
}

/// `tables."public.users".columns.email` style key path.
pub fn table_key(table: &str) -> String {
    format!("tables.\"{table}\"")
}

/// Key path of a column entry.
pub fn column_key(table: &str, column: &str) -> String {
    format!("tables.\"{table}\".columns.{column}")
}

impl Workspace {
    /// Read and parse a workspace file.
    pub fn load(path: &Path) -> Result<Workspace, WorkspaceError> {
        let text = std::fs::read_to_string(path).map_err(|e| WorkspaceError {
            path: path.to_path_buf(),
            line: 0,
            key: String::new(),
            message: format!("cannot read the workspace file: {e}; create one with `mirage init`"),
        })?;
        Workspace::parse(path, &text)
    }

    /// Parse workspace text; `path` is used in messages and to resolve relative `files:` URLs.
    pub fn parse(path: &Path, text: &str) -> Result<Workspace, WorkspaceError> {
        let lines = Lines::of(text);
        let raw: RawWorkspace = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| lines.line(s.start)).unwrap_or(0);
            WorkspaceError {
                path: path.to_path_buf(),
                line,
                key: String::new(),
                message: e.message().trim().to_string()
                    + &crate::suggest::hint_for_serde_error(e.message()),
            }
        })?;
        let err = |line: usize, key: String, message: String| WorkspaceError {
            path: path.to_path_buf(),
            line,
            key,
            message,
        };
        if raw.source.get_ref().preserve_ownership {
            return Err(err(
                lines.line(raw.source.span().start),
                "source.preserve_ownership".into(),
                "preserve_ownership belongs in [destination]".into(),
            ));
        }
        let conn = |c: &Spanned<RawConnection>, default_env: &str| ConnectionConfig {
            url: c.get_ref().url.get_ref().clone(),
            password_env: c
                .get_ref()
                .password_env
                .clone()
                .unwrap_or_else(|| default_env.to_string()),
            line: lines.line(c.get_ref().url.span().start),
            given_password: None,
        };
        if raw.run.parallelism == 0 {
            return Err(err(
                0,
                "run.parallelism".into(),
                "must be at least 1".into(),
            ));
        }
        if raw.run.parts_in_flight == 0 {
            return Err(err(
                0,
                "run.parts_in_flight".into(),
                "must be at least 1".into(),
            ));
        }
        if raw.run.part_size.0 < 4096 {
            return Err(err(
                0,
                "run.part_size".into(),
                "must be at least 4KiB; 4MiB is a good value".into(),
            ));
        }
        let staging = match &raw.staging {
            Some(st) => {
                let mut config = st.get_ref().clone();
                config.line = lines.line(st.span().start);
                if let Some((key, message)) = config.validate() {
                    return Err(err(config.line, key.into(), message));
                }
                Some(config)
            }
            None => None,
        };
        let mut tables = Vec::new();
        for (name, table) in &raw.tables {
            let line = lines.line(name.span().start);
            let tname = name.get_ref();
            if !tname.contains('.') {
                return Err(err(
                    line,
                    table_key(tname),
                    format!("write tables as \"schema.table\", e.g. \"public.{tname}\""),
                ));
            }
            let mut columns = Vec::new();
            for (cname, centry) in &table.get_ref().columns {
                let cline = lines.line(cname.span().start);
                let mut options = centry.get_ref().clone();
                let generator = match options.remove("generator") {
                    Some(toml::Value::String(g)) => g,
                    Some(_) => {
                        return Err(err(
                            cline,
                            column_key(tname, cname.get_ref()),
                            "`generator` must be a string, e.g. generator = \"email\"".into(),
                        ));
                    }
                    None => {
                        return Err(err(
                            cline,
                            column_key(tname, cname.get_ref()),
                            "missing `generator`; write e.g. { generator = \"passthrough\" }"
                                .into(),
                        ));
                    }
                };
                let reviewed_type = match options.remove("type") {
                    Some(toml::Value::String(t)) => Some(t),
                    None => None,
                    Some(_) => {
                        return Err(err(
                            cline,
                            column_key(tname, cname.get_ref()),
                            "`type` must be a string: the column's type when it was reviewed, \
                             e.g. type = \"varchar(256)\""
                                .into(),
                        ));
                    }
                };
                columns.push(ColumnConfig {
                    name: cname.get_ref().clone(),
                    line: cline,
                    generator,
                    options,
                    reviewed_type,
                });
            }
            tables.push(TableConfig {
                name: tname.clone(),
                line,
                mode: table.get_ref().mode,
                columns,
            });
        }
        Ok(Workspace {
            path: path.to_path_buf(),
            source: conn(&raw.source, "MIRAGE_SOURCE_PASSWORD"),
            destination: conn(&raw.destination, "MIRAGE_DESTINATION_PASSWORD"),
            preserve_ownership: raw.destination.get_ref().preserve_ownership,
            schemas: raw.schemas,
            seed_env: raw
                .consistency
                .seed_env
                .unwrap_or_else(|| "MIRAGE_SEED".to_string()),
            run: raw.run,
            tables,
            staging,
        })
    }

    /// An error at a line of this file.
    pub fn error(
        &self,
        line: usize,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> WorkspaceError {
        WorkspaceError {
            path: self.path.clone(),
            line,
            key: key.into(),
            message: message.into(),
        }
    }

    /// The folder relative paths in the file are resolved against.
    pub fn base_dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// The consistency seed, read from the environment.
    pub fn seed(&self) -> Result<String, WorkspaceError> {
        match std::env::var(&self.seed_env) {
            Ok(s) if seed_bits(&s) < MIN_SEED_BITS && !s.is_empty() => Err(self.error(
                0,
                "consistency.seed_env",
                format!(
                    "the consistency seed in {env} is too short to keep the fakes secret (about {bits} \
                     bits; at least {MIN_SEED_BITS} are needed: anyone who guesses it can recompute \
                     every fake from a known value); make one with `export {env}=$(openssl rand -hex \
                     32)` and keep it",
                    env = self.seed_env,
                    bits = seed_bits(&s),
                ),
            )),
            Ok(s) if !s.is_empty() => Ok(s),
            _ => Err(self.error(
                0,
                "consistency.seed_env",
                format!(
                    "the consistency seed is read from the environment variable {env}, which is not set; \
                     set it to a long random secret and keep it (same seed ⇒ same masked values), \
                     e.g. `export {env}=$(openssl rand -hex 32)`",
                    env = self.seed_env
                ),
            )),
        }
    }

    /// The entry written for a table, by its `schema.table` name: the file's key and `name` are
    /// compared as names ([`crate::QualifiedName::parse`]), so `"a.b".c` and `a."b.c"` differ
    /// and `public.users` is `"public"."users"`.
    pub fn table_config(&self, name: &str) -> Option<&TableConfig> {
        let name = crate::QualifiedName::parse(name);
        self.tables
            .iter()
            .find(|t| crate::QualifiedName::parse(&t.name) == name)
    }
}

/// The fewest bits of secret a consistency seed must hold.
pub const MIN_SEED_BITS: u32 = 128;

/// About how many bits of secret a seed holds, judged conservatively: a seed that repeats a
/// shorter one counts as that one; a run of neighbouring or equal characters (`abcd`, `1234`,
/// `aaaa`) counts as one character; each remaining character counts by the smallest usual
/// alphabet that spells the seed — hex digits (4 bits, what `openssl rand -hex` writes), decimal
/// digits, one case of letters with digits, both cases, printable ASCII; anything else 8 bits a
/// byte. `openssl rand -hex 32` (about 200 by this count) passes; words, repeated phrases and
/// keyboard runs do not.
pub fn seed_bits(seed: &str) -> u32 {
    let chars: Vec<char> = seed.chars().collect();
    if chars.is_empty() {
        return 0;
    }
    // The shortest unit the seed repeats (a prefix of itself).
    let period = (1..=chars.len())
        .find(|&p| (p..chars.len()).all(|i| chars[i] == chars[i - p]))
        .unwrap_or(chars.len());
    let unit = &chars[..period];
    // Runs of equal or neighbouring characters count once.
    let effective = 1 + unit
        .windows(2)
        .filter(|w| (w[1] as i64 - w[0] as i64).abs() > 1)
        .count();
    let all = |f: fn(&char) -> bool| unit.iter().all(f);
    let bits_per_char: f64 = if all(|c| c.is_ascii_digit()) {
        10f64.log2()
    } else if all(|c| c.is_ascii_hexdigit()) {
        4.0
    } else if all(|c| c.is_ascii_digit() || c.is_ascii_lowercase() || *c == '-' || *c == '_')
        || all(|c| c.is_ascii_digit() || c.is_ascii_uppercase() || *c == '-' || *c == '_')
    {
        38f64.log2()
    } else if all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '/' | '=')) {
        6.0
    } else if all(|c| c.is_ascii_graphic() || *c == ' ') {
        95f64.log2()
    } else {
        8.0
    };
    (effective as f64 * bits_per_char).floor() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_under_128_bits_are_refused() {
        // What `openssl rand -hex 16/32` and `-base64 32` write passes; words and short hex do not.
        // What openssl writes, whatever it drew (a thousand draws of a keyed hash stand in).
        for i in 0u32..1000 {
            let hex: String = (0u32..8)
                .map(|k| {
                    format!(
                        "{:08x}",
                        (i.wrapping_mul(2654435761) ^ k.wrapping_mul(0x9e37_79b9))
                            .wrapping_mul(0x85eb_ca6b)
                            .rotate_left(13)
                            .wrapping_mul(0xc2b2_ae35)
                    )
                })
                .collect();
            assert!(
                seed_bits(&hex) >= MIN_SEED_BITS,
                "{hex}: {}",
                seed_bits(&hex)
            );
        }
        assert!(seed_bits("q2Vb1Jx9cN7mT0pLr8sW4eYh6aZk3fGd5uIo1nQw2E=") >= MIN_SEED_BITS);
        for weak in [
            "s",
            "same-seed",
            "0011223344556677",
            "12345678901234567890123456789012345",
            &"a".repeat(200),
            "passwordpasswordpasswordpassword",
            "1234567890123456789012345678901234567890",
            "abcdefghijklmnopqrstuvwxyz0123456789",
            "correcthorsebatterystaple",
            "MIRAGE_SEED_MIRAGE_SEED_MIRAGE_SEED",
            "0123456789abcdef0123456789abcdef",
            "qwertyuiopasdfghjkl",
        ] {
            assert!(
                seed_bits(weak) < MIN_SEED_BITS,
                "{weak}: {}",
                seed_bits(weak)
            );
        }
        let ws = Workspace::parse(
            Path::new("w.toml"),
            "[source]\nurl = \"files:./a\"\n[destination]\nurl = \"files:./b\"\n\
             [consistency]\nseed_env = \"MIRAGE_TEST_WEAK_SEED\"\n",
        )
        .expect("parses");
        // SAFETY: this test alone reads or writes this variable.
        unsafe { std::env::set_var("MIRAGE_TEST_WEAK_SEED", "hunter2-secret") };
        let message = ws.seed().expect_err("a weak seed is refused").to_string();
        assert!(message.contains("openssl rand -hex 32"), "{message}");
        assert!(
            !message.contains("hunter2"),
            "the seed is never shown: {message}"
        );
    }

    const GOOD: &str = r#"
[source]
url = "postgres://app@localhost:5432/prod"

[destination]
url = "postgres://app@localhost:5432/dev"
preserve_ownership = true

[schemas]
include = ["public"]

[run]
part_size = "1MiB"

[tables."public.users"]
mode = "de-identify"

[tables."public.users".columns]
email = { generator = "email", keep_domain = true }
id = { generator = "integer_key" }

[tables."public.audit"]
mode = "truncate"
"#;

    #[test]
    fn parses_a_full_file_with_lines() {
        let ws = Workspace::parse(Path::new("w.toml"), GOOD).unwrap();
        assert_eq!(ws.source.password_env, "MIRAGE_SOURCE_PASSWORD");
        assert!(ws.preserve_ownership);
        assert_eq!(ws.run.part_size.0, 1 << 20);
        let users = ws.table_config("public.users").unwrap();
        assert_eq!(users.line, 15);
        let email = &users.columns[0];
        assert_eq!((email.name.as_str(), email.line), ("email", 19));
        assert_eq!(email.generator, "email");
        assert_eq!(
            email.options.get("keep_domain"),
            Some(&toml::Value::Boolean(true))
        );
        assert_eq!(
            ws.table_config("public.audit").unwrap().mode,
            TableMode::Truncate
        );
    }

    #[test]
    fn unknown_keys_name_the_line_and_suggest() {
        let text = GOOD.replace("part_size", "part_sise");
        let e = Workspace::parse(Path::new("w.toml"), &text).unwrap_err();
        assert_eq!(e.line, 13, "{e}");
        assert!(e.to_string().contains("did you mean `part_size`"), "{e}");
    }

    #[test]
    fn bad_mode_is_explained() {
        let text = GOOD.replace("\"truncate\"", "\"truncat\"");
        let e = Workspace::parse(Path::new("w.toml"), &text).unwrap_err();
        assert!(e.to_string().contains("did you mean `truncate`"), "{e}");
        assert_eq!(e.line, 23, "{e}");
    }

    #[test]
    fn missing_generator_is_an_error() {
        let text = GOOD.replace("{ generator = \"integer_key\" }", "{ min = 1 }");
        let e = Workspace::parse(Path::new("w.toml"), &text).unwrap_err();
        assert!(e.to_string().contains("missing `generator`"), "{e}");
        assert_eq!(e.line, 20);
    }

    #[test]
    fn staging_compression_is_zstd_or_gzip() {
        let staging =
            "[staging]\nbucket = \"mirage-x\"\niam_role = \"arn:aws:iam::123456789012:role/r\"\n";
        let ws = Workspace::parse(Path::new("w.toml"), &format!("{GOOD}\n{staging}")).unwrap();
        let config = ws.staging.as_ref().map(|s| s.compression);
        assert_eq!(config, Some(Compression::Zstd));
        let text = format!("{GOOD}\n{staging}compression = \"gzip\"\n");
        let ws = Workspace::parse(Path::new("w.toml"), &text).unwrap();
        assert_eq!(ws.staging.map(|s| s.compression), Some(Compression::Gzip));
        let text = format!("{GOOD}\n{staging}compression = \"lz4\"\n");
        let e = Workspace::parse(Path::new("w.toml"), &text).unwrap_err();
        assert!(
            e.to_string().contains("zstd") && e.to_string().contains("gzip"),
            "{e}"
        );
        assert_eq!(e.line, text.lines().count(), "{e}");
    }

    #[test]
    fn missing_seed_says_how_to_set_it() {
        let text = GOOD.replace(
            "[schemas]",
            "[consistency]\nseed_env = \"MIRAGE_TEST_UNSET_SEED\"\n\n[schemas]",
        );
        let ws = Workspace::parse(Path::new("w.toml"), &text).unwrap();
        let e = ws.seed().unwrap_err();
        assert!(e.to_string().contains("MIRAGE_TEST_UNSET_SEED"), "{e}");
    }
}
