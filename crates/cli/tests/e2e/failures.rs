//! Failures: what users see when a table cannot be loaded, the workspace is wrong, or a server
//! is unreachable.

use crate::util::{Dir, cluster, mirage, workspace};
use std::process::Command;

const SCHEMA: &str = "
CREATE TABLE small (id integer PRIMARY KEY, name text);
CREATE TABLE big (id integer PRIMARY KEY, code integer, name text);
INSERT INTO small SELECT i, 'n' || i FROM generate_series(1, 100) i;
INSERT INTO big SELECT i, 900000 + i, 'n' || i FROM generate_series(1, 5000) i;
";

#[test]
fn a_failing_generator_leaves_its_table_unloaded_and_says_so() {
    let pg = cluster();
    pg.psql("src", SCHEMA).unwrap();
    // Rows after 4000 fall outside the configured key range: the generator fails mid-table,
    // after several parts were already streamed into the destination.
    let tables = r#"
[tables."public.big".columns]
code = { generator = "integer_key", min = 900001, max = 904000 }
name = { generator = "full_name" }
"#;
    let dir = Dir::new();
    let ws = dir.write("workspace.toml", &workspace(&pg, tables));
    let out = mirage(&["run", "-w", ws.to_str().unwrap(), "--no-progress"], "s");
    assert_eq!(out.code, 1, "{}", out.all());
    let all = out.all();
    assert!(all.contains("public.big"), "{all}");
    assert!(all.contains("column code, row 4001"), "{all}");
    assert!(all.contains("completed tables (1): public.small"), "{all}");
    assert!(!all.contains("904001"), "no value in messages: {all}");
    assert_eq!(pg.psql("dst", "SELECT count(*) FROM big").unwrap(), "0");
    assert_eq!(pg.psql("dst", "SELECT count(*) FROM small").unwrap(), "100");
    let report = std::fs::read_dir(dir.path().join(".mirage/jobs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.path()).unwrap()).unwrap();
    assert_eq!(json["status"], "failed");
}

#[test]
fn workspace_mistakes_name_the_line_and_suggest() {
    let pg = cluster();
    pg.psql("src", SCHEMA).unwrap();
    let tables = r#"
[tables."public.smal".columns]
id = { generator = "integer_key" }

[tables."public.big".columns]
nmae = { generator = "full_name" }
code = { generator = "emial" }
id = { generator = "email" }
"#;
    let dir = Dir::new();
    let ws = dir.write("workspace.toml", &workspace(&pg, tables));
    let out = mirage(&["plan", "-w", ws.to_str().unwrap()], "s");
    assert_eq!(out.code, 2, "{}", out.all());
    let e = &out.stderr;
    let text = std::fs::read_to_string(&ws).unwrap();
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    assert!(
        e.contains(&format!("workspace.toml:{}", line_of("public.smal"))),
        "{e}"
    );
    assert!(e.contains("did you mean `public.small`"), "{e}");
    assert!(
        e.contains(&format!(
            ":{}: tables.\"public.big\".columns.nmae",
            line_of("nmae")
        )),
        "{e}"
    );
    assert!(e.contains("did you mean `name`"), "{e}");
    assert!(
        e.contains("unknown generator `emial`") && e.contains("did you mean `email`"),
        "{e}"
    );
    assert!(
        e.contains(&format!(":{}:", line_of("generator = \"email\""))),
        "{e}"
    );
    assert!(e.contains("does not work on type integer"), "{e}");

    // A syntax-level mistake: unknown key in [run].
    let bad = workspace(&pg, "").replace("parallelism", "paralelism");
    let ws = dir.write("workspace.toml", &bad);
    let out = mirage(&["plan", "-w", ws.to_str().unwrap()], "s");
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("did you mean `parallelism`"),
        "{}",
        out.stderr
    );

    // No seed in the environment.
    let ws = dir.write("workspace.toml", &workspace(&pg, ""));
    let out = Command::new(env!("CARGO_BIN_EXE_mirage"))
        .args(["run", "-w", ws.to_str().unwrap()])
        .env_remove("MIRAGE_SEED")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("MIRAGE_SEED"));
}

