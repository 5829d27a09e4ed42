//! The number of SQL statements a request costs is bounded by the depth of the query, not by the
//! number of rows: a nested read is compiled into one statement (aggregates included), never
//! one per parent row (no N+1).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![allow(clippy::large_futures)] // test code: small counts and literal expectations, one future awaited at a time
mod common;
use common::*;
use crm_graphql::Request;
use crm_orm::{DbUse, count_db_use};
use serde_json::{Value as Json, json};

/// The backends, with tenants' metadata versions trusted for the whole test: a version re-read
/// (one statement per tenant and second, by design) must not land inside a measured request.
async fn steady_backends() -> Vec<Backend> {
    let api = std::sync::Arc::new(
        crm_graphql::Api::new(crm_graphql::SchemaOptions::default(), crm_orm::Policy::default_roles())
            .with_metadata_refresh(std::time::Duration::from_hours(1)),
    );
    backends().await.into_iter().map(|b| Backend { api: api.clone(), ..b }).collect()
}

/// `n` accounts, each with 6 contacts, each contact with 4 leads.
async fn seed(g: &Gql<'_>, n: usize) {
    for a in 0..n {
        let contacts: Vec<Json> = (0..6)
            .map(|c| {
                let leads: Vec<Json> = (0..4).map(|l| json!({"name": format!("L{a}-{c}-{l}"), "score": l})).collect();
                json!({"lastName": format!("C{a}-{c}"), "leads": {"create": leads}})
            })
            .collect();
        create(g, "Account", json!({"name": format!("A{a:02}"), "contacts": {"create": contacts}})).await;
    }
}

/// Runs `q` as `g` and returns the data and what it asked of the database.
async fn measured_use(g: &Gql<'_>, q: &str) -> (Json, DbUse) {
    let (resp, used) = count_db_use(g.b.api.execute(&g.b.store, &g.p, Request::new(q))).await;
    let r = serde_json::to_value(&resp).unwrap();
    assert!(r.get("errors").is_none(), "[{}] {q}: {r:#}", g.b.name);
    (r["data"].clone(), used)
}

/// Runs `q` as `g` and returns the data and the number of statements it cost.
async fn measured(g: &Gql<'_>, q: &str) -> (Json, u64) {
    let (d, used) = measured_use(g, q).await;
    (d, used.statements)
}

const LIST: &str = r"{ accounts(first: 20, orderBy: name_ASC) { name
    contacts(first: 5, orderBy: lastName_ASC) { lastName account { name owner { name } }
      leads(last: 3, orderBy: score_ASC) { name score } } } }";

const CONNECTION: &str = r"{ accountsConnection(first: 20, orderBy: name_ASC) {
    edges { cursor node { name
      contactsConnection(first: 5, orderBy: lastName_ASC) { pageInfo { hasNextPage endCursor } aggregate { count }
        edges { node { lastName leadsConnection(last: 3, orderBy: score_ASC) { pageInfo { hasPreviousPage } aggregate { count }
          edges { node { name } } } } } } } }
    pageInfo { hasNextPage } aggregate { count } } }";

/// Contacts per account, leads per contact, and the scores of the first contact's leads.
fn shape_of_list(d: &Json) -> (usize, Vec<usize>, Vec<usize>, Json) {
    let accounts = d["accounts"].as_array().unwrap();
    let contacts: Vec<usize> = accounts.iter().map(|a| a["contacts"].as_array().unwrap().len()).collect();
    let leads: Vec<usize> =
        accounts.iter().flat_map(|a| a["contacts"].as_array().unwrap().iter().map(|c| c["leads"].as_array().unwrap().len())).collect();
    let scores = accounts.first().map_or(Json::Null, |a| {
        json!(a["contacts"][0]["leads"].as_array().unwrap().iter().map(|l| l["score"].clone()).collect::<Vec<_>>())
    });
    (accounts.len(), contacts, leads, scores)
}

