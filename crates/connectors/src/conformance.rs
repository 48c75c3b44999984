//! The conformance suite every connector passes: a new connector implements [`Source`] and
//! [`Destination`], adds a [`Fixture`], and runs these checks. They cover what the job relies
//! on: the catalog, a byte-exact round trip through the record format (NULL and '' kept apart,
//! delimiters, quotes, newlines, backslashes, unicode), empty tables, and atomic loads.

use super::*;
use futures_util::StreamExt;
use mirage_core::workspace::SchemaFilter;
use mirage_testkit::PgCluster;

/// Rows every connector must carry unchanged: (id, value).
fn tricky_rows() -> Vec<(i32, Option<String>)> {
    [
        Some("plain"),
        None,
        Some(""),
        Some("tab\there"),
        Some("line\nbreak\r\nand return"),
        Some("quote \" comma , semicolon ;"),
        Some("back\\slash \\N \\t"),
        Some("ünïcødé 日本語 🥜"),
        Some("N"),
        Some("\\N"),
        Some(" leading and trailing "),
        Some("\"\""),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, v)| (i as i32 + 1, v.map(str::to_string)))
    .collect()
}

/// What a connector provides to the suite.
trait Fixture {
    type S: Source;
    type D: Destination<Schema = <Self::S as Source>::Schema>;
    /// A source holding table `public.items (id integer, v text)` with `rows`, and an empty
    /// destination.
    async fn open(&mut self, rows: &[(i32, Option<String>)]) -> (Self::S, Self::D);
    /// The destination's `public.items`, ordered by id.
    async fn destination_rows(&self) -> Vec<(i32, Option<String>)>;
}

const COLUMNS: [&str; 2] = ["id", "v"];

/// Catalog, schema copy and a load of the source's own bytes; returns what was loaded.
async fn copy<F: Fixture>(
    f: &mut F,
    rows: &[(i32, Option<String>)],
) -> (F::S, F::D, Table, <F::D as Destination>::Loader) {
    let (src, dst) = f.open(rows).await;
    let catalog = src
        .catalog(&SchemaFilter::default())
        .await
        .expect("catalog");
    let table = catalog
        .table(&QualifiedName::new("public", "items"))
        .expect("the catalog lists public.items")
        .clone();
    let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, COLUMNS);
    assert_eq!(table.columns[0].value_type, mirage_core::ValueType::Integer);
    let options = SchemaOptions {
        schemas: catalog.schemas.clone(),
        ..SchemaOptions::default()
    };
    let schema = src.schema(&catalog).await.expect("schema");
    let loader = dst
        .create_schema(&schema, &options)
        .await
        .expect("create schema");
    let cols: Vec<String> = COLUMNS.iter().map(|c| c.to_string()).collect();
    let chunks = src.read(&table, &cols).await.expect("read").chunks;
    // The source's bytes go straight to the destination: the formats must agree.
    let parts = chunks.map(|c| c.map_err(|_| Aborted)).boxed();
    let loaded = dst.load(&loader, &table, &cols, parts).await.expect("load");
    assert_eq!(loaded.rows, rows.len() as u64, "rows reported by the load");
    (src, dst, table, loader)
}

async fn round_trip_keeps_every_value<F: Fixture>(f: &mut F) {
    let rows = tricky_rows();
    copy(f, &rows).await;
    assert_eq!(f.destination_rows().await, rows);
}

async fn empty_tables_copy<F: Fixture>(f: &mut F) {
    copy(f, &[]).await;
    assert!(f.destination_rows().await.is_empty());
}

async fn aborted_loads_leave_the_table_as_it_was<F: Fixture>(f: &mut F) {
    let rows = tricky_rows();
    let (src, dst, table, loader) = copy(f, &rows).await;
    let cols: Vec<String> = COLUMNS.iter().map(|c| c.to_string()).collect();
    // A second load sends the rows again, then aborts: nothing of it may remain.
    let mut chunks = src.read(&table, &cols).await.expect("read").chunks;
    let mut first = Vec::new();
    while let Some(c) = chunks.next().await {
        first.extend_from_slice(&c.expect("chunk"));
    }
    let parts = futures_util::stream::iter(vec![Ok(Bytes::from(first)), Err(Aborted)]).boxed();
    let result = dst.load(&loader, &table, &cols, parts).await;
    assert!(matches!(result, Err(ConnectorError::Aborted)), "{result:?}");
    assert_eq!(f.destination_rows().await, rows);
}

