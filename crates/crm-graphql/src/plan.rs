//! Plans: a query operation seen before is answered without the GraphQL executor.
//!
//! The first time a (schema, roles, document, operation) runs, async-graphql parses, validates
//! and executes it as usual. If it succeeded and its shape is one a plan can answer (root
//! lists, connections and single records of models, with scalar fields, nested to-one
//! objects and nested to-many lists below them: no fragments, no directives, no input-object
//! variables), the operation is kept as a [`Plan`]. The next requests for it skip parsing,
//! validation and the per-field resolvers: their variables are checked against the declared
//! types here, each root field is compiled into the same IR read the resolvers would build
//! (one statement each), with the row objects shaped as the response wants them
//! (`Selection::output`: response keys in selection order), so each row's JSON is copied
//! into the response body as it is, never decoded. Anything unexpected on the way (a variable of the wrong type, a bad argument, a
//! database error) falls back to the full executor, so errors keep their exact form.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use async_graphql::dynamic::Schema;
use async_graphql::parser::types::{
    BaseType, DocumentOperations, ExecutableDocument, Field, OperationDefinition, OperationType, Selection, Type,
};
use async_graphql::registry::MetaType;
use async_graphql::{Name, Value as ConstValue, Variables};
use crm_model::{Catalog, FieldKind, Model, ScalarType};
use crm_orm::{Op, OrmError, Output, PageResult};
use serde_json::{Map, Value as Json};

use crate::cache::SchemaKey;
use crate::resolve::{self, RequestCtx, SelNode};

/// Plans kept by default.
pub const DEFAULT_PLAN_CAPACITY: usize = 1024;

/// Which root field a plan answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RootKind {
    /// `leads(...)`.
    List,
    /// `leadsConnection(...)`.
    Connection,
    /// `lead(where:)`.
    One,
}

struct Root {
    key: String,
    kind: RootKind,
    model: Arc<Model>,
    field: Field,
}

/// An operation answered without the executor. It holds no schema (tenant schemas are several
/// MiB; the schema cache decides how many live): its key names the schema by its cache key.
pub(crate) struct Plan {
    catalog: Arc<Catalog>,
    variables: Vec<(Name, Type, Option<ConstValue>)>,
    roots: Vec<Root>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PlanKey {
    schema: SchemaKey,
    roles: String,
    query: String,
    operation: Option<String>,
}

/// The plans with when each was last used, and the clock that counts uses.
type Kept = (HashMap<PlanKey, (Arc<Plan>, u64)>, u64);

/// The kept plans, least recently used first out.
pub(crate) struct Plans {
    inner: Mutex<Kept>,
    capacity: usize,
}

impl std::fmt::Debug for Plans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plans").field("capacity", &self.capacity).finish_non_exhaustive()
    }
}

fn key(schema: &SchemaKey, roles: &str, query: &str, operation: Option<&str>) -> PlanKey {
    PlanKey { schema: schema.clone(), roles: roles.to_owned(), query: query.to_owned(), operation: operation.map(str::to_owned) }
}

impl Plans {
    pub(crate) fn new(capacity: usize) -> Plans {
        Plans { inner: Mutex::new((HashMap::new(), 0)), capacity }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The plan of an operation, if kept.
    pub(crate) fn get(&self, schema: &SchemaKey, roles: &str, query: &str, operation: Option<&str>) -> Option<Arc<Plan>> {
        let k = key(schema, roles, query, operation);
        let mut inner = self.lock();
        inner.1 += 1;
        let now = inner.1;
        inner.0.get_mut(&k).map(|(p, used)| {
            *used = now;
            Arc::clone(p)
        })
    }

    /// Keeps the plan of an operation that just succeeded, when it has a plannable shape.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn learn(
        &self,
        key_of_schema: &SchemaKey,
        schema: &Schema,
        catalog: &Arc<Catalog>,
        roles: &str,
        query: &str,
        operation: Option<&str>,
        doc: &ExecutableDocument,
    ) {
        if self.capacity == 0 {
            return;
        }
        let Some(plan) = Plan::build(schema, catalog, doc, operation) else { return };
        let k = key(key_of_schema, roles, query, operation);
        let mut inner = self.lock();
        inner.1 += 1;
        let now = inner.1;
        if inner.0.len() >= self.capacity
            && !inner.0.contains_key(&k)
            && let Some(oldest) = inner.0.iter().min_by_key(|(_, (_, used))| *used).map(|(k, _)| k.clone())
        {
            inner.0.remove(&oldest);
        }
        inner.0.insert(k, (Arc::new(plan), now));
    }
}

