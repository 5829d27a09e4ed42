//! Catalog -> async-graphql dynamic schema. Every generated name is written once here (type
//! names through [`names`], filter suffixes through [`FilterOp::suffix`]); the resolvers the
//! fields carry live in [`crate::resolve`] and read the same names.

use std::sync::Arc;

use async_graphql::Value;
use async_graphql::dynamic::{
    Enum, Field, FieldFuture, FieldValue, InputObject, InputValue, Interface, InterfaceField, Object, Scalar, Schema, TypeRef,
};
use crm_model::api::builtin::{
    AUDIT_ENTRY, DATE, DATETIME, DECIMAL, HISTORY, JSON, MONEY, MONEY_INPUT, MUTATION, NODE, PAGE_INFO, QUERY, RECORD_REF,
    RECORD_REF_INPUT, STAGE_TRANSITION,
};
use crm_model::api::roots;
use crm_model::{Catalog, Field as MField, FieldKind, Model, ScalarType, TypeClass};
use crm_orm::{AggFn, FilterOp, Quantifier};
use crm_orm::{aggregatable, groupable, orderable};

use crate::connection::{Conn, Edge, nested_connection};
use crate::error::GraphqlError;
use crate::fields::{json_aliased_leaf, json_aliased_list, json_aliased_object, json_leaf, json_object, stage_duration};
use crate::resolve;

/// Limits and switches of a generated schema.
#[derive(Debug, Clone)]
pub struct SchemaOptions {
    /// Deepest selection accepted (`LIMIT_EXCEEDED` beyond).
    pub max_depth: usize,
    /// Most fields one request may select, counted over the whole document (`LIMIT_EXCEEDED`
    /// beyond).
    pub max_complexity: usize,
    /// Most aliased fields one request may use, fragments expanded (`LIMIT_EXCEEDED` beyond).
    pub max_aliases: usize,
    /// Most nodes (selections, arguments, directives, fragments) a request's document may be
    /// written with, fragments not expanded (`LIMIT_EXCEEDED` beyond).
    pub max_nodes: usize,
    /// Whether introspection is served.
    pub introspection: bool,
}

impl Default for SchemaOptions {
    fn default() -> Self {
        SchemaOptions { max_depth: 15, max_complexity: 2000, max_aliases: 100, max_nodes: 5000, introspection: true }
    }
}

impl SchemaOptions {
    /// The limits the document guard applies before validation ([`crate::guard`]).
    #[must_use]
    pub fn document_limits(&self) -> crate::guard::DocumentLimits {
        crate::guard::DocumentLimits {
            max_depth: self.max_depth,
            max_cost: self.max_complexity,
            max_aliases: self.max_aliases,
            max_nodes: self.max_nodes,
        }
    }
}

/// The enum type of select or multi-select field `f` of `m` (every one has its enum, see
/// [`crm_model::ApiNames`]).
pub(crate) fn enum_name(m: &Model, f: &MField) -> String {
    m.api.enums.get(&f.name).cloned().unwrap_or_else(|| TypeRef::STRING.to_owned())
}

