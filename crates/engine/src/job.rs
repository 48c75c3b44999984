//! A job: checks, plan, schema copy, then for each table extract → parts → transform → load,
//! several tables at once and parts of a table in parallel, with memory bounded by parts in
//! flight. Progress goes out as [`Event`]s; nothing is printed.

use crate::events::{Cancel, Event, Events, Phase};
use crate::plan::{Plan, Stats, TablePlan};
use crate::report::{JobReport, JobStatus, TableReport, TableStatus};
use crate::review::Review;
use bytes::Bytes;
use futures_util::StreamExt;
use mirage_connectors::check::{CheckContext, Checks};
use mirage_connectors::registry::{AnyDestination, AnySource, Connector, Role, connector_of};
use mirage_connectors::{Aborted, ChunkStream, ConnectorError, LoadStats};
use mirage_core::display::printable;
use mirage_core::workspace::{TableMode, Workspace, WorkspaceError};
use mirage_transform::codec::{Format, RecordSplitter, count_records};
use mirage_transform::{PartTransform, TransformError};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};
use tokio::sync::Semaphore;

/// Why a job could not run or did not complete.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The workspace is wrong; every mistake found, each naming its file, line and key (one
    /// line each: control characters of the names they quote are escaped).
    #[error("{}", .0.iter().map(|e| printable(&e.to_string()).into_owned()).collect::<Vec<_>>().join("\n"))]
    Workspace(Vec<WorkspaceError>),
    /// A connector failed.
    #[error(transparent)]
    Connector(ConnectorError),
    /// Checks made before anything is written failed: bad input (exit 2) unless a server could
    /// not be reached at all (`unreachable`: it may be down for now).
    #[error("{}", preflight_message(failures))]
    Preflight {
        /// Each failed item, with its fix.
        failures: Vec<String>,
        /// A connection failed before the server answered.
        unreachable: bool,
    },
    /// The destination is the source.
    #[error(
        "the destination is the same database as the source ({0}); mirage never writes to the source: \
         point destination.url at another database"
    )]
    SameDatabase(String),
    /// Source and destination are of different kinds.
    #[error("source and destination must be of the same kind (source is {0}, destination is {1})")]
    KindMismatch(&'static str, &'static str),
    /// Interrupted before anything was written.
    #[error("interrupted before anything was written")]
    Interrupted,
    /// Another job holds the destination; nothing was written.
    #[error("{0}")]
    InUse(String),
    /// The report cannot be written where it was asked for; nothing was done.
    #[error("{0}; give a path in a folder you can write to (nothing was done)")]
    Report(String),
    /// The job ran and did not complete; the report says which tables did.
    #[error("{}", .0.failure_summary())]
    Incomplete(Box<JobReport>),
}

fn preflight_message(failures: &[String]) -> String {
    format!(
        "nothing was written: {} check(s) failed (`mirage check` lists them all)\n  ✗ {}",
        failures.len(),
        failures.join("\n  ✗ ")
    )
}

impl From<WorkspaceError> for RunError {
    fn from(e: WorkspaceError) -> Self {
        RunError::Workspace(vec![e])
    }
}

impl From<ConnectorError> for RunError {
    fn from(e: ConnectorError) -> Self {
        match e {
            ConnectorError::Workspace(w) => RunError::Workspace(vec![w]),
            ConnectorError::Preflight(failures) => RunError::Preflight {
                failures,
                unreachable: false,
            },
            e @ ConnectorError::InUse { .. } => RunError::InUse(e.to_string()),
            other => RunError::Connector(other),
        }
    }
}

impl RunError {
    /// Whether the user's input is at fault (the CLI exits with 2).
    pub fn is_bad_input(&self) -> bool {
        // A setting the connector cannot use, or a server that refused the login.
        if let RunError::Connector(e) = self {
            return matches!(
                e,
                ConnectorError::Invalid(_) | ConnectorError::Connect { answered: true, .. }
            );
        }
        matches!(
            self,
            RunError::Workspace(_)
                | RunError::KindMismatch(..)
                | RunError::SameDatabase(_)
                | RunError::InUse(_)
                | RunError::Report(_)
                | RunError::Preflight {
                    unreachable: false,
                    ..
                }
        )
    }
}