fn operation<'d>(doc: &'d ExecutableDocument, name: Option<&str>) -> Option<&'d OperationDefinition> {
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => Some(&op.node),
        (DocumentOperations::Multiple(ops), Some(n)) => ops.get(n).map(|o| &o.node),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next().map(|o| &o.node),
        _ => None,
    }
}

/// Whether the fields of a selection set have distinct response keys (the executor merges
/// repeated ones; a plan leaves them to it).
fn distinct_keys(f: &Field) -> bool {
    let mut seen = std::collections::HashSet::new();
    f.selection_set.node.items.iter().all(|s| match &s.node {
        Selection::Field(c) => seen.insert(c.node.alias.as_ref().unwrap_or(&c.node.name).node.as_str()),
        _ => false,
    })
}

/// Whether a model object's selection can be written from its row: scalar leaves (not money),
/// `__typename`, nested to-one objects and nested to-many lists; no fragments or directives.
fn plain_object(cat: &Catalog, model: &Model, f: &Field) -> bool {
    distinct_keys(f)
        && f.selection_set.node.items.iter().all(|s| match &s.node {
            Selection::Field(c) => {
                let c = &c.node;
                if !c.directives.is_empty() {
                    return false;
                }
                let name = c.name.node.as_str();
                if name == "__typename" {
                    return true;
                }
                match model.field(name).map(|x| &x.kind) {
                    Some(FieldKind::Scalar(ScalarType::Money { .. }) | FieldKind::Polymorphic { .. }) | None => false,
                    Some(FieldKind::Scalar(_)) => c.selection_set.node.items.is_empty(),
                    Some(FieldKind::ToOne { target, .. } | FieldKind::ToMany { target, .. }) => {
                        cat.model(target.as_str()).is_some_and(|t| plain_object(cat, t, c))
                    }
                }
            }
            _ => false,
        })
}

/// Whether a connection's selection can be written from its page: `edges { cursor node }`,
/// `pageInfo`, `aggregate` (no `__typename`, fragments or directives).
fn plain_connection(cat: &Catalog, model: &Model, f: &Field) -> bool {
    let fields_only = |f: &Field, ok: &dyn Fn(&Field) -> bool| {
        distinct_keys(f)
            && f.selection_set
                .node
                .items
                .iter()
                .all(|s| matches!(&s.node, Selection::Field(c) if c.node.directives.is_empty() && ok(&c.node)))
    };
    // One `edges` with at most one `node`: the rows have one shape.
    let count = |f: &Field, name: &str| {
        f.selection_set.node.items.iter().filter(|s| matches!(&s.node, Selection::Field(c) if c.node.name.node.as_str() == name)).count()
    };
    let edges: Vec<&Field> = f
        .selection_set
        .node
        .items
        .iter()
        .filter_map(|s| match &s.node {
            Selection::Field(c) if c.node.name.node.as_str() == "edges" => Some(&c.node),
            _ => None,
        })
        .collect();
    if edges.len() > 1 || edges.iter().any(|e| count(e, "node") > 1) {
        return false;
    }
    fields_only(f, &|c| match c.name.node.as_str() {
        "edges" => fields_only(c, &|e| match e.name.node.as_str() {
            "cursor" => true,
            "node" => plain_object(cat, model, e),
            _ => false,
        }),
        "pageInfo" => fields_only(c, &|p| {
            matches!(p.name.node.as_str(), "hasNextPage" | "hasPreviousPage" | "startCursor" | "endCursor" | "pageSize")
        }),
        "aggregate" => {
            fields_only(c, &|a| a.name.node.as_str() != "__typename" && fields_only(a, &|x| x.name.node.as_str() != "__typename"))
        }
        _ => false,
    })
}

