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

#[cfg(test)]
mod tests {
    use super::*;

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
