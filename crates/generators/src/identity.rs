//! People: names, email addresses, phone numbers, national identifiers (SSN, SIN), card numbers,
//! IBANs and dates of birth. Realistic values come from the `fake` crate driven by an RNG seeded by
//! the consistency PRF, so the same input always gives the same fake.

use crate::datetime::{Stamp, civil_from_days, days_from_civil};
use crate::prf::ValueRng;
use crate::{
    BuildError, Built, ColumnContext, GenerateError, Generator, Prf, Row, RowGenerator, RowRead,
    no_options, options, truncate_chars,
};
use fake::Fake;
use fake::faker::internet::en::FreeEmailProvider;
use fake::faker::name::en::{FirstName, LastName};
use serde::Deserialize;
use std::fmt::Write;
use std::sync::Arc;

#[derive(Clone, Copy)]
pub(crate) enum NamePart {
    First,
    Last,
    Full,
}

struct Name {
    prf: Prf,
    part: NamePart,
    max_chars: Option<u32>,
}

fn first(rng: &mut ValueRng) -> String {
    FirstName().fake_with_rng(rng)
}

fn last(rng: &mut ValueRng) -> String {
    LastName().fake_with_rng(rng)
}

impl Name {
    /// The fake name for `v`, exactly as this generator writes it for a column.
    fn write(&self, v: &str, out: &mut String) {
        let _ = self.generate(Some(v), out);
    }
}

impl Generator for Name {
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
        let Some(v) = input else { return Ok(false) };
        let mut rng = self.prf.rng("text", v.as_bytes());
        let start = out.len();
        match self.part {
            NamePart::First => out.push_str(&first(&mut rng)),
            NamePart::Last => out.push_str(&last(&mut rng)),
            NamePart::Full => {
                out.push_str(&first(&mut rng));
                out.push(' ');
                out.push_str(&last(&mut rng));
            }
        }
        let mut generated = out.split_off(start);
        match letter_case(v) {
            Some(Case::Upper) => generated = generated.to_uppercase(),
            Some(Case::Lower) => generated = generated.to_lowercase(),
            None => {}
        }
        truncate_chars(&mut generated, self.max_chars);
        out.push_str(&generated);
        Ok(true)
    }
}

/// A value's letter case when all its letters (two or more) share one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Case {
    Upper,
    Lower,
}

/// `Some(Upper)` for `JOHN O'NEIL`, `Some(Lower)` for `john`, `None` for `John` or `J`.
pub(crate) fn letter_case(v: &str) -> Option<Case> {
    let letters = v.chars().filter(|c| c.is_alphabetic());
    let (mut upper, mut lower, mut n) = (0, 0, 0);
    for c in letters {
        n += 1;
        upper += usize::from(c.is_uppercase());
        lower += usize::from(c.is_lowercase());
    }
    match (n >= 2, upper == n, lower == n) {
        (true, true, _) => Some(Case::Upper),
        (true, _, true) => Some(Case::Lower),
        _ => None,
    }
}

pub(crate) fn name(
    generator: &'static str,
    part: NamePart,
    opts: &toml::Table,
    ctx: &ColumnContext,
    prf: &Prf,
) -> Built {
    no_options(generator, opts)?;
    Ok(Arc::new(Name {
        prf: prf.derive(generator),
        part,
        max_chars: ctx.value_type.max_chars(),
    }))
}

struct Email {
    prf: Prf,
    keep_domain: bool,
    domain: Option<String>,
    max_chars: Option<u32>,
    /// `first_name` and `last_name` generators and the row columns they read, when linked.
    from: Option<(Name, Name, [RowRead; 2])>,
    /// Append a 64-bit keyed tag instead of a short number, for unique email columns.
    unique: bool,
}

/// `n` in base 36, lower case.
fn base36(mut n: u64, out: &mut String) {
    let mut digits = Vec::new();
    loop {
        digits.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize] as char);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.extend(digits.iter().rev());
}

