//! Execution: a validated document run against a tenant's schema as data, in two steps.
//!
//! 1. The operation's root fields are resolved by [`crate::resolve`], each into one statement:
//!    a query's at the same time, a mutation's serially, stopping at the first failure of a
//!    non-null field (as the specification's serial execution does).
//! 2. apollo-compiler's executor completes the response (spec-compliant: fragments, `@skip` /
//!    `@include`, introspection, null propagation, error paths) over their results, reading the
//!    objects below the roots from the JSON the statements built ([`objects`]).
//!
//! Two steps because the executor's asynchronous mode cannot be sent between threads; all the
//! waiting is in step 1, so step 2 runs synchronously.

mod objects;
pub(crate) mod sel;

use std::sync::Mutex;

use apollo_compiler::executable::OperationType;
use apollo_compiler::executable::Selection;
use apollo_compiler::request::coerce_variable_values;
use apollo_compiler::resolvers::{Execution, FieldError, ObjectValue, ResolveInfo, ResolvedValue};
use apollo_compiler::response::{GraphQLError, JsonMap};
use apollo_compiler::validation::Valid;
use apollo_compiler::{ExecutableDocument, Schema};
use crm_model::api::builtin::{MUTATION, QUERY};
use crm_model::{Catalog, ErrorCode};
use crm_orm::OrmError;

use self::objects::{JsonRef, complete};
use self::sel::{Sel, skipped};
use crate::error::{Response, coded, to_graphql_error};
use crate::request::{RequestCtx, Variables};
use crate::resolve::Resolved;

/// What the objects of one execution share.
pub(crate) struct Ctx<'a> {
    pub(crate) rc: &'a RequestCtx,
    pub(crate) cat: &'a Catalog,
    pub(crate) schema: &'a Valid<Schema>,
    pub(crate) errors: &'a FieldErrors,
    pub(crate) default_page: u32,
}

/// The errors resolvers raised, with their codes: apollo-compiler's field errors carry a
/// message only, so a resolver's error travels as a reference into this list, and is put back
/// whole (message and extensions, at the path and locations the executor found) afterwards.
#[derive(Default)]
pub(crate) struct FieldErrors(Mutex<Vec<GraphQLError>>);

/// Starts the message of a field error that refers into [`FieldErrors`].
const REFERENCE: &str = "\u{0}crm-error:";

impl FieldErrors {
    pub(crate) fn field_error(&self, e: &OrmError) -> FieldError {
        let mut list = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        list.push(to_graphql_error(e));
        FieldError { message: format!("{REFERENCE}{}", list.len() - 1) }
    }

    /// Gives each error of the executor its resolver's message and extensions back; any other
    /// error raised during execution is the platform's fault (a value that does not fit its
    /// type): logged, and answered as an internal error.
    fn restore(&self, errors: &mut [GraphQLError]) {
        let list = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for e in errors {
            // The executor prefixes the message (`resolver error: `).
            let original = e.message.split_once(REFERENCE).and_then(|(_, i)| i.parse::<usize>().ok()).and_then(|i| list.get(i));
            if let Some(o) = original {
                e.message.clone_from(&o.message);
                e.extensions = o.extensions.clone();
            } else {
                tracing::error!(error = %e.message, path = ?e.path, "a GraphQL value the executor could not complete");
                "internal error".clone_into(&mut e.message);
                e.extensions.insert("code", ErrorCode::Internal.as_str().into());
            }
        }
    }
}

/// The root object of an operation: its fields' results, resolved beforehand by response key.
struct Root<'a> {
    ctx: &'a Ctx<'a>,
    ty: &'static str,
    results: Mutex<std::collections::HashMap<String, Result<Resolved<'a>, FieldError>>>,
}

impl ObjectValue for Root<'_> {
    fn type_name(&self) -> &str {
        self.ty
    }

    fn resolve_field<'b>(&'b self, info: &'b ResolveInfo<'b>) -> Result<ResolvedValue<'b>, FieldError> {
        let key = info.field_selections().first().map_or(info.field_name(), |f| f.response_key().as_str());
        let taken = self.results.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(key);
        let Some(result) = taken else {
            // Not resolved beforehand: after a failed mutation field (the executor stops there
            // too) or a bug; either way nothing to give.
            return Err(self.ctx.errors.field_error(&OrmError::invariant(format!("root field `{key}` was not resolved"))));
        };
        let r = result?;
        let ctx = self.ctx;
        Ok(match r.concrete {
            // An abstract type (`node`): the record's own object type.
            Some(concrete) if !r.value.is_null() => {
                ResolvedValue::object(objects::JsonObject { ty: concrete, value: JsonRef::Owned(r.value), model: r.model, ctx })
            }
            _ => complete(ctx, &info.field_definition().ty, JsonRef::Owned(r.value), r.model),
        })
    }
}

/// Resolves one root field (every occurrence of it under one response key).
async fn resolve_root<'c>(
    ctx: &Ctx<'c>,
    doc: &ExecutableDocument,
    vars: &JsonMap,
    occurrences: Vec<&apollo_compiler::executable::Field>,
) -> Result<Resolved<'c>, OrmError> {
    let name = occurrences.first().map_or("", |f| f.name.as_str()).to_owned();
    let sel = Sel::new(occurrences, doc, vars);
    let args = crate::selection::SelNode::args(&sel)?;
    crate::resolve::root(ctx.rc, ctx.cat, &name, &args, &sel).await
}

