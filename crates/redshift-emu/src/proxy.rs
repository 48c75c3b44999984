//! The wire proxy: clients speak to it as to Redshift; it relays their sessions to PostgreSQL 15
//! message by message, rewriting what Redshift spells differently ([`crate::sql::to_postgres`])
//! and running itself what PostgreSQL lacks — UNLOAD, COPY from S3, SHOW TABLE, Redshift's
//! CREATE TABLE, schema DROP/ALTER grants, DROP SCHEMA by a grantee — inside the client's own
//! PostgreSQL session, so privileges and transactions behave as they would on Redshift.
//!
//! Both query protocols work. In the extended protocol every message is relayed in lock step
//! (sent with `Flush`, its answers passed back), which lets the proxy answer the messages of
//! statements it runs itself in their place in the stream.

use crate::copy::{CopyFailure, LoadError, copy_from};
use crate::ddl::{self, ColumnDdl, TableDdl};
use crate::sql::{ViewStatement, keywords, split_statements, to_postgres, tokens, view_statement};
use crate::statement::{self, CopyFrom, Rejected, Statement, Unload};
use crate::wire::{Backend, Msg, WireError, build, read_msg, read_startup};
use bytes::{BufMut, BytesMut};
use object_store::ObjectStore;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// Where `s3://bucket/…` lives.
#[derive(Debug, Clone)]
pub enum Storage {
    /// A local folder; each bucket is a sub-folder that must exist.
    Folder(PathBuf),
    /// S3 at `endpoint` (moto, MinIO…) or AWS when `None`.
    S3 {
        /// The S3 API's base URL (`http://127.0.0.1:5000`), or `None` for AWS itself.
        endpoint: Option<String>,
        /// The region requests are signed for.
        region: String,
    },
}

impl Storage {
    /// The object store holding bucket `name` (for a folder, an error if it does not exist).
    pub fn bucket(&self, name: &str) -> Result<Arc<dyn ObjectStore>, Rejected> {
        match self {
            Storage::Folder(root) => {
                let dir = root.join(name);
                if !dir.is_dir() {
                    return Err(Rejected(format!(
                        "S3ServiceException:The specified bucket does not exist (bucket {name})"
                    )));
                }
                Ok(Arc::new(
                    object_store::local::LocalFileSystem::new_with_prefix(dir)
                        .map_err(Rejected::from)?,
                ))
            }
            Storage::S3 { endpoint, region } => Ok(Arc::new(crate::s3::bucket(
                name,
                endpoint.as_deref(),
                region,
            )?)),
        }
    }
}

/// How the emulator reaches PostgreSQL and S3.
#[derive(Debug, Clone)]
pub struct Config {
    /// `host:port` of a PostgreSQL 15 that trusts local connections.
    pub postgres: String,
    /// A superuser there (installs the catalog, records load errors).
    pub admin_user: String,
    /// Where UNLOAD writes and COPY reads `s3://` URLs.
    pub storage: Storage,
}

impl Config {
    /// PostgreSQL on this machine at `port` (superuser `postgres`, trust authentication), S3 at
    /// `s3_endpoint` (moto in tests), region us-east-1.
    pub fn local(port: u16, s3_endpoint: &str) -> Config {
        Config {
            postgres: format!("127.0.0.1:{port}"),
            admin_user: "postgres".into(),
            storage: Storage::S3 {
                endpoint: Some(s3_endpoint.to_string()),
                region: "us-east-1".into(),
            },
        }
    }
}

/// Create `database` in the PostgreSQL at `postgres` unless it exists.
pub async fn create_database(postgres: &str, admin: &str, database: &str) -> Result<(), WireError> {
    let mut b = Backend::connect(postgres, admin, "postgres").await?;
    let found = b
        .run(
            "SELECT 1 FROM pg_database WHERE datname = $1",
            &[Some(database)],
        )
        .await?;
    b.sync().await?;
    if found.rows.is_empty() {
        b.batch(&format!("CREATE DATABASE {}", quote_ident(database)))
            .await?;
    }
    Ok(())
}

/// Install the Redshift catalog into `template1` and every database.
pub async fn install(config: &Config) -> Result<(), WireError> {
    let mut admin = Backend::connect(&config.postgres, &config.admin_user, "postgres").await?;
    let dbs = admin
        .run(
            "SELECT datname::text FROM pg_database WHERE datallowconn ORDER BY datname",
            &[],
        )
        .await?;
    admin.sync().await?;
    drop(admin);
    for db in dbs.rows.into_iter().filter_map(|r| r[0].clone()) {
        let mut b = Backend::connect(&config.postgres, &config.admin_user, &db).await?;
        b.batch(crate::catalog::INSTALL).await?;
    }
    Ok(())
}

/// A running emulator.
pub struct Emulator {
    /// The address the proxy listens on (with the port chosen when asked for port 0).
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    logins: Arc<std::sync::Mutex<Vec<Login>>>,
}

/// A session that logged in with temporary IAM credentials (user `IAM:name` or `IAMA:name`
/// as `GetClusterCredentials` returns them, `IAMR:name` from Serverless `GetCredentials`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// The user name the client gave, prefix included.
    pub login: String,
    /// The database user the session runs as.
    pub user: String,
    /// The database it connected to.
    pub database: String,
}

impl Emulator {
    /// `host:port` clients connect to.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// The IAM logins so far.
    pub fn iam_logins(&self) -> Vec<Login> {
        self.logins.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Install the catalog, listen on `listen` (port 0 picks one) and serve until dropped.
pub async fn start(listen: &str, config: Config) -> Result<Emulator, WireError> {
    install(&config).await?;
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let config = Arc::new(config);
    let logins: Arc<std::sync::Mutex<Vec<Login>>> = Default::default();
    let log = logins.clone();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let config = config.clone();
            let log = log.clone();
            tokio::spawn(async move {
                if let Err(e) = serve(stream, config, log).await
                    && e.kind() != io::ErrorKind::UnexpectedEof
                {
                    eprintln!("redshift-emu: session ended: {e}");
                }
            });
        }
    });
    Ok(Emulator { addr, task, logins })
}

