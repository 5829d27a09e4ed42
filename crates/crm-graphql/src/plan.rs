//! Plans: a query operation seen before is answered without the GraphQL executor.
//!
//! The first time a (schema, roles, document, operation) runs, it is parsed (by the document
//! guard), validated and executed as usual. If it succeeded and its shape is one a plan can answer (root
//! lists, connections and single records of models, with scalar fields, nested to-one
//! objects and nested to-many lists below them: no fragments, no directives, no input-object
//! variables), the operation is kept as a [`Plan`]. The next requests for it skip parsing,
//! validation and the per-field resolvers: their variables are checked against the declared
//! types here, and each root field is read with one statement, its rows shaped as the response
//! wants them (`Selection::output`: response keys in selection order), so each row's JSON is
//! copied into the response body as it is, never decoded.
//!
//! Each root field's read is also compiled ([`CompiledRead`]) per principal and per value of
//! its structural variables (those that change the SQL, such as a page size or an ordering):
//! a request then only binds its variables to the statement's parameters, without building
//! the IR, the scope or the SQL again. Variables whose values are unbounded (text, ids, lists)
//! and structural (a cursor, a text pattern) are not compiled for: those requests build their
//! read, as do operations whose inputs a compiled read refuses. Anything unexpected on the way
//! (a variable of the wrong type, a bad argument, a database error) falls back to the full
//! executor, so errors keep their exact form.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use apollo_compiler::Schema;
use apollo_compiler::schema::ExtendedType;
use async_graphql::parser::types::{
    BaseType, DocumentOperations, ExecutableDocument, Field, OperationDefinition, OperationType, Selection, Type,
};
use async_graphql::{Name, Value as ConstValue, Variables};
use crm_model::{Catalog, FieldKind, Model, ScalarType};
use crm_orm::{Access, CompiledRead, Op, OrmError, Output, PageResult, Read, ReadStatement, Scoped};
use serde_json::{Map, Value as Json};

use crate::cache::SchemaKey;
use crate::connection::page_info_of;
use crate::lru::Lru;
use crate::request::RequestCtx;
use crate::selection::{self, SelNode};

/// Plans kept by default.
pub const DEFAULT_PLAN_CAPACITY: usize = 16_384;

/// Compiled reads kept by default (one per plan root, principal and value of its structural
/// variables; a few KiB each).
pub const DEFAULT_STATEMENT_CAPACITY: usize = 16_384;

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
    /// Per set of variables given (not null, as bits by position): which variables are
    /// structural for this root's compiled reads, learnt from the first compilation (their
    /// values are part of the key of its compiled reads); `None` when its reads are not
    /// compiled (a later compilation found a variable structural that the first did not: the
    /// key would not tell its reads apart).
    structural: Mutex<HashMap<u64, Option<Arc<[bool]>>>>,
}

/// An operation answered without the executor. It holds no schema (tenant schemas are several
/// MiB; the schema cache decides how many live): its key names the schema by its cache key.
pub(crate) struct Plan {
    /// Tells this plan's compiled reads from other plans'.
    id: u64,
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

/// Which compiled read answers a plan root for a principal and the values of its structural
/// variables.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct StatementKey {
    plan: u64,
    root: usize,
    /// The variables given (see [`Root::structural`]).
    given: u64,
    /// A hash of the principal (its tenant, subject and read tenants; a compiled read checks
    /// them itself on every bind).
    principal: u64,
    /// The structural variables' values, as JSON.
    structural: String,
}

/// The kept plans and compiled reads, least recently used first out.
pub(crate) struct Plans {
    plans: Lru<PlanKey, Arc<Plan>>,
    statements: Lru<StatementKey, Arc<CompiledRead>>,
}

impl std::fmt::Debug for Plans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plans").field("plans", &self.plans).field("statements", &self.statements).finish()
    }
}

fn key(schema: &SchemaKey, roles: &str, query: &str, operation: Option<&str>) -> PlanKey {
    PlanKey { schema: schema.clone(), roles: roles.to_owned(), query: query.to_owned(), operation: operation.map(str::to_owned) }
}

impl Plans {
    pub(crate) fn new(capacity: usize, statements: usize) -> Plans {
        Plans { plans: Lru::new(capacity), statements: Lru::new(statements) }
    }

    /// The compiled reads kept.
    pub(crate) fn compiled_reads(&self) -> usize {
        self.statements.len()
    }

