//! A model's types: its object type, filters, ordering, write and relation inputs, connection,
//! edge, aggregates and group-by types. They depend on the model alone (and on the API names
//! of the models its relations point at, which are fixed by their names).

use apollo_compiler::ast::Type;
use apollo_compiler::schema::ExtendedType;
use crm_model::api::builtin::{
    CHANGE_KIND, DECIMAL, HISTORY, JSON, NODE, PAGE_INFO, RECORD_REF, RECORD_REF_INPUT, STAGE_TRANSITION, TIMELINE_ENTRY,
};
use crm_model::{Catalog, Field as MField, FieldKind, Model, ScalarType};
use crm_orm::{AggFn, FilterOp, Quantifier};
use crm_orm::{aggregatable, groupable, orderable};

use super::build::{Arg, Enm, Fld, Input, Obj, named, nn, nn_list, nn_list_nn};
use super::{BOOLEAN, FLOAT, ID, INT, STRING};
use crm_model::TypeClass;
use crm_model::api::builtin::{DATE, DATETIME, LONG, MONEY, MONEY_INPUT};

/// The enum type of select or multi-select field `f` of `m` (every one has its enum, see
/// [`crm_model::ApiNames`]).
pub(crate) fn enum_name(m: &Model, f: &MField) -> String {
    m.api.enums.get(&f.name).cloned().unwrap_or_else(|| STRING.to_owned())
}

/// The GraphQL type of a stored scalar for output (`input` false) or input.
pub(crate) fn scalar_type(m: &Model, f: &MField, ty: &ScalarType, input: bool) -> String {
    match ty {
        ScalarType::Text | ScalarType::LongText | ScalarType::Email | ScalarType::Phone | ScalarType::Url | ScalarType::Tags => {
            STRING.to_owned()
        }
        // `version` counts a record's writes: GraphQL's `Int`, as `expectedVersion` takes it.
        ScalarType::Int if f.system => INT.to_owned(),
        ScalarType::Int => LONG.to_owned(),
        ScalarType::Float => FLOAT.to_owned(),
        ScalarType::Decimal => DECIMAL.to_owned(),
        ScalarType::Money { .. } if input => MONEY_INPUT.to_owned(),
        ScalarType::Money { .. } => MONEY.to_owned(),
        ScalarType::Boolean => BOOLEAN.to_owned(),
        ScalarType::Date => DATE.to_owned(),
        ScalarType::DateTime => DATETIME.to_owned(),
        ScalarType::Select(_) | ScalarType::MultiSelect(_) => enum_name(m, f),
        ScalarType::Json => JSON.to_owned(),
        ScalarType::Id => ID.to_owned(),
    }
}

pub(crate) fn is_list(ty: &ScalarType) -> bool {
    matches!(ty, ScalarType::Tags | ScalarType::MultiSelect(_))
}

pub(crate) fn class_of(f: &MField) -> Option<TypeClass> {
    match &f.kind {
        FieldKind::Scalar(t) => Some(t.class()),
        FieldKind::Polymorphic { .. } => Some(TypeClass::Json),
        _ => None,
    }
}

/// The value type of a field in create/update inputs (`None`: written through relation inputs).
pub(super) fn input_type(m: &Model, f: &MField, non_null: bool) -> Option<Type> {
    let base = match &f.kind {
        FieldKind::Scalar(ty) if is_list(ty) => return Some(nn_list(&scalar_type(m, f, ty, true))),
        FieldKind::Scalar(ty) => scalar_type(m, f, ty, true),
        FieldKind::Polymorphic { .. } => RECORD_REF_INPUT.to_owned(),
        _ => return None,
    };
    Some(if non_null { nn(&base) } else { named(&base) })
}

/// The operand type of `f` with `op` in a where input.
fn operand_type(m: &Model, f: &MField, op: FilterOp) -> Type {
    let base = match &f.kind {
        FieldKind::Scalar(ScalarType::Money { .. }) => DECIMAL.to_owned(),
        FieldKind::Scalar(ty) => scalar_type(m, f, ty, true),
        FieldKind::Polymorphic { .. } => RECORD_REF_INPUT.to_owned(),
        _ => ID.to_owned(),
    };
    let list_field = matches!(&f.kind, FieldKind::Scalar(ty) if is_list(ty));
    match op {
        FilterOp::ContainsAll | FilterOp::ContainsSome | FilterOp::ContainsNone => nn_list(&base),
        FilterOp::In | FilterOp::NotIn => super::build::list(&base),
        FilterOp::Contains
        | FilterOp::NotContains
        | FilterOp::StartsWith
        | FilterOp::NotStartsWith
        | FilterOp::EndsWith
        | FilterOp::NotEndsWith
            if !list_field =>
        {
            named(STRING)
        }
        _ => named(&base),
    }
}

