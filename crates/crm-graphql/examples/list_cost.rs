//! What a GraphQL list query costs next to the hand-written SQL it replaces, on the same database.
//!
//! ```sh
//! cargo run --release -p crm-graphql --example list_cost                       # SQLite (temp file)
//! CRM_BENCH_DATABASE_URL=postgres://crm:crm@127.0.0.1:54329/crm_test \
//!   cargo run --release -p crm-graphql --example list_cost                     # PostgreSQL
//! ```
//!
//! Seeds 200 leads owned by 5 members in a fresh tenant, then measures for a few seconds each,
//! with 16 concurrent tasks on a multi-threaded runtime: (1) the hand-written SQL of "the 20
//! newest leads with their owner's name" through sqlx, (2) the same read through `Store::read`
//! (scope, SQL building, JSON rows; on PostgreSQL also the tenant setting for row-level
//! security), (3) the GraphQL query through `Api::execute` (parse, validate, resolve, response).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::type_complexity)]
#![allow(clippy::cast_precision_loss, clippy::cast_possible_wrap, clippy::cast_possible_truncation, clippy::missing_panics_doc)] // a measuring program: arithmetic on counts, sizes and durations far inside the casts' range; it stops at the first failure

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crm_graphql::{Api, Request, SchemaOptions, Variables};
use crm_model::standard::standard_catalog;
use crm_model::{FieldName, OrgId, RoleName};
use crm_orm::{Nested, OrderBy, Page, Policy, Principal, Read, Selection, Store, StoreOptions, authorize};
use serde_json::json;

const QUERY: &str = "{ leads(first: 20, orderBy: createdAt_DESC) { id name email status score owner { name } } }";
const TASKS: usize = 16;
const SECONDS: u64 = 4;