#[test]
fn unreachable_source_and_same_database_are_refused() {
    let pg = cluster();
    pg.psql("src", SCHEMA).unwrap();
    let dir = Dir::new();
    // Nothing listens on the port of a closed listener.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ws = workspace(&pg, "").replace(
        &pg.url("src"),
        &format!("postgres://postgres@127.0.0.1:{port}/src"),
    );
    let path = dir.write("workspace.toml", &ws);
    let out = mirage(&["run", "-w", path.to_str().unwrap(), "--no-progress"], "s");
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains("cannot connect to the source"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!("127.0.0.1:{port}/src")),
        "{}",
        out.stderr
    );

    // Destination = source (spelled differently) is refused before anything is written.
    let ws = workspace(&pg, "").replace(
        &pg.url("dst"),
        &format!("postgresql://postgres@localhost:{}/src", pg.port()),
    );
    let path = dir.write("workspace.toml", &ws);
    let out = mirage(&["run", "-w", path.to_str().unwrap(), "--no-progress"], "s");
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr.contains("same database as the source"),
        "{}",
        out.stderr
    );
    assert_eq!(pg.psql("src", "SELECT count(*) FROM big").unwrap(), "5000");
}

#[test]
fn interrupting_a_run_leaves_each_table_loaded_or_empty() {
    // Ctrl-C, and SIGTERM (timeout, docker stop, CI) the same way.
    for signal in ["-INT", "-TERM"] {
        interrupt_with(signal);
    }
}

