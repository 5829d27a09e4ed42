//! Tenant-defined metadata at runtime: custom fields of every type on Lead, a custom object
//! related to Account, their history, deactivation and deletion, bad definitions refused with
//! nothing changed, and tenant B untouched throughout — on both backends, through the GraphQL API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![allow(clippy::unreadable_literal)] // test code: small counts and literal expectations, one future awaited at a time
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use crm_graphql::{Api, Request, SchemaOptions, Variables};
use crm_model::OrgId;
use crm_orm::Policy;
use serde_json::{Value as Json, json};

const CREATE_FIELD: &str = "mutation($m: String!, $d: JSON!) { createCustomField(model: $m, definition: $d) { version } }";

/// One custom field of each type, on Lead.
fn lead_fields() -> Vec<Json> {
    vec![
        json!({"name": "budgetCode", "type": "text", "searchable": true, "label": "Budget code", "validation": {"maxLength": 20}}),
        json!({"name": "notesLong", "type": "longText"}),
        json!({"name": "altEmail", "type": "email"}),
        json!({"name": "mobile", "type": "phone"}),
        json!({"name": "profileUrl", "type": "url"}),
        json!({"name": "employees", "type": "int", "validation": {"min": 0, "max": 1000000}}),
        json!({"name": "rating", "type": "float"}),
        json!({"name": "discount", "type": "decimal"}),
        json!({"name": "budget", "type": "money"}),
        json!({"name": "vip", "type": "boolean", "default": false}),
        json!({"name": "closeDate", "type": "date"}),
        json!({"name": "followUpAt", "type": "dateTime"}),
        json!({"name": "tier", "type": "select", "options": ["GOLD", "SILVER", "BRONZE"]}),
        json!({"name": "channels", "type": "multiSelect", "options": ["EMAIL", "SMS", "CALL"]}),
        json!({"name": "labels", "type": "tags"}),
        json!({"name": "extra", "type": "json"}),
        json!({"name": "partner", "type": "relation", "target": "Account"}),
    ]
}

const ALL: &str = "name budgetCode notesLong altEmail mobile profileUrl employees rating discount budget { amount currency } \
                   vip closeDate followUpAt tier channels labels extra partner { name }";

async fn sdl_of(b: &Backend, org: &OrgId) -> String {
    let (_, built) = b.api.schema_for(&b.store, org).await.unwrap();
    crm_graphql::types::sdl(&built.schema)
}

/// The block of `sdl` that starts with `header` (`type Lead `), up to its closing brace.
fn block(sdl: &str, header: &str) -> String {
    let start = sdl.find(header).unwrap_or_else(|| panic!("no `{header}` in the SDL"));
    let end = sdl[start..].find("\n}").unwrap() + start + 2;
    sdl[start..end].to_owned()
}

async fn version(g: &Gql<'_>) -> i64 {
    g.ok("{ metadata { version } }", no_vars()).await["metadata"]["version"].as_i64().unwrap()
}

fn names(list: &Json) -> Vec<String> {
    strs(list, "name")
}