/// Builds the schema of `catalog`: per model its object type, inputs, connection and aggregate
/// types, root queries and mutations; `Node` and `node(id:)` once.
///
/// # Errors
/// A name GraphQL refuses (the Catalog's checks should make this unreachable).
pub fn build_schema(catalog: &Arc<Catalog>, options: &SchemaOptions) -> Result<Schema, GraphqlError> {
    let mut query = Object::new(QUERY).description("Reads. Every result is confined to the caller's tenant and roles.");
    let mut mutation = Object::new(MUTATION).description("Writes. Each mutation is one transaction.");
    let mut b = Schema::build(QUERY, Some(MUTATION), None);
    b = shared_types(b);
    query = query.field(
        Field::new(roots::NODE, TypeRef::named(NODE), resolve::node(catalog.clone()))
            .description("Any record of the caller's tenant by id; null when there is none the caller may read.")
            .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID))),
    );
    for model in catalog.models() {
        let m: &Model = model;
        for t in model_types(catalog, model) {
            b = match t {
                Gen::Obj(o) => b.register(o),
                Gen::Input(i) => b.register(i),
                Gen::Enum(e) => b.register(e),
            };
        }
        query = query
            .field(
                Field::new(&m.api.one, TypeRef::named(&m.api.object), resolve::one(catalog.clone(), model.clone()))
                    .description(format!("One {} by id or a unique field; null when there is none the caller may read.", m.name))
                    .argument(InputValue::new("where", TypeRef::named_nn(m.api.where_unique_input.clone()))),
            )
            .field(list_args(
                m,
                Field::new(&m.api.list, TypeRef::named_nn_list_nn(&m.api.object), resolve::list(catalog.clone(), model.clone()))
                    .description(format!("A page of {} records.", m.name)),
                true,
            ))
            .field(list_args(
                m,
                Field::new(
                    m.api.list_connection.clone(),
                    TypeRef::named_nn(m.api.connection.clone()),
                    resolve::connection(catalog.clone(), model.clone()),
                )
                .description(format!("A page of {} records with cursors, page info and aggregates.", m.name)),
                true,
            ));
        query = query.field(list_args(
            m,
            Field::new(m.api.trash.clone(), TypeRef::named_nn_list_nn(&m.api.object), resolve::trash(catalog.clone(), model.clone()))
                .description(format!("{} records in the trash (deleted, restorable), newest first unless ordered.", m.name)),
            true,
        ));
        if m.fields.values().any(groupable) {
            query = query.field(
                Field::new(
                    m.api.list_group_by.clone(),
                    TypeRef::named_nn_list_nn(m.api.group_by.clone()),
                    resolve::group_by(catalog.clone(), model.clone()),
                )
                .description(format!(
                    "{} records grouped by fields, with counts and numeric aggregates per group, ordered by the keys.",
                    m.name
                ))
                .argument(InputValue::new("where", TypeRef::named(m.api.where_input.clone())))
                .argument(InputValue::new("by", TypeRef::named_nn_list_nn(m.api.group_by_field.clone())))
                .argument(InputValue::new("first", TypeRef::named(TypeRef::INT)))
                .argument(InputValue::new("skip", TypeRef::named(TypeRef::INT))),
            );
        }
        mutation = mutation
            .field(
                Field::new(&m.api.create, TypeRef::named(&m.api.object), resolve::create(catalog.clone(), model.clone()))
                    .description(format!("Creates a {} (with nested relation writes).", m.name))
                    .argument(InputValue::new("data", TypeRef::named_nn(m.api.create_input.clone()))),
            )
            .field(
                Field::new(&m.api.update, TypeRef::named(&m.api.object), resolve::update(catalog.clone(), model.clone()))
                    .description(format!(
                        "Updates a {}; with `expectedVersion`, fails with CONFLICT unless it is the stored version.",
                        m.name
                    ))
                    .argument(InputValue::new("where", TypeRef::named_nn(m.api.where_unique_input.clone())))
                    .argument(InputValue::new("data", TypeRef::named_nn(m.api.update_input.clone())))
                    .argument(InputValue::new("expectedVersion", TypeRef::named(TypeRef::INT))),
            )
            .field(
                Field::new(&m.api.delete, TypeRef::named(&m.api.object), resolve::delete(catalog.clone(), model.clone()))
                    .description(format!("Deletes a {} and returns it as it was.", m.name))
                    .argument(InputValue::new("where", TypeRef::named_nn(m.api.where_unique_input.clone())))
                    .argument(InputValue::new("expectedVersion", TypeRef::named(TypeRef::INT))),
            )
            .field(
                Field::new(&m.api.restore, TypeRef::named(&m.api.object), resolve::restore(catalog.clone(), model.clone()))
                    .description(format!("Takes a {} out of the trash.", m.name))
                    .argument(InputValue::new("where", TypeRef::named_nn(m.api.where_unique_input.clone()))),
            )
            .field(
                Field::new(&m.api.destroy, TypeRef::named(&m.api.object), resolve::destroy(catalog.clone(), model.clone()))
                    .description(format!("Removes a {} for good (from the trash or not) and returns it as it was.", m.name))
                    .argument(InputValue::new("where", TypeRef::named_nn(m.api.where_unique_input.clone()))),
            )
            .field(
                Field::new(&m.api.upsert, TypeRef::named(&m.api.object), resolve::upsert(catalog.clone(), model.clone()))
                    .description(format!("Updates the {} `where` names, or creates it.", m.name))
                    .argument(InputValue::new("where", TypeRef::named_nn(m.api.where_unique_input.clone())))
                    .argument(InputValue::new("upsert", TypeRef::named_nn(m.api.upsert_input.clone()))),
            )
            .field(page_args(
                Field::new(
                    m.api.delete_many.clone(),
                    TypeRef::named_nn(m.api.connection.clone()),
                    resolve::delete_many(catalog.clone(), model.clone()),
                )
                .description(format!("Deletes every {} matching `where` (within the page given) and returns them as they were.", m.name))
                .argument(InputValue::new("where", TypeRef::named(m.api.many_where_input.clone()))),
            ));
        if m.fields.values().any(|f| !f.system && input_type(m, f, false).is_some()) {
            mutation = mutation.field(page_args(
                Field::new(
                    m.api.update_many.clone(),
                    TypeRef::named_nn(m.api.connection.clone()),
                    resolve::update_many(catalog.clone(), model.clone()),
                )
                .description(format!("Updates every {} matching `where` (within the page given) and returns them.", m.name))
                .argument(InputValue::new("where", TypeRef::named(m.api.many_where_input.clone())))
                .argument(InputValue::new("data", TypeRef::named_nn(m.api.update_many_input.clone()))),
            ));
        }
    }
    query = query.field(
        Field::new(roots::AUDIT_LOG, TypeRef::named_nn_list_nn(AUDIT_ENTRY), resolve::audit_log())
            .description("The newest entries of the tenant's audit log: deletions, restores, destructions, metadata changes (roles with the audit right).")
            .argument(InputValue::new("model", TypeRef::named(TypeRef::STRING)).description("Only entries about this model."))
            .argument(InputValue::new("first", TypeRef::named(TypeRef::INT)).description("Most entries (default 50).")),
    );
    let (b2, query, mutation) = crate::meta::register(b, query, mutation);
    b = b2;
    let (b2, query, mutation) = if crm_engines::rows::MODELS.iter().all(|m| catalog.model(m).is_some()) {
        crate::engines::register(b, query, mutation)
    } else {
        (b, query, mutation)
    };
    b = b2;
    b = b.register(
        Object::new(AUDIT_ENTRY)
            .description("Who did what, when.")
            .field(Field::new("at", TypeRef::named_nn(DATETIME), json_leaf("at")))
            .field(Field::new("actor", TypeRef::named(TypeRef::STRING), json_leaf("actor")))
            .field(
                Field::new("action", TypeRef::named_nn(TypeRef::STRING), json_leaf("action"))
                    .description("delete, restore, destroy, or metadata.<change> (createField, updateField, activateField, deactivateField, deleteField, createObject, updateObject, deleteObject)."),
            )
            .field(Field::new("model", TypeRef::named(TypeRef::STRING), json_leaf("model")))
            .field(Field::new("recordId", TypeRef::named(TypeRef::ID), json_leaf("recordId")))
            .field(
                Field::new("detail", TypeRef::named(JSON), json_leaf("detail"))
                    .description("For metadata changes: the model, the field, and the definition before and after."),
            ),
    );
    b = b.register(query).register(mutation).limit_depth(options.max_depth).limit_complexity(options.max_complexity);
    if !options.introspection {
        b = b.disable_introspection();
    }
    b.finish().map_err(|e| GraphqlError::Schema(e.0))
}

