//! The `mirage` command: wires the workspace, the plan, the connectors and the transform into
//! jobs. See the README for the commands and the workspace file.

pub mod demo;
pub mod init;
pub mod plan;
pub mod progress;
pub mod report;
pub mod run;
