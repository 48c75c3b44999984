//! PostgreSQL → PostgreSQL, end to end, on a schema with every feature the spine must carry.

use crate::util::{Dir, cluster, columns, mirage, rows, workspace};
use mirage_testkit::PgCluster;
use std::collections::{BTreeMap, HashMap};

pub const SCHEMA: &str = r#"
CREATE TYPE mood AS ENUM ('happy', 'sad', 'ok');
CREATE DOMAIN us_zip AS text CHECK (VALUE ~ '^[0-9]{5}$');
CREATE SCHEMA sales;

CREATE TABLE customers (
    id integer PRIMARY KEY,
    full_name text NOT NULL,
    email varchar(120),
    referred_by integer REFERENCES customers (id),
    mood mood,
    zip us_zip,
    tags text[],
    profile jsonb,
    settings json,
    avatar bytea,
    balance numeric(12, 2),
    created_at timestamptz DEFAULT now(),
    notes text
);
CREATE INDEX customers_name_idx ON customers (full_name);

CREATE TABLE sales.accounts (
    customer_id integer REFERENCES customers (id),
    account_no integer,
    opened date,
    PRIMARY KEY (customer_id, account_no)
);

CREATE TABLE sales.transfers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id integer NOT NULL,
    account_no integer NOT NULL,
    amount numeric(12, 2),
    memo text,
    FOREIGN KEY (customer_id, account_no) REFERENCES sales.accounts (customer_id, account_no)
);

CREATE FUNCTION sales.default_memo() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.memo := coalesce(NEW.memo, 'n/a');
    RETURN NEW;
END $$;
CREATE TRIGGER transfers_memo BEFORE INSERT ON sales.transfers
    FOR EACH ROW EXECUTE FUNCTION sales.default_memo();

CREATE TABLE events (
    id bigserial,
    happened_at timestamptz NOT NULL,
    customer_id integer REFERENCES customers (id),
    kind text,
    PRIMARY KEY (id, happened_at)
) PARTITION BY RANGE (happened_at);
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');

CREATE VIEW customer_balances AS SELECT id, full_name, balance FROM customers;

CREATE TABLE audit (id serial PRIMARY KEY, note text);
"#;

pub const DATA: &str = r#"
INSERT INTO customers
SELECT i,
       CASE WHEN i % 5 = 0 THEN 'Zoë Ünïcødé ' || i ELSE 'Person ' || i END,
       CASE WHEN i % 9 = 0 THEN NULL ELSE 'user' || i || '@example.com' END,
       CASE WHEN i % 3 = 0 THEN i - 1 END,
       CASE WHEN i % 10 = 0 THEN NULL ELSE (ARRAY['happy', 'sad', 'ok'])[1 + i % 3]::mood END,
       lpad(((i * 7919) % 100000)::text, 5, '0'),
       ARRAY['a' || i, E'b\tc', NULL, 'q"uote'],
       jsonb_build_object('n', i, 'name', E'x"y\\z'),
       '{"k": [1, 2], "s": "tab\there"}'::json,
       decode(md5(i::text), 'hex'),
       i * 1.25,
       '2025-01-01 00:00:00+00'::timestamptz + i * interval '1 hour',
       CASE i % 5
           WHEN 0 THEN NULL
           WHEN 1 THEN E'line1\nline2\r\nline3'
           WHEN 2 THEN E'back\\slash and\ttab, "quotes" and ''single'''
           WHEN 3 THEN ''
           ELSE 'plain 日本語 ' || i
       END
FROM generate_series(1, 2000) i;

INSERT INTO sales.accounts SELECT i, i * 10 + j, DATE '2000-01-01' + (i * 2 + j)
FROM generate_series(1, 2000) i, generate_series(1, 2) j;

INSERT INTO sales.transfers (customer_id, account_no, amount, memo)
SELECT 1 + k % 2000, (1 + k % 2000) * 10 + 1 + k % 2, k * 0.5,
       CASE WHEN k % 4 = 0 THEN NULL ELSE 'memo ' || k END
FROM generate_series(1, 3000) k;

INSERT INTO events (happened_at, customer_id, kind)
SELECT '2025-06-01 00:00:00+00'::timestamptz + k * interval '3 hours', 1 + k % 2000,
       CASE WHEN k % 2 = 0 THEN 'click' ELSE 'view' END
FROM generate_series(1, 4000) k;

INSERT INTO audit (note) SELECT 'note ' || k FROM generate_series(1, 10) k;
"#;

pub const TABLES: &str = r#"
[tables."public.customers".columns]
id = { generator = "integer_key" }
full_name = { generator = "full_name" }
email = { generator = "email" }
zip = { generator = "character_scramble" }
notes = { generator = "character_scramble" }

