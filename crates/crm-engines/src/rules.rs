//! What every rule model shares: an enabled flag, a priority, and a condition written in the
//! filter language of the GraphQL `where` of the model it applies to.

use crm_model::{Catalog, Model};
use crm_orm::{Filter, Op, OrderBy, OrmError, Page, Read, Result, TxCtx};
use serde_json::Value as Json;
use uuid::Uuid;

/// Most rules of one kind a tenant may have: rules are read on every write they apply to.
pub const MAX_RULES: u32 = 200;

/// The enabled rules of `model` (`TagRule`, …), lowest priority first, then by name.
pub(crate) async fn enabled(tx: &mut TxCtx<'_>, model: &str) -> Result<Vec<Json>> {
    let m = tx.model(model)?;
    let mut read = Read::new(&m);
    read.filter = Filter::parse(tx.catalog(), &m, &serde_json::json!({ "enabled": true }))?;
    read.order = vec![OrderBy::parse(&m, "priority_ASC")?, OrderBy::parse(&m, "name_ASC")?];
    read.page = Page { first: Some(MAX_RULES), ..Page::default() };
    Ok(tx.read(&read).await?.rows)
}

/// The condition of `rule` on `target` (`condition: null` matches everything).
///
/// # Errors
/// A condition that is not a valid where filter of `target`, naming the rule's field.
pub fn condition(catalog: &Catalog, target: &Model, rule: &Json) -> Result<Filter> {
    match rule.get("condition") {
        None | Some(Json::Null) => Ok(Filter::True),
        Some(c) => Filter::parse(catalog, target, c)
            .map_err(|e| crm_orm::OrmError::bad("condition", format!("not a valid {}Where: {e}", target.name))),
    }
}

/// A rule acts later, as the platform, for its author: its condition may only use fields the
/// author may read (on a model they may read), or the rule's effects would reveal the values.
///
/// # Errors
/// `Forbidden` naming the field.
pub(crate) fn check_author_reads(tx: &TxCtx<'_>, target: &Model, condition: Filter) -> Result<()> {
    match tx.caller_targets(target, Op::Read, condition, Filter::True) {
        Ok(_) => Ok(()),
        Err(OrmError::Forbidden(m)) => Err(OrmError::Forbidden(format!("the rule's condition: {m}"))),
        Err(e) => Err(e),
    }
}

/// The id of a rule (or any row) read as JSON.
pub(crate) fn id_of(row: &Json) -> Option<Uuid> {
    row.get("id").and_then(Json::as_str).and_then(|s| Uuid::parse_str(s).ok())
}

/// The strings of a list field of a row.
pub(crate) fn strings(row: &Json, field: &str) -> Vec<String> {
    row.get(field).and_then(Json::as_array).map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

/// The name of a rule, for reasons and logs.
pub(crate) fn name_of(row: &Json) -> String {
    row.get("name").and_then(Json::as_str).unwrap_or("unnamed rule").to_owned()
}

/// The rule models whose `condition` applies to which model.
pub(crate) const CONDITIONS: &[(&str, &str)] = &[("TagRule", "Lead"), ("RoutingRule", "Lead"), ("IngestionRule", "SocialEvent")];

/// `Lead` → `lead`.
pub(crate) fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_lowercase().collect::<String>() + c.as_str()).unwrap_or_default()
}
