//! Checks: what a job needs, item by item, each failure with the statement or setting that
//! fixes it. Every connector returns its items; `mirage check` prints them all and `mirage run`
//! runs the very same list and stops before writing anything when one fails, so the two cannot
//! disagree.

use crate::grants;
use crate::postgres::PgEndpoint;
use crate::sql::{ident, one, rows, whoami};
use mirage_core::QualifiedName;
use mirage_core::display::printable;
use mirage_core::schema::{Table, quote_ident, quote_literal};
use mirage_core::workspace::Workspace;
use serde::Serialize;
use tokio_postgres::Client;

/// The outcome of one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// In place.
    Pass,
    /// Missing: a run would fail.
    Fail,
    /// Worth knowing; a run goes ahead.
    Warn,
}

/// One checked item.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// `source`, `destination`, `staging`, `lambda`.
    pub area: &'static str,
    /// What was checked.
    pub check: String,
    /// Its outcome.
    pub status: Status,
    /// Why it failed or warns (never a row value).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// What fixes a failure: SQL to run as an administrator, or an action.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// Every item checked.
#[derive(Debug, Default, Serialize)]
pub struct Checks {
    /// No item failed.
    pub ok: bool,
    /// The items, in the order checked.
    pub items: Vec<Item>,
    /// A failed item says the destination is the source (`mirage run` refuses such a job as bad
    /// input, whatever else failed).
    #[serde(skip)]
    pub same_as_source: bool,
    /// A failed item is a server that could not be reached (it may be down for now): `mirage
    /// run` does not call that bad input.
    #[serde(skip)]
    pub unreachable: bool,
}

impl Checks {
    /// No item yet.
    pub fn new() -> Checks {
        Checks {
            ok: true,
            ..Checks::default()
        }
    }

    /// Record an item.
    pub fn add(
        &mut self,
        area: &'static str,
        check: String,
        status: Status,
        detail: Option<String>,
        fix: Option<String>,
    ) {
        self.items.push(Item {
            area,
            check,
            status,
            detail,
            fix,
        });
        self.ok = !self.items.iter().any(|i| i.status == Status::Fail);
    }

    /// Record an item in place.
    pub fn pass(&mut self, area: &'static str, check: impl Into<String>) {
        self.add(area, check.into(), Status::Pass, None, None);
    }

    /// Record a missing item and what fixes it.
    pub fn fail(
        &mut self,
        area: &'static str,
        check: impl Into<String>,
        detail: Option<String>,
        fix: impl Into<String>,
    ) {
        self.add(area, check.into(), Status::Fail, detail, Some(fix.into()));
    }

    /// Record a connection that failed, and whether it reached the server.
    pub fn fail_connect(
        &mut self,
        area: &'static str,
        check: impl Into<String>,
        error: &crate::ConnectorError,
        fix: impl Into<String>,
    ) {
        self.unreachable |= error.is_unreachable();
        let text = error.to_string();
        // The fix for what failed: TLS settings, or the host, rather than the password.
        let fix = if text.contains("Redshift API") || text.contains("iam=true") {
            // IAM authentication: the caller's fix names the API call.
            fix.into()
        } else if text.contains("TLS") || text.contains("certificate") || text.contains("ssl") {
            format!("fix the TLS settings of {area}.url (sslmode, sslrootcert, sslcert/sslkey)")
        } else if error.is_unreachable() {
            format!("check the host and port of {area}.url, and that the server runs")
        } else {
            fix.into()
        };
        self.fail(area, check, Some(text), fix);
    }

    /// Record a warning.
    pub fn warn(
        &mut self,
        area: &'static str,
        check: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.add(area, check.into(), Status::Warn, Some(detail.into()), None);
    }

    /// Record that the destination is the source (a `kind` such as database or folder): a
    /// failed item.
    pub fn same_as_source(&mut self, area: &'static str, kind: &str) {
        self.fail(
            area,
            format!("a {kind} of its own"),
            Some(format!(
                "the destination is the same {kind} as the source: `mirage run` refuses to run"
            )),
            format!("point destination.url at another {kind}"),
        );
        self.same_as_source = true;
    }

    /// The failed items, one line each with its detail and fix (control characters of the
    /// names and messages they quote escaped).
    pub fn failures(&self) -> Vec<String> {
        self.items
            .iter()
            .filter(|i| i.status == Status::Fail)
            .map(|i| {
                let mut s = format!("{}: {}", i.area, printable(&i.check));
                if let Some(d) = &i.detail {
                    s += &format!(": {}", printable(d));
                }
                if let Some(f) = &i.fix {
                    let lines: Vec<_> = f.lines().map(printable).collect();
                    s += &format!("; fix: {}", lines.join(" "));
                }
                s
            })
            .collect()
    }
}

