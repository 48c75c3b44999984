//! A job: plan, schema copy, then for each table extract → parts → transform → load, several
//! tables at once and parts of a table in parallel, with memory bounded by parts in flight.

use crate::plan::{Plan, Stats, TablePlan};
use crate::progress::{Progress, TableProgress};
use crate::report::{JobReport, JobStatus, TableReport, TableStatus};
use bytes::Bytes;
use futures_util::StreamExt;
use mirage_connectors::files::{FilesDestination, FilesSource, folder_of};
use mirage_connectors::postgres::{PgDestination, PgEndpoint, PgSource};
use mirage_connectors::redshift::{RedshiftDestination, RedshiftSource, Staging};
use mirage_connectors::{Aborted, ChunkStream, ConnectorError, Destination, Source};
use mirage_core::workspace::{Process, StagingConfig, TableMode, Workspace, WorkspaceError};
use mirage_transform::codec::{Format, RecordSplitter, count_records};
use mirage_transform::{PartTransform, TransformError};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};
use tokio::sync::Semaphore;

/// Why a job could not run or did not complete.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Workspace(Vec<WorkspaceError>),
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    #[error(
        "the destination is the same database as the source ({0}); mirage never writes to the source: \
         point destination.url at another database"
    )]
    SameDatabase(String),
    #[error("source and destination must be of the same kind (source is {0}, destination is {1})")]
    KindMismatch(&'static str, &'static str),
    #[error("{0}")]
    Unsupported(String),
    /// The job ran and did not complete; the report says which tables did.
    #[error("{}", .0.failure_summary())]
    Incomplete(Box<JobReport>),
}

impl From<WorkspaceError> for RunError {
    fn from(e: WorkspaceError) -> Self {
        RunError::Workspace(vec![e])
    }
}

/// How a job runs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub seed: String,
    /// Live progress bars when attached to a terminal.
    pub progress: bool,
    /// Where the JSON report goes (default: `.mirage/jobs/<job id>.json` beside the workspace).
    pub report_path: Option<PathBuf>,
}

/// The kind of a connection URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Postgres,
    Redshift,
    Files,
}

impl Kind {
    pub fn of(url: &str) -> Result<Kind, String> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Kind::Postgres)
        } else if url.starts_with("files:") {
            Ok(Kind::Files)
        } else if url.starts_with("redshift://") {
            Ok(Kind::Redshift)
        } else {
            Err("unsupported URL; use postgres://user@host:5432/database, \
                 redshift://user@cluster.xxxx.region.redshift.amazonaws.com:5439/database or files:./folder"
                .into())
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Postgres => "postgres",
            Kind::Redshift => "redshift",
            Kind::Files => "files",
        }
    }
}

fn url_kind(ws: &Workspace, which: &str) -> Result<Kind, RunError> {
    let conn = if which == "source" {
        &ws.source
    } else {
        &ws.destination
    };
    Kind::of(&conn.url).map_err(|m| ws.error(conn.line, format!("{which}.url"), m).into())
}

fn files_dir(ws: &Workspace, which: &str) -> Result<PathBuf, RunError> {
    let conn = if which == "source" {
        &ws.source
    } else {
        &ws.destination
    };
    folder_of(&conn.url, &ws.base_dir()).ok_or_else(|| {
        ws.error(conn.line, format!("{which}.url"), "write files:./folder")
            .into()
    })
}

/// Gather the facts statistical generators need (category counts, quantiles) for the columns
/// the workspace gives one, under the source's snapshot.
async fn gather_stats<S: Source>(
    source: &S,
    ws: &Workspace,
    catalog: &mirage_core::schema::Catalog,
) -> Result<Stats, RunError> {
    let mut stats = Stats::new();
    for tc in &ws.tables {
        let name = mirage_core::QualifiedName::parse(&tc.name);
        let Some(table) = catalog.table(&name) else {
            continue;
        };
        for cc in &tc.columns {
            let Some(kind) = mirage_generators::info(&cc.generator).and_then(|i| i.stats) else {
                continue;
            };
            if table.column(&cc.name).is_none() {
                continue; // the plan reports it
            }
            let s = source
                .column_stats(&name, &cc.name, kind)
                .await
                .map_err(|e| {
                    ws.error(
                        cc.line,
                        mirage_core::workspace::column_key(&tc.name, &cc.name),
                        e.to_string(),
                    )
                })?;
            stats.insert((tc.name.clone(), cc.name.clone()), s);
        }
    }
    Ok(stats)
}

