//! The emulator over the real wire: a throwaway PostgreSQL, moto for S3, the proxy in front, and
//! tokio-postgres as the client (simple protocol through `batch_execute`/`simple_query`,
//! extended through `query`/`execute`).

use mirage_testkit::{MotoServer, PgCluster};
use redshift_emu::proxy::{Config, Emulator, start};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

const ROLE: &str = "IAM_ROLE 'arn:aws:iam::123456789012:role/redshift-s3'";

struct Env {
    emu: Emulator,
    moto: MotoServer,
    _pg: PgCluster,
}

async fn env() -> Env {
    let pg = PgCluster::start().unwrap();
    pg.create_database("dev").unwrap();
    let moto = MotoServer::start().unwrap();
    moto.create_bucket("staging").unwrap();
    let emu = start("127.0.0.1:0", Config::local(pg.port(), &moto.endpoint()))
        .await
        .unwrap();
    Env { emu, moto, _pg: pg }
}

impl Env {
    async fn connect(&self, user: &str) -> Client {
        let (host, port) = self
            .emu
            .address()
            .rsplit_once(':')
            .map(|(h, p)| (h.to_string(), p.to_string()))
            .unwrap();
        let (client, conn) = tokio_postgres::connect(
            &format!("host={host} port={port} user={user} dbname=dev"),
            NoTls,
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        client
    }

    /// Keys under a prefix of the staging bucket.
    async fn keys(&self, prefix: &str) -> Vec<String> {
        use futures_util::TryStreamExt;
        use object_store::ObjectStore;
        let store =
            redshift_emu::s3::bucket("staging", Some(&self.moto.endpoint()), "us-east-1").unwrap();
        let mut keys: Vec<String> = store
            .list(Some(&object_store::path::Path::from(prefix)))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap();
        keys.sort();
        keys
    }
}

/// First column of the first row, as text, through the simple protocol.
async fn one(c: &Client, sql: &str) -> String {
    for m in c.simple_query(sql).await.unwrap() {
        if let SimpleQueryMessage::Row(r) = m {
            return r.get(0).unwrap_or("NULL").to_string();
        }
    }
    panic!("no row from {sql}")
}

async fn error_of(c: &Client, sql: &str) -> String {
    let e = c.batch_execute(sql).await.unwrap_err();
    e.as_db_error()
        .map_or(e.to_string(), |d| d.message().to_string())
}

const EVERY_TYPE: &str = "(
    id BIGINT IDENTITY(1, 1),
    s SMALLINT, i INTEGER ENCODE az64, b BIGINT, d DECIMAL(38, 10), r REAL, f DOUBLE PRECISION,
    ok BOOLEAN, c CHAR(6), v VARCHAR(100) ENCODE lzo, vm VARCHAR(MAX), t TEXT, dt DATE, tm TIME,
    ttz TIMETZ, ts TIMESTAMP, tstz TIMESTAMPTZ, j SUPER, vb VARBYTE(64), g GEOMETRY, h HLLSKETCH
) DISTSTYLE KEY DISTKEY (i) COMPOUND SORTKEY (ts, id)";

