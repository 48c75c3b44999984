//! The embedded default: `mirage demo` on CSV files, no server.

use crate::util::{Dir, mirage};

#[test]
fn demo_runs_the_whole_job_without_a_server() {
    let dir = Dir::new();
    let out = mirage(
        &[
            "demo",
            "--dir",
            dir.path().to_str().unwrap(),
            "--rows",
            "300",
        ],
        "demo-seed",
    );
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains("Before") && out.stdout.contains("After"),
        "{}",
        out.stdout
    );
    let src = std::fs::read_to_string(dir.path().join("source/public.customers.csv")).unwrap();
    let dst = std::fs::read_to_string(dir.path().join("destination/public.customers.csv")).unwrap();
    assert_ne!(src, dst);
    // Same number of records, header kept.
    assert_eq!(src.lines().next(), dst.lines().next());
    assert!(
        out.stdout.contains("public.customers") && out.stdout.contains("300"),
        "{}",
        out.stdout
    );
    // Emails and SSNs of the source do not appear in the destination.
    for line in src.lines().skip(1).take(50) {
        if let Some(email) = line.split(',').find(|f| f.contains('@')) {
            assert!(!dst.contains(email), "email {email} leaked");
        }
    }
    // The email follows the fake first name of the same row (email from = [first, last]).
    for line in dst.lines().skip(1).take(30) {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() > 3 && f[3].contains('@') {
            let first: String = f[1]
                .chars()
                .filter(|c| c.is_ascii_alphabetic())
                .collect::<String>()
                .to_lowercase();
            assert!(f[3].starts_with(&first), "{line}");
        }
    }
    // The audit log is truncated: header only.
    let audit =
        std::fs::read_to_string(dir.path().join("destination/public.audit_log.csv")).unwrap();
    assert_eq!(audit.lines().count(), 1);
}

/// `mirage` with extra environment, stdout and stderr captured (not terminals).
fn mirage_env(args: &[&str], env: &[(&str, &str)]) -> crate::util::Run {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mirage"));
    cmd.args(args)
        .env("MIRAGE_SEED", crate::util::seed("s"))
        .env_remove("NO_COLOR")
        .stdin(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run mirage").into()
}

/// Log lines in a file or pipe carry no escape codes; `--color always` and NO_COLOR are
/// honoured; `--format json` gives one JSON event per line ending with the report.
#[test]
fn output_is_plain_in_files_coloured_on_request_and_json_on_request() {
    let dir = Dir::new();
    let demo = mirage(
        &[
            "demo",
            "--dir",
            dir.path().to_str().unwrap(),
            "--rows",
            "50",
        ],
        "s",
    );
    assert_eq!(demo.code, 0, "{}", demo.all());
    let ws = dir.path().join("workspace.toml");
    let ws = ws.to_str().unwrap();

    // A run logged to a pipe: lines per table, no escape codes even at debug level.
    let run = mirage_env(&["run", "-w", ws], &[("MIRAGE_LOG", "debug")]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stderr.contains("public.customers started"),
        "{}",
        run.stderr
    );
    assert!(
        !run.all().contains('\x1b'),
        "escape codes in a log: {:?}",
        run.stderr
    );

    // Colour on request, off by NO_COLOR on a terminal.
    let check = mirage_env(&["check", "-w", ws, "--color", "always"], &[]);
    assert!(check.stdout.contains("\x1b[32m✓"), "{:?}", check.stdout);
    let check = mirage_env(&["check", "-w", ws, "--color", "never"], &[]);
    assert!(!check.stdout.contains('\x1b'), "{:?}", check.stdout);
    let on_tty = |no_color: bool| {
        let mut cmd = std::process::Command::new("script");
        cmd.args([
            "-qec",
            &format!("{} check -w {ws}", env!("CARGO_BIN_EXE_mirage")),
            "/dev/null",
        ])
        .env_remove("NO_COLOR")
        .stdin(std::process::Stdio::null());
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        let o = cmd
            .output()
            .expect("script (util-linux) runs mirage on a terminal");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(on_tty(false).contains('\x1b'), "a terminal gets colour");
    assert!(!on_tty(true).contains('\x1b'), "NO_COLOR turns it off");

    // JSON events on stdout, the last one the report.
    let run = mirage_env(&["run", "-w", ws, "--format", "json"], &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let events: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let finished: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "table_finished")
        .map(|e| e["table"].as_str().unwrap())
        .collect();
    assert_eq!(finished.len(), 5, "{finished:?}");
    let last = events.last().unwrap();
    assert_eq!(last["event"], "report");
    assert_eq!(last["status"], "completed");
    assert_eq!(last["tables"].as_array().unwrap().len(), 5);
}
