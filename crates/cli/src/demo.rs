//! `mirage demo`: a realistic sample dataset as CSV files, a workspace for it, and a run — the
//! whole job with no server.

use fake::Fake;
use fake::faker::address::en::{CityName, StateAbbr, StreetName, ZipCode};
use fake::faker::internet::en::FreeEmailProvider;
use fake::faker::name::en::{FirstName, LastName};
use mirage_connectors::files::{FileColumn, FileForeignKey, FileTable, SchemaFile, table_file};
use mirage_core::QualifiedName;
use mirage_generators::prf::ValueRng;
use mirage_transform::codec::{CsvReader, csv_escape};
use std::fmt::Write as _;
use std::path::Path;

/// The workspace `mirage demo` writes.
pub const DEMO_WORKSPACE: &str = r#"# mirage demo workspace: CSV files in ./source are de-identified into ./destination.
[source]
url = "files:source"

[destination]
url = "files:destination"

[consistency]
seed_env = "MIRAGE_SEED"

[run]
parallelism = 4
part_size = "64KiB"
unreviewed = "fail"    # a column listed nowhere below stops the run (`mirage scan` suggests)

# Every copied column is listed: `passthrough` is a decision too.
[tables."public.customers".columns]
id = { generator = "integer_key" }          # addresses/orders.customer_id follow (foreign keys)
first_name = { generator = "first_name" }
last_name = { generator = "last_name" }
email = { generator = "email", from = ["first_name", "last_name"] }   # matches the fake names
phone = { generator = "phone" }             # same format, new digits
ssn = { generator = "ssn" }                 # a valid SSN
birth_date = { generator = "date_of_birth", keep_age_band = 10 }
signed_up_at = { generator = "passthrough" }
notes = { generator = "character_scramble" }

[tables."public.addresses".columns]
id = { generator = "passthrough" }
customer_id = { generator = "passthrough" } # follows customers.id (foreign key)
# one fake address per source address: street, city, state and zip agree
street = { generator = "address", part = "street", link = ["street", "city", "state", "zip"] }
city = { generator = "address", part = "city", link = ["street", "city", "state", "zip"] }
state = { generator = "address", part = "state_abbr", link = ["street", "city", "state", "zip"] }
zip = { generator = "address", part = "zip", link = ["street", "city", "state", "zip"] }

[tables."public.orders".columns]
id = { generator = "passthrough" }
customer_id = { generator = "passthrough" } # follows customers.id (foreign key)
ordered_at = { generator = "passthrough" }
status = { generator = "categorical" }      # same mix of statuses, drawn per row
total = { generator = "passthrough" }

[tables."public.payments".columns]
id = { generator = "passthrough" }
order_id = { generator = "passthrough" }
card_number = { generator = "credit_card" } # Luhn-valid, same network and formatting
amount = { generator = "passthrough" }
paid_at = { generator = "passthrough" }

[tables."public.audit_log"]
mode = "truncate"
"#;

fn col(name: &str, ty: &str, not_null: bool) -> FileColumn {
    FileColumn {
        name: name.into(),
        type_name: ty.into(),
        not_null,
    }
}

fn schema() -> SchemaFile {
    let table = |name: &str, columns: Vec<FileColumn>| FileTable {
        schema: "public".into(),
        name: name.into(),
        columns,
        primary_key: vec!["id".into()],
    };
    let fk = |t: &str, c: &str, r: &str| FileForeignKey {
        table: format!("public.{t}"),
        columns: vec![c.into()],
        references: format!("public.{r}"),
        referenced_columns: vec!["id".into()],
    };
    SchemaFile {
        tables: vec![
            table(
                "customers",
                vec![
                    col("id", "integer", true),
                    col("first_name", "varchar(50)", true),
                    col("last_name", "varchar(50)", true),
                    col("email", "varchar(120)", false),
                    col("phone", "text", false),
                    col("ssn", "char(11)", false),
                    col("birth_date", "date", false),
                    col("signed_up_at", "timestamptz", true),
                    col("notes", "text", false),
                ],
            ),
            table(
                "addresses",
                vec![
                    col("id", "integer", true),
                    col("customer_id", "integer", true),
                    col("street", "text", true),
                    col("city", "text", true),
                    col("state", "char(2)", true),
                    col("zip", "varchar(10)", true),
                ],
            ),
            table(
                "orders",
                vec![
                    col("id", "bigint", true),
                    col("customer_id", "integer", true),
                    col("ordered_at", "timestamptz", true),
                    col("status", "text", true),
                    col("total", "numeric(10,2)", true),
                ],
            ),
            table(
                "payments",
                vec![
                    col("id", "bigint", true),
                    col("order_id", "bigint", true),
                    col("card_number", "varchar(19)", true),
                    col("amount", "numeric(10,2)", true),
                    col("paid_at", "timestamptz", false),
                ],
            ),
            table(
                "audit_log",
                vec![col("id", "bigint", true), col("event", "text", true)],
            ),
        ],
        foreign_keys: vec![
            fk("addresses", "customer_id", "customers"),
            fk("orders", "customer_id", "customers"),
            fk("payments", "order_id", "orders"),
        ],
    }
}

