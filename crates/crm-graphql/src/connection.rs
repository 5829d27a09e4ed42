//! Connections: edges and page info, of a root connection's page or of a nested connection
//! the root statement built.

use std::sync::Arc;

use async_graphql::dynamic::{FieldFuture, FieldValue, ResolverContext};
use crm_model::Model;
use crm_orm::{OrmError, PageResult, nested_page};
use serde_json::Value as Json;

use crate::args::{args_json, parse_order, parse_page};
use crate::fields::aliased;
use crate::request::{RequestCtx, err};

/// A resolved connection: edges, page info and aggregate, as the connection type's fields read
/// them.
pub struct Conn {
    pub(crate) edges: Vec<Edge>,
    pub(crate) page_info: Json,
    pub(crate) aggregate: Json,
}

/// One edge of a connection.
pub struct Edge {
    /// `None` only when the request selected no cursor (none was computed).
    pub(crate) cursor: Option<String>,
    pub(crate) node: Json,
}

pub(crate) fn page_info(edges: &[Edge], has_next: bool, has_previous: bool) -> Json {
    page_info_json(
        edges.first().and_then(|e| e.cursor.as_ref()),
        edges.last().and_then(|e| e.cursor.as_ref()),
        edges.len(),
        has_next,
        has_previous,
    )
}

/// The page info of a root connection's page.
pub(crate) fn page_info_of<R>(page: &PageResult<R>) -> Json {
    page_info_json(page.cursors.first(), page.cursors.last(), page.rows.len(), page.has_next, page.has_previous)
}

pub(crate) fn page_info_json(start: Option<&String>, end: Option<&String>, size: usize, has_next: bool, has_previous: bool) -> Json {
    serde_json::json!({
        "hasNextPage": has_next,
        "hasPreviousPage": has_previous,
        "startCursor": start,
        "endCursor": end,
        "pageSize": size,
    })
}

pub(crate) fn conn_of(page: PageResult) -> Conn {
    // Without cursors (none selected) the page has none.
    let mut cursors = page.cursors.into_iter();
    let edges: Vec<Edge> = page.rows.into_iter().map(|node| Edge { cursor: cursors.next(), node }).collect();
    let page_info = page_info(&edges, page.has_next, page.has_previous);
    Conn { edges, page_info, aggregate: page.aggregate.unwrap_or(Json::Null) }
}

/// A nested connection: the statement fetched one probe row beyond the page, in natural order.
pub(crate) fn nested_connection(
    target: Arc<Model>,
    name: String,
) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    move |ctx| {
        let built = (|| -> Result<Option<Conn>, OrmError> {
            let Some(v) = aliased(&ctx, &name) else { return Ok(None) };
            let rc = ctx.data::<RequestCtx>().map_err(|_| OrmError::invariant("request context missing"))?;
            let args = args_json(&ctx.args);
            let order = parse_order(&target, &args)?;
            let page = parse_page(&args)?;
            Ok(Some(conn_of(nested_page(v, &order, &page, rc.store.limits().default_page)?)))
        })();
        match built {
            Ok(c) => FieldFuture::Value(c.map(FieldValue::owned_any)),
            Err(e) => FieldFuture::new(async move { Err::<Option<FieldValue>, _>(err(&e)) }),
        }
    }
}
