#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
//! The GraphQL layer end to end, in process: schema generation, and requests through
//! `Api::execute` against a seeded SQLite file (parse, validate, resolve, SQL, rows, JSON).
//!
//! `cargo bench -p crm-graphql --bench graphql`. Each request benchmark reports its throughput
//! as elements/s = requests/s on one thread.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crm_graphql::{Api, Request, SchemaOptions, Variables};
use crm_model::standard::standard_catalog;
use crm_model::{OrgId, RoleName};
use crm_orm::{Policy, Principal, Store, StoreOptions};
use serde_json::{Value as Json, json};
use tokio::runtime::Runtime;

const LEADS: usize = 200;
const MEMBERS: usize = 5;
const ACCOUNTS: usize = 20;
const CONTACTS_PER_ACCOUNT: usize = 8;

const LEAD_LIST: &str = "{ leads(first: 20, orderBy: createdAt_DESC) { id name email status score owner { name } } }";
const ACCOUNTS_NESTED: &str = "{ accounts(first: 20, orderBy: name_ASC) { id name domain contacts(first: 5, orderBy: lastName_ASC) \
                               { id firstName lastName email account { name } } } }";

fn principal(role: &str) -> Principal {
    Principal { sub: format!("bench-{role}"), org_id: OrgId::new("org-bench").unwrap(), roles: vec![RoleName::new(role).unwrap()] }
}

/// Runs `query` and returns its `data`, panicking on any error.
async fn run(api: &Api, store: &Store, p: &Principal, query: &str, vars: Json) -> Json {
    let resp = api.execute(store, p, Request::new(query).variables(Variables::from_json(vars))).await;
    let out = serde_json::to_value(&resp).unwrap();
    if let Some(errs) = out.get("errors") {
        panic!("errors for {query}: {errs:#}");
    }
    out["data"].clone()
}

/// A migrated SQLite file with `MEMBERS` members, `LEADS` leads owned by them, and `ACCOUNTS`
/// accounts with `CONTACTS_PER_ACCOUNT` contacts each, all written through GraphQL mutations.
async fn seeded(path: &Path, api: &Api) -> Store {
    let cat = Arc::new(standard_catalog().unwrap());
    let store = Store::connect(&format!("sqlite://{}", path.display()), cat, StoreOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    let admin = principal("admin");
    let mut members = Vec::new();
    for i in 0..MEMBERS {
        let d = run(
            api,
            &store,
            &admin,
            "mutation($d: MemberCreateInput!) { createMember(data: $d) { id } }",
            json!({"d": {"name": format!("Rep {i}"), "email": format!("rep{i}@bench.example")}}),
        )
        .await;
        members.push(d["createMember"]["id"].as_str().unwrap().to_owned());
    }
    let statuses = ["NEW", "QUALIFIED", "CONTACTED", "CONVERTED", "REJECTED"];
    for i in 0..LEADS {
        let data = json!({
            "name": format!("Lead {i:03}"),
            "email": format!("lead{i}@example.com"),
            "company": format!("Company {}", i % 37),
            "status": statuses[i % statuses.len()],
            "score": (i * 7) % 100,
            "tags": ["bench", if i % 2 == 0 { "even" } else { "odd" }],
            "owner": {"connect": {"id": members[i % MEMBERS]}},
        });
        run(api, &store, &admin, "mutation($d: LeadCreateInput!) { createLead(data: $d) { id } }", json!({"d": data})).await;
    }
    for a in 0..ACCOUNTS {
        let contacts: Vec<Json> = (0..CONTACTS_PER_ACCOUNT)
            .map(|c| {
                json!({
                    "firstName": format!("First{c}"),
                    "lastName": format!("Last{a:02}-{c}"),
                    "email": format!("c{c}@account{a}.example"),
                    "phone": format!("+1555{a:03}{c:04}"),
                })
            })
            .collect();
        let data = json!({
            "name": format!("Account {a:02}"),
            "domain": format!("account{a}.example"),
            "owner": {"connect": {"id": members[a % MEMBERS]}},
            "contacts": {"create": contacts},
        });
        run(api, &store, &admin, "mutation($d: AccountCreateInput!) { createAccount(data: $d) { id } }", json!({"d": data})).await;
    }
    store
}

fn bench(c: &mut Criterion) {
    let cat = Arc::new(standard_catalog().unwrap());
    c.bench_function("build_schema/standard_catalog", |b| b.iter(|| crm_graphql::types::generate(black_box(&cat)).unwrap()));

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let path = std::env::temp_dir().join(format!("crm-gql-bench-{}.db", uuid::Uuid::now_v7()));
    let api = Api::new(SchemaOptions::default(), Policy::default_roles());
    let store = rt.block_on(seeded(&path, &api));
    let sales = principal("sales");

    // Sanity (and schema cache warm-up): the shapes the benchmarks measure.
    let d = rt.block_on(run(&api, &store, &sales, LEAD_LIST, json!({})));
    let leads = d["leads"].as_array().unwrap();
    assert_eq!(leads.len(), 20);
    assert!(leads.iter().all(|l| l["owner"]["name"].is_string()), "{d:#}");
    let d = rt.block_on(run(&api, &store, &sales, ACCOUNTS_NESTED, json!({})));
    let accounts = d["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), ACCOUNTS);
    for a in accounts {
        let contacts = a["contacts"].as_array().unwrap();
        assert_eq!(contacts.len(), 5, "{a:#}");
        assert!(contacts.iter().all(|c| c["account"]["name"] == a["name"]), "{a:#}");
    }

    let mut g = c.benchmark_group("execute");
    g.throughput(Throughput::Elements(1));
    g.bench_function("leads_first20_with_owner", |b| b.iter(|| exec(&rt, &api, &store, &sales, LEAD_LIST)));
    g.bench_function("accounts20_contacts5_nested", |b| b.iter(|| exec(&rt, &api, &store, &sales, ACCOUNTS_NESTED)));
    g.finish();

    drop(store);
    drop(rt);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// One request, checked for errors (cheaply) so a broken query cannot bench as fast.
fn exec(rt: &Runtime, api: &Api, store: &Store, p: &Principal, query: &str) -> crm_graphql::Response {
    let resp = rt.block_on(api.execute(store, p, Request::new(query)));
    assert!(resp.errors.is_empty(), "{:?}", resp.errors);
    black_box(resp)
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
