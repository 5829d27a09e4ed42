//! What a user of `crm-model` relies on: the standard catalog, the JSON form of definitions,
//! precise rejections from `resolve`, and value parsing / validation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![allow(clippy::needless_pass_by_value, clippy::assigning_clones, clippy::match_wild_err_arm)] // test code: small counts and literal expectations, one future awaited at a time

use std::fmt::Write as _;

use crm_model::input::{parse, validate};
use crm_model::standard::{standard_catalog, standard_models};
use crm_model::{
    Catalog, Field, FieldDef as F, FieldKind, MetadataError, ModelDef, NameError, OnDelete, ScalarType, Value, ValueError, resolve,
};
use serde_json::{Value as Json, json};

// ---------------------------------------------------------------------------------------------
// Helpers

fn std_cat() -> Catalog {
    standard_catalog().expect("the standard catalog resolves")
}

/// The standard models plus `extra`, resolved; must fail.
fn reject(extra: Vec<ModelDef>) -> MetadataError {
    let mut defs = standard_models();
    defs.extend(extra);
    match resolve(&defs) {
        Ok(_) => panic!("expected a rejection"),
        Err(e) => e,
    }
}

/// A model of its own (no standard models), resolved; must fail.
fn reject_alone(defs: Vec<ModelDef>) -> MetadataError {
    match resolve(&defs) {
        Ok(_) => panic!("expected a rejection"),
        Err(e) => e,
    }
}

fn assert_bad_field(e: &MetadataError, model: &str, field: &str, reason_contains: &str) {
    match e {
        MetadataError::BadField { model: m, field: f, reason } => {
            assert_eq!((m.as_str(), f.as_str()), (model, field), "{e}");
            assert!(reason.contains(reason_contains), "reason `{reason}` lacks `{reason_contains}`");
        }
        other => panic!("expected BadField on {model}.{field}, got {other:?}"),
    }
}

fn assert_clash(e: &MetadataError, model: &str, what: &str, name: &str) {
    match e {
        MetadataError::Clash { model: m, what: w, name: n, other } => {
            assert_eq!((m.as_str(), *w, n.as_str()), (model, what, name), "{e}");
            assert!(!other.is_empty());
        }
        other => panic!("expected Clash of {what} `{name}` in {model}, got {other:?}"),
    }
}

fn assert_bad_name(e: &MetadataError, model: &str, kind: &'static str, name: &str) {
    let expected = MetadataError::BadName { model: model.to_owned(), source: NameError { kind, name: name.to_owned() } };
    assert_eq!(e, &expected);
}

fn kind_label(k: &FieldKind) -> String {
    match k {
        FieldKind::Scalar(ScalarType::Money { currency_column }) => {
            format!("money(+{currency_column})")
        }
        FieldKind::Scalar(ScalarType::Select(o)) => {
            format!("select[{}]", o.iter().map(crm_model::OptionName::as_str).collect::<Vec<_>>().join(","))
        }
        FieldKind::Scalar(ScalarType::MultiSelect(o)) => {
            format!("multiSelect[{}]", o.iter().map(crm_model::OptionName::as_str).collect::<Vec<_>>().join(","))
        }
        FieldKind::Scalar(s) => format!("{s:?}").to_lowercase(),
        FieldKind::ToOne { target, on_delete } => format!("-> {target} onDelete={on_delete:?}"),
        FieldKind::ToMany { target, via } => format!("<- {target}.{via}"),
        FieldKind::Polymorphic { targets, type_column, .. } => {
            format!("-> {} (+{type_column})", targets.iter().map(crm_model::ModelName::as_str).collect::<Vec<_>>().join("|"))
        }
    }
}

/// A compact, stable view of a catalog: model -> table, field -> column + kind + flags. System
/// fields are the same in every model and left out.
fn summary(cat: &Catalog) -> String {
    let mut s = String::new();
    for m in cat.models() {
        let owner = m.owner.as_ref().map(|o| format!(" owner={o}")).unwrap_or_default();
        writeln!(s, "{} ({} / {}) -> {}{owner}", m.name, m.singular, m.plural, m.table).unwrap();
        for f in m.fields.values().filter(|f| !f.system) {
            let mut flags = Vec::new();
            for (on, label) in [
                (f.system, "system"),
                (f.required, "required"),
                (f.unique, "unique"),
                (f.indexed, "indexed"),
                (f.searchable, "searchable"),
                (f.tracked, "tracked"),
            ] {
                if on {
                    flags.push(label.to_owned());
                }
            }
            if let Some(d) = &f.default {
                flags.push(format!("default={}", d.to_json()));
            }
            let c = &f.checks;
            let opt = |x: Option<String>| x.unwrap_or_default();
            if c.min_length.is_some() || c.max_length.is_some() {
                flags.push(format!("len={}..{}", opt(c.min_length.map(|x| x.to_string())), opt(c.max_length.map(|x| x.to_string()))));
            }
            if c.min.is_some() || c.max.is_some() {
                flags.push(format!("range={}..{}", opt(c.min.map(|x| x.to_string())), opt(c.max.map(|x| x.to_string()))));
            }
            if let Some(p) = &c.pattern {
                flags.push(format!("pattern={}", p.as_str()));
            }
            let column = if f.is_stored() { f.column.as_str() } else { "-" };
            writeln!(s, "  {}: {column} {} [{}]", f.name, kind_label(&f.kind), flags.join(" ")).unwrap();
        }
    }
    s
}

fn field<'a>(cat: &'a Catalog, model: &str, name: &str) -> &'a Field {
    cat.model(model).and_then(|m| m.field(name)).unwrap_or_else(|| panic!("{model}.{name} missing"))
}

// ---------------------------------------------------------------------------------------------
// The standard catalog

