//! The statements of writes: a record's insert, updates (with the optimistic version guard),
//! clearing references, the trash, deletes, and the check that restricts deleting a record
//! custom references still point at. Every statement is confined to the writer's tenant by a
//! bound `org_id` (and, for a custom object, to its own records of the shared table).

use chrono::{DateTime, Utc};
use crm_model::{CUSTOM_COLUMN, Field, FieldKind, Model, ModelName, OrgId, ScalarType, Value};
use sea_query::{Alias, Expr, ExprTrait, Query};
use serde_json::Value as Json;
use uuid::Uuid;

use super::Built;
use super::builder::stored_value;
use super::dialect::Dialect;
use crate::error::{OrmError, Result};

/// Who writes, in which tenant, and when: what every write statement stamps on its rows
/// (`org_id`, `createdBy`/`updatedBy`, `createdAt`/`updatedAt`).
#[derive(Debug, Clone, Copy)]
pub struct Stamp<'a> {
    /// The tenant written in.
    pub org: &'a OrgId,
    /// The writer (`sub` of the principal, or `system:<store>`).
    pub actor: &'a str,
    /// The instant of the write.
    pub now: DateTime<Utc>,
}

impl Stamp<'_> {
    fn now(&self, d: Dialect) -> Expr {
        d.bind(&Value::DateTime(self.now))
    }
    fn actor(&self, d: Dialect) -> Expr {
        d.bind(&Value::Text(self.actor.to_owned()))
    }
    fn org(&self) -> Expr {
        Expr::val(self.org.as_str())
    }
}

/// What one write sets: columns, and custom values merged into the row's JSON document.
#[derive(Debug, Default)]
pub struct Sets {
    cols: Vec<(String, Expr)>,
    custom: serde_json::Map<String, Json>,
    /// The values of searchable columns set (by column), for the search column.
    searched: Vec<(String, Option<String>)>,
}

impl Sets {
    /// Sets field `f` to `v` (null clears it).
    pub fn add(&mut self, d: Dialect, f: &Field, v: &Value) {
        if f.custom {
            self.custom.insert(f.name.to_string(), stored_json(v));
        } else {
            if f.searchable {
                let text = match v {
                    Value::Text(t) => Some(t.clone()),
                    _ => None,
                };
                self.searched.push((f.column.to_string(), text));
            }
            self.cols.extend(columns_of(d, f, v));
        }
    }

    /// Whether a searchable column is set: an update must rewrite the row's search column.
    #[must_use]
    pub fn sets_searched(&self) -> bool {
        !self.searched.is_empty()
    }

    /// The assignments of an UPDATE: custom values patch the document in place.
    fn into_update(self, d: Dialect) -> Vec<(String, Expr)> {
        let mut cols = self.cols;
        if !self.custom.is_empty() {
            cols.push((CUSTOM_COLUMN.to_owned(), d.custom_patch(Expr::col(Alias::new(CUSTOM_COLUMN)), &self.custom)));
        }
        cols
    }

    /// The columns of an INSERT: the document holds the non-null custom values.
    fn into_insert(self, d: Dialect) -> Vec<(String, Expr)> {
        let mut cols = self.cols;
        let doc: serde_json::Map<String, Json> = self.custom.into_iter().filter(|(_, v)| !v.is_null()).collect();
        if !doc.is_empty() {
            cols.push((CUSTOM_COLUMN.to_owned(), d.bind(&Value::Json(Json::Object(doc)))));
        }
        cols
    }
}

/// A custom value as stored: its client JSON form, decimals without trailing zeros (as the
/// columns give them back).
pub(crate) fn stored_json(v: &Value) -> Json {
    match v {
        Value::Decimal(s) => Json::String(trim_decimal(s)),
        Value::Money { amount, currency } => serde_json::json!({ "amount": trim_decimal(amount), "currency": currency }),
        other => other.to_json(),
    }
}

fn trim_decimal(s: &str) -> String {
    if !s.contains('.') {
        return s.to_owned();
    }
    let t = s.trim_end_matches('0').trim_end_matches('.');
    if t == "-0" || t.is_empty() { "0".to_owned() } else { t.to_owned() }
}

