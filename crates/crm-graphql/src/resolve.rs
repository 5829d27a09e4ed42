//! Resolvers. A root field compiles its whole selection (nested relations, connections,
//! aggregates) into one IR read, so it costs one statement (aggregates included); fields below
//! it only read the JSON the database built, borrowing it without copies.

use std::sync::Arc;

use async_graphql::dynamic::{FieldFuture, FieldValue, ObjectAccessor, ResolverContext};
use async_graphql::{Name, SelectionField, Value};
use crm_model::{Catalog, FieldKind, Model};
use crm_orm::ir::aggregatable;
use crm_orm::sql::{encode_cursor, order_spec};
use crm_orm::{
    Access, AggFn, Aggregate, Data, Engine, Extra, Filter, GroupBy, Locate, Nested, Op, OrderBy, OrmError, Page, PageResult, Read,
    Selection, Unique, Write, WriteResult,
};
use serde_json::{Map, Value as Json};

use crate::error::to_graphql_error;

/// What a request carries into the resolvers: the engine and the caller's resolved access.
#[derive(Clone)]
pub struct RequestCtx {
    /// The engine to run on (serving the caller's tenant's catalog).
    pub engine: Engine,
    /// The caller's tenant and grants.
    pub access: Access,
    /// The tenant's metadata version the request's schema reflects.
    pub metadata_version: u64,
    /// Where a metadata change made by this request is noted, so this server's next request of
    /// the tenant uses the new schema at once.
    pub(crate) versions: Arc<crate::cache::Versions>,
}

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

type GqlResult<T> = async_graphql::Result<T>;

pub(crate) fn err(e: &OrmError) -> async_graphql::Error {
    to_graphql_error(e)
}

pub(crate) fn bad(path: &str, message: impl Into<String>) -> OrmError {
    OrmError::BadInput { path: path.to_owned(), message: message.into() }
}

// ---------------------------------------------------------------------------------------------
// Values

/// JSON -> GraphQL value.
pub(crate) fn to_value(j: &Json) -> Value {
    match j {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => Value::Number(n.clone()),
        Json::String(s) => Value::String(s.clone()),
        Json::Array(items) => Value::List(items.iter().map(to_value).collect()),
        Json::Object(o) => Value::Object(o.iter().map(|(k, v)| (Name::new(k), to_value(v))).collect()),
    }
}

pub(crate) fn parent_json<'a>(ctx: &ResolverContext<'a>) -> Option<&'a Json> {
    ctx.parent_value.downcast_ref::<Json>()
}

/// The non-null value under `key` in the parent JSON object.
fn child<'a>(ctx: &ResolverContext<'a>, key: &str) -> Option<&'a Json> {
    parent_json(ctx).and_then(|p| p.get(key)).filter(|v| !v.is_null())
}

/// The non-null value the statement built under this field's response key (its alias, else
/// `name`): relations and extras are keyed so, since one field may be selected under several
/// aliases with different arguments.
fn aliased<'a>(ctx: &ResolverContext<'a>, name: &str) -> Option<&'a Json> {
    child(ctx, ctx.ctx.item.node.alias.as_ref().map_or(name, |a| a.node.as_str()))
}

/// A scalar read from the parent JSON object by field name.
pub(crate) fn json_leaf(key: &str) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    let key = key.to_owned();
    move |ctx| FieldFuture::Value(child(&ctx, &key).map(|v| FieldValue::value(to_value(v))))
}

/// An object read from the parent JSON object by field name (money, references, aggregates).
pub(crate) fn json_object(key: &str) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    let key = key.to_owned();
    move |ctx| FieldFuture::Value(child(&ctx, &key).map(|x| FieldValue::borrowed_any(x)))
}

/// A to-one relation: the nested object the statement built under the response key.
pub(crate) fn json_aliased_object(name: String) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    move |ctx| FieldFuture::Value(aliased(&ctx, &name).map(|x| FieldValue::borrowed_any(x)))
}

