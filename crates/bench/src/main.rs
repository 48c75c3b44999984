//! `mirage-bench`: where mirage stands against the hardware and its peers, on the same data, in
//! the same run, reported as ratios (machines here are shared and noisy: absolute times alone
//! mean little).
//!
//! It starts a throwaway PostgreSQL, builds a `users` table (20 columns, 6 of them personal data)
//! and an `orders` table with a foreign key to it, and measures, `--runs` times each:
//! 1. the floor: `psql COPY … TO STDOUT | psql COPY … FROM STDIN` into bare tables;
//! 2. `pg_dump | psql` of the same tables (schema, data, indexes, constraints);
//! 3. mirage with the 6 personal columns masked and a key generator on `users.id` (and so on
//!    `orders.user_id`);
//! 4. mirage passing everything through;
//! 5. pganonymize (installed from PyPI into a virtualenv) with equivalent rules, run as its
//!    documentation describes: on a copy of the database (`createdb -T`), anonymized in place.
//!    It takes minutes per million rows; `--peer-runs 1` runs it once instead of `--runs` times.
//!
//! Then the transform alone (in memory, 1 and 2 threads) and mirage's peak RSS at 1×, 4× and 16×
//! a base table size.
//!
//! Run it with `bench/run` (which builds in release mode first):
//!   bench/run --rows 2000000 --runs 3

mod generators;
mod lambda;
mod redshift;

use mirage_core::ValueType;
use mirage_generators::{ColumnContext, Prf};
use mirage_testkit::PgCluster;
use mirage_transform::PartTransform;
use mirage_transform::codec::{Format, RecordSplitter};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Res<T> = Result<T, String>;

struct Args {
    rows: u64,
    runs: usize,
    peer_runs: usize,
    scale_base: u64,
    out: Option<PathBuf>,
    skip_pganonymize: bool,
}

const USAGE: &str = "usage: mirage-bench generators [VALUES]\n       mirage-bench scan\n       mirage-bench [--rows N (2000000)] [--runs N (3)] [--peer-runs N (= runs)] \
[--scale-base N (rows/16)] [--skip-pganonymize] [--out FILE.md]";

