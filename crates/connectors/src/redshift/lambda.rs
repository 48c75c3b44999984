//! The SQS + Lambda process: every UNLOADed file is transformed by an AWS Lambda invocation.
//!
//! For a job the worker (1) ensures the function `<resource_prefix>worker-<mirage version>`
//! exists with the configured role, timeout and memory (created from a container image or a zip,
//! never deleted by a job); (2) creates the queue `<resource_prefix><job id>` with its
//! dead-letter queue (`…-dlq`, maxReceiveCount 3), visibility timeout, SSE-KMS when asked, and a
//! policy letting only the staging bucket send; (3) adds one queue configuration for
//! `ObjectCreated` on `<prefix>/<job id>/input/` to the bucket's notifications, keeping the
//! others exactly; (4) maps the queue to the function (batch size 1, ReportBatchItemFailures).
//! Then, per table, the spec goes to `…/spec/`, the UNLOAD to `…/input/`, and the worker waits
//! for a result per file before COPYing the outputs as Data Pipeline V2 does. Everything but the
//! function is removed at the end of the job, whatever its outcome.

use super::{RedshiftDestination, RedshiftLoader, RedshiftSource};
use crate::staging::{FileResult, Staging};
use crate::{ConnectorError, LoadStats, RemoteStats, Result};
use aws_sdk_s3::error::ProvideErrorMetadata;
use mirage_core::QualifiedName;
use mirage_core::lambda::LambdaSettings;
use mirage_core::schema::Table;
use mirage_core::workspace::{LambdaRunner, StagingConfig};
use mirage_transform::spec::{ConsistencyKey, TableSpec};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The process's settings, read from the `TONIC_LAMBDA_*` environment variables.
pub type LambdaSettingsOf = LambdaSettings;

/// The `TONIC_LAMBDA_*` settings for a `[staging]` block, or each problem with its variable.
pub fn settings_of(config: &StagingConfig) -> std::result::Result<LambdaSettings, Vec<String>> {
    mirage_core::lambda::settings(|k| std::env::var(k).ok(), config.encrypt_queue)
        .map(|(s, _)| s)
        .map_err(|problems| {
            problems
                .into_iter()
                .map(|p| format!("lambda: {p}; export {}=…", p.variable))
                .collect()
        })
}

/// How many times a file is tried before it goes to the dead-letter queue.
pub const MAX_RECEIVE_COUNT: u32 = 3;

/// An AWS error in one line: the service's code and message (`AccessDenied: User … is not
/// authorized to perform …`), or, when no service answered, the SDK's error chain (connection
/// refused, timeout, credentials). AWS messages hold no row values.
pub(crate) fn short_error<E: ProvideErrorMetadata + std::error::Error>(e: &E) -> String {
    match (e.code(), e.message()) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.to_string(),
        // No service answered: the error and its sources.
        _ => mirage_core::display::error_chain(e),
    }
}

/// An AWS error as a connector error, with what was being done.
fn aws_err<E: ProvideErrorMetadata + std::error::Error>(
    what: impl Into<String>,
) -> impl FnOnce(E) -> ConnectorError {
    let what = what.into();
    move |e| ConnectorError::Database {
        what,
        detail: short_error(&e),
    }
}

/// The AWS clients of a job, configured like the staging bucket (region, endpoint).
#[derive(Clone)]
pub struct Aws {
    /// Lambda.
    pub lambda: aws_sdk_lambda::Client,
    /// SQS.
    pub sqs: aws_sdk_sqs::Client,
    /// S3 (bucket notifications).
    pub s3: aws_sdk_s3::Client,
    /// CloudWatch Logs.
    pub logs: aws_sdk_cloudwatchlogs::Client,
    /// ECR.
    pub ecr: aws_sdk_ecr::Client,
    /// IAM (reading the Lambda role in `mirage check`).
    pub iam: aws_sdk_iam::Client,
}

impl Aws {
    /// Clients for the staging region; `[staging] endpoint` (moto) for every service.
    pub async fn new(config: &StagingConfig) -> Aws {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(config.region.clone()));
        let endpoint = config.endpoint.clone().filter(|e| !e.is_empty());
        if let Some(e) = &endpoint {
            loader = loader.endpoint_url(e);
        }
        let shared = loader.load().await;
        let s3 = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(endpoint.is_some())
            .build();
        Aws {
            lambda: aws_sdk_lambda::Client::new(&shared),
            sqs: aws_sdk_sqs::Client::new(&shared),
            s3: aws_sdk_s3::Client::from_conf(s3),
            logs: aws_sdk_cloudwatchlogs::Client::new(&shared),
            ecr: aws_sdk_ecr::Client::new(&shared),
            iam: aws_sdk_iam::Client::new(&shared),
        }
    }
}

/// The function every job of this mirage version uses.
pub fn function_name(config: &StagingConfig) -> String {
    format!(
        "{}worker-{}",
        config.resource_prefix,
        env!("CARGO_PKG_VERSION").replace('.', "-")
    )
}

/// The queue of a job, and its dead-letter queue.
pub fn queue_names(config: &StagingConfig, job_id: &str) -> (String, String) {
    let q = format!("{}{job_id}", config.resource_prefix);
    let dlq = format!("{q}-dlq");
    (q, dlq)
}

/// What the function runs.
enum Code {
    Image(String),
    Zip(Vec<u8>),
}

/// The image (configured, or the newest in ECR `<resource_prefix>lambda`), else the zip.
async fn code(aws: &Aws, config: &StagingConfig, base: &std::path::Path) -> Result<Code> {
    if let Some(image) = config.lambda_image.as_deref().filter(|i| !i.is_empty()) {
        return Ok(Code::Image(image.to_string()));
    }
    let repo = format!("{}lambda", config.resource_prefix);
    let found = aws
        .ecr
        .describe_repositories()
        .repository_names(&repo)
        .send()
        .await;
    if let Ok(found) = found
        && let Some(uri) = found
            .repositories()
            .first()
            .and_then(|r| r.repository_uri())
    {
        let images = aws
            .ecr
            .list_images()
            .repository_name(&repo)
            .send()
            .await
            .map_err(aws_err(format!(
                "listing the images of ECR repository {repo}"
            )))?;
        let tags: Vec<&str> = images
            .image_ids()
            .iter()
            .filter_map(|i| i.image_tag())
            .collect();
        let version = env!("CARGO_PKG_VERSION");
        let tag = tags
            .iter()
            .find(|t| **t == version)
            .or_else(|| tags.iter().find(|t| **t == "latest"))
            .or_else(|| tags.first());
        if let Some(tag) = tag {
            return Ok(Code::Image(format!("{uri}:{tag}")));
        }
    }
    if let Some(zip) = &config.lambda_zip {
        let path = if zip.is_absolute() {
            zip.clone()
        } else {
            base.join(zip)
        };
        let bytes = std::fs::read(&path).map_err(|e| {
            ConnectorError::io(
                format!("reading [staging] lambda_zip {}", path.display()),
                e,
            )
        })?;
        return Ok(Code::Zip(bytes));
    }
    Err(ConnectorError::Invalid(format!(
        "the Lambda function {} does not exist and there is nothing to create it from: set \
         [staging] lambda_image to an ECR image URI, push an image to the ECR repository {repo}, \
         or set lambda_zip to a zip holding the mirage-lambda binary as bootstrap (see the README)",
        function_name(config)
    )))
}