/// Columns and bound values of a column-stored field.
fn columns_of(d: Dialect, f: &Field, v: &Value) -> Vec<(String, Expr)> {
    match (&f.kind, v) {
        (FieldKind::Scalar(ScalarType::Money { currency_column }), Value::Money { amount, currency }) => vec![
            (f.column.to_string(), d.bind(&Value::Decimal(amount.clone()))),
            (currency_column.to_string(), d.bind(&Value::Text(currency.clone()))),
        ],
        (FieldKind::Scalar(ScalarType::Money { currency_column }), _) => {
            vec![(f.column.to_string(), d.bind(v)), (currency_column.to_string(), Expr::cust("NULL"))]
        }
        (FieldKind::Polymorphic { type_column, .. }, Value::Ref { model, id }) => {
            vec![(type_column.to_string(), d.bind(&Value::Text(model.to_string()))), (f.column.to_string(), d.bind(&Value::Uuid(*id)))]
        }
        (FieldKind::Polymorphic { type_column, .. }, _) => {
            vec![(type_column.to_string(), Expr::cust("NULL")), (f.column.to_string(), Expr::cust("NULL"))]
        }
        _ => vec![(f.column.to_string(), d.bind(v))],
    }
}

fn col(c: &str) -> Expr {
    Expr::col(Alias::new(c))
}

fn ids_in(d: Dialect, ids: &[Uuid]) -> Expr {
    d.ids_in(ids)
}

/// `cond` on the tenant's rows of `model` (for a custom object, its own records of the shared
/// table), in statements without a table alias.
fn tenant_rows(model: &Model, org: &OrgId, cond: Expr) -> Expr {
    let mut e = col("org_id").eq(Expr::val(org.as_str())).and(cond);
    if model.custom {
        e = e.and(col("object").eq(Expr::val(model.name.as_str())));
    }
    e
}

/// Inserts record `id` of `model` with `sets`, created and last updated by the stamp's actor, at
/// version 1.
///
/// # Errors
/// A statement sea-query cannot build (an internal error).
pub fn insert(d: Dialect, model: &Model, stamp: &Stamp<'_>, id: Uuid, sets: Sets) -> Result<Built> {
    insert_many(d, model, stamp, vec![(id, sets)])?.pop().ok_or_else(|| OrmError::invariant("an insert of one row made no statement"))
}

/// The columns of a new record's row: tenant, id, stamps, version 1, the sets (and a custom
/// object's name).
fn row_columns(d: Dialect, model: &Model, stamp: &Stamp<'_>, id: Uuid, sets: Sets) -> Vec<(String, Expr)> {
    let mut cols: Vec<(String, Expr)> = vec![
        ("org_id".into(), stamp.org()),
        ("id".into(), d.bind(&Value::Uuid(id))),
        ("created_at".into(), stamp.now(d)),
        ("updated_at".into(), stamp.now(d)),
        ("created_by".into(), stamp.actor(d)),
        ("updated_by".into(), stamp.actor(d)),
        ("version".into(), d.bind(&Value::Int(1))),
    ];
    cols.extend(field_columns(d, model, sets));
    cols
}

/// The columns of a new row's fields: the sets, the search column, a custom object's name.
fn field_columns(d: Dialect, model: &Model, sets: Sets) -> Vec<(String, Expr)> {
    let search = super::search::has_column(model).then(|| {
        let searched = &sets.searched;
        super::search::text(model, |c| searched.iter().find(|(s, _)| s == c).and_then(|(_, t)| t.as_deref()))
    });
    let mut cols = sets.into_insert(d);
    if let Some(text) = search {
        cols.push((super::search::SEARCH_COLUMN.to_owned(), d.bind(&Value::Text(text))));
    }
    if model.custom {
        cols.push(("object".into(), Expr::val(model.name.as_str())));
    }
    cols
}

/// Most rows one INSERT of [`insert_many`] carries (bound values stay far below both backends'
/// limits).
pub const ROWS_PER_INSERT: usize = 500;

/// Inserts records `rows` (id and sets) of `model` like [`insert`], rows of the same columns
/// together, at most [`ROWS_PER_INSERT`] a statement.
///
/// # Errors
/// A statement sea-query cannot build (an internal error).
pub fn insert_many(d: Dialect, model: &Model, stamp: &Stamp<'_>, rows: Vec<(Uuid, Sets)>) -> Result<Vec<Built>> {
    inserts(d, model, rows.into_iter().map(|(id, sets)| row_columns(d, model, stamp, id, sets)))
}

