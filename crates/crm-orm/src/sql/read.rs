//! The builder of reads: IR + scope -> sea-query statements, for either dialect: the scope's
//! predicates, pages, counts and aggregates, groups, locating a record, write targets. Its where
//! ([`super::filter`]), row JSON ([`super::select`]) and paging ([`super::page`]) live beside it.
//! No database here; values are always bound (only identifiers from the Catalog and static
//! templates are text).

use crm_model::{FieldKind, Model, ScalarType, Value};
use sea_query::{Alias, Expr, ExprTrait, NullOrdering, Order, Query, SelectStatement};

use super::builder::{Builder, all, ident};
use super::page::PagePlan;
use crate::authorization::Access;
use crate::error::{OrmError, Result};
use crate::ir::{AggFn, Aggregate, Filter, GroupBy, Locate, Op, OrderBy, Page, Read, aggregatable, groupable};
use crate::sql::dialect::{Dialect, KeyForm};

/// `stmt` as a read of `access` on a pooled connection: built, with the tenant settings for
/// row-level security made by the statement itself (one round trip, see [`Dialect::in_session`]).
pub fn in_session<S: sea_query_sqlx::SqlxBinder>(d: Dialect, stmt: &S, access: &Access) -> super::Built {
    d.in_session(d.build(stmt), access.org(), access.read_orgs())
}

impl Builder<'_> {
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
    pub(super) fn aggregate_object(&mut self, model: &Model, alias: &str, agg: &Aggregate) -> Result<Expr> {
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
            // The key is output from the grouped expression itself (a custom value's typed form),
            // its key written: PostgreSQL only sees two expressions as one when their text is.
            let grouped = self.value_keyed(&a0, model, fl, KeyForm::Written);
            let key = if fl.custom {
                let ty = fl.scalar().cloned().unwrap_or(ScalarType::Id);
                self.d.json_value(Some(&ty), grouped.clone(), None)
            } else {
                self.field_json(&a0, fl)?
            };
            key_pairs.push((self.d.key(name.as_str())?, key));
            cols.push(grouped);
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
