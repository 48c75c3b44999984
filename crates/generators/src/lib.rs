//! Generators replace one value with another. They are pure functions: no database, no I/O, no
//! unkeyed randomness. A consistent generator's output depends only on (seed, generator, value
//! type, value), so the same input gives the same output across columns, tables and runs.
//!
//! ```
//! use mirage_core::ValueType;
//! use mirage_generators::{build, ColumnContext, Prf};
//!
//! let prf = Prf::from_seed("my secret seed");
//! let ty = ValueType::Integer;
//! let ctx = ColumnContext { table: "public.users", column: "id", value_type: &ty, not_null: true, columns: &[], stats: None };
//! let key = build("integer_key", &toml::Table::new(), &ctx, &prf).unwrap();
//! let mut out = String::new();
//! key.generate(Some("42"), &mut out).unwrap();
//! assert_ne!(out, "42");
//! ```

#![warn(missing_docs)]

mod datetime;
pub mod fpe;
mod identity;
mod keys;
mod location;
mod network;
mod numbers;
pub mod prf;
#[doc(hidden)]
pub mod samples;
mod simple;
mod statistical;
mod structured;
mod text;
mod xml;

pub use identity::{iban_valid, luhn_valid};
pub use prf::Prf;

use mirage_core::schema::{TypeFamily, ValueType};
use mirage_core::suggest::did_you_mean;
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// Why a generator could not produce a value. Never carries the value itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenerateError {
    /// The input could not be read as what the generator works on (a number, a date, XML …).
    #[error("a value is not {expected}")]
    Unparsable {
        /// What the input should have been, as the message names it ("a number", "XML").
        expected: &'static str,
    },
    /// The input is a number outside the domain the generator permutes.
    #[error("a value is outside the generator's range {min}..={max}")]
    OutOfRange {
        /// Smallest value the generator accepts.
        min: i64,
        /// Largest value the generator accepts.
        max: i64,
    },
    /// The generator produced NULL for a column declared NOT NULL.
    #[error("a NULL cannot be written: the column is NOT NULL")]
    NullIntoNotNull,
    /// The output has more characters than the destination column's declared length.
    #[error(
        "a generated value is longer than the column's {max_chars} characters; choose a generator \
         whose output fits (or one that truncates, like the name generators) or widen the column"
    )]
    TooLong {
        /// The column's length, in characters.
        max_chars: u32,
    },
    /// The output takes more bytes than a destination column that counts bytes can hold.
    #[error(
        "a generated value is longer than the column's {max_bytes} bytes (the destination counts \
         bytes, and non-ASCII characters take 2-4); choose a generator whose output fits or widen \
         the column"
    )]
    TooManyBytes {
        /// The column's length, in bytes.
        max_bytes: u32,
    },
    /// The output has a multi-byte character and the destination column is a CHAR that holds
    /// single-byte characters only.
    #[error(
        "a generated value has a multi-byte character, which the destination's CHAR columns \
         cannot hold; choose an ASCII generator or make the column VARCHAR"
    )]
    NotSingleByte,
}

/// Why a generator could not be built from its configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// No generator has that name.
    #[error("unknown generator `{name}`{suggestion}; `mirage generators` lists them all")]
    Unknown {
        /// The name as configured.
        name: String,
        /// ` (did you mean `x`?)` for the closest known name, or empty.
        suggestion: String,
    },
    /// The generator does not accept the column's type.
    #[error("generator `{generator}` does not work on type {type_name}; it accepts {accepts}")]
    WrongType {
        /// The generator's name.
        generator: &'static str,
        /// The column's type, in lower case.
        type_name: String,
        /// The type families the generator accepts, listed for the message.
        accepts: String,
    },
    /// An option is missing, unknown or invalid, or conflicts with the column (the whole message).
    #[error("{0}")]
    BadOption(String),
}

/// The column a generator is built for.
#[derive(Debug, Clone, Copy)]
pub struct ColumnContext<'a> {
    /// `schema.table`
    pub table: &'a str,
    /// The column's name.
    pub column: &'a str,
    /// The column's type: what the generator reads and must write.
    pub value_type: &'a ValueType,
    /// The column is NOT NULL, so generators that would write NULL are refused.
    pub not_null: bool,
    /// Every column of the record, in order (name, type): lets a generator read other columns
    /// of the same row (linking, templates, conditions). Empty when built for a lone value.
    pub columns: &'a [(String, ValueType)],
    /// Facts about the column's source values, for generators that need them (categorical,
    /// continuous); gathered by the plan.
    pub stats: Option<&'a mirage_core::ColumnStats>,
}

impl ColumnContext<'_> {
    /// Index of another column of the row, or an error naming the table and suggesting a name.
    pub fn column_index(&self, generator: &str, name: &str) -> Result<usize, BuildError> {
        self.columns
            .iter()
            .position(|(n, _)| n == name)
            .ok_or_else(|| {
                BuildError::BadOption(format!(
                    "generator `{generator}`: table {} has no column {name}{}",
                    self.table,
                    did_you_mean(name, self.columns.iter().map(|(n, _)| n.as_str()))
                ))
            })
    }
}

/// Other values of the row being transformed.
pub trait Row {
    /// The source value of column `index` (`None` for NULL or when not available).
    fn original(&self, index: usize) -> Option<&str>;
    /// The generated value of column `index`, for columns a generator reads as generated.
    fn generated(&self, index: usize) -> Option<&str>;
    /// A fingerprint of the whole source record: a stable per-row source of randomness for
    /// generators that draw per row rather than per value (the same row always draws the same).
    fn fingerprint(&self) -> u64 {
        0
    }
}

