//! The objects of a response below its root fields: JSON the root field's statement built,
//! walked as the selection asks. A model's record, a connection, an edge, an aggregate: each is
//! a JSON object whose fields are looked up by name, or by response key for what the statement
//! keyed so (relations, connections, history, timeline, stages: one field may be selected
//! under several aliases with different arguments).

use apollo_compiler::ast::Type;
use apollo_compiler::resolvers::{FieldError, ObjectValue, ResolveInfo, ResolvedValue};
use apollo_compiler::response::JsonValue;
use apollo_compiler::schema::ExtendedType;
use crm_model::api::builtin::STAGE_TRANSITION;
use crm_model::{FieldKind, Model};
use serde_json::Value as Json;

use super::Ctx;
use super::sel::args_json;

/// A JSON value owned by the object (a root field's result) or borrowed from its parent's.
pub(crate) enum JsonRef<'a> {
    Owned(Json),
    Borrowed(&'a Json),
}

impl JsonRef<'_> {
    fn get(&self) -> &Json {
        match self {
            JsonRef::Owned(j) => j,
            JsonRef::Borrowed(j) => j,
        }
    }
}

/// An object of type `ty`, read from `value`; `model` is the model its records (or pages, or
/// aggregates) are of.
pub(crate) struct JsonObject<'a> {
    pub(crate) ty: &'a str,
    pub(crate) value: JsonRef<'a>,
    pub(crate) model: Option<&'a Model>,
    pub(crate) ctx: &'a Ctx<'a>,
}

/// The value of a field of type `ty` from `v`, its objects of `model`.
pub(crate) fn complete<'a>(ctx: &'a Ctx<'a>, ty: &'a Type, v: JsonRef<'a>, model: Option<&'a Model>) -> ResolvedValue<'a> {
    if v.get().is_null() {
        return ResolvedValue::null();
    }
    if ty.is_list() {
        let item = ty.item_type();
        return match v {
            JsonRef::Owned(Json::Array(items)) => {
                ResolvedValue::list(items.into_iter().map(move |i| complete(ctx, item, JsonRef::Owned(i), model)))
            }
            JsonRef::Borrowed(Json::Array(items)) => {
                ResolvedValue::list(items.iter().map(move |i| complete(ctx, item, JsonRef::Borrowed(i), model)))
            }
            // Not a list where one is due: the statement's bug, reported as a missing value.
            _ => ResolvedValue::null(),
        };
    }
    let named = ty.inner_named_type();
    if let Some(ExtendedType::Object(_)) = ctx.schema.types.get(named) {
        return ResolvedValue::object(JsonObject { ty: named.as_str(), value: v, model, ctx });
    }
    let j = match v {
        JsonRef::Owned(j) => j,
        JsonRef::Borrowed(j) => j.clone(),
    };
    ResolvedValue::leaf(JsonValue::from(float_if(named.as_str() == "Float", j)))
}

/// A whole number where a `Float` is due, as a float (the result coercion of `Float` takes
/// integers; the database writes a whole sum or average as one).
fn float_if(float: bool, j: Json) -> Json {
    match j {
        Json::Number(n) if float && !n.is_f64() => n.as_f64().and_then(serde_json::Number::from_f64).map_or(Json::Number(n), Json::Number),
        other => other,
    }
}

impl<'a> JsonObject<'a> {
    /// The model whose record this object is, if it is one.
    fn record_of(&self) -> Option<&'a Model> {
        self.model.filter(|m| m.api.object == self.ty)
    }
}

impl ObjectValue for JsonObject<'_> {
    fn type_name(&self) -> &str {
        self.ty
    }

    fn resolve_field<'b>(&'b self, info: &'b ResolveInfo<'b>) -> Result<ResolvedValue<'b>, FieldError> {
        self.field(info)
    }
}

impl JsonObject<'_> {
    fn field<'b>(&'b self, info: &'b ResolveInfo<'b>) -> Result<ResolvedValue<'b>, FieldError> {
        let name = info.field_name();
        let ty = &info.field_definition().ty;
        let value = self.value.get();
        let response_key = info.field_selections().first().map_or(name, |f| f.response_key().as_str());
        let Some(record) = self.record_of() else {
            if self.ty == STAGE_TRANSITION && name == "durationSeconds" {
                return Ok(ResolvedValue::leaf(stage_duration(value).map_or(JsonValue::Null, JsonValue::from)));
            }
            // Pages, edges and aggregates stay with their model.
            return Ok(complete(self.ctx, ty, JsonRef::Borrowed(value.get(name).unwrap_or(&Json::Null)), self.model));
        };
        let ctx = self.ctx;
        let at_key = || JsonRef::Borrowed(value.get(response_key).unwrap_or(&Json::Null));
        if let Some(f) = record.field(name) {
            return Ok(match &f.kind {
                FieldKind::ToOne { target, .. } | FieldKind::ToMany { target, .. } => {
                    complete(ctx, ty, at_key(), ctx.cat.model(target.as_str()).map(AsRef::as_ref))
                }
                FieldKind::Scalar(_) | FieldKind::Polymorphic { .. } => {
                    complete(ctx, ty, JsonRef::Borrowed(value.get(name).unwrap_or(&Json::Null)), None)
                }
            });
        }
        if let Some((base, _)) = record.api.connection_fields.iter().find(|(_, c)| c.as_str() == name)
            && let Some(FieldKind::ToMany { target, .. }) = record.field(base.as_str()).map(|f| &f.kind)
            && let Some(target) = ctx.cat.model(target.as_str())
        {
            let Some(built) = value.get(response_key).filter(|v| !v.is_null()) else { return Ok(ResolvedValue::null()) };
            let conn = crate::connection::nested_connection(target, built, &args_json(info.arguments()), ctx.default_page)
                .map_err(|e| ctx.errors.field_error(&e))?;
            return Ok(complete(ctx, ty, JsonRef::Owned(conn), Some(target)));
        }
        // History, timeline, stages: keyed by response key.
        Ok(complete(ctx, ty, at_key(), None))
    }
}

/// Seconds spent in a stage: until `exitedAt`, or until now.
fn stage_duration(p: &Json) -> Option<f64> {
    let at = |k: &str| p.get(k).and_then(Json::as_str).and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
    let entered = at("enteredAt")?;
    let until = at("exitedAt").map_or_else(chrono::Utc::now, |e| e.with_timezone(&chrono::Utc));
    #[allow(clippy::cast_precision_loss)] // milliseconds of a stay, far below 2^52
    let ms = (until - entered.with_timezone(&chrono::Utc)).num_milliseconds() as f64;
    Some(ms / 1000.0)
}
