//! Text generators: hash, character scramble and substitution, regex masks, find/replace and
//! templates over other columns of the row.

use crate::{
    BuildError, Built, ColumnContext, GenerateError, Generator, Prf, Row, RowGenerator, RowRead,
    no_options, options,
};
use serde::Deserialize;
use std::sync::Arc;

struct Hash {
    prf: Prf,
    /// `None`: the input's length and alphabet (hex digits stay hex digits, anything else
    /// becomes letters and digits), at most `max_chars`.
    fixed: Option<(usize, bool)>,
    max_chars: Option<usize>,
}

const HEX: &[u8; 16] = b"0123456789abcdef";
const ALNUM: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

impl Hash {
    /// `n` keyed bytes for `v`: the hash, then further blocks for long values.
    fn bytes(&self, v: &str, n: usize) -> Vec<u8> {
        let mut out = self.prf.hash("text", v.as_bytes()).to_vec();
        let mut block = 1u32;
        while out.len() < n {
            let mut more = v.as_bytes().to_vec();
            more.extend_from_slice(&block.to_le_bytes());
            out.extend_from_slice(&self.prf.hash("text-more", &more));
            block += 1;
        }
        out.truncate(n);
        out
    }
}

impl Generator for Hash {
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
        let Some(v) = input else { return Ok(false) };
        match self.fixed {
            Some((length, true)) => {
                use base64::Engine;
                let h = self.prf.hash("text", v.as_bytes());
                let enc = base64::engine::general_purpose::STANDARD_NO_PAD.encode(h);
                out.push_str(&enc[..length.min(enc.len())]);
            }
            Some((length, false)) => {
                let h = self.prf.hash("text", v.as_bytes());
                for b in h.iter().flat_map(|b| [b >> 4, b & 15]).take(length) {
                    out.push(HEX[b as usize] as char);
                }
            }
            None => {
                let n = v.chars().count().min(self.max_chars.unwrap_or(usize::MAX));
                if v.chars().all(|c| c.is_ascii_hexdigit()) {
                    let upper = v.chars().any(|c| c.is_ascii_uppercase())
                        && !v.chars().any(|c| c.is_ascii_lowercase());
                    for b in self
                        .bytes(v, n.div_ceil(2))
                        .iter()
                        .flat_map(|b| [b >> 4, b & 15])
                        .take(n)
                    {
                        let c = HEX[b as usize] as char;
                        out.push(if upper { c.to_ascii_uppercase() } else { c });
                    }
                } else {
                    for b in self.bytes(v, n) {
                        out.push(ALNUM[b as usize % ALNUM.len()] as char);
                    }
                }
            }
        }
        Ok(true)
    }
}

pub(crate) fn hash(opts: &toml::Table, ctx: &ColumnContext, prf: &Prf) -> Built {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Opts {
        length: Option<usize>,
        encoding: Option<String>,
    }
    let o: Opts = options("hash", opts)?;
    let col_max = ctx.value_type.max_chars().map(|m| m as usize);
    if o.length.is_none() && o.encoding.is_none() {
        return Ok(Arc::new(Hash {
            prf: prf.derive("hash"),
            fixed: None,
            max_chars: col_max,
        }));
    }
    let base64 = match o.encoding.as_deref() {
        None | Some("hex") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(BuildError::BadOption(format!(
                "generator `hash`: encoding `{other}` is not hex or base64"
            )));
        }
    };
    let full = if base64 { 43 } else { 64 };
    let length = o.length.unwrap_or(full).min(col_max.unwrap_or(full));
    if length == 0 || length > full {
        return Err(BuildError::BadOption(format!(
            "generator `hash`: `length` must be between 1 and {full}"
        )));
    }
    Ok(Arc::new(Hash {
        prf: prf.derive("hash"),
        fixed: Some((length, base64)),
        max_chars: col_max,
    }))
}

struct CharacterScramble {
    prf: Prf,
}

