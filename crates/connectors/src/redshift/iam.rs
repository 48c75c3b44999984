//! Redshift IAM authentication: instead of a password, temporary database credentials from
//! the Redshift API — `GetClusterCredentials` for a provisioned cluster, `GetCredentials` for a
//! Serverless workgroup — signed with the standard AWS credential chain (environment, profile,
//! SSO, instance or task role). Asked in a URL's query, like Amazon's JDBC and Python drivers:
//!
//! `redshift://alice@examplecluster.abc123.us-west-2.redshift.amazonaws.com:5439/dev?iam=true`
//!
//! The cluster (or workgroup) and region are read from such a host name, or given as
//! `cluster_id=…` / `workgroup=…` and `region=…`. The credentials last `duration` seconds
//! (900–3600, default 900) and are fetched again, shortly before they end, for new connections.

use crate::ConnectorError;
use aws_sdk_redshift::error::ProvideErrorMetadata;
use std::time::{Duration, SystemTime};

/// The query parameters that belong to IAM authentication (removed before the driver sees the
/// URL).
pub const PARAMS: &[&str] = &[
    "iam",
    "cluster_id",
    "workgroup",
    "region",
    "auto_create",
    "db_groups",
    "duration",
];

/// What the credentials are for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A provisioned cluster's identifier.
    Cluster(String),
    /// A Redshift Serverless workgroup's name.
    Workgroup(String),
}

/// IAM authentication settings, from a `redshift://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamSettings {
    /// The cluster or workgroup.
    pub target: Target,
    /// Region of the Redshift API; `None`: the staging bucket's.
    pub region: Option<String>,
    /// The database user (the URL's user).
    pub user: String,
    /// The database (the URL's path).
    pub database: String,
    /// Create the user if it does not exist (provisioned clusters; `redshift:CreateClusterUser`).
    pub auto_create: bool,
    /// Groups the user joins for the session (provisioned clusters; `redshift:JoinGroup`).
    pub db_groups: Vec<String>,
    /// How long the credentials last, in seconds.
    pub duration: i32,
}

/// A provisioned cluster's or a workgroup's endpoint host: `(target, region)`.
fn from_host(host: &str) -> Option<(Target, String)> {
    let parts: Vec<&str> = host.split('.').collect();
    // <cluster>.<id>.<region>.redshift.amazonaws.com
    if parts.len() == 6 && parts[3] == "redshift" && parts[4] == "amazonaws" {
        return Some((Target::Cluster(parts[0].into()), parts[2].into()));
    }
    // <workgroup>.<account>.<region>.redshift-serverless.amazonaws.com
    if parts.len() == 6 && parts[3] == "redshift-serverless" && parts[4] == "amazonaws" {
        return Some((Target::Workgroup(parts[0].into()), parts[2].into()));
    }
    None
}