fn interrupt_with(signal: &str) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let pg = cluster();
    pg.psql(
        "src",
        "CREATE TABLE big (id integer PRIMARY KEY, name text, note text);
         INSERT INTO big SELECT i, 'name ' || i, repeat('x', 40) FROM generate_series(1, 400000) i;
         CREATE TABLE small (id integer PRIMARY KEY);
         INSERT INTO small SELECT generate_series(1, 10);",
    )
    .unwrap();
    let tables = "[tables.\"public.big\".columns]\nname = { generator = \"full_name\" }\n";
    let dir = Dir::new();
    let ws = dir.write("workspace.toml", &workspace(&pg, tables));
    // What a killed run left: its schema dump folder (its process is gone).
    let stale = std::env::temp_dir().join("mirage-schema-4194999-stale");
    std::fs::create_dir_all(&stale).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mirage"))
        .args(["run", "-w", ws.to_str().unwrap(), "--no-progress"])
        .env("MIRAGE_SEED", crate::util::seed("s"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once rows of `big` are flowing.
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("started") && line.contains("public.big") {
            break;
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let child_id = child.id();
    let out = child.wait_with_output().unwrap();
    let all = format!(
        "{seen}{}\n{}",
        rest.join("\n"),
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(out.status.code(), Some(130), "{signal}: {all}");
    assert!(
        !stale.exists(),
        "a dead process's schema dump folder is removed"
    );
    let own = format!("mirage-schema-{}-", child_id);
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&own))
        .collect();
    assert!(
        left.is_empty(),
        "{signal}: the run's dump folder is removed: {left:?}"
    );
    assert!(all.contains("canceled"), "{all}");
    let big = pg.psql("dst", "SELECT count(*) FROM big").unwrap();
    assert!(
        big == "0" || big == "400000",
        "big is half-loaded: {big} rows\n{all}"
    );
    let small = pg.psql("dst", "SELECT count(*) FROM small").unwrap();
    assert!(small == "0" || small == "10", "small: {small}");
}

/// A table reported loaded survives a crash of the destination server right after the report
/// (its commit was durable), even on a server whose default is asynchronous commit.
#[test]
fn a_table_reported_loaded_survives_a_destination_crash() {
    use mirage_testkit::PgCluster;
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let src = cluster();
    let dst = PgCluster::start().expect("destination cluster");
    dst.create_database("dst").expect("dst");
    let mut sql = String::new();
    for t in 1..=4 {
        sql += &format!(
            "CREATE TABLE t{t} (id integer PRIMARY KEY, name text);
             INSERT INTO t{t} SELECT i, 'name ' || i FROM generate_series(1, 60000) i;"
        );
    }
    src.psql("src", &sql).unwrap();
    let dir = Dir::new();
    let ws = dir.write(
        "workspace.toml",
        &format!(
            "[source]\nurl = \"{}\"\n\n[destination]\nurl = \"{}\"\n\n[run]\nunreviewed = \"passthrough\"\nparallelism = 1\n\n\
             [tables.\"public.t1\".columns]\nname = {{ generator = \"full_name\" }}\n",
            src.url("src"),
            dst.url("dst")
        ),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_mirage"))
        .args(["run", "-w", ws.to_str().unwrap(), "--no-progress"])
        .env("MIRAGE_SEED", crate::util::seed("crash-seed"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut loaded = None;
    let mut seen = String::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if let Some(t) = line
            .strip_prefix("public.")
            .and_then(|l| l.split_once(" loaded: 60000 rows"))
        {
            loaded = Some(t.0.to_string());
            break;
        }
    }
    let table = loaded.unwrap_or_else(|| panic!("no table reported loaded:\n{seen}"));
    dst.crash_and_restart().expect("crash and restart");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        dst.psql("dst", &format!("SELECT count(*) FROM public.{table}"))
            .unwrap(),
        "60000",
        "{table} was reported loaded before the crash:\n{seen}"
    );
}

/// Start `mirage run` on `ws` and return once a table has started loading.
fn running(ws: &std::path::Path) -> std::process::Child {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_mirage"))
        .args(["run", "-w", ws.to_str().unwrap(), "--no-progress"])
        .env("MIRAGE_SEED", crate::util::seed("first"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    for line in lines.by_ref() {
        if line.unwrap().contains("started") {
            break;
        }
    }
    // Keep reading (and dropping) its output so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    child
}

/// Two runs at once on one destination: the second stops before writing (exit 2) and names the
/// job holding it; the first completes untouched; a killed holder frees the destination. For a
/// PostgreSQL destination (advisory lock) and a files destination (lock file), where a killed
/// job's partial files are removed by the next run.
#[test]
fn a_second_run_on_a_destination_in_use_stops_before_writing() {
    let pg = cluster();
    pg.psql(
        "src",
        "CREATE TABLE big (id integer PRIMARY KEY, name text, note text);
         INSERT INTO big SELECT i, 'name ' || i, repeat('x', 60) FROM generate_series(1, 400000) i;",
    )
    .unwrap();
    let tables = "[tables.\"public.big\".columns]\nname = { generator = \"full_name\" }\n";
    let dir = Dir::new();
    let ws = dir.write("workspace.toml", &workspace(&pg, tables));
    crate::util::dataset(dir.path(), "fsrc", "big", "name", 1_500_000);
    let files_ws = dir.write(
        "files.toml",
        &format!(
            "[source]\nurl = \"files:./fsrc\"\n\n[run]\nunreviewed = \"passthrough\"\n[destination]\nurl = \"files:./out\"\n\n{tables}"
        ),
    );
    for (what, ws) in [("PostgreSQL", &ws), ("files", &files_ws)] {
        let mut first = running(ws);
        let second = mirage(&["run", "-w", ws.to_str().unwrap()], "second");
        assert_eq!(second.code, 2, "{what}: {}", second.all());
        assert!(
            second.all().contains("is in use by") && second.all().contains("mirage 20")
                || second.all().contains("is in use by job 20"),
            "{what}: the holder is named: {}",
            second.all()
        );
        assert!(
            second.all().contains("nothing was written"),
            "{what}: {}",
            second.all()
        );
        let status = first.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{what}: the first run completes");
        // A holder killed with -9 frees the destination; its partial files go.
        let first = running(ws);
        std::thread::sleep(std::time::Duration::from_millis(300));
        Command::new("kill")
            .args(["-9", &first.id().to_string()])
            .status()
            .unwrap();
        let mut first = first;
        let _ = first.wait();
        let again = mirage(&["run", "-w", ws.to_str().unwrap()], "second");
        assert_eq!(again.code, 0, "{what}: after kill -9: {}", again.all());
    }
    assert_eq!(
        pg.psql("dst", "SELECT count(*) FROM big").unwrap(),
        "400000"
    );
    let left: Vec<String> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial") || n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "partial files left: {left:?}");
}

/// `include` naming a schema the source does not have is a workspace mistake (exit 2), not a
/// job that silently copies nothing of it.
#[test]
fn including_a_schema_the_source_lacks_is_refused() {
    let pg = cluster();
    pg.psql("src", SCHEMA).unwrap();
    let dir = Dir::new();
    let ws = dir.write(
        "workspace.toml",
        &workspace(&pg, "").replace(
            "[run]",
            "[schemas]\ninclude = [\"public\", \"pubic\"]\n\n[run]",
        ),
    );
    for cmd in ["plan", "run"] {
        let out = mirage(&[cmd, "-w", ws.to_str().unwrap()], "s");
        assert_eq!(out.code, 2, "{cmd}: {}", out.all());
        assert!(
            out.all().contains("schemas.include") && out.all().contains("no schema pubic"),
            "{cmd}: {}",
            out.all()
        );
    }
    nothing_written(&pg);
}

/// Bad input found before anything is written exits with 2 and names what to fix: a weak seed
/// (never shown), a URL without a database, a preserved table the destination lacks.
#[test]
fn bad_input_exits_2_before_writing() {
    let pg = cluster();
    pg.psql("src", SCHEMA).unwrap();
    let dir = Dir::new();
    let ws = dir.write("workspace.toml", &workspace(&pg, ""));
    let ws = ws.to_str().unwrap();
    let weak = Command::new(env!("CARGO_BIN_EXE_mirage"))
        .args(["run", "-w", ws, "--no-progress"])
        .env("MIRAGE_SEED", "tuesday-42")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&weak.stderr);
    assert_eq!(weak.status.code(), Some(2), "{text}");
    assert!(
        text.contains("too short") && text.contains("openssl rand -hex 32"),
        "{text}"
    );
    assert!(!text.contains("tuesday"), "the seed is never shown: {text}");
    let check = Command::new(env!("CARGO_BIN_EXE_mirage"))
        .args(["check", "-w", ws])
        .env("MIRAGE_SEED", "tuesday-42")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(1), "{text}");
    assert!(text.contains("openssl rand -hex 32"), "{text}");

    let no_db = dir.write(
        "no-db.toml",
        &workspace(&pg, "").replace(&pg.url("dst"), &pg.url("dst").replace("/dst", "/")),
    );
    let out = mirage(
        &["run", "-w", no_db.to_str().unwrap(), "--no-progress"],
        "s",
    );
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr.contains("destination.url names no database"),
        "{}",
        out.all()
    );

    let preserved = dir.write(
        "preserved.toml",
        &workspace(
            &pg,
            "[tables.\"public.small\"]\nmode = \"preserve-destination\"\n",
        ),
    );
    let out = mirage(
        &["run", "-w", preserved.to_str().unwrap(), "--no-progress"],
        "s",
    );
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr.contains("preserve-destination") && out.stderr.contains("public.small"),
        "{}",
        out.all()
    );
    nothing_written(&pg);
}