/// A row that offers nothing: what lone values see.
pub struct NoRow;

impl Row for NoRow {
    fn original(&self, _: usize) -> Option<&str> {
        None
    }
    fn generated(&self, _: usize) -> Option<&str> {
        None
    }
}

/// A column of the row that a generator reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowRead {
    /// Index of the column in [`ColumnContext::columns`].
    pub column: usize,
    /// Read the column's generated value (it must be computed first) rather than its source value.
    pub generated: bool,
}

/// One column's value replacer.
pub trait Generator: Send + Sync {
    /// Replace `input` (`None` is NULL; otherwise the value's text form) by writing the new value
    /// into `out`. Returns `Ok(false)` to write NULL.
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError>;

    /// Like [`Generator::generate`], with the rest of the row at hand. Generators that read other
    /// columns override this and list them in [`Generator::reads`].
    fn generate_in_row(
        &self,
        input: Option<&str>,
        _row: &dyn Row,
        out: &mut String,
    ) -> Result<bool, GenerateError> {
        self.generate(input, out)
    }

    /// Other columns of the row this generator reads.
    fn reads(&self) -> &[RowRead] {
        &[]
    }

    /// True when the generator draws per row from [`Row::fingerprint`].
    fn uses_fingerprint(&self) -> bool {
        false
    }

    /// True when the generator leaves every value unchanged (lets the transform skip the column).
    fn is_passthrough(&self) -> bool {
        false
    }
}

/// A generator that reads the rest of the row. Implementing this gives the [`Generator`]
/// (a lone value sees an empty row).
pub trait RowGenerator: Send + Sync {
    /// Replace `input` with the row at hand; see [`Generator::generate`].
    fn generate_in_row(
        &self,
        input: Option<&str>,
        row: &dyn Row,
        out: &mut String,
    ) -> Result<bool, GenerateError>;

    /// Other columns of the row this generator reads.
    fn reads(&self) -> &[RowRead] {
        &[]
    }

    /// True when the generator draws per row from [`Row::fingerprint`].
    fn uses_fingerprint(&self) -> bool {
        false
    }
}

impl<T: RowGenerator> Generator for T {
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
        self.generate_in_row(input, &NoRow, out)
    }

    fn generate_in_row(
        &self,
        input: Option<&str>,
        row: &dyn Row,
        out: &mut String,
    ) -> Result<bool, GenerateError> {
        RowGenerator::generate_in_row(self, input, row, out)
    }

    fn reads(&self) -> &[RowRead] {
        RowGenerator::reads(self)
    }

    fn uses_fingerprint(&self) -> bool {
        RowGenerator::uses_fingerprint(self)
    }
}

/// What the catalogue says about a generator.
#[derive(Debug, Clone, Copy)]
pub struct GeneratorInfo {
    /// The name a configuration uses to pick the generator.
    pub name: &'static str,
    /// One line on what it writes, as `mirage generators` shows it.
    pub summary: &'static str,
    /// Same input ⇒ same output, across tables and runs.
    pub consistent: bool,
    /// Distinct inputs ⇒ distinct outputs (safe on primary keys and unique columns).
    pub unique: bool,
    /// Output keeps the input's length, character classes and punctuation.
    pub format_preserving: bool,
    /// Type families accepted; empty means every type.
    pub accepts: &'static [TypeFamily],
    /// Options, as `name: meaning` lines.
    pub options: &'static [&'static str],
    /// Facts about the column the plan must gather first.
    pub stats: Option<mirage_core::StatsKind>,
}

/// What a generator's build function returns.
pub(crate) type Built = Result<Arc<dyn Generator>, BuildError>;

/// Builds a generator from its options, for a column, with the root PRF of the seed.
type Builder = fn(&toml::Table, &ColumnContext, &Prf) -> Built;

struct Entry {
    info: GeneratorInfo,
    build: Builder,
}

/// Flags of an entry: consistent, one-to-one, format-preserving.
const C: u8 = 1;
const U: u8 = 2;
const F: u8 = 4;

const fn entry(
    name: &'static str,
    flags: u8,
    accepts: &'static [TypeFamily],
    summary: &'static str,
    options: &'static [&'static str],
    build: Builder,
) -> Entry {
    Entry {
        info: GeneratorInfo {
            name,
            summary,
            consistent: flags & C != 0,
            unique: flags & U != 0,
            format_preserving: flags & F != 0,
            accepts,
            options,
            stats: None,
        },
        build,
    }
}

/// An entry whose generator needs facts about the column gathered by the plan.
const fn with_stats(mut e: Entry, kind: mirage_core::StatsKind) -> Entry {
    e.info.stats = Some(kind);
    e
}

