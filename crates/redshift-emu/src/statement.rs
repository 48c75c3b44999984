//! Parsing Redshift's `UNLOAD` and `COPY` statements, with the option rules Redshift enforces
//! (conflicting options, ranges, `LIMIT` in the outer query, `COPY … FROM STDIN`). Everything
//! else is [`Statement::Other`], for the proxy to pass to PostgreSQL.

use std::fmt;

/// A statement Redshift rejects, with Redshift-like wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Rejected(pub String);

impl From<object_store::Error> for Rejected {
    fn from(e: object_store::Error) -> Self {
        Rejected(format!("S3 error: {e}"))
    }
}

impl From<crate::wire::WireError> for Rejected {
    fn from(e: crate::wire::WireError) -> Self {
        Rejected(e.to_string())
    }
}

fn reject<T>(m: impl Into<String>) -> Result<T, Rejected> {
    Err(Rejected(m.into()))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Ident(String),
    Number(u64),
    Punct(char),
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Word(w) => write!(f, "{w}"),
            Token::Quoted(q) => write!(f, "'{q}'"),
            Token::Ident(i) => write!(f, "\"{i}\""),
            Token::Number(n) => write!(f, "{n}"),
            Token::Punct(c) => write!(f, "{c}"),
        }
    }
}

fn tokenize(sql: &str) -> Result<Vec<Token>, Rejected> {
    let mut out = Vec::new();
    let mut chars = sql.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '\'' || c == '"' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    Some(x) if x == c => {
                        if chars.peek() == Some(&c) {
                            chars.next();
                            s.push(c);
                        } else {
                            break;
                        }
                    }
                    Some(x) => s.push(x),
                    None => return reject("unterminated quoted string"),
                }
            }
            out.push(if c == '\'' {
                Token::Quoted(s)
            } else {
                Token::Ident(s)
            });
        } else if c.is_ascii_digit() {
            let mut n = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                n.push(d);
                chars.next();
            }
            out.push(Token::Number(
                n.parse()
                    .map_err(|_| Rejected("number out of range".into()))?,
            ));
        } else if c.is_alphanumeric() || c == '_' {
            let mut w = String::new();
            while let Some(&d) = chars
                .peek()
                .filter(|d| d.is_alphanumeric() || **d == '_' || **d == '.')
            {
                w.push(d);
                chars.next();
            }
            out.push(Token::Word(w.to_ascii_uppercase()));
        } else {
            out.push(Token::Punct(c));
            chars.next();
        }
    }
    Ok(out)
}

/// How Redshift reaches S3. Required, as on Redshift, but not checked: the emulator reaches S3
/// with its own configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization {
    /// `IAM_ROLE 'arn…'`, or `IAM_ROLE default` (`None`): the cluster assumes that role.
    IamRole(Option<String>),
    /// `CREDENTIALS 'aws_iam_role=…'` or `'aws_access_key_id=…;aws_secret_access_key=…'`.
    Credentials(String),
    /// `ACCESS_KEY_ID '…' SECRET_ACCESS_KEY '…'` (a `SESSION_TOKEN` is accepted and dropped).
    Keys {
        /// The AWS access key id.
        access_key_id: String,
        /// The AWS secret access key.
        secret_access_key: String,
    },
}

/// The layout of the files read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// No `FORMAT` given: delimited text (`|` by default) with backslash escapes.
    Text,
    /// `FORMAT AS CSV`: delimited with `"` quoting (`,` by default).
    Csv,
    /// `FORMAT AS PARQUET` (parsed and checked; the emulator neither writes nor reads it).
    Parquet,
    /// `FORMAT AS JSON` (parsed and checked; the emulator neither writes nor reads it).
    Json,
}

/// How the files are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// `GZIP`: `.gz` files.
    Gzip,
    /// `BZIP2`: `.bz2` files (parsed; the emulator refuses to write or read them).
    Bzip2,
    /// `ZSTD`: `.zst` files.
    Zstd,
    /// `LZOP` (COPY only; parsed, and refused by the emulator).
    Lzop,
}