[tables."sales.accounts".columns]
account_no = { generator = "integer_key" }

[tables."sales.transfers".columns]
memo = { generator = "hash", length = 16 }

[tables."public.events".columns]
kind = { generator = "constant", value = "redacted" }

[tables."public.audit"]
mode = "truncate"
"#;

/// Masked columns per relation (including foreign keys that follow a masked key).
fn masked() -> BTreeMap<&'static str, Vec<&'static str>> {
    BTreeMap::from([
        (
            "public.customers",
            vec!["id", "full_name", "email", "zip", "notes", "referred_by"],
        ),
        ("sales.accounts", vec!["customer_id", "account_no"]),
        ("sales.transfers", vec!["memo", "customer_id", "account_no"]),
        ("public.events_2025", vec!["kind", "customer_id"]),
        ("public.events_2026", vec!["kind", "customer_id"]),
    ])
}

fn setup() -> (PgCluster, Dir) {
    let pg = cluster();
    pg.psql("src", SCHEMA).expect("schema");
    pg.psql("src", DATA).expect("data");
    pg.psql("src", "ANALYZE").expect("analyze");
    let dir = Dir::new();
    dir.write("workspace.toml", &workspace(&pg, TABLES));
    (pg, dir)
}

fn run(dir: &Dir, seed: &str) -> crate::util::Run {
    let ws = dir.path().join("workspace.toml");
    mirage(&["run", "-w", ws.to_str().unwrap(), "--no-progress"], seed)
}

/// Check one relation: same rows, passthrough fields identical, masked fields changed.
/// Rows are aligned on their passthrough fields (heap order is not preserved by COPY), so each
/// relation in the test schema has a unique passthrough column.
fn check_relation(pg: &PgCluster, rel: &str, masked: &[&str]) {
    let cols = columns(pg, "src", rel);
    let keep: Vec<usize> = (0..cols.len())
        .filter(|i| !masked.contains(&cols[*i].as_str()))
        .collect();
    let key = |r: &Vec<String>| keep.iter().map(|i| r[*i].clone()).collect::<Vec<_>>();
    let mut src = rows(pg, "src", rel);
    let mut dst = rows(pg, "dst", rel);
    src.sort_by_key(key);
    dst.sort_by_key(key);
    assert_eq!(src.len(), dst.len(), "row count of {rel}");
    assert!(!src.is_empty(), "{rel} has rows");
    for (ci, col) in cols.iter().enumerate() {
        let (mut non_null, mut changed) = (0, 0);
        for (s, d) in src.iter().zip(&dst) {
            if masked.contains(&col.as_str()) {
                if s[ci].is_empty() {
                    // An empty string has nothing to mask; it must stay an empty string.
                    assert!(d[ci] != "\\N", "{rel}.{col}: '' must not become NULL");
                } else if s[ci] != "\\N" {
                    non_null += 1;
                    changed += usize::from(s[ci] != d[ci]);
                } else {
                    assert_eq!(d[ci], "\\N", "{rel}.{col}: NULL stays NULL");
                }
            } else {
                assert_eq!(s[ci], d[ci], "{rel}.{col} passes through byte for byte");
            }
        }
        if masked.contains(&col.as_str()) {
            assert!(non_null > 0, "{rel}.{col} has values");
            assert!(
                changed * 100 >= non_null * 99,
                "{rel}.{col}: only {changed} of {non_null} values changed"
            );
        }
    }
}

/// Every masked column's data, for determinism checks.
fn snapshot(pg: &PgCluster) -> Vec<Vec<Vec<String>>> {
    masked()
        .keys()
        .map(|rel| {
            let mut r = rows(pg, "dst", rel);
            r.sort();
            r
        })
        .collect()
}

