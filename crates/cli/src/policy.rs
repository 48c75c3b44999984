//! `mirage policy`: the IAM policies and SQL scripts a setup needs, filled in with the account,
//! region, buckets, resource prefix and role ARNs, every resource scoped to the prefix.

use mirage_connectors::redshift::iam::{IamSettings, Target};
use mirage_core::schema::quote_ident;
use serde_json::{Value, json};

/// What the documents are filled in with.
#[derive(Debug, Clone)]
pub struct PolicyInputs {
    pub account: String,
    pub region: String,
    /// Staging buckets; empty means every bucket named `<resource_prefix>*`.
    pub buckets: Vec<String>,
    /// Key prefix of the job files inside the buckets (`[staging] prefix`).
    pub key_prefix: String,
    /// What every resource's name starts with (default `mirage-`).
    pub resource_prefix: String,
    /// The Lambda execution role's ARN.
    pub lambda_role: String,
    /// The key the staging objects are encrypted with (`[staging] kms_key_id`), as an ARN.
    pub staging_key: Option<String>,
    /// The key the Lambda process's queues are encrypted with (`TONIC_LAMBDA_KMS_MASTER_KEY`),
    /// as an ARN.
    pub queue_key: Option<String>,
    /// Redshift (true) or PostgreSQL SQL.
    pub redshift: bool,
    /// `preserve_ownership = true`: the source user reads every grant too.
    pub preserve_ownership: bool,
    pub source_user: String,
    pub source_database: String,
    pub destination_user: String,
    pub destination_database: String,
    /// Schemas copied (grants are per schema).
    pub schemas: Vec<String>,
    /// Why the schemas are not known (the workspace copies every schema and the source could
    /// not be read): the scripts then show the per-schema lines commented, to fill in.
    pub schemas_unknown: Option<String>,
    /// Ends that log in with Redshift IAM authentication: (`source`/`destination`, settings).
    pub iam_logins: Vec<(&'static str, IamSettings)>,
}

/// One document: a policy (JSON) or a script (SQL).
#[derive(Debug, Clone)]
pub struct Document {
    /// File name, e.g. `worker-v2-policy.json`.
    pub file: &'static str,
    pub title: &'static str,
    pub json: Option<Value>,
    pub sql: Option<String>,
}

impl Document {
    pub fn text(&self) -> String {
        match (&self.json, &self.sql) {
            (Some(j), _) => serde_json::to_string_pretty(j).unwrap_or_default() + "\n",
            (None, Some(s)) => s.clone(),
            (None, None) => String::new(),
        }
    }
}

fn policy(statements: Vec<Value>) -> Value {
    json!({ "Version": "2012-10-17", "Statement": statements })
}

impl PolicyInputs {
    fn bucket_arns(&self) -> Vec<String> {
        if self.buckets.is_empty() {
            vec![format!(
                "arn:{}:s3:::{}*",
                partition(&self.region),
                self.resource_prefix
            )]
        } else {
            self.buckets
                .iter()
                .map(|b| format!("arn:{}:s3:::{b}", partition(&self.region)))
                .collect()
        }
    }

    fn object_arns(&self, sub: &str) -> Vec<String> {
        self.bucket_arns()
            .iter()
            .map(|b| format!("{b}/{}/{sub}", self.key_prefix))
            .collect()
    }

    fn arn(&self, service: &str, resource: &str) -> String {
        format!(
            "arn:{}:{service}:{}:{}:{resource}",
            partition(&self.region),
            self.region,
            self.account
        )
    }

    fn queues(&self) -> String {
        self.arn("sqs", &format!("{}*", self.resource_prefix))
    }

    fn functions(&self) -> String {
        self.arn("lambda", &format!("function:{}*", self.resource_prefix))
    }

    fn log_groups(&self) -> String {
        self.arn(
            "logs",
            &format!("log-group:/aws/lambda/{}*", self.resource_prefix),
        )
    }

