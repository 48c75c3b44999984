//! Redshift `CREATE TABLE` → PostgreSQL 15, remembering what PostgreSQL cannot hold (DISTSTYLE,
//! DISTKEY, SORTKEY, ENCODE, BACKUP, the Redshift spelling of types and identities) so `SHOW TABLE`
//! can give back re-executable Redshift DDL.

use crate::statement::Rejected;

/// How rows are distributed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DistStyle {
    /// `DISTSTYLE AUTO`: Redshift chooses (and what `SHOW TABLE` prints when none was given).
    Auto,
    /// `DISTSTYLE EVEN`: rows spread round-robin over the slices.
    Even,
    /// `DISTSTYLE KEY`: rows placed by the value of the DISTKEY column.
    Key,
    /// `DISTSTYLE ALL`: a full copy of the table on every node.
    All,
}

/// One column as declared in Redshift.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ColumnDdl {
    /// The column's name, folded to lower case as Redshift folds it.
    pub name: String,
    /// The Redshift type as written, normalized (`VARCHAR(256)` for `TEXT`).
    pub redshift_type: String,
    /// The declared `ENCODE` compression, lower case (`SHOW TABLE` prints Redshift's default for
    /// the type when none).
    pub encode: Option<String>,
    /// The column is the table's DISTKEY (declared on the column or at table level).
    pub distkey: bool,
    /// The column is part of the table's SORTKEY (declared on the column or at table level).
    pub sortkey: bool,
    /// `(seed, step, by_default)`.
    pub identity: Option<(i64, i64, bool)>,
    /// Declared `NOT NULL`.
    pub not_null: bool,
    /// The default expression, rendered.
    pub default: Option<String>,
}

/// What Redshift knows about a table beyond what PostgreSQL stores.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TableDdl {
    /// The table's name as written in `CREATE TABLE` (`schema.table` when qualified), folded.
    pub name: String,
    /// The columns, in declaration order.
    pub columns: Vec<ColumnDdl>,
    /// The declared `DISTSTYLE`, if any.
    pub diststyle: Option<DistStyle>,
    /// The `DISTKEY` column, declared on the column or at table level.
    pub distkey: Option<String>,
    /// `(interleaved, columns)`; empty columns with `Some` means `SORTKEY AUTO`.
    pub sortkey: Option<(bool, Vec<String>)>,
    /// `BACKUP YES` (the default) or `BACKUP NO`.
    pub backup: bool,
    /// The PRIMARY KEY columns, in key order; empty without one.
    pub primary_key: Vec<String>,
    /// FOREIGN KEY and UNIQUE constraints, rendered (filled from the live catalog by SHOW TABLE).
    #[serde(default)]
    pub constraints: Vec<String>,
}

impl TableDdl {
    /// A table with nothing declared yet (Redshift's defaults: BACKUP YES, no keys).
    pub fn new(name: &str) -> TableDdl {
        TableDdl {
            name: name.to_string(),
            columns: Vec::new(),
            diststyle: None,
            distkey: None,
            sortkey: None,
            backup: true,
            primary_key: Vec::new(),
            constraints: Vec::new(),
        }
    }
}

