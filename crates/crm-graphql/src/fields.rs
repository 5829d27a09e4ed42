//! Fields below a root field: they only read the JSON the database built for the root field's
//! statement, borrowing it without copies.

use async_graphql::dynamic::{FieldFuture, FieldValue, ResolverContext};
use async_graphql::{Name, Value};
use serde_json::Value as Json;

/// JSON -> GraphQL value.
pub(crate) fn to_value(j: &Json) -> Value {
    match j {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => Value::Number(n.clone()),
        Json::String(s) => Value::String(s.clone()),
        Json::Array(items) => Value::List(items.iter().map(to_value).collect()),
        Json::Object(o) => Value::Object(o.iter().map(|(k, v)| (Name::new(k), to_value(v))).collect()),
    }
}

pub(crate) fn parent_json<'a>(ctx: &ResolverContext<'a>) -> Option<&'a Json> {
    ctx.parent_value.downcast_ref::<Json>()
}

/// The non-null value under `key` in the parent JSON object.
pub(crate) fn child<'a>(ctx: &ResolverContext<'a>, key: &str) -> Option<&'a Json> {
    parent_json(ctx).and_then(|p| p.get(key)).filter(|v| !v.is_null())
}

/// The non-null value the statement built under this field's response key (its alias, else
/// `name`): relations and extras are keyed so, since one field may be selected under several
/// aliases with different arguments.
pub(crate) fn aliased<'a>(ctx: &ResolverContext<'a>, name: &str) -> Option<&'a Json> {
    child(ctx, ctx.ctx.item.node.alias.as_ref().map_or(name, |a| a.node.as_str()))
}

/// A scalar read from the parent JSON object by field name.
pub(crate) fn json_leaf(key: &str) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    let key = key.to_owned();
    move |ctx| FieldFuture::Value(child(&ctx, &key).map(|v| FieldValue::value(to_value(v))))
}

/// An object read from the parent JSON object by field name (money, references, aggregates).
pub(crate) fn json_object(key: &str) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    let key = key.to_owned();
    move |ctx| FieldFuture::Value(child(&ctx, &key).map(|x| FieldValue::borrowed_any(x)))
}

/// A to-one relation: the nested object the statement built under the response key.
pub(crate) fn json_aliased_object(name: String) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    move |ctx| FieldFuture::Value(aliased(&ctx, &name).map(|x| FieldValue::borrowed_any(x)))
}

/// A JSON value the statement built under the response key (the timeline).
pub(crate) fn json_aliased_leaf(name: String) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    move |ctx| FieldFuture::Value(aliased(&ctx, &name).map(|v| FieldValue::value(to_value(v))))
}

/// A to-many relation: the nested array the statement built under the response key.
pub(crate) fn json_aliased_list(name: String) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    move |ctx| {
        let items = aliased(&ctx, &name).and_then(Json::as_array);
        FieldFuture::Value(Some(FieldValue::list(items.into_iter().flatten().map(|x| FieldValue::borrowed_any(x)))))
    }
}

/// Seconds spent in a stage: until `exitedAt`, or until now.
pub(crate) fn stage_duration() -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    |ctx| {
        let p = parent_json(&ctx);
        let at = |k: &str| p.and_then(|p| p.get(k)).and_then(Json::as_str).and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
        let secs = at("enteredAt").map(|entered| {
            let until = at("exitedAt").map_or_else(chrono::Utc::now, |e| e.with_timezone(&chrono::Utc));
            #[allow(clippy::cast_precision_loss)] // milliseconds of a stay, far below 2^52
            let ms = (until - entered.with_timezone(&chrono::Utc)).num_milliseconds() as f64;
            ms / 1000.0
        });
        FieldFuture::Value(secs.map(|s| FieldValue::value(Value::from(s))))
    }
}
