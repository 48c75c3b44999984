//! `mirage check` and `mirage policy`: against PostgreSQL, the Redshift emulator and moto.

use crate::redshift::Redshift;
use crate::util::{Dir, Run};
use mirage_testkit::PgCluster;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};

fn mirage(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mirage"));
    c.args(args)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("MIRAGE_SEED", crate::util::seed("s"))
        .env_remove("MIRAGE_LOG")
        .stdin(Stdio::null());
    for v in mirage_core::lambda::VARIABLES.map(|(v, _)| v) {
        c.env_remove(v);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run mirage").into()
}

/// `mirage check --format json`: (exit code, report).
fn check(ws: &Path, env: &[(&str, &str)]) -> (i32, Value) {
    let run = mirage(
        &["check", "--format", "json", "-w", &ws.display().to_string()],
        env,
    );
    let report: Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.all()));
    assert_eq!(run.code == 0, report["ok"] == true, "{}", run.all());
    (run.code, report)
}

fn failures(report: &Value) -> Vec<Value> {
    report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "fail")
        .cloned()
        .collect()
}

/// Take away each grant in turn: `check` reports it with a fix, and running the fix as the
/// administrator makes `check` pass again.
fn missing_grants_are_fixed_by_their_fix(
    ws: &Path,
    cases: &[(&str, &str, &str)],
    admin: &dyn Fn(&str, &str) -> Result<String, String>,
    area_db: &dyn Fn(&str) -> &'static str,
) {
    let (code, report) = check(ws, &[]);
    assert_eq!(code, 0, "{report:#}");
    for (db, revoke, expected_check) in cases {
        admin(db, revoke).unwrap_or_else(|e| panic!("{revoke}: {e}"));
        let (code, report) = check(ws, &[]);
        assert_eq!(code, 1, "{revoke}: {report:#}");
        let failed = failures(&report);
        assert_eq!(failed.len(), 1, "{revoke}: {failed:#?}");
        let item = &failed[0];
        assert!(
            item["check"].as_str().unwrap().contains(expected_check),
            "{revoke}: {item}"
        );
        let fix = item["fix"].as_str().unwrap();
        admin(area_db(item["area"].as_str().unwrap()), fix)
            .unwrap_or_else(|e| panic!("{fix}: {e}"));
        let (code, report) = check(ws, &[]);
        assert_eq!(code, 0, "after `{fix}`: {report:#}");
    }
}