/// A parsed `UNLOAD`.
#[derive(Debug, Clone, PartialEq)]
pub struct Unload {
    /// The SELECT whose rows are unloaded, with the statement's `''` quoting undone.
    pub query: String,
    /// The `s3://bucket/prefix` every file name starts with.
    pub to: String,
    /// How Redshift would reach S3.
    pub authorization: Authorization,
    /// The files' format (text when not given).
    pub format: FileFormat,
    /// The files' compression, if any.
    pub compression: Option<Compression>,
    /// `MANIFEST`: also write `<prefix>manifest` listing the files.
    pub manifest: bool,
    /// `MANIFEST VERBOSE`: the manifest also gives sizes, record counts and the schema.
    pub manifest_verbose: bool,
    /// `HEADER`: every file starts with a line of column names.
    pub header: bool,
    /// `DELIMITER`: the field separator (`|` for text, `,` for CSV when not given).
    pub delimiter: Option<String>,
    /// `NULL AS`: the text written for NULL (empty when not given).
    pub null_as: Option<String>,
    /// `PARALLEL` (on by default): one file series per slice rather than a single series.
    pub parallel: bool,
    /// `MAXFILESIZE` in bytes: a file reaching it is closed and the next part started.
    pub max_file_size: Option<u64>,
    /// `ALLOWOVERWRITE`: write even when files already exist under the prefix.
    pub allow_overwrite: bool,
    /// `CLEANPATH`: delete the files under the prefix first.
    pub clean_path: bool,
    /// `ENCRYPTED` (checked against the other options; files are written unencrypted).
    pub encrypted: bool,
    /// `KMS_KEY_ID` (requires ENCRYPTED; not used).
    pub kms_key_id: Option<String>,
    /// `ADDQUOTES` (refused with CSV, PARQUET and JSON; not applied to text).
    pub add_quotes: bool,
    /// `ESCAPE` (refused with PARQUET and JSON; not applied to text).
    pub escape: bool,
    /// `REGION` of the bucket (not used: the emulator's storage decides).
    pub region: Option<String>,
    /// `EXTENSION`: a suffix for file names, before the compression's extension.
    pub extension: Option<String>,
}

/// A parsed `COPY table FROM 's3://…'`.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyFrom {
    /// The target table, `schema.table` when qualified, folded to lower case.
    pub table: String,
    /// The column list, in file order; empty means every column in table order.
    pub columns: Vec<String>,
    /// The `s3://` key prefix, or the manifest's URL with `MANIFEST`.
    pub from: String,
    /// How Redshift would reach S3.
    pub authorization: Authorization,
    /// The files' format (text when not given; the emulator loads CSV only).
    pub format: FileFormat,
    /// The files' compression, if any.
    pub compression: Option<Compression>,
    /// `MANIFEST`: `from` is a manifest listing the files (honouring `mandatory`).
    pub manifest: bool,
    /// `NULL AS`: an unquoted field equal to it is NULL (`\N` when not given).
    pub null_as: Option<String>,
    /// `EMPTYASNULL`: an empty field in a character column is NULL rather than `''`.
    pub empty_as_null: bool,
    /// `BLANKSASNULL`: a character field of spaces only is NULL.
    pub blanks_as_null: bool,
    /// `IGNOREHEADER`: records skipped at the start of every file.
    pub ignore_header: u64,
    /// `ACCEPTINVCHARS`: the replacement for each invalid UTF-8 sequence (`?` when not given).
    pub accept_inv_chars: Option<String>,
    /// `TIMEFORMAT`: how timestamp and time fields are read (see [`crate::datetime::Reading`]).
    pub time_format: Option<String>,
    /// `DATEFORMAT`: how date fields are read.
    pub date_format: Option<String>,
    /// `EXPLICIT_IDS`: the files hold values for identity columns.
    pub explicit_ids: bool,
    /// `DELIMITER`: the field separator (`,` for CSV when not given); its first byte is used.
    pub delimiter: Option<String>,
    /// `CSV QUOTE AS` (parsed but not applied: fields are always quoted with `"`).
    pub quote: Option<String>,
    /// `MAXERROR` (parsed but not applied: the first bad record fails the load).
    pub max_error: u64,
    /// `TRUNCATECOLUMNS` (parsed but not applied: too long a value fails the load).
    pub truncate_columns: bool,
    /// `FILLRECORD` (parsed but not applied: a short record fails the load).
    pub fill_record: bool,
    /// `REGION` of the bucket (not used: the emulator's storage decides).
    pub region: Option<String>,
}

