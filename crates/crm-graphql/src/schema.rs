//! Catalog -> async-graphql dynamic schema. Every generated name is written once here (type
//! names through [`names`], filter suffixes through [`FilterOp::suffix`]); the resolvers the
//! fields carry live in [`crate::resolve`] and read the same names.

use std::sync::Arc;

use async_graphql::Value;
use async_graphql::dynamic::{
    Enum, Field, FieldFuture, FieldValue, InputObject, InputValue, Interface, InterfaceField, Object, Scalar, Schema, TypeRef,
};
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

/// Generated type names of a model (`Lead` -> `LeadWhereInput`, …).
pub(crate) mod names {
    use crm_model::{Field, Model};

    pub fn of(m: &Model, suffix: &str) -> String {
        format!("{}{suffix}", m.name)
    }
    pub fn pascal(s: &str) -> String {
        let mut c = s.chars();
        c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
    }
    /// The enum of a select or multi-select field: model name + field name (`LeadStatus`).
    pub fn enum_of(m: &Model, f: &Field) -> String {
        format!("{}{}", m.name, pascal(f.name.as_str()))
    }
    pub const WHERE: &str = "WhereInput";
    pub const WHERE_UNIQUE: &str = "WhereUniqueInput";
    pub const MANY_WHERE: &str = "ManyWhereInput";
    pub const ORDER_BY: &str = "OrderByInput";
    pub const CREATE: &str = "CreateInput";
    pub const UPDATE: &str = "UpdateInput";
    pub const UPSERT: &str = "UpsertInput";
    pub const UPDATE_MANY: &str = "UpdateManyInput";
    pub const CONNECTION: &str = "Connection";
    pub const EDGE: &str = "Edge";
    pub const AGGREGATE: &str = "Aggregate";
    pub const NUMERIC: &str = "NumericAggregate";
    pub const GROUP_BY: &str = "GroupBy";
    pub const GROUP_BY_KEY: &str = "GroupByKey";
    pub const GROUP_BY_FIELD: &str = "GroupByField";
    pub const CREATE_ONE: &str = "CreateOneInlineInput";
    pub const CREATE_MANY: &str = "CreateManyInlineInput";
    pub const UPDATE_ONE: &str = "UpdateOneInlineInput";
    pub const UPDATE_MANY_INLINE: &str = "UpdateManyInlineInput";

    /// Root fields of a model.
    pub fn update_many(m: &Model) -> String {
        format!("updateMany{}Connection", pascal(&m.plural))
    }
    pub fn delete_many(m: &Model) -> String {
        format!("deleteMany{}Connection", pascal(&m.plural))
    }
    pub fn connection(m: &Model) -> String {
        format!("{}Connection", m.plural)
    }
    pub fn group_by(m: &Model) -> String {
        format!("{}GroupBy", m.plural)
    }
}

const DECIMAL: &str = "Decimal";
const DATE: &str = "Date";
const DATETIME: &str = "DateTime";
const JSON_SCALAR: &str = "JSON";
const MONEY: &str = "Money";
const MONEY_INPUT: &str = "MoneyInput";
const RECORD_REF: &str = "RecordRef";
const RECORD_REF_INPUT: &str = "RecordRefInput";
const PAGE_INFO: &str = "PageInfo";
const HISTORY: &str = "History";
const AUDIT_ENTRY: &str = "AuditEntry";
const STAGE_TRANSITION: &str = "StageTransition";
const NODE: &str = "Node";

