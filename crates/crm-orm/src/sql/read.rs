//! Pure SQL building: IR + scope -> sea-query statements, for either dialect. No database here;
//! values are always bound (only identifiers from the Catalog and static templates are text).

use std::sync::Arc;

use base64::Engine as _;
use crm_model::{CUSTOM_COLUMN, Catalog, Field, FieldKind, FieldName, Model, ScalarType, SqlName, Value};
use sea_query::{Alias, Expr, ExprTrait, NullOrdering, Order, Query, SelectStatement};
use serde_json::Value as Json;

use crate::authorization::Access;
use crate::error::{OrmError, Result};
use crate::ir::{
    AggFn, Aggregate, Extra, Filter, FilterOp, GroupBy, Locate, Nested, Op, Operand, OrderBy, Output, Page, Quantifier, Read, Selection,
    aggregatable, groupable, orderable, page_flags,
};
use crate::row::{Cell, KeyShape, RowShape};
use crate::sql::dialect::Dialect;

/// Page-size limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Rows per page when `first`/`last` is not given.
    pub default_page: u32,
    /// Largest `first`/`last` accepted.
    pub max_page: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { default_page: 10, max_page: 100 }
    }
}

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
fn tie_breaker_desc(order: &[OrderBy]) -> bool {
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

fn decode_cursor(spec: &str, cursor: &str, arg: &str) -> Result<Vec<Json>> {
    let (s, keys) = cursor_parts(cursor).ok_or_else(|| OrmError::bad(arg, "invalid cursor"))?;
    if s != spec {
        return Err(OrmError::bad(arg, "the cursor belongs to a different ordering"));
    }
    Ok(keys)
}

fn ident(name: &SqlName) -> Alias {
    Alias::new(name.as_str())
}

/// `TRUE`.
fn always() -> Expr {
    Expr::cust("TRUE")
}
/// `FALSE`.
fn never() -> Expr {
    Expr::cust("FALSE")
}

fn all(items: Vec<Expr>) -> Expr {
    let mut it = items.into_iter();
    match it.next() {
        None => always(),
        Some(first) => it.fold(first, ExprTrait::and),
    }
}

fn any(items: Vec<Expr>) -> Expr {
    let mut it = items.into_iter();
    match it.next() {
        None => never(),
        Some(first) => it.fold(first, ExprTrait::or),
    }
}

fn like_pattern(s: &str, op: FilterOp) -> String {
    let mut esc = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            esc.push('\\');
        }
        esc.push(c);
    }
    match op {
        FilterOp::StartsWith | FilterOp::NotStartsWith => format!("{esc}%"),
        FilterOp::EndsWith | FilterOp::NotEndsWith => format!("%{esc}"),
        _ => format!("%{esc}%"),
    }
}

/// One ordering key of a statement: expression, descending, and whether the column can hold
/// nulls (the NULLS clause and the null arms of keyset predicates are only needed then; leaving
/// them out keeps the index order usable, notably on SQLite whose default null order differs).
type OrderKey = (Expr, bool, bool);

/// System columns that are NOT NULL by construction.
const NOT_NULL_SYSTEM: &[&str] = &["id", "createdAt", "updatedAt", "version"];

/// The value of a stored field of `model` rows aliased (or named) `alias`: its column, or for a
/// custom field the typed value read from the row's JSON document.
pub(crate) fn stored_value(d: Dialect, alias: &str, model: &Model, fl: &Field) -> Expr {
    let col = |c: &str| Expr::col((Alias::new(alias), Alias::new(c)));
    if !fl.custom {
        return col(fl.column.as_str());
    }
    const ID: &ScalarType = &ScalarType::Id;
    const JSON: &ScalarType = &ScalarType::Json;
    let ty = match &fl.kind {
        FieldKind::Scalar(t) => t,
        FieldKind::ToOne { .. } => ID,
        _ => JSON,
    };
    let guard = model.custom.then(|| (col("object"), model.name.as_str()));
    d.custom_value(col(CUSTOM_COLUMN), fl.name.as_str(), ty, guard)
}

/// A value of a row object being built: SQL (JSON, or a text column with how it reads as
/// JSON), or the model's name.
enum Entry {
    Sql(Expr, Cell),
    Typename,
}

/// One statement's builder: numbers table aliases (`t0`, `t1`, …) so output is deterministic.
pub struct Builder<'a> {
    d: Dialect,
    cat: &'a Catalog,
    access: &'a Access,
    tenant: bool,
    limits: Limits,
    n: usize,
    trash: bool,
}

impl<'a> Builder<'a> {
    /// A builder for one statement.
    #[must_use]
    pub fn new(d: Dialect, cat: &'a Catalog, access: &'a Access, limits: Limits) -> Self {
        Builder { d, cat, access, tenant: true, limits, n: 0, trash: false }
    }

    /// A builder that may leave the tenant predicate out: only for the test-only bypass of
    /// [`crate::Scoped`], which proves row-level security on its own.
    pub(crate) fn with_tenant_predicate(d: Dialect, cat: &'a Catalog, access: &'a Access, tenant: bool, limits: Limits) -> Self {
        Builder { d, cat, access, tenant, limits, n: 0, trash: false }
    }

    /// Root rows come from the trash (soft-deleted) instead of the live rows. Related rows are
    /// always live ones.
    #[must_use]
    pub fn in_trash(mut self, trash: bool) -> Self {
        self.trash = trash;
        self
    }

