//! `mirage scan` and the guard against unreviewed columns, on PostgreSQL and on the Redshift
//! emulator: same findings for the same data, `--write` that keeps the file, runs stopped,
//! nulled or warned about for columns nobody decided about, and no sampled value in any output.

use crate::redshift::Redshift;
use crate::util::{Dir, cluster, mirage, workspace};
use serde_json::Value;
use std::collections::BTreeMap;

/// In every sensitive value: it must never show up in an output.
const CANARY: &str = "zq7canary";

const FIRST: &[&str] = &[
    "Maria", "John", "Wei", "Olivia", "Ahmed", "Sofia", "Lucas", "Emma", "Carlos", "Hannah",
];
const LAST: &[&str] = &[
    "Garcia", "Smith", "Chen", "Brown", "Khan", "Rossi", "Silva", "Muller", "Lopez", "Nguyen",
];

/// The same table and rows for PostgreSQL and Redshift: columns with meaningless,
/// abbreviated and misleading names, and decoys.
fn people_sql() -> String {
    let mut sql = String::from(
        "CREATE SCHEMA people;\n\
         CREATE TABLE people.contacts (id INTEGER NOT NULL PRIMARY KEY, c1 VARCHAR(120), \
         fname VARCHAR(40), surname VARCHAR(40), tel VARCHAR(30), x9 VARCHAR(11), pc VARCHAR(7), \
         notes VARCHAR(300), born DATE, ip VARCHAR(45), ref_code VARCHAR(20), order_no BIGINT, \
         ver VARCHAR(20), digest VARCHAR(32), ua VARCHAR(36));\n",
    );
    let mut rows = Vec::new();
    for i in 0..80u32 {
        let (f, l) = (FIRST[i as usize % 10], LAST[(i as usize * 3) % 10]);
        let note = if i % 4 == 0 {
            format!(
                "Asked to be called back, wrote from {}.{CANARY}{i}@example.com",
                f.to_lowercase()
            )
        } else {
            format!("Order {i} shipped on time, nothing else to report here")
        };
        rows.push(format!(
            "({i}, '{}.{}{CANARY}{i}@example.com', '{f}', '{l}', '+1 415-{:03}-{:04}', '{:03}-{:02}-{:04}', \
             'K{}A {}B{}', '{note}', DATE '{}-{:02}-{:02}', '81.{}.{}.{}', 'SKU-{:05}-X', {}, '1.{}.{}', \
             '{:032x}', '{:08x}-1234-4abc-8def-{:012x}')",
            f.to_lowercase(),
            l.to_lowercase(),
            200 + i,
            1000 + i * 7,
            101 + i,
            10 + i % 80,
            1000 + i,
            i % 10,
            i % 10,
            (i * 7) % 10,
            1950 + (i * 7) % 50,
            1 + i % 12,
            1 + i % 28,
            i % 200,
            (i * 3) % 256,
            200 - i,
            i,
            100_000 + i,
            i % 10,
            i % 7,
            u128::from(i) * 0x9e3779b97f4a7c15,
            (u64::from(i) * 2654435761) & 0xffff_ffff,
            u64::from(i) * 0x1234567
        ));
    }
    sql.push_str(&format!(
        "INSERT INTO people.contacts VALUES {};\n",
        rows.join(",\n")
    ));
    sql
}