/// What a statement is, for the proxy.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// `UNLOAD`, which the proxy runs itself.
    Unload(Box<Unload>),
    /// `COPY … FROM 's3://…'`, which the proxy runs itself.
    Copy(Box<CopyFrom>),
    /// Anything else, passed on to PostgreSQL (after [`crate::sql`]'s rewriting).
    Other,
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn peek_word(&self) -> Option<&str> {
        match self.peek() {
            Some(Token::Word(w)) => Some(w),
            _ => None,
        }
    }

    fn eat_word(&mut self, w: &str) -> bool {
        if self.peek_word() == Some(w) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_word(&mut self, w: &str) -> Result<(), Rejected> {
        if self.eat_word(w) {
            Ok(())
        } else {
            reject(format!("syntax error at or near \"{}\"", self.near()))
        }
    }

    fn near(&self) -> String {
        self.peek()
            .map_or("end of input".to_string(), |t| t.to_string())
    }

    fn quoted(&mut self, what: &str) -> Result<String, Rejected> {
        match self.peek().cloned() {
            Some(Token::Quoted(s)) => {
                self.pos += 1;
                Ok(s)
            }
            _ => reject(format!(
                "{what}: expected a quoted string at or near \"{}\"",
                self.near()
            )),
        }
    }

    fn number(&mut self, what: &str) -> Result<u64, Rejected> {
        match self.peek().cloned() {
            Some(Token::Number(n)) => {
                self.pos += 1;
                Ok(n)
            }
            _ => reject(format!(
                "{what}: expected a number at or near \"{}\"",
                self.near()
            )),
        }
    }

    fn optional_as(&mut self) {
        self.eat_word("AS");
    }

    fn authorization(&mut self, auth: &mut Option<Authorization>) -> Result<bool, Rejected> {
        let found = match self.peek_word() {
            Some("IAM_ROLE") => {
                self.pos += 1;
                if self.eat_word("DEFAULT") {
                    Authorization::IamRole(None)
                } else {
                    Authorization::IamRole(Some(self.quoted("IAM_ROLE")?))
                }
            }
            Some("CREDENTIALS") => {
                self.pos += 1;
                self.optional_as();
                Authorization::Credentials(self.quoted("CREDENTIALS")?)
            }
            Some("ACCESS_KEY_ID") => {
                self.pos += 1;
                let access_key_id = self.quoted("ACCESS_KEY_ID")?;
                self.expect_word("SECRET_ACCESS_KEY")?;
                let secret_access_key = self.quoted("SECRET_ACCESS_KEY")?;
                if self.eat_word("SESSION_TOKEN") {
                    self.quoted("SESSION_TOKEN")?;
                }
                Authorization::Keys {
                    access_key_id,
                    secret_access_key,
                }
            }
            _ => return Ok(false),
        };
        if auth.replace(found).is_some() {
            return reject("conflicting or redundant options: authorization given twice");
        }
        Ok(true)
    }

    fn compression(&mut self, c: &mut Option<Compression>) -> Result<bool, Rejected> {
        let found = match self.peek_word() {
            Some("GZIP") => Compression::Gzip,
            Some("BZIP2") => Compression::Bzip2,
            Some("ZSTD") => Compression::Zstd,
            Some("LZOP") => Compression::Lzop,
            _ => return Ok(false),
        };
        self.pos += 1;
        if c.replace(found).is_some() {
            return reject(
                "conflicting or redundant options: only one compression option may be given",
            );
        }
        Ok(true)
    }

    fn format(&mut self, f: &mut Option<FileFormat>) -> Result<bool, Rejected> {
        let had_keyword = self.eat_word("FORMAT");
        if had_keyword {
            self.optional_as();
        }
        let found = match self.peek_word() {
            Some("CSV") => FileFormat::Csv,
            Some("PARQUET") => FileFormat::Parquet,
            Some("JSON") => FileFormat::Json,
            _ if had_keyword => {
                return reject(format!("syntax error at or near \"{}\"", self.near()));
            }
            _ => return Ok(false),
        };
        self.pos += 1;
        if f.replace(found).is_some() {
            return reject("conflicting or redundant options: FORMAT given twice");
        }
        Ok(true)
    }

    /// `n [MB|GB]` in bytes.
    fn size(&mut self, what: &str) -> Result<u64, Rejected> {
        self.optional_as();
        let n = self.number(what)?;
        let unit = if self.eat_word("GB") {
            1 << 30
        } else {
            self.eat_word("MB");
            1 << 20
        };
        Ok(n * unit)
    }

    fn end(&mut self) -> Result<(), Rejected> {
        while self.peek() == Some(&Token::Punct(';')) {
            self.pos += 1;
        }
        match self.peek() {
            None => Ok(()),
            Some(_) => reject(format!("syntax error at or near \"{}\"", self.near())),
        }
    }
}

