//! The schema as data (`crm_graphql::types`): valid by the GraphQL specification; a tenant's
//! schema derived from the base one is exactly the schema generated for its catalog alone, and
//! shares every definition it did not change with the base schema.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::Arc;

use apollo_compiler::Schema;
use apollo_compiler::schema::ExtendedType;
use crm_graphql::types::{Derived, generate};
use crm_model::standard::standard_catalog;
use crm_model::{Extension, FieldDef, ModelDef};
use serde_json::json;

fn extension() -> Extension {
    let field = |v: serde_json::Value| -> FieldDef { serde_json::from_value(v).unwrap() };
    let project: ModelDef = serde_json::from_value(json!({"name": "Project", "fields": [
        {"name": "title", "type": "text", "required": true, "searchable": true},
        {"name": "budget", "type": "money"},
        {"name": "phase", "type": "select", "options": ["PLAN", "BUILD", "DONE"]},
        {"name": "account", "type": "relation", "target": "Account"},
    ]}))
    .unwrap();
    Extension {
        objects: vec![project],
        fields: vec![
            ("Account".into(), field(json!({"name": "projects", "type": "inverse", "target": "Project", "via": "account"}))),
            ("Lead".into(), field(json!({"name": "budgetCode", "type": "text", "searchable": true, "required": true}))),
            ("Lead".into(), field(json!({"name": "employees", "type": "int"}))),
            ("Lead".into(), field(json!({"name": "tier", "type": "select", "options": ["GOLD", "SILVER"]}))),
            ("Lead".into(), field(json!({"name": "channels", "type": "multiSelect", "options": ["EMAIL", "SMS"]}))),
            ("Lead".into(), field(json!({"name": "budget", "type": "money"}))),
            ("Lead".into(), field(json!({"name": "partner", "type": "relation", "target": "Account"}))),
        ],
    }
}

fn assert_same(expected: &Schema, generated: &Schema) {
    let names = |s: &Schema| -> Vec<String> {
        let mut v: Vec<String> = s.types.keys().filter(|n| !n.starts_with("__")).map(ToString::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(names(generated), names(expected), "the same types");
    for (name, ty) in &expected.types {
        assert_eq!(generated.types.get(name), Some(ty), "type {name}");
    }
    assert_eq!(generated.schema_definition, expected.schema_definition);
}

#[test]
fn the_standard_schema_is_valid() {
    let catalog = Arc::new(standard_catalog().unwrap());
    let schema = generate(&catalog).unwrap();
    schema.into_inner().validate().expect("valid by the specification");
}

#[test]
fn a_tenants_schema_is_its_catalogs_and_valid() {
    let base = Arc::new(standard_catalog().unwrap());
    let tenant = Arc::new(base.extend(&extension()).unwrap());
    let derived = Derived::base(Arc::clone(&base)).unwrap();
    let schema = derived.tenant(&tenant).unwrap();
    assert_same(&generate(&tenant).unwrap(), &schema);
    Schema::clone(&schema).validate().expect("valid by the specification");
    // The base catalog itself gets the base schema.
    assert!(Arc::ptr_eq(&derived.tenant(&base).unwrap(), derived.schema()));
}

#[test]
fn a_tenants_schema_shares_what_it_did_not_change() {
    let base = Arc::new(standard_catalog().unwrap());
    let tenant = base.extend(&extension()).unwrap();
    let derived = Derived::base(Arc::clone(&base)).unwrap();
    let schema = derived.tenant(&tenant).unwrap();
    let shared = |name: &str| {
        let (a, b) = (&schema.types[name], &derived.schema().types[name]);
        match (a, b) {
            (ExtendedType::Object(a), ExtendedType::Object(b)) => a.ptr_eq(b),
            (ExtendedType::InputObject(a), ExtendedType::InputObject(b)) => a.ptr_eq(b),
            (ExtendedType::Enum(a), ExtendedType::Enum(b)) => a.ptr_eq(b),
            _ => false,
        }
    };
    // Types of models the tenant did not change are the base's own definitions.
    for name in ["Contact", "ContactWhereInput", "ContactCreateInput", "Ticket", "LeadStatus", "PageInfo"] {
        assert!(shared(name), "{name} is shared");
    }
    // Changed types are new, but their unchanged fields are the base's.
    for name in ["Lead", "LeadWhereInput", "LeadCreateInput", "LeadOrderByInput", "Account", "Query", "Mutation"] {
        assert!(!shared(name), "{name} changed");
    }
    let (ExtendedType::Object(lead), ExtendedType::Object(base_lead)) = (&schema.types["Lead"], &derived.schema().types["Lead"]) else {
        panic!("Lead is an object")
    };
    assert!(lead.fields["name"].ptr_eq(&base_lead.fields["name"]), "an unchanged field is shared");
    assert!(lead.fields.contains_key("budgetCode") && !base_lead.fields.contains_key("budgetCode"));
    // And nothing of a tenant reaches the base schema.
    assert!(!derived.schema().types.contains_key("Project"));
}