enum Gen {
    Obj(Object),
    Input(InputObject),
    Enum(Enum),
}

fn shared_types(b: async_graphql::dynamic::SchemaBuilder) -> async_graphql::dynamic::SchemaBuilder {
    let string = |v: &Value| matches!(v, Value::String(_));
    b.register(Interface::new(NODE).description("A record of any model.").field(InterfaceField::new("id", TypeRef::named_nn(TypeRef::ID))))
        .register(Scalar::new(DATETIME).description("An instant in UTC, RFC 3339 (`2026-11-21T09:30:00.000000Z`).").validator(string))
        .register(Scalar::new(DATE).description("A calendar date, `YYYY-MM-DD`.").validator(string))
        .register(
            Scalar::new(DECIMAL)
                .description("An exact decimal number, as a string (`\"1250.50\"`); numbers are accepted as input.")
                .validator(|v| matches!(v, Value::String(_) | Value::Number(_))),
        )
        .register(Scalar::new(JSON).description("Any JSON value."))
        .register(
            Object::new(MONEY)
                .description("An amount with its ISO 4217 currency.")
                .field(Field::new("amount", TypeRef::named_nn(DECIMAL), json_leaf("amount")))
                .field(Field::new("currency", TypeRef::named_nn(TypeRef::STRING), json_leaf("currency"))),
        )
        .register(
            InputObject::new(MONEY_INPUT)
                .description("An amount with its ISO 4217 currency.")
                .field(InputValue::new("amount", TypeRef::named_nn(DECIMAL)))
                .field(InputValue::new("currency", TypeRef::named_nn(TypeRef::STRING))),
        )
        .register(
            Object::new(RECORD_REF)
                .description("A reference to a record of one of several models.")
                .field(Field::new("type", TypeRef::named_nn(TypeRef::STRING), json_leaf("type")).description("The model name."))
                .field(Field::new("id", TypeRef::named_nn(TypeRef::ID), json_leaf("id"))),
        )
        .register(
            InputObject::new(RECORD_REF_INPUT)
                .description("A reference to a record of one of several models.")
                .field(InputValue::new("type", TypeRef::named_nn(TypeRef::STRING)).description("The model name."))
                .field(InputValue::new("id", TypeRef::named_nn(TypeRef::ID))),
        )
        .register(
            Object::new(HISTORY)
                .description("One change of a tracked field.")
                .field(Field::new("field", TypeRef::named_nn(TypeRef::STRING), json_leaf("field")))
                .field(Field::new("oldValue", TypeRef::named(JSON), json_leaf("oldValue")))
                .field(Field::new("newValue", TypeRef::named(JSON), json_leaf("newValue")))
                .field(Field::new("changedAt", TypeRef::named_nn(DATETIME), json_leaf("changedAt")))
                .field(
                    Field::new("changedBy", TypeRef::named(TypeRef::STRING), json_leaf("changedBy")).description("The acting user's id."),
                ),
        )
        .register(
            Object::new(STAGE_TRANSITION)
                .description("A stay in one stage of a lifecycle (stage) field.")
                .field(Field::new("field", TypeRef::named_nn(TypeRef::STRING), json_leaf("field")))
                .field(Field::new("stage", TypeRef::named_nn(TypeRef::STRING), json_leaf("stage")))
                .field(Field::new("enteredAt", TypeRef::named_nn(DATETIME), json_leaf("enteredAt")))
                .field(
                    Field::new("exitedAt", TypeRef::named(DATETIME), json_leaf("exitedAt"))
                        .description("Null while the record is still in the stage."),
                )
                .field(Field::new("enteredBy", TypeRef::named(TypeRef::STRING), json_leaf("enteredBy")))
                .field(
                    Field::new("durationSeconds", TypeRef::named_nn(TypeRef::FLOAT), stage_duration())
                        .description("Time spent in the stage: until it was left, or until now."),
                ),
        )
        .register(
            Object::new(PAGE_INFO)
                .description("Where a page sits in the whole result.")
                .field(Field::new("hasNextPage", TypeRef::named_nn(TypeRef::BOOLEAN), json_leaf("hasNextPage")))
                .field(Field::new("hasPreviousPage", TypeRef::named_nn(TypeRef::BOOLEAN), json_leaf("hasPreviousPage")))
                .field(Field::new("startCursor", TypeRef::named(TypeRef::STRING), json_leaf("startCursor")))
                .field(Field::new("endCursor", TypeRef::named(TypeRef::STRING), json_leaf("endCursor")))
                .field(Field::new("pageSize", TypeRef::named(TypeRef::INT), json_leaf("pageSize")).description("Records in this page.")),
        )
}

