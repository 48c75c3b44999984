//! Evidence from values: one validator per kind, each answering whether one value is of it.

use crate::dict;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::OnceLock;

/// `local@domain.tld` as mail systems accept it.
pub fn email(v: &str) -> bool {
    let v = v.trim();
    let Some((local, domain)) = v.rsplit_once('@') else {
        return false;
    };
    if local.is_empty() || local.len() > 64 || domain.len() > 253 || v.contains(char::is_whitespace)
    {
        return false;
    }
    if !local
        .chars()
        .all(|c| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c))
    {
        return false;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|t| t.len() >= 2 && t.chars().all(char::is_alphabetic))
}

/// Digits of `v` when it is only digits and the separators `sep`.
fn digits_of(v: &str, sep: &str) -> Option<String> {
    let v = v.trim();
    if v.is_empty() || !v.chars().all(|c| c.is_ascii_digit() || sep.contains(c)) {
        return None;
    }
    Some(v.chars().filter(char::is_ascii_digit).collect())
}

/// Whether `v` is only digits and the separators `sep`, with a number of digits in `count`.
pub fn digits_in(v: &str, sep: &str, count: std::ops::RangeInclusive<usize>) -> bool {
    digits_of(v, sep).is_some_and(|d| count.contains(&d.len()))
}

/// A phone number's shape: 7 to 15 digits among `+ - ( ) .` and spaces, an extension allowed.
pub fn phone_shaped(v: &str) -> bool {
    let v = v.trim().to_ascii_lowercase();
    let body = v.split(['x', 'e']).next().unwrap_or("").trim();
    body.chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c))
        && (7..=15).contains(&body.chars().filter(char::is_ascii_digit).count())
}

/// An IBAN's shape: a country code, two check digits, 11 to 30 letters and digits.
pub fn iban_shaped(v: &str) -> bool {
    let c: String = v.chars().filter(|c| *c != ' ').collect();
    let b = c.as_bytes();
    (15..=34).contains(&b.len())
        && b[..2].iter().all(u8::is_ascii_uppercase)
        && b[2..4].iter().all(u8::is_ascii_digit)
        && b[4..].iter().all(u8::is_ascii_alphanumeric)
}

/// Luhn's check digit holds.
pub fn luhn(digits: &str) -> bool {
    let mut sum = 0;
    for (i, c) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(c - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    !digits.is_empty() && sum % 10 == 0
}

/// A payment card number: 13 to 19 digits (spaces or dashes between groups), a major
/// network's prefix and a valid Luhn digit.
pub fn credit_card(v: &str) -> bool {
    let Some(d) = digits_of(v, " -") else {
        return false;
    };
    if !(13..=19).contains(&d.len()) || !luhn(&d) {
        return false;
    }
    let p2: u32 = d[..2].parse().unwrap_or(0);
    let p4: u32 = d[..4].parse().unwrap_or(0);
    d.starts_with('4')
        || (51..=55).contains(&p2)
        || (2221..=2720).contains(&p4)
        || p2 == 34
        || p2 == 37
        || d.starts_with("6011")
        || p2 == 65
        || (644..=649).contains(&(p4 / 10))
        || p2 == 35
        || p2 == 36
        || p2 == 38
        || (300..=305).contains(&(p4 / 10))
        || p2 == 62
}

/// A US Social Security number as printed (`123-45-6789`): area not 000, 666 or 9xx,
/// group not 00, serial not 0000. `plain` also takes nine digits alone.
pub fn ssn(v: &str, plain: bool) -> bool {
    let v = v.trim();
    let b = v.as_bytes();
    let d: String = if b.len() == 11 && b[3] == b'-' && b[6] == b'-' {
        v.chars().filter(|c| *c != '-').collect()
    } else if plain && b.len() == 9 {
        v.to_string()
    } else {
        return false;
    };
    if d.len() != 9 || !d.bytes().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let area = &d[..3];
    area != "000"
        && area != "666"
        && !area.starts_with('9')
        && &d[3..5] != "00"
        && &d[5..] != "0000"
}

/// A Canadian Social Insurance Number: nine digits (grouped 3-3-3 by spaces or dashes, or
/// not), a valid Luhn digit, not starting with 0 or 8.
pub fn sin(v: &str) -> bool {
    let v = v.trim();
    let grouped = {
        let b = v.as_bytes();
        b.len() == 11 && (b[3] == b' ' || b[3] == b'-') && b[7] == b[3]
    };
    if !(grouped || v.len() == 9) {
        return false;
    }
    let Some(d) = digits_of(v, " -") else {
        return false;
    };
    d.len() == 9 && luhn(&d) && !d.starts_with('0') && !d.starts_with('8')
}

/// An IBAN whose check digits and country format hold.
pub fn iban(v: &str) -> bool {
    let v = v.trim();
    v.len() >= 15 && iban::Iban::from_str(v).is_ok()
}

/// A phone number valid by libphonenumber's metadata (international with `+`, else read as a
/// US number). `formatted` asks for a written form (a `+`, spaces, dashes, dots or
/// parentheses): ten bare digits are as likely an order number.
pub fn phone(v: &str, formatted: bool) -> bool {
    let v = v.trim();
    let (body, _ext) = match v.to_ascii_lowercase().find(['x', 'e']) {
        Some(i) => (&v[..i], &v[i..]),
        None => (v, ""),
    };
    let body = body.trim();
    if body.len() < 7
        || body.len() > 24
        || !body
            .chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c))
    {
        return false;
    }
    let digits = body.chars().filter(char::is_ascii_digit).count();
    if !(7..=15).contains(&digits) {
        return false;
    }
    let written = body.contains(['+', ' ', '-', '(', '.']);
    if formatted && !written {
        return false;
    }
    let region = if body.starts_with('+') || body.starts_with("00") {
        None
    } else {
        Some(phonenumber::country::Id::US)
    };
    match phonenumber::parse(region, body) {
        Ok(n) => phonenumber::is_valid(&n),
        Err(_) => false,
    }
}

