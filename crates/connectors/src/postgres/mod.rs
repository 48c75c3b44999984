//! PostgreSQL: the source reads every table under one exported snapshot with `COPY … TO STDOUT`;
//! the destination recreates the schema with `pg_restore` (pre-data before the rows, post-data —
//! indexes, constraints, triggers — after) and loads each table with `COPY … FROM STDIN` inside
//! one transaction, so a table is either fully loaded or not at all.

pub mod catalog;
pub mod credentials;
mod schema;
pub mod tls;

pub use schema::PgSchema;
pub(crate) use schema::client_tools_check;

use crate::check::{CheckContext, Checks, Dialect, SourceFacts};
use crate::registry::{AnySource, Connector, Ends, Role, boxed_source, ends};
use crate::{
    Aborted, ConnectorError, Destination, DestinationLock, Extract, Format, JobTag, LoadStats,
    PartStream, Result, SchemaOptions, Source, redact,
};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use futures_util::{SinkExt, StreamExt};
use mirage_core::schema::{Catalog, MAX_CATEGORIES, QUANTILES, QualifiedName, Table, quote_ident};
use mirage_core::workspace::Workspace;
use mirage_core::workspace::{ConnectionConfig, SchemaFilter};
use mirage_core::{ColumnStats, StatsKind};
use std::str::FromStr;
use tokio_postgres::{Client, NoTls};

/// Wrap a driver error with what was being done, redacting any value in the message.
pub(crate) fn db_error(what: &str) -> impl FnOnce(tokio_postgres::Error) -> ConnectorError + '_ {
    move |e| ConnectorError::Database {
        what: what.to_string(),
        detail: describe(&e),
    }
}

/// A driver error as text without row values. The driver's own errors name their cause
/// separately ("invalid configuration" ← "password missing"): it is added.
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => describe_db(db),
        None => {
            let mut text = e.to_string();
            if let Some(cause) = std::error::Error::source(e).map(|c| c.to_string())
                && !text.contains(&cause)
            {
                text = format!("{text}: {cause}");
            }
            redact(&text)
        }
    }
}

/// A server error without row values. The server's own messages of the classes below are
/// fixed templates that quote values (removed by [`redact`]) or none. Text raised by code in
/// the database — a function, trigger or check written by users (`RAISE`, PL/Python …) — is
/// free text that may hold any value: it is never shown; the SQLSTATE and the object names the
/// server reports are.
fn describe_db(db: &tokio_postgres::error::DbError) -> String {
    const TEMPLATE_CLASSES: &[&str] = &[
        "08", "0A", "22", "23", "25", "28", "2B", "3D", "3F", "40", "42", "53", "54", "55", "57",
        // Redshift reports COPY, UNLOAD and most of its own errors as XX000.
        "XX",
    ];
    let code = db.code().code();
    let in_function = db
        .where_()
        .is_some_and(|w| w.contains("function ") || w.contains("trigger"));
    let raised = db.routine().is_some_and(|r| {
        r.starts_with("exec_stmt_raise") || r.starts_with("PLy") || r.contains("plperl")
    });
    let templated = TEMPLATE_CLASSES.contains(&code.get(..2).unwrap_or(""));
    if templated && !in_function && !raised {
        return format!("{} ({code})", redact(db.message()));
    }
    let objects: Vec<String> = [
        ("schema", db.schema()),
        ("table", db.table()),
        ("column", db.column()),
        ("constraint", db.constraint()),
        ("type", db.datatype()),
    ]
    .iter()
    .filter_map(|(what, name)| {
        name.map(|n| format!("{what} {}", mirage_core::display::printable(n)))
    })
    .collect();
    format!(
        "the server reported an error{} (SQLSTATE {code}{}); its message is not shown because it \
         may hold values — look it up in the server's log if needed",
        if in_function || raised {
            " raised by code in the database (a function, trigger or check)"
        } else {
            ""
        },
        if objects.is_empty() {
            String::new()
        } else {
            format!(", {}", objects.join(", "))
        }
    )
}

/// The `postgres://` connector.
pub struct PostgresConnector;

impl PostgresConnector {
    fn endpoint(ws: &Workspace, role: Role) -> Result<PgEndpoint> {
        PgEndpoint::new(role.as_str(), role.connection(ws))
    }
}

