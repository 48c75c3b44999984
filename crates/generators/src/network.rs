//! IP addresses, URLs and company names.

use crate::{
    BuildError, Built, ColumnContext, GenerateError, Generator, Prf, no_options, options,
    truncate_chars,
};
use fake::Fake;
use fake::faker::company::en::CompanyName;
use fake::faker::internet::en::DomainSuffix;
use fake::faker::lorem::en::Word;
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

struct IpAddress {
    prf: Prf,
    keep_v4: u32,
    keep_v6: u32,
}

/// Keep the top `keep` bits of `addr`, fill the rest from `random`.
fn mix(addr: u128, random: u128, bits: u32, keep: u32) -> u128 {
    let keep = keep.min(bits);
    let host_mask: u128 = if keep == 0 {
        if bits == 128 {
            u128::MAX
        } else {
            (1u128 << bits) - 1
        }
    } else {
        ((1u128 << (bits - keep)) - 1)
            & if bits == 128 {
                u128::MAX
            } else {
                (1u128 << bits) - 1
            }
    };
    (addr & !host_mask) | (random & host_mask)
}

impl Generator for IpAddress {
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
        let Some(v) = input else { return Ok(false) };
        // PostgreSQL's inet may carry a /mask; keep it.
        let (addr, mask) = match v.split_once('/') {
            Some((a, m)) => (a, Some(m)),
            None => (v, None),
        };
        let ip: IpAddr = addr.trim().parse().map_err(|_| GenerateError::Unparsable {
            expected: "an IP address",
        })?;
        let h = self.prf.hash("network", v.as_bytes());
        let random = u128::from_le_bytes(h[..16].try_into().unwrap_or([0; 16]));
        let new = match ip {
            IpAddr::V4(a) => {
                let mut x = mix(u32::from(a) as u128, random, 32, self.keep_v4) as u32;
                // Avoid 0.x.x.x and the all-ones broadcast for realism.
                if self.keep_v4 < 8 && x >> 24 == 0 {
                    x |= 1 << 24;
                }
                IpAddr::V4(Ipv4Addr::from(x))
            }
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(mix(
                u128::from(a),
                random,
                128,
                self.keep_v6,
            ))),
        };
        out.push_str(&new.to_string());
        if let Some(m) = mask {
            out.push('/');
            out.push_str(m);
        }
        Ok(true)
    }
}

pub(crate) fn ip_address(opts: &toml::Table, _: &ColumnContext, prf: &Prf) -> Built {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Opts {
        keep_prefix_v4: Option<u32>,
        keep_prefix_v6: Option<u32>,
    }
    let o: Opts = options("ip_address", opts)?;
    let (keep_v4, keep_v6) = (o.keep_prefix_v4.unwrap_or(0), o.keep_prefix_v6.unwrap_or(0));
    if keep_v4 > 32 || keep_v6 > 128 {
        return Err(BuildError::BadOption(
            "generator `ip_address`: `keep_prefix_v4` is at most 32 bits and `keep_prefix_v6` at most 128".into(),
        ));
    }
    Ok(Arc::new(IpAddress {
        prf: prf.derive("ip_address"),
        keep_v4,
        keep_v6,
    }))
}

struct Url {
    prf: Prf,
    keep_domain: bool,
    max_chars: Option<u32>,
}

impl Generator for Url {
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
        let Some(v) = input else { return Ok(false) };
        let mut rng = self.prf.rng("text", v.as_bytes());
        let (scheme, rest) = v.split_once("://").unwrap_or(("https", v));
        let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (host, tail) = rest.split_at(host_end);
        let mut url = format!("{scheme}://");
        if self.keep_domain {
            url.push_str(host);
        } else {
            let name: String = Word().fake_with_rng(&mut rng);
            let suffix: String = DomainSuffix().fake_with_rng(&mut rng);
            url.push_str(&format!("www.{name}.{suffix}"));
        }
        // One fake word per path segment; query and fragment dropped (they often hold identifiers).
        let path = tail.split(['?', '#']).next().unwrap_or("");
        for seg in path.split('/').filter(|s| !s.is_empty()) {
            let _ = seg;
            let w: String = Word().fake_with_rng(&mut rng);
            url.push('/');
            url.push_str(&w);
        }
        if path.ends_with('/') {
            url.push('/');
        }
        truncate_chars(&mut url, self.max_chars);
        out.push_str(&url);
        Ok(true)
    }
}