fn parse_args() -> Res<Args> {
    let mut args = Args {
        rows: 2_000_000,
        runs: 3,
        peer_runs: 0,
        scale_base: 0,
        out: None,
        skip_pganonymize: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        let num = |v: String| v.parse::<u64>().map_err(|e| format!("{a}: {e}"));
        match a.as_str() {
            "--rows" => args.rows = num(value()?)?,
            "--runs" => args.runs = num(value()?)? as usize,
            "--peer-runs" => args.peer_runs = num(value()?)? as usize,
            "--scale-base" => args.scale_base = num(value()?)?,
            "--out" => args.out = Some(PathBuf::from(value()?)),
            "--skip-pganonymize" => args.skip_pganonymize = true,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if args.runs == 0 || args.rows < 16 {
        return Err(USAGE.into());
    }
    if args.peer_runs == 0 {
        // Like everything else, unless asked otherwise (pganonymize takes ~11 min a run at 2M rows).
        args.peer_runs = args.runs;
    }
    if args.scale_base == 0 {
        args.scale_base = (args.rows / 16).max(1);
    }
    Ok(args)
}

/// 20 columns; first_name, last_name, email, phone, ssn and street are personal data.
const TABLES: &str = "
CREATE TABLE users (
    id bigint PRIMARY KEY,
    first_name text, last_name text, email text, phone text, ssn text, street text,
    city text, state char(2), zip text, created_at timestamptz, updated_at timestamptz,
    balance numeric(12,2), score double precision, active boolean, plan text, logins integer,
    notes text, country text, age smallint
);
CREATE TABLE orders (
    id bigint PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id),
    amount numeric(10,2),
    status text,
    ordered_at timestamptz
);";

/// The same tables without indexes or constraints: the floor's destination.
const BARE_TABLES: &str = "
CREATE TABLE users (
    id bigint, first_name text, last_name text, email text, phone text, ssn text, street text,
    city text, state char(2), zip text, created_at timestamptz, updated_at timestamptz,
    balance numeric(12,2), score double precision, active boolean, plan text, logins integer,
    notes text, country text, age smallint
);
CREATE TABLE orders (id bigint, user_id bigint, amount numeric(10,2), status text, ordered_at timestamptz);";

fn fill(rows: u64) -> String {
    format!(
        "INSERT INTO users SELECT i,
            (ARRAY['Ada','Grace','Alan','Edsger','Barbara','Donald','Margaret','Ken'])[1 + i % 8] || i % 1000,
            (ARRAY['Lovelace','Hopper','Turing','Dijkstra','Liskov','Knuth','Hamilton'])[1 + i % 7],
            'user' || i || '@example.com',
            '(' || lpad((i % 1000)::text, 3, '0') || ') 555-' || lpad((i % 10000)::text, 4, '0'),
            lpad((100 + i % 800)::text, 3, '0') || '-' || lpad((1 + i % 99)::text, 2, '0') || '-' || lpad((1 + i % 9999)::text, 4, '0'),
            (i % 9999) || ' ' || (ARRAY['Main St','Oak Ave','Elm Rd','Pine Ln'])[1 + i % 4],
            (ARRAY['Springfield','Shelbyville','Ogdenville','North Haverbrook'])[1 + i % 4],
            (ARRAY['CA','NY','TX','WA'])[1 + i % 4],
            lpad((i % 100000)::text, 5, '0'),
            '2024-01-01'::timestamptz + i * interval '1 minute',
            '2025-01-01'::timestamptz + i * interval '2 minutes',
            (i % 100000) / 100.0, (i % 997) / 7.0, i % 3 = 0,
            (ARRAY['free','pro','team'])[1 + i % 3], (i % 500)::int,
            CASE WHEN i % 5 = 0 THEN NULL ELSE 'note about customer ' || i || E' with a tab\\there' END,
            'US', (18 + i % 70)::smallint
        FROM generate_series(1, {rows}) i;
        INSERT INTO orders SELECT i, 1 + (i * 7) % {rows}, (i % 50000) / 100.0,
            (ARRAY['placed','shipped','delivered'])[1 + i % 3],
            '2025-06-01'::timestamptz + i * interval '30 seconds'
        FROM generate_series(1, {half}) i;",
        half = rows / 2
    )
}

const MASKED: &str = r#"
[tables."public.users".columns]
id = { generator = "integer_key" }          # orders.user_id follows through the foreign key
first_name = { generator = "first_name" }
last_name = { generator = "last_name" }
email = { generator = "email" }
phone = { generator = "character_scramble" }
ssn = { generator = "character_scramble" }
street = { generator = "character_scramble" }
"#;

/// pganonymize's rules for the same six columns. It has no key mapping, so `id` is left alone.
const PGANONYMIZE_RULES: &str = "tables:
  - users:
      primary_key: id
      fields:
        - first_name:
            provider:
              name: fake.first_name
        - last_name:
            provider:
              name: fake.last_name
        - email:
            provider:
              name: fake.email
        - phone:
            provider:
              name: fake.phone_number
        - ssn:
            provider:
              name: fake.ssn
        - street:
            provider:
              name: fake.street_address
";

/// Wall time and peak RSS (KiB, the largest of the process and its waited-for children).
fn measure(cmd: &mut Command) -> Res<(Duration, u64)> {
    let start = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our child; status and usage are valid out-pointers.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let elapsed = start.elapsed();
    if r < 0 {
        return Err("wait4 failed".into());
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        let mut err = String::new();
        if let Some(mut e) = child.stderr {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        return Err(format!("command failed ({status}): {err}"));
    }
    Ok((elapsed, usage.ru_maxrss as u64))
}

#[derive(Default)]
struct Sample {
    name: String,
    times: Vec<Duration>,
    rss_kib: u64,
    note: String,
}

impl Sample {
    fn new(name: &str) -> Sample {
        Sample {
            name: name.into(),
            ..Sample::default()
        }
    }
    fn add(&mut self, (t, rss): (Duration, u64)) {
        self.times.push(t);
        self.rss_kib = self.rss_kib.max(rss);
    }
    fn min(&self) -> f64 {
        self.times
            .iter()
            .map(Duration::as_secs_f64)
            .fold(f64::MAX, f64::min)
    }
    fn median(&self) -> f64 {
        let mut t: Vec<f64> = self.times.iter().map(Duration::as_secs_f64).collect();
        t.sort_by(f64::total_cmp);
        t[t.len() / 2]
    }
}

fn sh(script: &str) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c").arg(script);
    c
}

fn psql(pg: &PgCluster, db: &str, sql: &str) -> Res<String> {
    pg.psql(db, sql).map_err(|e| e.to_string())
}

/// The transform alone: COPY text parts in memory with the 7 generators of the masked run.
/// Returns (seconds, rows).
fn transform_only(data: &[u8], threads: usize) -> (f64, u64) {
    let prf = Prf::from_seed("bench");
    let text = ValueType::Text { max_chars: None };
    let build = |generator: &str, ty: &ValueType| {
        let ctx = ColumnContext {
            table: "public.users",
            column: generator,
            value_type: ty,
            not_null: false,
            columns: &[],
            stats: None,
        };
        mirage_generators::build(generator, &toml::Table::new(), &ctx, &prf).ok()
    };
    let names = [
        "id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "ssn",
        "street",
        "city",
        "state",
        "zip",
        "created_at",
        "updated_at",
        "balance",
        "score",
        "active",
        "plan",
        "logins",
        "notes",
        "country",
        "age",
    ];
    let columns = names
        .iter()
        .map(|n| {
            let g = match *n {
                "id" => build("integer_key", &ValueType::BigInt),
                "first_name" | "last_name" | "email" => build(n, &text),
                "phone" | "ssn" | "street" => build("character_scramble", &text),
                _ => None,
            };
            (n.to_string(), g)
        })
        .collect();
    let t = Arc::new(PartTransform::new(Format::PgText, columns));
    let mut parts = Vec::new();
    let mut start = 0;
    while start < data.len() {
        let end = (start + (4 << 20)).min(data.len());
        let cut = if end == data.len() {
            end - start
        } else {
            RecordSplitter::new(Format::PgText).complete_len(&data[start..end])
        };
        parts.push(&data[start..start + cut]);
        start += cut;
    }
    let begin = Instant::now();
    let rows: u64 = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let mine: Vec<&[u8]> = parts.iter().skip(i).step_by(threads).copied().collect();
                let t = t.clone();
                scope.spawn(move || {
                    let mut out = Vec::new();
                    let mut rows = 0;
                    for p in mine {
                        out.clear();
                        rows += t.apply(p, &mut out).map(|s| s.rows).unwrap_or(0);
                    }
                    rows
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    (begin.elapsed().as_secs_f64(), rows)
}

/// A virtualenv with pganonymize, made once under `target/`.
fn pganonymize(target: &Path) -> Res<PathBuf> {
    let venv = target.join("bench-venv");
    let exe = venv.join("bin/pganonymize");
    if exe.exists() {
        return Ok(exe);
    }
    eprintln!("installing pganonymize into {} …", venv.display());
    let ok = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .map_err(|e| format!("python3 -m venv: {e}"))?
        .success()
        && Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "pganonymize==0.13.0"])
            .status()
            .map_err(|e| format!("pip install pganonymize: {e}"))?
            .success();
    if ok && exe.exists() {
        Ok(exe)
    } else {
        Err("installing pganonymize failed (needs python3-venv and PyPI)".into())
    }
}

/// Recall and precision of `mirage scan` on the labelled set (see `mirage_scan::labelled`),
/// for a few seeds, with the columns it got wrong, as Markdown.
fn scan_quality() -> String {
    let mut md = String::from(
        "| seed | sensitive columns | decoys | recall | precision | right kind |\n| --- | ---: | ---: | ---: | ---: | ---: |\n",
    );
    let mut mistakes = Vec::new();
    for seed in [1u64, 2, 3, 4, 5] {
        let s = mirage_scan::labelled::evaluate(100, 500, seed);
        md.push_str(&format!(
            "| {seed} | {} | {} | {:.3} | {:.3} | {:.3} |\n",
            s.sensitive,
            s.decoys,
            s.recall(),
            s.precision(),
            s.right_kind as f64 / s.sensitive.max(1) as f64
        ));
        mistakes.extend(s.mistakes);
    }
    mistakes.sort();
    mistakes.dedup();
    md.push_str("\nMisjudged (column name, label, verdict):\n");
    for (name, label, verdict) in mistakes {
        md.push_str(&format!("- `{name}`: {label} → {verdict}\n"));
    }
    md
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn real_main() -> Res<()> {
    if std::env::args().nth(1).as_deref() == Some("redshift") {
        let rest: Vec<String> = std::env::args().skip(2).collect();
        return redshift::run(&rest);
    }
    if std::env::args().nth(1).as_deref() == Some("scan") {
        // The scan's quality on the labelled set: no database.
        println!("{}", scan_quality());
        return Ok(());
    }
    if std::env::args().nth(1).as_deref() == Some("generators") {
        // Generators alone: no database.
        let n = std::env::args()
            .nth(2)
            .map(|v| v.parse().map_err(|e| format!("number of values: {e}")))
            .transpose()?
            .unwrap_or(1_000_000);
        let md = generators::run(n);
        println!("{md}");
        return Ok(());
    }
    let args = parse_args()?;
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .ok_or("cannot find the benchmark's folder")?;
    let mirage = exe_dir.join("mirage");
    if !mirage.exists() {
        return Err(
            "build mirage first: cargo build --release -p mirage (bench/run does it)".into(),
        );
    }
    let target = exe_dir.parent().unwrap_or(&exe_dir).to_path_buf();
    let pganonymize = if args.skip_pganonymize {
        None
    } else {
        Some(pganonymize(&target)?)
    };

    eprintln!("starting PostgreSQL …");
    let pg = PgCluster::start().map_err(|e| e.to_string())?;
    psql(&pg, "postgres", "CREATE DATABASE src")?;
    psql(&pg, "postgres", "CREATE DATABASE dst_mirage")?;
    eprintln!(
        "creating {} users and {} orders …",
        args.rows,
        args.rows / 2
    );
    psql(&pg, "src", TABLES)?;
    psql(&pg, "src", &fill(args.rows))?;
    psql(&pg, "src", "VACUUM ANALYZE")?;
    let copy_bytes: u64 = psql(
        &pg,
        "src",
        "SELECT sum(length(t::text)) FROM (SELECT users::text AS t FROM users UNION ALL SELECT orders::text FROM orders) s",
    )?
    .parse()
    .unwrap_or(0);
    let total_rows = args.rows + args.rows / 2;

    let dir = std::env::temp_dir().join(format!("mirage-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let workspace = |name: &str, src: &str, tables: &str| -> Res<PathBuf> {
        let p = dir.join(name);
        let text = format!(
            "[source]\nurl = \"{}\"\n[destination]\nurl = \"{}\"\n{tables}",
            pg.url(src),
            pg.url("dst_mirage")
        );
        std::fs::write(&p, text).map_err(|e| e.to_string())?;
        Ok(p)
    };
    let masked_ws = workspace("masked.toml", "src", MASKED)?;
    let plain_ws = workspace("passthrough.toml", "src", "")?;
    let rules = dir.join("pganonymize.yml");
    std::fs::write(&rules, PGANONYMIZE_RULES).map_err(|e| e.to_string())?;
    let report_path = dir.join("report.json");
    let run_mirage = |ws: &Path| -> Res<(Duration, u64)> {
        let mut cmd = Command::new(&mirage);
        cmd.args(["run", "--no-progress", "-w"])
            .arg(ws)
            .arg("--report")
            .arg(&report_path)
            .env("MIRAGE_SEED", "bench-seed-2f0a6c1e9d8b7a65f4e3d2c1b0a99887")
            .env("MIRAGE_LOG", "warn");
        measure(&mut cmd)
    };
    // The rows phase of the last run, from its job report (schema copy and index builds apart).
    let rows_phase = || -> Res<(Duration, u64)> {
        let text = std::fs::read_to_string(&report_path).map_err(|e| e.to_string())?;
        let key = "\"rows_seconds\": ";
        let at = text.find(key).ok_or("the report has no rows_seconds")? + key.len();
        let secs: f64 = text[at..]
            .split([',', '\n', '}'])
            .next()
            .unwrap_or("")
            .trim()
            .parse()
            .map_err(|e| format!("rows_seconds: {e}"))?;
        Ok((Duration::from_secs_f64(secs), 0))
    };
    let fresh = |db: &str| -> Res<()> {
        psql(&pg, "postgres", &format!("DROP DATABASE IF EXISTS {db}"))?;
        psql(&pg, "postgres", &format!("CREATE DATABASE {db}")).map(|_| ())
    };

    let pipe = format!(
        "for t in users orders; do psql -X -q -d {src} -c \"COPY $t TO STDOUT\" | psql -X -q -d {dst} -c \"COPY $t FROM STDIN\" || exit 1; done",
        src = pg.url("src"),
        dst = pg.url("dst_pipe")
    );
    let dump = format!(
        "pg_dump --no-owner -t users -t orders -d {src} | psql -X -q -v ON_ERROR_STOP=1 -d {dst}",
        src = pg.url("src"),
        dst = pg.url("dst_dump")
    );
    let anon = |exe: &Path| {
        format!(
            "createdb -h 127.0.0.1 -p {port} -U postgres -T src dst_anon && {exe} --schema {rules} --dbname dst_anon --user postgres --host 127.0.0.1 --port {port}",
            port = pg.port(),
            exe = exe.display(),
            rules = rules.display()
        )
    };

    let mut samples = vec![
        Sample::new("psql COPY pipe, bare tables (floor)"),
        Sample::new("pg_dump \\| psql"),
        Sample::new("mirage, 6 columns masked + key on users.id"),
        Sample::new("mirage, passthrough"),
        Sample::new("pganonymize 0.13 (createdb -T + anonymize in place)"),
    ];
    samples[1].note = "schema, data, indexes, constraints".into();
    samples[2].note = "schema, data, indexes, constraints".into();
    samples[3].note = "schema, data, indexes, constraints".into();
    samples[4].note = "same 6 columns, id not remapped (no key provider)".into();
    samples.push(Sample::new("mirage, masked: rows phase only"));
    samples.push(Sample::new("mirage, passthrough: rows phase only"));
    samples[5].note = "from the job report: extract → transform → load, like the floor".into();
    samples[6].note = samples[5].note.clone();
    for run in 0..args.runs {
        eprintln!("run {} of {} …", run + 1, args.runs);
        fresh("dst_pipe")?;
        psql(&pg, "dst_pipe", BARE_TABLES)?;
        samples[0].add(measure(&mut sh(&pipe))?);
        fresh("dst_dump")?;
        samples[1].add(measure(&mut sh(&dump))?);
        samples[2].add(run_mirage(&masked_ws)?);
        samples[5].add(rows_phase()?);
        samples[3].add(run_mirage(&plain_ws)?);
        samples[6].add(rows_phase()?);
        if let Some(exe) = pganonymize.as_ref().filter(|_| run < args.peer_runs) {
            psql(&pg, "postgres", "DROP DATABASE IF EXISTS dst_anon")?;
            eprintln!("  pganonymize …");
            samples[4].add(measure(&mut sh(&anon(exe)))?);
        }
    }
    // The masked run's output: same rows, keys unique, the foreign key holds, values changed.
    let check = psql(
        &pg,
        "dst_mirage",
        "SELECT (SELECT count(*) FROM users) || ' ' || (SELECT count(*) FROM orders) || ' ' || \
         (SELECT count(*) FROM orders o JOIN users u ON u.id = o.user_id)",
    )?;
    let want = format!("{} {} {}", args.rows, args.rows / 2, args.rows / 2);
    if check != want {
        return Err(format!("mirage's copy is wrong: {check}, expected {want}"));
    }

    // Memory at 1×, 4×, 16× a base size (before this process holds a table in memory: a child's
    // peak RSS as the kernel reports it starts from the parent's size at fork).
    let mut scaling = Vec::new();
    for factor in [1u64, 4, 16] {
        let n = args.scale_base * factor;
        let db = format!("scale_{factor}");
        eprintln!("memory at {n} users …");
        fresh(&db)?;
        psql(&pg, &db, TABLES)?;
        psql(&pg, &db, &fill(n))?;
        // 1 MiB parts: the pipeline's bound (parts in flight × part size) is reached well below
        // the smallest size, so what is measured is whether memory stays at that bound.
        let ws = workspace(
            &format!("{db}.toml"),
            &db,
            &format!("[run]\npart_size = \"1MiB\"\n{MASKED}"),
        )?;
        let (t, rss) = run_mirage(&ws)?;
        scaling.push((n, t, rss));
        psql(&pg, "postgres", &format!("DROP DATABASE {db}"))?;
    }

    // The transform alone.
    let data = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-d",
            &pg.url("src"),
            "-c",
            "COPY users TO STDOUT",
        ])
        .output()
        .map_err(|e| e.to_string())?
        .stdout;
    let (t1, rows1) = transform_only(&data, 1);
    let (t2, _) = transform_only(&data, 2);

    let md = report(
        &args,
        &samples,
        copy_bytes,
        total_rows,
        &data,
        (t1, t2, rows1),
        &scaling,
    );
    println!("{md}");
    if let Some(out) = &args.out {
        if let Some(d) = out.parent() {
            std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
        }
        std::fs::write(out, &md).map_err(|e| format!("writing {}: {e}", out.display()))?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn report(
    args: &Args,
    samples: &[Sample],
    copy_bytes: u64,
    total_rows: u64,
    data: &[u8],
    (t1, t2, rows1): (f64, f64, u64),
    scaling: &[(u64, Duration, u64)],
) -> String {
    let base = samples[0].median();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut md = format!(
        "# mirage benchmark\n\n{} · {} cores · `users` {} rows × 20 columns + `orders` {} rows \
         ({:.0} MB as COPY text) · {} runs each (pganonymize: {})\n\n",
        humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
        cores,
        args.rows,
        args.rows / 2,
        copy_bytes as f64 / 1e6,
        args.runs,
        args.peer_runs.min(args.runs)
    );
    md += "| what | min s | median s | rows/s | MB/s | peak RSS | × floor (median) | notes |\n";
    md += "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n";
    for s in samples.iter().filter(|s| !s.times.is_empty()) {
        let m = s.median();
        let rss = if s.rss_kib == 0 {
            "–".to_string()
        } else {
            format!("{:.0} MiB", s.rss_kib as f64 / 1024.0)
        };
        md += &format!(
            "| {} | {:.2} | {:.2} | {:.0} | {:.1} | {rss} | {:.2} | {} |\n",
            s.name,
            s.min(),
            m,
            total_rows as f64 / m,
            copy_bytes as f64 / 1e6 / m,
            m / base,
            s.note
        );
    }
    if let (Some(anon), Some(masked)) = (
        samples.get(4).filter(|s| !s.times.is_empty()),
        samples.get(2),
    ) {
        md += &format!(
            "\nmirage (masked) is **{:.1}×** faster than pganonymize on the same columns.\n",
            anon.median() / masked.median()
        );
    }
    let mb = data.len() as f64 / 1e6;
    md += &format!(
        "\n## The transform alone\n\n7 generators on `users` ({mb:.0} MB of COPY text, 4 MiB parts, in memory):\n\n\
         | threads | seconds | GB/s | rows/s | rows/s per core |\n| ---: | ---: | ---: | ---: | ---: |\n\
         | 1 | {t1:.2} | {:.3} | {:.0} | {:.0} |\n| 2 | {t2:.2} | {:.3} | {:.0} | {:.0} |\n\n\
         Scaling from 1 to 2 threads: {:.2}×.\n",
        mb / 1e3 / t1,
        rows1 as f64 / t1,
        rows1 as f64 / t1,
        mb / 1e3 / t2,
        rows1 as f64 / t2,
        rows1 as f64 / t2 / 2.0,
        t1 / t2
    );
    md += "\n## Memory as the table grows\n\nmirage, masked, 1 MiB parts (4 in flight, 4 tables at once). Memory is bounded by the parts in \
           flight: per table about (parts_in_flight + 3) × part size of input plus as much output, so RSS rises until a table \
           is big enough to fill its pipeline and then stays there, however large the table. With the default 4 MiB parts \
           the bound is about 4× higher per table; see the peak RSS above.\n\n\
           | users rows | seconds | peak RSS |\n| ---: | ---: | ---: |\n";
    for (n, t, rss) in scaling {
        md += &format!(
            "| {n} | {:.2} | {:.0} MiB |\n",
            t.as_secs_f64(),
            *rss as f64 / 1024.0
        );
    }
    md += &format!(
        "\nReproduce with `bench/run --rows {} --runs {}`. The floor loads bare tables; `pg_dump | psql` and \
         mirage also build the primary keys and the foreign key.\n",
        args.rows, args.runs
    );
    md
}