#[test]
fn standard_catalog_resolves_with_expected_names() {
    let cat = std_cat();
    let names: Vec<&str> = cat.models().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Member",
            "Account",
            "Contact",
            "Lead",
            "Opportunity",
            "Ticket",
            "Activity",
            "SocialEvent",
            "TagRule",
            "TagAssignment",
            "RoutingRule",
            "Assignment",
            "AutomationRule",
            "IngestionRule",
            "Webhook",
            "Attachment"
        ]
    );

    let plural = |m: &str| cat.model(m).unwrap().plural.clone();
    let table = |m: &str| cat.model(m).unwrap().table.to_string();
    assert_eq!(plural("Opportunity"), "opportunities");
    assert_eq!(plural("Activity"), "activities");
    assert_eq!(plural("SocialEvent"), "socialEvents");
    assert_eq!(plural("Lead"), "leads");
    assert_eq!(cat.model("SocialEvent").unwrap().singular, "socialEvent");
    assert_eq!(table("Opportunity"), "opportunities");
    assert_eq!(table("Activity"), "activities");
    assert_eq!(table("SocialEvent"), "social_events");
    assert_eq!(table("Member"), "members");

    assert_eq!(field(&cat, "Contact", "account").column.as_str(), "account_id");
    assert_eq!(field(&cat, "Ticket", "lastContactedAt").column.as_str(), "last_contacted_at");
    let amount = field(&cat, "Opportunity", "amount");
    assert_eq!(amount.column.as_str(), "amount");
    assert!(matches!(amount.scalar(), Some(ScalarType::Money { currency_column }) if currency_column.as_str() == "amount_currency"));
    let subject = field(&cat, "Activity", "subject");
    assert_eq!(subject.column.as_str(), "subject_id");
    match &subject.kind {
        FieldKind::Polymorphic { targets, type_column, .. } => {
            assert_eq!(type_column.as_str(), "subject_type");
            assert_eq!(targets.len(), 5);
        }
        k => panic!("subject is {k:?}"),
    }
    let children = field(&cat, "Account", "children");
    assert!(!children.is_stored());
    assert!(matches!(&children.kind, FieldKind::ToMany { target, via } if target.as_str() == "Account" && via.as_str() == "parent"));
}

#[test]
fn system_fields_come_first_and_are_not_writable() {
    let cat = std_cat();
    for m in cat.models() {
        let sys: Vec<&str> = m.fields.values().take_while(|f| f.system).map(|f| f.name.as_str()).collect();
        assert_eq!(sys, crm_model::SYSTEM_FIELDS, "{}", m.name);
        assert_eq!(m.field("id").unwrap().scalar(), Some(&ScalarType::Id));
        assert!(m.fields.values().skip(sys.len()).all(|f| !f.system));
    }
}

#[test]
fn owners_defaults_and_on_delete() {
    let cat = std_cat();
    let owner = |m: &str| cat.model(m).unwrap().owner.as_ref().map(ToString::to_string);
    assert_eq!(owner("Lead").as_deref(), Some("owner"));
    assert_eq!(owner("Ticket").as_deref(), Some("assignee"));
    assert_eq!(owner("Activity").as_deref(), Some("author"));
    assert_eq!(owner("SocialEvent"), None);

    assert_eq!(field(&cat, "Lead", "status").default, Some(Value::Text("NEW".into())));
    assert_eq!(field(&cat, "Member", "active").default, Some(Value::Bool(true)));
    let on_delete = |m: &str, f: &str| match field(&cat, m, f).kind {
        FieldKind::ToOne { on_delete, .. } => on_delete,
        ref k => panic!("{k:?}"),
    };
    assert_eq!(on_delete("Lead", "owner"), OnDelete::SetNull);
    assert_eq!(on_delete("Opportunity", "account"), OnDelete::Cascade);

    let cat = resolve(&[ModelDef::new("Node2").field(F::relation("parent", "Node2").required())]).unwrap();
    assert!(matches!(field(&cat, "Node2", "parent").kind, FieldKind::ToOne { on_delete: OnDelete::Restrict, .. }));
}

#[test]
fn referencing_lists_to_one_fields_pointing_at_a_model() {
    let cat = std_cat();
    let account = cat.model("Account").unwrap().name.clone();
    let refs: Vec<String> = cat.referencing(&account).map(|(m, f)| format!("{}.{}", m.name, f.name)).collect();
    assert_eq!(refs, ["Account.parent", "Contact.account", "Lead.account", "Opportunity.account"]);
}

#[test]
fn standard_catalog_snapshot() {
    insta::assert_snapshot!("standard_catalog", summary(&std_cat()));
}

// ---------------------------------------------------------------------------------------------
// JSON form

#[test]
fn standard_models_round_trip_through_json() {
    let defs = standard_models();
    let text = serde_json::to_string_pretty(&defs).unwrap();
    let back: Vec<ModelDef> = serde_json::from_str(&text).unwrap();
    assert_eq!(back, defs);
    assert_eq!(summary(&resolve(&back).unwrap()), summary(&std_cat()));
}

#[test]
fn builder_and_json_forms_are_equal() {
    let built = ModelDef::new("Project")
        .plural("projects")
        .describe("A piece of work for an account.")
        .owner("manager")
        .field(F::text("name").required().searchable().length(Some(1), Some(200)))
        .field(F::text("code").unique().pattern("[A-Z]{2,5}-[0-9]+"))
        .field(F::select("status", &["PLANNED", "ACTIVE", "DONE"]).required().tracked().default_value(json!("PLANNED")))
        .field(F::money("budget").range(Some(0.0), None))
        .field(F::date("dueOn"))
        .field(F::tags("labels"))
        .field(F::relation("account", "Account").required().on_delete(OnDelete::Cascade))
        .field(F::relation("manager", "Member").indexed());
    let sent = json!({
        "name": "Project",
        "plural": "projects",
        "description": "A piece of work for an account.",
        "ownerField": "manager",
        "fields": [
            {"name": "name", "type": "text", "required": true, "searchable": true,
             "validation": {"minLength": 1, "maxLength": 200}},
            {"name": "code", "type": "text", "unique": true, "validation": {"pattern": "[A-Z]{2,5}-[0-9]+"}},
            {"name": "status", "type": "select", "options": ["PLANNED", "ACTIVE", "DONE"],
             "required": true, "tracked": true, "default": "PLANNED"},
            {"name": "budget", "type": "money", "validation": {"min": 0}},
            {"name": "dueOn", "type": "date"},
            {"name": "labels", "type": "tags"},
            {"name": "account", "type": "relation", "target": "Account", "required": true, "onDelete": "cascade"},
            {"name": "manager", "type": "relation", "target": "Member", "indexed": true}
        ]
    });
    // docs/MODELDEF.md shows this same JSON.
    let doc = include_str!("../../../docs/MODELDEF.md");
    let block = doc.split("```json\n").nth(1).and_then(|b| b.split("```").next()).unwrap();
    assert_eq!(serde_json::from_str::<Json>(block).unwrap(), sent);
    let parsed: ModelDef = serde_json::from_value(sent.clone()).unwrap();
    assert_eq!(parsed, built);
    // Serializing gives the same JSON back (defaults left out; `min` is a float).
    let mut again = serde_json::to_value(&built).unwrap();
    again["fields"][3]["validation"]["min"] = json!(0);
    assert_eq!(again, sent);

    let mut defs = standard_models();
    defs.push(parsed);
    let cat = resolve(&defs).unwrap();
    let p = cat.model("Project").unwrap();
    assert_eq!(p.table.as_str(), "projects");
    assert_eq!(p.field("account").unwrap().column.as_str(), "account_id");
    assert!(
        matches!(p.field("budget").unwrap().scalar(), Some(ScalarType::Money { currency_column }) if currency_column.as_str() == "budget_currency")
    );
    assert_eq!(p.field("manager").unwrap().column.as_str(), "manager_id");
    assert_eq!(p.owner.as_ref().map(crm_model::FieldName::as_str), Some("manager"));
    assert_eq!(p.field("dueOn").unwrap().column.as_str(), "due_on");
    assert!(p.field("code").unwrap().checks.pattern.as_ref().unwrap().is_match("AB-12"));
    assert!(!p.field("code").unwrap().checks.pattern.as_ref().unwrap().is_match("xAB-12"));
}

