//! A lexer just good enough to split a query string into statements and to rewrite what Redshift
//! spells differently from PostgreSQL in statements passed through: quoted identifiers fold to
//! lower case, `version()` answers like Redshift, and `CREATE/ALTER USER`'s `CREATEUSER`,
//! `PASSWORD DISABLE` and `SYSLOG ACCESS` become PostgreSQL's.

/// A piece of SQL text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Word(String),
    /// `"…"`, with the text between the quotes (doubled quotes undone).
    Ident(String),
    /// A string literal or dollar-quoted body, as written.
    Literal(String),
    /// Whitespace or a comment, as written.
    Gap(String),
    Punct(char),
}

fn lex(sql: &str) -> Vec<Piece> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let text = |a: usize, b: usize| chars[a..b].iter().collect::<String>();
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
            out.push(Piece::Gap(text(start, i)));
        } else if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            out.push(Piece::Gap(text(start, i)));
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(Piece::Gap(text(start, i.min(chars.len()))));
        } else if c == '\'' || ((c == 'E' || c == 'e') && chars.get(i + 1) == Some(&'\'')) {
            let escapes = c != '\'';
            i += if escapes { 2 } else { 1 };
            while i < chars.len() {
                if escapes && chars[i] == '\\' {
                    i += 2;
                } else if chars[i] == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        i += 2;
                    } else {
                        i += 1;
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(Piece::Literal(text(start, i.min(chars.len()))));
        } else if c == '"' {
            i += 1;
            let mut s = String::new();
            while i < chars.len() {
                if chars[i] == '"' {
                    if chars.get(i + 1) == Some(&'"') {
                        s.push('"');
                        i += 2;
                    } else {
                        i += 1;
                        break;
                    }
                } else {
                    s.push(chars[i]);
                    i += 1;
                }
            }
            out.push(Piece::Ident(s));
        } else if c == '$' {
            // $tag$ … $tag$, or a parameter ($1).
            let mut j = i + 1;
            while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            let is_param = j > i + 1 && chars[i + 1..j].iter().all(char::is_ascii_digit);
            if !is_param && chars.get(j) == Some(&'$') {
                let tag = text(i, j + 1);
                let body_start = j + 1;
                let body: String = text(body_start, chars.len());
                let end = body.find(&tag).map_or(chars.len(), |p| {
                    body_start + body[..p].chars().count() + tag.chars().count()
                });
                out.push(Piece::Literal(text(start, end)));
                i = end;
            } else {
                out.push(Piece::Word(text(i, j)));
                i = j;
            }
        } else if c.is_alphanumeric() || c == '_' || c == '#' {
            while i < chars.len()
                && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '$' | '#'))
            {
                i += 1;
            }
            out.push(Piece::Word(text(start, i)));
        } else {
            out.push(Piece::Punct(c));
            i += 1;
        }
    }
    out
}

fn render(pieces: &[Piece]) -> String {
    let mut s = String::new();
    for p in pieces {
        match p {
            Piece::Word(w) | Piece::Literal(w) | Piece::Gap(w) => s.push_str(w),
            Piece::Ident(i) => {
                s.push('"');
                s.push_str(&i.replace('"', "\"\""));
                s.push('"');
            }
            Piece::Punct(c) => s.push(*c),
        }
    }
    s
}

/// The statements of a query string, without their `;` (empty ones dropped).
pub fn split_statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    for p in lex(sql) {
        if p == Piece::Punct(';') {
            out.push(render(&current));
            current.clear();
        } else {
            current.push(p);
        }
    }
    out.push(render(&current));
    out.into_iter()
        .filter(|s| lex(s).iter().any(|p| !matches!(p, Piece::Gap(_))))
        .collect()
}

/// The statement's leading keywords, upper-cased (at most `n`).
pub fn keywords(sql: &str, n: usize) -> Vec<String> {
    lex(sql)
        .into_iter()
        .filter(|p| !matches!(p, Piece::Gap(_)))
        .take(n)
        .map(|p| match p {
            Piece::Word(w) => w.to_ascii_uppercase(),
            Piece::Ident(i) => i.to_lowercase(),
            Piece::Literal(l) => l,
            Piece::Punct(c) => c.to_string(),
            Piece::Gap(_) => String::new(),
        })
        .collect()
}

/// The words and identifiers of a statement (identifiers folded), without gaps; punctuation kept.
pub fn tokens(sql: &str) -> Vec<String> {
    keywords(sql, usize::MAX)
}

