//! Finding sensitive columns: each column is classified into a [`Kind`] of sensitive data (or
//! none) from two kinds of evidence, its name and a sample of its values, with a confidence
//! and the share of sampled values that matched. [`suggest`] names the generator that fits.
//!
//! No value ever leaves this crate: a [`Finding`] holds kinds, shares and JSON paths only.

mod dict;
pub mod labelled;
pub mod names;
pub mod values;

use mirage_core::ValueType;
use names::Strength;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// What kind of sensitive data a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A given name.
    FirstName,
    /// A family name.
    LastName,
    /// A person's whole name.
    FullName,
    /// An email address.
    Email,
    /// A phone number.
    Phone,
    /// A US Social Security number.
    UsSsn,
    /// A Canadian Social Insurance Number.
    CaSin,
    /// A payment card number.
    CreditCard,
    /// An international bank account number.
    Iban,
    /// A street and number.
    StreetAddress,
    /// A city or town.
    City,
    /// A postal code.
    PostalCode,
    /// A date of birth.
    DateOfBirth,
    /// An IP address.
    IpAddress,
    /// A MAC address.
    MacAddress,
    /// A web address.
    Url,
    /// A login name.
    Username,
    /// A password, its hash, a token or a key.
    Secret,
    /// Text written by people holding any of the above.
    FreeText,
    /// JSON documents holding any of the above.
    Json,
}

impl Kind {
    /// The name used in output (`email`, `us_ssn`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::FirstName => "first_name",
            Kind::LastName => "last_name",
            Kind::FullName => "full_name",
            Kind::Email => "email",
            Kind::Phone => "phone",
            Kind::UsSsn => "us_ssn",
            Kind::CaSin => "ca_sin",
            Kind::CreditCard => "credit_card",
            Kind::Iban => "iban",
            Kind::StreetAddress => "street_address",
            Kind::City => "city",
            Kind::PostalCode => "postal_code",
            Kind::DateOfBirth => "date_of_birth",
            Kind::IpAddress => "ip_address",
            Kind::MacAddress => "mac_address",
            Kind::Url => "url",
            Kind::Username => "username",
            Kind::Secret => "secret",
            Kind::FreeText => "free_text",
            Kind::Json => "json",
        }
    }

    /// Every kind, in output order.
    pub const ALL: [Kind; 20] = [
        Kind::FirstName,
        Kind::LastName,
        Kind::FullName,
        Kind::Email,
        Kind::Phone,
        Kind::UsSsn,
        Kind::CaSin,
        Kind::CreditCard,
        Kind::Iban,
        Kind::StreetAddress,
        Kind::City,
        Kind::PostalCode,
        Kind::DateOfBirth,
        Kind::IpAddress,
        Kind::MacAddress,
        Kind::Url,
        Kind::Username,
        Kind::Secret,
        Kind::FreeText,
        Kind::Json,
    ];
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What produced a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Evidence {
    /// The column's name.
    Name,
    /// The sampled values.
    Values,
    /// The column's type (`inet`, `macaddr`, `json`).
    Type,
}

/// The verdict on one column.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The kind found, `None` when nothing sensitive was.
    pub kind: Option<Kind>,
    /// How sure: 0 to 1 (0 when no kind is reported).
    pub confidence: f64,
    /// What produced it.
    pub evidence: Vec<Evidence>,
    /// The share of sampled non-NULL values that matched the kind, when values were judged.
    pub matched: Option<f64>,
    /// Non-NULL values sampled.
    pub sampled: usize,
    /// For free text: the kinds found inside it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub contains: Vec<Kind>,
    /// For JSON: the paths holding sensitive values, and their kinds.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub paths: BTreeMap<String, Kind>,
    /// For JSON: maps (`$.by_email.*`) whose keys themselves are sensitive, and their kinds.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub keys: BTreeMap<String, Kind>,
}

impl Finding {
    fn none(sampled: usize) -> Finding {
        Finding {
            kind: None,
            confidence: 0.0,
            evidence: Vec::new(),
            matched: None,
            sampled,
            contains: Vec::new(),
            paths: BTreeMap::new(),
            keys: BTreeMap::new(),
        }
    }

    /// Whether the column holds sensitive data.
    pub fn is_sensitive(&self) -> bool {
        self.kind.is_some()
    }