/// `where`, `orderBy` and pagination arguments of a list field over `m`.
pub(super) fn list_args(m: &Model, field: Fld) -> Fld {
    page_args(field.arg(Arg::new("where", named(&m.api.where_input))).arg(Arg::new("orderBy", nn_list(&m.api.order_by_input))))
}

pub(super) fn page_args(field: Fld) -> Fld {
    field
        .arg(Arg::new("skip", named(INT)))
        .arg(Arg::new("first", named(INT)))
        .arg(Arg::new("last", named(INT)))
        .arg(Arg::new("after", named(STRING)))
        .arg(Arg::new("before", named(STRING)))
}

fn where_input(cat: &Catalog, m: &Model, name: &str) -> ExtendedType {
    let mut i = Input::new(name).describe(&format!(
        "Filters {} records. All given entries must hold (AND). `f: null` matches null, `f_not: null` non-null; \
         `_contains`, `_starts_with` and `_ends_with` ignore case.",
        m.name
    ));
    for logic in ["AND", "OR", "NOT"] {
        i = i.field(Arg::new(logic, nn_list(name)));
    }
    if m.searchable().next().is_some() {
        let fields: Vec<&str> = m.searchable().map(|f| f.name.as_str()).collect();
        i = i.field(
            Arg::new("_search", named(STRING))
                .describe(&format!("Case- and accent-insensitive match of every word across {}.", fields.join(", "))),
        );
    }
    for f in m.fields.values() {
        match &f.kind {
            FieldKind::ToOne { target, .. } => {
                if let Some(t) = cat.model(target.as_str()) {
                    i = i.field(Arg::new(f.name.as_str(), named(&t.api.where_input)).describe_opt(f.description.as_ref()));
                }
            }
            FieldKind::ToMany { target, .. } => {
                if let Some(t) = cat.model(target.as_str()) {
                    for q in Quantifier::ALL {
                        i = i.field(Arg::new(&format!("{}{}", f.name, q.suffix()), named(&t.api.where_input)));
                    }
                }
            }
            _ => {
                let Some(class) = class_of(f) else { continue };
                for op in FilterOp::ALL {
                    if op.applies_to(class) {
                        let v = Arg::new(&format!("{}{}", f.name, op.suffix()), operand_type(m, f, op));
                        i = i.field(if op == FilterOp::Eq { v.describe_opt(f.description.as_ref()) } else { v });
                    }
                }
            }
        }
    }
    i.done()
}

