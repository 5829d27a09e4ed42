//! Which fields each query uses, for the field denials [`crate::Access::scope`] enforces.

use crm_model::{Catalog, FieldKind, Model};

use crate::authorization::{FieldCheck, FieldUse};
use crate::error::{OrmError, Result};
use crate::ir::{
    Data, Deliveries, Extra, FieldWrite, Filter, GroupBy, Locate, OrderBy, Read, RecordEvents, Selection, StageQuery, Targets, ToOneWrite,
    Unique, Write,
};

fn model<'c>(cat: &'c Catalog, name: &str) -> Result<&'c Model> {
    cat.model(name).map(AsRef::as_ref).ok_or_else(|| OrmError::bad("model", format!("unknown model `{name}`")))
}

fn target<'c>(cat: &'c Catalog, m: &Model, field: &str) -> Result<Option<&'c Model>> {
    match m.field(field).map(|f| &f.kind) {
        Some(FieldKind::ToOne { target, .. } | FieldKind::ToMany { target, .. }) => Ok(Some(model(cat, target.as_str())?)),
        _ => Ok(None),
    }
}

fn filter(cat: &Catalog, m: &Model, f: &Filter, c: &FieldCheck<'_>) -> Result<()> {
    match f {
        Filter::True | Filter::False => Ok(()),
        Filter::And(items) | Filter::Or(items) => items.iter().try_for_each(|i| filter(cat, m, i, c)),
        Filter::Not(inner) => filter(cat, m, inner, c),
        Filter::Cmp { field, .. } => c.read(&m.name, field.as_str()),
        Filter::Search(_) => m.searchable().try_for_each(|f| c.read(&m.name, f.name.as_str())),
        Filter::ToOne { field, filter: inner } => {
            c.read(&m.name, field.as_str())?;
            match (inner, target(cat, m, field.as_str())?) {
                (Some(inner), Some(t)) => filter(cat, t, inner, c),
                _ => Ok(()),
            }
        }
        Filter::ToMany { field, filter: inner, .. } => {
            c.read(&m.name, field.as_str())?;
            match target(cat, m, field.as_str())? {
                Some(t) => filter(cat, t, inner, c),
                None => Ok(()),
            }
        }
    }
}

fn order(m: &Model, o: &[OrderBy], c: &FieldCheck<'_>) -> Result<()> {
    o.iter().try_for_each(|o| c.read(&m.name, o.field.as_str()))
}

fn selection(cat: &Catalog, m: &Model, s: &Selection, c: &FieldCheck<'_>) -> Result<()> {
    for f in &s.fields {
        c.read(&m.name, f.as_str())?;
    }
    for x in &s.extras {
        if let Extra::History { field: Some(f), .. } | Extra::Stages { field: Some(f), .. } = x {
            c.read(&m.name, f.as_str())?;
        }
    }
    for n in &s.nested {
        c.read(&m.name, n.field.as_str())?;
        if let Some(t) = target(cat, m, n.field.as_str())? {
            selection(cat, t, &n.select, c)?;
            filter(cat, t, &n.filter, c)?;
            order(t, &n.order, c)?;
            n.aggregate.numeric.iter().try_for_each(|(_, f)| c.read(&t.name, f.as_str()))?;
        }
    }
    Ok(())
}

fn unique(m: &Model, u: &Unique, c: &FieldCheck<'_>) -> Result<()> {
    match u {
        Unique::Id(_) => Ok(()),
        Unique::Field(f, _) => c.read(&m.name, f.as_str()),
    }
}