    /// Statements both worker policies share: the staging buckets and their objects.
    fn staging_statements(&self) -> Vec<Value> {
        let mut s = vec![
            json!({
                "Sid": "StagingBuckets",
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketLocation",
                           "s3:GetBucketNotification", "s3:PutBucketNotification",
                           "s3:GetLifecycleConfiguration"],
                "Resource": self.bucket_arns(),
            }),
            json!({
                "Sid": "StagingObjects",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetObject", "s3:DeleteObject",
                           "s3:GetObjectVersion", "s3:DeleteObjectVersion"],
                "Resource": self.object_arns("*"),
            }),
        ];
        s.extend(self.kms_statements(&[&self.staging_key]));
        s
    }

    /// Use of the given keys. A key ARN is granted as itself; an alias cannot be (IAM matches
    /// the key's ARN, never the alias's), so it is granted as any key of the account and region
    /// that carries the alias (`kms:ResourceAliases`).
    fn kms_statements(&self, keys: &[&Option<String>]) -> Vec<Value> {
        let actions = json!(["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]);
        let mut arns: Vec<String> = Vec::new();
        let mut aliases: Vec<(String, String)> = Vec::new();
        for key in keys.iter().filter_map(|k| k.as_ref()) {
            match key.split_once(":alias/") {
                Some((head, alias)) => {
                    let entry = (format!("{head}:key/*"), format!("alias/{alias}"));
                    if !aliases.contains(&entry) {
                        aliases.push(entry);
                    }
                }
                None if !arns.contains(key) => arns.push(key.clone()),
                None => {}
            }
        }
        let mut out = Vec::new();
        if !arns.is_empty() {
            out.push(json!({
                "Sid": "UseTheKmsKeys",
                "Effect": "Allow",
                "Action": actions,
                "Resource": arns,
            }));
        }
        for (n, (keys, alias)) in aliases.into_iter().enumerate() {
            out.push(json!({
                "Sid": format!("UseTheKmsKeyAliased{n}"),
                "Effect": "Allow",
                "Action": actions,
                "Resource": [keys],
                "Condition": { "ForAnyValue:StringEquals": { "kms:ResourceAliases": alias } },
            }));
        }
        out
    }

    /// Temporary database credentials, for the ends that use IAM authentication (nothing
    /// otherwise): `GetClusterCredentials` on the user and database (with `CreateClusterUser`
    /// and `JoinGroup` when the URL asks for them), or Serverless `GetCredentials`.
    fn iam_statements(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for (role, iam) in &self.iam_logins {
            let region = iam.region.as_deref().unwrap_or(&self.region);
            let sid = format!(
                "{}DatabaseCredentials",
                if *role == "source" {
                    "Source"
                } else {
                    "Destination"
                }
            );
            match &iam.target {
                Target::Cluster(cluster) => {
                    let arn = |what: &str| {
                        format!(
                            "arn:{}:redshift:{region}:{}:{what}:{cluster}/",
                            partition(region),
                            self.account
                        )
                    };
                    let mut actions = vec!["redshift:GetClusterCredentials"];
                    let mut resources = vec![
                        format!("{}{}", arn("dbuser"), iam.user),
                        format!("{}{}", arn("dbname"), iam.database),
                    ];
                    if iam.auto_create {
                        actions.push("redshift:CreateClusterUser");
                    }
                    if !iam.db_groups.is_empty() {
                        actions.push("redshift:JoinGroup");
                        resources.extend(
                            iam.db_groups
                                .iter()
                                .map(|g| format!("{}{g}", arn("dbgroup"))),
                        );
                    }
                    out.push(json!({
                        "Sid": sid,
                        "Effect": "Allow",
                        "Action": actions,
                        "Resource": resources,
                    }));
                }
                Target::Workgroup(_) => {
                    // Workgroup ARNs end in the workgroup's id, not its name: narrow `*` to it
                    // (aws redshift-serverless get-workgroup --workgroup-name …).
                    out.push(json!({
                        "Sid": sid,
                        "Effect": "Allow",
                        "Action": ["redshift-serverless:GetCredentials"],
                        "Resource": [format!(
                            "arn:{}:redshift-serverless:{region}:{}:workgroup/*",
                            partition(region),
                            self.account
                        )],
                    }));
                }
            }
        }
        out
    }

    /// The worker's policy for Data Pipeline V2.
    pub fn worker_v2(&self) -> Value {
        let mut s = self.staging_statements();
        s.extend(self.iam_statements());
        policy(s)
    }

    /// The worker's policy for the SQS + Lambda process.
    pub fn worker_lambda(&self) -> Value {
        let mut s = self.staging_statements();
        s.extend(self.iam_statements());
        // The worker reads the dead-letter queue and re-sends lost events: the queue key too.
        s.retain(|st| {
            !st["Sid"]
                .as_str()
                .is_some_and(|id| id.starts_with("UseTheKmsKey"))
        });
        s.extend(self.kms_statements(&[&self.staging_key, &self.queue_key]));
        s.push(json!({
            "Sid": "Queues",
            "Effect": "Allow",
            "Action": ["sqs:CreateQueue", "sqs:DeleteQueue", "sqs:GetQueueAttributes",
                       "sqs:SetQueueAttributes", "sqs:GetQueueUrl", "sqs:TagQueue",
                       "sqs:PurgeQueue", "sqs:ReceiveMessage", "sqs:SendMessage",
                       "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                       "sqs:ListDeadLetterSourceQueues", "sqs:ListQueueTags"],
            "Resource": [self.queues()],
        }));
        s.push(json!({
            "Sid": "Functions",
            "Effect": "Allow",
            "Action": ["lambda:CreateFunction", "lambda:DeleteFunction", "lambda:GetFunction",
                       "lambda:GetFunctionConfiguration", "lambda:UpdateFunctionCode",
                       "lambda:UpdateFunctionConfiguration", "lambda:PublishVersion",
                       "lambda:TagResource"],
            "Resource": [self.functions()],
        }));
        s.push(json!({
            "Sid": "EventSourceMappings",
            "Effect": "Allow",
            "Action": ["lambda:CreateEventSourceMapping", "lambda:DeleteEventSourceMapping",
                       "lambda:GetEventSourceMapping", "lambda:UpdateEventSourceMapping"],
            "Resource": ["*"],
            "Condition": { "StringLike": { "lambda:FunctionArn": self.functions() } },
        }));
        s.push(json!({
            "Sid": "FunctionImages",
            "Effect": "Allow",
            "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
                       "ecr:BatchCheckLayerAvailability", "ecr:DescribeImages",
                       "ecr:DescribeRepositories", "ecr:ListImages"],
            "Resource": [self.arn("ecr", &format!("repository/{}*", self.resource_prefix))],
        }));
        s.push(json!({
            "Sid": "PassOnlyTheLambdaRole",
            "Effect": "Allow",
            "Action": ["iam:PassRole"],
            "Resource": [self.lambda_role],
            "Condition": { "StringEquals": { "iam:PassedToService": "lambda.amazonaws.com" } },
        }));
        s.push(json!({
            "Sid": "ReadTheLambdaRole",
            "Effect": "Allow",
            "Action": ["iam:GetRole"],
            "Resource": [self.lambda_role],
        }));
        s.push(json!({
            "Sid": "FunctionLogs",
            "Effect": "Allow",
            "Action": ["logs:StartQuery", "logs:GetLogEvents", "logs:FilterLogEvents",
                       "logs:DescribeLogStreams"],
            "Resource": [self.log_groups(), format!("{}:*", self.log_groups())],
        }));
        // These actions have no resource-level permissions in IAM: "*" is the only resource.
        s.push(json!({
            "Sid": "NoResourceLevelPermissions",
            "Effect": "Allow",
            "Action": ["ecr:GetAuthorizationToken", "logs:GetQueryResults", "logs:StopQuery",
                       "sqs:ListQueues", "lambda:ListFunctions",
                       "lambda:ListEventSourceMappings"],
            "Resource": ["*"],
        }));
        policy(s)
    }

    /// The Lambda function's execution role policy.
    pub fn lambda_role_policy(&self) -> Value {
        let mut s = vec![
            json!({
                "Sid": "ReadInputAndSpecs",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": ([self.object_arns("*/input/*"), self.object_arns("*/spec/*")].concat()),
            }),
            json!({
                "Sid": "WriteOutputAndResults",
                "Effect": "Allow",
                "Action": ["s3:PutObject"],
                "Resource": ([self.object_arns("*/output/*"), self.object_arns("*/results/*")].concat()),
            }),
            json!({
                "Sid": "ListStaging",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": self.bucket_arns(),
            }),
            json!({
                "Sid": "ConsumeQueue",
                "Effect": "Allow",
                "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                           "sqs:ChangeMessageVisibility", "sqs:GetQueueUrl", "sqs:SendMessage"],
                "Resource": [self.queues()],
            }),
            json!({
                "Sid": "Logs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [self.log_groups(), format!("{}:*", self.log_groups())],
            }),
        ];
        s.extend(self.kms_statements(&[&self.staging_key, &self.queue_key]));
        policy(s)
    }

    /// The staging bucket's lifecycle rule: objects under the job prefix expire after two
    /// days (a backstop for what killed jobs leave; a job deletes its own files at its end).
    pub fn staging_lifecycle(&self) -> Value {
        json!({
            "Rules": [{
                "ID": format!("{}staging-expiry", self.resource_prefix),
                "Filter": { "Prefix": format!("{}/", self.key_prefix) },
                "Status": "Enabled",
                "Expiration": { "Days": 2 },
                "AbortIncompleteMultipartUpload": { "DaysAfterInitiation": 1 },
            }],
        })
    }

    /// Who may assume the Lambda role.
    pub fn lambda_trust(&self) -> Value {
        policy(vec![json!({
            "Effect": "Allow",
            "Principal": { "Service": "lambda.amazonaws.com" },
            "Action": "sts:AssumeRole",
        })])
    }

    /// The statement to add to the KMS key's policy so S3 can send encrypted events to SQS.
    pub fn kms_key_policy_statement(&self) -> Value {
        let sources: Vec<String> = self.bucket_arns();
        json!({
            "Sid": "AllowS3ToUseTheKeyForQueueEvents",
            "Effect": "Allow",
            "Principal": { "Service": "s3.amazonaws.com" },
            "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
            "Resource": "*",
            "Condition": {
                "StringEquals": { "aws:SourceAccount": self.account },
                "ArnLike": { "aws:SourceArn": sources },
            },
        })
    }

    fn user(&self, name: &str) -> String {
        quote_ident(name)
    }

    /// The source user: read-only on the copied schemas.
    pub fn source_sql(&self) -> String {
        let u = self.user(&self.source_user);
        let mut s = format!(
            "-- The source user mirage reads with (read-only). Run as a superuser on database {}.\n",
            self.source_database
        );
        if self.redshift {
            s += &format!(
                "-- Set a password afterwards (ALTER USER {u} PASSWORD '…') or use IAM authentication.\n\
                 CREATE USER {u} PASSWORD DISABLE;\n"
            );
        } else {
            s += &format!(
                "-- Set a password afterwards (ALTER ROLE {u} PASSWORD '…').\nCREATE ROLE {u} LOGIN;\n\
                 GRANT CONNECT ON DATABASE {} TO {u};\n",
                quote_ident(&self.source_database)
            );
        }
        for schema in &self.schemas {
            let q = quote_ident(schema);
            s += &format!(
                "GRANT USAGE ON SCHEMA {q} TO {u};\nGRANT SELECT ON ALL TABLES IN SCHEMA {q} TO {u};\n"
            );
        }
        if let Some(why) = &self.schemas_unknown {
            let why = why.replace(['\n', '\r'], " ");
            s += &format!(
                "-- Every schema of the source is copied, and its schemas are not known here ({why}):\n\
                 -- two lines per schema, filled in and uncommented:\n\
                 -- GRANT USAGE ON SCHEMA <schema> TO {u};\n\
                 -- GRANT SELECT ON ALL TABLES IN SCHEMA <schema> TO {u};\n"
            );
        }
        if self.redshift {
            s += &format!("GRANT SELECT ON pg_catalog.svv_table_info TO {u};\n");
        }
        if self.redshift && self.preserve_ownership {
            s += &format!(
                "-- preserve_ownership copies privileges: the source user must see every grant.\n\
                 GRANT ROLE \"sys:monitor\" TO {u};\n"
            );
        }
        s
    }

    /// The destination user: creates schemas and tables, owns what it writes.
    pub fn destination_sql(&self, superuser: bool) -> String {
        let u = self.user(&self.destination_user);
        let db = quote_ident(&self.destination_database);
        let mut s = format!(
            "-- The destination user mirage writes with{}. Run as a superuser on database {}.\n",
            if superuser {
                " when it preserves source ownership (a superuser)"
            } else {
                ""
            },
            self.destination_database
        );
        if self.redshift {
            s += &format!(
                "-- Set a password afterwards (ALTER USER {u} PASSWORD '…') or use IAM authentication.\n\
                 CREATE USER {u} PASSWORD DISABLE{};\n",
                if superuser { " CREATEUSER" } else { "" }
            );
        } else {
            s += &format!(
                "-- Set a password afterwards (ALTER ROLE {u} PASSWORD '…').\nCREATE ROLE {u} LOGIN{};\n",
                if superuser { " SUPERUSER" } else { "" }
            );
        }
        if superuser {
            return s;
        }
        if self.redshift {
            s += &format!("GRANT SELECT ON pg_catalog.svv_table_info TO {u};\n");
        }
        // Redshift's documented setup grants TEMPORARY; a PostgreSQL job never uses it.
        if self.redshift {
            s += &format!("GRANT TEMPORARY ON DATABASE {db} TO {u};\n");
        }
        s += &format!("GRANT CREATE ON DATABASE {db} TO {u};\n");
        if !self.schemas.is_empty() || self.schemas_unknown.is_some() {
            s += "-- For copied schemas that already exist in the destination (skip the others):\n";
        }
        for schema in &self.schemas {
            let q = quote_ident(schema);
            if self.redshift && schema == "public" {
                // public is written into, never dropped.
                s += &format!("GRANT USAGE, CREATE ON SCHEMA {q} TO {u};\n");
            } else if self.redshift {
                s += &format!("GRANT DROP ON SCHEMA {q} TO {u};\n");
            } else {
                s += &format!("ALTER SCHEMA {q} OWNER TO {u};\n");
            }
        }
        if self.schemas_unknown.is_some() {
            s += &if self.redshift {
                format!("-- GRANT DROP ON SCHEMA <schema> TO {u};\n")
            } else {
                format!("-- ALTER SCHEMA <schema> OWNER TO {u};\n")
            };
        }
        s
    }

    /// Every document, in the order they are printed.
    pub fn documents(&self) -> Vec<Document> {
        let doc = |file, title, json: Value| Document {
            file,
            title,
            json: Some(json),
            sql: None,
        };
        let sql = |file, title, sql: String| Document {
            file,
            title,
            json: None,
            sql: Some(sql),
        };
        let mut docs = vec![
            doc(
                "worker-v2-policy.json",
                "the worker's IAM policy, Data Pipeline V2",
                self.worker_v2(),
            ),
            doc(
                "worker-lambda-policy.json",
                "the worker's IAM policy, SQS + Lambda process",
                self.worker_lambda(),
            ),
            doc(
                "lambda-role-policy.json",
                "the Lambda execution role's policy",
                self.lambda_role_policy(),
            ),
            doc(
                "lambda-trust-policy.json",
                "the Lambda execution role's trust policy",
                self.lambda_trust(),
            ),
        ];
        docs.push(doc(
            "staging-lifecycle.json",
            "the staging bucket's lifecycle rule (aws s3api put-bucket-lifecycle-configuration)",
            self.staging_lifecycle(),
        ));
        if self.queue_key.is_some() {
            docs.push(doc(
                "kms-key-policy-statement.json",
                "add to the KMS key's policy: S3 may use the key for encrypted queue events",
                self.kms_key_policy_statement(),
            ));
        }
        docs.push(sql("source-user.sql", "the source user", self.source_sql()));
        docs.push(sql(
            "destination-user.sql",
            "the destination user",
            self.destination_sql(false),
        ));
        docs.push(sql(
            "destination-superuser.sql",
            "the destination user for preserve_ownership = true",
            self.destination_sql(true),
        ));
        docs
    }
}

/// What `mirage policy` was given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub account: Option<String>,
    pub region: Option<String>,
    pub buckets: Vec<String>,
    pub prefix: Option<String>,
    pub lambda_role: Option<String>,
    pub kms_key: Option<String>,
}

/// The documents' inputs: flags first, then the workspace, then the environment.
pub fn inputs(ws: &mirage_core::Workspace, flags: Flags) -> Result<PolicyInputs, String> {
    let staging = ws.staging.as_ref();
    let account = flags
        .account
        .or_else(|| staging.and_then(|s| account_of(&s.iam_role)))
        .ok_or("give --account (or an [staging] iam_role ARN to take it from)")?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "--account {account}: an AWS account id is 12 digits"
        ));
    }
    let region = flags
        .region
        .or_else(|| staging.map(|s| s.region.clone()))
        .unwrap_or_else(|| "us-east-1".into());
    let resource_prefix = flags
        .prefix
        .or_else(|| staging.map(|s| s.resource_prefix.clone()))
        .unwrap_or_else(|| "mirage-".into());
    if resource_prefix.is_empty() {
        return Err(
            "the resource prefix is empty: the policies would grant every queue, function and \
             repository of the account; give --prefix (e.g. mirage-)"
                .into(),
        );
    }
    let mut buckets = flags.buckets;
    if buckets.is_empty()
        && let Some(s) = staging
    {
        buckets.push(s.bucket.clone());
    }
    if let Some(b) = buckets.iter().find(|b| !b.starts_with(&resource_prefix)) {
        return Err(format!(
            "bucket {b} does not start with the prefix {resource_prefix}: use a bucket named \
             {resource_prefix}… or pass --prefix"
        ));
    }
    let lambda_role = flags
        .lambda_role
        .or_else(|| std::env::var(mirage_core::lambda::ROLE).ok())
        .unwrap_or_else(|| {
            format!(
                "arn:{}:iam::{account}:role/{resource_prefix}lambda",
                partition(&region)
            )
        });
    if !mirage_core::lambda::is_role_arn(&lambda_role) {
        return Err(format!("the Lambda role {lambda_role} is not a role ARN"));
    }
    let queue_key = flags
        .kms_key
        .or_else(|| std::env::var(mirage_core::lambda::KMS_MASTER_KEY).ok())
        .filter(|k| !k.is_empty());
    if queue_key
        .as_deref()
        .is_some_and(|k| k.ends_with("alias/aws/sqs"))
    {
        return Err(
            "the queue key alias/aws/sqs is AWS-managed: S3 cannot use it to send encrypted \
             events; create a customer managed key and give its id, ARN or alias"
                .into(),
        );
    }
    let queue_key = queue_key.map(|k| kms_arn(&k, &region, &account));
    let staging_key = staging
        .and_then(|s| s.kms_key_id.clone())
        .filter(|k| !k.is_empty())
        .map(|k| kms_arn(&k, &region, &account));
    let conn = |url: &str, default_db: &str| -> (String, String) {
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        // Decoded as mirage decodes them to connect (`a%20b` is the user `a b`).
        let decode = |v: &str| mirage_core::display::percent_decode(v);
        let user = rest
            .split_once('@')
            .map(|(u, _)| decode(u.split(':').next().unwrap_or(u)));
        let db = rest
            .split_once('/')
            .map(|(_, d)| decode(d.split('?').next().unwrap_or(d)))
            .filter(|d| !d.is_empty());
        (
            user.unwrap_or_else(|| "mirage".into()),
            db.unwrap_or_else(|| default_db.into()),
        )
    };
    let mut iam_logins = Vec::new();
    for (role, url) in [
        ("source", &ws.source.url),
        ("destination", &ws.destination.url),
    ] {
        if let Some(rest) = url.strip_prefix("redshift://") {
            // The URL as `mirage run` reads it: a typo is refused here too.
            let conn = if role == "source" {
                &ws.source
            } else {
                &ws.destination
            };
            mirage_connectors::postgres::PgEndpoint::redshift(role, conn, ws.staging.as_ref())
                .map_err(|e| e.to_string())?;
            let (_, iam) = IamSettings::take(role, rest).map_err(|e| e.to_string())?;
            iam_logins.extend(iam.map(|i| (role, i)));
        }
    }
    let (source_user, source_database) = conn(&ws.source.url, "source");
    let (destination_user, destination_database) = conn(&ws.destination.url, "destination");
    Ok(PolicyInputs {
        account,
        region,
        buckets,
        key_prefix: staging.map_or_else(|| "mirage".into(), |s| s.prefix.clone()),
        resource_prefix,
        lambda_role,
        staging_key,
        queue_key,
        redshift: ws.source.url.starts_with("redshift://"),
        preserve_ownership: ws.preserve_ownership,
        source_user,
        source_database,
        destination_user,
        destination_database,
        // Every schema when `include` is empty: read from the source by the caller.
        schemas: ws.schemas.include.clone(),
        schemas_unknown: ws
            .schemas
            .include
            .is_empty()
            .then(|| "the source was not read".to_string()),
        iam_logins,
    })
}

/// The schemas the workspace copies, read from the source (for `include = []`); why not, when
/// the source cannot be read within 20 seconds.
pub async fn source_schemas(ws: &mirage_core::Workspace) -> Result<Vec<String>, String> {
    use mirage_connectors::registry::{Role, connector_of};
    let read = async {
        let connector = connector_of(ws, Role::Source).map_err(|e| e.to_string())?;
        let source = connector.open_source(ws).await.map_err(|e| e.to_string())?;
        let catalog = source
            .catalog(&ws.schemas)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(catalog.schemas)
    };
    match tokio::time::timeout(std::time::Duration::from_secs(20), read).await {
        Ok(Ok(schemas)) => Ok(schemas),
        Ok(Err(e)) => Err(format!("reading the source failed: {e}")),
        Err(_) => Err("the source did not answer within 20 s".into()),
    }
}

/// The AWS partition of a region: `aws-cn` for China, `aws-us-gov` for GovCloud, else `aws`.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// An ARN's account: `arn:aws:iam::123456789012:role/x` → `123456789012`.
pub fn account_of(arn: &str) -> Option<String> {
    let parts: Vec<&str> = arn.split(':').collect();
    (parts.len() >= 6 && parts[4].len() == 12 && parts[4].bytes().all(|b| b.is_ascii_digit()))
        .then(|| parts[4].to_string())
}

/// A KMS key as an ARN (ids and aliases are expanded in the account and region).
pub fn kms_arn(key: &str, region: &str, account: &str) -> String {
    if key.starts_with("arn:") {
        key.to_string()
    } else if let Some(alias) = key.strip_prefix("alias/") {
        format!(
            "arn:{}:kms:{region}:{account}:alias/{alias}",
            partition(region)
        )
    } else {
        format!("arn:{}:kms:{region}:{account}:key/{key}", partition(region))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn inputs() -> PolicyInputs {
        PolicyInputs {
            account: "123456789012".into(),
            region: "eu-west-1".into(),
            buckets: vec!["mirage-staging".into()],
            key_prefix: "mirage".into(),
            resource_prefix: "mirage-".into(),
            lambda_role: "arn:aws:iam::123456789012:role/mirage-lambda".into(),
            staging_key: Some(
                "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
                    .into(),
            ),
            queue_key: Some("arn:aws:kms:eu-west-1:123456789012:alias/mirage-sqs".into()),
            redshift: true,
            preserve_ownership: false,
            source_user: "mirage_src".into(),
            source_database: "prod".into(),
            destination_user: "mirage_dst".into(),
            destination_database: "dev".into(),
            schemas: vec!["sales".into()],
            schemas_unknown: None,
            iam_logins: Vec::new(),
        }
    }

    #[test]
    fn resources_are_scoped_to_the_prefix() {
        let p = inputs();
        for d in p.documents() {
            let Some(j) = &d.json else { continue };
            let statements = j["Statement"]
                .as_array()
                .cloned()
                .unwrap_or_else(|| vec![j.clone()]);
            for s in statements {
                let resources: Vec<String> = match &s["Resource"] {
                    Value::String(r) => vec![r.clone()],
                    Value::Array(a) => a
                        .iter()
                        .filter_map(|r| r.as_str().map(str::to_string))
                        .collect(),
                    _ => vec![],
                };
                for r in resources {
                    let scoped = r.contains("mirage-")
                        || r.contains(":key/1234abcd")
                        || (r.ends_with(":key/*") && s["Condition"].is_object())
                        || (r == "*"
                            && (s["Sid"] == "NoResourceLevelPermissions"
                                || s["Condition"].is_object()));
                    assert!(scoped, "{}: {r} in {s}", d.file);
                }
            }
        }
        let mut other = inputs();
        other.resource_prefix = "tonic-".into();
        other.buckets = vec!["tonic-staging".into()];
        other.lambda_role = "arn:aws:iam::123456789012:role/tonic-lambda".into();
        other.queue_key = Some("arn:aws:kms:eu-west-1:123456789012:alias/tonic-sqs".into());
        let text = serde_json::to_string(&other.worker_lambda()).unwrap();
        assert!(
            text.contains("function:tonic-*") && !text.contains("mirage-"),
            "{text}"
        );
    }

    /// The database-credential actions appear only for the ends that use IAM authentication,
    /// scoped to the user, database, groups (provisioned) or workgroups (Serverless).
    #[test]
    fn iam_authentication_statements_only_when_used() {
        let ws = |source: &str, destination: &str| {
            let text = format!(
                "[source]\nurl = \"{source}\"\n[destination]\nurl = \"{destination}\"\n\
                 [staging]\nbucket = \"mirage-staging\"\n\
                 iam_role = \"arn:aws:iam::123456789012:role/r\"\nregion = \"eu-west-1\"\n"
            );
            mirage_core::Workspace::parse("w.toml".as_ref(), &text).unwrap()
        };
        let text = |p: &PolicyInputs| format!("{}\n{}", p.worker_v2(), p.worker_lambda());
        let plain = super::inputs(
            &ws(
                "redshift://src@c1.abc.us-west-2.redshift.amazonaws.com/prod",
                "redshift://dst@h:5439/dev",
            ),
            Flags::default(),
        )
        .unwrap();
        assert!(!text(&plain).contains("Credentials"), "{}", text(&plain));
        let iam = super::inputs(
            &ws(
                "redshift://src@c1.abc.us-west-2.redshift.amazonaws.com/prod?iam=true",
                "redshift://dst@h:5439/dev?iam=true&cluster_id=c2&auto_create=true&db_groups=loaders",
            ),
            Flags::default(),
        )
        .unwrap();
        let v2 = iam.worker_v2().to_string();
        for arn in [
            "arn:aws:redshift:us-west-2:123456789012:dbuser:c1/src",
            "arn:aws:redshift:us-west-2:123456789012:dbname:c1/prod",
            "arn:aws:redshift:eu-west-1:123456789012:dbuser:c2/dst",
            "arn:aws:redshift:eu-west-1:123456789012:dbgroup:c2/loaders",
            "redshift:CreateClusterUser",
            "redshift:JoinGroup",
        ] {
            assert!(v2.contains(arn), "{arn} missing: {v2}");
            assert!(iam.worker_lambda().to_string().contains(arn));
        }
        // CreateClusterUser only where auto_create asks for it.
        let statements = iam.worker_v2()["Statement"].as_array().unwrap().clone();
        let source = statements
            .iter()
            .find(|s| s["Sid"] == "SourceDatabaseCredentials")
            .unwrap();
        assert_eq!(source["Action"], json!(["redshift:GetClusterCredentials"]));
        let serverless = super::inputs(
            &ws(
                "redshift://src@wg.123456789012.eu-west-1.redshift-serverless.amazonaws.com/dev?iam=true",
                "redshift://dst@h:5439/dev",
            ),
            Flags::default(),
        )
        .unwrap();
        let v2 = serverless.worker_v2().to_string();
        assert!(v2.contains("redshift-serverless:GetCredentials"), "{v2}");
        assert!(!v2.contains("GetClusterCredentials"), "{v2}");
    }

    /// Both keys reach every identity that touches what they encrypt; an alias is granted
    /// through `kms:ResourceAliases` (an alias ARN never matches in IAM).
    #[test]
    fn kms_keys_staging_and_queue() {
        let p = inputs();
        let text = |v: &Value| serde_json::to_string(v).unwrap();
        for doc in [p.worker_lambda(), p.lambda_role_policy()] {
            let t = text(&doc);
            assert!(t.contains("key/1234abcd"), "{t}");
            assert!(
                t.contains("\"kms:ResourceAliases\":\"alias/mirage-sqs\""),
                "{t}"
            );
            assert!(!t.contains(":alias/"), "no alias ARN as a resource: {t}");
        }
        let v2 = text(&p.worker_v2());
        assert!(
            v2.contains("key/1234abcd") && !v2.contains("mirage-sqs"),
            "{v2}"
        );
        let mut only_staging = inputs();
        only_staging.queue_key = None;
        assert!(
            !only_staging
                .documents()
                .iter()
                .any(|d| d.file == "kms-key-policy-statement.json"),
            "S3 needs the key policy statement only for an encrypted queue"
        );
    }
}