impl IamSettings {
    /// Read (and remove) the IAM parameters of `url` (`scheme://user@host:port/db?…`). `None`
    /// when the URL does not ask for IAM authentication.
    pub fn take(role: &str, url: &str) -> Result<(String, Option<IamSettings>), ConnectorError> {
        let invalid = |m: String| ConnectorError::Invalid(format!("{role}.url: {m}"));
        let mut url = url.to_string();
        let mut given = std::collections::BTreeMap::new();
        for key in PARAMS {
            let times = url.split_once('?').map_or(0, |(_, q)| {
                q.split('&')
                    .filter(|p| p.split('=').next() == Some(key))
                    .count()
            });
            if times > 1 {
                return Err(invalid(format!(
                    "{key} is given {times} times; give it once"
                )));
            }
            let (rest, value) = crate::postgres::take_param(&url, key);
            url = rest;
            if let Some(v) = value {
                given.insert(*key, mirage_core::display::percent_decode(&v));
            }
        }
        let flag = |key: &str| -> Result<bool, ConnectorError> {
            match given.get(key).map(|v| v.to_ascii_lowercase()) {
                None => Ok(false),
                Some(v) if v == "true" || v == "1" => Ok(true),
                Some(v) if v == "false" || v == "0" => Ok(false),
                Some(_) => Err(invalid(format!("{key} is true or false"))),
            }
        };
        if !flag("iam")? {
            if let Some(k) = given.keys().find(|k| **k != "iam") {
                return Err(invalid(format!(
                    "{k} is an IAM authentication setting: add iam=true to use IAM \
                     authentication, or remove {k}"
                )));
            }
            return Ok((url, None));
        }
        let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let user = authority
            .rsplit_once('@')
            .map(|(u, _)| mirage_core::display::percent_decode(u))
            .filter(|u| !u.is_empty())
            .ok_or_else(|| {
                invalid(
                    "iam=true needs the database user in the URL: redshift://user@host:5439/db?iam=true"
                        .into(),
                )
            })?;
        let host = authority.rsplit('@').next().unwrap_or(authority);
        let host = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
        let database =
            mirage_core::display::percent_decode(path.split('?').next().unwrap_or_default());
        let from_host = from_host(&host);
        let target = match (given.get("cluster_id"), given.get("workgroup")) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "cluster_id and workgroup both given: keep cluster_id for a provisioned \
                     cluster, workgroup for Redshift Serverless"
                        .into(),
                ));
            }
            (Some(c), None) => Target::Cluster(c.clone()),
            (None, Some(w)) => Target::Workgroup(w.clone()),
            (None, None) => from_host.as_ref().map(|(t, _)| t.clone()).ok_or_else(|| {
                invalid(format!(
                    "iam=true: the host {} is not a Redshift endpoint name; add cluster_id=<cluster \
                     identifier> (provisioned) or workgroup=<name> (Serverless)",
                    mirage_core::display::printable(&host)
                ))
            })?,
        };
        let shown = |v: &str| {
            let v = mirage_core::display::printable(v);
            if v.chars().count() > 64 {
                format!("{}…", v.chars().take(64).collect::<String>())
            } else {
                v.into_owned()
            }
        };
        let (Target::Cluster(name) | Target::Workgroup(name)) = &target;
        let key = match target {
            Target::Cluster(_) => "cluster_id",
            Target::Workgroup(_) => "workgroup",
        };
        // AWS's rules: lowercase letters, digits and hyphens, starting with a letter.
        let ok_name = !name.is_empty()
            && name.len() <= 63
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok_name {
            return Err(invalid(format!(
                "{key} {:?} is not a Redshift {} name (lowercase letters, digits and hyphens, \
                 starting with a letter)",
                shown(name),
                if key == "cluster_id" {
                    "cluster"
                } else {
                    "workgroup"
                }
            )));
        }
        // Database user, database and group names go into IAM resource ARNs: AWS's rules for
        // them (which also keep `*` and `?` out of the policy `mirage policy` prints).
        let ok_db_name = |v: &str| {
            !v.is_empty()
                && v.len() <= 64
                && v.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && v.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_+.@-".contains(&b))
        };
        for (what, v) in [("user", &user), ("database", &database)] {
            if !ok_db_name(v) {
                return Err(invalid(format!(
                    "with iam=true the {what} {:?} must follow AWS's rules for database names: \
                     lowercase letters, digits and _ + . @ -, starting with a letter or _",
                    shown(v)
                )));
            }
        }
        let region = match given.get("region") {
            Some(r) => Some(r.clone()),
            None => from_host.map(|(_, r)| r),
        };
        if let Some(r) = &region
            && !(!r.is_empty()
                && r.len() <= 32
                && r.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
        {
            return Err(invalid(format!(
                "region {:?} is not an AWS region (e.g. us-east-1)",
                shown(r)
            )));
        }
        let auto_create = flag("auto_create")?;
        let db_groups: Vec<String> = given
            .get("db_groups")
            .map(|g| {
                g.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        if let Some(g) = db_groups.iter().find(|g| !ok_db_name(g)) {
            return Err(invalid(format!(
                "db_groups: {:?} is not a database group name (lowercase letters, digits and \
                 _ + . @ -, starting with a letter or _)",
                shown(g)
            )));
        }
        if matches!(target, Target::Workgroup(_)) && (auto_create || !db_groups.is_empty()) {
            return Err(invalid(
                "auto_create and db_groups are for provisioned clusters (GetClusterCredentials); \
                 Redshift Serverless maps the IAM identity to a user itself"
                    .into(),
            ));
        }
        let duration = match given.get("duration") {
            None => 900,
            Some(d) => d
                .parse::<i32>()
                .ok()
                .filter(|d| (900..=3600).contains(d))
                .ok_or_else(|| {
                    invalid("duration is a number of seconds from 900 to 3600".into())
                })?,
        };
        Ok((
            url,
            Some(IamSettings {
                target,
                region,
                user,
                database,
                auto_create,
                db_groups,
                duration,
            }),
        ))
    }

    /// `the cluster x` / `the workgroup y`, for messages.
    pub fn describe(&self) -> String {
        match &self.target {
            Target::Cluster(c) => format!("cluster {c}"),
            Target::Workgroup(w) => format!("Serverless workgroup {w}"),
        }
    }

    /// The API action that issues the credentials.
    pub fn action(&self) -> &'static str {
        match &self.target {
            Target::Cluster(_) => "redshift:GetClusterCredentials",
            Target::Workgroup(_) => "redshift-serverless:GetCredentials",
        }
    }
}