/// A JSON value the statement built under the response key (the timeline).
pub(crate) fn json_aliased_leaf(name: String) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    move |ctx| FieldFuture::Value(aliased(&ctx, &name).map(|v| FieldValue::value(to_value(v))))
}

/// A to-many relation: the nested array the statement built under the response key.
pub(crate) fn json_aliased_list(name: String) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    move |ctx| {
        let items = aliased(&ctx, &name).and_then(Json::as_array);
        FieldFuture::Value(Some(FieldValue::list(items.into_iter().flatten().map(|x| FieldValue::borrowed_any(x)))))
    }
}

/// Seconds spent in a stage: until `exitedAt`, or until now.
pub(crate) fn stage_duration() -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    |ctx| {
        let p = parent_json(&ctx);
        let at = |k: &str| p.and_then(|p| p.get(k)).and_then(Json::as_str).and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
        let secs = at("enteredAt").map(|entered| {
            let until = at("exitedAt").map_or_else(chrono::Utc::now, |e| e.with_timezone(&chrono::Utc));
            (until - entered.with_timezone(&chrono::Utc)).num_milliseconds() as f64 / 1000.0
        });
        FieldFuture::Value(secs.map(|s| FieldValue::value(Value::from(s))))
    }
}

// ---------------------------------------------------------------------------------------------
// Arguments

pub(crate) fn args_json(args: &ObjectAccessor<'_>) -> Map<String, Json> {
    args.as_index_map().iter().map(|(k, v)| (k.to_string(), v.clone().into_json().unwrap_or(Json::Null))).collect()
}

/// A selected field, as the resolvers see it (async-graphql's `SelectionField`) or as a plan
/// walks the document (`plan::AstNode`): what the IR of a selection is compiled from.
pub(crate) trait SelNode: Sized {
    /// The field name.
    fn name(&self) -> &str;
    /// The alias, if any.
    fn alias(&self) -> Option<&str>;
    /// The selected sub-fields (fragments expanded).
    fn children(&self) -> Vec<Self>;
    /// The arguments, variables substituted, as JSON.
    fn args(&self) -> Result<Map<String, Json>, OrmError>;
    /// Left out by `@skip` / `@include`.
    fn skipped(&self) -> bool;
}

impl SelNode for SelectionField<'_> {
    fn name(&self) -> &str {
        SelectionField::name(self)
    }
    fn alias(&self) -> Option<&str> {
        SelectionField::alias(self)
    }
    fn children(&self) -> Vec<Self> {
        self.selection_set().collect()
    }
    fn args(&self) -> Result<Map<String, Json>, OrmError> {
        raw_args_json(self)
    }
    fn skipped(&self) -> bool {
        skipped(self)
    }
}

fn raw_args_json(sf: &SelectionField<'_>) -> Result<Map<String, Json>, OrmError> {
    let args = sf.arguments().map_err(|e| bad(sf.name(), e.message))?;
    Ok(args.into_iter().map(|(k, v)| (k.to_string(), v.into_json().unwrap_or(Json::Null))).collect())
}