impl Generator for CharacterScramble {
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
        let Some(v) = input else { return Ok(false) };
        let mut rng = self.prf.rng("text", v.as_bytes());
        for c in v.chars() {
            let r = if c.is_ascii_lowercase() {
                (b'a' + rng.below(26) as u8) as char
            } else if c.is_ascii_uppercase() {
                (b'A' + rng.below(26) as u8) as char
            } else if c.is_ascii_digit() {
                (b'0' + rng.below(10) as u8) as char
            } else if c.is_alphabetic() {
                // Other scripts: keep the character class, map into lower-case ASCII letters so
                // the output never grows longer than the input in characters.
                (b'a' + rng.below(26) as u8) as char
            } else {
                c
            };
            out.push(r);
        }
        Ok(true)
    }
}

pub(crate) fn character_scramble(opts: &toml::Table, _: &ColumnContext, prf: &Prf) -> Built {
    no_options("character_scramble", opts)?;
    Ok(Arc::new(CharacterScramble {
        prf: prf.derive("character_scramble"),
    }))
}

/// One fixed substitution alphabet per seed: every `a` becomes the same letter everywhere.
struct CharacterSubstitution {
    lower: [u8; 26],
    upper: [u8; 26],
    digits: [u8; 10],
}

/// A keyed shuffle of `0..N` (Fisher–Yates driven by the PRF).
fn shuffled<const N: usize>(prf: &Prf, tag: &str) -> [u8; N] {
    let mut a = [0u8; N];
    for (i, x) in a.iter_mut().enumerate() {
        *x = i as u8;
    }
    let mut rng = prf.rng(tag, b"");
    for i in (1..N).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        a.swap(i, j);
    }
    a
}

impl Generator for CharacterSubstitution {
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
        let Some(v) = input else { return Ok(false) };
        out.extend(v.chars().map(|c| match c {
            'a'..='z' => (b'a' + self.lower[(c as u8 - b'a') as usize]) as char,
            'A'..='Z' => (b'A' + self.upper[(c as u8 - b'A') as usize]) as char,
            '0'..='9' => (b'0' + self.digits[(c as u8 - b'0') as usize]) as char,
            c => c,
        }));
        Ok(true)
    }
}

pub(crate) fn character_substitution(opts: &toml::Table, _: &ColumnContext, prf: &Prf) -> Built {
    no_options("character_substitution", opts)?;
    let prf = prf.derive("character_substitution");
    Ok(Arc::new(CharacterSubstitution {
        lower: shuffled(&prf, "lower"),
        upper: shuffled(&prf, "upper"),
        digits: shuffled(&prf, "digits"),
    }))
}

/// `regex_mask`: sub-generators rewrite the capture groups of a pattern; the rest is kept.
struct RegexMask {
    re: regex::Regex,
    groups: Vec<Option<Arc<dyn Generator>>>,
}

impl Generator for RegexMask {
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
        let Some(v) = input else { return Ok(false) };
        let mut last = 0;
        let mut scratch = String::new();
        for caps in self.re.captures_iter(v) {
            for (g, generator) in self.groups.iter().enumerate() {
                let (Some(m), Some(generator)) = (caps.get(g + 1), generator) else {
                    continue;
                };
                if m.start() < last {
                    continue; // nested group inside one already rewritten
                }
                out.push_str(&v[last..m.start()]);
                scratch.clear();
                if generator.generate(Some(m.as_str()), &mut scratch)? {
                    out.push_str(&scratch);
                }
                last = m.end();
            }
        }
        out.push_str(&v[last..]);
        Ok(true)
    }
}

