//! The metadata API: what a tenant's models and fields are (for clients that render forms and
//! tables from metadata), and the mutations with which a tenant's administrators define custom
//! fields and custom objects at runtime. The same root fields are in every tenant's schema.

use crm_model::api::roots;
use crm_model::{Field as MField, FieldDef, FieldKind, Model, ModelDef, ScalarType};
use crm_orm::{Access, MetaChange, Op, OrmError};
use serde_json::{Map, Value as Json, json};

use crate::args::opt_string;
use crate::request::{RequestCtx, bad};

/// The type name clients see for a field (`text`, `select`, `relation`, …: the `type` of its
/// definition; `id` for the record id).
fn type_name(f: &MField) -> &'static str {
    match &f.kind {
        FieldKind::Scalar(t) => match t {
            ScalarType::Text => "text",
            ScalarType::LongText => "longText",
            ScalarType::Email => "email",
            ScalarType::Phone => "phone",
            ScalarType::Url => "url",
            ScalarType::Int => "int",
            ScalarType::Float => "float",
            ScalarType::Decimal => "decimal",
            ScalarType::Money { .. } => "money",
            ScalarType::Boolean => "boolean",
            ScalarType::Date => "date",
            ScalarType::DateTime => "dateTime",
            ScalarType::Select(_) => "select",
            ScalarType::MultiSelect(_) => "multiSelect",
            ScalarType::Tags => "tags",
            ScalarType::Json => "json",
            ScalarType::Id => "id",
        },
        FieldKind::ToOne { .. } => "relation",
        FieldKind::ToMany { .. } => "inverse",
        FieldKind::Polymorphic { .. } => "polymorphic",
    }
}

fn field_info(m: &Model, f: &MField, access: &Access) -> Json {
    let options = match f.scalar() {
        Some(ScalarType::Select(o) | ScalarType::MultiSelect(o)) => Some(o.iter().map(|x| x.as_str().to_owned()).collect::<Vec<_>>()),
        _ => None,
    };
    let (target, targets, via) = match &f.kind {
        FieldKind::ToOne { target, .. } => (Some(target.as_str()), None, None),
        FieldKind::ToMany { target, via } => (Some(target.as_str()), None, Some(via.as_str())),
        // No list: any model, shown as `["*"]` as it is declared.
        FieldKind::Polymorphic { targets, .. } if targets.is_empty() => (None, Some(vec!["*"]), None),
        FieldKind::Polymorphic { targets, .. } => (None, Some(targets.iter().map(crm_model::ModelName::as_str).collect::<Vec<_>>()), None),
        FieldKind::Scalar(_) => (None, None, None),
    };
    let c = &f.checks;
    let pattern = c.pattern.as_ref().map(|p| {
        let s = p.as_str();
        s.strip_prefix("^(?:").and_then(|s| s.strip_suffix(")$")).unwrap_or(s).to_owned()
    });
    let validation = json!({ "minLength": c.min_length, "maxLength": c.max_length, "min": c.min, "max": c.max, "pattern": pattern });
    json!({
        "name": f.name.as_str(),
        "label": f.label,
        "type": type_name(f),
        "description": f.description,
        "required": f.required,
        "unique": f.unique,
        "searchable": f.searchable,
        "tracked": f.tracked,
        "stage": f.stage,
        "custom": f.custom,
        "system": f.system,
        "readOnly": f.system || f.read_only || !access.writes_field(&m.name, f.name.as_str()),
        "options": options,
        "optionLabels": (!f.option_labels.is_empty())
            .then(|| f.option_labels.iter().map(|(value, label)| json!({ "value": value, "label": label })).collect::<Vec<_>>()),
        "target": target,
        "targets": targets,
        "via": via,
        "default": f.default.as_ref().map(crm_model::Value::to_json),
        "validation": validation,
    })
}

fn model_info(m: &Model, access: &Access) -> Json {
    let fields: Vec<Json> =
        m.fields.values().filter(|f| access.reads_field(&m.name, f.name.as_str())).map(|f| field_info(m, f, access)).collect();
    json!({
        "name": m.name.as_str(),
        "plural": m.plural,
        "label": m.label,
        "description": m.description,
        "custom": m.custom,
        "canCreate": access.can(m, Op::Create),
        "canUpdate": access.can(m, Op::Update),
        "canDelete": access.can(m, Op::Delete),
        "fields": fields,
    })
}