impl Connector for PostgresConnector {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn accepts(&self, url: &str) -> bool {
        url.starts_with("postgres://") || url.starts_with("postgresql://")
    }

    fn example(&self) -> &'static str {
        "postgres://user@host:5432/database"
    }

    fn source_checks<'a>(
        &'a self,
        ws: &'a Workspace,
        out: &'a mut Checks,
    ) -> BoxFuture<'a, SourceFacts> {
        crate::check::sql_source(ws, Dialect::Postgres, Self::endpoint(ws, Role::Source), out)
            .boxed()
    }

    fn destination_checks<'a>(
        &'a self,
        ws: &'a Workspace,
        ctx: &'a CheckContext,
        out: &'a mut Checks,
    ) -> BoxFuture<'a, ()> {
        async move {
            let ep = Self::endpoint(ws, Role::Destination);
            let client = crate::check::sql_destination(ws, Dialect::Postgres, ep, ctx, out).await;
            if let Some(c) = client {
                schema::preserved_checks(&c, &ctx.preserved, out).await;
            }
        }
        .boxed()
    }

    fn open_source<'a>(&'a self, ws: &'a Workspace) -> BoxFuture<'a, Result<Box<dyn AnySource>>> {
        async move {
            Ok(boxed_source(
                PgSource::open(Self::endpoint(ws, Role::Source)?).await?,
            ))
        }
        .boxed()
    }

    fn open_job<'a>(&'a self, ws: &'a Workspace, _job_id: &'a str) -> BoxFuture<'a, Result<Ends>> {
        async move {
            Ok(ends(
                PgSource::open(Self::endpoint(ws, Role::Source)?).await?,
                PgDestination::new(Self::endpoint(ws, Role::Destination)?),
            ))
        }
        .boxed()
    }
}

/// The advisory lock a job holds on its destination database: ("mi", "rage").
const LOCK_KEY_1: i32 = 0x6d69;
const LOCK_KEY_2: i32 = 0x7261_6765;

/// A PostgreSQL server and database, with credentials.
#[derive(Clone)]
pub struct PgEndpoint {
    /// `source` or `destination`, for messages.
    pub role: &'static str,
    config: tokio_postgres::Config,
    /// The URL as configured, for tools (`pg_dump`) and messages; holds no password from the env.
    url: String,
    password: Option<String>,
    /// The environment variable the password is read from, for messages.
    password_env: String,
    /// TLS, as the URL's `sslmode`, `sslrootcert`, `sslcert`, `sslkey` say.
    tls: tls::TlsSettings,
    /// Whether its connections are encrypted, known once one is open.
    encrypted: std::sync::Arc<std::sync::OnceLock<bool>>,
    /// Redshift IAM authentication: each connection logs in with temporary credentials.
    iam: Option<std::sync::Arc<crate::redshift::iam::IamAuth>>,
}

/// `url` without its query parameter `key`, and that parameter's value.
pub(crate) fn take_param(url: &str, key: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), None);
    };
    let mut value = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| match p.split_once('=') {
            Some((k, v)) if k == key => {
                value = Some(v.to_string());
                false
            }
            _ => true,
        })
        .collect();
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (url, value)
}

impl std::fmt::Debug for PgEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgEndpoint({})", self.display())
    }
}

impl PgEndpoint {
    /// `role` is "source" or "destination", used in messages.
    pub fn new(role: &'static str, conn: &ConnectionConfig) -> Result<PgEndpoint> {
        // libpq's default: TLS when the server offers it.
        Self::with_tls_default(role, conn, tls::SslMode::Prefer)
    }

