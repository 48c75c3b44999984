//! The SQS + Lambda process end to end: the Redshift emulator and moto (S3 events to SQS,
//! Lambda functions and mappings, CloudWatch Logs), the `mirage` binary as the worker, and the
//! local Lambda runner serving the Runtime API to real `mirage-lambda` processes.

use crate::redshift::Redshift;
use crate::util::{Dir, Run, mirage_clean};
use mirage_lambda_runner::{Config, Runner};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A queue seen during a job: its URL and KMS key.
type QueueSeen = (String, Option<String>);

const ROLE: &str = "arn:aws:iam::123456789012:role/mirage-lambda";
/// Who makes each request, told apart by access key: the worker (`mirage`), the function
/// (`mirage-lambda`, under the Lambda role) and the Lambda service (the runner, whose queue
/// polling runs under the Lambda role too).
const WORKER_KEY: &str = "AKIAWORKER0000000000";
const LAMBDA_KEY: &str = "AKIALAMBDA0000000000";
const SERVICE_KEY: &str = "AKIASERVICE000000000";
const FUNCTION: &str = "mirage-worker-0-1-0";

/// The `mirage-lambda` binary beside `mirage` (built by `cargo test --workspace`).
fn handler_binary() -> PathBuf {
    let p = Path::new(env!("CARGO_BIN_EXE_mirage")).with_file_name("mirage-lambda");
    assert!(
        p.exists(),
        "{} is missing: build it with `cargo build -p mirage-lambda` (scripts/test does)",
        p.display()
    );
    p
}

/// AWS clients on moto with moto's test credentials.
struct TestAws {
    sqs: aws_sdk_sqs::Client,
    s3: aws_sdk_s3::Client,
    lambda: aws_sdk_lambda::Client,
}

impl TestAws {
    async fn new(endpoint: &str) -> TestAws {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .load()
            .await;
        TestAws {
            sqs: aws_sdk_sqs::Client::new(&shared),
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&shared)
                    .force_path_style(true)
                    .build(),
            ),
            lambda: aws_sdk_lambda::Client::new(&shared),
        }
    }

    /// Queues whose name starts with `prefix`.
    async fn queues(&self, prefix: &str) -> Vec<String> {
        self.sqs
            .list_queues()
            .queue_name_prefix(prefix)
            .send()
            .await
            .map(|r| r.queue_urls().to_vec())
            .unwrap_or_default()
    }

    /// The ids of the bucket's queue notifications.
    async fn notifications(&self) -> Vec<String> {
        self.s3
            .get_bucket_notification_configuration()
            .bucket("mirage-staging")
            .send()
            .await
            .expect("notifications")
            .queue_configurations()
            .iter()
            .map(|q| q.id().unwrap_or_default().to_string())
            .collect()
    }

    async fn mappings(&self) -> usize {
        self.lambda
            .list_event_source_mappings()
            .function_name(FUNCTION)
            .send()
            .await
            .map(|m| m.event_source_mappings().len())
            .unwrap_or(0)
    }
}

/// moto's IAM: the Lambda role must exist for CreateFunction.
pub(crate) fn create_role(endpoint: &str) {
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let out = Command::new("curl")
        .args([
            "-s",
            "--aws-sigv4",
            "aws:amz:us-east-1:iam",
            "--user",
            "testing:testing",
            "-X",
            "POST",
            &format!("{endpoint}/"),
            "--data-urlencode",
            "Action=CreateRole",
            "--data-urlencode",
            "Version=2010-05-08",
            "--data-urlencode",
            "RoleName=mirage-lambda",
            "--data-urlencode",
            &format!("AssumeRolePolicyDocument={trust}"),
        ])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("mirage-lambda"), "CreateRole: {text}");
}

/// The Lambda process's workspace settings.
fn lambda_staging(extra: &str) -> String {
    format!(
        "process = \"lambda\"\nlambda_runner = \"local\"\nencrypt_queue = true\n\
         lambda_image = \"123456789012.dkr.ecr.us-east-1.amazonaws.com/mirage-lambda:0.1.0\"\n{extra}"
    )
}

