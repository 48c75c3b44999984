//! Record formats: PostgreSQL `COPY` text and CSV (with an explicit NULL string), and the
//! splitter that cuts a byte stream into parts on record boundaries.

/// How records in a part are encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// PostgreSQL `COPY … TO STDOUT` text: tab-separated, `\N` is NULL, backslash escapes,
    /// one record per line (a raw newline byte always ends a record).
    PgText,
    /// CSV: `"` quotes (doubled inside), any field quoted when needed; an *unquoted* field equal to
    /// `null` is NULL, a quoted one never is. PostgreSQL's `COPY … CSV` uses `null = ""`; mirage's
    /// Redshift path uses a sentinel.
    Csv {
        /// The byte between fields (`,` for PostgreSQL's CSV).
        delimiter: u8,
        /// The unquoted field that means NULL (empty for PostgreSQL's CSV).
        null: Vec<u8>,
    },
}

impl Format {
    /// PostgreSQL-style CSV: comma-separated, unquoted empty field is NULL.
    pub fn csv() -> Format {
        Format::Csv {
            delimiter: b',',
            null: Vec::new(),
        }
    }
}

/// Append the text-format escape of `value` (PostgreSQL COPY text).
pub fn pg_escape(value: &[u8], out: &mut Vec<u8>) {
    let mut start = 0;
    for (i, &b) in value.iter().enumerate() {
        let esc = match b {
            b'\\' => b'\\',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x08 => b'b',
            0x0c => b'f',
            0x0b => b'v',
            _ => continue,
        };
        out.extend_from_slice(&value[start..i]);
        out.push(b'\\');
        out.push(esc);
        start = i + 1;
    }
    out.extend_from_slice(&value[start..]);
}

/// Decode one PostgreSQL COPY text field (not `\N`) into raw bytes.
pub fn pg_unescape(field: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < field.len() {
        let b = field[i];
        if b != b'\\' || i + 1 == field.len() {
            out.push(b);
            i += 1;
            continue;
        }
        let c = field[i + 1];
        i += 2;
        match c {
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0b),
            b'0'..=b'7' => {
                let mut v = (c - b'0') as u32;
                let mut n = 1;
                while n < 3 && i < field.len() && (b'0'..=b'7').contains(&field[i]) {
                    v = v * 8 + (field[i] - b'0') as u32;
                    i += 1;
                    n += 1;
                }
                out.push(v as u8);
            }
            b'x' if i < field.len() && field[i].is_ascii_hexdigit() => {
                let mut v = 0u32;
                let mut n = 0;
                while n < 2 && i < field.len() && field[i].is_ascii_hexdigit() {
                    v = v * 16 + (field[i] as char).to_digit(16).unwrap_or(0);
                    i += 1;
                    n += 1;
                }
                out.push(v as u8);
            }
            other => out.push(other),
        }
    }
}

