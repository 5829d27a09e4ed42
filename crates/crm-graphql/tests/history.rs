//! Property history and lifecycle stages: every change of a tracked field is kept with its time
//! and actor, stage fields keep entered/exited times — in the writing transaction, correct under
//! concurrent updates of one record, invisible to other tenants, and subject to field denials.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod common;

use common::*;
use crm_graphql::{Api, Request, SchemaOptions};
use crm_orm::Policy;
use serde_json::{Value as Json, json};

const DETAIL: &str = "query($id: ID!) { lead(where: {id: $id}) { status history { field oldValue newValue changedAt changedBy } \
                      stages { field stage enteredAt exitedAt enteredBy durationSeconds } } }";

fn set_status(id: &str, status: &str) -> (String, Json) {
    (
        "mutation($id: ID!, $s: LeadStatus!) { updateLead(where: {id: $id}, data: {status: $s}) { version } }".to_owned(),
        json!({"id": id, "s": status}),
    )
}

#[tokio::test]
async fn tracked_fields_and_stages_are_recorded() {
    for b in backends().await {
        let c = cast(&b, "sales");
        let member = create(&c.admin, "Member", json!({"name": "Rep", "sub": "rep"})).await;
        let id = create(&c.admin, "Lead", json!({"name": "Ada"})).await;
        for s in ["QUALIFIED", "CONTACTED"] {
            let (q, v) = set_status(&id, s);
            c.admin.ok(&q, v).await;
        }
        // A change of an untracked field leaves no history; the owner is tracked.
        c.admin.ok(r#"mutation($id: ID!) { updateLead(where: {id: $id}, data: {company: "X"}) { id } }"#, json!({"id": id})).await;
        c.admin
            .ok(
                "mutation($id: ID!, $m: ID!) { updateLead(where: {id: $id}, data: {owner: {connect: {id: $m}}}) { id } }",
                json!({"id": id, "m": member}),
            )
            .await;
        for g in [&c.admin, &c.restricted] {
            let d = g.ok(DETAIL, json!({"id": id})).await;
            let lead = &d["lead"];
            let h: Vec<(String, Json, Json)> = lead["history"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| (e["field"].as_str().unwrap().to_owned(), e["oldValue"].clone(), e["newValue"].clone()))
                .collect();
            assert_eq!(
                h,
                vec![
                    ("owner".to_owned(), Json::Null, json!(member)),
                    ("status".to_owned(), json!("QUALIFIED"), json!("CONTACTED")),
                    ("status".to_owned(), json!("NEW"), json!("QUALIFIED")),
                    ("status".to_owned(), Json::Null, json!("NEW")),
                ],
                "[{}] newest first",
                b.name
            );
            assert!(lead["history"].as_array().unwrap().iter().all(|e| e["changedBy"] == "admin-a" && e["changedAt"].is_string()));
            let stages = lead["stages"].as_array().unwrap();
            let names: Vec<&str> = stages.iter().map(|s| s["stage"].as_str().unwrap()).collect();
            assert_eq!(names, ["NEW", "QUALIFIED", "CONTACTED"], "[{}] oldest first", b.name);
            assert_eq!(stages[0]["exitedAt"], stages[1]["enteredAt"], "[{}] one stage ends as the next begins", b.name);
            assert_eq!(stages[1]["exitedAt"], stages[2]["enteredAt"]);
            assert_eq!(stages[2]["exitedAt"], Json::Null, "still in the last stage");
            assert!(stages.iter().all(|s| s["durationSeconds"].as_f64().unwrap() >= 0.0));
        }
        // One field's history, limited.
        let d = c
            .admin
            .ok(r#"query($id: ID!) { lead(where: {id: $id}) { history(field: "status", first: 1) { newValue } } }"#, json!({"id": id}))
            .await;
        assert_eq!(d["lead"]["history"], json!([{"newValue": "CONTACTED"}]));
        let code = c
            .admin
            .code(r#"query($id: ID!) { lead(where: {id: $id}) { history(field: "company") { newValue } } }"#, json!({"id": id}))
            .await;
        assert_eq!(code, "BAD_USER_INPUT", "company is not tracked");
        // Another tenant sees neither the record nor its history.
        let d = c.other.ok("query($id: ID!) { node(id: $id) { ... on Lead { history { field } } } }", json!({"id": id})).await;
        assert_eq!(d["node"], Json::Null);
        // Lists carry history in the same statement.
        let d = c.admin.ok("{ leads { stages { stage } } }", no_vars()).await;
        assert_eq!(d["leads"][0]["stages"].as_array().unwrap().len(), 3);
    }
}

#[tokio::test]
async fn history_respects_field_denials() {
    let mut policy = Policy::default_roles();
    let extra: Policy = serde_json::from_value(json!({
        "intern": {"default": {"read": "all"}, "fields": {"Lead": {"denyRead": ["status"]}}}
    }))
    .unwrap();
    policy.roles.extend(extra.roles);
    let api = Api::new(SchemaOptions::default(), policy);
    for b in backends().await {
        let a = org();
        let admin = gql(&b, principal(&a, "admin-a", &["admin"]));
        let id = create(&admin, "Lead", json!({"name": "Ada"})).await;
        let member = create(&admin, "Member", json!({"name": "Rep"})).await;
        admin
            .ok(
                "mutation($id: ID!, $m: ID!) { updateLead(where: {id: $id}, data: {status: REJECTED, owner: {connect: {id: $m}}}) { id } }",
                json!({"id": id, "m": member}),
            )
            .await;
        let intern = principal(&a, "intern", &["intern"]);
        let run = |q: &'static str| {
            let (api, b, intern, id) = (&api, &b, intern.clone(), id.clone());
            async move {
                let r =
                    api.execute(&b.store, &intern, Request::new(q).variables(crm_graphql::Variables::from_json(json!({"id": id})))).await;
                serde_json::to_value(&r).unwrap()
            }
        };
        // The denied field's changes are left out of the history; asking for them is refused.
        let r = run("query($id: ID!) { lead(where: {id: $id}) { history { field } } }").await;
        assert_eq!(r["data"]["lead"]["history"], json!([{"field": "owner"}]), "[{}] {r}", b.name);
        let r = run(r#"query($id: ID!) { lead(where: {id: $id}) { history(field: "status") { field } } }"#).await;
        assert_eq!(r["errors"][0]["extensions"]["code"], "FORBIDDEN", "[{}] {r}", b.name);
    }
}

/// Two writers update the same lead's status at once, many times: the history is one unbroken
/// chain (each entry's old value is the previous entry's new value), with one entry per real
/// change, and exactly one stage stay is open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_keep_an_unbroken_history() {
    for b in backends().await {
        let a = org();
        let admin = gql(&b, principal(&a, "admin-a", &["admin"]));
        let id = create(&admin, "Lead", json!({"name": "Race"})).await;
        let statuses = ["QUALIFIED", "CONTACTED", "NEW", "REJECTED"];
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let (api, store, p, id) = (b.api.clone(), b.store.clone(), principal(&a, &format!("writer-{w}"), &["admin"]), id.clone());
                tokio::spawn(async move {
                    for i in 0..15 {
                        let (q, v) = set_status(&id, statuses[(i + w) % statuses.len()]);
                        let r = api.execute(&store, &p, Request::new(q).variables(crm_graphql::Variables::from_json(v))).await;
                        assert!(r.errors.is_empty(), "{:?}", r.errors);
                    }
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
        let d = admin
            .ok(r#"query($id: ID!) { lead(where: {id: $id}) { status history(field: "status", first: 100) { oldValue newValue } stages { stage exitedAt } } }"#, json!({"id": id}))
            .await;
        let lead = &d["lead"];
        let mut h = lead["history"].as_array().unwrap().clone();
        h.reverse(); // oldest first
        assert_eq!(h[0]["oldValue"], Json::Null, "[{}] the creation comes first", b.name);
        for pair in h.windows(2) {
            assert_eq!(pair[0]["newValue"], pair[1]["oldValue"], "[{}] broken chain: {pair:?}", b.name);
            assert_ne!(pair[1]["oldValue"], pair[1]["newValue"], "[{}] only real changes", b.name);
        }
        assert_eq!(h.last().unwrap()["newValue"], lead["status"], "[{}] the chain ends at the stored value", b.name);
        let stages = lead["stages"].as_array().unwrap();
        assert_eq!(stages.len(), h.len(), "[{}] one stay per value the status took", b.name);
        assert_eq!(stages.iter().filter(|s| s["exitedAt"].is_null()).count(), 1, "[{}] one open stay", b.name);
        assert_eq!(stages.last().unwrap()["stage"], lead["status"]);
    }
}

/// A record's timeline merges its changes with the activities about it, newest first.
#[tokio::test]
async fn timeline_merges_changes_and_activities() {
    for b in backends().await {
        let c = cast(&b, "viewer");
        let id = create(&c.admin, "Lead", json!({"name": "Ada"})).await;
        let q = r#"mutation($id: ID!, $t: String!, $at: DateTime!) { createActivity(data: {kind: CALL, title: $t, occurredAt: $at, subject: {type: "Lead", id: $id}}) { id } }"#;
        c.admin.ok(q, json!({"id": id, "t": "Old call", "at": "2020-01-01T10:00:00Z"})).await;
        let (sq, sv) = set_status(&id, "CONTACTED");
        c.admin.ok(&sq, sv).await;
        let future = c.admin.ok(q, json!({"id": id, "t": "Planned call", "at": "2999-01-01T10:00:00Z"})).await;
        // An activity about another record stays out; a trashed one too.
        let other = create(&c.admin, "Lead", json!({"name": "Bob"})).await;
        c.admin.ok(q, json!({"id": other, "t": "Not Ada", "at": "2021-01-01T10:00:00Z"})).await;
        let gone = c.admin.ok(q, json!({"id": id, "t": "Trashed", "at": "2022-01-01T10:00:00Z"})).await["createActivity"]["id"].clone();
        c.admin.ok("mutation($id: ID!) { deleteActivity(where: {id: $id}) { id } }", json!({"id": gone})).await;
        for g in [&c.admin, &c.restricted] {
            let d = g
                .ok(
                    "query($id: ID!) { lead(where: {id: $id}) { timeline { kind at actor field oldValue newValue id record } } }",
                    json!({"id": id}),
                )
                .await;
            let t = d["lead"]["timeline"].as_array().unwrap();
            let summary: Vec<String> = t
                .iter()
                .map(|e| match e["kind"].as_str().unwrap() {
                    "change" => format!("{}:{}", e["field"].as_str().unwrap(), e["newValue"].as_str().unwrap()),
                    k => format!("{k}:{}", e["record"]["title"].as_str().unwrap()),
                })
                .collect();
            assert_eq!(summary, ["Activity:Planned call", "status:CONTACTED", "status:NEW", "Activity:Old call"], "[{}]", b.name);
            assert_eq!(t[0]["id"], future["createActivity"]["id"]);
        }
        let d = c
            .other
            .ok(
                "query($id: ID!) { lead(where: {id: $id}) { timeline { kind at actor field oldValue newValue id record } } }",
                json!({"id": id}),
            )
            .await;
        assert_eq!(d["lead"], Json::Null);
        let d = c.admin.ok("query($id: ID!) { lead(where: {id: $id}) { timeline(first: 1) { kind } } }", json!({"id": id})).await;
        assert_eq!(d["lead"]["timeline"].as_array().unwrap().len(), 1);
    }
}
