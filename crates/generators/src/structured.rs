//! Structured values: `json_mask` rewrites the values at JSONPath expressions and copies every
//! other byte of the document; `array` applies a generator to each element of a PostgreSQL array;
//! `conditional` picks a generator per row.

use crate::text::sub_generator;
use crate::{
    BuildError, Built, ColumnContext, GenerateError, Generator, Prf, Row, RowGenerator, RowRead,
    options,
};
use mirage_core::ValueType;
use serde::Deserialize;
use std::sync::Arc;

/// One step of a JSONPath.
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
    /// `*` or `[*]`: any key or index.
    Any,
    /// `..`: zero or more levels.
    Descend,
}

/// Parse the JSONPath subset `$`, `.key`, `['key']`, `[n]`, `[*]`, `.*`, `..key`.
fn parse_path(p: &str) -> Result<Vec<Seg>, String> {
    let b = p.trim();
    let mut rest = b.strip_prefix('$').ok_or("a JSONPath starts with $")?;
    let mut segs = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("..") {
            segs.push(Seg::Descend);
            rest = r;
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            if end > 0 {
                let k = &rest[..end];
                segs.push(if k == "*" {
                    Seg::Any
                } else {
                    Seg::Key(k.to_string())
                });
                rest = &rest[end..];
            }
        } else if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let k = &r[..end];
            if k.is_empty() {
                return Err("empty key after `.`".into());
            }
            segs.push(if k == "*" {
                Seg::Any
            } else {
                Seg::Key(k.to_string())
            });
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let close = r.find(']').ok_or("a `[` is not closed")?;
            let inner = r[..close].trim();
            segs.push(if inner == "*" {
                Seg::Any
            } else if let Some(q) = inner.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')) {
                Seg::Key(q.to_string())
            } else if let Some(q) = inner.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
                Seg::Key(q.to_string())
            } else {
                Seg::Index(
                    inner
                        .parse()
                        .map_err(|_| format!("`[{inner}]` is not an index, '*' or a quoted key"))?,
                )
            });
            rest = &r[close + 1..];
        } else {
            return Err(format!("unexpected `{rest}`"));
        }
    }
    Ok(segs)
}

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn matches(pattern: &[Seg], path: &[Step]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((Seg::Descend, rest)) => (0..=path.len()).any(|i| matches(rest, &path[i..])),
        Some((seg, rest)) => match path.split_first() {
            None => false,
            Some((step, tail)) => {
                let ok = match (seg, step) {
                    (Seg::Any, _) => true,
                    (Seg::Key(k), Step::Key(s)) => k == s,
                    (Seg::Index(i), Step::Index(j)) => i == j,
                    _ => false,
                };
                ok && matches(rest, tail)
            }
        },
    }
}

struct JsonMask {
    paths: Vec<(Vec<Seg>, Arc<dyn Generator>)>,
}

/// A byte-preserving JSON walker: copies the document, replacing scalars at matching paths.
struct Walker<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
    mask: &'a JsonMask,
    out: &'a mut String,
    path: Vec<Step>,
}

const BAD_JSON: GenerateError = GenerateError::Unparsable { expected: "JSON" };