const NOTES: &[&str] = &[
    "Prefers email; call only after 5pm",
    "VIP — asked about the \"gold\" plan, twice",
    "Moved from São Paulo, speaks português",
    "Line one\nline two of a multi-line note",
    "Tab\tseparated, comma, and backslash \\ inside",
    "顧客は電話を好む",
    "Allergic to peanuts 🥜; see ticket #4411",
    "",
];

/// CSV writer for one table file.
struct Csv(Vec<u8>);

impl Csv {
    fn row(&mut self, fields: &[Option<String>]) {
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                self.0.push(b',');
            }
            if let Some(v) = f {
                csv_escape(v.as_bytes(), b',', b"", &mut self.0);
            }
        }
        self.0.push(b'\n');
    }
}

fn some(s: impl Into<String>) -> Option<String> {
    Some(s.into())
}

fn digits(rng: &mut ValueRng, n: usize) -> String {
    (0..n)
        .map(|_| (b'0' + rng.below(10) as u8) as char)
        .collect()
}

fn timestamp(rng: &mut ValueRng, year_from: u64) -> String {
    format!(
        "{}-{:02}-{:02} {:02}:{:02}:{:02}+00",
        year_from + rng.below(6),
        1 + rng.below(12),
        1 + rng.below(28),
        rng.below(24),
        rng.below(60),
        rng.below(60)
    )
}