/// What the source's checks learned, for the destination's.
#[derive(Debug, Clone, Default)]
pub struct SourceFacts {
    /// The source's schemas the workspace includes.
    pub schemas: Vec<String>,
    /// [`crate::Source::identity`]'s notion of the database, when it could be read.
    pub identity: Option<String>,
}

/// What the destination's checks need to know about the job.
#[derive(Debug, Clone, Default)]
pub struct CheckContext {
    /// The schemas the job replaces in the destination.
    pub schemas: Vec<String>,
    /// The source's identity, to refuse a destination that is the same database.
    pub source_identity: Option<String>,
    /// Whether owners are copied (needs a superuser).
    pub preserve_ownership: bool,
    /// Tables whose destination rows are kept: they must exist there, alike.
    pub preserved: Vec<Table>,
}

impl CheckContext {
    /// The context `mirage check` can give before any plan: the source's schemas (else the
    /// workspace's list) and the workspace's settings.
    pub fn from_workspace(ws: &Workspace, facts: &SourceFacts) -> CheckContext {
        CheckContext {
            schemas: if facts.schemas.is_empty() {
                ws.schemas.include.clone()
            } else {
                facts.schemas.clone()
            },
            source_identity: facts.identity.clone(),
            preserve_ownership: ws.preserve_ownership,
            preserved: Vec::new(),
        }
    }
}

/// The two SQL databases differ in a few grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Postgres,
    Redshift,
}

const SCHEMAS: &str = "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' \
     AND nspname NOT IN ('information_schema', 'catalog_history', 'rs_meta', '_mirage_preserve') ORDER BY 1";

/// `host:port/db` of an endpoint: what two endpoints share when they are the same database.
pub(crate) fn endpoint_identity(ep: &PgEndpoint) -> String {
    let d = ep.display();
    d.split_once('@').map_or(d.clone(), |(_, r)| r.to_string())
}

/// The identity [`crate::Source::identity`] and [`crate::Destination::identity`] give a job's
/// ends, so the checks compare what `mirage run` compares: PostgreSQL asks the server (database,
/// start time, port, cluster name: `localhost` and `127.0.0.1` are one server), Redshift names
/// its endpoint.
async fn server_identity(dialect: Dialect, ep: &PgEndpoint, c: &Client) -> crate::Result<String> {
    match dialect {
        Dialect::Postgres => crate::postgres::identity(c).await,
        Dialect::Redshift => crate::redshift::identity(c, ep).await,
    }
}

/// What connecting to `ep` is, as a check's line: with IAM authentication, the API call too.
fn connect_label(ep: &PgEndpoint) -> String {
    match ep.iam() {
        None => format!("connect to {}", ep.display()),
        Some(iam) => format!(
            "connect to {} with IAM credentials ({}, {})",
            ep.display(),
            iam.action(),
            iam.describe()
        ),
    }
}

/// How to fix a failed connection to `ep`.
fn connect_fix(ep: &PgEndpoint, password_env: &str, error: &crate::ConnectorError) -> String {
    match ep.iam() {
        None => format!(
            "check {}.url, and that ${password_env} holds the password",
            ep.role
        ),
        Some(_) if error.to_string().contains("needs AWS credentials") => {
            "give mirage AWS credentials: AWS_PROFILE, or AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY, or an instance or task role"
                .into()
        }
        Some(iam) if error.is_unreachable() => format!(
            "the Redshift API ({}) could not be reached: check the network to AWS (or \
             AWS_ENDPOINT_URL_REDSHIFT when set) and try again",
            iam.action()
        ),
        // The credentials were issued; the login failed for want of the user or database.
        Some(iam)
            if error.to_string().contains("role")
                && error.to_string().contains("does not exist") =>
        {
            format!(
                "create the user in the cluster (CREATE USER {} PASSWORD DISABLE;), or add \
                 auto_create=true to {}.url",
                crate::sql::ident(&iam.user),
                ep.role
            )
        }
        Some(_)
            if error.to_string().contains("database")
                && error.to_string().contains("does not exist") =>
        {
            format!("check the database named in {}.url", ep.role)
        }
        Some(iam) => format!(
            "check the {} and region in {}.url, and that the AWS identity may call {} \
             (`mirage policy` prints the statement)",
            iam.describe(),
            ep.role,
            iam.action()
        ),
    }
}