/// Temporary database credentials.
#[derive(Clone)]
pub struct Issued {
    /// The user to log in as (`IAM:alice` on a provisioned cluster).
    pub user: String,
    /// The temporary password.
    pub password: String,
    /// When it stops working.
    pub expires: SystemTime,
}

/// IAM authentication for one endpoint: the settings, where the API is, and the credentials
/// last issued.
pub struct IamAuth {
    /// What the URL asked for.
    pub settings: IamSettings,
    region: String,
    issued: tokio::sync::Mutex<Option<Issued>>,
}

impl std::fmt::Debug for IamAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IamAuth({})", self.settings.describe())
    }
}

impl IamAuth {
    /// `default_region`: the staging bucket's, when neither the URL nor the host name one.
    pub fn new(settings: IamSettings, default_region: &str) -> IamAuth {
        IamAuth {
            region: settings
                .region
                .clone()
                .unwrap_or_else(|| default_region.to_string()),
            settings,
            issued: Default::default(),
        }
    }

    /// Credentials valid for at least another minute: the last ones, or new ones.
    pub async fn credentials(&self) -> Result<Issued, IamError> {
        let mut issued = self.issued.lock().await;
        if let Some(i) = issued.as_ref()
            && i.expires > SystemTime::now() + Duration::from_secs(60)
        {
            return Ok(i.clone());
        }
        let fresh = self.fetch().await?;
        *issued = Some(fresh.clone());
        Ok(fresh)
    }

    async fn fetch(&self) -> Result<Issued, IamError> {
        // An API that does not answer must not hold the job: 30 s, then a failure that may
        // pass next time.
        match tokio::time::timeout(Duration::from_secs(30), self.call()).await {
            Ok(r) => r,
            Err(_) => Err(IamError::Unreachable(format!(
                "the Redshift API ({}, region {}) did not answer within 30 s",
                self.settings.action(),
                self.region
            ))),
        }
    }