impl Walker<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn copy_ws(&mut self) {
        let start = self.i;
        self.ws();
        self.out.push_str(&self.s[start..self.i]);
    }

    /// End of the string starting at `self.i` (a quote), after its closing quote.
    fn string_end(&self) -> Result<usize, GenerateError> {
        let mut j = self.i + 1;
        while j < self.b.len() {
            match self.b[j] {
                b'\\' => j += 2,
                b'"' => return Ok(j + 1),
                _ => j += 1,
            }
        }
        Err(BAD_JSON)
    }

    fn scalar_end(&self) -> usize {
        let mut j = self.i;
        while j < self.b.len()
            && !matches!(self.b[j], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
        {
            j += 1;
        }
        j
    }

    fn value(&mut self) -> Result<(), GenerateError> {
        self.copy_ws();
        let Some(&c) = self.b.get(self.i) else {
            return Err(BAD_JSON);
        };
        match c {
            b'{' => {
                self.out.push('{');
                self.i += 1;
                self.copy_ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.out.push('}');
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.copy_ws();
                    if self.b.get(self.i) != Some(&b'"') {
                        return Err(BAD_JSON);
                    }
                    let end = self.string_end()?;
                    let raw = &self.s[self.i..end];
                    let key: String = serde_json::from_str(raw).map_err(|_| BAD_JSON)?;
                    self.out.push_str(raw);
                    self.i = end;
                    self.copy_ws();
                    if self.b.get(self.i) != Some(&b':') {
                        return Err(BAD_JSON);
                    }
                    self.out.push(':');
                    self.i += 1;
                    self.path.push(Step::Key(key));
                    self.value()?;
                    self.path.pop();
                    self.copy_ws();
                    match self.b.get(self.i) {
                        Some(b',') => {
                            self.out.push(',');
                            self.i += 1;
                        }
                        Some(b'}') => {
                            self.out.push('}');
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return Err(BAD_JSON),
                    }
                }
            }
            b'[' => {
                self.out.push('[');
                self.i += 1;
                self.copy_ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.out.push(']');
                    self.i += 1;
                    return Ok(());
                }
                let mut n = 0;
                loop {
                    self.path.push(Step::Index(n));
                    self.value()?;
                    self.path.pop();
                    n += 1;
                    self.copy_ws();
                    match self.b.get(self.i) {
                        Some(b',') => {
                            self.out.push(',');
                            self.i += 1;
                        }
                        Some(b']') => {
                            self.out.push(']');
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return Err(BAD_JSON),
                    }
                }
            }
            _ => {
                let (end, text) = if c == b'"' {
                    let end = self.string_end()?;
                    let t: String =
                        serde_json::from_str(&self.s[self.i..end]).map_err(|_| BAD_JSON)?;
                    (end, Some(t))
                } else {
                    let end = self.scalar_end();
                    let raw = &self.s[self.i..end];
                    (end, (raw != "null").then(|| raw.to_string()))
                };
                let generator = self
                    .mask
                    .paths
                    .iter()
                    .find(|(p, _)| matches(p, &self.path))
                    .map(|(_, g)| g.clone());
                match generator {
                    None => self.out.push_str(&self.s[self.i..end]),
                    Some(g) => {
                        let mut v = String::new();
                        if !g.generate(text.as_deref(), &mut v)? {
                            self.out.push_str("null");
                        } else if c != b'"'
                            && serde_json::from_str::<serde_json::Value>(&v)
                                .is_ok_and(|x| x.is_number() || x.is_boolean())
                        {
                            self.out.push_str(&v);
                        } else {
                            self.out.push_str(&serde_json::Value::String(v).to_string());
                        }
                    }
                }
                self.i = end;
                Ok(())
            }
        }
    }
}

impl Generator for JsonMask {
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
        let Some(v) = input else { return Ok(false) };
        let start = out.len();
        let mut w = Walker {
            s: v,
            b: v.as_bytes(),
            i: 0,
            mask: self,
            out,
            path: Vec::new(),
        };
        let r = w.value().and_then(|_| {
            w.copy_ws();
            if w.i == w.b.len() {
                Ok(())
            } else {
                Err(BAD_JSON)
            }
        });
        if let Err(e) = r {
            out.truncate(start);
            return Err(e);
        }
        Ok(true)
    }
}