/// Builds the schema of `catalog`: per model its object type, inputs, connection and aggregate
/// types, root queries and mutations; `Node` and `node(id:)` once.
///
/// # Errors
/// A name GraphQL refuses (the Catalog's checks should make this unreachable).
pub fn build_schema(catalog: Arc<Catalog>, options: &SchemaOptions) -> Result<Schema, GraphqlError> {
    let mut query = Object::new("Query").description("Reads. Every result is confined to the caller's tenant and roles.");
    let mut mutation = Object::new("Mutation").description("Writes. Each mutation is one transaction.");
    let mut b = Schema::build("Query", Some("Mutation"), None);
    b = shared_types(b);
    query = query.field(
        Field::new("node", TypeRef::named(NODE), resolve::node(catalog.clone()))
            .description("Any record of the caller's tenant by id; null when there is none the caller may read.")
            .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID))),
    );
    for model in catalog.models() {
        let m: &Model = model;
        for t in model_types(&catalog, model) {
            b = match t {
                Gen::Obj(o) => b.register(o),
                Gen::Input(i) => b.register(i),
                Gen::Enum(e) => b.register(e),
            };
        }
        query = query
            .field(
                Field::new(&m.singular, TypeRef::named(m.name.as_str()), resolve::one(catalog.clone(), model.clone()))
                    .description(format!("One {} by id or a unique field; null when there is none the caller may read.", m.name))
                    .argument(InputValue::new("where", TypeRef::named_nn(names::of(m, names::WHERE_UNIQUE)))),
            )
            .field(list_args(
                m,
                Field::new(&m.plural, TypeRef::named_nn_list_nn(m.name.as_str()), resolve::list(catalog.clone(), model.clone()))
                    .description(format!("A page of {} records.", m.name)),
                true,
            ))
            .field(list_args(
                m,
                Field::new(
                    names::connection(m),
                    TypeRef::named_nn(names::of(m, names::CONNECTION)),
                    resolve::connection(catalog.clone(), model.clone()),
                )
                .description(format!("A page of {} records with cursors, page info and aggregates.", m.name)),
                true,
            ));
        query = query.field(list_args(
            m,
            Field::new(
                format!("{}Trash", m.plural),
                TypeRef::named_nn_list_nn(m.name.as_str()),
                resolve::trash(catalog.clone(), model.clone()),
            )
            .description(format!("{} records in the trash (deleted, restorable), newest first unless ordered.", m.name)),
            true,
        ));
        if m.fields.values().any(groupable) {
            query = query.field(
                Field::new(
                    names::group_by(m),
                    TypeRef::named_nn_list_nn(names::of(m, names::GROUP_BY)),
                    resolve::group_by(catalog.clone(), model.clone()),
                )
                .description(format!(
                    "{} records grouped by fields, with counts and numeric aggregates per group, ordered by the keys.",
                    m.name
                ))
                .argument(InputValue::new("where", TypeRef::named(names::of(m, names::WHERE))))
                .argument(InputValue::new("by", TypeRef::named_nn_list_nn(names::of(m, names::GROUP_BY_FIELD))))
                .argument(InputValue::new("first", TypeRef::named(TypeRef::INT)))
                .argument(InputValue::new("skip", TypeRef::named(TypeRef::INT))),
            );
        }
        mutation = mutation
            .field(
                Field::new(format!("create{}", m.name), TypeRef::named(m.name.as_str()), resolve::create(catalog.clone(), model.clone()))
                    .description(format!("Creates a {} (with nested relation writes).", m.name))
                    .argument(InputValue::new("data", TypeRef::named_nn(names::of(m, names::CREATE)))),
            )
            .field(
                Field::new(format!("update{}", m.name), TypeRef::named(m.name.as_str()), resolve::update(catalog.clone(), model.clone()))
                    .description(format!(
                        "Updates a {}; with `expectedVersion`, fails with CONFLICT unless it is the stored version.",
                        m.name
                    ))
                    .argument(InputValue::new("where", TypeRef::named_nn(names::of(m, names::WHERE_UNIQUE))))
                    .argument(InputValue::new("data", TypeRef::named_nn(names::of(m, names::UPDATE))))
                    .argument(InputValue::new("expectedVersion", TypeRef::named(TypeRef::INT))),
            )
            .field(
                Field::new(format!("delete{}", m.name), TypeRef::named(m.name.as_str()), resolve::delete(catalog.clone(), model.clone()))
                    .description(format!("Deletes a {} and returns it as it was.", m.name))
                    .argument(InputValue::new("where", TypeRef::named_nn(names::of(m, names::WHERE_UNIQUE))))
                    .argument(InputValue::new("expectedVersion", TypeRef::named(TypeRef::INT))),
            )
            .field(
                Field::new(format!("restore{}", m.name), TypeRef::named(m.name.as_str()), resolve::restore(catalog.clone(), model.clone()))
                    .description(format!("Takes a {} out of the trash.", m.name))
                    .argument(InputValue::new("where", TypeRef::named_nn(names::of(m, names::WHERE_UNIQUE)))),
            )
            .field(
                Field::new(format!("destroy{}", m.name), TypeRef::named(m.name.as_str()), resolve::destroy(catalog.clone(), model.clone()))
                    .description(format!("Removes a {} for good (from the trash or not) and returns it as it was.", m.name))
                    .argument(InputValue::new("where", TypeRef::named_nn(names::of(m, names::WHERE_UNIQUE)))),
            )
            .field(
                Field::new(format!("upsert{}", m.name), TypeRef::named(m.name.as_str()), resolve::upsert(catalog.clone(), model.clone()))
                    .description(format!("Updates the {} `where` names, or creates it.", m.name))
                    .argument(InputValue::new("where", TypeRef::named_nn(names::of(m, names::WHERE_UNIQUE))))
                    .argument(InputValue::new("upsert", TypeRef::named_nn(names::of(m, names::UPSERT)))),
            )
            .field(page_args(
                Field::new(
                    names::delete_many(m),
                    TypeRef::named_nn(names::of(m, names::CONNECTION)),
                    resolve::delete_many(catalog.clone(), model.clone()),
                )
                .description(format!("Deletes every {} matching `where` (within the page given) and returns them as they were.", m.name))
                .argument(InputValue::new("where", TypeRef::named(names::of(m, names::MANY_WHERE)))),
            ));
        if m.fields.values().any(|f| !f.system && input_type(m, f, false).is_some()) {
            mutation = mutation.field(page_args(
                Field::new(
                    names::update_many(m),
                    TypeRef::named_nn(names::of(m, names::CONNECTION)),
                    resolve::update_many(catalog.clone(), model.clone()),
                )
                .description(format!("Updates every {} matching `where` (within the page given) and returns them.", m.name))
                .argument(InputValue::new("where", TypeRef::named(names::of(m, names::MANY_WHERE))))
                .argument(InputValue::new("data", TypeRef::named_nn(names::of(m, names::UPDATE_MANY)))),
            ));
        }
    }
    query = query.field(
        Field::new("auditLog", TypeRef::named_nn_list_nn(AUDIT_ENTRY), resolve::audit_log())
            .description("The newest entries of the tenant's audit log: deletions, restores, destructions, metadata changes (roles with the audit right).")
            .argument(InputValue::new("model", TypeRef::named(TypeRef::STRING)).description("Only entries about this model."))
            .argument(InputValue::new("first", TypeRef::named(TypeRef::INT)).description("Most entries (default 50).")),
    );
    let (b2, query, mutation) = crate::meta::register(b, query, mutation);
    b = b2;
    let (b2, query, mutation) = if crate::engines::NEEDS.iter().all(|m| catalog.model(m).is_some()) {
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
                Field::new("detail", TypeRef::named(JSON_SCALAR), json_leaf("detail"))
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
        .register(Scalar::new(JSON_SCALAR).description("Any JSON value."))
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
                .field(Field::new("oldValue", TypeRef::named(JSON_SCALAR), json_leaf("oldValue")))
                .field(Field::new("newValue", TypeRef::named(JSON_SCALAR), json_leaf("newValue")))
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
fn scalar_type(m: &Model, f: &MField, ty: &ScalarType, input: bool) -> String {
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
        ScalarType::Select(_) | ScalarType::MultiSelect(_) => names::enum_of(m, f),
        ScalarType::Json => JSON_SCALAR.to_owned(),
        ScalarType::Id => TypeRef::ID.to_owned(),
    }
}

