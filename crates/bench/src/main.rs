//! `mirage-bench`: measures mirage next to the plain `psql COPY … TO STDOUT | psql COPY … FROM
//! STDIN` pipe on the same data, in the same run, and reports ratios (machines here are noisy:
//! absolute times alone mean little).
//!
//! Run it with `bench/run` (which builds in release mode first), or:
//!   cargo run --release -p mirage-bench -- --rows 1000000 --runs 3 --out bench/RESULTS.md

use mirage_core::ValueType;
use mirage_generators::{ColumnContext, Prf};
use mirage_testkit::PgCluster;
use mirage_transform::PartTransform;
use mirage_transform::codec::{Format, RecordSplitter};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    rows: u64,
    runs: usize,
    out: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        rows: 1_000_000,
        runs: 3,
        out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--rows" => args.rows = value()?.parse().map_err(|e| format!("--rows: {e}"))?,
            "--runs" => args.runs = value()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--out" => args.out = Some(PathBuf::from(value()?)),
            "-h" | "--help" => {
                return Err("usage: mirage-bench [--rows N] [--runs N] [--out FILE.md]".into());
            }
            other => return Err(format!("unknown argument {other}; try --help")),
        }
    }
    Ok(args)
}

/// 20 columns, 5 of them personal data the masked scenario rewrites.
const TABLE: &str = "
CREATE TABLE users (
    id bigint NOT NULL,
    first_name text, last_name text, email text, phone text, ssn text,
    city text, state char(2), zip text, created_at timestamptz, updated_at timestamptz,
    balance numeric(12,2), score double precision, active boolean, plan text, logins integer,
    referrer_id bigint, notes text, country text, age smallint
)";

fn fill(rows: u64) -> String {
    format!(
        "INSERT INTO users SELECT i,
            (ARRAY['Ada','Grace','Alan','Edsger','Barbara','Donald','Margaret','Ken'])[1 + i % 8] || i % 1000,
            (ARRAY['Lovelace','Hopper','Turing','Dijkstra','Liskov','Knuth','Hamilton'])[1 + i % 7],
            'user' || i || '@example.com',
            '(' || lpad((i % 1000)::text, 3, '0') || ') 555-' || lpad((i % 10000)::text, 4, '0'),
            lpad((i % 900)::text, 3, '0') || '-' || lpad((i % 100)::text, 2, '0') || '-' || lpad((i % 10000)::text, 4, '0'),
            (ARRAY['Springfield','Shelbyville','Ogdenville','North Haverbrook'])[1 + i % 4],
            (ARRAY['CA','NY','TX','WA'])[1 + i % 4],
            lpad((i % 100000)::text, 5, '0'),
            '2024-01-01'::timestamptz + i * interval '1 minute',
            '2025-01-01'::timestamptz + i * interval '2 minutes',
            (i % 100000) / 100.0, (i % 997) / 7.0, i % 3 = 0,
            (ARRAY['free','pro','team'])[1 + i % 3], (i % 500)::int,
            CASE WHEN i % 4 = 0 THEN NULL ELSE i / 2 END,
            CASE WHEN i % 5 = 0 THEN NULL ELSE 'note about customer ' || i || E' with a tab\\there' END,
            'US', (18 + i % 70)::smallint
        FROM generate_series(1, {rows}) i"
    )
}

const MASKED: &str = r#"
[tables."public.users".columns]
first_name = { generator = "first_name" }
last_name = { generator = "last_name" }
email = { generator = "email" }
phone = { generator = "character_scramble" }
ssn = { generator = "character_scramble" }
"#;

