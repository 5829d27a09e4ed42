//! Tables from metadata: pure DDL generation per dialect. Idempotent by construction (`IF NOT
//! EXISTS`, missing columns added, nothing ever dropped). [`crate::Store::migrate`] runs it.

use chrono::{DateTime, Utc};
use crm_model::{CUSTOM_COLUMN, Catalog, Field, FieldKind, Model, OnDelete, ScalarType, Value};
use sea_query::{Alias, Expr, Query};

use super::Built;
use super::dialect::{Dialect, index_name};
use crate::error::{OrmError, Result};

fn quoted(ident: &str) -> String {
    // Identifiers come from the Catalog (validated `snake_case`); quoting keeps keywords usable.
    format!("\"{ident}\"")
}

/// The columns a field occupies, with their SQL type and whether they are NOT NULL at creation.
#[must_use]
pub fn field_columns(d: Dialect, f: &Field) -> Vec<(String, &'static str, bool)> {
    match &f.kind {
        FieldKind::Scalar(ty @ ScalarType::Money { currency_column }) => {
            vec![(f.column.to_string(), d.column_type(ty), f.required), (currency_column.to_string(), "TEXT", f.required)]
        }
        FieldKind::Scalar(ty) => vec![(f.column.to_string(), d.column_type(ty), f.required)],
        FieldKind::ToOne { .. } => vec![(f.column.to_string(), d.id_type(), f.required)],
        FieldKind::Polymorphic { type_column, .. } => {
            vec![(type_column.to_string(), "TEXT", f.required), (f.column.to_string(), d.id_type(), f.required)]
        }
        FieldKind::ToMany { .. } => Vec::new(),
    }
}

fn datetime_type(d: Dialect) -> &'static str {
    d.column_type(&ScalarType::DateTime)
}

/// The type of the custom-values column (a JSON object keyed by field name).
fn custom_type(d: Dialect) -> &'static str {
    d.column_type(&ScalarType::Json)
}

fn foreign_key(catalog: &Catalog, f: &Field) -> Option<(String, String, OnDelete)> {
    let FieldKind::ToOne { target, on_delete } = &f.kind else { return None };
    let t = catalog.model(target.as_str())?;
    Some((f.column.to_string(), t.table.to_string(), *on_delete))
}

fn fk_clause(column: &str, target_table: &str, on_delete: OnDelete) -> String {
    // Set-null is done by the store (a composite key cannot null only its id part on SQLite), so
    // the constraint itself only restricts or cascades.
    let action = match on_delete {
        OnDelete::Cascade => " ON DELETE CASCADE",
        OnDelete::Restrict | OnDelete::SetNull => "",
    };
    format!(
        "FOREIGN KEY ({}, {}) REFERENCES {} ({}, {}){action}",
        quoted("org_id"),
        quoted(column),
        quoted(target_table),
        quoted("org_id"),
        quoted("id")
    )
}

/// `CREATE TABLE IF NOT EXISTS` of a model: system columns, one or two columns per stored field,
/// primary key `(org_id, id)`. On SQLite the foreign keys are inline; on PostgreSQL they are added
/// by [`foreign_keys`] once every table exists.
#[must_use]
pub fn create_table(d: Dialect, catalog: &Catalog, m: &Model) -> String {
    let mut cols = vec![
        format!("{} TEXT NOT NULL", quoted("org_id")),
        format!("{} {} NOT NULL", quoted("id"), d.id_type()),
        format!("{} {} NOT NULL", quoted("created_at"), datetime_type(d)),
        format!("{} {} NOT NULL", quoted("updated_at"), datetime_type(d)),
        format!("{} TEXT", quoted("created_by")),
        format!("{} TEXT", quoted("updated_by")),
        format!("{} {} NOT NULL DEFAULT 1", quoted("version"), d.column_type(&ScalarType::Int)),
        format!("{} {}", quoted("deleted_at"), datetime_type(d)),
        format!("{} {}", quoted(CUSTOM_COLUMN), custom_type(d)),
    ];
    for f in m.stored().filter(|f| !f.system) {
        for (c, ty, not_null) in field_columns(d, f) {
            cols.push(format!("{} {ty}{}", quoted(&c), if not_null { " NOT NULL" } else { "" }));
        }
    }
    if let Some(def) = crate::sql::search::column_def(m) {
        cols.push(def);
    }
    cols.push(format!("PRIMARY KEY ({}, {})", quoted("org_id"), quoted("id")));
    if d == Dialect::Sqlite {
        for f in m.stored() {
            if let Some((c, t, od)) = foreign_key(catalog, f) {
                cols.push(fk_clause(&c, &t, od));
            }
        }
    }
    format!("CREATE TABLE IF NOT EXISTS {} (\n  {}\n)", quoted(m.table.as_str()), cols.join(",\n  "))
}