/// Rewrite a statement PostgreSQL runs for Redshift's client.
pub fn to_postgres(sql: &str) -> String {
    let mut pieces = lex(sql);
    let significant: Vec<usize> = (0..pieces.len())
        .filter(|i| !matches!(pieces[*i], Piece::Gap(_)))
        .collect();
    let word = |pieces: &[Piece], k: usize| -> String {
        significant
            .get(k)
            .and_then(|i| match &pieces[*i] {
                Piece::Word(w) => Some(w.to_ascii_uppercase()),
                _ => None,
            })
            .unwrap_or_default()
    };
    let user_ddl =
        matches!(word(&pieces, 0).as_str(), "CREATE" | "ALTER") && word(&pieces, 1) == "USER";
    let mut drop_from = None;
    for (k, &i) in significant.iter().enumerate() {
        let next_is_call = significant
            .get(k + 1)
            .is_some_and(|j| pieces[*j] == Piece::Punct('('))
            && significant
                .get(k + 2)
                .is_some_and(|j| pieces[*j] == Piece::Punct(')'));
        let prev_dot = k > 0 && pieces[significant[k - 1]] == Piece::Punct('.');
        match &pieces[i] {
            // Quoted identifiers fold like unquoted ones (enable_case_sensitive_identifier off).
            Piece::Ident(id) => {
                let folded = id.to_lowercase();
                pieces[i] = Piece::Ident(folded);
            }
            Piece::Word(w) if w.eq_ignore_ascii_case("current_namespace") && !prev_dot => {
                pieces[i] = Piece::Word("rs_meta.current_namespace()".into());
            }
            Piece::Word(w) if w.eq_ignore_ascii_case("version") && next_is_call => {
                if prev_dot {
                    // pg_catalog.version() → rs_meta.version()
                    if k >= 2
                        && let Piece::Word(schema) = &pieces[significant[k - 2]]
                        && schema.eq_ignore_ascii_case("pg_catalog")
                    {
                        pieces[significant[k - 2]] = Piece::Word("rs_meta".into());
                    }
                } else {
                    pieces[i] = Piece::Word("rs_meta.version".into());
                }
            }
            Piece::Word(w) if user_ddl => match w.to_ascii_uppercase().as_str() {
                "CREATEUSER" => pieces[i] = Piece::Word("SUPERUSER".into()),
                "NOCREATEUSER" => pieces[i] = Piece::Word("NOSUPERUSER".into()),
                "DISABLE" if word(&pieces, k - 1) == "PASSWORD" => {
                    pieces[i] = Piece::Word("NULL".into())
                }
                "SYSLOG" if drop_from.is_none() => drop_from = Some(k),
                _ => {}
            },
            _ => {}
        }
    }
    // SYSLOG ACCESS { RESTRICTED | UNRESTRICTED } has no PostgreSQL counterpart.
    if let Some(k) = drop_from {
        for &i in significant.iter().skip(k).take(3) {
            pieces[i] = Piece::Gap(String::new());
        }
    }
    render(&pieces)
}

/// `CREATE [OR REPLACE] VIEW` and `CREATE MATERIALIZED VIEW`, as PostgreSQL takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewStatement {
    /// The view's name as written, identifiers folded (`schema.view` when qualified).
    pub name: String,
    /// `CREATE MATERIALIZED VIEW`.
    pub materialized: bool,
    /// Declared `WITH NO SCHEMA BINDING` (a late-binding view).
    pub late_binding: bool,
    /// The statement without what PostgreSQL lacks: the materialized view's `BACKUP`,
    /// `DISTSTYLE`, `DISTKEY`, `SORTKEY` and `AUTO REFRESH`, the late-binding clause.
    pub postgres: String,
}