/// `mirage run` with the Lambda settings in the environment.
fn command(ws: &Path, seed: &str, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mirage"));
    cmd.args(["run", "-w", &ws.display().to_string(), "--no-progress"])
        .env("MIRAGE_SEED", crate::util::seed(seed))
        .env("AWS_ACCESS_KEY_ID", WORKER_KEY)
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("TONIC_LAMBDA_ROLE", ROLE)
        .env("TONIC_LAMBDA_KMS_MASTER_KEY", "alias/mirage-sqs")
        .env_remove("MIRAGE_LOG")
        .env_remove("MIRAGE_FAILPOINT")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn run(ws: &Path, seed: &str, env: &[(&str, &str)]) -> Run {
    command(ws, seed, env).output().expect("run mirage").into()
}

/// Every table of the destination, as text.
fn destination(rs: &Redshift) -> String {
    tables_of(rs, "dst", &["customers", "orders", "regions", "events"])
}

/// One table's entry of a run's JSON report.
fn table_report(out: &Run, table: &str) -> serde_json::Value {
    let path = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("report: "))
        .expect("report path");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("report")).expect("JSON");
    report["tables"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["table"] == table))
        .cloned()
        .unwrap_or_else(|| panic!("{table} in {report}"))
}

/// Tables of database `db`, as text.
fn tables_of(rs: &Redshift, db: &str, tables: &[&str]) -> String {
    tables
        .iter()
        .map(|t| rs.sql(db, &format!("SELECT * FROM sales.{t} ORDER BY 1, 2")))
        .collect::<Vec<_>>()
        .join("\n----\n")
}