/// What the proxy does with a statement.
#[derive(Debug, Clone)]
enum Plan {
    /// Relay to PostgreSQL, rewritten.
    Pass(String),
    /// Run it here.
    Act(Action),
}

#[derive(Debug, Clone)]
enum Action {
    Unload(Box<Unload>),
    Copy(Box<CopyFrom>),
    ShowTable(String),
    /// `SHOW VIEW name`: the statement that recreates it.
    ShowView(String),
    /// `SHOW PROCEDURE name(types)`.
    ShowProcedure(String),
    /// A late-binding view: created, and remembered as one.
    LateBindingView(ViewStatement),
    /// `CREATE EXTERNAL SCHEMA`: a schema, remembered as external (no tables of its own here).
    ExternalSchema {
        name: String,
        if_not_exists: bool,
        database: String,
    },
    /// `CREATE DATASHARE name`: remembered.
    Datashare(String),
    CreateTable {
        pg: String,
        ddl: Box<TableDdl>,
    },
    SchemaGrant {
        native: Option<String>,
        schemas: Vec<String>,
        privileges: Vec<String>,
        grantees: Vec<String>,
        revoke: bool,
    },
    DropSchema {
        names: Vec<String>,
        if_exists: bool,
        cascade: bool,
    },
    Reject(String),
}

impl Action {
    /// The columns it returns (`None`: no rows).
    fn columns(&self) -> Option<&'static [&'static str]> {
        match self {
            Action::ShowTable(_) | Action::ShowView(_) | Action::ShowProcedure(_) => Some(&["ddl"]),
            _ => None,
        }
    }
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn quote_qualified(name: &str) -> String {
    name.split('.')
        .map(quote_ident)
        .collect::<Vec<_>>()
        .join(".")
}

fn plan(sql: &str) -> Plan {
    let head = keywords(sql, 4);
    let head: Vec<&str> = head.iter().map(String::as_str).collect();
    match head.as_slice() {
        ["UNLOAD", ..] | ["COPY", ..] => {
            return match statement::parse(sql) {
                Ok(Statement::Unload(u)) => Plan::Act(Action::Unload(u)),
                Ok(Statement::Copy(c)) => Plan::Act(Action::Copy(c)),
                Ok(Statement::Other) => Plan::Act(Action::Reject(
                    "COPY TO is not supported; use UNLOAD".into(),
                )),
                Err(e) => Plan::Act(Action::Reject(e.0)),
            };
        }
        ["SHOW", "TABLE", ..] => {
            let t = tokens(sql);
            let name: String = t[2..].concat().to_lowercase();
            return Plan::Act(Action::ShowTable(name));
        }
        ["SHOW", "VIEW", ..] => {
            let t = tokens(sql);
            let name: String = t[2..].concat().to_lowercase();
            return Plan::Act(Action::ShowView(name));
        }
        ["SHOW", "PROCEDURE", ..] => {
            let at = sql.to_ascii_uppercase().find("PROCEDURE").unwrap_or(0) + "PROCEDURE".len();
            let signature = sql[at..].trim().trim_end_matches(';').trim().to_string();
            return Plan::Act(Action::ShowProcedure(signature));
        }
        ["CREATE", "EXTERNAL", "SCHEMA", ..] => return Plan::Act(external_schema(sql)),
        ["CREATE", "DATASHARE", ..] => {
            let t = tokens(sql);
            return match t.get(2) {
                Some(name) => Plan::Act(Action::Datashare(name.to_lowercase())),
                None => Plan::Act(Action::Reject("CREATE DATASHARE needs a name".into())),
            };
        }
        ["CREATE", "VIEW" | "MATERIALIZED", ..] | ["CREATE", "OR", "REPLACE", "VIEW"] => {
            if let Some(v) = view_statement(sql) {
                return if v.late_binding {
                    Plan::Act(Action::LateBindingView(v))
                } else {
                    Plan::Pass(v.postgres)
                };
            }
        }
        ["CREATE", "TABLE", ..]
        | ["CREATE", "TEMP" | "TEMPORARY", "TABLE", ..]
        | ["CREATE", "LOCAL", "TEMP" | "TEMPORARY", "TABLE"]
            if is_column_list_ddl(sql) =>
        {
            return match ddl::create_table(sql) {
                Ok((pg, d)) => Plan::Act(Action::CreateTable {
                    pg,
                    ddl: Box::new(d),
                }),
                Err(e) => Plan::Act(Action::Reject(e.0)),
            };
        }
        // GRANT ROLE r TO u: PostgreSQL's GRANT r TO u.
        ["GRANT" | "REVOKE", "ROLE", ..] => {
            let at = sql.to_ascii_uppercase().find("ROLE").unwrap_or(0);
            return Plan::Pass(to_postgres(&format!(
                "{} {}",
                head[0],
                &sql[at + "ROLE".len()..]
            )));
        }
        ["GRANT" | "REVOKE", ..] => {
            if let Some(a) = schema_grant(sql) {
                return Plan::Act(a);
            }
        }
        ["DROP", "SCHEMA", ..] => return Plan::Act(drop_schema(sql)),
        _ => {}
    }
    Plan::Pass(to_postgres(sql))
}

