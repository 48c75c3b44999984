use anyhow::Context;
use clap::{Parser, Subcommand};
use mirage_cli::run::{RunError, RunOptions};
use mirage_cli::{check, demo, init, policy, run};
use mirage_core::workspace::{SchemaFilter, Workspace};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// mirage makes safe, realistic copies of production databases for development and testing:
/// it copies a source database's schema and rows into a destination database, replacing
/// sensitive values with consistent fakes on the way.
#[derive(Parser)]
#[command(name = "mirage", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a starter workspace.toml listing every table and column of the source.
    ///
    /// Every column starts as passthrough; edit the file to give sensitive columns a
    /// generator. The password is read from $MIRAGE_SOURCE_PASSWORD, never written.
    ///
    /// Example:
    ///   mirage init --source postgres://app@prod-db:5432/shop \
    ///               --destination postgres://app@dev-db:5432/shop_copy
    #[command(verbatim_doc_comment)]
    Init {
        /// Source URL: postgres://user@host:port/db or files:./folder
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
    },
    /// Check that everything a run needs is in place, and print what fixes what is not.
    ///
    /// Connects with the configured users and checks, item by item: the source user's USAGE
    /// and SELECT grants (and SELECT on svv_table_info for Redshift); the destination's
    /// database, CREATE and TEMPORARY on it, existing schemas (owner, or DROP for Redshift),
    /// superuser when preserving ownership; the staging bucket (exists, named with the policy
    /// prefix, put/get/list/delete with a probe object that is removed, the KMS key); and the
    /// TONIC_LAMBDA_* settings when process = "lambda". Writes nothing to the databases.
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
        /// KMS key id or ARN (default: $TONIC_LAMBDA_KMS_MASTER_KEY, else [staging] kms_key_id).
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