/// Lower-case ASCII letters of a name (drops apostrophes, spaces, accents).
fn local_part(name: &str, out: &mut String) {
    out.extend(
        name.chars()
            .filter(|c| c.is_ascii_alphabetic())
            .map(|c| c.to_ascii_lowercase()),
    );
}

impl RowGenerator for Email {
    fn generate_in_row(
        &self,
        input: Option<&str>,
        row: &dyn Row,
        out: &mut String,
    ) -> Result<bool, GenerateError> {
        let Some(v) = input else { return Ok(false) };
        // The local part is derived from the whole address, so two people at one domain differ.
        let mut rng = self.prf.rng("text", v.as_bytes());
        let mut email = String::with_capacity(32);
        let (mut f, mut l) = (String::new(), String::new());
        match &self.from {
            Some((fg, lg, [fc, lc])) => {
                // The same fake names the row's name columns get.
                match row.original(fc.column) {
                    Some(x) => fg.write(x, &mut f),
                    None => f.push_str(&first(&mut rng)),
                }
                match row.original(lc.column) {
                    Some(x) => lg.write(x, &mut l),
                    None => l.push_str(&last(&mut rng)),
                }
            }
            None => {
                f.push_str(&first(&mut rng));
                l.push_str(&last(&mut rng));
            }
        }
        local_part(&f, &mut email);
        email.push(match rng.below(3) {
            0 => '.',
            1 => '_',
            _ => '.',
        });
        local_part(&l, &mut email);
        if self.unique {
            // 64 keyed bits of the whole address: distinct inputs collide with probability
            // about n²/2^65 (≈ 3·10⁻⁸ for a million addresses).
            email.push('.');
            base36(self.prf.u64("unique", v.as_bytes()), &mut email);
        } else {
            let _ = write!(email, "{}", rng.below(10_000));
        }
        email.push('@');
        let kept = self
            .keep_domain
            .then(|| v.rsplit_once('@').map(|(_, d)| d))
            .flatten();
        match (kept, &self.domain) {
            (Some(d), _) => email.push_str(d),
            (None, Some(d)) => email.push_str(d),
            (None, None) => {
                let d: String = FreeEmailProvider().fake_with_rng(&mut rng);
                email.push_str(&d);
            }
        }
        truncate_chars(&mut email, self.max_chars);
        out.push_str(&email);
        Ok(true)
    }

    fn reads(&self) -> &[RowRead] {
        match &self.from {
            Some((_, _, cols)) => cols,
            None => &[],
        }
    }
}

pub(crate) fn email(opts: &toml::Table, ctx: &ColumnContext, prf: &Prf) -> Built {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Opts {
        #[serde(default)]
        keep_domain: bool,
        domain: Option<String>,
        from: Option<Vec<String>>,
        #[serde(default)]
        unique: bool,
    }
    let o: Opts = options("email", opts)?;
    let from = match o.from.as_deref() {
        None => None,
        Some([f, l]) => {
            let fc = ctx.column_index("email", f)?;
            let lc = ctx.column_index("email", l)?;
            let name = |generator: &str, part| Name {
                prf: prf.derive(generator),
                part,
                max_chars: None,
            };
            Some((
                name("first_name", NamePart::First),
                name("last_name", NamePart::Last),
                [
                    RowRead {
                        column: fc,
                        generated: false,
                    },
                    RowRead {
                        column: lc,
                        generated: false,
                    },
                ],
            ))
        }
        Some(_) => {
            return Err(BuildError::BadOption(
                "generator `email`: `from` takes two columns, [first name, last name]".into(),
            ));
        }
    };
    if o.keep_domain && o.domain.is_some() {
        return Err(BuildError::BadOption(
            "generator `email`: choose `keep_domain` or `domain`, not both".into(),
        ));
    }
    Ok(Arc::new(Email {
        prf: prf.derive("email"),
        keep_domain: o.keep_domain,
        domain: o.domain,
        max_chars: ctx.value_type.max_chars(),
        from,
        unique: o.unique,
    }))
}