    fn with_tls_default(
        role: &'static str,
        conn: &ConnectionConfig,
        default: tls::SslMode,
    ) -> Result<PgEndpoint> {
        // A connection service (`service=` in the URL, or $PGSERVICE): its settings fill in what
        // the URL leaves out.
        let (url, service_name) = take_param(&conn.url, "service");
        let service_name = service_name.or_else(|| std::env::var("PGSERVICE").ok());
        let service = match &service_name {
            None => None,
            Some(name) => Some(credentials::service(name).ok_or_else(|| {
                let missing = credentials::missing_service_file()
                    .map(|f| format!(" ($PGSERVICEFILE names {}, which does not exist)", f.display()))
                    .unwrap_or_default();
                ConnectorError::Invalid(format!(
                    "{role}.url: connection service {name} is in no service file ($PGSERVICEFILE or \
                     ~/.pg_service.conf, then $PGSYSCONFDIR/pg_service.conf){missing}"
                ))
            })?),
        };
        let mut url = url;
        if let Some((_, settings)) = &service {
            for key in ["sslmode", "sslrootcert", "sslcert", "sslkey"] {
                if let Some(v) = settings.get(key)
                    && !url.contains(&format!("{key}="))
                {
                    url.push(if url.contains('?') { '&' } else { '?' });
                    url.push_str(&format!("{key}={v}"));
                }
            }
        }
        let (driver_url, tls) = tls::split(&url, role, default)?;
        let mut config = tokio_postgres::Config::from_str(&driver_url).map_err(|e| {
            // Name a query parameter the driver does not know, when that is the reason.
            const KNOWN: &[&str] = &[
                "user", "password", "dbname", "options", "application_name", "sslnegotiation",
                "host", "hostaddr", "port", "connect_timeout", "tcp_user_timeout", "keepalives",
                "keepalives_idle", "keepalives_interval", "keepalives_retries",
                "target_session_attrs", "channel_binding", "load_balance_hosts", "replication",
            ];
            let unknown = driver_url.split_once('?').and_then(|(_, q)| {
                q.split('&')
                    .map(|p| mirage_core::display::percent_decode(p.split('=').next().unwrap_or("")))
                    .find(|k| !k.is_empty() && !KNOWN.contains(&k.as_str()))
            });
            match unknown {
                Some(k) => ConnectorError::Invalid(format!(
                    "{role}.url: parameter {} is not one mirage reads (TLS: sslmode, sslrootcert, \
                     sslcert, sslkey; service; and libpq's host, port, dbname, user, options, \
                     application_name, connect_timeout, keepalives…)",
                    mirage_core::display::printable(&k)
                )),
                None => ConnectorError::Invalid(format!(
                    "{role}.url is not a PostgreSQL URL ({e}); write postgres://user@host:5432/database"
                )),
            }
        })?;
        // A password in the URL would sit in the workspace file and on pg_dump's command line
        // (readable by every user of the machine in /proc/<pid>/cmdline).
        if config.get_password().is_some() {
            return Err(ConnectorError::Invalid(format!(
                "{role}.url holds a password: remove it from the URL (user@host, no :password) and \
                 export {}=… instead (or set {role}.password_env to the variable that holds it)",
                conn.password_env
            )));
        }
        if let Some((_, settings)) = &service {
            if config.get_hosts().is_empty()
                && let Some(h) = settings.get("host")
            {
                config.host(h);
            }
            if config.get_ports().is_empty()
                && let Some(p) = settings.get("port").and_then(|p| p.parse().ok())
            {
                config.port(p);
            }
            if config.get_dbname().is_none()
                && let Some(d) = settings.get("dbname")
            {
                config.dbname(d);
            }
            if config.get_user().is_none()
                && let Some(u) = settings.get("user")
            {
                config.user(u);
            }
        }
        // The password, in libpq's order after the workspace's own variable: the service's,
        // $PGPASSWORD, then the password file.
        let password = conn
            .password()
            .or_else(|| {
                service
                    .as_ref()
                    .and_then(|(_, s)| s.get("password").cloned())
            })
            .or_else(|| std::env::var("PGPASSWORD").ok().filter(|p| !p.is_empty()))
            .or_else(|| {
                let host = match config.get_hosts().first() {
                    Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
                    _ => "localhost".to_string(),
                };
                let port = config.get_ports().first().copied().unwrap_or(5432);
                let user = config.get_user().unwrap_or_default();
                let db = config.get_dbname().unwrap_or(user);
                credentials::passfile()
                    .and_then(|f| credentials::from_passfile(&f, &host, port, db, user))
            });
        if let Some(p) = &password {
            config.password(p);
        }
        if config.get_dbname().is_none() {
            return Err(ConnectorError::Invalid(format!(
                "{role}.url names no database; write postgres://user@host:5432/database"
            )));
        }
        config.application_name("mirage");
        // libpq never uses TLS over a Unix socket.
        let mut tls = tls;
        if !config.get_hosts().is_empty()
            && config
                .get_hosts()
                .iter()
                .all(|h| matches!(h, tokio_postgres::config::Host::Unix(_)))
        {
            tls.mode = tls::SslMode::Disable;
        }
        config.ssl_mode(tls.driver_mode());
        Ok(PgEndpoint {
            role,
            config,
            url: driver_url,
            password,
            password_env: conn.password_env.clone(),
            tls,
            encrypted: Default::default(),
            iam: None,
        })
    }

