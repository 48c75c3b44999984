//! Redshift's catalog on PostgreSQL: `svv_table_info`, `pg_table_def`, `svv_columns`,
//! `svv_*_privileges` and `stl_load_errors` as views and functions in `pg_catalog`
//! (so both `svv_table_info` and `pg_catalog.svv_table_info` resolve, as on Redshift), answered from
//! PostgreSQL's catalog plus the side tables in schema `rs_meta`: what `CREATE TABLE` declared
//! (DISTSTYLE, keys, ENCODE, Redshift types), the schema grants PostgreSQL lacks (DROP, ALTER) and
//! load errors. Installed into `template1` and every database, so `CREATE DATABASE` inherits it.

/// The installation script; idempotent. Run by a superuser.
pub const INSTALL: &str = r#"
SET allow_system_table_mods = on;
SET client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS rs_meta;
GRANT USAGE ON SCHEMA rs_meta TO PUBLIC;
-- Redshift grants CREATE on public to everyone; PostgreSQL 15 no longer does.
GRANT CREATE ON SCHEMA public TO PUBLIC;

CREATE TABLE IF NOT EXISTS rs_meta.tables (
    relid oid PRIMARY KEY,
    ddl jsonb NOT NULL,
    created timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'));
GRANT SELECT, INSERT, UPDATE, DELETE ON rs_meta.tables TO PUBLIC;

CREATE TABLE IF NOT EXISTS rs_meta.schema_grants (
    nspname name NOT NULL,
    grantee name NOT NULL,
    privilege text NOT NULL,
    PRIMARY KEY (nspname, grantee, privilege));
GRANT SELECT ON rs_meta.schema_grants TO PUBLIC;

CREATE TABLE IF NOT EXISTS rs_meta.load_errors (
    userid integer, slice integer, tbl integer, starttime timestamp, session integer,
    query integer, filename character(256), line_number bigint, colname character(127),
    type character(10), col_length character(10), position integer,
    raw_line character(1024), raw_field_value character(1024), err_code integer,
    err_reason character(100), is_partial integer, start_offset bigint);

-- Views declared WITH NO SCHEMA BINDING (SHOW VIEW says so again).
CREATE TABLE IF NOT EXISTS rs_meta.late_views (relid oid PRIMARY KEY);
GRANT SELECT, INSERT, DELETE ON rs_meta.late_views TO PUBLIC;

-- CREATE EXTERNAL SCHEMA (Spectrum): a schema here, listed by svv_external_schemas.
CREATE TABLE IF NOT EXISTS rs_meta.external_schemas (esoid oid PRIMARY KEY, databasename text);
GRANT SELECT, INSERT ON rs_meta.external_schemas TO PUBLIC;

-- CREATE DATASHARE, listed by svv_datashares.
CREATE TABLE IF NOT EXISTS rs_meta.datashares (
    share_name text PRIMARY KEY, share_owner integer, source_database text,
    createdate timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'));
GRANT SELECT, INSERT ON rs_meta.datashares TO PUBLIC;

CREATE OR REPLACE FUNCTION rs_meta.is_super() RETURNS boolean LANGUAGE sql STABLE AS
$$ SELECT coalesce((SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user), false) $$;

-- Superusers, and users granted SELECT on svv_table_info (not through PUBLIC), see its rows.
CREATE OR REPLACE FUNCTION rs_meta.sees_table_info() RETURNS boolean LANGUAGE sql STABLE AS
$$ SELECT rs_meta.is_super() OR EXISTS (
     SELECT 1 FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
     WHERE c.oid = pg_catalog.to_regclass('pg_catalog.svv_table_info')
       AND a.privilege_type = 'SELECT' AND a.grantee <> 0 AND a.grantee <> c.relowner
       AND pg_catalog.pg_has_role(current_user, a.grantee, 'MEMBER')) $$;

CREATE OR REPLACE FUNCTION rs_meta.row_count(rel oid) RETURNS bigint LANGUAGE plpgsql STABLE
SECURITY DEFINER SET search_path = pg_catalog AS
$$ DECLARE n bigint;
BEGIN
    -- Tables over 64 MB with statistics: the count the last ANALYZE or VACUUM left (Redshift
    -- keeps its own as a statistic, and reading it costs nothing); smaller ones are counted.
    SELECT CASE WHEN c.reltuples > 0 AND pg_relation_size(c.oid) > 67108864
        THEN c.reltuples::bigint END INTO n FROM pg_class c WHERE c.oid = rel;
    IF n IS NOT NULL THEN
        RETURN n;
    END IF;
    EXECUTE format('SELECT count(*) FROM %s', rel::regclass) INTO n;
    RETURN n;
EXCEPTION WHEN undefined_table THEN RETURN 0;
END $$;

-- The Redshift name of a column's type: from what CREATE TABLE declared when PostgreSQL holds it
-- differently (SUPER as jsonb, VARBYTE as bytea, …).
CREATE OR REPLACE FUNCTION rs_meta.type_name(t oid, m integer, declared text) RETURNS text
LANGUAGE sql STABLE AS
$$ SELECT CASE
     WHEN upper(split_part(declared, '(', 1)) IN ('SUPER', 'VARBYTE', 'GEOMETRY', 'GEOGRAPHY', 'HLLSKETCH')
       THEN lower(declared)
     WHEN t = 'jsonb'::regtype THEN 'super'
     WHEN t = 'bytea'::regtype THEN 'varbyte'
     WHEN t = 'text'::regtype THEN 'character varying(256)'
     ELSE pg_catalog.format_type(t, m) END $$;

-- A table's declared column, by name.
CREATE OR REPLACE FUNCTION rs_meta.declared(ddl jsonb, col text) RETURNS jsonb LANGUAGE sql IMMUTABLE AS
$$ SELECT e FROM jsonb_array_elements(CASE jsonb_typeof(ddl->'columns') WHEN 'array' THEN ddl->'columns' ELSE '[]' END) e
   WHERE e->>'name' = col LIMIT 1 $$;

-- The sort key position of a column: 1-based, negative when interleaved, 0 when none.
CREATE OR REPLACE FUNCTION rs_meta.sort_position(ddl jsonb, col text) RETURNS integer LANGUAGE sql IMMUTABLE AS
$$ SELECT coalesce((SELECT (CASE WHEN (ddl->'sortkey'->>0)::boolean THEN -1 ELSE 1 END) * k.i::integer
     FROM jsonb_array_elements_text(CASE jsonb_typeof(ddl->'sortkey') WHEN 'array' THEN ddl->'sortkey'->1 ELSE '[]' END)
          WITH ORDINALITY k(name, i) WHERE k.name = col), 0) $$;

CREATE OR REPLACE FUNCTION rs_meta.identity_type(role oid) RETURNS text LANGUAGE sql STABLE AS
$$ SELECT CASE WHEN role = 0 THEN 'public'
     WHEN (SELECT rolcanlogin FROM pg_catalog.pg_roles WHERE oid = role) THEN 'user' ELSE 'role' END $$;

CREATE OR REPLACE FUNCTION rs_meta.identity_name(role oid) RETURNS text LANGUAGE sql STABLE AS
$$ SELECT CASE WHEN role = 0 THEN 'public' ELSE pg_catalog.pg_get_userbyid(role)::text END $$;

-- Redshift's system role whose ACCESS SYSTEM TABLE lets its members see every row of the
-- svv_* views (GRANT ROLE "sys:monitor" TO u).
DO $$ BEGIN CREATE ROLE "sys:monitor" NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;

-- Rows of svv_*_privileges a user sees: all for superusers and sys:monitor, else their own
-- identities.
CREATE OR REPLACE FUNCTION rs_meta.sees_identity(role oid) RETURNS boolean LANGUAGE sql STABLE AS
$$ SELECT rs_meta.is_super() OR role = 0 OR pg_catalog.pg_has_role(current_user, role, 'MEMBER')
       OR pg_catalog.pg_has_role(current_user, 'sys:monitor', 'MEMBER') $$;

CREATE OR REPLACE VIEW pg_catalog.svv_user_grants AS
SELECT u.oid::integer AS user_id, u.rolname::text AS user_name, r.oid::integer AS role_id,
    r.rolname::text AS role_name, m.admin_option
FROM pg_auth_members m JOIN pg_roles u ON u.oid = m.member JOIN pg_roles r ON r.oid = m.roleid
WHERE u.rolcanlogin;
GRANT SELECT ON pg_catalog.svv_user_grants TO PUBLIC;

-- Queries running now or lately, as Redshift's stv_recents: users see their own queries' text
-- (PostgreSQL hides others'), an UNLOAD as its target (the emulator's COPY names it).
CREATE OR REPLACE VIEW pg_catalog.stv_recents AS
SELECT a.usesysid::integer AS userid,
    CASE WHEN a.state = 'active' THEN 'Running' ELSE 'Done' END::text AS status,
    a.query_start AS starttime,
    (extract(epoch FROM now() - a.query_start) * 1000000)::bigint AS duration,
    a.usename::text AS user_name, a.datname::text AS db_name, left(a.query, 600)::text AS query,
    a.pid::integer AS pid
FROM pg_catalog.pg_stat_activity a
WHERE a.backend_type = 'client backend';
GRANT SELECT ON pg_catalog.stv_recents TO PUBLIC;

CREATE OR REPLACE VIEW pg_catalog.svv_table_info AS
SELECT current_database()::text AS database, n.nspname::text AS schema, c.oid::integer AS table_id,
    c.relname::text AS "table",
    'Y'::text AS encoded,
    CASE upper(m.ddl->>'diststyle')
        WHEN 'KEY' THEN 'KEY(' || (m.ddl->>'distkey') || ')'
        WHEN 'EVEN' THEN 'EVEN'
        WHEN 'ALL' THEN 'ALL'
        ELSE 'AUTO(EVEN)' END::text AS diststyle,
    CASE WHEN jsonb_typeof(m.ddl->'sortkey') IS DISTINCT FROM 'array' THEN NULL
        WHEN jsonb_array_length(m.ddl->'sortkey'->1) = 0 THEN 'AUTO(SORTKEY)'
        WHEN (m.ddl->'sortkey'->>0)::boolean THEN 'INTERLEAVED'
        ELSE m.ddl->'sortkey'->1->>0 END::text AS sortkey1,
    (SELECT max(a.atttypmod - 4) FROM pg_attribute a WHERE a.attrelid = c.oid
        AND a.atttypid = 'varchar'::regtype AND a.attnum > 0 AND NOT a.attisdropped)::integer AS max_varchar,
    'none'::text AS sortkey1_enc,
    CASE WHEN jsonb_typeof(m.ddl->'sortkey') = 'array'
        THEN jsonb_array_length(m.ddl->'sortkey'->1) ELSE 0 END::integer AS sortkey_num,
    greatest(1, ceil(pg_total_relation_size(c.oid) / 1048576.0))::bigint AS size,
    0.0001::numeric(10,4) AS pct_used,
    0::bigint AS empty,
    0::numeric(5,2) AS unsorted,
    0::numeric(5,2) AS stats_off,
    r.n::numeric(38,0) AS tbl_rows,
    NULL::numeric(19,2) AS skew_sortkey1,
    1::numeric(19,2) AS skew_rows,
    r.n::numeric(38,0) AS estimated_visible_rows,
    NULL::text AS risk_event,
    NULL::numeric(12,2) AS vacuum_sort_benefit,
    coalesce(m.created, now() AT TIME ZONE 'UTC')::timestamp AS create_time
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN rs_meta.tables m ON m.relid = c.oid
CROSS JOIN LATERAL (SELECT CASE WHEN rs_meta.sees_table_info() THEN rs_meta.row_count(c.oid) ELSE 0 END AS n) r
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'rs_meta', 'pg_toast')
  AND n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%'
  AND r.n > 0;
GRANT SELECT ON pg_catalog.svv_table_info TO PUBLIC;

CREATE OR REPLACE VIEW pg_catalog.pg_table_def AS
SELECT n.nspname AS schemaname, c.relname AS tablename, a.attname AS "column",
    rs_meta.type_name(a.atttypid, a.atttypmod, d->>'redshift_type')::text AS type,
    coalesce(d->>'encode', CASE WHEN m.ddl IS NULL THEN 'none' ELSE 'az64' END)::character(32) AS encoding,
    coalesce((d->>'distkey')::boolean, false) AS distkey,
    rs_meta.sort_position(m.ddl, a.attname::text) AS sortkey,
    a.attnotnull AS "notnull"
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN rs_meta.tables m ON m.relid = c.oid
CROSS JOIN LATERAL (SELECT rs_meta.declared(m.ddl, a.attname::text) AS d) decl
WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY (current_schemas(false));
GRANT SELECT ON pg_catalog.pg_table_def TO PUBLIC;

CREATE OR REPLACE VIEW pg_catalog.svv_columns AS
SELECT ic.table_catalog::text AS table_catalog, ic.table_schema::text AS table_schema,
    ic.table_name::text AS table_name, ic.column_name::text AS column_name,
    ic.ordinal_position::integer AS ordinal_position,
    -- Redshift spells an identity column's default "identity"(table oid, attnum, 'seed,step').
    CASE WHEN ic.is_identity = 'YES' THEN '"identity"(' || c.oid || ', ' || ic.ordinal_position || ', '''
        || coalesce(d->'identity'->>0, ic.identity_start) || ','
        || coalesce(d->'identity'->>1, ic.identity_increment) || '''::text)'
        ELSE ic.column_default::text END AS column_default,
    ic.is_nullable::text AS is_nullable,
    CASE upper(split_part(d->>'redshift_type', '(', 1))
        WHEN 'SUPER' THEN 'super' WHEN 'VARBYTE' THEN 'binary varying'
        WHEN 'GEOMETRY' THEN 'geometry' WHEN 'GEOGRAPHY' THEN 'geography' WHEN 'HLLSKETCH' THEN 'hllsketch'
        ELSE CASE ic.data_type WHEN 'jsonb' THEN 'super' WHEN 'bytea' THEN 'binary varying'
             ELSE ic.data_type::text END END AS data_type,
    ic.character_maximum_length::integer AS character_maximum_length,
    ic.numeric_precision::integer AS numeric_precision,
    ic.numeric_precision_radix::integer AS numeric_precision_radix,
    ic.numeric_scale::integer AS numeric_scale, ic.datetime_precision::integer AS datetime_precision,
    ic.interval_type::text AS interval_type, ic.interval_precision::text AS interval_precision,
    ic.character_set_catalog::text AS character_set_catalog,
    ic.character_set_schema::text AS character_set_schema,
    ic.character_set_name::text AS character_set_name, ic.collation_catalog::text AS collation_catalog,
    ic.collation_schema::text AS collation_schema, ic.collation_name::text AS collation_name,
    ic.domain_name::text AS domain_name, NULL::text AS remarks
FROM information_schema.columns ic
JOIN pg_namespace n ON n.nspname = ic.table_schema
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = ic.table_name
LEFT JOIN rs_meta.tables m ON m.relid = c.oid
CROSS JOIN LATERAL (SELECT rs_meta.declared(m.ddl, ic.column_name::text) AS d) decl
WHERE ic.table_schema NOT IN ('pg_catalog', 'information_schema', 'rs_meta');
GRANT SELECT ON pg_catalog.svv_columns TO PUBLIC;

CREATE OR REPLACE VIEW pg_catalog.svv_relation_privileges AS
SELECT n.nspname::text AS namespace_name, c.relname::text AS relation_name,
    a.privilege_type::text AS privilege_type, a.grantee::integer AS identity_id,
    rs_meta.identity_name(a.grantee) AS identity_name, rs_meta.identity_type(a.grantee) AS identity_type,
    a.is_grantable AS admin_option
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL aclexplode(c.relacl) a
WHERE c.relkind IN ('r', 'p', 'v', 'm') AND a.grantee <> c.relowner
  AND (n.nspname NOT IN ('pg_catalog', 'information_schema', 'rs_meta', 'pg_toast')
       OR (n.nspname = 'pg_catalog' AND c.relname = 'svv_table_info' AND a.grantee <> 0))
  AND rs_meta.sees_identity(a.grantee);
GRANT SELECT ON pg_catalog.svv_relation_privileges TO PUBLIC;

CREATE OR REPLACE VIEW pg_catalog.svv_schema_privileges AS
SELECT n.nspname::text AS namespace_name, a.privilege_type::text AS privilege_type,
    a.grantee::integer AS identity_id, rs_meta.identity_name(a.grantee) AS identity_name,
    rs_meta.identity_type(a.grantee) AS identity_type, a.is_grantable AS admin_option
FROM pg_namespace n CROSS JOIN LATERAL aclexplode(n.nspacl) a
WHERE a.grantee <> n.nspowner AND n.nspname NOT LIKE 'pg\_%'
  AND n.nspname NOT IN ('information_schema', 'rs_meta') AND rs_meta.sees_identity(a.grantee)
UNION ALL
SELECT g.nspname::text, upper(g.privilege), coalesce(r.oid, 0)::integer, g.grantee::text,
    CASE WHEN r.oid IS NULL THEN 'public' WHEN r.rolcanlogin THEN 'user' ELSE 'role' END, false
FROM rs_meta.schema_grants g LEFT JOIN pg_roles r ON r.rolname = g.grantee
WHERE rs_meta.sees_identity(coalesce(r.oid, 0));
GRANT SELECT ON pg_catalog.svv_schema_privileges TO PUBLIC;

CREATE OR REPLACE VIEW pg_catalog.svv_database_privileges AS
SELECT d.datname::text AS database_name, a.privilege_type::text AS privilege_type,
    a.grantee::integer AS identity_id, rs_meta.identity_name(a.grantee) AS identity_name,
    rs_meta.identity_type(a.grantee) AS identity_type, a.is_grantable AS admin_option
FROM pg_database d CROSS JOIN LATERAL aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
WHERE a.grantee <> d.datdba AND NOT d.datistemplate AND rs_meta.sees_identity(a.grantee);
GRANT SELECT ON pg_catalog.svv_database_privileges TO PUBLIC;

CREATE OR REPLACE VIEW pg_catalog.svv_external_schemas AS
SELECT e.esoid::integer AS esoid, 1 AS eskind, n.nspname::text AS schemaname,
    n.nspowner::integer AS esowner, e.databasename, '{}'::text AS esoptions
FROM rs_meta.external_schemas e JOIN pg_namespace n ON n.oid = e.esoid;
GRANT SELECT ON pg_catalog.svv_external_schemas TO PUBLIC;

CREATE OR REPLACE VIEW pg_catalog.svv_datashares AS
SELECT share_name, share_owner, source_database, NULL::text AS consumer_database,
    'OUTBOUND'::text AS share_type, createdate, false AS is_publicaccessible,
    NULL::text AS share_acl, NULL::text AS producer_account, NULL::text AS producer_namespace,
    NULL::text AS managed_by
FROM rs_meta.datashares;
GRANT SELECT ON pg_catalog.svv_datashares TO PUBLIC;

CREATE OR REPLACE VIEW pg_catalog.svv_mv_info AS
SELECT current_database()::text AS database_name, schemaname::text AS schema_name,
    matviewowner::text AS user_name, matviewname::text AS name, 'f'::character(1) AS is_stale,
    1 AS state, 0 AS autorefresh, 0 AS autorewrite
FROM pg_matviews;
GRANT SELECT ON pg_catalog.svv_mv_info TO PUBLIC;

-- Redshift's pg_proc_info: pg_proc with the kind of each routine (f function, p procedure).
CREATE OR REPLACE VIEW pg_catalog.pg_proc_info AS
SELECT p.oid AS prooid, p.* FROM pg_proc p;
GRANT SELECT ON pg_catalog.pg_proc_info TO PUBLIC;

CREATE OR REPLACE VIEW pg_catalog.svv_function_privileges AS
SELECT n.nspname::text AS namespace_name, p.proname::text AS function_name,
    oidvectortypes(p.proargtypes)::text AS argument_types, a.privilege_type::text AS privilege_type,
    a.grantee::integer AS identity_id, rs_meta.identity_name(a.grantee) AS identity_name,
    rs_meta.identity_type(a.grantee) AS identity_type, a.is_grantable AS admin_option
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
CROSS JOIN LATERAL aclexplode(p.proacl) a
WHERE a.grantee <> p.proowner
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'rs_meta')
  AND rs_meta.sees_identity(a.grantee);
GRANT SELECT ON pg_catalog.svv_function_privileges TO PUBLIC;

-- SUPER functions data is loaded with (SUPER is jsonb here).
CREATE OR REPLACE FUNCTION pg_catalog.json_parse(text) RETURNS jsonb LANGUAGE sql IMMUTABLE STRICT AS
$$ SELECT $1::jsonb $$;
CREATE OR REPLACE FUNCTION pg_catalog.json_serialize(jsonb) RETURNS text LANGUAGE sql IMMUTABLE STRICT AS
$$ SELECT $1::text $$;
CREATE OR REPLACE FUNCTION pg_catalog.can_json_parse(text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE STRICT AS
$$ BEGIN PERFORM $1::jsonb; RETURN true; EXCEPTION WHEN others THEN RETURN false; END $$;
CREATE OR REPLACE FUNCTION pg_catalog.is_valid_json(text) RETURNS boolean LANGUAGE sql IMMUTABLE STRICT AS
$$ SELECT pg_catalog.can_json_parse($1) AND left(ltrim($1), 1) = '{' $$;
CREATE OR REPLACE FUNCTION pg_catalog.is_valid_json_array(text) RETURNS boolean LANGUAGE sql IMMUTABLE STRICT AS
$$ SELECT pg_catalog.can_json_parse($1) AND left(ltrim($1), 1) = '[' $$;
CREATE OR REPLACE FUNCTION pg_catalog.json_extract_path_text(text, VARIADIC text[]) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT pg_catalog.json_extract_path_text($1::json, VARIADIC $2) $$;
CREATE OR REPLACE FUNCTION pg_catalog.json_extract_array_element_text(text, integer) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT ($1::json ->> $2) $$;
CREATE OR REPLACE FUNCTION pg_catalog.json_array_length(text) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT pg_catalog.json_array_length($1::json) $$;

CREATE OR REPLACE VIEW pg_catalog.stl_load_errors AS
SELECT * FROM rs_meta.load_errors
WHERE rs_meta.is_super() OR userid = (SELECT usesysid FROM pg_user WHERE usename = current_user);
GRANT SELECT ON pg_catalog.stl_load_errors TO PUBLIC;

-- current_namespace: the cluster's namespace GUID (here: from the PostgreSQL cluster's system
-- identifier, so every database of one emulator shares it). The proxy rewrites the word.
CREATE OR REPLACE FUNCTION rs_meta.current_namespace() RETURNS text LANGUAGE sql STABLE
SECURITY DEFINER SET search_path = pg_catalog AS
$$ SELECT md5(system_identifier::text)::uuid::text FROM pg_control_system() $$;

-- PostgreSQL calls its built-in version() by OID, whatever pg_proc says: the proxy rewrites
-- version() to this.
CREATE OR REPLACE FUNCTION rs_meta.version() RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT 'PostgreSQL 8.0.2 on i686-pc-linux-gnu, compiled by GCC gcc (GCC) 3.4.2 20041017 (Red Hat 3.4.2-6.fc3), Redshift 1.0.77467'::text $$;

CREATE OR REPLACE FUNCTION pg_catalog.getdate() RETURNS timestamp LANGUAGE sql STABLE AS
$$ SELECT (now() AT TIME ZONE 'UTC')::timestamp(0) $$;

-- Errors the proxy raises so the session's state matches what the client is told.
CREATE OR REPLACE FUNCTION rs_meta.raise(code text, message text) RETURNS void LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION USING ERRCODE = code, MESSAGE = message; END $$;

-- GRANT/REVOKE { DROP | ALTER } ON SCHEMA: schema owners and superusers may.
CREATE OR REPLACE FUNCTION rs_meta.grant_schema(s text, privs text[], who text, is_revoke boolean)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS
$$ DECLARE owner oid; p text;
BEGIN
    SELECT nspowner INTO owner FROM pg_namespace WHERE nspname = s;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Schema "%" does not exist', s USING ERRCODE = '3F000';
    END IF;
    IF NOT (pg_has_role(session_user, owner, 'MEMBER')
            OR (SELECT rolsuper FROM pg_roles WHERE rolname = session_user)) THEN
        RAISE EXCEPTION 'permission denied for schema %', s USING ERRCODE = '42501';
    END IF;
    IF lower(who) <> 'public' AND NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = who) THEN
        RAISE EXCEPTION 'user "%" does not exist', who USING ERRCODE = '42704';
    END IF;
    FOREACH p IN ARRAY privs LOOP
        IF is_revoke THEN
            DELETE FROM rs_meta.schema_grants WHERE nspname = s AND grantee = who AND privilege = lower(p);
        ELSE
            INSERT INTO rs_meta.schema_grants VALUES (s, who, lower(p)) ON CONFLICT DO NOTHING;
        END IF;
    END LOOP;
END $$;

-- DROP SCHEMA: owners, superusers and holders of DROP on the schema may.
CREATE OR REPLACE FUNCTION rs_meta.drop_schema(s text, if_exists boolean, cascade boolean)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS
$$ DECLARE owner oid;
BEGIN
    SELECT nspowner INTO owner FROM pg_namespace WHERE nspname = s;
    IF NOT FOUND THEN
        IF if_exists THEN
            RAISE NOTICE 'schema "%" does not exist, skipping', s;
            RETURN;
        END IF;
        RAISE EXCEPTION 'Schema "%" does not exist', s USING ERRCODE = '3F000';
    END IF;
    IF NOT (pg_has_role(session_user, owner, 'MEMBER')
            OR (SELECT rolsuper FROM pg_roles WHERE rolname = session_user)
            OR EXISTS (SELECT 1 FROM rs_meta.schema_grants g WHERE g.nspname = s AND g.privilege = 'drop'
                       AND (g.grantee = 'public' OR pg_has_role(session_user, g.grantee, 'MEMBER')))) THEN
        RAISE EXCEPTION 'must be owner of schema %', s USING ERRCODE = '42501';
    END IF;
    EXECUTE format('DROP SCHEMA %I %s', s, CASE WHEN cascade THEN 'CASCADE' ELSE 'RESTRICT' END);
    DELETE FROM rs_meta.schema_grants WHERE nspname = s;
END $$;

-- What CREATE TABLE declared is forgotten when the table goes.
CREATE OR REPLACE FUNCTION rs_meta.forget_dropped() RETURNS event_trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog AS
$$ BEGIN
    DELETE FROM rs_meta.tables WHERE relid IN (
        SELECT objid FROM pg_event_trigger_dropped_objects() WHERE classid = 'pg_class'::regclass);
END $$;
DROP EVENT TRIGGER IF EXISTS rs_meta_forget_dropped;
CREATE EVENT TRIGGER rs_meta_forget_dropped ON sql_drop EXECUTE FUNCTION rs_meta.forget_dropped();
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_twice_on_postgresql_15() {
        let pg = mirage_testkit::PgCluster::start().unwrap();
        pg.create_database("rs").unwrap();
        pg.psql("rs", INSTALL).unwrap();
        pg.psql("rs", INSTALL).unwrap();
        assert!(
            pg.psql("rs", "SELECT rs_meta.version()")
                .unwrap()
                .contains("Redshift 1.0")
        );
    }
}