#[tokio::test]
async fn statements_are_bounded_by_depth_not_rows() {
    for b in steady_backends().await {
        // Tenant A has 20 accounts, tenant B 2; the restricted user of A reads A's 20.
        let c = cast(&b, "sales");
        seed(&c.admin, 20).await;
        seed(&c.other, 2).await;

        let (many, n_admin) = measured(&c.admin, LIST).await;
        let (many_r, n_restricted) = measured(&c.restricted, LIST).await;
        let (few, n_other) = measured(&c.other, LIST).await;
        assert_eq!(shape_of_list(&many), (20, vec![5; 20], vec![3; 100], json!([1, 2, 3])), "[{}]", b.name);
        assert_eq!(many_r, many, "[{}]", b.name);
        assert_eq!(shape_of_list(&few), (2, vec![5; 2], vec![3; 10], json!([1, 2, 3])), "[{}]", b.name);
        assert_eq!(many["accounts"][3]["contacts"][2]["account"], json!({"name": "A03", "owner": null}), "[{}]", b.name);
        eprintln!("[{}] list: {n_admin} statements for 20 accounts, {n_restricted} (restricted), {n_other} for 2", b.name);
        assert_eq!(n_admin, n_other, "[{}] 20 rows cost {n_admin} statements, 2 rows {n_other}", b.name);
        assert_eq!(n_restricted, n_other, "[{}]", b.name);
        assert_eq!(n_admin, 1, "[{}] a nested list read costs {n_admin} statements", b.name);

        let (many, n_admin) = measured(&c.admin, CONNECTION).await;
        let (_, n_restricted) = measured(&c.restricted, CONNECTION).await;
        let (few, n_other) = measured(&c.other, CONNECTION).await;
        let conn = &many["accountsConnection"];
        assert_eq!(conn["edges"].as_array().unwrap().len(), 20, "[{}]", b.name);
        assert_eq!((&conn["pageInfo"]["hasNextPage"], &conn["aggregate"]["count"]), (&json!(false), &json!(20)), "[{}]", b.name);
        let first = &conn["edges"][0]["node"]["contactsConnection"];
        assert_eq!((&first["pageInfo"]["hasNextPage"], &first["aggregate"]["count"]), (&json!(true), &json!(6)), "[{}]", b.name);
        let leads = &first["edges"][0]["node"]["leadsConnection"];
        assert_eq!((&leads["pageInfo"]["hasPreviousPage"], &leads["aggregate"]["count"]), (&json!(true), &json!(4)), "[{}]", b.name);
        assert_eq!(few["accountsConnection"]["aggregate"]["count"], 2, "[{}]", b.name);
        eprintln!("[{}] connection: {n_admin} statements for 20 accounts, {n_restricted} (restricted), {n_other} for 2", b.name);
        assert_eq!(n_admin, n_other, "[{}] 20 rows cost {n_admin} statements, 2 rows {n_other}", b.name);
        assert_eq!(n_restricted, n_other, "[{}]", b.name);
        assert_eq!(n_admin, 1, "[{}] a nested connection read with its count costs {n_admin} statements", b.name);
    }
}

/// Several root fields cost their statements each, independent of the rows.
#[tokio::test]
async fn statements_of_several_root_fields() {
    for b in steady_backends().await {
        let c = cast(&b, "viewer");
        seed(&c.admin, 5).await;
        seed(&c.other, 1).await;
        let q =
            r"{ accounts { name } contacts(first: 50) { lastName account { name } } leadsGroupBy(by: [score]) { key { score } count } }";
        let (d, n_many) = measured(&c.admin, q).await;
        let (_, n_restricted) = measured(&c.restricted, q).await;
        let (d_few, n_few) = measured(&c.other, q).await;
        assert_eq!(
            d["leadsGroupBy"],
            json!([{"key": {"score": 0}, "count": 30}, {"key": {"score": 1}, "count": 30}, {"key": {"score": 2}, "count": 30}, {"key": {"score": 3}, "count": 30}])
        );
        assert_eq!(d_few["contacts"].as_array().unwrap().len(), 6, "[{}]", b.name);
        eprintln!("[{}] three root fields: {n_many} statements (5 accounts), {n_restricted} (restricted), {n_few} (1 account)", b.name);
        assert_eq!((n_many, n_restricted), (n_few, n_few), "[{}]", b.name);
    }
}

/// A read is one statement and one round trip (the tenant travels with the statement); a
/// connection that selects only its aggregate reads no page, but its page arguments are still
/// checked; an empty page that wanted a count asks for the count alone.
#[tokio::test]
async fn a_read_is_one_round_trip() {
    for b in steady_backends().await {
        let c = cast(&b, "viewer");
        seed(&c.admin, 5).await;
        seed(&c.other, 1).await;
        let count = |score: i64, tail: &str| format!("{{ leadsConnection(where: {{score: {score}}}{tail}) {{ aggregate {{ count }} }} }}");
        for (g, want) in [(&c.admin, 30), (&c.restricted, 30), (&c.other, 6)] {
            let (d, used) = measured_use(g, &count(1, "")).await;
            assert_eq!(d["leadsConnection"]["aggregate"]["count"], want, "[{}] {d}", b.name);
            assert_eq!((used.statements, used.round_trips), (1, 1), "[{}] an aggregate-only connection", b.name);

            let q = "{ leads(first: 3, orderBy: createdAt_DESC) { name contact { lastName account { name } } } }";
            let (_, used) = measured_use(g, q).await;
            assert_eq!((used.statements, used.round_trips), (1, 1), "[{}] a nested list", b.name);

            // Past the last row: no page row carries the count, so it is asked alone.
            let q = "{ leadsConnection(where: {score: 1}, first: 5, skip: 1000) { edges { node { name } } aggregate { count } } }";
            let (d, n) = measured(g, q).await;
            assert_eq!(d["leadsConnection"], json!({"edges": [], "aggregate": {"count": want}}), "[{}]", b.name);
            assert_eq!(n, 2, "[{}]", b.name);
        }
        // The page arguments of an aggregate-only connection are still checked.
        let r = c.admin.b.api.execute(&c.admin.b.store, &c.admin.p, Request::new(count(1, ", first: 1000"))).await;
        let r = serde_json::to_value(&r).unwrap();
        assert_eq!(r["errors"][0]["extensions"]["code"], "LIMIT_EXCEEDED", "[{}] {r}", b.name);
        let r = c.admin.b.api.execute(&c.admin.b.store, &c.admin.p, Request::new(count(1, ", after: \"bm9wZQ\""))).await;
        let r = serde_json::to_value(&r).unwrap();
        assert_eq!(r["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "[{}] {r}", b.name);
    }
}