/// Read the source's catalog and build the plan (used by `mirage plan`).
pub async fn plan(ws: &Workspace, seed: &str) -> Result<Plan, RunError> {
    async fn build<S: Source>(source: S, ws: &Workspace, seed: &str) -> Result<Plan, RunError> {
        let catalog = source.catalog(&ws.schemas).await?;
        let stats = gather_stats(&source, ws, &catalog).await?;
        Plan::build(ws, catalog, seed, &stats).map_err(RunError::Workspace)
    }
    match url_kind(ws, "source")? {
        Kind::Postgres => {
            let src = PgSource::open(PgEndpoint::new("source", &ws.source)?).await?;
            build(src, ws, seed).await
        }
        Kind::Redshift => {
            let staging = Arc::new(Staging::new(staging_config(ws)?, "plan")?);
            let src =
                RedshiftSource::open(PgEndpoint::redshift("source", &ws.source)?, Some(staging))
                    .await?;
            build(src, ws, seed).await
        }
        Kind::Files => build(FilesSource::open(&files_dir(ws, "source")?)?, ws, seed).await,
    }
}

/// The `[staging]` block a Redshift job needs.
fn staging_config(ws: &Workspace) -> Result<&StagingConfig, RunError> {
    ws.staging.as_ref().ok_or_else(|| {
        ws.error(
            ws.source.line,
            "staging",
            "a Redshift job needs a [staging] block: bucket = \"…\", iam_role = \"arn:aws:iam::…:role/…\" \
             (see `mirage init` or the README)",
        )
        .into()
    })
}

/// Run the job the workspace describes.
pub async fn run(ws: &Workspace, opts: &RunOptions) -> Result<JobReport, RunError> {
    let (sk, dk) = (url_kind(ws, "source")?, url_kind(ws, "destination")?);
    match (sk, dk) {
        (Kind::Postgres, Kind::Postgres) => {
            let source = PgSource::open(PgEndpoint::new("source", &ws.source)?).await?;
            let dest = PgDestination::new(PgEndpoint::new("destination", &ws.destination)?);
            let (sid, did) = (source.identity().await?, dest.identity().await?);
            if sid == did {
                return Err(RunError::SameDatabase(dest.endpoint().display()));
            }
            let names = (source.endpoint().display(), dest.endpoint().display());
            execute(ws, opts, source, dest, names, new_job_id()).await
        }
        (Kind::Redshift, Kind::Redshift) => {
            let config = staging_config(ws)?;
            if config.process == Process::Lambda {
                return Err(RunError::Unsupported(format!(
                    "{}:{}: staging.process = \"lambda\" (the SQS + Lambda process) is not available in this \
                     build; use process = \"v2\" (Data Pipeline V2), which transforms in the mirage worker",
                    ws.path.display(),
                    config.line
                )));
            }
            let job_id = new_job_id();
            let staging = Arc::new(Staging::new(config, &job_id)?);
            let source = RedshiftSource::open(
                PgEndpoint::redshift("source", &ws.source)?,
                Some(staging.clone()),
            )
            .await?;
            let dest = RedshiftDestination::new(
                PgEndpoint::redshift("destination", &ws.destination)?,
                staging.clone(),
            );
            if source.identity() == dest.identity() {
                return Err(RunError::SameDatabase(dest.endpoint().display()));
            }
            let names = (source.endpoint().display(), dest.endpoint().display());
            let result = execute(ws, opts, source, dest, names, job_id).await;
            if let Err(e) = staging.cleanup().await {
                tracing::warn!(error = %e, "could not remove the job's staging files");
            }
            result
        }
        (Kind::Files, Kind::Files) => {
            let source = FilesSource::open(&files_dir(ws, "source")?)?;
            let dest = FilesDestination::new(&files_dir(ws, "destination")?);
            if source.identity() == dest.identity() {
                return Err(RunError::SameDatabase(dest.identity()));
            }
            let names = (source.identity(), dest.identity());
            execute(ws, opts, source, dest, names, new_job_id()).await
        }
        (a, b) => Err(RunError::KindMismatch(a.name(), b.name())),
    }
}

fn new_job_id() -> String {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let stamp = humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .replace([':', '-'], "")
        .trim_end_matches('Z')
        .replace('T', "-");
    format!(
        "{stamp}-{:04x}",
        (now.subsec_nanos() ^ std::process::id()) & 0xffff
    )
}

