//! Connections as their JSON: edges, page info and aggregate, of a root connection's page or of
//! a nested connection the root statement built.

use crm_model::Model;
use crm_orm::{OrmError, PageResult, nested_page};
use serde_json::{Map, Value as Json, json};

use crate::args::{parse_order, parse_page};

/// The page info of a root connection's page.
pub(crate) fn page_info_of<R>(page: &PageResult<R>) -> Json {
    page_info_json(page.cursors.first(), page.cursors.last(), page.rows.len(), page.has_next, page.has_previous)
}

pub(crate) fn page_info_json(start: Option<&String>, end: Option<&String>, size: usize, has_next: bool, has_previous: bool) -> Json {
    json!({
        "hasNextPage": has_next,
        "hasPreviousPage": has_previous,
        "startCursor": start,
        "endCursor": end,
        "pageSize": size,
    })
}

/// A page as a connection: `{edges: [{cursor, node}], pageInfo, aggregate}`. Without cursors
/// (none selected) the page has none.
pub(crate) fn conn_json(page: PageResult) -> Json {
    let page_info = page_info_of(&page);
    let mut cursors = page.cursors.into_iter();
    let edges: Vec<Json> = page.rows.into_iter().map(|node| json!({ "cursor": cursors.next(), "node": node })).collect();
    json!({ "edges": edges, "pageInfo": page_info, "aggregate": page.aggregate.unwrap_or(Json::Null) })
}

/// A nested connection over `target` with `args`: the statement fetched the rows in `v` (one
/// probe row beyond the page, in natural order).
pub(crate) fn nested_connection(target: &Model, v: &Json, args: &Map<String, Json>, default_page: u32) -> Result<Json, OrmError> {
    let order = parse_order(target, args)?;
    let page = parse_page(args)?;
    Ok(conn_json(nested_page(v, &order, &page, default_page)?))
}
