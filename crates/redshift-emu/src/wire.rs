//! The PostgreSQL wire protocol, as much as the emulator needs: message framing, the few
//! messages it builds itself, and [`Backend`] — a raw session with PostgreSQL on which the proxy
//! relays the client's messages and runs what it emulates (`COPY … TO STDOUT` for UNLOAD,
//! `COPY … FROM STDIN` for COPY) inside the client's own session and transaction.
//!
//! Emulated work uses the extended protocol without `Sync`, so it sits inside whatever the client
//! has going: a failure leaves the backend ignoring messages until the next `Sync`, exactly as a
//! failed statement of the client's would.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// One protocol message: its type byte and body (without the length).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    /// The message type byte (`Q`, `D`, `Z` …).
    pub tag: u8,
    /// The message's content after the type byte and the length.
    pub body: Bytes,
}

impl Msg {
    /// A message of type `tag` with `body` as its content.
    pub fn new(tag: u8, body: impl Into<Bytes>) -> Msg {
        Msg {
            tag,
            body: body.into(),
        }
    }

    /// The framed bytes.
    pub fn encode(&self, out: &mut BytesMut) {
        out.put_u8(self.tag);
        out.put_i32(self.body.len() as i32 + 4);
        out.extend_from_slice(&self.body);
    }

    /// A reader over the body.
    pub fn fields(&self) -> Fields {
        Fields(self.body.clone())
    }
}

/// Reading a message body field by field.
pub struct Fields(Bytes);

impl Fields {
    /// A NUL-terminated string (invalid UTF-8 replaced).
    pub fn cstr(&mut self) -> io::Result<String> {
        let end = self
            .0
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| protocol("string field without its terminator"))?;
        let s = String::from_utf8_lossy(&self.0[..end]).into_owned();
        self.0.advance(end + 1);
        Ok(s)
    }

    /// One byte.
    pub fn u8(&mut self) -> io::Result<u8> {
        if self.0.is_empty() {
            return Err(protocol("message ends early"));
        }
        Ok(self.0.get_u8())
    }

    /// A big-endian 16-bit integer (counts, format codes).
    pub fn i16(&mut self) -> io::Result<i16> {
        if self.0.len() < 2 {
            return Err(protocol("message ends early"));
        }
        Ok(self.0.get_i16())
    }

    /// A big-endian 32-bit integer (lengths, OIDs, codes).
    pub fn i32(&mut self) -> io::Result<i32> {
        if self.0.len() < 4 {
            return Err(protocol("message ends early"));
        }
        Ok(self.0.get_i32())
    }

    /// The next `n` bytes as they are (a value of a given length).
    pub fn bytes(&mut self, n: usize) -> io::Result<Bytes> {
        if self.0.len() < n {
            return Err(protocol("message ends early"));
        }
        Ok(self.0.split_to(n))
    }

    /// Whatever of the body has not been read.
    pub fn rest(self) -> Bytes {
        self.0
    }
}

/// An `InvalidData` error for a message that breaks the protocol.
pub fn protocol(m: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("protocol error: {m}"))
}