    /// A Redshift endpoint: `redshift://user@host[:5439]/database[?sslmode=…]`. TLS with the
    /// certificate checked against the system's roots (`verify-full`) unless the URL says
    /// otherwise (the local emulator speaks plain TCP: `sslmode=disable`). With `iam=true`, each
    /// connection logs in with temporary credentials from the Redshift API, called in the
    /// staging block's region (unless the URL or host names one) and at its `endpoint` if set.
    pub fn redshift(
        role: &'static str,
        conn: &ConnectionConfig,
        staging: Option<&mirage_core::workspace::StagingConfig>,
    ) -> Result<PgEndpoint> {
        let rest = conn.url.strip_prefix("redshift://").ok_or_else(|| {
            ConnectorError::Invalid(format!(
                "{role}.url: write redshift://user@cluster.xxxx.region.redshift.amazonaws.com:5439/database"
            ))
        })?;
        let (rest, iam) = crate::redshift::iam::IamSettings::take(role, rest)?;
        let mut c = conn.clone();
        c.url = format!("postgresql://{rest}");
        let mut ep = PgEndpoint::with_tls_default(role, &c, tls::SslMode::VerifyFull).map_err(
            |e| match e {
                // The reason, in Redshift's words.
                ConnectorError::Invalid(m) if !m.contains("is not a PostgreSQL URL") => {
                    ConnectorError::Invalid(
                        m.replace(
                            "postgres://user@host:5432/database",
                            "redshift://user@host:5439/database",
                        )
                        .replace("postgres://user@host", "redshift://user@host"),
                    )
                }
                _ => ConnectorError::Invalid(format!(
                    "{role}.url is not a Redshift URL; write redshift://user@host:5439/database"
                )),
            },
        )?;
        ep.url = conn.url.clone();
        let host = rest.split('/').next().unwrap_or("");
        if !host.rsplit('@').next().unwrap_or(host).contains(':') {
            ep.config.port(5439);
        }
        if let Some(settings) = iam {
            let region = staging.map_or("us-east-1", |s| s.region.as_str());
            ep.iam = Some(std::sync::Arc::new(crate::redshift::iam::IamAuth::new(
                settings, region,
            )));
        }
        Ok(ep)
    }

    /// IAM authentication settings, when the endpoint uses it.
    pub fn iam(&self) -> Option<&crate::redshift::iam::IamSettings> {
        self.iam.as_ref().map(|i| &i.settings)
    }