/// Whether `LIMIT` appears at the outer level of a query (outside parentheses and strings).
fn outer_limit(query: &str) -> bool {
    let Ok(tokens) = tokenize(query) else {
        return false;
    };
    let mut depth = 0i32;
    for t in tokens {
        match t {
            Token::Punct('(') => depth += 1,
            Token::Punct(')') => depth -= 1,
            Token::Word(w) if depth == 0 && w == "LIMIT" => return true,
            _ => {}
        }
    }
    false
}

fn parse_unload(p: &mut Parser) -> Result<Unload, Rejected> {
    if p.peek() != Some(&Token::Punct('(')) {
        return reject(format!("syntax error at or near \"{}\"", p.near()));
    }
    p.pos += 1;
    let query = p.quoted("UNLOAD")?;
    if p.peek() != Some(&Token::Punct(')')) {
        return reject(format!("syntax error at or near \"{}\"", p.near()));
    }
    p.pos += 1;
    p.expect_word("TO")?;
    let to = p.quoted("TO")?;
    if !to.starts_with("s3://") {
        return reject(format!("S3 path \"{to}\" must start with s3://"));
    }
    if outer_limit(&query) {
        return reject(
            "Limit clause is not supported in the outer select statement of UNLOAD; wrap the query in a subquery",
        );
    }
    let mut auth = None;
    let mut format = None;
    let mut compression = None;
    let mut u = Unload {
        query,
        to,
        authorization: Authorization::IamRole(None),
        format: FileFormat::Text,
        compression: None,
        manifest: false,
        manifest_verbose: false,
        header: false,
        delimiter: None,
        null_as: None,
        parallel: true,
        max_file_size: None,
        allow_overwrite: false,
        clean_path: false,
        encrypted: false,
        kms_key_id: None,
        add_quotes: false,
        escape: false,
        region: None,
        extension: None,
    };
    let mut fixed_width = false;
    while p.peek().is_some_and(|t| *t != Token::Punct(';')) {
        if p.authorization(&mut auth)?
            || p.format(&mut format)?
            || p.compression(&mut compression)?
        {
            continue;
        }
        let word = p
            .peek_word()
            .map(str::to_string)
            .ok_or_else(|| Rejected(format!("syntax error at or near \"{}\"", p.near())))?;
        p.pos += 1;
        match word.as_str() {
            "MANIFEST" => {
                u.manifest = true;
                u.manifest_verbose = p.eat_word("VERBOSE");
            }
            "HEADER" => u.header = true,
            "DELIMITER" => {
                p.optional_as();
                u.delimiter = Some(p.quoted("DELIMITER")?);
            }
            "FIXEDWIDTH" => {
                p.optional_as();
                p.quoted("FIXEDWIDTH")?;
                fixed_width = true;
            }
            "NULL" => {
                p.optional_as();
                u.null_as = Some(p.quoted("NULL AS")?);
            }
            "PARALLEL" => {
                u.parallel = match p.peek_word() {
                    Some("OFF" | "FALSE") => {
                        p.pos += 1;
                        false
                    }
                    Some("ON" | "TRUE") => {
                        p.pos += 1;
                        true
                    }
                    _ => true,
                }
            }
            "MAXFILESIZE" => {
                let size = p.size("MAXFILESIZE")?;
                if !((5 << 20)..=(6_200u64 << 20)).contains(&size) {
                    return reject("MAXFILESIZE must be between 5 MB and 6.2 GB");
                }
                u.max_file_size = Some(size);
            }
            "ROWGROUPSIZE" => {
                p.size("ROWGROUPSIZE")?;
            }
            "ALLOWOVERWRITE" => u.allow_overwrite = true,
            "CLEANPATH" => u.clean_path = true,
            "ENCRYPTED" => {
                u.encrypted = true;
                p.eat_word("AUTO");
            }
            "KMS_KEY_ID" => u.kms_key_id = Some(p.quoted("KMS_KEY_ID")?),
            "ADDQUOTES" => u.add_quotes = true,
            "ESCAPE" => u.escape = true,
            "REGION" => {
                p.optional_as();
                u.region = Some(p.quoted("REGION")?);
            }
            "EXTENSION" => u.extension = Some(p.quoted("EXTENSION")?),
            other => return reject(format!("syntax error at or near \"{other}\"")),
        }
    }
    p.end()?;
    u.authorization = auth.ok_or_else(|| {
        Rejected("UNLOAD needs IAM_ROLE, CREDENTIALS or ACCESS_KEY_ID/SECRET_ACCESS_KEY".into())
    })?;
    u.format = format.unwrap_or(FileFormat::Text);
    u.compression = compression;
    if u.allow_overwrite && u.clean_path {
        return reject("ALLOWOVERWRITE and CLEANPATH are mutually exclusive");
    }
    if u.kms_key_id.is_some() && !u.encrypted {
        return reject("KMS_KEY_ID requires ENCRYPTED");
    }
    match u.format {
        FileFormat::Csv if fixed_width || u.add_quotes => {
            return reject("CSV cannot be used with FIXEDWIDTH or ADDQUOTES");
        }
        FileFormat::Parquet
            if u.delimiter.is_some()
                || fixed_width
                || u.add_quotes
                || u.escape
                || u.null_as.is_some()
                || u.header
                || u.compression.is_some() =>
        {
            return reject(
                "PARQUET cannot be used with DELIMITER, FIXEDWIDTH, ADDQUOTES, ESCAPE, NULL AS, HEADER, GZIP, BZIP2 or ZSTD",
            );
        }
        FileFormat::Json
            if u.delimiter.is_some()
                || u.header
                || fixed_width
                || u.add_quotes
                || u.escape
                || u.null_as.is_some() =>
        {
            return reject(
                "JSON cannot be used with DELIMITER, HEADER, FIXEDWIDTH, ADDQUOTES, ESCAPE or NULL AS",
            );
        }
        _ => {}
    }
    if u.header && fixed_width {
        return reject("HEADER cannot be used with FIXEDWIDTH");
    }
    if u.compression == Some(Compression::Lzop) {
        return reject("UNLOAD supports GZIP, BZIP2 and ZSTD");
    }
    Ok(u)
}