/// The INSERTs of rows given as their columns: rows of the same columns together, at most
/// [`ROWS_PER_INSERT`] a statement.
fn inserts(d: Dialect, model: &Model, rows: impl Iterator<Item = Vec<(String, Expr)>>) -> Result<Vec<Built>> {
    let mut shapes: Vec<(Vec<String>, Vec<Vec<Expr>>)> = Vec::new();
    for cols in rows {
        let (names, values): (Vec<String>, Vec<Expr>) = cols.into_iter().unzip();
        match shapes.iter_mut().find(|(n, v)| *n == names && v.len() < ROWS_PER_INSERT) {
            Some((_, v)) => v.push(values),
            None => shapes.push((names, vec![values])),
        }
    }
    let mut out = Vec::with_capacity(shapes.len());
    for (names, rows) in shapes {
        let mut stmt = Query::insert();
        stmt.into_table(Alias::new(model.table.as_str())).columns(names.iter().map(|c| Alias::new(c.as_str())));
        for values in rows {
            stmt.values(values).map_err(OrmError::statement)?;
        }
        out.push(d.build(&stmt));
    }
    Ok(out)
}

/// An UPDATE of `model`'s table as a write: `sets`, the version bumped, `updatedAt`/`updatedBy`
/// stamped, on the tenant's rows matching `cond`.
fn update_where(d: Dialect, model: &Model, stamp: &Stamp<'_>, sets: Vec<(String, Expr)>, cond: Expr) -> Built {
    let mut stmt = Query::update();
    stmt.table(Alias::new(model.table.as_str()));
    for (c, e) in sets {
        stmt.value(Alias::new(c.as_str()), e);
    }
    stmt.value(Alias::new("version"), col("version").add(1))
        .value(Alias::new("updated_at"), stamp.now(d))
        .value(Alias::new("updated_by"), stamp.actor(d))
        .cond_where(tenant_rows(model, stamp.org, cond));
    d.build(&stmt)
}

/// Updates records `ids` of `model` with `sets`; with `version`, only a record still at that
/// version (the optimistic guard: zero rows changed means a concurrent write won).
#[must_use]
pub fn update(d: Dialect, model: &Model, stamp: &Stamp<'_>, ids: &[Uuid], sets: Sets, version: Option<i64>) -> Built {
    let mut cond = ids_in(d, ids);
    if let Some(v) = version {
        cond = cond.and(col("version").eq(Expr::val(v)));
    }
    update_where(d, model, stamp, sets.into_update(d), cond)
}

/// Gives every row of `model` (every tenant: a migration's work) without a value of `field` the
/// value `v`: a required field added to a table with rows, filled with its default.
#[must_use]
pub fn fill_column(d: Dialect, model: &Model, field: &Field, v: &Value) -> Built {
    let mut stmt = Query::update();
    stmt.table(Alias::new(model.table.as_str()));
    for (c, e) in columns_of(d, field, v) {
        stmt.value(Alias::new(c.as_str()), e);
    }
    stmt.and_where(col(field.column.as_str()).is_null());
    d.build(&stmt)
}

/// How many rows of `model` (every tenant) have no value of `field`.
#[must_use]
pub fn count_missing(d: Dialect, model: &Model, field: &Field) -> Built {
    let stmt = Query::select()
        .expr(Expr::cust("COUNT(*)"))
        .from(Alias::new(model.table.as_str()))
        .and_where(col(field.column.as_str()).is_null())
        .to_owned();
    d.build(&stmt)
}

/// Sets `fields` to null on the tenant's rows of `model` matching `cond`, as a write.
fn clear(d: Dialect, model: &Model, stamp: &Stamp<'_>, fields: &[&Field], cond: Expr) -> Built {
    let mut sets = Sets::default();
    for f in fields {
        sets.add(d, f, &Value::Null);
    }
    update_where(d, model, stamp, sets.into_update(d), cond)
}

/// `via` of `target`'s rows equals `parent`: the members of a to-many relation.
fn members(d: Dialect, target: &Model, via: &Field, parent: Uuid) -> Expr {
    stored_value(d, target.table.as_str(), target, via).eq(d.bind(&Value::Uuid(parent)))
}

