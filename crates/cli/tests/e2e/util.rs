//! Small builders so each test reads as setup → command → checks.

use mirage_testkit::PgCluster;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A scratch folder holding a workspace file.
pub struct Dir {
    pub dir: tempfile::TempDir,
}

impl Dir {
    pub fn new() -> Dir {
        Dir {
            dir: tempfile::Builder::new()
                .prefix("mirage-test-")
                .tempdir()
                .expect("tempdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p
    }
}

/// The result of running the mirage binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// A seed strong enough for `mirage run` (128 bits or more), named by `tag`: two tags give two
/// seeds.
pub fn seed(tag: &str) -> String {
    format!("{tag}:9f86d081884c7d659a2feaa0c55ad015")
}

/// `mirage <args>` with a seed in the environment.
pub fn mirage(args: &[&str], seed: &str) -> Run {
    Command::new(env!("CARGO_BIN_EXE_mirage"))
        .args(args)
        .env("MIRAGE_SEED", crate::util::seed(seed))
        .env_remove("MIRAGE_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run mirage")
        .into()
}

/// A cluster with a `src` and a `dst` database.
pub fn cluster() -> PgCluster {
    let pg = PgCluster::start().expect("start PostgreSQL");
    pg.create_database("src").expect("create src");
    pg.create_database("dst").expect("create dst");
    pg
}

/// Rows of a relation in heap order, each as its COPY text fields.
pub fn rows(pg: &PgCluster, db: &str, table: &str) -> Vec<Vec<String>> {
    let out = pg
        .psql(db, &format!("COPY {table} TO STDOUT"))
        .unwrap_or_else(|e| panic!("COPY {table} from {db}: {e}"));
    if out.is_empty() {
        return Vec::new();
    }
    out.split('\n')
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// Column names of a table in order.
pub fn columns(pg: &PgCluster, db: &str, table: &str) -> Vec<String> {
    pg.psql(
        db,
        &format!(
            "SELECT attname FROM pg_attribute WHERE attrelid = '{table}'::regclass \
             AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
        ),
    )
    .expect("columns")
    .lines()
    .map(str::to_string)
    .collect()
}

/// A workspace for the cluster's `src` → `dst`.
pub fn workspace(pg: &PgCluster, tables: &str) -> String {
    format!(
        "[source]\nurl = \"{}\"\n\n[destination]\nurl = \"{}\"\n\n[run]\npart_size = \"16KiB\"\nparallelism = 3\nunreviewed = \"passthrough\"\n\n{tables}",
        pg.url("src"),
        pg.url("dst")
    )
}

/// A files dataset in `dir/name`: table `public.<table>` with columns `id` (integer) and
/// `<column>` (text), and `rows` rows.
pub fn dataset(dir: &Path, name: &str, table: &str, column: &str, rows: u32) {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    let schema = serde_json::json!({
        "tables": [{
            "schema": "public",
            "name": table,
            "primary_key": ["id"],
            "columns": [
                { "name": "id", "type": "integer", "not_null": true },
                { "name": column, "type": "text" }
            ]
        }, {
            "schema": "public",
            "name": "other",
            "columns": [ { "name": "id", "type": "integer" } ]
        }]
    });
    std::fs::write(d.join("schema.json"), schema.to_string()).unwrap();
    let mut csv = String::from("id,\"");
    csv.push_str(&column.replace('"', "\"\""));
    csv.push_str("\"\n");
    for i in 1..=rows {
        csv.push_str(&format!("{i},name {i}\n"));
    }
    std::fs::write(
        d.join(format!(
            "public.{}.csv",
            mirage_connectors::files::file_part(table)
        )),
        csv,
    )
    .unwrap();
    std::fs::write(d.join("public.other.csv"), "id\n1\n2\n").unwrap();
}

/// A workspace `workspace.toml` in `dir` from `source` to `destination` (files: URLs).
pub fn files_workspace(dir: &Dir, source: &str, destination: &str, tables: &str) -> String {
    dir.write(
        "workspace.toml",
        &format!(
            "[source]\nurl = \"files:{source}\"\n\n[destination]\nurl = \"files:{destination}\"\n\n[run]\nunreviewed = \"passthrough\"\n\n{tables}"
        ),
    )
    .display()
    .to_string()
}

/// `mirage <args>` with extra environment; NO_COLOR removed unless given.
pub fn mirage_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mirage"));
    cmd.args(args)
        .env("MIRAGE_SEED", crate::util::seed("s"))
        .env_remove("NO_COLOR")
        .env_remove("MIRAGE_LOG")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run mirage").into()
}

/// `mirage clean -w <ws>` with AWS access key `key` and `MIRAGE_DEAD_AFTER=<dead_after>`.
pub fn mirage_clean(ws: &Path, key: &str, dead_after: &str) -> Run {
    Command::new(env!("CARGO_BIN_EXE_mirage"))
        .args(["clean", "-w", &ws.display().to_string()])
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("MIRAGE_DEAD_AFTER", dead_after)
        .output()
        .expect("mirage clean")
        .into()
}