/// The GraphQL type of a stored scalar for output (`input` false) or input.
pub(crate) fn scalar_type(m: &Model, f: &MField, ty: &ScalarType, input: bool) -> String {
    match ty {
        ScalarType::Text | ScalarType::LongText | ScalarType::Email | ScalarType::Phone | ScalarType::Url | ScalarType::Tags => {
            TypeRef::STRING.to_owned()
        }
        ScalarType::Int => TypeRef::INT.to_owned(),
        ScalarType::Float => TypeRef::FLOAT.to_owned(),
        ScalarType::Decimal => DECIMAL.to_owned(),
        ScalarType::Money { .. } if input => MONEY_INPUT.to_owned(),
        ScalarType::Money { .. } => MONEY.to_owned(),
        ScalarType::Boolean => TypeRef::BOOLEAN.to_owned(),
        ScalarType::Date => DATE.to_owned(),
        ScalarType::DateTime => DATETIME.to_owned(),
        ScalarType::Select(_) | ScalarType::MultiSelect(_) => enum_name(m, f),
        ScalarType::Json => JSON.to_owned(),
        ScalarType::Id => TypeRef::ID.to_owned(),
    }
}

pub(crate) fn is_list(ty: &ScalarType) -> bool {
    matches!(ty, ScalarType::Tags | ScalarType::MultiSelect(_))
}

/// The value type of a field in create/update inputs (`None`: written through relation inputs).
fn input_type(m: &Model, f: &MField, non_null: bool) -> Option<TypeRef> {
    let base = match &f.kind {
        FieldKind::Scalar(ty) if is_list(ty) => return Some(TypeRef::named_nn_list(scalar_type(m, f, ty, true))),
        FieldKind::Scalar(ty) => scalar_type(m, f, ty, true),
        FieldKind::Polymorphic { .. } => RECORD_REF_INPUT.to_owned(),
        _ => return None,
    };
    Some(if non_null { TypeRef::named_nn(base) } else { TypeRef::named(base) })
}