    /// `user@host:port/db`, never a password.
    pub fn display(&self) -> String {
        let host = self
            .config
            .get_hosts()
            .first()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(s) => s.clone(),
                tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
            })
            .unwrap_or_else(|| "localhost".into());
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        format!(
            "{}@{}:{}/{}",
            self.config.get_user().unwrap_or("?"),
            host,
            port,
            self.config.get_dbname().unwrap_or("?")
        )
    }

    /// Open a connection; its driver task runs in the background until the client is dropped.
    pub async fn connect(&self) -> Result<Client> {
        let failed = |e: tokio_postgres::Error| {
            let detail = self.connect_failure(&e);
            // The server answered when it refused TLS or showed a certificate the settings
            // refuse: settings to fix, as a refused login.
            let tls_refused = [
                "does not support TLS",
                "certificate",
                "no encryption",
                "UnknownCA",
                "BadCertificate",
            ]
            .iter()
            .any(|t| detail.contains(t));
            ConnectorError::Connect {
                role: self.role,
                endpoint: self.display(),
                detail,
                answered: e.as_db_error().is_some() || self.password_missing(&e) || tls_refused,
            }
        };
        let iam_config;
        let config = match &self.iam {
            None => &self.config,
            Some(iam) => {
                use crate::redshift::iam::IamError;
                let issued = iam.credentials().await.map_err(|e| {
                    let (detail, answered) = match e {
                        IamError::Refused(d) => (d, true),
                        IamError::Unreachable(d) => (d, false),
                    };
                    ConnectorError::Connect {
                        role: self.role,
                        endpoint: self.display(),
                        detail,
                        answered,
                    }
                })?;
                let mut c = self.config.clone();
                c.user(&issued.user);
                c.password(&issued.password);
                iam_config = c;
                &iam_config
            }
        };
        let client = if self.tls.mode != tls::SslMode::Disable {
            let connector = self.tls.connector(self.role)?;
            let (client, connection) = config.connect(connector).await.map_err(failed)?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %describe(&e), "connection closed");
                }
            });
            client
        } else {
            let (client, connection) = config.connect(NoTls).await.map_err(failed)?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %describe(&e), "connection closed");
                }
            });
            client
        };
        if self.encrypted.get().is_none() {
            // Redshift (and the emulator, which answers for its own server) has no
            // pg_stat_ssl: there, TLS is on unless the URL turned it off.
            let tls = if self.url.starts_with("redshift://") {
                self.tls.mode != tls::SslMode::Disable
            } else {
                client
                    .query_opt(
                        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                        &[],
                    )
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|r| r.get::<_, bool>(0))
            };
            let _ = self.encrypted.set(tls);
        }
        Ok(client)
    }

    /// Whether the connections are encrypted (TLS), once one was opened.
    pub fn encrypted(&self) -> Option<bool> {
        self.encrypted.get().copied()
    }

    /// Why a connection failed. The driver says "password missing" when the server asks for a
    /// password and none was given: name the variable that holds it.
    /// The server asked for a password and none is set.
    fn password_missing(&self, e: &tokio_postgres::Error) -> bool {
        self.iam.is_none()
            && self.config.get_password().is_none()
            && e.as_db_error().is_none()
            && describe(e).ends_with("password missing")
    }

    fn connect_failure(&self, e: &tokio_postgres::Error) -> String {
        let detail = describe(e);
        if detail.contains("NotValidForName") || detail.contains("certificate not valid for name") {
            return format!(
                "{detail}: the server's certificate does not name the host in {}.url; connect \
                 with a host name the certificate names, or use sslmode=verify-ca",
                self.role
            );
        }
        if detail.contains("invalid peer certificate") {
            return format!(
                "{detail}: the server's certificate is not trusted; give the CA that signed it \
                 as sslrootcert=<PEM file> in {}.url",
                self.role
            );
        }
        if detail.contains("server does not support TLS") {
            return format!(
                "{detail}: this server does not offer TLS; use sslmode=prefer or disable in \
                 {}.url, or turn ssl on in the server",
                self.role
            );
        }
        if detail.contains("UnknownCA") || detail.contains("BadCertificate") {
            return format!(
                "{detail}: the server refused the client certificate (sslcert in {}.url): it must \
                 be signed by a CA the server trusts (its ssl_ca_file)",
                self.role
            );
        }
        if detail.contains("no encryption") {
            return format!(
                "{detail}: the server accepts only TLS connections: use sslmode=require (or \
                 verify-ca/verify-full) in {}.url",
                self.role
            );
        }
        if detail.contains("valid client certificate") {
            return format!(
                "{detail}: give sslcert=<PEM> and sslkey=<PEM> in {}.url",
                self.role
            );
        }
        if self.password_missing(e) {
            let skipped = credentials::skipped_passfile()
                .map(|f| {
                    format!(
                        "; the password file {} was skipped because others can read it (chmod 0600 it)",
                        f.display()
                    )
                })
                .unwrap_or_default();
            return format!(
                "the server asks for a password and none was found: set ${} to the {} user's \
                 password (PGPASSWORD, a connection service's password and the password file \
                 ~/.pgpass or $PGPASSFILE are read too){skipped}",
                self.password_env, self.role
            );
        }
        detail
    }

    /// Ask the server to cancel the statement running on the connection `token` came from.
    pub async fn cancel(&self, token: tokio_postgres::CancelToken) {
        let r = if self.tls.mode != tls::SslMode::Disable {
            match self.tls.connector(self.role) {
                Ok(t) => token.cancel_query(t).await,
                Err(_) => return,
            }
        } else {
            token.cancel_query(NoTls).await
        };
        if let Err(e) = r {
            tracing::debug!(error = %describe(&e), "cancel request failed");
        }
    }

    /// A command for a libpq tool (`pg_dump`, `pg_restore`) aimed at this database: the
    /// connection mirage resolved and checked, spelled out in [`PgEndpoint::conninfo`] for
    /// `--dbname` (no secret in it), the password in `PGPASSWORD`. Variables that could point the
    /// tool elsewhere (a service, other TLS files) are removed.
    pub(crate) fn tool(&self, program: &str) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(program);
        for v in [
            "PGSERVICE",
            "PGSERVICEFILE",
            "PGHOST",
            "PGHOSTADDR",
            "PGPORT",
            "PGDATABASE",
            "PGUSER",
            "PGSSLMODE",
            "PGSSLROOTCERT",
            "PGSSLCERT",
            "PGSSLKEY",
            "PGREQUIRESSL",
            "PGPASSFILE",
        ] {
            cmd.env_remove(v);
        }
        match &self.password {
            Some(p) => cmd.env("PGPASSWORD", p),
            None => cmd.env_remove("PGPASSWORD"),
        };
        cmd.kill_on_drop(true);
        cmd
    }

    /// The connection as a libpq conninfo string: host(s), port(s), database, user, TLS
    /// settings, application name — what mirage connected with, and nothing else.
    pub(crate) fn conninfo(&self) -> String {
        fn quote(v: &str) -> String {
            format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
        }
        let hosts: Vec<String> = self
            .config
            .get_hosts()
            .iter()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(s) => s.clone(),
                tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
            })
            .collect();
        let mut parts = Vec::new();
        if !hosts.is_empty() {
            parts.push(format!("host={}", quote(&hosts.join(","))));
        }
        let ports: Vec<String> = self.config.get_ports().iter().map(u16::to_string).collect();
        if !ports.is_empty() {
            parts.push(format!("port={}", quote(&ports.join(","))));
        }
        if let Some(d) = self.config.get_dbname() {
            parts.push(format!("dbname={}", quote(d)));
        }
        if let Some(u) = self.config.get_user() {
            parts.push(format!("user={}", quote(u)));
        }
        parts.push("application_name='mirage'".into());
        for (k, v) in self.tls.libpq() {
            parts.push(format!("{k}={}", quote(&v)));
        }
        parts.join(" ")
    }
}