impl Plan {
    fn build(schema: &Schema, catalog: &Arc<Catalog>, doc: &ExecutableDocument, name: Option<&str>) -> Option<Plan> {
        if !doc.fragments.is_empty() {
            return None;
        }
        let op = operation(doc, name)?;
        if op.ty != OperationType::Query || !op.directives.is_empty() {
            return None;
        }
        let registry = schema.registry();
        let mut variables = Vec::with_capacity(op.variable_definitions.len());
        for v in &op.variable_definitions {
            let v = &v.node;
            if !plain_type(registry, &v.var_type.node) || !v.directives.is_empty() {
                return None;
            }
            variables.push((v.name.node.clone(), v.var_type.node.clone(), v.default_value.as_ref().map(|d| d.node.clone())));
        }
        let mut roots = Vec::new();
        let mut keys = Vec::new();
        for s in &op.selection_set.node.items {
            let Selection::Field(f) = &s.node else { return None };
            let f = &f.node;
            if !f.directives.is_empty() {
                return None;
            }
            let name = f.name.node.as_str();
            let (kind, model) = catalog.models().find_map(|m| {
                if m.plural == name {
                    Some((RootKind::List, Arc::clone(m)))
                } else if m.singular == name {
                    Some((RootKind::One, Arc::clone(m)))
                } else if name.strip_suffix("Connection") == Some(m.plural.as_str()) {
                    Some((RootKind::Connection, Arc::clone(m)))
                } else {
                    None
                }
            })?;
            let plain = match kind {
                RootKind::List | RootKind::One => plain_object(catalog, &model, f),
                RootKind::Connection => plain_connection(catalog, &model, f),
            };
            let key = f.alias.as_ref().map_or(name, |a| a.node.as_str()).to_owned();
            // Fields merged under one response key are left to the executor.
            if !plain || keys.contains(&key) {
                return None;
            }
            keys.push(key.clone());
            roots.push(Root { key, kind, model, field: f.clone() });
        }
        Some(Plan { catalog: Arc::clone(catalog), variables, roots })
    }

    /// The response body, or `None` to leave the request to the executor.
    pub(crate) async fn run(&self, rc: &RequestCtx, schema: &Schema, given: &Variables) -> Option<String> {
        let vars = self.variables(schema, given)?;
        let mut out = String::with_capacity(1024);
        out.push_str("{\"data\":{");
        for (i, root) in self.roots.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_key(&mut out, &root.key);
            let node = AstNode { field: &root.field, vars: &vars };
            let written = self.root(rc, root, &node, &mut out).await;
            if let Err(e) = written {
                tracing::debug!(error = %e, "plan fell back to the executor");
                return None;
            }
        }
        out.push_str("}}");
        Some(out)
    }

    async fn root(&self, rc: &RequestCtx, root: &Root, node: &AstNode<'_>, out: &mut String) -> Result<(), OrmError> {
        let cat = &self.catalog;
        let args = node.args()?;
        let model = &root.model;
        match root.kind {
            RootKind::List => {
                let mut read = resolve::list_read_of(cat, model, &args, node)?;
                shape(cat, model, &mut read.select, node);
                let page = rc.engine.read_text(&rc.access.scope(cat, &model.name, Op::Read, read)?).await?;
                push_rows(&page.rows, out);
            }
            RootKind::One => {
                let mut read = resolve::one_read_of(cat, model, &args, node)?;
                shape(cat, model, &mut read.select, node);
                let page = rc.engine.read_text(&rc.access.scope(cat, &model.name, Op::Read, read)?).await?;
                out.push_str(page.rows.first().map_or("null", String::as_str));
            }
            RootKind::Connection => {
                let mut read = resolve::connection_read_of(cat, model, &args, node)?;
                let rows_node = node
                    .children()
                    .into_iter()
                    .find(|c| c.name() == "edges")
                    .and_then(|e| e.children().into_iter().find(|n| n.name() == "node"));
                if let Some(n) = &rows_node {
                    shape(cat, model, &mut read.select, n);
                }
                let page = rc.engine.read_text(&rc.access.scope(cat, &model.name, Op::Read, read)?).await?;
                write_connection(&page, node, out);
            }
        }
        Ok(())
    }

    /// The variables with their defaults, when every one fits its declared type.
    fn variables(&self, schema: &Schema, given: &Variables) -> Option<Variables> {
        let mut out = Variables::default();
        for (name, ty, default) in &self.variables {
            let value = given.get(name).cloned().or_else(|| default.clone());
            match value {
                Some(v) => {
                    if !fits(schema.registry(), ty, &v) {
                        return None;
                    }
                    out.insert(name.clone(), v);
                }
                None if ty.nullable => {}
                None => return None,
            }
        }
        Some(out)
    }
}