/// The operand type of `f` with `op` in a where input.
fn operand_type(m: &Model, f: &MField, op: FilterOp) -> TypeRef {
    let base = match &f.kind {
        FieldKind::Scalar(ScalarType::Money { .. }) => DECIMAL.to_owned(),
        FieldKind::Scalar(ty) => scalar_type(m, f, ty, true),
        FieldKind::Polymorphic { .. } => RECORD_REF_INPUT.to_owned(),
        _ => TypeRef::ID.to_owned(),
    };
    let list_field = matches!(&f.kind, FieldKind::Scalar(ty) if is_list(ty));
    match op {
        FilterOp::ContainsAll | FilterOp::ContainsSome | FilterOp::ContainsNone => TypeRef::named_nn_list(base),
        FilterOp::In | FilterOp::NotIn => TypeRef::named_list(base),
        FilterOp::Contains
        | FilterOp::NotContains
        | FilterOp::StartsWith
        | FilterOp::NotStartsWith
        | FilterOp::EndsWith
        | FilterOp::NotEndsWith
            if !list_field =>
        {
            TypeRef::named(TypeRef::STRING)
        }
        _ => TypeRef::named(base),
    }
}

pub(crate) fn class_of(f: &MField) -> Option<TypeClass> {
    match &f.kind {
        FieldKind::Scalar(t) => Some(t.class()),
        FieldKind::Polymorphic { .. } => Some(TypeClass::Json),
        _ => None,
    }
}

fn described(v: InputValue, d: Option<&String>) -> InputValue {
    match d {
        Some(d) => v.description(d.clone()),
        None => v,
    }
}

/// `where`, `orderBy` and pagination arguments of a list field over `m`.
fn list_args(m: &Model, field: Field, with_where: bool) -> Field {
    let field = if with_where { field.argument(InputValue::new("where", TypeRef::named(m.api.where_input.clone()))) } else { field };
    page_args(field.argument(InputValue::new("orderBy", TypeRef::named_nn_list(m.api.order_by_input.clone()))))
}

fn page_args(field: Field) -> Field {
    field
        .argument(InputValue::new("skip", TypeRef::named(TypeRef::INT)))
        .argument(InputValue::new("first", TypeRef::named(TypeRef::INT)))
        .argument(InputValue::new("last", TypeRef::named(TypeRef::INT)))
        .argument(InputValue::new("after", TypeRef::named(TypeRef::STRING)))
        .argument(InputValue::new("before", TypeRef::named(TypeRef::STRING)))
}

fn where_input(cat: &Catalog, m: &Model, name: String, logic_of: &str) -> InputObject {
    let mut i = InputObject::new(name).description(format!(
        "Filters {} records. All given entries must hold (AND). `f: null` matches null, `f_not: null` non-null; \
         `_contains`, `_starts_with` and `_ends_with` ignore case.",
        m.name
    ));
    for logic in ["AND", "OR", "NOT"] {
        i = i.field(InputValue::new(logic, TypeRef::named_nn_list(logic_of)));
    }
    if m.searchable().next().is_some() {
        let fields: Vec<&str> = m.searchable().map(|f| f.name.as_str()).collect();
        i = i.field(
            InputValue::new("_search", TypeRef::named(TypeRef::STRING))
                .description(format!("Case- and accent-insensitive match of every word across {}.", fields.join(", "))),
        );
    }
    for f in m.fields.values() {
        match &f.kind {
            FieldKind::ToOne { target, .. } => {
                if let Some(t) = cat.model(target.as_str()) {
                    i = i.field(described(InputValue::new(f.name.as_str(), TypeRef::named(&t.api.where_input)), f.description.as_ref()));
                }
            }
            FieldKind::ToMany { target, .. } => {
                if let Some(t) = cat.model(target.as_str()) {
                    for q in Quantifier::ALL {
                        i = i.field(InputValue::new(format!("{}{}", f.name, q.suffix()), TypeRef::named(&t.api.where_input)));
                    }
                }
            }
            _ => {
                let Some(class) = class_of(f) else { continue };
                for op in FilterOp::ALL {
                    if op.applies_to(class) {
                        let v = InputValue::new(format!("{}{}", f.name, op.suffix()), operand_type(m, f, op));
                        i = i.field(if op == FilterOp::Eq { described(v, f.description.as_ref()) } else { v });
                    }
                }
            }
        }
    }
    i
}

