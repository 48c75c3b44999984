//! A planned table's [`TableSpec`]: what a worker far from the CLI needs to transform its files
//! (the spec types live in `mirage_transform::spec`, which the Lambda handler reads).

use crate::plan::TablePlan;
use mirage_core::ValueType;
use mirage_transform::codec::Format;
pub use mirage_transform::spec::{ColumnSpec, ConsistencyKey, FormatSpec, SPEC_VERSION, TableSpec};

/// The spec of a planned table whose files come in `format`.
pub fn of_plan(tp: &TablePlan, format: &Format, byte_lengths: bool) -> TableSpec {
    let columns = tp
        .columns
        .iter()
        .map(|c| {
            let col = tp.table.column(&c.name);
            ColumnSpec {
                name: c.name.clone(),
                type_name: col.map(|x| x.type_name.clone()).unwrap_or_default(),
                value_type: col.map_or(ValueType::Other, |x| x.value_type.clone()),
                not_null: col.is_some_and(|x| x.not_null),
                generator: c.generator_name.clone(),
                options: match serde_json::to_value(&c.options) {
                    Ok(serde_json::Value::Object(m)) => m,
                    _ => serde_json::Map::new(),
                },
                inherited_from: c.inherited_from.clone(),
                stats: c.stats.clone(),
            }
        })
        .collect();
    TableSpec {
        version: SPEC_VERSION,
        table: tp.table.name.to_string(),
        format: FormatSpec::of(format),
        byte_lengths,
        columns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Plan, Stats};
    use mirage_core::schema::{Catalog, Column, QualifiedName, Table, TableKind};
    use mirage_generators::samples::{sample, sample_stats};
    use mirage_transform::PartTransform;

    /// Options that let a generator build in the test table (some read other columns).
    fn options(name: &str) -> String {
        match name {
            "template" => "template = \"{first} {last}\"".into(),
            "event_timestamps" => "anchor = \"first\"\nmax_days = 30".into(),
            _ => sample(name, 0).1.to_string(),
        }
    }

    fn column(name: &str, value_type: ValueType) -> Column {
        Column {
            name: name.into(),
            type_name: "text".into(),
            value_type,
            not_null: false,
            generated: false,
            identity: false,
        }
    }

    /// For every generator, on PostgreSQL text and on Redshift CSV (byte lengths): the plan's
    /// transform and the one built from the spec after a trip through JSON give the same bytes.
    #[test]
    fn a_spec_through_json_transforms_exactly_like_the_plan_for_every_generator() {
        let text = ValueType::Text { max_chars: None };
        for (format, byte_lengths) in [
            (Format::PgText, false),
            (
                Format::Csv {
                    delimiter: b',',
                    null: b"__MIRAGE_NULL__".to_vec(),
                },
                true,
            ),
        ] {
            for info in mirage_generators::catalogue() {
                let (ty, _, _) = sample(info.name, 0);
                let mut table = Table {
                    name: QualifiedName::new("public", "t"),
                    kind: TableKind::Table,
                    columns: vec![column("first", text.clone()), column("last", text.clone())],
                    primary_key: Vec::new(),
                    owner: String::new(),
                    row_estimate: None,
                    byte_estimate: None,
                };
                table.columns.push(column("c", ty.clone()));
                let catalog = Catalog {
                    schemas: vec!["public".into()],
                    tables: vec![table],
                    foreign_keys: Vec::new(),
                    byte_lengths,
                    not_copied: Vec::new(),
                };
                let options = options(info.name);
                let extra: Vec<&str> = options.lines().filter(|l| !l.trim().is_empty()).collect();
                let entry = if extra.is_empty() {
                    format!("c = {{ generator = \"{}\" }}", info.name)
                } else {
                    format!(
                        "c = {{ generator = \"{}\", {} }}",
                        info.name,
                        extra.join(", ")
                    )
                };
                let ws_text = format!(
                    "[source]\nurl = \"files:./s\"\n[destination]\nurl = \"files:./d\"\n\
                     [tables.\"public.t\".columns]\n{entry}\n"
                );
                let ws = mirage_core::Workspace::parse("w.toml".as_ref(), &ws_text)
                    .unwrap_or_else(|e| panic!("{}: {e}\n{ws_text}", info.name));
                let mut stats = Stats::new();
                if let Some(s) = sample_stats(info.name) {
                    stats.insert(("public.t".into(), "c".into()), s);
                }
                let review = crate::review::Review::unchanged(&ws);
                let plan = Plan::build(&ws, catalog, "seed", &stats, &review)
                    .unwrap_or_else(|e| panic!("{}: {e:?}", info.name));
                let tp = &plan.tables[0];
                assert_eq!(tp.columns[2].generator_name, info.name);
                let live = PartTransform::new(
                    format.clone(),
                    tp.columns
                        .iter()
                        .map(|c| (c.name.clone(), c.generator.clone()))
                        .collect(),
                );
                let json = of_plan(tp, &format, byte_lengths).to_json();
                assert!(
                    !json.contains("seed"),
                    "no key material in the spec: {json}"
                );
                let spec = TableSpec::from_json(&json).expect("spec parses");
                let key = ConsistencyKey::from_secret_text(
                    &ConsistencyKey::from_seed("seed").to_secret_text(),
                )
                .expect("key text");
                let shipped = spec
                    .transform(&key)
                    .unwrap_or_else(|e| panic!("{}: {e}", info.name));
                let mut input = Vec::new();
                for i in 0..200 {
                    let v = sample(info.name, i).2;
                    let fields = [format!("Ada{i}"), format!("Lovelace{i}"), v];
                    match &format {
                        Format::PgText => {
                            input.extend_from_slice(fields.join("\t").as_bytes());
                        }
                        Format::Csv { .. } => {
                            let quoted: Vec<String> = fields
                                .iter()
                                .map(|f| format!("\"{}\"", f.replace('"', "\"\"")))
                                .collect();
                            input.extend_from_slice(quoted.join(",").as_bytes());
                        }
                    }
                    input.push(b'\n');
                }
                let (mut a, mut b) = (Vec::new(), Vec::new());
                let ra = live.apply(&input, &mut a).map(|s| s.rows);
                let rb = shipped.apply(&input, &mut b).map(|s| s.rows);
                assert_eq!(ra, rb, "{}", info.name);
                assert_eq!(a, b, "{}: spec and plan transforms differ", info.name);
                if info.name != "passthrough" && ra.is_ok() {
                    assert_ne!(a, input, "{} changed nothing", info.name);
                }
            }
        }
    }
}
