//! The document as the resolvers look ahead into it: a selected field with its sub-fields
//! (fragments expanded, `@skip` / `@include` applied) and its arguments as JSON, variables
//! substituted. What a root field's read is compiled from ([`SelNode`]).

use apollo_compiler::ExecutableDocument;
use apollo_compiler::ast::{DirectiveList, Value};
use apollo_compiler::executable::{Field, Selection};
use apollo_compiler::response::{JsonMap, JsonValue};
use crm_orm::OrmError;
use serde_json::{Map, Value as Json};

use crate::selection::SelNode;

/// One selected field: every occurrence of it under one response key (the executor merges
/// them), in the document `doc` with the coerced variable values `vars`.
#[derive(Clone)]
pub(crate) struct Sel<'a> {
    fields: Vec<&'a Field>,
    doc: &'a ExecutableDocument,
    vars: &'a JsonMap,
}

impl<'a> Sel<'a> {
    pub(crate) fn new(fields: Vec<&'a Field>, doc: &'a ExecutableDocument, vars: &'a JsonMap) -> Sel<'a> {
        Sel { fields, doc, vars }
    }

    fn collect(&self, selections: &'a [Selection], out: &mut Vec<Sel<'a>>) {
        for s in selections {
            match s {
                Selection::Field(f) => out.push(Sel { fields: vec![f.as_ref()], doc: self.doc, vars: self.vars }),
                Selection::FragmentSpread(spread) => {
                    if !skipped(&spread.directives, self.vars)
                        && let Some(fragment) = self.doc.fragments.get(&spread.fragment_name)
                    {
                        self.collect(&fragment.selection_set.selections, out);
                    }
                }
                Selection::InlineFragment(inline) => {
                    if !skipped(&inline.directives, self.vars) {
                        self.collect(&inline.selection_set.selections, out);
                    }
                }
            }
        }
    }
}

impl SelNode for Sel<'_> {
    fn name(&self) -> &str {
        self.fields.first().map_or("", |f| f.name.as_str())
    }
    fn alias(&self) -> Option<&str> {
        self.fields.first().and_then(|f| f.alias.as_ref()).map(apollo_compiler::Name::as_str)
    }
    fn children(&self) -> Vec<Self> {
        let mut out = Vec::new();
        for f in &self.fields {
            self.collect(&f.selection_set.selections, &mut out);
        }
        out
    }
    fn args(&self) -> Result<Map<String, Json>, OrmError> {
        let Some(f) = self.fields.first() else { return Ok(Map::new()) };
        Ok(f.arguments.iter().filter_map(|a| value(&a.value, self.vars).map(|v| (a.name.to_string(), v))).collect())
    }
    fn skipped(&self) -> bool {
        self.fields.first().is_some_and(|f| skipped(&f.directives, self.vars))
    }
}

/// Whether `@skip(if: true)` or `@include(if: false)` leaves a selection out.
pub(crate) fn skipped(directives: &DirectiveList, vars: &JsonMap) -> bool {
    let flag = |name: &str| {
        directives.get(name).and_then(|d| d.specified_argument_by_name("if")).and_then(|v| value(v, vars)).and_then(|v| v.as_bool())
    };
    flag("skip") == Some(true) || flag("include") == Some(false)
}

/// A value of the document as JSON, variables substituted; `None` for a variable not given
/// (the argument is then absent, as if not written).
pub(crate) fn value(v: &Value, vars: &JsonMap) -> Option<Json> {
    Some(match v {
        Value::Null => Json::Null,
        Value::Enum(n) => Json::String(n.to_string()),
        Value::Variable(n) => return vars.get(n.as_str()).map(bytes_to_json),
        Value::String(s) => Json::String(s.clone()),
        Value::Float(f) => f.try_to_f64().ok().and_then(serde_json::Number::from_f64).map_or(Json::Null, Json::Number),
        Value::Int(i) => i.as_str().parse::<i64>().map_or_else(|_| Json::String(i.as_str().to_owned()), Json::from),
        Value::Boolean(b) => Json::Bool(*b),
        Value::List(items) => Json::Array(items.iter().map(|i| value(i, vars).unwrap_or(Json::Null)).collect()),
        Value::Object(fields) => Json::Object(fields.iter().filter_map(|(k, v)| value(v, vars).map(|v| (k.to_string(), v))).collect()),
    })
}

/// A response-crate JSON value as a `serde_json` one.
pub(crate) fn bytes_to_json(v: &JsonValue) -> Json {
    match v {
        JsonValue::Null => Json::Null,
        JsonValue::Bool(b) => Json::Bool(*b),
        JsonValue::Number(n) => Json::Number(n.clone()),
        JsonValue::String(s) => Json::String(s.as_str().to_owned()),
        JsonValue::Array(items) => Json::Array(items.iter().map(bytes_to_json).collect()),
        JsonValue::Object(o) => Json::Object(o.iter().map(|(k, v)| (k.as_str().to_owned(), bytes_to_json(v))).collect()),
    }
}

/// A field's coerced arguments as `serde_json`.
pub(crate) fn args_json(args: &JsonMap) -> Map<String, Json> {
    args.iter().map(|(k, v)| (k.as_str().to_owned(), bytes_to_json(v))).collect()
}
