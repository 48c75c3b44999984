//! `mirage-bench redshift --process lambda`: the SQS + Lambda process on the emulator and moto,
//! with the local Lambda runner running real `mirage-lambda` processes (1, 2 and 4 at once),
//! next to Data Pipeline V2 and the plain UNLOAD + COPY floor, measured in the same run; then
//! the model for a real account from the measured per-file handler time.

use crate::{Res, Sample};
use std::fmt::Write;
use std::path::Path;
use std::process::Command;

/// The Lambda function's execution role (created in moto's IAM).
pub const LAMBDA_ROLE: &str = "arn:aws:iam::123456789012:role/mirage-lambda";

/// Create the Lambda role in moto's IAM (CreateFunction needs it to exist).
pub fn create_role(endpoint: &str) -> Res<()> {
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let out = Command::new("curl")
        .args([
            "-s",
            "--aws-sigv4",
            "aws:amz:us-east-1:iam",
            "--user",
            "bench:bench",
        ])
        .args(["-X", "POST", &format!("{endpoint}/")])
        .args(["--data-urlencode", "Action=CreateRole"])
        .args(["--data-urlencode", "Version=2010-05-08"])
        .args(["--data-urlencode", "RoleName=mirage-lambda"])
        .args([
            "--data-urlencode",
            &format!("AssumeRolePolicyDocument={trust}"),
        ])
        .output()
        .map_err(|e| format!("curl: {e}"))?;
    if String::from_utf8_lossy(&out.stdout).contains("mirage-lambda") {
        Ok(())
    } else {
        Err(format!(
            "creating the Lambda role in moto: {}",
            String::from_utf8_lossy(&out.stdout)
        ))
    }
}

/// A job's Lambda figures, from its report.
#[derive(Debug, Clone, Copy, Default)]
pub struct Figures {
    /// Files (invocations).
    pub files: u64,
    /// Handler seconds, all files.
    pub seconds: f64,
    /// The slowest file.
    pub max_seconds: f64,
    /// Bytes UNLOADed (compressed), all files.
    pub bytes: u64,
}

/// The figures of the job whose report is at `path`.
pub fn figures(path: &Path) -> Res<Figures> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut f = Figures::default();
    for t in v["tables"].as_array().into_iter().flatten() {
        f.files += t["lambda"]["files"].as_u64().unwrap_or(0);
        f.seconds += t["lambda"]["seconds"].as_f64().unwrap_or(0.0);
        f.max_seconds = f
            .max_seconds
            .max(t["lambda"]["max_seconds"].as_f64().unwrap_or(0.0));
        f.bytes += t["bytes_unloaded"].as_u64().unwrap_or(0);
    }
    Ok(f)
}

/// The Markdown report.
pub fn report(
    rows: u64,
    runs: usize,
    machine: String,
    floor: &Sample,
    v2: &Sample,
    scaling: &[(usize, Sample, Vec<Figures>)],
) -> String {
    let base = floor.median();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Redshift SQS + Lambda process benchmark\n\n\
         `bench/run redshift --process lambda --rows {rows} --runs {runs}`: the table of \
         `bench/run redshift` (`bench.users`, {rows} rows, 6 columns masked), Redshift emulator \
         on PostgreSQL 15, S3, SQS, Lambda and CloudWatch Logs in moto, same machine ({machine}, \
         every process on any core). The SQS + Lambda jobs run the real `mirage-lambda` binary \
         (release) under the local Lambda runner, which polls the job's queue as the event \
         source mapping does and serves the Lambda Runtime API; 1, 2 and 4 handlers at once. \
         All times are whole jobs, measured in the same run as the floor (a plain UNLOAD + \
         COPY, no transform) and Data Pipeline V2.\n"
    );
    let _ = writeln!(
        md,
        "| run | median s | best s | rows/s (median) | × floor (median) |"
    );
    let _ = writeln!(md, "| --- | ---: | ---: | ---: | ---: |");
    let mut all: Vec<&Sample> = vec![floor, v2];
    all.extend(scaling.iter().map(|(_, s, _)| s));
    for s in all {
        let _ = writeln!(
            md,
            "| {} | {:.2} | {:.2} | {:.0} | {:.2} |",
            s.name,
            s.median(),
            s.min(),
            rows as f64 / s.median(),
            s.median() / base
        );
    }
    let _ = writeln!(
        md,
        "\n| handlers at once | files per job | handler s per file (mean) | slowest file s | \
         MB per file (compressed) | transform phase ≈ files ÷ handlers × s per file |"
    );
    let _ = writeln!(md, "| ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut per_mb = Vec::new();
    for (c, _, figs) in scaling {
        let n = figs.len().max(1) as f64;
        let files = figs.iter().map(|f| f.files).sum::<u64>() as f64 / n;
        let secs = figs.iter().map(|f| f.seconds).sum::<f64>() / n;
        let max = figs.iter().map(|f| f.max_seconds).fold(0.0, f64::max);
        let mb = figs.iter().map(|f| f.bytes).sum::<u64>() as f64 / n / (1 << 20) as f64;
        let per_file = if files > 0.0 { secs / files } else { 0.0 };
        let mb_per_file = if files > 0.0 { mb / files } else { 0.0 };
        if mb_per_file > 0.0 {
            per_mb.push(per_file / mb_per_file);
        }
        let _ = writeln!(
            md,
            "| {c} | {files:.0} | {per_file:.3} | {max:.3} | {mb_per_file:.2} | {:.2} s |",
            files / *c as f64 * per_file
        );
    }
    // The model for a real account: 1 TB in 50 MB files, 1,000 invocations at once.
    let s_per_mb = per_mb.iter().sum::<f64>() / per_mb.len().max(1) as f64;
    let files = (1u64 << 40) as f64 / (50u64 << 20) as f64;
    let per_file = s_per_mb * 50.0;
    let transform = files / 1000.0 * per_file;
    let _ = writeln!(
        md,
        "\n## Model for a real account\n\n\
         Measured here: {s_per_mb:.3} handler seconds per MB of compressed UNLOAD file, on a full \
         core of this machine. 1 TB of UNLOAD files (compressed, as the rate is measured) in files of 50 MB is {files:.0} files; at \
         {per_file:.1} s per file and 1,000 concurrent invocations the transform phase takes \
         {files:.0} ÷ 1,000 × {per_file:.1} s ≈ **{transform:.0} s ({:.1} min)**, plus the \
         cluster's own UNLOAD and COPY of the table — the floor, the same for V2 — since files \
         are transformed while the UNLOAD writes them and each table is COPYed as soon as its \
         files are done. Lambda gives a function one full vCPU at 1,769 MB of memory and \
         proportionally less below, so at `TONIC_LAMBDA_MEMORY_SIZE=1024` count about 1.7× the \
         per-file time; S3 reads and writes inside AWS are not slower than moto on loopback. The \
         worker's own share is setup (function, queue, notification, mapping: seconds) and \
         polling for results. V2 on one worker does the same transform on its own cores (measured next to it above): \
         {:.0} h for 1 TB at this machine's per-core rate with 2 cores.\n",
        transform / 60.0,
        (1u64 << 40) as f64 / (1 << 20) as f64 * s_per_mb / 2.0 / 3600.0
    );
    md
}