/// Read one typed message; `None` at a clean end of stream.
pub async fn read_msg<R: tokio::io::AsyncRead + Unpin>(r: &mut R) -> io::Result<Option<Msg>> {
    let tag = match r.read_u8().await {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = r.read_i32().await?;
    if !(4..=1 << 30).contains(&len) {
        return Err(protocol("bad message length"));
    }
    let mut body = vec![0u8; len as usize - 4];
    r.read_exact(&mut body).await?;
    Ok(Some(Msg::new(tag, body)))
}

/// Read the untyped first message of a connection (startup, SSL or cancel request): its body.
pub async fn read_startup<R: tokio::io::AsyncRead + Unpin>(r: &mut R) -> io::Result<Bytes> {
    let len = r.read_i32().await?;
    if !(8..=10_000).contains(&len) {
        return Err(protocol("bad startup packet length"));
    }
    let mut body = vec![0u8; len as usize - 4];
    r.read_exact(&mut body).await?;
    Ok(body.into())
}

fn cstr(out: &mut BytesMut, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.put_u8(0);
}

fn body(f: impl FnOnce(&mut BytesMut)) -> Bytes {
    let mut b = BytesMut::new();
    f(&mut b);
    b.freeze()
}

/// Messages the emulator builds.
pub mod build {
    use super::*;

    /// The body of a protocol 3.0 StartupMessage for `user` and `database`.
    pub fn startup(user: &str, database: &str) -> Bytes {
        body(|b| {
            b.put_i32(196_608);
            for (k, v) in [("user", user), ("database", database)] {
                cstr(b, k);
                cstr(b, v);
            }
            b.put_u8(0);
        })
    }

    /// Query: run `sql` with the simple protocol.
    pub fn query(sql: &str) -> Msg {
        Msg::new(b'Q', body(|b| cstr(b, sql)))
    }

    /// Parse: prepare `sql` as statement `name` (`""` is the unnamed one), parameter types
    /// inferred.
    pub fn parse(name: &str, sql: &str) -> Msg {
        Msg::new(
            b'P',
            body(|b| {
                cstr(b, name);
                cstr(b, sql);
                b.put_i16(0);
            }),
        )
    }

    /// Bind with text parameters and text results.
    pub fn bind(portal: &str, statement: &str, params: &[Option<&str>]) -> Msg {
        Msg::new(
            b'B',
            body(|b| {
                cstr(b, portal);
                cstr(b, statement);
                b.put_i16(0);
                b.put_i16(params.len() as i16);
                for p in params {
                    match p {
                        Some(v) => {
                            b.put_i32(v.len() as i32);
                            b.extend_from_slice(v.as_bytes());
                        }
                        None => b.put_i32(-1),
                    }
                }
                b.put_i16(0);
            }),
        )
    }

    /// Describe a statement (`kind` `S`) or a portal (`P`).
    pub fn describe(kind: u8, name: &str) -> Msg {
        Msg::new(
            b'D',
            body(|b| {
                b.put_u8(kind);
                cstr(b, name);
            }),
        )
    }

    /// Execute a portal to completion (no row limit).
    pub fn execute(portal: &str) -> Msg {
        Msg::new(
            b'E',
            body(|b| {
                cstr(b, portal);
                b.put_i32(0);
            }),
        )
    }

    /// Flush: have PostgreSQL send what it has without ending the extended-protocol cycle.
    pub fn flush() -> Msg {
        Msg::new(b'H', Bytes::new())
    }

    /// Sync: end the extended-protocol cycle (commits an implicit transaction, clears an error).
    pub fn sync() -> Msg {
        Msg::new(b'S', Bytes::new())
    }

    /// CopyData: a chunk of COPY data, in either direction.
    pub fn copy_data(data: Bytes) -> Msg {
        Msg::new(b'd', data)
    }

    /// CopyDone: the end of COPY data.
    pub fn copy_done() -> Msg {
        Msg::new(b'c', Bytes::new())
    }

    /// CopyFail: abandon a COPY FROM STDIN, with `m` as the reason PostgreSQL reports.
    pub fn copy_fail(m: &str) -> Msg {
        Msg::new(b'f', body(|b| cstr(b, m)))
    }

    /// ParseComplete, as the proxy answers a Parse it handles itself.
    pub fn parse_complete() -> Msg {
        Msg::new(b'1', Bytes::new())
    }

    /// BindComplete, as the proxy answers a Bind it handles itself.
    pub fn bind_complete() -> Msg {
        Msg::new(b'2', Bytes::new())
    }

    /// CloseComplete, as the proxy answers a Close it handles itself.
    pub fn close_complete() -> Msg {
        Msg::new(b'3', Bytes::new())
    }

    /// NoData: a described statement or portal returns no rows.
    pub fn no_data() -> Msg {
        Msg::new(b'n', Bytes::new())
    }

    /// ParameterDescription with no parameters.
    pub fn no_parameters() -> Msg {
        Msg::new(b't', body(|b| b.put_i16(0)))
    }

    /// A row description of text columns.
    pub fn row_description(names: &[&str]) -> Msg {
        Msg::new(
            b'T',
            body(|b| {
                b.put_i16(names.len() as i16);
                for n in names {
                    cstr(b, n);
                    b.put_i32(0);
                    b.put_i16(0);
                    b.put_u32(25);
                    b.put_i16(-1);
                    b.put_i32(-1);
                    b.put_i16(0);
                }
            }),
        )
    }

    /// DataRow of text values (`None` is NULL).
    pub fn data_row(values: &[Option<&str>]) -> Msg {
        Msg::new(
            b'D',
            body(|b| {
                b.put_i16(values.len() as i16);
                for v in values {
                    match v {
                        Some(v) => {
                            b.put_i32(v.len() as i32);
                            b.extend_from_slice(v.as_bytes());
                        }
                        None => b.put_i32(-1),
                    }
                }
            }),
        )
    }

    /// CommandComplete with its tag (`UNLOAD`, `COPY 42` …).
    pub fn command_complete(tag: &str) -> Msg {
        Msg::new(b'C', body(|b| cstr(b, tag)))
    }

    /// ErrorResponse with a SQLSTATE `code` and `message`.
    pub fn error(code: &str, message: &str) -> Msg {
        error_with("ERROR", code, message)
    }

    /// ErrorResponse that ends the session (authentication failures).
    pub fn fatal(code: &str, message: &str) -> Msg {
        error_with("FATAL", code, message)
    }

    fn error_with(severity: &str, code: &str, message: &str) -> Msg {
        Msg::new(
            b'E',
            body(|b| {
                for (k, v) in [
                    (b'S', severity),
                    (b'V', severity),
                    (b'C', code),
                    (b'M', message),
                ] {
                    b.put_u8(k);
                    cstr(b, v);
                }
                b.put_u8(0);
            }),
        )
    }

    /// NoticeResponse at INFO level, as Redshift reports a finished UNLOAD or COPY.
    pub fn notice(message: &str) -> Msg {
        Msg::new(
            b'N',
            body(|b| {
                for (k, v) in [
                    (b'S', "INFO"),
                    (b'V', "INFO"),
                    (b'C', "00000"),
                    (b'M', message),
                ] {
                    b.put_u8(k);
                    cstr(b, v);
                }
                b.put_u8(0);
            }),
        )
    }

    /// ReadyForQuery with the transaction status (`I` idle, `T` in a transaction, `E` failed).
    pub fn ready(status: u8) -> Msg {
        Msg::new(b'Z', vec![status])
    }
}

/// The fields of an ErrorResponse or NoticeResponse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbError {
    /// The SQLSTATE (`22001`, `23514` …).
    pub code: String,
    /// The primary message.
    pub message: String,
    /// `W`: where, e.g. `COPY t, line 3, column c: "…"`.
    pub context: Option<String>,
    /// `c`: the column the error is about, when PostgreSQL names one.
    pub column: Option<String>,
    /// `n`: the constraint violated (the emulator's `rs_bytes_…` and `rs_char_…` checks).
    pub constraint: Option<String>,
}

