//! `mirage-bench redshift`: Data Pipeline V2 against the Redshift emulator and S3 in moto, next to
//! a plain UNLOAD + COPY of the same table (same options, no transform) measured in the same run.
//! The emulator runs in this process; PostgreSQL and moto are started for the run.

use crate::{Res, Sample, measure};
use mirage_testkit::{MotoServer, PgCluster};
use redshift_emu::proxy::{Config, start};
use std::fmt::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const ROLE: &str = "arn:aws:iam::123456789012:role/mirage-redshift";
/// The Lambda function's image (moto stores it; the local runner runs the binary).
const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mirage-lambda:0.1.0";

/// The machine, for the report.
fn cpus_note() -> String {
    format!("{} cores", online_cpus())
}

// No PRIMARY KEY: Redshift's are informational (no index), but the emulator backs one with a
// PostgreSQL B-tree, and the permuted keys of a masked id cost it far more to insert than the
// floor's ascending ones — a cost Redshift does not have.
const TABLE: &str = "CREATE TABLE bench.users (
    id BIGINT IDENTITY(1, 1),
    ref INTEGER NOT NULL,
    email VARCHAR(120) NOT NULL,
    first_name VARCHAR(40),
    last_name VARCHAR(40),
    phone VARCHAR(32),
    city VARCHAR(60),
    note VARCHAR(256),
    score DECIMAL(12, 2),
    active BOOLEAN,
    created TIMESTAMP
) DISTSTYLE KEY DISTKEY (ref) SORTKEY (created)";

// Source names: real ones, so values have the lengths and repetition of real data.
const FIRST: &[&str] = &[
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Christopher",
    "Karen",
    "Daniel",
    "Lisa",
    "Matthew",
    "Nancy",
    "Anthony",
    "Sandra",
    "Mark",
    "Ashley",
    "Donald",
    "Kimberly",
    "Steven",
    "Emily",
    "Andrew",
    "Donna",
    "Joshua",
    "Michelle",
    "Kenneth",
    "Carol",
    "Kevin",
    "Amanda",
    "Brian",
    "Melissa",
    "Timothy",
    "Deborah",
    "Ronald",
    "Stephanie",
    "Jason",
    "Rebecca",
    "George",
    "Sharon",
    "Edward",
    "Laura",
    "Jeffrey",
    "Cynthia",
];
const LAST: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Phillips",
    "Evans",
    "Turner",
    "Parker",
    "Collins",
    "Edwards",
];

const MASKED: &str = r#"
[tables."bench.users".columns]
id = { generator = "integer_key" }
email = { generator = "email", unique = true }
first_name = { generator = "first_name" }
last_name = { generator = "last_name" }
phone = { generator = "phone" }
note = { generator = "character_scramble" }
"#;

