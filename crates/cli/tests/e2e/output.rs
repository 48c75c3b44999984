//! What mirage prints for people is safe to show and machine output is complete: names with
//! control characters are escaped, JSON mode reports every error and every table, `error:` is
//! coloured only when colour is on.

use crate::util::{Dir, Run, dataset, files_workspace, mirage_env};
use serde_json::Value;
use std::process::{Command, Stdio};

/// A table whose name holds an escape sequence and a newline, and a column with an escape
/// sequence: nothing printed for people carries them raw.
#[test]
fn hostile_names_are_printed_escaped() {
    let dir = Dir::new();
    let table = "a\x1b[31mb\nc";
    let column = "x\x1b]0;owned\x07y";
    dataset(dir.path(), "src", table, column, 5);
    let ws = files_workspace(
        &dir,
        "src",
        "dst",
        "[tables.\"public.a\\u001b[31mb\\nc\".columns]\n\"x\\u001b]0;owned\\u0007y\" = { generator = \"hash\" }\n",
    );
    let escaped = "public.a\\u{1b}[31mb\\nc";
    let no_raw = |what: &str, run: &Run| {
        let all = run.all();
        assert!(!all.contains('\x1b'), "{what}: ESC in {all:?}");
        assert!(!all.contains('\x07'), "{what}: BEL in {all:?}");
        assert!(
            !all.lines().any(|l| l.starts_with("c ") || l == "c"),
            "{what}: a fake line in {all:?}"
        );
    };
    let plan = mirage_env(&["plan", "-w", &ws], &[]);
    assert_eq!(plan.code, 0, "{}", plan.all());
    no_raw("plan", &plan);
    assert!(plan.stdout.contains(escaped), "{}", plan.stdout);
    assert!(
        plan.stdout.contains("x\\u{1b}]0;owned\\u{7}y"),
        "{}",
        plan.stdout
    );
    let check = mirage_env(&["check", "-w", &ws, "--color", "never"], &[]);
    assert_eq!(check.code, 0, "{}", check.all());
    no_raw("check", &check);
    for args in [
        vec!["run", "-w", &ws, "--color", "never"],
        vec!["run", "-w", &ws, "--no-progress"],
    ] {
        let run = mirage_env(&args, &[]);
        assert_eq!(run.code, 0, "{}", run.all());
        no_raw("run", &run);
        assert!(run.stderr.contains(escaped), "{}", run.stderr);
        assert!(run.stdout.contains(escaped), "summary: {}", run.stdout);
    }
    // Progress bars on a terminal: they move the cursor, but the names' sequences stay escaped.
    let tty = Command::new("script")
        .args([
            "-qec",
            &format!("{} run -w {ws} --color never", env!("CARGO_BIN_EXE_mirage")),
            "/dev/null",
        ])
        .env("MIRAGE_SEED", crate::util::seed("s"))
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux) runs mirage on a terminal");
    let tty = String::from_utf8_lossy(&tty.stdout);
    assert!(tty.contains("job "), "{tty:?}");
    assert!(
        !tty.contains("\x1b[31mb") && !tty.contains("\x1b]0;"),
        "{tty:?}"
    );
    // The rows arrived under the table's real name.
    let dst = std::fs::read_to_string(dir.path().join(format!(
        "dst/public.{}.csv",
        mirage_connectors::files::file_part(table)
    )))
    .unwrap();
    assert_eq!(dst.lines().count(), 6);

    // A failing table: its name and error in the failure summary, escaped too.
    std::fs::write(
        dir.path().join(format!(
            "src/public.{}.csv",
            mirage_connectors::files::file_part(table)
        )),
        "id,wrong\n1,a\n",
    )
    .unwrap();
    let run = mirage_env(&["run", "-w", &ws, "--no-progress"], &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    no_raw("failed run", &run);
    assert!(run.stderr.contains(escaped), "{}", run.stderr);
}

/// Every line of stdout, as JSON.
fn json_lines(run: &Run) -> Vec<Value> {
    run.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}\n{}", run.all())))
        .collect()
}

#[test]
fn json_mode_reports_errors_before_the_job_on_stdout() {
    let dir = Dir::new();
    dataset(dir.path(), "src", "people", "name", 3);
    let missing = dir.path().join("nowhere.toml").display().to_string();
    let run = mirage_env(&["run", "--format", "json", "-w", &missing], &[]);
    assert_eq!(run.code, 2, "{}", run.all());
    let events = json_lines(&run);
    assert_eq!(events.len(), 1, "{}", run.stdout);
    assert_eq!(events[0]["event"], "error");
    assert!(
        events[0]["message"]
            .as_str()
            .unwrap()
            .contains("nowhere.toml"),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains("error:"), "{}", run.stderr);

    let bad = dir.write("bad.toml", "[source\nurl = 1\n");
    let run = mirage_env(
        &["run", "--format", "json", "-w", bad.to_str().unwrap()],
        &[],
    );
    assert_eq!(run.code, 2, "{}", run.all());
    let events = json_lines(&run);
    assert_eq!(events.len(), 1, "{}", run.stdout);
    assert_eq!(events[0]["event"], "error");

    let ws = files_workspace(&dir, "src", "dst", "");
    let run = Command::new(env!("CARGO_BIN_EXE_mirage"))
        .args(["run", "--format", "json", "-w", &ws])
        .env_remove("MIRAGE_SEED")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let run: Run = run.into();
    assert_eq!(run.code, 2, "{}", run.all());
    let events = json_lines(&run);
    assert_eq!(events.len(), 1, "{}", run.stdout);
    assert_eq!(events[0]["event"], "error");
    assert!(
        events[0]["message"]
            .as_str()
            .unwrap()
            .contains("MIRAGE_SEED"),
        "{}",
        run.stdout
    );
}

