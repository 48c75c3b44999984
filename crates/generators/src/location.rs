//! Addresses. Every part of an address (street, city, state, zip …) is drawn from one consistent
//! fake address, and columns can be **linked**: with `link = ["city", "state", "zip"]` on each of
//! those columns, the fake address is derived from the row's source values of all three, so the
//! city, state and zip written for a row belong to the same address.

use crate::prf::ValueRng;
use crate::{
    BuildError, Built, ColumnContext, GenerateError, Prf, Row, RowGenerator, RowRead, options,
    truncate_chars,
};
use fake::Fake;
use fake::faker::address::en::{CityName, CountryCode, CountryName, StreetName};
use fake::locales::{Data, EN};
use serde::Deserialize;
use std::fmt::Write;
use std::sync::Arc;

/// Which part of an address a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Part {
    Street,
    BuildingNumber,
    City,
    State,
    StateAbbr,
    Zip,
    Country,
    CountryCode,
    Latitude,
    Longitude,
    FullAddress,
}

const PARTS: &str = "street, building_number, city, state, state_abbr, zip, country, country_code, latitude, longitude, full_address";

/// One fake address, drawn in a fixed order so every part agrees.
struct Address {
    building: u64,
    street: String,
    city: String,
    state: usize,
    zip: u32,
    country: String,
    country_code: String,
    lat: f64,
    lon: f64,
}

impl Address {
    fn draw(rng: &mut ValueRng) -> Address {
        let building = 1 + rng.below(9999);
        let name: String = StreetName().fake_with_rng(rng);
        let city: String = CityName().fake_with_rng(rng);
        let state = rng.below(EN::ADDRESS_STATE.len() as u64) as usize;
        let zip = 501 + rng.below(99_450) as u32;
        let country: String = CountryName().fake_with_rng(rng);
        let country_code: String = CountryCode().fake_with_rng(rng);
        // Continental US box, 5 decimals.
        let lat = 25.0 + rng.below(2_400_000) as f64 / 100_000.0;
        let lon = -124.0 + rng.below(5_700_000) as f64 / 100_000.0;
        Address {
            building,
            // The name already ends with a suffix ("Ericka Bypass").
            street: name,
            city,
            state,
            zip,
            country,
            country_code,
            lat,
            lon,
        }
    }

    fn write(&self, part: Part, out: &mut String) {
        let _ = match part {
            Part::Street => write!(out, "{} {}", self.building, self.street),
            Part::BuildingNumber => write!(out, "{}", self.building),
            Part::City => write!(out, "{}", self.city),
            Part::State => write!(out, "{}", EN::ADDRESS_STATE[self.state]),
            Part::StateAbbr => write!(out, "{}", EN::ADDRESS_STATE_ABBR[self.state]),
            Part::Zip => write!(out, "{:05}", self.zip),
            Part::Country => write!(out, "{}", self.country),
            Part::CountryCode => write!(out, "{}", self.country_code),
            Part::Latitude => write!(out, "{:.5}", self.lat),
            Part::Longitude => write!(out, "{:.5}", self.lon),
            Part::FullAddress => write!(
                out,
                "{} {}, {}, {} {:05}",
                self.building,
                self.street,
                self.city,
                EN::ADDRESS_STATE_ABBR[self.state],
                self.zip
            ),
        };
    }
}

/// The 3-digit ZIP prefixes of areas with 20,000 people or fewer, which HIPAA Safe Harbor
/// replaces with 000 (U.S. Census 2000, as listed in the HHS de-identification guidance).
const RESTRICTED_ZIP3: [&str; 17] = [
    "036", "059", "063", "102", "203", "556", "692", "790", "821", "823", "830", "831", "878",
    "879", "884", "890", "893",
];

struct AddressGenerator {
    prf: Prf,
    part: Part,
    link: Vec<RowRead>,
    hipaa: bool,
    max_chars: Option<u32>,
}

