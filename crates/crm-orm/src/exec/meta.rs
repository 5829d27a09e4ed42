//! Tenant-defined metadata: custom fields and custom objects, stored per tenant in
//! `crm_metadata` with a version in `crm_tenants`, validated by the same rules as code-declared
//! models ([`Catalog::extend`]) before anything is written, audited in the same transaction.

use std::sync::Arc;

use crm_model::{Catalog, Extension, FieldDef, FieldType, ModelDef, OrgId, RECORDS_TABLE};
use serde_json::{Value as Json, json};

use super::Store;
use super::pool::{Executor, ExecutorSource, Tx};
use crate::authorization::Scoped;
use crate::error::{OrmError, Result, decode_json};
use crate::sql::dialect::Dialect;
use crate::sql::metadata::{self, Definition};
use crate::sql::write::Stamp;
use crate::sql::{audit, tenants};

/// One change of a tenant's metadata. Definitions are in the JSON form of [`FieldDef`] and
/// [`ModelDef`].
#[derive(Debug, Clone, PartialEq)]
pub enum MetaChange {
    /// Adds a custom field to a model (a base model or a custom object).
    CreateField {
        /// The model's API name.
        model: String,
        /// The field.
        def: FieldDef,
    },
    /// Replaces a custom field's definition: label, description, checks, default, required, new
    /// options. The name and the type stay; options can be added, not removed.
    UpdateField {
        /// The model's API name.
        model: String,
        /// The field's name.
        name: String,
        /// The new definition.
        def: FieldDef,
    },
    /// Hides a custom field from the tenant's schema (values and history are kept) or shows it
    /// again.
    SetFieldActive {
        /// The model's API name.
        model: String,
        /// The field's name.
        name: String,
        /// Shown or hidden.
        active: bool,
    },
    /// Removes a custom field with its values and history.
    DeleteField {
        /// The model's API name.
        model: String,
        /// The field's name.
        name: String,
    },
    /// Adds a custom object.
    CreateObject {
        /// The object.
        def: ModelDef,
    },
    /// Replaces a custom object's definition. Fields keep their types; removed fields lose their
    /// values and history.
    UpdateObject {
        /// The object's name.
        name: String,
        /// The new definition.
        def: ModelDef,
    },
    /// Removes a custom object that has no records (live or in the trash).
    DeleteObject {
        /// The object's name.
        name: String,
    },
}

impl MetaChange {
    /// Refuses text PostgreSQL cannot store (U+0000) anywhere in the change, as SQLite does too.
    fn check_storable(&self) -> Result<()> {
        let (model, name, def) = match self {
            Self::CreateField { model, def } => (model.as_str(), "", serde_json::to_value(def).ok()),
            Self::UpdateField { model, name, def } => (model.as_str(), name.as_str(), serde_json::to_value(def).ok()),
            Self::SetFieldActive { model, name, .. } | Self::DeleteField { model, name } => (model.as_str(), name.as_str(), None),
            Self::CreateObject { def } => ("", "", serde_json::to_value(def).ok()),
            Self::UpdateObject { name, def } => ("", name.as_str(), serde_json::to_value(def).ok()),
            Self::DeleteObject { name } => ("", name.as_str(), None),
        };
        if model.contains('\0') || name.contains('\0') || def.as_ref().is_some_and(crm_model::value::has_nul) {
            return Err(bad("definition", crm_model::value::NUL_MESSAGE));
        }
        Ok(())
    }

    fn action(&self) -> &'static str {
        match self {
            Self::CreateField { .. } => "metadata.createField",
            Self::UpdateField { .. } => "metadata.updateField",
            Self::SetFieldActive { active: true, .. } => "metadata.activateField",
            Self::SetFieldActive { active: false, .. } => "metadata.deactivateField",
            Self::DeleteField { .. } => "metadata.deleteField",
            Self::CreateObject { .. } => "metadata.createObject",
            Self::UpdateObject { .. } => "metadata.updateObject",
            Self::DeleteObject { .. } => "metadata.deleteObject",
        }
    }
}

/// A read of every stored definition of the tenant (for [`Store::definitions`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Definitions;

const FIELD: &str = "field";
const OBJECT: &str = "object";

