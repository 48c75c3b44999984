//! `mirage check` and `mirage run` agree: what `check` fails, `run` refuses before writing, and
//! `run` names a failed item with its fix as `check` does.

use crate::util::{Dir, Run, dataset, files_workspace, mirage, mirage_env};
use serde_json::Value;
use std::process::{Command, Stdio};

/// `mirage check --format json`: (exit code, failed items).
fn check_failures(ws: &str) -> (i32, Vec<Value>) {
    let run = mirage(&["check", "--format", "json", "-w", ws], "s");
    let report: Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.all()));
    assert_eq!(run.code == 0, report["ok"] == true, "{}", run.all());
    let failed = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "fail")
        .cloned()
        .collect();
    (run.code, failed)
}

#[test]
fn a_destination_folder_spelled_through_a_missing_folder_is_the_source() {
    let dir = Dir::new();
    dataset(dir.path(), "src", "people", "name", 3);
    // ./x does not exist: ./x/../src is ./src all the same.
    let ws = files_workspace(&dir, "./src", "./x/../src", "");
    let (code, failed) = check_failures(&ws);
    assert_eq!(code, 1, "{failed:#?}");
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(failed[0]["area"], "destination");
    assert!(
        failed[0]["fix"]
            .as_str()
            .unwrap()
            .contains("point destination.url at another"),
        "{failed:#?}"
    );
    let before = std::fs::read(dir.path().join("src/public.people.csv")).unwrap();
    let run = mirage(&["run", "-w", &ws, "--no-progress"], "s");
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("same"), "{}", run.stderr);
    assert_eq!(
        std::fs::read(dir.path().join("src/public.people.csv")).unwrap(),
        before,
        "the source is untouched"
    );
    assert!(!dir.path().join("x").exists());
    // Another folder passes.
    let ws = files_workspace(&dir, "./src", "./x/../dst", "");
    assert_eq!(check_failures(&ws).0, 0);
}

