//! The types every schema has, whatever its catalog: `Node`, the scalars, money, references,
//! history, stages, page info and the audit log's entries.

use apollo_compiler::Node;
use apollo_compiler::schema::{ExtendedType, InterfaceType, ScalarType};
use crm_model::api::builtin::{
    AUDIT_ENTRY, CHANGE_KIND, DATE, DATETIME, DECIMAL, HISTORY, JSON, LONG, MONEY, MONEY_INPUT, NODE, PAGE_INFO, RECORD_REF,
    RECORD_REF_INPUT, STAGE_TRANSITION, TIMELINE_ENTRY,
};

use super::build::{Arg, Enm, Fld, Input, Obj, name, named, nn};
use super::{BOOLEAN, FLOAT, ID, INT, STRING};

fn scalar(n: &str, description: &str) -> ExtendedType {
    ExtendedType::Scalar(Node::new(ScalarType {
        description: Some(Node::new_str(description)),
        name: name(n),
        directives: apollo_compiler::schema::DirectiveList::default(),
    }))
}

/// The shared types, in the order they are defined.
pub(super) fn types() -> Vec<ExtendedType> {
    let mut node = InterfaceType {
        description: Some(Node::new_str("A record of any model.")),
        name: name(NODE),
        implements_interfaces: apollo_compiler::collections::IndexSet::default(),
        directives: apollo_compiler::schema::DirectiveList::default(),
        fields: apollo_compiler::collections::IndexMap::default(),
    };
    let id = Fld::new("id", nn(ID));
    node.fields.insert(name("id"), apollo_compiler::schema::Component::new(id.into_definition()));
    vec![
        ExtendedType::Interface(Node::new(node)),
        scalar(DATETIME, "An instant in UTC, RFC 3339 (`2026-11-21T09:30:00.000000Z`)."),
        scalar(DATE, "A calendar date, `YYYY-MM-DD`."),
        scalar(DECIMAL, "An exact decimal number, as a string (`\"1250.50\"`); numbers are accepted as input."),
        scalar(JSON, "Any JSON value."),
        scalar(
            LONG,
            "A 64-bit integer (the `int` fields: GraphQL's `Int` stops at 2^31), as a JSON number; JavaScript reads it exactly up to 2^53.",
        ),
        Enm::new(CHANGE_KIND)
            .describe("What happened to a record.")
            .value("CREATED")
            .value("UPDATED")
            .value("DELETED")
            .done(),
        Obj::new(MONEY)
            .describe("An amount with its ISO 4217 currency.")
            .field(Fld::new("amount", nn(DECIMAL)))
            .field(Fld::new("currency", nn(STRING)))
            .done(),
        Input::new(MONEY_INPUT)
            .describe("An amount with its ISO 4217 currency.")
            .field(Arg::new("amount", nn(DECIMAL)))
            .field(Arg::new("currency", nn(STRING)))
            .done(),
        Obj::new(RECORD_REF)
            .describe("A reference to a record of one of several models.")
            .field(Fld::new("type", nn(STRING)).describe("The model name."))
            .field(Fld::new("id", nn(ID)))
            .done(),
        Input::new(RECORD_REF_INPUT)
            .describe("A reference to a record of one of several models.")
            .field(Arg::new("type", nn(STRING)).describe("The model name."))
            .field(Arg::new("id", nn(ID)))
            .done(),
        Obj::new(HISTORY)
            .describe("One change of a tracked field.")
            .field(Fld::new("field", nn(STRING)))
            .field(Fld::new("oldValue", named(JSON)))
            .field(Fld::new("newValue", named(JSON)))
            .field(Fld::new("changedAt", nn(DATETIME)))
            .field(Fld::new("changedBy", named(STRING)).describe("The acting user's id."))
            .done(),
        Obj::new(TIMELINE_ENTRY)
            .describe("An entry of a record's timeline: a change of a tracked field, or a record that refers to it (an activity, a note).")
            .field(Fld::new("kind", nn(STRING)).describe("`change`, or the referring record's model (`Activity`)."))
            .field(Fld::new("at", nn(DATETIME)))
            .field(Fld::new("actor", named(STRING)).describe("The acting user's id."))
            .field(Fld::new("field", named(STRING)).describe("A change: the field."))
            .field(Fld::new("oldValue", named(JSON)).describe("A change: the value before."))
            .field(Fld::new("newValue", named(JSON)).describe("A change: the value after."))
            .field(Fld::new("id", named(ID)).describe("A referring record: its id."))
            .field(Fld::new("record", named(JSON)).describe("A referring record: its fields."))
            .done(),
        Obj::new(STAGE_TRANSITION)
            .describe("A stay in one stage of a lifecycle (stage) field.")
            .field(Fld::new("field", nn(STRING)))
            .field(Fld::new("stage", nn(STRING)))
            .field(Fld::new("enteredAt", nn(DATETIME)))
            .field(Fld::new("exitedAt", named(DATETIME)).describe("Null while the record is still in the stage."))
            .field(Fld::new("enteredBy", named(STRING)))
            .field(Fld::new("durationSeconds", nn(FLOAT)).describe("Time spent in the stage: until it was left, or until now."))
            .done(),
        Obj::new(PAGE_INFO)
            .describe("Where a page sits in the whole result.")
            .field(Fld::new("hasNextPage", nn(BOOLEAN)))
            .field(Fld::new("hasPreviousPage", nn(BOOLEAN)))
            .field(Fld::new("startCursor", named(STRING)))
            .field(Fld::new("endCursor", named(STRING)))
            .field(Fld::new("pageSize", named(INT)).describe("Records in this page."))
            .done(),
        Obj::new(AUDIT_ENTRY)
            .describe("Who did what, when.")
            .field(Fld::new("at", nn(DATETIME)))
            .field(Fld::new("actor", named(STRING)))
            .field(Fld::new("action", nn(STRING)).describe(
                "delete, restore, destroy, or metadata.<change> (createField, updateField, activateField, deactivateField, deleteField, createObject, updateObject, deleteObject).",
            ))
            .field(Fld::new("model", named(STRING)))
            .field(Fld::new("recordId", named(ID)))
            .field(
                Fld::new("detail", named(JSON)).describe("For metadata changes: the model, the field, and the definition before and after."),
            )
            .done(),
    ]
}