/// Shared state of a running job.
struct JobCtx {
    part_size: usize,
    parts_in_flight: usize,
    transform_slots: Arc<Semaphore>,
    progress: Progress,
    reports: Mutex<Vec<TableReport>>,
}

async fn execute<S, D>(
    ws: &Workspace,
    opts: &RunOptions,
    source: S,
    dest: D,
    (source_name, dest_name): (String, String),
    job_id: String,
) -> Result<JobReport, RunError>
where
    S: Source,
    D: Destination<Schema = S::Schema>,
{
    let started = SystemTime::now();
    let clock = Instant::now();
    let catalog = source.catalog(&ws.schemas).await?;
    let stats = gather_stats(&source, ws, &catalog).await?;
    let plan = Plan::build(ws, catalog, &opts.seed, &stats).map_err(RunError::Workspace)?;
    dest.preflight(&plan.schema_options).await?;
    let schema = source.schema(&plan.catalog).await?;
    tracing::info!(job = %job_id, tables = plan.tables.len(), "plan validated; copying schema");

    let threads = if ws.run.transform_threads == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        ws.run.transform_threads
    };
    let ctx = JobCtx {
        part_size: ws.run.part_size.0 as usize,
        parts_in_flight: ws.run.parts_in_flight,
        transform_slots: Arc::new(Semaphore::new(threads)),
        progress: Progress::new(opts.progress),
        reports: Mutex::new(Vec::new()),
    };
    let mut report = JobReport::new(&job_id, started, &source_name, &dest_name);

    let mut job_error = None;
    let mut canceled = false;
    let phase = Instant::now();
    // Once a Ctrl-C listener exists, SIGINT no longer ends the process: every phase listens.
    let created = tokio::select! {
        r = dest.create_schema(&schema, &plan.schema_options) => Some(r),
        _ = tokio::signal::ctrl_c() => None,
    };
    report.phases.schema_seconds = phase.elapsed().as_secs_f64();
    let phase = Instant::now();
    if created.is_none() {
        canceled = true;
        job_error =
            Some("interrupted while creating the destination schema; no rows were loaded".into());
    } else if let Some(Err(e)) = created {
        job_error = Some(format!("creating the destination schema: {e}"));
    } else {
        let all = futures_util::stream::iter(plan.tables.iter())
            .map(|tp| copy_one(&source, &dest, tp, &ctx))
            .buffer_unordered(ws.run.parallelism)
            .for_each(|_| async {});
        tokio::select! {
            _ = all => {}
            _ = tokio::signal::ctrl_c() => {
                canceled = true;
                ctx.progress.println("interrupted: stopping; tables not yet committed are left unloaded");
            }
        }
    }
    let mut tables = ctx.reports.lock().map(|r| r.clone()).unwrap_or_default();
    for tp in &plan.tables {
        if !tables.iter().any(|t| t.table == tp.table.name.to_string()) {
            tables.push(TableReport::not_loaded(tp, canceled));
        }
    }
    report.phases.rows_seconds = phase.elapsed().as_secs_f64();
    let all_ok = !canceled && job_error.is_none() && tables.iter().all(|t| t.status.is_success());
    let phase = Instant::now();
    if all_ok {
        tokio::select! {
            r = dest.finish_schema(&schema, &plan.schema_options) => if let Err(e) = r {
                job_error = Some(format!(
                    "creating indexes, constraints and triggers after the load: {e}"
                ));
            },
            _ = tokio::signal::ctrl_c() => {
                canceled = true;
                job_error = Some(
                    "interrupted while creating indexes, constraints and triggers; every table's rows \
                     are loaded, run again to finish"
                        .into(),
                );
            }
        }
    } else if !canceled {
        match dest.finish_after_failure(&schema).await {
            Some(problems) => {
                for p in problems {
                    ctx.progress.println(&format!("warning: {p}"));
                }
            }
            None if job_error.is_none() => {
                job_error = Some(
                    "indexes, constraints and triggers were not created because some tables failed; \
                     fix the cause and run again"
                        .into(),
                );
            }
            None => {}
        }
    }
    report.phases.constraints_seconds = phase.elapsed().as_secs_f64();
    // Order the report like the plan.
    tables.sort_by_key(|t| {
        plan.tables
            .iter()
            .position(|p| p.table.name.to_string() == t.table)
            .unwrap_or(usize::MAX)
    });
    report.tables = tables;
    report.seconds = clock.elapsed().as_secs_f64();
    report.finished_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    report.error = job_error;
    report.status = if canceled {
        JobStatus::Canceled
    } else if all_ok && report.error.is_none() {
        JobStatus::Completed
    } else {
        JobStatus::Failed
    };
    let path = opts.report_path.clone().unwrap_or_else(|| {
        ws.base_dir()
            .join(".mirage")
            .join("jobs")
            .join(format!("{job_id}.json"))
    });
    report.write(&path)?;
    report.report_path = Some(path.display().to_string());
    if report.status == JobStatus::Completed {
        Ok(report)
    } else {
        Err(RunError::Incomplete(Box::new(report)))
    }
}