#[test]
fn copies_schema_and_rows_with_generators() {
    let (pg, dir) = setup();
    let out = run(&dir, "seed-one");
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains("public.customers"),
        "summary: {}",
        out.stdout
    );

    // The destination schema equals the source's (owners and privileges aside).
    let (src_schema, dst_schema) = (
        pg.schema_dump("src").unwrap(),
        pg.schema_dump("dst").unwrap(),
    );
    if src_schema != dst_schema {
        let diff: Vec<String> = src_schema
            .lines()
            .zip(dst_schema.lines())
            .filter(|(a, b)| a != b)
            .take(10)
            .map(|(a, b)| format!("- {a}\n+ {b}"))
            .collect();
        panic!(
            "schemas differ ({} vs {} lines):\n{}",
            src_schema.lines().count(),
            dst_schema.lines().count(),
            diff.join("\n")
        );
    }

    // Rows: counts, passthrough bytes, masked values.
    for (rel, cols) in masked() {
        check_relation(&pg, rel, &cols);
    }
    assert_eq!(
        pg.psql("dst", "SELECT count(*) FROM audit").unwrap(),
        "0",
        "truncate mode"
    );

    // Keys stay unique and every foreign key joins: the constraints exist and are validated.
    let fk_sql = "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated AND conparentid = 0";
    let fks = pg.psql("dst", fk_sql).unwrap();
    assert_eq!(
        fks, "4",
        "customers self-ref, accounts, transfers (composite), events"
    );
    assert_eq!(fks, pg.psql("src", fk_sql).unwrap());
    let joined = pg
        .psql(
            "dst",
            "SELECT count(*) FROM sales.transfers t JOIN sales.accounts a USING (customer_id, account_no) \
             JOIN customers c ON c.id = a.customer_id",
        )
        .unwrap();
    assert_eq!(joined, "3000");
    let referred = pg
        .psql(
            "dst",
            "SELECT count(*) FROM customers c JOIN customers r ON r.id = c.referred_by",
        )
        .unwrap();
    assert_eq!(
        referred,
        pg.psql("src", "SELECT count(referred_by) FROM customers")
            .unwrap()
    );

    // Sequences are set to the source's values; the trigger, view and indexes exist.
    for seq in ["sales.transfers_id_seq", "events_id_seq", "audit_id_seq"] {
        let q = format!("SELECT last_value || ' ' || is_called FROM {seq}");
        assert_eq!(
            pg.psql("src", &q).unwrap(),
            pg.psql("dst", &q).unwrap(),
            "{seq}"
        );
    }
    assert_eq!(
        pg.psql(
            "dst",
            "SELECT count(*) FROM pg_trigger WHERE tgname = 'transfers_memo'"
        )
        .unwrap(),
        "1"
    );
    assert_eq!(
        pg.psql("dst", "SELECT count(*) FROM customer_balances")
            .unwrap(),
        "2000"
    );

    // The job report is machine-readable.
    let report_dir = dir.path().join(".mirage/jobs");
    let report = std::fs::read_dir(&report_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap();
    assert_eq!(json["status"], "completed");
    assert!(json["job_id"].as_str().is_some_and(|s| !s.is_empty()));
    let customers = json["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "public.customers")
        .unwrap();
    assert_eq!(customers["rows"], 2000);

    // Same seed ⇒ identical data; another seed ⇒ different masked values.
    let first = snapshot(&pg);
    let again = run(&dir, "seed-one");
    assert_eq!(again.code, 0, "{}", again.all());
    assert_eq!(first, snapshot(&pg), "same seed, same data");
    let other = run(&dir, "seed-two");
    assert_eq!(other.code, 0, "{}", other.all());
    let customers_a = &first[masked()
        .keys()
        .position(|k| *k == "public.customers")
        .unwrap()];
    let mut customers_b = rows(&pg, "dst", "public.customers");
    customers_b.sort();
    // Align on created_at (passthrough, unique) and compare the masked names.
    let by_created: HashMap<&str, &str> = customers_b
        .iter()
        .map(|r| (r[11].as_str(), r[1].as_str()))
        .collect();
    let differ = customers_a
        .iter()
        .filter(|a| by_created[a[11].as_str()] != a[1])
        .count();
    assert!(
        differ > 1900,
        "another seed changes names ({differ} of 2000)"
    );
}

#[test]
fn preserve_destination_keeps_rows_and_ownership_needs_a_superuser() {
    let (pg, dir) = setup();
    let first = run(&dir, "s");
    assert_eq!(first.code, 0, "{}", first.all());
    // Put something recognisable in the destination's audit table, then preserve it.
    pg.psql(
        "dst",
        "INSERT INTO audit (note) VALUES ('kept 1'), ('kept 2')",
    )
    .unwrap();
    let tables = TABLES.replace("mode = \"truncate\"", "mode = \"preserve-destination\"");
    dir.write("workspace.toml", &workspace(&pg, &tables));
    let out = run(&dir, "s");
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(
        pg.psql(
            "dst",
            "SELECT string_agg(note, ',' ORDER BY note) FROM audit"
        )
        .unwrap(),
        "kept 1,kept 2"
    );
    assert_eq!(
        pg.psql(
            "dst",
            "SELECT count(*) FROM pg_namespace WHERE nspname = '_mirage_preserve'"
        )
        .unwrap(),
        "0"
    );
    assert_eq!(
        pg.psql("dst", "SELECT count(*) FROM customers").unwrap(),
        "2000"
    );

    // preserve_ownership with a non-superuser destination is refused before anything is written.
    pg.psql(
        "postgres",
        "CREATE ROLE writer LOGIN; GRANT CREATE ON DATABASE dst TO writer",
    )
    .unwrap();
    let ws = workspace(&pg, TABLES)
        .replace(&pg.url("dst"), &pg.url_as("writer", "dst"))
        .replace("[run]", "[run]\n")
        .replacen("\n\n[run]", "\npreserve_ownership = true\n\n[run]", 1);
    dir.write("workspace.toml", &ws);
    let before = pg.psql("dst", "SELECT count(*) FROM customers").unwrap();
    let out = run(&dir, "s");
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("superuser"), "{}", out.stderr);
    assert_eq!(
        pg.psql("dst", "SELECT count(*) FROM customers").unwrap(),
        before
    );
}

