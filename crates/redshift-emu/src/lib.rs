//! A Redshift emulator for tests: a wire proxy ([`proxy`]) that clients talk to as to Amazon
//! Redshift, in front of a PostgreSQL 15 cluster. Statements PostgreSQL runs are relayed,
//! rewritten where Redshift spells them differently ([`sql`]); what PostgreSQL lacks runs in the
//! proxy inside the client's own session ([`wire`]): `UNLOAD` into S3 with Redshift's file layout
//! and manifests ([`unload`]), `COPY … FROM 's3://…'` with Redshift's file and CSV rules
//! ([`copy`], [`datetime`], [`compress`]), Redshift's `CREATE TABLE` and `SHOW TABLE` ([`ddl`]),
//! the Redshift catalog views and grants ([`catalog`]); S3 at any endpoint — moto in the tests
//! ([`s3`]). [`statement`] parses `UNLOAD` and `COPY` with Redshift's option rules. Files are read
//! and written with the `csv` crate, never with mirage's own codec, so that a quoting bug in mirage
//! shows up end to end rather than being mirrored by the emulator.
//!
//! ```
//! use redshift_emu::statement::{parse, Statement};
//! let s = parse("UNLOAD ('select * from t') TO 's3://b/p/' IAM_ROLE default CSV GZIP MANIFEST VERBOSE").unwrap();
//! assert!(matches!(s, Statement::Unload(u) if u.manifest_verbose && u.to == "s3://b/p/"));
//! ```

#![warn(missing_docs)]

pub mod catalog;
pub mod compress;
pub mod copy;
pub(crate) mod csvfile;
pub mod datetime;
pub mod ddl;
pub mod proxy;
pub mod s3;
pub mod sql;
pub mod statement;
pub mod unload;
pub mod wire;

/// Test helpers shared by the modules' tests.
#[cfg(test)]
pub(crate) mod testing {
    use crate::copy::{CopyFailure, copy_from};
    use crate::statement::{CopyFrom, Rejected, Statement, Unload, parse};
    use crate::unload::{UnloadOutcome, unload};
    use crate::wire::Backend;
    use object_store::ObjectStore;

    /// UNLOAD, then end the protocol cycle (committing, as a client's `Sync` would).
    pub async fn run_unload(
        b: &mut Backend,
        store: &dyn ObjectStore,
        u: &Unload,
    ) -> Result<UnloadOutcome, Rejected> {
        let r = unload(b, store, u).await;
        b.sync().await.unwrap();
        r
    }

    /// COPY, then end the protocol cycle.
    pub async fn run_copy(
        b: &mut Backend,
        store: &dyn ObjectStore,
        c: &CopyFrom,
    ) -> Result<u64, CopyFailure> {
        let r = copy_from(b, store, c).await;
        b.sync().await.unwrap();
        r
    }

    pub fn unload_of(sql: &str) -> Unload {
        match parse(sql).unwrap() {
            Statement::Unload(u) => *u,
            other => panic!("{other:?}"),
        }
    }

    pub fn copy_of(sql: &str) -> CopyFrom {
        match parse(sql).unwrap() {
            Statement::Copy(c) => *c,
            other => panic!("{other:?}"),
        }
    }

    /// A throwaway cluster with database `rs` prepared by `setup`, and a raw session on it.
    pub async fn database(setup: &str) -> (mirage_testkit::PgCluster, crate::wire::Backend) {
        let pg = mirage_testkit::PgCluster::start().unwrap();
        pg.create_database("rs").unwrap();
        pg.psql("rs", setup).unwrap();
        let backend =
            crate::wire::Backend::connect(&format!("127.0.0.1:{}", pg.port()), "postgres", "rs")
                .await
                .unwrap();
        (pg, backend)
    }
}