/// Read a view statement (`None` for anything else).
pub fn view_statement(sql: &str) -> Option<ViewStatement> {
    let mut pieces = lex(sql.trim().trim_end_matches(';'));
    let significant: Vec<usize> = (0..pieces.len())
        .filter(|i| !matches!(pieces[*i], Piece::Gap(_)))
        .collect();
    let word = |k: usize| -> String {
        significant
            .get(k)
            .map(|i| match &pieces[*i] {
                Piece::Word(w) => w.to_ascii_uppercase(),
                Piece::Ident(id) => format!("\"{id}\""),
                Piece::Punct(c) => c.to_string(),
                Piece::Literal(l) => l.clone(),
                Piece::Gap(_) => String::new(),
            })
            .unwrap_or_default()
    };
    if word(0) != "CREATE" {
        return None;
    }
    let mut k = 1;
    if word(1) == "OR" && word(2) == "REPLACE" {
        k = 3;
    }
    let materialized = word(k) == "MATERIALIZED";
    if materialized {
        k += 1;
    }
    if word(k) != "VIEW" {
        return None;
    }
    k += 1;
    // The (qualified) name.
    let mut name = String::new();
    loop {
        let part = match significant.get(k).map(|i| &pieces[*i]) {
            Some(Piece::Word(w)) => w.to_lowercase(),
            Some(Piece::Ident(id)) => id.to_lowercase(),
            _ => return None,
        };
        name.push_str(&part);
        k += 1;
        if word(k) == "." {
            name.push('.');
            k += 1;
        } else {
            break;
        }
    }
    // The first top-level AS begins the query.
    let mut depth = 0i32;
    let mut as_at = None;
    for (j, &i) in significant.iter().enumerate().skip(k) {
        match &pieces[i] {
            Piece::Punct('(') => depth += 1,
            Piece::Punct(')') => depth -= 1,
            Piece::Word(w) if depth == 0 && w.eq_ignore_ascii_case("AS") => {
                as_at = Some(j);
                break;
            }
            _ => {}
        }
    }
    let as_at = as_at?;
    let n = significant.len();
    let late_binding = n >= 4
        && ["WITH", "NO", "SCHEMA", "BINDING"]
            .iter()
            .enumerate()
            .all(|(o, w)| word(n - 4 + o) == *w);
    if materialized {
        // Attributes between the name and AS: BACKUP, DISTSTYLE, DISTKEY (…), SORTKEY (…),
        // AUTO REFRESH.
        for &i in &significant[k..as_at] {
            pieces[i] = Piece::Gap(String::new());
        }
    }
    if late_binding {
        for &i in &significant[n - 4..] {
            pieces[i] = Piece::Gap(String::new());
        }
    }
    Some(ViewStatement {
        name,
        materialized,
        late_binding,
        postgres: to_postgres(&render(&pieces)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_lose_what_postgresql_lacks() {
        let v = view_statement(
            "CREATE MATERIALIZED VIEW Sales.\"MV\" BACKUP NO DISTSTYLE KEY DISTKEY (a) SORTKEY (a, b) AUTO REFRESH YES AS SELECT a, (b) AS c FROM t;",
        )
        .unwrap();
        assert!(v.materialized && !v.late_binding);
        assert_eq!(v.name, "sales.mv");
        assert!(
            !v.postgres.contains("BACKUP") && !v.postgres.contains("SORTKEY"),
            "{}",
            v.postgres
        );
        assert!(
            v.postgres.contains("AS SELECT a, (b) AS c FROM t"),
            "{}",
            v.postgres
        );
        let v = view_statement(
            "create or replace view s.v (x) as select x from other.t with no schema binding",
        )
        .unwrap();
        assert!(v.late_binding && !v.materialized);
        assert_eq!(v.name, "s.v");
        assert!(!v.postgres.contains("binding"), "{}", v.postgres);
        assert!(view_statement("CREATE TABLE t (a int)").is_none());
    }

    #[test]
    fn splits_on_semicolons_outside_quotes_and_comments() {
        let s = split_statements(
            "SELECT 'a;b', \"x;y\"; -- c;d\n UNLOAD ('select 1 from t where v = ''z;'' ') TO 's3://b/p'; \
             DO $f$ BEGIN PERFORM 1; END $f$; ;  ",
        );
        assert_eq!(s.len(), 3, "{s:?}");
        assert!(s[1].contains("UNLOAD") && s[1].contains("''z;''"));
        assert!(s[2].contains("PERFORM 1; END"));
    }

    #[test]
    fn rewrites_what_postgresql_spells_differently() {
        assert_eq!(
            to_postgres("SELECT \"MixedCase\".\"Col\" FROM \"S\".\"T\" WHERE x = 'KeepMe'"),
            "SELECT \"mixedcase\".\"col\" FROM \"s\".\"t\" WHERE x = 'KeepMe'"
        );
        assert_eq!(
            to_postgres("select version(), pg_catalog.version()"),
            "select rs_meta.version(), rs_meta.version()"
        );
        assert_eq!(
            to_postgres("CREATE USER dst PASSWORD DISABLE CREATEUSER SYSLOG ACCESS UNRESTRICTED"),
            "CREATE USER dst PASSWORD NULL SUPERUSER   "
        );
        assert_eq!(
            to_postgres("ALTER USER u NOCREATEUSER"),
            "ALTER USER u NOSUPERUSER"
        );
        assert_eq!(keywords("  show TABLE \"S\".t", 3), ["SHOW", "TABLE", "s"]);
    }
}