    /// The plan of an operation, if kept.
    pub(crate) fn get(&self, schema: &SchemaKey, roles: &str, query: &str, operation: Option<&str>) -> Option<Arc<Plan>> {
        self.plans.get(&key(schema, roles, query, operation))
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
        if !self.plans.keeps() {
            return;
        }
        let Some(plan) = Plan::build(schema, catalog, doc, operation) else { return };
        self.plans.insert(key(key_of_schema, roles, query, operation), Arc::new(plan));
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

/// The ids of plans, each unique in the process (the statement cache keys by it).
static PLAN_IDS: AtomicU64 = AtomicU64::new(0);

impl Plan {
    fn build(schema: &Schema, catalog: &Arc<Catalog>, doc: &ExecutableDocument, name: Option<&str>) -> Option<Plan> {
        if !doc.fragments.is_empty() {
            return None;
        }
        let op = operation(doc, name)?;
        if op.ty != OperationType::Query || !op.directives.is_empty() {
            return None;
        }
        let mut variables = Vec::with_capacity(op.variable_definitions.len());
        for v in &op.variable_definitions {
            let v = &v.node;
            if !plain_type(schema, &v.var_type.node) || !v.directives.is_empty() {
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
                if m.api.list == name {
                    Some((RootKind::List, Arc::clone(m)))
                } else if m.api.one == name {
                    Some((RootKind::One, Arc::clone(m)))
                } else if m.api.list_connection == name {
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
            roots.push(Root { key, kind, model, field: f.clone(), structural: Mutex::new(HashMap::new()) });
        }
        Some(Plan { id: PLAN_IDS.fetch_add(1, Ordering::Relaxed), catalog: Arc::clone(catalog), variables, roots })
    }

    /// The response body, or `None` to leave the request to the executor.
    pub(crate) async fn run(&self, plans: &Plans, rc: &RequestCtx, schema: &Schema, given: &crate::Variables) -> Option<String> {
        let vars = self.variables(schema, given)?;
        let inputs = self.inputs(&vars);
        let mut out = String::with_capacity(1024);
        out.push_str("{\"data\":{");
        for (i, root) in self.roots.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_key(&mut out, &root.key);
            let node = AstNode { field: &root.field, vars: &vars };
            let page = match self.compiled(plans, rc, i, &inputs) {
                Some(statement) => rc.store.run_read(statement).await,
                None => match self.read_of(rc, root, &vars) {
                    Ok(q) => rc.store.read_text(&q).await,
                    Err(e) => Err(e),
                },
            };
            match page {
                Ok(page) => write_root(root.kind, &page, &node, &mut out),
                Err(e) => {
                    tracing::debug!(error = %e, "plan fell back to the executor");
                    return None;
                }
            }
        }
        out.push_str("}}");
        Some(out)
    }

    /// The scoped read of a root field with these variables: the IR the resolvers would build,
    /// with the rows shaped as the response wants them.
    fn read_of(&self, rc: &RequestCtx, root: &Root, vars: &Variables) -> Result<Scoped<Read>, OrmError> {
        let cat = &self.catalog;
        let model = &root.model;
        let node = AstNode { field: &root.field, vars };
        let args = node.args()?;
        let read = match root.kind {
            RootKind::List => {
                let mut read = selection::list_read_of(cat, model, &args, &node)?;
                shape(cat, model, &mut read.select, &node);
                read
            }
            RootKind::One => {
                let mut read = selection::one_read_of(cat, model, &args, &node)?;
                shape(cat, model, &mut read.select, &node);
                read
            }
            RootKind::Connection => {
                let mut read = selection::connection_read_of(cat, model, &args, &node)?;
                let rows_node = node
                    .children()
                    .into_iter()
                    .find(|c| c.name() == "edges")
                    .and_then(|e| e.children().into_iter().find(|n| n.name() == "node"));
                if let Some(n) = &rows_node {
                    shape(cat, model, &mut read.select, n);
                }
                read
            }
        };
        rc.access.scope(cat, &model.name, Op::Read, read)
    }

    /// The variables' values in declared order (null when absent): a compiled read's inputs.
    fn inputs(&self, vars: &Variables) -> Vec<Json> {
        self.variables.iter().map(|(name, _, _)| vars.get(name).and_then(|v| v.clone().into_json().ok()).unwrap_or(Json::Null)).collect()
    }

    /// Variables from inputs (see [`Self::inputs`]).
    fn vars_of(&self, inputs: &[Json]) -> Variables {
        let mut vars = Variables::default();
        for ((name, _, _), v) in self.variables.iter().zip(inputs) {
            if !v.is_null()
                && let Ok(c) = ConstValue::from_json(v.clone())
            {
                vars.insert(name.clone(), c);
            }
        }
        vars
    }

    /// The statements of root `i` bound to `inputs`, from its compiled read (compiled now if
    /// need be); `None` to build the read instead (it is not compiled, or these inputs are
    /// not ones it serves, or building fails: building again reports that).
    fn compiled(&self, plans: &Plans, rc: &RequestCtx, i: usize, inputs: &[Json]) -> Option<ReadStatement> {
        let root = self.roots.get(i)?;
        if !plans.statements.keeps() || inputs.len() > 64 {
            return None;
        }
        let given = inputs.iter().enumerate().filter(|(_, v)| !v.is_null()).fold(0u64, |bits, (j, _)| bits | (1 << j));
        let key = |structural: &[bool]| -> Option<StatementKey> {
            // A structural variable of unbounded values (text, ids, lists) would fill the cache
            // with reads used once: those requests build their reads.
            let unbounded = structural.iter().zip(inputs).zip(&self.variables).any(|((s, v), (_, ty, _))| {
                *s && !v.is_null()
                    && (matches!(ty.base, BaseType::List(_)) || matches!(&ty.base, BaseType::Named(n) if n == "String" || n == "ID"))
            });
            if unbounded {
                return None;
            }
            let values: Vec<Json> = structural.iter().zip(inputs).filter(|(s, _)| **s).map(|(_, v)| v.clone()).collect();
            Some(StatementKey {
                plan: self.id,
                root: i,
                given,
                principal: principal_hash(&rc.access),
                structural: Json::from(values).to_string(),
            })
        };
        let masks = || root.structural.lock().unwrap_or_else(PoisonError::into_inner);
        let known = masks().get(&given).cloned();
        match known {
            Some(None) => return None,
            Some(Some(structural)) => {
                if let Some(c) = plans.statements.get(&key(&structural)?) {
                    return c.bind(&rc.access, inputs);
                }
            }
            None => {}
        }
        let compiled = rc.store.compile_read(inputs, |ins| self.read_of(rc, root, &self.vars_of(ins))).ok()??;
        let structural = masks().entry(given).or_insert_with(|| Some(compiled.structural().into())).clone()?;
        if compiled.structural().iter().zip(structural.iter()).any(|(now, first)| *now && !*first) {
            masks().insert(given, None);
            return None;
        }
        let k = key(&structural)?;
        let statement = compiled.bind(&rc.access, inputs);
        plans.statements.insert(k, Arc::new(compiled));
        statement
    }

    /// The variables with their defaults, when every one fits its declared type.
    /// Only the declared variables are converted from the request's JSON.
    fn variables(&self, schema: &Schema, given: &crate::Variables) -> Option<Variables> {
        let mut out = Variables::default();
        for (name, ty, default) in &self.variables {
            let value = match given.as_map().get(name.as_str()) {
                Some(v) => Some(ConstValue::from_json(v.clone()).ok()?),
                None => default.clone(),
            };
            match value {
                Some(v) => {
                    if !fits(schema, ty, &v) {
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

/// Writes a root field's value from its page.
fn write_root(kind: RootKind, page: &PageResult<String>, node: &AstNode<'_>, out: &mut String) {
    match kind {
        RootKind::List => push_rows(&page.rows, out),
        RootKind::One => out.push_str(page.rows.first().map_or("null", String::as_str)),
        RootKind::Connection => write_connection(page, node, out),
    }
}

/// A hash of whom a compiled read serves (see [`StatementKey::principal`]).
fn principal_hash(a: &Access) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    (a.org().as_str(), a.actor()).hash(&mut h);
    for o in a.read_orgs() {
        o.as_str().hash(&mut h);
    }
    h.finish()
}

/// A variable type a plan checks itself: built-in scalars and enums, in lists or not.
fn plain_type(schema: &Schema, ty: &Type) -> bool {
    match &ty.base {
        BaseType::List(inner) => plain_type(schema, inner),
        BaseType::Named(n) => {
            matches!(n.as_str(), "String" | "ID" | "Int" | "Long" | "Float" | "Boolean")
                || matches!(schema.types.get(n.as_str()), Some(ExtendedType::Enum(_)))
        }
    }
}

/// Whether `v` is a valid input value of `ty` (as GraphQL coerces variables).
fn fits(schema: &Schema, ty: &Type, v: &ConstValue) -> bool {
    if matches!(v, ConstValue::Null) {
        return ty.nullable;
    }
    match &ty.base {
        BaseType::List(inner) => match v {
            ConstValue::List(items) => items.iter().all(|i| fits(schema, inner, i)),
            one => fits(schema, inner, one),
        },
        BaseType::Named(n) => match (n.as_str(), v) {
            ("String", ConstValue::String(_)) | ("Boolean", ConstValue::Boolean(_)) => true,
            ("ID", ConstValue::String(_)) => true,
            ("ID" | "Int", ConstValue::Number(x)) => x.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
            ("Long", ConstValue::Number(x)) => x.as_i64().is_some(),
            ("Float", ConstValue::Number(_)) => true,
            (name, ConstValue::String(s)) => is_enum_value(schema, name, s),
            (name, ConstValue::Enum(s)) => is_enum_value(schema, name, s.as_str()),
            _ => false,
        },
    }
}

fn is_enum_value(schema: &Schema, ty: &str, value: &str) -> bool {
    matches!(schema.types.get(ty), Some(ExtendedType::Enum(e)) if e.values.contains_key(value))
}

/// A field of the document (the guard's parse), with the request's variables: what the plan
/// compiles into IR the way the root fields compile the executor's selection.
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
                out.insert(n.node.to_string(), c.into_json().map_err(|e| OrmError::invariant(e.to_string()))?);
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
    out.reserve(rows.iter().map(|r| r.len() + 1).sum::<usize>() + 2);
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
            "pageInfo" => write_projection(&page_info_of(page), c, out),
            _ => match &page.aggregate {
                Some(a) => write_projection(a, c, out),
                None => out.push_str("null"),
            },
        }
    }
    out.push('}');
}