fn opt_u32(args: &Map<String, Json>, key: &str) -> Result<Option<u32>, OrmError> {
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

fn parse_page(args: &Map<String, Json>) -> Result<Page, OrmError> {
    Ok(Page {
        first: opt_u32(args, "first")?,
        last: opt_u32(args, "last")?,
        skip: opt_u32(args, "skip")?.unwrap_or(0),
        after: opt_string(args, "after")?,
        before: opt_string(args, "before")?,
    })
}

fn parse_order(model: &Model, args: &Map<String, Json>) -> Result<Vec<OrderBy>, OrmError> {
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

fn parse_where(cat: &Catalog, model: &Model, args: &Map<String, Json>) -> Result<Filter, OrmError> {
    match args.get("where") {
        None | Some(Json::Null) => Ok(Filter::True),
        Some(w) => Filter::parse(cat, model, w),
    }
}

/// The record `where` names, as a filter (after checking it is a valid unique input).
fn unique_filter(cat: &Catalog, model: &Model, w: &Json) -> Result<(Unique, Filter), OrmError> {
    let u = Unique::parse(model, w, "where")?;
    let given: Map<String, Json> =
        w.as_object().into_iter().flatten().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect();
    Ok((u, Filter::parse(cat, model, &Json::Object(given))?))
}

// ---------------------------------------------------------------------------------------------
// Selections

fn skipped(sf: &SelectionField<'_>) -> bool {
    let Ok(dirs) = sf.directives() else { return false };
    dirs.iter().any(|d| {
        let cond = d.arguments.iter().find(|(n, _)| n.node.as_str() == "if").map(|(_, v)| &v.node);
        matches!((d.name.node.as_str(), cond), ("skip", Some(Value::Boolean(true))) | ("include", Some(Value::Boolean(false))))
    })
}

fn merge(into: &mut Selection, other: Selection) {
    for f in other.fields {
        if !into.fields.contains(&f) {
            into.fields.push(f);
        }
    }
    for n in other.nested {
        add_nested(into, n);
    }
}

fn add_nested(sel: &mut Selection, n: Nested) {
    if let Some(existing) = sel.nested.iter_mut().find(|e| e.key == n.key) {
        merge(&mut existing.select, n.select);
        existing.aggregate.count |= n.aggregate.count;
        for a in n.aggregate.numeric {
            if !existing.aggregate.numeric.contains(&a) {
                existing.aggregate.numeric.push(a);
            }
        }
    } else {
        sel.nested.push(n);
    }
}

/// The IR selection of the object fields `sf` selects on `model` rows. Fields of other types
/// (from fragments on other `Node` types) are ignored.
pub(crate) fn selection<N: SelNode>(cat: &Catalog, model: &Model, sf: &N) -> Result<Selection, OrmError> {
    let mut sel = Selection::default();
    for child in sf.children() {
        if child.skipped() {
            continue;
        }
        let name = child.name();
        let key = child.alias().unwrap_or(name);
        if name == "timeline" && model.field(name).is_none() {
            let args = child.args()?;
            if !sel.extras.iter().any(|e| e.key() == key) {
                sel.extras.push(Extra::Timeline { key: key.to_owned(), first: opt_u32(&args, "first")?.unwrap_or(20) });
            }
            continue;
        }
        if matches!(name, "history" | "stages") && model.field(name).is_none() {
            let args = child.args()?;
            let field = match opt_string(&args, "field")? {
                Some(f) => Some(model.field(&f).map(|f| f.name.clone()).ok_or_else(|| bad("field", format!("unknown field `{f}`")))?),
                None => None,
            };
            let extra = if name == "history" {
                Extra::History { key: key.to_owned(), field, first: opt_u32(&args, "first")?.unwrap_or(20) }
            } else {
                Extra::Stages { key: key.to_owned(), field }
            };
            if !sel.extras.iter().any(|e| e.key() == key) {
                sel.extras.push(extra);
            }
            continue;
        }
        if let Some(f) = model.field(name) {
            match &f.kind {
                FieldKind::Scalar(_) | FieldKind::Polymorphic { .. } => {
                    if !sel.fields.contains(&f.name) {
                        sel.fields.push(f.name.clone());
                    }
                }
                FieldKind::ToOne { target, .. } => {
                    let t = target_of(cat, target.as_str())?;
                    let n = Nested { key: key.to_owned(), ..Nested::new(f.name.clone(), selection(cat, t, &child)?) };
                    add_nested(&mut sel, n);
                }
                FieldKind::ToMany { target, .. } => {
                    let t = target_of(cat, target.as_str())?;
                    let args = child.args()?;
                    let n = Nested {
                        key: key.to_owned(),
                        filter: parse_where(cat, t, &args)?,
                        order: parse_order(t, &args)?,
                        page: parse_page(&args)?,
                        ..Nested::new(f.name.clone(), selection(cat, t, &child)?)
                    };
                    add_nested(&mut sel, n);
                }
            }
        } else if let Some(base) = name.strip_suffix("Connection")
            && let Some(f) = model.field(base)
            && let FieldKind::ToMany { target, .. } = &f.kind
        {
            let t = target_of(cat, target.as_str())?;
            let args = child.args()?;
            let ConnectionSelection { select, aggregate, .. } = connection_selection(cat, t, &child)?;
            let n = Nested {
                key: key.to_owned(),
                filter: parse_where(cat, t, &args)?,
                order: parse_order(t, &args)?,
                page: parse_page(&args)?,
                connection: true,
                aggregate,
                ..Nested::new(f.name.clone(), select)
            };
            add_nested(&mut sel, n);
        }
    }
    Ok(sel)
}

fn target_of<'c>(cat: &'c Catalog, name: &str) -> Result<&'c Model, OrmError> {
    cat.model(name).map(AsRef::as_ref).ok_or_else(|| OrmError::Internal(format!("unknown model `{name}`")))
}

