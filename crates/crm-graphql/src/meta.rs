//! The metadata API: what a tenant's models and fields are (for clients that render forms and
//! tables from metadata), and the mutations with which a tenant's administrators define custom
//! fields and custom objects at runtime. The same root fields are in every tenant's schema.

use async_graphql::dynamic::{Field, FieldFuture, FieldValue, InputValue, Object, ResolverContext, SchemaBuilder, TypeRef};
use crm_model::api::builtin::{CUSTOM_DEFINITION, DATETIME, FIELD_INFO, JSON, METADATA, METADATA_CHANGE, MODEL_INFO};
use crm_model::api::roots;
use crm_model::{Field as MField, FieldDef, FieldKind, Model, ModelDef, ScalarType};
use crm_orm::{Access, MetaChange, Op, OrmError};
use serde_json::{Value as Json, json};

use crate::args::{args_json, opt_string};
use crate::fields::{json_leaf, parent_json};
use crate::request::{bad, err, request};

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
        "readOnly": f.system || !access.writes_field(&m.name, f.name.as_str()),
        "options": options,
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
        "canCreate": access.allows(&m.name, Op::Create),
        "canUpdate": access.allows(&m.name, Op::Update),
        "canDelete": access.allows(&m.name, Op::Delete),
        "fields": fields,
    })
}

/// The list under `key` of the parent JSON object.
pub(crate) fn json_list(key: &'static str) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    move |ctx| {
        let items = parent_json(&ctx).and_then(|p| p.get(key)).and_then(Json::as_array);
        FieldFuture::Value(Some(FieldValue::list(items.into_iter().flatten().map(|x| FieldValue::borrowed_any(x)))))
    }
}

pub(crate) fn leaf(name: &'static str, ty: TypeRef) -> Field {
    Field::new(name, ty, json_leaf(name))
}

fn string_arg(args: &serde_json::Map<String, Json>, key: &str) -> Result<String, OrmError> {
    opt_string(args, key)?.ok_or_else(|| bad(key, "is required"))
}

/// The `definition` argument as a `FieldDef` or `ModelDef` (`what` names it in errors).
fn definition<T: serde::de::DeserializeOwned>(args: &serde_json::Map<String, Json>, what: &str) -> Result<T, OrmError> {
    let d = args.get("definition").cloned().unwrap_or(Json::Null);
    serde_json::from_value(d).map_err(|e| bad("definition", format!("not {what} definition: {e}")))
}

fn field_def(args: &serde_json::Map<String, Json>) -> Result<FieldDef, OrmError> {
    definition(args, "a field")
}

fn model_def(args: &serde_json::Map<String, Json>) -> Result<ModelDef, OrmError> {
    definition(args, "an object")
}

/// A metadata mutation: parses its arguments into a change, applies it, notes the new version.
fn mutation(
    name: &'static str,
    description: &'static str,
    args: &[(&'static str, TypeRef)],
    parse: fn(&serde_json::Map<String, Json>) -> Result<MetaChange, OrmError>,
) -> Field {
    let mut f = Field::new(name, TypeRef::named_nn(METADATA_CHANGE), move |ctx: ResolverContext<'_>| {
        FieldFuture::new(async move {
            let rc = request(&ctx)?;
            let out: Result<Option<FieldValue<'_>>, OrmError> = async {
                let change = parse(&args_json(&ctx.args))?;
                let version = rc.store.define(&rc.access.scope_metadata(change)?).await?;
                rc.versions.note(rc.access.org(), version);
                Ok(Some(FieldValue::owned_any(json!({ "version": version }))))
            }
            .await;
            out.map_err(|e| err(&e))
        })
    })
    .description(description);
    for (a, ty) in args {
        f = f.argument(InputValue::new(*a, ty.clone()));
    }
    f
}

