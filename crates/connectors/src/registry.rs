//! The connector registry: which connector a URL means, decided in one place.
//!
//! A connector is one folder (its [`Source`], [`Destination`] and checks) plus one line in
//! [`CONNECTORS`]. The engine sees connectors through the object-safe [`AnySource`] and
//! [`AnyDestination`], which every [`Source`] and [`Destination`] implements: a job needs a
//! source and a destination of the same kind, and the erased schema copy and loader state are
//! handed back to the connector that made them.

use crate::check::{CheckContext, Checks, SourceFacts};
use crate::{
    ConnectorError, Destination, DestinationLock, Extract, Format, JobTag, LoadStats, PartStream,
    Result, SchemaOptions, Source,
};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use mirage_core::schema::{Catalog, Table};
use mirage_core::workspace::{ConnectionConfig, SchemaFilter, Workspace};
use mirage_core::{ColumnStats, QualifiedName, StatsKind};
use mirage_transform::spec::{ConsistencyKey, TableSpec};
use std::any::Any;

/// Every connector mirage knows, in the order URLs are matched.
pub static CONNECTORS: &[&dyn Connector] = &[
    &crate::postgres::PostgresConnector,
    &crate::redshift::RedshiftConnector,
    &crate::files::FilesConnector,
];

/// Which end of a job a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Where rows come from.
    Source,
    /// Where rows go.
    Destination,
}

impl Role {
    /// `source` or `destination`: the workspace table and the word in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Source => "source",
            Role::Destination => "destination",
        }
    }

    /// The workspace's connection for this role.
    pub fn connection(self, ws: &Workspace) -> &ConnectionConfig {
        match self {
            Role::Source => &ws.source,
            Role::Destination => &ws.destination,
        }
    }
}

/// A kind of database: how to recognise its URL, check its setup and open it.
pub trait Connector: Send + Sync + 'static {
    /// `postgres`, `redshift`, `files`.
    fn name(&self) -> &'static str;

    /// Whether `url` is this connector's.
    fn accepts(&self, url: &str) -> bool;

    /// An example URL, for messages.
    fn example(&self) -> &'static str;

    /// Check everything the source needs (connection, grants); the facts learned are handed to
    /// the destination's checks.
    fn source_checks<'a>(
        &'a self,
        ws: &'a Workspace,
        out: &'a mut Checks,
    ) -> BoxFuture<'a, SourceFacts>;

    /// Check everything the destination needs (connection, grants, schemas it replaces,
    /// preserved tables).
    fn destination_checks<'a>(
        &'a self,
        ws: &'a Workspace,
        ctx: &'a CheckContext,
        out: &'a mut Checks,
    ) -> BoxFuture<'a, ()>;

    /// Check what a job needs besides its two ends (Redshift: the staging bucket and the
    /// Lambda settings).
    fn job_checks<'a>(&'a self, _ws: &'a Workspace, _out: &'a mut Checks) -> BoxFuture<'a, ()> {
        async {}.boxed()
    }

    /// Remove what killed jobs left outside the destination (staging files, AWS resources);
    /// live jobs' are never touched. One line per thing removed.
    fn clean<'a>(&'a self, _ws: &'a Workspace) -> BoxFuture<'a, Result<Vec<String>>> {
        async { Ok(Vec::new()) }.boxed()
    }

    /// Open the workspace's source for reading only (`mirage plan`, `mirage init`).
    fn open_source<'a>(&'a self, ws: &'a Workspace) -> BoxFuture<'a, Result<Box<dyn AnySource>>>;

    /// Open the source and the destination of job `job_id` (both of this kind).
    fn open_job<'a>(&'a self, ws: &'a Workspace, job_id: &'a str) -> BoxFuture<'a, Result<Ends>>;
}

/// The connector for a URL, or an error listing the URLs mirage understands.
pub fn connector_for(url: &str) -> std::result::Result<&'static dyn Connector, String> {
    CONNECTORS
        .iter()
        .copied()
        .find(|c| c.accepts(url))
        .ok_or_else(|| {
            let known: Vec<String> = CONNECTORS
                .iter()
                .map(|c| format!("{} ({})", c.name(), c.example()))
                .collect();
            format!("unsupported URL; mirage knows {}", known.join(", "))
        })
}

