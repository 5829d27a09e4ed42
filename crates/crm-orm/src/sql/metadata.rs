//! Tenant-defined metadata (`crm_metadata`): the stored definitions of custom fields and objects,
//! and the purge of a removed field's values and history.

use chrono::{DateTime, Utc};
use crm_model::{CUSTOM_COLUMN, OrgId, RECORDS_TABLE, ScalarType, Value};
use sea_query::{Alias, Expr, ExprTrait, Query};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::Built;
use super::dialect::Dialect;
use super::write::Stamp;
use crate::error::{OrmError, Result};

/// A stored definition, as the metadata API lists it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Definition {
    /// `field` or `object`.
    pub kind: String,
    /// The model a field belongs to; an object's own name.
    pub model: String,
    /// The field's name; empty for an object.
    pub name: String,
    /// The definition (JSON form of `FieldDef` / `ModelDef`).
    pub definition: Json,
    /// Whether it is part of the tenant's schema.
    pub active: bool,
    /// Declaration order.
    pub position: i64,
    /// Last change.
    pub updated_at: String,
    /// Who changed it last.
    pub updated_by: Option<String>,
}

fn col(c: &str) -> Expr {
    Expr::col(Alias::new(c))
}

/// Every stored definition of `org`, in declaration order, each the JSON text of a
/// [`Definition`].
///
/// # Errors
/// A key the dialect cannot write (an internal error).
pub fn definitions(d: Dialect, org: &OrgId) -> Result<Built> {
    let obj = d.object(vec![
        (d.key("kind")?, col("kind")),
        (d.key("model")?, col("model")),
        (d.key("name")?, col("name")),
        (d.key("definition")?, d.json_value(Some(&ScalarType::Json), col("definition"), None)),
        (d.key("active")?, d.json_value(Some(&ScalarType::Boolean), col("active"), None)),
        (d.key("position")?, col("position")),
        (d.key("updatedAt")?, d.json_value(Some(&ScalarType::DateTime), col("updated_at"), None)),
        (d.key("updatedBy")?, col("updated_by")),
    ]);
    let stmt = Query::select()
        .expr(d.json_text(obj))
        .from(Alias::new("crm_metadata"))
        .and_where(col("org_id").eq(Expr::val(org.as_str())))
        .order_by(Alias::new("position"), sea_query::Order::Asc)
        .to_owned();
    Ok(d.build(&stmt))
}

/// The INSERT of definition `r` of `org`, changed last at `at` by `by`.
pub(crate) fn insert(d: Dialect, org: &OrgId, r: &Definition, at: DateTime<Utc>, by: Option<&str>) -> Result<sea_query::InsertStatement> {
    let at = d.bind(&Value::DateTime(at));
    Ok(Query::insert()
        .into_table(Alias::new("crm_metadata"))
        .columns(
            ["org_id", "kind", "model", "name", "definition", "active", "position", "created_at", "updated_at", "updated_by"]
                .map(Alias::new),
        )
        .values([
            Expr::val(org.as_str()),
            Expr::val(r.kind.as_str()),
            Expr::val(r.model.as_str()),
            Expr::val(r.name.as_str()),
            d.bind(&Value::Json(r.definition.clone())),
            d.bind(&Value::Bool(r.active)),
            Expr::val(r.position),
            at.clone(),
            at,
            by.map_or_else(|| Expr::cust("NULL"), |b| d.bind(&Value::Text(b.to_owned()))),
        ])
        .map_err(OrmError::statement)?
        .to_owned())
}

/// Inserts or replaces definition `r` of the stamp's tenant.
///
/// # Errors
/// A statement sea-query cannot build (an internal error).
pub fn upsert(d: Dialect, stamp: &Stamp<'_>, r: &Definition) -> Result<Built> {
    let stmt = insert(d, stamp.org, r, stamp.now, Some(stamp.actor))?
        .on_conflict(
            sea_query::OnConflict::columns(["org_id", "kind", "model", "name"].map(Alias::new))
                .update_columns(["definition", "active", "updated_at", "updated_by"].map(Alias::new))
                .to_owned(),
        )
        .to_owned();
    Ok(d.build(&stmt))
}