struct Phone {
    prf: Prf,
    keep_area_code: bool,
}

impl Generator for Phone {
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
        let Some(v) = input else { return Ok(false) };
        let mut rng = self.prf.rng("text", v.as_bytes());
        let n = v.chars().filter(char::is_ascii_digit).count();
        // Keep a leading country code 1 of an 11-digit North American number, and the area code
        // after it when asked.
        let country = usize::from(n == 11 && v.trim_start_matches('+').starts_with('1'));
        let keep = country + if self.keep_area_code && n >= 10 { 3 } else { 0 };
        let mut digits_seen = 0;
        for c in v.chars() {
            if !c.is_ascii_digit() {
                out.push(c);
                continue;
            }
            digits_seen += 1;
            if digits_seen <= keep {
                out.push(c);
            } else if n >= 10 && (digits_seen == country + 1 || digits_seen == country + 4) {
                // Area code and exchange of a 10-digit number never start with 0 or 1.
                out.push((b'2' + rng.below(8) as u8) as char);
            } else {
                out.push((b'0' + rng.below(10) as u8) as char);
            }
        }
        Ok(true)
    }
}

pub(crate) fn phone(opts: &toml::Table, _: &ColumnContext, prf: &Prf) -> Built {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Opts {
        #[serde(default)]
        keep_area_code: bool,
    }
    let o: Opts = options("phone", opts)?;
    Ok(Arc::new(Phone {
        prf: prf.derive("phone"),
        keep_area_code: o.keep_area_code,
    }))
}

/// Write `digits` into the digit positions of `template` (or plainly, when it has a different
/// number of digits).
fn into_shape(template: &str, digits: &str, out: &mut String) {
    if template.chars().filter(char::is_ascii_digit).count() != digits.len() {
        out.push_str(digits);
        return;
    }
    let mut d = digits.chars();
    for c in template.chars() {
        if c.is_ascii_digit() {
            out.extend(d.next());
        } else {
            out.push(c);
        }
    }
}

struct Ssn {
    prf: Prf,
}

impl Generator for Ssn {
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
        let Some(v) = input else { return Ok(false) };
        let mut rng = self.prf.rng("text", v.as_bytes());
        // Area 001–899 except 666, group 01–99, serial 0001–9999.
        let mut area = 1 + rng.below(898);
        if area >= 666 {
            area += 1;
        }
        let group = 1 + rng.below(99);
        let serial = 1 + rng.below(9999);
        let digits = format!("{area:03}{group:02}{serial:04}");
        let template = if v.chars().filter(char::is_ascii_digit).count() == 9 {
            v
        } else {
            "000-00-0000"
        };
        into_shape(template, &digits, out);
        Ok(true)
    }
}

pub(crate) fn ssn(opts: &toml::Table, _: &ColumnContext, prf: &Prf) -> Built {
    no_options("ssn", opts)?;
    Ok(Arc::new(Ssn {
        prf: prf.derive("ssn"),
    }))
}

/// The Luhn check digit for `payload` (digits).
pub(crate) fn luhn_digit(payload: &[u8]) -> u8 {
    let sum: u32 = payload
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = d as u32;
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// Whether a digit string passes the Luhn check.
pub fn luhn_valid(digits: &str) -> bool {
    let d: Vec<u8> = digits
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect();
    match d.split_last() {
        Some((check, payload)) if !payload.is_empty() => luhn_digit(payload) == *check,
        _ => false,
    }
}

struct Sin {
    prf: Prf,
}

impl Generator for Sin {
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
        let Some(v) = input else { return Ok(false) };
        let mut rng = self.prf.rng("text", v.as_bytes());
        // First digit 1–7 (regular SINs), then 7 digits, then the Luhn check digit.
        let mut d = vec![1 + rng.below(7) as u8];
        d.extend((0..7).map(|_| rng.below(10) as u8));
        d.push(luhn_digit(&d));
        let digits: String = d.iter().map(|x| (b'0' + x) as char).collect();
        let template = if v.chars().filter(char::is_ascii_digit).count() == 9 {
            v
        } else {
            "000 000 000"
        };
        into_shape(template, &digits, out);
        Ok(true)
    }
}