/// An IP address (v4 or v6, an optional `/mask`).
pub fn ip(v: &str) -> Option<IpAddr> {
    let v = v.trim();
    let addr = v.split_once('/').map_or(v, |(a, _)| a);
    IpAddr::from_str(addr).ok()
}

/// A MAC address: six bytes in hex, `:`- or `-`-separated, or Cisco's `aabb.ccdd.eeff`.
pub fn mac(v: &str) -> bool {
    let v = v.trim();
    let hex = |s: &str, n: usize| s.len() == n && s.chars().all(|c| c.is_ascii_hexdigit());
    let by = |sep: char| {
        let parts: Vec<&str> = v.split(sep).collect();
        parts.len() == 6 && parts.iter().all(|p| hex(p, 2))
    };
    by(':') || by('-') || {
        let parts: Vec<&str> = v.split('.').collect();
        parts.len() == 3 && parts.iter().all(|p| hex(p, 4))
    }
}

/// A web address.
pub fn url(v: &str) -> bool {
    let v = v.trim().to_ascii_lowercase();
    let rest = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://"))
        .or_else(|| v.strip_prefix("ftp://"))
        .or_else(|| v.strip_prefix("www."));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#', ':']).next().unwrap_or("");
        host.contains('.') && !r.contains(char::is_whitespace)
    })
}

/// A secret by its shape alone: a password hash in crypt form (bcrypt, argon2, scrypt,
/// sha-crypt, Django's pbkdf2), a JSON web token, a private key, or a well-known API key.
pub fn secret_shaped(v: &str) -> bool {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(concat!(
            r"^(?:\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}",
            r"|\$argon2(?:id|i|d)\$\S+",
            r"|\$(?:1|5|6|y|7|scrypt)\$\S+",
            r"|(?:pbkdf2_sha256|pbkdf2_sha1|bcrypt_sha256|argon2)\$\S+",
            r"|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
            r"|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*",
            r"|(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}",
            r"|gh[pousr]_[A-Za-z0-9]{30,}",
            r"|xox[abpr]-[A-Za-z0-9-]{10,}",
            r"|AKIA[0-9A-Z]{16}",
            r"|AIza[0-9A-Za-z_-]{35})$"
        ))
        .expect("the secret pattern is valid")
    });
    re.is_match(v.trim())
}

/// Anything a password column may hold: a non-empty value without spaces.
pub fn secret_like(v: &str) -> bool {
    let v = v.trim();
    !v.is_empty() && v.len() <= 512 && !v.contains(char::is_whitespace) || secret_shaped(v)
}

/// A login name: 2 to 64 letters, digits and `._-@`, with a letter.
pub fn username(v: &str) -> bool {
    let v = v.trim();
    (2..=64).contains(&v.len())
        && v.chars().any(char::is_alphabetic)
        && v.chars()
            .all(|c| c.is_alphanumeric() || "._-@+".contains(c))
}

/// Words of a person's name: letters, apostrophes, hyphens and dots.
fn name_words(v: &str) -> Option<Vec<&str>> {
    let words: Vec<&str> = v.split_whitespace().collect();
    let ok = !words.is_empty()
        && words.iter().all(|w| {
            w.chars().any(char::is_alphabetic)
                && w.chars().all(|c| c.is_alphabetic() || "'-.,".contains(c))
        });
    ok.then_some(words)
}