/// Build a sub-generator from an inline table `{ generator = "…", … }`.
pub(crate) fn sub_generator(
    parent: &str,
    value: &toml::Value,
    ctx: &ColumnContext,
    value_type: &mirage_core::ValueType,
    prf: &Prf,
) -> Built {
    let toml::Value::Table(t) = value else {
        return Err(BuildError::BadOption(format!(
            "generator `{parent}`: sub-generators are written {{ generator = \"name\", … }}"
        )));
    };
    let mut t = t.clone();
    let Some(toml::Value::String(name)) = t.remove("generator") else {
        return Err(BuildError::BadOption(format!(
            "generator `{parent}`: a sub-generator needs `generator = \"name\"`"
        )));
    };
    let sub_ctx = ColumnContext { value_type, ..*ctx };
    crate::build(&name, &t, &sub_ctx, prf)
        .map_err(|e| BuildError::BadOption(format!("generator `{parent}`: {e}")))
}

pub(crate) fn regex_mask(opts: &toml::Table, ctx: &ColumnContext, prf: &Prf) -> Built {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Opts {
        pattern: String,
        groups: Vec<toml::Value>,
    }
    let o: Opts = options("regex_mask", opts)?;
    let re = regex::Regex::new(&o.pattern).map_err(|e| {
        BuildError::BadOption(format!(
            "generator `regex_mask`: `pattern` is not a valid regex: {e}"
        ))
    })?;
    if o.groups.len() > re.captures_len() - 1 {
        return Err(BuildError::BadOption(format!(
            "generator `regex_mask`: {} sub-generators for {} capture groups",
            o.groups.len(),
            re.captures_len() - 1
        )));
    }
    let text = mirage_core::ValueType::Text { max_chars: None };
    let groups = o
        .groups
        .iter()
        .map(|g| match g {
            toml::Value::String(s) if s == "passthrough" => Ok(None),
            other => sub_generator("regex_mask", other, ctx, &text, prf).map(Some),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Arc::new(RegexMask { re, groups }))
}

/// `find_replace`: replace every occurrence of a string (or regex) with a fixed text.
struct FindReplace {
    re: regex::Regex,
    replace: String,
}

impl Generator for FindReplace {
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
        let Some(v) = input else { return Ok(false) };
        out.push_str(&self.re.replace_all(v, self.replace.as_str()));
        Ok(true)
    }
}

pub(crate) fn find_replace(opts: &toml::Table, _: &ColumnContext, _: &Prf) -> Built {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Opts {
        find: String,
        replace: String,
        #[serde(default)]
        regex: bool,
    }
    let o: Opts = options("find_replace", opts)?;
    if o.find.is_empty() {
        return Err(BuildError::BadOption(
            "generator `find_replace`: `find` is empty".into(),
        ));
    }
    let pattern = if o.regex {
        o.find.clone()
    } else {
        regex::escape(&o.find)
    };
    let re = regex::Regex::new(&pattern).map_err(|e| {
        BuildError::BadOption(format!(
            "generator `find_replace`: `find` is not a valid regex: {e}"
        ))
    })?;
    // A literal replacement: `$` has no special meaning unless the pattern is a regex.
    let replace = if o.regex {
        o.replace
    } else {
        o.replace.replace('$', "$$")
    };
    Ok(Arc::new(FindReplace { re, replace }))
}

/// `template`: a value built from other columns of the row, after their generators ran.
struct Template {
    pieces: Vec<Piece>,
    reads: Vec<RowRead>,
    max_chars: Option<u32>,
}

enum Piece {
    Text(String),
    /// Index into `reads`.
    Column(usize),
}

impl RowGenerator for Template {
    fn generate_in_row(
        &self,
        input: Option<&str>,
        row: &dyn Row,
        out: &mut String,
    ) -> Result<bool, GenerateError> {
        // NULL stays NULL, as with every generator.
        if input.is_none() {
            return Ok(false);
        }
        let mut s = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => s.push_str(t),
                Piece::Column(i) => {
                    let r = self.reads[*i];
                    let v = if r.generated {
                        row.generated(r.column)
                    } else {
                        row.original(r.column)
                    };
                    s.push_str(v.unwrap_or(""));
                }
            }
        }
        crate::truncate_chars(&mut s, self.max_chars);
        out.push_str(&s);
        Ok(true)
    }

    fn reads(&self) -> &[RowRead] {
        &self.reads
    }
}