/// The connector of the workspace's source or destination URL; the error names the key.
pub fn connector_of(
    ws: &Workspace,
    role: Role,
) -> std::result::Result<&'static dyn Connector, mirage_core::WorkspaceError> {
    let conn = role.connection(ws);
    connector_for(&conn.url).map_err(|m| ws.error(conn.line, format!("{}.url", role.as_str()), m))
}

/// A job's two ends behind pointers.
pub type Ends = (Box<dyn AnySource>, Box<dyn AnyDestination>);

/// A source behind a pointer.
pub fn boxed_source<S: Source>(source: S) -> Box<dyn AnySource> {
    Box::new(source)
}

/// A job's source and destination behind pointers.
pub fn ends<S: Source, D: Destination>(source: S, destination: D) -> Ends {
    (Box::new(source), Box::new(destination))
}

/// A schema copy, as the source made it, for the destination of the same kind.
pub type AnySchema = Box<dyn Any + Send + Sync>;
/// What a destination's `create_schema` handed back for its loads.
pub type AnyLoader = Box<dyn Any + Send + Sync>;

/// A [`Source`] behind a pointer: what the engine holds.
pub trait AnySource: Send + Sync {
    /// The source itself, for a destination of its kind to load from directly.
    fn as_any(&self) -> &(dyn Any + Send + Sync);
    /// See [`Source::describe`].
    fn describe(&self) -> String;
    /// See [`Source::encrypted`].
    fn encrypted(&self) -> Option<bool>;
    /// See [`Source::identity`].
    fn identity(&self) -> BoxFuture<'_, Result<String>>;
    /// See [`Source::format`].
    fn format(&self) -> Format;
    /// See [`Source::catalog`].
    fn catalog<'a>(&'a self, filter: &'a SchemaFilter) -> BoxFuture<'a, Result<Catalog>>;
    /// See [`Source::schema`].
    fn schema<'a>(&'a self, catalog: &'a Catalog) -> BoxFuture<'a, Result<AnySchema>>;
    /// See [`Source::column_stats`].
    fn column_stats<'a>(
        &'a self,
        table: &'a QualifiedName,
        column: &'a str,
        kind: StatsKind,
    ) -> BoxFuture<'a, Result<ColumnStats>>;
    /// See [`Source::read`].
    fn read<'a>(
        &'a self,
        table: &'a Table,
        columns: &'a [String],
    ) -> BoxFuture<'a, Result<Extract>>;
    /// See [`Source::sample`].
    fn sample<'a>(
        &'a self,
        table: &'a Table,
        columns: &'a [String],
        limit: usize,
    ) -> BoxFuture<'a, Result<crate::sql::Sample>>;
}

impl<S: Source> AnySource for S {
    fn as_any(&self) -> &(dyn Any + Send + Sync) {
        self
    }
    fn describe(&self) -> String {
        Source::describe(self)
    }
    fn encrypted(&self) -> Option<bool> {
        Source::encrypted(self)
    }
    fn identity(&self) -> BoxFuture<'_, Result<String>> {
        Source::identity(self).boxed()
    }
    fn format(&self) -> Format {
        Source::format(self)
    }
    fn catalog<'a>(&'a self, filter: &'a SchemaFilter) -> BoxFuture<'a, Result<Catalog>> {
        Source::catalog(self, filter).boxed()
    }
    fn schema<'a>(&'a self, catalog: &'a Catalog) -> BoxFuture<'a, Result<AnySchema>> {
        async move { Ok(Box::new(Source::schema(self, catalog).await?) as AnySchema) }.boxed()
    }
    fn column_stats<'a>(
        &'a self,
        table: &'a QualifiedName,
        column: &'a str,
        kind: StatsKind,
    ) -> BoxFuture<'a, Result<ColumnStats>> {
        Source::column_stats(self, table, column, kind).boxed()
    }
    fn read<'a>(
        &'a self,
        table: &'a Table,
        columns: &'a [String],
    ) -> BoxFuture<'a, Result<Extract>> {
        Source::read(self, table, columns).boxed()
    }
    fn sample<'a>(
        &'a self,
        table: &'a Table,
        columns: &'a [String],
        limit: usize,
    ) -> BoxFuture<'a, Result<crate::sql::Sample>> {
        Source::sample(self, table, columns, limit).boxed()
    }
}