/// Identify a server + database, to refuse copying a database onto itself (the checks compare
/// the same text).
pub(crate) async fn identity(client: &Client) -> Result<String> {
    let row = client
        .query_one(
            "SELECT current_database(), pg_postmaster_start_time()::text, \
             coalesce(current_setting('port', true), ''), \
             coalesce(current_setting('cluster_name', true), '')",
            &[],
        )
        .await
        .map_err(db_error("identifying the server"))?;
    Ok(format!(
        "{}|{}|{}|{}",
        row.get::<_, String>(0),
        row.get::<_, String>(1),
        row.get::<_, String>(2),
        row.get::<_, String>(3)
    ))
}

/// Column list for SQL.
pub(crate) fn column_list(columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The PostgreSQL source. Holds a read-only repeatable-read transaction open for the whole job;
/// its exported snapshot is shared by every reader and by `pg_dump`.
pub struct PgSource {
    endpoint: PgEndpoint,
    main: Client,
    snapshot: String,
}

impl PgSource {
    /// Connect and open the snapshot every read shares.
    pub async fn open(endpoint: PgEndpoint) -> Result<PgSource> {
        let main = endpoint.connect().await?;
        main.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(db_error("starting the snapshot transaction"))?;
        let snapshot: String = main
            .query_one("SELECT pg_export_snapshot()", &[])
            .await
            .map_err(db_error("exporting the snapshot"))?
            .get(0);
        Ok(PgSource {
            endpoint,
            main,
            snapshot,
        })
    }

    /// Where it reads.
    pub fn endpoint(&self) -> &PgEndpoint {
        &self.endpoint
    }
}

impl Source for PgSource {
    type Schema = PgSchema;

    fn describe(&self) -> String {
        self.endpoint.display()
    }

    fn encrypted(&self) -> Option<bool> {
        self.endpoint.encrypted()
    }

    async fn identity(&self) -> Result<String> {
        identity(&self.main).await
    }

    fn format(&self) -> Format {
        Format::PgText
    }

    async fn catalog(&self, filter: &SchemaFilter) -> Result<Catalog> {
        catalog::read(&self.main, filter).await
    }

    async fn schema(&self, catalog: &Catalog) -> Result<PgSchema> {
        PgSchema::capture(&self.endpoint, &self.main, &self.snapshot, catalog).await
    }

    async fn column_stats(
        &self,
        table: &QualifiedName,
        column: &str,
        kind: StatsKind,
    ) -> Result<ColumnStats> {
        let what = format!("reading the values of {table}.{column}");
        let c = quote_ident(column);
        let t = table.quoted();
        match kind {
            StatsKind::Categories => {
                let rows = self
                    .main
                    .query(
                        &format!(
                            "SELECT {c}::text, count(*) FROM {t} WHERE {c} IS NOT NULL \
                             GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {}",
                            MAX_CATEGORIES + 1
                        ),
                        &[],
                    )
                    .await
                    .map_err(db_error(&what))?;
                if rows.len() > MAX_CATEGORIES {
                    return Err(crate::too_many_categories(table, column));
                }
                Ok(ColumnStats {
                    categories: rows
                        .iter()
                        .map(|r| (r.get(0), r.get::<_, i64>(1) as u64))
                        .collect(),
                    quantiles: Vec::new(),
                })
            }
            StatsKind::Quantiles => {
                let row = self
                    .main
                    .query_one(
                        &format!(
                            "SELECT (percentile_disc(ARRAY(SELECT g / {QUANTILES}.0 FROM generate_series(0, {QUANTILES}) g)::float8[]) \
                             WITHIN GROUP (ORDER BY {c}))::text[] FROM {t}"
                        ),
                        &[],
                    )
                    .await
                    .map_err(db_error(&what))?;
                let q: Option<Vec<Option<String>>> = row.get(0);
                Ok(ColumnStats {
                    categories: Vec::new(),
                    quantiles: q.unwrap_or_default().into_iter().flatten().collect(),
                })
            }
        }
    }

    async fn sample(
        &self,
        table: &Table,
        columns: &[String],
        limit: usize,
    ) -> Result<crate::sql::Sample> {
        // Pages spread over the table, about three times the rows asked for; small tables (or
        // never analyzed ones) are read from the start, still bounded by the limit.
        let percent = table
            .row_estimate
            .filter(|rows| *rows > (limit as u64).saturating_mul(4))
            .map(|rows| (300.0 * limit as f64 / rows as f64).clamp(0.0001, 100.0));
        // Every type has a text form; only its beginning is read.
        let capped = |c: &str| format!("left({c}::text, {})", crate::sql::SAMPLE_VALUE_CHARS);
        crate::sql::sample(&self.main, table, columns, limit, percent, capped).await
    }

    async fn read(&self, table: &Table, columns: &[String]) -> Result<Extract> {
        let client = self.endpoint.connect().await?;
        let what = format!("reading {}", table.name);
        client
            .batch_execute(&format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{}'",
                self.snapshot
            ))
            .await
            .map_err(db_error(&what))?;
        let sql = format!(
            "COPY {} ({}) TO STDOUT",
            table.name.quoted(),
            column_list(columns)
        );
        let stream = client.copy_out(&sql).await.map_err(db_error(&what))?;
        let stream = Box::pin(stream);
        // The client travels with the stream so the connection lives as long as the read.
        Ok(Extract::streamed(
            futures_util::stream::unfold(
                (client, stream, what),
                |(client, mut stream, what)| async move {
                    let item = stream.next().await?;
                    let item = item.map_err(|e| ConnectorError::Database {
                        what: what.clone(),
                        detail: describe(&e),
                    });
                    Some((item, (client, stream, what)))
                },
            )
            .boxed(),
        ))
    }
}

