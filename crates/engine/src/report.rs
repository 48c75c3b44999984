//! The job report: a summary table for people and a JSON file for machines, kept in the job
//! history (`.mirage/jobs/<job id>.json` beside the workspace).

use crate::plan::TablePlan;
use mirage_connectors::ConnectorError;
use mirage_core::display::printable;
use serde::Serialize;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The folder of a workspace's job history.
pub fn history_dir(ws: &mirage_core::Workspace) -> PathBuf {
    ws.base_dir().join(".mirage").join("jobs")
}

/// Where a job's report goes in the history.
pub fn history_path(ws: &mirage_core::Workspace, job_id: &str) -> PathBuf {
    history_dir(ws).join(format!("{job_id}.json"))
}

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Not ended yet.
    Running,
    /// Every table done, post-data built.
    Completed,
    /// Some table or step failed.
    Failed,
    /// Interrupted (Ctrl-C).
    Canceled,
}

impl JobStatus {
    /// The word in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Running => "running",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Canceled => "canceled",
        }
    }
}

/// How a table's copy ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TableStatus {
    /// All rows loaded.
    Loaded,
    /// Created empty (truncate mode).
    Truncated,
    /// Destination rows kept (preserve-destination mode).
    Preserved,
    /// Failed: the destination table holds no rows from this job.
    Failed,
    /// Never started or stopped before commit: holds no rows from this job.
    NotLoaded,
    /// Its rows are loaded, but some of its indexes, constraints or triggers did not build
    /// (the report's `post_data_failed` names them).
    PostDataFailed,
}

impl TableStatus {
    /// The word in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            TableStatus::Loaded => "loaded",
            TableStatus::Truncated => "truncated",
            TableStatus::Preserved => "preserved",
            TableStatus::Failed => "failed",
            TableStatus::NotLoaded => "not loaded",
            TableStatus::PostDataFailed => "loaded, constraints failed",
        }
    }

    /// Whether the table holds what the job meant it to.
    pub fn is_success(self) -> bool {
        matches!(
            self,
            TableStatus::Loaded | TableStatus::Truncated | TableStatus::Preserved
        )
    }
}

/// One table's line in the report.
#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    /// `schema.table`
    pub table: String,
    /// Its mode (`de-identify`, `truncate`, `preserve-destination`).
    pub mode: String,
    /// How it ended.
    pub status: TableStatus,
    /// Rows it holds from this job.
    pub rows: u64,
    /// Bytes the source produced (as read, uncompressed).
    pub bytes_read: u64,
    /// Bytes the transform handed to the destination.
    pub bytes_written: u64,
    /// Redshift: bytes UNLOAD wrote to S3 (compressed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_unloaded: Option<u64>,
    /// Redshift: bytes of transformed files written to S3 for COPY (compressed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_loaded: Option<u64>,
    /// How long it took.
    pub seconds: f64,
    /// Columns with a generator.
    pub masked_columns: Vec<String>,
    /// The SQS + Lambda process: files transformed, total and slowest seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lambda: Option<mirage_connectors::RemoteStats>,
    /// Why it failed (redacted).
    pub error: Option<String>,
    /// Its indexes, constraints, triggers … that did not build (`kind name`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub post_data_failed: Vec<String>,
}

impl TableReport {
    /// A table the job never loaded (it stopped first).
    pub fn not_loaded(tp: &TablePlan, canceled: bool) -> TableReport {
        TableReport {
            table: tp.table.name.to_string(),
            mode: tp.mode.as_str().to_string(),
            status: TableStatus::NotLoaded,
            rows: 0,
            bytes_read: 0,
            bytes_written: 0,
            bytes_unloaded: None,
            bytes_loaded: None,
            seconds: 0.0,
            masked_columns: tp.masked().map(|c| c.name.clone()).collect(),
            lambda: None,
            error: canceled.then(|| "interrupted before it was committed".to_string()),
            post_data_failed: Vec::new(),
        }
    }