    async fn call(&self) -> Result<Issued, IamError> {
        // The API's endpoint is AWS's, unless AWS_ENDPOINT_URL_REDSHIFT (or
        // AWS_ENDPOINT_URL_REDSHIFT_SERVERLESS, or AWS_ENDPOINT_URL) names another, as for
        // every AWS SDK.
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(self.region.clone()))
            .load()
            .await;
        let s = &self.settings;
        let (user, password, expiration) = match &s.target {
            Target::Cluster(cluster) => {
                let out = aws_sdk_redshift::Client::new(&shared)
                    .get_cluster_credentials()
                    .cluster_identifier(cluster)
                    .db_user(&s.user)
                    .db_name(&s.database)
                    .auto_create(s.auto_create)
                    .set_db_groups((!s.db_groups.is_empty()).then(|| s.db_groups.clone()))
                    .duration_seconds(s.duration)
                    .send()
                    .await
                    .map_err(|e| self.error(e))?;
                (out.db_user, out.db_password, out.expiration)
            }
            Target::Workgroup(workgroup) => {
                let out = aws_sdk_redshiftserverless::Client::new(&shared)
                    .get_credentials()
                    .workgroup_name(workgroup)
                    .db_name(&s.database)
                    .duration_seconds(s.duration)
                    .send()
                    .await
                    .map_err(|e| self.error(e))?;
                (out.db_user, out.db_password, out.expiration)
            }
        };
        match (user, password) {
            (Some(user), Some(password)) => Ok(Issued {
                user,
                password,
                expires: expiration
                    .and_then(|t| SystemTime::try_from(t).ok())
                    .unwrap_or_else(|| SystemTime::now() + Duration::from_secs(s.duration as u64)),
            }),
            _ => Err(IamError::Refused(format!(
                "{} answered without a user or password",
                s.action()
            ))),
        }
    }

    /// An API failure, as one line: the call, the service's answer, and what only this error
    /// can tell (the caller adds how to fix the settings).
    fn error<E>(
        &self,
        e: aws_sdk_redshift::error::SdkError<E, aws_sdk_redshift::config::http::HttpResponse>,
    ) -> IamError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let action = self.settings.action();
        let region = &self.region;
        let status = match &e {
            aws_sdk_redshift::error::SdkError::ServiceError(se) => Some(se.raw().status().as_u16()),
            aws_sdk_redshift::error::SdkError::ResponseError(re) => {
                Some(re.raw().status().as_u16())
            }
            _ => None,
        };
        match (e.code(), e.message()) {
            // Throttled, or the service failed: may pass next time.
            (Some(code), message)
                if code.contains("Throttl")
                    || code.contains("InternalServer")
                    || code.contains("ServiceUnavailable")
                    || status.is_some_and(|s| s >= 500) =>
            {
                let message = message.map(|m| format!(": {m}")).unwrap_or_default();
                IamError::Unreachable(format!(
                    "{action} in region {region} failed for now ({code}{message}); try again"
                ))
            }
            (Some(code), message) => {
                let message = message.map(|m| format!(": {m}")).unwrap_or_default();
                IamError::Refused(format!(
                    "{action} in region {region} failed ({code}{message})"
                ))
            }
            // An answer the SDK could not read: its HTTP status says enough.
            (None, _) if status.is_some_and(|s| (400..500).contains(&s)) => {
                let s = status.unwrap_or_default();
                IamError::Refused(format!(
                    "{action} in region {region} was refused (HTTP {s}{})",
                    if s == 403 { ": access denied" } else { "" }
                ))
            }
            (None, _) if status.is_some() => IamError::Unreachable(format!(
                "{action} in region {region} failed for now (HTTP {}); try again",
                status.unwrap_or_default()
            )),
            (None, _) => {
                let chain = mirage_core::display::error_chain(&e);
                if chain.contains("no credentials") || chain.contains("credentials in chain") {
                    IamError::Refused(format!(
                        "iam=true needs AWS credentials to call {action} and none were found \
                         (environment, AWS_PROFILE, SSO, web identity, container or instance role)"
                    ))
                } else {
                    IamError::Unreachable(format!(
                        "the Redshift API ({action}, region {region}) did not answer: {}",
                        chain.lines().next().unwrap_or_default()
                    ))
                }
            }
        }
    }
}

