//! The mirage job engine: reads the source's catalog and builds the [`plan`], runs the job
//! ([`job`]) — schema copy, then extract → parts → transform → load for every table — and writes
//! the [`report`] into the job history. It reports what happens as [`events::Event`]s through a
//! callback and never writes to stdout or stderr: the `mirage` command renders them.
//!
//! A table's transform can also be shipped as data: [`spec::TableSpec`] is what a worker far
//! from the CLI (the Lambda handler) needs to transform that table's files, and the consistency
//! key travels separately ([`spec::ConsistencyKey`]).

#![warn(missing_docs)]

pub mod events;
pub mod job;
pub mod plan;
pub mod report;
pub mod review;
pub mod spec;

pub use events::{Cancel, Event, Events, Phase};
pub use job::{RunError, RunOptions, check, plan, run};
pub use plan::Plan;
pub use report::{JobReport, JobStatus, TableReport, TableStatus};

/// Remove what killed jobs of this workspace left outside the destination: staging folders
/// (raw UNLOAD files included) and the Lambda process's queues, mappings and bucket
/// notification entries. Live jobs' are never touched. One line per thing removed.
pub async fn clean(ws: &mirage_core::Workspace) -> Result<Vec<String>, RunError> {
    let connector =
        mirage_connectors::registry::connector_of(ws, mirage_connectors::registry::Role::Source)?;
    Ok(connector.clean(ws).await?)
}
