//! A local stand-in for AWS Lambda and its SQS event source mappings, for tests, demos and
//! benchmarks against moto (which stores functions and mappings but cannot run our code, and
//! whose own mappings would swallow messages).
//!
//! The runner finds the event source mappings of a function (enabled or not), polls their
//! queues as the Lambda service does — at most `batch size` messages at a time, each hidden for
//! the queue's visibility timeout while it is processed — and hands each batch to a real
//! `mirage-lambda` process through the Lambda Runtime API (`/2018-06-01/runtime/invocation/next`,
//! `…/{id}/response`, `…/{id}/error`, `…/init/error`), which it serves on a loopback port. On a
//! response it deletes the messages that did not fail (`batchItemFailures`); on an error, a
//! crash or a timeout (the process is killed past the function's timeout) the messages are left
//! to return after their visibility timeout, and so reach the dead-letter queue after the
//! queue's `maxReceiveCount`. Up to `concurrency` processes run at once; each process's output
//! and a `REPORT` line per invocation go to the CloudWatch log group `/aws/lambda/<function>`,
//! with "Task timed out after N seconds" or "Runtime exited" when that is how it ended.

#![warn(missing_docs)]

use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, mpsc, oneshot, watch};

/// What to run and where.
#[derive(Debug, Clone)]
pub struct Config {
    /// AWS endpoint (moto), e.g. `http://127.0.0.1:5000`.
    pub endpoint: Option<String>,
    /// Region.
    pub region: String,
    /// The Lambda function whose mappings are served.
    pub function: String,
    /// The `mirage-lambda` binary.
    pub binary: PathBuf,
    /// Handler processes at once.
    pub concurrency: usize,
    /// Extra environment for the handler processes (as the function's environment variables).
    pub env: Vec<(String, String)>,
    /// Access key id and secret for the runner's own requests (default: the usual sources).
    pub credentials: Option<(String, String)>,
}

/// How an invocation ended.
#[derive(Debug)]
enum Outcome {
    Response(Vec<u8>),
    Error(Vec<u8>),
    InitError(Vec<u8>),
}

/// One invocation handed to a process.
struct Invocation {
    id: String,
    event: Vec<u8>,
    deadline_ms: u128,
    done: oneshot::Sender<Outcome>,
}

/// Counters of what the runner did, for tests and benchmarks.
#[derive(Debug, Default)]
pub struct Counters {
    /// Invocations started.
    pub invocations: AtomicU64,
    /// Invocations that returned a response.
    pub responses: AtomicU64,
    /// Invocations that failed (error, crash, timeout).
    pub failures: AtomicU64,
    /// Invocations killed at their timeout.
    pub timeouts: AtomicU64,
}

/// A running runner; dropping it does not stop it: call [`Runner::stop`].
pub struct Runner {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    /// What it did so far.
    pub counters: Arc<Counters>,
}

impl Runner {
    /// Start polling.
    pub async fn start(config: Config) -> Runner {
        let (stop, stopped) = watch::channel(false);
        let counters = Arc::new(Counters::default());
        let aws = Aws::new(&config).await;
        let task = tokio::spawn(run(config, aws, counters.clone(), stopped));
        Runner {
            stop,
            task,
            counters,
        }
    }

    /// Stop polling, kill the handler processes, and wait for the runner to end.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

#[derive(Clone)]
struct Aws {
    sqs: aws_sdk_sqs::Client,
    lambda: aws_sdk_lambda::Client,
    logs: aws_sdk_cloudwatchlogs::Client,
}

impl Aws {
    async fn new(config: &Config) -> Aws {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(config.region.clone()));
        if let Some(e) = &config.endpoint {
            loader = loader.endpoint_url(e);
        }
        if let Some((id, secret)) = &config.credentials {
            loader = loader.credentials_provider(aws_sdk_sqs::config::Credentials::new(
                id,
                secret,
                None,
                None,
                "mirage-lambda-runner",
            ));
        }
        let shared = loader.load().await;
        Aws {
            sqs: aws_sdk_sqs::Client::new(&shared),
            lambda: aws_sdk_lambda::Client::new(&shared),
            logs: aws_sdk_cloudwatchlogs::Client::new(&shared),
        }
    }
}

/// What the runner says through `tracing`: each distinct line once (slots poll in loops).
#[derive(Default)]
struct Notes(std::sync::Mutex<std::collections::HashSet<String>>);