/// A SQL source: connection, USAGE on each schema, SELECT on each table (and Redshift's
/// `svv_table_info`), and a note when the user could write.
pub(crate) async fn sql_source(
    ws: &Workspace,
    dialect: Dialect,
    ep: crate::Result<PgEndpoint>,
    out: &mut Checks,
) -> SourceFacts {
    const A: &str = "source";
    let ep = match ep {
        Ok(e) => e,
        Err(e) => {
            let text = e.to_string();
            out.fail(
                A,
                "source.url",
                Some(
                    text.strip_prefix("source.url: ")
                        .unwrap_or(&text)
                        .to_string(),
                ),
                "fix source.url in the workspace",
            );
            return SourceFacts::default();
        }
    };
    let c = match ep.connect().await {
        Ok(c) => c,
        Err(e) => {
            out.fail_connect(
                A,
                connect_label(&ep),
                &e,
                connect_fix(&ep, &ws.source.password_env, &e),
            );
            return SourceFacts::default();
        }
    };
    out.pass(A, connect_label(&ep));
    let identity = match server_identity(dialect, &ep, &c).await {
        Ok(i) => Some(i),
        Err(e) => {
            out.fail(
                A,
                "identify the source server",
                Some(e.to_string()),
                "check the source is PostgreSQL or Redshift",
            );
            return SourceFacts::default();
        }
    };
    if dialect == Dialect::Postgres {
        crate::postgres::client_tools_check(&c, out).await;
    }
    let (user, superuser) = match whoami(&c).await {
        Ok(w) => w,
        Err(e) => {
            out.fail(
                A,
                "read the connected user",
                Some(e.to_string()),
                "check the source is PostgreSQL or Redshift",
            );
            return SourceFacts::default();
        }
    };
    let u = ident(&user);
    // Privileges are copied with preserve_ownership: Redshift shows a user the grants of
    // others (svv_relation_privileges …) only with ACCESS SYSTEM TABLE (role sys:monitor).
    if dialect == Dialect::Redshift && ws.preserve_ownership && !superuser {
        let sees = rows(
            &c,
            "SELECT role_name FROM pg_catalog.svv_user_grants WHERE user_name = current_user",
            "reading the source user's roles",
        )
        .await
        .unwrap_or_default()
        .iter()
        .any(|r| {
            matches!(
                r.text("role_name").as_str(),
                "sys:monitor" | "sys:operator" | "sys:dba" | "sys:superuser"
            )
        });
        let what = "sees every grant to copy them (preserve_ownership = true)";
        if sees {
            out.pass(A, what);
        } else {
            out.fail(
                A,
                what,
                Some(format!(
                    "{user} sees only its own privileges in svv_relation_privileges"
                )),
                format!("GRANT ROLE \"sys:monitor\" TO {u};"),
            );
        }
    }
    // External schemas (Spectrum) hold no tables of the cluster's and are not copied.
    let external = if dialect == Dialect::Redshift {
        crate::redshift::objects::external_schemas(&c)
            .await
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let schemas: Vec<String> = rows(&c, SCHEMAS, "listing schemas")
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| r.text("nspname"))
        .filter(|s| ws.schemas.admits(s) && !external.contains(s))
        .collect();
    let names: Vec<QualifiedName> = rows(
        &c,
        "SELECT n.nspname AS schema_name, c.relname AS table_name FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') ORDER BY 1, 2",
        "listing tables",
    )
    .await
    .unwrap_or_default()
    .iter()
    .map(|r| QualifiedName::new(r.text("schema_name"), r.text("table_name")))
    .filter(|t| schemas.contains(&t.schema))
    .collect();
    let facts = SourceFacts {
        schemas: schemas.clone(),
        identity,
    };
    let missing = match grants::missing_reads(&c, &schemas, &names).await {
        Ok(m) => m,
        Err(e) => {
            out.fail(
                A,
                "read the source user's privileges",
                Some(e.to_string()),
                "check the source is PostgreSQL or Redshift",
            );
            return facts;
        }
    };
    let mut readable = Vec::new();
    for s in &schemas {
        let q = quote_ident(s);
        let in_schema: Vec<&QualifiedName> = names.iter().filter(|t| &t.schema == s).collect();
        if missing.usage.contains(s) {
            // A schema without tables needs no USAGE.
            if in_schema.is_empty() {
                out.warn(
                    A,
                    format!("USAGE on schema {s}"),
                    "missing, but the schema holds no table",
                );
            } else {
                out.fail(
                    A,
                    format!("USAGE on schema {s}"),
                    None,
                    format!("GRANT USAGE ON SCHEMA {q} TO {u};"),
                );
            }
            continue;
        }
        out.pass(A, format!("USAGE on schema {s}"));
        let cannot: Vec<String> = in_schema
            .iter()
            .filter(|t| missing.select.contains(t))
            .map(|t| t.name.clone())
            .collect();
        readable.extend(
            in_schema
                .iter()
                .filter(|t| !missing.select.contains(t))
                .map(|t| (*t).clone()),
        );
        let n = in_schema.len();
        if cannot.is_empty() {
            out.pass(A, format!("SELECT on the {n} table(s) of schema {s}"));
        } else {
            out.fail(
                A,
                format!("SELECT on the {n} table(s) of schema {s}"),
                Some(format!("cannot read: {}", cannot.join(", "))),
                format!("GRANT SELECT ON ALL TABLES IN SCHEMA {q} TO {u};"),
            );
        }
    }
    if dialect == Dialect::Redshift {
        let visible = one(
            &c,
            "SELECT count(*) FROM pg_catalog.svv_table_info",
            "reading svv_table_info",
        )
        .await
        .unwrap_or_default();
        let fix = format!("GRANT SELECT ON pg_catalog.svv_table_info TO {u};");
        if superuser || visible.parse::<u64>().unwrap_or(0) > 0 {
            out.pass(A, "SELECT on pg_catalog.svv_table_info");
        } else {
            // Empty tables are absent from it: a readable table with rows proves the grant missing.
            let has_rows = grants::first_with_rows(&c, &readable)
                .await
                .ok()
                .flatten()
                .is_some();
            if has_rows {
                out.fail(
                    A,
                    "SELECT on pg_catalog.svv_table_info",
                    Some(
                        "it shows no tables, yet some have rows: table sizes cannot be read".into(),
                    ),
                    fix,
                );
            } else {
                out.warn(
                    A,
                    "SELECT on pg_catalog.svv_table_info",
                    format!("cannot tell: every table is empty; make sure of it with {fix}"),
                );
            }
        }
    }
    if superuser {
        out.warn(
            A,
            "the source user only reads",
            format!(
                "{user} is a superuser; mirage needs only USAGE and SELECT (`mirage policy` prints such a user)"
            ),
        );
    } else {
        out.pass(A, "the source user only reads (not a superuser)");
    }
    facts
}