fn bad(path: &str, message: impl Into<String>) -> OrmError {
    OrmError::bad(path, message)
}

/// The kind of a field type, for "the type cannot change" (relations compare their target).
fn same_type(old: &FieldType, new: &FieldType) -> bool {
    match (old, new) {
        (FieldType::Select { .. }, FieldType::Select { .. }) | (FieldType::MultiSelect { .. }, FieldType::MultiSelect { .. }) => true,
        (FieldType::Relation { target: a, .. }, FieldType::Relation { target: b, .. }) => a == b,
        (FieldType::Inverse { target: a, via: x }, FieldType::Inverse { target: b, via: y }) => a == b && x == y,
        (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
    }
}

/// What may change in a field's definition: not its type, and no option may go (stored values
/// would no longer be valid).
fn check_field_change(path: &str, old: &FieldDef, new: &FieldDef) -> Result<()> {
    if old.name != new.name {
        return Err(bad(path, format!("`{}` cannot be renamed; create a new field instead", old.name)));
    }
    if !same_type(&old.ty, &new.ty) {
        return Err(bad(path, format!("the type of `{}` cannot change; create a new field instead", old.name)));
    }
    if let (
        FieldType::Select { options: a, .. } | FieldType::MultiSelect { options: a, .. },
        FieldType::Select { options: b, .. } | FieldType::MultiSelect { options: b, .. },
    ) = (&old.ty, &new.ty)
        && let Some(gone) = a.iter().find(|o| !b.contains(o))
    {
        return Err(bad(path, format!("option `{gone}` of `{}` cannot be removed: records may hold it", old.name)));
    }
    Ok(())
}

fn parse_field(d: &Definition) -> Option<FieldDef> {
    serde_json::from_value(d.definition.clone()).ok()
}

fn parse_object(d: &Definition) -> Option<ModelDef> {
    serde_json::from_value(d.definition.clone()).ok()
}

/// The extension made of the active stored definitions (objects, then fields, in order).
pub(super) fn extension_of(rows: &[Definition]) -> Extension {
    let mut ext = Extension::default();
    for r in rows.iter().filter(|r| r.active) {
        match r.kind.as_str() {
            OBJECT => {
                if let Some(o) = parse_object(r) {
                    ext.objects.push(o);
                } else {
                    tracing::warn!(model = %r.model, "skipping an unreadable stored object definition");
                }
            }
            _ => {
                if let Some(f) = parse_field(r) {
                    ext.fields.push((r.model.clone(), f));
                } else {
                    tracing::warn!(model = %r.model, field = %r.name, "skipping an unreadable stored field definition");
                }
            }
        }
    }
    ext
}

/// Custom values to remove, with their history: `(model, field)`.
type Purge = Vec<(String, String)>;

/// Custom fields made required whose default fills the records without a value: (model, field,
/// the default's stored JSON).
type Fills = Vec<(String, String, Json)>;

/// The active required custom fields of `after` that were not active and required in `before`
/// (fields of custom objects included): (model, field).
fn newly_required(before: &[Definition], after: &[Definition]) -> Vec<(String, String)> {
    let required = |defs: &[Definition]| -> Vec<(String, String)> {
        let mut out = Vec::new();
        for d in defs.iter().filter(|d| d.active) {
            if d.kind == FIELD {
                if parse_field(d).is_some_and(|f| f.required) {
                    out.push((d.model.clone(), d.name.clone()));
                }
            } else if let Some(object) = parse_object(d) {
                out.extend(object.fields.iter().filter(|f| f.required).map(|f| (d.model.clone(), f.name.clone())));
            }
        }
        out
    };
    let was = required(before);
    required(after).into_iter().filter(|f| !was.contains(f)).collect()
}

impl Store {
    /// The metadata version of `org` (0 for a tenant that never defined anything). One cheap
    /// statement: servers compare it to decide whether a cached tenant schema is current.
    ///
    /// # Errors
    /// Database failures.
    pub async fn metadata_version(&self, org: &OrgId) -> Result<u64> {
        let d = self.dialect();
        let mut c = self.acquire().await?;
        let v = c.ex().optional_i64(tenants::metadata_version(d, org)).await?;
        v.map_or(Ok(0), |v| u64::try_from(v).map_err(|e| OrmError::decode("metadata version", e)))
    }

    /// The catalog `org` sees at its current metadata version: the base catalog extended with
    /// its active custom definitions. Definitions a newer base catalog contradicts are left out
    /// (and logged) rather than locking the tenant out. Version 0 is the base catalog itself.
    ///
    /// # Errors
    /// Database failures.
    pub async fn tenant_catalog(&self, org: &OrgId) -> Result<(u64, Arc<Catalog>)> {
        // The version is read first: definitions read after it are at least as new, so a cached
        // schema is never older than the version it is filed under.
        let version = self.metadata_version(org).await?;
        if version == 0 {
            return Ok((0, Arc::clone(&self.base)));
        }
        let rows = {
            let mut c = self.acquire().await?;
            c.ex().set_orgs(false, org, &[]).await?;
            load(self.dialect(), c.ex(), org).await?
        };
        let ext = extension_of(&rows);
        if ext.is_empty() {
            return Ok((version, Arc::clone(&self.base)));
        }
        let (cat, skipped) = self.base.extend_lenient(&ext);
        for e in skipped {
            tracing::warn!(org = %org, error = %e, "a stored custom definition no longer resolves; it is left out");
        }
        Ok((version, Arc::new(cat)))
    }

    /// Every stored definition of the caller's tenant, inactive ones included (roles with the
    /// metadata right).
    ///
    /// # Errors
    /// `Forbidden` without the metadata right; database failures.
    pub async fn definitions(&self, q: &Scoped<Definitions>) -> Result<Vec<Definition>> {
        let access = &q.access;
        let mut c = self.acquire().await?;
        c.ex().set_orgs(false, access.org(), &[]).await?;
        load(self.dialect(), c.ex(), access.org()).await
    }

    /// Applies one metadata change for the caller's tenant, in one transaction: the new set of
    /// definitions is validated as a whole (same rules as code-declared models) before anything
    /// is written; then the definitions, the purge of removed values, the version bump and an
    /// audit entry are written together. Returns the new metadata version.
    ///
    /// # Errors
    /// `Forbidden` without the metadata right; `BadInput` (naming the definition) for anything
    /// rejected, with nothing changed; `NotFound` for unknown fields or objects; database failures.
    pub async fn define(&self, q: &Scoped<MetaChange>) -> Result<u64> {
        let (access, change) = (&q.access, &q.query);
        change.check_storable()?;
        let d = self.dialect();
        let org = access.org();
        self.ensure_tenant(org, None).await?;
        let mut tx = self.begin().await?;
        tx.ex().set_tenant(true, access).await?;
        tx.ex().execute_some(tenants::lock_metadata(d, org)).await?;
        let rows = load(d, tx.ex(), org).await?;
        let (after, purge, fills, detail) = self.plan(&rows, change, &mut tx, d, org).await?;
        let stamp = Stamp { org, actor: access.actor(), now: chrono::Utc::now() };
        let key = |r: &Definition| (r.kind.clone(), r.model.clone(), r.name.clone());
        for r in rows.iter().filter(|r| !after.iter().any(|a| key(a) == key(r))) {
            tx.ex().execute(metadata::remove(d, org, r)).await?;
        }
        for a in &after {
            let same = rows.iter().any(|r| key(r) == key(a) && r.definition == a.definition && r.active == a.active);
            if !same {
                tx.ex().execute(metadata::upsert(d, &stamp, a)?).await?;
            }
        }
        for (model, field) in &purge {
            self.purge(d, &mut tx, org, model, field).await?;
        }
        for (model, field, value) in &fills {
            let (table, object) = self.table_of(model);
            tx.ex().execute(metadata::fill_values(d, org, &table, object, field, value)).await?;
        }
        let version = tx.ex().scalar_i64(tenants::bump_metadata_version(d, org)).await?;
        let (model, _) = target_of(change);
        tx.ex().execute(audit::change(d, &stamp, change.action(), model, detail)?).await?;
        tx.commit().await?;
        u64::try_from(version).map_err(|e| OrmError::decode("metadata version", e))
    }

    /// Validates `change` against the stored `rows` and plans it: the definitions as they will be
    /// (the rows to write follow from comparing them with `rows`), the custom values to purge,
    /// and the audit detail (`before` / `after`).
    async fn plan(
        &self,
        rows: &[Definition],
        change: &MetaChange,
        tx: &mut Tx,
        d: Dialect,
        org: &OrgId,
    ) -> Result<(Vec<Definition>, Purge, Fills, Json)> {
        let find = |kind: &str, model: &str, name: &str| rows.iter().find(|r| r.kind == kind && r.model == model && r.name == name);
        let no_field = |model: &str, name: &str| OrmError::NotFound(format!("`{model}` has no custom field `{name}`"));
        let no_object = |name: &str| OrmError::NotFound(format!("there is no custom object `{name}`"));
        let to_json = |v: Result<Json, serde_json::Error>| v.map_err(|e| OrmError::invariant(e.to_string()));
        let next = rows.iter().map(|r| r.position).max().unwrap_or(0) + 1;
        let added = |kind: &str, model: &str, name: &str, definition: Json| Definition {
            kind: kind.to_owned(),
            model: model.to_owned(),
            name: name.to_owned(),
            definition,
            active: true,
            position: next,
            updated_at: String::new(),
            updated_by: None,
        };
        let mut after: Vec<Definition> = rows.to_vec();
        let mut purge = Vec::new();
        let (before, now): (Option<Json>, Option<Json>);
        match change {
            MetaChange::CreateField { model, def } => {
                if let Some(r) = find(FIELD, model, &def.name) {
                    let hint = if r.active { "" } else { " (deactivated: activate or delete it)" };
                    return Err(bad("definition.name", format!("`{model}` already has a custom field `{}`{hint}", def.name)));
                }
                let definition = to_json(serde_json::to_value(def))?;
                after.push(added(FIELD, model, &def.name, definition.clone()));
                (before, now) = (None, Some(definition));
            }
            MetaChange::UpdateField { model, name, def } => {
                let r = find(FIELD, model, name).ok_or_else(|| no_field(model, name))?;
                let old = parse_field(r).ok_or_else(|| OrmError::decode("stored field definition", "not a field definition"))?;
                check_field_change("definition", &old, def)?;
                let definition = to_json(serde_json::to_value(def))?;
                for a in after.iter_mut().filter(|a| a.kind == FIELD && &a.model == model && &a.name == name) {
                    a.definition = definition.clone();
                }
                (before, now) = (Some(r.definition.clone()), Some(definition));
            }
            MetaChange::SetFieldActive { model, name, active } => {
                let r = find(FIELD, model, name).ok_or_else(|| no_field(model, name))?;
                for a in after.iter_mut().filter(|a| a.kind == FIELD && &a.model == model && &a.name == name) {
                    a.active = *active;
                }
                (before, now) = (Some(json!({ "active": r.active })), Some(json!({ "active": active })));
            }
            MetaChange::DeleteField { model, name } => {
                let r = find(FIELD, model, name).ok_or_else(|| no_field(model, name))?;
                after.retain(|a| !(a.kind == FIELD && &a.model == model && &a.name == name));
                purge.push((model.clone(), name.clone()));
                (before, now) = (Some(r.definition.clone()), None);
            }
            MetaChange::CreateObject { def } => {
                if find(OBJECT, &def.name, "").is_some() {
                    return Err(bad("definition.name", format!("a custom object `{}` already exists", def.name)));
                }
                let definition = to_json(serde_json::to_value(def))?;
                after.push(added(OBJECT, &def.name, "", definition.clone()));
                (before, now) = (None, Some(definition));
            }
            MetaChange::UpdateObject { name, def } => {
                let r = find(OBJECT, name, "").ok_or_else(|| no_object(name))?;
                let old = parse_object(r).ok_or_else(|| OrmError::decode("stored object definition", "not an object definition"))?;
                if &def.name != name {
                    return Err(bad("definition.name", format!("`{name}` cannot be renamed; create a new object instead")));
                }
                for (i, nf) in def.fields.iter().enumerate() {
                    if let Some(of) = old.fields.iter().find(|f| f.name == nf.name) {
                        check_field_change(&format!("definition.fields.{i}"), of, nf)?;
                    } else if find(FIELD, name, &nf.name).is_some() {
                        return Err(bad(&format!("definition.fields.{i}"), format!("`{name}` already has a custom field `{}`", nf.name)));
                    }
                }
                for of in old.fields.iter().filter(|of| !def.fields.iter().any(|nf| nf.name == of.name)) {
                    purge.push((name.clone(), of.name.clone()));
                }
                let definition = to_json(serde_json::to_value(def))?;
                for a in after.iter_mut().filter(|a| a.kind == OBJECT && &a.model == name) {
                    a.definition = definition.clone();
                }
                (before, now) = (Some(r.definition.clone()), Some(definition));
            }
            MetaChange::DeleteObject { name } => {
                let r = find(OBJECT, name, "").ok_or_else(|| no_object(name))?;
                let n = tx.ex().scalar_i64(metadata::object_records(d, org, name)).await?;
                if n > 0 {
                    return Err(OrmError::Referenced(format!(
                        "the custom object `{name}` still has {n} record(s), in the trash or not; destroy them first"
                    )));
                }
                // The object goes with the custom fields declared on it.
                after.retain(|a| &a.model != name);
                (before, now) = (Some(r.definition.clone()), None);
            }
        }
        // The whole new set must resolve, by the same rules as models declared in code; a
        // deactivated field being redefined is checked as if it were active.
        let mut check = after.clone();
        if let MetaChange::UpdateField { model, name, .. } = change {
            for a in check.iter_mut().filter(|a| a.kind == FIELD && &a.model == model && &a.name == name) {
                a.active = true;
            }
        }
        let catalog = self.base.extend(&extension_of(&check))?;
        // A field that becomes required (created so, made so, or active again) must have a value
        // in every record: its default fills the records without one, or the change is refused.
        let mut fills = Vec::new();
        for (model, name) in newly_required(rows, &after) {
            let (table, object) = self.table_of(&model);
            let missing = tx.ex().scalar_i64(metadata::missing_values(d, org, &table, object, &name)).await?;
            if missing == 0 {
                continue;
            }
            let default = catalog.model(&model).and_then(|m| m.field(&name)).and_then(|f| f.default.as_ref());
            let Some(value) = default else {
                return Err(bad(
                    "definition.required",
                    format!(
                        "`{model}` has {missing} record(s) without a value of `{name}` (in the trash or not): give the field a default to fill them, or keep it optional until every record has a value"
                    ),
                ));
            };
            fills.push((model, name, crate::sql::write::stored_json(value)));
        }
        let (model, field) = target_of(change);
        let detail = json!({ "model": model, "field": field, "before": before, "after": now });
        Ok((after, purge, fills, detail))
    }

    /// The table of `model`'s records: its own for a base model, the shared one (and the object's
    /// name) for a custom object.
    fn table_of<'m>(&self, model: &'m str) -> (String, Option<&'m str>) {
        match self.base.model(model) {
            Some(m) => (m.table.to_string(), None),
            None => (RECORDS_TABLE.to_owned(), Some(model)),
        }
    }

    /// Removes a deleted custom field's values from every record of the tenant, and its history.
    async fn purge(&self, d: Dialect, tx: &mut Tx, org: &OrgId, model: &str, field: &str) -> Result<()> {
        let (table, object) = self.table_of(model);
        tx.ex().execute(metadata::purge_values(d, org, &table, object, field)).await?;
        tx.ex().execute(metadata::purge_history(d, org, model, field)).await?;
        Ok(())
    }
}

/// The model and field a change is about.
fn target_of(change: &MetaChange) -> (&str, Option<&str>) {
    match change {
        MetaChange::CreateField { model, def } => (model, Some(def.name.as_str())),
        MetaChange::UpdateField { model, name, .. }
        | MetaChange::SetFieldActive { model, name, .. }
        | MetaChange::DeleteField { model, name } => (model, Some(name.as_str())),
        MetaChange::CreateObject { def } => (&def.name, None),
        MetaChange::UpdateObject { name, .. } | MetaChange::DeleteObject { name } => (name, None),
    }
}

/// Every stored definition of `org`, in declaration order.
pub(super) async fn load(d: Dialect, ex: Executor<'_>, org: &OrgId) -> Result<Vec<Definition>> {
    let rows = ex.texts(metadata::definitions(d, org)?).await?;
    rows.iter().map(|t| decode_json("definition row", t)).collect()
}