impl Notes {
    fn first(&self, line: &str) -> bool {
        self.0
            .lock()
            .map(|mut seen| seen.insert(line.to_string()))
            .unwrap_or(false)
    }
    fn info(&self, line: String) {
        if self.first(&line) {
            tracing::info!("{line}");
        }
    }
    fn warn(&self, line: String) {
        if self.first(&line) {
            tracing::warn!("{line}");
        }
    }
}

/// An AWS error in one line: the service's code and message, else the SDK's error chain.
fn short<E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error>(e: &E) -> String {
    match (e.code(), e.message()) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        _ => mirage_core::display::error_chain(e),
    }
}

/// A mapping's queue, as the poller sees it.
#[derive(Clone)]
struct Source {
    url: String,
    arn: String,
    batch_size: i32,
    /// The function (version) the queue is mapped to.
    function: Function,
}

/// The settings of the function version the runner applies.
#[derive(Clone)]
struct Function {
    timeout: Duration,
    memory: i32,
    arn: String,
    version: String,
}

/// A function, or one version of it (`name:version` or a qualified ARN).
async fn function(aws: &Aws, name: &str, notes: &Notes) -> Option<Function> {
    let c = match aws
        .lambda
        .get_function_configuration()
        .function_name(name)
        .send()
        .await
    {
        Ok(c) => c,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            notes.warn(format!(
                "function {name} does not exist yet (waiting: a `mirage run` with process = \
                 \"lambda\" creates it)"
            ));
            return None;
        }
        Err(e) => {
            notes.warn(format!("cannot read function {name}: {}", short(&e)));
            return None;
        }
    };
    Some(Function {
        timeout: Duration::from_secs(c.timeout().unwrap_or(30).max(1) as u64),
        memory: c.memory_size().unwrap_or(1024),
        arn: c.function_arn().unwrap_or_default().to_string(),
        version: c.version().unwrap_or("$LATEST").to_string(),
    })
}

