//! Redshift's CSV as the emulator reads and writes it, built on the `csv` crate's parser and writer
//! (`csv_core`) and on purpose *not* on mirage's own codec: were both sides to share one CSV
//! implementation, a quoting bug in it would round-trip cleanly and never show up in a test.
//!
//! The rules, as Redshift documents them for `FORMAT AS CSV`:
//! - `"` encloses a field holding the delimiter, a quote, CR or LF; a quote inside is doubled.
//! - A record ends at LF, CR or CRLF outside quotes.
//! - A field is quoted only when its first byte is the quote, and whether it was is kept: with
//!   `NULL AS 'x'` an unquoted `x` is NULL while `"x"` is the text `x`, and an unquoted empty field
//!   stays apart from `""`.
//! - A blank line is a record of one empty unquoted field (Redshift loads blank lines unless
//!   `IGNOREBLANKLINES` is given; `csv_core` would skip them, so they are found here).
//! - A quoted field must be closed, right before a delimiter or the end of its record.
//! - A UTF-8 byte order mark is data, not skipped (`csv_core` would skip it).

use csv_core::{ReadFieldResult, ReadRecordResult, Reader, ReaderBuilder, Terminator};

/// The quote character of Redshift's CSV.
const QUOTE: u8 = b'"';

/// A UTF-8 byte order mark, which `csv_core` drops at the start of its input.
const BOM: &[u8] = b"\xef\xbb\xbf";

/// Why a file is not valid CSV.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub &'static str);

/// What [`FieldReader::next_field`] found (the value is [`FieldReader::value`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// The field was enclosed in quotes (so it is never the NULL string).
    pub quoted: bool,
    /// The field ends its record.
    pub last: bool,
}

/// Reads the fields of a whole CSV file one by one, with their values decoded by `csv_core` and
/// whether each was quoted.
pub struct FieldReader<'a> {
    data: &'a [u8],
    /// Offset of the next unread byte.
    pos: usize,
    csv: Reader,
    /// The decoded value of the last field is `buf[..len]`; `buf` only grows.
    buf: Vec<u8>,
    len: usize,
    /// The next field starts a record.
    at_record_start: bool,
    /// Nothing has been handed to `csv_core` yet.
    fresh: bool,
}

impl<'a> FieldReader<'a> {
    /// A reader of `data` (whole records) with fields separated by `delimiter`.
    pub fn new(data: &'a [u8], delimiter: u8) -> Self {
        FieldReader {
            data,
            pos: 0,
            csv: ReaderBuilder::new()
                .delimiter(delimiter)
                .quote(QUOTE)
                .double_quote(true)
                .escape(None)
                .comment(None)
                .terminator(Terminator::CRLF)
                .build(),
            buf: vec![0; 1024],
            len: 0,
            at_record_start: true,
            fresh: true,
        }
    }