/// The types of `m`, in the order they are defined.
#[allow(clippy::too_many_lines)] // one type after the other, as the SDL lists them
pub(super) fn types(cat: &Catalog, m: &Model) -> Vec<ExtendedType> {
    let mut out = Vec::new();
    // Enums of select fields.
    for f in m.fields.values() {
        if let FieldKind::Scalar(ScalarType::Select(opts) | ScalarType::MultiSelect(opts)) = &f.kind {
            let mut e = Enm::new(&enum_name(m, f)).describe_opt(f.description.as_ref());
            for o in opts {
                e = e.value(o.as_str());
            }
            out.push(e.done());
        }
    }
    out.push(object_type(cat, m));
    out.push(
        Obj::new(&m.api.change)
            .describe(&format!("A change of one {} record, as a subscription delivers it.", m.name))
            .field(Fld::new("kind", nn(CHANGE_KIND)).describe("What happened."))
            .field(Fld::new("id", nn(ID)).describe("The record."))
            .field(
                Fld::new("record", named(&m.api.object))
                    .describe("The record as it now is, as the subscriber may read it; null when deleted."),
            )
            .done(),
    );
    // Filters, ordering, unique lookup.
    out.push(where_input(cat, m, &m.api.where_input));
    out.push(where_input(cat, m, &m.api.many_where_input));
    let mut unique = Input::new(&m.api.where_unique_input)
        .describe(&format!("Identifies one {}: give exactly one entry.", m.name))
        .field(Arg::new("id", named(ID)));
    for f in m.unique_fields().filter(|f| f.name.as_str() != "id") {
        if let Some(t) = input_type(m, f, false) {
            unique = unique.field(Arg::new(f.name.as_str(), t).describe_opt(f.description.as_ref()));
        }
    }
    out.push(unique.done());
    let mut order =
        Enm::new(&m.api.order_by_input).describe("Ordering keys; nulls sort last ascending. The id is always the last tie-breaker.");
    for f in m.fields.values().filter(|f| orderable(f)) {
        order = order.value(&format!("{}_ASC", f.name)).value(&format!("{}_DESC", f.name));
    }
    out.push(order.done());
    // Write inputs.
    let mut create = Input::new(&m.api.create_input).describe(&format!("The fields of a new {}.", m.name));
    let mut update = Input::new(&m.api.update_input).describe(&format!("Changes to a {}; absent fields are left as they are.", m.name));
    let mut many = Input::new(&m.api.update_many_input).describe(&format!("Changes applied to every {} matched.", m.name));
    let mut many_fields = 0usize;
    for f in m.fields.values().filter(|f| !f.system && !f.read_only) {
        let d = f.description.as_ref();
        match &f.kind {
            FieldKind::ToOne { target, .. } => {
                let Some(t) = cat.model(target.as_str()) else { continue };
                create = create.field(Arg::new(f.name.as_str(), named(&t.api.create_one_inline_input)).describe_opt(d));
                update = update.field(Arg::new(f.name.as_str(), named(&t.api.update_one_inline_input)).describe_opt(d));
            }
            FieldKind::ToMany { target, .. } => {
                let Some(t) = cat.model(target.as_str()) else { continue };
                create = create.field(Arg::new(f.name.as_str(), named(&t.api.create_many_inline_input)).describe_opt(d));
                update = update.field(Arg::new(f.name.as_str(), named(&t.api.update_many_inline_input)).describe_opt(d));
            }
            _ => {
                let required = f.required && f.default.is_none();
                if let (Some(c), Some(u)) = (input_type(m, f, required), input_type(m, f, false)) {
                    create = create.field(Arg::new(f.name.as_str(), c).describe_opt(d));
                    update = update.field(Arg::new(f.name.as_str(), u.clone()).describe_opt(d));
                    many = many.field(Arg::new(f.name.as_str(), u).describe_opt(d));
                    many_fields += 1;
                }
            }
        }
    }
    out.push(create.done());
    out.push(update.done());
    // A model whose own fields are all relations has nothing a batch update could set.
    if many_fields > 0 {
        out.push(many.done());
    }
    out.push(
        Input::new(&m.api.upsert_input)
            .describe(&format!("What to write when the {} exists (`update`) or not (`create`).", m.name))
            .field(Arg::new("create", nn(&m.api.create_input)))
            .field(Arg::new("update", nn(&m.api.update_input)))
            .done(),
    );
    // Relation inputs, used wherever another model points at this one.
    let (uniq, cre) = (m.api.where_unique_input.as_str(), m.api.create_input.as_str());
    out.push(
        Input::new(&m.api.create_one_inline_input)
            .describe(&format!("Points a new record at a {}: give `connect` or `create`.", m.name))
            .field(Arg::new("connect", named(uniq)))
            .field(Arg::new("create", named(cre)))
            .done(),
    );
    out.push(
        Input::new(&m.api.create_many_inline_input)
            .describe(&format!("{} records to relate to a new record.", m.name))
            .field(Arg::new("connect", nn_list(uniq)))
            .field(Arg::new("create", nn_list(cre)))
            .done(),
    );
    out.push(
        Input::new(&m.api.update_one_inline_input)
            .describe(&format!("Changes which {} a record points at: give one of `connect`, `create`, `disconnect: true`.", m.name))
            .field(Arg::new("connect", named(uniq)))
            .field(Arg::new("create", named(cre)))
            .field(Arg::new("disconnect", named(BOOLEAN)))
            .done(),
    );
    out.push(
        Input::new(&m.api.update_many_inline_input)
            .describe(&format!("Changes to the related {} records; `set` replaces them all.", m.name))
            .field(Arg::new("connect", nn_list(uniq)))
            .field(Arg::new("create", nn_list(cre)))
            .field(Arg::new("disconnect", nn_list(uniq)))
            .field(Arg::new("set", nn_list(uniq)))
            .done(),
    );
    // Connection, edge, aggregates, group-by.
    out.push(
        Obj::new(&m.api.connection)
            .describe(&format!("A page of {} records.", m.name))
            .field(Fld::new("edges", nn_list_nn(&m.api.edge)))
            .field(Fld::new("pageInfo", nn(PAGE_INFO)))
            .field(
                Fld::new("aggregate", nn(&m.api.aggregate))
                    .describe("Aggregates over every record matching `where`, regardless of pagination."),
            )
            .done(),
    );
    out.push(Obj::new(&m.api.edge).field(Fld::new("cursor", nn(STRING))).field(Fld::new("node", nn(&m.api.object))).done());
    let numeric: Vec<&MField> = m.fields.values().filter(|f| aggregatable(f)).collect();
    let mut agg = Obj::new(&m.api.aggregate).describe(&format!("Aggregates over {} records.", m.name)).field(Fld::new("count", nn(INT)));
    let mut group = Obj::new(&m.api.group_by)
        .describe(&format!("One group of {} records.", m.name))
        .field(Fld::new("key", nn(&m.api.group_by_key)).describe("The values of the group keys."))
        .field(Fld::new("count", nn(INT)));
    if !numeric.is_empty() {
        let mut num = Obj::new(&m.api.numeric_aggregate).describe("A numeric aggregate per field, as a float; null over no values.");
        for f in &numeric {
            num = num.field(Fld::new(f.name.as_str(), named(FLOAT)));
        }
        out.push(num.done());
        for func in AggFn::ALL {
            agg = agg.field(
                Fld::new(func.name(), named(&m.api.numeric_aggregate))
                    .describe("Null on the results of batch mutations, whose aggregate counts the records affected."),
            );
            group = group.field(Fld::new(func.name(), nn(&m.api.numeric_aggregate)));
        }
    }
    out.push(agg.done());
    let keys: Vec<&MField> =
        m.fields.values().filter(|f| groupable(f) && !matches!(f.kind, FieldKind::Scalar(ScalarType::Money { .. }))).collect();
    if !keys.is_empty() {
        let mut key = Obj::new(&m.api.group_by_key).describe("Group key values (a relation by its id).");
        let mut by = Enm::new(&m.api.group_by_field).describe(&format!("Fields {} records can be grouped by.", m.name));
        for f in keys {
            let ty = match &f.kind {
                FieldKind::Scalar(ty) => scalar_type(m, f, ty, false),
                _ => ID.to_owned(),
            };
            key = key.field(Fld::new(f.name.as_str(), named(&ty)));
            by = by.value(f.name.as_str());
        }
        out.push(key.done());
        out.push(by.done());
        out.push(group.done());
    }
    out
}