impl DbError {
    /// The fields of an `E` or `N` message; unknown fields are skipped.
    pub fn parse(m: &Msg) -> DbError {
        let mut e = DbError {
            code: String::new(),
            message: String::new(),
            context: None,
            column: None,
            constraint: None,
        };
        let mut f = m.fields();
        while let Ok(k) = f.u8() {
            if k == 0 {
                break;
            }
            let Ok(v) = f.cstr() else { break };
            match k {
                b'C' => e.code = v,
                b'M' => e.message = v,
                b'W' => e.context = Some(v),
                b'c' => e.column = Some(v),
                b'n' => e.constraint = Some(v),
                _ => {}
            }
        }
        e
    }
}

/// Why a backend operation failed.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The connection failed or PostgreSQL broke the protocol.
    #[error("connection to PostgreSQL: {0}")]
    Io(#[from] io::Error),
    /// PostgreSQL refused; the backend now ignores messages until `Sync`.
    #[error("{}", .0.message)]
    Db(DbError),
}

/// What a statement returned, in text.
#[derive(Debug, Clone, Default)]
pub struct Rows {
    /// Name and type OID of each column.
    pub columns: Vec<(String, u32)>,
    /// The rows, each value as text (`None` is NULL).
    pub rows: Vec<Vec<Option<String>>>,
    /// The CommandComplete tag (`SELECT 3`, `INSERT 0 1` …); empty for an empty query.
    pub tag: String,
}

/// A raw session with PostgreSQL.
pub struct Backend {
    reader: BufReader<OwnedReadHalf>,
    writer: BufWriter<OwnedWriteHalf>,
    /// Asynchronous messages (notices, parameter changes) seen during emulated work, for the
    /// proxy to pass on.
    pub pending: Vec<Msg>,
    /// Set when PostgreSQL reported an error and waits for `Sync`.
    pub failed: Option<DbError>,
    /// The transaction status of the last ReadyForQuery.
    pub status: u8,
}

impl Backend {
    /// A session over a connected stream, before startup (see [`Backend::connect`]).
    pub fn new(stream: TcpStream) -> Backend {
        let _ = stream.set_nodelay(true);
        let (r, w) = stream.into_split();
        Backend {
            reader: BufReader::with_capacity(1 << 16, r),
            writer: BufWriter::with_capacity(1 << 16, w),
            pending: Vec::new(),
            failed: None,
            status: b'I',
        }
    }