/// A given name of the dictionary.
pub fn first_name(v: &str) -> bool {
    matches!(name_words(v).as_deref(), Some([w]) if dict::is_first_name(w))
        || matches!(name_words(v).as_deref(), Some([a, b]) if dict::is_first_name(a) && dict::is_first_name(b))
}

/// A family name of the dictionary.
pub fn last_name(v: &str) -> bool {
    match name_words(v).as_deref() {
        Some([w]) => dict::is_last_name(w),
        Some([a, b]) => dict::is_last_name(a) && dict::is_last_name(b.trim_start_matches('-')),
        _ => false,
    }
}

/// "First Last", "Last, First", "First M. Last": two to four words, one of them a known given
/// name and another a capitalized word.
pub fn full_name(v: &str) -> bool {
    let Some(words) = name_words(v) else {
        return false;
    };
    if !(2..=4).contains(&words.len()) {
        return false;
    }
    let capital = |w: &str| w.chars().next().is_some_and(char::is_uppercase);
    if !words
        .iter()
        .all(|w| capital(w) || ["de", "van", "von", "da", "del", "la", "le", "di"].contains(w))
    {
        return false;
    }
    let first = words[0].trim_end_matches(',');
    let last = words[words.len() - 1];
    // "Last, First"
    if words[0].ends_with(',') {
        return dict::is_first_name(last) || dict::is_last_name(first);
    }
    dict::is_first_name(first) || dict::is_last_name(last)
}

/// A street and number: `221B Baker Street`, `Hauptstraße 5`, `12 rue de la Paix`.
pub fn street_address(v: &str) -> bool {
    let v = v.trim();
    if v.len() < 5 || v.len() > 200 {
        return false;
    }
    let words: Vec<String> = v
        .split([' ', ','])
        .filter(|w| !w.is_empty())
        .map(|w| w.trim_end_matches('.').to_lowercase())
        .collect();
    if words.len() < 2 {
        return false;
    }
    let has_number = words
        .iter()
        .any(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()));
    let has_street_word = words.iter().any(|w| {
        dict::STREET_WORDS.contains(&w.as_str())
            || dict::STREET_ENDINGS
                .iter()
                .any(|e| w.len() > e.len() && w.ends_with(e))
    });
    let po_box =
        v.to_ascii_lowercase().contains("po box") || v.to_ascii_lowercase().contains("p.o. box");
    (has_number && has_street_word) || po_box
}

/// A place name: one to four capitalized words of letters.
pub fn city(v: &str) -> bool {
    let v = v.trim();
    if v.len() < 2 || v.len() > 60 || v.chars().any(|c| c.is_ascii_digit()) {
        return false;
    }
    v.split([' ', '-']).filter(|w| !w.is_empty()).all(|w| {
        w.chars().all(|c| c.is_alphabetic() || "'.".contains(c))
            && (w.chars().next().is_some_and(char::is_uppercase)
                || [
                    "de", "la", "le", "sur", "am", "an", "der", "upon", "on", "del", "di", "los",
                    "las", "el",
                ]
                .contains(&w))
    }) && v.split_whitespace().count() <= 4
}

/// A postal code of a format only postal codes have: Canada's `A1A 1A1`, the UK's `SW1A 1AA`,
/// the Netherlands' `1234 AB`, the US's ZIP+4.
pub fn postal_code_distinct(v: &str) -> bool {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(concat!(
            r"^(?:[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z] ?\d[ABCEGHJ-NPRSTV-Z]\d",
            r"|(?:GIR ?0AA|[A-PR-UWYZ](?:\d[A-HJKPSTUW\d]?|[A-HK-Y]\d[ABEHMNPRVWXY\d]?) ?\d[ABD-HJLNP-UW-Z]{2})",
            r"|[1-9]\d{3} ?[A-Z]{2}",
            r"|\d{5}-\d{4})$"
        ))
        .expect("the postal pattern is valid")
    });
    re.is_match(&v.trim().to_ascii_uppercase())
}

/// Any postal code, numbers of 4 or 5 digits included (`75001`, `1010`, `10115`).
pub fn postal_code(v: &str) -> bool {
    let t = v.trim();
    postal_code_distinct(t)
        || (matches!(t.len(), 4 | 5) && t.bytes().all(|b| b.is_ascii_digit()))
        || (t.len() == 8
            && t.as_bytes()[5] == b'-'
            && digits_of(t, "-").is_some_and(|d| d.len() == 7))
        || (t.len() == 6 && t.bytes().all(|b| b.is_ascii_digit()))
}