async fn measure<F, Fut>(label: &str, f: F) -> f64
where
    F: Fn() -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(SECONDS);
    let mut handles = Vec::new();
    for _ in 0..TASKS {
        let (f, done) = (f.clone(), done.clone());
        handles.push(tokio::spawn(async move {
            while Instant::now() < until {
                f().await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let rate = done.load(Ordering::Relaxed) as f64 / SECONDS as f64;
    println!("{label:<34} {rate:>9.0} req/s");
    rate
}

#[tokio::main]
async fn main() {
    let url = std::env::var("CRM_BENCH_DATABASE_URL").unwrap_or_else(|_| {
        format!("sqlite://{}", std::env::temp_dir().join(format!("crm-list-cost-{}.db", uuid::Uuid::now_v7())).display())
    });
    let cat = Arc::new(standard_catalog().unwrap());
    let store = Store::connect(&url, cat.clone(), StoreOptions { max_connections: 16, ..StoreOptions::default() }).await.unwrap();
    store.migrate().await.unwrap();
    let api = Arc::new(Api::new(SchemaOptions::default(), Policy::default_roles()));
    let org = OrgId::new(format!("org-cost-{}", uuid::Uuid::now_v7().simple())).unwrap();
    let p = Principal { sub: "cost".into(), org_id: org.clone(), roles: vec![RoleName::new("admin").unwrap()] };
    let run = |q: String, v: serde_json::Value| {
        let (api, store, p) = (api.clone(), store.clone(), p.clone());
        async move {
            let r = api.execute(&store, &p, Request::new(q).variables(Variables::from_json(v))).await;
            assert!(r.errors.is_empty(), "{:?}", r.errors);
            serde_json::to_value(&r.data).unwrap()
        }
    };
    let mut members = Vec::new();
    for i in 0..5 {
        let d = run("mutation($n: String!) { createMember(data: {name: $n}) { id } }".into(), json!({"n": format!("Rep {i}")})).await;
        members.push(d["createMember"]["id"].as_str().unwrap().to_owned());
    }
    for i in 0..200 {
        let data = json!({"name": format!("Lead {i}"), "email": format!("l{i}@example.com"), "status": "NEW", "score": i % 100,
                          "owner": {"connect": {"id": members[i % 5]}}});
        run("mutation($d: LeadCreateInput!) { createLead(data: $d) { id } }".into(), json!({"d": data})).await;
    }
    println!("backend: {:?}, {TASKS} concurrent tasks, {SECONDS} s each", store.dialect());

    // (1) Hand-written SQL through sqlx.
    let raw = match store.dialect() {
        crm_orm::Dialect::Sqlite => {
            let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(16).test_before_acquire(false).connect(&url).await.unwrap();
            let org = org.to_string();
            measure("hand-written SQL (sqlx)", move || {
                let (pool, org) = (pool.clone(), org.clone());
                async move {
                    let rows: Vec<(String, String, Option<String>, String, Option<i64>, Option<String>)> = sqlx::query_as(
                        "SELECT l.id, l.name, l.email, l.status, l.score, (SELECT m.name FROM members m \
                         WHERE m.org_id = l.org_id AND m.id = l.owner_id) FROM leads l WHERE l.org_id = ?1 \
                         ORDER BY l.created_at DESC, l.id LIMIT 20",
                    )
                    .bind(&org)
                    .fetch_all(&pool)
                    .await
                    .unwrap();
                    assert_eq!(rows.len(), 20);
                }
            })
            .await
        }
        crm_orm::Dialect::Postgres => {
            let pool = sqlx::postgres::PgPoolOptions::new().max_connections(16).test_before_acquire(false).connect(&url).await.unwrap();
            let org = org.to_string();
            measure("hand-written SQL (sqlx)", move || {
                let (pool, org) = (pool.clone(), org.clone());
                async move {
                    // Row-level security is on for the tables: the hand-written query sets the
                    // tenant in the same round trip as a bound setting of the session.
                    let mut c = pool.acquire().await.unwrap();
                    sqlx::query("SELECT set_config('crm.org_id', $1, false), set_config('crm.read_orgs', $1, false)")
                        .bind(&org)
                        .execute(&mut *c)
                        .await
                        .unwrap();
                    let rows: Vec<(uuid::Uuid, String, Option<String>, String, Option<i64>, Option<String>)> = sqlx::query_as(
                        "SELECT l.id, l.name, l.email, l.status, l.score, (SELECT m.name FROM members m \
                         WHERE m.org_id = l.org_id AND m.id = l.owner_id) FROM leads l WHERE l.org_id = $1 \
                         ORDER BY l.created_at DESC, l.id LIMIT 20",
                    )
                    .bind(&org)
                    .fetch_all(&mut *c)
                    .await
                    .unwrap();
                    assert_eq!(rows.len(), 20);
                }
            })
            .await
        }
    };

    // (2) The store.
    let lead = cat.model("Lead").unwrap().clone();
    let member = cat.model("Member").unwrap().clone();
    let mut sel = Selection {
        fields: ["id", "name", "email", "status", "score"].iter().map(|f| FieldName::new(*f).unwrap()).collect(),
        ..Selection::default()
    };
    sel.nested.push(Nested::new(
        FieldName::new("owner").unwrap(),
        Selection { fields: vec![FieldName::new("name").unwrap()], nested: vec![], ..Selection::default() },
    ));
    let _ = member;
    let read = Read {
        order: vec![OrderBy::parse(&lead, "createdAt_DESC").unwrap()],
        page: Page { first: Some(20), ..Page::default() },
        select: sel,
        ..Read::new(&lead)
    };
    let (e2, cat2, p2) = (store.clone(), cat.clone(), p.clone());
    let eng = measure("Store::read", move || {
        let (e, cat, p, read) = (e2.clone(), cat2.clone(), p2.clone(), read.clone());
        async move {
            let model = read.model.clone();
            let q = authorize(&cat, &Policy::default_roles(), &p, &model, crm_orm::Op::Read, read).unwrap();
            assert_eq!(e.read(&q).await.unwrap().rows.len(), 20);
        }
    })
    .await;

    // (3) GraphQL.
    let (api3, e3, p3) = (api.clone(), store.clone(), p.clone());
    let gql = measure("GraphQL Api::execute", move || {
        let (api, e, p) = (api3.clone(), e3.clone(), p3.clone());
        async move {
            let r = api.execute(&e, &p, Request::new(QUERY)).await;
            assert!(r.errors.is_empty());
            std::hint::black_box(serde_json::to_vec(&r).unwrap());
        }
    })
    .await;
    println!("store / SQL: {:.0}%   GraphQL / SQL: {:.0}%", eng / raw * 100.0, gql / raw * 100.0);
}