/// A Redshift type → (normalized Redshift spelling, PostgreSQL type).
pub fn map_type(words: &[String]) -> Result<(String, String), Rejected> {
    let joined = words.join(" ").to_ascii_uppercase();
    let (base, args) = match joined.split_once('(') {
        Some((b, a)) => (
            b.trim().to_string(),
            Some(a.trim_end_matches(')').trim().to_string()),
        ),
        None => (joined.trim().to_string(), None),
    };
    let len = |default: u32, max: u32| -> Result<u32, Rejected> {
        match args.as_deref() {
            None => Ok(default),
            Some("MAX") => Ok(max),
            Some(n) => n
                .parse::<u32>()
                .ok()
                .filter(|n| *n >= 1 && *n <= max)
                .ok_or_else(|| {
                    Rejected(format!(
                        "length for type {base} must be between 1 and {max}"
                    ))
                }),
        }
    };
    Ok(match base.as_str() {
        "SMALLINT" | "INT2" => ("SMALLINT".into(), "smallint".into()),
        "INTEGER" | "INT" | "INT4" => ("INTEGER".into(), "integer".into()),
        "BIGINT" | "INT8" => ("BIGINT".into(), "bigint".into()),
        "DECIMAL" | "NUMERIC" => {
            let a = args.clone().unwrap_or_else(|| "18,0".into());
            (format!("NUMERIC({a})"), format!("numeric({a})"))
        }
        "REAL" | "FLOAT4" => ("REAL".into(), "real".into()),
        "DOUBLE PRECISION" | "FLOAT8" | "FLOAT" => {
            ("DOUBLE PRECISION".into(), "double precision".into())
        }
        "BOOLEAN" | "BOOL" => ("BOOLEAN".into(), "boolean".into()),
        "CHAR" | "CHARACTER" | "NCHAR" | "BPCHAR" => {
            let n = len(if base == "BPCHAR" { 256 } else { 1 }, 4096)?;
            (format!("CHAR({n})"), format!("char({n})"))
        }
        "VARCHAR" | "CHARACTER VARYING" | "NVARCHAR" | "TEXT" => {
            let n = if base == "TEXT" {
                256
            } else {
                len(256, 65535)?
            };
            (format!("VARCHAR({n})"), format!("varchar({n})"))
        }
        "DATE" => ("DATE".into(), "date".into()),
        "TIME" | "TIME WITHOUT TIME ZONE" => ("TIME".into(), "time".into()),
        "TIMETZ" | "TIME WITH TIME ZONE" => ("TIMETZ".into(), "timetz".into()),
        "TIMESTAMP" | "TIMESTAMP WITHOUT TIME ZONE" => ("TIMESTAMP".into(), "timestamp".into()),
        "TIMESTAMPTZ" | "TIMESTAMP WITH TIME ZONE" => ("TIMESTAMPTZ".into(), "timestamptz".into()),
        "SUPER" => ("SUPER".into(), "jsonb".into()),
        "VARBYTE" | "VARBINARY" | "BINARY VARYING" => {
            let n = len(64000, 1_024_000)?;
            (format!("VARBYTE({n})"), "bytea".into())
        }
        "GEOMETRY" | "GEOGRAPHY" => (base.clone(), "text".into()),
        "HLLSKETCH" => ("HLLSKETCH".into(), "text".into()),
        other => {
            return Err(Rejected(format!(
                "type \"{}\" does not exist",
                other.to_ascii_lowercase()
            )));
        }
    })
}

/// PostgreSQL's `format_type` → the Redshift spelling (for columns not declared through the
/// emulator, e.g. added by `ALTER TABLE`).
pub fn from_postgres_type(t: &str) -> String {
    let (base, args) = match t.split_once('(') {
        Some((b, a)) => (b.trim(), format!("({}", a)),
        None => (t.trim(), String::new()),
    };
    match base {
        "character varying" => format!("VARCHAR{}", if args.is_empty() { "(256)" } else { &args }),
        "character" | "bpchar" => format!("CHAR{}", if args.is_empty() { "(1)" } else { &args }),
        "numeric" => format!("NUMERIC{}", if args.is_empty() { "(18,0)" } else { &args }),
        "text" => "VARCHAR(256)".into(),
        "time without time zone" => "TIME".into(),
        "time with time zone" => "TIMETZ".into(),
        "timestamp without time zone" => "TIMESTAMP".into(),
        "timestamp with time zone" => "TIMESTAMPTZ".into(),
        "jsonb" | "json" => "SUPER".into(),
        "bytea" => "VARBYTE(64000)".into(),
        other => other.to_ascii_uppercase(),
    }
}

