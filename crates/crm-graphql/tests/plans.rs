//! Planned operations: an operation seen before and answered without the executor gives
//! exactly the executor's response, for every principal, with the request's own variables;
//! anything the plan does not vouch for goes to the executor and keeps its exact errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod common;
use std::sync::Arc;

use common::*;
use crm_graphql::{Answer, Api, Request, SchemaOptions, Variables};
use crm_orm::Policy;
use serde_json::{Value as Json, json};

/// The executor's response (a fresh API: nothing planned) and what the shared API answers the
/// second time (planned), as JSON.
async fn both(g: &Gql<'_>, q: &str, vars: &Json) -> (Json, Json, bool) {
    let req = || Request::new(q).variables(Variables::from_json(vars.clone()));
    let fresh = Api::new(SchemaOptions::default(), Policy::default_roles());
    let executed = serde_json::to_value(fresh.execute(&g.b.store, &g.p, req()).await).unwrap();
    let _ = g.b.api.answer(&g.b.store, &g.p, req()).await;
    let (answer, planned) = match g.b.api.answer(&g.b.store, &g.p, req()).await {
        Answer::Planned(body) => (serde_json::from_str(&body).unwrap(), true),
        Answer::Executed(r) => (serde_json::to_value(r).unwrap(), false),
    };
    (executed, answer, planned)
}

const CASES: &[(&str, &str)] = &[
    (
        "list",
        r"query L($s: LeadStatus!) { leads(where: {status: $s}, orderBy: createdAt_DESC, first: 3) { __typename id name status score createdAt } }",
    ),
    (
        "aliases and nesting",
        r"query N { first: accounts(first: 2, orderBy: name_ASC) { title: name n: name contacts(first: 2, orderBy: lastName_DESC) { lastName account { name } } } }",
    ),
    (
        "connection",
        r"query C($s: LeadStatus, $after: String) { leadsConnection(where: {status: $s}, orderBy: [score_DESC, name_ASC], first: 2, after: $after) { edges { cursor node { name score } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor pageSize } aggregate { count sum { score } } } }",
    ),
    ("count", r"query A($s: LeadStatus = QUALIFIED) { leadsConnection(where: {status: $s}) { aggregate { count } } }"),
    ("one", r"query O($id: ID!) { lead(where: {id: $id}) { name status contact { lastName } } }"),
    ("two roots", r"{ accounts(first: 1) { name } leads(first: 1, orderBy: name_ASC) { name } }"),
];

/// `v` with every number as a float: a plan copies the number the database wrote (`70`), the
/// executor completes a `Float` as one (`70.0`); JSON does not tell them apart.
fn numbers_as_floats(v: Json) -> Json {
    match v {
        Json::Number(n) => n.as_f64().and_then(serde_json::Number::from_f64).map_or(Json::Null, Json::Number),
        Json::Array(items) => Json::Array(items.into_iter().map(numbers_as_floats).collect()),
        Json::Object(o) => Json::Object(o.into_iter().map(|(k, v)| (k, numbers_as_floats(v))).collect()),
        other => other,
    }
}

#[tokio::test]
async fn planned_answers_equal_the_executor() {
    for b in backends().await {
        // A private API: the plans are learnt here, not in other tests.
        let b = Backend { api: Arc::new(Api::new(SchemaOptions::default(), Policy::default_roles())), ..b };
        let c = cast(&b, "viewer");
        for g in [&c.admin, &c.other] {
            create(g, "Account", json!({"name": "Acme", "contacts": {"create": [{"lastName": "Lee"}, {"lastName": "Ray"}]}})).await;
        }
        let mut lead_a = String::new();
        for (i, s) in ["NEW", "QUALIFIED", "QUALIFIED", "NEW", "QUALIFIED"].iter().enumerate() {
            let id = create(&c.admin, "Lead", json!({"name": format!("A{i}"), "status": s, "score": i * 10})).await;
            lead_a = id;
        }
        create(&c.other, "Lead", json!({"name": "B0", "status": "QUALIFIED", "score": 1})).await;
        for (name, q) in CASES {
            for (g, who) in [(&c.admin, "admin A"), (&c.restricted, "viewer A"), (&c.other, "admin B")] {
                let vars = json!({"s": "QUALIFIED", "id": lead_a});
                let (executed, answer, planned) = both(g, q, &vars).await;
                assert!(executed.get("errors").is_none(), "[{}] {name} as {who}: {executed}", b.name);
                assert!(planned, "[{}] {name} as {who}: not planned", b.name);
                assert_eq!(numbers_as_floats(answer), numbers_as_floats(executed), "[{}] {name} as {who}", b.name);
            }
        }
        // Tenant B never sees A's lead through A's plan of `one`.
        let (_, answer, _) = both(&c.other, CASES[4].1, &json!({"id": lead_a})).await;
        assert_eq!(answer, json!({"data": {"lead": null}}), "[{}]", b.name);
        // The page after a cursor, through the plan.
        let (executed, _, _) = both(&c.admin, CASES[2].1, &json!({"s": "QUALIFIED"})).await;
        let end = executed["data"]["leadsConnection"]["pageInfo"]["endCursor"].clone();
        let (executed, answer, planned) = both(&c.admin, CASES[2].1, &json!({"s": "QUALIFIED", "after": end})).await;
        assert!(planned && numbers_as_floats(answer.clone()) == numbers_as_floats(executed.clone()), "[{}] {answer} {executed}", b.name);
        // Three qualified leads of A, two per page: one left after the first page.
        assert_eq!(answer["data"]["leadsConnection"]["edges"].as_array().unwrap().len(), 1, "[{}]", b.name);
    }
}