    /// One line for people: `email (97%: name, values; 99% of 1000 sampled values)`.
    pub fn describe(&self) -> String {
        let Some(kind) = self.kind else {
            return if self.sampled == 0 {
                "nothing sensitive found (no values sampled)".into()
            } else {
                format!("nothing sensitive found in {} sampled values", self.sampled)
            };
        };
        let evidence: Vec<&str> = self
            .evidence
            .iter()
            .map(|e| match e {
                Evidence::Name => "name",
                Evidence::Values => "values",
                Evidence::Type => "type",
            })
            .collect();
        let mut s = format!(
            "{kind}, {:.0}% sure from its {}",
            self.confidence * 100.0,
            evidence.join(" and ")
        );
        if let Some(m) = self.matched {
            s.push_str(&format!(
                "; {:.0}% of {} sampled values match",
                m * 100.0,
                self.sampled
            ));
        }
        if !self.contains.is_empty() {
            let k: Vec<&str> = self.contains.iter().map(|k| k.as_str()).collect();
            s.push_str(&format!("; holds {}", k.join(", ")));
        }
        for (what, paths) in [("at", &self.paths), ("keys of", &self.keys)] {
            if !paths.is_empty() {
                let p: Vec<String> = paths.iter().map(|(p, k)| format!("{p} ({k})")).collect();
                s.push_str(&format!("; {what} {}", p.join(", ")));
            }
        }
        s
    }
}

/// The share of `values` that `f` accepts.
fn share(values: &[&str], f: impl Fn(&str) -> bool) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.iter().filter(|v| f(v)).count() as f64 / values.len() as f64
}

