//! What a running job tells its caller: events through a callback, and the cancellation the
//! caller can trigger (Ctrl-C).

use crate::report::TableStatus;
use serde::Serialize;
use std::sync::Arc;

/// The phases of a job, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Checks, the source's catalog, the plan.
    Planning,
    /// Recreating the destination's schemas and tables.
    Schema,
    /// Copying rows, several tables at once.
    Rows,
    /// Indexes, constraints, triggers.
    PostData,
}

/// Something that happened in a job. No event carries a row value.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The job has an id and its two ends.
    JobStarted {
        /// The job id (also the report's file name).
        job_id: String,
        /// The source, without password.
        source: String,
        /// The destination, without password.
        destination: String,
    },
    /// A phase began.
    Phase {
        /// Which.
        phase: Phase,
        /// How many tables the phase concerns (0 when not about tables).
        tables: usize,
    },
    /// A table's copy began.
    TableStarted {
        /// `schema.table`
        table: String,
        /// Expected bytes, when the source knows.
        estimate_bytes: Option<u64>,
    },
    /// A table's copy advanced (totals so far).
    TableProgress {
        /// `schema.table`
        table: String,
        /// Rows transformed so far.
        rows: u64,
        /// Bytes read so far.
        bytes: u64,
    },
    /// A table's copy ended.
    TableFinished {
        /// `schema.table`
        table: String,
        /// How it ended.
        status: TableStatus,
        /// Rows it holds from this job.
        rows: u64,
        /// Bytes read.
        bytes: u64,
        /// How long it took.
        seconds: f64,
        /// Why it failed (redacted).
        error: Option<String>,
    },
    /// Something the user should know; the job goes on.
    Warning {
        /// What (no row values).
        message: String,
    },
    /// A line for the log.
    Info {
        /// What (no row values).
        message: String,
    },
}

/// Where a job's events go.
pub type Events = Arc<dyn Fn(Event) + Send + Sync>;

/// Events nobody listens to.
pub fn ignore() -> Events {
    Arc::new(|_| {})
}

/// A job's stop signal: the caller's [`Cancel::trigger`] (e.g. on Ctrl-C) stops the job at the
/// next safe point; tables not yet committed stay as they were.
#[derive(Clone)]
pub struct Cancel {
    tx: Arc<tokio::sync::watch::Sender<bool>>,
    rx: tokio::sync::watch::Receiver<bool>,
}

impl Default for Cancel {
    fn default() -> Self {
        Cancel::new()
    }
}

impl Cancel {
    /// A signal not yet triggered.
    pub fn new() -> Cancel {
        let (tx, rx) = tokio::sync::watch::channel(false);
        Cancel {
            tx: Arc::new(tx),
            rx,
        }
    }

    /// Ask the job to stop.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether it was asked to stop.
    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }

    /// Completes once the job is asked to stop.
    pub async fn triggered(&self) {
        let mut rx = self.rx.clone();
        let _ = rx.wait_for(|v| *v).await;
    }
}