    /// Connect as `user` to `database` where PostgreSQL trusts local connections.
    pub async fn connect(addr: &str, user: &str, database: &str) -> Result<Backend, WireError> {
        let stream = TcpStream::connect(addr).await?;
        let mut b = Backend::new(stream);
        b.write_startup(&build::startup(user, database)).await?;
        loop {
            let m = b.recv().await?;
            match m.tag {
                b'R' if m.fields().i32()? == 0 => {}
                b'R' => return Err(protocol("PostgreSQL asked for a password").into()),
                b'E' => return Err(WireError::Db(DbError::parse(&m))),
                b'Z' => {
                    b.status = m.body.first().copied().unwrap_or(b'I');
                    return Ok(b);
                }
                _ => {}
            }
        }
    }

    /// Send an untyped startup-phase message (its length, then `body`) and flush.
    pub async fn write_startup(&mut self, body: &[u8]) -> io::Result<()> {
        self.writer.write_i32(body.len() as i32 + 4).await?;
        self.writer.write_all(body).await?;
        self.writer.flush().await
    }

    /// Queue a message (sent at the next [`Backend::flush`]).
    pub async fn send(&mut self, m: &Msg) -> io::Result<()> {
        let mut b = BytesMut::with_capacity(m.body.len() + 5);
        m.encode(&mut b);
        self.writer.write_all(&b).await
    }

    /// Send everything queued.
    pub async fn flush(&mut self) -> io::Result<()> {
        self.writer.flush().await
    }