fn registry() -> &'static [Entry] {
    use TypeFamily::*;
    static ENTRIES: &[Entry] = &[
        // Simple.
        entry(
            "passthrough",
            C | U | F,
            &[],
            "copies the value unchanged, byte for byte",
            &[],
            simple::passthrough,
        ),
        entry(
            "null",
            C,
            &[],
            "writes NULL (not allowed on NOT NULL columns)",
            &[],
            simple::null,
        ),
        entry(
            "constant",
            C,
            &[],
            "writes the same value in every non-NULL row",
            &[
                "value: the text written (required)",
                "keep_null: keep NULLs as NULL (default true)",
            ],
            simple::constant,
        ),
        // Keys.
        entry(
            "integer_key",
            C | U,
            &[Integer],
            "one-to-one integer mapping (format-preserving encryption) that keeps the column's range; safe on keys",
            &[
                "min, max: map values inside [min, max] onto [min, max] (default: each of the ranges [0, 2^15), [2^15, 2^31), [2^31, 2^63) and their negatives onto itself, so an integer key and its bigint foreign key map alike)",
            ],
            keys::integer_key,
        ),
        entry(
            "numeric_string_key",
            C | U | F,
            &[Text],
            "digits → digits one-to-one, same length, leading zeros and punctuation kept",
            &[],
            |o, _, p| keys::string_key("numeric_string_key", keys::Alphabet::Digits, o, p),
        ),
        entry(
            "alphanumeric_key",
            C | U | F,
            &[Text],
            "letters → letters of the same case, digits → digits, one-to-one; other characters kept",
            &[],
            |o, _, p| keys::string_key("alphanumeric_key", keys::Alphabet::Alphanumeric, o, p),
        ),
        entry(
            "ascii_key",
            C | U | F,
            &[Text],
            "printable ASCII → printable ASCII one-to-one, same length; other characters kept",
            &[],
            |o, _, p| keys::string_key("ascii_key", keys::Alphabet::Ascii, o, p),
        ),
        entry(
            "uuid_key",
            C | U | F,
            &[Uuid, Text],
            "a UUID's 128 bits permuted one-to-one",
            &[],
            keys::uuid_key,
        ),
        entry(
            "mac_address",
            C | U | F,
            &[Network, Text],
            "a MAC address permuted one-to-one; separators and letter case kept",
            &[],
            keys::mac_address,
        ),
        // Identity.
        entry(
            "first_name",
            C,
            &[Text],
            "a realistic first name",
            &[],
            |o, c, p| identity::name("first_name", identity::NamePart::First, o, c, p),
        ),
        entry(
            "last_name",
            C,
            &[Text],
            "a realistic last name",
            &[],
            |o, c, p| identity::name("last_name", identity::NamePart::Last, o, c, p),
        ),
        entry(
            "full_name",
            C,
            &[Text],
            "a realistic \"First Last\" name",
            &[],
            |o, c, p| identity::name("full_name", identity::NamePart::Full, o, c, p),
        ),
        entry(
            "email",
            C,
            &[Text],
            "a realistic email address",
            &[
                "keep_domain: keep the part after @ (default false)",
                "domain: use this domain for every address",
                "from: [first, last] name columns of the row; the address is built from the same fake names those columns get with first_name/last_name",
                "unique: end the local part with a 64-bit keyed tag instead of a short number, for unique email columns (default false)",
            ],
            identity::email,
        ),
        entry(
            "phone",
            C | F,
            &[Text],
            "digits replaced, the input's format and punctuation kept",
            &["keep_area_code: keep the 3-digit area code (default false)"],
            identity::phone,
        ),
        entry(
            "ssn",
            C,
            &[Text],
            "a valid US SSN (area never 000, 666 or 9xx; group never 00; serial never 0000), dashes as in the input",
            &[],
            identity::ssn,
        ),
        entry(
            "sin",
            C,
            &[Text],
            "a valid Canadian SIN (Luhn check digit), separators as in the input",
            &[],
            identity::sin,
        ),
        entry(
            "credit_card",
            C | F,
            &[Text],
            "a Luhn-valid card number of the same length and formatting, keeping the issuer prefix",
            &[
                "keep_prefix: leading digits kept (default 1: the card network; 6 keeps the issuer's BIN)",
            ],
            identity::credit_card,
        ),
        entry(
            "iban",
            C | F,
            &[Text],
            "an IBAN of the same country and shape with valid check digits",
            &[],
            identity::iban,
        ),
        entry(
            "date_of_birth",
            C,
            &[Temporal, Text],
            "a date shifted within a range, optionally staying in its age band",
            &[
                "max_days: largest shift in days either way (default 365)",
                "keep_age_band: years per band; the date stays in its band (e.g. 10: the 1980s stay the 1980s)",
            ],
            identity::date_of_birth,
        ),
        // Location.
        entry(
            "address",
            C,
            &[Text],
            "a part of a realistic US address; linked columns share one address",
            &[
                "part: street, building_number, city, state, state_abbr, zip, country, country_code, latitude, longitude or full_address (required)",
                "link: columns of the row (e.g. [\"city\", \"state\", \"zip\"]) whose source values together choose the address, so linked parts agree",
            ],
            |o, c, p| location::address("address", false, o, c, p),
        ),
        entry(
            "hipaa_address",
            C,
            &[Text],
            "address parts per HIPAA Safe Harbor: zip keeps its first 3 digits (000 for low-population prefixes), state and country kept, the rest fake",
            &["part: as for address (required)", "link: as for address"],
            |o, c, p| location::address("hipaa_address", true, o, c, p),
        ),
        // Network and web.
        entry(
            "ip_address",
            C,
            &[Network, Text],
            "an IP address of the same version (a /mask suffix is kept)",
            &[
                "keep_prefix_v4: leading bits kept of IPv4 addresses (default 0)",
                "keep_prefix_v6: leading bits kept of IPv6 addresses (default 0)",
            ],
            network::ip_address,
        ),
        entry(
            "url",
            C,
            &[Text],
            "a URL with fake domain and path (query and fragment dropped)",
            &["keep_domain: keep scheme and host (default false)"],
            network::url,
        ),
        entry(
            "company_name",
            C,
            &[Text],
            "a realistic company name",
            &[],
            network::company_name,
        ),
        // Text.
        entry(
            "character_scramble",
            C | F,
            &[Text],
            "letters → letters, digits → digits; case, punctuation, spaces and length kept",
            &[],
            text::character_scramble,
        ),
        entry(
            "character_substitution",
            C | F,
            &[Text],
            "one fixed substitution alphabet per seed: each letter/digit always becomes the same other one",
            &[],
            text::character_substitution,
        ),
        entry(
            "regex_mask",
            C,
            &[Text],
            "sub-generators rewrite the capture groups of a regex; text outside the groups is kept",
            &[
                "pattern: the regex (required)",
                "groups: one entry per capture group: \"passthrough\" or { generator = \"…\", … } (required)",
            ],
            text::regex_mask,
        ),
        entry(
            "find_replace",
            C,
            &[Text],
            "replaces every occurrence of a text (or regex) with a fixed text",
            &[
                "find: the text (required)",
                "replace: its replacement (required)",
                "regex: `find` is a regex and `replace` may use $1 (default false)",
            ],
            text::find_replace,
        ),
        entry(
            "template",
            C,
            &[Text],
            "a value built from other columns of the row: {col} is col's generated value, {source:col} its source value",
            &["template: e.g. \"{first_name} {last_name}\" (required)"],
            text::template,
        ),
        entry(
            "hash",
            C,
            &[Text],
            "keyed BLAKE3 hash of the value; by default as long as the value, hex digits for hex input (a digest stays a digest), letters and digits otherwise",
            &[
                "length: characters kept (with it or `encoding`: the column's length by default, at most 64 hex / 43 base64)",
                "encoding: hex or base64 (default: the value's own alphabet and length)",
            ],
            text::hash,
        ),
        // Structured.
        entry(
            "json_mask",
            C,
            &[Json, Text],
            "sub-generators rewrite the values at JSONPath expressions; every other byte of the document is kept",
            &[
                "paths: { \"$.a.b\" = { generator = \"…\" }, \"$.list[*].email\" = …, \"$..ssn\" = … } (required)",
            ],
            structured::json_mask,
        ),
        entry(
            "xml_mask",
            C,
            &[Text, Other],
            "sub-generators rewrite element text and attributes at XPath expressions; every other byte is kept",
            &[
                "paths: { \"/a/b\" = { generator = \"…\" }, \"//phone\" = …, \"/a/@id\" = … } (steps: names, *, //, a final @attribute or text())",
            ],
            xml::xml_mask,
        ),
        entry(
            "array",
            C,
            &[Array],
            "applies a generator to every element of a PostgreSQL array (nested arrays too); NULL elements stay NULL",
            &["element: { generator = \"…\", … } (required)"],
            structured::array,
        ),
        // Numbers and time.
        entry(
            "noise",
            C,
            &[Integer, Decimal, Float],
            "adds bounded noise, keeping the column's precision and scale",
            &[
                "scale: additive: largest change; multiplicative: largest relative change, e.g. 0.1 = ±10% (required)",
                "kind: additive (default) or multiplicative",
            ],
            numbers::noise,
        ),
        entry(
            "random_integer",
            C,
            &[Integer],
            "an integer in [min, max], derived from the value",
            &["min, max: the range (default: 0 to the column type's maximum)"],
            |o, c, p| numbers::random("random_integer", o, c, p),
        ),
        entry(
            "random_double",
            C,
            &[Float, Decimal],
            "a number in [min, max), derived from the value",
            &["min, max: the range (default 0 to 1)"],
            |o, c, p| numbers::random("random_double", o, c, p),
        ),
        entry(
            "random_boolean",
            C,
            &[Boolean],
            "true or false, derived from the value",
            &[],
            |o, c, p| numbers::no_range("random_boolean", o, c, p),
        ),
        entry(
            "random_uuid",
            C,
            &[Uuid, Text],
            "a version-4 UUID, derived from the value",
            &[],
            |o, c, p| numbers::no_range("random_uuid", o, c, p),
        ),
        entry(
            "random_timestamp",
            C,
            &[Temporal, Text],
            "a date or timestamp in [min, max], derived from the value",
            &["min, max: dates or timestamps (default 2000-01-01 to 2030-12-31)"],
            |o, c, p| numbers::random("random_timestamp", o, c, p),
        ),
        entry(
            "sequential_integer",
            U,
            &[Integer],
            "start, start + step, … in the order rows are transformed (unique; not the same across runs)",
            &[
                "start: first value (default 1)",
                "step: increment (default 1)",
            ],
            numbers::sequential_integer,
        ),
        entry(
            "timestamp_shift",
            C,
            &[Temporal, Text],
            "moves a date/timestamp by a consistent random offset; with key_column every row of one key moves alike",
            &[
                "min_days, max_days: the offset range (default ±30 days)",
                "key_column: column of the row whose source value picks the offset (default: the value itself)",
            ],
            |o, c, p| numbers::shift("timestamp_shift", o, c, p),
        ),
        entry(
            "date_truncate",
            C,
            &[Temporal, Text],
            "truncates a date/timestamp to the year, month, day or hour",
            &["unit: year, month, day or hour (required)"],
            numbers::date_truncate,
        ),
        entry(
            "event_timestamps",
            C,
            &[Temporal, Text],
            "put on each date column of an event group: all shift by the same offset, so their order and gaps are kept",
            &[
                "anchor: the column tying a row's events together, e.g. patient_id (required)",
                "min_days, max_days: the offset range (default ±30 days)",
            ],
            |o, c, p| numbers::shift("event_timestamps", o, c, p),
        ),
        // Statistical.
        with_stats(
            entry(
                "categorical",
                0,
                &[],
                "each row draws a value of the same column, so every category keeps its frequency (drawn per row: not consistent per value)",
                &[
                    "epsilon: differential privacy: Laplace noise of scale 1/epsilon on the category counts",
                ],
                statistical::categorical,
            ),
            mirage_core::StatsKind::Categories,
        ),
        with_stats(
            entry(
                "continuous",
                0,
                &[Integer, Decimal, Float, Temporal],
                "each row draws a value from the column's own distribution (1000 quantiles, interpolated)",
                &[],
                statistical::continuous,
            ),
            mirage_core::StatsKind::Quantiles,
        ),
        // Composite.
        entry(
            "conditional",
            C,
            &[],
            "applies `then` when a condition on this or another column holds, `else` (default passthrough) otherwise",
            &[
                "when: { column = \"…\" (default this one), and one of equals = \"…\", in = [\"…\"], matches = \"regex\", is_null = true } (required)",
                "then: { generator = \"…\", … } (required)",
                "else: { generator = \"…\", … }",
            ],
            structured::conditional,
        ),
    ];
    ENTRIES
}

