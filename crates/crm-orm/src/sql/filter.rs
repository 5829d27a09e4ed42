//! Filters: the where of a read (logic, comparisons, relation quantifiers, search) compiled
//! into a predicate under the caller's scope.

use crm_model::{FieldKind, Model, ScalarType, Value};
use sea_query::{Alias, Expr, ExprTrait, Query};

use super::builder::{Builder, all, always, any, ident, never};
use crate::error::{OrmError, Result};
use crate::ir::{Filter, FilterOp, Operand, Quantifier};

pub(super) fn like_pattern(s: &str, op: FilterOp) -> String {
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

impl Builder<'_> {
    /// Compiles a filter over `model` rows aliased `alias`. With `scoped`, relation steps add the
    /// target's read predicate, so filters cannot probe rows the caller may not read.
    ///
    /// # Errors
    /// Unknown fields, operators that do not fit a field, values of the wrong type (naming the
    /// input), a field the caller may not read.
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

    pub(super) fn cmp(&mut self, model: &Model, alias: &str, name: &str, op: FilterOp, value: &Operand) -> Result<Expr> {
        let fl = Self::field(model, name)?;
        let c = self.value(alias, model, fl);
        let d = self.d;
        if let (FieldKind::Polymorphic { type_column, .. }, Operand::One(Value::Ref { model: target, id })) = (&fl.kind, value) {
            let same = Self::col(alias, type_column.as_str()).eq(Expr::val(target.as_str())).and(c.eq(d.bind(&Value::Uuid(*id))));
            return match op {
                FilterOp::Eq => Ok(same),
                FilterOp::Not => Ok(d.is_not_true(same)),
                _ => Err(OrmError::invariant("a polymorphic reference compared with an operator other than equality")),
            };
        }
        Ok(match (op, value) {
            (FilterOp::Eq, Operand::One(Value::Null)) => c.is_null(),
            (FilterOp::Not, Operand::One(Value::Null)) => c.is_not_null(),
            (FilterOp::Eq, Operand::One(v)) => c.eq(d.bind(v)),
            (FilterOp::Not, Operand::One(v)) => d.is_not_true(c.eq(d.bind(v))),
            (FilterOp::In | FilterOp::NotIn, Operand::Many(vs)) => {
                let has_null = vs.iter().any(Value::is_null);
                let listed: Vec<&Value> = vs.iter().filter(|v| !v.is_null()).collect();
                let mut parts = Vec::with_capacity(2);
                if !listed.is_empty() {
                    parts.push(d.is_in(c.clone(), &listed));
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
}
