//! Field-level permissions from a configured policy: a denied field is never returned, filtered,
//! ordered, searched, aggregated or written; roles add up; other tenants are unaffected.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod common;

use common::*;
use crm_graphql::{Api, Request, SchemaOptions, Variables};
use crm_orm::{Policy, Principal};
use serde_json::{Value as Json, json};

/// The default roles plus `intern`: reads everything and works leads, but may not see a lead's
/// `score` or `email` nor set its `status`.
fn policy() -> Policy {
    let extra: Json = json!({
        "intern": {
            "default": {"read": "all"},
            "models": {"Lead": {"read": "all", "create": "all", "update": "all"}},
            "fields": {"Lead": {"denyRead": ["score", "email"], "denyWrite": ["status"]}}
        }
    });
    let mut p = Policy::default_roles();
    let mut extra: Policy = serde_json::from_value(extra).unwrap();
    let more: Policy = serde_json::from_value(engine_roles()).unwrap();
    extra.roles.extend(more.roles);
    p.roles.extend(extra.roles);
    p
}

async fn run(api: &Api, b: &Backend, p: &Principal, q: &str) -> Json {
    let r = api.execute(&b.store, p, Request::new(q).variables(Variables::from_json(json!({})))).await;
    serde_json::to_value(&r).unwrap()
}

