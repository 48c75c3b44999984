//! `xml_mask`: sub-generators rewrite the text of elements and the values of attributes selected
//! by XPath expressions (`/a/b`, `//b`, `/a/*/c`, `/a/b/@id`, `/a/b/text()`); every other byte of
//! the document — declarations, comments, CDATA, whitespace, attribute quoting — is kept.
//! quick-xml tokenizes; positions in the input let unchanged parts be copied verbatim.

use crate::text::sub_generator;
use crate::{BuildError, Built, ColumnContext, GenerateError, Generator, Prf, options};
use mirage_core::ValueType;
use quick_xml::events::Event;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Name(String),
    Any,
    Descend,
}

/// A parsed XPath: element steps, and the attribute it selects (if any).
#[derive(Debug, Clone)]
struct Path {
    steps: Vec<Step>,
    attribute: Option<String>,
}

fn parse_xpath(p: &str) -> Result<Path, String> {
    let p = p.trim();
    if !p.starts_with('/') {
        return Err("an XPath starts with / or //".into());
    }
    let mut steps = Vec::new();
    let mut attribute = None;
    let mut rest = p;
    while !rest.is_empty() {
        let descend = rest.starts_with("//");
        rest = rest.trim_start_matches('/');
        if descend {
            steps.push(Step::Descend);
        }
        let end = rest.find('/').unwrap_or(rest.len());
        let step = &rest[..end];
        rest = &rest[end..];
        match step {
            "" => return Err("empty step".into()),
            "*" => steps.push(Step::Any),
            "text()" if rest.is_empty() => {}
            s if s.starts_with('@') => {
                if !rest.is_empty() {
                    return Err("an attribute must be the last step".into());
                }
                attribute = Some(s[1..].to_string());
            }
            s if s.contains(['[', '(', '=', ' ']) => {
                return Err(format!("`{s}`: predicates and functions are not supported"));
            }
            s => steps.push(Step::Name(s.to_string())),
        }
    }
    Ok(Path { steps, attribute })
}

fn matches(pattern: &[Step], path: &[String]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((Step::Descend, rest)) => (0..=path.len()).any(|i| matches(rest, &path[i..])),
        Some((step, rest)) => match path.split_first() {
            None => false,
            Some((name, tail)) => {
                (matches!(step, Step::Any) || *step == Step::Name(name.clone()))
                    && matches(rest, tail)
            }
        },
    }
}

struct XmlMask {
    paths: Vec<(Path, Arc<dyn Generator>)>,
}

const BAD_XML: GenerateError = GenerateError::Unparsable { expected: "XML" };

impl XmlMask {
    fn text_generator(&self, path: &[String]) -> Option<&Arc<dyn Generator>> {
        self.paths
            .iter()
            .find(|(p, _)| p.attribute.is_none() && matches(&p.steps, path))
            .map(|(_, g)| g)
    }

    /// Rewrite selected attribute values inside one start tag's text (`<a x="1" y='2'>`).
    fn tag(&self, raw: &str, path: &[String], out: &mut String) -> Result<(), GenerateError> {
        let wanted: Vec<(&str, &Arc<dyn Generator>)> = self
            .paths
            .iter()
            .filter_map(|(p, g)| match &p.attribute {
                Some(a) if matches(&p.steps, path) => Some((a.as_str(), g)),
                _ => None,
            })
            .collect();
        if wanted.is_empty() {
            out.push_str(raw);
            return Ok(());
        }
        let b = raw.as_bytes();
        // Skip `<name`.
        let mut i = 1 + raw[1..]
            .find(|c: char| c.is_whitespace() || c == '/' || c == '>')
            .unwrap_or(raw.len() - 1);
        out.push_str(&raw[..i]);
        while i < b.len() {
            let ws = raw[i..]
                .find(|c: char| !c.is_whitespace())
                .map_or(raw.len(), |k| i + k);
            out.push_str(&raw[i..ws]);
            i = ws;
            if i >= b.len() || b[i] == b'/' || b[i] == b'>' {
                break;
            }
            let name_end = raw[i..]
                .find(|c: char| c == '=' || c.is_whitespace())
                .map_or(raw.len(), |k| i + k);
            let name = &raw[i..name_end];
            let eq = raw[name_end..]
                .find('=')
                .map(|k| name_end + k)
                .ok_or(BAD_XML)?;
            let q = raw[eq + 1..]
                .find(['"', '\''])
                .map(|k| eq + 1 + k)
                .ok_or(BAD_XML)?;
            let quote = b[q] as char;
            let close = raw[q + 1..].find(quote).map(|k| q + 1 + k).ok_or(BAD_XML)?;
            out.push_str(&raw[i..=q]);
            let value = &raw[q + 1..close];
            match wanted.iter().find(|(a, _)| *a == name) {
                Some((_, g)) => {
                    let plain = quick_xml::escape::unescape(value).map_err(|_| BAD_XML)?;
                    let mut v = String::new();
                    if g.generate(Some(&plain), &mut v)? {
                        out.push_str(&quick_xml::escape::escape(v.as_str()));
                    }
                }
                None => out.push_str(value),
            }
            out.push(quote);
            i = close + 1;
        }
        out.push_str(&raw[i.min(raw.len())..]);
        Ok(())
    }