/// `ALTER TABLE … ADD COLUMN` for the columns of `m` not in `existing` (nullable: rows already
/// there have no value; the store enforces `required` on writes).
#[must_use]
pub fn add_columns(d: Dialect, m: &Model, existing: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for f in m.stored().filter(|f| !f.system) {
        for (c, ty, _) in field_columns(d, f) {
            if !existing.iter().any(|e| e == &c) {
                out.push(format!("ALTER TABLE {} ADD COLUMN {} {ty}", quoted(m.table.as_str()), quoted(&c)));
            }
        }
    }
    if !existing.iter().any(|e| e == "deleted_at") {
        out.push(format!("ALTER TABLE {} ADD COLUMN {} {}", quoted(m.table.as_str()), quoted("deleted_at"), datetime_type(d)));
    }
    if !existing.iter().any(|e| e == CUSTOM_COLUMN) {
        out.push(format!("ALTER TABLE {} ADD COLUMN {} {}", quoted(m.table.as_str()), quoted(CUSTOM_COLUMN), custom_type(d)));
    }
    if !existing.iter().any(|e| e == crate::sql::search::SEARCH_COLUMN)
        && let Some(def) = crate::sql::search::column_def(m)
    {
        out.push(format!("ALTER TABLE {} ADD COLUMN {def}", quoted(m.table.as_str())));
    }
    out
}

/// Indexes:
/// - `(org_id, created_at, id)` over the live rows: lists newest (or oldest) first, by cursor,
///   in both directions (a backward scan serves the other one);
/// - each declared composite index as `(org_id, keys…, id)` over the live rows, `id` in the
///   direction of the last key as the list ordering breaks ties, so a filtered, ordered page
///   and its cursor condition are one index range, and a count of the filter can be index-only;
/// - one `(org_id, column)` per indexed field and foreign key, unique per tenant for unique
///   fields.
///
/// The live-rows date index replaces `ix_<table>_created_at` of earlier versions, which is
/// dropped once its replacement exists.
#[must_use]
pub fn indexes(m: &Model) -> Vec<String> {
    let t = m.table.as_str();
    let live = format!("WHERE {} IS NULL", quoted("deleted_at"));
    let mut out = vec![
        format!(
            "CREATE INDEX IF NOT EXISTS {} ON {} ({}, {}, {}) {live}",
            quoted(&index_name("lx", t, "created_at")),
            quoted(t),
            quoted("org_id"),
            quoted("created_at"),
            quoted("id")
        ),
        format!("DROP INDEX IF EXISTS {}", quoted(&index_name("ix", t, "created_at"))),
    ];
    for ix in &m.indexes {
        let mut cols = vec![quoted("org_id")];
        let mut names = Vec::with_capacity(ix.keys.len());
        for (name, desc) in &ix.keys {
            let Some(f) = m.field(name.as_str()) else { continue };
            cols.push(format!("{}{}", quoted(f.column.as_str()), if *desc { " DESC" } else { "" }));
            names.push(format!("{}{}", f.column, if *desc { "_desc" } else { "" }));
        }
        let last_desc = ix.keys.last().is_some_and(|(_, d)| *d);
        cols.push(format!("{}{}", quoted("id"), if last_desc { " DESC" } else { "" }));
        out.push(format!(
            "CREATE INDEX IF NOT EXISTS {} ON {} ({}) {live}",
            quoted(&index_name("lx", t, &names.join("_"))),
            quoted(t),
            cols.join(", ")
        ));
    }
    for f in m.stored().filter(|f| !f.system) {
        let c = f.column.as_str();
        if f.unique {
            out.push(format!(
                "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} ({}, {})",
                quoted(&index_name("ux", t, c)),
                quoted(t),
                quoted("org_id"),
                quoted(c)
            ));
        } else if let FieldKind::Polymorphic { type_column, .. } = &f.kind {
            out.push(format!(
                "CREATE INDEX IF NOT EXISTS {} ON {} ({}, {}, {})",
                quoted(&index_name("ix", t, c)),
                quoted(t),
                quoted("org_id"),
                quoted(type_column.as_str()),
                quoted(c)
            ));
        } else if f.indexed || matches!(f.kind, FieldKind::ToOne { .. }) {
            out.push(format!(
                "CREATE INDEX IF NOT EXISTS {} ON {} ({}, {})",
                quoted(&index_name("ix", t, c)),
                quoted(t),
                quoted("org_id"),
                quoted(c)
            ));
        }
    }
    out
}