fn runner(rt: &tokio::runtime::Runtime, endpoint: &str, env: &[(&str, &str)]) -> Runner {
    let mut all: Vec<(String, String)> = vec![
        ("AWS_ACCESS_KEY_ID".into(), LAMBDA_KEY.into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
    ];
    all.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    rt.block_on(Runner::start(Config {
        endpoint: Some(endpoint.to_string()),
        region: "us-east-1".into(),
        function: FUNCTION.into(),
        binary: handler_binary(),
        concurrency: 2,
        env: all,
        credentials: Some((SERVICE_KEY.into(), "testing".into())),
    }))
}

/// Nothing of a job is left in AWS: queues, mapping, notification, staging files.
fn assert_torn_down(rs: &Redshift, rt: &tokio::runtime::Runtime, aws: &TestAws, what: &str) {
    rt.block_on(async {
        let left = aws.queues("mirage-2").await;
        assert!(left.is_empty(), "{what}: queues left {left:?}");
        assert_eq!(aws.mappings().await, 0, "{what}: a mapping is left");
        assert_eq!(
            aws.notifications().await,
            ["other-team"],
            "{what}: the bucket's notifications"
        );
        let f = aws
            .lambda
            .get_function()
            .function_name(FUNCTION)
            .send()
            .await;
        assert!(f.is_ok(), "{what}: the function stays");
    });
    assert_eq!(rs.staged_keys(), 0, "{what}: {}", rs.listing());
}

/// The Lambda role in moto, a runtime, clients, and another team's notification on the bucket
/// (which every job must keep).
fn aws_world(endpoint: &str) -> (tokio::runtime::Runtime, TestAws) {
    create_role(endpoint);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let aws = rt.block_on(TestAws::new(endpoint));
    rt.block_on(other_team_notification(&aws));
    (rt, aws)
}

/// Another team's notification on the bucket (every job must keep it), written over whatever
/// the bucket holds, as a careless concurrent writer would.
async fn other_team_notification(aws: &TestAws) {
    let url = aws
        .sqs
        .create_queue()
        .queue_name("other-team-events")
        .send()
        .await
        .expect("queue")
        .queue_url()
        .unwrap_or_default()
        .to_string();
    let arn = "arn:aws:sqs:us-east-1:123456789012:other-team-events";
    let _ = url;
    let q = aws_sdk_s3::types::QueueConfiguration::builder()
        .id("other-team")
        .queue_arn(arn)
        .events(aws_sdk_s3::types::Event::S3ObjectCreated)
        .filter(
            aws_sdk_s3::types::NotificationConfigurationFilter::builder()
                .key(
                    aws_sdk_s3::types::S3KeyFilter::builder()
                        .filter_rules(
                            aws_sdk_s3::types::FilterRule::builder()
                                .name(aws_sdk_s3::types::FilterRuleName::Prefix)
                                .value("elsewhere/")
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .build()
        .expect("queue configuration");
    aws.s3
        .put_bucket_notification_configuration()
        .bucket("mirage-staging")
        .notification_configuration(
            aws_sdk_s3::types::NotificationConfiguration::builder()
                .queue_configurations(q)
                .build(),
        )
        .send()
        .await
        .expect("put notification");
}

#[test]
fn lambda_process_matches_v2_cleans_up_and_fails_only_the_poisoned_table() {
    let rs = Redshift::start();
    let endpoint = rs.moto.endpoint();
    // A table big enough for several UNLOAD files per slice.
    rs.sql(
        "src",
        "CREATE TABLE sales.events (id INTEGER, who VARCHAR(60), what VARCHAR(200)); \
         INSERT INTO sales.events SELECT i, 'person ' || i, repeat('event text ' || i || ', ', 5) \
         FROM generate_series(1, 120000) i; GRANT SELECT ON sales.events TO src_user;",
    );
    let (rt, aws) = aws_world(&endpoint);
    let dir = Dir::new();
    let events = "\n[tables.\"sales.events\".columns]\nwho = { generator = \"full_name\" }\n";
    // Data Pipeline V2 first: what the Lambda process must reproduce.
    let v2 = rs.workspace_with(&dir, "dst_user", "", "");
    std::fs::write(&v2, std::fs::read_to_string(&v2).unwrap() + events).unwrap();
    let out = run(&v2, "same-seed", &[]);
    assert_eq!(out.code, 0, "{}", out.all());
    let expected = destination(&rs);
    let v2_report = table_report(&out, "sales.events");

    // The Lambda process, with the same seed, into the same destination after a reset.
    rs.sql("dst", "DROP SCHEMA sales CASCADE");
    let ws = dir.path().join("lambda.toml");
    std::fs::write(
        &ws,
        std::fs::read_to_string(&v2)
            .unwrap()
            .replace("\n[run]", &format!("{}\n[run]", lambda_staging(""))),
    )
    .unwrap();
    // Without lambda_image, `mirage check` finds the function's image in ECR.
    let ecr_ws = dir.path().join("ecr.toml");
    std::fs::write(
        &ecr_ws,
        std::fs::read_to_string(&ws)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("lambda_image"))
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    let check_as = |ws: &Path, role: &str| -> Run {
        Command::new(env!("CARGO_BIN_EXE_mirage"))
            .args(["check", "-w", &ws.display().to_string()])
            .env("MIRAGE_SEED", crate::util::seed("s"))
            .env("AWS_ACCESS_KEY_ID", WORKER_KEY)
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("TONIC_LAMBDA_ROLE", role)
            .env("TONIC_LAMBDA_KMS_MASTER_KEY", "alias/mirage-sqs")
            .output()
            .expect("mirage check")
            .into()
    };
    let check = |ws: &Path| check_as(ws, ROLE);
    // A role that does not exist would fail CreateFunction: check says so.
    let missing = "arn:aws:iam::123456789012:role/no-such-role";
    let no_role = check_as(&ws, missing);
    assert_eq!(no_role.code, 1, "{}", no_role.all());
    assert!(
        no_role
            .stdout
            .contains(&format!("role {missing} (TONIC_LAMBDA_ROLE) exists")),
        "{}",
        no_role.all()
    );
    let before = check(&ecr_ws);
    assert_eq!(before.code, 1, "no image, no zip: {}", before.all());
    rt.block_on(async {
        let ecr = aws_sdk_ecr::Client::new(
            &aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("us-east-1"))
                .endpoint_url(&endpoint)
                .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                    "testing", "testing", None, None, "test",
                ))
                .load()
                .await,
        );
        ecr.create_repository()
            .repository_name("mirage-lambda")
            .send()
            .await
            .expect("repository");
        ecr.put_image()
            .repository_name("mirage-lambda")
            .image_tag("0.1.0")
            .image_manifest(
                r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}"#,
            )
            .send()
            .await
            .expect("image");
    });
    let after = check(&ecr_ws);
    assert_eq!(after.code, 0, "{}", after.all());
    assert!(
        after.stdout.contains("mirage-lambda:0.1.0"),
        "the image found in ECR: {}",
        after.stdout
    );
    let runner_ok = runner(&rt, &endpoint, &[]);
    // Watch the job's queues while it runs: their encryption setting.
    let seen: Arc<Mutex<Vec<QueueSeen>>> = Arc::new(Mutex::new(Vec::new()));
    let watcher = {
        let seen = seen.clone();
        let endpoint = endpoint.clone();
        rt.spawn(async move {
            let aws = TestAws::new(&endpoint).await;
            loop {
                for url in aws.queues("mirage-2").await {
                    let attrs = aws
                        .sqs
                        .get_queue_attributes()
                        .queue_url(&url)
                        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
                        .send()
                        .await;
                    if let Ok(a) = attrs {
                        let kms = a
                            .attributes()
                            .and_then(|m| {
                                m.get(&aws_sdk_sqs::types::QueueAttributeName::KmsMasterKeyId)
                            })
                            .cloned();
                        if let Ok(mut s) = seen.lock()
                            && !s.iter().any(|(u, _)| u == &url)
                        {
                            s.push((url, kms));
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    rs.moto.start_recording().expect("recording");
    let out = run(&ws, "same-seed", &[]);
    let recorded = rs.moto.stop_recording().expect("recording");
    watcher.abort();
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(
        destination(&rs),
        expected,
        "the Lambda process gives exactly V2's rows"
    );
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.len() == 2
            && seen
                .iter()
                .all(|(_, k)| k.as_deref() == Some("alias/mirage-sqs")),
        "the queue and its DLQ are KMS-encrypted: {seen:?}"
    );
    // The report carries the Lambda figures of the transformed tables, and counts bytes as
    // V2 does (uncompressed).
    let events_report = table_report(&out, "sales.events");
    for figure in ["bytes_read", "bytes_written", "rows"] {
        assert_eq!(
            events_report[figure], v2_report[figure],
            "{figure} as V2 reports it: {events_report} vs {v2_report}"
        );
    }
    assert!(
        events_report["lambda"]["files"].as_u64().unwrap() >= 3,
        "several files per slice: {events_report}"
    );
    assert_torn_down(&rs, &rt, &aws, "after a successful job");
    rt.block_on(runner_ok.stop());
    every_request_is_allowed_by_the_printed_policies(&ws, &recorded);

    // A file whose handler dies every time: it reaches the dead-letter queue and fails its
    // table only; the destination table keeps what it held.
    let fast = dir.path().join("fast.toml");
    std::fs::write(&fast, std::fs::read_to_string(&ws).unwrap()).unwrap();
    let quick = [
        ("TONIC_LAMBDA_TIMEOUT", "3"),
        ("TONIC_LAMBDA_SQS_VISIBILITY_TIMEOUT", "3"),
    ];
    let before = rs.sql("dst", "SELECT count(*), sum(order_id) FROM sales.orders");
    let crashing = runner(
        &rt,
        &endpoint,
        &[("MIRAGE_FAILPOINT", "lambda-crash:sales.orders")],
    );
    let out = run(&fast, "other-seed", &quick);
    rt.block_on(crashing.stop());
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.all().contains("dead-letter queue"),
        "the poison file is named: {}",
        out.all()
    );
    assert!(out.all().contains("completed tables (4)"), "{}", out.all());
    assert_eq!(
        rs.sql("dst", "SELECT count(*), sum(order_id) FROM sales.orders"),
        before,
        "the failed table keeps its rows"
    );
    assert_torn_down(&rs, &rt, &aws, "after a poison file");

    // A handler that outlives the function's timeout is killed, and the logs say so.
    let hanging = runner(
        &rt,
        &endpoint,
        &[("MIRAGE_FAILPOINT", "lambda-hang:sales.orders")],
    );
    let out = run(&fast, "other-seed", &quick);
    rt.block_on(hanging.stop());
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.all().contains("Task timed out"), "{}", out.all());
    assert_torn_down(&rs, &rt, &aws, "after a timeout");
    // The function was brought in line with the new settings (the runner killed at 3 s).
    let timeout = rt.block_on(async {
        aws.lambda
            .get_function_configuration()
            .function_name(FUNCTION)
            .send()
            .await
            .expect("function")
            .timeout()
    });
    assert_eq!(
        timeout,
        Some(3),
        "UpdateFunctionConfiguration applied TONIC_LAMBDA_TIMEOUT"
    );

    // Ctrl-C while files are being transformed: everything is torn down, exit 130.
    let hanging = runner(
        &rt,
        &endpoint,
        &[("MIRAGE_FAILPOINT", "lambda-hang:sales.orders")],
    );
    let mut child = command(&fast, "other-seed", &quick)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mirage");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    for line in lines.by_ref() {
        if line.unwrap().contains("sales.orders started") {
            break;
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let out = child.wait_with_output().unwrap();
    rt.block_on(hanging.stop());
    assert_eq!(out.status.code(), Some(130), "{}", rest.join("\n"));
    assert_torn_down(&rs, &rt, &aws, "after Ctrl-C");

    // kill -9 mid-job leaves its queues, mapping, notification entry and raw UNLOAD files; a
    // live job's are never removed, a dead one's are (by `mirage clean`, as by the next run).
    let hanging = runner(
        &rt,
        &endpoint,
        &[("MIRAGE_FAILPOINT", "lambda-hang:sales.orders")],
    );
    let mut child = command(&fast, "other-seed", &quick)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mirage");
    let stderr = child.stderr.take().unwrap();
    for line in BufReader::new(stderr).lines() {
        if line.unwrap().contains("sales.orders started") {
            break;
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    let clean = |dead_after: &str| mirage_clean(&fast, WORKER_KEY, dead_after);
    let live = clean("600");
    assert_eq!(live.code, 0, "{}", live.all());
    assert!(live.stdout.contains("nothing to clean"), "{}", live.all());
    // Its lease is older than 1 s, but its process runs on this machine: still alive.
    let live = clean("1");
    assert!(live.stdout.contains("nothing to clean"), "{}", live.all());
    let status = Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let _ = child.wait();
    rt.block_on(hanging.stop());
    let left = rt.block_on(aws.queues("mirage-2"));
    assert_eq!(left.len(), 2, "kill -9 leaves the job's queues: {left:?}");
    assert!(rs.staged_keys() > 0, "and its staging files");
    std::thread::sleep(Duration::from_secs(3));
    let dead = clean("1");
    assert_eq!(dead.code, 0, "{}", dead.all());
    assert!(
        dead.stdout.contains("queue") && dead.stdout.contains("staging files of dead job"),
        "{}",
        dead.all()
    );
    assert_torn_down(&rs, &rt, &aws, "after kill -9 and mirage clean");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(rs.staged_keys(), 0, "nothing comes back: {}", rs.listing());
}

/// Two Lambda jobs at once on one bucket, while a careless writer keeps replacing the bucket's
/// notification configuration: each job puts its entry back and re-sends the events of the
/// files UNLOADed meanwhile, so both complete with V2's rows, and both tear down.
#[test]
fn two_lambda_jobs_at_once_survive_a_concurrent_notification_writer() {
    let rs = Redshift::start();
    let endpoint = rs.moto.endpoint();
    rs.sql("postgres", "CREATE DATABASE dst2");
    rs.sql(
        "dst2",
        "GRANT SELECT ON pg_catalog.svv_table_info TO dst_user; \
         GRANT TEMPORARY ON DATABASE dst2 TO dst_user; GRANT CREATE ON DATABASE dst2 TO dst_user;",
    );
    let (rt, aws) = aws_world(&endpoint);
    let tables = ["customers", "orders", "regions", "empty_one"];
    let dir = Dir::new();
    let v2 = rs.workspace_with(&dir, "dst_user", "", "");
    let out = run(&v2, "same-seed", &[]);
    assert_eq!(out.code, 0, "{}", out.all());
    let expected = tables_of(&rs, "dst", &tables);
    rs.sql("dst", "DROP SCHEMA sales CASCADE");
    let lambda = std::fs::read_to_string(&v2)
        .unwrap()
        .replace("\n[run]", &format!("{}\n[run]", lambda_staging("")));
    let first = dir.path().join("first.toml");
    let second = dir.path().join("second.toml");
    std::fs::write(&first, &lambda).unwrap();
    std::fs::write(&second, lambda.replace("/dst?", "/dst2?")).unwrap();
    let runner = runner(&rt, &endpoint, &[]);
    let spawn = |ws: &Path, memory: &str| {
        command(ws, "same-seed", &[("TONIC_LAMBDA_MEMORY_SIZE", memory)])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mirage")
    };
    // The second job reconfigures the shared function: each job's queue is mapped to a
    // version of its own, so neither changes the memory of the other's invocations.
    let (a, b) = (spawn(&first, "1024"), spawn(&second, "2048"));
    // Once both jobs have their queues, replace the notifications every few hundred
    // milliseconds until both jobs end: most S3 events of their files are lost.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clobber = {
        let stop = stop.clone();
        let endpoint = endpoint.clone();
        rt.spawn(async move {
            let aws = TestAws::new(&endpoint).await;
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while aws.queues("mirage-2").await.len() < 4 && std::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let mut memories = std::collections::BTreeSet::new();
            let mut writes = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                other_team_notification(&aws).await;
                writes += 1;
                for m in aws
                    .lambda
                    .list_event_source_mappings()
                    .send()
                    .await
                    .map(|m| m.event_source_mappings().to_vec())
                    .unwrap_or_default()
                {
                    let c = aws
                        .lambda
                        .get_function_configuration()
                        .function_name(m.function_arn().unwrap_or_default())
                        .send()
                        .await;
                    if let Ok(c) = c {
                        memories
                            .insert((c.version().unwrap_or_default().to_string(), c.memory_size()));
                    }
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            (memories, writes)
        })
    };
    let (a, b): (Run, Run) = (
        a.wait_with_output().expect("first").into(),
        b.wait_with_output().expect("second").into(),
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (memories, writes) = rt.block_on(clobber).expect("clobber task");
    assert!(
        writes >= 3,
        "the notifications were replaced while the jobs ran: {writes}"
    );
    let sizes: std::collections::BTreeSet<Option<i32>> = memories.iter().map(|m| m.1).collect();
    assert!(
        sizes.contains(&Some(1024))
            && sizes.contains(&Some(2048))
            && memories.iter().all(|(v, _)| v != "$LATEST"),
        "each job's queue is mapped to a published version with its own memory: {memories:?}"
    );
    rt.block_on(runner.stop());
    assert_eq!(a.code, 0, "first job: {}", a.all());
    assert_eq!(b.code, 0, "second job: {}", b.all());
    // Whether a job prints "putting it back" depends on when the writer struck (a job re-reads
    // every 3 s): both completing with the rows is the proof; without the heal they stall.
    assert_eq!(tables_of(&rs, "dst", &tables), expected, "first job's rows");
    assert_eq!(
        tables_of(&rs, "dst2", &tables),
        expected,
        "second job's rows"
    );
    assert_torn_down(&rs, &rt, &aws, "after two jobs at once");
    // A bucket without notifications (as moto answers a new one), and a folder under the
    // prefix that is not a job's: `mirage clean` reads the one and leaves the other alone.
    rt.block_on(async {
        aws.s3
            .put_bucket_notification_configuration()
            .bucket("mirage-staging")
            .notification_configuration(
                aws_sdk_s3::types::NotificationConfiguration::builder().build(),
            )
            .send()
            .await
            .expect("no notifications");
        aws.s3
            .put_object()
            .bucket("mirage-staging")
            .key("jobs/archive/keep.csv")
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"keep me"))
            .send()
            .await
            .expect("put");
    });
    let clean = mirage_clean(&first, WORKER_KEY, "0");
    assert_eq!(clean.code, 0, "{}", clean.all());
    assert!(clean.stdout.contains("nothing to clean"), "{}", clean.all());
    assert!(
        rs.listing().contains("jobs/archive/keep.csv"),
        "{}",
        rs.listing()
    );

    // What a `mirage check` killed mid-way leaves: its probe object and probe queue.
    rt.block_on(async {
        aws.s3
            .put_object()
            .bucket("mirage-staging")
            .key("jobs/_mirage_check/99999/probe.txt")
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"probe"))
            .send()
            .await
            .expect("put");
        aws.sqs
            .create_queue()
            .queue_name("mirage-check-99999")
            .send()
            .await
            .expect("queue");
    });
    std::thread::sleep(Duration::from_millis(2100));
    let clean = mirage_clean(&first, WORKER_KEY, "1");
    assert!(
        clean.stdout.contains("probe queue mirage-check-99999")
            && clean.stdout.contains("probe object(s)"),
        "{}",
        clean.all()
    );
    assert!(rt.block_on(aws.queues("mirage-check")).is_empty());
    assert!(!rs.listing().contains("_mirage_check"), "{}", rs.listing());

    // No runner: the job says what consumes its queue; SIGTERM then tears everything down.
    rt.block_on(other_team_notification(&aws));
    rt.block_on(async {
        aws.s3
            .delete_object()
            .bucket("mirage-staging")
            .key("jobs/archive/keep.csv")
            .send()
            .await
            .expect("delete");
    });
    let mut child = command(&first, "same-seed", &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mirage");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen += &line;
        seen.push('\n');
        if line.contains("no invocation takes them") {
            break;
        }
    }
    assert!(
        seen.contains("mirage-lambda-runner --function mirage-worker-0-1-0"),
        "{seen}"
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130), "{seen}{}", rest.join("\n"));
    assert_torn_down(&rs, &rt, &aws, "after SIGTERM");
}

/// An AWS request as IAM sees it: who (access key), the action, the S3 object it touches.
#[derive(Debug)]
struct Call {
    key: String,
    action: String,
    object: Option<String>,
}

/// Name the IAM action of one request moto recorded (the services mirage's Lambda process
/// uses: SQS, S3, Lambda, CloudWatch Logs, ECR, KMS).
fn call_of(line: &str) -> Option<Call> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let headers = v["headers"].as_object()?;
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_str())
    };
    let auth = header("Authorization")?;
    let scope = auth.split("Credential=").nth(1)?.split(',').next()?;
    let parts: Vec<&str> = scope.split('/').collect();
    let (key, service) = (parts.first()?.to_string(), parts.get(3)?.to_string());
    let method = v["method"].as_str()?;
    let url = v["url"].as_str()?;
    let path_query = url.split_once("://").map_or(url, |(_, r)| r);
    let path_query = &path_query[path_query.find('/').unwrap_or(0)..];
    let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
    let has = |q: &str| {
        query
            .split('&')
            .any(|p| p == q || p.starts_with(&format!("{q}=")))
    };
    if let Some(target) = header("X-Amz-Target") {
        let op = target.rsplit('.').next()?;
        return Some(Call {
            key,
            action: format!("{service}:{op}"),
            object: None,
        });
    }
    let action = match service.as_str() {
        "s3" => {
            let segments: Vec<&str> = path.trim_start_matches('/').splitn(2, '/').collect();
            let object = segments.get(1).filter(|k| !k.is_empty());
            let a = match (method, object.is_some()) {
                (_, false) if has("notification") => {
                    if method == "GET" {
                        "GetBucketNotification"
                    } else {
                        "PutBucketNotification"
                    }
                }
                ("POST", false) if has("delete") => "DeleteObject",
                ("GET", false) => "ListBucket",
                ("GET" | "HEAD", true) => "GetObject",
                ("PUT" | "POST", true) => "PutObject",
                ("DELETE", true) => "DeleteObject",
                _ => {
                    return Some(Call {
                        key,
                        action: format!("s3:{method} {path}?{query}"),
                        object: None,
                    });
                }
            };
            let object = object.map(|k| format!("arn:aws:s3:::{}/{k}", segments[0]));
            return Some(Call {
                key,
                action: format!("s3:{a}"),
                object,
            });
        }
        "lambda" => {
            let p = path.trim_start_matches("/2015-03-31");
            match (method, p) {
                ("POST", "/functions" | "/functions/") => "CreateFunction",
                ("GET", p) if p.starts_with("/functions/") && p.ends_with("/configuration") => {
                    "GetFunctionConfiguration"
                }
                ("PUT", p) if p.starts_with("/functions/") && p.ends_with("/configuration") => {
                    "UpdateFunctionConfiguration"
                }
                ("POST", p) if p.starts_with("/functions/") && p.ends_with("/versions") => {
                    "PublishVersion"
                }
                ("GET", p) if p.starts_with("/functions/") => "GetFunction",
                ("GET", "/functions" | "/functions/") => "ListFunctions",
                ("POST", p) if p.starts_with("/event-source-mappings") => {
                    "CreateEventSourceMapping"
                }
                ("DELETE", p) if p.starts_with("/event-source-mappings/") => {
                    "DeleteEventSourceMapping"
                }
                ("GET", p) if p.trim_end_matches('/') == "/event-source-mappings" => {
                    "ListEventSourceMappings"
                }
                ("GET", p) if p.starts_with("/event-source-mappings/") => "GetEventSourceMapping",
                ("PUT", p) if p.starts_with("/event-source-mappings/") => {
                    "UpdateEventSourceMapping"
                }
                _ => {
                    return Some(Call {
                        key,
                        action: format!("lambda:{method} {p}"),
                        object: None,
                    });
                }
            }
        }
        "sqs" | "iam" => {
            // The query protocol names the action in the body.
            let raw = v["body"].as_str().unwrap_or("");
            let decoded = if v["body_encoded"].as_bool() == Some(true) {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD
                    .decode(raw)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default()
            } else {
                raw.to_string()
            };
            let action = decoded
                .split('&')
                .find_map(|p| p.strip_prefix("Action="))
                .unwrap_or("?");
            return Some(Call {
                key,
                action: format!("{service}:{action}"),
                object: None,
            });
        }
        _ => "?",
    };
    Some(Call {
        key,
        action: format!("{service}:{action}"),
        object: None,
    })
}