/// `mirage scan --format json` findings by column: kind (or "-").
fn kinds(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            assert!(
                v["confidence"].is_number() && v["evidence"].is_array(),
                "{l}"
            );
            assert!(v["suggested"]["generator"].is_string(), "{l}");
            (
                format!(
                    "{}.{}",
                    v["table"].as_str().unwrap(),
                    v["column"].as_str().unwrap()
                ),
                v["kind"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect()
}

fn expected() -> BTreeMap<String, String> {
    [
        ("id", "-"),
        ("c1", "email"),
        ("fname", "first_name"),
        ("surname", "last_name"),
        ("tel", "phone"),
        ("x9", "us_ssn"),
        ("pc", "postal_code"),
        ("notes", "free_text"),
        ("born", "date_of_birth"),
        ("ip", "ip_address"),
        ("ref_code", "-"),
        ("order_no", "-"),
        ("ver", "-"),
        ("digest", "-"),
        ("ua", "-"),
    ]
    .iter()
    .map(|(c, k)| (format!("people.contacts.{c}"), k.to_string()))
    .collect()
}

#[test]
fn scan_finds_the_same_on_postgresql_and_redshift_and_never_prints_a_value() {
    let sql = people_sql();
    // PostgreSQL.
    let pg = cluster();
    pg.psql("src", &sql).unwrap();
    let dir = Dir::new();
    let ws = dir.write(
        "workspace.toml",
        &workspace(&pg, "[schemas]\ninclude = [\"people\"]\n"),
    );
    let ws = ws.to_str().unwrap();
    let json = mirage(&["scan", "-w", ws, "--format", "json"], "s");
    assert_eq!(json.code, 0, "{}", json.all());
    let on_pg = kinds(&json.stdout);
    assert_eq!(on_pg, expected(), "{}", json.stdout);
    let text = mirage(&["scan", "-w", ws, "--sample", "50"], "s");
    assert_eq!(text.code, 0, "{}", text.all());
    assert!(text.stdout.contains("people.contacts.c1") && text.stdout.contains("email"));
    assert!(
        text.stdout.contains("of 50"),
        "the sample is bounded: {}",
        text.stdout
    );
    // A big table is sampled, not read whole: TABLESAMPLE over its pages, capped by the limit.
    pg.psql(
        "src",
        "CREATE SCHEMA bulk; CREATE TABLE bulk.events (id BIGINT, email TEXT); \
         INSERT INTO bulk.events SELECT i, 'u' || i || '@example.com' FROM generate_series(1, 60000) i; \
         ANALYZE bulk.events;",
    )
    .unwrap();
    let bulk = dir.write(
        "bulk.toml",
        &workspace(&pg, "[schemas]\ninclude = [\"bulk\"]\n"),
    );
    let sampled = mirage(
        &[
            "scan",
            "-w",
            bulk.to_str().unwrap(),
            "--format",
            "json",
            "--sample",
            "100",
        ],
        "s",
    );
    assert_eq!(sampled.code, 0, "{}", sampled.all());
    for line in sampled.stdout.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["sampled"], 100, "{line}");
    }
    assert!(
        sampled.stdout.contains("\"kind\":\"email\""),
        "{}",
        sampled.stdout
    );
    // Redshift (the emulator): the same rows, the same findings.
    let rs = Redshift::start();
    rs.sql("src", &sql);
    rs.sql(
        "src",
        "GRANT USAGE ON SCHEMA people TO src_user; GRANT SELECT ON ALL TABLES IN SCHEMA people TO src_user;",
    );
    let rdir = Dir::new();
    let rws = rs.workspace_urls(
        &rdir,
        &rs.url("src_user", "src"),
        &rs.url("dst_user", "dst"),
        "[schemas]\ninclude = [\"people\"]",
        "",
    );
    let out = rs
        .mirage(
            &["scan", "-w", rws.to_str().unwrap(), "--format", "json"],
            "s",
        )
        .output()
        .unwrap();
    let rjson: crate::util::Run = out.into();
    assert_eq!(rjson.code, 0, "{}", rjson.all());
    assert_eq!(kinds(&rjson.stdout), on_pg, "{}", rjson.stdout);
    for run in [&json, &text, &rjson] {
        assert!(
            !run.all().contains(CANARY),
            "a sampled value leaked: {}",
            run.all()
        );
        assert!(
            !run.all().contains("Garcia") && !run.all().contains("415-2"),
            "{}",
            run.all()
        );
    }
}

