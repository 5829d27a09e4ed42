//! The GraphQL schema of a catalog as data: apollo-compiler's [`Schema`], which validation,
//! introspection and execution read.
//!
//! Type definitions are reference-counted ([`apollo_compiler::Node`]), so schemas can share
//! them. The base catalog's schema is built once ([`generate`]); a tenant's schema
//! ([`Derived::tenant`]) starts from it and holds new definitions only where the tenant's catalog
//! makes them differ: the types of the models it changed (and of each changed type, only its
//! changed fields and values), its custom objects' types, and the root fields those add. A
//! tenant with three custom fields on Lead so costs the Lead types' field maps and the new
//! fields, not a copy of every model.

mod build;
mod model;
mod platform;
mod shared;

use std::sync::Arc;

use apollo_compiler::collections::IndexMap;
use apollo_compiler::schema::{Component, ExtendedType, SchemaDefinition};
use apollo_compiler::validation::Valid;
use apollo_compiler::{Name, Node, Schema};
use crm_model::api::builtin::{AUDIT_ENTRY, MUTATION, NODE, QUERY, SUBSCRIPTION};
use crm_model::api::roots;
use crm_model::{Catalog, Model};

use self::build::{Arg, Fld, Obj, name, named, nn, nn_list_nn};
use crate::error::GraphqlError;

const INT: &str = "Int";
const FLOAT: &str = "Float";
const STRING: &str = "String";
const BOOLEAN: &str = "Boolean";
const ID: &str = "ID";

/// Every name the catalog gives `m` (model, fields, options and the API names derived from
/// them) must be a GraphQL name: the generator builds every other name from these.
fn check_names(m: &Model) -> Result<(), GraphqlError> {
    let bad = |n: &str| GraphqlError::Schema(format!("`{n}` of model {} is not a GraphQL name", m.name));
    let api = &m.api;
    let derived = [&api.object, &api.one, &api.list, &api.list_connection, &api.where_input, &api.create_input, &api.connection];
    for n in derived.into_iter().map(String::as_str).chain(m.fields.keys().map(crm_model::FieldName::as_str)) {
        if !Name::is_valid_syntax(n) {
            return Err(bad(n));
        }
    }
    for f in m.fields.values() {
        if let crm_model::FieldKind::Scalar(crm_model::ScalarType::Select(opts) | crm_model::ScalarType::MultiSelect(opts)) = &f.kind
            && let Some(o) = opts.iter().find(|o| !Name::is_valid_syntax(o.as_str()))
        {
            return Err(bad(o.as_str()));
        }
    }
    Ok(())
}