const ROWS: &str = "INSERT INTO rt (s, i, b, d, r, f, ok, c, v, vm, t, dt, tm, ttz, ts, tstz, j, vb, g, h) VALUES
    (1, 10, 9000000000, 12345678901234567890.0123456789, 1.5, 2.25, true, 'ab', 'plain', 'x', 't',
     '2024-02-29', '12:34:56.789', '01:02:03+05', '2024-01-01 00:00:00.123456', '2024-06-01 12:00:00+00',
     '{\"a\": [1, \"two\", null]}', '\\x00ff10', '0101000000000000000000F03F000000000000F03F', '{\"version\":1}'),
    (NULL, 11, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    (3, 12, 3, 0, 0, 0, false, '', '', '', '', '1970-01-01', '00:00:00', '00:00:00+00', '1970-01-01 00:00:00', '1970-01-01 00:00:00+00',
     '[]', '\\x', '', ''),
    (4, 13, -4, -1.5, -0.5, 1e300, true, 'q\"', 'comma, \"quote\" and ''apostrophe''', E'line1\\nline2\\r\\nend', 'pipe|tab\\there',
     '9999-12-31', '23:59:59.999999', '23:59:59-08', '2099-12-31 23:59:59', '2099-12-31 23:59:59+00',
     '\"just a string\"', '\\x5c2c22', 'NULL', '__NULL__'),
    (5, 14, 5, 5, 5, 5, true, 'N', 'ünïcödé 日本語 🎉', '\\N', 'null', '2000-01-01', '01:00:00', '01:00:00+00',
     '2000-01-01 01:00:00', '2000-01-01 01:00:00+00', '{\"k\": \"v,\\\"\"}', '\\x', ' ', ' ')";

#[tokio::test(flavor = "multi_thread")]
async fn unload_and_copy_round_trip_every_type_through_s3() {
    let env = env().await;
    let c = env.connect("postgres").await;
    c.batch_execute(&format!("CREATE TABLE rt {EVERY_TYPE}; CREATE TABLE rt2 {EVERY_TYPE}; CREATE TABLE rt3 {EVERY_TYPE};"))
        .await
        .unwrap();
    c.batch_execute(ROWS).await.unwrap();
    let snapshot = "SELECT string_agg(x::text, E'\\n' ORDER BY id) FROM (SELECT * FROM {t}) x";
    let src = one(&c, &snapshot.replace("{t}", "rt")).await;
    assert!(
        src.contains(",\"\",") && src.contains(",,"),
        "NULLs and '' in the source: {src}"
    );

    // With a NULL sentinel (extended protocol): identical, NULL and '' kept apart.
    c.execute(
        &format!("UNLOAD ('select * from rt') TO 's3://staging/rt/a/' {ROLE} FORMAT AS CSV NULL AS '__NULL__' GZIP PARALLEL ON MAXFILESIZE 5 MB MANIFEST VERBOSE"),
        &[],
    )
    .await
    .unwrap();
    let keys = env.keys("rt/a").await;
    assert!(
        keys.contains(&"rt/a/0000_part_00.gz".to_string())
            && keys.contains(&"rt/a/manifest".to_string()),
        "{keys:?}"
    );
    c.execute(
        &format!("COPY rt2 FROM 's3://staging/rt/a/manifest' {ROLE} MANIFEST CSV GZIP NULL AS '__NULL__' EXPLICIT_IDS COMPUPDATE OFF STATUPDATE OFF"),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(one(&c, &snapshot.replace("{t}", "rt2")).await, src);

    // Without NULL AS (simple protocol, ZSTD, a bare prefix): Redshift's CSV rule loads the empty
    // field of a NULL as '' into character columns and as NULL elsewhere.
    c.batch_execute(&format!(
        "UNLOAD ('select * from rt') TO 's3://staging/rt/b/' {ROLE} CSV ZSTD; \
         COPY rt3 FROM 's3://staging/rt/b/' {ROLE} CSV ZSTD EXPLICIT_IDS;"
    ))
    .await
    .unwrap();
    let counts = "SELECT count(*) FILTER (WHERE v IS NULL) || ' ' || count(*) FILTER (WHERE v = '') || ' ' || count(*) FILTER (WHERE b IS NULL) FROM ";
    assert_eq!(one(&c, &format!("{counts} rt")).await, "1 1 1");
    assert_eq!(one(&c, &format!("{counts} rt3")).await, "0 2 1");
    // The text '\N' is COPY's default NULL marker, so it comes back NULL: the reason to UNLOAD
    // with an explicit sentinel.
    assert_eq!(
        one(&c, "SELECT (vm IS NULL)::text FROM rt3 WHERE id = 5").await,
        "true"
    );
    // Everything else came through: the rows agree once NULL text is read as ''.
    let loose = "SELECT string_agg(concat_ws('|', id, s, d, ok, coalesce(rtrim(c), ''), coalesce(v, ''), j, vb, coalesce(g, '')), E'\\n' ORDER BY id) FROM ";
    assert_eq!(
        one(&c, &format!("{loose} rt3")).await,
        one(&c, &format!("{loose} rt")).await
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn privileges_behave_like_redshift() {
    let env = env().await;
    let admin = env.connect("postgres").await;
    admin
        .batch_execute(
            "CREATE USER reader PASSWORD 'Reader123'; \
             CREATE USER boss PASSWORD DISABLE CREATEUSER; \
             CREATE USER other PASSWORD 'Other1234'; \
             CREATE SCHEMA sales; \
             CREATE TABLE sales.orders (id INTEGER, note VARCHAR(20)) DISTSTYLE EVEN; \
             INSERT INTO sales.orders VALUES (1, 'a'), (2, 'b'); \
             CREATE TABLE sales.empty (id INTEGER);",
        )
        .await
        .unwrap();
    assert_eq!(
        one(&admin, "SELECT string_agg(usename || '=' || usesuper::text, ',' ORDER BY usename) FROM pg_user WHERE usename IN ('boss', 'reader')").await,
        "boss=true,reader=false"
    );
    // svv_table_info: superusers see tables with rows (empty ones are absent); others see nothing
    // until granted SELECT on it.
    assert_eq!(
        one(&admin, "SELECT string_agg(\"table\" || ':' || tbl_rows || ':' || diststyle, ',') FROM pg_catalog.svv_table_info WHERE schema = 'sales'").await,
        "orders:2:EVEN"
    );
    let reader = env.connect("reader").await;
    assert_eq!(
        one(&reader, "SELECT count(*) FROM svv_table_info").await,
        "0"
    );
    // No SELECT on the table: no UNLOAD, and nothing written.
    let e = error_of(
        &reader,
        &format!("UNLOAD ('select * from sales.orders') TO 's3://staging/priv/orders/' {ROLE} CSV"),
    )
    .await;
    assert!(e.contains("permission denied"), "{e}");
    assert!(env.keys("priv").await.is_empty());
    admin
        .batch_execute(
            "GRANT SELECT ON pg_catalog.svv_table_info TO reader; \
             GRANT USAGE ON SCHEMA sales TO reader; \
             GRANT SELECT ON ALL TABLES IN SCHEMA sales TO reader; \
             GRANT TEMPORARY ON DATABASE dev TO reader; \
             GRANT CREATE ON DATABASE dev TO reader; \
             GRANT DROP, ALTER ON SCHEMA sales TO reader;",
        )
        .await
        .unwrap();
    assert_eq!(
        one(
            &reader,
            "SELECT count(*) FROM svv_table_info WHERE schema = 'sales'"
        )
        .await,
        "1"
    );
    reader
        .batch_execute(&format!(
            "UNLOAD ('select * from sales.orders') TO 's3://staging/priv/orders/' {ROLE} CSV PARALLEL OFF"
        ))
        .await
        .unwrap();
    assert_eq!(env.keys("priv").await, ["priv/orders/000"]);
    // The grants Redshift has and PostgreSQL lacks are reported by the catalog views.
    assert_eq!(
        one(&reader, "SELECT string_agg(privilege_type, ',' ORDER BY privilege_type) FROM svv_schema_privileges WHERE namespace_name = 'sales' AND identity_name = 'reader'").await,
        "ALTER,DROP,USAGE"
    );
    assert_eq!(
        one(&admin, "SELECT string_agg(privilege_type, ',' ORDER BY privilege_type) FROM svv_database_privileges WHERE database_name = 'dev' AND identity_name = 'reader'").await,
        "CREATE,TEMPORARY"
    );
    assert_eq!(
        one(&admin, "SELECT string_agg(namespace_name || '.' || relation_name || ':' || privilege_type, ',' ORDER BY relation_name) FROM svv_relation_privileges WHERE identity_name = 'reader'").await,
        "sales.empty:SELECT,sales.orders:SELECT,pg_catalog.svv_table_info:SELECT"
    );
    // Another user cannot drop the schema; the grantee of DROP can, though not its owner.
    let other = env.connect("other").await;
    let e = error_of(&other, "DROP SCHEMA sales CASCADE").await;
    assert!(e.contains("must be owner of schema sales"), "{e}");
    let e = error_of(&other, "GRANT DROP ON SCHEMA sales TO other").await;
    assert!(e.contains("permission denied"), "{e}");
    reader
        .batch_execute("DROP SCHEMA sales CASCADE")
        .await
        .unwrap();
    assert_eq!(
        one(
            &admin,
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'sales'"
        )
        .await,
        "0"
    );
    // Ownership moves with ALTER TABLE … OWNER TO.
    admin
        .batch_execute("CREATE TABLE t (a INT); ALTER TABLE t OWNER TO boss;")
        .await
        .unwrap();
    assert_eq!(
        one(
            &admin,
            "SELECT tableowner FROM pg_tables WHERE tablename = 't'"
        )
        .await,
        "boss"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rejections_and_load_errors_read_like_redshift() {
    let env = env().await;
    let c = env.connect("postgres").await;
    c.batch_execute(
        "CREATE TABLE t (id INTEGER, v VARCHAR(5), c CHAR(3)); INSERT INTO t VALUES (1, 'abc', 'x');",
    )
    .await
    .unwrap();
    let cases = [
        (
            format!("UNLOAD ('select * from t limit 5') TO 's3://staging/r/' {ROLE}"),
            "Limit clause is not supported",
        ),
        (
            format!(
                "UNLOAD ('select * from t') TO 's3://staging/r/' {ROLE} CLEANPATH ALLOWOVERWRITE"
            ),
            "CLEANPATH",
        ),
        ("COPY t FROM STDIN".to_string(), "STDIN"),
        ("COPY t TO STDOUT".to_string(), "UNLOAD"),
        ("COPY (SELECT 1) TO STDOUT".to_string(), "UNLOAD"),
        (
            format!("COPY t FROM 's3://staging/nothing/here' {ROLE} CSV"),
            "does not exist",
        ),
        (
            format!("COPY t FROM 's3://missing-bucket/x' {ROLE} CSV"),
            "bucket",
        ),
        // Byte lengths: five characters of two bytes do not fit VARCHAR(5); CHAR is single-byte.
        (
            "INSERT INTO t (v) VALUES ('ééééé')".to_string(),
            "value too long for type character varying(5)",
        ),
        (
            "INSERT INTO t (c) VALUES ('é')".to_string(),
            "Multibyte character not supported for CHAR",
        ),
    ];
    for (sql, expected) in &cases {
        let e = error_of(&c, sql).await;
        assert!(e.contains(expected), "{sql}: {e}");
        // Same through the extended protocol.
        let e = c.execute(sql.as_str(), &[]).await.unwrap_err();
        let text = e
            .as_db_error()
            .map_or(e.to_string(), |d| d.message().to_string());
        assert!(text.contains(expected), "{sql} (extended): {text}");
    }
    // An existing unload destination needs ALLOWOVERWRITE.
    let unload = format!("UNLOAD ('select * from t') TO 's3://staging/u/' {ROLE} CSV");
    c.batch_execute(&unload).await.unwrap();
    assert!(error_of(&c, &unload).await.contains("ALLOWOVERWRITE"));
    c.batch_execute(&format!("{unload} ALLOWOVERWRITE"))
        .await
        .unwrap();
    // A failed statement aborts the transaction around it, as on Redshift.
    let e = error_of(&c, &format!("BEGIN; {unload}; ")).await;
    assert!(e.contains("ALLOWOVERWRITE"), "{e}");
    let e = error_of(&c, "SELECT 1").await;
    assert!(e.contains("current transaction is aborted"), "{e}");
    c.batch_execute("ROLLBACK").await.unwrap();
    // A record that does not fit fails the whole COPY and lands in stl_load_errors.
    c.batch_execute(&format!(
        "UNLOAD ('select i, repeat(''x'', i), ''y'' from generate_series(1, 9) i') TO 's3://staging/long/' {ROLE} CSV PARALLEL OFF"
    ))
    .await
    .unwrap();
    let e = error_of(&c, &format!("COPY t FROM 's3://staging/long/' {ROLE} CSV")).await;
    assert!(
        e.contains("Load into table 't' failed") && e.contains("stl_load_errors"),
        "{e}"
    );
    assert_eq!(
        one(&c, "SELECT count(*) FROM t").await,
        "1",
        "nothing loaded"
    );
    assert_eq!(
        one(&c, "SELECT trim(filename) || ' ' || line_number || ' ' || trim(colname) || ' ' || err_code || ' ' || trim(err_reason) || ' ' || trim(raw_field_value) FROM stl_load_errors").await,
        "s3://staging/long/000 6 v 1204 String length exceeds DDL length xxxxxx"
    );
    // TIMEFORMAT and DATEFORMAT read other spellings of dates and times.
    c.batch_execute(&format!(
        "CREATE TABLE times (ts TIMESTAMP, d DATE); \
         UNLOAD ('select ''1700000000'', ''02/29/2024''') TO 's3://staging/times/' {ROLE} CSV PARALLEL OFF; \
         COPY times FROM 's3://staging/times/' {ROLE} CSV TIMEFORMAT 'epochsecs' DATEFORMAT 'MM/DD/YYYY';"
    ))
    .await
    .unwrap();
    assert_eq!(
        one(&c, "SELECT ts || ' ' || d FROM times").await,
        "2023-11-14 22:13:20 2024-02-29"
    );
    assert_eq!(
        one(&c, "SELECT version()")
            .await
            .split(',')
            .next_back()
            .unwrap(),
        " Redshift 1.0.77467"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn show_table_and_the_catalog_report_redshift_ddl() {
    let env = env().await;
    let c = env.connect("postgres").await;
    c.batch_execute(
        "CREATE SCHEMA \"Sales\"; \
         CREATE TABLE \"Sales\".\"Customer\" ( \
            id BIGINT IDENTITY(1, 1) ENCODE az64, \
            email VARCHAR(MAX) NOT NULL ENCODE lzo, \
            region INTEGER DISTKEY, \
            doc SUPER, \
            code CHAR(2) DEFAULT 'NV', \
            seq INTEGER GENERATED BY DEFAULT AS IDENTITY(10, 5), \
            created TIMESTAMP, \
            PRIMARY KEY (id) \
         ) BACKUP NO DISTSTYLE KEY INTERLEAVED SORTKEY (created, region); \
         INSERT INTO sales.customer (email, region) VALUES ('a@x', 1);",
    )
    .await
    .unwrap();
    // Through the extended protocol, rows come back as for a query.
    let shown: String = c
        .query_one("SHOW TABLE sales.customer", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        shown.starts_with("CREATE TABLE sales.customer ("),
        "{shown}"
    );
    for part in [
        "id bigint identity(1,1)",
        "email varchar(65535) not null encode lzo",
        // A sort key column: RAW, as Redshift assigns it.
        "region integer encode raw distkey",
        "seq integer generated by default as identity(10,5)",
        "PRIMARY KEY (id)",
        "BACKUP NO",
        "DISTSTYLE KEY",
        "INTERLEAVED SORTKEY (created, region)",
    ] {
        assert!(shown.contains(part), "{part} in {shown}");
    }
    // Re-executed, it defines the same table.
    c.batch_execute(&format!("DROP TABLE sales.customer; {shown}"))
        .await
        .unwrap();
    assert_eq!(one(&c, "SHOW TABLE sales.customer").await, shown);
    // pg_table_def follows search_path; svv_columns does not.
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM pg_table_def WHERE schemaname = 'sales'"
        )
        .await,
        "0"
    );
    c.batch_execute("SET search_path TO sales").await.unwrap();
    assert_eq!(
        one(&c, "SELECT string_agg(\"column\" || ' ' || type || ' ' || trim(encoding) || ' ' || distkey || ' ' || sortkey || ' ' || \"notnull\", ',') FROM pg_table_def WHERE tablename = 'customer'").await,
        // Redshift's default encodings: RAW for sort keys and SUPER, LZO for CHAR, AZ64 for integers.
        "id bigint az64 false 0 true,email character varying(65535) lzo false 0 true,region integer raw true -2 false,\
doc super raw false 0 false,code character(2) lzo false 0 false,seq integer az64 false 0 true,created timestamp without time zone raw false -1 false"
    );
    assert_eq!(
        one(&c, "SELECT string_agg(column_name || ':' || data_type, ',' ORDER BY ordinal_position) FROM pg_catalog.svv_columns WHERE table_schema = 'sales'").await,
        "id:bigint,email:character varying,region:integer,doc:super,code:character,seq:integer,created:timestamp without time zone"
    );
    c.batch_execute("INSERT INTO customer (email, region) VALUES ('b@x', 2)")
        .await
        .unwrap();
    assert_eq!(
        one(&c, "SELECT diststyle || ' ' || sortkey1 || ' ' || sortkey_num || ' ' || max_varchar || ' ' || tbl_rows FROM svv_table_info").await,
        "KEY(region) INTERLEAVED 2 65535 1"
    );
}

/// Views (plain, late-binding, materialized with Redshift's attributes), procedures, SQL UDFs,
/// external schemas and datashares: created as Redshift takes them, shown again by SHOW VIEW /
/// SHOW PROCEDURE and listed where Redshift lists them.
#[tokio::test]
async fn warehouse_objects() {
    let env = env().await;
    let c = env.connect("postgres").await;
    c.batch_execute(
        "CREATE SCHEMA a; CREATE TABLE a.t (id INT, v VARCHAR(10), doc SUPER);
         INSERT INTO a.t VALUES (1, 'x', JSON_PARSE('{\"k\": 1}')), (2, 'y', NULL);
         CREATE VIEW a.v AS SELECT id, v FROM a.t;
         CREATE VIEW a.lb AS SELECT id FROM a.t WITH NO SCHEMA BINDING;
         CREATE MATERIALIZED VIEW a.mv BACKUP NO DISTSTYLE EVEN SORTKEY (id) AUTO REFRESH NO AS SELECT id, upper(v) AS u FROM a.t;
         CREATE FUNCTION a.f_plus(int, int) RETURNS int IMMUTABLE AS $$ SELECT $1 + $2 $$ LANGUAGE sql;
         CREATE PROCEDURE a.p(n IN int, total INOUT int) AS $$ BEGIN SELECT count(*) + n INTO total FROM a.t; END $$ LANGUAGE plpgsql;
         CREATE EXTERNAL SCHEMA spectrum FROM DATA CATALOG DATABASE 'lake' IAM_ROLE 'arn:aws:iam::123456789012:role/s';
         CREATE DATASHARE sales_share;",
    )
    .await
    .unwrap();
    let v = one(&c, "SHOW VIEW a.v").await;
    assert!(
        v.starts_with("CREATE OR REPLACE VIEW a.v AS") && !v.contains("BINDING"),
        "{v}"
    );
    let lb = one(&c, "SHOW VIEW a.lb").await;
    assert!(lb.ends_with("WITH NO SCHEMA BINDING;"), "{lb}");
    let mv = one(&c, "SHOW VIEW a.mv").await;
    assert!(mv.starts_with("CREATE MATERIALIZED VIEW a.mv AS"), "{mv}");
    assert_eq!(one(&c, "SELECT u FROM a.mv ORDER BY id").await, "X");
    assert_eq!(one(&c, "SELECT name FROM svv_mv_info").await, "mv");
    // What SHOW VIEW / SHOW PROCEDURE print runs again.
    c.batch_execute(&format!("DROP VIEW a.v; {v}"))
        .await
        .unwrap();
    let p = one(&c, "SHOW PROCEDURE a.p(int, int)").await;
    assert!(
        p.contains("PROCEDURE a.p(") && p.contains("count(*)"),
        "{p}"
    );
    c.batch_execute(&format!("DROP PROCEDURE a.p(int, int); {p}"))
        .await
        .unwrap();
    assert_eq!(one(&c, "SELECT a.f_plus(2, 3)").await, "5");
    assert_eq!(
        one(&c, "SELECT prokind FROM pg_proc_info WHERE proname = 'p'").await,
        "p"
    );
    assert_eq!(
        one(
            &c,
            "SELECT schemaname || ':' || databasename FROM svv_external_schemas"
        )
        .await,
        "spectrum:lake"
    );
    assert_eq!(
        one(&c, "SELECT share_name FROM svv_datashares").await,
        "sales_share"
    );
    assert_eq!(
        one(
            &c,
            "SELECT json_extract_path_text('{\"a\": {\"b\": 7}}', 'a', 'b')"
        )
        .await,
        "7"
    );
    assert_eq!(
        one(&c, "SELECT can_json_parse('{oops')::text").await,
        "false"
    );
    // ENCODE AZ64 is for numbers, dates and timestamps only.
    let e = error_of(&c, "CREATE TABLE a.bad (v VARCHAR(5) ENCODE az64)").await;
    assert!(e.contains("invalid encoding type"), "{e}");
    let shown = one(&c, "SHOW TABLE a.t").await;
    assert!(
        shown.contains("id integer encode az64") && shown.contains("v varchar(10) encode lzo"),
        "{shown}"
    );
}