pub(crate) fn template(opts: &toml::Table, ctx: &ColumnContext, _: &Prf) -> Built {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Opts {
        template: String,
    }
    let o: Opts = options("template", opts)?;
    let mut pieces = Vec::new();
    let mut reads: Vec<RowRead> = Vec::new();
    let mut rest = o.template.as_str();
    while let Some(open) = rest.find('{') {
        pieces.push(Piece::Text(rest[..open].to_string()));
        let close = rest[open..].find('}').ok_or_else(|| {
            BuildError::BadOption("generator `template`: a `{` is not closed".into())
        })? + open;
        let name = &rest[open + 1..close];
        // `{column}` is the column's generated value; `{source:column}` its source value.
        let (generated, col) = match name.strip_prefix("source:") {
            Some(c) => (false, c),
            None => (true, name),
        };
        let column = ctx.column_index("template", col)?;
        if generated
            && ctx
                .columns
                .get(column)
                .is_some_and(|(n, _)| n == ctx.column)
        {
            return Err(BuildError::BadOption(
                "generator `template`: a template cannot use its own column".into(),
            ));
        }
        reads.push(RowRead { column, generated });
        pieces.push(Piece::Column(reads.len() - 1));
        rest = &rest[close + 1..];
    }
    pieces.push(Piece::Text(rest.to_string()));
    Ok(Arc::new(Template {
        pieces,
        reads,
        max_chars: ctx.value_type.max_chars(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mirage_core::ValueType;

    fn run(name: &str, ty: &ValueType, v: &str) -> String {
        with_type(name, toml::Table::new(), ty, v)
    }

    fn with_type(name: &str, opts: toml::Table, ty: &ValueType, v: &str) -> String {
        let ctx = ColumnContext {
            table: "t",
            column: "c",
            value_type: ty,
            not_null: false,
            columns: &[],
            stats: None,
        };
        let g = crate::build(name, &opts, &ctx, &Prf::from_seed("k")).unwrap();
        let mut s = String::new();
        g.generate(Some(v), &mut s).unwrap();
        s
    }

    #[test]
    fn scramble_keeps_shape() {
        let ty = ValueType::Text { max_chars: None };
        let out = run("character_scramble", &ty, "Ab-12 cd, Zürich!");
        assert_eq!(out.chars().count(), "Ab-12 cd, Zürich!".chars().count());
        let shape = |s: &str| {
            s.chars()
                .map(|c| match c {
                    'a'..='z' => 'a',
                    'A'..='Z' => 'A',
                    '0'..='9' => '9',
                    c if c.is_alphabetic() => 'a',
                    c => c,
                })
                .collect::<String>()
        };
        assert_eq!(shape(&out), shape("Ab-12 cd, Zürich!"));
        assert_ne!(out, "Ab-12 cd, Zürich!");
    }

    #[test]
    fn hash_keeps_length_and_alphabet_and_fits_the_column() {
        let unbounded = ValueType::Text { max_chars: None };
        // A 40-character hex digest stays 40 hex characters, upper case kept.
        let digest = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B";
        let h = run("hash", &unbounded, digest);
        assert_eq!(h.len(), 40);
        assert!(
            h.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_lowercase()),
            "{h}"
        );
        assert_ne!(h, digest);
        // Other text: letters and digits, same length, longer than one hash too.
        let long = "p@ss word ".repeat(12);
        let h = run("hash", &unbounded, &long);
        assert_eq!(h.chars().count(), long.len());
        assert!(h.bytes().all(|b| b.is_ascii_alphanumeric()), "{h}");
        let ten = ValueType::Text {
            max_chars: Some(10),
        };
        assert_eq!(run("hash", &ten, "secret").len(), 6);
        assert_eq!(run("hash", &ten, &long).len(), 10);
        // An explicit encoding: the column's length in that alphabet.
        let mut opts = toml::Table::new();
        opts.insert("encoding".into(), "hex".into());
        let h = with_type("hash", opts, &ten, "secret");
        assert_eq!(h.len(), 10);
        assert!(h.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    fn with(name: &str, opts: toml::Table, v: &str) -> String {
        let ty = ValueType::Text { max_chars: None };
        let ctx = ColumnContext {
            table: "t",
            column: "c",
            value_type: &ty,
            not_null: false,
            columns: &[],
            stats: None,
        };
        let g = crate::build(name, &opts, &ctx, &Prf::from_seed("k")).unwrap();
        let mut s = String::new();
        g.generate(Some(v), &mut s).unwrap();
        s
    }

    fn table(pairs: &[(&str, toml::Value)]) -> toml::Table {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn substitution_is_the_same_everywhere() {
        let a = with("character_substitution", toml::Table::new(), "abc-ABC-123");
        let b = with("character_substitution", toml::Table::new(), "cab");
        assert_eq!(&a[..3].chars().rev().collect::<String>()[..1], &b[..1]);
        assert_eq!(a.len(), 11);
        assert_eq!(&a[3..4], "-");
    }

    #[test]
    fn regex_mask_rewrites_groups_only() {
        let mut g = toml::Table::new();
        g.insert("generator".into(), "numeric_string_key".into());
        let o = table(&[
            ("pattern", r"^(\d{3})-(\d{4})$".into()),
            (
                "groups",
                toml::Value::Array(vec!["passthrough".into(), toml::Value::Table(g)]),
            ),
        ]);
        let out = with("regex_mask", o.clone(), "555-0142");
        assert!(
            out.starts_with("555-") && out.len() == 8 && &out[4..] != "0142",
            "{out}"
        );
        assert_eq!(with("regex_mask", o, "no match"), "no match");
    }

    #[test]
    fn find_replace_and_hash_encodings() {
        let o = table(&[("find", "secret".into()), ("replace", "[$x]".into())]);
        assert_eq!(
            with("find_replace", o, "a secret, another secret"),
            "a [$x], another [$x]"
        );
        let o = table(&[
            ("find", r"\d+".into()),
            ("replace", "#".into()),
            ("regex", true.into()),
        ]);
        assert_eq!(with("find_replace", o, "call 555 1234"), "call # #");
        let b = with(
            "hash",
            table(&[("encoding", "base64".into()), ("length", 12.into())]),
            "x",
        );
        assert_eq!(b.len(), 12);
        assert!(
            b.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
        );
    }

    #[test]
    fn template_reads_generated_and_source_values() {
        let ty = ValueType::Text { max_chars: None };
        let columns: Vec<(String, ValueType)> = ["first", "last", "display"]
            .iter()
            .map(|c| (c.to_string(), ty.clone()))
            .collect();
        let ctx = ColumnContext {
            table: "t",
            column: "display",
            value_type: &ty,
            not_null: false,
            columns: &columns,
            stats: None,
        };
        let o = table(&[("template", "{first} {last} (was {source:last})".into())]);
        let g = crate::build("template", &o, &ctx, &Prf::from_seed("k")).unwrap();
        struct R;
        impl Row for R {
            fn original(&self, i: usize) -> Option<&str> {
                [Some("Ada"), Some("Lovelace"), None][i]
            }
            fn generated(&self, i: usize) -> Option<&str> {
                [Some("Kim"), Some("Lee"), None][i]
            }
        }
        let mut s = String::new();
        g.generate_in_row(Some("x"), &R, &mut s).unwrap();
        assert_eq!(s, "Kim Lee (was Lovelace)");
        let mut n = String::new();
        assert!(
            !g.generate_in_row(None, &R, &mut n).unwrap(),
            "NULL stays NULL"
        );
        assert_eq!(g.reads().len(), 3);
        let bad = table(&[("template", "{frist}".into())]);
        assert!(crate::build("template", &bad, &ctx, &Prf::from_seed("k")).is_err());
    }
}