/// The root fields of `m` on Query and Mutation.
fn model_roots(m: &Model, query: Obj, mutation: Obj) -> (Obj, Obj) {
    let api = &m.api;
    let unique = || Arg::new("where", nn(&api.where_unique_input));
    let mut query = query
        .field(
            Fld::new(&api.one, named(&api.object))
                .describe(&format!("One {} by id or a unique field; null when there is none the caller may read.", m.name))
                .arg(unique()),
        )
        .field(model::list_args(m, Fld::new(&api.list, nn_list_nn(&api.object)).describe(&format!("A page of {} records.", m.name))))
        .field(model::list_args(
            m,
            Fld::new(&api.list_connection, nn(&api.connection))
                .describe(&format!("A page of {} records with cursors, page info and aggregates.", m.name)),
        ))
        .field(model::list_args(
            m,
            Fld::new(&api.trash, nn_list_nn(&api.object))
                .describe(&format!("{} records in the trash (deleted, restorable), newest first unless ordered.", m.name)),
        ));
    if m.fields.values().any(crm_orm::groupable) {
        query = query.field(
            Fld::new(&api.list_group_by, nn_list_nn(&api.group_by))
                .describe(&format!(
                    "{} records grouped by fields, with counts and numeric aggregates per group, ordered by the keys.",
                    m.name
                ))
                .arg(Arg::new("where", named(&api.where_input)))
                .arg(Arg::new("by", nn_list_nn(&api.group_by_field)))
                .arg(Arg::new("first", named(INT)))
                .arg(Arg::new("skip", named(INT))),
        );
    }
    let version = || Arg::new("expectedVersion", named(INT));
    let mut mutation = mutation
        .field(
            Fld::new(&api.create, named(&api.object))
                .describe(&format!("Creates a {} (with nested relation writes).", m.name))
                .arg(Arg::new("data", nn(&api.create_input))),
        )
        .field(
            Fld::new(&api.update, named(&api.object))
                .describe(&format!("Updates a {}; with `expectedVersion`, fails with CONFLICT unless it is the stored version.", m.name))
                .arg(unique())
                .arg(Arg::new("data", nn(&api.update_input)))
                .arg(version()),
        )
        .field(
            Fld::new(&api.delete, named(&api.object))
                .describe(&format!("Deletes a {} and returns it as it was.", m.name))
                .arg(unique())
                .arg(version()),
        )
        .field(Fld::new(&api.restore, named(&api.object)).describe(&format!("Takes a {} out of the trash.", m.name)).arg(unique()))
        .field(
            Fld::new(&api.destroy, named(&api.object))
                .describe(&format!("Removes a {} for good (from the trash or not) and returns it as it was.", m.name))
                .arg(unique()),
        )
        .field(
            Fld::new(&api.upsert, named(&api.object))
                .describe(&format!("Updates the {} `where` names, or creates it.", m.name))
                .arg(unique())
                .arg(Arg::new("upsert", nn(&api.upsert_input))),
        )
        .field(model::page_args(
            Fld::new(&api.delete_many, nn(&api.connection))
                .describe(&format!("Deletes every {} matching `where` (within the page given) and returns them as they were.", m.name))
                .arg(Arg::new("where", named(&api.many_where_input))),
        ));
    if m.fields.values().any(|f| !f.system && model::input_type(m, f, false).is_some()) {
        mutation = mutation.field(model::page_args(
            Fld::new(&api.update_many, nn(&api.connection))
                .describe(&format!("Updates every {} matching `where` (within the page given) and returns them.", m.name))
                .arg(Arg::new("where", named(&api.many_where_input)))
                .arg(Arg::new("data", nn(&api.update_many_input))),
        ));
    }
    (query, mutation)
}

/// The schema of `catalog`, every definition its own.
///
/// # Errors
/// A name GraphQL refuses (the catalog's checks make this unreachable for resolved catalogs).
pub fn generate(catalog: &Catalog) -> Result<Valid<Schema>, GraphqlError> {
    let mut types = shared::types();
    let roots = roots(catalog, &mut types, &|_| true)?;
    let mut schema = Schema::new();
    let definition = SchemaDefinition {
        query: Some(name(QUERY).into()),
        mutation: roots.mutation.is_some().then(|| name(MUTATION).into()),
        subscription: Some(name(SUBSCRIPTION).into()),
        ..SchemaDefinition::default()
    };
    schema.schema_definition = Node::new(definition);
    for t in types.into_iter().chain([roots.query]).chain(roots.mutation).chain([roots.subscription]) {
        schema.types.insert(t.name().clone(), t);
    }
    Ok(Valid::assume_valid(schema))
}

/// The root operation types of a catalog's schema.
struct Roots {
    query: ExtendedType,
    /// `None` when nothing can be written.
    mutation: Option<ExtendedType>,
    /// A change feed per model.
    subscription: ExtendedType,
}