/// PostgreSQL: composite foreign keys, added when missing (checked by constraint name).
#[must_use]
pub fn foreign_keys(catalog: &Catalog, m: &Model) -> Vec<String> {
    let t = m.table.as_str();
    m.stored()
        .filter_map(|f| foreign_key(catalog, f))
        .map(|(c, target, od)| {
            let name = index_name("fk", t, &c);
            format!(
                "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = '{name}' AND conrelid = '{t}'::regclass) THEN ALTER TABLE {} ADD CONSTRAINT {} {}; END IF; END $$",
                quoted(t),
                quoted(&name),
                fk_clause(&c, &target, od)
            )
        })
        .collect()
}

/// The row-level security predicate of reads: the row's tenant is one of `crm.read_orgs` (the
/// caller's tenant, then the descendant tenants a parent role was resolved to). The setting is
/// read once per statement (an init plan), so a row costs one comparison.
pub const READ_POLICY: &str = "org_id = ANY ((SELECT string_to_array(current_setting('crm.read_orgs', true), ','))::text[])";

/// The row-level security predicate of writes: the row belongs to `crm.org_id`, read once per
/// statement.
pub const WRITE_POLICY: &str = "org_id = (SELECT current_setting('crm.org_id', true))";

/// PostgreSQL: the policies of a tenant table `t`: one per command, so a read is checked against
/// one policy (permissive policies of a command are OR-ed). With the settings absent or empty no
/// row is visible or writable. `crm_tenant` and `crm_tenant_read`, the policies of earlier
/// versions (one for every command, one more for reads, both evaluating the settings per row),
/// are replaced.
#[must_use]
pub fn tenant_policies(t: &str) -> Vec<String> {
    let create = |name: &str, body: String| {
        format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = current_schema() AND tablename = '{t}' AND policyname = '{name}') THEN CREATE POLICY {name} ON {} {body}; END IF; END $$",
            quoted(t)
        )
    };
    vec![
        format!("DROP POLICY IF EXISTS crm_tenant ON {}", quoted(t)),
        format!("DROP POLICY IF EXISTS crm_tenant_read ON {}", quoted(t)),
        create("crm_read", format!("FOR SELECT USING ({READ_POLICY})")),
        create("crm_insert", format!("FOR INSERT WITH CHECK ({WRITE_POLICY})")),
        create("crm_update", format!("FOR UPDATE USING ({WRITE_POLICY}) WITH CHECK ({WRITE_POLICY})")),
        create("crm_delete", format!("FOR DELETE USING ({WRITE_POLICY})")),
    ]
}

/// PostgreSQL: row-level security on a model table, forced for the table owner too, with the
/// [`tenant_policies`].
#[must_use]
pub fn row_level_security(m: &Model) -> Vec<String> {
    let t = m.table.as_str();
    let mut out =
        vec![format!("ALTER TABLE {} ENABLE ROW LEVEL SECURITY", quoted(t)), format!("ALTER TABLE {} FORCE ROW LEVEL SECURITY", quoted(t))];
    out.extend(tenant_policies(t));
    out
}

/// Around a migration's work on every tenant's rows of `table` (a fill, a refill): on PostgreSQL
/// the statement that lifts row-level security for the table's owner, the migrating role
/// (`lifted`), or puts it back. Both run in the migration's transaction, so no other session
/// ever sees the table unforced (`ALTER TABLE` holds its lock until the commit). None on SQLite.
#[must_use]
pub fn owner_rls(d: Dialect, table: &str, lifted: bool) -> Option<String> {
    (d == Dialect::Postgres).then(|| format!("ALTER TABLE {} {}FORCE ROW LEVEL SECURITY", quoted(table), if lifted { "NO " } else { "" }))
}

/// The columns of `table`, by name.
#[must_use]
pub fn list_columns(d: Dialect, table: &str) -> Built {
    let template = match d {
        Dialect::Sqlite => "SELECT name FROM pragma_table_xinfo({})",
        Dialect::Postgres => {
            "SELECT column_name::text FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = {}"
        }
    };
    d.statement(template, vec![table.into()])
}