/// The queues mapped to the function or to any of its versions.
async fn sources(aws: &Aws, name: &str, notes: &Notes) -> Vec<Source> {
    let Some(base) = function(aws, name, notes).await else {
        return Vec::new();
    };
    let base_arn = base
        .arn
        .strip_suffix(":$LATEST")
        .unwrap_or(&base.arn)
        .to_string();
    let m = match aws.lambda.list_event_source_mappings().send().await {
        Ok(m) => m,
        Err(e) => {
            notes.warn(format!("listing event source mappings: {}", short(&e)));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for mapping in m.event_source_mappings() {
        let target = mapping.function_arn().unwrap_or_default();
        if target != base_arn && !target.starts_with(&format!("{base_arn}:")) {
            continue;
        }
        let Some(arn) = mapping.event_source_arn() else {
            continue;
        };
        let Some(function) = function(aws, target, notes).await else {
            continue;
        };
        let Some(queue) = arn.rsplit(':').next() else {
            continue;
        };
        if let Ok(u) = aws.sqs.get_queue_url().queue_name(queue).send().await
            && let Some(url) = u.queue_url()
        {
            notes.info(format!(
                "serving queue {queue} → {} (version {}, timeout {} s, memory {} MB)",
                name,
                function.version,
                function.timeout.as_secs(),
                function.memory
            ));
            out.push(Source {
                url: url.to_string(),
                arn: arn.to_string(),
                batch_size: mapping.batch_size().unwrap_or(10).clamp(1, 10),
                function,
            });
        }
    }
    out
}

async fn run(config: Config, aws: Aws, counters: Arc<Counters>, stopped: watch::Receiver<bool>) {
    let logs = Logs::new(aws.clone(), &config.function).await;
    let notes = Arc::new(Notes::default());
    tracing::info!(
        "serving function {} with up to {} handler process(es) of {}",
        config.function,
        config.concurrency.max(1),
        config.binary.display()
    );
    let mut slots = Vec::new();
    for n in 0..config.concurrency.max(1) {
        slots.push(tokio::spawn(slot(
            n,
            config.clone(),
            aws.clone(),
            logs.clone(),
            counters.clone(),
            notes.clone(),
            stopped.clone(),
        )));
    }
    for s in slots {
        let _ = s.await;
    }
}

/// One handler process and the loop feeding it.
async fn slot(
    n: usize,
    config: Config,
    aws: Aws,
    logs: Logs,
    counters: Arc<Counters>,
    notes: Arc<Notes>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut process: Option<Process> = None;
    let mut turn = n;
    loop {
        if *stopped.borrow() {
            break;
        }
        let queues = sources(&aws, &config.function, &notes).await;
        if queues.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(300)) => continue,
                _ = stopped.changed() => break,
            }
        }
        turn += 1;
        let source = &queues[turn % queues.len()];
        let func = &source.function;
        let received = aws
            .sqs
            .receive_message()
            .queue_url(&source.url)
            .max_number_of_messages(source.batch_size)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .wait_time_seconds(1)
            .send()
            .await;
        let messages = match received {
            Ok(r) => r.messages().to_vec(),
            Err(e) => {
                notes.warn(format!("receiving from {}: {}", source.url, short(&e)));
                tokio::time::sleep(Duration::from_millis(300)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        // A process runs one version of the function (its memory, its timeout).
        if let Some(mut p) = process.take_if(|p| p.arn != func.arn) {
            p.kill().await;
        }
        if process.is_none() {
            match Process::start(&config, func, n, logs.clone()).await {
                Ok(p) => process = Some(p),
                Err(e) => {
                    notes.warn(format!(
                        "cannot start the handler {}: {e}",
                        config.binary.display()
                    ));
                    logs.put(
                        &format!("runner slot {n}"),
                        &format!("cannot start the handler: {e}"),
                    )
                    .await;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
        }
        let Some(p) = process.as_mut() else { continue };
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                let attributes: HashMap<String, String> = m
                    .attributes()
                    .map(|a| {
                        a.iter()
                            .map(|(k, v)| (k.as_str().to_string(), v.clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                json!({
                    "messageId": m.message_id(),
                    "receiptHandle": m.receipt_handle(),
                    "body": m.body(),
                    "attributes": attributes,
                    "messageAttributes": {},
                    "md5OfBody": m.md5_of_body(),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": source.arn,
                    "awsRegion": config.region,
                })
            })
            .collect();
        let event = json!({ "Records": records });
        counters.invocations.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let id = format!(
            "{:016x}-{n}",
            counters.invocations.load(Ordering::Relaxed) ^ now_ms() as u64
        );
        let (tx, rx) = oneshot::channel();
        let deadline = now_ms() + func.timeout.as_millis();
        let sent = p
            .invocations
            .send(Invocation {
                id: id.clone(),
                event: event.to_string().into_bytes(),
                deadline_ms: deadline,
                done: tx,
            })
            .await;
        let outcome = if sent.is_err() {
            None
        } else {
            tokio::select! {
                r = rx => r.ok(),
                _ = tokio::time::sleep(func.timeout) => {
                    counters.timeouts.fetch_add(1, Ordering::Relaxed);
                    logs.put(&p.stream, &format!(
                        "{{\"time\": \"{}\", \"requestId\": \"{id}\"}} Task timed out after {:.2} seconds",
                        now_ms(),
                        func.timeout.as_secs_f64()
                    )).await;
                    None
                }
                _ = p.exited() => {
                    logs.put(&p.stream, &format!("RequestId: {id} Error: Runtime exited")).await;
                    None
                }
            }
        };
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        logs.put(
            &p.stream,
            &format!(
                "REPORT RequestId: {id}\tDuration: {ms:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB",
                ms.ceil() as u64,
                func.memory
            ),
        )
        .await;
        let delete: Vec<&aws_sdk_sqs::types::Message> = match &outcome {
            Some(Outcome::Response(body)) => {
                counters.responses.fetch_add(1, Ordering::Relaxed);
                let failed: Vec<String> = serde_json::from_slice::<Value>(body)
                    .ok()
                    .and_then(|v| v["batchItemFailures"].as_array().cloned())
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_string))
                    .collect();
                if !failed.is_empty() {
                    counters.failures.fetch_add(1, Ordering::Relaxed);
                }
                messages
                    .iter()
                    .filter(|m| !failed.iter().any(|f| Some(f.as_str()) == m.message_id()))
                    .collect()
            }
            Some(Outcome::Error(body)) | Some(Outcome::InitError(body)) => {
                counters.failures.fetch_add(1, Ordering::Relaxed);
                logs.put(&p.stream, &String::from_utf8_lossy(body)).await;
                Vec::new()
            }
            None => {
                counters.failures.fetch_add(1, Ordering::Relaxed);
                Vec::new()
            }
        };
        let queue = source.url.rsplit('/').next().unwrap_or_default();
        match (&outcome, delete.len() == messages.len()) {
            (Some(Outcome::Response(_)), true) => {
                tracing::info!(
                    "invocation {id} ({queue}): {} message(s) done in {ms:.0} ms",
                    messages.len()
                )
            }
            (Some(Outcome::Response(_)), false) => tracing::warn!(
                "invocation {id} ({queue}): {} of {} message(s) failed; they return after the \
                 visibility timeout (see the function's logs)",
                messages.len() - delete.len(),
                messages.len()
            ),
            (Some(_), _) => tracing::warn!(
                "invocation {id} ({queue}): the handler returned an error; the message(s) return \
                 after the visibility timeout (see the function's logs)"
            ),
            (None, _) => tracing::warn!(
                "invocation {id} ({queue}): no answer (timed out after {} s, or the process \
                 exited); the message(s) return after the visibility timeout",
                func.timeout.as_secs()
            ),
        }
        for m in delete {
            if let Some(h) = m.receipt_handle() {
                let _ = aws
                    .sqs
                    .delete_message()
                    .queue_url(&source.url)
                    .receipt_handle(h)
                    .send()
                    .await;
            }
        }
        // A process that timed out, crashed or failed to start is replaced.
        if !matches!(
            outcome,
            Some(Outcome::Response(_)) | Some(Outcome::Error(_))
        ) && let Some(mut p) = process.take()
        {
            p.kill().await;
        }
    }
    if let Some(mut p) = process.take() {
        p.kill().await;
    }
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// The function's log group in CloudWatch Logs.
#[derive(Clone)]
struct Logs {
    aws: Aws,
    group: String,
    streams: Arc<Mutex<std::collections::HashSet<String>>>,
}

impl Logs {
    async fn new(aws: Aws, function: &str) -> Logs {
        let group = format!("/aws/lambda/{function}");
        let _ = aws
            .logs
            .create_log_group()
            .log_group_name(&group)
            .send()
            .await;
        Logs {
            aws,
            group,
            streams: Arc::new(Mutex::new(Default::default())),
        }
    }

    async fn put(&self, stream: &str, message: &str) {
        {
            let mut known = self.streams.lock().await;
            if known.insert(stream.to_string()) {
                let _ = self
                    .aws
                    .logs
                    .create_log_stream()
                    .log_group_name(&self.group)
                    .log_stream_name(stream)
                    .send()
                    .await;
            }
        }
        let Ok(event) = aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
            .timestamp(now_ms() as i64)
            .message(message)
            .build()
        else {
            return;
        };
        let _ = self
            .aws
            .logs
            .put_log_events()
            .log_group_name(&self.group)
            .log_stream_name(stream)
            .log_events(event)
            .send()
            .await;
    }
}

/// A `mirage-lambda` process and the Runtime API server it talks to.
struct Process {
    child: tokio::process::Child,
    invocations: mpsc::Sender<Invocation>,
    server: tokio::task::JoinHandle<()>,
    stream: String,
    /// The function version it runs.
    arn: String,
}

impl Process {
    async fn start(
        config: &Config,
        func: &Function,
        n: usize,
        logs: Logs,
    ) -> std::io::Result<Process> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = mpsc::channel::<Invocation>(1);
        let state = Arc::new(ServerState {
            next: Mutex::new(rx),
            pending: Mutex::new(HashMap::new()),
            arn: func.arn.clone(),
        });
        let server = tokio::spawn(serve(listener, state));
        let stream = format!("{}/[{}]runner-{n}-{}", chrono_day(), func.version, now_ms());
        let mut cmd = tokio::process::Command::new(&config.binary);
        cmd.env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &config.function)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", func.memory.to_string())
            .env("AWS_LAMBDA_FUNCTION_VERSION", &func.version)
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", config.function),
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", &stream)
            .env("AWS_REGION", &config.region)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(e) = &config.endpoint {
            cmd.env("AWS_ENDPOINT_URL", e);
        }
        for (k, v) in &config.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn()?;
        for out in [
            child
                .stdout
                .take()
                .map(|o| Box::new(o) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            child
                .stderr
                .take()
                .map(|o| Box::new(o) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        ]
        .into_iter()
        .flatten()
        {
            let logs = logs.clone();
            let stream = stream.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(out).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    logs.put(&stream, &line).await;
                }
            });
        }
        Ok(Process {
            child,
            invocations: tx,
            server,
            stream,
            arn: func.arn.clone(),
        })
    }

    /// Completes when the process ends.
    async fn exited(&mut self) {
        let _ = self.child.wait().await;
    }

    async fn kill(&mut self) {
        let _ = self.child.kill().await;
        self.server.abort();
    }
}

/// `YYYY/MM/DD` of today (UTC), the start of Lambda's log stream names.
fn chrono_day() -> String {
    let days = (now_ms() / 86_400_000) as i64;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}/{m:02}/{d:02}")
}

struct ServerState {
    next: Mutex<mpsc::Receiver<Invocation>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    arn: String,
}

/// The Runtime API, one task per connection (the client keeps connections alive).
async fn serve(listener: TcpListener, state: Arc<ServerState>) {
    while let Ok((socket, _)) = listener.accept().await {
        tokio::spawn(connection(socket, state.clone()));
    }
}

/// A request: method, path, body.
async fn read_request(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> Option<(String, String, Vec<u8>)> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut length = 0usize;
    let mut chunked = false;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).await.ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let k = k.trim().to_ascii_lowercase();
            if k == "content-length" {
                length = v.trim().parse().ok()?;
            } else if k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked") {
                chunked = true;
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).await.ok()?;
            let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0u8; n + 2];
            reader.read_exact(&mut chunk).await.ok()?;
            chunk.truncate(n);
            body.extend_from_slice(&chunk);
            if n == 0 {
                break;
            }
        }
    } else {
        body.resize(length, 0);
        reader.read_exact(&mut body).await.ok()?;
    }
    Some((method, path, body))
}

