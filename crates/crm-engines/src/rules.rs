//! What every rule model shares: an enabled flag, a priority, and a condition written in the
//! filter language of the GraphQL `where` of the model it applies to.

use crm_model::{Catalog, Model};
use crm_orm::{Filter, Op, OrderBy, OrmError, Page, Read, Result, TxCtx};
use serde_json::Value as Json;

use crate::rows::{IngestionRule, LEAD, Record, RoutingRule, SocialEvent, TagRule};

/// Most rules of one kind a tenant may have: rules are read on every write they apply to.
pub const MAX_RULES: u32 = 200;

/// The enabled rules of `R` (`TagRule`, …), lowest priority first, then by name.
pub(crate) async fn enabled<R: Record>(tx: &mut TxCtx<'_>) -> Result<Vec<R>> {
    let m = tx.model(R::MODEL)?;
    let mut read = Read::new(&m);
    read.filter = Filter::parse(tx.catalog(), &m, &serde_json::json!({ "enabled": true }))?;
    read.order = vec![OrderBy::parse(&m, "priority_ASC")?, OrderBy::parse(&m, "name_ASC")?];
    read.page = Page { first: Some(MAX_RULES), ..Page::default() };
    tx.read(&read).await?.rows.into_iter().map(R::decode).collect()
}

/// A rule's `condition` on `target` (none, or null, matches everything).
///
/// # Errors
/// A condition that is not a valid where filter of `target`, naming the rule's field.
pub fn condition(catalog: &Catalog, target: &Model, condition: Option<&Json>) -> Result<Filter> {
    match condition {
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

/// The rule models whose `condition` applies to which model.
pub(crate) const CONDITIONS: &[(&str, &str)] =
    &[(TagRule::MODEL, LEAD), (RoutingRule::MODEL, LEAD), (IngestionRule::MODEL, SocialEvent::MODEL)];

/// `Lead` → `lead`.
pub(crate) fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_lowercase().collect::<String>() + c.as_str()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crm_model::standard::standard_catalog;
    use serde_json::json;

    use super::*;

    #[test]
    fn conditions_are_where_filters_of_their_model() {
        let cat = standard_catalog().unwrap();
        let lead = cat.model("Lead").unwrap();
        assert_eq!(condition(&cat, lead, None).unwrap(), Filter::True);
        assert_eq!(condition(&cat, lead, Some(&Json::Null)).unwrap(), Filter::True);
        assert!(matches!(condition(&cat, lead, Some(&json!({ "status": "NEW" }))), Ok(f) if f != Filter::True));
        let e = condition(&cat, lead, Some(&json!({ "salary_gt": 3 }))).unwrap_err();
        assert_eq!(e.field(), Some("condition"));
        assert!(e.to_string().contains("LeadWhere"), "{e}");
    }
}