    /// Its rows are loaded and these objects of it did not build.
    pub fn post_data_failed(&mut self, items: &[&mirage_connectors::PostDataItem]) {
        self.status = TableStatus::PostDataFailed;
        self.post_data_failed = items
            .iter()
            .map(|i| format!("{} {}", i.kind, i.name))
            .collect();
        self.error = Some(format!(
            "rows loaded; not built: {}",
            items
                .iter()
                .map(|i| format!("{} {} ({})", i.kind, printable(&i.name), i.reason))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
}

/// Seconds spent per phase.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Phases {
    /// Schema copy.
    pub schema_seconds: f64,
    /// Rows.
    pub rows_seconds: f64,
    /// Indexes, constraints, triggers.
    pub constraints_seconds: f64,
}

/// What a job did.
#[derive(Debug, Clone, Serialize)]
pub struct JobReport {
    /// The job id.
    pub job_id: String,
    /// How it ended.
    pub status: JobStatus,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// RFC 3339, UTC.
    pub finished_at: String,
    /// How long it took.
    pub seconds: f64,
    /// The source, without password.
    pub source: String,
    /// The destination, without password.
    pub destination: String,
    /// Whether the connections to the source and to the destination were encrypted (TLS);
    /// absent where that does not apply (folders).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_tls: Option<bool>,
    /// See `source_tls`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_tls: Option<bool>,
    /// Every table of the plan.
    pub tables: Vec<TableReport>,
    /// Seconds spent per phase: schema copy, rows, indexes/constraints/triggers.
    pub phases: Phases,
    /// What the job did not copy, one line each: what the source holds that mirage does not
    /// copy (external schemas, datashares …) and objects that could not be recreated (a view
    /// whose body no longer compiles …).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_copied: Vec<String>,
    /// Why the job failed, beyond its tables.
    pub error: Option<String>,
    /// Where the report was written.
    #[serde(skip)]
    pub report_path: Option<String>,
}

impl JobReport {
    /// A running job's report.
    pub fn new(job_id: &str, started: SystemTime, source: &str, destination: &str) -> JobReport {
        JobReport {
            job_id: job_id.to_string(),
            status: JobStatus::Running,
            started_at: humantime::format_rfc3339_seconds(started).to_string(),
            finished_at: String::new(),
            seconds: 0.0,
            source: source.to_string(),
            destination: destination.to_string(),
            source_tls: None,
            destination_tls: None,
            tables: Vec::new(),
            phases: Phases::default(),
            not_copied: Vec::new(),
            error: None,
            report_path: None,
        }
    }

    /// Write the JSON report.
    pub fn write(&self, path: &Path) -> Result<(), ConnectorError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| ConnectorError::io(format!("creating {}", dir.display()), e))?;
        }
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| ConnectorError::Invalid(format!("serializing the report: {e}")))?;
        // Written beside, then renamed: a reader never sees half a report.
        let tmp = probe_path(path);
        std::fs::write(&tmp, text + "\n")
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                ConnectorError::io(format!("writing {}", path.display()), e)
            })
    }

    /// Whether a report can be written at `path` (its folder created, a file written and
    /// renamed there), checked before a job starts.
    pub fn check_writable(path: &Path) -> Result<(), ConnectorError> {
        if path.is_dir() {
            return Err(ConnectorError::Invalid(format!(
                "{} is a folder; give a file path",
                path.display()
            )));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| ConnectorError::io(format!("creating {}", dir.display()), e))?;
        }
        let tmp = probe_path(path);
        let written = std::fs::write(&tmp, b"{}\n");
        let _ = std::fs::remove_file(&tmp);
        written.map_err(|e| ConnectorError::io(format!("writing beside {}", path.display()), e))?;
        if path.exists() {
            std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .map_err(|e| ConnectorError::io(format!("replacing {}", path.display()), e))?;
        }
        Ok(())
    }

    /// The summary table printed at the end of a run (control characters of table names
    /// escaped).
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let width = self
            .tables
            .iter()
            .map(|t| printable(&t.table).chars().count())
            .max()
            .unwrap_or(5)
            .max(5);
        // Through S3 (Redshift): bytes unloaded, transformed and loaded, instead of bytes read.
        let staged = self.tables.iter().any(|t| t.bytes_unloaded.is_some());
        let size = |b: u64| mirage_core::size::ByteSize(b).to_string();
        if staged {
            let _ = writeln!(
                s,
                "{:<width$}  {:<20}  {:>10}  {:>10}  {:>11}  {:>10}  {:>8}  status",
                "table", "mode", "rows", "unloaded", "transformed", "loaded", "seconds"
            );
        } else {
            let _ = writeln!(
                s,
                "{:<width$}  {:<20}  {:>10}  {:>10}  {:>8}  status",
                "table", "mode", "rows", "bytes", "seconds"
            );
        }
        for t in &self.tables {
            if staged {
                let _ = writeln!(
                    s,
                    "{:<width$}  {:<20}  {:>10}  {:>10}  {:>11}  {:>10}  {:>8.2}  {}",
                    printable(&t.table),
                    t.mode,
                    t.rows,
                    size(t.bytes_unloaded.unwrap_or(0)),
                    size(t.bytes_written),
                    size(t.bytes_loaded.unwrap_or(0)),
                    t.seconds,
                    t.status.as_str()
                );
                continue;
            }
            let _ = writeln!(
                s,
                "{:<width$}  {:<20}  {:>10}  {:>10}  {:>8.2}  {}",
                printable(&t.table),
                t.mode,
                t.rows,
                size(t.bytes_read),
                t.seconds,
                t.status.as_str()
            );
        }
        let rows: u64 = self.tables.iter().map(|t| t.rows).sum();
        let _ = write!(
            s,
            "job {} {} in {:.2}s: {} table(s), {rows} rows",
            self.job_id,
            self.status.as_str(),
            self.seconds,
            self.tables.len()
        );
        s
    }

    /// One paragraph for a job that did not complete: what failed, what completed. One line per
    /// table: control characters of names and messages are escaped.
    pub fn failure_summary(&self) -> String {
        let done: Vec<_> = self
            .tables
            .iter()
            .filter(|t| t.status.is_success())
            .map(|t| printable(&t.table))
            .collect();
        let mut s = format!("job {} {}", self.job_id, self.status.as_str());
        if let Some(e) = &self.error {
            let _ = write!(s, ": {}", printable(e));
        }
        for t in self.tables.iter().filter(|t| !t.status.is_success()) {
            let _ = write!(
                s,
                "\n  ✗ {} {}: {}",
                printable(&t.table),
                t.status.as_str(),
                printable(t.error.as_deref().unwrap_or("not started"))
            );
        }
        let _ = write!(
            s,
            "\n  completed tables ({}): {}",
            done.len(),
            if done.is_empty() {
                "none".to_string()
            } else {
                done.join(", ")
            }
        );
        s
    }
}

/// `.<name>.<pid>.tmp` beside `path`.
fn probe_path(path: &Path) -> std::path::PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".into());
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}
