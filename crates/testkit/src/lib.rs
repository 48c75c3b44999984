//! Throwaway PostgreSQL clusters for tests and benchmarks.
//!
//! [`PgCluster::start`] runs `initdb` into a temporary folder and `pg_ctl start` on a free
//! loopback port (as the `postgres` OS user when running as root, since PostgreSQL refuses to run
//! as root). The cluster is stopped and its folder removed when the value is dropped.
//!
//! ```no_run
//! let pg = mirage_testkit::PgCluster::start().unwrap();
//! pg.create_database("app").unwrap();
//! assert_eq!(pg.psql("app", "select 1").unwrap(), "1");
//! ```

#![warn(missing_docs)]

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Error from the harness, with the command's own output.
#[derive(Debug)]
pub struct HarnessError(pub String);

impl std::fmt::Display for HarnessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HarnessError {}

type Result<T> = std::result::Result<T, HarnessError>;

/// The folder holding `initdb`, `pg_ctl` and `postgres`: `$MIRAGE_PG_BIN`, the newest
/// `/usr/lib/postgresql/<v>/bin`, or the folder of `initdb` on `PATH`.
pub fn pg_bin_dir() -> Result<PathBuf> {
    if let Ok(dir) = std::env::var("MIRAGE_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        if dir.join("initdb").exists() {
            return Ok(dir);
        }
    }
    Err(HarnessError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found; install them \
         (apt-get install postgresql) or set MIRAGE_PG_BIN"
            .into(),
    ))
}

/// uid and gid of the `postgres` OS user, when running as root.
fn run_as() -> Option<(u32, u32)> {
    // SAFETY-free check: root's HOME-independent uid via /proc/self/status.
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid: u32 = status
        .lines()
        .find(|l| l.starts_with("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    if uid != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&"postgres"))
            .then(|| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))?
    })
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| HarnessError(format!("bind: {e}")))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| HarnessError(format!("local_addr: {e}")))
}

