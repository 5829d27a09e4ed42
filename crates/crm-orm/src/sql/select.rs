//! Selections: what a read returns of each row (fields, custom values, relations, nested
//! connections, history, stages, the timeline), built as JSON by the statement itself.

use crm_model::{CUSTOM_COLUMN, Field, FieldKind, FieldName, Model, ScalarType};
use sea_query::{Alias, Expr, ExprTrait, Order, Query, SelectStatement};
use serde_json::Value as Json;

use super::builder::{Builder, all, ident};
use super::page::PagePlan;
use crate::error::{OrmError, Result};
use crate::ir::{Extra, Nested, Op, Output, Selection};
use crate::row::{Cell, RowShape};
use crate::sql::dialect::Dialect;

/// A value of a row object being built: SQL (JSON, or a text column with how it reads as
/// JSON), or the model's name.
pub(super) enum Entry {
    Sql(Expr, Cell),
    Typename,
}

impl Builder<'_> {
    /// The JSON of one stored field.
    pub(super) fn field_json(&self, alias: &str, fl: &Field) -> Result<Expr> {
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
    ///
    /// # Errors
    /// Unknown fields or relations in the selection, limits of nested pages.
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
    pub(super) fn row(&mut self, model: &Model, alias: &str, sel: &Selection) -> Result<(Vec<Expr>, RowShape)> {
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
    pub(super) fn entries(&mut self, model: &Model, alias: &str, sel: &Selection, cells: bool) -> Result<Vec<(String, Entry)>> {
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
    pub(super) fn relation_entry(&mut self, model: &Model, alias: &str, n: &Nested, cells: bool) -> Result<Entry> {
        if cells { self.nested_entry(model, alias, n) } else { Ok(Entry::Sql(self.nested(model, alias, n)?, Cell::Json)) }
    }

    /// A stored field's entry: its JSON expression, or with `cell` its text column.
    pub(super) fn field_entry(&self, alias: &str, fl: &Field, cell: bool) -> Result<Entry> {
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
    pub(super) fn extra(&mut self, model: &Model, alias: &str, x: &Extra) -> Result<Expr> {
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
    pub(super) fn readable_fields(&self, model: &Model, field_col: Expr) -> Option<Expr> {
        let denied: Vec<Expr> = self.access.denied_reads(&model.name).into_iter().map(|f| Expr::val(f.as_str())).collect();
        (!denied.is_empty()).then(|| field_col.is_not_in(denied))
    }

    /// `field`, when given, must be one the model keeps `what` of.
    pub(super) fn kept(model: &Model, field: Option<&FieldName>, keeps: impl Fn(&Field) -> bool, what: &str) -> Result<()> {
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
    pub(super) fn row_log(
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
    pub(super) fn timeline(&mut self, model: &Model, alias: &str, first: u32) -> Result<Expr> {
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
                let FieldKind::Polymorphic { type_column, .. } = &f.kind else { continue };
                if !f.points_at(&model.name) || !self.access.allows(&other.name, Op::Read) {
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

    /// The page of a to-many relation's rows (of `target`, aliased `a1`, linked by `via` to the
    /// row aliased `alias`), each row as `j`, aggregated by `agg` in the page's natural order:
    /// a subquery of one value.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn related_page(
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
    pub(super) fn nested_entry(&mut self, model: &Model, alias: &str, n: &Nested) -> Result<Entry> {
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
                        let sub = self.related_page(alias, n, target, via, &plan, &a1, j, super::dialect::Dialect::array_agg_ordered)?;
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
    pub(super) fn related_one(
        &mut self,
        model: &Model,
        alias: &str,
        fl: &Field,
        target: &Model,
        a1: &str,
        value: Expr,
    ) -> Result<SelectStatement> {
        let mut parts = self.related(target, a1, alias, true)?;
        parts.push(Self::col(a1, "id").eq(self.value(alias, model, fl)));
        Ok(Query::select().expr(value).from_as(ident(&target.table), Alias::new(a1)).cond_where(all(parts)).limit(1).take())
    }

    /// The page plan of a to-many relation's rows.
    pub(super) fn related_plan(&self, target: &Model, n: &Nested) -> Result<PagePlan> {
        self.page_plan(target, &n.order, &n.page).map_err(|e| match e {
            OrmError::Limit(_) => OrmError::Limit(format!("`{}`: page size above the maximum {}", n.key, self.limits.max_page)),
            other => other,
        })
    }

    pub(super) fn nested(&mut self, model: &Model, alias: &str, n: &Nested) -> Result<Expr> {
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
                let outer = self.related_page(alias, n, target, via, &plan, &a1, j, super::dialect::Dialect::agg_ordered)?;
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
}