/// What a connection field selects.
struct ConnectionSelection {
    /// The node selection under `edges`.
    select: Selection,
    /// The aggregates.
    aggregate: Aggregate,
    /// Whether edges or page info are selected (else no page is read).
    rows: bool,
    /// Whether a cursor is selected (an edge's, `startCursor` or `endCursor`).
    cursors: bool,
}

fn connection_selection<N: SelNode>(cat: &Catalog, model: &Model, sf: &N) -> Result<ConnectionSelection, OrmError> {
    let mut out = ConnectionSelection { select: Selection::default(), aggregate: Aggregate::default(), rows: false, cursors: false };
    for c in sf.children().into_iter().filter(|c| !c.skipped()) {
        match c.name() {
            "edges" => {
                out.rows = true;
                for e in c.children().into_iter().filter(|e| !e.skipped()) {
                    match e.name() {
                        "node" => merge(&mut out.select, selection(cat, model, &e)?),
                        "cursor" => out.cursors = true,
                        _ => {}
                    }
                }
            }
            "pageInfo" => {
                out.rows = true;
                out.cursors |= c.children().iter().any(|p| !p.skipped() && matches!(p.name(), "startCursor" | "endCursor"));
            }
            "aggregate" => aggregate_selection(model, &c, &mut out.aggregate),
            _ => {}
        }
    }
    Ok(out)
}