/// Wall time and peak RSS (KiB) of a command, waited for with wait4.
fn measure(cmd: &mut Command) -> Result<(Duration, u64), String> {
    let start = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value to be overwritten by wait4.
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

struct Sample {
    name: String,
    times: Vec<Duration>,
    rss_kib: u64,
}

impl Sample {
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

fn sh(pg: &PgCluster, script: &str) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c").arg(script).env("PGPORT", pg.port().to_string());
    c
}

/// The transform alone: PostgreSQL COPY text parts in memory, masked with the same 5
/// generators, on 1 and 2 threads.
fn transform_only(data: &[u8], threads: usize) -> (f64, u64) {
    let prf = Prf::from_seed("bench");
    let text = ValueType::Text { max_chars: None };
    let build = |name: &str| {
        let ctx = ColumnContext {
            table: "public.users",
            column: name,
            value_type: &text,
            not_null: false,
        };
        mirage_generators::build(name, &toml::Table::new(), &ctx, &prf).ok()
    };
    let names = [
        "id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "ssn",
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
        "referrer_id",
        "notes",
        "country",
        "age",
    ];
    let columns = names
        .iter()
        .map(|n| {
            let g = match *n {
                "first_name" | "last_name" | "email" => build(n),
                "phone" | "ssn" => build("character_scramble"),
                _ => None,
            };
            (n.to_string(), g)
        })
        .collect();
    let t = Arc::new(PartTransform::new(Format::PgText, columns));
    // Cut into 4 MiB parts on record boundaries.
    let mut parts = Vec::new();
    let mut start = 0;
    while start < data.len() {
        let end = (start + (4 << 20)).min(data.len());
        let mut s = RecordSplitter::new(Format::PgText);
        let cut = if end == data.len() {
            end - start
        } else {
            s.complete_len(&data[start..end])
        };
        parts.push(&data[start..start + cut]);
        start += cut;
    }
    let begin = Instant::now();
    let rows: u64 = std::thread::scope(|scope| {
        let chunks: Vec<Vec<&[u8]>> = (0..threads)
            .map(|i| parts.iter().skip(i).step_by(threads).copied().collect())
            .collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|mine| {
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

fn main() {
    if let Err(e) = real_main() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<(), String> {
    let args = parse_args()?;
    let mirage = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("mirage")))
        .filter(|p| p.exists())
        .ok_or("build mirage first: cargo build --release -p mirage (bench/run does it)")?;
    eprintln!("starting PostgreSQL …");
    let pg = PgCluster::start().map_err(|e| e.to_string())?;
    for db in ["src", "dst_pipe", "dst_mirage"] {
        pg.create_database(db).map_err(|e| e.to_string())?;
    }
    eprintln!("creating {} rows …", args.rows);
    pg.psql("src", TABLE).map_err(|e| e.to_string())?;
    pg.psql("src", &fill(args.rows))
        .map_err(|e| e.to_string())?;
    pg.psql("src", "VACUUM ANALYZE users")
        .map_err(|e| e.to_string())?;
    pg.psql("dst_pipe", TABLE).map_err(|e| e.to_string())?;
    let bytes: u64 = pg
        .psql("src", "SELECT pg_relation_size('users')")
        .map_err(|e| e.to_string())?
        .parse()
        .unwrap_or(0);

    let dir = std::env::temp_dir().join(format!("mirage-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let ws = |tables: &str| {
        format!(
            "[source]\nurl = \"{}\"\n[destination]\nurl = \"{}\"\n{tables}",
            pg.url("src"),
            pg.url("dst_mirage")
        )
    };
    let masked_ws = dir.join("masked.toml");
    let plain_ws = dir.join("passthrough.toml");
    std::fs::write(&masked_ws, ws(MASKED)).map_err(|e| e.to_string())?;
    std::fs::write(&plain_ws, ws("")).map_err(|e| e.to_string())?;

    let pipe = format!(
        "psql -X -q -d {src} -c 'COPY users TO STDOUT' | psql -X -q -d {dst} -c 'COPY users FROM STDIN'",
        src = pg.url("src"),
        dst = pg.url("dst_pipe")
    );
    let mut samples = vec![
        Sample {
            name: "psql COPY pipe (baseline)".into(),
            times: vec![],
            rss_kib: 0,
        },
        Sample {
            name: "mirage, 5 columns masked".into(),
            times: vec![],
            rss_kib: 0,
        },
        Sample {
            name: "mirage, passthrough".into(),
            times: vec![],
            rss_kib: 0,
        },
    ];
    for run in 0..args.runs {
        eprintln!("run {} of {} …", run + 1, args.runs);
        pg.psql("dst_pipe", "TRUNCATE users")
            .map_err(|e| e.to_string())?;
        let (t, rss) = measure(&mut sh(&pg, &pipe))?;
        samples[0].times.push(t);
        samples[0].rss_kib = samples[0].rss_kib.max(rss);
        for (i, w) in [(1, &masked_ws), (2, &plain_ws)] {
            let mut cmd = Command::new(&mirage);
            cmd.args(["run", "--no-progress", "-w"])
                .arg(w)
                .arg("--report")
                .arg(dir.join("report.json"))
                .env("MIRAGE_SEED", "bench-seed")
                .env("MIRAGE_LOG", "warn");
            let (t, rss) = measure(&mut cmd)?;
            samples[i].times.push(t);
            samples[i].rss_kib = samples[i].rss_kib.max(rss);
        }
    }
    let check = pg
        .psql("dst_mirage", "SELECT count(*) FROM users")
        .map_err(|e| e.to_string())?;
    if check != args.rows.to_string() {
        return Err(format!(
            "mirage loaded {check} rows, expected {}",
            args.rows
        ));
    }

    // The transform alone, in memory.
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

    let base = samples[0].median();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut md = String::new();
    md += &format!(
        "# mirage benchmark\n\n{} · {} cores · {} rows × 20 columns ({:.0} MiB on disk, {:.0} MiB as COPY text) · {} runs each\n\n",
        humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
        cores,
        args.rows,
        bytes as f64 / 1048576.0,
        data.len() as f64 / 1048576.0,
        args.runs
    );
    md += "| what | min s | median s | rows/s | MB/s (COPY text) | peak RSS | × pipe (median) |\n";
    md += "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n";
    for s in &samples {
        let m = s.median();
        md += &format!(
            "| {} | {:.2} | {:.2} | {:.0} | {:.1} | {:.0} MiB | {:.2} |\n",
            s.name,
            s.min(),
            m,
            args.rows as f64 / m,
            data.len() as f64 / 1e6 / m,
            s.rss_kib as f64 / 1024.0,
            m / base
        );
    }
    md += &format!(
        "\nTransform alone (5 masked columns, 4 MiB parts, in memory): 1 thread {:.2} s = {:.0} MB/s, {:.0} rows/s; \
         2 threads {:.2} s = {:.0} MB/s (scaling {:.2}×).\n",
        t1,
        data.len() as f64 / 1e6 / t1,
        rows1 as f64 / t1,
        t2,
        data.len() as f64 / 1e6 / t2,
        t1 / t2
    );
    md += &format!(
        "\nmirage's time includes its fixed costs: the snapshot, `pg_dump`/`pg_restore` of the schema and the report. \
         Reproduce with `bench/run --rows {} --runs {}`.\n",
        args.rows, args.runs
    );
    println!("{md}");
    if let Some(out) = &args.out {
        write(out, &md)?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
    }
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}