impl RowGenerator for AddressGenerator {
    fn generate_in_row(
        &self,
        input: Option<&str>,
        row: &dyn Row,
        out: &mut String,
    ) -> Result<bool, GenerateError> {
        let Some(v) = input else { return Ok(false) };
        if self.hipaa && self.part == Part::Zip {
            let digits: String = v.chars().filter(char::is_ascii_digit).take(3).collect();
            if digits.len() < 3 || RESTRICTED_ZIP3.contains(&digits.as_str()) {
                out.push_str("00000");
            } else {
                out.push_str(&digits);
                out.push_str("00");
            }
            return Ok(true);
        }
        if self.hipaa
            && matches!(
                self.part,
                Part::State | Part::StateAbbr | Part::Country | Part::CountryCode
            )
        {
            // Safe Harbor allows the state and the country.
            out.push_str(v);
            return Ok(true);
        }
        let mut seed = Vec::with_capacity(64);
        if self.link.is_empty() {
            seed.extend_from_slice(v.as_bytes());
        } else {
            for r in &self.link {
                match row.original(r.column) {
                    Some(x) => {
                        seed.push(1);
                        seed.extend_from_slice(x.as_bytes());
                    }
                    None => seed.push(0),
                }
                seed.push(0x1f);
            }
        }
        let mut rng = self.prf.rng("address", &seed);
        let start = out.len();
        Address::draw(&mut rng).write(self.part, out);
        let mut written = out.split_off(start);
        truncate_chars(&mut written, self.max_chars);
        out.push_str(&written);
        Ok(true)
    }

    fn reads(&self) -> &[RowRead] {
        &self.link
    }
}

pub(crate) fn address(
    generator: &'static str,
    hipaa: bool,
    opts: &toml::Table,
    ctx: &ColumnContext,
    prf: &Prf,
) -> Built {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Opts {
        part: Part,
        #[serde(default)]
        link: Vec<String>,
    }
    let o: Opts = options(generator, opts).map_err(|e| match e {
        BuildError::BadOption(m) if m.contains("part") => {
            BuildError::BadOption(format!("{m}; `part` is one of: {PARTS}"))
        }
        other => other,
    })?;
    let link = o
        .link
        .iter()
        .map(|c| {
            ctx.column_index(generator, c).map(|column| RowRead {
                column,
                generated: false,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Linked columns share one address: the key must not depend on the part.
    Ok(Arc::new(AddressGenerator {
        prf: prf.derive("address"),
        part: o.part,
        link,
        hipaa,
        max_chars: ctx.value_type.max_chars(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mirage_core::ValueType;

    struct R(Vec<Option<&'static str>>);
    impl Row for R {
        fn original(&self, i: usize) -> Option<&str> {
            self.0.get(i).copied().flatten()
        }
        fn generated(&self, _: usize) -> Option<&str> {
            None
        }
    }

    #[test]
    fn linked_parts_come_from_one_address() {
        let text = ValueType::Text { max_chars: None };
        let columns: Vec<(String, ValueType)> = ["city", "state", "zip"]
            .iter()
            .map(|c| (c.to_string(), text.clone()))
            .collect();
        let prf = Prf::from_seed("s");
        let make = |part: &str| {
            let mut o = toml::Table::new();
            o.insert("part".into(), part.into());
            o.insert(
                "link".into(),
                toml::Value::Array(vec!["city".into(), "state".into(), "zip".into()]),
            );
            let ctx = ColumnContext {
                table: "t",
                column: part,
                value_type: &text,
                not_null: false,
                columns: &columns,
                stats: None,
            };
            crate::build("address", &o, &ctx, &prf).unwrap()
        };
        let (full, state) = (make("full_address"), make("state_abbr"));
        let row = R(vec![Some("Austin"), Some("TX"), Some("78701")]);
        let (mut a, mut s) = (String::new(), String::new());
        full.generate_in_row(Some("x"), &row, &mut a).unwrap();
        state.generate_in_row(Some("TX"), &row, &mut s).unwrap();
        assert!(a.contains(&format!(", {s} ")), "{a} / {s}");
        assert!(EN::ADDRESS_STATE_ABBR.contains(&s.as_str()));
    }

    #[test]
    fn hipaa_zip_keeps_three_digits_or_zeroes() {
        let text = ValueType::Text { max_chars: None };
        let ctx = ColumnContext {
            table: "t",
            column: "zip",
            value_type: &text,
            not_null: false,
            columns: &[],
            stats: None,
        };
        let mut o = toml::Table::new();
        o.insert("part".into(), "zip".into());
        let g = crate::build("hipaa_address", &o, &ctx, &Prf::from_seed("s")).unwrap();
        let run = |v: &str| {
            let mut s = String::new();
            g.generate(Some(v), &mut s).unwrap();
            s
        };
        assert_eq!(run("94110-1234"), "94100");
        assert_eq!(run("03601"), "00000");
        let mut bad = toml::Table::new();
        bad.insert("part".into(), "town".into());
        let e = crate::build("address", &bad, &ctx, &Prf::from_seed("s"))
            .err()
            .unwrap();
        assert!(e.to_string().contains("state_abbr"), "{e}");
    }
}