fn aggregate_selection<N: SelNode>(model: &Model, sf: &N, agg: &mut Aggregate) {
    for a in sf.children().into_iter().filter(|a| !a.skipped()) {
        if a.name() == "count" {
            agg.count = true;
            continue;
        }
        let Some(func) = AggFn::ALL.into_iter().find(|f| f.name() == a.name()) else { continue };
        for x in a.children().into_iter().filter(|x| !x.skipped()) {
            if let Some(f) = model.field(x.name()).filter(|f| aggregatable(f))
                && !agg.numeric.contains(&(func, f.name.clone()))
            {
                agg.numeric.push((func, f.name.clone()));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Connections

fn page_info(edges: &[Edge], has_next: bool, has_previous: bool) -> Json {
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

fn page_info_json(start: Option<&String>, end: Option<&String>, size: usize, has_next: bool, has_previous: bool) -> Json {
    serde_json::json!({
        "hasNextPage": has_next,
        "hasPreviousPage": has_previous,
        "startCursor": start,
        "endCursor": end,
        "pageSize": size,
    })
}

fn conn_of(page: PageResult) -> Conn {
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
            let rc = ctx.data::<RequestCtx>().map_err(|_| OrmError::Internal("request context missing".to_owned()))?;
            let args = args_json(&ctx.args);
            let order = parse_order(&target, &args)?;
            let page = parse_page(&args)?;
            let backward = page.last.is_some() || page.before.is_some();
            let limit = page.first.or(page.last).unwrap_or(rc.engine.limits().default_page) as usize;
            let spec = order_spec(&order);
            let rows = v.get("e").and_then(Json::as_array).map(Vec::as_slice).unwrap_or_default();
            let more = rows.len() > limit;
            let window = if more {
                if backward { rows.get(rows.len() - limit..).unwrap_or_default() } else { rows.get(..limit).unwrap_or_default() }
            } else {
                rows
            };
            let edges: Vec<Edge> = window
                .iter()
                .map(|r| Edge {
                    cursor: Some(encode_cursor(&spec, &r.get("k").map(Json::to_string).unwrap_or_default())),
                    node: r.get("n").cloned().unwrap_or(Json::Null),
                })
                .collect();
            let from_cursor = page.after.is_some() || page.before.is_some() || page.skip > 0;
            let (has_next, has_previous) = if backward { (from_cursor, more) } else { (more, from_cursor) };
            let page_info = page_info(&edges, has_next, has_previous);
            Ok(Some(Conn { edges, page_info, aggregate: v.get("a").cloned().unwrap_or(Json::Null) }))
        })();
        match built {
            Ok(c) => FieldFuture::Value(c.map(FieldValue::owned_any)),
            Err(e) => FieldFuture::new(async move { Err::<Option<FieldValue>, _>(err(&e)) }),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Root fields

pub(crate) fn request<'a>(ctx: &ResolverContext<'a>) -> GqlResult<&'a RequestCtx> {
    ctx.data::<RequestCtx>().map_err(|_| err(&OrmError::Internal("request context missing".to_owned())))
}

macro_rules! root {
    ($cat:ident, $model:ident, |$ctx:ident, $rc:ident| $body:expr) => {
        move |$ctx: ResolverContext<'_>| {
            let $cat = $cat.clone();
            let $model = $model.clone();
            FieldFuture::new(async move {
                let $rc = request(&$ctx)?;
                let out: Result<Option<FieldValue<'_>>, OrmError> = async { $body }.await;
                out.map_err(|e| err(&e))
            })
        }
    };
}

/// The read of `lead(where:)` selecting `sf`.
pub(crate) fn one_read_of<N: SelNode>(cat: &Catalog, model: &Model, args: &Map<String, Json>, sf: &N) -> Result<Read, OrmError> {
    let (_, filter) = unique_filter(cat, model, args.get("where").unwrap_or(&Json::Null))?;
    Ok(Read {
        filter,
        page: Page { first: Some(1), ..Page::default() },
        select: selection(cat, model, sf)?,
        cursors: false,
        ..Read::new(model)
    })
}

/// The read of `leads(...)` selecting `sf` (a list has no cursors).
pub(crate) fn list_read_of<N: SelNode>(cat: &Catalog, model: &Model, args: &Map<String, Json>, sf: &N) -> Result<Read, OrmError> {
    Ok(Read { select: selection(cat, model, sf)?, cursors: false, ..list_read(cat, model, args)? })
}

/// The read of `leadsConnection(...)` selecting `sf`.
pub(crate) fn connection_read_of<N: SelNode>(cat: &Catalog, model: &Model, args: &Map<String, Json>, sf: &N) -> Result<Read, OrmError> {
    let c = connection_selection(cat, model, sf)?;
    Ok(Read {
        select: c.select,
        count: c.aggregate.count,
        aggregates: c.aggregate.numeric,
        rows: c.rows,
        cursors: c.cursors,
        ..list_read(cat, model, args)?
    })
}

/// `lead(where:)`.
pub(crate) fn one(cat: Arc<Catalog>, model: Arc<Model>) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    root!(cat, model, |ctx, rc| {
        let read = one_read_of(&cat, &model, &args_json(&ctx.args), &ctx.ctx.field())?;
        let q = rc.access.scope(&cat, &model.name, Op::Read, read)?;
        let page = rc.engine.read(&q).await?;
        Ok(page.rows.into_iter().next().map(FieldValue::owned_any))
    })
}

fn list_read(cat: &Catalog, model: &Model, args: &Map<String, Json>) -> Result<Read, OrmError> {
    Ok(Read { filter: parse_where(cat, model, args)?, order: parse_order(model, args)?, page: parse_page(args)?, ..Read::new(model) })
}

/// `leads(...)`.
pub(crate) fn list(
    cat: Arc<Catalog>,
    model: Arc<Model>,
) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    root!(cat, model, |ctx, rc| {
        let read = list_read_of(&cat, &model, &args_json(&ctx.args), &ctx.ctx.field())?;
        rows(&cat, rc, &model, Op::Read, read).await
    })
}

