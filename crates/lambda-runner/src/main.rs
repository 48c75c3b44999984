//! `mirage-lambda-runner`: runs the mirage Lambda function on this machine for a workspace whose
//! `[staging]` says `lambda_runner = "local"` (moto cannot run the function).
//!
//! Example:
//!   mirage-lambda-runner --endpoint http://127.0.0.1:5000 --function mirage-worker-0-1-0 \
//!       --binary target/release/mirage-lambda --concurrency 4

use clap::Parser;
use std::path::PathBuf;

/// Poll the queues of a Lambda function's event source mappings and run each batch in a real
/// mirage-lambda process through the Lambda Runtime API.
#[derive(Parser)]
#[command(name = "mirage-lambda-runner", version, about)]
struct Args {
    /// AWS endpoint (moto), e.g. http://127.0.0.1:5000; default: AWS.
    #[arg(long)]
    endpoint: Option<String>,
    /// Region.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// The function (mirage names it <resource_prefix>worker-<version>).
    #[arg(long)]
    function: String,
    /// The mirage-lambda binary.
    #[arg(long)]
    binary: PathBuf,
    /// Handler processes at once.
    #[arg(long, default_value_t = 2)]
    concurrency: usize,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MIRAGE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runs = std::fs::metadata(&args.binary).is_ok_and(|m| {
        use std::os::unix::fs::PermissionsExt;
        m.is_file() && m.permissions().mode() & 0o111 != 0
    });
    if !runs {
        eprintln!(
            "mirage-lambda-runner: --binary {}: not an executable file; build it with \
             `cargo build --release -p mirage-lambda` and pass target/release/mirage-lambda",
            args.binary.display()
        );
        std::process::exit(2);
    }
    let runner = mirage_lambda_runner::Runner::start(mirage_lambda_runner::Config {
        endpoint: args.endpoint,
        region: args.region,
        function: args.function,
        binary: args.binary,
        concurrency: args.concurrency,
        env: Vec::new(),
        credentials: None,
    })
    .await;
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("stopping: handler processes are killed, their messages return to the queues");
    runner.stop().await;
}