/// The root types of `catalog`'s schema, with the types of the models `with_types` names and
/// the platform's types added to `types`.
fn roots(catalog: &Catalog, types: &mut Vec<ExtendedType>, with_types: &dyn Fn(&Model) -> bool) -> Result<Roots, GraphqlError> {
    let mut query = Obj::new(QUERY).describe("Reads. Every result is confined to the caller's tenant and roles.").field(
        Fld::new(roots::NODE, named(NODE))
            .describe("Any record of the caller's tenant by id; null when there is none the caller may read.")
            .arg(Arg::new("id", nn(ID))),
    );
    let mut mutation = Obj::new(MUTATION).describe("Writes. Each mutation is one transaction.");
    let mut subscription = Obj::new(SUBSCRIPTION)
        .describe("Live changes, over WebSocket (graphql-transport-ws on /graphql), confined to the caller's tenant and roles like reads.");
    for m in catalog.models() {
        if with_types(m) {
            check_names(m)?;
            types.extend(model::types(catalog, m));
        }
        (query, mutation) = model_roots(m, query, mutation);
        subscription = subscription.field(
            Fld::new(&m.api.changed, nn(&m.api.change))
                .describe(&format!(
                    "Each committed change of a {} record the caller may read and `where` matches (a deletion: of a record this subscription delivered).",
                    m.name
                ))
                .arg(Arg::new("where", named(&m.api.where_input))),
        );
    }
    query = query.field(
        Fld::new(roots::AUDIT_LOG, nn_list_nn(AUDIT_ENTRY))
            .describe("The newest entries of the tenant's audit log: deletions, restores, destructions, metadata changes (roles with the audit right).")
            .arg(Arg::new("model", named(STRING)).describe("Only entries about this model."))
            .arg(Arg::new("first", named(INT)).describe("Most entries (default 50).")),
    );
    (query, mutation) = platform::metadata(types, query, mutation);
    if crm_engines::rows::MODELS.iter().all(|m| catalog.model(m).is_some()) {
        (query, mutation) = platform::engines(types, query, mutation);
    }
    if catalog.model(<crm_engines::rows::Attachment as crm_engines::rows::Record>::MODEL).is_some() {
        (query, mutation) = platform::files(types, query, mutation);
    }
    Ok(Roots { query: query.done(), mutation: mutation.has_fields().then(|| mutation.done()), subscription: subscription.done() })
}

/// A base catalog with its schema: what tenants' schemas are derived from.
#[derive(Debug)]
pub struct Derived {
    catalog: Arc<Catalog>,
    schema: Arc<Valid<Schema>>,
}

impl Derived {
    /// The base schema of `catalog`.
    ///
    /// # Errors
    /// See [`generate`].
    pub fn base(catalog: Arc<Catalog>) -> Result<Derived, GraphqlError> {
        let schema = Arc::new(generate(&catalog)?);
        Ok(Derived { catalog, schema })
    }

    /// The base schema.
    #[must_use]
    pub fn schema(&self) -> &Arc<Valid<Schema>> {
        &self.schema
    }

    /// The base catalog.
    #[must_use]
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// An estimate of the bytes `schema` (derived by [`Derived::tenant`]) and `catalog` hold of
    /// their own, beyond what they share with the base: the map of types, the field maps of the
    /// types it changed, its new definitions and its changed models. Within about 10% of what
    /// the allocator counts (`examples/tenant_memory.rs` prints both).
    #[must_use]
    pub fn own_bytes(&self, schema: &Schema, catalog: &Catalog) -> usize {
        const ENTRY: usize = 64;
        const DEFINITION: usize = 320;
        const FIELD: usize = 640;
        let base = &self.schema;
        let mut bytes = schema.types.len() * ENTRY;
        for (name, ty) in &schema.types {
            let old = base.types.get(name);
            if old.is_some_and(|o| same_node(o, ty)) {
                continue;
            }
            let (own, total) = match (ty, old) {
                (ExtendedType::Object(t), Some(ExtendedType::Object(o))) => own_entries(&t.fields, Some(&o.fields)),
                (ExtendedType::InputObject(t), Some(ExtendedType::InputObject(o))) => own_entries(&t.fields, Some(&o.fields)),
                (ExtendedType::Enum(t), Some(ExtendedType::Enum(o))) => own_entries(&t.values, Some(&o.values)),
                (ExtendedType::Object(t), _) => own_entries(&t.fields, None),
                (ExtendedType::InputObject(t), _) => own_entries(&t.fields, None),
                (ExtendedType::Enum(t), _) => own_entries(&t.values, None),
                _ => (1, 1),
            };
            bytes += total * ENTRY + own * DEFINITION;
        }
        let models = catalog.models().filter(|m| self.catalog.model(m.name.as_str()).is_none_or(|b| !Arc::ptr_eq(b, m)));
        bytes + models.map(|m| m.fields.len() * FIELD).sum::<usize>()
    }