/// Why no credentials were issued.
#[derive(Debug, Clone)]
pub enum IamError {
    /// The API answered no (or the setup is incomplete): a setting to fix.
    Refused(String),
    /// The API could not be reached: may work next time.
    Unreachable(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(url: &str) -> Result<(String, Option<IamSettings>), ConnectorError> {
        IamSettings::take("source", url)
    }

    #[test]
    fn the_cluster_and_region_come_from_the_host() {
        let (url, s) = take(
            "redshift://alice@examplecluster.abc123xyz789.us-west-2.redshift.amazonaws.com:5439/dev?iam=true&sslmode=verify-full",
        )
        .unwrap();
        let s = s.unwrap();
        assert_eq!(s.target, Target::Cluster("examplecluster".into()));
        assert_eq!(s.region.as_deref(), Some("us-west-2"));
        assert_eq!(s.user, "alice");
        assert_eq!(s.database, "dev");
        assert_eq!(s.duration, 900);
        assert!(!url.contains("iam"));
        assert!(url.ends_with("?sslmode=verify-full"));
        let (_, s) = take(
            "redshift://bob@wg1.123456789012.eu-west-1.redshift-serverless.amazonaws.com/dev?iam=1",
        )
        .unwrap();
        assert_eq!(s.unwrap().target, Target::Workgroup("wg1".into()));
    }

    #[test]
    fn explicit_settings_and_refusals() {
        let (_, s) = take(
            "redshift://alice@127.0.0.1:5439/dev?iam=true&cluster_id=c1&region=eu-central-1&auto_create=true&db_groups=a,%20b&duration=3600",
        )
        .unwrap();
        let s = s.unwrap();
        assert_eq!(s.target, Target::Cluster("c1".into()));
        assert_eq!(s.db_groups, vec!["a", "b"]);
        assert!(s.auto_create);
        assert_eq!(s.duration, 3600);
        let no_iam = take("redshift://alice@h/dev?cluster_id=c1").unwrap_err();
        assert!(no_iam.to_string().contains("add iam=true"), "{no_iam}");
        let no_target = take("redshift://alice@127.0.0.1/dev?iam=true").unwrap_err();
        assert!(no_target.to_string().contains("cluster_id="), "{no_target}");
        for bad in [
            "redshift://alice@h/dev?iam=true&cluster_id=c1&workgroup=w",
            "redshift://alice@h/dev?iam=true&cluster_id=c1&duration=60",
            "redshift://alice@h/dev?iam=yes&cluster_id=c1",
            "redshift://alice@h/dev?iam=true&cluster_id=a/b",
            "redshift://alice@h/dev?iam=true&workgroup=w&auto_create=true",
            "redshift://h/dev?iam=true&cluster_id=c1",
            // Names that would widen the policy `mirage policy` prints, or break its ARNs.
            "redshift://*@h/dev?iam=true&cluster_id=c1",
            "redshift://alice@h/*?iam=true&cluster_id=c1",
            "redshift://adm%3F%3F@h/dev?iam=true&cluster_id=c1",
            "redshift://a%0Ab@h/dev?iam=true&cluster_id=c1",
            "redshift://alice@h/dev?iam=true&cluster_id=c1&db_groups=*",
            "redshift://alice@h/dev?iam=true&cluster_id=C1",
            "redshift://alice@h/dev?iam=true&cluster_id=",
            "redshift://alice@h/dev?iam=true&cluster_id=c1&region=",
            "redshift://alice@h/dev?iam=false&iam=true&cluster_id=c1",
            "redshift://alice@h/dev?iam=true&cluster_id=nope&cluster_id=c1",
        ] {
            assert!(take(bad).is_err(), "{bad}");
        }
        assert!(
            take("redshift://alice@h/dev?sslmode=disable")
                .unwrap()
                .1
                .is_none()
        );
    }

    /// Redshift Serverless `GetCredentials`: moto has no Redshift Serverless API, so this
    /// answers the one call on a local socket, as the service's JSON protocol does, and checks
    /// what mirage asked.
    #[tokio::test]
    async fn serverless_get_credentials() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = s.read(&mut buf).await.unwrap();
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        break;
                    }
                }
            }
            let body = br#"{"dbUser":"IAMR:loader","dbPassword":"temporary-secret","expiration":4102444800}"#;
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            s.write_all(response.as_bytes()).await.unwrap();
            s.write_all(body).await.unwrap();
            String::from_utf8_lossy(&request).to_string()
        });
        let (_, settings) = take(
            "redshift://loader@wg1.123456789012.eu-west-1.redshift-serverless.amazonaws.com:5439/dev?iam=true&duration=1200",
        )
        .unwrap();
        // SAFETY: this test is the only one of the crate that reads these variables.
        unsafe {
            std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
            std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
            std::env::set_var("AWS_ENDPOINT_URL_REDSHIFT_SERVERLESS", &endpoint);
        }
        let auth = IamAuth::new(settings.unwrap(), "us-east-1");
        let issued = auth.credentials().await.unwrap();
        assert_eq!(issued.user, "IAMR:loader");
        assert_eq!(issued.password, "temporary-secret");
        // Asked again, the same credentials (they last until 2100): no second call.
        assert_eq!(
            auth.credentials().await.unwrap().password,
            "temporary-secret"
        );
        let request = server.await.unwrap();
        assert!(
            request.contains("RedshiftServerless.GetCredentials"),
            "{request}"
        );
        assert!(
            request.contains("/eu-west-1/redshift-serverless/"),
            "{request}"
        );
        let body = request.split_once("\r\n\r\n").unwrap().1;
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["workgroupName"], "wg1");
        assert_eq!(body["dbName"], "dev");
        assert_eq!(body["durationSeconds"], 1200);
    }
}