/// The PostgreSQL destination.
pub struct PgDestination {
    endpoint: PgEndpoint,
}

/// Schema holding preserved tables' rows while the destination schema is recreated.
pub(crate) const HOLD_SCHEMA: &str = "_mirage_preserve";

/// Name of a preserved table inside [`HOLD_SCHEMA`].
pub(crate) fn hold_name(table: &Table) -> String {
    format!("{}.{}", table.name.schema, table.name.name)
}

impl PgDestination {
    /// A destination at `endpoint` (connections open as needed).
    pub fn new(endpoint: PgEndpoint) -> PgDestination {
        PgDestination { endpoint }
    }

    /// Where it writes.
    pub fn endpoint(&self) -> &PgEndpoint {
        &self.endpoint
    }
}

impl Destination for PgDestination {
    type Schema = PgSchema;
    type Loader = ();

    fn describe(&self) -> String {
        self.endpoint.display()
    }

    fn encrypted(&self) -> Option<bool> {
        self.endpoint.encrypted()
    }

    async fn identity(&self) -> Result<String> {
        identity(&self.endpoint.connect().await?).await
    }

    async fn create_schema(&self, schema: &PgSchema, options: &SchemaOptions) -> Result<()> {
        schema.create(&self.endpoint, options).await
    }

    /// A session advisory lock of the database, held by a connection of its own named after
    /// the job (`application_name`), so a second job can say who holds it. The server frees it
    /// when that connection ends, a killed worker's included.
    async fn lock(&self, tag: &JobTag) -> Result<DestinationLock> {
        let client = self.endpoint.connect().await?;
        let what = "locking the destination for the job";
        let mut name = format!("mirage {}@{}:{}", tag.job, tag.host, tag.pid);
        while name.len() > 63 {
            name.pop();
        }
        client
            .execute("SELECT set_config('application_name', $1, false)", &[&name])
            .await
            .map_err(db_error(what))?;
        let got: bool = client
            .query_one(
                &format!("SELECT pg_try_advisory_lock({LOCK_KEY_1}, {LOCK_KEY_2})"),
                &[],
            )
            .await
            .map_err(db_error(what))?
            .get(0);
        if got {
            return Ok(Box::new(client));
        }
        let holder = client
            .query_opt(
                &format!(
                    "SELECT coalesce(nullif(a.application_name, ''), 'a session') || \
                     ' (server process ' || l.pid || coalesce(', since ' || \
                     date_trunc('second', a.backend_start)::text, '') || ')' \
                     FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid \
                     WHERE l.locktype = 'advisory' AND l.granted AND l.classid = {LOCK_KEY_1} \
                     AND l.objid = {LOCK_KEY_2} AND l.objsubid = 2 \
                     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                ),
                &[],
            )
            .await
            .ok()
            .flatten()
            .and_then(|r| r.get::<_, Option<String>>(0))
            .unwrap_or_else(|| "another mirage job".into());
        Err(ConnectorError::InUse {
            destination: self.describe(),
            holder: mirage_core::display::printable(&holder).into_owned(),
        })
    }

    async fn load(
        &self,
        _: &(),
        table: &Table,
        columns: &[String],
        mut parts: PartStream,
    ) -> Result<LoadStats> {
        let what = format!("loading {}", table.name);
        let client = self.endpoint.connect().await?;
        // The commit waits until the server has flushed it (synchronous_commit on, whatever
        // the server's default): a table reported loaded survives a crash of the destination.
        client
            .batch_execute("SET synchronous_commit = on; BEGIN")
            .await
            .map_err(db_error(&what))?;
        let sql = format!(
            "COPY {} ({}) FROM STDIN",
            table.name.quoted(),
            column_list(columns)
        );
        let sink = client
            .copy_in::<_, bytes::Bytes>(&sql)
            .await
            .map_err(db_error(&what))?;
        let mut sink = Box::pin(sink);
        while let Some(part) = parts.next().await {
            match part {
                Ok(bytes) => sink.send(bytes).await.map_err(db_error(&what))?,
                // Dropping the connection rolls the transaction back on the server.
                Err(Aborted) => return Err(ConnectorError::Aborted),
            }
        }
        let rows = sink.as_mut().finish().await.map_err(db_error(&what))?;
        client
            .batch_execute("COMMIT")
            .await
            .map_err(db_error(&what))?;
        Ok(LoadStats::rows(rows))
    }

    async fn restore_preserved(&self, _: &(), table: &Table) -> Result<u64> {
        let what = format!("restoring preserved rows of {}", table.name);
        let client = self.endpoint.connect().await?;
        let insert = schema::restore_sql(&client, table).await?;
        client
            .batch_execute("BEGIN")
            .await
            .map_err(db_error(&what))?;
        let rows = client
            .execute(&insert, &[])
            .await
            .map_err(db_error(&what))?;
        let hold = format!(
            "{}.{}",
            quote_ident(HOLD_SCHEMA),
            quote_ident(&hold_name(table))
        );
        client
            .batch_execute(&format!("DROP TABLE {hold}; COMMIT"))
            .await
            .map_err(db_error(&what))?;
        Ok(rows)
    }

    async fn finish_schema(
        &self,
        _: &(),
        schema: &PgSchema,
        options: &SchemaOptions,
    ) -> Result<Vec<String>> {
        schema.finish(&self.endpoint, options).await?;
        Ok(Vec::new())
    }
}