/// Copy (or truncate, or preserve) one table and record its report.
async fn copy_one<S: Source, D: Destination>(source: &S, dest: &D, tp: &TablePlan, ctx: &JobCtx) {
    let started = Instant::now();
    let name = tp.table.name.to_string();
    let progress = Arc::new(ctx.progress.table(&name, tp.table.byte_estimate));
    let mut written = 0u64;
    // Nothing to transform, and the destination reads the source's staging storage (Redshift):
    // the extract is loaded as it is, without passing through the worker.
    let direct =
        tp.mode == TableMode::DeIdentify && tp.masked().next().is_none() && dest.accepts_staged();
    let result = match tp.mode {
        TableMode::DeIdentify if direct => copy_staged(source, dest, tp, progress.clone()).await,
        TableMode::DeIdentify => copy_rows(source, dest, tp, ctx, progress.clone())
            .await
            .map(|(rows, bytes)| {
                written = bytes;
                rows
            }),
        // An empty load: the table exists with no rows (and a files destination gets its header).
        TableMode::Truncate => dest
            .load(
                &tp.table,
                &tp.copy_columns(),
                futures_util::stream::empty().boxed(),
            )
            .await
            .map_err(|e| e.to_string()),
        TableMode::PreserveDestination => dest
            .restore_preserved(&tp.table)
            .await
            .map_err(|e| e.to_string()),
    };
    let (status, rows, error) = match (&result, tp.mode) {
        (Ok(rows), TableMode::DeIdentify) => (TableStatus::Loaded, *rows, None),
        (Ok(_), TableMode::Truncate) => (TableStatus::Truncated, 0, None),
        (Ok(rows), TableMode::PreserveDestination) => (TableStatus::Preserved, *rows, None),
        (Err(e), _) => (TableStatus::Failed, 0, Some(e.clone())),
    };
    progress.finish(status.as_str(), rows);
    if let Some(e) = &error {
        ctx.progress.println(&format!("✗ {name}: {e}"));
    }
    let report = TableReport {
        table: name,
        mode: tp.mode.as_str().to_string(),
        status,
        rows,
        bytes_read: progress.bytes(),
        bytes_written: if status == TableStatus::Loaded {
            written
        } else {
            0
        },
        bytes_unloaded: source.staged_bytes(&tp.table.name),
        bytes_loaded: dest.staged_bytes(&tp.table.name),
        seconds: started.elapsed().as_secs_f64(),
        masked_columns: tp.masked().map(|c| c.name.clone()).collect(),
        error,
    };
    if let Ok(mut r) = ctx.reports.lock() {
        r.push(report);
    }
}

/// Extract into staging storage and load from there, for a table with nothing to transform.
async fn copy_staged<S: Source, D: Destination>(
    source: &S,
    dest: &D,
    tp: &TablePlan,
    progress: Arc<TableProgress>,
) -> Result<u64, String> {
    let columns = tp.copy_columns();
    let staged = source
        .stage(&tp.table, &columns)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{}: the source has no staging storage", tp.table.name))?;
    let rows = dest
        .load_staged(&tp.table, &columns, &staged)
        .await
        .map_err(|e| e.to_string())?;
    progress.advance(rows, staged.bytes);
    Ok(rows)
}