/// Deletes stored definition `r` of `org`.
#[must_use]
pub fn remove(d: Dialect, org: &OrgId, r: &Definition) -> Built {
    let stmt = Query::delete()
        .from_table(Alias::new("crm_metadata"))
        .and_where(col("org_id").eq(Expr::val(org.as_str())))
        .and_where(col("kind").eq(Expr::val(r.kind.as_str())))
        .and_where(col("model").eq(Expr::val(r.model.as_str())))
        .and_where(col("name").eq(Expr::val(r.name.as_str())))
        .to_owned();
    d.build(&stmt)
}

/// How many records (in the trash or not) custom object `name` of `org` has.
#[must_use]
pub fn object_records(d: Dialect, org: &OrgId, name: &str) -> Built {
    let stmt = Query::select()
        .expr(Expr::cust("COUNT(*)"))
        .from(Alias::new(RECORDS_TABLE))
        .and_where(col("org_id").eq(Expr::val(org.as_str())))
        .and_where(col("object").eq(Expr::val(name)))
        .to_owned();
    d.build(&stmt)
}

/// The records of `org` in `table` (of custom object `object` when the table is the shared one)
/// with a value of custom field `field` (`with`), or without one.
fn records_by_value(d: Dialect, org: &OrgId, object: Option<&str>, field: &str, with: bool) -> sea_query::Condition {
    let value = d.custom_json(col(CUSTOM_COLUMN), field);
    let mut cond = sea_query::Condition::all().add(col("org_id").eq(Expr::val(org.as_str()))).add(if with {
        value.is_not_null()
    } else {
        value.is_null()
    });
    if let Some(o) = object {
        cond = cond.add(col("object").eq(Expr::val(o)));
    }
    cond
}

/// Sets custom field `field` to `stored` (its stored JSON; null removes it) in the records
/// [`records_by_value`] selects.
fn set_values(d: Dialect, org: &OrgId, table: &str, object: Option<&str>, field: &str, stored: Json, with: bool) -> Built {
    let changes = serde_json::Map::from_iter([(field.to_owned(), stored)]);
    let stmt = Query::update()
        .table(Alias::new(table))
        .value(Alias::new(CUSTOM_COLUMN), d.custom_patch(col(CUSTOM_COLUMN), &changes))
        .cond_where(records_by_value(d, org, object, field, with))
        .to_owned();
    d.build(&stmt)
}

/// Removes custom field `field`'s values from every record of `org` in `table` (of custom
/// object `object` when the table is the shared one).
#[must_use]
pub fn purge_values(d: Dialect, org: &OrgId, table: &str, object: Option<&str>, field: &str) -> Built {
    set_values(d, org, table, object, field, Json::Null, true)
}

/// How many records of `org` in `table` (of `object`), in the trash or not, have no value of
/// custom field `field`.
#[must_use]
pub fn missing_values(d: Dialect, org: &OrgId, table: &str, object: Option<&str>, field: &str) -> Built {
    let stmt = Query::select()
        .expr(Expr::cust("COUNT(*)"))
        .from(Alias::new(table))
        .cond_where(records_by_value(d, org, object, field, false))
        .to_owned();
    d.build(&stmt)
}

/// Gives every record of `org` in `table` (of `object`) without a value of custom field `field`
/// the value `stored` (the stored JSON of the field's default): a field made required.
#[must_use]
pub fn fill_values(d: Dialect, org: &OrgId, table: &str, object: Option<&str>, field: &str, stored: &Json) -> Built {
    set_values(d, org, table, object, field, stored.clone(), false)
}

/// Removes the history of field `field` of `model` in `org`.
#[must_use]
pub fn purge_history(d: Dialect, org: &OrgId, model: &str, field: &str) -> Built {
    let stmt = Query::delete()
        .from_table(Alias::new("crm_history"))
        .and_where(col("org_id").eq(Expr::val(org.as_str())))
        .and_where(col("model").eq(Expr::val(model)))
        .and_where(col("field").eq(Expr::val(field)))
        .to_owned();
    d.build(&stmt)
}