/// Every generator, in catalogue order.
pub fn catalogue() -> impl Iterator<Item = &'static GeneratorInfo> {
    registry().iter().map(|e| &e.info)
}

/// The generator reference as a Markdown table (the README embeds exactly this text).
pub fn reference_markdown() -> String {
    let yes = |b: bool| if b { "✓" } else { "" };
    let mut s = String::from(
        "| generator | what it writes | options | types | consistent | one-to-one | keeps format |\n\
         | --- | --- | --- | --- | :---: | :---: | :---: |\n",
    );
    for g in catalogue() {
        let accepts = if g.accepts.is_empty() {
            "any".to_string()
        } else {
            g.accepts
                .iter()
                .map(|f| f.describe())
                .collect::<Vec<_>>()
                .join("; ")
        };
        let options = if g.options.is_empty() {
            String::new()
        } else {
            g.options
                .iter()
                .map(|o| match o.split_once(':') {
                    Some((k, v)) => format!("`{k}`:{v}"),
                    None => o.to_string(),
                })
                .collect::<Vec<_>>()
                .join("<br>")
        };
        s += &format!(
            "| `{}` | {} | {} | {} | {} | {} | {} |\n",
            g.name,
            g.summary,
            options.replace('|', "\\|"),
            accepts,
            yes(g.consistent),
            yes(g.unique),
            yes(g.format_preserving)
        );
    }
    s
}

