//! Pages: the page-size limits, the page plan of a read (direction, size, cursor keys), the
//! ordering with its tie-breaker, and cursors (encoded, decoded, turned into keyset predicates).

use base64::Engine as _;
use crm_model::{FieldKind, Model, ScalarType, Value};
use sea_query::{Expr, ExprTrait, NullOrdering, Order, SelectStatement};
use serde_json::Value as Json;

use super::builder::{Builder, NOT_NULL_SYSTEM, always, never};
use crate::error::{OrmError, Result};
use crate::ir::{OrderBy, Page, Read, orderable, page_flags};
use crate::row::{Cell, KeyShape, RowShape};

/// How a page is fetched: direction, size and the ordering the cursors belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagePlan {
    /// Fetching backwards (`last` / `before`): rows come reversed and are flipped after.
    pub backward: bool,
    /// Rows wanted (one more is fetched to learn whether there are more).
    pub limit: u32,
    /// Canonical ordering (`name:a,id:a`) that cursors carry.
    pub spec: String,
    /// Whether a cursor or skip was given (there are rows before, in the direction of travel).
    pub from_cursor: bool,
    /// How each row's cursor keys are written from their columns (none without cursors).
    pub keys: KeyShape,
    /// How each row's JSON object is written from its columns ([`Builder::select_page`]).
    pub row: RowShape,
}

impl PagePlan {
    /// `(has_next, has_previous)` when `more` rows lie beyond the page (see [`page_flags`]).
    #[must_use]
    pub fn flags(&self, more: bool) -> (bool, bool) {
        page_flags(self.backward, self.from_cursor, more)
    }
}

const CURSOR_PREFIX: &str = "v1|";

/// Encodes a cursor from the ordering spec and the JSON array of key values.
#[must_use]
pub fn encode_cursor(spec: &str, keys_json: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{spec}|{keys_json}"))
}

/// The canonical text of an ordering (`name:a,id`) that cursors carry, so a cursor is only
/// accepted by a query with the same ordering.
#[must_use]
pub fn order_spec(order: &[OrderBy]) -> String {
    let mut spec = String::new();
    for o in order {
        spec.push_str(o.field.as_str());
        spec.push_str(if o.desc { ":d," } else { ":a," });
    }
    // The id breaks ties in the direction of the last key.
    spec.push_str(if tie_breaker_desc(order) { "id:d" } else { "id" });
    spec
}

/// Whether the id, which breaks ties, runs descending: it follows the last key, so an ordering
/// and its cursor condition are one range of an index `(…, key, id)`.
pub(super) fn tie_breaker_desc(order: &[OrderBy]) -> bool {
    order.last().is_some_and(|o| o.desc)
}

/// A cursor's ordering spec and key values; `None` when it is not a cursor.
pub(crate) fn cursor_parts(cursor: &str) -> Option<(String, Vec<Json>)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor.as_bytes()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (spec, keys) = text.strip_prefix(CURSOR_PREFIX)?.split_once('|')?;
    match serde_json::from_str(keys) {
        Ok(Json::Array(v)) => Some((spec.to_owned(), v)),
        _ => None,
    }
}

pub(super) fn decode_cursor(spec: &str, cursor: &str, arg: &str) -> Result<Vec<Json>> {
    let (s, keys) = cursor_parts(cursor).ok_or_else(|| OrmError::bad(arg, "invalid cursor"))?;
    if s != spec {
        return Err(OrmError::bad(arg, "the cursor belongs to a different ordering"));
    }
    Ok(keys)
}

/// One ordering key of a statement: expression, descending, and whether the column can hold
/// nulls (the NULLS clause and the null arms of keyset predicates are only needed then; leaving
/// them out keeps the index order usable, notably on SQLite whose default null order differs).
pub(super) type OrderKey = (Expr, bool, bool);

