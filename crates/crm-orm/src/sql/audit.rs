//! The audit log (`crm_audit`): entries written in the transaction of what they record (record
//! deletes, restores and destroys, metadata changes), and the newest entries of a tenant.

use crm_model::{ModelName, OrgId, ScalarType, Value};
use sea_query::{Alias, Expr, ExprTrait, Query};
use serde_json::Value as Json;
use uuid::Uuid;

use super::Built;
use super::dialect::Dialect;
use super::write::Stamp;
use crate::error::{OrmError, Result};

const COLUMNS: [&str; 6] = ["org_id", "at", "actor", "action", "model", "record_id"];

/// One entry per record of `ids` of `model`: `action` (`delete`, `restore`, `destroy`) by the
/// stamp's actor. `None` for no records.
///
/// # Errors
/// A statement sea-query cannot build (an internal error).
pub fn records(d: Dialect, stamp: &Stamp<'_>, model: &ModelName, ids: &[Uuid], action: &str) -> Result<Option<Built>> {
    if ids.is_empty() {
        return Ok(None);
    }
    let mut stmt = Query::insert();
    stmt.into_table(Alias::new("crm_audit")).columns(COLUMNS.map(Alias::new));
    for id in ids {
        stmt.values([
            Expr::val(stamp.org.as_str()),
            d.bind(&Value::DateTime(stamp.now)),
            d.bind(&Value::Text(stamp.actor.to_owned())),
            Expr::val(action),
            Expr::val(model.as_str()),
            d.bind(&Value::Uuid(*id)),
        ])
        .map_err(OrmError::statement)?;
    }
    Ok(Some(d.build(&stmt)))
}

/// One entry about `model` (no record) with a JSON `detail`: a metadata change.
///
/// # Errors
/// A statement sea-query cannot build (an internal error).
pub fn change(d: Dialect, stamp: &Stamp<'_>, action: &str, model: &str, detail: Json) -> Result<Built> {
    let stmt = Query::insert()
        .into_table(Alias::new("crm_audit"))
        .columns(["org_id", "at", "actor", "action", "model", "detail"].map(Alias::new))
        .values([
            Expr::val(stamp.org.as_str()),
            d.bind(&Value::DateTime(stamp.now)),
            d.bind(&Value::Text(stamp.actor.to_owned())),
            Expr::val(action),
            Expr::val(model),
            d.bind(&Value::Json(detail)),
        ])
        .map_err(OrmError::statement)?
        .to_owned();
    Ok(d.build(&stmt))
}

/// The newest `first` entries of `org`'s log (of one model when given), newest first, each
/// as the JSON text of `{"at", "actor", "action", "model", "recordId", "detail"}`.
///
/// # Errors
/// A key the dialect cannot write (an internal error).
pub fn log(d: Dialect, org: &OrgId, model: Option<&ModelName>, first: u32) -> Result<sea_query::SelectStatement> {
    let a = || Alias::new("a");
    let col = |c: &str| Expr::col((a(), Alias::new(c)));
    let obj = d.object(vec![
        (d.key("at")?, d.json_value(Some(&ScalarType::DateTime), col("at"), None)),
        (d.key("actor")?, col("actor")),
        (d.key("action")?, col("action")),
        (d.key("model")?, col("model")),
        (d.key("recordId")?, d.json_value(Some(&ScalarType::Id), col("record_id"), None)),
        (d.key("detail")?, d.json_value(Some(&ScalarType::Json), col("detail"), None)),
    ]);
    let mut cond = col("org_id").eq(Expr::val(org.as_str()));
    if let Some(m) = model {
        cond = cond.and(col("model").eq(Expr::val(m.as_str())));
    }
    Ok(Query::select()
        .expr(d.json_text(obj))
        .from_as(Alias::new("crm_audit"), a())
        .cond_where(cond)
        .order_by_expr(col("seq"), sea_query::Order::Desc)
        .limit(u64::from(first))
        .to_owned())
}
