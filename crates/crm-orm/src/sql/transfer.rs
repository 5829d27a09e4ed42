//! Moving a tenant out and in (`crm-server export` / `import`): the statements that read its
//! records (every stored field, system fields and trashed records included) and its logs
//! (property history, stage transitions, audit log) as JSON, and write them back as they were.
//! The record inserts are [`super::write::restore_many`].

use chrono::{DateTime, Utc};
use crm_model::{Catalog, FieldKind, Model, ModelName, OrgId, ScalarType, Value};
use sea_query::{Alias, Expr, ExprTrait, Order, Query};
use serde_json::Value as Json;
use uuid::Uuid;

use super::dialect::Dialect;
use super::metadata::Definition;
use super::{Builder, Built, Limits};
use crate::authorization::Access;
use crate::error::{OrmError, Result};
use crate::ir::Selection;

/// How a log column is carried in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text (null allowed).
    Text,
    /// A record id.
    Id,
    /// A JSON document.
    Json,
    /// An instant, RFC 3339.
    Time,
}

/// A per-tenant log table: its name and its columns besides `org_id` and `seq` (which orders it
/// and is given anew on import).
#[derive(Debug)]
pub struct Log {
    /// The table.
    pub table: &'static str,
    /// Its columns.
    pub columns: &'static [(&'static str, Kind)],
}

/// The logs a tenant export carries: property history, stage transitions, the audit log.
pub const LOGS: &[Log] = &[
    Log {
        table: "crm_history",
        columns: &[
            ("model", Kind::Text),
            ("record_id", Kind::Id),
            ("field", Kind::Text),
            ("old_value", Kind::Json),
            ("new_value", Kind::Json),
            ("changed_at", Kind::Time),
            ("changed_by", Kind::Text),
        ],
    },
    Log {
        table: "crm_stage_transitions",
        columns: &[
            ("model", Kind::Text),
            ("record_id", Kind::Id),
            ("field", Kind::Text),
            ("stage", Kind::Text),
            ("entered_at", Kind::Time),
            ("exited_at", Kind::Time),
            ("entered_by", Kind::Text),
        ],
    },
    Log {
        table: "crm_audit",
        columns: &[
            ("at", Kind::Time),
            ("actor", Kind::Text),
            ("action", Kind::Text),
            ("model", Kind::Text),
            ("record_id", Kind::Id),
            ("detail", Kind::Json),
        ],
    },
];

/// The log table `name`.
#[must_use]
pub fn log(name: &str) -> Option<&'static Log> {
    LOGS.iter().find(|l| l.table == name)
}

fn col(c: &str) -> Expr {
    Expr::col(Alias::new(c))
}

fn scalar(kind: Kind) -> ScalarType {
    match kind {
        Kind::Text => ScalarType::Text,
        Kind::Id => ScalarType::Id,
        Kind::Json => ScalarType::Json,
        Kind::Time => ScalarType::DateTime,
    }
}

/// The models of `catalog` in an order an import can insert them in: every model after the
/// models its to-one relations point at, except where relations form a cycle (a model's
/// relation to itself, or to a model further on), whose references are set in a second pass.
#[must_use]
pub fn model_order(catalog: &Catalog) -> Vec<ModelName> {
    fn visit(cat: &Catalog, m: &Model, done: &mut Vec<ModelName>, on_path: &mut Vec<ModelName>) {
        if done.contains(&m.name) || on_path.contains(&m.name) {
            return;
        }
        on_path.push(m.name.clone());
        for f in m.fields.values() {
            if let FieldKind::ToOne { target, .. } = &f.kind
                && let Some(t) = cat.model(target.as_str())
            {
                visit(cat, t, done, on_path);
            }
        }
        on_path.pop();
        done.push(m.name.clone());
    }
    let mut done = Vec::new();
    for m in catalog.models() {
        visit(catalog, m, &mut done, &mut Vec::new());
    }
    done
}

/// The tenant's rows of `model` (live and trashed): one condition for statements without an alias.
fn rows_of(model: &Model, org: &OrgId, alias: Option<&str>) -> Expr {
    let c = |name: &str| alias.map_or_else(|| col(name), |a| Expr::col((Alias::new(a), Alias::new(name))));
    let mut e = c("org_id").eq(Expr::val(org.as_str()));
    if model.custom {
        e = e.and(c("object").eq(Expr::val(model.name.as_str())));
    }
    e
}

/// Up to `limit` records of `model` of `org` after id `after`, by id, each the JSON text of
/// every stored field (system fields included; trashed records too).
///
/// # Errors
/// A field the dialect cannot select (an internal error).
pub fn records_page(d: Dialect, catalog: &Catalog, model: &Model, org: &OrgId, after: Option<Uuid>, limit: u32) -> Result<Built> {
    let access = Access::system(catalog, org.clone(), "system:export");
    let mut b = Builder::new(d, catalog, &access, Limits::default());
    let obj = b.object(model, "t0", &Selection::scalars(model))?;
    let mut cond = rows_of(model, org, Some("t0"));
    if let Some(after) = after {
        cond = cond.and(Expr::col((Alias::new("t0"), Alias::new("id"))).gt(d.bind(&Value::Uuid(after))));
    }
    let stmt = Query::select()
        .expr(d.json_text(obj))
        .from_as(Alias::new(model.table.as_str()), Alias::new("t0"))
        .cond_where(cond)
        .order_by((Alias::new("t0"), Alias::new("id")), Order::Asc)
        .limit(u64::from(limit))
        .to_owned();
    Ok(d.build(&stmt))
}