/// `CREATE EXTERNAL SCHEMA [IF NOT EXISTS] name FROM DATA CATALOG DATABASE 'db' …`.
fn external_schema(sql: &str) -> Action {
    let t = tokens(sql);
    let mut i = 3;
    let if_not_exists = t.get(i).is_some_and(|w| w == "IF");
    if if_not_exists {
        i += 3;
    }
    let Some(name) = t.get(i).map(|n| n.trim_matches('"').to_lowercase()) else {
        return Action::Reject("CREATE EXTERNAL SCHEMA needs a name".into());
    };
    let database = t
        .iter()
        .position(|w| w == "DATABASE")
        .and_then(|p| t.get(p + 1))
        .map(|d| d.trim_matches('\'').to_string())
        .unwrap_or_default();
    Action::ExternalSchema {
        name,
        if_not_exists,
        database,
    }
}

/// `CREATE TABLE name (…)` (not `AS SELECT`, not `(LIKE …)` — those PostgreSQL runs as is).
fn is_column_list_ddl(sql: &str) -> bool {
    let t = tokens(sql);
    let Some(table) = t.iter().position(|w| w == "TABLE") else {
        return false;
    };
    let mut i = table + 1;
    if t.get(i).is_some_and(|w| w == "IF") {
        i += 3;
    }
    // The (possibly qualified) name.
    i += 1;
    while t.get(i).is_some_and(|w| w == ".") {
        i += 2;
    }
    t.get(i).is_some_and(|w| w == "(") && t.get(i + 1).is_none_or(|w| w != "LIKE")
}