/// Cut a chunk stream into parts of about `part_size` bytes ending on record boundaries.
/// Runs as its own task so reading overlaps transforming and loading; at most `capacity` parts
/// wait in the channel.
fn spawn_splitter(
    mut chunks: ChunkStream,
    format: Format,
    part_size: usize,
    capacity: usize,
) -> tokio::sync::mpsc::Receiver<Result<Vec<u8>, String>> {
    let (tx, rx) = tokio::sync::mpsc::channel(capacity);
    tokio::spawn(async move {
        let mut splitter = RecordSplitter::new(format);
        let mut pending: Vec<u8> = Vec::with_capacity(part_size + part_size / 4);
        while let Some(chunk) = chunks.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string())).await;
                    return;
                }
            };
            pending.extend_from_slice(&chunk);
            if pending.len() >= part_size {
                let cut = splitter.complete_len(&pending);
                if cut > 0 {
                    let rest = pending[cut..].to_vec();
                    pending.truncate(cut);
                    splitter.take(cut);
                    let part = std::mem::replace(&mut pending, {
                        let mut v = Vec::with_capacity(part_size + part_size / 4);
                        v.extend_from_slice(&rest);
                        v
                    });
                    if tx.send(Ok(part)).await.is_err() {
                        return; // the load stopped
                    }
                }
            }
        }
        if !pending.is_empty() {
            let _ = tx.send(Ok(pending)).await;
        }
    });
    rx
}

/// Extract → parts → transform → load for one table. Returns rows loaded and bytes the
/// transform handed to the destination.
async fn copy_rows<S: Source, D: Destination>(
    source: &S,
    dest: &D,
    tp: &TablePlan,
    ctx: &JobCtx,
    progress: Arc<TableProgress>,
) -> Result<(u64, u64), String> {
    let columns = tp.copy_columns();
    let format = source.format();
    let transform = Arc::new(PartTransform::new(
        format.clone(),
        tp.columns
            .iter()
            .map(|c| (c.name.clone(), c.generator.clone()))
            .collect(),
    ));
    let chunks = source
        .read(&tp.table, &columns)
        .await
        .map_err(|e| e.to_string())?;
    let rx = spawn_splitter(chunks, format.clone(), ctx.part_size, 1);
    let parts =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|p| (p, rx)) });
    let failure: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let slots = ctx.transform_slots.clone();
    let transformed = parts
        .map(move |part| {
            let transform = transform.clone();
            let slots = slots.clone();
            let format = format.clone();
            async move {
                let part = part.map_err(PartError::Other)?;
                let in_bytes = part.len() as u64;
                if transform.is_identity() {
                    let rows = count_records(&format, &part);
                    return Ok((Bytes::from(part), rows, in_bytes));
                }
                let _slot = slots
                    .acquire_owned()
                    .await
                    .map_err(|e| PartError::Other(e.to_string()))?;
                tokio::task::spawn_blocking(move || {
                    let mut out = Vec::new();
                    transform
                        .apply(&part, &mut out)
                        .map(|s| (Bytes::from(out), s.rows, in_bytes))
                        .map_err(PartError::Transform)
                })
                .await
                .map_err(|e| PartError::Other(format!("a transform task failed: {e}")))?
            }
        })
        .buffered(ctx.parts_in_flight);
    // Parts come back in order, so the running row count turns part-relative record numbers
    // into table row numbers.
    let fail = failure.clone();
    let mut rows_before = 0u64;
    let out_bytes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = out_bytes.clone();
    let part_stream = transformed
        .map(move |r| match r {
            Ok((bytes, rows, in_bytes)) => {
                rows_before += rows;
                counted.fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
                progress.advance(rows, in_bytes);
                Ok(bytes)
            }
            Err(e) => {
                let e = e.describe(rows_before);
                if let Ok(mut f) = fail.lock() {
                    f.get_or_insert(e);
                }
                Err(Aborted)
            }
        })
        .boxed();
    let loaded = dest.load(&tp.table, &columns, part_stream).await;
    let cause = failure.lock().ok().and_then(|f| f.clone());
    match (loaded, cause) {
        (_, Some(cause)) => Err(format!("{cause}; the table was not loaded")),
        (Ok(rows), None) => Ok((rows, out_bytes.load(std::sync::atomic::Ordering::Relaxed))),
        (Err(e), None) => Err(e.to_string()),
    }
}

/// Why a part could not be produced.
enum PartError {
    Transform(TransformError),
    Other(String),
}

impl PartError {
    /// The message, with part-relative record numbers turned into table row numbers.
    fn describe(&self, rows_before: u64) -> String {
        match self {
            PartError::Transform(TransformError::Generate {
                column,
                record,
                source,
            }) => format!("column {column}, row {}: {source}", rows_before + record),
            PartError::Transform(TransformError::NotUtf8 { column, record }) => format!(
                "column {column}, row {}: the value is not valid UTF-8",
                rows_before + record
            ),
            PartError::Transform(other) => other.to_string(),
            PartError::Other(m) => m.clone(),
        }
    }
}
