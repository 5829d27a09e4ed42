//! A field's arguments as JSON, and the IR parts they parse into (page, order, where, unique
//! target, expected version).

use crm_model::{Catalog, Model};
use crm_orm::{Filter, OrderBy, OrmError, Page, Unique};
use serde_json::{Map, Value as Json};

use crate::request::bad;

pub(crate) fn opt_u32(args: &Map<String, Json>, key: &str) -> Result<Option<u32>, OrmError> {
    match args.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Number(n)) => n.as_u64().and_then(|n| u32::try_from(n).ok()).map(Some).ok_or_else(|| bad(key, "must be zero or more")),
        Some(_) => Err(bad(key, "expected an integer")),
    }
}

pub(crate) fn opt_string(args: &Map<String, Json>, key: &str) -> Result<Option<String>, OrmError> {
    match args.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(key, "expected a string")),
    }
}

pub(crate) fn parse_page(args: &Map<String, Json>) -> Result<Page, OrmError> {
    Ok(Page {
        first: opt_u32(args, "first")?,
        last: opt_u32(args, "last")?,
        skip: opt_u32(args, "skip")?.unwrap_or(0),
        after: opt_string(args, "after")?,
        before: opt_string(args, "before")?,
    })
}

pub(crate) fn parse_order(model: &Model, args: &Map<String, Json>) -> Result<Vec<OrderBy>, OrmError> {
    match args.get("orderBy") {
        None | Some(Json::Null) => Ok(Vec::new()),
        // A single value is accepted by list coercion.
        Some(Json::String(s)) => Ok(vec![OrderBy::parse(model, s)?]),
        Some(Json::Array(items)) => items
            .iter()
            .map(|i| match i {
                Json::String(s) => OrderBy::parse(model, s),
                _ => Err(bad("orderBy", "expected ordering keys")),
            })
            .collect(),
        Some(_) => Err(bad("orderBy", "expected ordering keys")),
    }
}

pub(crate) fn parse_where(cat: &Catalog, model: &Model, args: &Map<String, Json>) -> Result<Filter, OrmError> {
    match args.get("where") {
        None | Some(Json::Null) => Ok(Filter::True),
        Some(w) => Filter::parse(cat, model, w),
    }
}

/// The record `where` names, as a filter (after checking it is a valid unique input).
pub(crate) fn unique_filter(cat: &Catalog, model: &Model, w: &Json) -> Result<(Unique, Filter), OrmError> {
    let u = Unique::parse(model, w, "where")?;
    let given: Map<String, Json> =
        w.as_object().into_iter().flatten().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect();
    Ok((u, Filter::parse(cat, model, &Json::Object(given))?))
}

pub(crate) fn arg<'m>(args: &'m Map<String, Json>, key: &str) -> &'m Json {
    args.get(key).unwrap_or(&Json::Null)
}

pub(crate) fn expected_version(args: &Map<String, Json>) -> Result<Option<i64>, OrmError> {
    match args.get("expectedVersion") {
        None | Some(Json::Null) => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or_else(|| bad("expectedVersion", "expected an integer")),
    }
}
