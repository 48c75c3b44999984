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