pub(crate) fn json_mask(opts: &toml::Table, ctx: &ColumnContext, prf: &Prf) -> Built {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Opts {
        paths: toml::Table,
    }
    let o: Opts = options("json_mask", opts)?;
    if o.paths.is_empty() {
        return Err(BuildError::BadOption(
            "generator `json_mask`: `paths` is empty".into(),
        ));
    }
    let text = ValueType::Text { max_chars: None };
    let mut paths = Vec::new();
    for (p, g) in &o.paths {
        let segs = parse_path(p).map_err(|e| {
            BuildError::BadOption(format!("generator `json_mask`: path `{p}`: {e}"))
        })?;
        // A JSON value may be a string, a number or a boolean: take the first type the
        // sub-generator accepts.
        let generator = sub_generator("json_mask", g, ctx, &text, prf)
            .or_else(|_| {
                sub_generator(
                    "json_mask",
                    g,
                    ctx,
                    &ValueType::Numeric {
                        precision: None,
                        scale: None,
                    },
                    prf,
                )
            })
            .or_else(|_| sub_generator("json_mask", g, ctx, &ValueType::Boolean, prf))
            .or_else(|_| sub_generator("json_mask", g, ctx, &text, prf))?;
        paths.push((segs, generator));
    }
    Ok(Arc::new(JsonMask { paths }))
}

/// `array`: a generator applied to every element of a PostgreSQL array literal.
struct ArrayMask {
    element: Arc<dyn Generator>,
}

const BAD_ARRAY: GenerateError = GenerateError::Unparsable {
    expected: "an array",
};

fn quote_element(v: &str, out: &mut String) {
    let plain = !v.is_empty()
        && !v.eq_ignore_ascii_case("null")
        && !v
            .chars()
            .any(|c| matches!(c, ',' | '{' | '}' | '"' | '\\') || c.is_whitespace());
    if plain {
        out.push_str(v);
        return;
    }
    out.push('"');
    for c in v.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

impl ArrayMask {
    fn walk(
        &self,
        b: &[u8],
        s: &str,
        i: &mut usize,
        out: &mut String,
    ) -> Result<(), GenerateError> {
        if b.get(*i) != Some(&b'{') {
            return Err(BAD_ARRAY);
        }
        out.push('{');
        *i += 1;
        if b.get(*i) == Some(&b'}') {
            out.push('}');
            *i += 1;
            return Ok(());
        }
        loop {
            match b.get(*i) {
                Some(b'{') => self.walk(b, s, i, out)?,
                Some(b'"') => {
                    let mut v = String::new();
                    *i += 1;
                    loop {
                        match b.get(*i) {
                            Some(b'\\') => {
                                let c = s[*i + 1..].chars().next().ok_or(BAD_ARRAY)?;
                                v.push(c);
                                *i += 1 + c.len_utf8();
                            }
                            Some(b'"') => {
                                *i += 1;
                                break;
                            }
                            Some(_) => {
                                let c = s[*i..].chars().next().ok_or(BAD_ARRAY)?;
                                v.push(c);
                                *i += c.len_utf8();
                            }
                            None => return Err(BAD_ARRAY),
                        }
                    }
                    self.element(Some(&v), out)?;
                }
                Some(_) => {
                    let start = *i;
                    while *i < b.len() && !matches!(b[*i], b',' | b'}') {
                        *i += 1;
                    }
                    let raw = &s[start..*i];
                    let v = (!raw.eq_ignore_ascii_case("null")).then_some(raw);
                    self.element(v, out)?;
                }
                None => return Err(BAD_ARRAY),
            }
            match b.get(*i) {
                Some(b',') => {
                    out.push(',');
                    *i += 1;
                }
                Some(b'}') => {
                    out.push('}');
                    *i += 1;
                    return Ok(());
                }
                _ => return Err(BAD_ARRAY),
            }
        }
    }

    fn element(&self, v: Option<&str>, out: &mut String) -> Result<(), GenerateError> {
        let mut g = String::new();
        if self.element.generate(v, &mut g)? {
            quote_element(&g, out);
        } else {
            out.push_str("NULL");
        }
        Ok(())
    }
}

impl Generator for ArrayMask {
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
        let Some(v) = input else { return Ok(false) };
        let (b, mut i) = (v.as_bytes(), 0);
        // Arrays with explicit bounds ("[0:1]={…}") keep their prefix.
        if let Some(eq) = v.find("={") {
            out.push_str(&v[..eq + 1]);
            i = eq + 1;
        }
        let start = out.len();
        if let Err(e) = self.walk(b, v, &mut i, out) {
            out.truncate(start);
            return Err(e);
        }
        if i != b.len() {
            return Err(BAD_ARRAY);
        }
        Ok(true)
    }
}

