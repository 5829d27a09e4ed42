//! Stage statistics from the transition log (`crm_stage_transitions`): how far records got in a
//! funnel, and how long they stay in each stage.

use crm_model::{Model, OrgId};
use sea_query::{Alias, Expr, ExprTrait, Query, SelectStatement};
use serde::Deserialize;

use super::dialect::Dialect;
use crate::error::Result;

fn alias() -> Alias {
    Alias::new("t")
}

fn col(c: &str) -> Expr {
    Expr::col((alias(), Alias::new(c)))
}

/// The transitions of `field` of `model` in `org`, of the records `live` selects.
fn transitions(org: &OrgId, model: &Model, field: &str, live: SelectStatement) -> Expr {
    col("org_id")
        .eq(Expr::val(org.as_str()))
        .and(col("model").eq(Expr::val(model.name.as_str())))
        .and(col("field").eq(Expr::val(field)))
        .and(col("record_id").in_subquery(live))
}

/// Per record `live` selects (the live records the caller may read, see
/// [`super::Builder::visible_ids`]): the furthest stage of `order` it reached, as its index
/// (`-1`: none of them), in rows `('', index)`.
#[must_use]
pub fn furthest(d: Dialect, org: &OrgId, model: &Model, field: &str, order: &[&str], live: SelectStatement) -> SelectStatement {
    let mut case = String::from("CASE {}");
    let mut args = vec![col("stage")];
    for (i, s) in order.iter().enumerate() {
        case.push_str(&format!(" WHEN {{}} THEN {i}"));
        args.push(Expr::val(*s));
    }
    case.push_str(" ELSE -1 END");
    let per_record = Query::select()
        .expr_as(d.cust("CAST(MAX({}) AS BIGINT)", vec![d.cust(&case, args)]), Alias::new("furthest"))
        .from_as(Alias::new("crm_stage_transitions"), alias())
        .cond_where(transitions(org, model, field, live))
        .group_by_col((alias(), Alias::new("record_id")))
        .to_owned();
    let x = || Alias::new("x");
    Query::select()
        .expr(Expr::cust("CAST('' AS TEXT)"))
        .expr(Expr::col((x(), Alias::new("furthest"))))
        .from_subquery(per_record, x())
        .to_owned()
}

/// Stays per stage of the records `live` selects, one row per stage (the JSON text of a
/// [`StayRow`]).
///
/// # Errors
/// A key the dialect cannot write (an internal error).
pub fn stays(d: Dialect, org: &OrgId, model: &Model, field: &str, live: SelectStatement) -> Result<SelectStatement> {
    let secs = d.seconds_between(col("entered_at"), col("exited_at"));
    let obj = d.object(vec![
        (d.key("stage")?, col("stage")),
        (d.key("completed")?, d.cust("SUM(CASE WHEN {} IS NOT NULL THEN 1 ELSE 0 END)", vec![col("exited_at")])),
        (d.key("averageSeconds")?, d.cust("AVG({})", vec![secs])),
        (d.key("current")?, d.cust("SUM(CASE WHEN {} IS NULL THEN 1 ELSE 0 END)", vec![col("exited_at")])),
    ]);
    Ok(Query::select()
        .expr(d.json_text(obj))
        .from_as(Alias::new("crm_stage_transitions"), alias())
        .cond_where(transitions(org, model, field, live))
        .group_by_col((alias(), Alias::new("stage")))
        .to_owned())
}

/// One row of [`stays`]. The sums are numbers of either kind (SQLite and PostgreSQL type them
/// differently).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StayRow {
    /// The stage.
    pub stage: String,
    /// Stays that ended.
    pub completed: f64,
    /// Their average length in seconds.
    pub average_seconds: Option<f64>,
    /// Records in the stage now.
    pub current: f64,
}