/// Append `value` as a CSV field, quoting it when it must be quoted (delimiter, quote, CR, LF,
/// leading/trailing space, empty, or equal to the NULL string).
pub fn csv_escape(value: &[u8], delimiter: u8, null: &[u8], out: &mut Vec<u8>) {
    let needs_quotes = value.is_empty()
        || value == null
        || value
            .iter()
            .any(|&b| b == delimiter || b == b'"' || b == b'\n' || b == b'\r')
        || value.first().is_some_and(|b| *b == b' ')
        || value.last().is_some_and(|b| *b == b' ');
    if !needs_quotes {
        out.extend_from_slice(value);
        return;
    }
    out.push(b'"');
    // Runs between quotes are copied whole; each quote is doubled.
    let mut rest = value;
    while let Some(q) = memchr::memchr(b'"', rest) {
        out.extend_from_slice(&rest[..=q]);
        out.push(b'"');
        rest = &rest[q + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

/// Number of records in a buffer of whole records (quote-aware for CSV; a last record without
/// a trailing newline counts).
pub fn count_records(format: &Format, buf: &[u8]) -> u64 {
    if buf.is_empty() {
        return 0;
    }
    let newlines = match format {
        Format::PgText => memchr::memchr_iter(b'\n', buf).count() as u64,
        Format::Csv { .. } => {
            let mut in_quotes = false;
            let mut n = 0;
            for i in memchr::memchr2_iter(b'"', b'\n', buf) {
                if buf[i] == b'"' {
                    in_quotes = !in_quotes;
                } else if !in_quotes {
                    n += 1;
                }
            }
            n
        }
    };
    newlines + u64::from(buf.last() != Some(&b'\n'))
}

/// One CSV field found by [`CsvReader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvField {
    /// Byte range of the raw field (quotes included).
    pub start: usize,
    /// End of the raw field (exclusive; a closing quote included).
    pub end: usize,
    /// The field is enclosed in quotes: never NULL, and decoding removes the quotes.
    pub quoted: bool,
    /// This field ends its record.
    pub last: bool,
}

/// Error for malformed CSV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvMalformed(pub &'static str);

/// Scans CSV fields in a buffer of whole records.
pub struct CsvReader<'a> {
    buf: &'a [u8],
    pos: usize,
    delimiter: u8,
}

impl<'a> CsvReader<'a> {
    /// A reader at the start of `buf`, with fields separated by `delimiter`.
    pub fn new(buf: &'a [u8], delimiter: u8) -> Self {
        CsvReader {
            buf,
            pos: 0,
            delimiter,
        }
    }

    /// Byte offset of the next field.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// True when every record of the buffer has been read.
    pub fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// The next field; the record ends after a field whose `last` is set.
    pub fn next_field(&mut self) -> Result<CsvField, CsvMalformed> {
        let buf = self.buf;
        let start = self.pos;
        let mut i = start;
        let quoted = i < buf.len() && buf[i] == b'"';
        if quoted {
            i += 1;
            loop {
                match memchr::memchr(b'"', &buf[i..]) {
                    None => return Err(CsvMalformed("a quoted field is not closed")),
                    Some(q) => {
                        i += q + 1;
                        if i < buf.len() && buf[i] == b'"' {
                            i += 1; // doubled quote
                        } else {
                            break;
                        }
                    }
                }
            }
        } else {
            i += memchr::memchr3(self.delimiter, b'\n', b'\r', &buf[i..]).unwrap_or(buf.len() - i);
        }
        let end = i;
        let last = match buf.get(i) {
            None => true,
            Some(&b) if b == self.delimiter => {
                self.pos = i + 1;
                return Ok(CsvField {
                    start,
                    end,
                    quoted,
                    last: false,
                });
            }
            Some(b'\n') => {
                i += 1;
                true
            }
            Some(b'\r') => {
                i += 1;
                if buf.get(i) == Some(&b'\n') {
                    i += 1;
                }
                true
            }
            Some(_) => return Err(CsvMalformed("text follows a closing quote")),
        };
        self.pos = i;
        Ok(CsvField {
            start,
            end,
            quoted,
            last,
        })
    }

    /// Decode a field's value (quotes removed, doubled quotes undone).
    pub fn decode(&self, f: CsvField, out: &mut Vec<u8>) {
        let raw = &self.buf[f.start..f.end];
        if !f.quoted {
            out.extend_from_slice(raw);
            return;
        }
        // Runs between quotes are copied whole; a doubled quote gives one.
        let mut rest = &raw[1..raw.len() - 1];
        while let Some(q) = memchr::memchr(b'"', rest) {
            out.extend_from_slice(&rest[..=q]);
            rest = rest.get(q + 2..).unwrap_or_default();
        }
        out.extend_from_slice(rest);
    }
}

/// Cuts a stream of bytes into buffers that end on record boundaries.
#[derive(Debug, Clone)]
pub struct RecordSplitter {
    format: Format,
    /// CSV only: inside a quoted field at the end of what was scanned so far.
    in_quotes: bool,
    /// How far into the pending buffer the scan has gone.
    scanned: usize,
    /// End of the last complete record in the pending buffer.
    boundary: usize,
}

impl RecordSplitter {
    /// A splitter for a stream of records in `format`, with nothing scanned yet.
    pub fn new(format: Format) -> Self {
        RecordSplitter {
            format,
            in_quotes: false,
            scanned: 0,
            boundary: 0,
        }
    }

    /// Scan `pending` (which only grows between calls until [`RecordSplitter::take`]) and return
    /// the end of the last complete record in it.
    pub fn complete_len(&mut self, pending: &[u8]) -> usize {
        match self.format {
            Format::PgText => {
                if let Some(i) = memchr::memrchr(b'\n', &pending[self.scanned..]) {
                    self.boundary = self.scanned + i + 1;
                }
            }
            Format::Csv { .. } => {
                let new = &pending[self.scanned..];
                for i in memchr::memchr2_iter(b'"', b'\n', new) {
                    if new[i] == b'"' {
                        self.in_quotes = !self.in_quotes;
                    } else if !self.in_quotes {
                        self.boundary = self.scanned + i + 1;
                    }
                }
            }
        }
        self.scanned = pending.len();
        self.boundary
    }

    /// Forget the first `n` bytes (they were taken as a part).
    pub fn take(&mut self, n: usize) {
        self.scanned -= n;
        self.boundary -= n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pg_escape_roundtrip() {
        let raw = b"a\tb\nc\\d\re\x08\x0c\x0b";
        let mut enc = Vec::new();
        pg_escape(raw, &mut enc);
        assert!(!enc.contains(&b'\n') && !enc.contains(&b'\t'));
        let mut dec = Vec::new();
        pg_unescape(&enc, &mut dec);
        assert_eq!(dec, raw);
        let mut dec = Vec::new();
        pg_unescape(b"\\101\\x41\\q", &mut dec);
        assert_eq!(dec, b"AAq");
    }

    #[test]
    fn csv_fields_and_nulls() {
        let data = b"1,\"a,\"\"b\"\"\",,\"\"\r\n2,x\n";
        let mut r = CsvReader::new(data, b',');
        let mut values = Vec::new();
        while !r.at_end() {
            let f = r.next_field().unwrap();
            let mut v = Vec::new();
            r.decode(f, &mut v);
            values.push((String::from_utf8(v).unwrap(), f.quoted, f.last));
        }
        assert_eq!(values[1].0, "a,\"b\"");
        assert_eq!(values[2], (String::new(), false, false)); // NULL
        assert_eq!(values[3], (String::new(), true, true)); // ''
        assert_eq!(values[5], ("x".into(), false, true));
        let mut out = Vec::new();
        csv_escape(b"", b',', b"", &mut out);
        csv_escape(b"N", b',', b"N", &mut out);
        csv_escape(b"a\"b", b',', b"", &mut out);
        assert_eq!(out, b"\"\"\"N\"\"a\"\"b\"");
        assert!(CsvReader::new(b"\"abc", b',').next_field().is_err());
    }

    #[test]
    fn quotes_double_and_undouble() {
        for v in [
            &b"plain"[..],
            b"",
            b"\"",
            b"\"\"",
            b"a\"b",
            b"\"lead",
            b"trail\"",
            b"x, \"y\", z",
            b"line\nbreak",
        ] {
            let mut enc = Vec::new();
            csv_escape(v, b',', b"NULL", &mut enc);
            let mut r = CsvReader::new(&enc, b',');
            let f = r.next_field().expect("one field");
            assert!(f.last, "{:?}", String::from_utf8_lossy(&enc));
            let mut dec = Vec::new();
            r.decode(f, &mut dec);
            assert_eq!(dec, v, "{:?}", String::from_utf8_lossy(&enc));
        }
        let mut enc = Vec::new();
        csv_escape(b"a\"b", b',', b"NULL", &mut enc);
        assert_eq!(enc, b"\"a\"\"b\"");
    }

    #[test]
    fn counts_records() {
        assert_eq!(count_records(&Format::csv(), b"1,\"a\nb\"\n2,c"), 2);
        assert_eq!(count_records(&Format::PgText, b"a\nb\n"), 2);
        assert_eq!(count_records(&Format::PgText, b""), 0);
    }

    #[test]
    fn splitter_respects_quotes() {
        let mut s = RecordSplitter::new(Format::csv());
        let data = b"1,\"two\nlines\"\n2,x";
        assert_eq!(s.complete_len(&data[..8]), 0);
        assert_eq!(s.complete_len(data), 14);
        s.take(14);
        let rest = &data[14..];
        assert_eq!(s.complete_len(rest), 0);
        let mut p = RecordSplitter::new(Format::PgText);
        assert_eq!(p.complete_len(b"a\tb\nc"), 4);
    }
}