fn parse_copy(p: &mut Parser) -> Result<Statement, Rejected> {
    // Identifiers fold to lower case, quoted or not (Redshift's default).
    let mut table = match p.peek().cloned() {
        Some(Token::Word(w)) => w.to_ascii_lowercase(),
        Some(Token::Ident(i)) => i.to_ascii_lowercase(),
        _ => return Ok(Statement::Other),
    };
    p.pos += 1;
    while p.peek() == Some(&Token::Punct('.')) {
        p.pos += 1;
        match p.peek().cloned() {
            Some(Token::Word(w)) => table = format!("{table}.{}", w.to_ascii_lowercase()),
            Some(Token::Ident(i)) => table = format!("{table}.{}", i.to_ascii_lowercase()),
            _ => return reject(format!("syntax error at or near \"{}\"", p.near())),
        }
        p.pos += 1;
    }
    let mut columns = Vec::new();
    if p.peek() == Some(&Token::Punct('(')) {
        p.pos += 1;
        loop {
            match p.peek().cloned() {
                Some(Token::Word(w)) => columns.push(w.to_ascii_lowercase()),
                Some(Token::Ident(i)) => columns.push(i.to_ascii_lowercase()),
                _ => return reject(format!("syntax error at or near \"{}\"", p.near())),
            }
            p.pos += 1;
            match p.peek() {
                Some(Token::Punct(',')) => p.pos += 1,
                Some(Token::Punct(')')) => {
                    p.pos += 1;
                    break;
                }
                _ => return reject(format!("syntax error at or near \"{}\"", p.near())),
            }
        }
    }
    if p.eat_word("TO") {
        return reject("COPY TO is not supported; use UNLOAD");
    }
    p.expect_word("FROM")?;
    if matches!(p.peek_word(), Some("STDIN" | "STDOUT")) {
        return reject("COPY from STDIN is not supported; load from Amazon S3");
    }
    let from = p.quoted("FROM")?;
    if !from.starts_with("s3://") {
        return reject(format!(
            "S3 path \"{from}\" must start with s3:// (other sources are not emulated)"
        ));
    }
    let mut auth = None;
    let mut format = None;
    let mut compression = None;
    let mut c = CopyFrom {
        table,
        columns,
        from,
        authorization: Authorization::IamRole(None),
        format: FileFormat::Text,
        compression: None,
        manifest: false,
        null_as: None,
        empty_as_null: false,
        blanks_as_null: false,
        ignore_header: 0,
        accept_inv_chars: None,
        time_format: None,
        date_format: None,
        explicit_ids: false,
        delimiter: None,
        quote: None,
        max_error: 0,
        truncate_columns: false,
        fill_record: false,
        region: None,
    };
    let (mut escape, mut remove_quotes, mut fixed_width) = (false, false, false);
    while p.peek().is_some_and(|t| *t != Token::Punct(';')) {
        if p.authorization(&mut auth)? || p.compression(&mut compression)? {
            continue;
        }
        if p.format(&mut format)? {
            if format == Some(FileFormat::Csv) && p.eat_word("QUOTE") {
                p.optional_as();
                c.quote = Some(p.quoted("QUOTE")?);
            }
            if format == Some(FileFormat::Json) && matches!(p.peek(), Some(Token::Quoted(_))) {
                p.quoted("JSON")?;
            }
            continue;
        }
        let word = p
            .peek_word()
            .map(str::to_string)
            .ok_or_else(|| Rejected(format!("syntax error at or near \"{}\"", p.near())))?;
        p.pos += 1;
        match word.as_str() {
            "MANIFEST" => c.manifest = true,
            "NULL" => {
                p.optional_as();
                c.null_as = Some(p.quoted("NULL AS")?);
            }
            "EMPTYASNULL" => c.empty_as_null = true,
            "BLANKSASNULL" => c.blanks_as_null = true,
            "IGNOREHEADER" => {
                p.optional_as();
                c.ignore_header = p.number("IGNOREHEADER")?;
            }
            "ACCEPTINVCHARS" => {
                p.optional_as();
                let replacement = match p.peek() {
                    Some(Token::Quoted(_)) => p.quoted("ACCEPTINVCHARS")?,
                    _ => "?".to_string(),
                };
                c.accept_inv_chars = Some(replacement);
            }
            "TIMEFORMAT" => {
                p.optional_as();
                c.time_format = Some(p.quoted("TIMEFORMAT")?);
            }
            "DATEFORMAT" => {
                p.optional_as();
                c.date_format = Some(p.quoted("DATEFORMAT")?);
            }
            "EXPLICIT_IDS" => c.explicit_ids = true,
            "COMPUPDATE" | "STATUPDATE" => {
                if matches!(
                    p.peek_word(),
                    Some("ON" | "OFF" | "TRUE" | "FALSE" | "PRESET")
                ) {
                    p.pos += 1;
                }
            }
            "MAXERROR" => {
                p.optional_as();
                c.max_error = p.number("MAXERROR")?;
                if c.max_error > 100_000 {
                    return reject("MAXERROR must be between 0 and 100000");
                }
            }
            "DELIMITER" => {
                p.optional_as();
                c.delimiter = Some(p.quoted("DELIMITER")?);
            }
            "FIXEDWIDTH" => {
                p.optional_as();
                p.quoted("FIXEDWIDTH")?;
                fixed_width = true;
            }
            "ESCAPE" => escape = true,
            "REMOVEQUOTES" => remove_quotes = true,
            "TRUNCATECOLUMNS" => c.truncate_columns = true,
            "FILLRECORD" => c.fill_record = true,
            "REGION" => {
                p.optional_as();
                c.region = Some(p.quoted("REGION")?);
            }
            "ENCRYPTED" => {}
            other => return reject(format!("syntax error at or near \"{other}\"")),
        }
    }
    p.end()?;
    c.authorization = auth.ok_or_else(|| {
        Rejected("COPY needs IAM_ROLE, CREDENTIALS or ACCESS_KEY_ID/SECRET_ACCESS_KEY".into())
    })?;
    c.format = format.unwrap_or(FileFormat::Text);
    c.compression = compression;
    if c.format == FileFormat::Csv && (escape || remove_quotes || fixed_width) {
        return reject("CSV is not compatible with ESCAPE, REMOVEQUOTES or FIXEDWIDTH");
    }
    if c.format == FileFormat::Parquet
        && (c.compression.is_some()
            || c.null_as.is_some()
            || c.delimiter.is_some()
            || c.ignore_header > 0
            || c.max_error > 0)
    {
        return reject(
            "PARQUET format allows only ACCEPTINVCHARS, FILLRECORD, IAM_ROLE, STATUPDATE, MANIFEST and EXPLICIT_IDS",
        );
    }
    Ok(Statement::Copy(Box::new(c)))
}