/// A check in the destination that calls user code raising with the value it got: the run
/// fails, and no output (stderr, stdout, JSON events, report) carries the value.
#[test]
fn text_raised_by_user_code_never_reaches_the_output() {
    let pg = cluster();
    let setup = "CREATE FUNCTION chk(v text) RETURNS boolean LANGUAGE plpgsql AS $$
         BEGIN
             IF current_database() = 'dst' AND v LIKE 'CANARY%' THEN
                 RAISE EXCEPTION 'code % is not allowed', v;
             END IF;
             RETURN true;
         END $$;
         CREATE DOMAIN code AS text CHECK (chk(VALUE));
         CREATE TABLE t (id integer PRIMARY KEY, c code);
         INSERT INTO t VALUES (1, 'CANARY9931-secret');";
    pg.psql("src", setup).unwrap();
    let dir = Dir::new();
    let ws = dir.write("workspace.toml", &workspace(&pg, ""));
    // The events as text and JSON, and the debug log.
    for (format, log) in [("text", "warn"), ("json", "warn"), ("text", "debug")] {
        let out = crate::util::mirage_env(
            &["run", "-w", ws.to_str().unwrap(), "--format", format],
            &[("MIRAGE_LOG", log)],
        );
        assert_eq!(out.code, 1, "{}", out.all());
        assert!(out.all().contains("P0001"), "{}", out.all());
        assert!(!out.all().contains("CANARY9931"), "{}", out.all());
    }
    for report in std::fs::read_dir(dir.path().join(".mirage/jobs")).unwrap() {
        let text = std::fs::read_to_string(report.unwrap().path()).unwrap();
        assert!(!text.contains("CANARY9931"), "{text}");
    }
}

