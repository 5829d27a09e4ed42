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
    let extra: Policy = serde_json::from_value(extra).unwrap();
    p.roles.extend(extra.roles);
    p
}

async fn run(api: &Api, b: &Backend, p: &Principal, q: &str) -> Json {
    let r = api.execute(&b.engine, p, Request::new(q).variables(Variables::from_json(json!({})))).await;
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
            r#"mutation { updateManyLeadsConnection(data: {status: REJECTED}) { aggregate { count } } }"#,
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