pub(crate) fn array(opts: &toml::Table, ctx: &ColumnContext, prf: &Prf) -> Built {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Opts {
        element: toml::Value,
    }
    let o: Opts = options("array", opts)?;
    let elem_type = match ctx.value_type {
        ValueType::Array(t) => (**t).clone(),
        _ => ValueType::Text { max_chars: None },
    };
    Ok(Arc::new(ArrayMask {
        element: sub_generator("array", &o.element, ctx, &elem_type, prf)?,
    }))
}

/// `conditional`: `then` when the condition holds for the row, `else` (default passthrough)
/// otherwise.
struct Conditional {
    column: Option<usize>,
    test: Test,
    then: Arc<dyn Generator>,
    otherwise: Option<Arc<dyn Generator>>,
    reads: Vec<RowRead>,
}

enum Test {
    Equals(String),
    In(Vec<String>),
    Matches(regex::Regex),
    IsNull(bool),
}

impl RowGenerator for Conditional {
    fn generate_in_row(
        &self,
        input: Option<&str>,
        row: &dyn Row,
        out: &mut String,
    ) -> Result<bool, GenerateError> {
        let subject = match self.column {
            Some(c) => row.original(c),
            None => input,
        };
        let holds = match (&self.test, subject) {
            (Test::IsNull(want), s) => s.is_none() == *want,
            (_, None) => false,
            (Test::Equals(x), Some(s)) => s == x,
            (Test::In(xs), Some(s)) => xs.iter().any(|x| x == s),
            (Test::Matches(re), Some(s)) => re.is_match(s),
        };
        match (holds, &self.otherwise) {
            (true, _) => self.then.generate_in_row(input, row, out),
            (false, Some(g)) => g.generate_in_row(input, row, out),
            (false, None) => match input {
                Some(v) => {
                    out.push_str(v);
                    Ok(true)
                }
                None => Ok(false),
            },
        }
    }

    fn reads(&self) -> &[RowRead] {
        &self.reads
    }
}