/// A files source is checked whole: schema.json that does not parse, a table whose CSV is
/// missing, a name that would climb out of the folder (exit 2, nothing written); a row with too
/// many fields or an unterminated quote in a table without generators (the table fails, named
/// with file and line, its content never shown).
#[test]
fn a_files_source_is_validated_for_every_table() {
    use crate::util::{dataset, files_workspace};
    let dir = Dir::new();
    dataset(dir.path(), "src", "people", "name", 3);
    let ws = files_workspace(&dir, "./src", "./dst", "");
    let src = dir.path().join("src");
    let run = || mirage(&["run", "-w", &ws, "--no-progress"], "s");

    // A CSV missing: named, before anything is written.
    std::fs::remove_file(src.join("public.other.csv")).unwrap();
    let out = run();
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr.contains("public.other.csv does not exist"),
        "{}",
        out.all()
    );
    assert!(!dir.path().join("dst").exists(), "nothing was written");

    // Ragged rows in `other`, which has no generator.
    for (csv, says) in [
        (
            "id\n1\n2,CANARY-9f1\n",
            "public.other.csv, line 3: 2 field(s)",
        ),
        (
            "id\n1\n\"CANARY-9f1\n2\n",
            "line 3: a quoted field is not closed",
        ),
    ] {
        std::fs::write(src.join("public.other.csv"), csv).unwrap();
        let out = crate::util::mirage_env(
            &["run", "-w", &ws, "--no-progress"],
            &[("MIRAGE_LOG", "debug")],
        );
        assert_eq!(out.code, 1, "{}", out.all());
        assert!(out.all().contains(says), "{says}: {}", out.all());
        assert!(!out.all().contains("CANARY"), "{}", out.all());
        assert!(
            !dir.path().join("dst/public.other.csv").exists(),
            "the failed table is not written"
        );
    }
    std::fs::write(src.join("public.other.csv"), "id\n1\n").unwrap();

    // A name that climbs out of the folder is written encoded, inside it.
    let schema = std::fs::read_to_string(src.join("schema.json")).unwrap();
    let hostile = schema.replace("\"other\"", "\"../../escaped\"");
    std::fs::write(src.join("schema.json"), &hostile).unwrap();
    let out = run();
    assert_eq!(out.code, 2, "the encoded file is missing: {}", out.all());
    std::fs::rename(
        src.join("public.other.csv"),
        src.join("public.%2E%2E%2F%2E%2E%2Fescaped.csv"),
    )
    .unwrap();
    let out = run();
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        dir.path()
            .join("dst/public.%2E%2E%2F%2E%2E%2Fescaped.csv")
            .exists()
    );
    assert!(
        !dir.path().join("escaped.csv").exists() && !dir.path().join("dst/escaped.csv").exists()
    );

    // schema.json that does not parse, or lists a table twice.
    for bad in ["{\"tables\": [", &schema.replace("\"other\"", "\"people\"")] {
        std::fs::write(src.join("schema.json"), bad).unwrap();
        let out = run();
        assert_eq!(out.code, 2, "{}", out.all());
        assert!(out.stderr.contains("schema.json"), "{}", out.all());
    }
}