fn object_type(cat: &Catalog, m: &Model) -> ExtendedType {
    let mut o = Obj::new(&m.api.object).implement(NODE).describe_opt(m.description.as_ref());
    for f in m.fields.values() {
        let field = match &f.kind {
            FieldKind::Scalar(ty) => {
                let base = scalar_type(m, f, ty, false);
                // A custom field may be added as required to a model with records: those have no
                // value, so it reads as nullable (writes still enforce it).
                let t = match (is_list(ty), f.required && !f.custom) {
                    (true, _) => nn_list(&base),
                    (false, true) => nn(&base),
                    (false, false) => named(&base),
                };
                Fld::new(f.name.as_str(), t).describe_opt(f.description.as_ref())
            }
            FieldKind::Polymorphic { targets, .. } => {
                let list: Vec<&str> = targets.iter().map(crm_model::ModelName::as_str).collect();
                let default = if list.is_empty() { "A record of any model.".to_owned() } else { format!("A {}.", list.join(" or ")) };
                Fld::new(f.name.as_str(), named(RECORD_REF)).describe(&f.description.clone().unwrap_or(default))
            }
            FieldKind::ToOne { target, .. } => {
                let Some(t) = cat.model(target.as_str()) else { continue };
                Fld::new(f.name.as_str(), named(&t.api.object)).describe_opt(f.description.as_ref())
            }
            FieldKind::ToMany { target, .. } => {
                let Some(t) = cat.model(target.as_str()) else { continue };
                o = o.field(list_args(t, Fld::new(f.name.as_str(), nn_list_nn(&t.api.object))).describe_opt(f.description.as_ref()));
                let Some(conn_name) = m.api.connection_fields.get(&f.name) else { continue };
                let conn = list_args(t, Fld::new(conn_name, nn(&t.api.connection)));
                o = o.field(conn.describe(&format!("`{}` as a connection, with cursors, page info and aggregates.", f.name)));
                continue;
            }
        };
        o = o.field(field);
    }
    let tracked: Vec<&str> = m.fields.values().filter(|f| f.tracked).map(|f| f.name.as_str()).collect();
    if !tracked.is_empty() {
        o = o.field(
            Fld::new("history", nn_list_nn(HISTORY))
                .describe(&format!("Changes of the tracked fields ({}), newest first.", tracked.join(", ")))
                .arg(Arg::new("field", named(STRING)).describe("Only this field's changes."))
                .arg(Arg::new("first", named(INT)).describe("Most entries (default 20).")),
        );
    }
    o = o.field(
        Fld::new("timeline", nn_list_nn(TIMELINE_ENTRY))
            .describe("The record's timeline, newest first: its property changes merged with the records that refer to it.")
            .arg(Arg::new("first", named(INT)).describe("Most entries (default 20).")),
    );
    let stages: Vec<&str> = m.fields.values().filter(|f| f.stage).map(|f| f.name.as_str()).collect();
    if !stages.is_empty() {
        o = o.field(
            Fld::new("stages", nn_list_nn(STAGE_TRANSITION))
                .describe(&format!("Stays in each stage of {}, oldest first, with entered and exited times.", stages.join(", ")))
                .arg(Arg::new("field", named(STRING)).describe("Only this stage field.")),
        );
    }
    o.done()
}