fn string_arg(args: &Map<String, Json>, key: &str) -> Result<String, OrmError> {
    opt_string(args, key)?.ok_or_else(|| bad(key, "is required"))
}

/// The `definition` argument as a `FieldDef` or `ModelDef` (`what` names it in errors).
fn definition<T: serde::de::DeserializeOwned>(args: &Map<String, Json>, what: &str) -> Result<T, OrmError> {
    let d = args.get("definition").cloned().unwrap_or(Json::Null);
    serde_json::from_value(d).map_err(|e| bad("definition", format!("not {what} definition: {e}")))
}

fn field_def(args: &Map<String, Json>) -> Result<FieldDef, OrmError> {
    definition(args, "a field")
}

fn model_def(args: &Map<String, Json>) -> Result<ModelDef, OrmError> {
    definition(args, "an object")
}

/// `metadata`: the models and fields the caller can read.
pub(crate) fn metadata(rc: &RequestCtx) -> Json {
    let access = &rc.access;
    let models: Vec<Json> =
        rc.store.catalog().models().filter(|m| access.allows(&m.name, Op::Read)).map(|m| model_info(m, access)).collect();
    json!({ "version": rc.metadata_version, "models": models })
}

/// `customDefinitions(model:)`.
pub(crate) async fn custom_definitions(rc: &RequestCtx, args: &Map<String, Json>) -> Result<Json, OrmError> {
    let model = opt_string(args, "model")?;
    let defs = rc.store.definitions(&rc.access.scope_metadata(crm_orm::Definitions)?).await?;
    let rows = defs.into_iter().filter(|d| model.as_ref().is_none_or(|m| &d.model == m)).map(|d| {
        json!({
            "kind": d.kind, "model": d.model, "name": (!d.name.is_empty()).then_some(d.name),
            "active": d.active, "definition": d.definition, "updatedAt": d.updated_at, "updatedBy": d.updated_by,
        })
    });
    Ok(Json::Array(rows.collect()))
}

/// The metadata change a metadata mutation (`root`, one of the `roots::*_CUSTOM_*` fields)
/// asks for; `None` for any other root field.
pub(crate) fn change_of(root: &str, a: &Map<String, Json>) -> Result<Option<MetaChange>, OrmError> {
    Ok(Some(match root {
        roots::CREATE_CUSTOM_FIELD => MetaChange::CreateField { model: string_arg(a, "model")?, def: field_def(a)? },
        roots::UPDATE_CUSTOM_FIELD => {
            MetaChange::UpdateField { model: string_arg(a, "model")?, name: string_arg(a, "name")?, def: field_def(a)? }
        }
        roots::ACTIVATE_CUSTOM_FIELD => {
            MetaChange::SetFieldActive { model: string_arg(a, "model")?, name: string_arg(a, "name")?, active: true }
        }
        roots::DEACTIVATE_CUSTOM_FIELD => {
            MetaChange::SetFieldActive { model: string_arg(a, "model")?, name: string_arg(a, "name")?, active: false }
        }
        roots::DELETE_CUSTOM_FIELD => MetaChange::DeleteField { model: string_arg(a, "model")?, name: string_arg(a, "name")? },
        roots::CREATE_CUSTOM_OBJECT => MetaChange::CreateObject { def: model_def(a)? },
        roots::UPDATE_CUSTOM_OBJECT => MetaChange::UpdateObject { name: string_arg(a, "name")?, def: model_def(a)? },
        roots::DELETE_CUSTOM_OBJECT => MetaChange::DeleteObject { name: string_arg(a, "name")? },
        _ => return Ok(None),
    }))
}

/// Applies a metadata change and notes the tenant's new version.
pub(crate) async fn apply(rc: &RequestCtx, change: MetaChange) -> Result<Json, OrmError> {
    let version = rc.store.define(&rc.access.scope_metadata(change)?).await?;
    rc.versions.note(rc.access.org(), version);
    Ok(json!({ "version": version }))
}