    /// The schema of `catalog` (the base catalog extended by a tenant), sharing every
    /// definition that is the same as the base schema's: a whole type when it did not change,
    /// else each of its fields, arguments and values that did not.
    ///
    /// # Errors
    /// See [`generate`].
    pub fn tenant(&self, catalog: &Catalog) -> Result<Arc<Valid<Schema>>, GraphqlError> {
        if std::ptr::eq(catalog, &raw const *self.catalog) {
            return Ok(Arc::clone(&self.schema));
        }
        // Only the models the tenant changed (or added) get types of their own; the root types
        // are built whole, their fields shared where they are the base's.
        let base = &self.catalog;
        let changed = |m: &Model| base.model(m.name.as_str()).is_none_or(|b| !std::ptr::eq(Arc::as_ptr(b), m));
        let mut types = Vec::new();
        let roots = roots(catalog, &mut types, &changed)?;
        let mut schema = Schema::clone(&self.schema);
        for mut t in types.into_iter().chain([roots.query]).chain(roots.mutation).chain([roots.subscription]) {
            if let Some(b) = schema.types.get(t.name()) {
                share(&mut t, b);
            }
            schema.types.insert(t.name().clone(), t);
        }
        schema.types.shrink_to_fit();
        Ok(Arc::new(Valid::assume_valid(schema)))
    }
}

/// Whether two type definitions are the same node (shared, not merely equal).
fn same_node(a: &ExtendedType, b: &ExtendedType) -> bool {
    match (a, b) {
        (ExtendedType::Object(a), ExtendedType::Object(b)) => a.ptr_eq(b),
        (ExtendedType::InputObject(a), ExtendedType::InputObject(b)) => a.ptr_eq(b),
        (ExtendedType::Enum(a), ExtendedType::Enum(b)) => a.ptr_eq(b),
        (ExtendedType::Interface(a), ExtendedType::Interface(b)) => a.ptr_eq(b),
        (ExtendedType::Scalar(a), ExtendedType::Scalar(b)) => a.ptr_eq(b),
        (ExtendedType::Union(a), ExtendedType::Union(b)) => a.ptr_eq(b),
        _ => false,
    }
}

/// The SDL of `schema`, its types in the order of their names (as a snapshot or a client wants
/// to read it; the schema itself keeps them in the order they were defined).
#[must_use]
pub fn sdl(schema: &Schema) -> String {
    let mut sorted = schema.clone();
    sorted.types.sort_keys();
    sorted.to_string()
}

/// Makes `ty` use `base`'s definitions wherever they are equal (a changed type keeps only its
/// map of fields or values, sized to fit, and its new definitions).
fn share(ty: &mut ExtendedType, base: &ExtendedType) {
    if ty == base {
        *ty = base.clone();
        return;
    }
    match (ty, base) {
        (ExtendedType::Object(t), ExtendedType::Object(b)) => share_entries(&mut t.make_mut().fields, &b.fields),
        (ExtendedType::InputObject(t), ExtendedType::InputObject(b)) => share_entries(&mut t.make_mut().fields, &b.fields),
        (ExtendedType::Enum(t), ExtendedType::Enum(b)) => share_entries(&mut t.make_mut().values, &b.values),
        _ => {}
    }
}

/// The fields (or values) of a type: each a shared definition under its name.
type Entries<T> = IndexMap<Name, Component<T>>;

/// Makes every entry of `map` equal to `base`'s the base's own, and sizes `map` to fit.
fn share_entries<T: PartialEq + Clone>(map: &mut Entries<T>, base: &Entries<T>) {
    for (k, v) in map.iter_mut() {
        if let Some(b) = base.get(k)
            && v == b
        {
            *v = b.clone();
        }
    }
    map.shrink_to_fit();
}

/// How many entries of `map` are its own (not `base`'s), and how many it has.
fn own_entries<T>(map: &Entries<T>, base: Option<&Entries<T>>) -> (usize, usize) {
    let own = map.iter().filter(|(k, v)| base.and_then(|b| b.get(*k)).is_none_or(|b| !b.ptr_eq(v))).count();
    (own, map.len())
}