pub fn run(args: &[String]) -> Res<()> {
    let mut rows: u64 = 1_000_000;
    let mut runs = 3usize;
    let mut out: Option<std::path::PathBuf> = None;
    // --hold: after the runs, keep everything up and print how to run mirage against it.
    let mut hold = false;
    // --gzip: GZIP instead of ZSTD, for the floor and for mirage alike.
    let mut gzip = false;
    // --process lambda: the SQS + Lambda process next to V2, and its scaling with handlers.
    let mut lambda = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--rows" => rows = value()?.parse().map_err(|e| format!("--rows: {e}"))?,
            "--runs" => runs = value()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--out" => out = Some(value()?.into()),
            "--hold" => hold = true,
            "--gzip" => gzip = true,
            "--process" => match value()?.as_str() {
                "lambda" => lambda = true,
                "v2" => lambda = false,
                other => return Err(format!("--process {other}: v2 or lambda")),
            },
            other => {
                return Err(format!(
                    "unknown argument {other}; usage: mirage-bench redshift [--rows N] [--runs N] [--out FILE.md] [--hold] [--gzip] [--process v2|lambda]"
                ));
            }
        }
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mirage = exe
        .parent()
        .map(|d| d.join("mirage"))
        .filter(|p| p.exists())
        .ok_or("build mirage in release mode first (bench/run does)")?;

    let pg = PgCluster::start().map_err(|e| e.to_string())?;
    let moto = MotoServer::start().map_err(|e| e.to_string())?;
    moto.create_bucket("mirage-bench")
        .map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let emu = rt
        .block_on(start(
            "127.0.0.1:0",
            Config::local(pg.port(), &moto.endpoint()),
        ))
        .map_err(|e| e.to_string())?;
    let url = |db: &str| {
        format!(
            "postgresql://postgres@{}/{db}?sslmode=disable",
            emu.address()
        )
    };
    let sql = |db: &str, s: &str| pg.psql_url(&url(db), s).map_err(|e| e.to_string());
    // The emulator's PostgreSQL would vacuum and analyze each freshly loaded table in the
    // background, at moments that land in one run or another; Redshift does its upkeep elsewhere.
    sql("postgres", "ALTER SYSTEM SET autovacuum = off")?;
    sql("postgres", "SELECT pg_reload_conf()")?;
    sql("postgres", "CREATE DATABASE src")?;
    sql("postgres", "CREATE DATABASE dst")?;
    eprintln!("filling bench.users with {rows} rows …");
    sql("src", &format!("CREATE SCHEMA bench; {TABLE}"))?;
    let quoted = |names: &[&str]| {
        names
            .iter()
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (nf, nl) = (FIRST.len(), LAST.len());
    let (first_names, last_names) = (quoted(FIRST), quoted(LAST));
    sql(
        "src",
        &format!(
            "INSERT INTO bench.users (ref, email, first_name, last_name, phone, city, note, score, active, created) \
             SELECT i, lower(f) || '.' || lower(l) || (i % 997) || '@' || (ARRAY['gmail.com', 'yahoo.com', 'corp.example', 'mail.org'])[1 + i % 4], \
             f, l, \
             '+1 ' || translate(substr(md5('p' || i), 1, 10), 'abcdef', '123456'), 'City ' || (i % 300), \
             CASE WHEN i % 10 = 0 THEN NULL WHEN i % 10 = 1 THEN '' ELSE 'note, \"' || substr(md5('n' || i) || md5('m' || i), 1, 8 + i % 40) || '\"' END, \
             i * 0.01, i % 2 = 0, TIMESTAMP '2020-01-01' + i * INTERVAL '1 second' \
             FROM generate_series(1, {rows}) i, \
             LATERAL (SELECT (ARRAY[{first_names}])[1 + (i * 7) % {nf}] AS f, (ARRAY[{last_names}])[1 + (i * 13) % {nl}] AS l) n"
        ),
    )?;
    // Statistics, as Redshift's automatic ANALYZE after a load would leave them (the emulator's
    // svv_table_info reads the row count of a large table from them instead of counting).
    sql("src", "ANALYZE bench.users")?;
    // Outside the schema mirage copies (it drops tables the source lacks there).
    sql(
        "dst",
        &format!(
            "CREATE SCHEMA floor; {}",
            TABLE.replace("bench.users", "floor.users")
        ),
    )?;

    let codec = if gzip { "GZIP" } else { "ZSTD" };
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let workspace = |masked: bool| -> Res<std::path::PathBuf> {
        let p = dir
            .path()
            .join(if masked { "masked.toml" } else { "plain.toml" });
        let text = format!(
            "[source]\nurl = \"redshift://postgres@{addr}/src?sslmode=disable\"\n\n\
             [destination]\nurl = \"redshift://postgres@{addr}/dst?sslmode=disable\"\n\n\
             [schemas]\ninclude = [\"bench\"]\n\n\
             [staging]\nbucket = \"mirage-bench\"\nprefix = \"mirage\"\niam_role = \"{ROLE}\"\nendpoint = \"{}\"\nmax_file_size = \"5MB\"\ncompression = \"{}\"\n\n{}",
            moto.endpoint(),
            codec.to_lowercase(),
            if masked { MASKED } else { "" },
            addr = emu.address()
        );
        std::fs::write(&p, text).map_err(|e| e.to_string())?;
        Ok(p)
    };
    let (masked_ws, plain_ws) = (workspace(true)?, workspace(false)?);
    let mirage_cmd = |ws: &Path, cpu: Option<usize>| {
        let mut c = Command::new(&mirage);
        if let Some(cpu) = cpu {
            // SAFETY: between fork and exec only sched_setaffinity runs, which is
            // async-signal-safe; the set is built before the fork.
            let set = cpu_set(Some(cpu));
            unsafe {
                c.pre_exec(move || {
                    if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        c.args(["run", "--no-progress", "-w"])
            .arg(ws)
            .env("MIRAGE_SEED", "bench-seed-2f0a6c1e9d8b7a65f4e3d2c1b0a99887")
            .env("AWS_ACCESS_KEY_ID", "bench")
            .env("AWS_SECRET_ACCESS_KEY", "bench")
            .env("AWS_REGION", "us-east-1");
        c
    };
    if lambda {
        let (floor_sql, copy_sql) = (
            |run: usize| {
                format!(
                    "UNLOAD ('SELECT * FROM bench.users') TO 's3://mirage-bench/floor/lambda-{run}/' IAM_ROLE '{ROLE}' \
                     FORMAT AS CSV NULL AS '__MIRAGE_NULL__' {codec} PARALLEL ON MAXFILESIZE 5 MB MANIFEST VERBOSE"
                )
            },
            |run: usize| {
                format!(
                    "TRUNCATE floor.users; COPY floor.users FROM 's3://mirage-bench/floor/lambda-{run}/manifest' \
                     IAM_ROLE '{ROLE}' MANIFEST FORMAT AS CSV {codec} NULL AS '__MIRAGE_NULL__' EXPLICIT_IDS \
                     COMPUPDATE OFF STATUPDATE OFF"
                )
            },
        );
        let floor = |run: usize| -> Res<Duration> {
            let start = Instant::now();
            sql("src", &floor_sql(run))?;
            sql("dst", &copy_sql(run))?;
            Ok(start.elapsed())
        };
        let lambda_ws = dir.path().join("lambda.toml");
        std::fs::write(
            &lambda_ws,
            std::fs::read_to_string(&masked_ws)
                .map_err(|e| e.to_string())?
                .replace(
                    "compression = ",
                    &format!("process = \"lambda\"\nlambda_runner = \"local\"\nlambda_image = \"{IMAGE}\"\ncompression = "),
                ),
        )
        .map_err(|e| e.to_string())?;
        let handler = exe
            .parent()
            .map(|d| d.join("mirage-lambda"))
            .filter(|p| p.exists())
            .ok_or("build mirage-lambda in release mode first (bench/run does)")?;
        crate::lambda::create_role(&moto.endpoint())?;
        let report = dir.path().join("report.json");
        let lambda_cmd = |concurrency: usize| {
            let mut c = mirage_cmd(&lambda_ws, None);
            c.arg("--report")
                .arg(&report)
                .env("TONIC_LAMBDA_ROLE", crate::lambda::LAMBDA_ROLE)
                .env("TONIC_LAMBDA_TIMEOUT", "120")
                .env("TONIC_LAMBDA_SQS_VISIBILITY_TIMEOUT", "720");
            (c, concurrency)
        };
        let start_runner = |concurrency: usize| {
            rt.block_on(mirage_lambda_runner::Runner::start(
                mirage_lambda_runner::Config {
                    endpoint: Some(moto.endpoint()),
                    region: "us-east-1".into(),
                    function: "mirage-worker-0-1-0".into(),
                    binary: handler.clone(),
                    concurrency,
                    env: vec![
                        ("AWS_ACCESS_KEY_ID".into(), "bench".into()),
                        ("AWS_SECRET_ACCESS_KEY".into(), "bench".into()),
                    ],
                    credentials: Some(("bench".into(), "bench".into())),
                },
            ))
        };
        let mut floor_s = Sample::new("UNLOAD + COPY, no transform (the floor)");
        let mut v2 = Sample::new("Data Pipeline V2, 6 columns masked");
        let mut scaling: Vec<(usize, Sample, Vec<crate::lambda::Figures>)> = [1usize, 2, 4]
            .into_iter()
            .map(|c| {
                (
                    c,
                    Sample::new(&format!("SQS + Lambda, {c} handler(s) at once")),
                    Vec::new(),
                )
            })
            .collect();
        for run in 0..runs {
            eprintln!("lambda run {} of {runs} …", run + 1);
            floor_s.times.push(floor(run)?);
            v2.add(measure(&mut mirage_cmd(&masked_ws, None))?);
            for (c, sample, figures) in scaling.iter_mut() {
                let runner = start_runner(*c);
                let (mut cmd, _) = lambda_cmd(*c);
                let m = measure(&mut cmd);
                rt.block_on(runner.stop());
                sample.add(m?);
                figures.push(crate::lambda::figures(&report)?);
            }
        }
        let copied = sql("dst", "SELECT count(*) FROM bench.users")?;
        if copied != rows.to_string() {
            return Err(format!("mirage copied {copied} rows, expected {rows}"));
        }
        let md = crate::lambda::report(rows, runs, cpus_note(), &floor_s, &v2, &scaling);
        println!("{md}");
        if let Some(p) = out {
            std::fs::write(&p, &md).map_err(|e| format!("{}: {e}", p.display()))?;
        }
        drop(emu);
        return Ok(());
    }
    // Two layouts of the same 2+ cores. "shared": every process may run anywhere, so the worker's
    // CPU competes with the warehouse's and S3's. "split": the warehouse (PostgreSQL + the
    // emulator, i.e. this process) and S3 (moto) are pinned to core 0 and mirage to core 1 — the
    // deployed shape, where Redshift and S3 run on their own hardware and the worker on its own
    // machine. The floor never uses the worker, so in "split" it has core 0 only.
    let cpus = online_cpus();
    let layouts: &[Layout] = if cpus >= 2 {
        &[Layout::Shared, Layout::Split]
    } else {
        &[Layout::Shared]
    };
    let roots = [
        Some(std::process::id()),
        pg.postmaster_pid(),
        Some(moto.pid()),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>();
    let mut results = Vec::new();
    for &layout in layouts {
        let mut floor = Sample::new("UNLOAD + COPY, no transform (the floor)");
        let mut masked = Sample::new("mirage, 6 columns masked (integer_key on id)");
        let mut plain = Sample::new("mirage, everything passed through");
        match layout {
            Layout::Shared => pin_tree(&roots, None)?,
            Layout::Split => pin_tree(&roots, Some(0))?,
        }
        for run in 0..runs {
            eprintln!("{} run {} of {runs} …", layout.name(), run + 1);
            // The floor: the same UNLOAD and COPY mirage issues, without the worker in between.
            let tag = layout.name();
            let start = Instant::now();
            sql(
                "src",
                &format!(
                    "UNLOAD ('SELECT * FROM bench.users') TO 's3://mirage-bench/floor/{tag}-{run}/' IAM_ROLE '{ROLE}' \
                     FORMAT AS CSV NULL AS '__MIRAGE_NULL__' {codec} PARALLEL ON MAXFILESIZE 5 MB MANIFEST VERBOSE"
                ),
            )?;
            sql(
                "dst",
                &format!(
                    "TRUNCATE floor.users; COPY floor.users FROM 's3://mirage-bench/floor/{tag}-{run}/manifest' \
                     IAM_ROLE '{ROLE}' MANIFEST FORMAT AS CSV {codec} NULL AS '__MIRAGE_NULL__' EXPLICIT_IDS \
                     COMPUPDATE OFF STATUPDATE OFF"
                ),
            )?;
            floor.times.push(start.elapsed());
            let worker = match layout {
                Layout::Shared => None,
                Layout::Split => Some(1),
            };
            masked.add(measure(&mut mirage_cmd(&masked_ws, worker))?);
            plain.add(measure(&mut mirage_cmd(&plain_ws, worker))?);
        }
        let copied = sql("dst", "SELECT count(*) FROM bench.users")?;
        if copied != rows.to_string() {
            return Err(format!("mirage copied {copied} rows, expected {rows}"));
        }
        results.push((layout, floor, masked, plain));
    }
    pin_tree(&roots, None)?;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Redshift Data Pipeline V2 benchmark\n\n\
         `bench/run redshift --rows {rows} --runs {runs}{}`: one table of {rows} rows × 12 columns \
         (`bench.users`; real first and last names, emails made of them, phones and notes drawn from md5; no PRIMARY KEY, since the emulator would back it with a B-tree index Redshift does not have), Redshift emulator (this process) on PostgreSQL 15, S3 in moto, same machine ({cpus} cores). \
         The floor is a plain UNLOAD + COPY of the same table with the options mirage uses (CSV, {codec}, \
         NULL sentinel, PARALLEL ON, MAXFILESIZE 5 MB, MANIFEST), no transformation, measured in the same run. mirage's \
         times are whole jobs (catalog, SHOW TABLE, UNLOAD, transform, upload, COPY, swap, cleanup).\n\n\
         Two layouts of the machine's cores. **shared**: any process on any core, so the worker's CPU \
         competes with the warehouse's and S3's (the floor alone keeps both cores busy). **split**: \
         PostgreSQL, the emulator and moto pinned to core 0, mirage to core 1 — the deployed shape, \
         where Redshift and S3 run on their own hardware and the worker on its own machine; the floor \
         has core 0 only, as it never uses the worker.\n",
        if gzip { " --gzip" } else { "" }
    );
    for (layout, floor, masked, plain) in &results {
        let base = floor.median();
        let _ = writeln!(md, "## {}\n", layout.name());
        let _ = writeln!(
            md,
            "| run | median s | best s | rows/s (median) | × floor (median) | peak RSS |"
        );
        let _ = writeln!(md, "| --- | ---: | ---: | ---: | ---: | ---: |");
        for s in [floor, masked, plain] {
            let _ = writeln!(
                md,
                "| {} | {:.2} | {:.2} | {:.0} | {:.2} | {} |",
                s.name,
                s.median(),
                s.min(),
                rows as f64 / s.median(),
                s.median() / base,
                if s.rss_kib > 0 {
                    format!("{} MiB", s.rss_kib / 1024)
                } else {
                    "—".into()
                }
            );
        }
        let _ = writeln!(
            md,
            "\n{}: the transform adds {:.0}% to the plain UNLOAD + COPY wall time (target: under 25%); \
             passing everything through adds {:.0}%.\n",
            layout.name(),
            (masked.median() / base - 1.0) * 100.0,
            (plain.median() / base - 1.0) * 100.0
        );
    }
    println!("{md}");
    if let Some(p) = out {
        std::fs::write(&p, &md).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    if hold {
        eprintln!(
            "holding: emulator at {}, moto at {}; workspaces {} and {}\n\
             env MIRAGE_SEED=bench-seed-2f0a6c1e9d8b7a65f4e3d2c1b0a99887 AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 \
             mirage run --no-progress -w <workspace>\npress Enter to stop",
            emu.address(),
            moto.endpoint(),
            masked_ws.display(),
            plain_ws.display()
        );
        let _ = std::io::stdin().read_line(&mut String::new());
    }
    drop(emu);
    Ok(())
}

#[derive(Clone, Copy)]
enum Layout {
    Shared,
    Split,
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Layout::Shared => "shared",
            Layout::Split => "split",
        }
    }
}

/// One CPU, or all of them.
fn cpu_set(cpu: Option<usize>) -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is a plain bit array; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for c in 0..online_cpus() {
        if cpu.is_none_or(|only| only == c) {
            // SAFETY: c is below the number of CPUs, inside the set's bounds.
            unsafe { libc::CPU_SET(c, &mut set) };
        }
    }
    set
}

/// Pin every thread of this process (the emulator), of the postmaster and of their descendants
/// (backends, moto) to one CPU, or let them run anywhere again. Processes forked later inherit
/// it from their parent.
fn pin_tree(roots: &[u32], cpu: Option<usize>) -> Res<()> {
    let set = cpu_set(cpu);
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").map_err(|e| format!("/proc: {e}"))? {
        let Ok(entry) = entry else { continue };
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        // "pid (comm) state ppid …": comm may hold spaces and parentheses.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parents.push((pid, ppid));
        }
    }
    let mut tree = roots.to_vec();
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        tree.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    for pid in tree {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            if let Ok(tid) = t.file_name().to_string_lossy().parse::<libc::pid_t>() {
                // SAFETY: set is a valid cpu_set_t; a thread that exited just fails.
                unsafe {
                    libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set)
                };
            }
        }
    }
    Ok(())
}

/// CPUs online (not the ones this thread may use, which pinning changes).
fn online_cpus() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(1).max(1)
}