/// A tenant model using every field type, as sent to the metadata API.
const ASSET_JSON: &str = r#"[
      {"name": "Asset", "fields": [
        {"name": "label", "type": "text", "required": true},
        {"name": "notes", "type": "longText"},
        {"name": "code", "type": "text", "unique": true, "validation": {"pattern": "[A-Z]+-[0-9]+", "maxLength": 20}},
        {"name": "contactEmail", "type": "email"},
        {"name": "hotline", "type": "phone"},
        {"name": "homepage", "type": "url"},
        {"name": "units", "type": "int", "validation": {"min": 0, "max": 1000}, "default": 1},
        {"name": "weight", "type": "float"},
        {"name": "ratio", "type": "decimal", "default": "0.50"},
        {"name": "price", "type": "money", "default": {"amount": "9.90", "currency": "EUR"}},
        {"name": "active", "type": "boolean", "default": true},
        {"name": "boughtOn", "type": "date", "default": "2026-01-31"},
        {"name": "seenAt", "type": "dateTime"},
        {"name": "grade", "type": "select", "options": ["A", "B"]},
        {"name": "colors", "type": "multiSelect", "options": ["RED", "GREEN"], "default": ["RED", "RED"]},
        {"name": "labels", "type": "tags"},
        {"name": "extra", "type": "json", "default": {"a": [1, 2]}},
        {"name": "holder", "type": "relation", "target": "Asset", "onDelete": "restrict"},
        {"name": "held", "type": "inverse", "target": "Asset", "via": "holder"},
        {"name": "about", "type": "polymorphic", "targets": ["Asset", "Lead"]}
      ]}
    ]"#;

#[test]
fn tenant_json_model_with_every_type_resolves() {
    let extra: Vec<ModelDef> = serde_json::from_str(ASSET_JSON).unwrap();
    let mut defs = standard_models();
    defs.extend(extra);
    let cat = resolve(&defs).unwrap();
    let a = cat.model("Asset").unwrap();
    assert_eq!((a.plural.as_str(), a.table.as_str()), ("assets", "assets"));
    let cols: Vec<&str> = a.stored().filter(|f| !f.system).map(|f| f.column.as_str()).collect();
    assert_eq!(
        cols,
        [
            "label",
            "notes",
            "code",
            "contact_email",
            "hotline",
            "homepage",
            "units",
            "weight",
            "ratio",
            "price",
            "active",
            "bought_on",
            "seen_at",
            "grade",
            "colors",
            "labels",
            "extra",
            "holder_id",
            "about_id"
        ]
    );
    assert_eq!(a.field("ratio").unwrap().default, Some(Value::Decimal("0.50".into())));
    assert_eq!(a.field("price").unwrap().default, Some(Value::Money { amount: "9.90".into(), currency: "EUR".into() }));
    assert_eq!(a.field("colors").unwrap().default, Some(Value::List(vec!["RED".into()])));
    assert_eq!(a.field("units").unwrap().default, Some(Value::Int(1)));
    assert!(matches!(a.field("holder").unwrap().kind, FieldKind::ToOne { on_delete: OnDelete::Restrict, .. }));
}

#[test]
fn null_default_means_no_default() {
    let from_json: ModelDef =
        serde_json::from_value(json!({"name": "Thing", "fields": [{"name": "label", "type": "text", "required": true, "default": null}]}))
            .unwrap();
    let built = ModelDef::new("Thing").field(F::text("label").required().default_value(Json::Null));
    assert_eq!(from_json, built);
    assert_eq!(serde_json::from_value::<ModelDef>(serde_json::to_value(&built).unwrap()).unwrap(), built);
    let cat = resolve(&[built]).unwrap();
    assert_eq!(field(&cat, "Thing", "label").default, None);
}