pub(crate) fn sin(opts: &toml::Table, _: &ColumnContext, prf: &Prf) -> Built {
    no_options("sin", opts)?;
    Ok(Arc::new(Sin {
        prf: prf.derive("sin"),
    }))
}

struct CreditCard {
    prf: Prf,
    keep_prefix: usize,
}

impl Generator for CreditCard {
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
        let Some(v) = input else { return Ok(false) };
        let digits: Vec<u8> = v
            .bytes()
            .filter(u8::is_ascii_digit)
            .map(|b| b - b'0')
            .collect();
        if !(12..=19).contains(&digits.len()) {
            return Err(GenerateError::Unparsable {
                expected: "a card number of 12 to 19 digits",
            });
        }
        let mut rng = self.prf.rng("text", v.as_bytes());
        let keep = self.keep_prefix.min(digits.len() - 1);
        let mut d: Vec<u8> = digits[..keep].to_vec();
        while d.len() < digits.len() - 1 {
            d.push(rng.below(10) as u8);
        }
        d.push(luhn_digit(&d));
        let s: String = d.iter().map(|x| (b'0' + x) as char).collect();
        into_shape(v, &s, out);
        Ok(true)
    }
}

pub(crate) fn credit_card(opts: &toml::Table, _: &ColumnContext, prf: &Prf) -> Built {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Opts {
        keep_prefix: Option<usize>,
    }
    let o: Opts = options("credit_card", opts)?;
    let keep_prefix = o.keep_prefix.unwrap_or(1);
    if keep_prefix > 8 {
        return Err(BuildError::BadOption(
            "generator `credit_card`: `keep_prefix` is at most 8 digits".into(),
        ));
    }
    Ok(Arc::new(CreditCard {
        prf: prf.derive("credit_card"),
        keep_prefix,
    }))
}

/// IBAN check: move the first four characters to the end, letters to numbers, mod 97 == 1.
pub fn iban_valid(iban: &str) -> bool {
    let s: String = iban.chars().filter(|c| !c.is_whitespace()).collect();
    if s.len() < 5 || !s.is_ascii() {
        return false;
    }
    iban_mod97(&s[4..], &s[..4]) == 1
}

fn iban_mod97(bban: &str, head: &str) -> u32 {
    let mut r: u32 = 0;
    for c in bban.chars().chain(head.chars()) {
        let v = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'A'..='Z' => c as u32 - 'A' as u32 + 10,
            'a'..='z' => c as u32 - 'a' as u32 + 10,
            _ => continue,
        };
        r = if v >= 10 {
            (r * 100 + v) % 97
        } else {
            (r * 10 + v) % 97
        };
    }
    r
}

struct Iban {
    prf: Prf,
}

impl Generator for Iban {
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
        let Some(v) = input else { return Ok(false) };
        let compact: String = v.chars().filter(|c| !c.is_whitespace()).collect();
        let b = compact.as_bytes();
        if b.len() < 8
            || !b[..2].iter().all(u8::is_ascii_alphabetic)
            || !b[2..4].iter().all(u8::is_ascii_digit)
            || !b[4..].iter().all(u8::is_ascii_alphanumeric)
        {
            return Err(GenerateError::Unparsable {
                expected: "an IBAN",
            });
        }
        let mut rng = self.prf.rng("text", compact.as_bytes());
        let country = compact[..2].to_ascii_uppercase();
        let bban: String = compact[4..]
            .chars()
            .map(|c| {
                if c.is_ascii_digit() {
                    (b'0' + rng.below(10) as u8) as char
                } else {
                    (b'A' + rng.below(26) as u8) as char
                }
            })
            .collect();
        let check = 98 - iban_mod97(&bban, &format!("{country}00"));
        let new = format!("{country}{check:02}{bban}");
        // Re-apply the input's spacing.
        let mut chars = new.chars();
        for c in v.chars() {
            if c.is_whitespace() {
                out.push(c);
            } else if let Some(n) = chars.next() {
                out.push(n);
            }
        }
        Ok(true)
    }
}