#[test]
fn init_lists_every_table_and_column_and_plans_cleanly() {
    let pg = cluster();
    pg.psql("src", SCHEMA).expect("schema");
    let dir = Dir::new();
    let ws = dir.path().join("workspace.toml");
    let out = mirage(
        &[
            "init",
            "--source",
            &pg.url("src").replace("postgres@", "postgres:hunter2@"),
            "--destination",
            &pg.url("dst"),
            "-w",
            ws.to_str().unwrap(),
        ],
        "s",
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let text = std::fs::read_to_string(&ws).unwrap();
    assert!(!text.contains("hunter2"), "no password in the file");
    for table in [
        "public.customers",
        "sales.accounts",
        "sales.transfers",
        "public.events",
        "public.audit",
    ] {
        assert!(
            text.contains(&format!("[tables.\"{table}\".columns]")),
            "{table} missing:\n{text}"
        );
    }
    // Every column of every table is listed, with its type and the scan's suggestion.
    let listed = text
        .lines()
        .filter(|l| {
            l.contains("= { generator = \"") && l.contains(", type = \"") && l.contains("# ")
        })
        .count();
    assert!(text.contains("email = { generator = \"email\""), "{text}");
    assert!(text.contains("scan: email, from its name"), "{text}");
    let expected: usize = pg
        .psql(
            "src",
            "SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('public', 'sales') \
             AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND a.attnum > 0 AND NOT a.attisdropped",
        )
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(listed, expected);
    assert!(text.contains("# character varying(120)"), "{text}");
    assert!(text.contains("events_2025"), "partitions are mentioned");
    // Running init again does not clobber the file.
    let again = mirage(
        &[
            "init",
            "--source",
            &pg.url("src"),
            "-w",
            ws.to_str().unwrap(),
        ],
        "s",
    );
    assert_eq!(again.code, 2);
    // The starter plans cleanly and runs: everything passes through.
    let plan = mirage(&["plan", "-w", ws.to_str().unwrap()], "s");
    assert_eq!(plan.code, 0, "{}", plan.all());
    assert!(
        plan.stdout.contains("sales.transfers [de-identify]"),
        "{}",
        plan.stdout
    );
    let run = mirage(&["run", "-w", ws.to_str().unwrap(), "--no-progress"], "s");
    assert_eq!(run.code, 0, "{}", run.all());
}

/// Names with dots, quotes and line breaks: `init` writes keys that parse and tell `"a.b".c` from
/// `a."b.c"`, no name can add lines to the file, and a generator given to one of the two tables
/// masks that table only.
#[test]
fn init_keys_stay_unambiguous_for_hostile_names() {
    let pg = cluster();
    pg.psql(
        "src",
        r#"CREATE SCHEMA "a.b"; CREATE SCHEMA a;
           CREATE TABLE "a.b".c (id int PRIMARY KEY, secret text);
           CREATE TABLE a."b.c" (id int PRIMARY KEY, secret text);
           CREATE TABLE public."x
[source]
url = ""files:./evil""" ("e""
mail" text);
           INSERT INTO "a.b".c SELECT i, 'left-' || i FROM generate_series(1, 20) i;
           INSERT INTO a."b.c" SELECT i, 'right-' || i FROM generate_series(1, 20) i;
           INSERT INTO public."x
[source]
url = ""files:./evil""" VALUES ('v');"#,
    )
    .expect("schema");
    let dir = Dir::new();
    let ws = dir.path().join("workspace.toml");
    let out = mirage(
        &[
            "init",
            "--no-scan",
            "--source",
            &pg.url("src"),
            "--destination",
            &pg.url("dst"),
            "-w",
            ws.to_str().unwrap(),
        ],
        "s",
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let text = std::fs::read_to_string(&ws).unwrap();
    assert_eq!(
        text.lines().filter(|l| l.starts_with("[source]")).count(),
        1,
        "a name cannot add a line:\n{text}"
    );
    // Mask `"a.b".c` only, by editing its entry as a user would.
    let key = r#"[tables."\"a.b\".c".columns]"#;
    assert!(text.contains(key), "{text}");
    let at = text.find(key).unwrap();
    let line = "secret = { generator = \"passthrough\"";
    let edited = format!(
        "{}{}",
        &text[..at],
        text[at..].replacen(line, "secret = { generator = \"email\"", 1)
    );
    // Unquoted, `a.b.c` could be either table: refused, not guessed.
    std::fs::write(
        &ws,
        format!("{text}\n[tables.\"a.b.c\".columns]\nsecret = {{ generator = \"email\" }}\n"),
    )
    .unwrap();
    let ambiguous = mirage(&["plan", "-w", ws.to_str().unwrap()], "s");
    assert_eq!(ambiguous.code, 2, "{}", ambiguous.all());
    assert!(
        ambiguous.stderr.contains("is ambiguous"),
        "{}",
        ambiguous.all()
    );
    std::fs::write(&ws, &edited).unwrap();
    let run = mirage(&["run", "-w", ws.to_str().unwrap(), "--no-progress"], "s");
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(
        pg.psql(
            "dst",
            r#"SELECT count(*) FROM "a.b".c WHERE secret LIKE 'left-%'"#
        )
        .unwrap(),
        "0",
        "the table given the generator is masked"
    );
    assert_eq!(
        pg.psql(
            "dst",
            r#"SELECT count(*) FROM a."b.c" WHERE secret LIKE 'right-%'"#
        )
        .unwrap(),
        "20",
        "the other table passes through"
    );
}

#[test]
fn preserve_ownership_copies_owners() {
    let pg = cluster();
    pg.psql("postgres", "CREATE ROLE app_owner").unwrap();
    pg.psql(
        "src",
        "CREATE SCHEMA app AUTHORIZATION app_owner;
         CREATE TABLE app.items (id integer PRIMARY KEY, label text);
         ALTER TABLE app.items OWNER TO app_owner;
         GRANT SELECT ON app.items TO PUBLIC;
         INSERT INTO app.items SELECT i, 'item ' || i FROM generate_series(1, 50) i;",
    )
    .unwrap();
    let dir = Dir::new();
    let ws = workspace(&pg, "[schemas]\ninclude = [\"app\"]\n").replacen(
        "\n\n[run]",
        "\npreserve_ownership = true\n\n[run]",
        1,
    );
    let path = dir.write("workspace.toml", &ws);
    let out = mirage(&["run", "-w", path.to_str().unwrap(), "--no-progress"], "s");
    assert_eq!(out.code, 0, "{}", out.all());
    let owner = "SELECT pg_get_userbyid(relowner) || ' ' || pg_get_userbyid(n.nspowner) || ' ' || \
                 coalesce(relacl::text, '') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE relname = 'items'";
    assert_eq!(
        pg.psql("dst", owner).unwrap(),
        pg.psql("src", owner).unwrap()
    );
    assert!(
        pg.psql("dst", owner)
            .unwrap()
            .starts_with("app_owner app_owner")
    );
    assert_eq!(
        pg.psql("dst", "SELECT count(*) FROM app.items").unwrap(),
        "50"
    );
    // Without it, the destination user owns what it creates.
    let path = dir.write(
        "workspace.toml",
        &ws.replace("preserve_ownership = true", ""),
    );
    let out = mirage(&["run", "-w", path.to_str().unwrap(), "--no-progress"], "s");
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        pg.psql("dst", owner)
            .unwrap()
            .starts_with("postgres postgres")
    );
}

/// What an application needs of the copy at once: foreign keys declared on partitions and on a
/// partitioned parent follow the key's generator (and `plan` says so), populated materialized
/// views are refreshed from the masked rows (unpopulated ones stay so, a view over a view
/// after it), serial and identity sequences move past the remapped keys so inserts with
/// default ids succeed, and '' stays '' while NULL stays NULL.
#[test]
fn the_copy_is_usable_at_once() {
    let pg = cluster();
    pg.psql(
        "src",
        "CREATE EXTENSION citext;
         CREATE SCHEMA ext; CREATE EXTENSION pg_trgm WITH SCHEMA ext;
         CREATE TABLE accounts (id serial PRIMARY KEY, name text, addr2 text, login citext);
         CREATE INDEX accounts_name_trgm ON accounts USING gin (name ext.gin_trgm_ops);
         INSERT INTO accounts (name, addr2) SELECT 'Name ' || i,
             CASE i % 3 WHEN 0 THEN '' WHEN 1 THEN NULL ELSE 'Apt ' || i END
         FROM generate_series(1, 300) i;
         CREATE TABLE people (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, first text, last text);
         INSERT INTO people (first, last) SELECT CASE WHEN i % 10 = 0 THEN '' ELSE 'First' || i END,
             CASE WHEN i % 2 = 0 THEN 'SMITH-' || i ELSE 'Jones' || i END
         FROM generate_series(1, 200) i;
         CREATE TABLE events (id int, account_id int, at date, note text) PARTITION BY RANGE (at);
         CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
         CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')
             PARTITION BY RANGE (at);
         CREATE TABLE events_2025_h1 PARTITION OF events_2025 FOR VALUES FROM ('2025-01-01') TO ('2025-07-01');
         CREATE TABLE events_2025_h2 PARTITION OF events_2025 FOR VALUES FROM ('2025-07-01') TO ('2026-01-01');
         CREATE SCHEMA crm; CREATE TABLE crm.owners (id int PRIMARY KEY);
         ALTER TABLE people ADD COLUMN owner_id int REFERENCES crm.owners (id);
         CREATE SCHEMA arch;
         CREATE TABLE arch.events_2023 PARTITION OF events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
         ALTER TABLE events_2024 ADD FOREIGN KEY (account_id) REFERENCES accounts (id);
         ALTER TABLE events_2025 ADD FOREIGN KEY (account_id) REFERENCES accounts (id);
         INSERT INTO events SELECT i, 1 + i % 300, DATE '2024-06-01' + (i % 400), 'e' FROM generate_series(1, 1000) i;
         CREATE TABLE visits (id int, person_id int REFERENCES people (id), at date) PARTITION BY RANGE (at);
         CREATE TABLE visits_all PARTITION OF visits DEFAULT;
         INSERT INTO visits SELECT i, 1 + i % 200, DATE '2024-01-01' FROM generate_series(1, 500) i;
         CREATE SEQUENCE down_seq INCREMENT BY -1 MINVALUE -2000000000 MAXVALUE -1 START -1;
         CREATE TABLE down (id int PRIMARY KEY DEFAULT nextval('down_seq'), v text);
         INSERT INTO down (v) SELECT 'v' FROM generate_series(1, 300);
         CREATE MATERIALIZED VIEW account_names AS SELECT id, name FROM accounts;
         CREATE MATERIALIZED VIEW name_count AS SELECT count(DISTINCT name) AS n FROM account_names;
         CREATE MATERIALIZED VIEW never_filled AS SELECT id FROM accounts WITH NO DATA;",
    )
    .unwrap();
    let tables = r#"
[tables."public.accounts".columns]
id = { generator = "integer_key" }
name = { generator = "full_name" }
addr2 = { generator = "address", part = "street" }

[tables."public.people".columns]
id = { generator = "integer_key" }
first = { generator = "first_name" }
last = { generator = "last_name" }

[tables."public.events".columns]
note = { generator = "first_name" }

[tables."public.down".columns]
id = { generator = "integer_key" }
"#;
    let dir = Dir::new();
    let ws = dir.write("workspace.toml", &workspace(&pg, tables));
    let plan = mirage(&["plan", "-w", ws.to_str().unwrap()], "s");
    assert_eq!(plan.code, 0, "{}", plan.all());
    for (column, key) in [
        ("account_id", "public.accounts.id"),
        ("person_id", "public.people.id"),
    ] {
        assert!(
            plan.stdout
                .lines()
                .any(|l| l.trim_start().starts_with(column)
                    && l.contains("integer_key")
                    && l.contains(&format!("(from foreign key to {key})"))),
            "{column}:\n{}",
            plan.stdout
        );
    }
    // Each workspace that `plan` must refuse (exit 2), and what the refusal names.
    let refused = |file: &str, extra: &str, says: &str| {
        let path = dir.write(file, &workspace(&pg, &format!("{extra}\n{tables}")));
        let out = mirage(&["plan", "-w", path.to_str().unwrap()], "s");
        assert_eq!(out.code, 2, "{file}: {}", out.all());
        assert!(out.stderr.contains(says), "{file}: {}", out.all());
    };
    // Settings of a partition's own would be ignored: refused, naming the table to use.
    refused(
        "own.toml",
        "[tables.\"public.events_2025_h1\"]\nmode = \"truncate\"",
        "is a partition of public.events",
    );
    // A partition in a schema left out would lose its rows: refused, named.
    refused(
        "partial.toml",
        "[schemas]\nexclude = [\"arch\"]",
        "arch.events_2023 (a partition of public.events)",
    );
    // So is a foreign key into a schema left out: found by plan, not after the load.
    refused(
        "no-crm.toml",
        "[schemas]\nexclude = [\"crm\"]",
        "of public.people references crm.owners",
    );
    let run = mirage(&["run", "-w", ws.to_str().unwrap(), "--no-progress"], "s");
    assert_eq!(run.code, 0, "{}", run.all());
    let q = |sql: &str| pg.psql("dst", sql).unwrap();
    assert_eq!(
        q("SELECT count(*) FROM accounts WHERE login IS NULL"),
        "300"
    );
    assert_eq!(
        q("SELECT count(*) FROM pg_extension WHERE extname IN ('citext', 'pg_trgm')"),
        "2",
        "extensions are created where the source has them"
    );
    // The top table's settings reach the partitions of a sub-partition too.
    assert_eq!(q("SELECT count(*) FROM events WHERE note = 'e'"), "0");
    assert_eq!(
        q("SELECT count(*) FROM events_2025_h2"),
        q("SELECT count(*) FROM events_2025_h2 WHERE note <> 'e'")
    );
    assert_eq!(
        q("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conparentid = 0"),
        "4",
        "every foreign key was built"
    );
    assert_eq!(
        q("SELECT count(*) FROM events e JOIN accounts a ON a.id = e.account_id"),
        "1000"
    );
    assert_eq!(
        q("SELECT count(*) FROM visits v JOIN people p ON p.id = v.person_id"),
        "500"
    );
    // Materialized views.
    assert_eq!(
        q("SELECT count(*) FROM account_names JOIN accounts USING (id, name)"),
        "300",
        "refreshed from the masked rows"
    );
    assert_eq!(
        q("SELECT count(*) FROM account_names WHERE name LIKE 'Name %'"),
        "0"
    );
    assert_eq!(q("SELECT n > 0 FROM name_count"), "t");
    assert_eq!(
        q("SELECT relispopulated FROM pg_class WHERE relname = 'never_filled'"),
        "f"
    );
    // Inserts with default ids, after keys spread over the range.
    q("INSERT INTO accounts (name) SELECT 'new' FROM generate_series(1, 300)");
    q("INSERT INTO people (first) SELECT 'new' FROM generate_series(1, 200)");
    assert_eq!(q("SELECT count(*) FROM accounts"), "600");
    q("INSERT INTO down (v) SELECT 'new' FROM generate_series(1, 300)");
    // '' and NULL kept; everything else masked.
    assert_eq!(q("SELECT count(*) FROM accounts WHERE addr2 = ''"), "100");
    assert_eq!(
        q("SELECT count(*) FROM accounts WHERE addr2 IS NULL AND name <> 'new'"),
        "100"
    );
    assert_eq!(
        q("SELECT count(*) FROM accounts WHERE addr2 LIKE 'Apt %'"),
        "0"
    );
    assert_eq!(q("SELECT count(*) FROM people WHERE first = ''"), "20");
    assert_eq!(
        q("SELECT count(*) FROM people WHERE first LIKE 'First%'"),
        "0"
    );
    // Upper-case names stay upper case; the others keep their mixed case.
    assert_eq!(
        q("SELECT count(*) FROM people WHERE last = upper(last) AND first <> 'new'"),
        "100"
    );
    assert_eq!(
        q("SELECT count(*) FROM people WHERE last LIKE 'SMITH%' OR last LIKE 'Jones%'"),
        "0"
    );
    // A schema the destination refuses half-way (here an event trigger there rejects one
    // table): the failed run leaves the previous copy as it was, schemas and rows.
    pg.psql(
        "dst",
        "CREATE SCHEMA guard; \
         CREATE FUNCTION guard.refuse() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN \
           IF EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands() WHERE object_identity LIKE '%boom') \
           THEN RAISE EXCEPTION 'no boom here'; END IF; END $$; \
         CREATE EVENT TRIGGER refuse ON ddl_command_end EXECUTE FUNCTION guard.refuse();",
    )
    .unwrap();
    pg.psql("src", "CREATE TABLE boom (id int)").unwrap();
    let before = q("SELECT count(*), sum(id) FROM accounts");
    let failed = mirage(&["run", "-w", ws.to_str().unwrap(), "--no-progress"], "s");
    assert_eq!(failed.code, 1, "{}", failed.all());
    assert_eq!(q("SELECT count(*), sum(id) FROM accounts"), before);
    assert_eq!(q("SELECT count(*) FROM account_names"), "300");
}

/// TLS as libpq documents it, against a server that refuses plain TCP and one without TLS:
/// each `sslmode`, a CA file, a certificate for another host name (`verify-full` fails,
/// `verify-ca` passes), another CA, a client certificate; `pg_dump`/`pg_restore` get the same
/// settings (the server takes no plain connection, so a run that completes used TLS end to
/// end). No key material in any output.
#[test]
fn tls_connections_follow_sslmode() {
    let tls = cluster();
    let certs = tls.enable_tls().expect("TLS");
    tls.psql("src", "CREATE TABLE t (id int PRIMARY KEY, name text); INSERT INTO t SELECT i, 'n' || i FROM generate_series(1, 100) i")
        .unwrap();
    let plain = cluster();
    plain
        .psql("src", "CREATE TABLE t (id int PRIMARY KEY)")
        .unwrap();
    let dir = Dir::new();
    let file = |f: &str| certs.join(f).display().to_string();
    let key = std::fs::read_to_string(certs.join("client.key")).unwrap();
    let key_line = key.lines().nth(1).unwrap().to_string();
    let run = |pg: &PgCluster, user: &str, query: &str| {
        let ws = dir.write(
            "workspace.toml",
            &format!(
                "[source]\nurl = \"{}?{query}\"\n\n[run]\nunreviewed = \"passthrough\"\n[destination]\nurl = \"{}?{query}\"\n",
                pg.url_as(user, "src"),
                pg.url_as(user, "dst")
            ),
        );
        let out = mirage(&["run", "-w", ws.to_str().unwrap(), "--no-progress"], "s");
        assert!(
            !out.all().contains(&key_line) && !out.all().contains("PRIVATE KEY"),
            "{query}: {}",
            out.all()
        );
        out
    };
    let ca = format!("sslrootcert={}", file("ca.crt"));
    // A certificate the settings refuse is a setting to fix (exit 2), as a refused login.
    for (query, code, says) in [
        (String::new(), 0, ""),
        ("sslmode=require".into(), 0, ""),
        (format!("sslmode=verify-ca&{ca}"), 0, ""),
        ("sslmode=disable".into(), 2, "no encryption"),
        (
            format!("sslmode=verify-full&{ca}"),
            2,
            "does not name the host in source.url",
        ),
        (
            "sslmode=disable".into(),
            2,
            "accepts only TLS connections: use sslmode=require",
        ),
        (
            format!("sslmode=verify-ca&sslrootcert={}", file("other-ca.crt")),
            2,
            "certificate",
        ),
        (
            "sslmode=verify-ca".into(),
            2,
            "give the CA that signed it as sslrootcert",
        ),
        ("sslmode=strict".into(), 2, "sslmode=strict"),
        (
            "sslcrl=/x.pem".into(),
            2,
            "parameter sslcrl is not one mirage reads",
        ),
        // A second, encoded sslmode would have turned TLS off for pg_dump alone.
        (
            format!("sslmode=verify-ca&{ca}&sslm%6Fde=disable"),
            2,
            "sslmode is given twice",
        ),
    ] {
        let out = run(&tls, "postgres", &query);
        assert_eq!(out.code, code, "{query}: {}", out.all());
        assert!(out.all().contains(says), "{query}: {}", out.all());
    }
    // A client certificate: certuser logs in with it, and only with it.
    let client = format!(
        "sslmode=verify-ca&{ca}&sslcert={}&sslkey={}",
        file("client.crt"),
        file("client.key")
    );
    // A key others can read is refused, as libpq refuses it.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        certs.join("client.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = run(&tls, "certuser", &client);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.all().contains("chmod 0600"), "{}", out.all());
    std::fs::set_permissions(
        certs.join("client.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let out = run(&tls, "certuser", &client);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(tls.psql("dst", "SELECT count(*) FROM t").unwrap(), "100");
    let out = run(&tls, "certuser", &format!("sslmode=verify-ca&{ca}"));
    assert_ne!(out.code, 0, "{}", out.all());
    // The report says whether the connections were encrypted.
    let tls_of = |out: &crate::util::Run| {
        let path = out
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("report: "))
            .expect("a report line")
            .to_string();
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        (
            report["source_tls"].clone(),
            report["destination_tls"].clone(),
        )
    };
    assert_eq!(
        tls_of(&run(&tls, "postgres", "")),
        (true.into(), true.into())
    );
    // A Unix socket never uses TLS (as libpq), whatever sslmode says.
    let socket = dir.write(
        "socket.toml",
        &format!(
            "[source]\nurl = \"postgres:///src?host={dir}&port={port}&user=postgres&sslmode=require\"\n\n\
             [run]\nunreviewed = \"passthrough\"\n[destination]\nurl = \"postgres:///dst?host={dir}&port={port}&user=postgres\"\n",
            dir = plain.path().display(),
            port = plain.port()
        ),
    );
    let out = mirage(
        &["run", "-w", socket.to_str().unwrap(), "--no-progress"],
        "s",
    );
    assert_eq!(out.code, 0, "{}", out.all());
    // A server without TLS: prefer falls back to plain TCP, require refuses.
    let out = run(&plain, "postgres", "");
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(tls_of(&out), (false.into(), false.into()));
    let out = run(&plain, "postgres", "sslmode=require");
    assert_ne!(out.code, 0, "{}", out.all());
}