/// Poll the function until it is active and no update is in progress.
async fn wait_active(aws: &Aws, name: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let c = aws
            .lambda
            .get_function_configuration()
            .function_name(name)
            .send()
            .await
            .map_err(aws_err(format!("reading the Lambda function {name}")))?;
        let active = c.state().is_none_or(|s| s.as_str() == "Active");
        let updated = c
            .last_update_status()
            .is_none_or(|s| s.as_str() == "Successful");
        if c.state().is_some_and(|s| s.as_str() == "Failed")
            || c.last_update_status()
                .is_some_and(|s| s.as_str() == "Failed")
        {
            return Err(ConnectorError::Invalid(format!(
                "the Lambda function {name} failed to become active: {}",
                c.state_reason()
                    .or(c.last_update_status_reason())
                    .unwrap_or("no reason given")
            )));
        }
        if active && updated {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(ConnectorError::Invalid(format!(
                "the Lambda function {name} did not become active in 5 minutes"
            )));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Whether a function configuration has the settings of a job.
fn same_settings(
    (role, timeout, memory): (Option<&str>, Option<i32>, Option<i32>),
    settings: &LambdaSettings,
) -> bool {
    role == Some(settings.role.as_str())
        && timeout == Some(settings.timeout as i32)
        && memory == Some(settings.memory_size as i32)
}

/// Create the function, or bring an existing one's role, timeout and memory in line, then
/// publish a version of it: the job's queue is mapped to that version, whose settings cannot
/// change, so a job started later with other `TONIC_LAMBDA_*` settings (which reconfigures the
/// function) does not change the timeout, memory or role of the invocations of a running job.
/// Returns the version's qualified name (`<function>:<version>`).
pub async fn ensure_function(
    aws: &Aws,
    config: &StagingConfig,
    settings: &LambdaSettings,
    base: &std::path::Path,
) -> Result<String> {
    let name = function_name(config);
    let existing = aws.lambda.get_function().function_name(&name).send().await;
    match existing {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            let mut create = aws
                .lambda
                .create_function()
                .function_name(&name)
                .role(&settings.role)
                .timeout(settings.timeout as i32)
                .memory_size(settings.memory_size as i32)
                .description("mirage: transforms UNLOADed files (SQS + Lambda process)");
            create = match code(aws, config, base).await? {
                Code::Image(uri) => create
                    .package_type(aws_sdk_lambda::types::PackageType::Image)
                    .code(
                        aws_sdk_lambda::types::FunctionCode::builder()
                            .image_uri(uri)
                            .build(),
                    ),
                Code::Zip(bytes) => create
                    .package_type(aws_sdk_lambda::types::PackageType::Zip)
                    .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
                    .handler("bootstrap")
                    .code(
                        aws_sdk_lambda::types::FunctionCode::builder()
                            .zip_file(aws_sdk_lambda::primitives::Blob::new(bytes))
                            .build(),
                    ),
            };
            match create.send().await {
                Ok(_) => {}
                // Another job of this version created it a moment ago.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_conflict_exception()) => {}
                Err(e) => return Err(aws_err(format!("creating the Lambda function {name}"))(e)),
            }
        }
        Err(e) => return Err(aws_err(format!("reading the Lambda function {name}"))(e)),
    }
    // Jobs starting at once with other settings take turns on the function: each tries until
    // a version with its own settings is published.
    for _ in 0..10 {
        wait_active(aws, &name).await?;
        let c = aws
            .lambda
            .get_function_configuration()
            .function_name(&name)
            .send()
            .await
            .map_err(aws_err(format!("reading the Lambda function {name}")))?;
        if !same_settings((c.role(), c.timeout(), c.memory_size()), settings) {
            let updated = aws
                .lambda
                .update_function_configuration()
                .function_name(&name)
                .role(&settings.role)
                .timeout(settings.timeout as i32)
                .memory_size(settings.memory_size as i32)
                .send()
                .await;
            match updated {
                Ok(_) => continue,
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_conflict_exception()) =>
                {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                Err(e) => {
                    return Err(aws_err(format!("updating the Lambda function {name}"))(e));
                }
            }
        }
        let mut publish = aws.lambda.publish_version().function_name(&name);
        if let Some(r) = c.revision_id() {
            // Fails when the function changed since we read it.
            publish = publish.revision_id(r);
        }
        match publish.send().await {
            Ok(v) => {
                let same = same_settings((v.role(), v.timeout(), v.memory_size()), settings);
                if let (true, Some(version)) = (same, v.version()) {
                    return Ok(format!("{name}:{version}"));
                }
            }
            Err(e)
                if e.as_service_error().is_some_and(|s| {
                    s.is_precondition_failed_exception() || s.is_resource_conflict_exception()
                }) => {}
            Err(e) => {
                return Err(aws_err(format!(
                    "publishing a version of the Lambda function {name}"
                ))(e));
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(ConnectorError::Invalid(format!(
        "the Lambda function {name} keeps being reconfigured by other jobs with other \
         TONIC_LAMBDA_ROLE / TIMEOUT / MEMORY_SIZE settings; run them one after another or \
         with the same settings"
    )))
}

/// A bucket's notification configuration, in parts.
#[derive(Default)]
struct Notifications {
    topics: Vec<aws_sdk_s3::types::TopicConfiguration>,
    queues: Vec<aws_sdk_s3::types::QueueConfiguration>,
    lambdas: Vec<aws_sdk_s3::types::LambdaFunctionConfiguration>,
    event_bridge: Option<aws_sdk_s3::types::EventBridgeConfiguration>,
}

impl Notifications {
    fn configuration(self) -> aws_sdk_s3::types::NotificationConfiguration {
        aws_sdk_s3::types::NotificationConfiguration::builder()
            .set_topic_configurations(Some(self.topics))
            .set_queue_configurations(Some(self.queues))
            .set_lambda_function_configurations(Some(self.lambdas))
            .set_event_bridge_configuration(self.event_bridge)
            .build()
    }
}

/// Read a bucket's notifications. (moto answers an empty configuration with an element the
/// SDK does not expect; that reads as empty.)
async fn read_notifications(aws: &Aws, bucket: &str) -> Result<Notifications> {
    match aws
        .s3
        .get_bucket_notification_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(c) => Ok(Notifications {
            topics: c.topic_configurations().to_vec(),
            queues: c.queue_configurations().to_vec(),
            lambdas: c.lambda_function_configurations().to_vec(),
            event_bridge: c.event_bridge_configuration().cloned(),
        }),
        // moto answers a bucket without notifications with an element the SDK cannot parse;
        // the whole error chain quotes it.
        Err(e)
            if aws_sdk_s3::error::DisplayErrorContext(&e)
                .to_string()
                .contains("GetBucketNotificationResponse") =>
        {
            Ok(Notifications::default())
        }
        Err(e) => Err(aws_err(format!(
            "reading the notifications of bucket {bucket}"
        ))(e)),
    }
}

/// One attribute of a queue.
async fn queue_attribute(
    aws: &Aws,
    url: &str,
    name: aws_sdk_sqs::types::QueueAttributeName,
) -> Result<Option<String>> {
    let a = aws
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(name.clone())
        .send()
        .await
        .map_err(aws_err(format!("reading the attributes of {url}")))?;
    Ok(a.attributes().and_then(|m| m.get(&name)).cloned())
}

/// A queue's ARN.
async fn queue_arn(aws: &Aws, url: &str) -> Result<String> {
    queue_attribute(aws, url, aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .await?
        .ok_or_else(|| ConnectorError::Invalid(format!("{url} has no ARN")))
}

/// The AWS resources of one job; [`LambdaJob::teardown`] removes them.
pub struct LambdaJob {
    aws: Aws,
    config: StagingConfig,
    settings: LambdaSettings,
    /// The function's name.
    pub function: String,
    queue: Mutex<Option<(String, String)>>,
    dlq: Mutex<Option<(String, String)>>,
    notification: Mutex<Option<String>>,
    /// Our queue configuration, put back when another writer of the bucket's notifications
    /// (a concurrent job, `mirage check`, a sweep, another team) dropped it.
    entry: Mutex<Option<aws_sdk_s3::types::QueueConfiguration>>,
    /// How many times the entry had to be put back: files UNLOADed while it was missing
    /// produced no event, so each table re-sends its missing files' events when this moves.
    restored: std::sync::atomic::AtomicU64,
    /// When the entry was last looked at (one look at a time for all tables).
    last_look: tokio::sync::Mutex<Instant>,
    /// Whether the job said that nothing consumes its queue.
    said_idle: std::sync::atomic::AtomicBool,
    mapping: Mutex<Option<String>>,
    /// Input keys whose message reached the dead-letter queue.
    dead: Mutex<HashSet<String>>,
    started: std::time::SystemTime,
}

/// The notification entry's id for a job.
fn notification_id(config: &StagingConfig, job_id: &str) -> String {
    format!("{}{job_id}", config.resource_prefix)
}

impl LambdaJob {
    /// Function, queues, notification and mapping for job `job_id` whose files are under
    /// `staging`. What was created before a failure is recorded, so teardown removes it.
    pub async fn setup(
        config: &StagingConfig,
        settings: LambdaSettings,
        staging: &Staging,
        job_id: &str,
        base: &std::path::Path,
    ) -> std::result::Result<Arc<LambdaJob>, (Arc<LambdaJob>, ConnectorError)> {
        let aws = Aws::new(config).await;
        let job = Arc::new(LambdaJob {
            aws,
            config: config.clone(),
            settings,
            function: function_name(config),
            queue: Mutex::new(None),
            dlq: Mutex::new(None),
            notification: Mutex::new(None),
            entry: Mutex::new(None),
            restored: std::sync::atomic::AtomicU64::new(0),
            last_look: tokio::sync::Mutex::new(Instant::now()),
            said_idle: std::sync::atomic::AtomicBool::new(false),
            mapping: Mutex::new(None),
            dead: Mutex::new(HashSet::new()),
            started: std::time::SystemTime::now(),
        });
        match job.build(staging, job_id, base).await {
            Ok(()) => Ok(job),
            Err(e) => Err((job, e)),
        }
    }

    async fn build(&self, staging: &Staging, job_id: &str, base: &std::path::Path) -> Result<()> {
        use aws_sdk_sqs::types::QueueAttributeName as Q;
        let aws = &self.aws;
        let version = ensure_function(aws, &self.config, &self.settings, base).await?;
        let (qname, dlqname) = queue_names(&self.config, job_id);
        let kms = self
            .config
            .encrypt_queue
            .then(|| self.settings.kms_master_key.clone())
            .flatten();
        let create = |name: String| {
            let mut c = aws.sqs.create_queue().queue_name(name).attributes(
                Q::VisibilityTimeout,
                self.settings.visibility_timeout.to_string(),
            );
            if let Some(k) = &kms {
                c = c.attributes(Q::KmsMasterKeyId, k);
            }
            c
        };
        let dlq_url = create(dlqname.clone())
            .attributes(Q::MessageRetentionPeriod, "1209600")
            .send()
            .await
            .map_err(aws_err(format!("creating the dead-letter queue {dlqname}")))?
            .queue_url()
            .unwrap_or_default()
            .to_string();
        let dlq_arn = queue_arn(aws, &dlq_url).await?;
        if let Ok(mut d) = self.dlq.lock() {
            *d = Some((dlq_url, dlq_arn.clone()));
        }
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": MAX_RECEIVE_COUNT.to_string(),
        });
        let url = create(qname.clone())
            .attributes(Q::RedrivePolicy, redrive.to_string())
            .send()
            .await
            .map_err(aws_err(format!("creating the queue {qname}")))?
            .queue_url()
            .unwrap_or_default()
            .to_string();
        let arn = queue_arn(aws, &url).await?;
        if let Ok(mut q) = self.queue.lock() {
            *q = Some((url.clone(), arn.clone()));
        }
        // Only the staging bucket may send to the queue.
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "staging-bucket-notifications",
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": arn,
                "Condition": {"ArnLike": {"aws:SourceArn": format!("arn:aws:s3:::{}", self.config.bucket)}}
            }]
        });
        aws.sqs
            .set_queue_attributes()
            .queue_url(&url)
            .attributes(Q::Policy, policy.to_string())
            .send()
            .await
            .map_err(aws_err(format!("setting the policy of {qname}")))?;
        self.add_notification(&arn, &format!("{}/input/", staging.root()), job_id)
            .await?;
        let mapping = aws
            .lambda
            .create_event_source_mapping()
            .event_source_arn(&arn)
            .function_name(&version)
            .batch_size(1)
            .function_response_types(
                aws_sdk_lambda::types::FunctionResponseType::ReportBatchItemFailures,
            )
            .enabled(self.config.lambda_runner == LambdaRunner::Aws)
            .send()
            .await
            .map_err(aws_err(format!("mapping {qname} to {}", self.function)))?;
        if let Ok(mut m) = self.mapping.lock() {
            *m = mapping.uuid().map(str::to_string);
        }
        Ok(())
    }

    /// Add our queue configuration to the bucket's notifications (read, modify, write back:
    /// the others are kept as they are).
    async fn add_notification(&self, queue_arn: &str, prefix: &str, job_id: &str) -> Result<()> {
        use aws_sdk_s3::types::{
            Event, FilterRule, FilterRuleName, NotificationConfigurationFilter, QueueConfiguration,
            S3KeyFilter,
        };
        let id = notification_id(&self.config, job_id);
        let ours = QueueConfiguration::builder()
            .id(&id)
            .queue_arn(queue_arn)
            .events(Event::S3ObjectCreated)
            .filter(
                NotificationConfigurationFilter::builder()
                    .key(
                        S3KeyFilter::builder()
                            .filter_rules(
                                FilterRule::builder()
                                    .name(FilterRuleName::Prefix)
                                    .value(prefix)
                                    .build(),
                            )
                            .build(),
                    )
                    .build(),
            )
            .build()
            .map_err(|e| ConnectorError::Invalid(format!("the bucket notification: {e}")))?;
        if let Ok(mut n) = self.notification.lock() {
            *n = Some(id.clone());
        }
        if let Ok(mut e) = self.entry.lock() {
            *e = Some(ours.clone());
        }
        self.edit_notifications(|queues| {
            queues.retain(|q| q.id() != Some(id.as_str()));
            queues.push(ours);
        })
        .await
    }

    /// Every few seconds, make sure the bucket still holds our notification entry: the
    /// configuration is one document that every writer reads, changes and writes back whole,
    /// so two jobs starting or ending at once can drop each other's entry. When it is gone it
    /// is put back and [`LambdaJob::restorations`] moves.
    pub(super) async fn keep_notification(&self) -> Result<()> {
        let Ok(mut last) = self.last_look.try_lock() else {
            return Ok(());
        };
        if last.elapsed() < Duration::from_secs(3) {
            return Ok(());
        }
        let (Some(id), Some(ours)) = (
            self.notification.lock().ok().and_then(|n| n.clone()),
            self.entry.lock().ok().and_then(|e| e.clone()),
        ) else {
            return Ok(());
        };
        let current = read_notifications(&self.aws, &self.config.bucket).await?;
        if !current.queues.iter().any(|q| q.id() == Some(id.as_str())) {
            tracing::warn!(
                "the bucket notification entry {id} was removed by another writer of the \
                 bucket's notifications; putting it back and re-sending the events of files \
                 not yet transformed"
            );
            self.edit_notifications(|queues| {
                queues.retain(|q| q.id() != Some(id.as_str()));
                queues.push(ours);
            })
            .await?;
            self.restored
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        *last = Instant::now();
        Ok(())
    }

    /// Say once when the queue holds messages that nothing takes: no runner started for
    /// `lambda_runner = "local"`, or a mapping that is not enabled.
    async fn say_if_idle(&self) {
        use aws_sdk_sqs::types::QueueAttributeName as Q;
        use std::sync::atomic::Ordering;
        if self.said_idle.load(Ordering::Relaxed) {
            return;
        }
        let Some((url, _)) = self.queue.lock().ok().and_then(|q| q.clone()) else {
            return;
        };
        let count = |name| async {
            queue_attribute(&self.aws, &url, name)
                .await
                .ok()
                .flatten()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let (waiting, taken) = (
            count(Q::ApproximateNumberOfMessages).await,
            count(Q::ApproximateNumberOfMessagesNotVisible).await,
        );
        if waiting > 0 && taken == 0 {
            self.said_idle.store(true, Ordering::Relaxed);
            let how = match self.config.lambda_runner {
                LambdaRunner::Local => format!(
                    "lambda_runner = \"local\": start the local runner, e.g. \
                     `mirage-lambda-runner --function {} --binary target/release/mirage-lambda{}`",
                    self.function,
                    self.config
                        .endpoint
                        .as_deref()
                        .map(|e| format!(" --endpoint {e}"))
                        .unwrap_or_default()
                ),
                LambdaRunner::Aws => format!(
                    "check that the event source mapping of function {} is enabled and that \
                     its role may read the queue",
                    self.function
                ),
            };
            tracing::warn!(
                "{waiting} file(s) wait in queue {} and no invocation takes them; {how}",
                url.rsplit('/').next().unwrap_or(&url)
            );
        }
    }

    /// How many times the notification entry was put back so far.
    pub(super) fn restorations(&self) -> u64 {
        self.restored.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Send the S3 event of each file ourselves (when its own event may have been lost).
    /// Handling a file twice is harmless: its output and result are written again, the same.
    async fn resend(&self, keys: &[&String]) -> Result<()> {
        let Some((url, _)) = self.queue.lock().ok().and_then(|q| q.clone()) else {
            return Ok(());
        };
        for key in keys {
            let body = serde_json::json!({"Records": [{
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": self.config.bucket},
                    "object": {"key": encode_key(key)},
                },
            }]});
            self.aws
                .sqs
                .send_message()
                .queue_url(&url)
                .message_body(body.to_string())
                .send()
                .await
                .map_err(aws_err("re-sending a file's event to the job's queue"))?;
        }
        Ok(())
    }

    /// Read the bucket's notification configuration, change its queue configurations, write it
    /// back with everything else unchanged.
    async fn edit_notifications(
        &self,
        change: impl FnOnce(&mut Vec<aws_sdk_s3::types::QueueConfiguration>),
    ) -> Result<()> {
        let bucket = &self.config.bucket;
        let mut current = read_notifications(&self.aws, bucket).await?;
        change(&mut current.queues);
        let config = current.configuration();
        self.aws
            .s3
            .put_bucket_notification_configuration()
            .bucket(bucket)
            .notification_configuration(config)
            .send()
            .await
            .map_err(aws_err(format!(
                "writing the notifications of bucket {bucket}"
            )))?;
        Ok(())
    }

    /// The job's queue URL (for the local runner and tests).
    pub fn queue_url(&self) -> Option<String> {
        self.queue
            .lock()
            .ok()
            .and_then(|q| q.as_ref().map(|q| q.0.clone()))
    }

    /// Read the dead-letter queue: the input keys of the files that failed for good.
    async fn poll_dead_letters(&self) -> Result<()> {
        let Some((url, _)) = self.dlq.lock().ok().and_then(|d| d.clone()) else {
            return Ok(());
        };
        let got = self
            .aws
            .sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .send()
            .await
            .map_err(aws_err("reading the dead-letter queue"))?;
        for m in got.messages() {
            let body = m.body().unwrap_or_default();
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
                for r in v["Records"].as_array().cloned().unwrap_or_default() {
                    if let Some(k) = r.pointer("/s3/object/key").and_then(|k| k.as_str())
                        && let Ok(mut dead) = self.dead.lock()
                    {
                        dead.insert(decode_key(k));
                    }
                }
            }
            if let Some(h) = m.receipt_handle() {
                let _ = self
                    .aws
                    .sqs
                    .delete_message()
                    .queue_url(&url)
                    .receipt_handle(h)
                    .send()
                    .await;
            }
        }
        Ok(())
    }

    /// What the function's logs say about invocations that ended without a result (killed by
    /// its timeout or its memory).
    async fn log_findings(&self) -> Option<String> {
        let group = format!("/aws/lambda/{}", self.function);
        let since = self
            .started
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let mut found = Vec::new();
        for phrase in ["Task timed out", "Runtime exited", "Out of memory"] {
            let events = self
                .aws
                .logs
                .filter_log_events()
                .log_group_name(&group)
                .filter_pattern(format!("\"{phrase}\""))
                .start_time(since)
                .send()
                .await
                .ok()?;
            let n = events
                .events()
                .iter()
                .filter(|e| e.message().is_some_and(|m| m.contains(phrase)))
                .count();
            if n > 0 {
                found.push(format!("{n} × \"{phrase}\""));
            }
        }
        (!found.is_empty())
            .then(|| format!("the function's logs ({group}) show {}", found.join(", ")))
    }

    /// Remove the mapping, the notification entry and the queues (never the function).
    /// Returns what could not be removed.
    pub async fn teardown(&self) -> Vec<String> {
        let mut problems = Vec::new();
        self.wait_for_invocations().await;
        let mapping = self.mapping.lock().ok().and_then(|mut m| m.take());
        if let Some(uuid) = mapping
            && let Err(e) = self
                .aws
                .lambda
                .delete_event_source_mapping()
                .uuid(&uuid)
                .send()
                .await
        {
            problems.push(format!("event source mapping {uuid}: {}", short_error(&e)));
        }
        let notification = self.notification.lock().ok().and_then(|mut n| n.take());
        if let Some(id) = notification
            && let Err(e) = self
                .edit_notifications(|queues| queues.retain(|q| q.id() != Some(id.as_str())))
                .await
        {
            problems.push(format!("bucket notification {id}: {e}"));
        }
        for slot in [&self.queue, &self.dlq] {
            let q = slot.lock().ok().and_then(|mut q| q.take());
            if let Some((url, _)) = q
                && let Err(e) = self.aws.sqs.delete_queue().queue_url(&url).send().await
            {
                problems.push(format!("queue {url}: {}", short_error(&e)));
            }
        }
        problems
    }

    /// Stop new invocations (delete the mapping: no more polls) and wait — at most the
    /// function's timeout — until no message has been in flight for a while, so no invocation
    /// writes into the job's folder after it is deleted.
    async fn wait_for_invocations(&self) {
        let mapping = self.mapping.lock().ok().and_then(|mut m| m.take());
        if let Some(uuid) = &mapping
            && let Err(e) = self
                .aws
                .lambda
                .delete_event_source_mapping()
                .uuid(uuid)
                .send()
                .await
        {
            tracing::warn!(
                "could not delete event source mapping {uuid}: {}",
                short_error(&e)
            );
            if let Ok(mut m) = self.mapping.lock() {
                *m = mapping.clone();
            }
        }
        let Some((url, _)) = self.queue.lock().ok().and_then(|q| q.clone()) else {
            return;
        };
        let bound = Duration::from_secs(u64::from(self.settings.timeout) + 5);
        wait_until_quiet(&self.aws, &url, bound).await;
    }

    /// How long a table may go without a new result before the job gives up on it: every try
    /// of a file may take the visibility timeout, plus slack for S3 events.
    fn stall_bound(&self) -> Duration {
        let v = u64::from(self.settings.visibility_timeout.max(self.settings.timeout));
        Duration::from_secs(v * u64::from(MAX_RECEIVE_COUNT + 1) + 60)
    }
}