/// The root fields of `op` by response key, in order (fragments expanded, `@skip` / `@include`
/// applied), each with every occurrence of it.
fn root_fields<'d>(
    doc: &'d ExecutableDocument,
    selections: &'d [Selection],
    vars: &JsonMap,
    out: &mut Vec<(String, Vec<&'d apollo_compiler::executable::Field>)>,
) {
    for s in selections {
        match s {
            Selection::Field(f) => {
                if skipped(&f.directives, vars) {
                    continue;
                }
                let key = f.response_key().to_string();
                match out.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, fields)) => fields.push(f),
                    None => out.push((key, vec![f])),
                }
            }
            Selection::FragmentSpread(spread) => {
                if !skipped(&spread.directives, vars)
                    && let Some(fragment) = doc.fragments.get(&spread.fragment_name)
                {
                    root_fields(doc, &fragment.selection_set.selections, vars, out);
                }
            }
            Selection::InlineFragment(inline) => {
                if !skipped(&inline.directives, vars) {
                    root_fields(doc, &inline.selection_set.selections, vars, out);
                }
            }
        }
    }
}

/// Runs operation `operation` of `doc` with `variables`.
pub(crate) async fn execute(
    ctx: &Ctx<'_>,
    doc: &Valid<ExecutableDocument>,
    operation: Option<&str>,
    variables: &Variables,
    introspection: bool,
) -> Response {
    let request_error = |message: String| Response::from_errors(vec![coded(&message, ErrorCode::BadUserInput)]);
    let op = match doc.operations.get(operation) {
        Ok(op) => op,
        Err(e) => return request_error(e.message().to_string()),
    };
    let raw: JsonMap = variables.as_map().iter().map(|(k, v)| (k.as_str().into(), v.clone().into())).collect();
    let vars = match coerce_variable_values(ctx.schema, op, &raw) {
        Ok(v) => v,
        Err(e) => return Response::from_errors(vec![located(e.to_graphql_error(&doc.sources))]),
    };
    if op.operation_type == OperationType::Subscription {
        return request_error(
            "subscriptions are served over WebSocket: open /graphql with the graphql-transport-ws protocol and send them there".to_owned(),
        );
    }
    let mutation = op.operation_type == OperationType::Mutation;
    let mut fields = Vec::new();
    root_fields(doc, &op.selection_set.selections, &vars, &mut fields);
    // Meta-fields (`__typename`, `__schema`, `__type`) are the executor's own.
    fields.retain(|(_, occurrences)| occurrences.first().is_some_and(|f| !f.name.as_str().starts_with("__")));
    let mut results = std::collections::HashMap::new();
    if mutation {
        // Serially, stopping at the first failure of a non-null field (the rest would not run).
        for (key, occurrences) in fields {
            let non_null = occurrences.first().is_some_and(|f| f.definition.ty.is_non_null());
            let result = resolve_root(ctx, doc, &vars, occurrences).await;
            let failed = result.is_err();
            results.insert(key, result.map_err(|e| ctx.errors.field_error(&e)));
            if failed && non_null {
                break;
            }
        }
    } else {
        // A query's root fields are independent reads: at the same time.
        let reads = fields.into_iter().map(|(key, occurrences)| {
            let vars = &vars;
            async move { (key, resolve_root(ctx, doc, vars, occurrences).await) }
        });
        for (key, result) in futures::future::join_all(reads).await {
            results.insert(key, result.map_err(|e| ctx.errors.field_error(&e)));
        }
    }
    let ty = if mutation { MUTATION } else { QUERY };
    let root = Root { ctx, ty, results: Mutex::new(results) };
    let run = Execution::new(ctx.schema, doc).operation(op).coerced_variable_values(&vars).enable_schema_introspection(introspection);
    match run.execute_sync(&root) {
        Ok(r) => {
            let mut errors = r.errors;
            ctx.errors.restore(&mut errors);
            Response { errors, data: r.data, executed: true }
        }
        Err(e) => Response::from_errors(vec![located(e.to_graphql_error(&doc.sources))]),
    }
}

/// A request error (before execution) with its code.
fn located(mut e: GraphQLError) -> GraphQLError {
    e.extensions.insert("code", ErrorCode::BadUserInput.as_str().into());
    e
}

/// The validation errors of a document, each with its code. A selection set whose fields are
/// all unknown is also reported as missing (the unknown fields are dropped when the document is
/// built); with the unknown fields named, that second report only confuses.
pub(crate) fn invalid(errors: &apollo_compiler::validation::DiagnosticList) -> Response {
    let errors: Vec<GraphQLError> = errors.iter().map(|d| located(d.to_json())).collect();
    let unknown_field = errors.iter().any(|e| e.message.contains("does not have a field"));
    let kept = errors.into_iter().filter(|e| !(unknown_field && e.message.contains("must have a subselection set"))).collect();
    Response::from_errors(kept)
}