/// How a job runs.
#[derive(Clone)]
pub struct RunOptions {
    /// The consistency seed.
    pub seed: String,
    /// Where the JSON report goes (default: `.mirage/jobs/<job id>.json` beside the workspace).
    pub report_path: Option<PathBuf>,
    /// Where events go.
    pub events: Events,
    /// Stops the job when triggered.
    pub cancel: Cancel,
}

/// The connectors of a workspace's source and destination, which must be of one kind.
fn job_connector(ws: &Workspace) -> Result<&'static dyn Connector, RunError> {
    let source = connector_of(ws, Role::Source)?;
    let destination = connector_of(ws, Role::Destination)?;
    if source.name() != destination.name() {
        return Err(RunError::KindMismatch(source.name(), destination.name()));
    }
    Ok(source)
}

/// Every check a job needs, as `mirage check` prints them: the source's, the workspace's (the
/// plan `mirage run` builds: every mistake is a failed item), the destination's and the job's
/// (staging). The plan tells which schemas and preserved tables the destination's checks concern.
pub async fn check(ws: &Workspace) -> Checks {
    let mut out = Checks::new();
    let seed_check = format!("the consistency seed in ${} is set and strong", ws.seed_env);
    match ws.seed() {
        Ok(_) => out.pass("workspace", seed_check),
        Err(e) => out.fail(
            "workspace",
            seed_check,
            Some(e.message),
            format!("export {}=$(openssl rand -hex 32)", ws.seed_env),
        ),
    }
    let connectors = (
        connector_of(ws, Role::Source),
        connector_of(ws, Role::Destination),
    );
    let facts = match &connectors.0 {
        Ok(c) => c.source_checks(ws, &mut out).await,
        Err(e) => {
            out.fail(
                "source",
                "source.url",
                Some(e.to_string()),
                "fix source.url in the workspace",
            );
            Default::default()
        }
    };
    let mut ctx = CheckContext::from_workspace(ws, &facts);
    if out.ok
        && let Ok(c) = &connectors.0
    {
        plan_checks(ws, *c, &mut ctx, &mut out).await;
    }
    match &connectors.1 {
        Ok(c) => c.destination_checks(ws, &ctx, &mut out).await,
        Err(e) => out.fail(
            "destination",
            "destination.url",
            Some(e.to_string()),
            "fix destination.url in the workspace",
        ),
    }
    if let (Ok(s), Ok(d)) = connectors {
        if s.name() == d.name() {
            s.job_checks(ws, &mut out).await;
        } else {
            out.fail(
                "destination",
                "the destination is of the source's kind",
                Some(format!(
                    "the source is {}, the destination is {}",
                    s.name(),
                    d.name()
                )),
                "copy between databases of the same kind",
            );
        }
    }
    out
}

/// The plan, built as `mirage run` builds it (the seed's value does not matter to it): each
/// workspace mistake becomes a failed item, and the destination's checks learn the schemas the
/// job replaces and the tables it preserves (checked against the source's definitions).
async fn plan_checks(
    ws: &Workspace,
    connector: &'static dyn Connector,
    ctx: &mut CheckContext,
    out: &mut Checks,
) {
    const A: &str = "source";
    let source = match connector.open_source(ws).await {
        Ok(s) => s,
        Err(e) => {
            out.fail(
                A,
                "open the source",
                Some(e.to_string()),
                "check source.url and the source user's grants",
            );
            return;
        }
    };
    let catalog = match source.catalog(&ws.schemas).await {
        Ok(c) => c,
        Err(e) => {
            out.fail(
                A,
                "read the source's catalog",
                Some(e.to_string()),
                "check the source user's grants",
            );
            return;
        }
    };
    ctx.schemas = catalog.schemas.clone();
    ctx.preserved = preserved_tables(ws, &catalog);
    let seed = ws.seed().unwrap_or_else(|_| "check-only".into());
    let plan = prepare(ws, source.as_ref(), catalog, &seed)
        .await
        .and_then(|(_, plan)| plan.map_err(RunError::Workspace));
    match plan {
        Ok(plan) => {
            ctx.schemas = plan.schema_options.schemas;
            ctx.preserved = plan.schema_options.preserved;
        }
        Err(RunError::Workspace(errors)) => {
            for e in errors {
                out.fail("workspace", e.to_string(), None, "edit the workspace");
            }
        }
        Err(e) => out.fail("workspace", e.to_string(), None, "edit the workspace"),
    }
}