    /// Offset just past the last field read, its delimiter or record terminator included.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The decoded value of the last field read (quotes removed, doubled quotes undone).
    pub fn value(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The next field, or `None` at the end of the data.
    pub fn next_field(&mut self) -> Result<Option<Field>, Malformed> {
        let data = self.data;
        self.len = 0;
        if self.at_record_start {
            if self.pos >= data.len() {
                return Ok(None);
            }
            if let Some(n) = line_end(&data[self.pos..]) {
                self.pos += n;
                return Ok(Some(Field {
                    quoted: false,
                    last: true,
                }));
            }
        }
        let start = self.pos;
        // (ends its record, the delimiter or terminator byte it ended on was consumed)
        let (last, ended_on_byte) = loop {
            let rest = &data[self.pos..];
            // Handing csv_core a lone first byte keeps it from dropping a byte order mark.
            let input = if self.fresh && rest.starts_with(BOM) {
                &rest[..1]
            } else {
                rest
            };
            self.fresh = false;
            let (result, nin, nout) = self.csv.read_field(input, &mut self.buf[self.len..]);
            self.pos += nin;
            self.len += nout;
            match result {
                ReadFieldResult::InputEmpty => {}
                ReadFieldResult::OutputFull => {
                    let grown = self.buf.len() * 2;
                    self.buf.resize(grown, 0);
                }
                ReadFieldResult::Field { record_end } => break (record_end, !input.is_empty()),
                ReadFieldResult::End => return Ok(None),
            }
        };
        let end = if ended_on_byte {
            self.pos - 1
        } else {
            self.pos
        };
        let quoted = data.get(start) == Some(&QUOTE);
        if quoted {
            check_quoted(&data[start..end])?;
        }
        if last {
            // csv_core reads the LF of a CRLF with the next record; it belongs to this one.
            if ended_on_byte && data[self.pos - 1] == b'\r' && data.get(self.pos) == Some(&b'\n') {
                self.pos += 1;
            }
        }
        self.at_record_start = last;
        Ok(Some(Field { quoted, last }))
    }
}

/// The length of the line ending (CRLF, CR or LF) at the start of `rest`, if one is there.
fn line_end(rest: &[u8]) -> Option<usize> {
    match rest {
        [b'\r', b'\n', ..] => Some(2),
        [b'\r' | b'\n', ..] => Some(1),
        _ => None,
    }
}

/// Checks that a quoted field, as written (`raw`, starting with the quote), is closed by its last
/// byte: `csv_core` accepts `"ab"cd` as `abcd` and an unclosed quote at the end of the data,
/// Redshift refuses both.
fn check_quoted(raw: &[u8]) -> Result<(), Malformed> {
    let mut i = 1;
    loop {
        let Some(q) = raw[i..].iter().position(|b| *b == QUOTE) else {
            return Err(Malformed("a quoted field is not closed"));
        };
        i += q + 1;
        if raw.get(i) == Some(&QUOTE) {
            i += 1; // a doubled quote
        } else if i == raw.len() {
            return Ok(());
        } else {
            return Err(Malformed("text follows a closing quote"));
        }
    }
}

/// Appends `value` to `out` as one quoted CSV field: `"` around it, each quote inside doubled.
pub fn push_quoted(value: &[u8], out: &mut Vec<u8>) {
    out.push(QUOTE);
    let start = out.len();
    // Doubling every byte is the most quoting can take.
    out.resize(start + 2 * value.len(), 0);
    let (_, _, written) = csv_core::quote(value, &mut out[start..], QUOTE, QUOTE, true);
    out.truncate(start + written);
    out.push(QUOTE);
}

/// One CSV record of `fields` ended by LF, each field quoted only when it holds the delimiter, a
/// quote, CR or LF (a record of one empty field is written `""`, not as a blank line).
pub fn record<I, T>(fields: I, delimiter: u8) -> Vec<u8>
where
    I: IntoIterator<Item = T>,
    T: AsRef<[u8]>,
{
    let mut writer = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .quote(QUOTE)
        .double_quote(true)
        .quote_style(csv::QuoteStyle::Necessary)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    // Writing into memory cannot fail.
    let _ = writer.write_record(fields);
    writer.into_inner().unwrap_or_default()
}

/// Cuts a stream of records into buffers of whole records and counts them: CSV as PostgreSQL's
/// `COPY … TO STDOUT (FORMAT csv)` writes it (LF after each record, quotes around any value holding
/// the delimiter, a quote, CR or LF), or PostgreSQL's text format (one record per LF).
pub struct RecordCutter {
    /// `None` for the text format.
    csv: Option<Reader>,
    /// How much of the pending bytes has been scanned.
    scanned: usize,
    /// End of the last whole record in the pending bytes.
    boundary: usize,
    /// Records before `boundary`.
    records: u64,
    /// The scan stands at the start of a record.
    at_record_start: bool,
    /// Where csv_core copies field values, which are not needed.
    scratch: Vec<u8>,
    ends: Vec<usize>,
}

impl RecordCutter {
    /// A cutter of CSV with fields separated by `delimiter`.
    pub fn csv(delimiter: u8) -> Self {
        let reader = ReaderBuilder::new()
            .delimiter(delimiter)
            .quote(QUOTE)
            .double_quote(true)
            .escape(None)
            .comment(None)
            .terminator(Terminator::Any(b'\n'))
            .build();
        RecordCutter {
            csv: Some(reader),
            ..RecordCutter::text()
        }
    }

    /// A cutter of PostgreSQL's text format, where a raw LF always ends a record.
    pub fn text() -> Self {
        RecordCutter {
            csv: None,
            scanned: 0,
            boundary: 0,
            records: 0,
            at_record_start: true,
            scratch: vec![0; 64 << 10],
            ends: vec![0; 1024],
        }
    }

    /// Remove the whole records at the front of `pending` and return them with their count.
    /// `pending` only grows between calls, so what was scanned is not scanned again. With `end`
    /// (nothing more will come), all of `pending` is taken, a last record without its LF included.
    pub fn cut(&mut self, pending: &mut Vec<u8>, end: bool) -> (Vec<u8>, u64) {
        self.scan(pending);
        if end && self.boundary < pending.len() {
            self.boundary = pending.len();
            self.records += 1;
        }
        let taken: Vec<u8> = pending.drain(..self.boundary).collect();
        let records = self.records;
        self.scanned -= self.boundary;
        self.boundary = 0;
        self.records = 0;
        (taken, records)
    }