fn model_types(cat: &Catalog, model: &Arc<Model>) -> Vec<Gen> {
    let m: &Model = model;
    let mut out = Vec::new();
    // Enums of select fields.
    for f in m.fields.values() {
        if let FieldKind::Scalar(ScalarType::Select(opts) | ScalarType::MultiSelect(opts)) = &f.kind {
            let mut e = Enum::new(enum_name(m, f)).items(opts.iter().map(crm_model::OptionName::as_str));
            if let Some(d) = &f.description {
                e = e.description(d.clone());
            }
            out.push(Gen::Enum(e));
        }
    }
    out.push(Gen::Obj(object_type(cat, model)));
    // Filters, ordering, unique lookup.
    out.push(Gen::Input(where_input(cat, m, m.api.where_input.clone(), &m.api.where_input)));
    out.push(Gen::Input(where_input(cat, m, m.api.many_where_input.clone(), &m.api.many_where_input)));
    let mut unique = InputObject::new(m.api.where_unique_input.clone())
        .description(format!("Identifies one {}: give exactly one entry.", m.name))
        .field(InputValue::new("id", TypeRef::named(TypeRef::ID)));
    for f in m.unique_fields().filter(|f| f.name.as_str() != "id") {
        if let Some(t) = input_type(m, f, false) {
            unique = unique.field(described(InputValue::new(f.name.as_str(), t), f.description.as_ref()));
        }
    }
    out.push(Gen::Input(unique));
    let mut order = Enum::new(m.api.order_by_input.clone())
        .description("Ordering keys; nulls sort last ascending. The id is always the last tie-breaker.");
    for f in m.fields.values().filter(|f| orderable(f)) {
        order = order.item(format!("{}_ASC", f.name)).item(format!("{}_DESC", f.name));
    }
    out.push(Gen::Enum(order));
    // Write inputs.
    let mut create = InputObject::new(m.api.create_input.clone()).description(format!("The fields of a new {}.", m.name));
    let mut update =
        InputObject::new(m.api.update_input.clone()).description(format!("Changes to a {}; absent fields are left as they are.", m.name));
    let mut many = InputObject::new(m.api.update_many_input.clone()).description(format!("Changes applied to every {} matched.", m.name));
    let mut many_fields = 0usize;
    for f in m.fields.values().filter(|f| !f.system) {
        let d = f.description.as_ref();
        match &f.kind {
            FieldKind::ToOne { target, .. } => {
                let Some(t) = cat.model(target.as_str()) else { continue };
                create = create.field(described(InputValue::new(f.name.as_str(), TypeRef::named(&t.api.create_one_inline_input)), d));
                update = update.field(described(InputValue::new(f.name.as_str(), TypeRef::named(&t.api.update_one_inline_input)), d));
            }
            FieldKind::ToMany { target, .. } => {
                let Some(t) = cat.model(target.as_str()) else { continue };
                create = create.field(described(InputValue::new(f.name.as_str(), TypeRef::named(&t.api.create_many_inline_input)), d));
                update = update.field(described(InputValue::new(f.name.as_str(), TypeRef::named(&t.api.update_many_inline_input)), d));
            }
            _ => {
                let required = f.required && f.default.is_none();
                if let (Some(c), Some(u)) = (input_type(m, f, required), input_type(m, f, false)) {
                    create = create.field(described(InputValue::new(f.name.as_str(), c), d));
                    update = update.field(described(InputValue::new(f.name.as_str(), u.clone()), d));
                    many = many.field(described(InputValue::new(f.name.as_str(), u), d));
                    many_fields += 1;
                }
            }
        }
    }
    out.push(Gen::Input(create));
    out.push(Gen::Input(update));
    // A model whose own fields are all relations has nothing a batch update could set.
    if many_fields > 0 {
        out.push(Gen::Input(many));
    }
    out.push(Gen::Input(
        InputObject::new(m.api.upsert_input.clone())
            .description(format!("What to write when the {} exists (`update`) or not (`create`).", m.name))
            .field(InputValue::new("create", TypeRef::named_nn(m.api.create_input.clone())))
            .field(InputValue::new("update", TypeRef::named_nn(m.api.update_input.clone()))),
    ));
    // Relation inputs, used wherever another model points at this one.
    let uniq = m.api.where_unique_input.clone();
    let cre = m.api.create_input.clone();
    out.push(Gen::Input(
        InputObject::new(m.api.create_one_inline_input.clone())
            .description(format!("Points a new record at a {}: give `connect` or `create`.", m.name))
            .field(InputValue::new("connect", TypeRef::named(&uniq)))
            .field(InputValue::new("create", TypeRef::named(&cre))),
    ));
    out.push(Gen::Input(
        InputObject::new(m.api.create_many_inline_input.clone())
            .description(format!("{} records to relate to a new record.", m.name))
            .field(InputValue::new("connect", TypeRef::named_nn_list(&uniq)))
            .field(InputValue::new("create", TypeRef::named_nn_list(&cre))),
    ));
    out.push(Gen::Input(
        InputObject::new(m.api.update_one_inline_input.clone())
            .description(format!("Changes which {} a record points at: give one of `connect`, `create`, `disconnect: true`.", m.name))
            .field(InputValue::new("connect", TypeRef::named(&uniq)))
            .field(InputValue::new("create", TypeRef::named(&cre)))
            .field(InputValue::new("disconnect", TypeRef::named(TypeRef::BOOLEAN))),
    ));
    out.push(Gen::Input(
        InputObject::new(m.api.update_many_inline_input.clone())
            .description(format!("Changes to the related {} records; `set` replaces them all.", m.name))
            .field(InputValue::new("connect", TypeRef::named_nn_list(&uniq)))
            .field(InputValue::new("create", TypeRef::named_nn_list(&cre)))
            .field(InputValue::new("disconnect", TypeRef::named_nn_list(&uniq)))
            .field(InputValue::new("set", TypeRef::named_nn_list(&uniq))),
    ));
    // Connection, edge, aggregates, group-by.
    out.push(Gen::Obj(
        Object::new(m.api.connection.clone())
            .description(format!("A page of {} records.", m.name))
            .field(Field::new("edges", TypeRef::named_nn_list_nn(m.api.edge.clone()), |ctx| {
                FieldFuture::Value(
                    ctx.parent_value.downcast_ref::<Conn>().map(|c| FieldValue::list(c.edges.iter().map(|x| FieldValue::borrowed_any(x)))),
                )
            }))
            .field(Field::new("pageInfo", TypeRef::named_nn(PAGE_INFO), |ctx| {
                FieldFuture::Value(ctx.parent_value.downcast_ref::<Conn>().map(|c| FieldValue::borrowed_any(&c.page_info)))
            }))
            .field(
                Field::new("aggregate", TypeRef::named_nn(m.api.aggregate.clone()), |ctx| {
                    FieldFuture::Value(ctx.parent_value.downcast_ref::<Conn>().map(|c| FieldValue::borrowed_any(&c.aggregate)))
                })
                .description("Aggregates over every record matching `where`, regardless of pagination."),
            ),
    ));
    out.push(Gen::Obj(
        Object::new(m.api.edge.clone())
            .field(Field::new("cursor", TypeRef::named_nn(TypeRef::STRING), |ctx| {
                FieldFuture::Value(ctx.parent_value.downcast_ref::<Edge>().and_then(|e| e.cursor.clone()).map(FieldValue::value))
            }))
            .field(Field::new("node", TypeRef::named_nn(&m.api.object), |ctx| {
                FieldFuture::Value(ctx.parent_value.downcast_ref::<Edge>().map(|e| FieldValue::borrowed_any(&e.node)))
            })),
    ));
    let numeric: Vec<&MField> = m.fields.values().filter(|f| aggregatable(f)).collect();
    let mut agg = Object::new(m.api.aggregate.clone()).description(format!("Aggregates over {} records.", m.name)).field(Field::new(
        "count",
        TypeRef::named_nn(TypeRef::INT),
        json_leaf("count"),
    ));
    let mut group = Object::new(m.api.group_by.clone())
        .description(format!("One group of {} records.", m.name))
        .field(
            Field::new("key", TypeRef::named_nn(m.api.group_by_key.clone()), json_object("key"))
                .description("The values of the group keys."),
        )
        .field(Field::new("count", TypeRef::named_nn(TypeRef::INT), json_leaf("count")));
    if !numeric.is_empty() {
        let mut num =
            Object::new(m.api.numeric_aggregate.clone()).description("A numeric aggregate per field, as a float; null over no values.");
        for f in &numeric {
            num = num.field(Field::new(f.name.as_str(), TypeRef::named(TypeRef::FLOAT), json_leaf(f.name.as_str())));
        }
        out.push(Gen::Obj(num));
        for func in AggFn::ALL {
            agg = agg.field(
                Field::new(func.name(), TypeRef::named(m.api.numeric_aggregate.clone()), json_object(func.name()))
                    .description("Null on the results of batch mutations, whose aggregate counts the records affected."),
            );
            group = group.field(Field::new(func.name(), TypeRef::named_nn(m.api.numeric_aggregate.clone()), json_object(func.name())));
        }
    }
    out.push(Gen::Obj(agg));
    let keys: Vec<&MField> =
        m.fields.values().filter(|f| groupable(f) && !matches!(f.kind, FieldKind::Scalar(ScalarType::Money { .. }))).collect();
    if !keys.is_empty() {
        let mut key = Object::new(m.api.group_by_key.clone()).description("Group key values (a relation by its id).");
        let mut by = Enum::new(m.api.group_by_field.clone()).description(format!("Fields {} records can be grouped by.", m.name));
        for f in keys {
            let ty = match &f.kind {
                FieldKind::Scalar(ty) => scalar_type(m, f, ty, false),
                _ => TypeRef::ID.to_owned(),
            };
            key = key.field(Field::new(f.name.as_str(), TypeRef::named(ty), json_leaf(f.name.as_str())));
            by = by.item(f.name.as_str());
        }
        out.push(Gen::Obj(key));
        out.push(Gen::Enum(by));
        out.push(Gen::Obj(group));
    }
    out
}