/// Whether `table` has the search column of earlier versions, generated by the database: 1 or 0.
#[must_use]
pub fn generated_search_column(d: Dialect, table: &str) -> Built {
    let template = match d {
        Dialect::Sqlite => "SELECT COUNT(*) FROM pragma_table_xinfo({}) WHERE name = 'crm_search' AND hidden IN (2, 3)",
        Dialect::Postgres => {
            "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = {} \
             AND column_name = 'crm_search' AND is_generated = 'ALWAYS'"
        }
    };
    d.statement(template, vec![table.into()])
}

/// Turns the generated search column of earlier versions into the plain column the store writes:
/// on PostgreSQL the values stay; SQLite cannot, so the column is dropped (it stored nothing: it was
/// VIRTUAL) and [`add_columns`] adds it back, for the refill to fill.
#[must_use]
pub fn ungenerate_search_column(d: Dialect, table: &str) -> String {
    match d {
        Dialect::Postgres => {
            format!("ALTER TABLE {} ALTER COLUMN {} DROP EXPRESSION", quoted(table), quoted(crate::sql::search::SEARCH_COLUMN))
        }
        Dialect::Sqlite => format!("ALTER TABLE {} DROP COLUMN {}", quoted(table), quoted(crate::sql::search::SEARCH_COLUMN)),
    }
}

/// Whether the system migrations ran: how many succeeded.
#[must_use]
pub fn migrations_applied(d: Dialect) -> Built {
    d.statement("SELECT COUNT(*) FROM _sqlx_migrations WHERE success", Vec::new())
}

/// Every model table migrated so far, with the fingerprint of its DDL: `(table, fingerprint)`.
#[must_use]
pub fn migrated_tables(d: Dialect) -> Built {
    d.statement("SELECT table_name, ddl_hash FROM crm_model_tables", Vec::new())
}

/// Records that `model`'s table was migrated to the DDL of fingerprint `hash` at `now`.
///
/// # Errors
/// A statement sea-query cannot build (an internal error).
pub fn record_migrated(d: Dialect, model: &Model, hash: &str, now: DateTime<Utc>) -> Result<Built> {
    record_step(d, model.table.as_str(), model, hash, now)
}

/// The key under which [`record_search_filled`] records a table's search column.
#[must_use]
pub fn search_key(model: &Model) -> String {
    format!("{}#search", model.table)
}

/// Records that `model`'s search column was filled by the refill of fingerprint `hash` (its
/// searchable columns) at `now`: a later change of them refills it.
///
/// # Errors
/// A statement sea-query cannot build (an internal error).
pub fn record_search_filled(d: Dialect, model: &Model, hash: &str, now: DateTime<Utc>) -> Result<Built> {
    record_step(d, &search_key(model), model, hash, now)
}

fn record_step(d: Dialect, key: &str, model: &Model, hash: &str, now: DateTime<Utc>) -> Result<Built> {
    let stmt = Query::insert()
        .into_table(Alias::new("crm_model_tables"))
        .columns([Alias::new("table_name"), Alias::new("model"), Alias::new("ddl_hash"), Alias::new("migrated_at")])
        .values([Expr::val(key), Expr::val(model.name.as_str()), Expr::val(hash), d.bind(&Value::DateTime(now))])
        .map_err(OrmError::statement)?
        .on_conflict(
            sea_query::OnConflict::column(Alias::new("table_name"))
                .update_columns([Alias::new("model"), Alias::new("ddl_hash"), Alias::new("migrated_at")])
                .to_owned(),
        )
        .to_owned();
    Ok(d.build(&stmt))
}