/// `*` matches any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

/// Whether a policy document allows an action (on an S3 object, when given).
fn allows(policy: &serde_json::Value, call: &Call) -> bool {
    let list = |v: &serde_json::Value| -> Vec<String> {
        match v {
            serde_json::Value::String(s) => vec![s.clone()],
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    };
    policy["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|st| {
            st["Effect"] == "Allow"
                && list(&st["Action"]).iter().any(|a| glob(a, &call.action))
                && call
                    .object
                    .as_ref()
                    .is_none_or(|o| list(&st["Resource"]).iter().any(|r| glob(r, o)))
        })
}

/// Every AWS request a Lambda-process job made is allowed by the policy `mirage policy` prints
/// for the identity that made it: the worker's policy for `mirage`, the Lambda role's for the
/// function and for the queue polling the Lambda service does under that role.
fn every_request_is_allowed_by_the_printed_policies(ws: &Path, recorded: &[String]) {
    let policy = Command::new(env!("CARGO_BIN_EXE_mirage"))
        .args([
            "policy",
            "-w",
            &ws.display().to_string(),
            "--format",
            "json",
            "--account",
            "123456789012",
        ])
        .env("TONIC_LAMBDA_ROLE", ROLE)
        .env("TONIC_LAMBDA_KMS_MASTER_KEY", "alias/mirage-sqs")
        .output()
        .expect("mirage policy");
    let docs: serde_json::Value =
        serde_json::from_slice(&policy.stdout).expect("policy --format json");
    let worker = &docs["worker-lambda-policy.json"];
    let role = &docs["lambda-role-policy.json"];
    let calls: Vec<Call> = recorded.iter().filter_map(|l| call_of(l)).collect();
    let mut checked = std::collections::BTreeSet::new();
    let mut denied = Vec::new();
    for call in &calls {
        let policy = match call.key.as_str() {
            WORKER_KEY => worker,
            LAMBDA_KEY => role,
            // The Lambda service polls the queue with the function's role and writes its logs;
            // reading its own mappings and functions needs no user policy.
            SERVICE_KEY if call.action.starts_with("sqs:") && call.action != "sqs:GetQueueUrl" => {
                role
            }
            SERVICE_KEY if call.action.starts_with("logs:") => role,
            _ => continue,
        };
        checked.insert(format!("{} {}", &call.key[4..10], call.action));
        if !allows(policy, call) {
            denied.push(format!("{call:?}"));
        }
    }
    assert!(
        denied.is_empty(),
        "requests the printed policies deny: {denied:#?}"
    );
    for needed in [
        "WORKER sqs:CreateQueue",
        "WORKER lambda:CreateEventSourceMapping",
        "WORKER lambda:PublishVersion",
        "WORKER iam:GetRole",
        "WORKER s3:PutBucketNotification",
        "WORKER s3:PutObject",
        "LAMBDA s3:GetObject",
        "LAMBDA s3:PutObject",
        "SERVIC sqs:ReceiveMessage",
        "SERVIC sqs:DeleteMessage",
    ] {
        assert!(
            checked.contains(needed),
            "{needed} was not seen: {checked:#?}"
        );
    }
}