/// Tables the workspace preserves, as the catalog describes them.
fn preserved_tables(
    ws: &Workspace,
    catalog: &mirage_core::schema::Catalog,
) -> Vec<mirage_core::Table> {
    catalog
        .tables
        .iter()
        .filter(|t| {
            ws.table_config(&mirage_connectors::settings_owner(t).to_string())
                .is_some_and(|c| c.mode == TableMode::PreserveDestination)
        })
        .cloned()
        .collect()
}

/// Gather the facts statistical generators need (category counts, quantiles) for the columns
/// the workspace gives one, under the source's snapshot.
async fn gather_stats(
    source: &dyn AnySource,
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

/// Stop with the failed items when the checks found any.
fn require(checks: &Checks) -> Result<(), RunError> {
    if checks.ok {
        Ok(())
    } else {
        Err(RunError::Preflight {
            failures: checks.failures(),
            unreachable: checks.unreachable,
        })
    }
}

/// The statistics, the review of the source against the workspace, and the plan built from
/// them: what `mirage check`, `mirage plan` and `mirage run` all do once the catalog is read.
/// The review is returned even when the plan has mistakes.
async fn prepare(
    ws: &Workspace,
    source: &dyn AnySource,
    catalog: mirage_core::schema::Catalog,
    seed: &str,
) -> Result<(Review, Result<Plan, Vec<WorkspaceError>>), RunError> {
    let stats = gather_stats(source, ws, &catalog).await?;
    let review = crate::review::review(ws, source, &catalog, crate::review::DEFAULT_SAMPLE).await?;
    let plan = Plan::build(ws, catalog, seed, &stats, &review);
    Ok((review, plan))
}

/// Read the source's catalog and build the plan (used by `mirage plan`). The source's checks
/// run first: a missing grant is named with the statement that fixes it.
pub async fn plan(ws: &Workspace, seed: &str) -> Result<Plan, RunError> {
    let (_, plan) = plan_and_review(ws, seed).await?;
    plan.map_err(RunError::Workspace)
}

/// Sample and classify every copied column of the source (`mirage scan`), under the same
/// checks and read-only grants a run needs. Returns the catalog with the results.
pub async fn scan(
    ws: &Workspace,
    limit: usize,
) -> Result<(mirage_core::schema::Catalog, Vec<crate::review::ColumnScan>), RunError> {
    let (source, catalog) = checked_source(ws).await?;
    let found = crate::review::scan(source.as_ref(), &catalog, limit).await?;
    Ok((catalog, found))
}

/// The source opened after its checks passed (a missing grant is named with the statement
/// that fixes it), and its catalog.
async fn checked_source(
    ws: &Workspace,
) -> Result<(Box<dyn AnySource>, mirage_core::schema::Catalog), RunError> {
    let connector = connector_of(ws, Role::Source)?;
    let mut checks = Checks::new();
    connector.source_checks(ws, &mut checks).await;
    require(&checks)?;
    let source = connector.open_source(ws).await?;
    let catalog = source.catalog(&ws.schemas).await?;
    Ok((source, catalog))
}

/// Like [`plan`], with the review of the source against the workspace even when the plan has
/// mistakes (`mirage plan --format json` prints both).
pub async fn plan_and_review(
    ws: &Workspace,
    seed: &str,
) -> Result<(Review, Result<Plan, Vec<WorkspaceError>>), RunError> {
    let (source, catalog) = checked_source(ws).await?;
    prepare(ws, source.as_ref(), catalog, seed).await
}

/// A new job id: the time, and a few bits to tell apart jobs started in the same second.
pub fn new_job_id() -> String {
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

/// Run the job the workspace describes.
pub async fn run(ws: &Workspace, opts: &RunOptions) -> Result<JobReport, RunError> {
    let connector = job_connector(ws)?;
    if let Some(path) = &opts.report_path {
        JobReport::check_writable(path)
            .map_err(|e| RunError::Report(format!("--report {}: {e}", path.display())))?;
    }
    let emit = &opts.events;
    // The checks `mirage check` prints, before anything is opened for writing.
    let mut checks = Checks::new();
    let facts = connector.source_checks(ws, &mut checks).await;
    if !checks.ok {
        // Name what the destination lacks too (as `mirage check` would), so that one failed run
        // shows every end to fix.
        let ctx = CheckContext::from_workspace(ws, &facts);
        connector.destination_checks(ws, &ctx, &mut checks).await;
    }
    require(&checks)?;
    // Announced once the job can start: a run refused by its checks prints its error alone.
    emit(Event::Phase {
        phase: Phase::Planning,
        tables: 0,
    });
    let job_id = new_job_id();
    // A setting the connector cannot use (a URL without a database …) is bad input: nothing
    // was written yet.
    let (source, dest) = connector.open_job(ws, &job_id).await.map_err(|e| match e {
        ConnectorError::Invalid(m) => RunError::Preflight {
            failures: vec![m],
            unreachable: false,
        },
        e => e.into(),
    })?;
    // Taken once the checks have passed, held until the job's leftovers are gone.
    let mut lock = None;
    let result = execute(
        ws, opts, connector, facts, &*source, &*dest, job_id, &mut lock,
    )
    .await;
    if let Err(e) = dest.end_job().await {
        emit(Event::Warning {
            message: format!("could not remove the job's staging files: {e}"),
        });
    }
    drop(lock);
    result
}

/// Shared state of a running job.
struct JobCtx<'a> {
    part_size: usize,
    parts_in_flight: usize,
    transform_slots: Arc<Semaphore>,
    events: Events,
    loader: &'a mirage_connectors::registry::AnyLoader,
    reports: Mutex<Vec<TableReport>>,
    /// For remote transforms: the consistency key, and whether lengths count bytes.
    key: crate::spec::ConsistencyKey,
    byte_lengths: bool,
}

#[allow(clippy::too_many_arguments)]
async fn execute(
    ws: &Workspace,
    opts: &RunOptions,
    connector: &'static dyn Connector,
    facts: mirage_connectors::check::SourceFacts,
    source: &dyn AnySource,
    dest: &dyn AnyDestination,
    job_id: String,
    lock: &mut Option<mirage_connectors::DestinationLock>,
) -> Result<JobReport, RunError> {
    let emit = &opts.events;
    let cancel = &opts.cancel;
    let started = SystemTime::now();
    let clock = Instant::now();
    let catalog = source.catalog(&ws.schemas).await?;
    let plan = prepare(ws, source, catalog, &opts.seed)
        .await?
        .1
        .map_err(RunError::Workspace)?;
    for message in &plan.warnings {
        emit(Event::Warning {
            message: message.clone(),
        });
    }
    // The destination's checks, now that the plan says which schemas and tables it replaces:
    // a destination that cannot be reached is named with its fix, before anything else asks it.
    let mut checks = Checks::new();
    let ctx = CheckContext {
        schemas: plan.schema_options.schemas.clone(),
        source_identity: facts.identity,
        preserve_ownership: plan.schema_options.preserve_ownership,
        preserved: plan.schema_options.preserved.clone(),
    };
    connector.destination_checks(ws, &ctx, &mut checks).await;
    connector.job_checks(ws, &mut checks).await;
    // The destination is the source: refused as bad input, whatever else the checks found.
    if checks.same_as_source {
        return Err(RunError::SameDatabase(dest.describe()));
    }
    require(&checks)?;
    // Every check passed; the identities the checks compared are asked once more of the ends
    // the job writes through.
    let (sid, did) = (source.identity().await?, dest.identity().await?);
    if sid == did {
        return Err(RunError::SameDatabase(dest.describe()));
    }
    // One job at a time per destination: a second one stops here, before writing.
    *lock = Some(dest.lock(&mirage_connectors::JobTag::new(&job_id)).await?);
    if cancel.is_triggered() {
        return Err(RunError::Interrupted);
    }
    let schema = tokio::select! {
        s = source.schema(&plan.catalog) => s?,
        _ = cancel.triggered() => return Err(RunError::Interrupted),
    };
    let (source_name, dest_name) = (source.describe(), dest.describe());
    emit(Event::JobStarted {
        job_id: job_id.clone(),
        source: source_name.clone(),
        destination: dest_name.clone(),
    });
    emit(Event::Info {
        message: format!(
            "job {job_id}: plan validated ({} tables); copying the schema",
            plan.tables.len()
        ),
    });
    let mut report = JobReport::new(&job_id, started, &source_name, &dest_name);
    report.not_copied = plan.catalog.not_copied.clone();
    for n in &plan.catalog.not_copied {
        emit(Event::Warning {
            message: format!("not copied: {n}"),
        });
    }
    let mut job_error = None;
    let mut canceled = false;
    let phase = Instant::now();
    emit(Event::Phase {
        phase: Phase::Schema,
        tables: plan.tables.len(),
    });
    let created = tokio::select! {
        r = dest.create_schema(&schema, &plan.schema_options) => Some(r),
        _ = cancel.triggered() => None,
    };
    report.phases.schema_seconds = phase.elapsed().as_secs_f64();
    let phase = Instant::now();
    let threads = if ws.run.transform_threads == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        ws.run.transform_threads
    };
    let mut tables = Vec::new();
    let loader = match created {
        None => {
            canceled = true;
            job_error = Some(
                "interrupted while creating the destination schema; no rows were loaded"
                    .to_string(),
            );
            None
        }
        Some(Err(e)) => {
            job_error = Some(format!("creating the destination schema: {e}"));
            None
        }
        Some(Ok(loader)) => Some(loader),
    };
    if let Some(loader) = &loader {
        let ctx = JobCtx {
            part_size: ws.run.part_size.0 as usize,
            parts_in_flight: ws.run.parts_in_flight,
            transform_slots: Arc::new(Semaphore::new(threads)),
            events: emit.clone(),
            loader,
            reports: Mutex::new(Vec::new()),
            key: crate::spec::ConsistencyKey::from_seed(&opts.seed),
            byte_lengths: plan.catalog.byte_lengths,
        };
        emit(Event::Phase {
            phase: Phase::Rows,
            tables: plan.tables.len(),
        });
        let all = futures_util::stream::iter(plan.tables.iter())
            .map(|tp| copy_one(source, dest, tp, &ctx))
            .buffer_unordered(ws.run.parallelism)
            .for_each(|_| async {});
        tokio::select! {
            _ = all => {}
            _ = cancel.triggered() => {
                canceled = true;
                emit(Event::Warning {
                    message: "interrupted: stopping; tables not yet committed are left unloaded".into(),
                });
            }
        }
        tables = ctx.reports.lock().map(|r| r.clone()).unwrap_or_default();
    }
    // Tables the job never finished: they end as `not loaded`, with an event like the others.
    for tp in &plan.tables {
        if !tables.iter().any(|t| t.table == tp.table.name.to_string()) {
            let t = TableReport::not_loaded(tp, canceled);
            emit(Event::TableFinished {
                table: t.table.clone(),
                status: t.status,
                rows: 0,
                bytes: 0,
                seconds: 0.0,
                error: t.error.clone(),
            });
            tables.push(t);
        }
    }
    report.phases.rows_seconds = phase.elapsed().as_secs_f64();
    let all_ok = !canceled && job_error.is_none() && tables.iter().all(|t| t.status.is_success());
    let phase = Instant::now();
    if let Some(loader) = &loader {
        if all_ok {
            emit(Event::Phase {
                phase: Phase::PostData,
                tables: plan.tables.len(),
            });
            tokio::select! {
                r = dest.finish_schema(loader, &schema, &plan.schema_options) => match r {
                    // Objects that could not be recreated are named; the copy stands.
                    Ok(problems) => {
                        for p in problems {
                            emit(Event::Warning { message: p.clone() });
                            report.not_copied.push(p);
                        }
                    }
                    // Each table says which of its objects did not build; the job failed.
                    Err(ConnectorError::PostData(items)) => {
                        for t in &mut tables {
                            // A partition answers for its partitioned table's objects too.
                            let owner = plan
                                .tables
                                .iter()
                                .find(|p| p.table.name.to_string() == t.table)
                                .map(|p| mirage_connectors::settings_owner(&p.table).to_string());
                            let mine: Vec<_> = items
                                .iter()
                                .filter(|i| i.table == t.table || Some(&i.table) == owner.as_ref())
                                .collect();
                            if !mine.is_empty() {
                                t.post_data_failed(&mine);
                                emit(Event::TableFinished {
                                    table: t.table.clone(),
                                    status: t.status,
                                    rows: t.rows,
                                    bytes: t.bytes_read,
                                    seconds: t.seconds,
                                    error: t.error.clone(),
                                });
                            }
                        }
                        job_error = Some(ConnectorError::PostData(items).to_string());
                    }
                    Err(e) => {
                        job_error = Some(format!(
                            "creating indexes, constraints and triggers after the load: {e}"
                        ));
                    }
                },
                _ = cancel.triggered() => {
                    canceled = true;
                    job_error = Some(
                        "interrupted while creating indexes, constraints and triggers; every table's rows \
                         are loaded, run again to finish"
                            .into(),
                    );
                }
            }
        } else {
            // After a failure or an interruption alike: what the job took away for its loads
            // (Redshift's foreign keys) goes back now, not at some later run.
            match dest.finish_after_failure(loader, &schema).await {
                Some(problems) => {
                    for p in problems {
                        emit(Event::Warning { message: p.clone() });
                        report.not_copied.push(p);
                    }
                }
                None if job_error.is_none() && !canceled => {
                    job_error = Some(
                        "indexes, constraints and triggers were not created because some tables failed; \
                         fix the cause and run again"
                            .into(),
                    );
                }
                None => {}
            }
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
    if canceled && job_error.is_none() {
        job_error = Some(
            "interrupted while copying rows; tables not yet committed hold no rows from this job, \
             run again to finish"
                .into(),
        );
    }
    report.error = job_error;
    report.source_tls = source.encrypted();
    report.destination_tls = dest.encrypted();
    report.status = if canceled {
        JobStatus::Canceled
    } else if all_ok && report.error.is_none() {
        JobStatus::Completed
    } else {
        JobStatus::Failed
    };
    let path = opts
        .report_path
        .clone()
        .unwrap_or_else(|| crate::report::history_path(ws, &job_id));
    report.write(&path)?;
    report.report_path = Some(path.display().to_string());
    if report.status == JobStatus::Completed {
        Ok(report)
    } else {
        Err(RunError::Incomplete(Box::new(report)))
    }
}

/// A table's progress, sent as events.
struct TableProgress {
    name: String,
    events: Events,
    rows: AtomicU64,
    bytes: AtomicU64,
}

impl TableProgress {
    fn advance(&self, rows: u64, bytes: u64) {
        let rows = self.rows.fetch_add(rows, Ordering::Relaxed) + rows;
        let bytes = self.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        (self.events)(Event::TableProgress {
            table: self.name.clone(),
            rows,
            bytes,
        });
    }
}

/// Copy (or truncate, or preserve) one table and record its report.
async fn copy_one(
    source: &dyn AnySource,
    dest: &dyn AnyDestination,
    tp: &TablePlan,
    ctx: &JobCtx<'_>,
) {
    let started = Instant::now();
    let name = tp.table.name.to_string();
    (ctx.events)(Event::TableStarted {
        table: name.clone(),
        estimate_bytes: tp.table.byte_estimate,
    });
    let progress = Arc::new(TableProgress {
        name: name.clone(),
        events: ctx.events.clone(),
        rows: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
    });
    let mut written = 0u64;
    let mut unloaded = None;
    let columns = tp.copy_columns();
    let result: Result<LoadStats, String> = match tp.mode {
        TableMode::DeIdentify => {
            // Nothing to transform, and the destination reads the source's storage itself
            // (Redshift): the extract is loaded as it is, without passing through the worker.
            // Something to transform, and the destination has it transformed elsewhere (the
            // SQS + Lambda process): the table's spec and the key go there.
            let direct = if tp.masked().next().is_none() {
                dest.load_direct(ctx.loader, source.as_any(), &tp.table, &columns)
                    .await
            } else {
                let spec = crate::spec::of_plan(tp, &source.format(), ctx.byte_lengths);
                let advance = |rows: u64, bytes: u64| progress.advance(rows, bytes);
                dest.load_remote(
                    ctx.loader,
                    source.as_any(),
                    &tp.table,
                    &columns,
                    &spec,
                    &ctx.key,
                    &advance,
                )
                .await
                .map(|r| {
                    r.inspect(|s| {
                        // Uncompressed, as V2 counts it, when the remote transform says.
                        written = s
                            .remote
                            .map(|r| r.raw_bytes.1)
                            .filter(|b| *b > 0)
                            .or(s.stored_bytes)
                            .unwrap_or(0);
                    })
                })
            };
            match direct {
                Some(r) => r
                    .inspect(|s| {
                        unloaded = s.extract_stored_bytes;
                        if s.remote.is_none() {
                            progress.advance(s.rows, s.extract_stored_bytes.unwrap_or(0));
                        }
                    })
                    .map_err(|e| e.to_string()),
                None => copy_rows(source, dest, tp, ctx, progress.clone())
                    .await
                    .map(|(stats, bytes, stored)| {
                        written = bytes;
                        unloaded = stored;
                        stats
                    }),
            }
        }
        // An empty load: the table exists with no rows (and a files destination gets its header).
        TableMode::Truncate => dest
            .load(
                ctx.loader,
                &tp.table,
                &columns,
                futures_util::stream::empty().boxed(),
            )
            .await
            .map(|s| LoadStats { rows: 0, ..s })
            .map_err(|e| e.to_string()),
        TableMode::PreserveDestination => dest
            .restore_preserved(ctx.loader, &tp.table)
            .await
            .map(LoadStats::rows)
            .map_err(|e| e.to_string()),
    };
    let (status, stats, error) = match (&result, tp.mode) {
        (Ok(s), TableMode::DeIdentify) => (TableStatus::Loaded, *s, None),
        (Ok(s), TableMode::Truncate) => (TableStatus::Truncated, *s, None),
        (Ok(s), TableMode::PreserveDestination) => (TableStatus::Preserved, *s, None),
        (Err(e), _) => (TableStatus::Failed, LoadStats::default(), Some(e.clone())),
    };
    let bytes_read = progress.bytes.load(Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    (ctx.events)(Event::TableFinished {
        table: name.clone(),
        status,
        rows: stats.rows,
        bytes: bytes_read,
        seconds,
        error: error.clone(),
    });
    let report = TableReport {
        table: name,
        mode: tp.mode.as_str().to_string(),
        status,
        rows: stats.rows,
        bytes_read,
        bytes_written: if status == TableStatus::Loaded {
            written
        } else {
            0
        },
        bytes_unloaded: unloaded,
        bytes_loaded: stats.stored_bytes,
        seconds,
        masked_columns: tp.masked().map(|c| c.name.clone()).collect(),
        lambda: stats.remote,
        error,
        post_data_failed: Vec::new(),
    };
    if let Ok(mut r) = ctx.reports.lock() {
        r.push(report);
    }
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

/// Extract → parts → transform → load for one table. Returns what the load did, the bytes the
/// transform handed to the destination, and the bytes the extract stored.
async fn copy_rows(
    source: &dyn AnySource,
    dest: &dyn AnyDestination,
    tp: &TablePlan,
    ctx: &JobCtx<'_>,
    progress: Arc<TableProgress>,
) -> Result<(LoadStats, u64, Option<u64>), String> {
    let columns = tp.copy_columns();
    let format = source.format();
    let transform = Arc::new(PartTransform::new(
        format.clone(),
        tp.columns
            .iter()
            .map(|c| (c.name.clone(), c.generator.clone()))
            .collect(),
    ));
    let extract = source
        .read(&tp.table, &columns)
        .await
        .map_err(|e| e.to_string())?;
    let stored = extract.stored_bytes.clone();
    let rx = spawn_splitter(extract.chunks, format.clone(), ctx.part_size, 1);
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
    let out_bytes = Arc::new(AtomicU64::new(0));
    let counted = out_bytes.clone();
    let part_stream = transformed
        .map(move |r| match r {
            Ok((bytes, rows, in_bytes)) => {
                rows_before += rows;
                counted.fetch_add(bytes.len() as u64, Ordering::Relaxed);
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
    let loaded = dest
        .load(ctx.loader, &tp.table, &columns, part_stream)
        .await;
    let cause = failure.lock().ok().and_then(|f| f.clone());
    match (loaded, cause) {
        (_, Some(cause)) => Err(format!("{cause}; the table was not loaded")),
        (Ok(stats), None) => Ok((
            stats,
            out_bytes.load(Ordering::Relaxed),
            stored.get().copied(),
        )),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Cancel;

    /// A files dataset of `n` one-column tables in `dir/src`, and a workspace copying it to
    /// `dir/dst` one table at a time.
    fn dataset(dir: &std::path::Path, n: usize) -> Workspace {
        use mirage_connectors::files::{FileColumn, FileTable, SchemaFile};
        let src = dir.join("src");
        std::fs::create_dir_all(&src).unwrap();
        let schema = SchemaFile {
            tables: (0..n)
                .map(|i| FileTable {
                    schema: "public".into(),
                    name: format!("t{i}"),
                    columns: vec![FileColumn {
                        name: "id".into(),
                        type_name: "integer".into(),
                        not_null: false,
                    }],
                    primary_key: vec![],
                })
                .collect(),
            foreign_keys: vec![],
        };
        std::fs::write(
            src.join("schema.json"),
            serde_json::to_string(&schema).unwrap(),
        )
        .unwrap();
        // Enough rows that a table takes more than one poll: a cancel finds the job mid-way.
        let rows: String = (1..=50_000).map(|r| format!("{r}\n")).collect();
        for i in 0..n {
            std::fs::write(src.join(format!("public.t{i}.csv")), format!("id\n{rows}")).unwrap();
        }
        Workspace::parse(
            &dir.join("workspace.toml"),
            "[source]\nurl = \"files:src\"\n[destination]\nurl = \"files:dst\"\n[run]\nparallelism = 1\nunreviewed = \"passthrough\"\n",
        )
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_canceled_job_says_so_and_finishes_every_table_with_an_event() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = dataset(tmp.path(), 4);
        let cancel = Cancel::new();
        let events: Arc<Mutex<Vec<Event>>> = Arc::default();
        let (seen, trigger) = (events.clone(), cancel.clone());
        let opts = RunOptions {
            seed: "s".into(),
            report_path: Some(tmp.path().join("report.json")),
            // Ctrl-C as soon as the first table starts.
            events: Arc::new(move |e| {
                if matches!(e, Event::TableStarted { .. }) {
                    trigger.trigger();
                }
                seen.lock().unwrap().push(e);
            }),
            cancel,
        };
        let Err(RunError::Incomplete(report)) = run(&ws, &opts).await else {
            panic!("the job was interrupted");
        };
        assert_eq!(report.status, JobStatus::Canceled);
        let error = report.error.as_deref().unwrap_or_default();
        assert!(error.contains("interrupted"), "{error:?}");
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(tmp.path().join("report.json")).unwrap())
                .unwrap();
        assert!(
            written["error"]
                .as_str()
                .is_some_and(|e| e.contains("interrupted"))
        );
        let events = events.lock().unwrap();
        let not_loaded: Vec<&TableReport> = report
            .tables
            .iter()
            .filter(|t| t.status == TableStatus::NotLoaded)
            .collect();
        assert!(!not_loaded.is_empty(), "{:?}", report.tables);
        for t in &report.tables {
            let finished: Vec<TableStatus> = events
                .iter()
                .filter_map(|e| match e {
                    Event::TableFinished { table, status, .. } if *table == t.table => {
                        Some(*status)
                    }
                    _ => None,
                })
                .collect();
            assert_eq!(finished, [t.status], "{}", t.table);
        }
        // As `--format json` prints it.
        let last = serde_json::to_value(events.last().unwrap()).unwrap();
        assert_eq!(last["event"], "table_finished");
        assert_eq!(last["status"], "not_loaded");
    }
}