/// Runs a list read authorized for `op` and returns its rows.
async fn rows<'a>(cat: &Catalog, rc: &RequestCtx, model: &Model, op: Op, read: Read) -> Result<Option<FieldValue<'a>>, OrmError> {
    let q = rc.access.scope(cat, &model.name, op, read)?;
    let page = rc.engine.read(&q).await?;
    Ok(Some(FieldValue::list(page.rows.into_iter().map(FieldValue::owned_any))))
}

/// `leadsConnection(...)`.
pub(crate) fn connection(
    cat: Arc<Catalog>,
    model: Arc<Model>,
) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    root!(cat, model, |ctx, rc| {
        let read = connection_read_of(&cat, &model, &args_json(&ctx.args), &ctx.ctx.field())?;
        let q = rc.access.scope(&cat, &model.name, Op::Read, read)?;
        let page = rc.engine.read(&q).await?;
        Ok(Some(FieldValue::owned_any(conn_of(page))))
    })
}

/// `leadsGroupBy(...)`.
pub(crate) fn group_by(
    cat: Arc<Catalog>,
    model: Arc<Model>,
) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    root!(cat, model, |ctx, rc| {
        let args = args_json(&ctx.args);
        let by = match args.get("by") {
            Some(Json::Array(items)) => items
                .iter()
                .map(|i| i.as_str().and_then(|s| model.field(s)).map(|f| f.name.clone()).ok_or_else(|| bad("by", "unknown field")))
                .collect::<Result<Vec<_>, _>>()?,
            Some(Json::String(s)) => vec![model.field(s).map(|f| f.name.clone()).ok_or_else(|| bad("by", "unknown field"))?],
            _ => return Err(bad("by", "give at least one field to group by")),
        };
        // The group's numeric aggregates are selected like a connection's; `count` always comes.
        let mut aggregate = Aggregate { count: true, numeric: Vec::new() };
        aggregate_selection(&model, &ctx.ctx.field(), &mut aggregate);
        let q = GroupBy {
            model: model.name.clone(),
            filter: parse_where(&cat, &model, &args)?,
            by,
            aggregate,
            first: opt_u32(&args, "first")?,
            skip: opt_u32(&args, "skip")?.unwrap_or(0),
        };
        let q = rc.access.scope(&cat, &model.name, Op::Read, q)?;
        let groups = rc.engine.group_by(&q).await?;
        Ok(Some(FieldValue::list(groups.into_iter().map(FieldValue::owned_any))))
    })
}

/// `node(id:)`: finds the model (one statement), then reads the record with the selection the
/// fragments ask of that type.
pub(crate) fn node(cat: Arc<Catalog>) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    move |ctx: ResolverContext<'_>| {
        let cat = cat.clone();
        FieldFuture::new(async move {
            let rc = request(&ctx)?;
            let out: Result<Option<FieldValue<'_>>, OrmError> = async {
                let args = args_json(&ctx.args);
                let id = args.get("id").and_then(Json::as_str).unwrap_or_default();
                let Ok(uuid) = uuid::Uuid::parse_str(id) else {
                    return Err(bad("id", "not a valid id"));
                };
                let Some(name) = rc.engine.locate(&rc.access.scope_tenant(Locate { id: uuid })).await? else { return Ok(None) };
                let model = target_of(&cat, name.as_str())?;
                let read = Read {
                    filter: Filter::parse(&cat, model, &serde_json::json!({ "id": id }))?,
                    page: Page { first: Some(1), ..Page::default() },
                    select: selection(&cat, model, &ctx.ctx.field())?,
                    ..Read::new(model)
                };
                let q = rc.access.scope(&cat, &model.name, Op::Read, read)?;
                let page = rc.engine.read(&q).await?;
                Ok(page.rows.into_iter().next().map(|r| FieldValue::owned_any(r).with_type(model.name.to_string())))
            }
            .await;
            out.map_err(|e| err(&e))
        })
    }
}

