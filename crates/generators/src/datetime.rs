//! Dates and timestamps in PostgreSQL's text form (`2025-03-01`, `2025-03-01 12:30:00.25+00`),
//! split into a day number and a time of day so generators can shift and truncate them, and put
//! back together in the same shape (separator, fraction digits and zone suffix kept).

/// Microseconds in a day.
pub(crate) const DAY_MICROS: i64 = 86_400_000_000;

/// A parsed date or timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// Days since 1970-01-01.
    pub days: i64,
    /// Time of day in microseconds, for timestamps.
    pub micros: Option<i64>,
    /// `' '` or `'T'` between date and time.
    pub separator: char,
    /// Digits of the fractional second in the input (0 when none).
    pub fraction: usize,
    /// Whatever followed the time (zone offset such as `+00` or `-05:30`), kept verbatim.
    pub suffix: String,
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number: (year, month, day).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn digits(s: &str) -> Option<i64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

impl Stamp {
    pub(crate) fn parse(text: &str) -> Option<Stamp> {
        let t = text.trim();
        if t.len() < 10 || !t.is_char_boundary(10) {
            return None;
        }
        let (date, rest) = t.split_at(10);
        let b = date.as_bytes();
        if b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let y = digits(&date[0..4])?;
        let m = digits(&date[5..7])? as u32;
        let d = digits(&date[8..10])? as u32;
        if !(1..=12).contains(&m) || d == 0 || d > 31 {
            return None;
        }
        let days = days_from_civil(y, m, d);
        if civil_from_days(days) != (y, m, d) {
            return None; // 2025-02-30
        }
        if rest.is_empty() {
            return Some(Stamp {
                days,
                micros: None,
                separator: ' ',
                fraction: 0,
                suffix: String::new(),
            });
        }
        let separator = rest.chars().next()?;
        if separator != ' ' && separator != 'T' {
            return None;
        }
        let time = &rest[1..];
        if time.len() < 8 || !time.is_char_boundary(8) {
            return None;
        }
        let (hms, after) = time.split_at(8);
        let hb = hms.as_bytes();
        if hb[2] != b':' || hb[5] != b':' {
            return None;
        }
        let (h, mi, s) = (
            digits(&hms[0..2])?,
            digits(&hms[3..5])?,
            digits(&hms[6..8])?,
        );
        if h > 24 || mi > 59 || s > 60 {
            return None;
        }
        let (fraction, suffix) = match after.strip_prefix('.') {
            Some(f) => {
                let n = f.bytes().take_while(u8::is_ascii_digit).count();
                (n, &f[n..])
            }
            None => (0, after),
        };
        let frac_micros = if fraction > 0 {
            let f = &after[1..1 + fraction.min(6)];
            digits(f)? * 10i64.pow(6 - f.len() as u32)
        } else {
            0
        };
        Some(Stamp {
            days,
            micros: Some(((h * 60 + mi) * 60 + s) * 1_000_000 + frac_micros),
            separator,
            fraction,
            suffix: suffix.to_string(),
        })
    }

    /// Absolute microseconds (days and time of day together).
    pub(crate) fn total_micros(&self) -> i64 {
        self.days * DAY_MICROS + self.micros.unwrap_or(0)
    }

    /// Set from absolute microseconds.
    pub(crate) fn set_total_micros(&mut self, total: i64) {
        self.days = total.div_euclid(DAY_MICROS);
        if self.micros.is_some() {
            self.micros = Some(total.rem_euclid(DAY_MICROS));
        }
    }

    /// Write in the input's shape. Years outside 1..=9999 are clamped into it.
    pub(crate) fn write(&self, out: &mut String) {
        use std::fmt::Write;
        let min = days_from_civil(1, 1, 1);
        let max = days_from_civil(9999, 12, 31);
        let (y, m, d) = civil_from_days(self.days.clamp(min, max));
        let _ = write!(out, "{y:04}-{m:02}-{d:02}");
        if let Some(us) = self.micros {
            let secs = us / 1_000_000;
            let _ = write!(
                out,
                "{}{:02}:{:02}:{:02}",
                self.separator,
                secs / 3600,
                secs / 60 % 60,
                secs % 60
            );
            if self.fraction > 0 {
                let frac = format!("{:06}", us % 1_000_000);
                out.push('.');
                out.push_str(&frac[..self.fraction.min(6)]);
                for _ in 6..self.fraction {
                    out.push('0');
                }
            }
            out.push_str(&self.suffix);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for d in [-800_000, -1, 0, 1, 19_000, 2_900_000] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
    }

    #[test]
    fn parses_and_writes_back_the_same_shape() {
        for s in [
            "2025-03-01",
            "2025-03-01 12:30:00+00",
            "2025-03-01 12:30:00.25-05:30",
            "1999-12-31T23:59:59.123456",
        ] {
            let st = Stamp::parse(s).unwrap();
            let mut out = String::new();
            st.write(&mut out);
            assert_eq!(out, s);
        }
        assert!(Stamp::parse("2025-02-30").is_none());
        assert!(Stamp::parse("yesterday").is_none());
    }
}
