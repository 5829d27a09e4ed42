//! Selections: a root field's whole selection (nested relations, connections, aggregates)
//! compiled into one IR read, from the resolver's view of the document or a plan's.

use crm_model::{Catalog, FieldKind, Model};
use crm_orm::aggregatable;
use crm_orm::{AggFn, Aggregate, Extra, Nested, OrmError, Page, Read, Selection};
use serde_json::{Map, Value as Json};

use crate::args::{opt_string, opt_u32, parse_order, parse_page, parse_where, unique_filter};
use crate::request::bad;

/// A selected field, as the resolvers see it ([`crate::exec::sel::Sel`]) or as a plan walks the
/// document (`plan::AstNode`): what the IR of a selection is compiled from.
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

pub(crate) fn merge(into: &mut Selection, other: Selection) {
    for f in other.fields {
        if !into.fields.contains(&f) {
            into.fields.push(f);
        }
    }
    for n in other.nested {
        add_nested(into, n);
    }
}

pub(crate) fn add_nested(sel: &mut Selection, n: Nested) {
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
        } else if let Some((base, _)) = model.api.connection_fields.iter().find(|(_, c)| c.as_str() == name)
            && let Some(f) = model.field(base.as_str())
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

pub(crate) fn target_of<'c>(cat: &'c Catalog, name: &str) -> Result<&'c Model, OrmError> {
    cat.model(name).map(AsRef::as_ref).ok_or_else(|| OrmError::invariant(format!("unknown model `{name}`")))
}

/// What a connection field selects.
pub(crate) struct ConnectionSelection {
    /// The node selection under `edges`.
    pub(crate) select: Selection,
    /// The aggregates.
    pub(crate) aggregate: Aggregate,
    /// Whether edges or page info are selected (else no page is read).
    pub(crate) rows: bool,
    /// Whether a cursor is selected (an edge's, `startCursor` or `endCursor`).
    pub(crate) cursors: bool,
}

pub(crate) fn connection_selection<N: SelNode>(cat: &Catalog, model: &Model, sf: &N) -> Result<ConnectionSelection, OrmError> {
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

pub(crate) fn aggregate_selection<N: SelNode>(model: &Model, sf: &N, agg: &mut Aggregate) {
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

pub(crate) fn list_read(cat: &Catalog, model: &Model, args: &Map<String, Json>) -> Result<Read, OrmError> {
    Ok(Read { filter: parse_where(cat, model, args)?, order: parse_order(model, args)?, page: parse_page(args)?, ..Read::new(model) })
}