fn check(what: &str, out: std::io::Result<Output>) -> Result<Output> {
    let out = out.map_err(|e| HarnessError(format!("{what}: {e}")))?;
    if !out.status.success() {
        return Err(HarnessError(format!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(out)
}

/// A running throwaway PostgreSQL cluster.
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    owner: Option<(u32, u32)>,
}

impl PgCluster {
    /// initdb + start on a free port. Superuser `postgres`, trust authentication on loopback.
    pub fn start() -> Result<PgCluster> {
        let bin = pg_bin_dir()?;
        let owner = run_as();
        let dir = tempfile::Builder::new()
            .prefix("mirage-pg-")
            .tempdir()
            .map_err(|e| HarnessError(format!("tempdir: {e}")))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .map_err(|e| HarnessError(format!("chown: {e}")))?;
        }
        let mut cluster = PgCluster {
            dir,
            bin,
            port: 0,
            owner,
        };
        let data = cluster.data_dir();
        check(
            "initdb",
            cluster
                .command("initdb")
                .args([
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "-N",
                    "-D",
                ])
                .arg(&data)
                .output(),
        )?;
        let mut last = None;
        for _ in 0..5 {
            cluster.port = free_port()?;
            match cluster.pg_ctl_start() {
                Ok(_) => return Ok(cluster),
                Err(e) => last = Some(e),
            }
        }
        let log =
            std::fs::read_to_string(cluster.dir.path().join("server.log")).unwrap_or_default();
        Err(HarnessError(format!(
            "{}\nserver log:\n{log}",
            last.map(|e| e.0).unwrap_or_default()
        )))
    }

    /// `pg_ctl start` on the cluster's port. The server's defaults make commits asynchronous
    /// (`synchronous_commit=off`): only a client that asks for durable commits gets them.
    fn pg_ctl_start(&self) -> Result<Output> {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-w", "-t", "60", "-o", &opts, "-l"])
            .arg(self.dir.path().join("server.log"))
            .arg("start")
            .output();
        check("pg_ctl start", out)
    }

    /// Crash the server (`pg_ctl stop -m immediate`: no checkpoint, as a power cut is to the
    /// server) and start it again on the same port; what was durably committed is there.
    pub fn crash_and_restart(&self) -> Result<()> {
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-w", "-m", "immediate", "stop"])
            .output();
        check("pg_ctl stop -m immediate", out)?;
        self.pg_ctl_start().map(|_| ())
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(self.bin.join(program));
        if let Some((uid, gid)) = self.owner {
            c.uid(uid).gid(gid);
        }
        c.stdin(Stdio::null()).env("LC_ALL", "C");
        c
    }

    /// Turn TLS on with certificates made for the test: a CA, a server certificate naming only
    /// `db.example` (so `verify-full` at 127.0.0.1 fails on the name), and a client certificate
    /// for role `certuser` (created). TCP connections must then use TLS (`hostnossl … reject`);
    /// `certuser` logs in with its certificate. Returns the folder holding `ca.crt`,
    /// `other-ca.crt` (a CA that signed nothing here), `client.crt` and `client.key`.
    pub fn enable_tls(&self) -> Result<PathBuf> {
        let dir = self.dir.path().join("tls");
        std::fs::create_dir_all(&dir).map_err(|e| HarnessError(format!("tls dir: {e}")))?;
        let openssl = |args: &[&str]| {
            check(
                "openssl",
                Command::new("openssl")
                    .args(args)
                    .current_dir(&dir)
                    .stdin(Stdio::null())
                    .output(),
            )
            .map(|_| ())
        };
        for ca in ["ca", "other-ca"] {
            openssl(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN=mirage test {ca}"),
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.crt"),
            ])?;
        }
        for (name, cn, ext) in [
            ("server", "db.example", "subjectAltName=DNS:db.example"),
            ("client", "certuser", "keyUsage=digitalSignature"),
        ] {
            openssl(&[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN={cn}"),
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
            ])?;
            std::fs::write(dir.join(format!("{name}.ext")), format!("{ext}\n"))
                .map_err(|e| HarnessError(format!("ext: {e}")))?;
            openssl(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                &format!("{name}.crt"),
                "-extfile",
                &format!("{name}.ext"),
            ])?;
        }
        // The server's copies, owned by the server's user and private to it.
        let data = self.data_dir();
        for f in ["server.crt", "server.key", "ca.crt"] {
            let to = data.join(f);
            std::fs::copy(dir.join(f), &to).map_err(|e| HarnessError(format!("copy {f}: {e}")))?;
            std::fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .map_err(|e| HarnessError(format!("chmod {f}: {e}")))?;
            if let Some((uid, gid)) = self.owner {
                std::os::unix::fs::chown(&to, Some(uid), Some(gid))
                    .map_err(|e| HarnessError(format!("chown {f}: {e}")))?;
            }
        }
        std::fs::set_permissions(
            dir.join("client.key"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .map_err(|e| HarnessError(format!("chmod client.key: {e}")))?;
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\n\
             hostssl all certuser 127.0.0.1/32 cert\n\
             hostssl all all 127.0.0.1/32 trust\n\
             hostnossl all all 127.0.0.1/32 reject\n",
        )
        .map_err(|e| HarnessError(format!("pg_hba.conf: {e}")))?;
        for sql in [
            "ALTER SYSTEM SET ssl = on",
            "ALTER SYSTEM SET ssl_cert_file = 'server.crt'",
            "ALTER SYSTEM SET ssl_key_file = 'server.key'",
            "ALTER SYSTEM SET ssl_ca_file = 'ca.crt'",
            "CREATE ROLE certuser LOGIN SUPERUSER",
        ] {
            self.psql("postgres", sql)?;
        }
        self.psql("postgres", "SELECT pg_reload_conf()")?;
        // The reload is asynchronous: wait until TCP connections need TLS.
        for _ in 0..50 {
            if self.psql("postgres", "SHOW ssl")? == "on" {
                return Ok(dir);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Err(HarnessError("TLS did not turn on".into()))
    }

    /// The loopback TCP port the cluster listens on (at 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The postmaster's process id (from `postmaster.pid`), while the cluster runs.
    pub fn postmaster_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.data_dir().join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// Folder of the cluster's files (data directory, log, socket).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// URL for a database as the superuser.
    pub fn url(&self, db: &str) -> String {
        self.url_as("postgres", db)
    }

    /// URL for a database as another user.
    pub fn url_as(&self, user: &str, db: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/{db}", self.port)
    }

    /// Create an empty database `name` (owned by the superuser).
    pub fn create_database(&self, name: &str) -> Result<()> {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""))
            .map(|_| ())
    }

    /// Run SQL with psql as the superuser, stopping at the first error; returns unaligned,
    /// tuples-only output (`|`-separated fields, one row a line), trimmed.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String> {
        self.psql_url(&self.url(db), sql)
    }

    /// Run SQL with psql at a URL.
    pub fn psql_url(&self, url: &str, sql: &str) -> Result<String> {
        let out = check(
            "psql",
            Command::new("psql")
                .args([
                    "-X",
                    "-q",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-A",
                    "-t",
                    "-d",
                    url,
                    "-c",
                    sql,
                ])
                .stdin(Stdio::null())
                .output(),
        )?;
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    }

    /// `pg_dump --schema-only` of a database, owners and privileges left out.
    pub fn schema_dump(&self, db: &str) -> Result<String> {
        let out = check(
            "pg_dump",
            Command::new("pg_dump")
                .args([
                    "--schema-only",
                    "--no-owner",
                    "--no-privileges",
                    "-d",
                    &self.url(db),
                ])
                .stdin(Stdio::null())
                .output(),
        )?;
        // pg_dump 15.14+ wraps the script in \restrict <random key>; that line differs per dump.
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
            .map(|l| format!("{l}\n"))
            .collect())
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A moto server (AWS APIs emulated) on a free loopback port, stopped when dropped.
///
/// The executable is `$MIRAGE_MOTO_SERVER` (set by `scripts/test`, which installs moto into
/// `target/moto-venv`), or `moto_server` on `PATH`.
pub struct MotoServer {
    child: std::process::Child,
    port: u16,
    /// Holds the request recording (`/moto-api/recorder/…`), so moto writes none in the
    /// current folder.
    dir: tempfile::TempDir,
}