#[tokio::test]
async fn what_a_plan_does_not_vouch_for_goes_to_the_executor() {
    for b in backends().await {
        let b = Backend { api: Arc::new(Api::new(SchemaOptions::default(), Policy::default_roles())), ..b };
        let c = cast(&b, "viewer");
        create(&c.admin, "Lead", json!({"name": "A", "status": "NEW"})).await;
        let q = CASES[0].1;
        let ok = json!({"s": "NEW"});
        let (_, _, planned) = both(&c.admin, q, &ok).await;
        assert!(planned, "[{}]", b.name);
        // Variables the declared types refuse: the executor's own answer (errors), not the plan's.
        for vars in [json!({"s": "NOPE"}), json!({}), json!({"s": 3}), json!({"s": null})] {
            let req = Request::new(q).variables(Variables::from_json(vars.clone()));
            let fresh = Api::new(SchemaOptions::default(), Policy::default_roles());
            let executed = serde_json::to_value(
                fresh.execute(&b.store, &c.admin.p, Request::new(q).variables(Variables::from_json(vars.clone()))).await,
            )
            .unwrap();
            let answer = b.api.answer(&b.store, &c.admin.p, req).await;
            let Answer::Executed(r) = answer else { panic!("[{}] {vars}: planned", b.name) };
            let r = serde_json::to_value(r).unwrap();
            assert!(r.get("errors").is_some() || vars["s"].is_null(), "[{}] {vars}: {r}", b.name);
            assert_eq!(r, executed, "[{}] {vars}", b.name);
        }
        // A bad argument value: the executor answers with its error (a page above the maximum).
        let big = "query L($n: Int) { leads(first: $n) { name } }";
        let _ = both(&c.admin, big, &json!({"n": 1})).await;
        let (executed, answer, planned) = both(&c.admin, big, &json!({"n": 1000})).await;
        assert!(!planned, "[{}]", b.name);
        assert_eq!(answer["errors"][0]["extensions"]["code"], "LIMIT_EXCEEDED", "[{}] {answer}", b.name);
        assert_eq!(answer, executed, "[{}]", b.name);
        // Fragments, directives and input-object variables are not planned.
        for (q, vars) in [
            ("query F { leads { ...L } } fragment L on Lead { name }", json!({})),
            ("query D($x: Boolean!) { leads { name @include(if: $x) } }", json!({"x": true})),
            ("query W($w: LeadWhereInput) { leads(where: $w) { name } }", json!({"w": {"name": "A"}})),
        ] {
            let (executed, answer, planned) = both(&c.admin, q, &vars).await;
            assert!(!planned, "[{}] {q}", b.name);
            assert_eq!(answer, executed, "[{}] {q}", b.name);
        }
    }
}

