//! What a read returns: one page of rows with their cursors, page flags and aggregate, whether
//! a root read's page or a nested connection's, built by the root statement.

use serde_json::Value as Json;

use crate::error::{OrmError, Result, decode_json};
use crate::ir::{OrderBy, Page};
use crate::sql::{encode_cursor, order_spec};

/// One page of rows: JSON objects keyed by the selection's keys, decoded (`Json`) or as JSON
/// text (`String`, [`Store::read_text`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PageResult<R = Json> {
    /// Rows as JSON objects keyed by the selection's keys.
    pub rows: Vec<R>,
    /// The cursor of each row.
    pub cursors: Vec<String>,
    /// Rows exist after the page.
    pub has_next: bool,
    /// Rows exist before the page.
    pub has_previous: bool,
    /// Total matching rows, when asked for.
    pub count: Option<i64>,
    /// The aggregate object (`{"count": n, "sum": {…}, …}`), when a count or aggregates were
    /// asked for.
    pub aggregate: Option<Json>,
}

impl PageResult<String> {
    /// The page with its rows decoded.
    ///
    /// # Errors
    /// A row that is not JSON (an internal error).
    pub fn decoded(self) -> Result<PageResult> {
        let rows = self.rows.iter().map(|j| decode_json("page row", j)).collect::<Result<Vec<Json>>>()?;
        Ok(PageResult {
            rows,
            cursors: self.cursors,
            has_next: self.has_next,
            has_previous: self.has_previous,
            count: self.count,
            aggregate: self.aggregate,
        })
    }
}

/// A nested connection's page, from the JSON its root statement built for it
/// (`{"e": [{"n": node, "k": cursor keys}, …], "a": aggregate}`, the edges in the connection's
/// order with one probe row beyond the page; `e` is null without edges): its rows, their cursors
/// and page flags, as a root read's page. `default_size` is the page size when the page names
/// none.
///
/// # Errors
/// JSON of another shape (an internal decode error: the builder wrote it).
pub fn nested_page(built: &Json, order: &[OrderBy], page: &Page, default_size: u32) -> Result<PageResult> {
    let rows = match built.get("e") {
        Some(Json::Array(rows)) => rows.as_slice(),
        None | Some(Json::Null) => &[],
        Some(_) => return Err(OrmError::decode("nested connection", "edges that are not a list")),
    };
    let limit = page.size(default_size) as usize;
    let more = rows.len() > limit;
    let window = match (more, page.backward()) {
        (false, _) => rows,
        (true, true) => rows.get(rows.len() - limit..).unwrap_or_default(),
        (true, false) => rows.get(..limit).unwrap_or_default(),
    };
    let spec = order_spec(order);
    let mut out = PageResult {
        rows: Vec::with_capacity(window.len()),
        cursors: Vec::with_capacity(window.len()),
        has_next: false,
        has_previous: false,
        count: None,
        aggregate: built.get("a").cloned(),
    };
    for edge in window {
        let (Some(node), Some(keys)) = (edge.get("n"), edge.get("k")) else {
            return Err(OrmError::decode("nested connection", "an edge without its node or cursor keys"));
        };
        out.rows.push(node.clone());
        out.cursors.push(encode_cursor(&spec, &keys.to_string()));
    }
    (out.has_next, out.has_previous) = page.flags(more);
    Ok(out)
}