    fn walk(&self, v: &str, out: &mut String) -> Result<(), GenerateError> {
        let mut reader = quick_xml::Reader::from_str(v);
        let mut path: Vec<String> = Vec::new();
        // Consecutive text and entity events form one text node: [start, end) in the input.
        let mut text: Option<(usize, usize)> = None;
        loop {
            let start = reader.buffer_position() as usize;
            let event = reader.read_event().map_err(|_| BAD_XML)?;
            let end = reader.buffer_position() as usize;
            if matches!(event, Event::Text(_) | Event::GeneralRef(_)) {
                text = Some((text.map_or(start, |t| t.0), end));
                continue;
            }
            if let Some((s, e)) = text.take() {
                let raw = &v[s..e];
                match self
                    .text_generator(&path)
                    .filter(|_| !raw.trim().is_empty())
                {
                    Some(g) => {
                        let plain = quick_xml::escape::unescape(raw).map_err(|_| BAD_XML)?;
                        let mut out_text = String::new();
                        if g.generate(Some(&plain), &mut out_text)? {
                            out.push_str(&quick_xml::escape::escape(out_text.as_str()));
                        }
                    }
                    None => out.push_str(raw),
                }
            }
            let raw = &v[start..end];
            match event {
                Event::Start(e) => {
                    path.push(AsRef::<str>::as_ref(&e.local_name()).to_string());
                    self.tag(raw, &path, out)?;
                }
                Event::Empty(e) => {
                    path.push(AsRef::<str>::as_ref(&e.local_name()).to_string());
                    self.tag(raw, &path, out)?;
                    path.pop();
                }
                Event::End(_) => {
                    path.pop().ok_or(BAD_XML)?;
                    out.push_str(raw);
                }
                Event::Eof => break,
                _ => out.push_str(raw),
            }
        }
        if path.is_empty() {
            Ok(())
        } else {
            Err(BAD_XML)
        }
    }
}

impl Generator for XmlMask {
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
        let Some(v) = input else { return Ok(false) };
        let start = out.len();
        if let Err(e) = self.walk(v, out) {
            out.truncate(start);
            return Err(e);
        }
        Ok(true)
    }
}

pub(crate) fn xml_mask(opts: &toml::Table, ctx: &ColumnContext, prf: &Prf) -> Built {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Opts {
        paths: toml::Table,
    }
    let o: Opts = options("xml_mask", opts)?;
    if o.paths.is_empty() {
        return Err(BuildError::BadOption(
            "generator `xml_mask`: `paths` is empty".into(),
        ));
    }
    let text = ValueType::Text { max_chars: None };
    let mut paths = Vec::new();
    for (p, g) in &o.paths {
        let path = parse_xpath(p)
            .map_err(|e| BuildError::BadOption(format!("generator `xml_mask`: path `{p}`: {e}")))?;
        paths.push((path, sub_generator("xml_mask", g, ctx, &text, prf)?));
    }
    Ok(Arc::new(XmlMask { paths }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_selected_text_and_attributes_only() {
        let o: toml::Table = toml::from_str(
            r#"paths = { "/patient/name" = { generator = "full_name" }, "//phone/text()" = { generator = "phone" }, "/patient/@mrn" = { generator = "numeric_string_key" } }"#,
        )
        .unwrap();
        let ty = ValueType::Text { max_chars: None };
        let ctx = ColumnContext {
            table: "t",
            column: "doc",
            value_type: &ty,
            not_null: false,
            columns: &[],
            stats: None,
        };
        let g = crate::build("xml_mask", &o, &ctx, &Prf::from_seed("x")).unwrap();
        let doc = "<?xml version=\"1.0\"?>\n<!-- chart -->\n<patient mrn='000123' ward=\"B\">\n  <name>Ada &amp; Co</name>\n  <contact><phone>(415) 555-0100</phone><![CDATA[keep <me>]]></contact>\n  <note/>\n</patient>";
        let mut out = String::new();
        g.generate(Some(doc), &mut out).unwrap();
        assert!(
            out.starts_with("<?xml version=\"1.0\"?>\n<!-- chart -->\n<patient mrn='"),
            "{out}"
        );
        assert!(
            !out.contains("000123") && out.contains("ward=\"B\""),
            "{out}"
        );
        assert!(!out.contains("Ada") && !out.contains("555-0100"), "{out}");
        assert!(
            out.contains("<phone>(")
                && out.contains(") ")
                && out.contains("<![CDATA[keep <me>]]>")
                && out.contains("<note/>"),
            "{out}"
        );
        let mrn = out
            .split("mrn='")
            .nth(1)
            .unwrap()
            .split('\'')
            .next()
            .unwrap();
        assert!(
            mrn.len() == 6 && mrn.bytes().all(|b| b.is_ascii_digit()),
            "{mrn}"
        );
        let mut e = String::new();
        assert!(g.generate(Some("<a><b></a>"), &mut e).is_err());
        assert!(parse_xpath("/a[1]").is_err() && parse_xpath("a/b").is_err());
    }
}