/// Indexes and constraints that cannot build (a unique index over a column masked with one
/// constant): every other object still builds, each table says what did not (names only, never
/// a value), the report lists them, and the job fails.
#[test]
fn a_post_data_failure_is_named_per_table() {
    let pg = cluster();
    pg.psql(
        "src",
        "CREATE TABLE people (id int PRIMARY KEY, email text, code text CONSTRAINT people_code_key UNIQUE);
         CREATE UNIQUE INDEX people_email_idx ON people (email);
         CREATE TABLE notes (id int PRIMARY KEY, person int REFERENCES people (id), body text);
         CREATE INDEX notes_body_idx ON notes (body);
         INSERT INTO people SELECT i, 'p' || i || '@x.org', 'c' || i FROM generate_series(1, 50) i;
         INSERT INTO notes SELECT i, i, 'b' || i FROM generate_series(1, 50) i;",
    )
    .unwrap();
    let dir = Dir::new();
    let tables = r#"
[tables."public.people".columns]
email = { generator = "constant", value = "CANARY-CONST@x.org" }
code = { generator = "constant", value = "CANARY-CODE" }
"#;
    let ws = dir.write("workspace.toml", &workspace(&pg, tables));
    let report = dir.path().join("report.json");
    let out = crate::util::mirage_env(
        &[
            "run",
            "-w",
            ws.to_str().unwrap(),
            "--no-progress",
            "--report",
            report.to_str().unwrap(),
        ],
        &[("MIRAGE_LOG", "debug")],
    );
    assert_eq!(out.code, 1, "{}", out.all());
    let all = out.all();
    assert!(!all.contains("CANARY"), "no value in the output: {all}");
    assert!(
        all.contains("public.people loaded, constraints failed")
            && all.contains("index people_email_idx")
            && all.contains("constraint people_code_key")
            && all.contains("23505"),
        "{all}"
    );
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(!text.contains("CANARY"), "no value in the report: {text}");
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["status"], "failed");
    let table = |name: &str| {
        report["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["table"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(table("public.people")["status"], "post_data_failed");
    let failed: Vec<String> = table("public.people")["post_data_failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        failed,
        ["constraint people_code_key", "index people_email_idx"]
    );
    assert_eq!(table("public.notes")["status"], "loaded");
    // Everything else was built, the rows are in.
    assert_eq!(
        pg.psql(
            "dst",
            "SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_class c \
             WHERE c.relkind = 'i' AND c.relnamespace = 'public'::regnamespace"
        )
        .unwrap(),
        "notes_body_idx,notes_pkey,people_pkey"
    );
    assert_eq!(
        pg.psql(
            "dst",
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f'"
        )
        .unwrap(),
        "1",
        "the foreign key was built"
    );
    assert_eq!(pg.psql("dst", "SELECT count(*) FROM people").unwrap(), "50");
}

/// Stopped at each point of a job — copying the schema, copying rows, building indexes and
/// constraints — by SIGINT, SIGTERM or kill -9, a PostgreSQL job run again gives exactly the
/// reference copy (rows, indexes, foreign keys), and so does a files job stopped mid-rows.
#[test]
fn a_job_stopped_anywhere_then_run_again_gives_the_reference_copy() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let pg = cluster();
    pg.psql(
        "src",
        "CREATE TABLE big (id integer PRIMARY KEY, name text, note text);
         INSERT INTO big SELECT i, 'name ' || i, repeat(md5(i::text), 4) FROM generate_series(1, 250000) i;
         CREATE INDEX big_note_name ON big (note, name);
         CREATE TABLE child (id integer PRIMARY KEY, big_id integer REFERENCES big (id));
         INSERT INTO child SELECT i, i FROM generate_series(1, 1000) i;",
    )
    .unwrap();
    pg.create_database("ref").unwrap();
    let tables = "[tables.\"public.big\".columns]\nid = { generator = \"integer_key\" }\nname = { generator = \"full_name\" }\n";
    let dir = Dir::new();
    let reference = dir.write(
        "reference.toml",
        &workspace(&pg, tables).replace(&pg.url("dst"), &pg.url("ref")),
    );
    let out = mirage(&["run", "-w", reference.to_str().unwrap()], "stop-seed");
    assert_eq!(out.code, 0, "{}", out.all());
    let digest = |db: &str| {
        pg.psql(
            db,
            "SELECT (SELECT md5(string_agg(b::text, ',' ORDER BY id)) FROM big b) || \
             (SELECT md5(string_agg(c::text, ',' ORDER BY id)) FROM child c) || \
             (SELECT string_agg(conname::text || contype::text, ',' ORDER BY conname) FROM pg_constraint \
              WHERE connamespace = 'public'::regnamespace) || \
             (SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE schemaname = 'public')",
        )
        .unwrap()
    };
    let want = digest("ref");
    assert!(want.contains("child_big_id_fkey"), "{want}");
    let ws = dir.write("workspace.toml", &workspace(&pg, tables));
    let building = || {
        pg.psql(
            "dst",
            "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND \
             (query ILIKE 'CREATE INDEX%' OR query ILIKE 'ALTER TABLE%ADD CONSTRAINT%')",
        )
        .unwrap()
            != "0"
    };
    for (signal, point) in [
        ("-9", "schema"),
        ("-INT", "rows"),
        ("-9", "rows"),
        ("-TERM", "post-data"),
        ("-9", "post-data"),
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mirage"))
            .args(["run", "-w", ws.to_str().unwrap(), "--no-progress"])
            .env("MIRAGE_SEED", crate::util::seed("stop-seed"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let wanted = match point {
            "schema" => "copying the schema",
            _ => "public.big started",
        };
        for line in lines.by_ref() {
            if line.unwrap().contains(wanted) {
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        if point == "rows" {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        if point == "post-data" {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while !building() {
                assert!(
                    child.try_wait().unwrap().is_none(),
                    "{signal} {point}: the job ended before its post-data"
                );
                assert!(std::time::Instant::now() < deadline, "no post-data seen");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        if signal != "-9" {
            assert_eq!(status.code(), Some(130), "{signal} {point}");
        }
        let again = mirage(&["run", "-w", ws.to_str().unwrap()], "stop-seed");
        assert_eq!(again.code, 0, "{signal} {point}: {}", again.all());
        assert_eq!(digest("dst"), want, "{signal} {point}: the reference copy");
    }

    // Files: stopped mid-rows, then run again: byte for byte the reference output.
    crate::util::dataset(dir.path(), "fsrc", "big", "name", 1_000_000);
    let files = |to: &str| {
        dir.write(
            &format!("{to}.toml"),
            &format!(
                "[source]\nurl = \"files:./fsrc\"\n\n[run]\nunreviewed = \"passthrough\"\n[destination]\nurl = \"files:./{to}\"\n\n{}",
                tables.replace("id = { generator = \"integer_key\" }\n", "")
            ),
        )
    };
    let (fref, fout) = (files("fref"), files("fout"));
    assert_eq!(
        mirage(&["run", "-w", fref.to_str().unwrap()], "stop-seed").code,
        0
    );
    for signal in ["-INT", "-9"] {
        let mut child = running(&fout);
        std::thread::sleep(std::time::Duration::from_millis(100));
        Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        let _ = child.wait();
        let again = mirage(&["run", "-w", fout.to_str().unwrap()], "stop-seed");
        assert_eq!(again.code, 0, "files {signal}: {}", again.all());
        for f in ["public.big.csv", "public.other.csv", "schema.json"] {
            assert!(
                std::fs::read(dir.path().join("fref").join(f)).unwrap()
                    == std::fs::read(dir.path().join("fout").join(f)).unwrap(),
                "files {signal}: {f} differs from the reference"
            );
        }
    }
}

/// The destination database `dst` holds no table in `public`: nothing was written.
fn nothing_written(pg: &mirage_testkit::PgCluster) {
    assert_eq!(
        pg.psql(
            "dst",
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        )
        .unwrap(),
        "0",
        "nothing was written"
    );
}
