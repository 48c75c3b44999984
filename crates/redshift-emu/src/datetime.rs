//! COPY's `DATEFORMAT` and `TIMEFORMAT`: `'auto'` (PostgreSQL's own parser, which reads what
//! Redshift's auto-recognition reads for ISO-like input), `'epochsecs'`, `'epochmillisecs'` and
//! format strings (`YYYY MM MON DD HH24 HH12 HH MI SS MS US FF1-6 AM PM`, other characters taken
//! literally), rewritten to ISO 8601 text PostgreSQL reads.

/// How a date or time column's text is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    /// `'auto'` or no format given: the text goes to PostgreSQL unchanged.
    Auto,
    /// `'epochsecs'`: seconds since 1970-01-01 UTC, fractions allowed.
    EpochSecs,
    /// `'epochmillisecs'`: milliseconds since 1970-01-01 UTC.
    EpochMillis,
    /// A format string such as `'MM/DD/YYYY HH24:MI:SS'`.
    Pattern(String),
}

impl Reading {
    /// The reading a `DATEFORMAT` or `TIMEFORMAT` value asks for (`None`: the option was not
    /// given); keywords are case-insensitive.
    pub fn of(spec: Option<&str>) -> Reading {
        match spec.map(str::trim) {
            None => Reading::Auto,
            Some(s) if s.eq_ignore_ascii_case("auto") => Reading::Auto,
            Some(s) if s.eq_ignore_ascii_case("epochsecs") => Reading::EpochSecs,
            Some(s) if s.eq_ignore_ascii_case("epochmillisecs") => Reading::EpochMillis,
            Some(s) => Reading::Pattern(s.to_string()),
        }
    }

    /// The value as ISO text, or `None` when it does not match (the load then fails on it).
    pub fn to_iso(&self, v: &str) -> Option<String> {
        match self {
            Reading::Auto => Some(v.to_string()),
            Reading::EpochSecs | Reading::EpochMillis => {
                let (n, scale) = if *self == Reading::EpochSecs {
                    (v.trim().parse::<f64>().ok()?, 1.0)
                } else {
                    (v.trim().parse::<f64>().ok()?, 1000.0)
                };
                let micros = (n / scale * 1e6).round() as i64;
                Some(iso(micros))
            }
            Reading::Pattern(p) => pattern(p, v),
        }
    }
}

/// Microseconds since 1970 → `YYYY-MM-DD HH:MM:SS.ffffff`.
fn iso(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{frac:06}",
        tod / 3600,
        tod / 60 % 60,
        tod % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

fn pattern(p: &str, v: &str) -> Option<String> {
    let pu = p.to_ascii_uppercase();
    let (mut pi, mut vi) = (0usize, 0usize);
    let vb = v.as_bytes();
    let (mut year, mut month, mut day) = (1970i64, 1i64, 1i64);
    let (mut hour, mut minute, mut second, mut micros) = (0i64, 0i64, 0i64, 0i64);
    let mut pm: Option<bool> = None;
    let digits = |vi: &mut usize, max: usize| -> Option<(i64, usize)> {
        let start = *vi;
        while *vi < vb.len() && *vi - start < max && vb[*vi].is_ascii_digit() {
            *vi += 1;
        }
        (*vi > start).then(|| (v[start..*vi].parse().ok().unwrap_or(0), *vi - start))
    };
    while pi < pu.len() {
        let rest = &pu[pi..];
        let token = [
            "YYYY", "HH24", "HH12", "MON", "FF1", "FF2", "FF3", "FF4", "FF5", "FF6", "YY", "MM",
            "DD", "HH", "MI", "SS", "MS", "US", "AM", "PM",
        ]
        .into_iter()
        .find(|t| rest.starts_with(t));
        match token {
            Some(t) => {
                pi += t.len();
                match t {
                    "YYYY" => year = digits(&mut vi, 4)?.0,
                    "YY" => year = 2000 + digits(&mut vi, 2)?.0,
                    "MM" => month = digits(&mut vi, 2)?.0,
                    "MON" => {
                        let name = v.get(vi..vi + 3)?.to_ascii_uppercase();
                        month = MONTHS.iter().position(|m| *m == name)? as i64 + 1;
                        vi += 3;
                    }
                    "DD" => day = digits(&mut vi, 2)?.0,
                    "HH24" | "HH12" | "HH" => hour = digits(&mut vi, 2)?.0,
                    "MI" => minute = digits(&mut vi, 2)?.0,
                    "SS" => second = digits(&mut vi, 2)?.0,
                    "MS" => micros = digits(&mut vi, 3)?.0 * 1000,
                    "AM" | "PM" => {
                        let w = v.get(vi..vi + 2)?.to_ascii_uppercase();
                        pm = Some(w == "PM");
                        vi += 2;
                    }
                    _ => {
                        // US, FF1..FF6: up to six fractional digits.
                        let (n, len) = digits(&mut vi, 6)?;
                        micros = n * 10i64.pow(6 - len as u32);
                    }
                }
            }
            None => {
                let c = rest.chars().next()?;
                let got = v[vi..].chars().next()?;
                if !got.eq_ignore_ascii_case(&c) {
                    return None;
                }
                pi += c.len_utf8();
                vi += got.len_utf8();
            }
        }
    }
    if vi != vb.len() {
        return None;
    }
    match pm {
        Some(true) if hour < 12 => hour += 12,
        Some(false) if hour == 12 => hour = 0,
        _ => {}
    }
    Some(format!(
        "{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}.{micros:06}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_epochs_and_patterns() {
        assert_eq!(
            Reading::of(Some("epochsecs"))
                .to_iso("1700000000")
                .as_deref(),
            Some("2023-11-14 22:13:20.000000")
        );
        assert_eq!(
            Reading::of(Some("epochmillisecs")).to_iso("-1").as_deref(),
            Some("1969-12-31 23:59:59.999000")
        );
        assert_eq!(
            Reading::of(Some("MM/DD/YYYY HH12:MI:SS AM"))
                .to_iso("02/29/2024 01:02:03 PM")
                .as_deref(),
            Some("2024-02-29 13:02:03.000000")
        );
        assert_eq!(
            Reading::of(Some("DD-MON-YY"))
                .to_iso("07-jun-24")
                .as_deref(),
            Some("2024-06-07 00:00:00.000000")
        );
        assert_eq!(
            Reading::of(Some("YYYYMMDD HH24MISS.US"))
                .to_iso("20240102 030405.12")
                .as_deref(),
            Some("2024-01-02 03:04:05.120000")
        );
        assert_eq!(Reading::of(Some("YYYY-MM-DD")).to_iso("2024/01/02"), None);
        assert_eq!(Reading::of(Some("auto")).to_iso("x").as_deref(), Some("x"));
    }
}