fn arg<'m>(args: &'m Map<String, Json>, key: &str) -> &'m Json {
    args.get(key).unwrap_or(&Json::Null)
}

fn expected_version(args: &Map<String, Json>) -> Result<Option<i64>, OrmError> {
    match args.get("expectedVersion") {
        None | Some(Json::Null) => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or_else(|| bad("expectedVersion", "expected an integer")),
    }
}

async fn write_one<'a>(
    cat: &Catalog,
    rc: &RequestCtx,
    model: &Model,
    op: Op,
    w: Write,
    sf: &SelectionField<'_>,
) -> Result<Option<FieldValue<'a>>, OrmError> {
    let select = selection(cat, model, sf)?;
    let q = rc.access.scope(cat, &model.name, op, w)?;
    match rc.engine.write(&q, &select).await? {
        WriteResult::One(row) => Ok(row.map(FieldValue::owned_any)),
        WriteResult::Many(page) => Ok(Some(FieldValue::owned_any(conn_of(page)))),
    }
}

/// `createLead(data:)`.
pub(crate) fn create(
    cat: Arc<Catalog>,
    model: Arc<Model>,
) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    root!(cat, model, |ctx, rc| {
        let args = args_json(&ctx.args);
        let data = Data::parse(&cat, &model, arg(&args, "data"), "data")?;
        write_one(&cat, rc, &model, Op::Create, Write::Create { model: model.name.clone(), data }, &ctx.ctx.field()).await
    })
}

/// `updateLead(where:, data:, expectedVersion:)`.
pub(crate) fn update(
    cat: Arc<Catalog>,
    model: Arc<Model>,
) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    root!(cat, model, |ctx, rc| {
        let args = args_json(&ctx.args);
        let target = Unique::parse(&model, arg(&args, "where"), "where")?;
        let data = Data::parse(&cat, &model, arg(&args, "data"), "data")?;
        let w = Write::Update { model: model.name.clone(), target, data, expected_version: expected_version(&args)? };
        write_one(&cat, rc, &model, Op::Update, w, &ctx.ctx.field()).await
    })
}

/// `leadsTrash(...)`: the soft-deleted records.
pub(crate) fn trash(
    cat: Arc<Catalog>,
    model: Arc<Model>,
) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    root!(cat, model, |ctx, rc| {
        let args = args_json(&ctx.args);
        let mut read = Read { select: selection(&cat, &model, &ctx.ctx.field())?, trash: true, ..list_read(&cat, &model, &args)? };
        if read.order.is_empty()
            && let Some(f) = model.field("deletedAt")
        {
            read.order.push(OrderBy { field: f.name.clone(), desc: true });
        }
        // Seeing the trash takes the right to delete (and so to restore).
        rows(&cat, rc, &model, Op::Delete, read).await
    })
}

/// `restoreLead(where:)`.
pub(crate) fn restore(
    cat: Arc<Catalog>,
    model: Arc<Model>,
) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    root!(cat, model, |ctx, rc| {
        let args = args_json(&ctx.args);
        let target = Unique::parse(&model, arg(&args, "where"), "where")?;
        write_one(&cat, rc, &model, Op::Delete, Write::Restore { model: model.name.clone(), target }, &ctx.ctx.field()).await
    })
}

/// `destroyLead(where:)`.
pub(crate) fn destroy(
    cat: Arc<Catalog>,
    model: Arc<Model>,
) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    root!(cat, model, |ctx, rc| {
        let args = args_json(&ctx.args);
        let target = Unique::parse(&model, arg(&args, "where"), "where")?;
        write_one(&cat, rc, &model, Op::Destroy, Write::Destroy { model: model.name.clone(), target }, &ctx.ctx.field()).await
    })
}