#[test]
fn scan_write_adds_commented_entries_and_keeps_the_file() {
    let pg = cluster();
    pg.psql("src", &people_sql()).unwrap();
    pg.psql(
        "src",
        "CREATE TABLE people.calls (id INTEGER PRIMARY KEY, contact_id INTEGER REFERENCES people.contacts(id), \
         placed_at TIMESTAMP); INSERT INTO people.calls SELECT i, i % 80, TIMESTAMP '2024-01-01' + i * INTERVAL '1 hour' \
         FROM generate_series(1, 40) i;",
    )
    .unwrap();
    let dir = Dir::new();
    let by_hand = "# my own notes: keep me\n[tables.\"people.contacts\".columns]\n\
                   fname = { generator = \"first_name\" }   # chosen by hand\n";
    let path = dir.write(
        "workspace.toml",
        &workspace(
            &pg,
            &format!("[schemas]\ninclude = [\"people\"]\n\n{by_hand}"),
        )
        .replace("unreviewed = \"passthrough\"", "unreviewed = \"fail\""),
    );
    let ws = path.to_str().unwrap();
    let before = std::fs::read_to_string(&path).unwrap();
    let write = mirage(&["scan", "-w", ws, "--write"], "s");
    assert_eq!(write.code, 0, "{}", write.all());
    assert!(!write.all().contains(CANARY), "{}", write.all());
    let after = std::fs::read_to_string(&path).unwrap();
    assert!(!after.contains(CANARY), "{after}");
    // What was there is there, as it was.
    for line in before.lines().filter(|l| !l.trim().is_empty()) {
        assert!(after.contains(line), "lost `{line}`:\n{after}");
    }
    let parsed: toml::Table = toml::from_str(&after).unwrap_or_else(|e| panic!("{e}\n{after}"));
    let contacts = &parsed["tables"]["people.contacts"]["columns"];
    let generator = |t: &toml::Value, c: &str| t[c]["generator"].as_str().unwrap().to_string();
    assert_eq!(
        generator(contacts, "fname"),
        "first_name",
        "kept as written"
    );
    assert_eq!(generator(contacts, "c1"), "email");
    assert_eq!(generator(contacts, "x9"), "ssn");
    assert_eq!(generator(contacts, "surname"), "last_name");
    assert_eq!(generator(contacts, "ref_code"), "passthrough");
    assert_eq!(
        contacts["c1"]["type"].as_str(),
        Some("character varying(120)")
    );
    assert!(
        after.contains(
            "c1 = { generator = \"email\", type = \"character varying(120)\" }  # scan: email, "
        ),
        "{after}"
    );
    // A foreign key follows its key; the new table is listed whole.
    let calls = &parsed["tables"]["people.calls"]["columns"];
    assert_eq!(generator(calls, "contact_id"), "passthrough");
    assert!(
        after.contains("foreign key to people.contacts.id"),
        "{after}"
    );
    assert_eq!(calls.as_table().unwrap().len(), 3);
    // The workspace is now fully reviewed: the guard lets it run, and the masked column differs.
    let plan = mirage(&["plan", "-w", ws], "s");
    assert_eq!(plan.code, 0, "{}", plan.all());
    let run = mirage(&["run", "-w", ws, "--no-progress"], "s");
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(
        pg.psql(
            "dst",
            &format!("SELECT count(*) FROM people.contacts WHERE c1 LIKE '%{CANARY}%'")
        )
        .unwrap(),
        "0"
    );
    assert_eq!(
        pg.psql(
            "dst",
            "SELECT count(*) FROM people.calls c JOIN people.contacts p ON p.id = c.contact_id"
        )
        .unwrap(),
        pg.psql(
            "src",
            "SELECT count(*) FROM people.calls c JOIN people.contacts p ON p.id = c.contact_id"
        )
        .unwrap(),
        "the foreign key still joins"
    );
    // Nothing left to add the second time.
    let again = mirage(&["scan", "-w", ws, "--write"], "s");
    assert_eq!(again.code, 0, "{}", again.all());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), after);
    // A read-only workspace is not replaced.
    pg.psql(
        "src",
        "ALTER TABLE people.calls ADD COLUMN caller_email TEXT",
    )
    .unwrap();
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&path, perms).unwrap();
    let refused = mirage(&["scan", "-w", ws, "--write"], "s");
    assert_eq!(refused.code, 2, "{}", refused.all());
    assert!(refused.stderr.contains("read-only"), "{}", refused.all());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), after);
}

/// `mirage plan --format json`.
fn plan_json(ws: &str) -> (i32, Value) {
    let plan = mirage(&["plan", "-w", ws, "--format", "json"], "s");
    let v: Value =
        serde_json::from_str(&plan.stdout).unwrap_or_else(|e| panic!("{e}: {}", plan.all()));
    (plan.code, v)
}