/// Look up a generator by name.
pub fn info(name: &str) -> Option<&'static GeneratorInfo> {
    catalogue().find(|i| i.name == name)
}

/// Build the generator `name` with `options` for a column. Checks the name, the column's type and
/// the options; the error says what is wrong and suggests the closest valid name.
pub fn build(
    name: &str,
    options: &toml::Table,
    ctx: &ColumnContext,
    prf: &Prf,
) -> Result<Arc<dyn Generator>, BuildError> {
    let entry = registry()
        .iter()
        .find(|e| e.info.name == name)
        .ok_or_else(|| BuildError::Unknown {
            name: name.to_string(),
            suggestion: did_you_mean(name, catalogue().map(|i| i.name)),
        })?;
    let family = ctx.value_type.family();
    if !entry.info.accepts.is_empty() && !entry.info.accepts.contains(&family) {
        return Err(BuildError::WrongType {
            generator: entry.info.name,
            type_name: format!("{:?}", ctx.value_type).to_lowercase(),
            accepts: entry
                .info
                .accepts
                .iter()
                .map(|f| f.describe())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    // `fallback` is common to every generator: what to write for a value it cannot read.
    let mut options = options.clone();
    let fallback = match options.remove("fallback") {
        None => None,
        Some(toml::Value::String(s)) if s == "null" => Some(None),
        Some(toml::Value::Table(t))
            if t.get("value").is_some_and(toml::Value::is_str) && t.len() == 1 =>
        {
            Some(
                t.get("value")
                    .and_then(toml::Value::as_str)
                    .map(str::to_string),
            )
        }
        Some(_) => {
            return Err(BuildError::BadOption(format!(
                "generator `{name}`: `fallback` is \"null\" or {{ value = \"text\" }}"
            )));
        }
    };
    if fallback == Some(None) && ctx.not_null {
        return Err(BuildError::BadOption(format!(
            "generator `{name}`: fallback \"null\" on a NOT NULL column"
        )));
    }
    // `keep_empty` too: '' stays '' (as NULL stays NULL) unless it is false.
    let keep_empty = match options.remove("keep_empty") {
        None => true,
        Some(toml::Value::Boolean(b)) => b,
        Some(_) => {
            return Err(BuildError::BadOption(format!(
                "generator `{name}`: `keep_empty` is true or false"
            )));
        }
    };
    let mut generator = (entry.build)(&options, ctx, prf)?;
    // Only text holds '' (an empty field of another type is NULL or not a value at all).
    let text = matches!(
        ctx.value_type,
        ValueType::Text { .. } | ValueType::Char { .. }
    );
    if keep_empty && text && !matches!(name, "passthrough" | "null" | "constant") {
        generator = Arc::new(KeepEmpty {
            inner: generator,
            // char(n) holds '' as n blanks.
            blanks: matches!(ctx.value_type, ValueType::Char { .. }),
        });
    }
    if let Some(fallback) = fallback {
        generator = Arc::new(Fallback {
            inner: generator,
            fallback,
        });
    }
    match ctx.value_type.max_chars() {
        Some(max_chars) if !generator.is_passthrough() => Ok(Arc::new(Fitted {
            inner: generator,
            max_chars,
            unit: Unit::Chars,
        })),
        _ => Ok(generator),
    }
}

/// For a destination that counts declared lengths in bytes and keeps `char` single-byte
/// (Redshift): wrap a built generator so its values are checked that way too.
pub fn fit_bytes(generator: Arc<dyn Generator>, value_type: &ValueType) -> Arc<dyn Generator> {
    if generator.is_passthrough() {
        return generator;
    }
    match value_type {
        ValueType::Text { max_chars: Some(n) } => Arc::new(Fitted {
            inner: generator,
            max_chars: *n,
            unit: Unit::Bytes,
        }),
        ValueType::Char { len } => Arc::new(Fitted {
            inner: generator,
            max_chars: len.unwrap_or(1),
            unit: Unit::SingleBytes,
        }),
        _ => generator,
    }
}

/// Writes '' for '' (an empty value usually means "none" to the application, like NULL), and
/// lets the generator replace every other value.
struct KeepEmpty {
    inner: Arc<dyn Generator>,
    /// Blanks count as empty (`char(n)`).
    blanks: bool,
}

impl KeepEmpty {
    fn is_empty(&self, input: Option<&str>) -> bool {
        match input {
            Some(v) if self.blanks => v.trim_end_matches(' ').is_empty(),
            Some(v) => v.is_empty(),
            None => false,
        }
    }
}

impl Generator for KeepEmpty {
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
        if self.is_empty(input) {
            return Ok(true);
        }
        self.inner.generate(input, out)
    }

    fn generate_in_row(
        &self,
        input: Option<&str>,
        row: &dyn Row,
        out: &mut String,
    ) -> Result<bool, GenerateError> {
        if self.is_empty(input) {
            return Ok(true);
        }
        self.inner.generate_in_row(input, row, out)
    }

    fn reads(&self) -> &[RowRead] {
        self.inner.reads()
    }

    fn uses_fingerprint(&self) -> bool {
        self.inner.uses_fingerprint()
    }

    fn is_passthrough(&self) -> bool {
        self.inner.is_passthrough()
    }
}

/// Writes a configured value (or NULL) for inputs the generator cannot read, instead of failing.
struct Fallback {
    inner: Arc<dyn Generator>,
    fallback: Option<String>,
}

impl Fallback {
    fn recover(
        &self,
        result: Result<bool, GenerateError>,
        out: &mut String,
        start: usize,
    ) -> Result<bool, GenerateError> {
        match result {
            Err(GenerateError::Unparsable { .. }) => {
                out.truncate(start);
                match &self.fallback {
                    Some(v) => {
                        out.push_str(v);
                        Ok(true)
                    }
                    None => Ok(false),
                }
            }
            other => other,
        }
    }
}

impl Generator for Fallback {
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
        let start = out.len();
        let r = self.inner.generate(input, out);
        self.recover(r, out, start)
    }

    fn generate_in_row(
        &self,
        input: Option<&str>,
        row: &dyn Row,
        out: &mut String,
    ) -> Result<bool, GenerateError> {
        let start = out.len();
        let r = self.inner.generate_in_row(input, row, out);
        self.recover(r, out, start)
    }

    fn reads(&self) -> &[RowRead] {
        self.inner.reads()
    }

    fn uses_fingerprint(&self) -> bool {
        self.inner.uses_fingerprint()
    }
}

/// Checks that output fits a column's declared length, so an overlong value fails with the
/// table and column named instead of a database error after the data was sent.
struct Fitted {
    inner: Arc<dyn Generator>,
    max_chars: u32,
    unit: Unit,
}

/// What a declared length counts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    Chars,
    Bytes,
    /// Bytes, and every character a single byte.
    SingleBytes,
}

