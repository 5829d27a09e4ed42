//! The builder every read statement starts from: the dialect, the catalog, the caller's access
//! (the one scope every tenant and row predicate comes from), the page-size limits, and the
//! helpers the read, filter, selection and page builders share.

use std::sync::Arc;

use crm_model::{CUSTOM_COLUMN, Catalog, Field, FieldKind, Model, ScalarType, SqlName};
use sea_query::{Alias, Expr, ExprTrait};

use crate::authorization::Access;
use crate::error::{OrmError, Result};
use crate::ir::{Filter, Op};
use crate::sql::dialect::{Dialect, KeyForm};

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

/// One statement's builder: numbers table aliases (`t0`, `t1`, …) so output is deterministic.
pub struct Builder<'a> {
    pub(super) d: Dialect,
    pub(super) cat: &'a Catalog,
    pub(super) access: &'a Access,
    pub(super) tenant: bool,
    pub(super) limits: Limits,
    pub(super) n: usize,
    pub(super) trash: bool,
}

pub(super) fn ident(name: &SqlName) -> Alias {
    Alias::new(name.as_str())
}

/// `TRUE`.
pub(super) fn always() -> Expr {
    Expr::cust("TRUE")
}
/// `FALSE`.
pub(super) fn never() -> Expr {
    Expr::cust("FALSE")
}

pub(super) fn all(items: Vec<Expr>) -> Expr {
    let mut it = items.into_iter();
    match it.next() {
        None => always(),
        Some(first) => it.fold(first, ExprTrait::and),
    }
}

pub(super) fn any(items: Vec<Expr>) -> Expr {
    let mut it = items.into_iter();
    match it.next() {
        None => never(),
        Some(first) => it.fold(first, ExprTrait::or),
    }
}

/// System columns that are NOT NULL by construction.
pub(super) const NOT_NULL_SYSTEM: &[&str] = &["id", "createdAt", "updatedAt", "version"];

/// The value of a stored field of `model` rows aliased (or named) `alias`: its column, or for a
/// custom field the typed value read from the row's JSON document.
pub(crate) fn stored_value(d: Dialect, alias: &str, model: &Model, fl: &Field) -> Expr {
    stored_value_keyed(d, alias, model, fl, KeyForm::Bound)
}

/// [`stored_value`] with a custom field's key in `form`.
pub(crate) fn stored_value_keyed(d: Dialect, alias: &str, model: &Model, fl: &Field, form: KeyForm) -> Expr {
    const ID: &ScalarType = &ScalarType::Id;
    const JSON: &ScalarType = &ScalarType::Json;
    let col = |c: &str| Expr::col((Alias::new(alias), Alias::new(c)));
    if !fl.custom {
        return col(fl.column.as_str());
    }
    let ty = match &fl.kind {
        FieldKind::Scalar(t) => t,
        FieldKind::ToOne { .. } => ID,
        _ => JSON,
    };
    let guard = model.custom.then(|| (col("object"), model.name.as_str()));
    d.custom_value_keyed(col(CUSTOM_COLUMN), fl.name.as_str(), ty, guard, form)
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

    pub(super) fn model(&self, name: &str) -> Result<&'a Arc<Model>> {
        self.cat.model(name).ok_or_else(|| OrmError::bad("model", format!("unknown model `{name}`")))
    }

    pub(super) fn alias(&mut self) -> String {
        let a = format!("t{}", self.n);
        self.n += 1;
        a
    }

    pub(super) fn col(alias: &str, column: &str) -> Expr {
        Expr::col((Alias::new(alias), Alias::new(column)))
    }

    pub(super) fn field<'m>(model: &'m Model, name: &str) -> Result<&'m Field> {
        model.field(name).ok_or_else(|| OrmError::bad(name, format!("unknown field `{name}` on {}", model.name)))
    }

    /// The value of a stored field of `model` rows aliased `alias`, as filters, ordering, cursors
    /// and aggregates use it: its column, or for a custom field the typed value from the row's
    /// JSON document.
    pub(super) fn value(&self, alias: &str, model: &Model, fl: &Field) -> Expr {
        self.value_keyed(alias, model, fl, KeyForm::Bound)
    }

    /// [`Self::value`] with a custom field's key in `form`.
    pub(super) fn value_keyed(&self, alias: &str, model: &Model, fl: &Field, form: KeyForm) -> Expr {
        self.own_custom(alias, fl, stored_value_keyed(self.d, alias, model, fl, form))
    }

    /// Reads covering descendant tenants see custom values of the caller's own tenant only: the
    /// caller's definitions say nothing about what a child tenant keeps under the same name.
    pub(super) fn own_custom(&self, alias: &str, fl: &Field, e: Expr) -> Expr {
        if !fl.custom || self.access.read_orgs().is_empty() {
            return e;
        }
        self.d.cust("(CASE WHEN {} = {} THEN {} END)", vec![Self::col(alias, "org_id"), Expr::val(self.access.org().as_str()), e])
    }

    /// The predicate keeping rows of `model` in its table: for a custom object, its own records
    /// of the shared records table.
    pub(super) fn object_predicate(model: &Model, alias: &str) -> Option<Expr> {
        model.custom.then(|| Self::col(alias, "object").eq(Expr::val(model.name.as_str())))
    }

    /// The folded searchable text of `model` rows aliased `alias`, as SQL: the generated
    /// `crm_search` column, or, when custom fields are searchable, the same fold computed inline
    /// over the columns and the document (the column cannot follow per-tenant fields).
    pub(super) fn search_text(&self, model: &Model, alias: &str) -> String {
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
    pub(super) fn org(&self, alias: &str) -> Expr {
        Self::col(alias, "org_id").eq(Expr::val(self.access.org().as_str()))
    }

    /// Tenant + row predicate of `op` on `model`, for a root table.
    ///
    /// # Errors
    /// A row rule the model cannot express (an owner field it lacks).
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
    pub(super) fn related(&mut self, target: &Model, a1: &str, a0: &str, scoped: bool) -> Result<Vec<Expr>> {
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
}
