//! A Redshift emulator for tests (issue 4). Built in steps; this crate holds so far the parser for
//! the statements PostgreSQL lacks — `UNLOAD` and `COPY … FROM 's3://…'` — with Redshift's option
//! rules ([`statement`]), and Redshift's `CREATE TABLE` rewritten for PostgreSQL 15 with what
//! PostgreSQL cannot hold remembered for `SHOW TABLE` ([`ddl`]). The wire proxy that comes next
//! only has to execute what these parsed.
//!
//! ```
//! use redshift_emu::statement::{parse, Statement};
//! let s = parse("UNLOAD ('select * from t') TO 's3://b/p/' IAM_ROLE default CSV GZIP MANIFEST VERBOSE").unwrap();
//! assert!(matches!(s, Statement::Unload(u) if u.manifest_verbose && u.to == "s3://b/p/"));
//! ```

pub mod ddl;
pub mod statement;