/// `auditLog(model:, first:)`.
pub(crate) fn audit_log() -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    |ctx: ResolverContext<'_>| {
        FieldFuture::new(async move {
            let rc = request(&ctx)?;
            let out: Result<Option<FieldValue<'_>>, OrmError> = async {
                let args = args_json(&ctx.args);
                let model = match opt_string(&args, "model")? {
                    Some(m) => Some(crm_model::ModelName::new(&m).map_err(|_| bad("model", "not a model name"))?),
                    None => None,
                };
                let q = crm_orm::AuditQuery { model, first: opt_u32(&args, "first")?.unwrap_or(50) };
                let rows = rc.engine.audit_log(&rc.access.scope_tenant(q)).await?;
                Ok(Some(FieldValue::list(rows.into_iter().map(FieldValue::owned_any))))
            }
            .await;
            out.map_err(|e| err(&e))
        })
    }
}

/// `deleteLead(where:, expectedVersion:)`.
pub(crate) fn delete(
    cat: Arc<Catalog>,
    model: Arc<Model>,
) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    root!(cat, model, |ctx, rc| {
        let args = args_json(&ctx.args);
        let target = Unique::parse(&model, arg(&args, "where"), "where")?;
        let w = Write::Delete { model: model.name.clone(), target, expected_version: expected_version(&args)? };
        write_one(&cat, rc, &model, Op::Delete, w, &ctx.ctx.field()).await
    })
}

/// `upsertLead(where:, upsert: {create, update})`: needs both the create and the update grant.
pub(crate) fn upsert(
    cat: Arc<Catalog>,
    model: Arc<Model>,
) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    root!(cat, model, |ctx, rc| {
        let args = args_json(&ctx.args);
        let target = Unique::parse(&model, arg(&args, "where"), "where")?;
        let up = arg(&args, "upsert");
        let create = Data::parse(&cat, &model, up.get("create").unwrap_or(&Json::Null), "upsert.create")?;
        let update = Data::parse(&cat, &model, up.get("update").unwrap_or(&Json::Null), "upsert.update")?;
        if !rc.access.allows(&model.name, Op::Create) {
            return Err(OrmError::Forbidden(format!("not allowed to create {}", model.name)));
        }
        let w = Write::Upsert { model: model.name.clone(), target, create, update };
        write_one(&cat, rc, &model, Op::Update, w, &ctx.ctx.field()).await
    })
}

/// Runs a batch write and returns its connection.
async fn write_many<'a>(
    cat: &Catalog,
    rc: &RequestCtx,
    model: &Model,
    op: Op,
    w: Write,
    sf: &SelectionField<'_>,
) -> Result<Option<FieldValue<'a>>, OrmError> {
    let select = connection_selection(cat, model, sf)?.select;
    let q = rc.access.scope(cat, &model.name, op, w)?;
    match rc.engine.write(&q, &select).await? {
        WriteResult::Many(page) => Ok(Some(FieldValue::owned_any(conn_of(page)))),
        WriteResult::One(_) => Err(OrmError::Internal("a batch returned one record".to_owned())),
    }
}

/// `updateManyLeadsConnection(where:, data:, <page>)`.
pub(crate) fn update_many(
    cat: Arc<Catalog>,
    model: Arc<Model>,
) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    root!(cat, model, |ctx, rc| {
        let args = args_json(&ctx.args);
        let data = Data::parse(&cat, &model, arg(&args, "data"), "data")?;
        let w = Write::UpdateMany {
            model: model.name.clone(),
            filter: parse_where(&cat, &model, &args)?,
            order: Vec::new(),
            page: parse_page(&args)?,
            data,
        };
        write_many(&cat, rc, &model, Op::Update, w, &ctx.ctx.field()).await
    })
}

/// `deleteManyLeadsConnection(where:, <page>)`.
pub(crate) fn delete_many(
    cat: Arc<Catalog>,
    model: Arc<Model>,
) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    root!(cat, model, |ctx, rc| {
        let args = args_json(&ctx.args);
        let w = Write::DeleteMany {
            model: model.name.clone(),
            filter: parse_where(&cat, &model, &args)?,
            order: Vec::new(),
            page: parse_page(&args)?,
        };
        write_many(&cat, rc, &model, Op::Delete, w, &ctx.ctx.field()).await
    })
}