impl Fitted {
    fn check(&self, out: &str, start: usize, written: bool) -> Result<bool, GenerateError> {
        if !written {
            return Ok(false);
        }
        let value = &out[start..];
        match self.unit {
            // A value has at most as many characters as bytes: count only longer ones.
            Unit::Chars
                if value.len() > self.max_chars as usize
                    && value.chars().count() > self.max_chars as usize =>
            {
                Err(GenerateError::TooLong {
                    max_chars: self.max_chars,
                })
            }
            Unit::SingleBytes if !value.is_ascii() => Err(GenerateError::NotSingleByte),
            Unit::Bytes | Unit::SingleBytes if value.len() > self.max_chars as usize => {
                Err(GenerateError::TooManyBytes {
                    max_bytes: self.max_chars,
                })
            }
            _ => Ok(true),
        }
    }
}

impl Generator for Fitted {
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
        let start = out.len();
        let written = self.inner.generate(input, out)?;
        self.check(out, start, written)
    }

    fn generate_in_row(
        &self,
        input: Option<&str>,
        row: &dyn Row,
        out: &mut String,
    ) -> Result<bool, GenerateError> {
        let start = out.len();
        let written = self.inner.generate_in_row(input, row, out)?;
        self.check(out, start, written)
    }

    fn reads(&self) -> &[RowRead] {
        self.inner.reads()
    }

    fn uses_fingerprint(&self) -> bool {
        self.inner.uses_fingerprint()
    }
}