fn code(r: &Json) -> &str {
    r["errors"][0]["extensions"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn denied_fields_are_never_read_or_written() {
    let api = Api::new(SchemaOptions::default(), policy());
    for b in backends().await {
        let (a, other) = (org(), org());
        let admin = principal(&a, "admin-a", &["admin"]);
        let intern = principal(&a, "intern-a", &["intern"]);
        let both = principal(&a, "lead-a", &["intern", "admin"]);
        let intern_b = principal(&other, "intern-b", &["intern"]);
        let r = run(
            &api,
            &b,
            &admin,
            r#"mutation { createLead(data: {name: "Ada", email: "ada@x.io", score: 90, status: QUALIFIED}) { id } }"#,
        )
        .await;
        assert!(r.get("errors").is_none(), "{r}");

        // What the intern may do.
        let r = run(&api, &b, &intern, "{ leads { name status } }").await;
        assert_eq!(r["data"]["leads"], json!([{"name": "Ada", "status": "QUALIFIED"}]), "[{}]", b.name);
        let r = run(&api, &b, &intern, r#"mutation { createLead(data: {name: "Bo"}) { name } }"#).await;
        assert_eq!(r["data"]["createLead"]["name"], "Bo", "[{}] {r}", b.name);

        // Every way of touching a denied field is FORBIDDEN, and no data comes back.
        for q in [
            "{ leads { name score } }",
            "{ leads { name email } }",
            "{ leads(where: {score_gt: 50}) { name } }",
            r#"{ leads(where: {email_contains: "ada"}) { name } }"#,
            "{ leads(orderBy: score_DESC) { name } }",
            r#"{ leads(where: {_search: "ada"}) { name } }"#,
            "{ leadsConnection { aggregate { sum { score } } } }",
            "{ leadsGroupBy(by: [score]) { count } }",
            "{ contacts { leads { score } } }",
            r#"{ lead(where: {id: "00000000-0000-0000-0000-000000000000"}) { email } }"#,
            r#"mutation { createLead(data: {name: "Cy", status: CONTACTED}) { name } }"#,
            r"mutation { updateManyLeadsConnection(data: {status: REJECTED}) { aggregate { count } } }",
        ] {
            let r = run(&api, &b, &intern, q).await;
            assert_eq!(code(&r), "FORBIDDEN", "[{}] {q}: {r}", b.name);
            let data = r.get("data").cloned().unwrap_or(Json::Null);
            assert!(!data.to_string().contains("ada@x.io") && !data.to_string().contains("90"), "[{}] {q}: {r}", b.name);
        }
        // Nothing was written by the refused mutations.
        let r = run(&api, &b, &admin, "{ leads(orderBy: name_ASC) { name status } }").await;
        assert_eq!(r["data"]["leads"], json!([{"name": "Ada", "status": "QUALIFIED"}, {"name": "Bo", "status": "NEW"}]), "[{}]", b.name);

        // Roles add up: with admin too, nothing is denied.
        let r = run(&api, &b, &both, "{ leads(where: {score_gt: 50}) { name score email } }").await;
        assert_eq!(r["data"]["leads"], json!([{"name": "Ada", "score": 90, "email": "ada@x.io"}]), "[{}] {r}", b.name);
        // The admin sees it all; an intern of another tenant is denied the field and sees no rows.
        let r = run(&api, &b, &admin, "{ leads(orderBy: score_ASC) { score } }").await;
        assert_eq!(r["data"]["leads"][0]["score"], 90);
        let r = run(&api, &b, &intern_b, "{ leads { score } }").await;
        assert_eq!(code(&r), "FORBIDDEN");
        let r = run(&api, &b, &intern_b, "{ leads { name } }").await;
        assert_eq!(r["data"]["leads"], json!([]));
    }
}

/// Roles that use the engines with field denials: `ops` writes rules but may not read a lead's
/// `score` or `email` nor write its `status`; `analyst` reads reports but not a lead's `source`
/// or `status`; `social` ingests but may not read a contact's `socialHandles`.
fn engine_roles() -> Json {
    json!({
        "ops": {
            "default": {"read": "all"},
            "models": {
                "Lead": {"read": "all", "update": "all"},
                "TagRule": {"read": "all", "create": "all", "update": "all"},
                "AutomationRule": {"read": "all", "create": "all", "update": "all"}
            },
            "fields": {"Lead": {"denyRead": ["score", "email"], "denyWrite": ["status"]}}
        },
        "analyst": {
            "default": {"read": "all"},
            "fields": {"Lead": {"denyRead": ["source", "status"]}}
        },
        "social": {
            "default": {"read": "all"},
            "models": {"SocialEvent": {"read": "all", "create": "all"}},
            "fields": {"Contact": {"denyRead": ["socialHandles"]}}
        }
    })
}

/// Store operations obey field denials whichever door they come through on GraphQL (tag, route,
/// reports, ingestion, and the worker path: rules that act later): a denied field cannot be
/// filtered, counted or returned, from principals of two tenants; what is not denied still works.
#[tokio::test]
async fn engine_operations_obey_field_denials() {
    let api = Api::new(SchemaOptions::default(), policy());
    for b in backends().await {
        let b = Backend { store: crm_engines::Engines::install(&b.store), name: b.name, api: b.api.clone() };
        for (home, other) in [(org(), org()), (org(), org())] {
            let admin = principal(&home, "admin", &["admin"]);
            let (ops, analyst, social) =
                (principal(&home, "ops", &["ops"]), principal(&home, "analyst", &["analyst"]), principal(&home, "social", &["social"]));
            for (name, score) in [("Ada", 90), ("Bo", 10)] {
                let q = format!(
                    r#"mutation {{ createLead(data: {{name: "{name}", email: "{name}@x.io", score: {score}, source: WEB}}) {{ id }} }}"#
                );
                assert!(run(&api, &b, &admin, &q).await.get("errors").is_none());
            }
            let r =
                run(&api, &b, &admin, r#"mutation { createContact(data: {lastName: "Known", socialHandles: ["x:@known"]}) { id } }"#).await;
            assert!(r.get("errors").is_none(), "{r}");
            // In the other tenant the same principals' roles apply to nothing of this tenant.
            let ops_b = principal(&other, "ops", &["ops"]);

            // Tag and route: the caller's `where` goes through their field denials.
            for (who, p) in [("ops", &ops), ("ops of another tenant", &ops_b)] {
                for q in [
                    "mutation { tagLeads(where: {score_gt: 50}) { matched } }",
                    r#"mutation { tagLeads(where: {_search: "ada"}) { matched } }"#,
                    r#"mutation { routeLeads(where: {email_contains: "ada"}, reassign: true) { lead } }"#,
                    "mutation { routeLeads(where: {score_lt: 50}) { lead } }",
                ] {
                    let r = run(&api, &b, p, q).await;
                    assert_eq!(code(&r), "FORBIDDEN", "[{}] {who}: {q}: {r}", b.name);
                    assert!(
                        r["data"].is_null() || r["data"].as_object().is_some_and(|o| o.values().all(Json::is_null)),
                        "[{}] {r}",
                        b.name
                    );
                }
            }
            // Without denied fields the same operations work, on the caller's own tenant only.
            let r = run(&api, &b, &ops, r#"mutation { tagLeads(where: {name: "Ada"}) { matched } }"#).await;
            assert_eq!(r["data"]["tagLeads"]["matched"], 1, "[{}] {r}", b.name);
            let r = run(&api, &b, &ops_b, r#"mutation { tagLeads(where: {name: "Ada"}) { matched } }"#).await;
            assert_eq!(r["data"]["tagLeads"]["matched"], 0, "[{}] {r}", b.name);

            // The worker path: rules act later as the platform, so a rule may only use fields its
            // author may read, and set only fields its author may write.
            for q in [
                r#"mutation { createTagRule(data: {name: "Hot", condition: {score_gt: 50}, tags: ["hot"]}) { id } }"#,
                r#"mutation { createTagRule(data: {name: "Mail", condition: {email_ends_with: "x.io"}, tags: ["m"]}) { id } }"#,
                r#"mutation { createAutomationRule(data: {name: "A", event: "lead.created", condition: {score_gt: 50}, set: {score: 1}}) { id } }"#,
                r#"mutation { createAutomationRule(data: {name: "B", event: "lead.created", condition: {name: "x"}, set: {status: QUALIFIED}}) { id } }"#,
            ] {
                for (who, p) in [("ops", &ops), ("ops of another tenant", &ops_b)] {
                    let r = run(&api, &b, p, q).await;
                    assert_eq!(code(&r), "FORBIDDEN", "[{}] {who}: {q}: {r}", b.name);
                }
            }
            let r =
                run(&api, &b, &ops, r#"mutation { createTagRule(data: {name: "Named", condition: {name: "Ada"}, tags: ["a"]}) { id } }"#)
                    .await;
            assert!(r.get("errors").is_none(), "[{}] a rule on readable fields: {r}", b.name);
            let r = run(&api, &b, &admin, "{ tagRules { name } automationRules { name } }").await;
            assert_eq!(r["data"], json!({"tagRules": [{"name": "Named"}], "automationRules": []}), "[{}] nothing else saved", b.name);

            // Reports: the sections that need a denied field are null, the rest is there.
            let r = run(&api, &b, &analyst, "{ reportSummary { leads { total byStatus { key } bySource { key } byOwner { count } } funnel { stage } conversionRate workload { member } } }").await;
            let rep = &r["data"]["reportSummary"];
            assert!(r.get("errors").is_none(), "[{}] {r}", b.name);
            for (path, v) in [
                ("byStatus", &rep["leads"]["byStatus"]),
                ("bySource", &rep["leads"]["bySource"]),
                ("total", &rep["leads"]["total"]),
                ("funnel", &rep["funnel"]),
                ("workload", &rep["workload"]),
            ] {
                assert!(v.is_null(), "[{}] {path} needs a denied field: {r}", b.name);
            }
            assert_eq!(rep["leads"]["byOwner"][0]["count"], 2, "[{}] {r}", b.name);
            let r = run(&api, &b, &admin, "{ reportSummary { leads { total bySource { key count } } } }").await;
            assert_eq!(r["data"]["reportSummary"]["leads"]["bySource"], json!([{"key": "WEB", "count": 2}]), "[{}] {r}", b.name);

            // Ingestion matches authors by handle: a caller who may not read handles cannot
            // ingest (the outcome would say whose handle it is).
            let q = r#"mutation { ingestSocialEvents(events: [{platform: "x", kind: "DM", externalId: "9", authorHandle: "@known"}]) { created items { contact } } }"#;
            for (who, p) in [("social", &social), ("social of another tenant", &principal(&other, "social", &["social"]))] {
                let r = run(&api, &b, p, q).await;
                assert_eq!(code(&r), "FORBIDDEN", "[{}] {who}: {r}", b.name);
            }
            let r = run(&api, &b, &admin, "{ socialEvents { id } }").await;
            assert_eq!(r["data"]["socialEvents"], json!([]), "[{}] nothing ingested", b.name);
        }
    }
}
