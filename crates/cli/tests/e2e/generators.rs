//! The generator catalogue end to end: every family on real PostgreSQL types, through the plan
//! (foreign keys, statistics pre-pass, row-aware generators) and the load (types, constraints).

use crate::util::{Dir, cluster, mirage, workspace};

const SCHEMA: &str = r#"
CREATE TABLE accounts (
    account_uuid uuid PRIMARY KEY,
    account_no varchar(12) UNIQUE NOT NULL,
    code text UNIQUE,
    first_name text, last_name text, email text, display text,
    phone text, ssn char(11), card varchar(19), iban text, birth date,
    city text, state text, zip text,
    ip inet, mac macaddr, homepage text, employer text,
    tier text, balance numeric(12, 2), score double precision,
    profile jsonb, aliases text[],
    country text, tax_id text,
    opened_at timestamptz, closed_at timestamptz
);
CREATE TABLE sessions (
    id bigserial PRIMARY KEY,
    account_uuid uuid REFERENCES accounts (account_uuid),
    started timestamptz
);
INSERT INTO accounts
SELECT md5(i::text)::uuid,
       lpad(i::text, 12, '0'),
       'AB' || lpad(i::text, 6, '0') || 'z',
       (ARRAY['Ada', 'Grace', 'Alan'])[1 + i % 3], (ARRAY['Lovelace', 'Hopper', 'Turing'])[1 + i % 3],
       'user' || i || '@corp.example', 'x',
       '(415) 555-' || lpad((i % 10000)::text, 4, '0'),
       '123-45-' || lpad((i % 10000)::text, 4, '0'),
       '4111-1111-1111-' || lpad((i % 10000)::text, 4, '0'),
       'DE89 3704 0044 0532 0130 00',
       DATE '1960-01-01' + i,
       'Austin', 'TX', '78701',
       ('10.0.' || (i % 256) || '.' || (i / 256 % 256))::inet,
       ('08:00:2b:00:' || lpad(to_hex(i % 256), 2, '0') || ':' || lpad(to_hex(i / 256 % 256), 2, '0'))::macaddr,
       'https://corp.example/u/' || i, 'Acme ' || i,
       (ARRAY['gold', 'silver', 'silver', 'bronze', 'bronze', 'bronze'])[1 + i % 6],
       (i % 1000) * 1.5, i / 7.0,
       jsonb_build_object('name', 'Person ' || i, 'contacts', jsonb_build_array(jsonb_build_object('email', 'p' || i || '@x.org', 'kind', 'home')), 'n', i),
       ARRAY['alias' || i, 'nick ' || i],
       CASE WHEN i % 2 = 0 THEN 'US' ELSE 'CA' END, 'T-' || i,
       '2025-01-01 00:00:00+00'::timestamptz + i * interval '1 hour',
       '2025-01-03 06:30:00+00'::timestamptz + i * interval '1 hour'
FROM generate_series(1, 3000) i;
INSERT INTO sessions (account_uuid, started)
SELECT md5((1 + k % 3000)::text)::uuid, '2025-06-01'::timestamptz + k * interval '1 minute'
FROM generate_series(1, 5000) k;
"#;

const TABLES: &str = r#"
[tables."public.accounts".columns]
account_uuid = { generator = "uuid_key" }
account_no = { generator = "numeric_string_key" }
code = { generator = "alphanumeric_key" }
first_name = { generator = "first_name" }
last_name = { generator = "last_name" }
email = { generator = "email", from = ["first_name", "last_name"] }
display = { generator = "template", template = "{first_name} {last_name}" }
phone = { generator = "phone", keep_area_code = true }
ssn = { generator = "ssn" }
card = { generator = "credit_card" }
iban = { generator = "iban" }
birth = { generator = "date_of_birth", keep_age_band = 10 }
city = { generator = "address", part = "city", link = ["city", "state", "zip"] }
state = { generator = "address", part = "state_abbr", link = ["city", "state", "zip"] }
zip = { generator = "address", part = "zip", link = ["city", "state", "zip"] }
ip = { generator = "ip_address", keep_prefix_v4 = 16 }
mac = { generator = "mac_address" }
homepage = { generator = "url", keep_domain = true }
employer = { generator = "company_name" }
tier = { generator = "categorical" }
balance = { generator = "continuous" }
score = { generator = "noise", kind = "multiplicative", scale = 0.05 }
profile = { generator = "json_mask", paths = { "$.name" = { generator = "full_name" }, "$.contacts[*].email" = { generator = "email" } } }
aliases = { generator = "array", element = { generator = "character_scramble" } }
tax_id = { generator = "conditional", when = { column = "country", equals = "US" }, then = { generator = "hash", length = 10 }, else = { generator = "null" } }
opened_at = { generator = "event_timestamps", anchor = "account_uuid", max_days = 60 }
closed_at = { generator = "event_timestamps", anchor = "account_uuid", max_days = 60 }
"#;