fn init_logging(quiet: bool) {
    let default = if quiet {
        "warn"
    } else {
        "info,tokio_postgres=warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("MIRAGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

fn exit_for(e: &RunError) -> ExitCode {
    match e {
        RunError::Workspace(_) | RunError::KindMismatch(..) | RunError::SameDatabase(_) => {
            ExitCode::from(2)
        }
        RunError::Incomplete(r) if r.status == mirage_cli::report::JobStatus::Canceled => {
            ExitCode::from(130)
        }
        _ => ExitCode::from(1),
    }
}

fn load(path: &Path) -> Result<Workspace, ExitCode> {
    Workspace::load(path).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

async fn main_async(cli: Cli) -> Result<ExitCode, anyhow::Error> {
    match cli.command {
        Command::Init {
            source,
            destination,
            schemas,
            workspace,
            force,
        } => {
            init_logging(true);
            if workspace.exists() && !force {
                eprintln!(
                    "error: {} exists; pass --force to overwrite it",
                    workspace.display()
                );
                return Ok(ExitCode::from(2));
            }
            let filter = SchemaFilter {
                include: schemas,
                exclude: Vec::new(),
            };
            let catalog = match init::source_catalog(&source, &filter, Path::new(".")).await {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(exit_for(&e));
                }
            };
            let text = init::starter(&source, &destination, &filter, &catalog);
            std::fs::write(&workspace, text)
                .with_context(|| format!("writing {}", workspace.display()))?;
            println!(
                "wrote {} ({} tables); give sensitive columns a generator, then run `mirage plan -w {}`",
                workspace.display(),
                catalog.tables.len(),
                workspace.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan { workspace } => {
            init_logging(true);
            let ws = match load(&workspace) {
                Ok(ws) => ws,
                Err(code) => return Ok(code),
            };
            // The plan does not depend on the seed's value; let it run without one.
            let seed = ws.seed().unwrap_or_else(|_| {
                eprintln!(
                    "note: {} is not set; `mirage plan` works without it, `mirage run` will need it",
                    ws.seed_env
                );
                "plan-only".into()
            });
            let result = run::plan(&ws, &seed).await;
            match result {
                Ok(plan) => {
                    print!("{}", plan.describe());
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    Ok(exit_for(&e))
                }
            }
        }
        Command::Run {
            workspace,
            report,
            no_progress,
        } => {
            let progress = !no_progress && std::io::IsTerminal::is_terminal(&std::io::stderr());
            init_logging(progress);
            let ws = match load(&workspace) {
                Ok(ws) => ws,
                Err(code) => return Ok(code),
            };
            let seed = match ws.seed() {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(ExitCode::from(2));
                }
            };
            let opts = RunOptions {
                seed,
                progress,
                report_path: report,
            };
            finish(run::run(&ws, &opts).await)
        }
        Command::Check { workspace, format } => {
            init_logging(true);
            let ws = match load(&workspace) {
                Ok(ws) => ws,
                Err(code) => return Ok(code),
            };
            let checks = check::check(&ws).await;
            if format == "json" {
                println!("{}", serde_json::to_string_pretty(&checks)?);
            } else {
                println!("{}", checks.text());
            }
            Ok(if checks.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
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
            out,
        } => {
            init_logging(true);
            let ws = match load(&workspace) {
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
                    eprintln!("error: {e}");
                    return Ok(ExitCode::from(2));
                }
            };
            let docs = inputs.documents();
            if let Some(dir) = &out {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                for d in &docs {
                    let path = dir.join(d.file);
                    std::fs::write(&path, d.text())
                        .with_context(|| format!("writing {}", path.display()))?;
                }
                println!("wrote {} documents to {}", docs.len(), dir.display());
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
                    println!("{}", serde_json::to_string_pretty(&all)?);
                }
                "sql" => {
                    for d in docs.iter().filter(|d| d.sql.is_some()) {
                        println!("{}", d.text());
                    }
                }
                _ => {
                    for d in &docs {
                        println!(
                            "== {} — {}
{}",
                            d.file,
                            d.title,
                            d.text()
                        );
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { dir, rows } => {
            let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
            init_logging(true);
            let source = dir.join("source");
            demo::write_dataset(&source, rows)
                .with_context(|| format!("writing the sample dataset to {}", source.display()))?;
            let ws_path = dir.join("workspace.toml");
            std::fs::write(&ws_path, demo::DEMO_WORKSPACE)
                .with_context(|| format!("writing {}", ws_path.display()))?;
            let ws = match load(&ws_path) {
                Ok(ws) => ws,
                Err(code) => return Ok(code),
            };
            let seed = ws.seed().unwrap_or_else(|_| {
                println!("(MIRAGE_SEED is not set: the demo uses a fixed seed)");
                "mirage-demo-seed".into()
            });
            println!(
                "Sample dataset: {} customers in {}\nWorkspace: {}\n",
                rows,
                source.display(),
                ws_path.display()
            );
            let cols = [
                "id",
                "first_name",
                "last_name",
                "email",
                "phone",
                "ssn",
                "notes",
            ];
            println!("Before (source/public.customers.csv):");
            print!("{}", demo::preview(&source, "public.customers", &cols, 3));
            let opts = RunOptions {
                seed,
                progress,
                report_path: None,
            };
            let result = run::run(&ws, &opts).await;
            if result.is_ok() {
                println!("\nAfter (destination/public.customers.csv):");
                print!(
                    "{}",
                    demo::preview(&dir.join("destination"), "public.customers", &cols, 3)
                );
                println!();
            }
            finish(result)
        }
        Command::Generators { markdown: true } => {
            print!("{}", mirage_generators::reference_markdown());
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
                println!("{}", g.name);
                println!("    {}", g.summary);
                let yn = |b: bool| if b { "yes" } else { "no" };
                println!(
                    "    accepts: {accepts}; consistent: {}; one-to-one: {}; keeps format: {}",
                    yn(g.consistent),
                    yn(g.unique),
                    yn(g.format_preserving)
                );
                for o in g.options {
                    println!("    option {o}");
                }
            }
            println!(
                "\nEvery generator also takes `fallback = \"null\"` or `fallback = {{ value = \"…\" }}`: \
                 what to write for a value it cannot read (default: fail the table)."
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn finish(
    result: Result<mirage_cli::report::JobReport, RunError>,
) -> Result<ExitCode, anyhow::Error> {
    match result {
        Ok(report) => {
            println!("{}", report.summary());
            if let Some(p) = &report.report_path {
                println!("report: {p}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(RunError::Incomplete(report)) => {
            println!("{}", report.summary());
            if let Some(p) = &report.report_path {
                println!("report: {p}");
            }
            let e = RunError::Incomplete(report);
            eprintln!("error: {e}");
            Ok(exit_for(&e))
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(exit_for(&e))
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Transforms run on blocking threads (bounded by a semaphore); a small pool keeps the
    // number of malloc arenas, and so memory, in check.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(16)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(main_async(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
