//! A Redshift emulator for tests (issue 4). Built in steps; this crate holds so far the parser for
//! the statements PostgreSQL lacks — `UNLOAD` and `COPY … FROM 's3://…'` — with Redshift's option
//! rules ([`statement`]), and Redshift's `CREATE TABLE` rewritten for PostgreSQL 15 with what
//! PostgreSQL cannot hold remembered for `SHOW TABLE` ([`ddl`]), and `UNLOAD` executed against
//! PostgreSQL into an object store with Redshift's file layout and manifests ([`unload`]), and
//! `COPY … FROM 's3://…'` with Redshift's file and CSV rules ([`copy`]), over S3 at any endpoint —
//! moto in the tests ([`s3`]). Still to come: the catalog views and the wire proxy in front of it.
//!
//! ```
//! use redshift_emu::statement::{parse, Statement};
//! let s = parse("UNLOAD ('select * from t') TO 's3://b/p/' IAM_ROLE default CSV GZIP MANIFEST VERBOSE").unwrap();
//! assert!(matches!(s, Statement::Unload(u) if u.manifest_verbose && u.to == "s3://b/p/"));
//! ```

pub mod copy;
pub mod ddl;
pub mod s3;
pub mod statement;
pub mod unload;