pub(crate) fn iban(opts: &toml::Table, _: &ColumnContext, prf: &Prf) -> Built {
    no_options("iban", opts)?;
    Ok(Arc::new(Iban {
        prf: prf.derive("iban"),
    }))
}

struct DateOfBirth {
    prf: Prf,
    max_days: i64,
    band: Option<i64>,
}

impl Generator for DateOfBirth {
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
        let Some(v) = input else { return Ok(false) };
        let mut st = Stamp::parse(v).ok_or(GenerateError::Unparsable { expected: "a date" })?;
        let mut rng = self.prf.rng("temporal", v.as_bytes());
        match self.band {
            Some(years) => {
                let (y, _, _) = civil_from_days(st.days);
                let start = y - y.rem_euclid(years);
                let first = days_from_civil(start, 1, 1);
                let last = days_from_civil(start + years, 1, 1) - 1;
                st.days = first + rng.below((last - first + 1) as u64) as i64;
            }
            None => {
                let span = 2 * self.max_days + 1;
                let mut shift = rng.below(span as u64) as i64 - self.max_days;
                if shift == 0 {
                    shift = 1;
                }
                st.days += shift;
            }
        }
        st.write(out);
        Ok(true)
    }
}

pub(crate) fn date_of_birth(opts: &toml::Table, _: &ColumnContext, prf: &Prf) -> Built {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Opts {
        max_days: Option<i64>,
        keep_age_band: Option<i64>,
    }
    let o: Opts = options("date_of_birth", opts)?;
    let max_days = o.max_days.unwrap_or(365);
    if max_days < 1 || o.keep_age_band.is_some_and(|b| b < 1) {
        return Err(BuildError::BadOption(
            "generator `date_of_birth`: `max_days` and `keep_age_band` must be at least 1".into(),
        ));
    }
    Ok(Arc::new(DateOfBirth {
        prf: prf.derive("date_of_birth"),
        max_days,
        band: o.keep_age_band,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mirage_core::ValueType;

    fn gen_with(name: &str, opts: toml::Table, ty: &ValueType, v: &str) -> String {
        let ctx = ColumnContext {
            table: "t",
            column: "c",
            value_type: ty,
            not_null: false,
            columns: &[],
            stats: None,
        };
        let g = crate::build(name, &opts, &ctx, &Prf::from_seed("seed")).unwrap();
        let mut s = String::new();
        g.generate(Some(v), &mut s).unwrap();
        s
    }

    #[test]
    fn names_keep_the_letter_case_of_the_source() {
        let ty = ValueType::Text { max_chars: None };
        for g in ["first_name", "last_name", "full_name"] {
            let upper = gen_with(g, toml::Table::new(), &ty, "GRACE HOPPER");
            assert!(
                upper.chars().any(|c| c.is_alphabetic())
                    && !upper.chars().any(|c| c.is_lowercase()),
                "{g}: {upper}"
            );
            let lower = gen_with(g, toml::Table::new(), &ty, "grace");
            assert!(!lower.chars().any(|c| c.is_uppercase()), "{g}: {lower}");
            let title = gen_with(g, toml::Table::new(), &ty, "Grace");
            assert!(
                title.chars().next().is_some_and(char::is_uppercase),
                "{g}: {title}"
            );
            assert!(title.chars().any(char::is_lowercase), "{g}: {title}");
        }
        assert_eq!(letter_case("J"), None);
        assert_eq!(letter_case("O'NEIL-SMITH"), Some(Case::Upper));
    }

    #[test]
    fn names_look_like_names_and_fit() {
        let ty = ValueType::Text { max_chars: None };
        let full = gen_with("full_name", toml::Table::new(), &ty, "Grace Hopper");
        assert_eq!(full.split(' ').count(), 2, "{full}");
        let short = ValueType::Text { max_chars: Some(3) };
        assert!(
            gen_with("full_name", toml::Table::new(), &short, "Grace Hopper")
                .chars()
                .count()
                <= 3
        );
    }

    #[test]
    fn emails_are_addresses_and_can_keep_the_domain() {
        let ty = ValueType::Text { max_chars: None };
        for i in 0..500 {
            let e = gen_with(
                "email",
                toml::Table::new(),
                &ty,
                &format!("grace{i}@navy.mil"),
            );
            let (local, domain) = e.split_once('@').unwrap();
            let local_ok = !local.is_empty()
                && local.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_'
                })
                && !local.starts_with(['.', '_']);
            let domain_ok = domain.contains('.')
                && domain
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
            assert!(local_ok && domain_ok && !e.contains("grace"), "{e}");
        }
        let mut o = toml::Table::new();
        o.insert("keep_domain".into(), toml::Value::Boolean(true));
        let e = gen_with("email", o, &ty, "grace@navy.mil");
        assert!(e.ends_with("@navy.mil"), "{e}");
        let mut o = toml::Table::new();
        o.insert("domain".into(), toml::Value::String("example.com".into()));
        assert!(gen_with("email", o, &ty, "x@y.z").ends_with("@example.com"));
    }

    #[test]
    fn different_inputs_mostly_differ() {
        let ty = ValueType::Text { max_chars: None };
        let outs: std::collections::HashSet<String> = (0..2000)
            .map(|i| {
                gen_with(
                    "email",
                    toml::Table::new(),
                    &ty,
                    &format!("user{i}@corp.com"),
                )
            })
            .collect();
        assert!(outs.len() > 1990, "{}", outs.len());
    }

    fn one(name: &str, opts: toml::Table, v: &str) -> String {
        gen_with(name, opts, &ValueType::Text { max_chars: None }, v)
    }

    #[test]
    fn identity_numbers_are_valid() {
        for i in 0..3000 {
            let ssn = one("ssn", toml::Table::new(), &format!("123-45-{i:04}"));
            let p: Vec<&str> = ssn.split('-').collect();
            assert_eq!(
                p.iter().map(|x| x.len()).collect::<Vec<_>>(),
                [3, 2, 4],
                "{ssn}"
            );
            let area: u32 = p[0].parse().unwrap();
            assert!(area != 0 && area != 666 && area < 900, "{ssn}");
            assert!(p[1] != "00" && p[2] != "0000", "{ssn}");
            let sin = one("sin", toml::Table::new(), &format!("046 454 {i:03}"));
            assert!(luhn_valid(&sin) && sin.len() == 11, "{sin}");
            let card = one(
                "credit_card",
                toml::Table::new(),
                &format!("4111-1111-1111-{i:04}"),
            );
            assert!(
                luhn_valid(&card) && card.starts_with('4') && card.len() == 19,
                "{card}"
            );
            assert_eq!(card.matches('-').count(), 3);
            let iban = one("iban", toml::Table::new(), "DE89 3704 0044 0532 0130 00");
            assert!(
                iban_valid(&iban) && iban.starts_with("DE") && iban.len() == 27,
                "{iban}"
            );
        }
        assert!(iban_valid("GB82 WEST 1234 5698 7654 32"));
        let gb = one("iban", toml::Table::new(), "GB82 WEST 1234 5698 7654 32");
        assert!(
            iban_valid(&gb) && gb[5..9].chars().all(|c| c.is_ascii_uppercase()),
            "{gb}"
        );
    }

    #[test]
    fn phones_keep_their_shape() {
        let p = one("phone", toml::Table::new(), "+1 (415) 555-0132");
        assert_eq!(p.len(), "+1 (415) 555-0132".len());
        assert!(
            p.starts_with("+1 (") && &p[7..9] == ") " && &p[12..13] == "-",
            "{p}"
        );
        let mut o = toml::Table::new();
        o.insert("keep_area_code".into(), toml::Value::Boolean(true));
        let k = one("phone", o, "(415) 555-0132");
        assert!(k.starts_with("(415) ") && k != "(415) 555-0132", "{k}");
    }

    #[test]
    fn dates_of_birth_shift_within_bounds() {
        let mut o = toml::Table::new();
        o.insert("keep_age_band".into(), toml::Value::Integer(10));
        for i in 1..28 {
            let d = one("date_of_birth", o.clone(), &format!("1984-03-{i:02}"));
            assert!(d.starts_with("198"), "{d}");
            let d = one(
                "date_of_birth",
                toml::Table::new(),
                &format!("1984-03-{i:02}"),
            );
            let days = Stamp::parse(&d).unwrap().days - days_from_civil(1984, 3, i);
            assert!(days != 0 && days.abs() <= 365, "{d}");
        }
    }

    #[test]
    fn email_can_follow_the_name_columns() {
        let text = ValueType::Text { max_chars: None };
        let columns = vec![
            ("first".to_string(), text.clone()),
            ("last".to_string(), text.clone()),
            ("mail".to_string(), text.clone()),
        ];
        let ctx = |c: &'static str| ColumnContext {
            table: "t",
            column: c,
            value_type: &text,
            not_null: false,
            columns: &columns,
            stats: None,
        };
        let prf = Prf::from_seed("seed");
        let mut o = toml::Table::new();
        o.insert(
            "from".into(),
            toml::Value::Array(vec!["first".into(), "last".into()]),
        );
        let mail = crate::build("email", &o, &ctx("mail"), &prf).unwrap();
        let first = crate::build("first_name", &toml::Table::new(), &ctx("first"), &prf).unwrap();
        let last = crate::build("last_name", &toml::Table::new(), &ctx("last"), &prf).unwrap();
        struct R;
        impl Row for R {
            fn original(&self, i: usize) -> Option<&str> {
                [Some("Grace"), Some("Hopper"), None][i]
            }
            fn generated(&self, _: usize) -> Option<&str> {
                None
            }
        }
        let (mut f, mut l, mut m) = (String::new(), String::new(), String::new());
        first.generate(Some("Grace"), &mut f).unwrap();
        last.generate(Some("Hopper"), &mut l).unwrap();
        mail.generate_in_row(Some("grace@navy.mil"), &R, &mut m)
            .unwrap();
        let local: String = f
            .chars()
            .filter(|c| c.is_ascii_alphabetic())
            .collect::<String>()
            .to_lowercase();
        assert!(m.starts_with(&local), "{m} should start with {local}");
        let last_local: String = l
            .chars()
            .filter(|c| c.is_ascii_alphabetic())
            .collect::<String>()
            .to_lowercase();
        assert!(m.contains(&last_local), "{m} should contain {last_local}");
        assert_eq!(mail.reads().len(), 2);
        let mut bad = toml::Table::new();
        bad.insert(
            "from".into(),
            toml::Value::Array(vec!["frist".into(), "last".into()]),
        );
        let e = crate::build("email", &bad, &ctx("mail"), &prf)
            .err()
            .unwrap();
        assert!(e.to_string().contains("did you mean `first`"), "{e}");
    }

    #[test]
    fn unique_emails_do_not_collide() {
        let ty = ValueType::Text { max_chars: None };
        let mut o = toml::Table::new();
        o.insert("unique".into(), toml::Value::Boolean(true));
        let outs: std::collections::HashSet<String> = (0..20_000)
            .map(|i| gen_with("email", o.clone(), &ty, &format!("user{i}@corp.com")))
            .collect();
        assert_eq!(outs.len(), 20_000);
    }
}
