//! Text for people: names and messages that come from a database (schema, table and column names,
//! server messages) may hold control characters. Printed raw, an ESC starts a terminal escape
//! sequence and a newline fakes a log line; [`printable`] shows them as visible escapes instead.

use std::borrow::Cow;

/// Whether `c` must not reach a terminal as it is: C0 and C1 control characters (newline, carriage
/// return and tab included), DEL, and the Unicode controls that reorder the text around them
/// (bidirectional embeddings, overrides and isolates).
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every control character shown as a visible escape: `\n`, `\r`, `\t`, and `\u{1b}`
/// for the others. Borrowed when there is nothing to escape.
///
/// ```
/// use mirage_core::display::printable;
/// assert_eq!(printable("public.users"), "public.users");
/// assert_eq!(printable("a\x1b[31mb\nc"), "a\\u{1b}[31mb\\nc");
/// ```
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if unsafe_char(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Text of several lines: each line made [`printable`], the line breaks between them kept.
///
/// ```
/// use mirage_core::display::printable_lines;
/// assert_eq!(printable_lines("GRANT a;\nGRANT b;"), "GRANT a;\nGRANT b;");
/// assert_eq!(printable_lines("x\x1b[2J\ny\r"), "x\\u{1b}[2J\ny\\r");
/// ```
pub fn printable_lines(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c != '\n' && unsafe_char(c)) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.split('\n').map(printable).collect::<Vec<_>>().join("\n"))
}

/// `%XX` escapes of a URL part decoded (a `%` not followed by two hex digits stays as it is;
/// bytes that are not UTF-8 become U+FFFD).
pub fn percent_decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (
            bytes[i],
            v.get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok()),
        ) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An error and its sources in one line, each text once: `dispatch failure: io error: tcp
/// connect error: Connection refused`.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut next = e.source();
    while let Some(x) = next {
        let t = x.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        next = x.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_visible_and_the_rest_is_kept() {
        assert!(matches!(printable("plain ✓ ünïcode"), Cow::Borrowed(_)));
        assert_eq!(printable("a\x1b[31mb"), "a\\u{1b}[31mb");
        assert_eq!(printable("x\ny\rz\tw"), "x\\ny\\rz\\tw");
        assert_eq!(
            printable("nul\0 del\x7f c1\u{9b}"),
            "nul\\u{0} del\\u{7f} c1\\u{9b}"
        );
        assert_eq!(printable("rtl\u{202e}x"), "rtl\\u{202e}x");
        assert_eq!(printable("back\\slash"), "back\\slash");
        assert_eq!(printable_lines("a\n\x1bb\n"), "a\n\\u{1b}b\n");
        assert!(matches!(printable_lines("a\nb"), Cow::Borrowed(_)));
    }
}