impl MotoServer {
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Start moto on a free port and wait (up to 60 s) until it answers HTTP.
    pub fn start() -> Result<MotoServer> {
        let exe = std::env::var("MIRAGE_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let port = free_port()?;
        let dir = tempfile::Builder::new()
            .prefix("mirage-moto-")
            .tempdir()
            .map_err(|e| HarnessError(format!("a folder for moto: {e}")))?;
        let child = Command::new(&exe)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_RECORDER_FILEPATH", dir.path().join("recording.jsonl"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                HarnessError(format!(
                    "cannot start moto ({exe}): {e}; run `bash scripts/test` (it installs moto) or \
                     `pip install 'moto[server]'` and set MIRAGE_MOTO_SERVER"
                ))
            })?;
        let server = MotoServer { child, port, dir };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if server.request("GET", "/").is_ok() {
                return Ok(server);
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        Err(HarnessError("moto did not answer within 60 s".into()))
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A plain HTTP request; returns the status line.
    fn request(&self, method: &str, path: &str) -> Result<String> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port))
            .map_err(|e| HarnessError(format!("connect to moto: {e}")))?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .map_err(|e| HarnessError(format!("write to moto: {e}")))?;
        let mut response = String::new();
        s.read_to_string(&mut response)
            .map_err(|e| HarnessError(format!("read from moto: {e}")))?;
        let status = response.lines().next().unwrap_or("").to_string();
        if status.contains(" 200") {
            Ok(status)
        } else {
            Err(HarnessError(format!("moto answered {status}")))
        }
    }

    /// Create an S3 bucket.
    pub fn create_bucket(&self, name: &str) -> Result<()> {
        self.request("PUT", &format!("/{name}")).map(|_| ())
    }

    /// Start recording every request moto receives (forgetting earlier recordings).
    pub fn start_recording(&self) -> Result<()> {
        self.request("POST", "/moto-api/recorder/reset-recording")?;
        self.request("POST", "/moto-api/recorder/start-recording")
            .map(|_| ())
    }

    /// Stop recording; the requests recorded, one JSON object each (headers, method, url,
    /// body).
    pub fn stop_recording(&self) -> Result<Vec<String>> {
        self.request("POST", "/moto-api/recorder/stop-recording")?;
        let text = std::fs::read_to_string(self.dir.path().join("recording.jsonl"))
            .map_err(|e| HarnessError(format!("reading moto's recording: {e}")))?;
        Ok(text.lines().map(str::to_string).collect())
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_queries_and_cleans_up() {
        let pg = PgCluster::start().unwrap();
        pg.create_database("t").unwrap();
        assert_eq!(pg.psql("t", "select 40 + 2").unwrap(), "42");
        let dir = pg.path().to_path_buf();
        drop(pg);
        assert!(!dir.exists());
    }
}