/// A variable type a plan checks itself: built-in scalars and enums, in lists or not.
fn plain_type(registry: &async_graphql::registry::Registry, ty: &Type) -> bool {
    match &ty.base {
        BaseType::List(inner) => plain_type(registry, inner),
        BaseType::Named(n) => {
            matches!(n.as_str(), "String" | "ID" | "Int" | "Float" | "Boolean")
                || matches!(registry.types.get(n.as_str()), Some(MetaType::Enum { .. }))
        }
    }
}

/// Whether `v` is a valid input value of `ty` (as GraphQL coerces variables).
fn fits(registry: &async_graphql::registry::Registry, ty: &Type, v: &ConstValue) -> bool {
    if matches!(v, ConstValue::Null) {
        return ty.nullable;
    }
    match &ty.base {
        BaseType::List(inner) => match v {
            ConstValue::List(items) => items.iter().all(|i| fits(registry, inner, i)),
            one => fits(registry, inner, one),
        },
        BaseType::Named(n) => match (n.as_str(), v) {
            ("String", ConstValue::String(_)) | ("Boolean", ConstValue::Boolean(_)) => true,
            ("ID", ConstValue::String(_)) => true,
            ("ID" | "Int", ConstValue::Number(x)) => x.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
            ("Float", ConstValue::Number(_)) => true,
            (name, ConstValue::String(s)) => is_enum_value(registry, name, s),
            (name, ConstValue::Enum(s)) => is_enum_value(registry, name, s.as_str()),
            _ => false,
        },
    }
}

fn is_enum_value(registry: &async_graphql::registry::Registry, ty: &str, value: &str) -> bool {
    matches!(registry.types.get(ty), Some(MetaType::Enum { enum_values, .. }) if enum_values.contains_key(value))
}

/// A field of the document, with the request's variables: what the plan compiles into IR the
/// way the resolvers compile async-graphql's selection.
pub(crate) struct AstNode<'a> {
    field: &'a Field,
    vars: &'a Variables,
}