#[test]
fn check_on_redshift_reports_each_missing_grant_with_a_fix_that_works() {
    let rs = Redshift::start();
    let dir = Dir::new();
    let ws = rs.workspace(&dir, "dst_user", "");
    missing_grants_are_fixed_by_their_fix(
        &ws,
        &[
            (
                "src",
                "REVOKE SELECT ON sales.orders FROM src_user",
                "SELECT on the 4 table(s) of schema sales",
            ),
            (
                "src",
                "REVOKE USAGE ON SCHEMA sales FROM src_user",
                "USAGE on schema sales",
            ),
            (
                "src",
                "REVOKE SELECT ON pg_catalog.svv_table_info FROM src_user",
                "svv_table_info",
            ),
            (
                "dst",
                "REVOKE CREATE ON DATABASE dst FROM dst_user",
                "CREATE on database dst",
            ),
            (
                "dst",
                "REVOKE TEMPORARY ON DATABASE dst FROM PUBLIC; REVOKE TEMPORARY ON DATABASE dst FROM dst_user",
                "TEMPORARY on database dst",
            ),
            (
                "dst",
                "CREATE SCHEMA sales",
                "DROP on existing schema sales",
            ),
        ],
        &|db, sql| rs.try_sql(db, sql),
        &|area| if area == "source" { "src" } else { "dst" },
    );
    // Preserving ownership needs a superuser.
    let ws = rs.workspace(&dir, "dst_user", "preserve_ownership = true");
    let (_, report) = check(&ws, &[]);
    let failed = failures(&report);
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(failed[0]["fix"], "ALTER USER \"dst_user\" CREATEUSER;");
    rs.sql("dst", failed[0]["fix"].as_str().unwrap());
    assert_eq!(check(&ws, &[]).0, 0);
    rs.sql("dst", "ALTER USER dst_user NOCREATEUSER");

    // The staging bucket: missing, wrongly named, working.
    let staging = |bucket: &str, extra: &str| {
        dir.write(
            "staging.toml",
            &format!(
                "[source]\nurl = \"{}\"\n[run]\nunreviewed = \"passthrough\"\n[destination]\nurl = \"{}\"\n[staging]\nbucket = \"{bucket}\"\n\
                 iam_role = \"arn:aws:iam::123456789012:role/mirage-redshift\"\nendpoint = \"{}\"\n{extra}\n",
                rs.url("src_user", "src"),
                rs.url("dst_user", "dst"),
                rs.moto.endpoint()
            ),
        )
    };
    let (_, report) = check(&staging("mirage-missing", ""), &[]);
    let failed = failures(&report);
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert!(
        failed[0]["fix"]
            .as_str()
            .unwrap()
            .contains("aws s3 mb s3://mirage-missing"),
        "{failed:#?}"
    );
    rs.moto.create_bucket("other-staging").unwrap();
    let (_, report) = check(&staging("other-staging", ""), &[]);
    let failed = failures(&report);
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert!(
        failed[0]["check"]
            .as_str()
            .unwrap()
            .contains("starts with the policy prefix mirage-")
    );
    let (code, report) = check(
        &staging("other-staging", "resource_prefix = \"other-\""),
        &[],
    );
    assert_eq!(code, 0, "{report:#}");
    let (code, report) = check(&staging("mirage-staging", ""), &[]);
    assert_eq!(code, 0, "{report:#}");
    let steps: Vec<&str> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["area"] == "staging")
        .map(|i| i["check"].as_str().unwrap())
        .collect();
    assert_eq!(steps.len(), 6, "{steps:?}");
    assert!(
        report["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["area"] == "staging"
                && i["status"] == "warn"
                && i["check"].as_str().unwrap().contains("lifecycle")),
        "a bucket without a lifecycle rule is a warning"
    );
    assert!(
        ["put", "get ", "list ", "delete "]
            .iter()
            .all(|s| steps.iter().any(|x| x.contains(s))),
        "{steps:?}"
    );
    let listing = Command::new("curl")
        .args([
            "-s",
            &format!("{}/mirage-staging?list-type=2", rs.moto.endpoint()),
        ])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&listing.stdout).contains("<Key>"),
        "the probe object is removed"
    );

    // The Lambda process's settings; nothing to create the function from is a failure too.
    let no_image = staging(
        "mirage-staging",
        "process = \"lambda\"\nencrypt_queue = true",
    );
    let good_env = [
        (
            "TONIC_LAMBDA_ROLE",
            "arn:aws:iam::123456789012:role/mirage-lambda",
        ),
        ("TONIC_LAMBDA_KMS_MASTER_KEY", "alias/mirage-sqs"),
    ];
    let (code, report) = check(&no_image, &good_env);
    assert_eq!(code, 1, "{report:#}");
    let failed = failures(&report);
    // Nothing to create the function from, and a role that does not exist yet.
    assert!(
        failed.len() == 2
            && failed[0]["fix"].as_str().unwrap().contains("lambda_image")
            && failed[1]["check"]
                .as_str()
                .unwrap()
                .contains("(TONIC_LAMBDA_ROLE) exists"),
        "{failed:#?}"
    );
    crate::lambda::create_role(&rs.moto.endpoint());
    let lambda = staging(
        "mirage-staging",
        "process = \"lambda\"\nencrypt_queue = true\n\
         lambda_image = \"123456789012.dkr.ecr.us-east-1.amazonaws.com/mirage-lambda:0.1.0\"",
    );
    let (code, report) = check(
        &lambda,
        &[
            ("TONIC_LAMBDA_TIMEOUT", "901"),
            ("TONIC_LAMBDA_MEMORY_SIZE", "64"),
        ],
    );
    assert_eq!(code, 1);
    let failed: Vec<String> = failures(&report)
        .iter()
        .map(|f| format!("{} {}", f["check"], f["detail"]))
        .collect();
    for (variable, says) in [
        ("TONIC_LAMBDA_ROLE", "not set"),
        ("TONIC_LAMBDA_TIMEOUT", "from 1 to 900"),
        ("TONIC_LAMBDA_MEMORY_SIZE", "from 128 to 10240"),
        ("TONIC_LAMBDA_KMS_MASTER_KEY", "encrypted"),
    ] {
        assert!(
            failed
                .iter()
                .any(|f| f.contains(variable) && f.contains(says)),
            "{variable}: {failed:#?}"
        );
    }
    let good = [
        (
            "TONIC_LAMBDA_ROLE",
            "arn:aws:iam::123456789012:role/mirage-lambda",
        ),
        ("TONIC_LAMBDA_KMS_MASTER_KEY", "alias/mirage-sqs"),
    ];
    let (code, report) = check(&lambda, &good);
    assert_eq!(code, 0, "{report:#}");
    let items = report["items"].to_string();
    for step in [
        "create queue mirage-check-",
        "KMS key alias/mirage-sqs encrypts a queue message",
        "delete queue mirage-check-",
        "read the notifications of bucket mirage-staging",
        "write the notifications of bucket mirage-staging",
        "a run creates it from image",
    ] {
        assert!(items.contains(step), "{step}: {items}");
    }
    let items = report["items"].to_string();
    assert!(
        items.contains("TONIC_LAMBDA_TIMEOUT = 30 s")
            && items.contains("TONIC_LAMBDA_MEMORY_SIZE = 1024 MB"),
        "defaults: {items}"
    );
    assert!(
        items.contains("AWS advises"),
        "a warning below 6 × the timeout: {items}"
    );

    // The text form: ✓/✗ lines, fixes under them.
    let run = mirage(
        &[
            "check",
            "-w",
            &staging("mirage-missing", "").display().to_string(),
        ],
        &[],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains("✓ connect to src_user@")
            && run.stdout.contains("✗ bucket mirage-missing")
            && run.stdout.contains("fix: create the bucket"),
        "{}",
        run.stdout
    );
}