/// Compiled reads: after its first request, a plan binds each request's variables to the
/// statement compiled for the request's principal. Every answer, with every new value, for
/// principals of two tenants, still equals the executor's.
#[tokio::test]
async fn compiled_reads_answer_each_request_with_its_own_values() {
    for b in backends().await {
        let b = Backend { api: Arc::new(Api::new(SchemaOptions::default(), Policy::default_roles())), ..b };
        let c = cast(&b, "viewer");
        let mut ids = Vec::new();
        for (g, names) in [(&c.admin, ["Ann", "Bo", "Cy", "Di"]), (&c.other, ["Ann", "Eve", "Fay", "Gus"])] {
            for (i, n) in names.iter().enumerate() {
                let status = if i % 2 == 0 { "NEW" } else { "QUALIFIED" };
                ids.push(create(g, "Lead", json!({"name": n, "status": status, "score": i * 10})).await);
            }
        }
        let runs: &[(&str, Vec<Json>)] = &[
            (CASES[0].1, vec![json!({"s": "QUALIFIED"}), json!({"s": "NEW"}), json!({"s": "REJECTED"}), json!({"s": "QUALIFIED"})]),
            (
                "query S($min: Long!, $a: String!, $b: String) { leads(where: {score_gte: $min, name_in: [$a, $b]}, orderBy: score_ASC) { name score } }",
                vec![
                    json!({"min": 0, "a": "Ann", "b": "Bo"}),
                    json!({"min": 5, "a": "Ann", "b": "Bo"}),
                    json!({"min": 0, "a": "Eve", "b": "Cy"}),
                    json!({"min": 0, "a": "Ann"}),
                    json!({"min": -1, "a": "Ann", "b": "it's \"quoted\""}),
                ],
            ),
            (
                CASES[4].1,
                vec![
                    json!({"id": ids[0]}),
                    json!({"id": ids[1]}),
                    json!({"id": ids[5]}),
                    json!({"id": "not-an-id"}),
                    json!({"id": ids[3]}),
                ],
            ),
            (
                "query P($first: Int!) { leads(orderBy: name_ASC, first: $first) { name } }",
                vec![json!({"first": 1}), json!({"first": 3}), json!({"first": 1})],
            ),
        ];
        for (q, seq) in runs {
            for (g, who) in [(&c.admin, "admin A"), (&c.restricted, "viewer A"), (&c.other, "admin B")] {
                for vars in seq {
                    let req = || Request::new(*q).variables(Variables::from_json(vars.clone()));
                    let fresh = Api::new(SchemaOptions::default(), Policy::default_roles());
                    let executed = serde_json::to_value(fresh.execute(&b.store, &g.p, req()).await).unwrap();
                    let answer = match b.api.answer(&b.store, &g.p, req()).await {
                        Answer::Planned(body) => serde_json::from_str(&body).unwrap(),
                        Answer::Executed(r) => serde_json::to_value(r).unwrap(),
                    };
                    assert_eq!(answer, executed, "[{}] {q} {vars} as {who}", b.name);
                }
            }
        }
        // Pages by cursor (cursors bind key by key), both tenants in turn; then a cursor of
        // another ordering and a broken one, refused as the executor refuses them.
        let pages = "query W($after: String) { leadsConnection(orderBy: createdAt_DESC, first: 1, after: $after) { edges { cursor node { name } } pageInfo { endCursor hasNextPage } } }";
        let mut after = [Json::Null, Json::Null];
        for step in 0..4 {
            for (k, (g, who)) in [(&c.admin, "admin A"), (&c.other, "admin B")].into_iter().enumerate() {
                let vars = json!({"after": after[k]});
                let (executed, answer, _) = both(g, pages, &vars).await;
                assert!(executed.get("errors").is_none(), "[{}] step {step} as {who}: {executed}", b.name);
                assert_eq!(answer, executed, "[{}] step {step} as {who}", b.name);
                after[k] = executed["data"]["leadsConnection"]["pageInfo"]["endCursor"].clone();
            }
        }
        let (by_name, _, _) =
            both(&c.admin, "{ leadsConnection(orderBy: name_ASC, first: 1) { pageInfo { endCursor } } }", &json!({})).await;
        let foreign = by_name["data"]["leadsConnection"]["pageInfo"]["endCursor"].clone();
        for bad in [foreign, json!("bm90IGEgY3Vyc29y")] {
            let (executed, answer, _) = both(&c.admin, pages, &json!({"after": bad})).await;
            assert!(executed.get("errors").is_some(), "[{}] {bad}: {executed}", b.name);
            assert_eq!(answer, executed, "[{}] {bad}", b.name);
        }
        assert!(b.api.compiled_reads() >= 6, "[{}] {} compiled reads", b.name, b.api.compiled_reads());
        // A's lead is not B's, whichever compiled read is asked.
        let (_, answer, _) = both(&c.other, CASES[4].1, &json!({"id": ids[0]})).await;
        assert_eq!(answer, json!({"data": {"lead": null}}), "[{}]", b.name);
    }
}
