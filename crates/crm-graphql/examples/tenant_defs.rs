//! The custom definitions the tenant-schema benchmark and memory measurement use: 20 custom
//! fields on Lead (every type), a custom object related to Account, and its inverse on Account.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![allow(clippy::cast_precision_loss, clippy::cast_possible_wrap, clippy::cast_possible_truncation, clippy::missing_panics_doc)] // a measuring program: arithmetic on counts, sizes and durations far inside the casts' range; it stops at the first failure

use crm_model::{Extension, FieldDef, ModelDef};
use crm_orm::MetaChange;
use serde_json::json;

/// The field definitions on Lead.
#[must_use]
pub fn lead_fields() -> Vec<FieldDef> {
    let types = ["text", "int", "decimal", "date", "dateTime", "boolean", "float", "email", "url", "longText"];
    let mut out: Vec<FieldDef> =
        (0..18).map(|i| serde_json::from_value(json!({"name": format!("cf{i}"), "type": types[i % types.len()]})).unwrap()).collect();
    out.push(serde_json::from_value(json!({"name": "tier", "type": "select", "options": ["GOLD", "SILVER", "BRONZE"]})).unwrap());
    out.push(serde_json::from_value(json!({"name": "channels", "type": "multiSelect", "options": ["EMAIL", "SMS"]})).unwrap());
    out
}

/// The custom object.
#[must_use]
pub fn project() -> ModelDef {
    serde_json::from_value(json!({"name": "Project", "fields": [
        {"name": "title", "type": "text", "required": true, "searchable": true},
        {"name": "budget", "type": "money"},
        {"name": "phase", "type": "select", "options": ["PLAN", "BUILD", "DONE"]},
        {"name": "account", "type": "relation", "target": "Account"},
    ]}))
    .unwrap()
}

/// The inverse relation on Account.
#[must_use]
pub fn projects_inverse() -> FieldDef {
    serde_json::from_value(json!({"name": "projects", "type": "inverse", "target": "Project", "via": "account"})).unwrap()
}

/// The definitions as metadata changes, in order.
#[must_use]
pub fn changes() -> Vec<MetaChange> {
    let mut out = vec![MetaChange::CreateObject { def: project() }];
    out.push(MetaChange::CreateField { model: "Account".into(), def: projects_inverse() });
    out.extend(lead_fields().into_iter().map(|def| MetaChange::CreateField { model: "Lead".into(), def }));
    out
}

/// The definitions as a catalog extension.
#[must_use]
pub fn extension() -> Extension {
    let mut fields: Vec<(String, FieldDef)> = vec![("Account".into(), projects_inverse())];
    fields.extend(lead_fields().into_iter().map(|f| ("Lead".to_owned(), f)));
    Extension { objects: vec![project()], fields }
}

fn main() {}