pub(crate) fn url(opts: &toml::Table, ctx: &ColumnContext, prf: &Prf) -> Built {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Opts {
        #[serde(default)]
        keep_domain: bool,
    }
    let o: Opts = options("url", opts)?;
    Ok(Arc::new(Url {
        prf: prf.derive("url"),
        keep_domain: o.keep_domain,
        max_chars: ctx.value_type.max_chars(),
    }))
}

struct Company {
    prf: Prf,
    max_chars: Option<u32>,
}

impl Generator for Company {
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
        let Some(v) = input else { return Ok(false) };
        let mut rng = self.prf.rng("text", v.as_bytes());
        let mut name: String = CompanyName().fake_with_rng(&mut rng);
        truncate_chars(&mut name, self.max_chars);
        out.push_str(&name);
        Ok(true)
    }
}

pub(crate) fn company_name(opts: &toml::Table, ctx: &ColumnContext, prf: &Prf) -> Built {
    no_options("company_name", opts)?;
    Ok(Arc::new(Company {
        prf: prf.derive("company_name"),
        max_chars: ctx.value_type.max_chars(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mirage_core::ValueType;

    fn run(name: &str, opts: toml::Table, v: &str) -> String {
        let ty = ValueType::Text { max_chars: None };
        let ctx = ColumnContext {
            table: "t",
            column: "c",
            value_type: &ty,
            not_null: false,
            columns: &[],
            stats: None,
        };
        let g = crate::build(name, &opts, &ctx, &Prf::from_seed("s")).unwrap();
        let mut s = String::new();
        g.generate(Some(v), &mut s).unwrap();
        s
    }

    #[test]
    fn ips_keep_version_and_prefix() {
        let v4: Ipv4Addr = run("ip_address", toml::Table::new(), "10.1.2.3")
            .parse()
            .unwrap();
        assert_ne!(v4, Ipv4Addr::new(10, 1, 2, 3));
        let mut o = toml::Table::new();
        o.insert("keep_prefix_v4".into(), toml::Value::Integer(24));
        o.insert("keep_prefix_v6".into(), toml::Value::Integer(64));
        let kept: Ipv4Addr = run("ip_address", o.clone(), "192.168.7.42")
            .parse()
            .unwrap();
        assert_eq!(kept.octets()[..3], [192, 168, 7]);
        let v6: Ipv6Addr = run("ip_address", o.clone(), "2001:db8:1:2::5")
            .parse()
            .unwrap();
        assert_eq!(v6.segments()[..4], [0x2001, 0xdb8, 1, 2]);
        assert!(run("ip_address", o, "10.0.0.1/8").ends_with("/8"));
    }

    #[test]
    fn urls_and_companies() {
        let mut o = toml::Table::new();
        o.insert("keep_domain".into(), toml::Value::Boolean(true));
        let u = run(
            "url",
            o,
            "https://shop.example.com/users/4411/orders?token=abc",
        );
        assert!(
            u.starts_with("https://shop.example.com/")
                && !u.contains("4411")
                && !u.contains("token"),
            "{u}"
        );
        assert_eq!(u.matches('/').count(), 5, "{u}");
        let u = run("url", toml::Table::new(), "http://private.corp/x");
        assert!(
            u.starts_with("http://www.") && !u.contains("private.corp"),
            "{u}"
        );
        assert!(!run("company_name", toml::Table::new(), "Acme Widgets").is_empty());
    }
}