fn data(cat: &Catalog, m: &Model, d: &Data, c: &FieldCheck<'_>) -> Result<()> {
    for (name, w) in &d.fields {
        c.write(&m.name, name.as_str())?;
        let Some(t) = target(cat, m, name.as_str())? else { continue };
        match w {
            FieldWrite::Set(_) => {}
            FieldWrite::ToOne(ToOneWrite::Connect(u)) => unique(t, u, c)?,
            FieldWrite::ToOne(ToOneWrite::Create(inner)) => data(cat, t, inner, c)?,
            FieldWrite::ToOne(ToOneWrite::Disconnect) => {}
            FieldWrite::ToMany(many) => {
                for u in many.connect.iter().chain(&many.disconnect).chain(many.set.iter().flatten()) {
                    unique(t, u, c)?;
                }
                for inner in &many.create {
                    data(cat, t, inner, c)?;
                }
            }
        }
    }
    Ok(())
}

impl FieldUse for Read {
    fn check_fields(&self, cat: &Catalog, c: &FieldCheck<'_>) -> Result<()> {
        let m = model(cat, self.model.as_str())?;
        filter(cat, m, &self.filter, c)?;
        order(m, &self.order, c)?;
        selection(cat, m, &self.select, c)?;
        self.aggregates.iter().try_for_each(|(_, f)| c.read(&m.name, f.as_str()))
    }
}

impl FieldUse for GroupBy {
    fn check_fields(&self, cat: &Catalog, c: &FieldCheck<'_>) -> Result<()> {
        let m = model(cat, self.model.as_str())?;
        filter(cat, m, &self.filter, c)?;
        self.by.iter().try_for_each(|f| c.read(&m.name, f.as_str()))?;
        self.aggregate.numeric.iter().try_for_each(|(_, f)| c.read(&m.name, f.as_str()))
    }
}

impl FieldUse for Write {
    fn check_fields(&self, cat: &Catalog, c: &FieldCheck<'_>) -> Result<()> {
        let m = model(cat, self.model().as_str())?;
        match self {
            Write::Create { data: d, .. } => data(cat, m, d, c),
            Write::Update { target: t, data: d, .. } => {
                unique(m, t, c)?;
                data(cat, m, d, c)
            }
            Write::Delete { target: t, .. } | Write::Restore { target: t, .. } | Write::Destroy { target: t, .. } => unique(m, t, c),
            Write::Upsert { target: t, create, update, .. } => {
                unique(m, t, c)?;
                data(cat, m, create, c)?;
                data(cat, m, update, c)
            }
            Write::UpdateMany { filter: f, order: o, data: d, .. } => {
                filter(cat, m, f, c)?;
                order(m, o, c)?;
                data(cat, m, d, c)
            }
            Write::DeleteMany { filter: f, order: o, .. } => {
                filter(cat, m, f, c)?;
                order(m, o, c)
            }
        }
    }
}

impl FieldUse for crate::ir::AuditQuery {
    fn check_fields(&self, _: &Catalog, _: &FieldCheck<'_>) -> Result<()> {
        Ok(())
    }
}

impl FieldUse for Locate {
    fn check_fields(&self, _: &Catalog, _: &FieldCheck<'_>) -> Result<()> {
        Ok(())
    }
}

/// No query: only the grant itself is checked (used to obtain an [`crate::Access`]).
impl FieldUse for Targets {
    fn check_fields(&self, cat: &Catalog, c: &FieldCheck<'_>) -> Result<()> {
        filter(cat, model(cat, self.model.as_str())?, &self.filter, c)
    }
}

impl FieldUse for StageQuery {
    fn check_fields(&self, _: &Catalog, c: &FieldCheck<'_>) -> Result<()> {
        c.read(&self.model, self.field.as_str())
    }
}

/// Denied fields are left out of the events' data instead (see `Store::record_events`).
impl FieldUse for RecordEvents {
    fn check_fields(&self, _: &Catalog, _: &FieldCheck<'_>) -> Result<()> {
        Ok(())
    }
}

/// Deliveries show no field of their webhook but its id.
impl FieldUse for Deliveries {
    fn check_fields(&self, _: &Catalog, _: &FieldCheck<'_>) -> Result<()> {
        Ok(())
    }
}

impl FieldUse for () {
    fn check_fields(&self, _: &Catalog, _: &FieldCheck<'_>) -> Result<()> {
        Ok(())
    }
}