async fn respond(
    writer: &mut tokio::net::tcp::OwnedWriteHalf,
    status: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        head += &format!("{k}: {v}\r\n");
    }
    head += "\r\n";
    writer.write_all(head.as_bytes()).await?;
    writer.write_all(body).await?;
    writer.flush().await
}

async fn connection(socket: TcpStream, state: Arc<ServerState>) {
    let (read, mut write) = socket.into_split();
    let mut reader = BufReader::new(read);
    while let Some((method, path, body)) = read_request(&mut reader).await {
        let path = path.trim_start_matches("/2018-06-01/runtime/");
        let result = if method == "GET" && path == "invocation/next" {
            let inv = state.next.lock().await.recv().await;
            let Some(inv) = inv else { return };
            state.pending.lock().await.insert(inv.id.clone(), inv.done);
            respond(
                &mut write,
                "200 OK",
                &[
                    ("Content-Type", "application/json".into()),
                    ("Lambda-Runtime-Aws-Request-Id", inv.id.clone()),
                    ("Lambda-Runtime-Deadline-Ms", inv.deadline_ms.to_string()),
                    ("Lambda-Runtime-Invoked-Function-Arn", state.arn.clone()),
                    ("Lambda-Runtime-Trace-Id", format!("Root=1-{}", inv.id)),
                ],
                &inv.event,
            )
            .await
        } else if method == "POST" && path == "init/error" {
            let mut pending = state.pending.lock().await;
            for (_, done) in pending.drain() {
                let _ = done.send(Outcome::InitError(body.clone()));
            }
            respond(&mut write, "202 Accepted", &[], b"{}").await
        } else if method == "POST"
            && let Some(rest) = path.strip_prefix("invocation/")
            && let Some((id, kind)) = rest.split_once('/')
        {
            let done = state.pending.lock().await.remove(id);
            if let Some(done) = done {
                let _ = done.send(if kind == "response" {
                    Outcome::Response(body)
                } else {
                    Outcome::Error(body)
                });
                respond(&mut write, "202 Accepted", &[], b"{}").await
            } else {
                respond(
                    &mut write,
                    "400 Bad Request",
                    &[],
                    b"{\"errorMessage\":\"unknown request id\"}",
                )
                .await
            }
        } else {
            respond(&mut write, "404 Not Found", &[], b"{}").await
        };
        if result.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn log_stream_days() {
        let d = super::chrono_day();
        assert_eq!(d.len(), 10);
        assert!(d.starts_with("20"), "{d}");
    }
}