#[test]
fn unknown_json_keys_are_rejected() {
    let cases = [
        json!({"name": "Thing", "feilds": []}),
        json!({"name": "Thing", "fields": [{"name": "a", "type": "text", "requird": true}]}),
        json!({"name": "Thing", "fields": [{"name": "a", "type": "text", "options": ["A"]}]}),
        json!({"name": "Thing", "fields": [{"name": "a", "type": "select", "options": ["A"], "target": "X"}]}),
        json!({"name": "Thing", "fields": [{"name": "a", "type": "relation", "target": "Thing", "on_delete": "cascade"}]}),
        json!({"name": "Thing", "fields": [{"name": "a", "type": "text", "validation": {"minLen": 1}}]}),
    ];
    for c in cases {
        let e = serde_json::from_value::<ModelDef>(c.clone()).expect_err(&c.to_string());
        assert!(e.to_string().contains("unknown field"), "{c}: {e}");
    }
    let bad_shape = [
        json!({"name": "Thing", "fields": [{"name": "a"}]}),
        json!({"name": "Thing", "fields": [{"name": "a", "type": "string"}]}),
        json!({"name": "Thing", "fields": [{"type": "text"}]}),
        json!({"name": "Thing", "fields": [{"name": "a", "type": "select"}]}),
        json!({"name": "Thing", "fields": [{"name": "a", "type": "relation", "target": "Thing", "onDelete": "nullify"}]}),
        json!({"name": "Thing", "fields": [{"name": "a", "type": "text", "required": "yes"}]}),
        json!({"name": "Thing", "fields": ["a"]}),
        json!({"fields": []}),
    ];
    for c in bad_shape {
        assert!(serde_json::from_value::<ModelDef>(c.clone()).is_err(), "{c}");
    }
    // Errors keep the position of the outer document.
    let e = serde_json::from_str::<ModelDef>(r#"{"name": "Thing", "fields": [{"name": "a", "type": "text", "x": 1}]}"#).unwrap_err();
    assert!(e.to_string().contains("unknown field `x`"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Rejections

#[test]
fn bad_names_are_rejected() {
    assert_bad_name(&reject(vec![ModelDef::new("project")]), "project", "model name", "project");
    assert_bad_name(&reject(vec![ModelDef::new("Pro_ject")]), "Pro_ject", "model name", "Pro_ject");
    assert_bad_name(&reject(vec![ModelDef::new("")]), "", "model name", "");
    assert_bad_name(&reject(vec![ModelDef::new("Project").field(F::text("first_name"))]), "Project", "field name", "first_name");
    assert_bad_name(&reject(vec![ModelDef::new("Project").field(F::text("Name"))]), "Project", "field name", "Name");
    assert_bad_name(&reject(vec![ModelDef::new("Project").field(F::text("näme"))]), "Project", "field name", "näme");
    let long = format!("a{}", "b".repeat(48));
    assert_bad_name(&reject(vec![ModelDef::new("Project").field(F::text(&long))]), "Project", "field name", &long);
    assert_bad_name(&reject(vec![ModelDef::new("Project").plural("Projects")]), "Project", "field name", "Projects");
    assert_bad_name(&reject(vec![ModelDef::new("Project").table("Projects")]), "Project", "SQL name", "Projects");
    assert_bad_name(&reject(vec![ModelDef::new("Project").field(F::relation("account", "account"))]), "Project", "model name", "account");
    assert_bad_field(
        &reject(vec![ModelDef::new("Project").field(F::select("state", &["OK", "NOT OK"]))]),
        "Project",
        "state",
        "invalid option `NOT OK`",
    );
}

#[test]
fn reserved_names_are_rejected() {
    for name in ["id", "createdAt", "updatedAt", "createdBy", "updatedBy", "version", "orgId", "deletedAt", "custom"] {
        let e = reject(vec![ModelDef::new("Project").field(F::text(name))]);
        assert_eq!(e, MetadataError::Reserved { model: "Project".into(), name: name.into() });
    }
    for name in ["Node", "Query", "PageInfo", "Money"] {
        let e = reject(vec![ModelDef::new(name)]);
        assert_eq!(e, MetadataError::Reserved { model: name.into(), name: name.into() });
    }
    let e = reject(vec![ModelDef::new("Project").table("crm_projects")]);
    assert_eq!(e, MetadataError::Reserved { model: "Project".into(), name: "crm_projects".into() });
    // A relation whose foreign key would be a system column.
    let e = reject(vec![ModelDef::new("Project").field(F::relation("org", "Account"))]);
    assert_clash(&e, "Project", "column", "org_id");
}

#[test]
fn duplicates_and_clashes_are_rejected() {
    let e = reject(vec![ModelDef::new("Project").field(F::text("name")).field(F::int("name"))]);
    assert_clash(&e, "Project", "field", "name");

    let e = reject(vec![ModelDef::new("Lead")]);
    assert_clash(&e, "Lead", "model", "Lead");

    let e = reject(vec![ModelDef::new("Prospect").table("leads")]);
    assert_clash(&e, "Prospect", "table", "leads");

    let e = reject(vec![ModelDef::new("LeadConnection")]);
    assert_clash(&e, "LeadConnection", "GraphQL type", "LeadConnection");
    // Declared the other way round, the clash is reported on `Lead`.
    let e = reject_alone(vec![ModelDef::new("LeadConnection"), ModelDef::new("Lead")]);
    assert_clash(&e, "Lead", "GraphQL type", "LeadConnection");
    // The enum type of the select `Lead.status`.
    let e = reject(vec![ModelDef::new("LeadStatus")]);
    assert_clash(&e, "LeadStatus", "GraphQL type", "LeadStatus");
    // A select whose enum type is a built-in one.
    let e = reject_alone(vec![ModelDef::new("Page").field(F::select("info", &["A"]))]);
    assert_clash(&e, "Page", "GraphQL type", "PageInfo");

    let e = reject(vec![ModelDef::new("Prospect").plural("leads").table("prospects")]);
    assert_clash(&e, "Prospect", "root field", "leads");
    let e = reject(vec![ModelDef::new("Leads")]);
    assert_clash(&e, "Leads", "root field", "leads");
    let e = reject(vec![ModelDef::new("Series").plural("series")]);
    assert_clash(&e, "Series", "plural", "series");

    let e = reject(vec![ModelDef::new("Deal").field(F::money("amount")).field(F::text("amountCurrency"))]);
    assert_clash(&e, "Deal", "column", "amount_currency");
    let e = reject(vec![ModelDef::new("Deal").field(F::text("amountCurrency")).field(F::money("amount"))]);
    assert_clash(&e, "Deal", "column", "amount_currency");
    let e = reject(vec![ModelDef::new("Deal").field(F::polymorphic("about", &["Lead"])).field(F::text("aboutType"))]);
    assert_clash(&e, "Deal", "column", "about_type");
    let e = reject(vec![ModelDef::new("Deal").field(F::relation("account", "Account")).field(F::text("accountId"))]);
    assert_clash(&e, "Deal", "column", "account_id");
    let e = reject(vec![ModelDef::new("Deal").field(F::text("fooBar")).field(F::text("fooBAR"))]);
    assert_clash(&e, "Deal", "column", "foo_bar");
    let e = reject(vec![
        ModelDef::new("Deal")
            .field(F::inverse("items", "Deal", "parent"))
            .field(F::relation("parent", "Deal"))
            .field(F::text("itemsConnection")),
    ]);
    assert_clash(&e, "Deal", "field", "itemsConnection");
}

#[test]
fn unknown_relation_targets_are_rejected() {
    let e = reject(vec![ModelDef::new("Project").field(F::relation("client", "Client"))]);
    assert_eq!(e, MetadataError::UnknownTarget { model: "Project".into(), field: "client".into(), target: "Client".into() });
    let e = reject(vec![ModelDef::new("Project").field(F::inverse("tasks", "Task", "project"))]);
    assert_eq!(e, MetadataError::UnknownTarget { model: "Project".into(), field: "tasks".into(), target: "Task".into() });
    let e = reject(vec![ModelDef::new("Note").field(F::polymorphic("about", &["Lead", "Invoice"]))]);
    assert_eq!(e, MetadataError::UnknownTarget { model: "Note".into(), field: "about".into(), target: "Invoice".into() });
    // Targets resolve regardless of declaration order.
    assert!(resolve(&[ModelDef::new("Task").field(F::relation("project", "Project")), ModelDef::new("Project")]).is_ok());
}

#[test]
fn inverse_needs_a_to_one_back() {
    let project = || ModelDef::new("Project").field(F::text("name")).field(F::relation("owner", "Member"));
    // `via` is a text field.
    let e = reject_alone(vec![ModelDef::new("Member").field(F::inverse("projects", "Project", "name")), project()]);
    assert_bad_field(&e, "Member", "projects", "must be a to-one relation to `Member`");
    // `via` does not exist.
    let e = reject_alone(vec![ModelDef::new("Member").field(F::inverse("projects", "Project", "member")), project()]);
    assert_bad_field(&e, "Member", "projects", "Project.member");
    // `via` is a to-one to another model.
    let e = reject(vec![project(), ModelDef::new("Team").field(F::inverse("projects", "Project", "owner"))]);
    assert_bad_field(&e, "Team", "projects", "to-one relation to `Team`");
    // A to-many cannot be required.
    let e = reject(vec![project(), ModelDef::new("Team").field(F::inverse("projects", "Project", "owner").required())]);
    assert_bad_field(&e, "Team", "projects", "cannot be required");
}

#[test]
fn bad_defaults_are_rejected() {
    let with = |f: F| reject(vec![ModelDef::new("Thing").field(f)]);
    assert_bad_field(&with(F::int("count").default_value(json!("ten"))), "Thing", "count", "invalid default: expected an integer");
    assert_bad_field(&with(F::int("count").default_value(json!(1.5))), "Thing", "count", "invalid default");
    assert_bad_field(&with(F::boolean("ok").default_value(json!(1))), "Thing", "ok", "invalid default: expected a boolean");
    assert_bad_field(&with(F::email("mail").default_value(json!("nobody"))), "Thing", "mail", "not a valid e-mail");
    assert_bad_field(&with(F::url("site").default_value(json!("example.com"))), "Thing", "site", "not a valid http(s) URL");
    assert_bad_field(
        &with(F::int("score").range(Some(0.0), Some(100.0)).default_value(json!(101))),
        "Thing",
        "score",
        "must be at most 100",
    );
    assert_bad_field(&with(F::text("code").length(Some(2), None).default_value(json!("x"))), "Thing", "code", "shorter than 2");
    assert_bad_field(
        &with(F::select("state", &["OPEN", "DONE"]).default_value(json!("CLOSED"))),
        "Thing",
        "state",
        "not one of the options",
    );
    assert_bad_field(
        &with(F::multi_select("state", &["OPEN", "DONE"]).default_value(json!(["OPEN", "X"]))),
        "Thing",
        "state",
        "not one of the options",
    );
    assert_bad_field(&with(F::date("due").default_value(json!("2026-02-30"))), "Thing", "due", "not a date");
    assert_bad_field(&with(F::money("price").default_value(json!({"amount": "1", "currency": "eur"}))), "Thing", "price", "currency");
    assert_bad_field(&with(F::money("price").default_value(json!("10.00"))), "Thing", "price", "invalid default");
    assert_bad_field(&with(F::text("code").unique().default_value(json!("A"))), "Thing", "code", "unique");
    assert_bad_field(
        &reject(vec![ModelDef::new("Thing").field(F::relation("account", "Account").default_value(json!("x")))]),
        "Thing",
        "account",
        "only scalar fields",
    );
}

#[test]
fn bad_options_and_checks_are_rejected() {
    let with = |f: F| reject(vec![ModelDef::new("Thing").field(f)]);
    assert_bad_field(&with(F::select("state", &[])), "Thing", "state", "at least one option");
    assert_bad_field(&with(F::multi_select("state", &[])), "Thing", "state", "at least one option");
    assert_bad_field(&with(F::select("state", &["A", "B", "A"])), "Thing", "state", "option `A` is listed twice");
    assert_bad_field(&with(F::polymorphic("about", &[])), "Thing", "about", "at least one target");
    assert_bad_field(&with(F::text("code").pattern("[a-z")), "Thing", "code", "invalid pattern `[a-z`");
    assert_bad_field(&with(F::text("code").pattern("(a{1000}){1000}")), "Thing", "code", "invalid pattern");
    assert_bad_field(&with(F::int("n").range(Some(5.0), Some(1.0))), "Thing", "n", "min is greater than max");
    assert_bad_field(&with(F::text("s").length(Some(5), Some(1))), "Thing", "s", "minLength is greater than maxLength");
    assert_bad_field(&with(F::int("n").length(Some(1), None)), "Thing", "n", "text fields only");
    assert_bad_field(&with(F::text("s").range(Some(1.0), None)), "Thing", "s", "numeric fields only");
    assert_bad_field(&with(F::int("n").searchable()), "Thing", "n", "only text fields can be searchable");
    assert_bad_field(&with(F::tags("t").unique()), "Thing", "t", "cannot be unique");
    assert_bad_field(&with(F::relation("account", "Account").searchable()), "Thing", "account", "relations cannot");
    assert_bad_field(&with(F::relation("account", "Account").required().on_delete(OnDelete::SetNull)), "Thing", "account", "setNull");
}

#[test]
fn owner_field_is_checked() {
    let e = reject(vec![ModelDef::new("Thing").owner("owner").field(F::text("name"))]);
    assert!(
        matches!(&e, MetadataError::BadModel { model, reason } if model == "Thing" && reason.contains("`owner` is not a field")),
        "{e:?}"
    );
    let e = reject(vec![ModelDef::new("Thing").owner("count").field(F::int("count"))]);
    assert!(
        matches!(&e, MetadataError::BadModel { model, reason } if model == "Thing" && reason.contains("must be a to-one relation or a text field")),
        "{e:?}"
    );
    let e = reject(vec![ModelDef::new("Thing").owner("createdBy")]);
    assert!(matches!(&e, MetadataError::BadModel { model, .. } if model == "Thing"), "{e:?}");
    // A text owner (e.g. a ZITADEL user id) is fine.
    let mut defs = standard_models();
    defs.push(ModelDef::new("Thing").owner("ownerSub").field(F::text("ownerSub")));
    assert!(resolve(&defs).is_ok());
}

#[test]
fn errors_display_model_and_field() {
    let e = reject(vec![ModelDef::new("Thing").field(F::select("state", &[]))]);
    assert_eq!(e.to_string(), "model `Thing`, field `state`: a select needs at least one option");
    let e = reject(vec![ModelDef::new("Thing").field(F::text("id"))]);
    assert_eq!(e.to_string(), "model `Thing`: `id` is reserved");
}

// ---------------------------------------------------------------------------------------------
// Resolve never panics: mutated definitions

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n as u64)).unwrap()
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

const NAMES: &[&str] = &[
    "",
    "a",
    "A",
    "id",
    "orgId",
    "node",
    "Node",
    "Lead",
    "lead",
    "leads",
    "Account",
    "Member",
    "owner",
    "account",
    "amount",
    "amountCurrency",
    "subjectType",
    "first_name",
    "Ünïcode",
    "x y",
    "NEW",
    "CLOSED_WON",
    "PageInfo",
    "LeadConnection",
    "leadsConnection",
    "crm_x",
    "social_events",
    "Opportunity",
    "status",
    "parent",
    "children",
    "[a-z",
    "(a+)+$",
    ".*",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "setNull",
    "cascade",
    "restrict",
    "ada@example.com",
    "2026-01-31",
    "2026-01-31T10:00:00Z",
    "1.50",
    "-0",
    "EUR",
];
const TYPES: &[&str] = &[
    "text",
    "longText",
    "email",
    "phone",
    "url",
    "int",
    "float",
    "decimal",
    "money",
    "boolean",
    "date",
    "dateTime",
    "select",
    "multiSelect",
    "tags",
    "json",
    "relation",
    "inverse",
    "polymorphic",
    "nope",
];
const KEYS: &[&str] = &[
    "name",
    "type",
    "required",
    "unique",
    "indexed",
    "searchable",
    "tracked",
    "default",
    "description",
    "validation",
    "options",
    "target",
    "targets",
    "via",
    "onDelete",
    "minLength",
    "maxLength",
    "min",
    "max",
    "pattern",
    "plural",
    "table",
    "ownerField",
    "fields",
    "bogus",
];

fn random_leaf(r: &mut XorShift) -> Json {
    match r.below(9) {
        0 => Json::Null,
        1 => json!(r.below(2) == 0),
        2 => json!(i64::try_from(r.next() % 300).unwrap() - 100),
        3 => json!(-1.5e300),
        4 => json!(r.pick(TYPES)),
        5 => json!([r.pick(NAMES), r.pick(NAMES)]),
        6 => json!({"amount": r.pick(NAMES), "currency": r.pick(NAMES)}),
        7 => json!(u64::MAX),
        _ => json!(r.pick(NAMES)),
    }
}

/// Applies one random mutation somewhere in `v`.
fn mutate(r: &mut XorShift, v: &mut Json, donor: &Json) {
    let go_deeper = r.below(4) != 0;
    match v {
        Json::Array(items) if !items.is_empty() && go_deeper => {
            let i = r.below(items.len());
            mutate(r, &mut items[i], donor);
        }
        Json::Object(map) if !map.is_empty() && go_deeper => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let k = r.pick(&keys).clone();
            mutate(r, map.get_mut(&k).unwrap(), donor);
        }
        Json::Array(items) => match r.below(4) {
            0 if !items.is_empty() => {
                let i = r.below(items.len());
                items.remove(i);
            }
            1 if !items.is_empty() => {
                let i = r.below(items.len());
                let dup = items[i].clone();
                items.push(dup);
            }
            2 => items.push(donor.clone()),
            _ => items.push(random_leaf(r)),
        },
        Json::Object(map) => match r.below(4) {
            0 if !map.is_empty() => {
                let keys: Vec<String> = map.keys().cloned().collect();
                let k = r.pick(&keys).clone();
                map.remove(&k);
            }
            1 => {
                map.insert((*r.pick(KEYS)).to_owned(), random_leaf(r));
            }
            2 => {
                map.insert("type".to_owned(), json!(r.pick(TYPES)));
            }
            _ => {
                map.insert((*r.pick(KEYS)).to_owned(), json!(r.pick(NAMES)));
            }
        },
        // Mostly keep the leaf's JSON type, so that definitions still parse and reach `resolve`.
        Json::String(t) if r.below(4) != 0 => {
            let pool = if r.below(5) == 0 { TYPES } else { NAMES };
            *t = (*r.pick(pool)).to_owned();
        }
        Json::Bool(b) if r.below(4) != 0 => *b = !*b,
        leaf => *leaf = random_leaf(r),
    }
}

#[test]
fn mutated_definitions_never_panic() {
    let mut base = serde_json::to_value(standard_models()).unwrap();
    let asset: Json = serde_json::from_str(ASSET_JSON).unwrap();
    base.as_array_mut().unwrap().extend(asset.as_array().unwrap().iter().cloned());
    let donor = json!({"name": "about", "type": "polymorphic", "targets": ["Lead", "Account"]});
    let mut r = XorShift(0x9E37_79B9_7F4A_7C15);
    let (mut parsed, mut resolved) = (0, 0);
    for case in 0..3000 {
        let mut doc = base.clone();
        for _ in 0..=r.below(4) {
            mutate(&mut r, &mut doc, &donor);
        }
        let outcome = std::panic::catch_unwind(|| {
            let Ok(defs) = serde_json::from_value::<Vec<ModelDef>>(doc.clone()) else {
                return (false, false);
            };
            let Ok(cat) = resolve(&defs) else {
                return (true, false);
            };
            // Ok results are stable: resolving again, or after a JSON round trip, gives the same.
            let again = resolve(&defs).unwrap();
            assert_eq!(format!("{cat:?}"), format!("{again:?}"));
            let text = serde_json::to_string(&defs).unwrap();
            let back: Vec<ModelDef> = serde_json::from_str(&text).unwrap();
            assert_eq!(back, defs);
            assert_eq!(format!("{cat:?}"), format!("{:?}", resolve(&back).unwrap()));
            (true, true)
        });
        match outcome {
            Ok((p, ok)) => {
                parsed += usize::from(p);
                resolved += usize::from(ok);
            }
            Err(_) => panic!("case {case} panicked on {doc}"),
        }
    }
    // The mutations exercise both outcomes.
    assert!(parsed > 300 && resolved > 100 && parsed > resolved, "parsed {parsed}, resolved {resolved}");
}

// ---------------------------------------------------------------------------------------------
// Values through the public API

fn parsed(cat: &Catalog, model: &str, name: &str, j: Json) -> Result<Value, ValueError> {
    let f = field(cat, model, name);
    let v = parse(f, &j)?;
    validate(f, &v)?;
    Ok(v)
}

fn value_err(cat: &Catalog, model: &str, name: &str, j: Json) -> ValueError {
    match parsed(cat, model, name, j.clone()) {
        Ok(v) => panic!("{model}.{name} accepted {j} as {v:?}"),
        Err(e) => {
            assert_eq!(e.field, name, "{e}");
            e
        }
    }
}

#[test]
fn text_formats() {
    let cat = std_cat();
    assert_eq!(parsed(&cat, "Lead", "email", json!("ada@example.com")).unwrap(), Value::Text("ada@example.com".into()));
    for bad in ["ada", "ada@", "@example.com", "ada@example", "a b@example.com", "ada@exa_mple.com", ".ada@example.com"] {
        let e = value_err(&cat, "Lead", "email", json!(bad));
        assert!(e.reason.contains("not a valid e-mail address"), "{bad}: {e}");
    }
    assert!(parsed(&cat, "Lead", "phone", json!("+49 (30) 123-4567")).is_ok());
    for bad in ["1234", "call me", "+49 30 12345 ext. 6", "++4930123456", "123456789012345678901"] {
        let e = value_err(&cat, "Lead", "phone", json!(bad));
        assert!(e.reason.contains("not a valid phone number"), "{bad}: {e}");
    }
    assert!(parsed(&cat, "Account", "website", json!("https://example.com/about?x=1")).is_ok());
    assert!(parsed(&cat, "Account", "website", json!("http://localhost:8080")).is_ok());
    for bad in ["example.com", "ftp://example.com", "https://", "https://exa mple.com", "javascript:alert(1)"] {
        let e = value_err(&cat, "Account", "website", json!(bad));
        assert!(e.reason.contains("not a valid http(s) URL"), "{bad}: {e}");
    }
    let e = value_err(&cat, "Member", "name", json!(""));
    assert_eq!(e.reason, "shorter than 1 characters");
    let e = value_err(&cat, "Member", "name", json!("x".repeat(201)));
    assert_eq!(e.reason, "longer than 200 characters");
    assert!(parsed(&cat, "Member", "name", json!("é".repeat(200))).is_ok(), "length counts characters, not bytes");
    let e = value_err(&cat, "Lead", "name", json!(42));
    assert_eq!(e.reason, "expected a string, got a number");
    // Null parses; whether it is allowed is the writer's business.
    assert_eq!(parsed(&cat, "Lead", "name", Json::Null).unwrap(), Value::Null);
}

#[test]
fn numbers_and_ranges() {
    let cat = std_cat();
    assert_eq!(parsed(&cat, "Lead", "score", json!(0)).unwrap(), Value::Int(0));
    assert_eq!(parsed(&cat, "Lead", "score", json!(100)).unwrap(), Value::Int(100));
    assert_eq!(value_err(&cat, "Lead", "score", json!(101)).reason, "must be at most 100");
    assert_eq!(value_err(&cat, "Lead", "score", json!(-1)).reason, "must be at least 0");
    assert_eq!(value_err(&cat, "Lead", "score", json!(50.5)).reason, "50.5 is not a 64-bit integer");
    assert_eq!(value_err(&cat, "Lead", "score", json!("50")).reason, "expected an integer, got a string");
    assert_eq!(value_err(&cat, "Member", "capacity", json!(u64::MAX)).reason, format!("{} is not a 64-bit integer", u64::MAX));
    assert!(parsed(&cat, "Member", "capacity", json!(i64::MAX)).is_ok());
}

#[test]
fn selects_tags_and_booleans() {
    let cat = std_cat();
    assert_eq!(parsed(&cat, "Lead", "status", json!("QUALIFIED")).unwrap(), Value::Text("QUALIFIED".into()));
    assert_eq!(value_err(&cat, "Lead", "status", json!("qualified")).reason, "`qualified` is not one of the options");
    assert_eq!(value_err(&cat, "Lead", "status", json!(["NEW"])).reason, "expected one of the options, got a list");
    assert_eq!(parsed(&cat, "Lead", "tags", json!([" vip ", "vip", "hot", "hot"])).unwrap(), Value::List(vec!["vip".into(), "hot".into()]));
    assert!(value_err(&cat, "Lead", "tags", json!(["ok", " "])).reason.contains("non-empty"));
    assert!(value_err(&cat, "Lead", "tags", json!(["x".repeat(201)])).reason.contains("at most 200"));
    assert!(value_err(&cat, "Lead", "tags", json!([1])).reason.contains("non-empty strings"));
    assert_eq!(value_err(&cat, "Lead", "tags", json!("vip")).reason, "expected a list of strings, got a string");
    assert_eq!(parsed(&cat, "Member", "away", json!(true)).unwrap(), Value::Bool(true));
    assert_eq!(value_err(&cat, "Member", "away", json!("true")).reason, "expected a boolean, got a string");
    assert_eq!(parsed(&cat, "Member", "workingHours", json!({"mon": ["09:00", "17:00"]})).unwrap().to_json()["mon"][1], "17:00");
}

#[test]
fn money_and_decimals() {
    let cat = std_cat();
    assert_eq!(
        parsed(&cat, "Opportunity", "amount", json!({"amount": "0012.50", "currency": "EUR"})).unwrap(),
        Value::Money { amount: "12.50".into(), currency: "EUR".into() }
    );
    assert_eq!(
        parsed(&cat, "Opportunity", "amount", json!({"amount": 7, "currency": "USD"})).unwrap().to_json(),
        json!({"amount": "7", "currency": "USD"})
    );
    // A bare amount is accepted (it compares against the amount in filters).
    assert_eq!(parsed(&cat, "Opportunity", "amount", json!("10.0")).unwrap(), Value::Decimal("10.0".into()));
    let money_err = |j: Json| value_err(&cat, "Opportunity", "amount", j).reason;
    assert!(money_err(json!({"amount": "-1", "currency": "EUR"})).contains("at least 0"));
    assert!(money_err(json!({"currency": "EUR"})).contains("`amount`"));
    assert!(money_err(json!({"amount": "1"})).contains("`currency`"));
    assert!(money_err(json!({"amount": "1", "currency": "eur"})).contains("`currency`"));
    assert!(money_err(json!({"amount": "1", "currency": "EURO"})).contains("`currency`"));
    assert!(money_err(json!({"amount": "1", "currency": "EUR", "rate": 1})).contains("only `amount` and `currency`"));
    assert!(money_err(json!({"amount": "1e3", "currency": "EUR"})).contains("not a decimal number"));
    assert!(money_err(json!(true)).contains("expected money"));

    let cat = resolve(&[ModelDef::new("Invoice").field(F::decimal("total").range(Some(-1000.0), Some(1000.0)))]).unwrap();
    let dec = |j: Json| parsed(&cat, "Invoice", "total", j);
    for (input, canonical) in [
        (json!("0012.50"), "12.50"),
        (json!("+7"), "7"),
        (json!("-0.00"), "0.00"),
        (json!(" 3.25 "), "3.25"),
        (json!("-999.999"), "-999.999"),
        (json!(42), "42"),
        (json!(0.5), "0.5"),
    ] {
        assert_eq!(dec(input.clone()).unwrap(), Value::Decimal(canonical.into()), "{input}");
    }
    for bad in [json!("1e5"), json!("12."), json!(".5"), json!(""), json!("1,5"), json!("0x10"), json!("NaN")] {
        let e = value_err(&cat, "Invoice", "total", bad.clone());
        assert!(e.reason.contains("is not a decimal number"), "{bad}: {e}");
    }
    assert!(value_err(&cat, "Invoice", "total", json!("9".repeat(39))).reason.contains("more than 38 digits"));
    assert_eq!(value_err(&cat, "Invoice", "total", json!("1000.01")).reason, "must be at most 1000");
}

#[test]
fn dates_and_datetimes() {
    let cat = std_cat();
    let d = parsed(&cat, "Opportunity", "expectedCloseDate", json!("2026-02-28")).unwrap();
    assert_eq!(d.to_json(), json!("2026-02-28"));
    for bad in ["2026-02-30", "28.02.2026", "2026-02-28T00:00:00Z", "tomorrow"] {
        let e = value_err(&cat, "Opportunity", "expectedCloseDate", json!(bad));
        assert!(e.reason.contains("is not a date (YYYY-MM-DD)"), "{bad}: {e}");
    }
    let t = parsed(&cat, "Ticket", "nextContactAt", json!("2026-03-01T10:30:00+02:00")).unwrap();
    assert_eq!(t.to_json(), json!("2026-03-01T08:30:00.000000Z"));
    let t = parsed(&cat, "Ticket", "nextContactAt", json!("2026-03-01T08:30:00.123456789Z")).unwrap();
    assert_eq!(t.to_json(), json!("2026-03-01T08:30:00.123456Z"));
    for (bad, hint) in [
        ("2026-03-01", "it is a date; give a time and an offset (`2026-03-01T00:00:00Z`)"),
        ("2026-03-01 10:30", "it has no time zone offset"),
        ("2026-03-01T10:30:00", "it has no time zone offset; add one, e.g. `Z` for UTC or `+02:00`"),
        ("now", "(a date, a time and an offset: `2026-03-01T09:30:00Z`)"),
    ] {
        let e = value_err(&cat, "Ticket", "nextContactAt", json!(bad));
        assert!(e.reason.contains("is not an RFC 3339 date-time") && e.reason.contains(hint), "{bad}: {e}");
    }
    assert_eq!(value_err(&cat, "Ticket", "nextContactAt", json!(0)).reason, "expected a date-time (RFC 3339), got a number");
}

#[test]
fn references() {
    let cat = std_cat();
    let id = "0190f5c4-7d3a-7b1e-9c2d-3e4f5a6b7c8d";
    assert!(matches!(parsed(&cat, "Lead", "owner", json!(id)).unwrap(), Value::Uuid(_)));
    assert_eq!(value_err(&cat, "Lead", "owner", json!("42")).reason, "`42` is not a valid id");
    assert_eq!(value_err(&cat, "Lead", "owner", json!(42)).reason, "expected an id, got a number");
    let r = parsed(&cat, "Activity", "subject", json!({"type": "Lead", "id": id})).unwrap();
    assert_eq!(r.to_json(), json!({"type": "Lead", "id": id}));
    assert_eq!(value_err(&cat, "Activity", "subject", json!({"type": "Member", "id": id})).reason, "`Member` is not an allowed target");
    assert!(value_err(&cat, "Activity", "subject", json!(id)).reason.contains("expected {\"type\""));
    assert!(value_err(&cat, "Account", "contacts", json!([id])).reason.contains("to-many"));
}

#[test]
fn the_json_example_model_resolves_next_to_the_standard_catalog() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/project.model.json")).unwrap();
    let def: crm_model::ModelDef = serde_json::from_str(&text).unwrap();
    let mut models = crm_model::standard::standard_models();
    models.push(def);
    let cat = crm_model::resolve(&models).unwrap();
    let p = cat.model("Project").unwrap();
    assert_eq!(p.table.as_str(), "projects");
    assert_eq!(p.field("account").unwrap().column.as_str(), "account_id");
}