/// Write the sample dataset (`customers` rows and related tables) into `dir`.
pub fn write_dataset(dir: &Path, customers: u64) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let schema = schema();
    std::fs::write(
        dir.join("schema.json"),
        serde_json::to_string_pretty(&schema).map_err(std::io::Error::other)? + "\n",
    )?;
    let mut rng = ValueRng::new(20_261_127);
    let header = |t: &FileTable| {
        let mut c = Csv(Vec::new());
        c.row(&t.columns.iter().map(|c| some(&c.name)).collect::<Vec<_>>());
        c
    };
    let mut files: Vec<Csv> = schema.tables.iter().map(header).collect();
    let (mut order_id, mut payment_id, mut address_id) = (1000u64, 5000u64, 1u64);
    for id in 1..=customers {
        let first: String = if id % 97 == 0 {
            "Zoë".into()
        } else {
            FirstName().fake_with_rng(&mut rng)
        };
        let last: String = if id % 89 == 0 {
            "Núñez-O'Brien".into()
        } else {
            LastName().fake_with_rng(&mut rng)
        };
        let provider: String = FreeEmailProvider().fake_with_rng(&mut rng);
        let email = (id % 13 != 0).then(|| {
            format!(
                "{}.{}{}@{provider}",
                first.to_lowercase(),
                last.to_lowercase(),
                id
            )
            .replace(['\'', ' '], "")
        });
        let phone = (id % 7 != 0).then(|| {
            format!(
                "({}) {}-{}",
                digits(&mut rng, 3),
                digits(&mut rng, 3),
                digits(&mut rng, 4)
            )
        });
        let ssn = (id % 11 != 0).then(|| {
            format!(
                "{}-{}-{}",
                100 + rng.below(565),
                10 + rng.below(89),
                1000 + rng.below(8999)
            )
        });
        let birth = format!(
            "{}-{:02}-{:02}",
            1940 + rng.below(65),
            1 + rng.below(12),
            1 + rng.below(28)
        );
        let note =
            (rng.below(3) == 0).then(|| NOTES[rng.below(NOTES.len() as u64) as usize].to_string());
        files[0].row(&[
            some(id.to_string()),
            some(first),
            some(last),
            email,
            phone,
            ssn,
            some(birth),
            some(timestamp(&mut rng, 2018)),
            note,
        ]);
        for _ in 0..1 + rng.below(2) {
            let street: String = StreetName().fake_with_rng(&mut rng);
            let city: String = CityName().fake_with_rng(&mut rng);
            let state: String = StateAbbr().fake_with_rng(&mut rng);
            let zip: String = ZipCode().fake_with_rng(&mut rng);
            files[1].row(&[
                some(address_id.to_string()),
                some(id.to_string()),
                some(format!("{} {street}", 1 + rng.below(9999))),
                some(city),
                some(state),
                some(zip),
            ]);
            address_id += 1;
        }
        for _ in 0..rng.below(4) {
            order_id += 1;
            let cents = 500 + rng.below(50_000);
            let status = ["placed", "shipped", "delivered", "returned"][rng.below(4) as usize];
            files[2].row(&[
                some(order_id.to_string()),
                some(id.to_string()),
                some(timestamp(&mut rng, 2020)),
                some(status),
                some(format!("{}.{:02}", cents / 100, cents % 100)),
            ]);
            payment_id += 1;
            let card = format!(
                "4{} {} {} {}",
                digits(&mut rng, 3),
                digits(&mut rng, 4),
                digits(&mut rng, 4),
                digits(&mut rng, 4)
            );
            let paid = (status != "placed").then(|| timestamp(&mut rng, 2020));
            files[3].row(&[
                some(payment_id.to_string()),
                some(order_id.to_string()),
                some(card),
                some(format!("{}.{:02}", cents / 100, cents % 100)),
                paid,
            ]);
        }
    }
    for (i, e) in ["login", "export", "password reset"].iter().enumerate() {
        files[4].row(&[some(i.to_string()), some(*e)]);
    }
    for (t, f) in schema.tables.iter().zip(files) {
        std::fs::write(
            table_file(dir, &QualifiedName::new(&t.schema, &t.name)),
            f.0,
        )?;
    }
    Ok(())
}

/// The first `n` rows of a table file as a small text table of the named columns.
pub fn preview(dir: &Path, table: &str, columns: &[&str], n: usize) -> String {
    let Ok(data) = std::fs::read(table_file(dir, &QualifiedName::parse(table))) else {
        return format!("({table}: no file)\n");
    };
    let mut reader = CsvReader::new(&data, b',');
    let mut rows: Vec<Vec<String>> = Vec::new();
    while !reader.at_end() && rows.len() <= n {
        let mut row = Vec::new();
        while let Ok(f) = reader.next_field() {
            let mut v = Vec::new();
            reader.decode(f, &mut v);
            let text = String::from_utf8_lossy(&v).replace('\n', "⏎");
            row.push(if !f.quoted && v.is_empty() {
                "NULL".into()
            } else {
                text
            });
            if f.last {
                break;
            }
        }
        rows.push(row);
    }
    let Some(header) = rows.first().cloned() else {
        return String::new();
    };
    let idx: Vec<usize> = columns
        .iter()
        .filter_map(|c| header.iter().position(|h| h == c))
        .collect();
    let pick = |r: &Vec<String>| {
        idx.iter()
            .map(|i| r.get(*i).cloned().unwrap_or_default())
            .collect::<Vec<_>>()
    };
    let table: Vec<Vec<String>> = rows.iter().map(pick).collect();
    let widths: Vec<usize> = (0..idx.len())
        .map(|i| {
            table
                .iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
                .min(32)
        })
        .collect();
    let mut s = String::new();
    for r in &table {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| {
                let c: String = c.chars().take(*w).collect();
                format!("{c:<w$}")
            })
            .collect();
        let _ = writeln!(s, "  {}", cells.join(" │ "));
    }
    s
}