/// Whether `org` has any record (live or trashed) of `model`: one row at most is looked at.
#[must_use]
pub fn has_records(d: Dialect, model: &Model, org: &OrgId) -> Built {
    let any =
        Query::select().expr(Expr::val(1)).from(Alias::new(model.table.as_str())).cond_where(rows_of(model, org, None)).limit(1).to_owned();
    let stmt = Query::select().expr(Expr::cust("COUNT(*)")).from_subquery(any, Alias::new("x")).to_owned();
    d.build(&stmt)
}

/// How many records (live and trashed) `org` has of `model`.
#[must_use]
pub fn count_records(d: Dialect, model: &Model, org: &OrgId) -> Built {
    let stmt = Query::select()
        .expr(Expr::cust("COUNT(*)"))
        .from(Alias::new(model.table.as_str()))
        .cond_where(rows_of(model, org, None))
        .to_owned();
    d.build(&stmt)
}

/// Up to `limit` entries of `log` of `org` after position `after`, oldest first, each the JSON
/// text of its columns and its position (`seq`).
///
/// # Errors
/// A key the dialect cannot write (an internal error).
pub fn log_page(d: Dialect, log: &Log, org: &OrgId, after: i64, limit: u32) -> Result<Built> {
    let mut pairs = vec![(d.key("seq")?, col("seq"))];
    for (name, kind) in log.columns {
        pairs.push((d.key(name)?, d.json_value(Some(&scalar(*kind)), col(name), None)));
    }
    let stmt = Query::select()
        .expr(d.json_text(d.object(pairs)))
        .from(Alias::new(log.table))
        .and_where(col("org_id").eq(Expr::val(org.as_str())))
        .and_where(col("seq").gt(after))
        .order_by(Alias::new("seq"), Order::Asc)
        .limit(u64::from(limit))
        .to_owned();
    Ok(d.build(&stmt))
}

/// How many entries of `log` `org` has.
#[must_use]
pub fn count_log(d: Dialect, log: &Log, org: &OrgId) -> Built {
    let stmt = Query::select()
        .expr(Expr::cust("COUNT(*)"))
        .from(Alias::new(log.table))
        .and_where(col("org_id").eq(Expr::val(org.as_str())))
        .to_owned();
    d.build(&stmt)
}

/// Deletes every entry of `log` of `org` (what the triggers wrote while an import inserted its
/// records, before the exported entries go in).
#[must_use]
pub fn clear_log(d: Dialect, log: &Log, org: &OrgId) -> Built {
    let stmt = Query::delete().from_table(Alias::new(log.table)).and_where(col("org_id").eq(Expr::val(org.as_str()))).to_owned();
    d.build(&stmt)
}

fn log_value(d: Dialect, kind: Kind, v: Option<&Json>, path: &str) -> Result<Expr> {
    let bad = |what: &str| OrmError::bad(path, format!("expected {what}"));
    Ok(match (kind, v) {
        (_, None | Some(Json::Null)) => Expr::cust("NULL"),
        (Kind::Text, Some(Json::String(s))) => d.bind(&Value::Text(s.clone())),
        (Kind::Id, Some(Json::String(s))) => d.bind(&Value::Uuid(Uuid::parse_str(s).map_err(|_| bad("an id"))?)),
        (Kind::Time, Some(Json::String(s))) => {
            let t = DateTime::parse_from_rfc3339(s).map_err(|_| bad("an RFC 3339 instant"))?.with_timezone(&Utc);
            d.bind(&Value::DateTime(t))
        }
        (Kind::Json, Some(j)) => d.bind(&Value::Json(j.clone())),
        (Kind::Text, _) => return Err(bad("text")),
        (Kind::Id | Kind::Time, _) => return Err(bad("a string")),
    })
}

/// Inserts entries `rows` (JSON objects of [`log_page`]'s form; `seq` is given anew, in order)
/// of `log` for `org`.
///
/// # Errors
/// A value of the wrong form (`BAD_USER_INPUT` naming `path`); statements sea-query cannot build.
pub fn restore_log(d: Dialect, log: &Log, org: &OrgId, rows: &[Json], path: &str) -> Result<Option<Built>> {
    if rows.is_empty() {
        return Ok(None);
    }
    let mut stmt = Query::insert();
    stmt.into_table(Alias::new(log.table))
        .columns(std::iter::once(Alias::new("org_id")).chain(log.columns.iter().map(|(c, _)| Alias::new(*c))));
    for (i, row) in rows.iter().enumerate() {
        let mut values = vec![Expr::val(org.as_str())];
        for (name, kind) in log.columns {
            values.push(log_value(d, *kind, row.get(*name), &format!("{path}[{i}].{name}"))?);
        }
        stmt.values(values).map_err(OrmError::statement)?;
    }
    Ok(Some(d.build(&stmt)))
}

/// Inserts definition `r` of `org` as it was (its last change's time and author).
///
/// # Errors
/// A bad `updatedAt`; statements sea-query cannot build.
pub fn restore_definition(d: Dialect, org: &OrgId, r: &Definition) -> Result<Built> {
    let at = DateTime::parse_from_rfc3339(&r.updated_at)
        .map_err(|_| OrmError::bad("definition.updatedAt", "expected an RFC 3339 instant"))?
        .with_timezone(&Utc);
    Ok(d.build(&super::metadata::insert(d, org, r, at, r.updated_by.as_deref())?))
}