/// Wait — at most `bound` — until no message of the queue has been in flight for several
/// looks in a row: a poll already under way when the mapping went may still take one.
async fn wait_until_quiet(aws: &Aws, url: &str, bound: Duration) {
    use aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible as InFlight;
    let deadline = Instant::now() + bound;
    let (mut said, mut quiet) = (false, 0);
    while quiet < 4 && Instant::now() < deadline {
        let in_flight = queue_attribute(aws, url, InFlight)
            .await
            .ok()
            .flatten()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        if in_flight == 0 {
            quiet += 1;
        } else {
            quiet = 0;
            if !said {
                tracing::warn!("waiting for {in_flight} Lambda invocation(s) in flight to end");
                said = true;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A key as S3 events carry it: everything but unreserved characters and `/` as `%XX`.
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `+` → space, then `%XX` → byte (S3 event keys).
fn decode_key(key: &str) -> String {
    let b = key.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'+' {
            out.push(b' ');
        } else if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        } else {
            out.push(b[i]);
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl RedshiftDestination {
    /// The Lambda process for one table: spec, UNLOAD into `input/`, a result per file from
    /// the function, then COPY of the outputs exactly as V2 does.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn load_through_lambda(
        &self,
        job: &LambdaJob,
        loader: &RedshiftLoader,
        source: &RedshiftSource,
        table: &Table,
        columns: &[String],
        spec: &TableSpec,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<LoadStats> {
        let staging = &self.staging;
        staging
            .put(&staging.spec_key(&table.name), spec.to_json().into())
            .await?;
        // Files UNLOADed from here on while the notification entry is missing get no event.
        let restorations = job.restorations();
        let unloaded = source.unload_files(table, columns).await?;
        let result = self
            .wait_for_files(job, &table.name, &unloaded.keys, restorations, progress)
            .await;
        // The raw rows go as soon as they are transformed (or the table failed).
        if let Err(e) = staging.delete_prefix(&unloaded.prefix).await {
            tracing::warn!(error = %e, "could not delete UNLOAD files");
        }
        let (outputs, stats) = result?;
        let (tx, rx) = tokio::sync::mpsc::channel::<String>(1);
        let out_bytes = stats.1;
        let feed = async move {
            let key = if outputs.is_empty() {
                // An empty table: one empty file, so the manifest lists something to COPY.
                let key = format!("{}empty.csv", staging.output_prefix(&table.name));
                let empty = crate::staging::compress(staging.compression(), b"")
                    .map_err(|e| ConnectorError::io("compressing an empty file", e))?;
                staging.put(&key, empty.into()).await?;
                staging.copy_manifest(&table.name, &[key]).await?
            } else {
                staging.copy_manifest(&table.name, &outputs).await?
            };
            tx.send(key).await.map_err(|_| ConnectorError::Aborted)?;
            Ok((unloaded.rows, out_bytes))
        };
        let loaded = self
            .load_manifests(loader, table, columns, feed, rx)
            .await?;
        Ok(LoadStats {
            rows: loaded.rows,
            stored_bytes: Some(out_bytes),
            extract_stored_bytes: Some(unloaded.bytes),
            remote: Some(stats.0),
        })
    }

    /// Wait until every file has a result: the output keys, the Lambda figures and the bytes
    /// written. A file that fails, reaches the dead-letter queue, or a table that stops
    /// progressing fails the table at once.
    async fn wait_for_files(
        &self,
        job: &LambdaJob,
        table: &QualifiedName,
        inputs: &[String],
        mut restorations: u64,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<(Vec<String>, (RemoteStats, u64))> {
        let staging = &self.staging;
        let results = staging.results_prefix(table);
        let wanted: HashMap<String, String> = inputs
            .iter()
            .map(|k| {
                let file = k.rsplit('/').next().unwrap_or(k).to_string();
                (format!("{results}{file}.json"), k.clone())
            })
            .collect();
        let mut done: HashMap<String, FileResult> = HashMap::new();
        let mut last_progress = Instant::now();
        let (mut rows, mut bytes) = (0u64, 0u64);
        while done.len() < wanted.len() {
            let listed = staging.list(&results).await?;
            let mut advanced = false;
            for (key, _) in listed {
                if done.contains_key(&key) || !wanted.contains_key(&key) {
                    continue;
                }
                let Some(raw) = staging.get(&key).await? else {
                    continue;
                };
                let r: FileResult = serde_json::from_slice(&raw).map_err(|e| {
                    ConnectorError::Invalid(format!("{}: not a result: {e}", staging.url(&key)))
                })?;
                if let Some(e) = &r.error {
                    return Err(ConnectorError::Invalid(format!(
                        "the Lambda function failed on file {} of {table}: {e}",
                        r.file
                    )));
                }
                rows += r.records_out;
                let read = if r.raw_bytes.0 > 0 {
                    r.raw_bytes.0
                } else {
                    r.bytes_in
                };
                bytes += read;
                progress(r.records_out, read);
                done.insert(key, r);
                advanced = true;
            }
            if advanced {
                last_progress = Instant::now();
                continue;
            }
            job.keep_notification().await?;
            if job.restorations() != restorations {
                restorations = job.restorations();
                let pending: Vec<&String> = wanted
                    .iter()
                    .filter(|(rk, _)| !done.contains_key(*rk))
                    .map(|(_, input)| input)
                    .collect();
                job.resend(&pending).await?;
                last_progress = Instant::now();
            }
            job.poll_dead_letters().await?;
            if last_progress.elapsed() > Duration::from_secs(20) {
                job.say_if_idle().await;
            }
            let dead: Vec<String> = job
                .dead
                .lock()
                .map(|d| d.iter().filter(|k| inputs.contains(k)).cloned().collect())
                .unwrap_or_default();
            if let Some(k) = dead.first() {
                let file = k.rsplit('/').next().unwrap_or(k);
                let why = job
                    .log_findings()
                    .await
                    .map(|f| format!("; {f}"))
                    .unwrap_or_default();
                return Err(ConnectorError::Invalid(format!(
                    "file {file} of {table} reached the dead-letter queue after {MAX_RECEIVE_COUNT} tries{why}"
                )));
            }
            if last_progress.elapsed() > job.stall_bound() {
                let why = job
                    .log_findings()
                    .await
                    .map(|f| format!("; {f}"))
                    .unwrap_or_default();
                return Err(ConnectorError::Invalid(format!(
                    "no file of {table} was transformed for {} s ({} of {} done){why}; check the \
                     function {} and the bucket notification",
                    job.stall_bound().as_secs(),
                    done.len(),
                    wanted.len(),
                    job.function
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let _ = (rows, bytes);
        let outputs: Vec<String> = wanted
            .keys()
            .filter_map(|rk| done.get(rk))
            .map(|r| format!("{}{}", staging.output_prefix(table), r.file))
            .collect();
        let out_bytes = done.values().map(|r| r.bytes_out).sum();
        let stats = RemoteStats {
            files: done.len() as u64,
            seconds: done.values().map(|r| r.seconds).sum(),
            max_seconds: done.values().map(|r| r.seconds).fold(0.0, f64::max),
            raw_bytes: done
                .values()
                .fold((0, 0), |(i, o), r| (i + r.raw_bytes.0, o + r.raw_bytes.1)),
        };
        let mut outputs = outputs;
        outputs.sort();
        Ok((outputs, (stats, out_bytes)))
    }
}

/// `mirage check` for the Lambda process: the function (or what creates it), a probe queue
/// created and deleted (with a message through the KMS key when the queue is encrypted), and
/// the bucket's notification configuration read and written back unchanged.
pub async fn checks(
    config: &StagingConfig,
    settings: &LambdaSettings,
    base: &std::path::Path,
    out: &mut crate::check::Checks,
) {
    const A: &str = "lambda";
    let aws = Aws::new(config).await;
    let name = function_name(config);
    let policy_fix =
        "give the worker the statements of `mirage policy` (worker-lambda-policy.json)";
    match aws.lambda.get_function().function_name(&name).send().await {
        Ok(f) => {
            let c = f.configuration();
            let differs: Vec<String> = [
                (
                    c.and_then(|c| c.role()).map(str::to_string),
                    Some(settings.role.clone()),
                    "role",
                ),
                (
                    c.and_then(|c| c.timeout()).map(|t| t.to_string()),
                    Some(settings.timeout.to_string()),
                    "timeout",
                ),
                (
                    c.and_then(|c| c.memory_size()).map(|m| m.to_string()),
                    Some(settings.memory_size.to_string()),
                    "memory",
                ),
            ]
            .into_iter()
            .filter(|(have, want, _)| have != want)
            .map(|(have, want, what)| {
                format!(
                    "{what} {} → {}",
                    have.unwrap_or_default(),
                    want.unwrap_or_default()
                )
            })
            .collect();
            if differs.is_empty() {
                out.pass(
                    A,
                    format!("function {name} exists with the configured role, timeout and memory"),
                );
            } else {
                out.warn(
                    A,
                    format!("function {name} exists"),
                    format!("a run updates its configuration: {}", differs.join(", ")),
                );
            }
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            match code(&aws, config, base).await {
                Ok(Code::Image(uri)) => out.pass(
                    A,
                    format!("function {name} does not exist yet; a run creates it from image {uri}"),
                ),
                Ok(Code::Zip(bytes)) => out.pass(
                    A,
                    format!(
                        "function {name} does not exist yet; a run creates it from lambda_zip ({} bytes)",
                        bytes.len()
                    ),
                ),
                Err(e) => out.fail(
                    A,
                    format!("function {name} exists, or an image or zip to create it"),
                    Some(e.to_string()),
                    format!(
                        "build and push the image (README, \"Deploying the function\") to the ECR \
                         repository {}lambda, or set [staging] lambda_image or lambda_zip",
                        config.resource_prefix
                    ),
                ),
            }
        }
        Err(e) => out.fail(
            A,
            format!("read the function {name}"),
            Some(short_error(&e)),
            policy_fix,
        ),
    }
    role_check(&aws, settings, out).await;
    // The handler must read the generators' key material from S3: with no KMS key it is
    // protected by access to the bucket alone (S3's default SSE-S3 encryption at rest).
    if config.kms_key_id.as_deref().is_none_or(str::is_empty) {
        out.warn(
            A,
            "the consistency key object (spec/key) and the raw UNLOAD files are encrypted with a KMS key",
            "without [staging] kms_key_id, whoever can read the bucket's job folders can read \
             them while a job runs; set kms_key_id (and grant it as `mirage policy` prints)",
        );
    }
    // A probe queue, as a job creates its queues.
    let probe = format!("{}check-{}", config.resource_prefix, std::process::id());
    let mut create = aws.sqs.create_queue().queue_name(&probe).attributes(
        aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
        settings.visibility_timeout.to_string(),
    );
    let kms = config
        .encrypt_queue
        .then(|| settings.kms_master_key.clone())
        .flatten();
    if let Some(k) = &kms {
        create = create.attributes(aws_sdk_sqs::types::QueueAttributeName::KmsMasterKeyId, k);
    }
    let created = step(
        out,
        format!("create queue {probe}"),
        create.send().await.map_err(|e| short_error(&e)),
        policy_fix,
    );
    if let Some(q) = created {
        let url = q.queue_url().unwrap_or_default().to_string();
        if let Some(k) = &kms {
            let sent = aws
                .sqs
                .send_message()
                .queue_url(&url)
                .message_body("mirage check")
                .send()
                .await;
            step(
                out,
                format!("KMS key {k} encrypts a queue message"),
                sent.map_err(|e| short_error(&e)),
                "allow the worker kms:GenerateDataKey and kms:Decrypt on the key, and add the \
                 key-policy statement of `mirage policy` (kms-key-policy-statement.json)",
            );
        }
        let deleted = aws.sqs.delete_queue().queue_url(&url).send().await;
        step(
            out,
            format!("delete queue {probe}"),
            deleted.map_err(|e| short_error(&e)),
            policy_fix,
        );
    }
    // The bucket's notifications: read, and written back unchanged (no test events sent).
    let bucket = &config.bucket;
    let read = read_notifications(&aws, bucket).await;
    if let Some(current) = step(
        out,
        format!("read the notifications of bucket {bucket}"),
        read.map_err(|e| e.to_string()),
        policy_fix,
    ) {
        let written = aws
            .s3
            .put_bucket_notification_configuration()
            .bucket(bucket)
            .notification_configuration(current.configuration())
            .skip_destination_validation(true)
            .send()
            .await;
        step(
            out,
            format!("write the notifications of bucket {bucket}"),
            written.map_err(|e| short_error(&e)),
            policy_fix,
        );
    }
}

/// One AWS step of `mirage check`: passed, or failed with the SDK's reason and `fix`.
/// The Lambda role exists and trusts the Lambda service (otherwise CreateFunction fails).
async fn role_check(aws: &Aws, settings: &LambdaSettings, out: &mut crate::check::Checks) {
    const A: &str = "lambda";
    let role = &settings.role;
    let name = role.rsplit('/').next().unwrap_or(role);
    let create = "create it with the trust and role policies of `mirage policy` \
                  (lambda-trust-policy.json, lambda-role-policy.json), or set TONIC_LAMBDA_ROLE \
                  to an existing role";
    match aws.iam.get_role().role_name(name).send().await {
        Ok(r) if r.role().map(|r| r.arn()) != Some(role.as_str()) => out.fail(
            A,
            format!("role {role} (TONIC_LAMBDA_ROLE) exists"),
            Some(format!(
                "the account's role of that name is {}",
                r.role().map(|r| r.arn()).unwrap_or("?")
            )),
            create,
        ),
        Ok(r) => {
            let trust = r
                .role()
                .and_then(|r| r.assume_role_policy_document())
                .map(decode_key)
                .unwrap_or_default();
            if lambda_may_assume(&trust) {
                out.pass(
                    A,
                    format!("role {role} exists and the Lambda service may assume it"),
                );
            } else {
                out.fail(
                    A,
                    format!("the Lambda service may assume role {role}"),
                    Some(
                        "its trust policy has no statement allowing lambda.amazonaws.com \
                         sts:AssumeRole (or one denies it)"
                            .into(),
                    ),
                    "replace the role's trust policy with lambda-trust-policy.json of `mirage policy`",
                );
            }
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) =>
        {
            out.fail(
                A,
                format!("role {role} (TONIC_LAMBDA_ROLE) exists"),
                Some("no such role in the account".into()),
                create,
            );
        }
        Err(e) => out.warn(
            A,
            format!("role {role} (TONIC_LAMBDA_ROLE) could not be read"),
            format!(
                "{}; give the worker iam:GetRole on it (worker-lambda-policy.json of `mirage \
                 policy`) so check can verify it",
                short_error(&e)
            ),
        ),
    }
}

/// Whether a trust policy lets the Lambda service assume the role: a statement allows
/// `sts:AssumeRole` to `lambda.amazonaws.com` and none denies it.
fn lambda_may_assume(trust: &str) -> bool {
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(trust) else {
        return false;
    };
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
    let statements = match &doc["Statement"] {
        serde_json::Value::Array(a) => a.clone(),
        s @ serde_json::Value::Object(_) => vec![s.clone()],
        _ => Vec::new(),
    };
    let matches = |s: &serde_json::Value| {
        let service = list(&s["Principal"]["Service"])
            .iter()
            .any(|p| p == "lambda.amazonaws.com")
            || s["Principal"] == "*";
        let action = list(&s["Action"])
            .iter()
            .any(|a| a == "sts:AssumeRole" || a == "sts:*" || a == "*");
        service && action
    };
    let allowed = statements
        .iter()
        .any(|s| s["Effect"] == "Allow" && matches(s));
    let denied = statements
        .iter()
        .any(|s| s["Effect"] == "Deny" && matches(s));
    allowed && !denied
}

fn step<T>(
    out: &mut crate::check::Checks,
    what: String,
    result: std::result::Result<T, String>,
    fix: &str,
) -> Option<T> {
    match result {
        Ok(v) => {
            out.pass("lambda", what);
            Some(v)
        }
        Err(e) => {
            out.fail("lambda", what, Some(e), fix);
            None
        }
    }
}

pub use crate::staging::is_job_id;

/// Remove the AWS resources of dead jobs (killed before their teardown): their queues, the
/// mappings from them and their bucket notification entries. Live jobs' are never touched: a
/// job is dead when its lease in the staging bucket is missing or stale. Returns what went.
pub async fn sweep(config: &StagingConfig, staging: &Staging) -> Result<Vec<String>> {
    let aws = Aws::new(config).await;
    let prefix = &config.resource_prefix;
    let mut dead: Vec<String> = Vec::new();
    let queues = aws
        .sqs
        .list_queues()
        .queue_name_prefix(prefix)
        .send()
        .await
        .map_err(aws_err("listing queues"))?;
    let mut dead_queues = Vec::new();
    for url in queues.queue_urls() {
        let name = url.rsplit('/').next().unwrap_or_default();
        let id = name
            .strip_prefix(prefix.as_str())
            .map(|r| r.trim_end_matches("-dlq"))
            .unwrap_or_default();
        if is_job_id(id) && staging.is_dead(id).await? {
            dead_queues.push((url.to_string(), name.to_string()));
            if !dead.iter().any(|d| d == id) {
                dead.push(id.to_string());
            }
        }
    }
    let notifications = read_notifications(&aws, &config.bucket).await?;
    for q in &notifications.queues {
        let id = q
            .id()
            .and_then(|i| i.strip_prefix(prefix.as_str()))
            .unwrap_or_default();
        if is_job_id(id) && !dead.iter().any(|d| d == id) && staging.is_dead(id).await? {
            dead.push(id.to_string());
        }
    }
    let mut removed = Vec::new();
    // Probe queues of `mirage check` runs killed before they deleted them.
    let probes = aws
        .sqs
        .list_queues()
        .queue_name_prefix(format!("{prefix}check-"))
        .send()
        .await
        .map_err(aws_err("listing queues"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for url in probes.queue_urls() {
        let created = queue_attribute(
            &aws,
            url,
            aws_sdk_sqs::types::QueueAttributeName::CreatedTimestamp,
        )
        .await
        .ok()
        .flatten()
        .and_then(|t| t.parse::<f64>().ok())
        .map_or(now, |t| t as u64);
        if now.saturating_sub(created) > crate::staging::probe_bound().as_secs()
            && aws.sqs.delete_queue().queue_url(url).send().await.is_ok()
        {
            removed.push(format!(
                "probe queue {} of a killed `mirage check`",
                url.rsplit('/').next().unwrap_or(url)
            ));
        }
    }
    if dead.is_empty() {
        return Ok(removed);
    }
    // Mappings point at the function or one of its versions: find them by queue.
    let mappings: Vec<aws_sdk_lambda::types::EventSourceMappingConfiguration> = aws
        .lambda
        .list_event_source_mappings()
        .into_paginator()
        .items()
        .send()
        .collect::<std::result::Result<_, _>>()
        .await
        .unwrap_or_default();
    for mapping in &mappings {
        let from = mapping.event_source_arn().unwrap_or_default();
        let queue = from.rsplit(':').next().unwrap_or_default();
        if dead_queues.iter().any(|(_, n)| n == queue)
            && let Some(uuid) = mapping.uuid()
            && aws
                .lambda
                .delete_event_source_mapping()
                .uuid(uuid)
                .send()
                .await
                .is_ok()
        {
            removed.push(format!("event source mapping {uuid}"));
        }
    }
    let ids: Vec<String> = dead.iter().map(|d| format!("{prefix}{d}")).collect();
    if notifications
        .queues
        .iter()
        .any(|q| q.id().is_some_and(|i| ids.iter().any(|d| d == i)))
    {
        let mut n = read_notifications(&aws, &config.bucket).await?;
        n.queues
            .retain(|q| !q.id().is_some_and(|i| ids.iter().any(|d| d == i)));
        aws.s3
            .put_bucket_notification_configuration()
            .bucket(&config.bucket)
            .notification_configuration(n.configuration())
            .send()
            .await
            .map_err(aws_err("removing dead jobs' bucket notifications"))?;
        removed.push(format!(
            "bucket notification entries of {}",
            dead.join(", ")
        ));
    }
    // Invocations a dead job's mapping started may still be writing into its folder.
    for (url, _) in &dead_queues {
        let visibility = queue_attribute(
            &aws,
            url,
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
        )
        .await
        .ok()
        .flatten()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(900);
        wait_until_quiet(&aws, url, Duration::from_secs(visibility + 5)).await;
    }
    for (url, name) in dead_queues {
        if aws.sqs.delete_queue().queue_url(&url).send().await.is_ok() {
            removed.push(format!("queue {name}"));
        }
    }
    Ok(removed)
}

/// Write the job's files for the handler: `job.json` and the consistency key.
pub(super) async fn write_job_files(staging: &Staging, key: &ConsistencyKey) -> Result<()> {
    let job = serde_json::to_vec(&staging.job_file())
        .map_err(|e| ConnectorError::Invalid(format!("job.json: {e}")))?;
    staging.put(&staging.job_key(), job.into()).await?;
    staging
        .put(
            &staging.secret_key(),
            key.to_secret_text().into_bytes().into(),
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::lambda_may_assume;

    #[test]
    fn trust_policies() {
        let allow = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        assert!(lambda_may_assume(allow));
        assert!(!lambda_may_assume(&allow.replace("Allow", "Deny")));
        assert!(!lambda_may_assume(&allow.replace("lambda.", "ec2.")));
        let both = r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":["ec2.amazonaws.com","lambda.amazonaws.com"]},"Action":["sts:AssumeRole"]},{"Effect":"Deny","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        assert!(!lambda_may_assume(both), "a Deny wins");
        assert!(!lambda_may_assume("not json"));
    }

    #[test]
    fn job_ids() {
        assert!(super::is_job_id("20261130-121943-def3"));
        assert!(!super::is_job_id("check-123"));
        assert!(!super::is_job_id("20261130-121943-def3-dlq"));
    }

    #[test]
    fn keys_decode() {
        assert_eq!(super::decode_key("a%2Fb+c"), "a/b c");
    }
}