/// A [`Destination`] behind a pointer: what the engine holds.
pub trait AnyDestination: Send + Sync {
    /// See [`Destination::describe`].
    fn describe(&self) -> String;
    /// See [`Destination::encrypted`].
    fn encrypted(&self) -> Option<bool>;
    /// See [`Destination::identity`].
    fn identity(&self) -> BoxFuture<'_, Result<String>>;
    /// See [`Destination::create_schema`].
    fn create_schema<'a>(
        &'a self,
        schema: &'a AnySchema,
        options: &'a SchemaOptions,
    ) -> BoxFuture<'a, Result<AnyLoader>>;
    /// See [`Destination::load`].
    fn load<'a>(
        &'a self,
        loader: &'a AnyLoader,
        table: &'a Table,
        columns: &'a [String],
        parts: PartStream,
    ) -> BoxFuture<'a, Result<LoadStats>>;
    /// See [`Destination::load_direct`].
    fn load_direct<'a>(
        &'a self,
        loader: &'a AnyLoader,
        source: &'a (dyn Any + Send + Sync),
        table: &'a Table,
        columns: &'a [String],
    ) -> BoxFuture<'a, Option<Result<LoadStats>>>;
    /// See [`Destination::load_remote`].
    #[allow(clippy::too_many_arguments)]
    fn load_remote<'a>(
        &'a self,
        loader: &'a AnyLoader,
        source: &'a (dyn Any + Send + Sync),
        table: &'a Table,
        columns: &'a [String],
        spec: &'a TableSpec,
        key: &'a ConsistencyKey,
        progress: &'a (dyn Fn(u64, u64) + Send + Sync),
    ) -> BoxFuture<'a, Option<Result<LoadStats>>>;
    /// See [`Destination::restore_preserved`].
    fn restore_preserved<'a>(
        &'a self,
        loader: &'a AnyLoader,
        table: &'a Table,
    ) -> BoxFuture<'a, Result<u64>>;
    /// See [`Destination::finish_schema`].
    fn finish_schema<'a>(
        &'a self,
        loader: &'a AnyLoader,
        schema: &'a AnySchema,
        options: &'a SchemaOptions,
    ) -> BoxFuture<'a, Result<Vec<String>>>;
    /// See [`Destination::finish_after_failure`].
    fn finish_after_failure<'a>(
        &'a self,
        loader: &'a AnyLoader,
        schema: &'a AnySchema,
    ) -> BoxFuture<'a, Option<Vec<String>>>;
    /// See [`Destination::end_job`].
    fn end_job(&self) -> BoxFuture<'_, Result<()>>;
    /// See [`Destination::lock`].
    fn lock<'a>(&'a self, tag: &'a JobTag) -> BoxFuture<'a, Result<DestinationLock>>;
}

fn mismatch() -> ConnectorError {
    ConnectorError::Invalid(
        "the source and the destination are of different kinds; point both at the same kind of \
         database"
            .into(),
    )
}

fn downcast<T: 'static>(b: &(dyn Any + Send + Sync)) -> Result<&T> {
    b.downcast_ref::<T>().ok_or_else(mismatch)
}

