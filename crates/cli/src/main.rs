use anyhow::Context;
use clap::{Parser, Subcommand};
use mirage_cli::render::{ColorChoice, Mode, Renderer, err, error, out};
use mirage_cli::{check, demo, init, policy, scan};
use mirage_core::workspace::{SchemaFilter, Workspace};
use mirage_engine::{Cancel, JobReport, JobStatus, RunError, RunOptions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// mirage makes safe, realistic copies of production databases for development and testing:
/// it copies a source database's schema and rows into a destination database, replacing
/// sensitive values with consistent fakes on the way.
#[derive(Parser)]
#[command(name = "mirage", version, about, long_about = None)]
struct Cli {
    /// Colour in messages: auto (on a terminal, unless NO_COLOR is set), always or never.
    #[arg(long, global = true, value_enum, default_value = "auto")]
    color: ColorChoice,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a starter workspace.toml listing every table and column of the source.
    ///
    /// Every column is written with the generator the scan suggests from a sample of its values
    /// (see `mirage scan`), a comment saying why, and its type; --no-scan writes them all as
    /// passthrough without reading rows. Review them, then `mirage plan`. The password is read
    /// from $MIRAGE_SOURCE_PASSWORD, never written.
    ///
    /// Examples:
    ///   mirage init --source postgres://app@prod-db:5432/shop \
    ///               --destination postgres://app@dev-db:5432/shop_copy
    ///   mirage init --source redshift://etl@prod.abc123.us-east-1.redshift.amazonaws.com:5439/dev \
    ///               --destination redshift://etl@dev.def456.us-east-1.redshift.amazonaws.com:5439/dev
    #[command(verbatim_doc_comment)]
    Init {
        /// Source URL: postgres://user@host:port/db, redshift://user@host:5439/db or files:./folder
        #[arg(long)]
        source: String,
        /// Destination URL (edit it later if not given).
        #[arg(long, default_value = "postgres://user@localhost:5432/copy_of_source")]
        destination: String,
        /// Schemas to include (repeat the flag); default: every schema.
        #[arg(long = "schema")]
        schemas: Vec<String>,
        /// Where to write the workspace.
        #[arg(short, long, default_value = "workspace.toml")]
        workspace: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
        /// Write every column as passthrough instead of sampling the source for suggestions.
        #[arg(long)]
        no_scan: bool,
        /// Rows sampled per table for the suggestions.
        #[arg(long, default_value_t = mirage_engine::review::DEFAULT_SAMPLE as u64, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        sample: u64,
    },
    /// Check the workspace against the source and print what a run would do.
    ///
    /// Reads the source's schema (nothing is written anywhere), matches every table, column
    /// and generator in the workspace, and prints the plan or every mistake found.
    ///
    /// Example:
    ///   MIRAGE_SEED=... mirage plan -w workspace.toml
    #[command(verbatim_doc_comment)]
    Plan {
        #[arg(short, long, default_value = "workspace.toml")]
        workspace: PathBuf,
        /// text, or json: one object with `ok`, `changes` (the source compared with the
        /// workspace: new_table, new_column, type_changed, dropped_table, dropped_column, each
        /// new or changed column with the scan's verdict), `errors`, `warnings` and `tables`.
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        format: String,
    },
    /// Find sensitive columns: sample every table and classify every column.
    ///
    /// Reads the catalog and a bounded sample of each table (PostgreSQL: TABLESAMPLE SYSTEM
    /// with a row cap; Redshift: LIMIT) under the read-only grants a run needs, and judges each
    /// column by its name and its values (validators: Luhn, SSN rules, IBAN check digits,
    /// libphonenumber, email syntax, name dictionaries …). Prints kinds, confidence and
    /// evidence, never a value. --write adds the suggested generators to the workspace for the
    /// columns it does not list yet, each with a comment saying why; the rest of the file is
    /// kept as it was. Exit code: 0, 1 the source could not be read or the workspace could not
    /// be written, 2 bad input (a workspace --write cannot change: read-only, or not a table
    /// where it adds entries).
    ///
    /// Examples:
    ///   mirage scan -w workspace.toml
    ///   mirage scan -w workspace.toml --format json --sample 5000
    ///   mirage scan -w workspace.toml --write
    #[command(verbatim_doc_comment)]
    Scan {
        #[arg(short, long, default_value = "workspace.toml")]
        workspace: PathBuf,
        /// Rows sampled per table (1 to 1000000); at most 8192 characters of each value are read.
        #[arg(long, default_value_t = mirage_engine::review::DEFAULT_SAMPLE as u64, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        sample: u64,
        /// text (a table) or json (one object a column).
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        format: String,
        /// Add the suggestions for the columns the workspace does not list.
        #[arg(long)]
        write: bool,
    },
    /// Copy the source into the destination, de-identifying on the way.
    ///
    /// Drops and recreates the included schemas in the destination, loads every table
    /// (each one atomically), then creates indexes, constraints and triggers. Writes a JSON
    /// job report to .mirage/jobs/<job id>.json beside the workspace (or --report).
    /// Exit code: 0 done, 1 the job failed (the message lists completed tables), 2 bad
    /// input, 130 interrupted.
    ///
    /// Example:
    ///   export MIRAGE_SEED=$(openssl rand -hex 32)   # keep it: same seed => same fakes
    ///   MIRAGE_SOURCE_PASSWORD=... MIRAGE_DESTINATION_PASSWORD=... mirage run -w workspace.toml
    #[command(verbatim_doc_comment)]
    Run {
        #[arg(short, long, default_value = "workspace.toml")]
        workspace: PathBuf,
        /// Write the JSON report here.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Plain log lines instead of progress bars.
        #[arg(long)]
        no_progress: bool,
        /// text (progress and a summary table) or json (one JSON event per line on stdout: the
        /// tables' events and warnings, then the report; an `error` event follows when the job
        /// fails, and is the only one when it cannot start).
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        format: String,
    },
    /// Check that everything a run needs is in place, and print what fixes what is not.
    ///
    /// Connects with the configured users and checks, item by item: the source user's USAGE
    /// and SELECT grants (and SELECT on svv_table_info for Redshift), pg_dump and pg_restore
    /// on PATH (PostgreSQL); the workspace against the source's schema (every mistake
    /// `mirage plan` reports); the destination's database (not the source's), CREATE on it (and TEMPORARY for Redshift), existing schemas (owner, or DROP
    /// for Redshift), preserved tables present with the source's columns,
    /// superuser when preserving ownership; the staging bucket (exists, named with the policy
    /// prefix, put/get/list/delete with a probe object that is removed, the KMS key); and the
    /// TONIC_LAMBDA_* settings when process = "lambda". Writes nothing to the databases.
    /// `mirage run` runs the very same checks and stops before writing when one fails.
    /// Exit code: 0 when everything a run needs passes, 1 otherwise, 2 bad workspace.
    ///
    /// Example:
    ///   mirage check -w workspace.toml
    ///   mirage check -w workspace.toml --format json
    #[command(verbatim_doc_comment)]
    Check {
        #[arg(short, long, default_value = "workspace.toml")]
        workspace: PathBuf,
        /// text (✓/✗ lines with fixes) or json.
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        format: String,
    },
    /// Remove what killed jobs left in the staging bucket and in AWS.
    ///
    /// A job killed with -9 (or whose machine died) cannot clean up: its staging folder
    /// (raw UNLOADed rows included) and, for the SQS + Lambda process, its queues, event source
    /// mapping and bucket notification entry stay. Every Redshift run removes those of dead jobs
    /// first; `clean` does it on demand. A job is dead when its lease (renewed every minute)
    /// is more than 10 minutes old; live jobs are never touched.
    ///
    /// Example:
    ///   mirage clean -w workspace.toml
    #[command(verbatim_doc_comment)]
    Clean {
        #[arg(short, long, default_value = "workspace.toml")]
        workspace: PathBuf,
    },
    /// Print the IAM policies and SQL scripts a setup needs, filled in for this workspace.
    ///
    /// Documents: the worker's IAM policy for Data Pipeline V2 and for the SQS + Lambda
    /// process, the Lambda execution role's policy and trust policy, the KMS key-policy
    /// statement (with a KMS key), and the SQL creating the source and destination users with
    /// the minimum grants (and the superuser variant). Every resource is scoped to the prefix.
    ///
    /// Example:
    ///   mirage policy -w workspace.toml --account 123456789012
    ///   mirage policy -w workspace.toml --prefix tonic- --format json
    ///   mirage policy -w workspace.toml --out policies/     # one file per document
    #[command(verbatim_doc_comment)]
    Policy {
        #[arg(short, long, default_value = "workspace.toml")]
        workspace: PathBuf,
        /// AWS account id (default: the account of [staging] iam_role).
        #[arg(long)]
        account: Option<String>,
        /// AWS region (default: [staging] region).
        #[arg(long)]
        region: Option<String>,
        /// Staging bucket (repeatable; default: [staging] bucket).
        #[arg(long = "bucket")]
        buckets: Vec<String>,
        /// What every resource name starts with (default: [staging] resource_prefix, mirage-).
        #[arg(long)]
        prefix: Option<String>,
        /// The Lambda execution role's ARN (default: $TONIC_LAMBDA_ROLE, else <prefix>lambda).
        #[arg(long)]
        lambda_role: Option<String>,
        /// The queues' KMS key: id, ARN or alias/<name> (default: $TONIC_LAMBDA_KMS_MASTER_KEY).
        /// [staging] kms_key_id, the staging objects' key, is granted as well.
        #[arg(long)]
        kms_key: Option<String>,
        /// text (every document with a title), json (one JSON object) or sql (the scripts).
        #[arg(long, default_value = "text", value_parser = ["text", "json", "sql"])]
        format: String,
        /// Write one file per document into this folder.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run a complete job on a built-in sample dataset, no server needed.
    ///
    /// Writes CSV files of customers, addresses, orders and payments (names, emails, phones,
    /// SSNs, card numbers, free-text notes, NULLs, unicode) to DIR/source, a workspace to
    /// DIR/workspace.toml, de-identifies into DIR/destination and shows rows before and after.
    ///
    /// Example:
    ///   mirage demo --dir /tmp/mirage-demo --rows 5000
    #[command(verbatim_doc_comment)]
    Demo {
        #[arg(long, default_value = "mirage-demo")]
        dir: PathBuf,
        /// Number of customers (other tables scale with it).
        #[arg(long, default_value_t = 1000)]
        rows: u64,
    },
    /// List the generators, their options and the types they accept.
    ///
    /// Example:
    ///   mirage generators
    ///   mirage generators --markdown   # the README's reference table
    #[command(verbatim_doc_comment)]
    Generators {
        /// Print the reference as the Markdown table the README embeds.
        #[arg(long)]
        markdown: bool,
    },
}

/// Library log lines (connectors' warnings, `MIRAGE_LOG=debug`) on stderr; escape codes only
/// when colour is on.
fn init_logging(color: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MIRAGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color)
        .with_target(false)
        .try_init();
}

fn exit_for(e: &RunError) -> ExitCode {
    match e {
        e if e.is_bad_input() => ExitCode::from(2),
        RunError::Interrupted => ExitCode::from(130),
        RunError::Incomplete(r) if r.status == JobStatus::Canceled => ExitCode::from(130),
        _ => ExitCode::from(1),
    }
}

/// `mirage scan --write`: add the suggestions to the workspace file, checked to parse before
/// it replaces the file (written beside it, then renamed).
fn write_scan(
    path: &Path,
    ws: &Workspace,
    catalog: &mirage_core::schema::Catalog,
    found: &[mirage_engine::review::ColumnScan],
    color: bool,
) -> ExitCode {
    let fail = |message: String| {
        error(color, &message);
        ExitCode::from(1)
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return fail(format!("{}: cannot read it: {e}", path.display())),
    };
    // A file made read-only is not replaced behind its owner's back.
    if std::fs::metadata(path).is_ok_and(|m| m.permissions().readonly()) {
        error(
            color,
            &format!(
                "{} is read-only; make it writable (chmod u+w) to let --write add the scan's entries",
                path.display()
            ),
        );
        return ExitCode::from(2);
    }
    let (new_text, added, sensitive) = match scan::write_suggestions(&text, ws, catalog, found) {
        Ok(r) => r,
        Err(e) => {
            error(color, &format!("{}: cannot add to it: {e}", path.display()));
            return ExitCode::from(2);
        }
    };
    if added == 0 {
        err(&format!(
            "{}: every column is already listed; nothing to add",
            path.display()
        ));
        return ExitCode::SUCCESS;
    }
    if let Err(e) = Workspace::parse(path, &new_text) {
        return fail(format!(
            "the workspace with the scan's entries would not parse ({e}); {} was left as it was",
            path.display()
        ));
    }
    // A name of this process's own: two scans writing at once never share a half-written file.
    let tmp = path.with_extension(format!("toml.scan-{}.tmp", std::process::id()));
    let written = std::fs::write(&tmp, &new_text).and_then(|_| {
        if let Ok(meta) = std::fs::metadata(path) {
            std::fs::set_permissions(&tmp, meta.permissions())?;
        }
        std::fs::rename(&tmp, path)
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return fail(format!(
            "{}: cannot write it (through {} beside it): {e}",
            path.display(),
            tmp.display()
        ));
    }
    err(&format!(
        "{}: added {added} column(s), {sensitive} with a generator for sensitive data; review them, then `mirage plan`",
        path.display()
    ));
    ExitCode::SUCCESS
}

fn load(path: &Path, color: bool) -> Result<Workspace, ExitCode> {
    Workspace::load(path).map_err(|e| {
        error(color, &e.to_string());
        ExitCode::from(2)
    })
}

/// Bad input before a job starts (exit 2): the error on stderr, and in JSON mode also as an
/// `error` event on stdout, where a consumer of the events reads.
fn refuse(color: bool, mode: Mode, message: &str) -> ExitCode {
    error(color, message);
    if mode == Mode::Json {
        out(&serde_json::json!({"event": "error", "message": message}).to_string());
    }
    ExitCode::from(2)
}

/// Cancel the job on Ctrl-C or SIGTERM. From here on SIGINT and SIGTERM no longer end the process: the job stops at
/// its next safe point and writes its report.
fn cancel_on_ctrl_c() -> Cancel {
    let cancel = Cancel::new();
    let trigger = cancel.clone();
    // SIGTERM (timeout, docker stop, Kubernetes, CI cancelling a job) stops the job the same
    // way: its report is written and everything it made outside the destination is removed.
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    tokio::spawn(async move {
        match term {
            Ok(mut term) => {
                tokio::select! {
                    r = tokio::signal::ctrl_c() => if r.is_err() { return },
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                if tokio::signal::ctrl_c().await.is_err() {
                    return;
                }
            }
        }
        trigger.trigger();
    });
    cancel
}

async fn main_async(cli: Cli) -> Result<ExitCode, anyhow::Error> {
    let color = cli.color.enabled();
    init_logging(color);
    match cli.command {
        Command::Init {
            source,
            destination,
            schemas,
            workspace,
            force,
            no_scan,
            sample,
        } => {
            if workspace.exists() && !force {
                error(
                    color,
                    &format!(
                        "{} exists; pass --force to overwrite it",
                        workspace.display()
                    ),
                );
                return Ok(ExitCode::from(2));
            }
            let filter = SchemaFilter {
                include: schemas,
                exclude: Vec::new(),
            };
            let sample = (!no_scan).then_some(sample as usize);
            let (catalog, found) =
                match init::source_catalog(&source, &filter, Path::new("."), sample).await {
                    Ok(c) => c,
                    Err(e) => {
                        error(color, &e.to_string());
                        return Ok(exit_for(&e));
                    }
                };
            let text = init::starter(&source, &destination, &filter, &catalog, &found);
            std::fs::write(&workspace, text)
                .with_context(|| format!("writing {}", workspace.display()))?;
            out(&format!(
                "wrote {} ({} tables); give sensitive columns a generator, then run `mirage plan -w {}`",
                workspace.display(),
                catalog.tables.len(),
                workspace.display()
            ));
            Ok(ExitCode::SUCCESS)
        }
        Command::Scan {
            workspace,
            sample,
            format,
            write,
        } => {
            let ws = match load(&workspace, color) {
                Ok(ws) => ws,
                Err(code) => return Ok(code),
            };
            let (catalog, found) = match mirage_engine::job::scan(&ws, sample as usize).await {
                Ok(r) => r,
                Err(e) => {
                    error(color, &e.to_string());
                    return Ok(exit_for(&e));
                }
            };
            if format == "json" {
                for line in scan::json_lines(&ws, &found) {
                    out(&line);
                }
            } else {
                out(&scan::render(&ws, &found));
            }
            if write {
                return Ok(write_scan(&workspace, &ws, &catalog, &found, color));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan { workspace, format } => {
            let ws = match load(&workspace, color) {
                Ok(ws) => ws,
                Err(code) => return Ok(code),
            };
            if format == "json" {
                let seed = ws.seed().unwrap_or_else(|_| "plan-only".into());
                return Ok(
                    match mirage_engine::job::plan_and_review(&ws, &seed).await {
                        Ok((review, plan)) => {
                            let (ok, tables, warnings, errors) = match &plan {
                                Ok(p) => (true, p.tables_json(), p.warnings.clone(), Vec::new()),
                                Err(errors) => (
                                    false,
                                    serde_json::Value::Array(Vec::new()),
                                    Vec::new(),
                                    errors.iter().map(|e| e.to_string()).collect(),
                                ),
                            };
                            out(&serde_json::to_string_pretty(&serde_json::json!({
                                "ok": ok,
                                "unreviewed": review.policy,
                                "changes": review.changes,
                                "errors": errors,
                                "warnings": warnings,
                                "tables": tables,
                            }))?);
                            if ok {
                                ExitCode::SUCCESS
                            } else {
                                ExitCode::from(2)
                            }
                        }
                        Err(e) => {
                            out(&serde_json::json!({"ok": false, "errors": [e.to_string()]})
                                .to_string());
                            error(color, &e.to_string());
                            exit_for(&e)
                        }
                    },
                );
            }
            // The plan does not depend on the seed's value; let it run without one.
            let seed = ws.seed().unwrap_or_else(|e| {
                err(&format!(
                    "note: `mirage plan` works without a seed, `mirage run` will need one: {}",
                    e.message
                ));
                "plan-only".into()
            });
            let result = mirage_engine::plan(&ws, &seed).await;
            match result {
                Ok(plan) => {
                    for w in &plan.warnings {
                        err(&format!("warning: {w}"));
                    }
                    out(plan.describe().trim_end_matches('\n'));
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    error(color, &e.to_string());
                    Ok(exit_for(&e))
                }
            }
        }
        Command::Run {
            workspace,
            report,
            no_progress,
            format,
        } => {
            let mode = match format.as_str() {
                "json" => Mode::Json,
                _ if no_progress => Mode::Plain,
                _ => Mode::Bars,
            };
            let ws = match Workspace::load(&workspace) {
                Ok(ws) => ws,
                Err(e) => return Ok(refuse(color, mode, &e.to_string())),
            };
            let seed = match ws.seed() {
                Ok(s) => s,
                Err(e) => return Ok(refuse(color, mode, &e.to_string())),
            };
            let renderer = Renderer::new(mode, color);
            let opts = RunOptions {
                seed,
                report_path: report,
                events: renderer.events(),
                cancel: cancel_on_ctrl_c(),
            };
            finish(mirage_engine::run(&ws, &opts).await, mode, color)
        }
        Command::Check { workspace, format } => {
            let ws = match load(&workspace, color) {
                Ok(ws) => ws,
                Err(code) => return Ok(code),
            };
            let checks = mirage_engine::check(&ws).await;
            if format == "json" {
                out(&serde_json::to_string_pretty(&checks)?);
            } else {
                out(&check::text(&checks, color));
            }
            Ok(if checks.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Clean { workspace } => {
            let ws = match load(&workspace, color) {
                Ok(ws) => ws,
                Err(code) => return Ok(code),
            };
            match mirage_engine::clean(&ws).await {
                Ok(lines) if lines.is_empty() => {
                    out("nothing to clean: no dead job left anything");
                    Ok(ExitCode::SUCCESS)
                }
                Ok(lines) => {
                    for l in &lines {
                        out(l);
                    }
                    Ok(if lines.iter().any(|l| l.starts_with("could not")) {
                        ExitCode::from(1)
                    } else {
                        ExitCode::SUCCESS
                    })
                }
                Err(e) => {
                    error(color, &e.to_string());
                    Ok(exit_for(&e))
                }
            }
        }
        Command::Policy {
            workspace,
            account,
            region,
            buckets,
            prefix,
            lambda_role,
            kms_key,
            format,
            out: out_dir,
        } => {
            let ws = match load(&workspace, color) {
                Ok(ws) => ws,
                Err(code) => return Ok(code),
            };
            let inputs = match policy::inputs(
                &ws,
                policy::Flags {
                    account,
                    region,
                    buckets,
                    prefix,
                    lambda_role,
                    kms_key,
                },
            ) {
                Ok(i) => i,
                Err(e) => {
                    error(color, &e.to_string());
                    return Ok(ExitCode::from(2));
                }
            };
            let mut inputs = inputs;
            if ws.schemas.include.is_empty() {
                // Every schema is copied: name them, as the source has them now.
                match policy::source_schemas(&ws).await {
                    Ok(schemas) => {
                        inputs.schemas = schemas;
                        inputs.schemas_unknown = None;
                    }
                    Err(why) => inputs.schemas_unknown = Some(why),
                }
            }
            let docs = inputs.documents();
            if let Some(dir) = &out_dir {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                for d in &docs {
                    let path = dir.join(d.file);
                    std::fs::write(&path, d.text())
                        .with_context(|| format!("writing {}", path.display()))?;
                }
                out(&format!(
                    "wrote {} documents to {}",
                    docs.len(),
                    dir.display()
                ));
                return Ok(ExitCode::SUCCESS);
            }
            match format.as_str() {
                "json" => {
                    let all: serde_json::Map<String, serde_json::Value> = docs
                        .iter()
                        .map(|d| {
                            let v = d
                                .json
                                .clone()
                                .unwrap_or_else(|| serde_json::Value::String(d.text()));
                            (d.file.to_string(), v)
                        })
                        .collect();
                    out(&serde_json::to_string_pretty(&all)?);
                }
                "sql" => {
                    for d in docs.iter().filter(|d| d.sql.is_some()) {
                        out(&d.text());
                    }
                }
                _ => {
                    for d in &docs {
                        out(&format!("== {} — {}\n{}", d.file, d.title, d.text()));
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { dir, rows } => {
            let source = dir.join("source");
            demo::write_dataset(&source, rows)
                .with_context(|| format!("writing the sample dataset to {}", source.display()))?;
            let ws_path = dir.join("workspace.toml");
            std::fs::write(&ws_path, demo::DEMO_WORKSPACE)
                .with_context(|| format!("writing {}", ws_path.display()))?;
            let ws = match load(&ws_path, color) {
                Ok(ws) => ws,
                Err(code) => return Ok(code),
            };
            let seed = match ws.seed() {
                Ok(seed) => seed,
                Err(_) if std::env::var_os(&ws.seed_env).is_none_or(|v| v.is_empty()) => {
                    out("(MIRAGE_SEED is not set: the demo uses a fixed seed)");
                    "mirage-demo-seed".into()
                }
                Err(e) => return Ok(refuse(color, Mode::Plain, &e.to_string())),
            };
            out(&format!(
                "Sample dataset: {} customers in {}\nWorkspace: {}\n",
                rows,
                source.display(),
                ws_path.display()
            ));
            let cols = [
                "id",
                "first_name",
                "last_name",
                "email",
                "phone",
                "ssn",
                "notes",
            ];
            out("Before (source/public.customers.csv):");
            out(demo::preview(&source, "public.customers", &cols, 3).trim_end_matches('\n'));
            let renderer = Renderer::new(Mode::Bars, color);
            let opts = RunOptions {
                seed,
                report_path: None,
                events: renderer.events(),
                cancel: cancel_on_ctrl_c(),
            };
            let result = mirage_engine::run(&ws, &opts).await;
            if result.is_ok() {
                out("\nAfter (destination/public.customers.csv):");
                out(&demo::preview(
                    &dir.join("destination"),
                    "public.customers",
                    &cols,
                    3,
                ));
            }
            finish(result, Mode::Bars, color)
        }
        Command::Generators { markdown: true } => {
            out(mirage_generators::reference_markdown().trim_end_matches('\n'));
            Ok(ExitCode::SUCCESS)
        }
        Command::Generators { markdown: false } => {
            for g in mirage_generators::catalogue() {
                let accepts = if g.accepts.is_empty() {
                    "any type".to_string()
                } else {
                    g.accepts
                        .iter()
                        .map(|f| f.describe())
                        .collect::<Vec<_>>()
                        .join("; ")
                };
                out(g.name);
                out(&format!("    {}", g.summary));
                let yn = |b: bool| if b { "yes" } else { "no" };
                out(&format!(
                    "    accepts: {accepts}; consistent: {}; one-to-one: {}; keeps format: {}",
                    yn(g.consistent),
                    yn(g.unique),
                    yn(g.format_preserving)
                ));
                for o in g.options {
                    out(&format!("    option {o}"));
                }
            }
            out(
                "\nEvery generator also takes `fallback = \"null\"` or `fallback = { value = \"…\" }`: \
                 what to write for a value it cannot read (default: fail the table).",
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Print a job's outcome: the summary table (or, in JSON mode, the report as the last event)
/// and the error.
fn finish(
    result: Result<JobReport, RunError>,
    mode: Mode,
    color: bool,
) -> Result<ExitCode, anyhow::Error> {
    let show = |report: &JobReport| {
        if mode == Mode::Json {
            let mut v = serde_json::to_value(report).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("event".into(), "report".into());
                if let Some(p) = &report.report_path {
                    o.insert("report_path".into(), p.clone().into());
                }
            }
            out(&v.to_string());
            return;
        }
        out(&report.summary());
        if let Some(p) = &report.report_path {
            out(&format!("report: {p}"));
        }
    };
    let fail = |e: &RunError| {
        if mode == Mode::Json {
            out(&serde_json::json!({"event": "error", "message": e.to_string()}).to_string());
        } else {
            error(color, &e.to_string());
        }
    };
    match result {
        Ok(report) => {
            show(&report);
            Ok(ExitCode::SUCCESS)
        }
        Err(RunError::Incomplete(report)) => {
            show(&report);
            let e = RunError::Incomplete(report);
            fail(&e);
            Ok(exit_for(&e))
        }
        Err(e) => {
            fail(&e);
            Ok(exit_for(&e))
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let color = cli.color.enabled();
    // Transforms run on blocking threads (bounded by a semaphore); a small pool keeps the
    // number of malloc arenas, and so memory, in check.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(16)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            error(color, &format!("cannot start the async runtime: {e}"));
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(main_async(cli)) {
        Ok(code) => code,
        Err(e) => {
            error(color, &format!("{e:#}"));
            ExitCode::from(1)
        }
    }
}