#[test]
fn check_on_postgresql_reports_each_missing_grant_with_a_fix_that_works() {
    let pg = PgCluster::start().unwrap();
    pg.create_database("src").unwrap();
    pg.create_database("dst").unwrap();
    pg.psql(
        "src",
        "CREATE SCHEMA sales; CREATE TABLE sales.a (id int); CREATE TABLE sales.b (id int); \
         CREATE ROLE src_user LOGIN; GRANT USAGE ON SCHEMA sales TO src_user; \
         GRANT SELECT ON ALL TABLES IN SCHEMA sales TO src_user;",
    )
    .unwrap();
    pg.psql(
        "dst",
        "CREATE ROLE dst_user LOGIN; GRANT CREATE ON DATABASE dst TO dst_user;",
    )
    .unwrap();
    let dir = Dir::new();
    let ws = dir.write(
        "workspace.toml",
        &format!(
            "[source]\nurl = \"{}\"\n[run]\nunreviewed = \"passthrough\"\n[destination]\nurl = \"{}\"\n[schemas]\ninclude = [\"sales\"]\n",
            pg.url_as("src_user", "src"),
            pg.url_as("dst_user", "dst")
        ),
    );
    missing_grants_are_fixed_by_their_fix(
        &ws,
        &[
            (
                "src",
                "REVOKE SELECT ON sales.b FROM src_user",
                "SELECT on the 2 table(s) of schema sales",
            ),
            (
                "src",
                "REVOKE USAGE ON SCHEMA sales FROM src_user",
                "USAGE on schema sales",
            ),
            (
                "dst",
                "REVOKE CREATE ON DATABASE dst FROM dst_user",
                "CREATE on database dst",
            ),
            (
                "dst",
                "CREATE SCHEMA sales",
                "owner of existing schema sales",
            ),
        ],
        &|db, sql| pg.psql(db, sql).map_err(|e| e.to_string()),
        &|area| if area == "source" { "src" } else { "dst" },
    );
    // A PostgreSQL job never creates temporary tables: TEMPORARY is not asked for.
    pg.psql("dst", "REVOKE TEMPORARY ON DATABASE dst FROM PUBLIC")
        .unwrap();
    let (code, report) = check(&ws, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert!(!report.to_string().contains("TEMPORARY"), "{report:#}");
    // The same database as the source, spelled alike or not (`localhost` is 127.0.0.1): a
    // failed item, as `mirage run` refuses it (exit 2).
    for destination in [
        pg.url("src"),
        format!("postgresql://postgres@localhost:{}/src", pg.port()),
    ] {
        let same = dir.write(
            "same.toml",
            &format!(
                "[source]\nurl = \"{}\"\n[run]\nunreviewed = \"passthrough\"\n[destination]\nurl = \"{destination}\"\n[schemas]\ninclude = [\"sales\"]\n",
                pg.url("src"),
            ),
        );
        let (code, report) = check(&same, &[]);
        assert_eq!(code, 1, "{destination}: {report:#}");
        let failed = failures(&report);
        assert_eq!(failed.len(), 1, "{destination}: {failed:#?}");
        assert!(
            failed[0]["detail"]
                .as_str()
                .is_some_and(|d| d.contains("same database")),
            "{failed:#?}"
        );
        assert_eq!(
            failed[0]["fix"], "point destination.url at another database",
            "{failed:#?}"
        );
        let run = crate::util::mirage(&["run", "-w", same.to_str().unwrap(), "--no-progress"], "s");
        assert_eq!(run.code, 2, "{destination}: {}", run.all());
        assert!(run.stderr.contains("same database"), "{}", run.stderr);
    }
    // Another database of the same server is one of its own.
    let (_, report) = check(&ws, &[]);
    assert!(
        report["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["status"] == "pass" && i["check"] == "a database of its own"),
        "{report:#}"
    );
    // A database that does not exist: the fix creates it.
    let ws = dir.write(
        "missing.toml",
        &format!(
            "[source]\nurl = \"{}\"\n[run]\nunreviewed = \"passthrough\"\n[destination]\nurl = \"{}\"\n[schemas]\ninclude = [\"sales\"]\n",
            pg.url_as("src_user", "src"),
            pg.url_as("dst_user", "nowhere")
        ),
    );
    let (_, report) = check(&ws, &[]);
    let failed = failures(&report);
    assert_eq!(
        failed[0]["fix"], "CREATE DATABASE \"nowhere\";",
        "{failed:#?}"
    );
    pg.psql("postgres", failed[0]["fix"].as_str().unwrap())
        .unwrap();
    pg.psql("nowhere", "GRANT CREATE ON DATABASE nowhere TO dst_user")
        .unwrap();
    assert_eq!(check(&ws, &[]).0, 0);
}

/// Python with boto3/botocore: the moto virtualenv's, else python3.
fn python() -> String {
    std::env::var("MIRAGE_MOTO_SERVER")
        .ok()
        .map(|m| Path::new(&m).with_file_name("python").display().to_string())
        .filter(|p| Path::new(p).exists())
        .unwrap_or_else(|| "python3".into())
}

fn py(script: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn policy_documents_are_valid_scoped_and_accepted_by_iam() {
    let rs = Redshift::start();
    let dir = Dir::new();
    let ws = dir.write(
        "workspace.toml",
        &format!(
            "[source]\nurl = \"{}\"\n[run]\nunreviewed = \"passthrough\"\n[destination]\nurl = \"{}\"\n[schemas]\ninclude = [\"sales\"]\n[staging]\nbucket = \"mirage-staging\"\n\
             iam_role = \"arn:aws:iam::123456789012:role/mirage-redshift\"\nregion = \"eu-west-1\"\nkms_key_id = \"1234abcd-12ab-34cd-56ef-1234567890ab\"\nendpoint = \"{}\"\n",
            rs.url("new_src", "src"),
            rs.url("new_dst", "dst"),
            rs.moto.endpoint()
        ),
    );
    let ws_arg = ws.display().to_string();
    let run = mirage(&["policy", "-w", &ws_arg, "--format", "json"], &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let docs: Value = serde_json::from_str(&run.stdout).expect("policy --format json is JSON");
    // Every action is an IAM action of its service: the operations botocore knows (S3 and IAM
    // name some actions differently from their APIs: those are listed from AWS's reference).
    let known: Value = serde_json::from_str(&py(
        "import json, botocore.session as b\ns = b.get_session()\n\
         print(json.dumps({svc: s.get_service_model(svc).operation_names for svc in ['sqs', 'lambda', 'ecr', 'logs', 'kms', 'sts']}))",
        &[],
    ))
    .unwrap();
    let s3_actions = [
        "ListBucket",
        "ListBucketVersions",
        "GetBucketLocation",
        "GetBucketNotification",
        "PutBucketNotification",
        "PutObject",
        "GetObject",
        "DeleteObject",
        "GetObjectVersion",
        "DeleteObjectVersion",
        "GetLifecycleConfiguration",
    ];
    let mut seen = 0;
    for (file, doc) in docs.as_object().unwrap() {
        // The lifecycle rule is a bucket configuration, not a policy.
        if !file.ends_with(".json") || doc.get("Rules").is_some() {
            continue;
        }
        let statements = doc["Statement"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| vec![doc.clone()]);
        for st in statements {
            let actions: Vec<String> = match &st["Action"] {
                Value::String(a) => vec![a.clone()],
                Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_string()).collect(),
                other => panic!("{file}: Action {other}"),
            };
            for a in actions {
                let (service, name) = a.split_once(':').unwrap();
                let valid = match service {
                    "s3" => s3_actions.contains(&name),
                    "iam" => name == "PassRole" || name == "GetRole",
                    svc => known[svc]
                        .as_array()
                        .is_some_and(|ops| ops.iter().any(|o| o == name)),
                };
                assert!(valid, "{file}: {a} is not an IAM action");
                seen += 1;
            }
            let resources: Vec<String> = match &st["Resource"] {
                Value::String(r) => vec![r.clone()],
                Value::Array(r) => r.iter().map(|x| x.as_str().unwrap().to_string()).collect(),
                _ => vec![],
            };
            for r in resources {
                assert!(
                    r.contains("mirage-")
                        || r.contains(":key/1234abcd")
                        || (r == "*"
                            && (st["Condition"].is_object()
                                || st["Sid"] == "NoResourceLevelPermissions")),
                    "{file}: {r} is not scoped to mirage-"
                );
            }
        }
    }
    assert!(seen > 40, "{seen} actions");
    assert!(
        docs["worker-lambda-policy.json"]
            .to_string()
            .contains("arn:aws:iam::123456789012:role/mirage-lambda"),
        "PassRole on the Lambda role only"
    );
    assert_eq!(
        docs["lambda-trust-policy.json"]["Statement"][0]["Principal"]["Service"],
        "lambda.amazonaws.com"
    );

    // moto's IAM accepts the policies and the trust policy.
    let out = dir.path().join("policies");
    let run = mirage(
        &["policy", "-w", &ws_arg, "--out", &out.display().to_string()],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let accepted = py(
        "import sys, boto3\n\
         iam = boto3.client('iam', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='t', aws_secret_access_key='t')\n\
         d = sys.argv[2]\n\
         for name in ['worker-v2-policy', 'worker-lambda-policy', 'lambda-role-policy']:\n\
         \x20   iam.create_policy(PolicyName=name, PolicyDocument=open(d + '/' + name + '.json').read())\n\
         iam.create_role(RoleName='mirage-lambda', AssumeRolePolicyDocument=open(d + '/lambda-trust-policy.json').read())\n\
         print(len(iam.list_policies(Scope='Local')['Policies']), len(iam.list_roles()['Roles']))",
        &[&rs.moto.endpoint(), &out.display().to_string()],
    );
    assert_eq!(accepted.trim(), "3 1");

    // The SQL scripts run, and the users they create pass `mirage check`.
    rs.sql("dst", "CREATE SCHEMA sales");
    for (db, file) in [("src", "source-user.sql"), ("dst", "destination-user.sql")] {
        let sql = std::fs::read_to_string(out.join(file)).unwrap();
        rs.try_sql(db, &sql)
            .unwrap_or_else(|e| panic!("{file}: {e}\n{sql}"));
    }
    let (code, report) = check(&ws, &[]);
    assert_eq!(code, 0, "{report:#}");

    // Another prefix, for users who already name things tonic-…
    let run = mirage(
        &[
            "policy",
            "-w",
            &ws_arg,
            "--prefix",
            "tonic-",
            "--bucket",
            "tonic-staging",
            "--format",
            "json",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        !run.stdout.contains("mirage-") && run.stdout.contains("function:tonic-*"),
        "{}",
        run.stdout
    );
    let run = mirage(&["policy", "-w", &ws_arg, "--prefix", "tonic-"], &[]);
    assert_eq!(
        run.code,
        2,
        "the bucket mirage-staging does not match tonic-: {}",
        run.all()
    );
}