/// A SQL destination: the database, the user's privileges on it, the schemas the job replaces,
/// superuser when owners are copied, and (PostgreSQL) the preserved tables.
pub(crate) async fn sql_destination(
    ws: &Workspace,
    dialect: Dialect,
    ep: crate::Result<PgEndpoint>,
    ctx: &CheckContext,
    out: &mut Checks,
) -> Option<Client> {
    const A: &str = "destination";
    let ep = match ep {
        Ok(e) => e,
        Err(e) => {
            let text = e.to_string();
            out.fail(
                A,
                "destination.url",
                Some(
                    text.strip_prefix("destination.url: ")
                        .unwrap_or(&text)
                        .to_string(),
                ),
                "fix destination.url in the workspace",
            );
            return None;
        }
    };
    let c = match ep.connect().await {
        Ok(c) => c,
        Err(e) => {
            let text = e.to_string();
            let db = ep
                .display()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string();
            if text.contains("3D000") {
                out.fail(
                    A,
                    format!("database {db} exists"),
                    Some(text),
                    format!("CREATE DATABASE {};", quote_ident(&db)),
                );
            } else {
                out.fail_connect(
                    A,
                    connect_label(&ep),
                    &e,
                    connect_fix(&ep, &ws.destination.password_env, &e),
                );
            }
            return None;
        }
    };
    out.pass(A, connect_label(&ep));
    let ((user, superuser), db) = match (
        whoami(&c).await,
        one(&c, "SELECT current_database()", "reading the database").await,
    ) {
        (Ok(w), Ok(db)) => (w, db),
        (Err(e), _) | (_, Err(e)) => {
            out.fail(
                A,
                "read the connected user",
                Some(e.to_string()),
                "check the destination is PostgreSQL or Redshift",
            );
            return None;
        }
    };
    out.pass(A, format!("database {db} exists"));
    let u = ident(&user);
    match server_identity(dialect, &ep, &c).await {
        Ok(id) if ctx.source_identity.as_deref() == Some(id.as_str()) => {
            out.same_as_source(A, "database");
        }
        Ok(_) if ctx.source_identity.is_some() => out.pass(A, "a database of its own"),
        Ok(_) => {}
        Err(e) => {
            out.fail(
                A,
                "identify the destination server",
                Some(e.to_string()),
                "check the destination is PostgreSQL or Redshift",
            );
            return None;
        }
    }
    if ctx.preserve_ownership {
        if superuser {
            out.pass(A, "superuser (preserve_ownership = true)");
        } else {
            let fix = match dialect {
                Dialect::Redshift => format!("ALTER USER {} CREATEUSER;", quote_ident(&user)),
                Dialect::Postgres => format!("ALTER ROLE {} SUPERUSER;", quote_ident(&user)),
            };
            out.fail(
                A,
                "superuser (preserve_ownership = true)",
                Some(format!(
                    "preserve_ownership needs a superuser, and {user} is not one (or set preserve_ownership = false)"
                )),
                fix,
            );
        }
    }
    if superuser {
        out.pass(A, "every privilege (superuser)");
        return Some(c);
    }
    // Redshift's documented setup grants TEMPORARY; a PostgreSQL job never uses it.
    let privileges: &[&str] = match dialect {
        Dialect::Redshift => &["CREATE", "TEMPORARY"],
        Dialect::Postgres => &["CREATE"],
    };
    for p in privileges {
        let has = one(
            &c,
            &format!(
                "SELECT has_database_privilege({}, '{p}')",
                quote_literal(&db)
            ),
            "checking database privileges",
        )
        .await
        .unwrap_or_default();
        if matches!(has.as_str(), "t" | "true") {
            out.pass(A, format!("{p} on database {db}"));
        } else {
            out.fail(
                A,
                format!("{p} on database {db}"),
                None,
                format!("GRANT {p} ON DATABASE {} TO {u};", quote_ident(&db)),
            );
        }
    }
    let existing = rows(
        &c,
        "SELECT nspname, pg_get_userbyid(nspowner) AS owner FROM pg_namespace",
        "listing destination schemas",
    )
    .await
    .unwrap_or_default();
    let grants = if dialect == Dialect::Redshift {
        rows(
            &c,
            "SELECT namespace_name, privilege_type FROM svv_schema_privileges \
             WHERE identity_name = current_user OR identity_type = 'public'",
            "reading schema privileges",
        )
        .await
        .unwrap_or_default()
    } else {
        Vec::new()
    };
    for s in &ctx.schemas {
        let Some(owner) = existing
            .iter()
            .find(|r| r.get("nspname") == Some(s))
            .map(|r| r.text("owner"))
        else {
            continue;
        };
        let q = quote_ident(s);
        if dialect == Dialect::Postgres {
            let member = one(
                &c,
                &format!(
                    "SELECT pg_has_role(nspowner, 'USAGE') FROM pg_namespace WHERE nspname = {}",
                    quote_literal(s)
                ),
                "checking schema owners",
            )
            .await
            .unwrap_or_default();
            if matches!(member.as_str(), "t" | "true") {
                out.pass(A, format!("owner of existing schema {s}"));
            } else {
                out.fail(
                    A,
                    format!("owner of existing schema {s}"),
                    Some(format!("owned by {owner}; mirage drops and recreates it")),
                    format!("ALTER SCHEMA {q} OWNER TO {u};"),
                );
            }
            continue;
        }
        if owner == user {
            out.pass(A, format!("owner of existing schema {s}"));
            continue;
        }
        // Another user's schema is dropped and created again as this user's: DROP is all it
        // takes (`public` stays and is written into).
        let needs: &[&str] = if s == "public" {
            &["USAGE", "CREATE"]
        } else {
            &["DROP"]
        };
        let missing: Vec<&str> = needs
            .iter()
            .copied()
            .filter(|p| {
                !grants.iter().any(|g| {
                    g.get("namespace_name") == Some(s)
                        && g.get("privilege_type")
                            .is_some_and(|x| x.eq_ignore_ascii_case(p))
                })
            })
            .collect();
        let what = format!("{} on existing schema {s}", needs.join(", "));
        if missing.is_empty() {
            out.pass(A, what);
        } else {
            out.fail(
                A,
                what,
                Some(format!("owned by {owner}; missing {}", missing.join(", "))),
                missing
                    .iter()
                    .map(|p| format!("GRANT {p} ON SCHEMA {q} TO {u};"))
                    .collect::<Vec<_>>()
                    .join("\n"),
            );
        }
    }
    Some(c)
}