/// `GRANT/REVOKE … ON SCHEMA` naming DROP or ALTER (or ALL), which PostgreSQL lacks.
fn schema_grant(sql: &str) -> Option<Action> {
    let t = tokens(sql);
    let revoke = t[0] == "REVOKE";
    let on = t.iter().position(|w| w == "ON")?;
    if t.get(on + 1).map(String::as_str) != Some("SCHEMA") {
        return None;
    }
    let privileges: Vec<String> = t[1..on]
        .iter()
        .filter(|w| *w != "," && *w != "PRIVILEGES")
        .cloned()
        .collect();
    if !privileges
        .iter()
        .any(|p| matches!(p.as_str(), "DROP" | "ALTER" | "ALL"))
    {
        return None;
    }
    let to = t
        .iter()
        .position(|w| w == if revoke { "FROM" } else { "TO" })?;
    let schemas: Vec<String> = t[on + 2..to]
        .iter()
        .filter(|w| *w != ",")
        .map(|w| w.to_lowercase())
        .collect();
    let grantees: Vec<String> = t[to + 1..]
        .iter()
        .take_while(|w| !matches!(w.as_str(), "WITH" | "CASCADE" | "RESTRICT"))
        .filter(|w| !matches!(w.as_str(), "," | "GROUP" | "ROLE"))
        .map(|w| w.to_lowercase())
        .collect();
    let extra: Vec<String> = privileges
        .iter()
        .filter(|p| matches!(p.as_str(), "DROP" | "ALTER"))
        .map(|p| p.to_lowercase())
        .chain(
            privileges
                .iter()
                .any(|p| p == "ALL")
                .then(|| ["drop".to_string(), "alter".to_string()])
                .into_iter()
                .flatten(),
        )
        .collect();
    let native_privs: Vec<&str> = privileges
        .iter()
        .filter(|p| !matches!(p.as_str(), "DROP" | "ALTER"))
        .map(String::as_str)
        .collect();
    let native = (!native_privs.is_empty()).then(|| {
        let who = grantees
            .iter()
            .map(|g| {
                if g == "public" {
                    "PUBLIC".to_string()
                } else {
                    quote_ident(g)
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "{} {} ON SCHEMA {} {} {who}",
            if revoke { "REVOKE" } else { "GRANT" },
            native_privs.join(", "),
            schemas
                .iter()
                .map(|s| quote_ident(s))
                .collect::<Vec<_>>()
                .join(", "),
            if revoke { "FROM" } else { "TO" }
        )
    });
    Some(Action::SchemaGrant {
        native,
        schemas,
        privileges: extra,
        grantees,
        revoke,
    })
}

fn drop_schema(sql: &str) -> Action {
    let t = tokens(sql);
    let mut i = 2;
    let if_exists = t.get(2).is_some_and(|w| w == "IF");
    if if_exists {
        i += 2;
    }
    let cascade = t.last().is_some_and(|w| w == "CASCADE");
    let names = t[i..]
        .iter()
        .filter(|w| !matches!(w.as_str(), "," | "CASCADE" | "RESTRICT"))
        .map(|w| w.to_lowercase())
        .collect();
    Action::DropSchema {
        names,
        if_exists,
        cascade,
    }
}

/// What an action produced.
struct Done {
    rows: Vec<Vec<Option<String>>>,
    tag: String,
    notices: Vec<String>,
}

impl Done {
    fn tag(tag: &str) -> Done {
        Done {
            rows: Vec::new(),
            tag: tag.into(),
            notices: Vec::new(),
        }
    }
}

struct Session {
    client_r: BufReader<OwnedReadHalf>,
    client_w: BufWriter<OwnedWriteHalf>,
    backend: Backend,
    config: Arc<Config>,
    database: String,
    statements: HashMap<String, Action>,
    portals: HashMap<String, Action>,
    /// After an error in the extended protocol: drop messages until `Sync`.
    skipping: bool,
}

async fn serve(
    stream: TcpStream,
    config: Arc<Config>,
    logins: Arc<std::sync::Mutex<Vec<Login>>>,
) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (r, w) = stream.into_split();
    let mut client_r = BufReader::with_capacity(1 << 16, r);
    let mut client_w = BufWriter::with_capacity(1 << 16, w);
    // Startup: refuse TLS (the emulator speaks plain TCP), pass cancel requests on.
    let startup = loop {
        let body = read_startup(&mut client_r).await?;
        let code = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        match code {
            80_877_103 | 80_877_104 => {
                client_w.write_all(b"N").await?;
                client_w.flush().await?;
            }
            80_877_102 => {
                let mut b = Backend::new(TcpStream::connect(&config.postgres).await?);
                b.write_startup(&body).await?;
                return Ok(());
            }
            _ => break body,
        }
    };
    let params: Vec<String> = startup[4..]
        .split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    let param = |k: &str| {
        params
            .chunks(2)
            .find(|p| p[0] == k)
            .and_then(|p| p.get(1).cloned())
    };
    let user = param("user").unwrap_or_default();
    let database = param("database").unwrap_or(user.clone());
    // IAM authentication (temporary credentials from GetClusterCredentials): the client logs in
    // as `IAM:alice` (or `IAMA:alice`, created when missing) with the temporary password, and
    // the session is alice's. Real Redshift checks the password against the credentials it
    // issued; here any non-empty one passes (moto issues them and keeps no record), and the
    // login is kept for tests to see.
    let mut startup = startup;
    // `IAMR:` (a role, from Serverless GetCredentials) is created when missing too.
    let iam = user
        .strip_prefix("IAM:")
        .map(|u| (u, false))
        .or_else(|| user.strip_prefix("IAMA:").map(|u| (u, true)))
        .or_else(|| user.strip_prefix("IAMR:").map(|u| (u, true)));
    if let Some((name, create)) = iam {
        send(
            &mut client_w,
            &Msg::new(b'R', bytes::Bytes::from_static(&[0, 0, 0, 3])),
        )
        .await?;
        client_w.flush().await?;
        let password = match read_msg(&mut client_r).await? {
            Some(m) if m.tag == b'p' => m.fields().cstr().unwrap_or_default(),
            _ => return Ok(()),
        };
        let refuse = |why: &str| build::fatal("28P01", why);
        if password.is_empty() || name.is_empty() {
            send(
                &mut client_w,
                &refuse(&format!(
                    "password authentication failed for user \"{user}\""
                )),
            )
            .await?;
            client_w.flush().await?;
            return Ok(());
        }
        if create {
            let created = async {
                let mut admin =
                    Backend::connect(&config.postgres, &config.admin_user, &database).await?;
                let exists = admin
                    .run("SELECT 1 FROM pg_roles WHERE rolname = $1", &[Some(name)])
                    .await?;
                admin.sync().await?;
                if exists.rows.is_empty() {
                    admin
                        .batch(&format!("CREATE USER {}", quote_ident(name)))
                        .await?;
                }
                Ok::<_, WireError>(())
            }
            .await;
            if let Err(e) = created {
                send(
                    &mut client_w,
                    &refuse(&format!("creating user {name}: {e}")),
                )
                .await?;
                client_w.flush().await?;
                return Ok(());
            }
        }
        let mut rebuilt = BytesMut::new();
        rebuilt.extend_from_slice(&startup[..4]);
        for pair in params.chunks(2) {
            if pair.len() == 2 && !pair[0].is_empty() {
                let value = if pair[0] == "user" { name } else { &pair[1] };
                for part in [&pair[0][..], value] {
                    rebuilt.extend_from_slice(part.as_bytes());
                    rebuilt.extend_from_slice(&[0]);
                }
            }
        }
        rebuilt.extend_from_slice(&[0]);
        startup = rebuilt.freeze();
        if let Ok(mut l) = logins.lock() {
            l.push(Login {
                login: user.clone(),
                user: name.to_string(),
                database: database.clone(),
            });
        }
    }
    let mut backend = Backend::new(TcpStream::connect(&config.postgres).await?);
    backend.write_startup(&startup).await?;
    // Authentication, relayed.
    loop {
        let m = backend.recv().await?;
        send(&mut client_w, &m).await?;
        match m.tag {
            b'R' => {
                let code = m.fields().i32()?;
                if matches!(code, 3 | 5 | 10 | 11) {
                    client_w.flush().await?;
                    let Some(answer) = read_msg(&mut client_r).await? else {
                        return Ok(());
                    };
                    backend.send(&answer).await?;
                    backend.flush().await?;
                }
            }
            b'E' => {
                client_w.flush().await?;
                return Ok(());
            }
            b'Z' => break,
            _ => {}
        }
    }
    client_w.flush().await?;
    let mut s = Session {
        client_r,
        client_w,
        backend,
        config,
        database,
        statements: HashMap::new(),
        portals: HashMap::new(),
        skipping: false,
    };
    s.run().await
}

async fn send(w: &mut BufWriter<OwnedWriteHalf>, m: &Msg) -> io::Result<()> {
    let mut b = BytesMut::with_capacity(m.body.len() + 5);
    m.encode(&mut b);
    w.write_all(&b).await
}

impl Session {
    async fn run(&mut self) -> io::Result<()> {
        while let Some(m) = read_msg(&mut self.client_r).await? {
            match m.tag {
                b'Q' => {
                    let sql = m.fields().cstr()?;
                    self.simple(&sql).await?;
                }
                b'X' => {
                    self.backend.send(&m).await?;
                    self.backend.flush().await?;
                    return Ok(());
                }
                b'P' | b'B' | b'D' | b'E' | b'C' | b'S' | b'H' => self.extended(m).await?,
                _ => {
                    // Function calls and the like: relayed whole.
                    self.backend.send(&m).await?;
                    self.backend.flush().await?;
                    self.relay(b"Z").await?;
                }
            }
            self.client_w.flush().await?;
        }
        Ok(())
    }

    async fn reply(&mut self, m: &Msg) -> io::Result<()> {
        send(&mut self.client_w, m).await
    }

    /// Pass on what the backend queued (notices, parameter changes).
    async fn pending(&mut self) -> io::Result<()> {
        for m in std::mem::take(&mut self.backend.pending) {
            self.reply(&m).await?;
        }
        Ok(())
    }

    /// Relay backend messages until one of `ends` (or an error) has been passed on. Returns
    /// whether an error was seen.
    async fn relay(&mut self, ends: &[u8]) -> io::Result<bool> {
        self.pending().await?;
        loop {
            let m = self.backend.recv().await?;
            match m.tag {
                b'E' => {
                    let m = redshift_error(&m);
                    self.reply(&m).await?;
                    if !ends.contains(&b'Z') {
                        return Ok(true);
                    }
                    // Simple protocol: the ReadyForQuery still follows.
                    let z = self.relay_rest().await?;
                    self.backend.status = z;
                    return Ok(true);
                }
                b'G' => {
                    // COPY FROM STDIN is refused before it gets here; never leave it hanging.
                    self.backend
                        .send(&build::copy_fail("not supported"))
                        .await?;
                    self.backend.flush().await?;
                }
                b'Z' => {
                    self.backend.status = m.body.first().copied().unwrap_or(b'I');
                    if ends.contains(&b'Z') {
                        self.reply(&m).await?;
                        return Ok(false);
                    }
                }
                t => {
                    self.reply(&m).await?;
                    if ends.contains(&t) {
                        return Ok(false);
                    }
                }
            }
        }
    }

    /// After an error in a simple query: pass on up to and including ReadyForQuery.
    async fn relay_rest(&mut self) -> io::Result<u8> {
        loop {
            let m = self.backend.recv().await?;
            self.reply(&m).await?;
            if m.tag == b'Z' {
                return Ok(m.body.first().copied().unwrap_or(b'I'));
            }
        }
    }

    /// Relay one statement as a simple query, holding back its ReadyForQuery. Returns whether it
    /// failed.
    async fn relay_simple(&mut self, sql: &str) -> io::Result<bool> {
        self.backend.send(&build::query(sql)).await?;
        self.backend.flush().await?;
        let mut failed = false;
        loop {
            let m = self.backend.recv().await?;
            match m.tag {
                b'Z' => {
                    self.backend.status = m.body.first().copied().unwrap_or(b'I');
                    return Ok(failed);
                }
                b'E' => {
                    failed = true;
                    self.reply(&redshift_error(&m)).await?;
                }
                b'G' => {
                    self.backend
                        .send(&build::copy_fail("not supported"))
                        .await?;
                    self.backend.flush().await?;
                }
                _ => self.reply(&m).await?,
            }
        }
    }

    async fn simple(&mut self, sql: &str) -> io::Result<()> {
        let statements = split_statements(sql);
        let plans: Vec<Plan> = statements.iter().map(|s| plan(s)).collect();
        if plans.iter().all(|p| matches!(p, Plan::Pass(_))) {
            // One query string, as the client sent it (rewritten): one implicit transaction.
            let joined = if plans.is_empty() {
                sql.to_string()
            } else {
                plans
                    .iter()
                    .filter_map(|p| match p {
                        Plan::Pass(s) => Some(s.as_str()),
                        Plan::Act(_) => None,
                    })
                    .collect::<Vec<_>>()
                    .join(";\n")
            };
            self.backend.send(&build::query(&joined)).await?;
            self.backend.flush().await?;
            self.relay(b"Z").await?;
            return Ok(());
        }
        for p in plans {
            let failed = match p {
                Plan::Pass(s) => self.relay_simple(&s).await?,
                Plan::Act(a) => {
                    let outcome = self.act(&a).await;
                    self.pending().await?;
                    let failed = match outcome {
                        Ok(done) => {
                            if let Some(cols) = a.columns() {
                                self.reply(&build::row_description(cols)).await?;
                            }
                            self.answer(done).await?;
                            false
                        }
                        Err(why) => {
                            let e = self.failure(&why).await?;
                            self.reply(&e).await?;
                            true
                        }
                    };
                    self.backend.sync().await.map_err(io_error)?;
                    self.pending().await?;
                    failed
                }
            };
            if failed {
                break;
            }
        }
        let z = build::ready(self.backend.status);
        self.reply(&z).await
    }

    /// Rows, notices and the command tag of an action.
    async fn answer(&mut self, done: Done) -> io::Result<()> {
        for n in &done.notices {
            self.reply(&build::notice(n)).await?;
        }
        for r in &done.rows {
            let values: Vec<Option<&str>> = r.iter().map(|v| v.as_deref()).collect();
            self.reply(&build::data_row(&values)).await?;
        }
        self.reply(&build::command_complete(&done.tag)).await
    }

    /// Make the backend's state match a failed action (raising the error there when the failure
    /// was ours, not PostgreSQL's), and the ErrorResponse to send.
    async fn failure(&mut self, why: &Rejected) -> io::Result<Msg> {
        let code = match self.backend.failed.take() {
            Some(e) => e.code,
            None => {
                let raised = self
                    .backend
                    .run(
                        "SELECT rs_meta.raise($1, $2)",
                        &[Some("XX000"), Some(&why.0)],
                    )
                    .await;
                match raised {
                    Err(WireError::Io(e)) => return Err(e),
                    _ => "XX000".to_string(),
                }
            }
        };
        Ok(build::error(&code, &why.0))
    }

    async fn extended(&mut self, m: Msg) -> io::Result<()> {
        if self.skipping && m.tag != b'S' {
            return Ok(());
        }
        match m.tag {
            b'P' => {
                let mut f = m.fields();
                let name = f.cstr()?;
                let sql = f.cstr()?;
                let rest = f.rest();
                match plan(&sql) {
                    Plan::Pass(pg) => {
                        self.statements.remove(&name);
                        let mut body = BytesMut::new();
                        body.extend_from_slice(name.as_bytes());
                        body.put_u8(0);
                        body.extend_from_slice(pg.as_bytes());
                        body.put_u8(0);
                        body.extend_from_slice(&rest);
                        self.forward(&Msg::new(b'P', body.freeze()), b"1").await?;
                    }
                    Plan::Act(Action::Reject(why)) => self.fail_extended(&Rejected(why)).await?,
                    Plan::Act(a) => {
                        self.statements.insert(name, a);
                        self.reply(&build::parse_complete()).await?;
                    }
                }
            }
            b'B' => {
                let mut f = m.fields();
                let portal = f.cstr()?;
                let statement = f.cstr()?;
                match self.statements.get(&statement).cloned() {
                    Some(a) => {
                        self.portals.insert(portal, a);
                        self.reply(&build::bind_complete()).await?;
                    }
                    None => {
                        self.portals.remove(&portal);
                        self.forward(&m, b"2").await?;
                    }
                }
            }
            b'D' => {
                let mut f = m.fields();
                let kind = f.u8()?;
                let name = f.cstr()?;
                let ours = if kind == b'S' {
                    self.statements.get(&name)
                } else {
                    self.portals.get(&name)
                };
                match ours.map(Action::columns) {
                    Some(cols) => {
                        if kind == b'S' {
                            self.reply(&build::no_parameters()).await?;
                        }
                        let m = match cols {
                            Some(c) => build::row_description(c),
                            None => build::no_data(),
                        };
                        self.reply(&m).await?;
                    }
                    None => self.forward(&m, b"Tn").await?,
                }
            }
            b'E' => {
                let portal = m.fields().cstr()?;
                match self.portals.get(&portal).cloned() {
                    Some(a) => {
                        let outcome = self.act(&a).await;
                        self.pending().await?;
                        match outcome {
                            Ok(done) => self.answer(done).await?,
                            Err(why) => self.fail_extended(&why).await?,
                        }
                    }
                    None => self.forward(&m, b"CIs").await?,
                }
            }
            b'C' => {
                let mut f = m.fields();
                let kind = f.u8()?;
                let name = f.cstr()?;
                let ours = if kind == b'S' {
                    self.statements.remove(&name)
                } else {
                    self.portals.remove(&name)
                };
                match ours {
                    Some(_) => self.reply(&build::close_complete()).await?,
                    None => self.forward(&m, b"3").await?,
                }
            }
            b'H' => {}
            b'S' => {
                self.skipping = false;
                self.backend.send(&m).await?;
                self.backend.flush().await?;
                self.relay(b"Z").await?;
                self.backend.failed = None;
            }
            // Only extended-protocol messages are routed here; anything else is passed on.
            _ => self.forward(&m, b"Z").await?,
        }
        Ok(())
    }

    /// Send one message with `Flush` and relay its answers.
    async fn forward(&mut self, m: &Msg, ends: &[u8]) -> io::Result<()> {
        self.backend.send(m).await?;
        self.backend.send(&build::flush()).await?;
        self.backend.flush().await?;
        if self.relay(ends).await? {
            self.skipping = true;
        }
        Ok(())
    }

    async fn fail_extended(&mut self, why: &Rejected) -> io::Result<()> {
        let e = self.failure(why).await?;
        self.reply(&e).await?;
        self.skipping = true;
        Ok(())
    }

    async fn act(&mut self, a: &Action) -> Result<Done, Rejected> {
        match a {
            Action::Reject(why) => Err(Rejected(why.clone())),
            Action::Unload(u) => {
                let mut u = (**u).clone();
                u.query = to_postgres(&u.query);
                let (bucket, _) = crate::unload::split_url(&u.to)?;
                let store = self.config.storage.bucket(bucket)?;
                let out = crate::unload::unload(&mut self.backend, store.as_ref(), &u).await?;
                Ok(Done {
                    rows: Vec::new(),
                    tag: "UNLOAD".into(),
                    notices: vec![format!(
                        "UNLOAD completed, {} record(s) unloaded successfully.",
                        out.rows
                    )],
                })
            }
            Action::Copy(c) => self.copy(c).await,
            Action::ShowTable(name) => {
                let ddl = self.show_table(name).await?;
                Ok(Done {
                    rows: vec![vec![Some(ddl)]],
                    tag: "SELECT 1".into(),
                    notices: Vec::new(),
                })
            }
            Action::ShowView(name) => {
                let found = self
                    .backend
                    .run(
                        "SELECT c.relkind::text, n.nspname::text, c.relname::text, \
                         pg_get_viewdef(c.oid, true), \
                         EXISTS (SELECT 1 FROM rs_meta.late_views l WHERE l.relid = c.oid)::text \
                         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                         WHERE c.oid = $1::regclass AND c.relkind IN ('v', 'm')",
                        &[Some(&quote_qualified(name))],
                    )
                    .await?;
                let Some(row) = found.rows.first() else {
                    return Err(Rejected(format!("\"{name}\" is not a view")));
                };
                let get = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
                let qualified = format!("{}.{}", ddl::shown(&get(1)), ddl::shown(&get(2)));
                let body = get(3).trim().trim_end_matches(';').to_string();
                let ddl = if get(0) == "m" {
                    format!("CREATE MATERIALIZED VIEW {qualified} AS\n {body};")
                } else if get(4) == "true" {
                    format!(
                        "CREATE OR REPLACE VIEW {qualified} AS\n {body} WITH NO SCHEMA BINDING;"
                    )
                } else {
                    format!("CREATE OR REPLACE VIEW {qualified} AS\n {body};")
                };
                Ok(Done {
                    rows: vec![vec![Some(ddl)]],
                    tag: "SELECT 1".into(),
                    notices: Vec::new(),
                })
            }
            Action::ShowProcedure(signature) => {
                let found = self
                    .backend
                    .run(
                        "SELECT pg_get_functiondef(p.oid) FROM pg_proc p \
                         WHERE p.oid = to_regprocedure($1) AND p.prokind = 'p'",
                        &[Some(signature)],
                    )
                    .await?;
                let Some(Some(ddl)) = found.rows.first().and_then(|r| r.first().cloned()) else {
                    return Err(Rejected(format!("procedure {signature} does not exist")));
                };
                Ok(Done {
                    rows: vec![vec![Some(ddl)]],
                    tag: "SELECT 1".into(),
                    notices: Vec::new(),
                })
            }
            Action::LateBindingView(v) => {
                self.backend.run(&v.postgres, &[]).await?;
                self.backend
                    .run(
                        "INSERT INTO rs_meta.late_views (relid) VALUES ($1::regclass) \
                         ON CONFLICT (relid) DO NOTHING",
                        &[Some(&quote_qualified(&v.name))],
                    )
                    .await?;
                Ok(Done::tag("CREATE VIEW"))
            }
            Action::ExternalSchema {
                name,
                if_not_exists,
                database,
            } => {
                self.backend
                    .run(
                        &format!(
                            "CREATE SCHEMA {}{}",
                            if *if_not_exists { "IF NOT EXISTS " } else { "" },
                            quote_ident(name)
                        ),
                        &[],
                    )
                    .await?;
                self.backend
                    .run(
                        "INSERT INTO rs_meta.external_schemas (esoid, databasename) \
                         SELECT oid, $2 FROM pg_namespace WHERE nspname = $1 \
                         ON CONFLICT (esoid) DO NOTHING",
                        &[Some(name), Some(database)],
                    )
                    .await?;
                Ok(Done::tag("CREATE SCHEMA"))
            }
            Action::Datashare(name) => {
                self.backend
                    .run(
                        "INSERT INTO rs_meta.datashares (share_name, share_owner, source_database) \
                         SELECT $1, usesysid, current_database() FROM pg_user \
                         WHERE usename = current_user",
                        &[Some(name)],
                    )
                    .await?;
                Ok(Done::tag("CREATE DATASHARE"))
            }
            Action::CreateTable { pg, ddl } => {
                self.backend.run(pg, &[]).await?;
                let json = serde_json::to_string(ddl).map_err(|e| Rejected(e.to_string()))?;
                self.backend
                    .run(
                        "INSERT INTO rs_meta.tables (relid, ddl) VALUES ($1::regclass, $2::jsonb) \
                         ON CONFLICT (relid) DO NOTHING",
                        &[Some(&quote_qualified(&ddl.name)), Some(&json)],
                    )
                    .await?;
                Ok(Done::tag("CREATE TABLE"))
            }
            Action::SchemaGrant {
                native,
                schemas,
                privileges,
                grantees,
                revoke,
            } => {
                if let Some(sql) = native {
                    self.backend.run(sql, &[]).await?;
                }
                let privs = format!("{{{}}}", privileges.join(","));
                for s in schemas {
                    for g in grantees {
                        self.backend
                            .run(
                                "SELECT rs_meta.grant_schema($1, $2::text[], $3, $4::boolean)",
                                &[
                                    Some(s),
                                    Some(&privs),
                                    Some(g),
                                    Some(if *revoke { "true" } else { "false" }),
                                ],
                            )
                            .await?;
                    }
                }
                Ok(Done::tag(if *revoke { "REVOKE" } else { "GRANT" }))
            }
            Action::DropSchema {
                names,
                if_exists,
                cascade,
            } => {
                for n in names {
                    self.backend
                        .run(
                            "SELECT rs_meta.drop_schema($1, $2::boolean, $3::boolean)",
                            &[
                                Some(n),
                                Some(&if_exists.to_string()),
                                Some(&cascade.to_string()),
                            ],
                        )
                        .await?;
                }
                Ok(Done::tag("DROP SCHEMA"))
            }
        }
    }

    async fn copy(&mut self, c: &CopyFrom) -> Result<Done, Rejected> {
        let who = self
            .backend
            .run(
                "SELECT (SELECT usesysid FROM pg_user WHERE usename = current_user)::text, \
                 $1::regclass::oid::text, pg_backend_pid()::text",
                &[Some(&quote_qualified(&c.table))],
            )
            .await?;
        let (bucket, _) = crate::unload::split_url(&c.from)?;
        let store = self.config.storage.bucket(bucket)?;
        match copy_from(&mut self.backend, store.as_ref(), c).await {
            Ok(n) => Ok(Done {
                rows: Vec::new(),
                tag: "COPY".into(),
                notices: vec![format!(
                    "Load into table '{}' completed, {n} record(s) loaded successfully.",
                    c.table.rsplit('.').next().unwrap_or(&c.table)
                )],
            }),
            Err(CopyFailure::Rejected(r)) => Err(r),
            Err(CopyFailure::Load(e)) => {
                let row = who.rows.first().cloned().unwrap_or_default();
                let get = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
                // Recorded outside the session, whose transaction has failed.
                self.record_load_error(&e, &get(0), &get(1), &get(2))
                    .await
                    .map_err(|w| Rejected(format!("recording the load error: {w}")))?;
                Err(Rejected(format!(
                    "Load into table '{}' failed.  Check 'stl_load_errors' system table for details.",
                    e.table.rsplit('.').next().unwrap_or(&e.table)
                )))
            }
        }
    }

    async fn record_load_error(
        &self,
        e: &LoadError,
        userid: &str,
        tbl: &str,
        session: &str,
    ) -> Result<(), WireError> {
        let mut admin = Backend::connect(
            &self.config.postgres,
            &self.config.admin_user,
            &self.database,
        )
        .await?;
        let line = e.line_number.to_string();
        let code = e.err_code.to_string();
        let clip = |s: &str, n: usize| s.chars().take(n).collect::<String>();
        admin
            .run(
                "INSERT INTO rs_meta.load_errors (userid, slice, tbl, starttime, session, query, \
                 filename, line_number, colname, type, col_length, position, raw_line, \
                 raw_field_value, err_code, err_reason, is_partial, start_offset) VALUES \
                 ($1::integer, 0, $2::integer, now() AT TIME ZONE 'UTC', $3::integer, 0, $4, \
                 $5::bigint, $6, '', '', 0, $7, $8, $9::integer, $10, 0, 0)",
                &[
                    Some(userid),
                    Some(tbl),
                    Some(session),
                    Some(&clip(&e.filename, 256)),
                    Some(&line),
                    Some(&clip(&e.colname, 127)),
                    Some(&clip(&e.raw_line, 1024)),
                    Some(&clip(&e.raw_field_value, 1024)),
                    Some(&code),
                    Some(&clip(&e.err_reason, 100)),
                ],
            )
            .await?;
        admin.sync().await
    }

    async fn show_table(&mut self, name: &str) -> Result<String, Rejected> {
        let table = self
            .backend
            .run(
                "SELECT c.oid::text, n.nspname::text, c.relname::text, m.ddl::text \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 LEFT JOIN rs_meta.tables m ON m.relid = c.oid WHERE c.oid = $1::regclass",
                &[Some(&quote_qualified(name))],
            )
            .await?;
        let row = table.rows.first().cloned().unwrap_or_default();
        let get = |i: usize| row.get(i).cloned().flatten();
        let oid = get(0).unwrap_or_default();
        let live = self
            .backend
            .run(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull::text, \
                 pg_get_expr(d.adbin, d.adrelid), a.attidentity::text \
                 FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
                 WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                &[Some(&oid)],
            )
            .await?;
        let pk = self
            .backend
            .run(
                "SELECT a.attname::text FROM pg_index i \
                 CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, ord) \
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
                 WHERE i.indrelid = $1::oid AND i.indisprimary ORDER BY k.ord",
                &[Some(&oid)],
            )
            .await?;
        let declared: Option<TableDdl> = get(3).and_then(|j| serde_json::from_str(&j).ok());
        let mut out = declared.clone().unwrap_or_else(|| TableDdl::new(""));
        out.name = format!(
            "{}.{}",
            get(1).unwrap_or_default(),
            get(2).unwrap_or_default()
        );
        // The live columns, with what CREATE TABLE declared about each.
        out.columns = live
            .rows
            .iter()
            .map(|r| {
                let name = r[0].clone().unwrap_or_default();
                declared
                    .as_ref()
                    .and_then(|d| d.columns.iter().find(|c| c.name == name).cloned())
                    .unwrap_or_else(|| ColumnDdl {
                        redshift_type: ddl::from_postgres_type(r[1].as_deref().unwrap_or("")),
                        encode: None,
                        distkey: false,
                        sortkey: false,
                        identity: match r[4].as_deref() {
                            Some("a") => Some((1, 1, false)),
                            Some("d") => Some((1, 1, true)),
                            _ => None,
                        },
                        not_null: r[2].as_deref() == Some("true"),
                        default: r[3]
                            .clone()
                            .filter(|_| r[4].as_deref().unwrap_or("").is_empty()),
                        name,
                    })
            })
            .collect();
        let names: Vec<String> = out.columns.iter().map(|c| c.name.clone()).collect();
        if out.distkey.as_ref().is_some_and(|k| !names.contains(k)) {
            out.distkey = None;
            out.diststyle = None;
        }
        if let Some((_, cols)) = &mut out.sortkey {
            cols.retain(|c| names.contains(c));
        }
        out.primary_key = pk.rows.iter().filter_map(|r| r[0].clone()).collect();
        let constraints = self
            .backend
            .run(
                "WITH k AS (SELECT con.oid, con.conname, con.contype, \
                   (SELECT string_agg(a.attname, ', ' ORDER BY x.o) FROM unnest(con.conkey) WITH ORDINALITY x(n, o) \
                    JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = x.n) AS cols, \
                   (SELECT string_agg(a.attname, ', ' ORDER BY x.o) FROM unnest(con.confkey) WITH ORDINALITY x(n, o) \
                    JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = x.n) AS refcols, \
                   fn.nspname || '.' || fc.relname AS reftable \
                 FROM pg_constraint con LEFT JOIN pg_class fc ON fc.oid = con.confrelid \
                 LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace \
                 WHERE con.conrelid = $1::oid AND con.contype IN ('f', 'u')) \
                 SELECT CASE contype WHEN 'u' THEN 'UNIQUE (' || cols || ')' \
                   ELSE 'FOREIGN KEY (' || cols || ') REFERENCES ' || reftable || '(' || refcols || ')' END \
                 FROM k ORDER BY contype, conname",
                &[Some(&oid)],
            )
            .await?;
        out.constraints = constraints
            .rows
            .iter()
            .filter_map(|r| r[0].clone())
            .collect();
        Ok(ddl::show_table(&out))
    }
}

fn io_error(e: WireError) -> io::Error {
    match e {
        WireError::Io(e) => e,
        WireError::Db(d) => io::Error::other(d.message),
    }
}

/// PostgreSQL's error as Redshift would word it: the emulator's byte-length and single-byte
/// checks become Redshift's messages, without the failing row PostgreSQL would detail.
fn redshift_error(m: &Msg) -> Msg {
    let e = crate::wire::DbError::parse(m);
    if e.code == "23514"
        && let Some(c) = e.constraint.as_deref()
    {
        if let Some(rest) = c.strip_prefix("rs_bytes_") {
            let n = rest.split('_').next().unwrap_or("");
            return build::error(
                "22001",
                &format!("value too long for type character varying({n})"),
            );
        }
        if c.starts_with("rs_char_") {
            return build::error(
                "22021",
                "Multibyte character not supported for CHAR (Hint: try using VARCHAR).",
            );
        }
    }
    m.clone()
}