pub(crate) fn conditional(opts: &toml::Table, ctx: &ColumnContext, prf: &Prf) -> Built {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct When {
        column: Option<String>,
        equals: Option<String>,
        #[serde(rename = "in")]
        any_of: Option<Vec<String>>,
        matches: Option<String>,
        is_null: Option<bool>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Opts {
        when: When,
        then: toml::Value,
        #[serde(rename = "else")]
        otherwise: Option<toml::Value>,
    }
    let o: Opts = options("conditional", opts)?;
    let w = o.when;
    let tests = [
        w.equals.is_some(),
        w.any_of.is_some(),
        w.matches.is_some(),
        w.is_null.is_some(),
    ];
    if tests.iter().filter(|t| **t).count() != 1 {
        return Err(BuildError::BadOption(
            "generator `conditional`: `when` needs exactly one of equals, in, matches, is_null"
                .into(),
        ));
    }
    let test = if let Some(x) = w.equals {
        Test::Equals(x)
    } else if let Some(xs) = w.any_of {
        Test::In(xs)
    } else if let Some(m) = w.matches {
        Test::Matches(regex::Regex::new(&m).map_err(|e| {
            BuildError::BadOption(format!(
                "generator `conditional`: `matches` is not a valid regex: {e}"
            ))
        })?)
    } else {
        Test::IsNull(w.is_null.unwrap_or(true))
    };
    let column = w
        .column
        .as_deref()
        .map(|c| ctx.column_index("conditional", c))
        .transpose()?;
    let then = sub_generator("conditional", &o.then, ctx, ctx.value_type, prf)?;
    let otherwise = o
        .otherwise
        .as_ref()
        .map(|g| sub_generator("conditional", g, ctx, ctx.value_type, prf))
        .transpose()?;
    let mut reads: Vec<RowRead> = column
        .map(|c| RowRead {
            column: c,
            generated: false,
        })
        .into_iter()
        .collect();
    reads.extend(then.reads());
    if let Some(g) = &otherwise {
        reads.extend(g.reads());
    }
    Ok(Arc::new(Conditional {
        column,
        test,
        then,
        otherwise,
        reads,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gen_for(
        name: &str,
        ty: &ValueType,
        opts: &str,
        columns: &[(String, ValueType)],
    ) -> Arc<dyn Generator> {
        let o: toml::Table = toml::from_str(opts).unwrap();
        let ctx = ColumnContext {
            table: "t",
            column: "c",
            value_type: ty,
            not_null: false,
            columns,
            stats: None,
        };
        crate::build(name, &o, &ctx, &Prf::from_seed("j")).unwrap()
    }

    #[test]
    fn json_mask_rewrites_paths_and_keeps_the_rest() {
        let g = gen_for(
            "json_mask",
            &ValueType::Jsonb,
            r#"paths = { "$.name" = { generator = "full_name" }, "$.contacts[*].email" = { generator = "email" }, "$..ssn" = { generator = "ssn" }, "$.age" = { generator = "noise", scale = 3 } }"#,
            &[],
        );
        let doc = r#"{"name": "Ada Lovelace", "age": 36, "contacts": [{"email": "ada@x.org", "kind": "work"}, {"email": null}], "deep": {"ssn": "123-45-6789", "keep": [1, 2.50, true]}}"#;
        let mut out = String::new();
        g.generate(Some(doc), &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_ne!(v["name"], "Ada Lovelace");
        assert!(v["contacts"][0]["email"].as_str().unwrap().contains('@'));
        assert!(v["contacts"][1]["email"].is_null());
        assert_ne!(v["deep"]["ssn"], "123-45-6789");
        assert!(v["age"].is_number());
        assert!(
            out.contains(r#""kind": "work""#) && out.contains("[1, 2.50, true]"),
            "{out}"
        );
        let mut e = String::new();
        assert!(g.generate(Some("{not json"), &mut e).is_err());
        assert!(e.is_empty());
    }

    #[test]
    fn array_applies_to_each_element() {
        let ty = ValueType::Array(Box::new(ValueType::Text { max_chars: None }));
        let g = gen_for(
            "array",
            &ty,
            r#"element = { generator = "character_scramble" }"#,
            &[],
        );
        let mut out = String::new();
        g.generate(Some(r#"{abc,"d e",NULL,"q\"uote",{x,y}}"#), &mut out)
            .unwrap();
        assert!(
            out.starts_with('{') && out.contains(",NULL,") && out.ends_with("}}"),
            "{out}"
        );
        assert!(!out.contains("abc") && out.contains('"'), "{out}");
        let ints = ValueType::Array(Box::new(ValueType::Integer));
        let k = gen_for(
            "array",
            &ints,
            r#"element = { generator = "integer_key" }"#,
            &[],
        );
        let mut o = String::new();
        k.generate(Some("{1,2,3}"), &mut o).unwrap();
        assert_eq!(o.split(',').count(), 3);
    }

    #[test]
    fn conditional_follows_another_column() {
        let text = ValueType::Text { max_chars: None };
        let columns = vec![
            ("country".to_string(), text.clone()),
            ("c".to_string(), text.clone()),
        ];
        let g = gen_for(
            "conditional",
            &text,
            r#"when = { column = "country", equals = "US" }
               then = { generator = "ssn" }
               else = { generator = "constant", value = "n/a" }"#,
            &columns,
        );
        struct R(Option<&'static str>);
        impl Row for R {
            fn original(&self, i: usize) -> Option<&str> {
                if i == 0 { self.0 } else { None }
            }
            fn generated(&self, _: usize) -> Option<&str> {
                None
            }
        }
        let (mut a, mut b) = (String::new(), String::new());
        g.generate_in_row(Some("123-45-6789"), &R(Some("US")), &mut a)
            .unwrap();
        g.generate_in_row(Some("123-45-6789"), &R(Some("CA")), &mut b)
            .unwrap();
        assert!(a.len() == 11 && a != "123-45-6789");
        assert_eq!(b, "n/a");
        assert_eq!(g.reads().len(), 1);
    }
}