#[test]
fn the_catalogue_runs_on_postgres_types_and_keeps_its_promises() {
    let pg = cluster();
    pg.psql("src", SCHEMA).expect("schema and data");
    let dir = Dir::new();
    let ws = dir.write("workspace.toml", &workspace(&pg, TABLES));
    let out = mirage(
        &["run", "-w", ws.to_str().unwrap(), "--no-progress"],
        "gen-seed",
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let q = |sql: &str| pg.psql("dst", sql).unwrap();

    // Keys stay unique (the primary and unique keys were created after the load) and the
    // foreign key from sessions still joins through the remapped UUIDs.
    assert_eq!(q("SELECT count(*) FROM accounts"), "3000");
    assert_eq!(
        q("SELECT count(*) FROM sessions s JOIN accounts a USING (account_uuid)"),
        "5000"
    );
    assert_eq!(
        q(
            "SELECT count(*) FROM accounts a JOIN (SELECT md5(i::text)::uuid u FROM generate_series(1, 3000) i) s ON s.u = a.account_uuid"
        ),
        "0",
        "no source UUID survives"
    );
    assert_eq!(
        q(
            "SELECT count(*) FROM accounts WHERE account_no !~ '^[0-9]{12}$' OR code !~ '^[A-Z]{2}[0-9]{6}[a-z]$'"
        ),
        "0"
    );

    // Row-aware generators: email and display follow the generated names.
    assert_eq!(
        q("SELECT count(*) FROM accounts WHERE display <> first_name || ' ' || last_name"),
        "0"
    );
    assert_eq!(
        q(
            "SELECT count(*) FROM accounts WHERE email NOT LIKE lower(regexp_replace(first_name, '[^A-Za-z]', '', 'g')) || '%'"
        ),
        "0"
    );
    // Linked address parts agree: one state per (city, zip) pair, and every state is a US state.
    assert_eq!(
        q("SELECT count(*) FROM accounts WHERE length(state) <> 2 OR zip !~ '^[0-9]{5}$'"),
        "0"
    );
    assert_eq!(
        q("SELECT count(DISTINCT (city, state, zip)) FROM accounts"),
        "1",
        "one source address ⇒ one fake address"
    );

    // Format validity.
    assert_eq!(
        q("SELECT count(*) FROM accounts WHERE phone !~ '^\\(415\\) [2-9][0-9]{2}-[0-9]{4}$'"),
        "0"
    );
    assert_eq!(
        q(
            "SELECT count(*) FROM accounts WHERE ssn !~ '^[0-9]{3}-[0-9]{2}-[0-9]{4}$' OR left(ssn, 3) IN ('000', '666') OR left(ssn, 1) = '9'"
        ),
        "0"
    );
    assert_eq!(
        q("SELECT count(*) FROM accounts WHERE card !~ '^4[0-9]{3}-[0-9]{4}-[0-9]{4}-[0-9]{4}$'"),
        "0"
    );
    assert_eq!(
        q("SELECT count(*) FROM accounts WHERE ip << '10.0.0.0/16' IS NOT TRUE"),
        "0",
        "prefix kept"
    );
    assert_eq!(
        q("SELECT count(DISTINCT mac) FROM accounts"),
        "3000",
        "MAC keys are one-to-one"
    );
    assert_eq!(
        q(
            "SELECT count(*) FROM accounts WHERE homepage NOT LIKE 'https://corp.example/%' OR homepage ~ '/u/[0-9]'"
        ),
        "0"
    );
    assert_eq!(
        q("SELECT count(*) FROM accounts WHERE extract(year FROM birth) NOT BETWEEN 1960 AND 1979"),
        "0"
    );

    // Statistical: the category frequencies survive (a draw per row), balances stay in range.
    let tiers = q(
        "SELECT string_agg(tier || '=' || n, ',' ORDER BY tier) FROM (SELECT tier, count(*) n FROM accounts GROUP BY tier) t",
    );
    let count = |name: &str| -> i64 {
        tiers
            .split(',')
            .find_map(|p| p.strip_prefix(&format!("{name}=")))
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!((1350..1650).contains(&count("bronze")), "{tiers}");
    assert!((850..1150).contains(&count("silver")), "{tiers}");
    assert!((380..620).contains(&count("gold")), "{tiers}");
    assert_eq!(
        q("SELECT count(*) FROM accounts WHERE balance < 0 OR balance > 1498.5"),
        "0"
    );
    assert!(
        q("SELECT count(DISTINCT balance) FROM accounts")
            .parse::<i32>()
            .unwrap()
            > 1000
    );

    // Structured values.
    assert_eq!(
        q("SELECT count(*) FROM accounts WHERE profile->>'name' LIKE 'Person %'"),
        "0"
    );
    assert_eq!(
        q(
            "SELECT count(*) FROM accounts WHERE profile->'contacts'->0->>'kind' <> 'home' OR (profile->>'n')::int < 1"
        ),
        "0"
    );
    assert_eq!(
        q(
            "SELECT count(*) FROM accounts WHERE cardinality(aliases) <> 2 OR aliases[1] LIKE 'alias%'"
        ),
        "0"
    );

    // Conditional: US rows get a hash, the others NULL.
    assert_eq!(
        q("SELECT count(*) FROM accounts WHERE (country = 'US') <> (tax_id IS NOT NULL)"),
        "0"
    );

    // Event timestamps keep each row's gap (2 days 6h30) and order.
    assert_eq!(
        q(
            "SELECT count(*) FROM accounts WHERE closed_at - opened_at <> interval '2 days 06:30:00'"
        ),
        "0"
    );
    assert_eq!(
        pg.psql(
            "src",
            "SELECT count(*) FROM accounts WHERE opened_at = '2025-01-01 01:00:00+00'"
        )
        .unwrap(),
        "1"
    );
    assert_eq!(
        q("SELECT count(*) FROM accounts WHERE opened_at = '2025-01-01 01:00:00+00'"),
        "0"
    );
}

#[test]
fn statistical_generators_need_few_categories() {
    let pg = cluster();
    pg.psql("src", "CREATE TABLE t (id int, v text); INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 10050) i;")
        .unwrap();
    let dir = Dir::new();
    let ws = dir.write(
        "workspace.toml",
        &workspace(
            &pg,
            "[tables.\"public.t\".columns]\nv = { generator = \"categorical\" }\n",
        ),
    );
    let out = mirage(&["plan", "-w", ws.to_str().unwrap()], "s");
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr.contains("more than 10000 distinct values"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("columns.v"), "{}", out.stderr);
}
