//! Redshift → Redshift with Data Pipeline V2, end to end: the Redshift emulator (in this
//! process) in front of a throwaway PostgreSQL, S3 in moto, and the `mirage` binary.

use crate::util::{Dir, Run};
use mirage_testkit::{MotoServer, PgCluster};
use redshift_emu::proxy::{Config, Emulator, start};
use std::process::{Command, Stdio};

const SOURCE_SQL: &str = r#"
CREATE USER owner_a PASSWORD 'Owner1234';
CREATE SCHEMA sales;
CREATE TABLE sales.customers (
    id BIGINT IDENTITY(1, 1) ENCODE az64,
    ref INTEGER NOT NULL,
    email VARCHAR(120) NOT NULL ENCODE lzo,
    first_name VARCHAR(40),
    last_name VARCHAR(40),
    ssn CHAR(11),
    note VARCHAR(MAX),
    region SMALLINT DISTKEY,
    score DECIMAL(12, 4),
    big DECIMAL(38, 10),
    ratio REAL,
    weight DOUBLE PRECISION,
    active BOOLEAN,
    born DATE,
    wake TIME,
    wake_tz TIMETZ,
    created TIMESTAMP,
    seen TIMESTAMPTZ,
    doc SUPER,
    blob VARBYTE(64),
    shape GEOMETRY,
    sketch HLLSKETCH,
    PRIMARY KEY (id)
) DISTSTYLE KEY SORTKEY (created);
CREATE TABLE sales.orders (
    order_id INTEGER NOT NULL,
    customer_id BIGINT NOT NULL REFERENCES sales.customers(id),
    amount DECIMAL(10, 2),
    status CHAR(8),
    comment VARCHAR(200),
    PRIMARY KEY (order_id)
) DISTSTYLE EVEN COMPOUND SORTKEY (customer_id, order_id);
CREATE TABLE sales.empty_one (id INTEGER, v VARCHAR(10)) DISTSTYLE ALL;
CREATE TABLE sales.regions (code CHAR(2) NOT NULL, name VARCHAR(40), note VARCHAR(100)) DISTSTYLE ALL SORTKEY (code);
INSERT INTO sales.regions VALUES ('NV', 'Nevada', NULL), ('CA', 'California', ''), ('QC', 'Québec', 'a, "b"
c'), ('ZZ', NULL, 'x');
INSERT INTO sales.customers (ref, email, first_name, last_name, ssn, note, region, score, big, ratio, weight,
    active, born, wake, wake_tz, created, seen, doc, blob, shape, sketch)
SELECT i, 'user' || i || '@example.com',
    CASE WHEN i % 7 = 0 THEN NULL ELSE 'Name' || i END,
    'Zoë, "the" O''Brien' || i,
    lpad(i::text, 3, '0') || '-12-' || lpad(i::text, 4, '0'),
    CASE i % 5 WHEN 0 THEN NULL WHEN 1 THEN '' WHEN 2 THEN E'multi\nline, with "quotes" and, commas' ELSE 'ünïcödé 日本 ' || i END,
    (i % 4)::smallint, i * 1.5, CASE WHEN i % 11 = 0 THEN NULL ELSE 12345678901234567890123456.0123456789 * (i - 150) END,
    i / 3.0, i * 2.25, i % 2 = 0,
    DATE '2000-01-01' + i, TIME '08:00:00' + i * INTERVAL '1 minute', '10:00:00+02',
    TIMESTAMP '2024-01-01 00:00:00' + i * INTERVAL '1 hour', TIMESTAMPTZ '2024-01-01 00:00:00+00' + i * INTERVAL '1 day',
    CASE WHEN i % 3 = 0 THEN NULL ELSE ('{"k": ' || i || ', "s": "a,b"}')::jsonb END,
    CASE WHEN i % 6 = 0 THEN NULL ELSE decode(lpad(to_hex(i), 4, '0'), 'hex') END,
    '0101000000000000000000F03F000000000000F03F', '{"version":1}'
FROM generate_series(1, 300) i;
INSERT INTO sales.orders
SELECT i, 1 + i % 300, i * 0.25, CASE WHEN i % 9 = 0 THEN NULL ELSE 'PAID' END,
    CASE WHEN i % 4 = 0 THEN '' WHEN i % 4 = 1 THEN NULL ELSE 'order ' || i || ', "rush"' END
FROM generate_series(1, 1000) i;
ALTER TABLE sales.customers OWNER TO owner_a;
ALTER TABLE sales.orders OWNER TO owner_a;
ALTER SCHEMA sales OWNER TO owner_a;
CREATE USER src_user PASSWORD 'Source1234';
GRANT USAGE ON SCHEMA sales TO src_user;
GRANT SELECT ON ALL TABLES IN SCHEMA sales TO src_user;
GRANT SELECT ON pg_catalog.svv_table_info TO src_user;
GRANT ROLE "sys:monitor" TO src_user;
"#;

/// The documented minimum for the destination user.
const DESTINATION_SQL: &str = "
CREATE USER dst_user PASSWORD 'Dest12345';
CREATE USER boss PASSWORD 'Boss12345' CREATEUSER;
GRANT SELECT ON pg_catalog.svv_table_info TO dst_user;
GRANT TEMPORARY ON DATABASE dst TO dst_user;
GRANT CREATE ON DATABASE dst TO dst_user;
";

const TABLES: &str = r#"
[tables."sales.customers".columns]
id = { generator = "integer_key" }
email = { generator = "email", unique = true }
first_name = { generator = "first_name" }
last_name = { generator = "last_name" }
ssn = { generator = "ssn" }
note = { generator = "character_scramble" }

[tables."sales.orders".columns]
comment = { generator = "character_scramble" }
"#;

pub struct Redshift {
    pub pg: PgCluster,
    pub moto: MotoServer,
    pub emu: Emulator,
    _rt: tokio::runtime::Runtime,
}

impl Redshift {
    pub fn start() -> Redshift {
        let pg = PgCluster::start().expect("PostgreSQL");
        let moto = MotoServer::start().expect("moto");
        moto.create_bucket("mirage-staging").expect("bucket");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let emu = rt
            .block_on(start(
                "127.0.0.1:0",
                Config::local(pg.port(), &moto.endpoint()),
            ))
            .expect("emulator");
        let rs = Redshift {
            pg,
            moto,
            emu,
            _rt: rt,
        };
        rs.sql("postgres", "CREATE DATABASE src");
        rs.sql("postgres", "CREATE DATABASE dst");
        rs.sql("src", SOURCE_SQL);
        rs.sql("dst", DESTINATION_SQL);
        rs
    }

    pub fn url(&self, user: &str, db: &str) -> String {
        format!(
            "redshift://{user}@{}/{db}?sslmode=disable",
            self.emu.address()
        )
    }

    /// SQL through the emulator as the superuser.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        self.try_sql(db, sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub fn try_sql(&self, db: &str, sql: &str) -> Result<String, String> {
        let url = self
            .url("postgres", db)
            .replace("redshift://", "postgresql://");
        self.pg.psql_url(&url, sql).map_err(|e| e.to_string())
    }

    pub fn workspace(&self, dir: &Dir, dest_user: &str, extra: &str) -> std::path::PathBuf {
        self.workspace_with(dir, dest_user, extra, "")
    }

    pub fn workspace_with(
        &self,
        dir: &Dir,
        dest_user: &str,
        extra: &str,
        staging: &str,
    ) -> std::path::PathBuf {
        self.workspace_urls(
            dir,
            &self.url("src_user", "src"),
            &self.url(dest_user, "dst"),
            extra,
            staging,
        )
    }

    /// A workspace between two URLs of this emulator.
    pub fn workspace_urls(
        &self,
        dir: &Dir,
        source: &str,
        destination: &str,
        extra: &str,
        staging: &str,
    ) -> std::path::PathBuf {
        dir.write(
            "workspace.toml",
            &format!(
                "[source]\nurl = \"{source}\"\n\n[destination]\nurl = \"{destination}\"\n{extra}\n\n[staging]\nbucket = \"mirage-staging\"\n\
                 prefix = \"jobs\"\niam_role = \"arn:aws:iam::123456789012:role/mirage-redshift\"\n\
                 endpoint = \"{}\"\nmax_file_size = \"5MB\"\n{staging}\n\n[run]\npart_size = \"16KiB\"\nunreviewed = \"passthrough\"\n{TABLES}",
                self.moto.endpoint()
            ),
        )
    }

    pub fn run(&self, workspace: &std::path::Path, seed: &str, failpoint: Option<&str>) -> Run {
        let mut cmd = self.mirage(&["run", "-w", &workspace.display().to_string()], seed);
        if let Some(f) = failpoint {
            cmd.env("MIRAGE_FAILPOINT", f);
        }
        cmd.output().expect("run mirage").into()
    }

    /// `mirage <args>` with this setup's AWS settings (moto) and a seed from `seed`.
    pub fn mirage(&self, args: &[&str], seed: &str) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mirage"));
        cmd.args(args)
            .env("MIRAGE_SEED", crate::util::seed(seed))
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            // IAM authentication's Redshift API: moto's.
            .env("AWS_ENDPOINT_URL_REDSHIFT", self.moto.endpoint())
            .env_remove("MIRAGE_LOG")
            .env_remove("MIRAGE_FAILPOINT")
            .stdin(Stdio::null());
        cmd
    }

    /// The staging bucket's listing (S3 XML).
    pub fn listing(&self) -> String {
        let out = Command::new("curl")
            .args([
                "-s",
                &format!("{}/mirage-staging?list-type=2", self.moto.endpoint()),
            ])
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Keys of jobs left in the staging bucket (what a destination keeps between jobs, under
    /// `_destinations/`, is not a job's: a record of dropped foreign keys stays until they are
    /// back).
    pub fn staged_keys(&self) -> usize {
        self.listing()
            .split("<Key>")
            .skip(1)
            .filter(|k| !k.contains("/_destinations/"))
            .count()
    }

    /// An object of the staging bucket (signed: moto refuses anonymous reads of objects).
    fn object(&self, key: &str) -> Vec<u8> {
        Command::new("curl")
            .args([
                "-s",
                "--aws-sigv4",
                "aws:amz:us-east-1:s3",
                "--user",
                "test:test",
                &format!("{}/mirage-staging/{key}", self.moto.endpoint()),
            ])
            .output()
            .expect("curl")
            .stdout
    }
}

fn differing(a: &str, b: &str) -> (usize, usize) {
    let pairs: Vec<(&str, &str)> = a.lines().zip(b.lines()).collect();
    (pairs.iter().filter(|(x, y)| x != y).count(), pairs.len())
}

#[test]
fn redshift_to_redshift_with_data_pipeline_v2() {
    let rs = Redshift::start();
    let dir = Dir::new();
    // Small COPY batches: customers loads through several manifests, each COPYed while the
    // next files are made.
    let ws = rs.workspace_with(&dir, "dst_user", "", "copy_batch = \"16KiB\"");
    let run = rs.run(&ws, "seed-one", None);
    assert_eq!(run.code, 0, "{}", run.all());

    // The same DDL: dist and sort keys, encodings, identity, NOT NULL, keys — but for the
    // identity seed, which starts past the ids loaded.
    let seedless = |ddl: String| {
        let re_start = ddl.find("identity(").map(|i| i + "identity(".len());
        match re_start {
            Some(i) => format!("{}_{}", &ddl[..i], &ddl[i + ddl[i..].find(',').unwrap()..]),
            None => ddl,
        }
    };
    for t in [
        "sales.customers",
        "sales.orders",
        "sales.empty_one",
        "sales.regions",
    ] {
        let show = format!("SHOW TABLE {t}");
        assert_eq!(
            seedless(rs.sql("dst", &show)),
            seedless(rs.sql("src", &show)),
            "{t}"
        );
    }
    // A row inserted without an id after the copy gets one no copied row holds.
    let max_id: i64 = rs
        .sql("dst", "SELECT max(id) FROM sales.customers")
        .parse()
        .unwrap();
    rs.sql(
        "dst",
        "INSERT INTO sales.customers (ref, email) VALUES (-1, 'new@example.com'), (-2, 'new2@example.com')",
    );
    let new_ids = rs.sql("dst", "SELECT min(id) FROM sales.customers WHERE ref < 0");
    assert!(
        new_ids.parse::<i64>().unwrap() > max_id,
        "{new_ids} <= {max_id}"
    );
    assert_eq!(
        rs.sql(
            "dst",
            "SELECT count(*) - count(DISTINCT id) FROM sales.customers"
        ),
        "0"
    );
    rs.sql("dst", "DELETE FROM sales.customers WHERE ref < 0");
    assert!(
        rs.sql("dst", "SHOW TABLE sales.orders")
            .contains("FOREIGN KEY (customer_id) REFERENCES sales.customers(id)")
    );
    // A table without generators is COPYed straight from its UNLOAD files: identical rows.
    let regions =
        "SELECT code, name, note, name IS NULL, note IS NULL FROM sales.regions ORDER BY code";
    assert_eq!(rs.sql("dst", regions), rs.sql("src", regions));
    for t in [
        "sales.customers",
        "sales.orders",
        "sales.empty_one",
        "sales.regions",
    ] {
        let count = format!("SELECT count(*) FROM {t}");
        assert_eq!(rs.sql("dst", &count), rs.sql("src", &count), "{t}");
    }
    // Passthrough columns byte for byte (rows aligned on ref / order_id).
    let kept = "SELECT ref, region, score, big, ratio, weight, active, born, wake, wake_tz, created, seen, doc, blob, shape, sketch, last_name IS NULL, note IS NULL, note = '' FROM sales.customers ORDER BY ref";
    assert_eq!(rs.sql("dst", kept), rs.sql("src", kept));
    let kept = "SELECT order_id, amount, status, comment IS NULL, comment = '' FROM sales.orders ORDER BY order_id";
    assert_eq!(rs.sql("dst", kept), rs.sql("src", kept));
    // Masked columns changed; NULL stays NULL and '' stays ''.
    for col in ["id", "email", "first_name", "last_name", "ssn", "note"] {
        let q = format!(
            "SELECT coalesce({col}::varchar(65535), 'NULL') FROM sales.customers WHERE coalesce({col}::varchar(65535), '') <> '' ORDER BY ref"
        );
        let (changed, total) = differing(&rs.sql("dst", &q), &rs.sql("src", &q));
        assert!(
            total > 100 && changed * 100 >= total * 99,
            "{col}: {changed} of {total} changed"
        );
    }
    assert_eq!(
        rs.sql("dst", "SELECT count(*) FROM sales.customers WHERE octet_length(ssn) = 11 AND ssn ~ '^[0-9]{3}-[0-9]{2}-[0-9]{4}$'"),
        "300"
    );
    // Keys still join, to the same customers.
    let join = "SELECT o.order_id, c.ref FROM sales.orders o JOIN sales.customers c ON c.id = o.customer_id ORDER BY 1";
    assert_eq!(rs.sql("dst", join), rs.sql("src", join));
    assert_eq!(
        rs.sql("dst", "SELECT count(DISTINCT id) FROM sales.customers"),
        "300"
    );
    // Staging files are gone; the report counts the bytes through S3.
    assert_eq!(rs.staged_keys(), 0, "the job's S3 prefix is cleaned");
    let report_dir = dir.path().join(".mirage/jobs");
    let report = std::fs::read_dir(&report_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap();
    let customers = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "sales.customers")
        .unwrap();
    assert!(
        customers["bytes_unloaded"].as_u64().unwrap() > 0
            && customers["bytes_loaded"].as_u64().unwrap() > 0,
        "{customers}"
    );

    let first_keys = rs.sql("dst", "SELECT id, email FROM sales.customers ORDER BY ref");
    // Same seed again: identical output.
    let before = rs.sql(
        "dst",
        "SELECT id, email, note FROM sales.customers ORDER BY ref",
    );
    let run = rs.run(&ws, "seed-one", None);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(
        rs.sql(
            "dst",
            "SELECT id, email, note FROM sales.customers ORDER BY ref"
        ),
        before
    );

    // A COPY that fails, and an S3 write that fails: that table keeps what it held, the others
    // load, the report names what completed, no staging table or file is left.
    for failpoint in ["copy:sales.orders", "s3-write:sales.orders"] {
        let orders = rs.sql("dst", "SELECT * FROM sales.orders ORDER BY order_id");
        let run = rs.run(&ws, &format!("other seed {failpoint}"), Some(failpoint));
        assert_eq!(run.code, 1, "{}", run.all());
        assert!(run.all().contains("sales.orders"), "{}", run.all());
        if failpoint.starts_with("copy") {
            assert!(run.all().contains("Extra column(s) found"), "{}", run.all());
            assert!(
                !run.all().contains("too,many,fields"),
                "no row values in messages: {}",
                run.all()
            );
        }
        assert_eq!(
            rs.sql("dst", "SELECT * FROM sales.orders ORDER BY order_id"),
            orders,
            "{failpoint}"
        );
        assert_ne!(
            rs.sql("dst", "SELECT id, email FROM sales.customers ORDER BY ref"),
            first_keys,
            "customers was loaded with the other seed"
        );
        assert_eq!(
            rs.sql(
                "dst",
                "SELECT count(*) FROM pg_tables WHERE tablename LIKE '%mirage_load'"
            ),
            "0"
        );
        assert_eq!(rs.staged_keys(), 0, "{failpoint}: staging cleaned");
        // The foreign key dropped for the load goes back; here it cannot, because orders keeps
        // rows masked with another seed and the emulator (unlike Redshift) enforces it. The
        // warning names the table, never a value.
        assert!(
            run.all().contains(
                "warning: could not restore a foreign key (ALTER TABLE \"sales\".\"orders\")"
            ),
            "{}",
            run.all()
        );
    }
    // With the seed orders was masked with, the keys match again and the failed table keeps its
    // foreign key: the destination's DDL is as it was.
    let orders_fk = "FOREIGN KEY (customer_id) REFERENCES sales.customers(id)";
    let run = rs.run(&ws, "seed-one", Some("copy:sales.orders"));
    assert_eq!(run.code, 1, "{}", run.all());
    // No warning but those about the columns this test leaves unlisted.
    assert!(
        !run.all()
            .lines()
            .any(|l| l.contains("warning:") && !l.contains("(unreviewed = \"passthrough\")")),
        "{}",
        run.all()
    );
    assert!(
        rs.sql("dst", "SHOW TABLE sales.orders").contains(orders_fk),
        "{}",
        rs.sql("dst", "SHOW TABLE sales.orders")
    );
}

#[test]
fn redshift_grants_and_ownership() {
    let rs = Redshift::start();
    let dir = Dir::new();
    let ws = rs.workspace(&dir, "dst_user", "");
    // Each missing grant is named with the statement that fixes it; nothing is written.
    let cases = [
        (
            "src",
            "REVOKE SELECT ON sales.orders FROM src_user",
            "GRANT SELECT ON ALL TABLES IN SCHEMA \"sales\" TO src_user",
            "GRANT SELECT ON sales.orders TO src_user",
        ),
        (
            "src",
            "REVOKE USAGE ON SCHEMA sales FROM src_user",
            "GRANT USAGE ON SCHEMA \"sales\" TO src_user",
            "GRANT USAGE ON SCHEMA sales TO src_user",
        ),
        (
            "src",
            "REVOKE SELECT ON pg_catalog.svv_table_info FROM src_user",
            "GRANT SELECT ON pg_catalog.svv_table_info TO src_user",
            "GRANT SELECT ON pg_catalog.svv_table_info TO src_user",
        ),
        (
            "dst",
            "REVOKE CREATE ON DATABASE dst FROM dst_user",
            "GRANT CREATE ON DATABASE \"dst\" TO dst_user",
            "GRANT CREATE ON DATABASE dst TO dst_user",
        ),
    ];
    for (db, revoke, message, restore) in cases {
        rs.sql(db, revoke);
        let run = rs.run(&ws, "s", None);
        assert_ne!(run.code, 0, "{revoke}: {}", run.all());
        assert!(run.all().contains(message), "{revoke}: {}", run.all());
        assert_eq!(
            rs.sql(
                "dst",
                "SELECT count(*) FROM pg_namespace WHERE nspname = 'sales'"
            ),
            "0",
            "{revoke}"
        );
        rs.sql(db, restore);
    }
    // An existing schema owned by someone else needs DROP on it, and nothing more (as the
    // documented setup grants): mirage drops it and makes it again as its own.
    rs.sql("dst", "CREATE SCHEMA sales; CREATE TABLE sales.old (a INT)");
    let run = rs.run(&ws, "s", None);
    assert_ne!(run.code, 0);
    assert!(
        run.all()
            .contains("GRANT DROP ON SCHEMA \"sales\" TO dst_user"),
        "{}",
        run.all()
    );
    rs.sql("dst", "GRANT DROP ON SCHEMA sales TO dst_user");
    let run = rs.run(&ws, "s", None);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(
        rs.sql(
            "dst",
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'sales' AND tablename = 'old'"
        ),
        "0",
        "tables the source lacks are dropped"
    );

    // Preserving ownership needs a superuser destination user…
    let ws = rs.workspace(&dir, "dst_user", "preserve_ownership = true");
    let run = rs.run(&ws, "s", None);
    assert_ne!(run.code, 0);
    assert!(
        run.all().contains("preserve_ownership needs a superuser"),
        "{}",
        run.all()
    );
    // …and with one, schemas and tables get the source's owners.
    let ws = rs.workspace(&dir, "boss", "preserve_ownership = true");
    let run = rs.run(&ws, "s", None);
    assert_eq!(run.code, 0, "{}", run.all());
    let owners = "SELECT tablename || ':' || tableowner FROM pg_tables WHERE schemaname = 'sales' ORDER BY 1";
    assert_eq!(rs.sql("dst", owners), rs.sql("src", owners));
    assert_eq!(
        rs.sql(
            "dst",
            "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'sales'"
        ),
        "owner_a"
    );

    // keep_output leaves the transformed files and their COPY manifests, nothing else; small
    // COPY batches load customers through several manifests.
    let ws = rs.workspace_with(
        &dir,
        "boss",
        "",
        "keep_output = true\ncopy_batch = \"16KiB\"",
    );
    let run = rs.run(&ws, "s", None);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout.contains("unloaded") && run.stdout.contains("transformed"),
        "{}",
        run.stdout
    );
    let listing = rs.listing();
    assert!(
        listing.contains("/output/sales/orders/manifest-0000"),
        "{listing}"
    );
    assert!(
        listing.contains("/output/sales/regions/manifest-0000")
            && !listing.contains("/output/sales/regions/part-"),
        "regions loads from its UNLOAD files: {listing}"
    );
    assert!(
        listing.contains("/output/sales/customers/manifest-0002")
            && listing.contains("/output/sales/customers/part-00002.csv.zst"),
        "several files and COPY batches: {listing}"
    );
    assert!(!listing.contains("/input/"), "{listing}");

    // GZIP instead of ZSTD, both ways: UNLOAD writes it, the worker reads and writes it, COPY
    // reads it; the same seed gives the same rows whatever the compression.
    let digest =
        "SELECT string_agg(md5(t::text), ',' ORDER BY md5(t::text)) FROM sales.customers t";
    let zstd_rows = rs.sql("dst", digest);
    let ws = rs.workspace_with(
        &dir,
        "boss",
        "",
        "keep_output = true\ncopy_batch = \"16KiB\"\ncompression = \"gzip\"",
    );
    let run = rs.run(&ws, "s", None);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(rs.sql("dst", digest), zstd_rows);
    let listing = rs.listing();
    let gz = listing
        .split("<Key>")
        .filter_map(|k| k.split("</Key>").next())
        .find(|k| k.contains("/output/sales/customers/part-") && k.ends_with(".csv.gz"))
        .unwrap_or_else(|| panic!("a GZIP part: {listing}"));
    assert_eq!(
        rs.object(gz).get(..2),
        Some(&[0x1f, 0x8b][..]),
        "{gz} is GZIP"
    );

    // Generated values must fit Redshift's byte lengths and single-byte CHAR: refused before any
    // COPY, naming the column, never the value.
    for (column, value, says) in [
        ("ssn", "ÅÅÅ", "multi-byte character"),
        (
            "first_name",
            "éééééééééééééééééééééééééééééé",
            "longer than the column's 40 bytes",
        ),
    ] {
        let ws = dir.write(
            "bytes.toml",
            &format!(
                "[source]\nurl = \"{}\"\n[run]\nunreviewed = \"passthrough\"\n[destination]\nurl = \"{}\"\n[staging]\nbucket = \"mirage-staging\"\n\
                 iam_role = \"arn:aws:iam::123456789012:role/mirage-redshift\"\nendpoint = \"{}\"\n\
                 [tables.\"sales.customers\".columns]\n{column} = {{ generator = \"constant\", value = \"{value}\" }}\n",
                rs.url("src_user", "src"),
                rs.url("boss", "dst"),
                rs.moto.endpoint()
            ),
        );
        let run = rs.run(&ws, "s", None);
        assert_eq!(run.code, 1, "{}", run.all());
        let all = run.all();
        assert!(
            all.contains(says) && all.contains(column) && !all.contains(value),
            "{all}"
        );
    }

    // TLS is on unless the URL turns it off (the emulator speaks plain TCP).
    let tls = dir.write(
        "tls.toml",
        &format!(
            "[source]\nurl = \"redshift://src_user@{}/src\"\n[run]\nunreviewed = \"passthrough\"\n[destination]\nurl = \"{}\"\n[staging]\nbucket = \"mirage-staging\"\n\
             iam_role = \"arn:aws:iam::123456789012:role/mirage-redshift\"\nendpoint = \"{}\"\n",
            rs.emu.address(),
            rs.url("boss", "dst"),
            rs.moto.endpoint()
        ),
    );
    let run = rs.run(&tls, "s", None);
    assert_ne!(run.code, 0);
    assert!(run.all().to_lowercase().contains("tls"), "{}", run.all());
}