/// Lower-case an identifier as Redshift does; quoted names keep their text but still fold.
fn ident(raw: &str) -> String {
    raw.trim_matches('"')
        .replace("\"\"", "\"")
        .to_ascii_lowercase()
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A name as `SHOW TABLE` prints it: as it is when it is a plain lower-case identifier,
/// double-quoted otherwise.
pub(crate) fn shown(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if plain { name.to_string() } else { quote(name) }
}

/// Split `s` where `is_sep` holds outside quotes and parentheses; separators are dropped and so
/// are empty parts. A parenthesized group sticks to the word before it (`VARCHAR(20)`).
fn split_outside(s: &str, is_sep: impl Fn(char) -> bool) -> Vec<String> {
    let mut parts = Vec::new();
    let (mut depth, mut quote_char, mut cur) = (0i32, None::<char>, String::new());
    for c in s.chars() {
        match (quote_char, c) {
            (Some(q), c) if c == q => quote_char = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote_char = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, c) if depth == 0 && is_sep(c) => {
                parts.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    parts.push(cur);
    parts
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Top-level comma-separated items.
fn split_top(s: &str) -> Vec<String> {
    split_outside(s, |c| c == ',')
}

/// Words of a definition, a parenthesized group attached to the word before it even across a
/// space (`IDENTITY (1, 1)` → `IDENTITY(1, 1)`).
fn words(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in split_outside(s, char::is_whitespace) {
        match out.last_mut() {
            Some(prev) if w.starts_with('(') && !prev.ends_with(')') => prev.push_str(&w),
            _ => out.push(w),
        }
    }
    out
}

fn group(word: &str) -> Option<&str> {
    word.split_once('(')
        .map(|(_, rest)| rest.trim_end_matches(')'))
}

fn col_list(g: &str) -> Vec<String> {
    g.split(',')
        .map(|c| ident(c.trim()))
        .filter(|c| !c.is_empty())
        .collect()
}

/// Rewrite a Redshift `CREATE TABLE` for PostgreSQL; returns the SQL and what Redshift knows.
pub fn create_table(sql: &str) -> Result<(String, TableDdl), Rejected> {
    let s = sql.trim().trim_end_matches(';');
    let open = s
        .find('(')
        .ok_or_else(|| Rejected("syntax error: CREATE TABLE needs a column list".into()))?;
    let head = words(&s[..open]);
    let head_upper: Vec<String> = head.iter().map(|w| w.to_ascii_uppercase()).collect();
    let table_at = head_upper
        .iter()
        .position(|w| w == "TABLE")
        .ok_or_else(|| Rejected("syntax error at or near \"(\"".into()))?;
    let temp = head_upper[..table_at]
        .iter()
        .any(|w| w == "TEMP" || w == "TEMPORARY");
    let if_not_exists = head_upper.get(table_at + 1).is_some_and(|w| w == "IF");
    let name_raw = head.last().cloned().unwrap_or_default();
    let name: String = name_raw.split('.').map(ident).collect::<Vec<_>>().join(".");
    if name.split('.').any(|p| p.len() > 127) {
        return Err(Rejected("identifier is longer than 127 bytes".into()));
    }
    // The column list ends at the matching parenthesis.
    let mut depth = 0;
    let mut close = None;
    let mut in_quote = None;
    for (i, c) in s[open..].char_indices() {
        match (in_quote, c) {
            (Some(q), c) if c == q => in_quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => in_quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => {
                depth -= 1;
                if depth == 0 {
                    close = Some(open + i);
                    break;
                }
            }
            _ => {}
        }
    }
    let close = close.ok_or_else(|| Rejected("syntax error: unbalanced parentheses".into()))?;
    let mut ddl = TableDdl::new(&name);
    let mut pg_items = Vec::new();
    for item in split_top(&s[open + 1..close]) {
        let w = words(&item);
        let first = w
            .first()
            .map(|x| x.to_ascii_uppercase())
            .unwrap_or_default();
        if matches!(
            first.as_str(),
            "PRIMARY" | "UNIQUE" | "FOREIGN" | "CONSTRAINT" | "CHECK"
        ) {
            if first == "PRIMARY"
                && let Some(g) = w.iter().find_map(|x| group(x))
            {
                ddl.primary_key = col_list(g);
            }
            pg_items.push(item.clone());
            continue;
        }
        if first == "LIKE" {
            return Err(Rejected(
                "CREATE TABLE … (LIKE …) is not emulated yet".into(),
            ));
        }
        let col_name = ident(&w[0]);
        // The type: words up to the first attribute keyword.
        let attr = |x: &str| {
            let u = x.to_ascii_uppercase();
            let base = u.split('(').next().unwrap_or("").to_string();
            matches!(
                base.as_str(),
                "ENCODE"
                    | "DISTKEY"
                    | "SORTKEY"
                    | "IDENTITY"
                    | "GENERATED"
                    | "DEFAULT"
                    | "NOT"
                    | "NULL"
                    | "PRIMARY"
                    | "UNIQUE"
                    | "REFERENCES"
                    | "COLLATE"
            )
        };
        let type_end = w
            .iter()
            .skip(1)
            .position(|x| attr(x))
            .map_or(w.len(), |p| p + 1);
        let (rs_type, pg_type) = map_type(&w[1..type_end])?;
        let mut col = ColumnDdl {
            name: col_name.clone(),
            redshift_type: rs_type,
            encode: None,
            distkey: false,
            sortkey: false,
            identity: None,
            not_null: false,
            default: None,
        };
        let mut pg_col = format!("{} {pg_type}", quote(&col_name));
        let mut i = type_end;
        while i < w.len() {
            let u = w[i].to_ascii_uppercase();
            let base = u.split('(').next().unwrap_or("").to_string();
            match base.as_str() {
                "ENCODE" => {
                    col.encode = w.get(i + 1).map(|e| e.to_ascii_lowercase());
                    if let Some(e) = &col.encode
                        && !encoding_allowed(e, &col.redshift_type)
                    {
                        return Err(Rejected(format!(
                            "invalid encoding type \"{e}\" specified for column \"{col_name}\" of type {}",
                            col.redshift_type.to_ascii_lowercase()
                        )));
                    }
                    i += 2;
                }
                "DISTKEY" => {
                    col.distkey = true;
                    ddl.distkey = Some(col_name.clone());
                    i += 1;
                }
                "SORTKEY" => {
                    col.sortkey = true;
                    ddl.sortkey
                        .get_or_insert((false, Vec::new()))
                        .1
                        .push(col_name.clone());
                    i += 1;
                }
                "IDENTITY" | "GENERATED" => {
                    let by_default = base == "GENERATED";
                    let spec = w[i..].iter().find_map(|x| {
                        x.to_ascii_uppercase()
                            .starts_with("IDENTITY(")
                            .then(|| group(x).map(str::to_string))
                            .flatten()
                    });
                    let (seed, step) = match spec.as_deref().map(|g| {
                        g.split(',')
                            .map(|p| p.trim().parse::<i64>())
                            .collect::<Vec<_>>()
                    }) {
                        Some(v) if v.len() == 2 && v.iter().all(Result::is_ok) => {
                            (v[0].clone().unwrap_or(1), v[1].clone().unwrap_or(1))
                        }
                        _ => {
                            return Err(Rejected(format!(
                                "IDENTITY for column \"{col_name}\" needs (seed, step)"
                            )));
                        }
                    };
                    if !matches!(col.redshift_type.as_str(), "INTEGER" | "BIGINT") {
                        return Err(Rejected(format!(
                            "Identity column \"{col_name}\" must be INT or BIGINT"
                        )));
                    }
                    col.identity = Some((seed, step, by_default));
                    col.not_null = true;
                    pg_col += &format!(
                        " GENERATED {} AS IDENTITY (START WITH {seed} INCREMENT BY {step})",
                        if by_default { "BY DEFAULT" } else { "ALWAYS" }
                    );
                    // Skip to after the IDENTITY(...) word.
                    while i < w.len() && !w[i].to_ascii_uppercase().starts_with("IDENTITY(") {
                        i += 1;
                    }
                    i += 1;
                }
                "DEFAULT" => {
                    // `DEFAULT x` or `DEFAULT (expression)` (the group was attached to the word).
                    let (expr, used) = match group(&w[i]) {
                        Some(g) => (format!("({g})"), 1),
                        None => (w.get(i + 1).cloned().unwrap_or_default(), 2),
                    };
                    let pg_expr = if expr.eq_ignore_ascii_case("getdate()")
                        || expr.eq_ignore_ascii_case("sysdate")
                    {
                        "now()".to_string()
                    } else {
                        expr.clone()
                    };
                    col.default = Some(expr);
                    pg_col += &format!(" DEFAULT {pg_expr}");
                    i += used;
                }
                "NOT" => {
                    col.not_null = true;
                    pg_col += " NOT NULL";
                    i += 2;
                }
                "PRIMARY" => {
                    ddl.primary_key = vec![col_name.clone()];
                    pg_col += " PRIMARY KEY";
                    i += 2;
                }
                _ => {
                    // NULL, UNIQUE, REFERENCES t(c), COLLATE x: PostgreSQL spells them alike.
                    pg_col += " ";
                    pg_col += &w[i];
                    i += 1;
                }
            }
        }
        pg_items.push(pg_col);
        // Redshift counts lengths in bytes and keeps CHAR single-byte: checks PostgreSQL can run.
        if let Some(n) = col
            .redshift_type
            .strip_prefix("VARCHAR(")
            .and_then(|r| r.strip_suffix(')'))
        {
            pg_items.push(format!(
                "CONSTRAINT {} CHECK (octet_length({}) <= {n})",
                quote(&format!("rs_bytes_{n}_{col_name}")),
                quote(&col_name)
            ));
        } else if col.redshift_type.starts_with("CHAR(") {
            pg_items.push(format!(
                "CONSTRAINT {} CHECK (octet_length({c}::text) = char_length({c}::text))",
                quote(&format!("rs_char_{col_name}")),
                c = quote(&col_name)
            ));
        }
        ddl.columns.push(col);
    }
    // Table attributes after the column list.
    let tail = words(&s[close + 1..]);
    let mut i = 0;
    while i < tail.len() {
        let u = tail[i].to_ascii_uppercase();
        let base = u.split('(').next().unwrap_or("").to_string();
        match base.as_str() {
            "BACKUP" => {
                ddl.backup = !tail
                    .get(i + 1)
                    .is_some_and(|x| x.eq_ignore_ascii_case("NO"));
                i += 2;
            }
            "DISTSTYLE" => {
                ddl.diststyle = Some(
                    match tail.get(i + 1).map(|x| x.to_ascii_uppercase()).as_deref() {
                        Some("AUTO") => DistStyle::Auto,
                        Some("EVEN") => DistStyle::Even,
                        Some("KEY") => DistStyle::Key,
                        Some("ALL") => DistStyle::All,
                        _ => return Err(Rejected("DISTSTYLE is AUTO, EVEN, KEY or ALL".into())),
                    },
                );
                i += 2;
            }
            "DISTKEY" => {
                let g = group(&tail[i]).or_else(|| tail.get(i + 1).and_then(|x| group(x)));
                ddl.distkey = g.map(|g| ident(g.trim()));
                i += if group(&tail[i]).is_some() { 1 } else { 2 };
            }
            "COMPOUND" | "INTERLEAVED" => {
                let interleaved = base == "INTERLEAVED";
                let (sk, used) = match (tail.get(i + 1), tail.get(i + 2)) {
                    (Some(a), _) if group(a).is_some() => (group(a), 2),
                    (Some(_), Some(b)) => (group(b), 3),
                    _ => (None, 2),
                };
                ddl.sortkey = Some((interleaved, sk.map(col_list).unwrap_or_default()));
                i += used;
            }
            "SORTKEY" => {
                if tail
                    .get(i + 1)
                    .is_some_and(|x| x.eq_ignore_ascii_case("AUTO"))
                {
                    ddl.sortkey = Some((false, Vec::new()));
                    i += 2;
                } else {
                    let g = group(&tail[i]).or_else(|| tail.get(i + 1).and_then(|x| group(x)));
                    ddl.sortkey = Some((false, g.map(col_list).unwrap_or_default()));
                    i += if group(&tail[i]).is_some() { 1 } else { 2 };
                }
            }
            "ENCODE" => i += 2,
            _ => return Err(Rejected(format!("syntax error at or near \"{}\"", tail[i]))),
        }
    }
    // A table-level SORTKEY replaces column-level ones; mark the columns it names.
    let sort_cols: Vec<String> = ddl
        .sortkey
        .as_ref()
        .map(|(_, c)| c.clone())
        .unwrap_or_default();
    for c in &mut ddl.columns {
        c.sortkey = sort_cols.contains(&c.name);
        c.distkey = ddl.distkey.as_ref() == Some(&c.name);
        // What Redshift assigns a column declared without an encoding.
        if c.encode.is_none() {
            c.encode = Some(default_encoding(&c.redshift_type, c.sortkey).into());
        }
    }
    if ddl.diststyle == Some(DistStyle::Key) && ddl.distkey.is_none() {
        return Err(Rejected("DISTSTYLE KEY needs a DISTKEY".into()));
    }
    if let Some(k) = &ddl.distkey {
        if !ddl.columns.iter().any(|c| &c.name == k) {
            return Err(Rejected(format!(
                "column \"{k}\" named in DISTKEY does not exist"
            )));
        }
        ddl.diststyle.get_or_insert(DistStyle::Key);
    }
    let qualified = name.split('.').map(quote).collect::<Vec<_>>().join(".");
    let pg = format!(
        "CREATE {}TABLE {}{qualified} ({})",
        if temp { "TEMPORARY " } else { "" },
        if if_not_exists { "IF NOT EXISTS " } else { "" },
        pg_items.join(", ")
    );
    Ok((pg, ddl))
}

/// The base of a Redshift type: `VARCHAR(10)` → `VARCHAR`, `DOUBLE PRECISION` stays.
fn base_type(redshift_type: &str) -> String {
    let t = redshift_type.to_ascii_uppercase();
    let t = t.split('(').next().unwrap_or("").trim().to_string();
    match t.as_str() {
        "INT" | "INT4" => "INTEGER".into(),
        "INT2" => "SMALLINT".into(),
        "INT8" => "BIGINT".into(),
        "NUMERIC" => "DECIMAL".into(),
        "FLOAT4" => "REAL".into(),
        "FLOAT" | "FLOAT8" => "DOUBLE PRECISION".into(),
        "BOOL" => "BOOLEAN".into(),
        "CHARACTER VARYING" | "NVARCHAR" | "TEXT" => "VARCHAR".into(),
        "CHARACTER" | "NCHAR" | "BPCHAR" => "CHAR".into(),
        "TIMESTAMP WITHOUT TIME ZONE" => "TIMESTAMP".into(),
        "TIMESTAMP WITH TIME ZONE" => "TIMESTAMPTZ".into(),
        _ => t,
    }
}

/// The encoding Redshift gives a column declared without one (once any column of the table
/// declares one): RAW for sort key columns, BOOLEAN, REAL and DOUBLE PRECISION; AZ64 for
/// integers, DECIMAL, DATE and timestamps; LZO for CHAR and VARCHAR; RAW for the rest.
pub fn default_encoding(redshift_type: &str, sortkey: bool) -> &'static str {
    if sortkey {
        return "raw";
    }
    match base_type(redshift_type).as_str() {
        "SMALLINT" | "INTEGER" | "BIGINT" | "DECIMAL" | "DATE" | "TIMESTAMP" | "TIMESTAMPTZ" => {
            "az64"
        }
        "CHAR" | "VARCHAR" => "lzo",
        _ => "raw",
    }
}

/// Whether Redshift accepts `encoding` on a column of this type (its compression encodings
/// table).
pub fn encoding_allowed(encoding: &str, redshift_type: &str) -> bool {
    let t = base_type(redshift_type);
    let t = t.as_str();
    let ints = ["SMALLINT", "INTEGER", "BIGINT", "DECIMAL"];
    let times = ["DATE", "TIMESTAMP", "TIMESTAMPTZ"];
    let text = ["CHAR", "VARCHAR"];
    let floats = ["REAL", "DOUBLE PRECISION"];
    let is = |set: &[&str]| set.contains(&t);
    match encoding {
        "raw" => true,
        "az64" => is(&ints) || is(&times),
        "bytedict" => is(&ints) || is(&floats) || is(&text) || is(&times),
        "delta" => is(&ints) || (is(&times) && t != "TIMESTAMPTZ"),
        "delta32k" => (is(&ints) && t != "SMALLINT") || t == "DATE" || t == "TIMESTAMP",
        "lzo" => is(&ints) || is(&text) || is(&times) || t == "SUPER",
        "mostly8" => is(&ints),
        "mostly16" => is(&ints) && t != "SMALLINT",
        "mostly32" => t == "BIGINT" || t == "DECIMAL",
        "runlength" => is(&ints) || is(&floats) || is(&text) || is(&times) || t == "BOOLEAN",
        "text255" | "text32k" => t == "VARCHAR",
        "zstd" => {
            is(&ints)
                || is(&floats)
                || is(&text)
                || is(&times)
                || t == "BOOLEAN"
                || t == "SUPER"
                || t == "VARBYTE"
                || t == "TIME"
                || t == "TIMETZ"
        }
        _ => false,
    }
}

/// `SHOW TABLE`: re-executable Redshift DDL.
pub fn show_table(ddl: &TableDdl) -> String {
    let mut cols = Vec::new();
    for c in &ddl.columns {
        let mut s = format!(
            "    {} {}",
            shown(&c.name),
            c.redshift_type.to_ascii_lowercase()
        );
        if let Some((seed, step, by_default)) = c.identity {
            if by_default {
                s += &format!(" generated by default as identity({seed},{step})");
            } else {
                s += &format!(" identity({seed},{step})");
            }
        }
        if let Some(d) = &c.default {
            s += &format!(" default {d}");
        }
        if c.not_null && c.identity.is_none() {
            s += " not null";
        }
        s += &format!(
            " encode {}",
            c.encode
                .clone()
                .unwrap_or_else(|| default_encoding(&c.redshift_type, c.sortkey).into())
        );
        if c.distkey {
            s += " distkey";
        }
        cols.push(s);
    }
    if !ddl.primary_key.is_empty() {
        let keys: Vec<String> = ddl.primary_key.iter().map(|k| shown(k)).collect();
        cols.push(format!("    PRIMARY KEY ({})", keys.join(", ")));
    }
    for c in &ddl.constraints {
        cols.push(format!("    {c}"));
    }
    let name = ddl.name.split('.').map(shown).collect::<Vec<_>>().join(".");
    let mut out = format!("CREATE TABLE {name} (\n{}\n)", cols.join(",\n"));
    if !ddl.backup {
        out += " BACKUP NO";
    }
    out += match ddl.diststyle {
        Some(DistStyle::Even) => " DISTSTYLE EVEN",
        Some(DistStyle::Key) => " DISTSTYLE KEY",
        Some(DistStyle::All) => " DISTSTYLE ALL",
        Some(DistStyle::Auto) | None => " DISTSTYLE AUTO",
    };
    match &ddl.sortkey {
        Some((_, cols)) if cols.is_empty() => out += " SORTKEY AUTO",
        Some((interleaved, cols)) => {
            let cols: Vec<String> = cols.iter().map(|c| shown(c)).collect();
            out += &format!(
                " {}SORTKEY ({})",
                if *interleaved { "INTERLEAVED " } else { "" },
                cols.join(", ")
            );
        }
        None => {}
    }
    out + ";"
}

#[cfg(test)]
mod tests {
    use super::*;

    const DDL: &str = r#"CREATE TABLE Sales."Customer" (
        id BIGINT IDENTITY(1, 1) ENCODE az64,
        email VARCHAR(MAX) NOT NULL ENCODE lzo,
        note TEXT,
        code CHAR(2) DEFAULT 'NV',
        region_id INTEGER DISTKEY,
        doc SUPER,
        blob VARBYTE(100),
        created TIMESTAMP DEFAULT GETDATE() SORTKEY,
        seq INTEGER GENERATED BY DEFAULT AS IDENTITY(10, 5),
        PRIMARY KEY (id)
    ) BACKUP NO DISTSTYLE KEY COMPOUND SORTKEY (created, id);"#;

    #[test]
    fn encodings_follow_redshift() {
        let (_, d) = create_table(
            "CREATE TABLE t (a INT, b VARCHAR(5), c BOOLEAN, d SUPER, e DATE SORTKEY, f TIME, g DOUBLE PRECISION)",
        )
        .unwrap();
        let enc: Vec<&str> = d
            .columns
            .iter()
            .map(|c| c.encode.as_deref().unwrap())
            .collect();
        assert_eq!(enc, ["az64", "lzo", "raw", "raw", "raw", "raw", "raw"]);
        for bad in [
            "CREATE TABLE t (a VARCHAR(5) ENCODE az64)",
            "CREATE TABLE t (a BOOLEAN ENCODE az64)",
            "CREATE TABLE t (a SUPER ENCODE az64)",
            "CREATE TABLE t (a CHAR(2) ENCODE az64)",
            "CREATE TABLE t (a INT ENCODE text255)",
            "CREATE TABLE t (a INT ENCODE nonsense)",
        ] {
            let e = create_table(bad).unwrap_err();
            assert!(e.0.contains("invalid encoding type"), "{bad}: {}", e.0);
        }
        assert!(
            create_table("CREATE TABLE t (a VARCHAR(5) ENCODE zstd, b INT ENCODE az64)").is_ok()
        );
    }

    #[test]
    fn show_table_quotes_names_that_need_it() {
        let mut ddl = create_table("CREATE TABLE s.t (id INTEGER, \"Odd (1)\" INTEGER)")
            .unwrap()
            .1;
        ddl.name = "s.paren(1)".into();
        ddl.primary_key = vec!["Odd (1)".into()];
        let shown = show_table(&ddl);
        assert!(
            shown.starts_with("CREATE TABLE s.\"paren(1)\" ("),
            "{shown}"
        );
        assert!(shown.contains("    \"odd (1)\" integer"), "{shown}");
        assert!(shown.contains("PRIMARY KEY (\"Odd (1)\")"), "{shown}");
        assert!(shown.contains("    id integer"), "{shown}");
    }

    #[test]
    fn rewrites_for_postgres_and_remembers_redshift() {
        let (pg, ddl) = create_table(DDL).unwrap();
        assert!(
            pg.starts_with("CREATE TABLE \"sales\".\"customer\" ("),
            "{pg}"
        );
        assert!(
            pg.contains("\"id\" bigint GENERATED ALWAYS AS IDENTITY (START WITH 1 INCREMENT BY 1)"),
            "{pg}"
        );
        assert!(
            pg.contains("\"email\" varchar(65535) NOT NULL")
                && pg.contains("\"note\" varchar(256)"),
            "{pg}"
        );
        assert!(
            pg.contains("\"doc\" jsonb")
                && pg.contains("\"blob\" bytea")
                && pg.contains("DEFAULT now()"),
            "{pg}"
        );
        assert!(
            pg.contains("GENERATED BY DEFAULT AS IDENTITY (START WITH 10 INCREMENT BY 5)"),
            "{pg}"
        );
        assert!(
            !pg.to_ascii_uppercase().contains("ENCODE") && !pg.contains("DISTKEY"),
            "{pg}"
        );
        assert_eq!(ddl.name, "sales.customer");
        assert_eq!(ddl.distkey.as_deref(), Some("region_id"));
        assert_eq!(ddl.diststyle, Some(DistStyle::Key));
        assert_eq!(
            ddl.sortkey,
            Some((false, vec!["created".to_string(), "id".to_string()]))
        );
        assert!(!ddl.backup);
        assert_eq!(ddl.columns[0].identity, Some((1, 1, false)));
        assert_eq!(ddl.columns[1].encode.as_deref(), Some("lzo"));
        assert_eq!(ddl.primary_key, ["id"]);
    }

    #[test]
    fn show_table_re_executes_to_the_same_definition() {
        let (_, ddl) = create_table(DDL).unwrap();
        let shown = show_table(&ddl);
        let (_, again) = create_table(&shown).unwrap();
        let strip_encode = |d: &TableDdl| {
            let mut d = d.clone();
            for c in &mut d.columns {
                c.encode = None;
            }
            d
        };
        // Columns without ENCODE show Redshift's default encoding; everything else is identical.
        assert_eq!(strip_encode(&again), strip_encode(&ddl), "{shown}");
        assert_eq!(again.columns[1].encode.as_deref(), Some("lzo"));
    }

    #[test]
    fn rejects_what_redshift_rejects() {
        assert!(
            create_table("CREATE TABLE t (a foo)")
                .unwrap_err()
                .0
                .contains("does not exist")
        );
        assert!(create_table("CREATE TABLE t (a VARCHAR(70000))").is_err());
        assert!(
            create_table("CREATE TABLE t (a VARCHAR IDENTITY(1,1))")
                .unwrap_err()
                .0
                .contains("INT or BIGINT")
        );
        assert!(
            create_table("CREATE TABLE t (a INT) DISTKEY(b)")
                .unwrap_err()
                .0
                .contains("DISTKEY")
        );
        assert!(create_table("CREATE TABLE t (a INT) DISTSTYLE KEY").is_err());
        let spaced = create_table(
            "CREATE TABLE t (id BIGINT IDENTITY (100, 2), v VARCHAR (10), n INT DEFAULT (1 + 2))",
        )
        .unwrap()
        .1;
        assert_eq!(spaced.columns[0].identity, Some((100, 2, false)));
        assert_eq!(spaced.columns[1].redshift_type, "VARCHAR(10)");
        assert_eq!(spaced.columns[2].default.as_deref(), Some("(1 + 2)"));
        let table_level = create_table("CREATE TABLE t (a INT, b INT) DISTSTYLE KEY DISTKEY (b)")
            .unwrap()
            .1;
        assert!(show_table(&table_level).contains("b integer encode az64 distkey"));
        let interleaved = create_table("CREATE TABLE t (a INT, b INT) INTERLEAVED SORTKEY (a, b)")
            .unwrap()
            .1;
        assert_eq!(
            interleaved.sortkey,
            Some((true, vec!["a".into(), "b".into()]))
        );
    }

    #[test]
    fn the_rewrite_runs_on_postgresql() {
        let pg = mirage_testkit::PgCluster::start().unwrap();
        pg.create_database("rs").unwrap();
        let (sql, _) = create_table(DDL).unwrap();
        pg.psql("rs", &format!("CREATE SCHEMA sales; {sql}"))
            .unwrap();
        let types = pg
            .psql(
                "rs",
                "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum) \
                 FROM pg_attribute WHERE attrelid = 'sales.customer'::regclass AND attnum > 0",
            )
            .unwrap();
        assert!(types.starts_with("id bigint, email character varying(65535), note character varying(256), code character(2)"), "{types}");
        // Identity columns: ALWAYS refuses explicit values without OVERRIDING (≈ EXPLICIT_IDS).
        let e = pg
            .psql(
                "rs",
                "INSERT INTO sales.customer (id, email) VALUES (5, 'x')",
            )
            .unwrap_err();
        assert!(e.to_string().contains("GENERATED ALWAYS"), "{e}");
        pg.psql(
            "rs",
            "INSERT INTO sales.customer (email) VALUES ('a'), ('b')",
        )
        .unwrap();
        assert_eq!(
            pg.psql(
                "rs",
                "SELECT string_agg(seq::text, ',' ORDER BY id) FROM sales.customer"
            )
            .unwrap(),
            "10,15"
        );
    }
}