/// The share of `values` that could be of `kind` by a lenient test (shapes rather than check
/// digits), used when the name already says the kind.
fn lenient(kind: Kind, values: &[&str]) -> f64 {
    match kind {
        Kind::FirstName => share(values, |v| values::first_name(v) || values::city(v)),
        Kind::LastName => share(values, |v| values::last_name(v) || values::city(v)),
        Kind::FullName => share(values, |v| {
            values::full_name(v) || values::first_name(v) || values::last_name(v)
        }),
        // Shapes rather than check digits: test data often fails Luhn or libphonenumber.
        Kind::Email => share(values, |v| values::email(v) || v.contains('@')),
        Kind::Phone => share(values, values::phone_shaped),
        Kind::UsSsn => share(values, |v| values::digits_in(v, " -", 9..=9)),
        Kind::CaSin => share(values, |v| values::digits_in(v, " -", 9..=9)),
        Kind::CreditCard => share(values, |v| values::digits_in(v, " -", 12..=19)),
        Kind::Iban => share(values, |v| values::iban(v) || values::iban_shaped(v)),
        Kind::StreetAddress => share(values, |v| {
            values::street_address(v) || v.chars().any(|c| c.is_ascii_digit()) && v.contains(' ')
        }),
        Kind::City => share(values, values::city),
        Kind::PostalCode => share(values, |v| {
            values::postal_code(v)
                || (v.trim().len() >= 3
                    && v.trim().len() <= 10
                    && v.chars().any(|c| c.is_ascii_digit())
                    && v.trim()
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-'))
        }),
        Kind::DateOfBirth => share(values, |v| values::date_year(v).is_some()),
        Kind::IpAddress => share(values, |v| values::ip(v).is_some()),
        Kind::MacAddress => share(values, values::mac),
        Kind::Url => share(values, |v| values::url(v) || v.starts_with('/')),
        Kind::Username => share(values, values::username),
        Kind::Secret => share(values, values::secret_like),
        Kind::FreeText | Kind::Json => 0.0,
    }
}

/// Kinds the values alone can tell, by validators strict enough that a decoy (an order
/// number, a product code, a hash, a version string) does not pass: (kind, share).
fn by_values(values: &[&str]) -> Vec<(Kind, f64)> {
    let mut out = vec![
        (Kind::Email, share(values, values::email)),
        (Kind::Iban, share(values, values::iban)),
        (Kind::CreditCard, share(values, values::credit_card)),
        (Kind::UsSsn, share(values, |v| values::ssn(v, false))),
        (Kind::CaSin, share(values, values::sin)),
        (Kind::Phone, share(values, |v| values::phone(v, true))),
        (Kind::MacAddress, share(values, values::mac)),
        (Kind::Url, share(values, values::url)),
        (Kind::Secret, share(values, values::secret_shaped)),
        (
            Kind::PostalCode,
            share(values, values::postal_code_distinct),
        ),
        (Kind::StreetAddress, share(values, values::street_address)),
        (Kind::FullName, share(values, values::full_name)),
        (Kind::FirstName, share(values, values::first_name)),
        (Kind::LastName, share(values, values::last_name)),
    ];
    // IP addresses, unless every one could be a version number (`1.2.3.4`).
    let ips = share(values, |v| values::ip(v).is_some());
    if ips > 0.0 && share(values, values::ip_not_version) >= 0.5 * ips {
        out.push((Kind::IpAddress, ips));
    }
    out
}

/// How much a share of matching values must be, by kind, to tell the kind on its own.
fn value_threshold(kind: Kind) -> f64 {
    match kind {
        // Names of people, from a dictionary: real names miss it now and then.
        Kind::FirstName | Kind::LastName | Kind::FullName => 0.6,
        Kind::StreetAddress => 0.6,
        _ => 0.8,
    }
}

/// Whether dates look like birth dates: years spread over decades, none in the last few
/// years' future or far past, no time of day.
fn birth_dates(values: &[&str]) -> bool {
    let years: Vec<i32> = values.iter().filter_map(|v| values::date_year(v)).collect();
    if years.len() < 10 || years.len() * 10 < values.len() * 9 {
        return false;
    }
    if values.iter().any(|v| values::has_time_of_day(v)) {
        return false;
    }
    let (lo, hi) = (
        *years.iter().min().unwrap_or(&0),
        *years.iter().max().unwrap_or(&0),
    );
    lo >= 1900 && hi <= 2015 && hi - lo >= 25
}

/// Kinds found inside text written by people: (kind, share of values holding one).
fn inside_text(values: &[&str]) -> Vec<(Kind, f64)> {
    use std::sync::OnceLock;
    static RE: OnceLock<Vec<(Kind, regex::Regex)>> = OnceLock::new();
    let patterns = RE.get_or_init(|| {
        let re = |p: &str| regex::Regex::new(p).expect("the pattern is valid");
        vec![
            (
                Kind::Email,
                re(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
            ),
            (Kind::UsSsn, re(r"\b\d{3}-\d{2}-\d{4}\b")),
            (Kind::CreditCard, re(r"\b(?:\d[ -]?){12,18}\d\b")),
            (
                Kind::Phone,
                re(r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\b\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}\b"),
            ),
            (Kind::IpAddress, re(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b")),
            (Kind::Iban, re(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,3})?\b")),
            (Kind::FullName, re(r"\b\p{Lu}\p{Ll}+ \p{Lu}\p{Ll}+\b")),
        ]
    });
    let mut out = Vec::new();
    for (kind, re) in patterns {
        let hit = |v: &str| {
            re.find_iter(v).any(|m| {
                let s = m.as_str();
                match kind {
                    Kind::Email => values::email(s),
                    Kind::UsSsn => values::ssn(s, false),
                    Kind::CreditCard => values::credit_card(s),
                    Kind::Phone => values::phone(s, true),
                    Kind::IpAddress => values::ip_not_version(s),
                    Kind::Iban => values::iban(s),
                    Kind::FullName => s
                        .split_once(' ')
                        .is_some_and(|(a, b)| dict_first(a) && (dict_last(b) || dict_first(b))),
                    _ => false,
                }
            })
        };
        let s = share(values, hit);
        if s > 0.0 {
            out.push((*kind, s));
        }
    }
    out
}

fn dict_first(w: &str) -> bool {
    dict::is_first_name(w)
}

fn dict_last(w: &str) -> bool {
    dict::is_last_name(w)
}

/// Whether values are prose: most hold spaces and run long.
fn prose(values: &[&str]) -> bool {
    !values.is_empty()
        && share(values, |v| v.split_whitespace().count() >= 4) >= 0.5
        && values.iter().map(|v| v.len()).sum::<usize>() / values.len() >= 20
}

/// Classify a column from its name, type and non-NULL sampled values (text form).
pub fn classify(column: &str, value_type: &ValueType, values: &[&str]) -> Finding {
    classify_depth(column, value_type, values, 0)
}

fn classify_depth(column: &str, value_type: &ValueType, values: &[&str], depth: u8) -> Finding {
    let n = values.len();
    let mut f = Finding::none(n);
    let by_name = names::kind_of(column);
    // Types that say it.
    match value_type {
        ValueType::Boolean | ValueType::Uuid | ValueType::Bytea | ValueType::Interval => {
            return f;
        }
        ValueType::Inet => {
            f.kind = Some(Kind::IpAddress);
            f.confidence = 0.95;
            f.evidence = vec![Evidence::Type];
            if by_name.is_some_and(|(k, _)| k == Kind::IpAddress) {
                f.evidence.insert(0, Evidence::Name);
                f.confidence = 0.99;
            }
            return f;
        }
        ValueType::MacAddr => {
            f.kind = Some(Kind::MacAddress);
            f.confidence = 0.95;
            f.evidence = vec![Evidence::Type];
            return f;
        }
        _ => {}
    }
    // JSON documents: judge each path's values as a column of its own.
    let json_typed = matches!(value_type, ValueType::Json | ValueType::Jsonb);
    if depth == 0 && (json_typed || (n > 0 && share(values, looks_like_json) >= 0.8)) {
        let docs: Vec<serde_json::Value> = values
            .iter()
            .filter_map(|v| serde_json::from_str(v).ok())
            .collect();
        // Objects whose keys are data (a map by email, by id) are found first: their keys are
        // judged as values and their paths written with `*`.
        let mut maps: BTreeSet<String> = BTreeSet::new();
        let mut leaves: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
        let mut keys: BTreeMap<String, KeyStats> = BTreeMap::new();
        for _ in 0..3 {
            leaves.clear();
            keys.clear();
            for d in &docs {
                let mut walk = Walk {
                    maps: &maps,
                    leaves: &mut leaves,
                    keys: &mut keys,
                };
                walk.collect(d, "$".into(), "", 0);
            }
            let found: BTreeSet<String> = keys
                .iter()
                .filter(|(_, k)| k.is_map())
                .map(|(p, _)| p.clone())
                .collect();
            if found.is_subset(&maps) {
                break;
            }
            maps.extend(found);
        }
        for parent in &maps {
            let ks: Vec<&str> = keys
                .get(parent)
                .map(|k| k.counts.keys().map(String::as_str).collect())
                .unwrap_or_default();
            let inner = classify_depth("", &ValueType::Text { max_chars: None }, &ks, depth + 1);
            if let Some(k) = inner.kind {
                f.keys.insert(format!("{parent}.*"), k);
            }
        }
        for (path, (key, vals)) in &leaves {
            let refs: Vec<&str> = vals.iter().map(String::as_str).collect();
            let inner = classify_depth(key, &ValueType::Text { max_chars: None }, &refs, depth + 1);
            if let Some(k) = inner.kind {
                f.paths.insert(path.clone(), k);
            }
        }
        if !f.paths.is_empty() || !f.keys.is_empty() {
            f.kind = Some(Kind::Json);
            f.confidence = 0.9;
            f.evidence = vec![Evidence::Values];
            f.matched = Some(share(values, |v| {
                serde_json::from_str::<serde_json::Value>(v).is_ok()
            }));
        }
        return f;
    }
    let numeric = matches!(
        value_type,
        ValueType::SmallInt
            | ValueType::Integer
            | ValueType::BigInt
            | ValueType::Numeric { .. }
            | ValueType::Real
            | ValueType::Double
    );
    let temporal = matches!(
        value_type,
        ValueType::Date | ValueType::Timestamp | ValueType::TimestampTz
    );
    // Kinds a column of this type can hold.
    let fits = |k: Kind| match value_type {
        _ if numeric => matches!(
            k,
            Kind::Phone | Kind::UsSsn | Kind::CaSin | Kind::CreditCard | Kind::PostalCode
        ),
        _ if temporal => k == Kind::DateOfBirth,
        ValueType::Time | ValueType::TimeTz => false,
        _ => true,
    };
    // 1. The name says it; the values confirm, or do not contradict.
    if let Some((kind, strength)) = by_name.filter(|(k, _)| fits(*k)) {
        let m = if temporal && kind == Kind::DateOfBirth {
            1.0
        } else {
            lenient(kind, values)
        };
        // Free text named like a kind (`address` holding sentences) is judged as text below.
        let contradicted = n >= 5 && m < 0.2;
        match strength {
            Strength::Strong if n == 0 => {
                f.kind = Some(kind);
                f.confidence = 0.75;
                f.evidence = vec![Evidence::Name];
                return f;
            }
            Strength::Strong if !contradicted => {
                f.kind = Some(kind);
                f.confidence = (0.8 + 0.19 * m).min(0.99);
                f.evidence = vec![Evidence::Name, Evidence::Values];
                f.matched = Some(m);
                return f;
            }
            Strength::Weak if n > 0 && m >= 0.5 => {
                f.kind = Some(kind);
                f.confidence = (0.6 + 0.35 * m).min(0.95);
                f.evidence = vec![Evidence::Name, Evidence::Values];
                f.matched = Some(m);
                return f;
            }
            _ => {}
        }
    }
    if n == 0 {
        return f;
    }
    // 2. The values alone, by strict validators.
    if temporal {
        if birth_dates(values) {
            f.kind = Some(Kind::DateOfBirth);
            f.confidence = 0.6;
            f.evidence = vec![Evidence::Values];
            f.matched = Some(1.0);
        }
        return f;
    }
    let mut best: Option<(Kind, f64)> = None;
    for (k, m) in by_values(values) {
        if fits(k) && m >= value_threshold(k) && best.is_none_or(|(_, bm)| m > bm) {
            best = Some((k, m));
        }
    }
    if best.is_none() && !numeric && birth_dates(values) {
        best = Some((Kind::DateOfBirth, 1.0));
    }
    if let Some((k, m)) = best {
        // Names from a dictionary: prefer the most specific reading when several match.
        let k = match k {
            Kind::FirstName | Kind::LastName | Kind::FullName => {
                let full = share(values, values::full_name);
                let first = share(values, values::first_name);
                let last = share(values, values::last_name);
                if full >= 0.6 {
                    Kind::FullName
                } else if first >= last {
                    Kind::FirstName
                } else {
                    Kind::LastName
                }
            }
            k => k,
        };
        f.kind = Some(k);
        f.confidence = (0.6 + 0.35 * m).min(0.95);
        f.evidence = vec![Evidence::Values];
        f.matched = Some(m);
        if by_name.is_some_and(|(nk, _)| nk == k) {
            f.evidence.insert(0, Evidence::Name);
            f.confidence = (f.confidence + 0.05).min(0.99);
        }
        return f;
    }
    // 3. Free text holding any of the kinds.
    if !numeric && (prose(values) || names::is_free_text(column)) {
        let found = inside_text(values);
        // The share of values holding anything sensitive: at least two values, 5%.
        let m = share(values, |v| !inside_text(&[v]).is_empty());
        if !found.is_empty() && m * n as f64 >= 1.5 && m >= 0.05 {
            f.kind = Some(Kind::FreeText);
            f.contains = found.iter().map(|(k, _)| *k).collect();
            f.confidence = (0.6 + 0.35 * m.min(1.0)).min(0.95);
            f.evidence = vec![Evidence::Values];
            if names::is_free_text(column) {
                f.evidence.insert(0, Evidence::Name);
            }
            f.matched = Some(m);
        }
    }
    f
}

fn looks_like_json(v: &str) -> bool {
    let t = v.trim_start();
    (t.starts_with('{') || t.starts_with('['))
        && serde_json::from_str::<serde_json::Value>(v).is_ok()
}

/// More distinct keys than this under one object path make it a map whose keys are data.
const MAP_KEYS: usize = 32;

/// A walk over JSON documents collecting leaves by path (`$.a.b`, arrays as `[*]`, the keys
/// of maps as `*`) and the distinct keys seen under each object path.
struct Walk<'a> {
    maps: &'a BTreeSet<String>,
    leaves: &'a mut BTreeMap<String, (String, Vec<String>)>,
    keys: &'a mut BTreeMap<String, KeyStats>,
}

/// The keys seen under one object path: how many objects were there, and how many of them
/// held each key.
#[derive(Default)]
struct KeyStats {
    objects: usize,
    counts: BTreeMap<String, usize>,
}

impl KeyStats {
    /// Whether the object's keys are data (a map by email, by id, by user name) rather than
    /// the names of fields: a key shaped like data, more keys than a record has, or keys that
    /// each turn up in a single object of many.
    fn is_map(&self) -> bool {
        let once = self.counts.values().filter(|n| **n == 1).count();
        self.counts.keys().any(|k| data_key(k))
            || self.counts.len() > MAP_KEYS
            || (self.objects >= 3 && self.counts.len() >= 3 && once * 2 >= self.counts.len())
    }
}

/// A key that is data by its shape: an address, a number, an id (`user17`, `2024-01`, a UUID).
fn data_key(k: &str) -> bool {
    let digits = k.chars().filter(char::is_ascii_digit).count();
    let trailing = k.chars().rev().take_while(char::is_ascii_digit).count();
    k.contains('@')
        || (digits > 0 && digits == k.chars().count())
        || digits >= 4
        || (trailing >= 2 && k.chars().any(|c| c.is_alphabetic()))
        || (k.len() >= 8 && k.chars().all(|c| c.is_ascii_hexdigit() || c == '-'))
}

impl Walk<'_> {
    fn collect(&mut self, v: &serde_json::Value, path: String, key: &str, depth: usize) {
        if depth > 16 || self.leaves.len() > 500 {
            return;
        }
        match v {
            serde_json::Value::Object(m) => {
                let map = self.maps.contains(&path);
                let seen = self.keys.entry(path.clone()).or_default();
                seen.objects += 1;
                for k in m.keys() {
                    if seen.counts.len() <= 4 * MAP_KEYS || seen.counts.contains_key(k) {
                        *seen.counts.entry(k.clone()).or_default() += 1;
                    }
                }
                for (k, x) in m {
                    // A key that is not a name (`alice@example.com`, `1234`, a sentence), or a
                    // key of a map, is data: it is written as `*`, never shown.
                    let name = !map
                        && !k.is_empty()
                        && k.len() <= 40
                        && k.chars()
                            .next()
                            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                    let (p, leaf_key) = if name {
                        (format!("{path}.{k}"), k.as_str())
                    } else {
                        (format!("{path}.*"), "")
                    };
                    self.collect(x, p, leaf_key, depth + 1);
                }
            }
            serde_json::Value::Array(a) => {
                for x in a.iter().take(50) {
                    self.collect(x, format!("{path}[*]"), key, depth + 1);
                }
            }
            serde_json::Value::Null => {}
            other => {
                let text = match other {
                    serde_json::Value::String(s) => s.clone(),
                    o => o.to_string(),
                };
                self.leaves
                    .entry(path)
                    .or_insert_with(|| (key.to_string(), Vec::new()))
                    .1
                    .push(text);
            }
        }
    }
}

/// What the column's role in keys is: a key column gets a one-to-one generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    /// Neither a key nor a foreign key.
    None,
    /// Part of the primary key, or of a foreign key.
    Key,
}

/// The generator (and its options) that fits a finding, for a column of `ty`. Keys get key
/// generators (one-to-one, so they stay unique and keep joining), never fakes.
pub fn suggest(finding: &Finding, value_type: &ValueType, role: KeyRole) -> (String, toml::Table) {
    let mut options = toml::Table::new();
    let Some(kind) = finding.kind else {
        return ("passthrough".into(), options);
    };
    let integer = matches!(
        value_type,
        ValueType::SmallInt | ValueType::Integer | ValueType::BigInt
    );
    let number = integer || matches!(value_type, ValueType::Numeric { .. });
    if role == KeyRole::Key || (number && kind != Kind::DateOfBirth) {
        let g = match value_type {
            _ if integer => "integer_key",
            ValueType::Numeric { .. } => "integer_key",
            ValueType::Uuid => "uuid_key",
            ValueType::MacAddr => "mac_address",
            _ if matches!(
                kind,
                Kind::UsSsn | Kind::CaSin | Kind::CreditCard | Kind::Phone | Kind::PostalCode
            ) =>
            {
                "numeric_string_key"
            }
            _ => "alphanumeric_key",
        };
        return (g.into(), options);
    }
    let g = match kind {
        Kind::FirstName => "first_name",
        Kind::LastName => "last_name",
        Kind::FullName => "full_name",
        Kind::Email => "email",
        Kind::Phone => "phone",
        Kind::UsSsn => "ssn",
        Kind::CaSin => "sin",
        Kind::CreditCard => "credit_card",
        Kind::Iban => "iban",
        Kind::StreetAddress => {
            options.insert("part".into(), "street".into());
            "address"
        }
        Kind::City => {
            options.insert("part".into(), "city".into());
            "address"
        }
        Kind::PostalCode => "character_scramble",
        Kind::DateOfBirth => match value_type {
            ValueType::Date | ValueType::Timestamp | ValueType::TimestampTz => "date_of_birth",
            _ => "character_scramble",
        },
        Kind::IpAddress => "ip_address",
        Kind::MacAddress => "mac_address",
        Kind::Url => "url",
        Kind::Username => "alphanumeric_key",
        Kind::Secret => "hash",
        Kind::FreeText => "character_scramble",
        // Keys of maps are data json_mask cannot rewrite: the documents are replaced whole.
        Kind::Json if !finding.keys.is_empty() || finding.paths.is_empty() => {
            options.insert("value".into(), "{}".into());
            "constant"
        }
        Kind::Json => {
            let mut paths = toml::Table::new();
            for (path, k) in &finding.paths {
                let inner = Finding {
                    kind: Some(*k),
                    paths: BTreeMap::new(),
                    keys: BTreeMap::new(),
                    ..finding.clone()
                };
                let (g, o) = suggest(&inner, &ValueType::Text { max_chars: None }, KeyRole::None);
                let mut entry = o;
                entry.insert("generator".into(), g.into());
                paths.insert(path.clone(), toml::Value::Table(entry));
            }
            options.insert("paths".into(), toml::Value::Table(paths));
            "json_mask"
        }
    };
    (g.into(), options)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text() -> ValueType {
        ValueType::Text { max_chars: None }
    }

    #[test]
    fn values_tell_what_a_meaningless_name_hides() {
        let emails = ["ana@example.com", "bo.li@mail.example.org", "c+x@ex.io"];
        let f = classify("c7", &text(), &emails);
        assert_eq!(f.kind, Some(Kind::Email));
        assert_eq!(f.evidence, [Evidence::Values]);
        let cards = [
            "4111 1111 1111 1111",
            "5500 0000 0000 0004",
            "3400 000000 00009",
        ];
        assert_eq!(classify("x", &text(), &cards).kind, Some(Kind::CreditCard));
        let names = ["Maria Garcia", "John Smith", "Wei Chen", "Olivia Brown"];
        assert_eq!(
            classify("col_b", &text(), &names).kind,
            Some(Kind::FullName)
        );
    }

    #[test]
    fn decoys_stay_unflagged() {
        let orders = ["100234", "100235", "100240", "100301", "100302"];
        assert_eq!(classify("order_no", &text(), &orders).kind, None);
        let versions = ["1.2.3.4", "2.0.1.0", "1.10.2.3", "3.1.4.1", "0.9.9.9"];
        assert_eq!(classify("build", &text(), &versions).kind, None);
        let hashes = [
            "d41d8cd98f00b204e9800998ecf8427e",
            "9e107d9d372bb6826bd81d3542a419d6",
        ];
        assert_eq!(classify("digest", &text(), &hashes).kind, None);
        let products = ["Blue Widget", "Large Gadget", "Steel Bolt", "Oak Table"];
        assert_eq!(classify("product_name", &text(), &products).kind, None);
        let zips_not = ["12345", "23456", "34567", "45678", "56789"];
        assert_eq!(classify("qty_code", &text(), &zips_not).kind, None);
    }

    #[test]
    fn names_say_it_and_values_confirm() {
        let f = classify("e_mail", &text(), &["a@b.co", "c@d.io"]);
        assert_eq!(f.kind, Some(Kind::Email));
        assert_eq!(f.evidence, [Evidence::Name, Evidence::Values]);
        assert!(f.confidence > 0.95);
        // A name contradicted by its values is not believed.
        let f = classify("email", &text(), &["1", "2", "3", "4", "5", "6"]);
        assert_eq!(f.kind, None);
        // A name with nothing sampled is believed, less surely.
        let f = classify("dob", &ValueType::Date, &[]);
        assert_eq!(f.kind, Some(Kind::DateOfBirth));
    }

    #[test]
    fn free_text_and_json_say_what_they_hold() {
        let notes = [
            "Customer called from 415-555-2671 about the late delivery",
            "Sent the invoice again to jo@example.com as asked",
            "Nothing to add here, the order shipped on time today",
        ];
        let f = classify("notes", &text(), &notes);
        assert_eq!(f.kind, Some(Kind::FreeText));
        assert!(f.contains.contains(&Kind::Phone) && f.contains.contains(&Kind::Email));
        let docs = [
            r#"{"contact": {"email": "a@example.com", "tier": "gold"}}"#,
            r#"{"contact": {"email": "b@example.org", "tier": "silver"}}"#,
        ];
        let keyed = [
            r#"{"by_user": {"jo@example.com": {"phone": "+44 20 7946 0958"}}}"#,
            r#"{"by_user": {"al@example.org": {"phone": "+44 20 7946 0959"}}}"#,
        ];
        let f = classify("doc", &ValueType::Jsonb, &keyed);
        assert_eq!(
            f.paths.get("$.by_user.*.phone"),
            Some(&Kind::Phone),
            "{f:?}"
        );
        assert!(
            !format!("{f:?}").contains("example"),
            "keys that are data stay hidden"
        );
        let by_email: Vec<String> = (0..100)
            .map(|i| format!(r#"{{"by_email": {{"u{i}.zq@example.com": {{"n": {i}}}}}}}"#))
            .collect();
        let refs: Vec<&str> = by_email.iter().map(String::as_str).collect();
        let f = classify("doc", &ValueType::Jsonb, &refs);
        assert_eq!(f.keys.get("$.by_email.*"), Some(&Kind::Email), "{f:?}");
        assert!(!format!("{f:?}").contains("zq"), "{f:?}");
        assert_eq!(suggest(&f, &ValueType::Jsonb, KeyRole::None).0, "constant");
        for n in [1, 3, 20] {
            let few: Vec<String> = (0..n)
                .map(|i| {
                    format!(
                        r#"{{"by_email": {{"u{i}.zq@example.com": "v{i}@example.org"}}, "users": {{"user{}": {{"email": "w{i}@example.com"}}}}}}"#,
                        i + 10
                    )
                })
                .collect();
            let refs: Vec<&str> = few.iter().map(String::as_str).collect();
            let f = classify("doc", &ValueType::Jsonb, &refs);
            assert!(
                !format!("{f:?}").contains("zq") && !format!("{f:?}").contains("user1"),
                "{n}: {f:?}"
            );
            assert_eq!(f.keys.get("$.by_email.*"), Some(&Kind::Email), "{n}: {f:?}");
            assert_eq!(suggest(&f, &ValueType::Jsonb, KeyRole::None).0, "constant");
        }
        let ids: Vec<String> = (0..100)
            .map(|i| format!(r#"{{"users": {{"user{i}": {{"email": "u{i}@example.com"}}}}}}"#))
            .collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let f = classify("doc", &ValueType::Jsonb, &refs);
        assert_eq!(f.paths.get("$.users.*.email"), Some(&Kind::Email), "{f:?}");
        assert!(
            !format!("{f:?}").contains("user1"),
            "a map's keys are never shown: {f:?}"
        );
        let f = classify("payload", &ValueType::Jsonb, &docs);
        assert_eq!(f.kind, Some(Kind::Json));
        assert_eq!(f.paths.get("$.contact.email"), Some(&Kind::Email));
        assert!(!f.paths.contains_key("$.contact.tier"));
        let (g, o) = suggest(&f, &ValueType::Jsonb, KeyRole::None);
        assert_eq!(g, "json_mask");
        assert!(o["paths"].get("$.contact.email").is_some());
    }

    #[test]
    fn keys_get_key_generators() {
        let f = classify("email", &text(), &["a@b.co"]);
        assert_eq!(suggest(&f, &text(), KeyRole::Key).0, "alphanumeric_key");
        assert_eq!(suggest(&f, &text(), KeyRole::None).0, "email");
        let f = classify("ssn", &ValueType::BigInt, &["123456789"]);
        assert_eq!(
            suggest(&f, &ValueType::BigInt, KeyRole::None).0,
            "integer_key"
        );
    }
}