#[test]
fn indexes_are_resolved_and_checked() {
    let cat = std_cat();
    let lead = cat.model("Lead").unwrap();
    let keys: Vec<Vec<(String, bool)>> = lead.indexes.iter().map(|i| i.keys.iter().map(|(f, d)| (f.to_string(), *d)).collect()).collect();
    assert_eq!(
        keys,
        vec![
            vec![("status".to_owned(), false), ("createdAt".to_owned(), true)],
            vec![("owner".to_owned(), false), ("status".to_owned(), false), ("createdAt".to_owned(), true)],
        ]
    );
    // JSON form.
    let def: ModelDef = serde_json::from_value(
        json!({"name": "Thing", "fields": [{"name": "n", "type": "int"}], "indexes": [{"keys": ["n", "createdAt_DESC"]}]}),
    )
    .unwrap();
    let mut defs = standard_models();
    defs.push(def);
    let cat = resolve(&defs).unwrap();
    assert_eq!(cat.model("Thing").unwrap().indexes.len(), 1);

    let bad = |keys: &[&str], reason: &str| {
        let e = reject(vec![ModelDef::new("Thing").field(F::int("n")).field(F::tags("t")).index(keys)]);
        assert!(matches!(&e, MetadataError::BadModel { model, reason: r } if model == "Thing" && r.contains(reason)), "{keys:?}: {e:?}");
    };
    bad(&["nope"], "not a field");
    bad(&["t"], "stored scalar, to-one or polymorphic");
    bad(&["id"], "stored scalar, to-one or polymorphic");
    bad(&["n", "n_DESC"], "appears twice");
    bad(&[], "1 to 8 keys");
    // A custom object's records share one table: no indexes of its own.
    let ext = crm_model::Extension { objects: vec![ModelDef::new("Gadget").field(F::int("n")).index(&["n"])], fields: Vec::new() };
    let e = cat.extend(&ext).unwrap_err();
    assert!(matches!(&e, MetadataError::BadModel { model, reason } if model == "Gadget" && reason.contains("custom object")), "{e:?}");
}