#[tokio::test]
async fn custom_fields_of_every_type_on_lead() {
    for b in backends().await {
        let c = cast(&b, "sales");
        let b_before = sdl_of(&b, &c.b).await;
        let acme = create(&c.admin, "Account", json!({"name": "Acme"})).await;
        create(&c.other, "Lead", json!({"name": "B's lead"})).await;

        // Only roles with the metadata right define fields; tenant B is not affected.
        let d = json!({"m": "Lead", "d": {"name": "budgetCode", "type": "text"}});
        assert_eq!(c.restricted.code(CREATE_FIELD, d.clone()).await, "FORBIDDEN", "[{}]", b.name);
        assert_eq!(version(&c.admin).await, 0);
        for def in lead_fields() {
            c.admin.ok(CREATE_FIELD, json!({"m": "Lead", "d": def})).await;
        }
        assert_eq!(version(&c.admin).await, 17, "[{}] one version per change", b.name);
        assert_eq!(version(&c.restricted).await, 17, "the same tenant's other users see the new version");

        // The new fields are ordinary fields of A's schema (snapshotted), nowhere in B's.
        let a_sdl = sdl_of(&b, &c.a).await;
        let snap = [block(&a_sdl, "type Lead "), block(&a_sdl, "input LeadWhereInput "), block(&a_sdl, "enum LeadTier ")].join("\n\n");
        insta::assert_snapshot!("tenant_lead_custom_fields", snap);
        assert_eq!(sdl_of(&b, &c.b).await, b_before, "[{}] tenant B's schema is unchanged", b.name);
        assert!(!b_before.contains("budgetCode"));
        assert_eq!(c.other.code("{ leads { budgetCode } }", no_vars()).await, "BAD_USER_INPUT");

        // Metadata describes them for form-rendering clients.
        let m = c
            .restricted
            .ok("{ metadata { models { name fields { name label type custom options target validation { minLength maxLength min max pattern } readOnly } } } }", no_vars())
            .await;
        let lead = m["metadata"]["models"].as_array().unwrap().iter().find(|x| x["name"] == "Lead").unwrap().clone();
        let field = |n: &str| lead["fields"].as_array().unwrap().iter().find(|f| f["name"] == n).unwrap().clone();
        assert_eq!(field("budgetCode")["label"], "Budget code");
        assert_eq!(field("budgetCode")["custom"], true);
        assert_eq!(field("budgetCode")["validation"]["maxLength"], 20);
        assert_eq!(field("followUpAt")["label"], "Follow up at");
        assert_eq!(field("tier")["options"], json!(["GOLD", "SILVER", "BRONZE"]));
        assert_eq!(field("partner")["type"], "relation");
        assert_eq!(field("partner")["target"], "Account");
        assert_eq!(field("name")["custom"], false);
        assert_eq!(field("id")["readOnly"], true);

        // Write and read every type.
        let q = format!("mutation($d: LeadCreateInput!) {{ createLead(data: $d) {{ id {ALL} }} }}");
        let one = json!({
            "name": "One", "budgetCode": "BX-1", "notesLong": "long\ntext", "altEmail": "one@example.com", "mobile": "+49 30 1234567",
            "profileUrl": "https://example.com/one", "employees": 250, "rating": 4.5, "discount": "12.50",
            "budget": {"amount": "15000.00", "currency": "EUR"}, "vip": true, "closeDate": "2026-12-01",
            "followUpAt": "2026-12-01T09:30:00Z", "tier": "GOLD", "channels": ["EMAIL", "SMS"], "labels": ["hot", "b2b"],
            "extra": {"source": {"campaign": "fall"}, "n": [1, 2]}, "partner": {"connect": {"id": acme}}
        });
        let d = c.admin.ok(&q, json!({"d": one})).await;
        let got = &d["createLead"];
        assert_eq!(got["budget"], json!({"amount": "15000", "currency": "EUR"}), "[{}]", b.name);
        assert_eq!(got["discount"], "12.5");
        assert_eq!(got["followUpAt"], "2026-12-01T09:30:00.000000Z");
        assert_eq!(got["vip"], true);
        assert_eq!(got["channels"], json!(["EMAIL", "SMS"]));
        assert_eq!(got["extra"], json!({"source": {"campaign": "fall"}, "n": [1, 2]}));
        assert_eq!(got["partner"], json!({"name": "Acme"}));
        let two = json!({"name": "Two", "budgetCode": "CX-2", "employees": 12, "rating": 3.0, "discount": "3", "budget": {"amount": "900", "currency": "EUR"},
                         "closeDate": "2026-11-02", "followUpAt": "2026-11-30T08:00:00Z", "tier": "SILVER", "channels": ["CALL"], "labels": ["cold"]});
        let two_id = c.admin.ok(&q, json!({"d": two})).await["createLead"]["id"].as_str().unwrap().to_owned();
        c.admin.ok(&q, json!({"d": {"name": "Three"}})).await;

        // Defaults apply; bad values are refused naming the field, and nothing is written.
        let d = c.admin.ok(r#"{ leads(where: {name: "Three"}) { vip tier budget { amount } } }"#, no_vars()).await;
        assert_eq!(d["leads"][0], json!({"vip": false, "tier": null, "budget": null}));
        for (bad, field) in [
            (json!({"name": "X", "employees": -1}), "employees"),
            (json!({"name": "X", "altEmail": "nope"}), "altEmail"),
            (json!({"name": "X", "budgetCode": "x".repeat(21)}), "budgetCode"),
            (json!({"name": "X", "closeDate": "2026-13-01"}), "closeDate"),
        ] {
            let e = c.admin.error(&q, json!({"d": bad})).await;
            assert_eq!(e["extensions"]["code"], "BAD_USER_INPUT", "[{}] {e}", b.name);
            assert!(
                e["extensions"]["field"].as_str().unwrap_or_default().contains(field) || e["message"].as_str().unwrap().contains(field),
                "{e}"
            );
        }
        assert_eq!(c.admin.ok("{ leadsConnection { aggregate { count } } }", no_vars()).await["leadsConnection"]["aggregate"]["count"], 3);

        // Filter with each type's operators.
        let filter = "query($w: LeadWhereInput) { leads(where: $w, orderBy: name_ASC) { name } }";
        for (w, want) in [
            (json!({"budgetCode_starts_with": "bx"}), vec!["One"]),
            (json!({"employees_gt": 100}), vec!["One"]),
            (json!({"employees_lte": 12}), vec!["Two"]),
            (json!({"rating_gte": 3.0}), vec!["One", "Two"]),
            (json!({"discount_gt": "10"}), vec!["One"]),
            (json!({"budget_gt": "1000"}), vec!["One"]),
            (json!({"vip": true}), vec!["One"]),
            (json!({"vip_not": true}), vec!["Three", "Two"]),
            (json!({"closeDate_lt": "2026-11-15"}), vec!["Two"]),
            (json!({"followUpAt_gt": "2026-11-30T12:00:00Z"}), vec!["One"]),
            (json!({"tier_in": ["GOLD", "BRONZE"]}), vec!["One"]),
            (json!({"tier": null}), vec!["Three"]),
            (json!({"channels_contains_some": ["CALL", "SMS"]}), vec!["One", "Two"]),
            (json!({"labels_contains_all": ["hot", "b2b"]}), vec!["One"]),
            (json!({"labels_contains_none": ["hot"]}), vec!["Three", "Two"]),
            (json!({"partner": {"name": "Acme"}}), vec!["One"]),
            (json!({"mobile_contains": "1234"}), vec!["One"]),
            (json!({"OR": [{"tier": "SILVER"}, {"employees_gt": 200}]}), vec!["One", "Two"]),
        ] {
            let d = c.admin.ok(filter, json!({"w": w})).await;
            assert_eq!(names(&d["leads"]), want, "[{}] where {w}", b.name);
        }
        // Tenant B's leads never match, whatever it asks.
        assert_eq!(c.other.ok("{ leads { name } }", no_vars()).await["leads"], json!([{"name": "B's lead"}]));

        // Order by custom fields, and page through with cursors on them.
        for (o, want) in [
            ("employees_DESC", vec!["Three", "One", "Two"]),
            ("closeDate_ASC", vec!["Two", "One", "Three"]),
            ("discount_ASC", vec!["Two", "One", "Three"]),
            ("budget_DESC", vec!["Three", "One", "Two"]),
            ("followUpAt_DESC", vec!["Three", "One", "Two"]),
        ] {
            let d = c.admin.ok(&format!("{{ leads(orderBy: {o}) {{ name }} }}"), no_vars()).await;
            assert_eq!(names(&d["leads"]), want, "[{}] orderBy {o}", b.name);
        }
        let page = |after: Json| {
            let c = &c;
            async move {
                c.admin
                    .ok(
                        "query($a: String) { leadsConnection(orderBy: employees_DESC, first: 1, after: $a) { edges { cursor node { name } } pageInfo { hasNextPage } } }",
                        json!({"a": after}),
                    )
                    .await["leadsConnection"]
                    .clone()
            }
        };
        let mut after = Json::Null;
        let mut seen = Vec::new();
        loop {
            let p = page(after).await;
            seen.push(p["edges"][0]["node"]["name"].as_str().unwrap().to_owned());
            if p["pageInfo"]["hasNextPage"] != true {
                break;
            }
            after = p["edges"][0]["cursor"].clone();
        }
        assert_eq!(seen, ["Three", "One", "Two"], "[{}] nulls first descending, as on columns", b.name);

        // Search covers custom searchable fields; aggregates and group-by work on them.
        let d = c.admin.ok(r#"{ leads(where: {_search: "cx-2"}) { name } }"#, no_vars()).await;
        assert_eq!(names(&d["leads"]), ["Two"], "[{}]", b.name);
        let d = c
            .admin
            .ok(
                "{ leadsConnection { aggregate { sum { employees } max { rating } } } leadsGroupBy(by: [tier]) { key { tier } count } }",
                no_vars(),
            )
            .await;
        assert_eq!(d["leadsConnection"]["aggregate"]["sum"]["employees"], 262.0, "[{}]", b.name);
        assert_eq!(d["leadsConnection"]["aggregate"]["max"]["rating"], 4.5);
        assert_eq!(
            d["leadsGroupBy"],
            json!([{"key": {"tier": "GOLD"}, "count": 1}, {"key": {"tier": "SILVER"}, "count": 1}, {"key": {"tier": null}, "count": 1}])
        );

        // Updates; every custom change is in the history with its actor.
        let upd = "mutation($id: ID!, $d: LeadUpdateInput!) { updateLead(where: {id: $id}, data: $d) { employees tier extra } }";
        c.restricted.ok(upd, json!({"id": two_id, "d": {"employees": 15, "tier": "GOLD", "extra": {"a": 1}}})).await;
        c.admin.ok(upd, json!({"id": two_id, "d": {"extra": {"b": 2}, "tier": null}})).await;
        let d = c
            .admin
            .ok(r#"query($id: ID!) { lead(where: {id: $id}) { employees tier extra history(field: "employees") { oldValue newValue changedBy } } }"#, json!({"id": two_id}))
            .await;
        assert_eq!(d["lead"]["extra"], json!({"b": 2}), "[{}] a JSON value is replaced, not merged", b.name);
        assert_eq!(d["lead"]["tier"], Json::Null);
        assert_eq!(
            d["lead"]["history"],
            json!([
                {"oldValue": 12, "newValue": 15, "changedBy": "alice"},
                {"oldValue": null, "newValue": 12, "changedBy": "admin-a"},
            ]),
            "[{}]",
            b.name
        );
        let d = c
            .admin
            .ok(r#"query($id: ID!) { lead(where: {id: $id}) { history(field: "tier") { oldValue newValue } } }"#, json!({"id": two_id}))
            .await;
        assert_eq!(
            d["lead"]["history"],
            json!([
                {"oldValue": "GOLD", "newValue": null},
                {"oldValue": "SILVER", "newValue": "GOLD"},
                {"oldValue": null, "newValue": "SILVER"},
            ]),
            "[{}]",
            b.name
        );
        // Batch updates write custom values too.
        let d = c
            .admin
            .ok(r"mutation { updateManyLeadsConnection(where: {tier: null}, data: {rating: 1.5}) { aggregate { count } } }", no_vars())
            .await;
        assert_eq!(d["updateManyLeadsConnection"]["aggregate"]["count"], 2);

        // Deactivate: gone from the schema, values kept; activate: back as they were.
        let (m, f) = ("Lead", "employees");
        c.admin
            .ok("mutation($m: String!, $f: String!) { deactivateCustomField(model: $m, name: $f) { version } }", json!({"m": m, "f": f}))
            .await;
        assert_eq!(c.admin.code("{ leads { employees } }", no_vars()).await, "BAD_USER_INPUT", "[{}]", b.name);
        let defs = c.admin.ok(r#"{ customDefinitions(model: "Lead") { name active definition } }"#, no_vars()).await;
        let e = defs["customDefinitions"].as_array().unwrap().iter().find(|x| x["name"] == "employees").unwrap().clone();
        assert_eq!(e["active"], false);
        assert_eq!(e["definition"]["type"], "int");
        assert_eq!(c.restricted.code(r"{ customDefinitions { name } }", no_vars()).await, "FORBIDDEN");
        // A deactivated field's name is still taken.
        let e = c.admin.error(CREATE_FIELD, json!({"m": "Lead", "d": {"name": "employees", "type": "text"}})).await;
        assert!(e["message"].as_str().unwrap().contains("deactivated"), "{e}");
        c.admin
            .ok("mutation($m: String!, $f: String!) { activateCustomField(model: $m, name: $f) { version } }", json!({"m": m, "f": f}))
            .await;
        let d = c.admin.ok("{ leads(orderBy: name_ASC) { employees } }", no_vars()).await;
        assert_eq!(d["leads"], json!([{"employees": 250}, {"employees": null}, {"employees": 15}]), "[{}]", b.name);

        // Update a definition: new option and label; the type and existing options stay.
        let upd_def = "mutation($d: JSON!) { updateCustomField(model: \"Lead\", name: \"tier\", definition: $d) { version } }";
        c.admin.ok(upd_def, json!({"d": {"name": "tier", "type": "select", "options": ["GOLD", "SILVER", "BRONZE", "PLATINUM"], "label": "Customer tier"}})).await;
        c.admin.ok(r"mutation($id: ID!) { updateLead(where: {id: $id}, data: {tier: PLATINUM}) { tier } }", json!({"id": two_id})).await;
        for bad in [json!({"name": "tier", "type": "text"}), json!({"name": "tier", "type": "select", "options": ["GOLD"]})] {
            assert_eq!(c.admin.code(upd_def, json!({"d": bad})).await, "BAD_USER_INPUT", "[{}]", b.name);
        }

        // Delete: values and history go; a new field of the same name starts empty.
        c.admin.ok("mutation { deleteCustomField(model: \"Lead\", name: \"employees\") { version } }", no_vars()).await;
        c.admin.ok(CREATE_FIELD, json!({"m": "Lead", "d": {"name": "employees", "type": "text"}})).await;
        let d = c
            .admin
            .ok(
                r#"query($id: ID!) { leads { employees } lead(where: {id: $id}) { history(field: "employees") { newValue } } }"#,
                json!({"id": two_id}),
            )
            .await;
        assert_eq!(d["leads"], json!([{"employees": null}, {"employees": null}, {"employees": null}]), "[{}]", b.name);
        assert_eq!(d["lead"]["history"], json!([]));

        // The audit log tells who changed what metadata.
        let d = c.admin.ok(r#"{ auditLog(model: "Lead", first: 100) { action actor detail } }"#, no_vars()).await;
        let log = d["auditLog"].as_array().unwrap();
        assert_eq!(log.len(), 17 + 5, "[{}]", b.name);
        assert_eq!(log[0]["action"], "metadata.createField");
        assert_eq!(log[1]["action"], "metadata.deleteField");
        assert_eq!(log[1]["detail"]["before"]["type"], "int");
        assert_eq!(log[1]["actor"], "admin-a");
        assert_eq!(log[2]["detail"]["after"]["label"], "Customer tier");

        // Tenant B: schema and data unchanged from start to end.
        assert_eq!(sdl_of(&b, &c.b).await, b_before, "[{}]", b.name);
        assert_eq!(
            c.other.ok("{ leads { name } metadata { version } }", no_vars()).await,
            json!({"leads": [{"name": "B's lead"}], "metadata": {"version": 0}})
        );
    }
}

#[tokio::test]
async fn bad_metadata_is_refused_precisely_and_changes_nothing() {
    for b in backends().await {
        let c = cast(&b, "sales");
        c.admin.ok(CREATE_FIELD, json!({"m": "Lead", "d": {"name": "budgetCode", "type": "text"}})).await;
        let before = c.admin.ok(r"{ metadata { version } customDefinitions { model name definition } }", no_vars()).await;
        let cases = [
            (json!({"m": "Lead", "d": {"name": "email", "type": "text"}}), "clashes with another field"),
            (json!({"m": "Lead", "d": {"name": "createdAt", "type": "text"}}), "`createdAt` is reserved"),
            (json!({"m": "Lead", "d": {"name": "history", "type": "text"}}), "`history` is reserved"),
            (json!({"m": "Lead", "d": {"name": "Bad-Name", "type": "text"}}), "invalid field"),
            (json!({"m": "Lead", "d": {"name": "partner", "type": "relation", "target": "Nope"}}), "unknown relation target `Nope`"),
            (json!({"m": "Lead", "d": {"name": "size", "type": "int", "default": "big"}}), "invalid default"),
            (json!({"m": "Lead", "d": {"name": "tier", "type": "select", "options": ["A"], "default": "B"}}), "invalid default"),
            (json!({"m": "Lead", "d": {"name": "code", "type": "text", "unique": true}}), "cannot be unique"),
            (
                json!({"m": "Lead", "d": {"name": "phase", "type": "select", "options": ["A"], "stage": true}}),
                "stage fields are declared in code",
            ),
            (json!({"m": "Lead", "d": {"name": "budgetCode", "type": "text"}}), "already has a custom field"),
            (json!({"m": "Lead", "d": {"name": "x", "type": "text", "colour": "red"}}), "unknown field `colour`"),
            (json!({"m": "Lead", "d": {"name": "x", "type": "nonsense"}}), "not a field definition"),
            (json!({"m": "Nope", "d": {"name": "x", "type": "text"}}), "no such model"),
        ];
        for (vars, want) in cases {
            let e = c.admin.error(CREATE_FIELD, vars.clone()).await;
            assert_eq!(e["extensions"]["code"], "BAD_USER_INPUT", "[{}] {vars}: {e}", b.name);
            assert!(e["message"].as_str().unwrap().contains(want), "[{}] {vars}: expected `{want}` in {e}", b.name);
        }
        let object = "mutation($d: JSON!) { createCustomObject(definition: $d) { version } }";
        for (def, want) in [
            (json!({"name": "Lead", "fields": [{"name": "x", "type": "text"}]}), "clashes"),
            (json!({"name": "Node", "fields": []}), "reserved"),
            (json!({"name": "Project", "table": "projects", "fields": []}), "shared table"),
            (
                json!({"name": "Project", "fields": [{"name": "owner", "type": "relation", "target": "Ghost"}]}),
                "unknown relation target `Ghost`",
            ),
            (
                json!({"name": "Project", "fields": [{"name": "account", "type": "relation", "target": "Account", "onDelete": "cascade"}]}),
                "not cascade",
            ),
            (json!({"name": "Project", "plural": "metadata", "fields": []}), "clashes"),
        ] {
            let e = c.admin.error(object, json!({"d": def})).await;
            assert_eq!(e["extensions"]["code"], "BAD_USER_INPUT", "[{}] {def}: {e}", b.name);
            assert!(e["message"].as_str().unwrap().contains(want), "[{}] {def}: expected `{want}` in {e}", b.name);
        }
        let after = c.admin.ok(r"{ metadata { version } customDefinitions { model name definition } }", no_vars()).await;
        assert_eq!(after, before, "[{}] nothing changed", b.name);
        assert_eq!(c.admin.ok(r"{ auditLog(first: 100) { action } }", no_vars()).await["auditLog"].as_array().unwrap().len(), 1);
    }
}

/// What `metadata` says `g` may do with Project and Lead.
async fn can_create(g: &Gql<'_>) -> (Json, Json) {
    let m = g.ok("{ metadata { models { name canCreate canUpdate canDelete } } }", no_vars()).await;
    let of = |n: &str| m["metadata"]["models"].as_array().unwrap().iter().find(|x| x["name"] == n).cloned().unwrap_or(Json::Null);
    (of("Project"), of("Lead"))
}

#[tokio::test]
async fn custom_object_related_to_account() {
    for b in backends().await {
        let c = cast(&b, "sales");
        let project = json!({"name": "Project", "description": "A delivery project.", "fields": [
            {"name": "title", "type": "text", "required": true, "searchable": true},
            {"name": "budget", "type": "money"},
            {"name": "phase", "type": "select", "options": ["PLAN", "BUILD", "DONE"], "default": "PLAN"},
            {"name": "account", "type": "relation", "target": "Account"},
            {"name": "lead", "type": "relation", "target": "Account", "required": true, "onDelete": "restrict"},
        ]});
        c.admin.ok("mutation($d: JSON!) { createCustomObject(definition: $d) { version } }", json!({"d": project})).await;
        // Another object in the same tenant keeps a different type under the same field name.
        let vendor = json!({"name": "Vendor", "fields": [{"name": "budget", "type": "int"}, {"name": "title", "type": "text"}]});
        c.admin.ok("mutation($d: JSON!) { createCustomObject(definition: $d) { version } }", json!({"d": vendor})).await;
        c.admin
            .ok(CREATE_FIELD, json!({"m": "Account", "d": {"name": "projects", "type": "inverse", "target": "Project", "via": "account"}}))
            .await;
        c.admin.ok(CREATE_FIELD, json!({"m": "Project", "d": {"name": "risk", "type": "int"}})).await;

        let acme = create(&c.admin, "Account", json!({"name": "Acme"})).await;
        let globex = create(&c.admin, "Account", json!({"name": "Globex"})).await;
        create(&c.admin, "Vendor", json!({"title": "Vend", "budget": 5})).await;
        let p1 = create(
            &c.admin,
            "Project",
            json!({"title": "Portal", "budget": {"amount": "5000", "currency": "EUR"}, "risk": 3,
                                                    "account": {"connect": {"id": acme}}, "lead": {"connect": {"id": globex}}}),
        )
        .await;
        // Nested create from the standard side, through the custom inverse relation.
        c.admin
            .ok(
                "mutation($id: ID!) { updateAccount(where: {id: $id}, data: {projects: {create: [{title: \"Migration\", phase: BUILD, lead: {connect: {id: $id}}}]}}) { id } }",
                json!({"id": acme}),
            )
            .await;

        // `metadata` says what a create will do: sales may create only its own (or unassigned)
        // records, and a custom object has no owner field, so no Project can be theirs; leads can.
        let (project, lead) = can_create(&c.restricted).await;
        assert_eq!(project, json!({"name": "Project", "canCreate": false, "canUpdate": false, "canDelete": false}), "[{}]", b.name);
        assert_eq!(lead, json!({"name": "Lead", "canCreate": true, "canUpdate": true, "canDelete": true}), "[{}]", b.name);
        let make = "mutation($d: ProjectCreateInput!) { createProject(data: $d) { title } }";
        let attempt = json!({"d": {"title": "Mine", "lead": {"connect": {"id": acme}}}});
        assert_eq!(c.restricted.code(make, attempt.clone()).await, "FORBIDDEN", "[{}] as metadata said", b.name);
        assert_eq!(
            c.restricted.ok("mutation { createLead(data: {name: \"Mine\"}) { name } }", no_vars()).await["createLead"]["name"],
            "Mine"
        );
        assert_eq!(can_create(&c.admin).await.0["canCreate"], true, "[{}]", b.name);
        assert_eq!(can_create(&c.other).await.0, Json::Null, "[{}] tenant B has no Project", b.name);

        let d = c
            .restricted
            .ok("{ projects(orderBy: title_ASC) { title phase budget { amount } risk account { name } lead { name } } }", no_vars())
            .await;
        assert_eq!(
            d["projects"],
            json!([
                {"title": "Migration", "phase": "BUILD", "budget": null, "risk": null, "account": {"name": "Acme"}, "lead": {"name": "Acme"}},
                {"title": "Portal", "phase": "PLAN", "budget": {"amount": "5000"}, "risk": 3, "account": {"name": "Acme"}, "lead": {"name": "Globex"}},
            ]),
            "[{}]",
            b.name
        );
        let d = c.admin.ok("{ accounts(where: {projects_some: {phase: BUILD}}) { name projects(orderBy: title_DESC) { title } projectsConnection { aggregate { count } } } }", no_vars()).await;
        assert_eq!(
            d["accounts"],
            json!([{"name": "Acme", "projects": [{"title": "Portal"}, {"title": "Migration"}], "projectsConnection": {"aggregate": {"count": 2}}}]),
            "[{}]",
            b.name
        );
        let d = c.admin.ok(r#"{ projects(where: {budget_gt: "100", account: {name: "Acme"}, _search: "port"}) { title } vendors(where: {budget_gt: 1}) { title } }"#, no_vars()).await;
        assert_eq!(d, json!({"projects": [{"title": "Portal"}], "vendors": [{"title": "Vend"}]}), "[{}]", b.name);

        // Update, delete (trash), restore, destroy; the record's history holds its custom values.
        let v = json!({"id": p1});
        c.admin
            .ok(
                "mutation($id: ID!) { updateProject(where: {id: $id}, data: {phase: DONE, account: {disconnect: true}}) { id } }",
                v.clone(),
            )
            .await;
        let d = c.admin.ok(r#"query($id: ID!) { project(where: {id: $id}) { phase account { name } history(field: "phase") { oldValue newValue } } node(id: $id) { id } }"#, v.clone()).await;
        assert_eq!(d["project"]["phase"], "DONE", "[{}]", b.name);
        assert_eq!(d["project"]["account"], Json::Null);
        assert_eq!(d["project"]["history"], json!([{"oldValue": "PLAN", "newValue": "DONE"}, {"oldValue": null, "newValue": "PLAN"}]));
        assert_eq!(d["node"]["id"], p1);
        c.admin.ok("mutation($id: ID!) { deleteProject(where: {id: $id}) { id } }", v.clone()).await;
        assert_eq!(strs(&c.admin.ok("{ projects { title } }", no_vars()).await["projects"], "title"), ["Migration"]);
        assert_eq!(strs(&c.admin.ok("{ projectsTrash { title } }", no_vars()).await["projectsTrash"], "title"), ["Portal"]);
        c.admin.ok("mutation($id: ID!) { restoreProject(where: {id: $id}) { id } }", v.clone()).await;
        // A required custom relation restricts destroying its target; an optional one is cleared.
        let e = c.admin.error("mutation($id: ID!) { destroyAccount(where: {id: $id}) { id } }", json!({"id": globex})).await;
        assert_eq!(e["extensions"]["code"], "CONFLICT", "[{}] {e}", b.name);
        assert!(e["message"].as_str().unwrap().contains("referenced by 1 Project"), "{e}");
        let m = c.admin.ok("{ projects(where: {title: \"Migration\"}) { id } }", no_vars()).await["projects"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        c.admin
            .ok(
                "mutation($id: ID!, $g: ID!) { updateProject(where: {id: $id}, data: {lead: {connect: {id: $g}}}) { id } }",
                json!({"id": m, "g": globex}),
            )
            .await;
        c.admin.ok("mutation($id: ID!) { destroyAccount(where: {id: $id}) { id } }", json!({"id": acme})).await;
        let d = c.admin.ok("{ projects(orderBy: title_ASC) { title account { name } } }", no_vars()).await;
        assert_eq!(d["projects"], json!([{"title": "Migration", "account": null}, {"title": "Portal", "account": null}]), "[{}]", b.name);

        // Tenant B has none of it, and can define its own Project independently.
        assert_eq!(c.other.code("{ projects { title } }", no_vars()).await, "BAD_USER_INPUT");
        assert_eq!(c.other.ok("query($id: ID!) { node(id: $id) { id } }", v.clone()).await["node"], Json::Null);
        c.other
            .ok(
                "mutation($d: JSON!) { createCustomObject(definition: $d) { version } }",
                json!({"d": {"name": "Project", "fields": [{"name": "code", "type": "int"}]}}),
            )
            .await;
        create(&c.other, "Project", json!({"code": 7})).await;
        assert_eq!(c.other.ok("{ projects { code } }", no_vars()).await["projects"], json!([{"code": 7}]), "[{}]", b.name);
        assert_eq!(
            c.admin.ok("{ projectsConnection { aggregate { count } } }", no_vars()).await["projectsConnection"]["aggregate"]["count"],
            2
        );

        // Removing a field from the object drops its values; deleting an object with records is refused.
        let upd = json!({"name": "Project", "fields": [
            {"name": "title", "type": "text", "required": true, "searchable": true},
            {"name": "phase", "type": "select", "options": ["PLAN", "BUILD", "DONE"], "default": "PLAN"},
            {"name": "account", "type": "relation", "target": "Account"},
            {"name": "lead", "type": "relation", "target": "Account", "required": true, "onDelete": "restrict"},
        ]});
        c.admin.ok("mutation($d: JSON!) { updateCustomObject(name: \"Project\", definition: $d) { version } }", json!({"d": upd})).await;
        assert_eq!(c.admin.code("{ projects { budget { amount } } }", no_vars()).await, "BAD_USER_INPUT");
        assert_eq!(c.admin.code("mutation { deleteCustomObject(name: \"Project\") { version } }", no_vars()).await, "CONFLICT");
        for id in strs(&c.admin.ok("{ projects { id } }", no_vars()).await["projects"], "id") {
            c.admin.ok("mutation($id: ID!) { destroyProject(where: {id: $id}) { id } }", json!({"id": id})).await;
        }
        let e = c.admin.error("mutation { deleteCustomObject(name: \"Project\") { version } }", no_vars()).await;
        assert_eq!(e["extensions"]["code"], "BAD_USER_INPUT", "[{}] the inverse on Account still needs it: {e}", b.name);
        assert!(e["message"].as_str().unwrap().contains("unknown relation target `Project`"), "{e}");
        c.admin.ok("mutation { deleteCustomField(model: \"Account\", name: \"projects\") { version } }", no_vars()).await;
        c.admin.ok("mutation { deleteCustomObject(name: \"Project\") { version } }", no_vars()).await;
        assert_eq!(c.admin.code("{ projects { title } }", no_vars()).await, "BAD_USER_INPUT", "[{}]", b.name);
        assert_eq!(
            c.other.ok("{ projects { code } }", no_vars()).await["projects"],
            json!([{"code": 7}]),
            "[{}] B's own object is untouched",
            b.name
        );
    }
}

#[tokio::test]
async fn concurrent_updates_of_custom_values_keep_an_unbroken_history() {
    for b in backends().await {
        let a = org();
        let admin = gql(&b, principal(&a, "admin-a", &["admin"]));
        admin.ok(CREATE_FIELD, json!({"m": "Lead", "d": {"name": "level", "type": "int"}})).await;
        let id = create(&admin, "Lead", json!({"name": "Race", "level": 0})).await;
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let (api, store, p, id) = (b.api.clone(), b.store.clone(), principal(&a, &format!("writer-{w}"), &["admin"]), id.clone());
                tokio::spawn(async move {
                    for i in 1..=15 {
                        let q = "mutation($id: ID!, $l: Long!) { updateLead(where: {id: $id}, data: {level: $l}) { version } }";
                        let r = api
                            .execute(&store, &p, Request::new(q).variables(Variables::from_json(json!({"id": id, "l": w * 100 + i}))))
                            .await;
                        assert!(r.errors.is_empty(), "{:?}", r.errors);
                    }
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
        let d = admin
            .ok(
                r#"query($id: ID!) { lead(where: {id: $id}) { level version history(field: "level", first: 100) { oldValue newValue } } }"#,
                json!({"id": id}),
            )
            .await;
        let mut h = d["lead"]["history"].as_array().unwrap().clone();
        h.reverse();
        assert_eq!(h.len(), 31, "[{}] the creation and every one of 30 updates, none lost or doubled", b.name);
        for pair in h.windows(2) {
            assert_eq!(pair[1]["oldValue"], pair[0]["newValue"], "[{}] each change starts where the previous ended", b.name);
        }
        assert_eq!(h.last().unwrap()["newValue"], d["lead"]["level"]);
        assert_eq!(d["lead"]["version"], 31);
    }
}

#[tokio::test]
async fn another_instance_notices_a_change_without_restart() {
    for b in backends().await {
        let a = org();
        let p = principal(&a, "admin-a", &["admin"]);
        // Two servers over one database: each its own API (schema cache, version cache).
        let one = Arc::new(Api::new(SchemaOptions::default(), Policy::default_roles()));
        let two = Arc::new(Api::new(SchemaOptions::default(), Policy::default_roles()).with_metadata_refresh(Duration::from_millis(200)));
        let run = |api: &Arc<Api>, q: &str| {
            let (api, store, p, q) = (api.clone(), b.store.clone(), p.clone(), q.to_owned());
            async move { serde_json::to_value(api.execute(&store, &p, Request::new(q)).await).unwrap() }
        };
        assert!(run(&two, "{ leads { nickname } }").await.get("errors").is_some());
        let r =
            run(&one, r#"mutation { createCustomField(model: "Lead", definition: {name: "nickname", type: "text"}) { version } }"#).await;
        assert_eq!(r["data"]["createCustomField"]["version"], 1, "[{}] {r}", b.name);
        // The instance that made the change uses it at once; the other within its refresh interval.
        assert!(run(&one, "{ leads { nickname } }").await.get("errors").is_none(), "[{}]", b.name);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let r = run(&two, "{ leads { nickname } metadata { version } }").await;
        assert!(r.get("errors").is_none(), "[{}] {r}", b.name);
        assert_eq!(r["data"]["metadata"]["version"], 1);
        assert_eq!(two.cache().len(), 2, "[{}] the shared schema and A's own", b.name);
    }
}

#[tokio::test]
async fn parent_reads_see_only_their_own_custom_values_and_required_fields_stay_readable() {
    for b in backends().await {
        let (parent, child) = (org(), org());
        b.store.register_tenant(&child, Some(&parent)).await.unwrap();
        let p = gql(&b, principal(&parent, "boss", &["admin", "parent_admin"]));
        let c = gql(&b, principal(&child, "kid", &["admin"]));
        // One name, two meanings: an int in the parent, a text in the child.
        p.ok(CREATE_FIELD, json!({"m": "Lead", "d": {"name": "level", "type": "int"}})).await;
        c.ok(CREATE_FIELD, json!({"m": "Lead", "d": {"name": "level", "type": "text"}})).await;
        create(&p, "Lead", json!({"name": "P1", "level": 7})).await;
        create(&c, "Lead", json!({"name": "C1", "level": "high"})).await;
        let d = p.ok("{ leads(orderBy: level_DESC) { name level } f: leads(where: {level_gt: 1}) { name } }", no_vars()).await;
        assert_eq!(
            d["leads"],
            json!([{"name": "C1", "level": null}, {"name": "P1", "level": 7}]),
            "[{}] the child's row is readable, its value is not the parent's field",
            b.name
        );
        assert_eq!(d["f"], json!([{"name": "P1"}]));
        // Custom objects are never widened to descendants.
        for g in [&p, &c] {
            g.ok(
                "mutation($d: JSON!) { createCustomObject(definition: $d) { version } }",
                json!({"d": {"name": "Note", "fields": [{"name": "body", "type": "text"}]}}),
            )
            .await;
        }
        create(&c, "Note", json!({"body": "child's"})).await;
        assert_eq!(p.ok("{ notes { body } }", no_vars()).await["notes"], json!([]), "[{}]", b.name);
        // A required field added to a model with records needs a default, which fills the
        // parent's own records only (the child's row reads the parent's field as null).
        let region = json!({"m": "Lead", "d": {"name": "region", "type": "text", "required": true}});
        assert_eq!(p.code(CREATE_FIELD, region).await, "BAD_USER_INPUT", "[{}]", b.name);
        p.ok(CREATE_FIELD, json!({"m": "Lead", "d": {"name": "region", "type": "text", "required": true, "default": "none"}})).await;
        let d = p.ok("{ leads(orderBy: name_ASC) { name region } }", no_vars()).await;
        assert_eq!(d["leads"], json!([{"name": "C1", "region": null}, {"name": "P1", "region": "none"}]), "[{}]", b.name);
        assert_eq!(p.code("mutation { createLead(data: {name: \"P2\", region: null}) { id } }", no_vars()).await, "BAD_USER_INPUT");
    }
}

/// A custom field made required on a model that has records: refused without a default (naming
/// what to do, nothing changed), filled with the default otherwise, in this tenant only; a null
/// never reaches a `String!` field.
#[tokio::test]
async fn a_required_field_on_a_model_with_records_is_filled_or_refused() {
    for b in backends().await {
        let c = cast(&b, "sales");
        create(&c.admin, "Lead", json!({"name": "Old one"})).await;
        create(&c.other, "Lead", json!({"name": "B's"})).await;
        let before = version(&c.admin).await;
        let required = json!({"m": "Lead", "d": {"name": "region", "type": "text", "required": true}});
        let e = c.admin.error(CREATE_FIELD, required).await;
        assert_eq!(e["extensions"]["code"], "BAD_USER_INPUT", "[{}] {e}", b.name);
        let message = e["message"].as_str().unwrap();
        assert!(message.contains("1 record(s) without a value of `region`") && message.contains("give the field a default"), "{message}");
        assert_eq!(version(&c.admin).await, before, "[{}] nothing changed", b.name);

        // Optional first, then required with a default: the records without a value get it.
        c.admin.ok(CREATE_FIELD, json!({"m": "Lead", "d": {"name": "region", "type": "text"}})).await;
        create(&c.admin, "Lead", json!({"name": "Has one", "region": "north"})).await;
        let upd = "mutation($d: JSON!) { updateCustomField(model: \"Lead\", name: \"region\", definition: $d) { version } }";
        c.admin.ok(upd, json!({"d": {"name": "region", "type": "text", "required": true, "default": "unknown"}})).await;
        let got = c.restricted.ok("{ leads(orderBy: name_ASC) { name region } }", no_vars()).await;
        assert_eq!(got["leads"], json!([{"name": "Has one", "region": "north"}, {"name": "Old one", "region": "unknown"}]), "[{}]", b.name);
        // A required field with a default on creation fills at once; tenant B is untouched.
        c.admin
            .ok(
                CREATE_FIELD,
                json!({"m": "Lead", "d": {"name": "tier", "type": "select", "options": ["A", "B"], "required": true, "default": "B"}}),
            )
            .await;
        let tiers = c.admin.ok("{ leads(orderBy: name_ASC) { tier } }", no_vars()).await;
        assert_eq!(tiers["leads"], json!([{"tier": "B"}, {"tier": "B"}]), "[{}]", b.name);
        c.other.ok(CREATE_FIELD, json!({"m": "Lead", "d": {"name": "note", "type": "text"}})).await;
        let theirs = c.other.ok("{ leads { name note } }", no_vars()).await;
        assert_eq!(theirs["leads"], json!([{"name": "B's", "note": null}]), "[{}]", b.name);
    }
}

/// Select options carry the labels people see: given in the definition, or the value in words;
/// a label for an option that does not exist is refused.
#[tokio::test]
async fn select_options_have_display_labels() {
    for b in backends().await {
        let c = cast(&b, "sales");
        let def = json!({"m": "Lead", "d": {"name": "tier", "type": "select", "options": ["GOLD", "SILVER_PLUS"], "optionLabels": {"GOLD": "Gold partner"}}});
        c.admin.ok(CREATE_FIELD, def).await;
        let stray = json!({"m": "Lead", "d": {"name": "size", "type": "select", "options": ["S"], "optionLabels": {"XL": "Huge"}}});
        let e = c.admin.error(CREATE_FIELD, stray).await;
        assert!(e["message"].as_str().unwrap().contains("a label for `XL`, which is not an option"), "[{}] {e}", b.name);
        let m = c.restricted.ok("{ metadata { models { name fields { name options optionLabels { value label } } } } }", no_vars()).await;
        let lead = m["metadata"]["models"].as_array().unwrap().iter().find(|x| x["name"] == "Lead").unwrap().clone();
        let field = |n: &str| lead["fields"].as_array().unwrap().iter().find(|f| f["name"] == n).unwrap().clone();
        assert_eq!(
            field("tier")["optionLabels"],
            json!([{"value": "GOLD", "label": "Gold partner"}, {"value": "SILVER_PLUS", "label": "Silver plus"}]),
            "[{}]",
            b.name
        );
        assert_eq!(field("status")["optionLabels"][0], json!({"value": "NEW", "label": "New"}), "[{}] standard fields too", b.name);
        assert_eq!(field("name")["optionLabels"], Json::Null, "[{}] not a select", b.name);
        let theirs = c.other.ok("{ metadata { models { name fields { name } } } }", no_vars()).await;
        let their_lead = theirs["metadata"]["models"].as_array().unwrap().iter().find(|x| x["name"] == "Lead").unwrap().clone();
        assert!(!their_lead["fields"].as_array().unwrap().iter().any(|f| f["name"] == "tier"), "[{}] B has no tier", b.name);
    }
}

/// `int` fields are 64-bit: served as `Long`, values past GraphQL's 32-bit `Int` come back exactly
/// (literals and variables, through the executor and through a learnt plan), and filter.
#[tokio::test]
async fn int_fields_are_long_beyond_32_bits() {
    for b in backends().await {
        let c = cast(&b, "sales");
        c.admin.ok(CREATE_FIELD, json!({"m": "Account", "d": {"name": "revenueCents", "type": "int"}})).await;
        c.admin.ok("mutation { createAccount(data: {name: \"Big\", revenueCents: 5000000000}) { id } }", no_vars()).await;
        let make = "mutation($v: Long!) { createAccount(data: {name: \"Bigger\", revenueCents: $v}) { revenueCents } }";
        let made = c.admin.ok(make, json!({"v": 9_007_199_254_740_991_i64})).await;
        assert_eq!(made["createAccount"]["revenueCents"], json!(9_007_199_254_740_991_i64), "[{}]", b.name);
        let q = "query($min: Long!) { accounts(where: {revenueCents_gt: $min}, orderBy: name_ASC) { name revenueCents } }";
        for _ in 0..2 {
            // The second run is answered by the plan the first one taught.
            let got = c.restricted.ok(q, json!({"min": 4_294_967_296_i64})).await;
            assert_eq!(
                got["accounts"],
                json!([{"name": "Big", "revenueCents": 5_000_000_000_i64}, {"name": "Bigger", "revenueCents": 9_007_199_254_740_991_i64}]),
                "[{}]",
                b.name
            );
        }
        let theirs = c.other.ok("{ accounts { name } }", no_vars()).await;
        assert_eq!(theirs["accounts"], json!([]), "[{}]", b.name);
    }
}