/// Detaches every member of `parent`'s to-many relation (through `target.via`) but `keep`.
#[must_use]
pub fn detach_others(d: Dialect, target: &Model, via: &Field, stamp: &Stamp<'_>, parent: Uuid, keep: &[Uuid]) -> Built {
    let others = if keep.is_empty() { Expr::cust("TRUE") } else { col("id").is_not_in(keep.iter().map(|k| d.bind(&Value::Uuid(*k)))) };
    clear(d, target, stamp, &[via], members(d, target, via, parent).and(others))
}

/// Detaches member `child` of `parent`'s to-many relation (no row changed: it was not a member).
#[must_use]
pub fn detach(d: Dialect, target: &Model, via: &Field, stamp: &Stamp<'_>, parent: Uuid, child: Uuid) -> Built {
    let cond = col("id").eq(d.bind(&Value::Uuid(child))).and(members(d, target, via, parent));
    clear(d, target, stamp, &[via], cond)
}

/// Clears `field` of `model` where it refers to one of `ids` (a set-null relation of a record
/// being deleted).
#[must_use]
pub fn clear_references(d: Dialect, model: &Model, field: &Field, stamp: &Stamp<'_>, ids: &[Uuid]) -> Built {
    let pointing = stored_value(d, model.table.as_str(), model, field).is_in(ids.iter().map(|i| d.bind(&Value::Uuid(*i))));
    clear(d, model, stamp, &[field], pointing)
}

/// Clears polymorphic `field` of `model` where it refers to one of `ids` of `target`.
#[must_use]
pub fn clear_polymorphic(d: Dialect, model: &Model, field: &Field, stamp: &Stamp<'_>, target: &ModelName, ids: &[Uuid]) -> Built {
    let FieldKind::Polymorphic { type_column, .. } = &field.kind else {
        return clear_references(d, model, field, stamp, ids);
    };
    let cond = col(type_column.as_str())
        .eq(Expr::val(target.as_str()))
        .and(col(field.column.as_str()).is_in(ids.iter().map(|i| d.bind(&Value::Uuid(*i)))));
    clear(d, model, stamp, &[field], cond)
}

/// The tenant's rows of `model` (in the trash or not) whose polymorphic reference `field` points
/// at one of `ids` of `target`, as `(id, version)`: what a cascading reference destroys with them.
#[must_use]
pub fn polymorphic_referrers(d: Dialect, model: &Model, field: &Field, org: &OrgId, target: &ModelName, ids: &[Uuid]) -> Built {
    let FieldKind::Polymorphic { type_column, .. } = &field.kind else {
        // Not a polymorphic reference: nothing refers through it this way.
        return d.build(&Query::select().expr(Expr::cust("NULL")).and_where(Expr::cust("1 = 0")).to_owned());
    };
    let pointing = col(type_column.as_str())
        .eq(Expr::val(target.as_str()))
        .and(col(field.column.as_str()).is_in(ids.iter().map(|i| d.bind(&Value::Uuid(*i)))));
    let stmt = Query::select()
        .expr_as(d.cust("CAST({} AS TEXT)", vec![col("id")]), Alias::new("id"))
        .expr_as(col("version"), Alias::new("version"))
        .from(Alias::new(model.table.as_str()))
        .cond_where(tenant_rows(model, org, pointing))
        .to_owned();
    d.build(&stmt)
}

/// How many of the tenant's rows of `model` (in the trash or not) refer to one of `ids` through
/// `field`: a restrict relation without a foreign key (custom references).
#[must_use]
pub fn count_references(d: Dialect, model: &Model, field: &Field, org: &OrgId, ids: &[Uuid]) -> Built {
    let pointing = stored_value(d, model.table.as_str(), model, field).is_in(ids.iter().map(|i| d.bind(&Value::Uuid(*i))));
    let stmt = Query::select()
        .expr(Expr::cust("COUNT(*)"))
        .from(Alias::new(model.table.as_str()))
        .cond_where(tenant_rows(model, org, pointing))
        .to_owned();
    d.build(&stmt)
}