    /// Scan the bytes of `pending` not scanned yet, moving `boundary` to the last record's end.
    fn scan(&mut self, pending: &[u8]) {
        let Some(reader) = self.csv.as_mut() else {
            for (i, b) in pending[self.scanned..].iter().enumerate() {
                if *b == b'\n' {
                    self.records += 1;
                    self.boundary = self.scanned + i + 1;
                }
            }
            self.scanned = pending.len();
            return;
        };
        while self.scanned < pending.len() {
            // csv_core skips blank lines; here they are records (one empty field each).
            if self.at_record_start && pending[self.scanned] == b'\n' {
                self.scanned += 1;
                self.boundary = self.scanned;
                self.records += 1;
                continue;
            }
            let (result, nin, _, _) =
                reader.read_record(&pending[self.scanned..], &mut self.scratch, &mut self.ends);
            self.scanned += nin;
            self.at_record_start = result == ReadRecordResult::Record;
            if self.at_record_start {
                self.boundary = self.scanned;
                self.records += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field of `data`: (value, quoted, last).
    fn fields(data: &[u8], delimiter: u8) -> Result<Vec<(String, bool, bool)>, Malformed> {
        let mut r = FieldReader::new(data, delimiter);
        let mut out = Vec::new();
        while let Some(f) = r.next_field()? {
            out.push((
                String::from_utf8_lossy(r.value()).into_owned(),
                f.quoted,
                f.last,
            ));
        }
        Ok(out)
    }

    fn f(v: &str, quoted: bool, last: bool) -> (String, bool, bool) {
        (v.to_string(), quoted, last)
    }

    #[test]
    fn embedded_quotes_delimiters_and_line_breaks() {
        let data = b"1,\"a \"\"b\"\" c\",\"x,y\",\"two\nlines\",\"cr\rlf\r\n\"\n";
        assert_eq!(
            fields(data, b',').unwrap(),
            vec![
                f("1", false, false),
                f("a \"b\" c", true, false),
                f("x,y", true, false),
                f("two\nlines", true, false),
                f("cr\rlf\r\n", true, true),
            ]
        );
        // Only a quote that opens a field quotes it; elsewhere it is a plain character.
        assert_eq!(
            fields(b"a\"b,\"\"\"\"\n", b',').unwrap(),
            vec![f("a\"b", false, false), f("\"", true, true)]
        );
        // Another delimiter.
        assert_eq!(
            fields(b"a|\"b|c\"|\n", b'|').unwrap(),
            vec![
                f("a", false, false),
                f("b|c", true, false),
                f("", false, true)
            ]
        );
    }

    #[test]
    fn records_end_at_lf_cr_or_crlf() {
        let data = b"1,a\r\n2,\"b\"\r\n3,c\r4,d\n5,e";
        let got = fields(data, b',').unwrap();
        let lasts: Vec<&str> = got.iter().filter(|f| f.2).map(|f| f.0.as_str()).collect();
        assert_eq!(lasts, ["a", "b", "c", "d", "e"]);
        assert_eq!(got.len(), 10);
        // Positions step over the whole CRLF, so a record's text is data[start..position].
        let mut r = FieldReader::new(data, b',');
        let mut ends = Vec::new();
        while let Some(f) = r.next_field().unwrap() {
            if f.last {
                ends.push(r.position());
            }
        }
        assert_eq!(ends, [5, 12, 16, 20, 23]);
    }

    #[test]
    fn null_string_and_empty_fields_keep_their_quoting() {
        let data = b"__N__,\"__N__\",,\"\"\n";
        assert_eq!(
            fields(data, b',').unwrap(),
            vec![
                f("__N__", false, false),
                f("__N__", true, false),
                f("", false, false),
                f("", true, true),
            ]
        );
        // A trailing delimiter at the end of the data leaves one more (empty) field.
        assert_eq!(
            fields(b"1,", b',').unwrap(),
            vec![f("1", false, false), f("", false, true)]
        );
    }

    #[test]
    fn blank_lines_are_records_and_a_bom_is_data() {
        assert_eq!(
            fields(b"a\n\nb\r\n\r\n\"\"\n", b',').unwrap(),
            vec![
                f("a", false, true),
                f("", false, true),
                f("b", false, true),
                f("", false, true),
                f("", true, true),
            ]
        );
        assert_eq!(
            fields(b"\xef\xbb\xbf\"a\",b\n", b',').unwrap(),
            vec![f("\u{feff}\"a\"", false, false), f("b", false, true)]
        );
    }

    #[test]
    fn multi_byte_utf8_passes_through() {
        let data = "日本,\"語,ü\"\"é\"\nñ,\"🦀\n🦀\"\n".as_bytes();
        assert_eq!(
            fields(data, b',').unwrap(),
            vec![
                f("日本", false, false),
                f("語,ü\"é", true, true),
                f("ñ", false, false),
                f("🦀\n🦀", true, true),
            ]
        );
    }

    #[test]
    fn long_values_grow_the_buffer() {
        let long = "x\"".repeat(5000);
        let mut data = Vec::new();
        push_quoted(long.as_bytes(), &mut data);
        data.extend_from_slice(b",2\n");
        assert_eq!(
            fields(&data, b',').unwrap(),
            vec![f(&long, true, false), f("2", false, true)]
        );
    }

    #[test]
    fn malformed_quoting_is_refused() {
        for (data, why) in [
            (&b"1,\"abc\n"[..], "a quoted field is not closed"),
            (b"\"ab\"\"", "a quoted field is not closed"),
            (b"\"", "a quoted field is not closed"),
            (b"\"ab\"cd,1\n", "text follows a closing quote"),
            (b"\"ab\" ,1\n", "text follows a closing quote"),
            (b"\"ab\"c\"\n", "text follows a closing quote"),
        ] {
            assert_eq!(
                fields(data, b','),
                Err(Malformed(why)),
                "{}",
                String::from_utf8_lossy(data)
            );
        }
    }

    #[test]
    fn quoted_values_read_back_unchanged() {
        for v in [
            &b""[..],
            b"plain",
            b"\"",
            b"\"\"",
            b"a\"b",
            b"x, \"y\", z",
            b"line\nbreak",
            b"cr\rlf\r\n",
            b" padded ",
            b"__N__",
            "ünï\u{a0}cødé".as_bytes(),
        ] {
            let mut out = Vec::new();
            push_quoted(v, &mut out);
            let mut r = FieldReader::new(&out, b',');
            let field = r.next_field().unwrap().unwrap();
            assert!(field.quoted && field.last);
            assert_eq!(r.value(), v, "{}", String::from_utf8_lossy(&out));
            assert_eq!(r.next_field(), Ok(None));
        }
        let mut out = Vec::new();
        push_quoted(b"a\"b", &mut out);
        assert_eq!(out, b"\"a\"\"b\"");
    }

    #[test]
    fn records_are_quoted_only_when_needed() {
        assert_eq!(
            record(
                ["id", "a,b", "say \"hi\"", "two\nlines", "cr\r", " sp ", "é"],
                b','
            ),
            b"id,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\"cr\r\", sp ,\xc3\xa9\n"
        );
        assert_eq!(record(["a|b", "c,d"], b'|'), b"\"a|b\"|c,d\n");
        assert_eq!(record([""], b','), b"\"\"\n");
        assert_eq!(record(["", ""], b','), b",\n");
    }

    #[test]
    fn cutter_finds_record_ends_in_any_chunking() {
        // As PostgreSQL writes CSV: blank lines are records (one NULL field with NULL '').
        let data: &[u8] = b"1,\"two\nlines\"\n\n2,\"q\"\"\n\"\"\"\n3,\"\xc3\xa9,\r\"\n";
        let ends = [14, 15, 26, 35];
        assert_eq!(data.len(), 35);
        for split in 0..=data.len() {
            let mut cutter = RecordCutter::csv(b',');
            let mut pending = data[..split].to_vec();
            let (first, n1) = cutter.cut(&mut pending, false);
            let whole = ends.iter().filter(|e| **e <= split).count();
            assert_eq!(first.len(), if whole > 0 { ends[whole - 1] } else { 0 });
            assert_eq!(n1, whole as u64, "split at {split}");
            pending.extend_from_slice(&data[split..]);
            let (rest, n2) = cutter.cut(&mut pending, false);
            assert_eq!(n1 + n2, 4, "split at {split}");
            assert_eq!([first, rest].concat(), data);
            assert!(pending.is_empty());
        }
        // At the end, a last record without its LF counts too.
        let mut cutter = RecordCutter::csv(b',');
        let mut pending = b"1,a\n2,\"b\nc\"".to_vec();
        assert_eq!(cutter.cut(&mut pending, false), (b"1,a\n".to_vec(), 1));
        assert_eq!(cutter.cut(&mut pending, true), (b"2,\"b\nc\"".to_vec(), 1));
        assert_eq!(cutter.cut(&mut pending, true), (Vec::new(), 0));
    }

    #[test]
    fn text_cutter_counts_lines() {
        let mut cutter = RecordCutter::text();
        let mut pending = b"a\tb\n\\N\tc\\nd\ne".to_vec();
        assert_eq!(
            cutter.cut(&mut pending, false),
            (b"a\tb\n\\N\tc\\nd\n".to_vec(), 2)
        );
        assert_eq!(cutter.cut(&mut pending, true), (b"e".to_vec(), 1));
    }
}