    /// The next message from PostgreSQL, whatever it is; an error if the connection ended.
    pub async fn recv(&mut self) -> io::Result<Msg> {
        read_msg(&mut self.reader)
            .await?
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "PostgreSQL closed"))
    }

    /// The next message that is not asynchronous; those are kept in `pending`.
    async fn next(&mut self) -> Result<Msg, WireError> {
        loop {
            let m = self.recv().await?;
            match m.tag {
                b'N' | b'S' | b'A' => self.pending.push(m),
                b'E' => {
                    let e = DbError::parse(&m);
                    self.failed = Some(e.clone());
                    return Err(WireError::Db(e));
                }
                _ => return Ok(m),
            }
        }
    }

    async fn expect(&mut self, tag: u8) -> Result<Msg, WireError> {
        let m = self.next().await?;
        if m.tag != tag {
            return Err(protocol(&format!(
                "expected '{}' from PostgreSQL, got '{}'",
                tag as char, m.tag as char
            ))
            .into());
        }
        Ok(m)
    }

    /// Parse, bind (text parameters) and execute `sql` in the unnamed portal, then flush.
    async fn start(&mut self, sql: &str, params: &[Option<&str>]) -> Result<(), WireError> {
        self.send(&build::parse("", sql)).await?;
        self.send(&build::bind("", "", params)).await?;
        self.send(&build::describe(b'P', "")).await?;
        self.send(&build::execute("")).await?;
        self.send(&build::flush()).await?;
        self.flush().await?;
        self.expect(b'1').await?;
        self.expect(b'2').await?;
        Ok(())
    }

    /// Run one statement and collect its rows as text.
    pub async fn run(&mut self, sql: &str, params: &[Option<&str>]) -> Result<Rows, WireError> {
        self.start(sql, params).await?;
        let mut out = Rows::default();
        loop {
            let m = self.next().await?;
            match m.tag {
                b'T' => out.columns = row_description(&m)?,
                b'n' => {}
                b'D' => out.rows.push(data_row(&m)?),
                b'C' => {
                    out.tag = m.fields().cstr()?;
                    return Ok(out);
                }
                b'I' => return Ok(out),
                t => {
                    return Err(
                        protocol(&format!("unexpected '{}' from PostgreSQL", t as char)).into(),
                    );
                }
            }
        }
    }

    /// Column names and type OIDs of a query, without running it.
    pub async fn describe_query(&mut self, sql: &str) -> Result<Vec<(String, u32)>, WireError> {
        self.send(&build::parse("", sql)).await?;
        self.send(&build::describe(b'S', "")).await?;
        self.send(&build::flush()).await?;
        self.flush().await?;
        self.expect(b'1').await?;
        self.expect(b't').await?;
        let m = self.next().await?;
        match m.tag {
            b'T' => Ok(row_description(&m)?),
            _ => Ok(Vec::new()),
        }
    }

    /// Start `COPY … TO STDOUT`; then call [`Backend::copy_out_next`] until it gives `None`.
    pub async fn copy_out_start(&mut self, sql: &str) -> Result<(), WireError> {
        self.start(sql, &[]).await?;
        self.expect(b'n').await?;
        self.expect(b'H').await?;
        Ok(())
    }

    /// The next chunk of `COPY … TO STDOUT` data, or `None` once the COPY has completed.
    pub async fn copy_out_next(&mut self) -> Result<Option<Bytes>, WireError> {
        let m = self.next().await?;
        match m.tag {
            b'd' => Ok(Some(m.body)),
            b'c' => {
                self.expect(b'C').await?;
                Ok(None)
            }
            t => Err(protocol(&format!("unexpected '{}' during COPY OUT", t as char)).into()),
        }
    }

    /// Read and drop the rest of a `COPY … TO STDOUT`.
    pub async fn copy_out_drain(&mut self) -> Result<(), WireError> {
        while self.copy_out_next().await?.is_some() {}
        Ok(())
    }

    /// Start `COPY … FROM STDIN`; then [`Backend::copy_in_send`] and [`Backend::copy_in_finish`].
    pub async fn copy_in_start(&mut self, sql: &str) -> Result<(), WireError> {
        self.start(sql, &[]).await?;
        self.expect(b'n').await?;
        self.expect(b'G').await?;
        Ok(())
    }

    /// Queue a chunk of `COPY … FROM STDIN` data (sent when the buffer fills or is flushed).
    pub async fn copy_in_send(&mut self, data: Bytes) -> Result<(), WireError> {
        self.send(&build::copy_data(data)).await?;
        Ok(())
    }

    /// End the data; the rows loaded.
    pub async fn copy_in_finish(&mut self) -> Result<u64, WireError> {
        self.send(&build::copy_done()).await?;
        self.send(&build::flush()).await?;
        self.flush().await?;
        let m = self.expect(b'C').await?;
        let tag = m.fields().cstr()?;
        Ok(tag
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0))
    }

    /// Abandon a COPY FROM STDIN (the backend reports the failure, which is returned).
    pub async fn copy_in_fail(&mut self, why: &str) -> WireError {
        let sent = async {
            self.send(&build::copy_fail(why)).await?;
            self.send(&build::flush()).await?;
            self.flush().await
        }
        .await;
        if let Err(e) = sent {
            return e.into();
        }
        match self.next().await {
            Err(e) => e,
            Ok(_) => protocol("COPY continued after CopyFail").into(),
        }
    }

    /// End the extended-protocol cycle: `Sync`, then wait for ReadyForQuery.
    pub async fn sync(&mut self) -> Result<(), WireError> {
        self.send(&build::sync()).await?;
        self.flush().await?;
        loop {
            let m = self.recv().await?;
            match m.tag {
                b'Z' => {
                    self.status = m.body.first().copied().unwrap_or(b'I');
                    self.failed = None;
                    return Ok(());
                }
                b'N' | b'S' | b'A' => self.pending.push(m),
                _ => {}
            }
        }
    }

    /// Simple query for setup: run `sql` (several statements allowed) and wait for ReadyForQuery.
    pub async fn batch(&mut self, sql: &str) -> Result<(), WireError> {
        self.send(&build::query(sql)).await?;
        self.flush().await?;
        let mut failure = None;
        loop {
            let m = self.recv().await?;
            match m.tag {
                b'E' => failure = Some(DbError::parse(&m)),
                b'Z' => break,
                _ => {}
            }
        }
        failure.map_or(Ok(()), |e| Err(WireError::Db(e)))
    }
}

fn row_description(m: &Msg) -> io::Result<Vec<(String, u32)>> {
    let mut f = m.fields();
    let n = f.i16()?;
    let mut out = Vec::with_capacity(n.max(0) as usize);
    for _ in 0..n {
        let name = f.cstr()?;
        f.i32()?;
        f.i16()?;
        let oid = f.i32()? as u32;
        f.i16()?;
        f.i32()?;
        f.i16()?;
        out.push((name, oid));
    }
    Ok(out)
}

fn data_row(m: &Msg) -> io::Result<Vec<Option<String>>> {
    let mut f = m.fields();
    let n = f.i16()?;
    let mut out = Vec::with_capacity(n.max(0) as usize);
    for _ in 0..n {
        let len = f.i32()?;
        out.push(if len < 0 {
            None
        } else {
            Some(String::from_utf8_lossy(&f.bytes(len as usize)?).into_owned())
        });
    }
    Ok(out)
}