/// A stable fingerprint of a table's DDL (FNV-1a 64), to skip unchanged tables on start-up.
#[must_use]
pub fn fingerprint(ddl: &[String]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for s in ddl {
        for b in s.bytes().chain(std::iter::once(0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// Triggers writing the property history (tracked fields) and the stage transitions (stage
/// fields) of `m`, in the transaction of every insert and update. Time and actor are the row's
/// own `created_at`/`updated_at` and `created_by`/`updated_by`, which the store sets on every
/// write, so every write path (updates, batches, cleared references) is recorded alike. None for
/// a model without such fields (and any earlier triggers are dropped). The history of custom
/// values (the `custom` JSON column, one entry per changed key) has triggers of its own on every
/// table, whatever its fields, since any tenant may add custom fields to any model.
#[must_use]
pub fn track_triggers(d: Dialect, m: &Model) -> Vec<String> {
    let mut out = column_triggers(d, m);
    out.extend(custom_triggers(d, m));
    out
}

/// History triggers of the custom-values column of `m`'s table.
fn custom_triggers(d: Dialect, m: &Model) -> Vec<String> {
    let t = m.table.as_str();
    let model = m.name.as_str();
    match d {
        Dialect::Postgres => vec![
            format!("DROP TRIGGER IF EXISTS crm_custom_ins ON {}", quoted(t)),
            format!("DROP TRIGGER IF EXISTS crm_custom_upd ON {}", quoted(t)),
            format!(
                "CREATE TRIGGER crm_custom_ins AFTER INSERT ON {} FOR EACH ROW WHEN (NEW.custom IS NOT NULL) \
                 EXECUTE FUNCTION crm_track_custom('{model}')",
                quoted(t)
            ),
            format!(
                "CREATE TRIGGER crm_custom_upd AFTER UPDATE ON {} FOR EACH ROW WHEN (NEW.custom IS DISTINCT FROM OLD.custom) \
                 EXECUTE FUNCTION crm_track_custom('{model}')",
                quoted(t)
            ),
        ],
        Dialect::Sqlite => {
            let (ti, tu) = (quoted(&format!("crm_custom_{t}_ins")), quoted(&format!("crm_custom_{t}_upd")));
            let cols = "org_id, model, record_id, field, old_value, new_value, changed_at, changed_by";
            vec![
                format!("DROP TRIGGER IF EXISTS {ti}"),
                format!("DROP TRIGGER IF EXISTS {tu}"),
                format!(
                    "CREATE TRIGGER {ti} AFTER INSERT ON {} WHEN NEW.custom IS NOT NULL BEGIN \
                     INSERT INTO crm_history ({cols}) SELECT NEW.org_id, '{model}', NEW.id, e.key, NULL, NEW.custom -> e.key, \
                     NEW.created_at, NEW.created_by FROM json_each(NEW.custom) AS e WHERE e.type <> 'null' ORDER BY e.key; END",
                    quoted(t)
                ),
                format!(
                    "CREATE TRIGGER {tu} AFTER UPDATE ON {} WHEN OLD.custom IS NOT NEW.custom BEGIN \
                     INSERT INTO crm_history ({cols}) SELECT NEW.org_id, '{model}', NEW.id, k.key, NULLIF(OLD.custom -> k.key, 'null'), \
                     NULLIF(NEW.custom -> k.key, 'null'), NEW.updated_at, NEW.updated_by FROM (SELECT key FROM \
                     json_each(COALESCE(OLD.custom, '{{}}')) UNION SELECT key FROM json_each(COALESCE(NEW.custom, '{{}}'))) AS k \
                     WHERE COALESCE(OLD.custom -> k.key, 'null') IS NOT COALESCE(NEW.custom -> k.key, 'null') ORDER BY k.key; END",
                    quoted(t)
                ),
            ]
        }
    }
}

/// History and stage triggers of the tracked and stage columns of `m`.
fn column_triggers(d: Dialect, m: &Model) -> Vec<String> {
    let t = m.table.as_str();
    let tracked: Vec<&Field> = m.fields.values().filter(|f| f.tracked && f.is_stored() && !f.custom).collect();
    let stages: Vec<&Field> = m.fields.values().filter(|f| f.stage && f.is_stored() && !f.custom).collect();
    let model = m.name.as_str();
    match d {
        Dialect::Postgres => {
            let func = quoted(&format!("crm_track_{t}"));
            let mut out = vec![format!("DROP TRIGGER IF EXISTS crm_track ON {}", quoted(t))];
            if tracked.is_empty() && stages.is_empty() {
                return out;
            }
            let hist = |f: &Field, old: &str, new: &str, at: &str, by: &str| {
                format!(
                    "INSERT INTO crm_history (org_id, model, record_id, field, old_value, new_value, changed_at, changed_by) \
                     VALUES (NEW.org_id, '{model}', NEW.id, '{}', {old}, {new}, NEW.{at}, NEW.{by});",
                    f.name
                )
            };
            let enter = |f: &Field, at: &str, by: &str| {
                format!(
                    "INSERT INTO crm_stage_transitions (org_id, model, record_id, field, stage, entered_at, entered_by) \
                     VALUES (NEW.org_id, '{model}', NEW.id, '{}', NEW.{}, NEW.{at}, NEW.{by});",
                    f.name,
                    quoted(f.column.as_str())
                )
            };
            let mut ins = String::new();
            let mut upd = String::new();
            for f in &tracked {
                let c = quoted(f.column.as_str());
                ins.push_str(&format!(
                    "IF NEW.{c} IS NOT NULL THEN {} END IF; ",
                    hist(f, "NULL", &format!("to_jsonb(NEW.{c})"), "created_at", "created_by")
                ));
                upd.push_str(&format!(
                    "IF NEW.{c} IS DISTINCT FROM OLD.{c} THEN {} END IF; ",
                    hist(f, &format!("to_jsonb(OLD.{c})"), &format!("to_jsonb(NEW.{c})"), "updated_at", "updated_by")
                ));
            }
            for f in &stages {
                let c = quoted(f.column.as_str());
                ins.push_str(&format!("IF NEW.{c} IS NOT NULL THEN {} END IF; ", enter(f, "created_at", "created_by")));
                upd.push_str(&format!(
                    "IF NEW.{c} IS DISTINCT FROM OLD.{c} THEN UPDATE crm_stage_transitions SET exited_at = NEW.updated_at \
                     WHERE org_id = NEW.org_id AND model = '{model}' AND record_id = NEW.id AND field = '{}' AND exited_at IS NULL; \
                     IF NEW.{c} IS NOT NULL THEN {} END IF; END IF; ",
                    f.name,
                    enter(f, "updated_at", "updated_by")
                ));
            }
            out.push(format!(
                "CREATE OR REPLACE FUNCTION {func}() RETURNS trigger LANGUAGE plpgsql AS $crm$ BEGIN \
                 IF TG_OP = 'INSERT' THEN {ins}ELSE {upd}END IF; RETURN NULL; END $crm$"
            ));
            out.push(format!("CREATE TRIGGER crm_track AFTER INSERT OR UPDATE ON {} FOR EACH ROW EXECUTE FUNCTION {func}()", quoted(t)));
            out
        }
        Dialect::Sqlite => {
            let (ti, tu) = (quoted(&format!("crm_track_{t}_ins")), quoted(&format!("crm_track_{t}_upd")));
            let mut out = vec![format!("DROP TRIGGER IF EXISTS {ti}"), format!("DROP TRIGGER IF EXISTS {tu}")];
            if tracked.is_empty() && stages.is_empty() {
                return out;
            }
            let mut ins = String::new();
            let mut upd = String::new();
            for f in &tracked {
                let c = quoted(f.column.as_str());
                let cols = "org_id, model, record_id, field, old_value, new_value, changed_at, changed_by";
                ins.push_str(&format!(
                    "INSERT INTO crm_history ({cols}) SELECT NEW.org_id, '{model}', NEW.id, '{}', NULL, json_quote(NEW.{c}), \
                     NEW.created_at, NEW.created_by WHERE NEW.{c} IS NOT NULL; ",
                    f.name
                ));
                upd.push_str(&format!(
                    "INSERT INTO crm_history ({cols}) SELECT NEW.org_id, '{model}', NEW.id, '{}', json_quote(OLD.{c}), json_quote(NEW.{c}), \
                     NEW.updated_at, NEW.updated_by WHERE OLD.{c} IS NOT NEW.{c}; ",
                    f.name
                ));
            }
            for f in &stages {
                let c = quoted(f.column.as_str());
                let cols = "org_id, model, record_id, field, stage, entered_at, entered_by";
                ins.push_str(&format!(
                    "INSERT INTO crm_stage_transitions ({cols}) SELECT NEW.org_id, '{model}', NEW.id, '{}', NEW.{c}, NEW.created_at, \
                     NEW.created_by WHERE NEW.{c} IS NOT NULL; ",
                    f.name
                ));
                upd.push_str(&format!(
                    "UPDATE crm_stage_transitions SET exited_at = NEW.updated_at WHERE OLD.{c} IS NOT NEW.{c} AND org_id = NEW.org_id \
                     AND model = '{model}' AND record_id = NEW.id AND field = '{}' AND exited_at IS NULL; \
                     INSERT INTO crm_stage_transitions ({cols}) SELECT NEW.org_id, '{model}', NEW.id, '{}', NEW.{c}, NEW.updated_at, \
                     NEW.updated_by WHERE OLD.{c} IS NOT NEW.{c} AND NEW.{c} IS NOT NULL; ",
                    f.name, f.name
                ));
            }
            out.push(format!("CREATE TRIGGER {ti} AFTER INSERT ON {} BEGIN {ins}END", quoted(t)));
            out.push(format!("CREATE TRIGGER {tu} AFTER UPDATE ON {} BEGIN {upd}END", quoted(t)));
            out
        }
    }
}