#[test]
fn a_tenant_catalog_shares_the_models_it_does_not_change() {
    let base = std::sync::Arc::new(std_cat());
    let ext = crm_model::Extension {
        objects: vec![ModelDef::new("Gadget").field(F::int("n")).field(F::relation("account", "Account"))],
        fields: vec![("Lead".into(), F::int("employees")), ("Account".into(), F::inverse("gadgets", "Gadget", "account"))],
    };
    let tenant = base.extend(&ext).unwrap();
    let fresh = resolve(&{
        let mut defs = standard_models();
        defs.push(ext.objects[0].clone());
        defs
    })
    .unwrap();
    for m in base.models() {
        let t = tenant.model(m.name.as_str()).unwrap();
        let changed = ["Lead", "Account"].contains(&m.name.as_str());
        assert_eq!(std::sync::Arc::ptr_eq(m, t), !changed, "{} shared unless changed", m.name);
        if !changed {
            // A shared model is what resolving it with the extension would give.
            assert_eq!(format!("{t:?}"), format!("{:?}", fresh.model(m.name.as_str()).unwrap()), "{}", m.name);
        }
    }
    assert!(tenant.model("Lead").unwrap().field("employees").is_some());
    // Extending a tenant's catalog again starts from the base definitions, sharing nothing custom.
    let again = tenant.extend(&crm_model::Extension { objects: Vec::new(), fields: vec![("Contact".into(), F::int("age"))] }).unwrap();
    assert!(again.model("Lead").unwrap().field("employees").is_none(), "Lead is resolved from its base definition");
    assert!(again.model("Gadget").is_none());
}