#[test]
fn workspace_mistakes_fail_check_as_they_fail_run() {
    let dir = Dir::new();
    dataset(dir.path(), "src", "people", "name", 3);
    let ws = files_workspace(
        &dir,
        "src",
        "dst",
        "[tables.\"public.people\".columns]\nnmae = { generator = \"full_name\" }\n\
         id = { generator = \"emial\" }\n\n[tables.\"public.other\".columns]\nid = { generator = \"email\" }\n",
    );
    let (code, failed) = check_failures(&ws);
    assert_eq!(code, 1, "{failed:#?}");
    let workspace: Vec<&Value> = failed.iter().filter(|f| f["area"] == "workspace").collect();
    assert_eq!(workspace.len(), 3, "{failed:#?}");
    for f in &workspace {
        assert_eq!(f["fix"], "edit the workspace", "{f}");
    }
    let text = workspace
        .iter()
        .map(|f| f["check"].as_str().unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(text.contains("did you mean `name`"), "{text}");
    assert!(text.contains("unknown generator `emial`"), "{text}");
    assert!(text.contains("does not work on type integer"), "{text}");
    let run = mirage(&["run", "-w", &ws, "--no-progress"], "s");
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(!dir.path().join("dst").exists(), "nothing written");
}

/// PostgreSQL's source checks need `pg_dump` and `pg_restore` of the server's major version or
/// newer on PATH, as `mirage run` copies the schema with them.
#[test]
fn missing_or_old_client_tools_fail_check_and_stop_run() {
    let pg = crate::util::cluster();
    pg.psql("src", "CREATE TABLE t (id int)").unwrap();
    let major: u32 = pg
        .psql("postgres", "SHOW server_version_num")
        .unwrap()
        .parse::<u32>()
        .unwrap()
        / 10_000;
    let dir = Dir::new();
    let ws = dir.write("workspace.toml", &crate::util::workspace(&pg, ""));
    let ws = ws.to_str().unwrap();
    let empty = dir.path().join("empty-bin");
    std::fs::create_dir(&empty).unwrap();
    let old = dir.path().join("old-bin");
    std::fs::create_dir(&old).unwrap();
    let script = old.join("pg_dump");
    std::fs::write(&script, "#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let real = Command::new("sh")
        .args(["-c", "command -v pg_restore"])
        .output()
        .unwrap();
    let real = String::from_utf8_lossy(&real.stdout).trim().to_string();
    std::os::unix::fs::symlink(&real, old.join("pg_restore")).unwrap();
    for (path, says) in [
        (empty.display().to_string(), "pg_dump is not on PATH"),
        (
            old.display().to_string(),
            "is version 9, older than the server",
        ),
    ] {
        let run = mirage_env(&["check", "--format", "json", "-w", ws], &[("PATH", &path)]);
        assert_eq!(run.code, 1, "{}", run.all());
        let report: Value = serde_json::from_str(&run.stdout).unwrap();
        let failed: Vec<&Value> = report["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["status"] == "fail")
            .collect();
        assert_eq!(failed.len(), 1, "{failed:#?}");
        assert_eq!(failed[0]["area"], "source");
        assert!(
            failed[0]["detail"].as_str().unwrap().contains(says),
            "{failed:#?}"
        );
        assert!(
            failed[0]["fix"]
                .as_str()
                .unwrap()
                .contains(&format!("postgresql-client-{major}")),
            "{failed:#?}"
        );
        let run = mirage_env(&["run", "-w", ws, "--no-progress"], &[("PATH", &path)]);
        assert_eq!(run.code, 2, "{}", run.all());
        assert!(
            run.stderr.contains("nothing was written") && run.stderr.contains(says),
            "{}",
            run.stderr
        );
    }
    let run = mirage_env(&["check", "-w", ws], &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout.contains(&format!(
            "✓ pg_dump and pg_restore {major} or newer on PATH"
        )),
        "{}",
        run.stdout
    );
}

/// A destination that cannot be connected to: `run` names the failed item and its fix, as
/// `check` does, instead of a bare connection error.
#[test]
fn run_names_an_unreachable_destination_with_its_fix() {
    let pg = crate::util::cluster();
    pg.psql("src", "CREATE TABLE t (id int)").unwrap();
    let dir = Dir::new();
    let ws = crate::util::workspace(&pg, "").replace(&pg.url("dst"), &pg.url("nowhere"));
    let ws = dir.write("workspace.toml", &ws);
    let ws = ws.to_str().unwrap();
    let (code, failed) = check_failures(ws);
    assert_eq!(code, 1);
    assert_eq!(failed[0]["fix"], "CREATE DATABASE \"nowhere\";");
    let run = mirage(&["run", "-w", ws, "--no-progress"], "s");
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("nothing was written")
            && run.stderr.contains("database nowhere exists")
            && run.stderr.contains("fix: CREATE DATABASE \"nowhere\";"),
        "{}",
        run.stderr
    );
}

/// A server that asks for a password nobody gave: the message names the variable to set.
#[test]
fn a_missing_password_names_its_environment_variable() {
    let pg = crate::util::cluster();
    pg.psql(
        "src",
        "CREATE TABLE t (id int); ALTER ROLE postgres PASSWORD 'secret-pw'",
    )
    .unwrap();
    std::fs::write(
        pg.path().join("data/pg_hba.conf"),
        "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n",
    )
    .unwrap();
    pg.psql("postgres", "SELECT pg_reload_conf()").unwrap();
    let dir = Dir::new();
    let ws = dir.write("workspace.toml", &crate::util::workspace(&pg, ""));
    let ws = ws.to_str().unwrap();
    let without = |args: &[&str]| -> Run {
        Command::new(env!("CARGO_BIN_EXE_mirage"))
            .args(args)
            .env("MIRAGE_SEED", crate::util::seed("s"))
            .env_remove("MIRAGE_SOURCE_PASSWORD")
            .env_remove("MIRAGE_DESTINATION_PASSWORD")
            .env_remove("PGPASSWORD")
            .env_remove("PGSERVICE")
            .env("PGPASSFILE", "/nonexistent/pgpass")
            .stdin(Stdio::null())
            .output()
            .unwrap()
            .into()
    };
    let run = without(&["check", "-w", ws]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stdout.contains(
            "the server asks for a password and none was found: set $MIRAGE_SOURCE_PASSWORD"
        ),
        "{}",
        run.stdout
    );
    assert!(
        !run.all().contains("invalid configuration"),
        "{}",
        run.all()
    );
    let run = without(&["run", "-w", ws, "--no-progress"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr
            .contains("none was found: set $MIRAGE_SOURCE_PASSWORD"),
        "{}",
        run.stderr
    );
    // With the source's password only, the destination's variable is named.
    let run = mirage_env(
        &["check", "-w", ws],
        &[("MIRAGE_SOURCE_PASSWORD", "secret-pw")],
    );
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stdout.contains(
            "the server asks for a password and none was found: set $MIRAGE_DESTINATION_PASSWORD"
        ),
        "{}",
        run.stdout
    );
    let run = mirage_env(
        &["check", "-w", ws],
        &[
            ("MIRAGE_SOURCE_PASSWORD", "secret-pw"),
            ("MIRAGE_DESTINATION_PASSWORD", "secret-pw"),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    // libpq's sources: PGPASSWORD; the password file (only when private to its owner); a
    // connection service naming host, port, database and user, the tools included.
    let run = mirage_env(&["check", "-w", ws], &[("PGPASSWORD", "secret-pw")]);
    assert_eq!(run.code, 0, "{}", run.all());
    let pgpass = dir.write(
        "pgpass",
        &format!("# comment\n127.0.0.1:{}:*:postgres:secret-pw\n", pg.port()),
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o644)).unwrap();
    let env = [("PGPASSFILE", pgpass.to_str().unwrap())];
    let run = mirage_env(&["check", "-w", ws], &env);
    assert_eq!(
        run.code,
        1,
        "a password file others can read is ignored: {}",
        run.all()
    );
    assert!(
        run.all().contains("was skipped because others can read it"),
        "{}",
        run.all()
    );
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let run = mirage_env(&["check", "-w", ws], &env);
    assert_eq!(run.code, 0, "{}", run.all());
    let services = dir.write(
        "services.conf",
        &format!(
            "[copy-src]\nhost=127.0.0.1\nport={}\ndbname=src\nuser=postgres\n\
             [copy-dst]\nhost=127.0.0.1\nport={}\ndbname=dst\nuser=postgres\n",
            pg.port(),
            pg.port()
        ),
    );
    let by_service = dir.write(
        "service.toml",
        "[source]\nurl = \"postgres://?service=copy-src\"\n\n[run]\nunreviewed = \"passthrough\"\n[destination]\nurl = \"postgres://?service=copy-dst\"\n",
    );
    let run = mirage_env(
        &["run", "-w", by_service.to_str().unwrap(), "--no-progress"],
        &[
            ("PGSERVICEFILE", services.to_str().unwrap()),
            ("PGPASSFILE", pgpass.to_str().unwrap()),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(!run.all().contains("secret-pw"), "{}", run.all());
    assert_eq!(
        pg.psql_url(
            &pg.url("dst").replace("postgres@", "postgres:secret-pw@"),
            "SELECT count(*) FROM pg_tables WHERE tablename = 't'"
        )
        .unwrap(),
        "1"
    );
}