/// Moves records `ids` to the trash (`deleted`) or out of it, as a write. Only rows on the other
/// side change, so fewer rows than ids means one moved meanwhile.
#[must_use]
pub fn set_deleted(d: Dialect, model: &Model, stamp: &Stamp<'_>, ids: &[Uuid], deleted: bool) -> Built {
    let (deleted_at, side) =
        if deleted { (stamp.now(d), col("deleted_at").is_null()) } else { (Expr::cust("NULL"), col("deleted_at").is_not_null()) };
    update_where(d, model, stamp, vec![("deleted_at".to_owned(), deleted_at)], ids_in(d, ids).and(side))
}

/// Deletes record `id` of `model` for good, if still at `version`.
#[must_use]
pub fn delete(d: Dialect, model: &Model, org: &OrgId, id: Uuid, version: i64) -> Built {
    let stmt = Query::delete()
        .from_table(Alias::new(model.table.as_str()))
        .cond_where(tenant_rows(model, org, col("id").eq(d.bind(&Value::Uuid(id))).and(col("version").eq(Expr::val(version)))))
        .to_owned();
    d.build(&stmt)
}

/// Locks record `id` of `model` until the transaction ends (PostgreSQL `FOR UPDATE`; `None` on
/// SQLite, whose write transactions are serial already).
#[must_use]
pub fn lock(d: Dialect, model: &Model, org: &OrgId, id: Uuid) -> Option<Built> {
    if d != Dialect::Postgres {
        return None;
    }
    let stmt = Query::select()
        .expr(Expr::cust("1"))
        .from(Alias::new(model.table.as_str()))
        .cond_where(tenant_rows(model, org, col("id").eq(d.bind(&Value::Uuid(id)))))
        .lock(sea_query::LockType::Update)
        .to_owned();
    Some(d.build(&stmt))
}

/// A record as an export holds it: its id, stamps, version and trash state, and its fields.
#[derive(Debug)]
pub struct Restored {
    /// The record.
    pub id: Uuid,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
    /// Who created it.
    pub created_by: Option<String>,
    /// Who changed it last.
    pub updated_by: Option<String>,
    /// Its version.
    pub version: i64,
    /// When it was moved to the trash (none: live).
    pub deleted_at: Option<DateTime<Utc>>,
    /// Its fields' values.
    pub sets: Sets,
}

/// Inserts records of `model` of `org` exactly as `rows` hold them (ids, stamps, versions, the
/// trash), like [`insert_many`] otherwise (search column, a custom object's name): an import.
///
/// # Errors
/// A statement sea-query cannot build (an internal error).
pub fn restore_many(d: Dialect, model: &Model, org: &OrgId, rows: Vec<Restored>) -> Result<Vec<Built>> {
    let text = |s: &Option<String>| s.as_ref().map_or_else(|| Expr::cust("NULL"), |t| d.bind(&Value::Text(t.clone())));
    let columns = rows.into_iter().map(|r| {
        let mut cols: Vec<(String, Expr)> = vec![
            ("org_id".into(), Expr::val(org.as_str())),
            ("id".into(), d.bind(&Value::Uuid(r.id))),
            ("created_at".into(), d.bind(&Value::DateTime(r.created_at))),
            ("updated_at".into(), d.bind(&Value::DateTime(r.updated_at))),
            ("created_by".into(), text(&r.created_by)),
            ("updated_by".into(), text(&r.updated_by)),
            ("version".into(), d.bind(&Value::Int(r.version))),
            ("deleted_at".into(), r.deleted_at.map_or_else(|| Expr::cust("NULL"), |t| d.bind(&Value::DateTime(t)))),
        ];
        cols.extend(field_columns(d, model, r.sets));
        cols
    });
    inserts(d, model, columns)
}

/// Sets to-one `field` of record `id` of `model` to `target` without a write's stamps or version
/// (the second pass of an import, for references to records imported after it).
#[must_use]
pub fn restore_reference(d: Dialect, model: &Model, field: &Field, org: &OrgId, id: Uuid, target: Uuid) -> Built {
    let mut sets = Sets::default();
    sets.add(d, field, &Value::Uuid(target));
    let mut stmt = Query::update();
    stmt.table(Alias::new(model.table.as_str()));
    for (c, e) in sets.into_update(d) {
        stmt.value(Alias::new(c.as_str()), e);
    }
    stmt.cond_where(tenant_rows(model, org, col("id").eq(d.bind(&Value::Uuid(id)))));
    d.build(&stmt)
}