impl Builder<'_> {
    pub(super) fn order_exprs(&self, model: &Model, alias: &str, order: &[OrderBy], backward: bool) -> Result<Vec<OrderKey>> {
        let mut out = Vec::with_capacity(order.len() + 1);
        for o in order {
            let fl = Self::field(model, o.field.as_str())?;
            if !orderable(fl) {
                return Err(OrmError::bad("orderBy", format!("`{}` cannot be ordered", o.field)));
            }
            let nullable = !(fl.system && NOT_NULL_SYSTEM.contains(&fl.name.as_str()));
            out.push((self.value(alias, model, fl), o.desc != backward, nullable));
        }
        out.push((Self::col(alias, "id"), tie_breaker_desc(order) != backward, false));
        Ok(out)
    }

    pub(super) fn apply_order(stmt: &mut SelectStatement, keys: Vec<OrderKey>) {
        let n = keys.len();
        for (i, (e, desc, nullable)) in keys.into_iter().enumerate() {
            let order = if desc { Order::Desc } else { Order::Asc };
            if i + 1 == n || !nullable {
                stmt.order_by_expr(e, order);
            } else {
                // Nulls last ascending, first descending (and the reverse when paging backwards,
                // which is the same rule applied to the flipped direction).
                let nulls = if desc { NullOrdering::First } else { NullOrdering::Last };
                stmt.order_by_expr_with_nulls(e, order, nulls);
            }
        }
    }

    /// Keyset predicate: rows strictly after `values` in the given key order. When the first key
    /// cannot be null, its bound is also stated on its own (`k0 <= v0 AND (k0 < v0 OR …)`), so
    /// the condition is one range of an index on the keys.
    pub(super) fn after(&self, keys: &[OrderKey], values: &[Value]) -> Expr {
        let chain = self.after_chain(keys, values);
        match (keys.first(), values.first()) {
            (Some((e, desc, false)), Some(v)) if keys.len() > 1 && !v.is_null() => {
                let bound = if *desc { e.clone().lte(self.d.bind(v)) } else { e.clone().gte(self.d.bind(v)) };
                bound.and(chain)
            }
            _ => chain,
        }
    }

    pub(super) fn after_chain(&self, keys: &[OrderKey], values: &[Value]) -> Expr {
        let d = self.d;
        let mut acc: Option<Expr> = None;
        for ((e, desc, nullable), v) in keys.iter().zip(values).rev() {
            let is_last_key = acc.is_none();
            // "strictly after on this key" under ASC NULLS LAST / DESC NULLS FIRST.
            let gt = match (desc, v) {
                (false, v) if !nullable && !v.is_null() => e.clone().gt(d.bind(v)),
                (false, Value::Null) => never(),
                (false, v) => d.cust("({})", vec![e.clone().gt(d.bind(v)).or(e.clone().is_null())]),
                (true, Value::Null) => e.clone().is_not_null(),
                (true, v) => e.clone().lt(d.bind(v)),
            };
            acc = Some(match acc {
                None if is_last_key => gt,
                None => gt,
                Some(rest) => {
                    let eq = match v {
                        Value::Null => e.clone().is_null(),
                        v => e.clone().eq(d.bind(v)),
                    };
                    d.cust("({})", vec![gt.or(eq.and(rest))])
                }
            });
        }
        acc.unwrap_or_else(always)
    }

    /// Checks `read`'s pagination arguments and cursor as [`Self::select_page`] would, for a read
    /// that fetches no page (a connection selecting only its aggregate).
    ///
    /// # Errors
    /// Bad pagination arguments, a foreign or malformed cursor.
    pub fn check_page(&self, read: &Read) -> Result<()> {
        let model = self.model(read.model.as_str())?;
        let plan = self.page_plan(model, &read.order, &read.page)?;
        for (c, arg) in [(&read.page.after, "after"), (&read.page.before, "before")] {
            if let Some(c) = c {
                Self::cursor_values(model, &read.order, &plan, c, arg)?;
            }
        }
        Ok(())
    }

    pub(super) fn page_plan(&self, model: &Model, order: &[OrderBy], page: &Page) -> Result<PagePlan> {
        if page.first.is_some() && page.before.is_some() {
            return Err(OrmError::bad("first", "`first` cannot be combined with `before`"));
        }
        if page.last.is_some() && page.after.is_some() {
            return Err(OrmError::bad("last", "`last` cannot be combined with `after`"));
        }
        if page.first.is_some() && page.last.is_some() {
            return Err(OrmError::bad("last", "`first` cannot be combined with `last`"));
        }
        let backward = page.backward();
        let limit = page.size(self.limits.default_page);
        if limit > self.limits.max_page {
            return Err(OrmError::Limit(format!("page size {limit} is above the maximum {}", self.limits.max_page)));
        }
        let spec = order_spec(order);
        let _ = model;
        Ok(PagePlan { backward, limit, spec, from_cursor: page.from_cursor(), keys: KeyShape::default(), row: RowShape::default() })
    }

    /// The keyset predicate of the page's cursor in its direction of travel (`after` forwards,
    /// `before` backwards), if one is given.
    pub(super) fn cursor_predicate(
        &self,
        model: &Model,
        order: &[OrderBy],
        plan: &PagePlan,
        page: &Page,
        keys: &[OrderKey],
    ) -> Result<Option<Expr>> {
        let cursor =
            if plan.backward { page.before.as_deref().map(|c| (c, "before")) } else { page.after.as_deref().map(|c| (c, "after")) };
        let Some((c, arg)) = cursor else { return Ok(None) };
        let values = Self::cursor_values(model, order, plan, c, arg)?;
        Ok(Some(self.after(keys, &values)))
    }

    pub(super) fn cursor_values(model: &Model, order: &[OrderBy], plan: &PagePlan, cursor: &str, arg: &str) -> Result<Vec<Value>> {
        let raw = decode_cursor(&plan.spec, cursor, arg)?;
        if raw.len() != order.len() + 1 {
            return Err(OrmError::bad(arg, "invalid cursor"));
        }
        let mut out = Vec::with_capacity(raw.len());
        for (o, j) in order.iter().zip(&raw) {
            let fl = Self::field(model, o.field.as_str())?;
            let v = match (&fl.kind, j) {
                (_, Json::Null) => Value::Null,
                (FieldKind::Scalar(ScalarType::Boolean), Json::Number(n)) => Value::Bool(n.as_i64() == Some(1)),
                _ => crm_model::input::parse(fl, j).map_err(|_| OrmError::bad(arg, "invalid cursor"))?,
            };
            out.push(v);
        }
        let id = raw
            .last()
            .and_then(Json::as_str)
            .and_then(|s| uuid::Uuid::parse_str(s).ok())
            .ok_or_else(|| OrmError::bad(arg, "invalid cursor"))?;
        out.push(Value::Uuid(id));
        Ok(out)
    }

    /// The cursor keys of `model` rows aliased `alias`: the ordering keys' values, then the id,
    /// each as its JSON expression with its scalar type (money keys by their amount).
    pub(super) fn key_values<'m>(&self, model: &'m Model, alias: &str, order: &[OrderBy]) -> Result<Vec<(Expr, Option<&'m ScalarType>)>> {
        let mut keys = Vec::with_capacity(order.len() + 1);
        for o in order {
            let fl = Self::field(model, o.field.as_str())?;
            let c = self.value(alias, model, fl);
            let ty = match &fl.kind {
                FieldKind::Scalar(ScalarType::Money { .. }) => Some(&ScalarType::Decimal),
                FieldKind::Scalar(ty) => Some(ty),
                _ => None,
            };
            keys.push((if ty.is_some() { self.d.json_value(ty, c, None) } else { c }, ty));
        }
        keys.push((self.d.json_value(Some(&ScalarType::Id), Self::col(alias, "id"), None), Some(&ScalarType::Id)));
        Ok(keys)
    }

    /// The cursor keys as one JSON array (nested connections).
    pub(super) fn key_json(&self, model: &Model, alias: &str, order: &[OrderBy]) -> Result<Expr> {
        Ok(self.d.array(self.key_values(model, alias, order)?.into_iter().map(|(e, _)| e).collect()))
    }

    /// The cursor keys as text columns and how they read as the JSON array a cursor carries: a
    /// key the row's `row_columns` already hold is read from there, any other gets a column of
    /// its own (returned).
    pub(super) fn key_cells(&self, model: &Model, alias: &str, order: &[OrderBy], row_columns: &[Expr]) -> Result<(Vec<Expr>, KeyShape)> {
        let mut columns = Vec::new();
        let mut shape = KeyShape::default();
        for (json, ty) in self.key_values(model, alias, order)? {
            let (e, cell) = (self.d.cell_text(ty, json), ty.map_or(Cell::Text, Cell::of));
            if let Some(i) = row_columns.iter().position(|c| c == &e) {
                shape.row_column(i, cell);
            } else {
                shape.column(cell);
                columns.push(e);
            }
        }
        Ok((columns, shape))
    }
}