#[cfg(test)]
mod fit_tests {
    use super::*;

    struct Fixed(&'static str);
    impl Generator for Fixed {
        fn generate(&self, _: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
            out.push_str(self.0);
            Ok(true)
        }
    }

    #[test]
    fn byte_lengths_count_bytes_and_char_stays_single_byte() {
        let text = ValueType::Text { max_chars: Some(5) };
        let mut out = String::new();
        // Five characters fit five characters, not five bytes.
        assert!(
            fit_bytes(Arc::new(Fixed("ééééé")), &text)
                .generate(Some("x"), &mut out)
                .is_err_and(|e| e == GenerateError::TooManyBytes { max_bytes: 5 })
        );
        assert!(
            fit_bytes(Arc::new(Fixed("ééa")), &text)
                .generate(Some("x"), &mut out)
                .is_ok()
        );
        let char2 = ValueType::Char { len: Some(2) };
        assert!(
            fit_bytes(Arc::new(Fixed("é")), &char2)
                .generate(Some("x"), &mut out)
                .is_err_and(|e| e == GenerateError::NotSingleByte)
        );
        assert!(
            fit_bytes(Arc::new(Fixed("ab")), &char2)
                .generate(Some("x"), &mut out)
                .is_ok()
        );
    }
}

/// Deserialize a generator's options, turning serde's message into one that names the generator
/// and suggests the closest option.
pub(crate) fn options<T: DeserializeOwned>(
    generator: &str,
    options: &toml::Table,
) -> Result<T, BuildError> {
    toml::Value::Table(options.clone())
        .try_into()
        .map_err(|e: toml::de::Error| {
            let msg = e.message().trim().to_string();
            let hint = mirage_core::suggest::hint_for_serde_error(&msg);
            BuildError::BadOption(format!("generator `{generator}`: {msg}{hint}"))
        })
}

/// Check that a generator without options was given none.
pub(crate) fn no_options(generator: &str, opts: &toml::Table) -> Result<(), BuildError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NoOptions {}
    options::<NoOptions>(generator, opts).map(|_| ())
}