    fn model(&self, name: &str) -> Result<&'a Arc<Model>> {
        self.cat.model(name).ok_or_else(|| OrmError::bad("model", format!("unknown model `{name}`")))
    }

    fn alias(&mut self) -> String {
        let a = format!("t{}", self.n);
        self.n += 1;
        a
    }

    fn col(alias: &str, column: &str) -> Expr {
        Expr::col((Alias::new(alias), Alias::new(column)))
    }

    fn field<'m>(model: &'m Model, name: &str) -> Result<&'m Field> {
        model.field(name).ok_or_else(|| OrmError::bad(name, format!("unknown field `{name}` on {}", model.name)))
    }

    /// The value of a stored field of `model` rows aliased `alias`, as filters, ordering, cursors
    /// and aggregates use it: its column, or for a custom field the typed value from the row's
    /// JSON document.
    fn value(&self, alias: &str, model: &Model, fl: &Field) -> Expr {
        self.own_custom(alias, fl, stored_value(self.d, alias, model, fl))
    }

    /// Reads covering descendant tenants see custom values of the caller's own tenant only: the
    /// caller's definitions say nothing about what a child tenant keeps under the same name.
    fn own_custom(&self, alias: &str, fl: &Field, e: Expr) -> Expr {
        if !fl.custom || self.access.read_orgs().is_empty() {
            return e;
        }
        self.d.cust("(CASE WHEN {} = {} THEN {} END)", vec![Self::col(alias, "org_id"), Expr::val(self.access.org().as_str()), e])
    }

    /// The predicate keeping rows of `model` in its table: for a custom object, its own records
    /// of the shared records table.
    fn object_predicate(model: &Model, alias: &str) -> Option<Expr> {
        model.custom.then(|| Self::col(alias, "object").eq(Expr::val(model.name.as_str())))
    }

    /// The folded searchable text of `model` rows aliased `alias`, as SQL: the generated
    /// `crm_search` column, or, when custom fields are searchable, the same fold computed inline
    /// over the columns and the document (the column cannot follow per-tenant fields).
    fn search_text(&self, model: &Model, alias: &str) -> String {
        if !model.searchable().any(|f| f.custom) {
            return format!("\"{alias}\".\"{}\"", crate::sql::search::SEARCH_COLUMN);
        }
        let parts: Vec<String> = model
            .searchable()
            .map(|f| {
                if f.custom {
                    self.d.custom_text_sql(&format!("\"{alias}\".\"{CUSTOM_COLUMN}\""), f.name.as_str())
                } else {
                    format!("\"{alias}\".\"{}\"", f.column)
                }
            })
            .collect();
        format!("({})", crate::sql::search::fold_sql(self.d, &parts).unwrap_or_else(|| "''".to_owned()))
    }

    /// The tenant predicate of `alias`.
    fn org(&self, alias: &str) -> Expr {
        Self::col(alias, "org_id").eq(Expr::val(self.access.org().as_str()))
    }

    /// Tenant + row predicate of `op` on `model`, for a root table.
    pub fn scope(&mut self, model: &Model, alias: &str, op: Op) -> Result<Expr> {
        let pred = self.access.predicate(model, op);
        let mut parts = Vec::with_capacity(2);
        if self.tenant {
            let others = self.access.read_orgs();
            // Custom objects are the caller's own tenant's definitions: never widened.
            if op == Op::Read && !others.is_empty() && !model.custom {
                // A parent role reads its tenant and the descendant tenants the store resolved.
                let orgs: Vec<Expr> = std::iter::once(self.access.org()).chain(others).map(|o| Expr::val(o.as_str())).collect();
                parts.push(Self::col(alias, "org_id").is_in(orgs));
            } else {
                parts.push(self.org(alias));
            }
        }
        parts.push(if self.trash { Self::col(alias, "deleted_at").is_not_null() } else { Self::col(alias, "deleted_at").is_null() });
        parts.extend(Self::object_predicate(model, alias));
        match pred {
            Filter::True => {}
            Filter::False => return Ok(never()),
            p => parts.push(self.filter(model, alias, &p, false)?),
        }
        Ok(all(parts))
    }

    /// Link + row predicate of a related table `a1` reached from `a0`; the tenant is inherited
    /// through `org_id` equality. Scope predicates themselves are compiled without nested scopes.
    fn related(&mut self, target: &Model, a1: &str, a0: &str, scoped: bool) -> Result<Vec<Expr>> {
        let mut parts = vec![Self::col(a1, "org_id").eq(Self::col(a0, "org_id")), Self::col(a1, "deleted_at").is_null()];
        parts.extend(Self::object_predicate(target, a1));
        if scoped {
            match self.access.predicate(target, Op::Read) {
                Filter::True => {}
                Filter::False => parts.push(never()),
                p => parts.push(self.filter(target, a1, &p, false)?),
            }
        }
        Ok(parts)
    }

    /// Compiles a filter over `model` rows aliased `alias`. With `scoped`, relation steps add the
    /// target's read predicate, so filters cannot probe rows the caller may not read.
    pub fn filter(&mut self, model: &Model, alias: &str, filter: &Filter, scoped: bool) -> Result<Expr> {
        Ok(match filter {
            Filter::True => always(),
            Filter::False => never(),
            Filter::And(items) => all(items.iter().map(|i| self.filter(model, alias, i, scoped)).collect::<Result<_>>()?),
            Filter::Or(items) => {
                let parts: Vec<Expr> = items.iter().map(|i| self.filter(model, alias, i, scoped)).collect::<Result<_>>()?;
                self.d.cust("({})", vec![any(parts)])
            }
            Filter::Not(inner) => {
                let e = self.filter(model, alias, inner, scoped)?;
                self.d.is_not_true(e)
            }
            Filter::Cmp { field, op, value } => self.cmp(model, alias, field.as_str(), *op, value)?,
            Filter::Search(term) => {
                if model.searchable().next().is_none() {
                    return Ok(never());
                }
                // Every word must occur in the folded text, exactly or one typo away.
                let text = self.search_text(model, alias);
                let like = format!("{text} LIKE {{}} ESCAPE '\\'");
                let parts: Vec<Expr> = crate::sql::search::words(term)
                    .iter()
                    .map(|w| {
                        let alts: Vec<Expr> =
                            crate::sql::search::patterns(w).into_iter().map(|p| self.d.cust(&like, vec![Expr::val(p)])).collect();
                        self.d.cust("({})", vec![any(alts)])
                    })
                    .collect();
                self.d.cust("({})", vec![all(parts)])
            }
            Filter::ToOne { field, filter } => {
                let fl = Self::field(model, field.as_str())?;
                let FieldKind::ToOne { target, .. } = &fl.kind else {
                    return Err(OrmError::bad(field.as_str(), "not a to-one relation"));
                };
                let Some(inner) = filter else {
                    return Ok(self.value(alias, model, fl).is_null());
                };
                let target = self.model(target.as_str())?;
                let a1 = self.alias();
                let mut parts = self.related(target, &a1, alias, scoped)?;
                parts.push(Self::col(&a1, "id").eq(self.value(alias, model, fl)));
                parts.push(self.filter(target, &a1, inner, scoped)?);
                Expr::exists(
                    Query::select().expr(Expr::cust("1")).from_as(ident(&target.table), Alias::new(&a1)).cond_where(all(parts)).take(),
                )
            }
            Filter::ToMany { field, quantifier, filter } => {
                let fl = Self::field(model, field.as_str())?;
                let FieldKind::ToMany { target, via } = &fl.kind else {
                    return Err(OrmError::bad(field.as_str(), "not a to-many relation"));
                };
                let target = self.model(target.as_str())?;
                let via = Self::field(target, via.as_str())?;
                let a1 = self.alias();
                let mut parts = self.related(target, &a1, alias, scoped)?;
                parts.push(self.value(&a1, target, via).eq(Self::col(alias, "id")));
                let inner = self.filter(target, &a1, filter, scoped)?;
                parts.push(match quantifier {
                    Quantifier::Every => self.d.is_not_true(inner),
                    _ => inner,
                });
                let sub =
                    Query::select().expr(Expr::cust("1")).from_as(ident(&target.table), Alias::new(&a1)).cond_where(all(parts)).take();
                match quantifier {
                    Quantifier::Some => Expr::exists(sub),
                    Quantifier::Every | Quantifier::None => Expr::not_exists(sub),
                }
            }
        })
    }

    fn cmp(&mut self, model: &Model, alias: &str, name: &str, op: FilterOp, value: &Operand) -> Result<Expr> {
        let fl = Self::field(model, name)?;
        let c = self.value(alias, model, fl);
        let d = self.d;
        Ok(match (op, value) {
            (FilterOp::Eq, Operand::One(Value::Null)) => c.is_null(),
            (FilterOp::Not, Operand::One(Value::Null)) => c.is_not_null(),
            (FilterOp::Eq, Operand::One(v)) => c.eq(d.bind(v)),
            (FilterOp::Not, Operand::One(v)) => d.is_not_true(c.eq(d.bind(v))),
            (FilterOp::In | FilterOp::NotIn, Operand::Many(vs)) => {
                let has_null = vs.iter().any(Value::is_null);
                let binds: Vec<Expr> = vs.iter().filter(|v| !v.is_null()).map(|v| d.bind(v)).collect();
                let mut parts = Vec::with_capacity(2);
                if !binds.is_empty() {
                    parts.push(c.clone().is_in(binds));
                }
                if has_null {
                    parts.push(c.is_null());
                }
                let e = d.cust("({})", vec![any(parts)]);
                if op == FilterOp::NotIn { d.is_not_true(e) } else { e }
            }
            (
                FilterOp::Contains
                | FilterOp::NotContains
                | FilterOp::StartsWith
                | FilterOp::NotStartsWith
                | FilterOp::EndsWith
                | FilterOp::NotEndsWith,
                Operand::One(Value::Text(s)),
            ) => {
                // Ids are matched on their text form (a UUID column on PostgreSQL).
                let c = if matches!(fl.kind, FieldKind::Scalar(ScalarType::Id)) { d.cust("CAST({} AS TEXT)", vec![c]) } else { c };
                let e = d.ilike(c, like_pattern(s, op));
                if matches!(op, FilterOp::NotContains | FilterOp::NotStartsWith | FilterOp::NotEndsWith) { d.is_not_true(e) } else { e }
            }
            (FilterOp::Lt, Operand::One(v)) => c.lt(d.bind(v)),
            (FilterOp::Lte, Operand::One(v)) => c.lte(d.bind(v)),
            (FilterOp::Gt, Operand::One(v)) => c.gt(d.bind(v)),
            (FilterOp::Gte, Operand::One(v)) => c.gte(d.bind(v)),
            (FilterOp::ContainsAll, Operand::Many(vs)) if vs.is_empty() => always(),
            (FilterOp::ContainsSome, Operand::Many(vs)) if vs.is_empty() => never(),
            (FilterOp::ContainsNone, Operand::Many(vs)) if vs.is_empty() => always(),
            (FilterOp::ContainsAll, Operand::Many(vs)) => d.list_all(c, vs.iter().map(|v| d.bind(v)).collect()),
            (FilterOp::ContainsSome, Operand::Many(vs)) => d.list_some(c, vs.iter().map(|v| d.bind(v)).collect()),
            (FilterOp::ContainsNone, Operand::Many(vs)) => d.is_not_true(d.list_some(c, vs.iter().map(|v| d.bind(v)).collect())),
            _ => return Err(OrmError::bad(name, format!("operator `{name}{}` got an operand of the wrong shape", op.suffix()))),
        })
    }

    /// The JSON of one stored field.
    fn field_json(&self, alias: &str, fl: &Field) -> Result<Expr> {
        if fl.custom {
            return Ok(self.own_custom(alias, fl, self.d.custom_json(Self::col(alias, CUSTOM_COLUMN), fl.name.as_str())));
        }
        let c = Self::col(alias, fl.column.as_str());
        Ok(match &fl.kind {
            FieldKind::Scalar(ty @ ScalarType::Money { currency_column }) => {
                self.d.json_value(Some(ty), c, Some(Self::col(alias, currency_column.as_str())))
            }
            FieldKind::Scalar(ty) => self.d.json_value(Some(ty), c, None),
            FieldKind::ToOne { .. } => self.d.json_value(Some(&ScalarType::Id), c, None),
            FieldKind::Polymorphic { type_column, .. } => self.d.json_value(None, c, Some(Self::col(alias, type_column.as_str()))),
            FieldKind::ToMany { .. } => {
                return Err(OrmError::bad(fl.name.as_str(), "a to-many relation is selected as a nested relation"));
            }
        })
    }

    /// The JSON object of a selection over `model` rows aliased `alias`.
    pub fn object(&mut self, model: &Model, alias: &str, sel: &Selection) -> Result<Expr> {
        let entries = self.entries(model, alias, sel, false)?;
        let mut pairs = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            let v = match value {
                Entry::Sql(e, _) => e,
                Entry::Typename => Expr::val(model.name.as_str()),
            };
            pairs.push((self.d.key(&key)?, v));
        }
        Ok(self.d.object(pairs))
    }

    /// A selection over `model` rows aliased `alias` as text columns and the shape that writes
    /// them into the row's JSON object (see [`crate::row`]).
    fn row(&mut self, model: &Model, alias: &str, sel: &Selection) -> Result<(Vec<Expr>, RowShape)> {
        let entries = self.entries(model, alias, sel, true)?;
        let mut shape = RowShape::default();
        let mut columns = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            self.d.key(&key)?;
            match value {
                Entry::Sql(e, cell) => {
                    shape.column(&key, cell);
                    columns.push(e);
                }
                Entry::Typename => shape.literal(&key, Json::from(model.name.as_str()).to_string()),
            }
        }
        Ok((columns, shape))
    }

    /// The entries of a selection's row object in order: with [`Selection::output`], its keys
    /// in its order; otherwise the fields under their names, then the nested relations and
    /// extras under their keys. Values are JSON expressions, or with `cells` the text columns
    /// of [`Self::row`].
    fn entries(&mut self, model: &Model, alias: &str, sel: &Selection, cells: bool) -> Result<Vec<(String, Entry)>> {
        let json = |b: &Self, e: Expr| if cells { Entry::Sql(b.d.cell_text(None, e), Cell::Json) } else { Entry::Sql(e, Cell::Json) };
        let mut out = Vec::with_capacity(sel.fields.len() + sel.nested.len() + sel.extras.len());
        let Some(output) = &sel.output else {
            for name in &sel.fields {
                let fl = Self::field(model, name.as_str())?;
                out.push((name.to_string(), self.field_entry(alias, fl, cells)?));
            }
            for n in &sel.nested {
                out.push((n.key.clone(), self.relation_entry(model, alias, n, cells)?));
            }
            for x in &sel.extras {
                let e = self.extra(model, alias, x)?;
                out.push((x.key().to_owned(), json(self, e)));
            }
            return Ok(out);
        };
        for o in output {
            match o {
                Output::Field { key, field } => {
                    if !sel.fields.contains(field) {
                        return Err(OrmError::invariant(format!("output field `{field}` is not selected")));
                    }
                    let fl = Self::field(model, field.as_str())?;
                    out.push((key.clone(), self.field_entry(alias, fl, cells)?));
                }
                Output::Nested(key) => {
                    let n = sel.nested.iter().find(|n| &n.key == key).ok_or_else(|| OrmError::invariant(format!("no nested `{key}`")))?;
                    out.push((key.clone(), self.relation_entry(model, alias, n, cells)?));
                }
                Output::Typename { key } => out.push((key.clone(), Entry::Typename)),
            }
        }
        Ok(out)
    }

    /// A relation's entry: its JSON, or with `cells` its row value ([`Self::nested_entry`]).
    fn relation_entry(&mut self, model: &Model, alias: &str, n: &Nested, cells: bool) -> Result<Entry> {
        if cells { self.nested_entry(model, alias, n) } else { Ok(Entry::Sql(self.nested(model, alias, n)?, Cell::Json)) }
    }

    /// A stored field's entry: its JSON expression, or with `cell` its text column.
    fn field_entry(&self, alias: &str, fl: &Field, cell: bool) -> Result<Entry> {
        let json = self.field_json(alias, fl)?;
        if !cell {
            return Ok(Entry::Sql(json, Cell::Json));
        }
        let ty = match &fl.kind {
            FieldKind::Scalar(ty) if !fl.custom => Some(ty),
            _ => None,
        };
        let kind = match (fl.custom, &fl.kind) {
            (true, _) | (_, FieldKind::Polymorphic { .. }) => Cell::Json,
            (_, FieldKind::Scalar(ty)) => Cell::of(ty),
            _ => Cell::Text,
        };
        Ok(Entry::Sql(self.d.cell_text(ty, json), kind))
    }

    /// The history or stage transitions of the row aliased `alias`, as a JSON array built in the
    /// database (one correlated subquery, limited per row). Fields the caller may not read are
    /// left out.
    fn extra(&mut self, model: &Model, alias: &str, x: &Extra) -> Result<Expr> {
        const DT: Option<&ScalarType> = Some(&ScalarType::DateTime);
        const JSON: Option<&ScalarType> = Some(&ScalarType::Json);
        match x {
            Extra::Timeline { first, .. } => self.timeline(model, alias, *first),
            Extra::History { field, first, .. } => {
                if *first > self.limits.max_page {
                    return Err(OrmError::Limit(format!("history: page size above the maximum {}", self.limits.max_page)));
                }
                Self::kept(model, field.as_ref(), |f| f.tracked, "history")?;
                let shape = [
                    ("field", "field", None),
                    ("oldValue", "old_value", JSON),
                    ("newValue", "new_value", JSON),
                    ("changedAt", "changed_at", DT),
                    ("changedBy", "changed_by", None),
                ];
                self.row_log(model, alias, "crm_history", field.as_ref(), *first, true, &shape)
            }
            Extra::Stages { field, .. } => {
                Self::kept(model, field.as_ref(), |f| f.stage, "stages")?;
                let shape = [
                    ("field", "field", None),
                    ("stage", "stage", None),
                    ("enteredAt", "entered_at", DT),
                    ("exitedAt", "exited_at", DT),
                    ("enteredBy", "entered_by", None),
                ];
                self.row_log(model, alias, "crm_stage_transitions", field.as_ref(), self.limits.max_page, false, &shape)
            }
        }
    }

    /// A predicate keeping log entries of fields the caller may read (none when nothing is
    /// denied).
    fn readable_fields(&self, model: &Model, field_col: Expr) -> Option<Expr> {
        let denied: Vec<Expr> = self.access.denied_reads(&model.name).into_iter().map(|f| Expr::val(f.as_str())).collect();
        (!denied.is_empty()).then(|| field_col.is_not_in(denied))
    }

    /// `field`, when given, must be one the model keeps `what` of.
    fn kept(model: &Model, field: Option<&FieldName>, keeps: impl Fn(&Field) -> bool, what: &str) -> Result<()> {
        match field {
            Some(f) if !keeps(Self::field(model, f.as_str())?) => {
                Err(OrmError::bad("field", format!("`{f}` of {} keeps no {what}", model.name)))
            }
            _ => Ok(()),
        }
    }

    /// The entries of a per-record log table (`crm_history`, `crm_stage_transitions`) about the
    /// row aliased `alias`, as a JSON array of objects shaped by `shape` (key, column, type),
    /// ordered by `seq` and limited per row; fields the caller may not read are left out.
    #[allow(clippy::too_many_arguments)]
    fn row_log(
        &mut self,
        model: &Model,
        alias: &str,
        table: &str,
        field: Option<&FieldName>,
        limit: u32,
        newest_first: bool,
        shape: &[(&str, &str, Option<&ScalarType>)],
    ) -> Result<Expr> {
        let h = self.alias();
        let col = |c: &str| Self::col(&h, c);
        let mut pairs = Vec::with_capacity(shape.len());
        for (key, column, ty) in shape {
            pairs.push((self.d.key(key)?, self.d.json_value(*ty, col(column), None)));
        }
        let obj = self.d.object(pairs);
        let mut parts = vec![
            col("org_id").eq(Self::col(alias, "org_id")),
            col("model").eq(Expr::val(model.name.as_str())),
            col("record_id").eq(Self::col(alias, "id")),
        ];
        if let Some(f) = field {
            parts.push(col("field").eq(Expr::val(f.as_str())));
        }
        parts.extend(self.readable_fields(model, col("field")));
        let x_alias = self.alias();
        let mut inner = Query::select();
        inner
            .expr_as(obj, Alias::new("j"))
            .expr_as(col("seq"), Alias::new("o"))
            .from_as(Alias::new(table), Alias::new(&h))
            .cond_where(all(parts))
            .order_by_expr(col("seq"), if newest_first { Order::Desc } else { Order::Asc })
            .limit(u64::from(limit));
        let agg = self.d.agg_ordered(Self::col(&x_alias, "j"), vec![(Self::col(&x_alias, "o"), newest_first)]);
        let outer = Query::select().expr(agg).from_subquery(inner.take(), Alias::new(&x_alias)).take();
        Ok(self.d.nested(Expr::SubQuery(None, Box::new(outer.into()))))
    }

    /// The timeline of the row aliased `alias`: its history (minus denied fields) and the
    /// readable records of every model whose polymorphic reference can point at `model`, merged
    /// newest first, limited in SQL.
    fn timeline(&mut self, model: &Model, alias: &str, first: u32) -> Result<Expr> {
        if first > self.limits.max_page {
            return Err(OrmError::Limit(format!("timeline: page size above the maximum {}", self.limits.max_page)));
        }
        let dt = Some(&ScalarType::DateTime);
        let h = self.alias();
        let col = |a: &str, c: &str| Self::col(a, c);
        let change = self.d.object(vec![
            (self.d.key("kind")?, Expr::val("change")),
            (self.d.key("at")?, self.d.json_value(dt, col(&h, "changed_at"), None)),
            (self.d.key("actor")?, col(&h, "changed_by")),
            (self.d.key("field")?, col(&h, "field")),
            (self.d.key("oldValue")?, self.d.json_value(Some(&ScalarType::Json), col(&h, "old_value"), None)),
            (self.d.key("newValue")?, self.d.json_value(Some(&ScalarType::Json), col(&h, "new_value"), None)),
        ]);
        let mut hparts = vec![
            col(&h, "org_id").eq(col(alias, "org_id")),
            col(&h, "model").eq(Expr::val(model.name.as_str())),
            col(&h, "record_id").eq(col(alias, "id")),
        ];
        hparts.extend(self.readable_fields(model, col(&h, "field")));
        let mut union = Query::select()
            .expr_as(change, Alias::new("j"))
            .expr_as(col(&h, "changed_at"), Alias::new("o"))
            .from_as(Alias::new("crm_history"), Alias::new(&h))
            .cond_where(all(hparts))
            .take();
        let cat = self.cat;
        for other in cat.models() {
            for f in other.fields.values() {
                let FieldKind::Polymorphic { targets, type_column } = &f.kind else { continue };
                if !targets.contains(&model.name) || !self.access.allows(&other.name, Op::Read) {
                    continue;
                }
                let a = self.alias();
                // The referencing record, without the fields the caller may not read.
                let denied: Vec<FieldName> = self.access.denied_reads(&other.name).into_iter().cloned().collect();
                let mut shown = Selection::scalars(other);
                shown.fields.retain(|f| !denied.contains(f));
                let record = self.object(other, &a, &shown)?;
                let at = other.fields.values().find(|x| x.name.as_str() == "occurredAt" && x.is_stored()).map_or_else(
                    || col(&a, "created_at"),
                    |x| self.d.cust("COALESCE({}, {})", vec![self.value(&a, other, x), col(&a, "created_at")]),
                );
                let entry = self.d.object(vec![
                    (self.d.key("kind")?, Expr::val(other.name.as_str())),
                    (self.d.key("at")?, self.d.json_value(dt, at.clone(), None)),
                    (self.d.key("actor")?, col(&a, "created_by")),
                    (self.d.key("id")?, self.d.json_value(Some(&ScalarType::Id), col(&a, "id"), None)),
                    (self.d.key("record")?, record),
                ]);
                let mut parts = self.related(other, &a, alias, true)?;
                parts.push(col(&a, type_column.as_str()).eq(Expr::val(model.name.as_str())));
                parts.push(col(&a, f.column.as_str()).eq(col(alias, "id")));
                let sel = Query::select()
                    .expr_as(entry, Alias::new("j"))
                    .expr_as(at, Alias::new("o"))
                    .from_as(ident(&other.table), Alias::new(&a))
                    .cond_where(all(parts))
                    .take();
                union.union(sea_query::UnionType::All, sel);
            }
        }
        let (v, u) = (self.alias(), self.alias());
        let page = Query::select()
            .column((Alias::new(&v), Alias::new("j")))
            .column((Alias::new(&v), Alias::new("o")))
            .from_subquery(union, Alias::new(&v))
            .order_by_expr(col(&v, "o"), Order::Desc)
            .limit(u64::from(first))
            .take();
        let agg = self.d.agg_ordered(col(&u, "j"), vec![(col(&u, "o"), true)]);
        let outer = Query::select().expr(agg).from_subquery(page, Alias::new(&u)).take();
        Ok(self.d.nested(Expr::SubQuery(None, Box::new(outer.into()))))
    }

    fn order_exprs(&self, model: &Model, alias: &str, order: &[OrderBy], backward: bool) -> Result<Vec<OrderKey>> {
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

    fn apply_order(stmt: &mut SelectStatement, keys: Vec<OrderKey>) {
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

    /// The page of a to-many relation's rows (of `target`, aliased `a1`, linked by `via` to the
    /// row aliased `alias`), each row as `j`, aggregated by `agg` in the page's natural order:
    /// a subquery of one value.
    #[allow(clippy::too_many_arguments)]
    fn related_page(
        &mut self,
        alias: &str,
        n: &Nested,
        target: &Model,
        via: &Field,
        plan: &PagePlan,
        a1: &str,
        j: Expr,
        agg: impl FnOnce(Dialect, Expr, Vec<(Expr, bool)>) -> Expr,
    ) -> Result<SelectStatement> {
        let link = self.value(a1, target, via).eq(Self::col(alias, "id"));
        let mut parts = self.related(target, a1, alias, true)?;
        parts.push(link);
        parts.push(self.filter(target, a1, &n.filter, true)?);
        let keys = self.order_exprs(target, a1, &n.order, plan.backward)?;
        if let Some(p) = self.cursor_predicate(target, &n.order, plan, &n.page, &keys)? {
            parts.push(p);
        }
        let x = self.alias();
        let mut inner = Query::select();
        inner.expr_as(j, Alias::new("j"));
        let mut natural = Vec::with_capacity(keys.len());
        for (i, (e, desc, _)) in keys.iter().enumerate() {
            let name = format!("o{i}");
            inner.expr_as(e.clone(), Alias::new(&name));
            natural.push((Self::col(&x, &name), *desc != plan.backward));
        }
        inner.from_as(ident(&target.table), Alias::new(a1)).cond_where(all(parts));
        Self::apply_order(&mut inner, keys);
        inner.limit(u64::from(plan.limit) + u64::from(n.connection));
        if n.page.skip > 0 {
            inner.offset(u64::from(n.page.skip));
        }
        // The page is fetched in the direction of travel and aggregated in natural order.
        let agg = agg(self.d, Self::col(&x, "j"), natural);
        Ok(Query::select().expr(agg).from_subquery(inner.take(), Alias::new(&x)).take())
    }

    /// A relation as a row value (see [`Self::row`]): on PostgreSQL a plain related record or
    /// list of records comes as a text array of values, which the reader writes as JSON;
    /// otherwise (SQLite, connections, a selection of no column) as the relation's JSON.
    fn nested_entry(&mut self, model: &Model, alias: &str, n: &Nested) -> Result<Entry> {
        if self.d == Dialect::Postgres && !n.connection {
            let fl = Self::field(model, n.field.as_str())?;
            match &fl.kind {
                FieldKind::ToOne { target, .. } => {
                    let target = self.model(target.as_str())?;
                    let a1 = self.alias();
                    let (columns, shape) = self.row(target, &a1, &n.select)?;
                    if !columns.is_empty() {
                        let values = self.d.text_array(columns);
                        let sub = self.related_one(model, alias, fl, target, &a1, values)?;
                        let e = self.d.cell_text(None, Expr::SubQuery(None, Box::new(sub.into())));
                        return Ok(Entry::Sql(e, Cell::Row(Box::new(shape))));
                    }
                }
                FieldKind::ToMany { target, via } => {
                    let target = self.model(target.as_str())?;
                    let via = Self::field(target, via.as_str())?;
                    let plan = self.related_plan(target, n)?;
                    let a1 = self.alias();
                    let (columns, shape) = self.row(target, &a1, &n.select)?;
                    if !columns.is_empty() {
                        let j = self.d.text_array(columns);
                        let sub = self.related_page(alias, n, target, via, &plan, &a1, j, |d, j, order| d.array_agg_ordered(j, order))?;
                        let e = self.d.cell_text(None, Expr::SubQuery(None, Box::new(sub.into())));
                        return Ok(Entry::Sql(e, Cell::Rows(Box::new(shape))));
                    }
                }
                _ => {}
            }
        }
        let e = self.nested(model, alias, n)?;
        Ok(Entry::Sql(self.d.cell_text(None, e), Cell::Json))
    }

    /// The record of a to-one relation `fl` of the row aliased `alias` (of `target`, aliased
    /// `a1`), selecting `value`: a subquery of one value.
    fn related_one(&mut self, model: &Model, alias: &str, fl: &Field, target: &Model, a1: &str, value: Expr) -> Result<SelectStatement> {
        let mut parts = self.related(target, a1, alias, true)?;
        parts.push(Self::col(a1, "id").eq(self.value(alias, model, fl)));
        Ok(Query::select().expr(value).from_as(ident(&target.table), Alias::new(a1)).cond_where(all(parts)).limit(1).take())
    }

    /// The page plan of a to-many relation's rows.
    fn related_plan(&self, target: &Model, n: &Nested) -> Result<PagePlan> {
        self.page_plan(target, &n.order, &n.page).map_err(|e| match e {
            OrmError::Limit(_) => OrmError::Limit(format!("`{}`: page size above the maximum {}", n.key, self.limits.max_page)),
            other => other,
        })
    }

    fn nested(&mut self, model: &Model, alias: &str, n: &Nested) -> Result<Expr> {
        let fl = Self::field(model, n.field.as_str())?;
        match &fl.kind {
            FieldKind::ToOne { target, .. } => {
                let target = self.model(target.as_str())?;
                let a1 = self.alias();
                let obj = self.object(target, &a1, &n.select)?;
                let sub = self.related_one(model, alias, fl, target, &a1, obj)?;
                Ok(self.d.nested(Expr::SubQuery(None, Box::new(sub.into()))))
            }
            FieldKind::ToMany { target, via } => {
                let target = self.model(target.as_str())?;
                let via = Self::field(target, via.as_str())?;
                let plan = self.related_plan(target, n)?;
                let a1 = self.alias();
                let row = self.object(target, &a1, &n.select)?;
                let j = if n.connection {
                    let k = self.key_json(target, &a1, &n.order)?;
                    self.d.object(vec![(self.d.key("n")?, row), (self.d.key("k")?, k)])
                } else {
                    row
                };
                let outer = self.related_page(alias, n, target, via, &plan, &a1, j, |d, j, order| d.agg_ordered(j, order))?;
                let rows = self.d.nested(Expr::SubQuery(None, Box::new(outer.into())));
                if !n.connection {
                    return Ok(rows);
                }
                let aggregate = if n.aggregate.is_empty() {
                    Expr::cust("NULL")
                } else {
                    let a2 = self.alias();
                    let obj = self.aggregate_object(target, &a2, &n.aggregate)?;
                    let mut parts = self.related(target, &a2, alias, true)?;
                    parts.push(self.value(&a2, target, via).eq(Self::col(alias, "id")));
                    parts.push(self.filter(target, &a2, &n.filter, true)?);
                    let sub = Query::select().expr(obj).from_as(ident(&target.table), Alias::new(&a2)).cond_where(all(parts)).take();
                    self.d.nested(Expr::SubQuery(None, Box::new(sub.into())))
                };
                Ok(self.d.object(vec![(self.d.key("e")?, rows), (self.d.key("a")?, aggregate)]))
            }
            _ => Err(OrmError::bad(n.field.as_str(), "only relations can be selected as nested")),
        }
    }

    /// Keyset predicate: rows strictly after `values` in the given key order. When the first key
    /// cannot be null, its bound is also stated on its own (`k0 <= v0 AND (k0 < v0 OR …)`), so
    /// the condition is one range of an index on the keys.
    fn after(&self, keys: &[OrderKey], values: &[Value]) -> Expr {
        let chain = self.after_chain(keys, values);
        match (keys.first(), values.first()) {
            (Some((e, desc, false)), Some(v)) if keys.len() > 1 && !v.is_null() => {
                let bound = if *desc { e.clone().lte(self.d.bind(v)) } else { e.clone().gte(self.d.bind(v)) };
                bound.and(chain)
            }
            _ => chain,
        }
    }

    fn after_chain(&self, keys: &[OrderKey], values: &[Value]) -> Expr {
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
                self.cursor_values(model, &read.order, &plan, c, arg)?;
            }
        }
        Ok(())
    }

    fn page_plan(&self, model: &Model, order: &[OrderBy], page: &Page) -> Result<PagePlan> {
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
    fn cursor_predicate(&self, model: &Model, order: &[OrderBy], plan: &PagePlan, page: &Page, keys: &[OrderKey]) -> Result<Option<Expr>> {
        let cursor =
            if plan.backward { page.before.as_deref().map(|c| (c, "before")) } else { page.after.as_deref().map(|c| (c, "after")) };
        let Some((c, arg)) = cursor else { return Ok(None) };
        let values = self.cursor_values(model, order, plan, c, arg)?;
        Ok(Some(self.after(keys, &values)))
    }

    fn cursor_values(&self, model: &Model, order: &[OrderBy], plan: &PagePlan, cursor: &str, arg: &str) -> Result<Vec<Value>> {
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
    fn key_values<'m>(&self, model: &'m Model, alias: &str, order: &[OrderBy]) -> Result<Vec<(Expr, Option<&'m ScalarType>)>> {
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
    fn key_json(&self, model: &Model, alias: &str, order: &[OrderBy]) -> Result<Expr> {
        Ok(self.d.array(self.key_values(model, alias, order)?.into_iter().map(|(e, _)| e).collect()))
    }

    /// The cursor keys as text columns and how they read as the JSON array a cursor carries: a
    /// key the row's `row_columns` already hold is read from there, any other gets a column of
    /// its own (returned).
    fn key_cells(&self, model: &Model, alias: &str, order: &[OrderBy], row_columns: &[Expr]) -> Result<(Vec<Expr>, KeyShape)> {
        let mut columns = Vec::new();
        let mut shape = KeyShape::default();
        for (json, ty) in self.key_values(model, alias, order)? {
            let (e, cell) = (self.d.cell_text(ty, json), ty.map_or(Cell::Text, Cell::of));
            match row_columns.iter().position(|c| c == &e) {
                Some(i) => shape.row_column(i, cell),
                None => {
                    shape.column(cell);
                    columns.push(e);
                }
            }
        }
        Ok((columns, shape))
    }

    /// The statement of one page of `read`: column `a` (the aggregate object of every matching
    /// row, null when none is wanted), then the cursor keys as text columns (when a cursor is
    /// wanted; keys the row selects are read from its columns), then the row's values as text
    /// columns; the plan's [`PagePlan::keys`] and
    /// [`PagePlan::row`] write them as JSON. One row more than the page size.
    ///
    /// # Errors
    /// Bad pagination arguments, a foreign or malformed cursor, unknown fields.
    pub fn select_page(&mut self, read: &Read) -> Result<(SelectStatement, PagePlan)> {
        let model = self.model(read.model.as_str())?;
        let mut plan = self.page_plan(model, &read.order, &read.page)?;
        let a0 = self.alias();
        let (columns, row) = self.row(model, &a0, &read.select)?;
        plan.row = row;
        // Cursor keys only when a cursor was asked for.
        let key_columns = if read.cursors {
            let (columns, keys) = self.key_cells(model, &a0, &read.order, &columns)?;
            plan.keys = keys;
            columns
        } else {
            Vec::new()
        };
        let mut parts = vec![self.scope(model, &a0, Op::Read)?, self.filter(model, &a0, &read.filter, true)?];
        let keys = self.order_exprs(model, &a0, &read.order, plan.backward)?;
        if let Some(p) = self.cursor_predicate(model, &read.order, &plan, &read.page, &keys)? {
            parts.push(p);
        }
        let mut stmt = Query::select();
        // The aggregate, when asked for, comes in the same statement: an uncorrelated scalar
        // subquery, computed once.
        if read.count || !read.aggregates.is_empty() {
            let agg = self.aggregate(read)?;
            stmt.expr_as(Expr::SubQuery(None, Box::new(agg.into())), Alias::new("a"));
        } else {
            stmt.expr_as(Expr::cust("NULL"), Alias::new("a"));
        }
        for (i, c) in key_columns.into_iter().enumerate() {
            stmt.expr_as(c, Alias::new(format!("k{i}")));
        }
        for (i, c) in columns.into_iter().enumerate() {
            stmt.expr_as(c, Alias::new(format!("c{i}")));
        }
        stmt.from_as(ident(&model.table), Alias::new(&a0)).cond_where(all(parts));
        Self::apply_order(&mut stmt, keys);
        stmt.limit(u64::from(plan.limit) + 1);
        if read.page.skip > 0 {
            stmt.offset(u64::from(read.page.skip));
        }
        Ok((stmt, plan))
    }

    /// `SELECT COUNT(*)` of the rows `read` matches (ignoring pagination).
    ///
    /// # Errors
    /// Unknown fields in the filter.
    pub fn count(&mut self, read: &Read) -> Result<SelectStatement> {
        let model = self.model(read.model.as_str())?;
        let a0 = self.alias();
        let parts = vec![self.scope(model, &a0, Op::Read)?, self.filter(model, &a0, &read.filter, true)?];
        Ok(Query::select().expr(Expr::cust("COUNT(*)")).from_as(ident(&model.table), Alias::new(&a0)).cond_where(all(parts)).take())
    }

    /// The aggregate object over rows of `model` aliased `alias` (to be selected with a `WHERE`).
    fn aggregate_object(&mut self, model: &Model, alias: &str, agg: &Aggregate) -> Result<Expr> {
        let pairs = self.aggregate_pairs(model, alias, agg)?;
        Ok(self.d.object(pairs))
    }

    fn aggregate_pairs(&mut self, model: &Model, alias: &str, agg: &Aggregate) -> Result<Vec<(Expr, Expr)>> {
        let mut pairs = Vec::with_capacity(5);
        if agg.count {
            pairs.push((self.d.key("count")?, Expr::cust("COUNT(*)")));
        }
        for func in AggFn::ALL {
            let mut inner = Vec::new();
            for (_, name) in agg.numeric.iter().filter(|(f, _)| *f == func) {
                let fl = Self::field(model, name.as_str())?;
                if !aggregatable(fl) {
                    return Err(OrmError::bad(name.as_str(), format!("`{name}` has no numeric aggregates")));
                }
                inner.push((self.d.key(name.as_str())?, self.d.float_agg(func.sql(), self.value(alias, model, fl))));
            }
            if !inner.is_empty() {
                pairs.push((self.d.key(func.name())?, self.d.object(inner)));
            }
        }
        Ok(pairs)
    }

    /// One row, column `j`: the aggregate object (`{"count": …, "sum": {…}}`) of the rows `read`
    /// matches, ignoring pagination.
    ///
    /// # Errors
    /// Unknown or non-numeric fields.
    pub fn aggregate(&mut self, read: &Read) -> Result<SelectStatement> {
        let model = self.model(read.model.as_str())?;
        let a0 = self.alias();
        let agg = Aggregate { count: read.count, numeric: read.aggregates.clone() };
        let obj = self.aggregate_object(model, &a0, &agg)?;
        let parts = vec![self.scope(model, &a0, Op::Read)?, self.filter(model, &a0, &read.filter, true)?];
        Ok(Query::select()
            .expr_as(self.d.json_text(obj), Alias::new("j"))
            .from_as(ident(&model.table), Alias::new(&a0))
            .cond_where(all(parts))
            .take())
    }

    /// Groups of the rows `q` matches, column `j`: `{"key": {field: value, …}, "count": n, …}`,
    /// ordered by the keys (nulls last).
    ///
    /// # Errors
    /// No keys, keys that cannot be grouped, page size above the maximum.
    pub fn group_by(&mut self, q: &GroupBy) -> Result<SelectStatement> {
        let model = self.model(q.model.as_str())?;
        if q.by.is_empty() {
            return Err(OrmError::bad("by", "give at least one field to group by"));
        }
        let limit = q.first.unwrap_or(self.limits.default_page);
        if limit > self.limits.max_page {
            return Err(OrmError::Limit(format!("page size {limit} is above the maximum {}", self.limits.max_page)));
        }
        let a0 = self.alias();
        let mut key_pairs = Vec::with_capacity(q.by.len());
        let mut cols = Vec::with_capacity(q.by.len());
        for name in &q.by {
            let fl = Self::field(model, name.as_str())?;
            if !groupable(fl) || matches!(fl.kind, FieldKind::Scalar(ScalarType::Money { .. })) {
                return Err(OrmError::bad("by", format!("`{name}` cannot be grouped by")));
            }
            // The key is output from the grouped expression itself (a custom value's typed form).
            let key = if fl.custom {
                let ty = fl.scalar().cloned().unwrap_or(ScalarType::Id);
                self.d.json_value(Some(&ty), self.value(&a0, model, fl), None)
            } else {
                self.field_json(&a0, fl)?
            };
            key_pairs.push((self.d.key(name.as_str())?, key));
            cols.push(self.value(&a0, model, fl));
        }
        let mut pairs = vec![(self.d.key("key")?, self.d.object(key_pairs))];
        let agg = Aggregate { count: true, numeric: q.aggregate.numeric.clone() };
        pairs.extend(self.aggregate_pairs(model, &a0, &agg)?);
        let parts = vec![self.scope(model, &a0, Op::Read)?, self.filter(model, &a0, &q.filter, true)?];
        let mut stmt = Query::select();
        stmt.expr_as(self.d.json_text(self.d.object(pairs)), Alias::new("j"))
            .from_as(ident(&model.table), Alias::new(&a0))
            .cond_where(all(parts));
        for c in &cols {
            stmt.add_group_by([c.clone()]);
        }
        for c in cols {
            stmt.order_by_expr_with_nulls(c, Order::Asc, NullOrdering::Last);
        }
        stmt.limit(u64::from(limit));
        if q.skip > 0 {
            stmt.offset(u64::from(q.skip));
        }
        Ok(stmt)
    }

    /// One row (column `m`, the model name) per readable model holding the record `q.id` in the
    /// caller's tenant; models without a read grant are not consulted.
    ///
    /// # Errors
    /// None in practice; `NotFound`-free: an empty union selects nothing.
    pub fn locate(&mut self, q: &Locate) -> Result<Option<SelectStatement>> {
        let mut out: Option<SelectStatement> = None;
        let id = Value::Uuid(q.id);
        for model in self.cat.models() {
            if !self.access.allows(&model.name, Op::Read) {
                continue;
            }
            let a = self.alias();
            let parts = vec![self.scope(model, &a, Op::Read)?, Self::col(&a, "id").eq(self.d.bind(&id))];
            let sel = Query::select()
                .expr_as(self.d.cust("CAST({} AS TEXT)", vec![Expr::val(model.name.as_str())]), Alias::new("m"))
                .from_as(ident(&model.table), Alias::new(&a))
                .cond_where(all(parts))
                .take();
            out = Some(match out {
                None => sel,
                Some(mut u) => {
                    u.union(sea_query::UnionType::All, sel);
                    u
                }
            });
        }
        Ok(out)
    }

    /// Ids (and versions) of the rows of `model` matching `filter` under `op`'s scope, in `order`,
    /// paginated: the target set of an update, delete or batch.
    ///
    /// # Errors
    /// Unknown fields, bad pagination.
    pub fn target_ids(
        &mut self,
        model: &Model,
        filter: &Filter,
        op: Op,
        order: &[OrderBy],
        page: Option<&Page>,
    ) -> Result<SelectStatement> {
        let a0 = self.alias();
        let mut parts = vec![self.scope(model, &a0, op)?, self.filter(model, &a0, filter, true)?];
        let mut stmt = Query::select();
        stmt.expr_as(self.d.cust("CAST({} AS TEXT)", vec![Self::col(&a0, "id")]), Alias::new("id"))
            .expr_as(Self::col(&a0, "version"), Alias::new("version"))
            .from_as(ident(&model.table), Alias::new(&a0));
        if let Some(page) = page {
            let plan = self.page_plan(model, order, page)?;
            let keys = self.order_exprs(model, &a0, order, plan.backward)?;
            if let Some(p) = self.cursor_predicate(model, order, &plan, page, &keys)? {
                parts.push(p);
            }
            Self::apply_order(&mut stmt, keys);
            // One probe row tells the caller whether more rows match beyond the page.
            stmt.limit(u64::from(plan.limit) + 1);
            if page.skip > 0 {
                stmt.offset(u64::from(page.skip));
            }
        }
        stmt.cond_where(all(parts));
        // Rows about to be written are locked when found, so nothing changes them between the
        // check and the write (SQLite's write transactions are serial already).
        if op != Op::Read && self.d == Dialect::Postgres {
            stmt.lock(sea_query::LockType::Update);
        }
        Ok(stmt)
    }

    /// The ids of the rows of `model` visible under `op`'s scope that match `filter`, as a
    /// subquery: `SELECT t0.id FROM … WHERE <tenant, trash and row rule> AND <filter>`.
    ///
    /// # Errors
    /// Bad filters.
    pub fn visible_ids(&mut self, model: &Model, filter: &Filter, op: Op) -> Result<SelectStatement> {
        let a0 = self.alias();
        let parts = vec![self.scope(model, &a0, op)?, self.filter(model, &a0, filter, true)?];
        let mut stmt = Query::select();
        stmt.expr(Self::col(&a0, "id")).from_as(ident(&model.table), Alias::new(&a0)).cond_where(all(parts));
        Ok(stmt)
    }

    /// Whether a tenant row `id` of `model` is visible under `op`'s scope (`SELECT 1`).
    ///
    /// # Errors
    /// Unknown model.
    pub fn exists(&mut self, model: &Model, id: &Value, op: Op) -> Result<SelectStatement> {
        let a0 = self.alias();
        let parts = vec![self.scope(model, &a0, op)?, Self::col(&a0, "id").eq(self.d.bind(id))];
        Ok(Query::select().expr(Expr::cust("1")).from_as(ident(&model.table), Alias::new(&a0)).cond_where(all(parts)).take())
    }
}

/// `stmt` as a read of `access` on a pooled connection: built, with the tenant settings for
/// row-level security made by the statement itself (one round trip, see [`Dialect::in_session`]).
pub fn in_session<S: sea_query_sqlx::SqlxBinder>(d: Dialect, stmt: &S, access: &Access) -> super::Built {
    d.in_session(d.build(stmt), access.org(), access.read_orgs())
}