fn object_type(cat: &Catalog, model: &Arc<Model>) -> Object {
    let m: &Model = model;
    let mut o = Object::new(&m.api.object).implement(NODE);
    if let Some(d) = &m.description {
        o = o.description(d.clone());
    }
    for f in m.fields.values() {
        let field = match &f.kind {
            FieldKind::Scalar(ty) => {
                let base = scalar_type(m, f, ty, false);
                // A custom field may be added as required to a model with records: those have no
                // value, so it reads as nullable (writes still enforce it).
                let t = match (is_list(ty), f.required && !f.custom) {
                    (true, _) => TypeRef::named_nn_list(base),
                    (false, true) => TypeRef::named_nn(base),
                    (false, false) => TypeRef::named(base),
                };
                if matches!(ty, ScalarType::Money { .. }) {
                    Field::new(f.name.as_str(), t, json_object(f.name.as_str()))
                } else {
                    Field::new(f.name.as_str(), t, json_leaf(f.name.as_str()))
                }
            }
            FieldKind::Polymorphic { targets, .. } => {
                let list: Vec<&str> = targets.iter().map(crm_model::ModelName::as_str).collect();
                Field::new(f.name.as_str(), TypeRef::named(RECORD_REF), json_object(f.name.as_str()))
                    .description(f.description.clone().unwrap_or_else(|| format!("A {}.", list.join(" or "))))
            }
            FieldKind::ToOne { target, .. } => {
                let Some(t) = cat.model(target.as_str()) else { continue };
                Field::new(f.name.as_str(), TypeRef::named(&t.api.object), json_aliased_object(f.name.to_string()))
            }
            FieldKind::ToMany { target, .. } => {
                let Some(t) = cat.model(target.as_str()) else { continue };
                let list = list_args(
                    t,
                    Field::new(f.name.as_str(), TypeRef::named_nn_list_nn(&t.api.object), json_aliased_list(f.name.to_string())),
                    true,
                );
                o = o.field(match &f.description {
                    Some(d) => list.description(d.clone()),
                    None => list,
                });
                let Some(conn_name) = m.api.connection_fields.get(&f.name).cloned() else { continue };
                let conn = list_args(
                    t,
                    Field::new(&conn_name, TypeRef::named_nn(t.api.connection.clone()), nested_connection(t.clone(), conn_name.clone())),
                    true,
                );
                o = o.field(conn.description(format!("`{}` as a connection, with cursors, page info and aggregates.", f.name)));
                continue;
            }
        };
        o = o.field(match &f.description {
            Some(d) => field.description(d.clone()),
            None => field,
        });
    }
    let tracked: Vec<&str> = m.fields.values().filter(|f| f.tracked).map(|f| f.name.as_str()).collect();
    if !tracked.is_empty() {
        o = o.field(
            Field::new("history", TypeRef::named_nn_list_nn(HISTORY), json_aliased_list("history".to_owned()))
                .description(format!("Changes of the tracked fields ({}), newest first.", tracked.join(", ")))
                .argument(InputValue::new("field", TypeRef::named(TypeRef::STRING)).description("Only this field's changes."))
                .argument(InputValue::new("first", TypeRef::named(TypeRef::INT)).description("Most entries (default 20).")),
        );
    }
    o = o.field(
        Field::new("timeline", TypeRef::named_nn(JSON), json_aliased_leaf("timeline".to_owned()))
            .description(
                "The record's timeline, newest first: its property changes (`{kind: \"change\", at, actor, field, oldValue, newValue}`) \
                 merged with the records that refer to it (`{kind: \"Activity\", at, actor, id, record}`).",
            )
            .argument(InputValue::new("first", TypeRef::named(TypeRef::INT)).description("Most entries (default 20).")),
    );
    let stages: Vec<&str> = m.fields.values().filter(|f| f.stage).map(|f| f.name.as_str()).collect();
    if !stages.is_empty() {
        o = o.field(
            Field::new("stages", TypeRef::named_nn_list_nn(STAGE_TRANSITION), json_aliased_list("stages".to_owned()))
                .description(format!("Stays in each stage of {}, oldest first, with entered and exited times.", stages.join(", ")))
                .argument(InputValue::new("field", TypeRef::named(TypeRef::STRING)).description("Only this stage field.")),
        );
    }
    o
}
