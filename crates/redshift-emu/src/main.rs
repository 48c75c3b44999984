//! `redshift-emu`: a local stand-in for Amazon Redshift (UNLOAD, COPY from S3, the Redshift
//! catalog) on top of PostgreSQL 15, for testing Redshift jobs without a cluster.

use clap::Parser;
use redshift_emu::proxy::{Config, Storage, start};
use std::path::PathBuf;

/// Emulate Amazon Redshift on PostgreSQL 15 for tests.
///
/// Example: redshift-emu --listen 127.0.0.1:5439 --s3-endpoint http://127.0.0.1:5000
/// then: psql "host=127.0.0.1 port=5439 user=postgres dbname=dev sslmode=disable"
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Where clients connect (as to Redshift's port 5439).
    #[arg(long, default_value = "127.0.0.1:5439")]
    listen: String,
    /// host:port of a PostgreSQL 15 that trusts local connections. Without it, the emulator
    /// starts a throwaway cluster with initdb (removed on exit).
    #[arg(long)]
    postgres: Option<String>,
    /// A superuser of that PostgreSQL.
    #[arg(long, default_value = "postgres")]
    admin_user: String,
    /// S3 endpoint for UNLOAD/COPY (e.g. moto); without it and without --s3-folder, AWS S3
    /// with credentials from the environment.
    #[arg(long)]
    s3_endpoint: Option<String>,
    #[arg(long, default_value = "us-east-1", env = "AWS_REGION")]
    region: String,
    /// Keep "S3" in a local folder instead: s3://bucket/key is <folder>/bucket/key.
    #[arg(long, conflicts_with = "s3_endpoint")]
    s3_folder: Option<PathBuf>,
    /// Database created at startup (Redshift's default is `dev`).
    #[arg(long, default_value = "dev")]
    database: String,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(e) = run(args).await {
        eprintln!("redshift-emu: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), String> {
    let mut cluster = None;
    let postgres = match args.postgres {
        Some(p) => p,
        None => {
            let pg = mirage_testkit::PgCluster::start().map_err(|e| e.to_string())?;
            let addr = format!("127.0.0.1:{}", pg.port());
            cluster = Some(pg);
            addr
        }
    };
    if let Some(pg) = &cluster {
        pg.create_database(&args.database)
            .map_err(|e| e.to_string())?;
    } else {
        // A PostgreSQL of the user's: the database clients are told about is created when it
        // is missing.
        redshift_emu::proxy::create_database(&postgres, &args.admin_user, &args.database)
            .await
            .map_err(|e| format!("creating database {} at {postgres}: {e}", args.database))?;
    }
    let storage = match (args.s3_folder, args.s3_endpoint) {
        (Some(dir), _) => Storage::Folder(dir),
        (None, endpoint) => Storage::S3 {
            endpoint,
            region: args.region,
        },
    };
    let config = Config {
        postgres: postgres.clone(),
        admin_user: args.admin_user,
        storage,
    };
    let emu = start(&args.listen, config)
        .await
        .map_err(|e| format!("starting on {}: {e}", args.listen))?;
    println!(
        "redshift-emu listening on {} (PostgreSQL at {postgres}, database {}); Ctrl-C stops it",
        emu.address(),
        args.database
    );
    tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
    drop(emu);
    drop(cluster);
    Ok(())
}