/// kill -9 while the cluster is UNLOADing: the UNLOAD goes on without the worker. `mirage
/// clean` right away finds the job dead (its process is gone), cancels the UNLOAD (found in
/// `stv_recents` by the job's folder) before deleting the folder, so no raw file comes back.
#[test]
fn kill_9_mid_unload_then_clean_leaves_no_raw_rows() {
    let rs = Redshift::start();
    rs.sql(
        "src",
        "CREATE TABLE sales.big (id INTEGER, who VARCHAR(60), what VARCHAR(300)); \
         INSERT INTO sales.big SELECT i, 'person ' || i, repeat('raw row text ' || i, 12) \
         FROM generate_series(1, 1500000) i; GRANT SELECT ON sales.big TO src_user;",
    );
    let dir = Dir::new();
    let ws = rs.workspace(&dir, "dst_user", "");
    // The backstop: check warns until the bucket has the lifecycle rule `mirage policy` prints.
    let check = || -> Run {
        Command::new(env!("CARGO_BIN_EXE_mirage"))
            .args(["check", "-w", &ws.display().to_string()])
            .env("MIRAGE_SEED", crate::util::seed("s"))
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .output()
            .expect("mirage check")
            .into()
    };
    let before = check();
    assert!(
        before
            .stdout
            .contains("a lifecycle rule of bucket mirage-staging expires")
            && before.stdout.contains("staging-lifecycle.json"),
        "{}",
        before.all()
    );
    let policy = Command::new(env!("CARGO_BIN_EXE_mirage"))
        .args([
            "policy",
            "-w",
            &ws.display().to_string(),
            "--format",
            "json",
        ])
        .output()
        .expect("mirage policy");
    let docs: serde_json::Value = serde_json::from_slice(&policy.stdout).expect("json");
    let rule = &docs["staging-lifecycle.json"]["Rules"][0];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(
                &aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .region(aws_config::Region::new("us-east-1"))
                    .endpoint_url(rs.moto.endpoint())
                    .credentials_provider(aws_sdk_s3::config::Credentials::new(
                        "testing", "testing", None, None, "test",
                    ))
                    .load()
                    .await,
            )
            .force_path_style(true)
            .build(),
        );
        use aws_sdk_s3::types::{
            BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule,
            LifecycleRuleFilter,
        };
        let r = LifecycleRule::builder()
            .id(rule["ID"].as_str().unwrap())
            .filter(
                LifecycleRuleFilter::builder()
                    .prefix(rule["Filter"]["Prefix"].as_str().unwrap())
                    .build(),
            )
            .status(ExpirationStatus::Enabled)
            .expiration(
                LifecycleExpiration::builder()
                    .days(rule["Expiration"]["Days"].as_i64().unwrap() as i32)
                    .build(),
            )
            .build()
            .unwrap();
        s3.put_bucket_lifecycle_configuration()
            .bucket("mirage-staging")
            .lifecycle_configuration(
                BucketLifecycleConfiguration::builder()
                    .rules(r)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("put lifecycle");
    });
    let after = check();
    assert!(
        after
            .stdout
            .lines()
            .any(|l| l.contains("✓") && l.contains("a lifecycle rule of bucket")),
        "{}",
        after.all()
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_mirage"))
        .args(["run", "-w", &ws.display().to_string(), "--no-progress"])
        .env("MIRAGE_SEED", crate::util::seed("kill-seed"))
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("MIRAGE_FAILPOINT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mirage");
    let unloading = || {
        rs.sql(
            "src",
            "SELECT count(*) FROM stv_recents WHERE status = 'Running' \
             AND query LIKE '%UNLOAD TO%' AND query LIKE '%sales/big%' \
             AND pid <> pg_backend_pid()",
        )
        .trim()
        .to_string()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while unloading() == "0" {
        assert!(
            std::time::Instant::now() < deadline,
            "the UNLOAD of sales.big never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Some parts are written, more are coming.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status()
        .expect("kill");
    let _ = child.wait();
    assert_eq!(unloading(), "1", "the UNLOAD outlives the killed worker");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let clean = |dead_after: &str| crate::util::mirage_clean(&ws, "testing", dead_after);
    // With the default bound the stopped job is named, not removed yet.
    let young = clean("600");
    assert_eq!(young.code, 0, "{}", young.all());
    assert!(
        young.stdout.contains("stopped") && young.stdout.contains("MIRAGE_DEAD_AFTER=0"),
        "{}",
        young.all()
    );
    assert!(rs.staged_keys() > 0, "nothing removed yet");
    let clean = clean("0");
    assert_eq!(clean.code, 0, "{}", clean.all());
    assert!(
        clean.stdout.contains("stopped 1 UNLOAD(s) of dead job"),
        "{}",
        clean.all()
    );
    assert_eq!(unloading(), "0", "{}", clean.all());
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(
        rs.staged_keys(),
        0,
        "no raw file comes back after the clean: {}",
        rs.listing()
    );
    assert!(
        !rs.listing().contains(".lock<"),
        "the killed job's destination lock is freed: {}",
        rs.listing()
    );
}

/// Jobs stopped mid-load (SIGINT, then kill -9) on a destination whose foreign keys the load
/// drops: SIGINT puts them back before it exits, kill -9 leaves a record in S3 from which the
/// next run puts them back; neither leaves a `_mirage_load` table. While a job runs, a second
/// one on the same destination stops before writing (exit 2) and names it; the lock of a
/// killed job does not block the next.
#[test]
fn stopped_redshift_jobs_keep_foreign_keys_and_hold_the_destination() {
    let rs = Redshift::start();
    rs.sql(
        "src",
        "CREATE TABLE sales.big (id INTEGER, who VARCHAR(60), what VARCHAR(200)); \
         INSERT INTO sales.big SELECT i, 'person ' || i, repeat('row ' || i, 10) \
         FROM generate_series(1, 400000) i; GRANT SELECT ON sales.big TO src_user;",
    );
    let dir = Dir::new();
    let ws = rs.workspace(&dir, "dst_user", "");
    // `big` is transformed in the worker: a rows phase long enough to stop it in.
    let text = std::fs::read_to_string(&ws).unwrap()
        + "\n[tables.\"sales.big\".columns]\nwho = { generator = \"full_name\" }\n";
    std::fs::write(&ws, text).unwrap();
    let first = rs.run(&ws, "fk-seed", None);
    assert_eq!(first.code, 0, "{}", first.all());
    // The reference copy: what every later run with this seed must give again.
    let digest = || {
        ["customers", "orders", "regions", "big"]
            .iter()
            .map(|t| {
                rs.pg
                    .psql(
                        "dst",
                        &format!("SELECT count(*) || ':' || md5(string_agg(x::text, ',' ORDER BY x::text)) FROM sales.{t} x"),
                    )
                    .unwrap()
            })
            .collect::<Vec<_>>()
    };
    let reference = digest();
    let fks = || {
        rs.pg
            .psql(
                "dst",
                "SELECT count(*) FROM pg_constraint WHERE contype = 'f'",
            )
            .unwrap()
    };
    let loading = || {
        rs.pg
            .psql(
                "dst",
                "SELECT count(*) FROM pg_class WHERE relname LIKE '%mirage_load'",
            )
            .unwrap()
    };
    assert_eq!(fks(), "1", "orders references customers");
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_mirage"))
            .args(["run", "-w", &ws.display().to_string(), "--no-progress"])
            .env("MIRAGE_SEED", crate::util::seed("fk-seed"))
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env_remove("MIRAGE_FAILPOINT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mirage")
    };
    // Once the keys are dropped and sales.big is loading (its loading table is made in the
    // load's transaction: other sessions see the statements, not the table).
    let big_loading = || {
        rs.pg
            .psql(
                "dst",
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%big_mirage_load%' \
                 AND pid <> pg_backend_pid()",
            )
            .unwrap()
    };
    let wait_mid_load = |child: &mut std::process::Child| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while fks() != "0" || big_loading() == "0" {
            assert!(child.try_wait().unwrap().is_none(), "the job ended first");
            assert!(std::time::Instant::now() < deadline, "never mid-load");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };

    let mut child = spawn();
    wait_mid_load(&mut child);
    let second = rs.run(&ws, "fk-seed", None);
    assert_eq!(second.code, 2, "{}", second.all());
    assert!(
        second.stderr.contains("is in use by job")
            && second.stderr.contains(&child.id().to_string()),
        "{}",
        second.all()
    );
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    let out: Run = child.wait_with_output().expect("wait").into();
    assert_eq!(out.code, 130, "{}", out.all());
    assert_eq!(
        fks(),
        "1",
        "Ctrl-C puts the foreign key back: {}",
        out.all()
    );
    assert_eq!(loading(), "0", "no loading table is left");

    let mut child = spawn();
    wait_mid_load(&mut child);
    Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status()
        .expect("kill");
    let _ = child.wait();
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(fks(), "0", "kill -9 cannot put it back");
    assert_eq!(
        loading(),
        "0",
        "the killed load's table went with its transaction"
    );
    assert!(
        rs.listing().contains("dropped-foreign-keys.json"),
        "the dropped keys are recorded: {}",
        rs.listing()
    );
    // The next run: the killed job's lock does not block it, and it ends with the keys.
    let again = rs.run(&ws, "fk-seed", Some("copy:sales.orders"));
    assert_eq!(again.code, 1, "{}", again.all());
    assert_eq!(
        fks(),
        "1",
        "a failed run puts the recorded key back: {}",
        again.all()
    );
    let last = rs.run(&ws, "fk-seed", None);
    assert_eq!(last.code, 0, "{}", last.all());
    assert_eq!(digest(), reference, "the re-run gives the reference copy");
    assert_eq!(fks(), "1");
    assert_eq!(loading(), "0");
    let listing = rs.listing();
    assert!(
        !listing.contains("dropped-foreign-keys.json") && !listing.contains(".lock"),
        "nothing of the destination's is left in S3: {listing}"
    );
}

/// Redshift IAM authentication: no password anywhere; mirage logs in with the temporary
/// credentials GetClusterCredentials (moto's Redshift API) issues, as the `IAM:`/`IAMA:` user
/// they name, which the emulator maps to the database user.
#[test]
fn redshift_iam_authentication() {
    let rs = Redshift::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let redshift = rt.block_on(async {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(rs.moto.endpoint())
            .credentials_provider(aws_sdk_redshift::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .load()
            .await;
        aws_sdk_redshift::Client::new(&shared)
    });
    for cluster in ["src-cluster", "dst-cluster"] {
        rt.block_on(
            redshift
                .create_cluster()
                .cluster_identifier(cluster)
                .node_type("ra3.xlplus")
                .master_username("admin")
                .master_user_password("Admin12345")
                .send(),
        )
        .expect("create cluster in moto");
    }
    let iam_url = |user: &str, db: &str, extra: &str| {
        format!(
            "redshift://{user}@{}/{db}?sslmode=disable&iam=true{extra}",
            rs.emu.address()
        )
    };
    let dir = Dir::new();
    let ws = rs.workspace_urls(
        &dir,
        &iam_url("src_user", "src", "&cluster_id=src-cluster"),
        &iam_url(
            "dst_user",
            "dst",
            "&cluster_id=dst-cluster&auto_create=true",
        ),
        "",
        "",
    );
    let ws_arg = ws.display().to_string();
    let no_passwords = |cmd: &mut Command| {
        for v in [
            "PGPASSWORD",
            "PGPASSFILE",
            "MIRAGE_SOURCE_PASSWORD",
            "MIRAGE_DESTINATION_PASSWORD",
        ] {
            cmd.env_remove(v);
        }
        cmd.env("PGPASSFILE", "/nonexistent/pgpass");
    };

    let mut check = rs.mirage(&["check", "-w", &ws_arg], "iam");
    no_passwords(&mut check);
    let check: Run = check.output().unwrap().into();
    assert_eq!(check.code, 0, "{}", check.all());
    assert!(
        check
            .stdout
            .contains("with IAM credentials (redshift:GetClusterCredentials, cluster src-cluster)"),
        "{}",
        check.all()
    );

    let mut run = rs.mirage(&["run", "-w", &ws_arg], "iam");
    no_passwords(&mut run);
    let run: Run = run.output().unwrap().into();
    assert_eq!(run.code, 0, "{}", run.all());
    for t in ["sales.customers", "sales.orders", "sales.regions"] {
        let count = format!("SELECT count(*) FROM {t}");
        assert_eq!(rs.sql("dst", &count), rs.sql("src", &count), "{t}");
    }
    // Every session logged in with the user name the API returned (moto prefixes it), so with
    // the credentials it issued: the `IAM:` prefix comes from nowhere else.
    let logins = rs.emu.iam_logins();
    assert!(
        logins
            .iter()
            .any(|l| l.login == "IAM:src_user" && l.user == "src_user" && l.database == "src"),
        "{logins:?}"
    );
    assert!(
        logins
            .iter()
            .any(|l| l.login == "IAMA:dst_user" && l.database == "dst"),
        "{logins:?}"
    );

    // A cluster the API does not know: refused before anything is written, one line that
    // names the call, the cluster and what to check; exit 2 (a setting to fix).
    let before = rs.sql("dst", "SELECT email FROM sales.customers ORDER BY ref");
    let wrong_dir = Dir::new();
    let wrong = rs.workspace_urls(
        &wrong_dir,
        &iam_url("src_user", "src", "&cluster_id=no-such-cluster"),
        &iam_url("dst_user", "dst", "&cluster_id=dst-cluster"),
        "",
        "",
    );
    let mut cmd = rs.mirage(&["run", "-w", &wrong.display().to_string()], "iam");
    no_passwords(&mut cmd);
    let failed: Run = cmd.output().unwrap().into();
    assert_eq!(failed.code, 2, "{}", failed.all());
    assert!(
        failed
            .stderr
            .contains("GetClusterCredentials in region us-east-1 failed (ClusterNotFound")
            && failed.stderr.contains("no-such-cluster"),
        "{}",
        failed.all()
    );
    assert!(!failed.all().contains("panicked"), "{}", failed.all());
    assert_eq!(
        rs.sql("dst", "SELECT email FROM sales.customers ORDER BY ref"),
        before
    );

    // No AWS credentials at all: the check says which call needs them and where they come from.
    let mut cmd = rs.mirage(&["check", "-w", &ws_arg], "iam");
    no_passwords(&mut cmd);
    for v in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
    ] {
        cmd.env_remove(v);
    }
    cmd.env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
        .env("AWS_CONFIG_FILE", "/nonexistent/config")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    let bare: Run = cmd.output().unwrap().into();
    assert_ne!(bare.code, 0, "{}", bare.all());
    assert!(
        bare.all()
            .contains("needs AWS credentials to call redshift:GetClusterCredentials")
            && bare.all().contains("fix: give mirage AWS credentials")
            // The staging bucket's check says the same once, not an instance-metadata 403.
            && bare.all().contains("no AWS credentials were found; mirage looks in")
            && !bare.all().contains("169.254.169.254"),
        "{}",
        bare.all()
    );

    // auto_create: a user the database does not have yet is created at login (IAMA:).
    let newcomer_dir = Dir::new();
    let newcomer = rs.workspace_urls(
        &newcomer_dir,
        &iam_url(
            "newcomer",
            "src",
            "&cluster_id=src-cluster&auto_create=true",
        ),
        &iam_url("dst_user", "dst", "&cluster_id=dst-cluster"),
        "",
        "",
    );
    let mut cmd = rs.mirage(&["check", "-w", &newcomer.display().to_string()], "iam");
    no_passwords(&mut cmd);
    let _ = cmd.output().unwrap();
    assert_eq!(
        rs.sql(
            "src",
            "SELECT count(*) FROM pg_user WHERE usename = 'newcomer'"
        ),
        "1"
    );
}

/// Everything a warehouse holds besides rows, in two schemas: views (one across schemas, one
/// over a view, one late-binding), a materialized view over a masked column, a SQL UDF, a
/// procedure reading a de-identified table, comments, defaults, grants; what cannot be copied is
/// named (external schema, datashare, a view over a schema left out).
#[test]
fn redshift_copies_views_routines_comments_and_grants() {
    let rs = Redshift::start();
    rs.sql(
        "src",
        "CREATE USER analyst PASSWORD 'Analyst123';
         CREATE SCHEMA crm;
         CREATE TABLE crm.notes (id INTEGER NOT NULL, customer_id BIGINT REFERENCES sales.customers(id), body VARCHAR(200) DEFAULT 'none', created TIMESTAMP DEFAULT GETDATE());
         INSERT INTO crm.notes (id, customer_id, body) SELECT i, i, 'note ' || i FROM generate_series(1, 20) i;
         CREATE SCHEMA hidden;
         CREATE TABLE hidden.t (x INTEGER);
         CREATE TABLE crm.mv_tbl__lookalike (x INTEGER);
         INSERT INTO crm.mv_tbl__lookalike VALUES (1), (2);
         COMMENT ON TABLE sales.customers IS 'People who buy';
         COMMENT ON COLUMN sales.customers.email IS 'Contact address, masked';
         COMMENT ON TABLE crm.notes IS 'Free text';
         CREATE VIEW crm.customer_notes AS SELECT c.email, n.body FROM sales.customers c JOIN crm.notes n ON n.customer_id = c.id;
         CREATE VIEW crm.note_count AS SELECT count(*) AS n FROM crm.customer_notes;
         COMMENT ON VIEW crm.customer_notes IS 'Notes with their customer';
         CREATE VIEW crm.recent AS SELECT id, body FROM crm.notes WITH NO SCHEMA BINDING;
         CREATE VIEW crm.uses_hidden AS SELECT x FROM hidden.t;
         CREATE MATERIALIZED VIEW sales.emails BACKUP NO AUTO REFRESH NO AS SELECT id, email FROM sales.customers;
         CREATE FUNCTION crm.f_domain(VARCHAR) RETURNS VARCHAR IMMUTABLE AS $$ SELECT split_part($1, '@', 2) $$ LANGUAGE sql;
         CREATE PROCEDURE crm.count_customers(total INOUT BIGINT) AS $$ BEGIN SELECT count(*) INTO total FROM sales.customers; END $$ LANGUAGE plpgsql;
         ALTER SCHEMA crm OWNER TO owner_a;
         ALTER TABLE crm.notes OWNER TO owner_a;
         ALTER TABLE crm.customer_notes OWNER TO owner_a;
         ALTER PROCEDURE crm.count_customers(BIGINT) OWNER TO owner_a;
         GRANT USAGE ON SCHEMA crm TO analyst;
         GRANT SELECT ON crm.customer_notes TO analyst;
         GRANT SELECT, INSERT ON crm.notes TO analyst;
         GRANT SELECT ON sales.customers TO analyst;
         GRANT EXECUTE ON PROCEDURE crm.count_customers(BIGINT) TO analyst;
         GRANT USAGE ON SCHEMA crm TO src_user;
         GRANT SELECT ON ALL TABLES IN SCHEMA crm TO src_user;
         CREATE EXTERNAL SCHEMA spectrum FROM DATA CATALOG DATABASE 'lake' IAM_ROLE 'arn:aws:iam::123456789012:role/spectrum';
         CREATE DATASHARE sales_share;",
    );
    let dir = Dir::new();
    let ws = rs.workspace(
        &dir,
        "boss",
        "preserve_ownership = true\n\n[schemas]\ninclude = [\"sales\", \"crm\"]",
    );
    let ws_arg = ws.display().to_string();
    // The plan names what will not be copied.
    let plan: Run = rs
        .mirage(&["plan", "-w", &ws_arg], "objects")
        .output()
        .unwrap()
        .into();
    assert_eq!(plan.code, 0, "{}", plan.all());
    assert!(
        plan.stdout.contains("Not copied:")
            && plan
                .stdout
                .contains("external schema spectrum (catalog database lake)")
            && plan.stdout.contains("datashare sales_share (outbound)"),
        "{}",
        plan.all()
    );
    for round in 0..2 {
        let run = rs.run(&ws, "objects", None);
        assert_eq!(run.code, 0, "round {round}: {}", run.all());
        // A view whose body cannot be made in the destination is named; the job stands.
        assert!(
            run.all().contains("view crm.uses_hidden not copied"),
            "{}",
            run.all()
        );
    }
    let report_dir = dir.path().join(".mirage/jobs");
    let report = std::fs::read_dir(&report_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max()
        .unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap();
    let not_copied = report["not_copied"].to_string();
    for what in [
        "external schema spectrum",
        "datashare sales_share",
        "view crm.uses_hidden",
    ] {
        assert!(not_copied.contains(what), "{what}: {not_copied}");
    }

    // The views work over the copied tables, in dependency order.
    assert_eq!(
        rs.sql("dst", "SELECT count(*) FROM crm.customer_notes"),
        "20"
    );
    assert_eq!(rs.sql("dst", "SELECT n FROM crm.note_count"), "20");
    let masked = "SELECT email FROM crm.customer_notes ORDER BY body";
    assert_ne!(rs.sql("dst", masked), rs.sql("src", masked));
    assert!(
        rs.sql("dst", "SHOW VIEW crm.recent")
            .ends_with("WITH NO SCHEMA BINDING;")
    );
    // The materialized view holds the masked emails, never the source's.
    let mv = "SELECT id, email FROM sales.emails ORDER BY id";
    assert_eq!(
        rs.sql("dst", mv),
        rs.sql("dst", "SELECT id, email FROM sales.customers ORDER BY id")
    );
    let source_emails = rs.sql("src", "SELECT email FROM sales.customers");
    let copied = rs.sql("dst", "SELECT email FROM sales.emails");
    assert!(
        copied
            .lines()
            .all(|e| !source_emails.lines().any(|s| s == e)),
        "a source email in the materialized view"
    );
    rs.sql("dst", "REFRESH MATERIALIZED VIEW sales.emails");
    // Routines: the UDF computes, the procedure reads the de-identified table.
    assert_eq!(
        rs.sql("dst", "SELECT crm.f_domain('a@example.org')"),
        "example.org"
    );
    assert_eq!(rs.sql("dst", "CALL crm.count_customers(NULL)"), "300");
    // Comments, defaults, owners and grants as in the source.
    let comments = "SELECT n.nspname, c.relname, d.objsubid, d.description FROM pg_description d \
         JOIN pg_class c ON c.oid = d.objoid JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname IN ('sales', 'crm') ORDER BY 1, 2, 3";
    assert_eq!(rs.sql("dst", comments), rs.sql("src", comments));
    assert!(rs.sql("dst", comments).contains("Contact address, masked"));
    assert_eq!(
        rs.sql("dst", "SHOW TABLE crm.notes"),
        rs.sql("src", "SHOW TABLE crm.notes")
    );
    rs.sql("dst", "INSERT INTO crm.notes (id) VALUES (999)");
    assert_eq!(
        rs.sql("dst", "SELECT body FROM crm.notes WHERE id = 999"),
        "none"
    );
    for q in [
        "SELECT namespace_name, relation_name, privilege_type, identity_name FROM svv_relation_privileges \
         WHERE namespace_name IN ('sales', 'crm') AND identity_name <> 'src_user' ORDER BY 1, 2, 3, 4",
        "SELECT namespace_name, function_name, privilege_type, identity_name FROM svv_function_privileges \
         WHERE namespace_name = 'crm' ORDER BY 1, 2, 3, 4",
        "SELECT namespace_name, privilege_type, identity_name FROM svv_schema_privileges \
         WHERE namespace_name = 'crm' AND identity_name <> 'src_user' ORDER BY 1, 2, 3",
        "SELECT schemaname, viewname, viewowner FROM pg_views WHERE schemaname = 'crm' AND viewname <> 'uses_hidden' ORDER BY 2",
        "SELECT p.proname, pg_get_userbyid(p.proowner) FROM pg_proc p JOIN pg_namespace n \
         ON n.oid = p.pronamespace WHERE n.nspname = 'crm' ORDER BY 1",
    ] {
        assert_eq!(rs.sql("dst", q), rs.sql("src", q), "{q}");
    }
    assert!(
        rs.sql(
            "dst",
            "SELECT relation_name FROM svv_relation_privileges WHERE identity_name = 'analyst'"
        )
        .contains("customer_notes")
    );
    // A user's table named like a materialized view's rows is a table like any other.
    assert_eq!(
        rs.sql("dst", "SELECT count(*) FROM crm.mv_tbl__lookalike"),
        "2"
    );
    // Neither the external schema nor the schema left out were made.
    assert_eq!(
        rs.sql(
            "dst",
            "SELECT count(*) FROM pg_namespace WHERE nspname IN ('spectrum', 'hidden')"
        ),
        "0"
    );
    // `mirage policy` with every schema copied names each of the source's.
    let every = Dir::new();
    let ws_all = rs.workspace(&every, "boss", "");
    let policy: Run = rs
        .mirage(
            &[
                "policy",
                "-w",
                &ws_all.display().to_string(),
                "--format",
                "sql",
            ],
            "objects",
        )
        .output()
        .unwrap()
        .into();
    assert_eq!(policy.code, 0, "{}", policy.all());
    for schema in ["sales", "crm", "hidden"] {
        assert!(
            policy
                .stdout
                .contains(&format!("GRANT USAGE ON SCHEMA \"{schema}\" TO")),
            "{schema}: {}",
            policy.stdout
        );
    }
    assert!(!policy.stdout.contains("\"spectrum\""), "{}", policy.stdout);
}