/// Classify and parse one statement.
pub fn parse(sql: &str) -> Result<Statement, Rejected> {
    let tokens = tokenize(sql)?;
    let mut p = Parser { tokens, pos: 0 };
    match p.peek_word() {
        Some("UNLOAD") => {
            p.pos += 1;
            parse_unload(&mut p).map(|u| Statement::Unload(Box::new(u)))
        }
        Some("COPY") => {
            p.pos += 1;
            parse_copy(&mut p)
        }
        _ => Ok(Statement::Other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::unload_of as unload;

    fn rejected(sql: &str) -> String {
        parse(sql).unwrap_err().0
    }

    #[test]
    fn parses_the_unload_mirage_issues() {
        let u = unload(
            "UNLOAD ('SELECT \"id\", note FROM \"sales\".\"customer\" WHERE x = ''NV''') \
             TO 's3://tool-bucket/job-7f3a/input/sales/customer/' \
             IAM_ROLE 'arn:aws:iam::111122223333:role/tool' FORMAT AS CSV NULL AS '__NULL__' GZIP \
             PARALLEL ON MAXFILESIZE 50 MB MANIFEST VERBOSE ENCRYPTED KMS_KEY_ID 'k' CLEANPATH;",
        );
        assert!(u.query.contains("x = 'NV'"));
        assert_eq!(u.format, FileFormat::Csv);
        assert_eq!(u.compression, Some(Compression::Gzip));
        assert_eq!(u.null_as.as_deref(), Some("__NULL__"));
        assert_eq!(u.max_file_size, Some(50 << 20));
        assert!(u.manifest && u.manifest_verbose && u.parallel && u.clean_path && u.encrypted);
        assert_eq!(
            u.authorization,
            Authorization::IamRole(Some("arn:aws:iam::111122223333:role/tool".into()))
        );
        let serial =
            unload("unload ('select 1') to 's3://b/x' iam_role default parallel off header");
        assert!(!serial.parallel && serial.header && serial.format == FileFormat::Text);
    }

    #[test]
    fn unload_rejects_what_redshift_rejects() {
        assert!(
            rejected("UNLOAD ('select * from t limit 10') TO 's3://b/p' IAM_ROLE default")
                .contains("Limit clause")
        );
        // A LIMIT inside a subquery is fine.
        unload(
            "UNLOAD ('select * from (select * from t limit 10)') TO 's3://b/p' IAM_ROLE default",
        );
        assert!(
            rejected("UNLOAD ('select 1') TO 's3://b/p' IAM_ROLE default ALLOWOVERWRITE CLEANPATH")
                .contains("mutually exclusive")
        );
        assert!(
            rejected("UNLOAD ('select 1') TO 's3://b/p' IAM_ROLE default PARQUET GZIP")
                .contains("PARQUET")
        );
        assert!(
            rejected("UNLOAD ('select 1') TO 's3://b/p' IAM_ROLE default CSV ADDQUOTES")
                .contains("CSV")
        );
        assert!(
            rejected("UNLOAD ('select 1') TO 's3://b/p' IAM_ROLE default MAXFILESIZE 1 MB")
                .contains("MAXFILESIZE")
        );
        assert!(
            rejected("UNLOAD ('select 1') TO 's3://b/p' IAM_ROLE default GZIP ZSTD")
                .contains("compression")
        );
        assert!(
            rejected("UNLOAD ('select 1') TO 's3://b/p' KMS_KEY_ID 'k' IAM_ROLE default")
                .contains("ENCRYPTED")
        );
        assert!(rejected("UNLOAD ('select 1') TO 's3://b/p'").contains("IAM_ROLE"));
        assert!(rejected("UNLOAD ('select 1') TO '/tmp/x' IAM_ROLE default").contains("s3://"));
    }

    #[test]
    fn parses_copy_and_rejects_stdin() {
        let Statement::Copy(c) = parse(
            "COPY \"Sales\".customer__stage (id, \"Email\") FROM 's3://b/job/output/copy.manifest' \
             IAM_ROLE 'arn:r' MANIFEST FORMAT AS CSV GZIP NULL AS '__NULL__' DATEFORMAT 'auto' \
             TIMEFORMAT 'auto' ACCEPTINVCHARS '?' EXPLICIT_IDS COMPUPDATE OFF STATUPDATE ON IGNOREHEADER 1",
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(c.table, "sales.customer__stage");
        assert_eq!(c.columns, ["id", "email"]);
        assert!(c.manifest && c.explicit_ids && c.ignore_header == 1);
        assert_eq!(c.accept_inv_chars.as_deref(), Some("?"));
        assert!(rejected("COPY t FROM STDIN").contains("STDIN"));
        assert!(rejected("COPY t TO STDOUT").contains("UNLOAD"));
        assert!(rejected("COPY t FROM 's3://b/p' IAM_ROLE default CSV ESCAPE").contains("CSV"));
        assert!(
            rejected("COPY t FROM 's3://b/p' IAM_ROLE default MAXERROR 200000")
                .contains("MAXERROR")
        );
        assert_eq!(parse("select 1").unwrap(), Statement::Other);
    }
}