impl<D: Destination> AnyDestination for D {
    fn describe(&self) -> String {
        Destination::describe(self)
    }
    fn encrypted(&self) -> Option<bool> {
        Destination::encrypted(self)
    }
    fn identity(&self) -> BoxFuture<'_, Result<String>> {
        Destination::identity(self).boxed()
    }
    fn create_schema<'a>(
        &'a self,
        schema: &'a AnySchema,
        options: &'a SchemaOptions,
    ) -> BoxFuture<'a, Result<AnyLoader>> {
        async move {
            let schema = downcast::<D::Schema>(schema.as_ref())?;
            Ok(Box::new(Destination::create_schema(self, schema, options).await?) as AnyLoader)
        }
        .boxed()
    }
    fn load<'a>(
        &'a self,
        loader: &'a AnyLoader,
        table: &'a Table,
        columns: &'a [String],
        parts: PartStream,
    ) -> BoxFuture<'a, Result<LoadStats>> {
        async move {
            let loader = downcast::<D::Loader>(loader.as_ref())?;
            Destination::load(self, loader, table, columns, parts).await
        }
        .boxed()
    }
    fn load_direct<'a>(
        &'a self,
        loader: &'a AnyLoader,
        source: &'a (dyn Any + Send + Sync),
        table: &'a Table,
        columns: &'a [String],
    ) -> BoxFuture<'a, Option<Result<LoadStats>>> {
        async move {
            let loader = match downcast::<D::Loader>(loader.as_ref()) {
                Ok(l) => l,
                Err(e) => return Some(Err(e)),
            };
            Destination::load_direct(self, loader, source, table, columns).await
        }
        .boxed()
    }
    fn load_remote<'a>(
        &'a self,
        loader: &'a AnyLoader,
        source: &'a (dyn Any + Send + Sync),
        table: &'a Table,
        columns: &'a [String],
        spec: &'a TableSpec,
        key: &'a ConsistencyKey,
        progress: &'a (dyn Fn(u64, u64) + Send + Sync),
    ) -> BoxFuture<'a, Option<Result<LoadStats>>> {
        async move {
            let loader = match downcast::<D::Loader>(loader.as_ref()) {
                Ok(l) => l,
                Err(e) => return Some(Err(e)),
            };
            Destination::load_remote(self, loader, source, table, columns, spec, key, progress)
                .await
        }
        .boxed()
    }
    fn restore_preserved<'a>(
        &'a self,
        loader: &'a AnyLoader,
        table: &'a Table,
    ) -> BoxFuture<'a, Result<u64>> {
        async move {
            let loader = downcast::<D::Loader>(loader.as_ref())?;
            Destination::restore_preserved(self, loader, table).await
        }
        .boxed()
    }
    fn finish_schema<'a>(
        &'a self,
        loader: &'a AnyLoader,
        schema: &'a AnySchema,
        options: &'a SchemaOptions,
    ) -> BoxFuture<'a, Result<Vec<String>>> {
        async move {
            let loader = downcast::<D::Loader>(loader.as_ref())?;
            let schema = downcast::<D::Schema>(schema.as_ref())?;
            Destination::finish_schema(self, loader, schema, options).await
        }
        .boxed()
    }
    fn finish_after_failure<'a>(
        &'a self,
        loader: &'a AnyLoader,
        schema: &'a AnySchema,
    ) -> BoxFuture<'a, Option<Vec<String>>> {
        async move {
            let (Ok(loader), Ok(schema)) = (
                downcast::<D::Loader>(loader.as_ref()),
                downcast::<D::Schema>(schema.as_ref()),
            ) else {
                return None;
            };
            Destination::finish_after_failure(self, loader, schema).await
        }
        .boxed()
    }
    fn end_job(&self) -> BoxFuture<'_, Result<()>> {
        Destination::end_job(self).boxed()
    }
    fn lock<'a>(&'a self, tag: &'a JobTag) -> BoxFuture<'a, Result<DestinationLock>> {
        Destination::lock(self, tag).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_url_finds_its_connector_and_unknown_ones_list_the_known() {
        assert_eq!(
            connector_for("postgres://a@h/db").map(|c| c.name()),
            Ok("postgres")
        );
        assert_eq!(
            connector_for("postgresql://a@h/db").map(|c| c.name()),
            Ok("postgres")
        );
        assert_eq!(
            connector_for("redshift://a@h:5439/db").map(|c| c.name()),
            Ok("redshift")
        );
        assert_eq!(connector_for("files:./data").map(|c| c.name()), Ok("files"));
        let e = connector_for("mysql://a@h/db")
            .map(|c| c.name())
            .unwrap_err();
        for name in ["postgres", "redshift", "files"] {
            assert!(e.contains(name), "{e}");
        }
    }
}
