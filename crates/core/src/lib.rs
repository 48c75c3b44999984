//! Shared vocabulary of mirage: the workspace file a user writes ([`workspace`]), the schema model
//! every connector describes its tables with ([`schema`]), and small helpers used by all crates.
//!
//! ```
//! let ws = mirage_core::workspace::Workspace::parse(
//!     "workspace.toml".as_ref(),
//!     r#"
//!     [source]
//!     url = "postgres://app@db:5432/prod"
//!     [destination]
//!     url = "postgres://app@db:5432/dev"
//!     "#,
//! )
//! .unwrap();
//! assert_eq!(ws.run.parallelism, 4);
//! ```

#![warn(missing_docs)]

pub mod display;
pub mod lambda;
pub mod schema;
pub mod size;
pub mod suggest;
pub mod workspace;

pub use schema::{Column, ColumnStats, QualifiedName, StatsKind, Table, TableKind, ValueType};
pub use workspace::{Workspace, WorkspaceError};