#[test]
fn unreviewed_columns_stop_the_run_or_are_nulled_or_copied_with_a_warning() {
    let pg = cluster();
    pg.psql(
        "src",
        "CREATE TABLE public.customers (id INTEGER PRIMARY KEY, name TEXT, score NUMERIC(6,2)); \
         INSERT INTO public.customers SELECT i, 'n' || i, i / 4.0 FROM generate_series(1, 50) i;",
    )
    .unwrap();
    let dir = Dir::new();
    let path = dir.path().join("workspace.toml");
    let ws = path.to_str().unwrap();
    let init = mirage(
        &[
            "init",
            "--source",
            &pg.url("src"),
            "--destination",
            &pg.url("dst"),
            "-w",
            ws,
        ],
        "s",
    );
    assert_eq!(init.code, 0, "{}", init.all());
    let (code, clean) = plan_json(ws);
    assert_eq!(code, 0, "a fresh workspace is fully reviewed: {clean:#}");
    assert_eq!(clean["changes"], serde_json::json!([]));
    let reviewed = std::fs::read_to_string(&path).unwrap();

    // A developer adds tax_id to production.
    pg.psql(
        "src",
        "ALTER TABLE public.customers ADD COLUMN tax_id TEXT; \
         UPDATE public.customers SET tax_id = lpad((100 + id)::text, 3, '0') || '-45-' || lpad((6000 + id)::text, 4, '0');",
    )
    .unwrap();
    let run = mirage(&["run", "-w", ws, "--no-progress"], "s");
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("tax_id") && run.stderr.contains("us_ssn"),
        "{}",
        run.all()
    );
    assert!(
        !run.all().contains("-45-6"),
        "no sampled value: {}",
        run.all()
    );
    assert_eq!(
        pg.psql(
            "dst",
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        )
        .unwrap(),
        "0",
        "nothing written"
    );
    let (code, diff) = plan_json(ws);
    assert_eq!(code, 2);
    let change = &diff["changes"][0];
    assert_eq!(change["change"], "new_column", "{diff:#}");
    assert_eq!(change["column"], "tax_id");
    assert_eq!(change["verdict"]["kind"], "us_ssn");
    assert!(!diff.to_string().contains("-45-6"));

    // "null": the column arrives empty.
    std::fs::write(
        &path,
        reviewed.replace("unreviewed = \"fail\"", "unreviewed = \"null\""),
    )
    .unwrap();
    let run = mirage(&["run", "-w", ws, "--no-progress"], "s");
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(
        pg.psql(
            "dst",
            "SELECT count(*), count(tax_id) FROM public.customers"
        )
        .unwrap(),
        "50|0"
    );
    assert!(
        run.all().contains("tax_id") && run.all().contains("written as NULL"),
        "{}",
        run.all()
    );
    // … but a NOT NULL one cannot be nulled.
    pg.psql(
        "src",
        "ALTER TABLE public.customers ADD COLUMN pin TEXT NOT NULL DEFAULT '0000'",
    )
    .unwrap();
    let run = mirage(&["run", "-w", ws, "--no-progress"], "s");
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("pin") && run.stderr.contains("NOT NULL"),
        "{}",
        run.all()
    );
    pg.psql("src", "ALTER TABLE public.customers DROP COLUMN pin")
        .unwrap();

    // "passthrough": copied as today, with a warning naming the column.
    std::fs::write(
        &path,
        reviewed.replace("unreviewed = \"fail\"", "unreviewed = \"passthrough\""),
    )
    .unwrap();
    let run = mirage(&["run", "-w", ws, "--no-progress"], "s");
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.all().contains("warning") && run.all().contains("tax_id"),
        "{}",
        run.all()
    );
    assert_eq!(
        pg.psql(
            "dst",
            "SELECT count(*) FROM public.customers WHERE tax_id LIKE '%-45-%'"
        )
        .unwrap(),
        "50"
    );

    // A changed type and a dropped column are in the diff, and stop the plan.
    std::fs::write(&path, &reviewed).unwrap();
    pg.psql(
        "src",
        "ALTER TABLE public.customers DROP COLUMN tax_id; ALTER TABLE public.customers ALTER COLUMN score TYPE TEXT; \
         ALTER TABLE public.customers DROP COLUMN name;",
    )
    .unwrap();
    let (code, diff) = plan_json(ws);
    assert_eq!(code, 2, "{diff:#}");
    let changes = diff["changes"].as_array().unwrap();
    let find = |kind: &str, column: &str| {
        changes
            .iter()
            .find(|c| c["change"] == kind && c["column"] == column)
            .unwrap_or_else(|| panic!("no {kind} of {column}: {diff:#}"))
    };
    let typed = find("type_changed", "score");
    assert_eq!(typed["was"], "numeric(6,2)");
    assert_eq!(typed["type"], "text");
    find("dropped_column", "name");
    assert_eq!(diff["ok"], false);
    assert!(
        diff["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().contains("changed type")),
        "{diff:#}"
    );
}
