//! Sample configurations and inputs for every generator, shared by the tests and the benchmark.

use mirage_core::{ColumnStats, ValueType};

/// A sample configuration and input for a generator.
pub fn sample(name: &str, i: usize) -> (ValueType, &'static str, String) {
    let text = ValueType::Text { max_chars: None };
    match name {
        "integer_key" | "random_integer" | "sequential_integer" => {
            (ValueType::BigInt, "", (i * 7919).to_string())
        }
        "noise" => (
            ValueType::Numeric {
                precision: Some(12),
                scale: Some(2),
            },
            "scale = 0.1\nkind = \"multiplicative\"",
            format!("{}.{:02}", i, i % 100),
        ),
        "random_double" => (ValueType::Double, "", i.to_string()),
        "random_boolean" => (ValueType::Boolean, "", i.to_string()),
        "uuid_key" | "random_uuid" => (
            ValueType::Uuid,
            "",
            format!("{:08x}-0000-4000-8000-{:012x}", i, i * 31),
        ),
        "mac_address" => (
            text,
            "",
            format!(
                "08:00:2b:{:02x}:{:02x}:{:02x}",
                i % 256,
                (i / 256) % 256,
                (i / 65536) % 256
            ),
        ),
        "numeric_string_key" => (text, "", format!("{:09}", i * 13)),
        "alphanumeric_key" | "ascii_key" => (text, "", format!("AB{i:07}xy")),
        "constant" => (text, "value = \"redacted\"", format!("v{i}")),
        "address" | "hipaa_address" => (text, "part = \"zip\"", format!("{:05}", i % 100_000)),
        "ip_address" => (
            ValueType::Inet,
            "",
            format!("10.{}.{}.{}", i % 256, (i / 256) % 256, (i / 65536) % 256),
        ),
        "url" => (
            text,
            "",
            format!("https://shop.example.com/users/{i}/orders"),
        ),
        "ssn" => (text, "", format!("123-45-{:04}", i % 10_000)),
        "sin" => (text, "", format!("046 454 {:03}", i % 1000)),
        "credit_card" => (
            text,
            "",
            format!("4111 1111 {:04} {:04}", i % 10_000, (i / 10_000) % 10_000),
        ),
        "iban" => (text, "", "DE89 3704 0044 0532 0130 00".to_string()),
        "phone" => (text, "", format!("(415) 555-{:04}", i % 10_000)),
        "email" => (text, "", format!("user{i}@example.com")),
        "date_of_birth" | "date_truncate" | "timestamp_shift" | "random_timestamp" => (
            ValueType::Date,
            if name == "date_truncate" {
                "unit = \"month\""
            } else {
                ""
            },
            format!("{}-{:02}-{:02}", 1950 + i % 60, 1 + i % 12, 1 + i % 28),
        ),
        "event_timestamps" => (ValueType::Date, "", String::new()),
        "regex_mask" => (
            text,
            "pattern = '^(\\d{3})-(\\d{4})$'\ngroups = [\"passthrough\", { generator = \"numeric_string_key\" }]",
            format!("555-{:04}", i % 10_000),
        ),
        "find_replace" => (
            text,
            "find = \"secret\"\nreplace = \"***\"",
            format!("a secret number {i}"),
        ),
        "template" => (text, "", format!("display {i}")),
        "json_mask" => (
            ValueType::Jsonb,
            "paths = { \"$.name\" = { generator = \"full_name\" } }",
            format!("{{\"name\": \"Person {i}\", \"n\": {i}}}"),
        ),
        "array" => (
            ValueType::Array(Box::new(text)),
            "element = { generator = \"character_scramble\" }",
            format!("{{a{i},b{i},c}}"),
        ),
        "categorical" => (text, "", format!("tier {}", i % 3)),
        "continuous" => (
            ValueType::Numeric {
                precision: Some(10),
                scale: Some(2),
            },
            "",
            format!("{}.00", i % 1000),
        ),
        "xml_mask" => (
            text,
            "paths = { \"/p/name\" = { generator = \"full_name\" } }",
            format!("<p id=\"{i}\"><name>Person {i}</name></p>"),
        ),
        "conditional" => (
            text,
            "when = { matches = \"7$\" }\nthen = { generator = \"hash\" }",
            format!("value {i}"),
        ),
        _ => (text, "", format!("Sample value {i}")),
    }
}

/// The column facts a statistical generator's sample needs.
pub fn sample_stats(name: &str) -> Option<ColumnStats> {
    match name {
        "categorical" => Some(ColumnStats {
            categories: vec![
                ("tier 0".into(), 50),
                ("tier 1".into(), 30),
                ("tier 2".into(), 20),
            ],
            quantiles: vec![],
        }),
        "continuous" => Some(ColumnStats {
            categories: vec![],
            quantiles: (0..=1000).map(|i| format!("{}.00", i)).collect(),
        }),
        _ => None,
    }
}