impl SelNode for AstNode<'_> {
    fn name(&self) -> &str {
        self.field.name.node.as_str()
    }
    fn alias(&self) -> Option<&str> {
        self.field.alias.as_ref().map(|a| a.node.as_str())
    }
    fn children(&self) -> Vec<Self> {
        self.field
            .selection_set
            .node
            .items
            .iter()
            .filter_map(|s| match &s.node {
                Selection::Field(f) => Some(AstNode { field: &f.node, vars: self.vars }),
                _ => None,
            })
            .collect()
    }
    fn args(&self) -> Result<Map<String, Json>, OrmError> {
        let mut out = Map::new();
        for (n, v) in &self.field.arguments {
            let c = v
                .node
                .clone()
                .into_const_with(|var| Ok::<_, std::convert::Infallible>(self.vars.get(&var).cloned().unwrap_or(ConstValue::Null)));
            let c = c.unwrap_or(ConstValue::Null);
            // An argument given as an absent variable is absent.
            if !matches!(c, ConstValue::Null) {
                out.insert(n.node.to_string(), c.into_json().map_err(|e| OrmError::Internal(e.to_string()))?);
            }
        }
        Ok(out)
    }
    fn skipped(&self) -> bool {
        false
    }
}

fn push_key(out: &mut String, key: &str) {
    push_json(out, &Json::String(key.to_owned()));
    out.push(':');
}

fn push_json(out: &mut String, v: &Json) {
    // Writing JSON into a String cannot fail.
    let _ = write!(out, "{v}");
}

fn response_key<'f>(f: &'f AstNode<'_>) -> &'f str {
    f.alias().unwrap_or_else(|| f.name())
}

/// Sets the response shape of `sel` (and of its nested selections) from the document: the
/// database then writes each row as the response object.
fn shape(cat: &Catalog, model: &Model, sel: &mut crm_orm::Selection, node: &AstNode<'_>) {
    let mut output = Vec::new();
    for c in node.children() {
        let key = response_key(&c).to_owned();
        if c.name() == "__typename" {
            output.push(Output::Typename { key });
            continue;
        }
        // Fields of no model field were refused when the plan was made.
        if let Some(f) = model.field(c.name()) {
            match &f.kind {
                FieldKind::ToOne { target, .. } | FieldKind::ToMany { target, .. } => {
                    if let (Some(n), Some(t)) = (sel.nested.iter_mut().find(|n| n.key == key), cat.model(target.as_str())) {
                        shape(cat, t, &mut n.select, &c);
                    }
                    output.push(Output::Nested(key));
                }
                _ => output.push(Output::Field { key, field: f.name.clone() }),
            }
        }
    }
    sel.output = Some(output);
}

/// Rows written as response objects, as a JSON array.
fn push_rows(rows: &[String], out: &mut String) {
    out.push('[');
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(row);
    }
    out.push(']');
}

/// Projects a JSON object (page info, aggregate) onto a selection.
fn write_projection(v: &Json, node: &AstNode<'_>, out: &mut String) {
    out.push('{');
    for (i, c) in node.children().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_key(out, response_key(c));
        match v.get(c.name()) {
            Some(x) if x.is_object() && !c.field.selection_set.node.items.is_empty() => write_projection(x, c, out),
            Some(x) => push_json(out, x),
            None => out.push_str("null"),
        }
    }
    out.push('}');
}

fn write_connection(page: &PageResult<String>, node: &AstNode<'_>, out: &mut String) {
    let mut cursors = page.cursors.iter();
    let edges: Vec<(Option<&String>, &String)> = page.rows.iter().map(|r| (cursors.next(), r)).collect();
    out.push('{');
    for (i, c) in node.children().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_key(out, response_key(c));
        match c.name() {
            "edges" => {
                out.push('[');
                for (j, (cursor, row)) in edges.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    out.push('{');
                    for (k, e) in c.children().iter().enumerate() {
                        if k > 0 {
                            out.push(',');
                        }
                        push_key(out, response_key(e));
                        if e.name() == "node" {
                            out.push_str(row);
                        } else {
                            push_json(out, &cursor.map_or(Json::Null, |s| Json::String(s.clone())));
                        }
                    }
                    out.push('}');
                }
                out.push(']');
            }
            "pageInfo" => write_projection(&resolve::page_info_of(page), c, out),
            _ => match &page.aggregate {
                Some(a) => write_projection(a, c, out),
                None => out.push_str("null"),
            },
        }
    }
    out.push('}');
}