#[test]
fn the_error_prefix_is_red_only_when_colour_is_on() {
    let dir = Dir::new();
    dataset(dir.path(), "src", "people", "name", 3);
    let ws = files_workspace(
        &dir,
        "src",
        "dst",
        "[tables.\"public.people\".columns]\nnmae = { generator = \"full_name\" }\n",
    );
    let run = mirage_env(&["run", "-w", &ws, "--color", "always"], &[]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("\x1b[31merror:\x1b[0m"),
        "{:?}",
        run.stderr
    );
    let run = mirage_env(&["run", "-w", &ws, "--color", "never"], &[]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.starts_with("error:"), "{:?}", run.stderr);
    assert!(!run.all().contains('\x1b'), "{:?}", run.all());
    // On a terminal: colour by default, none with NO_COLOR.
    let on_tty = |no_color: bool| {
        let mut cmd = Command::new("script");
        cmd.args([
            "-qec",
            &format!("{} run -w {ws}", env!("CARGO_BIN_EXE_mirage")),
            "/dev/null",
        ])
        .env("MIRAGE_SEED", crate::util::seed("s"))
        .env_remove("NO_COLOR")
        .stdin(Stdio::null());
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        let o = cmd
            .output()
            .expect("script (util-linux) runs mirage on a terminal");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(
        on_tty(false).contains("\x1b[31merror:"),
        "a terminal gets colour"
    );
    let plain = on_tty(true);
    assert!(!plain.contains('\x1b'), "NO_COLOR turns it off: {plain:?}");
    assert!(plain.contains("error:"), "{plain:?}");
}

/// A CSV without its header line: the error says which file and line and what was expected,
/// never the row it found there (in stderr, the JSON events or the report).
#[test]
fn a_headerless_csv_is_refused_without_showing_its_row() {
    let dir = Dir::new();
    dataset(dir.path(), "src", "people", "name", 3);
    std::fs::write(
        dir.path().join("src/public.people.csv"),
        "1,CANARY4711 Smith\n2,Other\n",
    )
    .unwrap();
    let ws = files_workspace(
        &dir,
        "./src",
        "./out",
        "[tables.\"public.people\".columns]\nname = { generator = \"full_name\" }\n",
    );
    for (format, log) in [("text", "warn"), ("json", "warn"), ("text", "debug")] {
        let run = mirage_env(
            &["run", "-w", &ws, "--format", format],
            &[("MIRAGE_LOG", log)],
        );
        assert_ne!(run.code, 0, "{}", run.all());
        assert!(
            run.all().contains("public.people.csv") && run.all().contains("line 1"),
            "{}",
            run.all()
        );
        assert!(!run.all().contains("CANARY4711"), "{}", run.all());
    }
    for report in std::fs::read_dir(dir.path().join(".mirage/jobs")).unwrap() {
        let text = std::fs::read_to_string(report.unwrap().path()).unwrap();
        assert!(!text.contains("CANARY4711"), "{text}");
    }
}

/// A report path that cannot be written is refused before the job starts (exit 2), not after
/// the copy.
#[test]
fn an_unwritable_report_path_is_refused_first() {
    let dir = Dir::new();
    dataset(dir.path(), "src", "people", "name", 3);
    let ws = files_workspace(&dir, "./src", "./out", "");
    let folder = dir.path().join("src").display().to_string();
    for bad in ["/proc/version", "/proc/mirage/report.json", folder.as_str()] {
        let run = mirage_env(&["run", "-w", &ws, "--report", bad], &[]);
        assert_eq!(run.code, 2, "{bad}: {}", run.all());
        assert!(
            run.all().contains(&format!("--report {bad}")),
            "{}",
            run.all()
        );
        assert!(
            !dir.path().join("out").exists(),
            "{bad}: nothing was written"
        );
    }
    let good = dir.path().join("reports/r.json").display().to_string();
    let run = mirage_env(&["run", "-w", &ws, "--report", &good], &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        std::fs::read_to_string(&good)
            .unwrap()
            .contains("\"tables\"")
    );
}

/// Closed stdout and stderr (a reader that went away: `… | head -1`) never stop a job: it
/// completes, with its tables and report written, even logging at debug level.
#[test]
fn closed_stdout_and_stderr_do_not_stop_a_job() {
    use std::process::{Command, Stdio};
    let dir = Dir::new();
    dataset(dir.path(), "src", "people", "name", 20_000);
    let ws = files_workspace(
        &dir,
        "./src",
        "./out",
        "[tables.\"public.people\".columns]\nname = { generator = \"full_name\" }\n",
    );
    let report = dir.path().join("report.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mirage"))
        .args(["run", "-w", &ws, "--report", report.to_str().unwrap()])
        .env("MIRAGE_SEED", crate::util::seed("s"))
        .env("MIRAGE_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Nobody reads: both pipes are closed before the job writes its first line.
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(text.contains("\"status\": \"completed\""), "{text}");
    let rows = std::fs::read_to_string(dir.path().join("out/public.people.csv"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(rows, 20_001, "header and every row");
}