/// Run the whole suite against fresh fixtures.
async fn suite<F: Fixture>(mut make: impl FnMut() -> F) {
    round_trip_keeps_every_value(&mut make()).await;
    empty_tables_copy(&mut make()).await;
    aborted_loads_leave_the_table_as_it_was(&mut make()).await;
}

struct PgFixture {
    pg: PgCluster,
}

impl PgFixture {
    fn new() -> PgFixture {
        let pg = PgCluster::start().expect("PostgreSQL");
        pg.create_database("src").expect("src");
        pg.create_database("dst").expect("dst");
        PgFixture { pg }
    }

    fn endpoint(&self, role: &'static str, db: &str) -> postgres::PgEndpoint {
        let conn = mirage_core::workspace::ConnectionConfig {
            url: self.pg.url(db),
            password_env: "MIRAGE_TEST_NO_PASSWORD".into(),
            line: 0,
            given_password: None,
        };
        postgres::PgEndpoint::new(role, &conn).expect("endpoint")
    }
}

impl Fixture for PgFixture {
    type S = postgres::PgSource;
    type D = postgres::PgDestination;

    async fn open(&mut self, rows: &[(i32, Option<String>)]) -> (Self::S, Self::D) {
        let client = self
            .endpoint("source", "src")
            .connect()
            .await
            .expect("connect");
        client
            .batch_execute("CREATE TABLE items (id integer PRIMARY KEY, v text)")
            .await
            .expect("create");
        for (id, v) in rows {
            client
                .execute("INSERT INTO items VALUES ($1, $2)", &[id, v])
                .await
                .expect("insert");
        }
        let src = postgres::PgSource::open(self.endpoint("source", "src"))
            .await
            .expect("source");
        (
            src,
            postgres::PgDestination::new(self.endpoint("destination", "dst")),
        )
    }

    async fn destination_rows(&self) -> Vec<(i32, Option<String>)> {
        let client = self
            .endpoint("destination", "dst")
            .connect()
            .await
            .expect("connect");
        client
            .query("SELECT id, v FROM items ORDER BY id", &[])
            .await
            .expect("select")
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    }
}

struct FilesFixture {
    dir: tempfile::TempDir,
}

impl FilesFixture {
    fn new() -> FilesFixture {
        FilesFixture {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }
}

impl Fixture for FilesFixture {
    type S = files::FilesSource;
    type D = files::FilesDestination;

    async fn open(&mut self, rows: &[(i32, Option<String>)]) -> (Self::S, Self::D) {
        let src = self.dir.path().join("src");
        std::fs::create_dir_all(&src).expect("mkdir");
        std::fs::write(
            src.join("schema.json"),
            r#"{"tables": [{"schema": "public", "name": "items", "primary_key": ["id"],
                "columns": [{"name": "id", "type": "integer", "not_null": true}, {"name": "v", "type": "text"}]}]}"#,
        )
        .expect("schema.json");
        let mut csv = b"id,v\n".to_vec();
        for (id, v) in rows {
            csv.extend_from_slice(format!("{id},").as_bytes());
            if let Some(v) = v {
                mirage_transform::codec::csv_escape(v.as_bytes(), b',', b"", &mut csv);
            }
            csv.push(b'\n');
        }
        std::fs::write(src.join("public.items.csv"), csv).expect("csv");
        (
            files::FilesSource::open(&src).expect("source"),
            files::FilesDestination::new(&self.dir.path().join("dst")),
        )
    }

    async fn destination_rows(&self) -> Vec<(i32, Option<String>)> {
        let data = std::fs::read(self.dir.path().join("dst/public.items.csv")).expect("read");
        let mut r = mirage_transform::codec::CsvReader::new(&data, b',');
        let mut fields = Vec::new();
        while !r.at_end() {
            let f = r.next_field().expect("csv");
            let mut v = Vec::new();
            r.decode(f, &mut v);
            fields.push(if !f.quoted && v.is_empty() {
                None
            } else {
                Some(String::from_utf8(v).expect("utf8"))
            });
        }
        fields
            .chunks(2)
            .skip(1) // header
            .map(|c| {
                (
                    c[0].as_deref().unwrap_or("0").parse().expect("id"),
                    c[1].clone(),
                )
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_passes_the_suite() {
    suite(PgFixture::new).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn files_pass_the_suite() {
    suite(FilesFixture::new).await;
}