/// Adds the metadata types and root fields.
pub(crate) fn register(b: SchemaBuilder, query: Object, mutation_root: Object) -> (SchemaBuilder, Object, Object) {
    let s = || TypeRef::named_nn(TypeRef::STRING);
    let b = b
        .register(
            Object::new(FIELD_INFO)
                .description("A field as clients render it: type, label, options, checks, and what the caller may do with it.")
                .field(leaf("name", s()))
                .field(leaf("label", s()))
                .field(leaf("type", s()).description("text, longText, email, phone, url, int, float, decimal, money, boolean, date, dateTime, select, multiSelect, tags, json, relation, inverse, polymorphic or id."))
                .field(leaf("description", TypeRef::named(TypeRef::STRING)))
                .field(leaf("required", TypeRef::named_nn(TypeRef::BOOLEAN)))
                .field(leaf("unique", TypeRef::named_nn(TypeRef::BOOLEAN)))
                .field(leaf("searchable", TypeRef::named_nn(TypeRef::BOOLEAN)))
                .field(leaf("tracked", TypeRef::named_nn(TypeRef::BOOLEAN)).description("Changes are kept in the property history."))
                .field(leaf("stage", TypeRef::named_nn(TypeRef::BOOLEAN)).description("A lifecycle stage field."))
                .field(leaf("custom", TypeRef::named_nn(TypeRef::BOOLEAN)).description("Defined by the tenant at runtime."))
                .field(leaf("system", TypeRef::named_nn(TypeRef::BOOLEAN)))
                .field(leaf("readOnly", TypeRef::named_nn(TypeRef::BOOLEAN)).description("The caller cannot set it."))
                .field(leaf("options", TypeRef::named_list(TypeRef::STRING)).description("Options of a select or multi-select."))
                .field(leaf("target", TypeRef::named(TypeRef::STRING)).description("The related model of a relation."))
                .field(leaf("targets", TypeRef::named_list(TypeRef::STRING)).description("The models a polymorphic reference may point to."))
                .field(leaf("via", TypeRef::named(TypeRef::STRING)).description("The to-one field on the target an inverse relation follows."))
                .field(leaf("default", TypeRef::named(JSON)))
                .field(leaf("validation", TypeRef::named_nn(JSON)).description("minLength, maxLength, min, max, pattern.")),
        )
        .register(
            Object::new(MODEL_INFO)
                .description("A model the caller can read, with the fields they can read.")
                .field(leaf("name", s()))
                .field(leaf("plural", s()))
                .field(leaf("label", s()))
                .field(leaf("description", TypeRef::named(TypeRef::STRING)))
                .field(leaf("custom", TypeRef::named_nn(TypeRef::BOOLEAN)).description("A custom object defined by the tenant."))
                .field(leaf("canCreate", TypeRef::named_nn(TypeRef::BOOLEAN)))
                .field(leaf("canUpdate", TypeRef::named_nn(TypeRef::BOOLEAN)))
                .field(leaf("canDelete", TypeRef::named_nn(TypeRef::BOOLEAN)))
                .field(Field::new("fields", TypeRef::named_nn_list_nn(FIELD_INFO), json_list("fields"))),
        )
        .register(
            Object::new(METADATA)
                .description("The models and fields of the caller's tenant.")
                .field(leaf("version", TypeRef::named_nn(TypeRef::INT)).description("The tenant's metadata version this schema reflects."))
                .field(Field::new("models", TypeRef::named_nn_list_nn(MODEL_INFO), json_list("models"))),
        )
        .register(
            Object::new(CUSTOM_DEFINITION)
                .description("A stored custom field or object definition.")
                .field(leaf("kind", s()).description("field or object."))
                .field(leaf("model", s()).description("The model of a field; the object's own name."))
                .field(leaf("name", TypeRef::named(TypeRef::STRING)).description("The field's name; null for an object."))
                .field(leaf("active", TypeRef::named_nn(TypeRef::BOOLEAN)))
                .field(leaf("definition", TypeRef::named_nn(JSON)).description("The definition, in the JSON form of ModelDef / FieldDef."))
                .field(leaf("updatedAt", TypeRef::named_nn(DATETIME)))
                .field(leaf("updatedBy", TypeRef::named(TypeRef::STRING))),
        )
        .register(
            Object::new(METADATA_CHANGE)
                .description("The result of a metadata change.")
                .field(leaf("version", TypeRef::named_nn(TypeRef::INT)).description("The tenant's new metadata version.")),
        );
    let query = query
        .field(
            Field::new(roots::METADATA, TypeRef::named_nn(METADATA), |ctx: ResolverContext<'_>| {
                FieldFuture::new(async move {
                    let rc = request(&ctx)?;
                    let access = &rc.access;
                    let models: Vec<Json> =
                        rc.store.catalog().models().filter(|m| access.allows(&m.name, Op::Read)).map(|m| model_info(m, access)).collect();
                    Ok(Some(FieldValue::owned_any(json!({ "version": rc.metadata_version, "models": models }))))
                })
            })
            .description(
                "The models and fields the caller can read, with types, labels, options and checks: enough to render forms and tables.",
            ),
        )
        .field(
            Field::new(roots::CUSTOM_DEFINITIONS, TypeRef::named_nn_list_nn(CUSTOM_DEFINITION), |ctx: ResolverContext<'_>| {
                FieldFuture::new(async move {
                    let rc = request(&ctx)?;
                    let out: Result<Option<FieldValue<'_>>, OrmError> = async {
                        let args = args_json(&ctx.args);
                        let model = opt_string(&args, "model")?;
                        let defs = rc.store.definitions(&rc.access.scope_metadata(crm_orm::Definitions)?).await?;
                        let rows = defs.into_iter().filter(|d| model.as_ref().is_none_or(|m| &d.model == m)).map(|d| {
                            json!({
                                "kind": d.kind, "model": d.model, "name": (!d.name.is_empty()).then_some(d.name),
                                "active": d.active, "definition": d.definition, "updatedAt": d.updated_at, "updatedBy": d.updated_by,
                            })
                        });
                        Ok(Some(FieldValue::list(rows.map(FieldValue::owned_any))))
                    }
                    .await;
                    out.map_err(|e| err(&e))
                })
            })
            .description("The tenant's custom field and object definitions, deactivated ones included (roles with the metadata right).")
            .argument(InputValue::new("model", TypeRef::named(TypeRef::STRING)).description("Only definitions of this model.")),
        );
    let model_name = || ("model", TypeRef::named_nn(TypeRef::STRING));
    let field_name = || ("name", TypeRef::named_nn(TypeRef::STRING));
    let definition = || ("definition", TypeRef::named_nn(JSON));
    let mutation_root = mutation_root
        .field(mutation(
            roots::CREATE_CUSTOM_FIELD,
            "Adds a custom field to a model (JSON form of FieldDef). Administrators only; audited.",
            &[model_name(), definition()],
            |a| Ok(MetaChange::CreateField { model: string_arg(a, "model")?, def: field_def(a)? }),
        ))
        .field(mutation(
            roots::UPDATE_CUSTOM_FIELD,
            "Replaces a custom field's definition; its name and type stay, options can be added but not removed.",
            &[model_name(), field_name(), definition()],
            |a| Ok(MetaChange::UpdateField { model: string_arg(a, "model")?, name: string_arg(a, "name")?, def: field_def(a)? }),
        ))
        .field(mutation(roots::ACTIVATE_CUSTOM_FIELD, "Shows a deactivated custom field again.", &[model_name(), field_name()], |a| {
            Ok(MetaChange::SetFieldActive { model: string_arg(a, "model")?, name: string_arg(a, "name")?, active: true })
        }))
        .field(mutation(
            roots::DEACTIVATE_CUSTOM_FIELD,
            "Hides a custom field from the schema; its values and history are kept.",
            &[model_name(), field_name()],
            |a| Ok(MetaChange::SetFieldActive { model: string_arg(a, "model")?, name: string_arg(a, "name")?, active: false }),
        ))
        .field(mutation(
            roots::DELETE_CUSTOM_FIELD,
            "Removes a custom field with its values and history.",
            &[model_name(), field_name()],
            |a| Ok(MetaChange::DeleteField { model: string_arg(a, "model")?, name: string_arg(a, "name")? }),
        ))
        .field(mutation(
            roots::CREATE_CUSTOM_OBJECT,
            "Adds a custom object (JSON form of ModelDef); it gets the whole generated API.",
            &[definition()],
            |a| Ok(MetaChange::CreateObject { def: model_def(a)? }),
        ))
        .field(mutation(
            roots::UPDATE_CUSTOM_OBJECT,
            "Replaces a custom object's definition; fields keep their types, removed fields lose their values.",
            &[field_name(), definition()],
            |a| Ok(MetaChange::UpdateObject { name: string_arg(a, "name")?, def: model_def(a)? }),
        ))
        .field(mutation(roots::DELETE_CUSTOM_OBJECT, "Removes a custom object that has no records.", &[field_name()], |a| {
            Ok(MetaChange::DeleteObject { name: string_arg(a, "name")? })
        }));
    (b, query, mutation_root)
}