/// Cut `s` to at most `max` characters (on a character boundary).
pub(crate) fn truncate_chars(s: &mut String, max: Option<u32>) {
    // At most as many characters as bytes: only longer strings need walking.
    if let Some((idx, _)) = max
        .filter(|m| s.len() > *m as usize)
        .and_then(|m| s.char_indices().nth(m as usize))
    {
        s.truncate(idx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(ty: &ValueType) -> ColumnContext<'_> {
        ColumnContext {
            table: "public.t",
            column: "c",
            value_type: ty,
            not_null: false,
            columns: &[],
            stats: None,
        }
    }

    #[test]
    fn unknown_generator_suggests() {
        let ty = ValueType::Text { max_chars: None };
        let e = build(
            "emial",
            &toml::Table::new(),
            &ctx(&ty),
            &Prf::from_seed("s"),
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("did you mean `email`"), "{e}");
    }

    #[test]
    fn wrong_type_is_refused() {
        let ty = ValueType::Text { max_chars: None };
        let e = build(
            "integer_key",
            &toml::Table::new(),
            &ctx(&ty),
            &Prf::from_seed("s"),
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("integer types"), "{e}");
        let e = build(
            "email",
            &toml::Table::new(),
            &ctx(&ValueType::Enum),
            &Prf::from_seed("s"),
        )
        .err()
        .unwrap();
        assert!(matches!(e, BuildError::WrongType { .. }));
    }

    #[test]
    fn unknown_option_suggests() {
        let ty = ValueType::Text { max_chars: None };
        let mut opts = toml::Table::new();
        opts.insert("keep_domian".into(), toml::Value::Boolean(true));
        let e = build("email", &opts, &ctx(&ty), &Prf::from_seed("s"))
            .err()
            .unwrap();
        assert!(e.to_string().contains("did you mean `keep_domain`"), "{e}");
    }

    #[test]
    fn every_generator_is_consistent_keeps_null_and_depends_on_the_seed() {
        for info in catalogue() {
            let (ty, opts, _) = crate::samples::sample(info.name, 0);
            let opts: toml::Table = toml::from_str(opts).unwrap();
            let stats = crate::samples::sample_stats(info.name);
            let context = ColumnContext {
                stats: stats.as_ref(),
                ..ctx(&ty)
            };
            let build_with = |seed: &str| build(info.name, &opts, &context, &Prf::from_seed(seed));
            let (Ok(a), Ok(b), Ok(c)) = (build_with("s"), build_with("s"), build_with("other"))
            else {
                // Generators that need other columns of the row are tested in their modules.
                assert!(
                    ["template", "event_timestamps"].contains(&info.name),
                    "{} did not build",
                    info.name
                );
                continue;
            };
            let (mut changed, mut differs) = (0, 0);
            for i in 0..50 {
                let input = crate::samples::sample(info.name, i).2;
                let (mut x, mut y, mut z) = (String::new(), String::new(), String::new());
                let nx = a.generate(Some(&input), &mut x).unwrap();
                let ny = b.generate(Some(&input), &mut y).unwrap();
                c.generate(Some(&input), &mut z).unwrap();
                if info.consistent {
                    assert_eq!((nx, &x), (ny, &y), "{} is not consistent", info.name);
                }
                changed += usize::from(x != input);
                differs += usize::from(x != z);
            }
            let seedless = [
                "passthrough",
                "null",
                "constant",
                "date_truncate",
                "find_replace",
                "conditional",
                "sequential_integer",
                "hipaa_address",
                // Drawn per row from few categories: the same value often comes back.
                "categorical",
            ];
            if !seedless.contains(&info.name) {
                assert!(
                    changed >= 45,
                    "{} changed only {changed} of 50 values",
                    info.name
                );
                // Two possible outputs agree half the time by chance.
                let need = if info.name == "random_boolean" {
                    15
                } else {
                    40
                };
                assert!(
                    differs >= need,
                    "{}: another seed changed only {differs} of 50 outputs",
                    info.name
                );
            }
            let mut n = String::new();
            let null_kept = !a.generate(None, &mut n).unwrap();
            assert!(null_kept, "{} turned NULL into a value", info.name);
            // '' stays '' (text columns: other types have no empty value), but for the
            // generators whose point is one output for every row.
            if matches!(ty, ValueType::Text { .. }) && !["null", "constant"].contains(&info.name) {
                let mut e = String::new();
                let written = a.generate(Some(""), &mut e).unwrap();
                assert!(
                    written && e.is_empty(),
                    "{} turned '' into {e:?}",
                    info.name
                );
            }
        }
    }

    #[test]
    fn keep_empty_false_generates_for_empty_values() {
        let ty = ValueType::Text { max_chars: None };
        let mut opts = toml::Table::new();
        opts.insert("keep_empty".into(), toml::Value::Boolean(false));
        let g = build("first_name", &opts, &ctx(&ty), &Prf::from_seed("s")).unwrap();
        let mut out = String::new();
        assert!(g.generate(Some(""), &mut out).unwrap());
        assert!(!out.is_empty(), "a name for ''");
        // char(n) holds '' as blanks: kept too.
        let blank = build(
            "hash",
            &toml::Table::new(),
            &ctx(&ValueType::Char { len: Some(4) }),
            &Prf::from_seed("s"),
        )
        .unwrap();
        let mut out = String::new();
        assert!(blank.generate(Some("    "), &mut out).unwrap());
        assert_eq!(out, "");
        opts.insert("keep_empty".into(), toml::Value::String("yes".into()));
        let e = build("first_name", &opts, &ctx(&ty), &Prf::from_seed("s"))
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("`keep_empty` is true or false"),
            "{e}"
        );
    }

    #[test]
    fn output_that_does_not_fit_the_column_is_an_error() {
        let ty = ValueType::Char { len: Some(9) };
        let ssn = build("ssn", &toml::Table::new(), &ctx(&ty), &Prf::from_seed("s")).unwrap();
        let mut out = String::new();
        let e = ssn.generate(Some("123-45-6789"), &mut out).unwrap_err();
        assert!(matches!(e, GenerateError::TooLong { max_chars: 9 }));
        assert!(e.to_string().contains("9 characters"));
    }

    #[test]
    fn keys_stay_unique_on_a_million_random_inputs() {
        let g = build(
            "integer_key",
            &toml::Table::new(),
            &ctx(&ValueType::BigInt),
            &Prf::from_seed("m"),
        )
        .unwrap();
        let mut rng = prf::ValueRng::new(42);
        let mut inputs = std::collections::HashSet::new();
        let mut outputs = std::collections::HashSet::new();
        let mut s = String::new();
        while inputs.len() < 1_000_000 {
            let x = rng.next_u64() as i64;
            if inputs.insert(x) {
                s.clear();
                g.generate(Some(&x.to_string()), &mut s).unwrap();
                outputs.insert(s.clone());
            }
        }
        assert_eq!(outputs.len(), 1_000_000);
    }

    #[test]
    fn fallback_replaces_unreadable_values() {
        let ty = ValueType::Text { max_chars: None };
        let opts: toml::Table =
            toml::from_str("fallback = { value = \"00000000-0000-4000-8000-000000000000\" }")
                .unwrap();
        let g = build("uuid_key", &opts, &ctx(&ty), &Prf::from_seed("f")).unwrap();
        let mut out = String::new();
        g.generate(Some("not a uuid"), &mut out).unwrap();
        assert_eq!(out, "00000000-0000-4000-8000-000000000000");
        let opts: toml::Table = toml::from_str("fallback = \"null\"").unwrap();
        let g = build("uuid_key", &opts, &ctx(&ty), &Prf::from_seed("f")).unwrap();
        let mut out = String::new();
        assert!(!g.generate(Some("garbage"), &mut out).unwrap() && out.is_empty());
        let bad: toml::Table = toml::from_str("fallback = 3").unwrap();
        assert!(build("uuid_key", &bad, &ctx(&ty), &Prf::from_seed("f")).is_err());
    }
}