/// The year of a date (`1984-03-01`, `03/01/1984`, `01.03.1984`, with or without a time).
pub fn date_year(v: &str) -> Option<i32> {
    let v = v.trim();
    let head: &str = v.split([' ', 'T']).next().unwrap_or("");
    let parts: Vec<&str> = head.split(['-', '/', '.']).collect();
    if parts.len() != 3
        || !parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let (y, m, d) = if parts[0].len() == 4 {
        (parts[0], parts[1], parts[2])
    } else if parts[2].len() == 4 {
        // Either month/day or day/month: both at most 31 and one at most 12.
        let (a, b): (u32, u32) = (parts[0].parse().ok()?, parts[1].parse().ok()?);
        if a > 12 && b > 12 {
            return None;
        }
        (parts[2], parts[0], parts[1])
    } else {
        return None;
    };
    let (y, m, d): (i32, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    ((1..=31).contains(&m) && (1..=31).contains(&d) && (1800..=2100).contains(&y)).then_some(y)
}

/// Whether the time of day of a timestamp is other than midnight.
pub fn has_time_of_day(v: &str) -> bool {
    let t = v.trim().split([' ', 'T']).nth(1).unwrap_or("");
    !t.is_empty() && !t.starts_with("00:00:00")
}

/// Whether IPv4 addresses look like addresses rather than version numbers: some octet above
/// 31, or a private network's first octet.
pub fn ip_not_version(v: &str) -> bool {
    match ip(v) {
        Some(IpAddr::V4(a)) => {
            let o = a.octets();
            // Netmasks (255.255.255.0) are no one's address.
            o[0] != 255 && (o.iter().any(|x| *x > 31) || [10, 172, 192].contains(&o[0]))
        }
        Some(IpAddr::V6(_)) => true,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validators_take_the_real_thing_and_refuse_lookalikes() {
        assert!(email("ana.lopez+news@example.co.uk"));
        assert!(!email("ana@localhost") && !email("not an email") && !email("@x.com"));
        assert!(credit_card("4111 1111 1111 1111") && credit_card("5500-0000-0000-0004"));
        assert!(!credit_card("4111 1111 1111 1112") && !credit_card("1234567812345670"));
        assert!(
            ssn("123-45-6789", false) && !ssn("666-45-6789", false) && !ssn("123456789", false)
        );
        assert!(sin("130 692 544") && !sin("130 692 545"));
        assert!(iban("DE89 3704 0044 0532 0130 00") && iban("GB82WEST12345698765432"));
        assert!(!iban("DE89 3704 0044 0532 0130 01"));
        assert!(phone("+44 20 7946 0958", true) && phone("(415) 555-2671", true));
        assert!(!phone("4155552671", true) && phone("4155552671", false));
        assert!(!phone("2024-01-15", true) && !phone("1.2.3", true));
        assert!(
            ip("192.168.1.20").is_some() && ip("2001:db8::1/64").is_some() && ip("1.2.3").is_none()
        );
        assert!(!ip_not_version("1.2.3.4") && ip_not_version("81.2.69.160"));
        assert!(mac("00:1A:2b:3c:4d:5e") && mac("001a.2b3c.4d5e") && !mac("00:1A:2b"));
        assert!(url("https://example.com/a?b") && url("www.example.org") && !url("example"));
        assert!(secret_shaped(
            "$2b$12$KIXQJz1ZQeQv9lM1e1xQ9uW7Yb3pYh5n6s8dWq0Xo2Gm4r1Jt5e7a"
        ));
        assert!(
            secret_shaped("AKIAIOSFODNN7EXAMPLE")
                && !secret_shaped("d41d8cd98f00b204e9800998ecf8427e")
        );
        assert!(street_address("221B Baker Street") && street_address("Hauptstraße 5"));
        assert!(street_address("12 rue de la Paix") && !street_address("Blue widget, large"));
        assert!(postal_code_distinct("K1A 0B1") && postal_code_distinct("SW1A 1AA"));
        assert!(postal_code_distinct("1012 AB") && !postal_code_distinct("90210"));
        assert_eq!(date_year("1984-03-01"), Some(1984));
        assert_eq!(date_year("03/01/1984"), Some(1984));
        assert_eq!(date_year("1.2.3"), None);
        assert!(full_name("Maria Garcia") && full_name("Smith, John") && !full_name("Blue Widget"));
        assert!(first_name("Olivia") && last_name("Nguyen") && !first_name("Widget"));
    }
}