fn is_list(ty: &ScalarType) -> bool {
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

fn class_of(f: &MField) -> Option<TypeClass> {
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
    let field = if with_where { field.argument(InputValue::new("where", TypeRef::named(names::of(m, names::WHERE)))) } else { field };
    page_args(field.argument(InputValue::new("orderBy", TypeRef::named_nn_list(names::of(m, names::ORDER_BY)))))
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
                if cat.model(target.as_str()).is_some() {
                    i = i.field(described(
                        InputValue::new(f.name.as_str(), TypeRef::named(format!("{target}{}", names::WHERE))),
                        f.description.as_ref(),
                    ));
                }
            }
            FieldKind::ToMany { target, .. } => {
                for q in Quantifier::ALL {
                    i = i.field(InputValue::new(format!("{}{}", f.name, q.suffix()), TypeRef::named(format!("{target}{}", names::WHERE))));
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
            let mut e = Enum::new(names::enum_of(m, f)).items(opts.iter().map(|o| o.as_str()));
            if let Some(d) = &f.description {
                e = e.description(d.clone());
            }
            out.push(Gen::Enum(e));
        }
    }
    out.push(Gen::Obj(object_type(cat, model)));
    // Filters, ordering, unique lookup.
    out.push(Gen::Input(where_input(cat, m, names::of(m, names::WHERE), &names::of(m, names::WHERE))));
    out.push(Gen::Input(where_input(cat, m, names::of(m, names::MANY_WHERE), &names::of(m, names::MANY_WHERE))));
    let mut unique = InputObject::new(names::of(m, names::WHERE_UNIQUE))
        .description(format!("Identifies one {}: give exactly one entry.", m.name))
        .field(InputValue::new("id", TypeRef::named(TypeRef::ID)));
    for f in m.unique_fields().filter(|f| f.name.as_str() != "id") {
        if let Some(t) = input_type(m, f, false) {
            unique = unique.field(described(InputValue::new(f.name.as_str(), t), f.description.as_ref()));
        }
    }
    out.push(Gen::Input(unique));
    let mut order = Enum::new(names::of(m, names::ORDER_BY))
        .description("Ordering keys; nulls sort last ascending. The id is always the last tie-breaker.");
    for f in m.fields.values().filter(|f| orderable(f)) {
        order = order.item(format!("{}_ASC", f.name)).item(format!("{}_DESC", f.name));
    }
    out.push(Gen::Enum(order));
    // Write inputs.
    let mut create = InputObject::new(names::of(m, names::CREATE)).description(format!("The fields of a new {}.", m.name));
    let mut update =
        InputObject::new(names::of(m, names::UPDATE)).description(format!("Changes to a {}; absent fields are left as they are.", m.name));
    let mut many = InputObject::new(names::of(m, names::UPDATE_MANY)).description(format!("Changes applied to every {} matched.", m.name));
    let mut many_fields = 0usize;
    for f in m.fields.values().filter(|f| !f.system) {
        let d = f.description.as_ref();
        match &f.kind {
            FieldKind::ToOne { target, .. } => {
                create =
                    create.field(described(InputValue::new(f.name.as_str(), TypeRef::named(format!("{target}{}", names::CREATE_ONE))), d));
                update =
                    update.field(described(InputValue::new(f.name.as_str(), TypeRef::named(format!("{target}{}", names::UPDATE_ONE))), d));
            }
            FieldKind::ToMany { target, .. } => {
                create =
                    create.field(described(InputValue::new(f.name.as_str(), TypeRef::named(format!("{target}{}", names::CREATE_MANY))), d));
                update = update.field(described(
                    InputValue::new(f.name.as_str(), TypeRef::named(format!("{target}{}", names::UPDATE_MANY_INLINE))),
                    d,
                ));
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
        InputObject::new(names::of(m, names::UPSERT))
            .description(format!("What to write when the {} exists (`update`) or not (`create`).", m.name))
            .field(InputValue::new("create", TypeRef::named_nn(names::of(m, names::CREATE))))
            .field(InputValue::new("update", TypeRef::named_nn(names::of(m, names::UPDATE)))),
    ));
    // Relation inputs, used wherever another model points at this one.
    let uniq = names::of(m, names::WHERE_UNIQUE);
    let cre = names::of(m, names::CREATE);
    out.push(Gen::Input(
        InputObject::new(names::of(m, names::CREATE_ONE))
            .description(format!("Points a new record at a {}: give `connect` or `create`.", m.name))
            .field(InputValue::new("connect", TypeRef::named(&uniq)))
            .field(InputValue::new("create", TypeRef::named(&cre))),
    ));
    out.push(Gen::Input(
        InputObject::new(names::of(m, names::CREATE_MANY))
            .description(format!("{} records to relate to a new record.", m.name))
            .field(InputValue::new("connect", TypeRef::named_nn_list(&uniq)))
            .field(InputValue::new("create", TypeRef::named_nn_list(&cre))),
    ));
    out.push(Gen::Input(
        InputObject::new(names::of(m, names::UPDATE_ONE))
            .description(format!("Changes which {} a record points at: give one of `connect`, `create`, `disconnect: true`.", m.name))
            .field(InputValue::new("connect", TypeRef::named(&uniq)))
            .field(InputValue::new("create", TypeRef::named(&cre)))
            .field(InputValue::new("disconnect", TypeRef::named(TypeRef::BOOLEAN))),
    ));
    out.push(Gen::Input(
        InputObject::new(names::of(m, names::UPDATE_MANY_INLINE))
            .description(format!("Changes to the related {} records; `set` replaces them all.", m.name))
            .field(InputValue::new("connect", TypeRef::named_nn_list(&uniq)))
            .field(InputValue::new("create", TypeRef::named_nn_list(&cre)))
            .field(InputValue::new("disconnect", TypeRef::named_nn_list(&uniq)))
            .field(InputValue::new("set", TypeRef::named_nn_list(&uniq))),
    ));
    // Connection, edge, aggregates, group-by.
    out.push(Gen::Obj(
        Object::new(names::of(m, names::CONNECTION))
            .description(format!("A page of {} records.", m.name))
            .field(Field::new("edges", TypeRef::named_nn_list_nn(names::of(m, names::EDGE)), |ctx| {
                FieldFuture::Value(
                    ctx.parent_value.downcast_ref::<Conn>().map(|c| FieldValue::list(c.edges.iter().map(|x| FieldValue::borrowed_any(x)))),
                )
            }))
            .field(Field::new("pageInfo", TypeRef::named_nn(PAGE_INFO), |ctx| {
                FieldFuture::Value(ctx.parent_value.downcast_ref::<Conn>().map(|c| FieldValue::borrowed_any(&c.page_info)))
            }))
            .field(
                Field::new("aggregate", TypeRef::named_nn(names::of(m, names::AGGREGATE)), |ctx| {
                    FieldFuture::Value(ctx.parent_value.downcast_ref::<Conn>().map(|c| FieldValue::borrowed_any(&c.aggregate)))
                })
                .description("Aggregates over every record matching `where`, regardless of pagination."),
            ),
    ));
    out.push(Gen::Obj(
        Object::new(names::of(m, names::EDGE))
            .field(Field::new("cursor", TypeRef::named_nn(TypeRef::STRING), |ctx| {
                FieldFuture::Value(ctx.parent_value.downcast_ref::<Edge>().and_then(|e| e.cursor.clone()).map(FieldValue::value))
            }))
            .field(Field::new("node", TypeRef::named_nn(m.name.as_str()), |ctx| {
                FieldFuture::Value(ctx.parent_value.downcast_ref::<Edge>().map(|e| FieldValue::borrowed_any(&e.node)))
            })),
    ));
    let numeric: Vec<&MField> = m.fields.values().filter(|f| aggregatable(f)).collect();
    let mut agg = Object::new(names::of(m, names::AGGREGATE))
        .description(format!("Aggregates over {} records.", m.name))
        .field(Field::new("count", TypeRef::named_nn(TypeRef::INT), json_leaf("count")));
    let mut group = Object::new(names::of(m, names::GROUP_BY))
        .description(format!("One group of {} records.", m.name))
        .field(
            Field::new("key", TypeRef::named_nn(names::of(m, names::GROUP_BY_KEY)), json_object("key"))
                .description("The values of the group keys."),
        )
        .field(Field::new("count", TypeRef::named_nn(TypeRef::INT), json_leaf("count")));
    if !numeric.is_empty() {
        let mut num =
            Object::new(names::of(m, names::NUMERIC)).description("A numeric aggregate per field, as a float; null over no values.");
        for f in &numeric {
            num = num.field(Field::new(f.name.as_str(), TypeRef::named(TypeRef::FLOAT), json_leaf(f.name.as_str())));
        }
        out.push(Gen::Obj(num));
        for func in AggFn::ALL {
            agg = agg.field(
                Field::new(func.name(), TypeRef::named(names::of(m, names::NUMERIC)), json_object(func.name()))
                    .description("Null on the results of batch mutations, whose aggregate counts the records affected."),
            );
            group = group.field(Field::new(func.name(), TypeRef::named_nn(names::of(m, names::NUMERIC)), json_object(func.name())));
        }
    }
    out.push(Gen::Obj(agg));
    let keys: Vec<&MField> =
        m.fields.values().filter(|f| groupable(f) && !matches!(f.kind, FieldKind::Scalar(ScalarType::Money { .. }))).collect();
    if !keys.is_empty() {
        let mut key = Object::new(names::of(m, names::GROUP_BY_KEY)).description("Group key values (a relation by its id).");
        let mut by = Enum::new(names::of(m, names::GROUP_BY_FIELD)).description(format!("Fields {} records can be grouped by.", m.name));
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
    let mut o = Object::new(m.name.as_str()).implement(NODE);
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
                let list: Vec<&str> = targets.iter().map(|t| t.as_str()).collect();
                Field::new(f.name.as_str(), TypeRef::named(RECORD_REF), json_object(f.name.as_str()))
                    .description(f.description.clone().unwrap_or_else(|| format!("A {}.", list.join(" or "))))
            }
            FieldKind::ToOne { target, .. } => {
                Field::new(f.name.as_str(), TypeRef::named(target.as_str()), json_aliased_object(f.name.to_string()))
            }
            FieldKind::ToMany { target, .. } => {
                let Some(t) = cat.model(target.as_str()) else { continue };
                let list = list_args(
                    t,
                    Field::new(f.name.as_str(), TypeRef::named_nn_list_nn(target.as_str()), json_aliased_list(f.name.to_string())),
                    true,
                );
                o = o.field(match &f.description {
                    Some(d) => list.description(d.clone()),
                    None => list,
                });
                let conn_name = format!("{}Connection", f.name);
                let conn = list_args(
                    t,
                    Field::new(
                        &conn_name,
                        TypeRef::named_nn(names::of(t, names::CONNECTION)),
                        nested_connection(t.clone(), conn_name.clone()),
                    ),
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
        Field::new("timeline", TypeRef::named_nn(JSON_SCALAR), json_aliased_leaf("timeline".to_owned()))
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
