//! Measures what row-level security costs on PostgreSQL, for the same list query:
//!
//! - `raw`: the query alone (a role that bypasses RLS) — the ceiling;
//! - `tx-local`: the common pattern `BEGIN; set_config(.., true); query; COMMIT` (4 round trips);
//! - `session`: `set_config(.., false)` on the checked-out connection, then the query (2 round
//!   trips; the store's reads did this before they set the tenant inside the statement);
//! - `sess+reset`: the same plus clearing the setting when the connection is released;
//! - `store`: `Store::read` end to end (scope, SQL building, JSON rows, cursors).
//!
//! Usage (a throwaway database from `.ci/pg-start`):
//! `CRM_BENCH_DATABASE_URL=postgres://crm:crm@127.0.0.1:54329/crm_test \
//!  CRM_BENCH_ADMIN_URL=postgres://postgres@127.0.0.1:54329/crm_test \
//!  cargo run --release -p crm-orm --example rls_cost`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::cast_precision_loss, clippy::cast_possible_wrap, clippy::cast_possible_truncation, clippy::missing_panics_doc)] // a measuring program: arithmetic on counts, sizes and durations far inside the casts' range; it stops at the first failure

use std::sync::Arc;
use std::time::{Duration, Instant};

use crm_model::standard::standard_catalog;
use crm_model::{OrgId, RoleName};
use crm_orm::{Data, Op, OrderBy, Page, Policy, Principal, Read, Selection, Store, StoreOptions, Write, authorize};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgPool};

const TASKS: usize = 8;
const SECS: u64 = 5;
const QUERY: &str = "SELECT id::text, name, email, status FROM leads WHERE org_id = $1 ORDER BY created_at DESC, id LIMIT 11";

async fn measure<F, Fut>(name: &str, f: F)
where
    F: Fn() -> Fut + Send + Sync + 'static + Clone,
    Fut: std::future::Future<Output = ()> + Send,
{
    let deadline = Instant::now() + Duration::from_secs(SECS);
    let mut handles = Vec::new();
    for _ in 0..TASKS {
        let f = f.clone();
        handles.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                f().await;
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for h in handles {
        total += h.await.unwrap();
    }
    #[allow(clippy::cast_precision_loss)]
    let rate = total as f64 / SECS as f64;
    println!("{name:<10} {rate:>9.0} queries/s  ({TASKS} tasks, {SECS} s)");
}

#[tokio::main]
async fn main() {
    let app_url = std::env::var("CRM_BENCH_DATABASE_URL").expect("CRM_BENCH_DATABASE_URL");
    let admin_url = std::env::var("CRM_BENCH_ADMIN_URL").expect("CRM_BENCH_ADMIN_URL (a superuser, for the raw baseline)");
    let catalog = Arc::new(standard_catalog().unwrap());
    let store =
        Store::connect(&app_url, catalog.clone(), StoreOptions { max_connections: TASKS as u32, ..StoreOptions::default() }).await.unwrap();
    store.migrate().await.unwrap();
    let org = OrgId::new("bench-org").unwrap();
    let p = Principal { sub: "bench".into(), org_id: org.clone(), roles: vec![RoleName::new("admin").unwrap()] };
    let policy = Policy::default_roles();
    let lead = catalog.model("Lead").unwrap().clone();
    let have = {
        let mut r = Read::new(&lead);
        r.count = true;
        r.page = Page { first: Some(1), ..Page::default() };
        store.read(&authorize(&catalog, &policy, &p, &lead.name, Op::Read, r).unwrap()).await.unwrap().count.unwrap_or(0)
    };
    for i in have..1000 {
        let data =
            Data::parse(&catalog, &lead, &serde_json::json!({"name": format!("Lead {i}"), "email": format!("l{i}@example.com")}), "data")
                .unwrap();
        let w = authorize(&catalog, &policy, &p, &lead.name, Op::Create, Write::Create { model: lead.name.clone(), data }).unwrap();
        store.write(&w, &Selection::default()).await.unwrap();
    }
    let admin: PgPool = PgPoolOptions::new().max_connections(TASKS as u32).connect(&admin_url).await.unwrap();
    let app: PgPool = PgPoolOptions::new().max_connections(TASKS as u32).connect(&app_url).await.unwrap();
    let app_reset: PgPool = PgPoolOptions::new()
        .max_connections(TASKS as u32)
        .after_release(|c, _| {
            Box::pin(async move {
                sqlx::query("SELECT set_config('crm.org_id', '', false), set_config('crm.read_orgs', '', false)").execute(&mut *c).await?;
                Ok(true)
            })
        })
        .connect(&app_url)
        .await
        .unwrap();
    let o = org.as_str().to_owned();

    let (pool, org_s) = (admin.clone(), o.clone());
    measure("raw", move || {
        let (pool, org_s) = (pool.clone(), org_s.clone());
        async move {
            let rows = sqlx::query(QUERY).bind(&org_s).fetch_all(&pool).await.unwrap();
            assert_eq!(rows.len(), 11);
        }
    })
    .await;
    let (pool, org_s) = (app.clone(), o.clone());
    measure("tx-local", move || {
        let (pool, org_s) = (pool.clone(), org_s.clone());
        async move {
            let mut c = pool.acquire().await.unwrap();
            let mut tx = c.begin().await.unwrap();
            sqlx::query("SELECT set_config('crm.org_id', $1, true), set_config('crm.read_orgs', $1, true)")
                .bind(&org_s)
                .execute(&mut *tx)
                .await
                .unwrap();
            let rows = sqlx::query(QUERY).bind(&org_s).fetch_all(&mut *tx).await.unwrap();
            tx.commit().await.unwrap();
            assert_eq!(rows.len(), 11);
        }
    })
    .await;
    let (pool, org_s) = (app.clone(), o.clone());
    measure("session", move || {
        let (pool, org_s) = (pool.clone(), org_s.clone());
        async move {
            let mut c = pool.acquire().await.unwrap();
            sqlx::query("SELECT set_config('crm.org_id', $1, false), set_config('crm.read_orgs', $1, false)")
                .bind(&org_s)
                .execute(&mut *c)
                .await
                .unwrap();
            let rows = sqlx::query(QUERY).bind(&org_s).fetch_all(&mut *c).await.unwrap();
            assert_eq!(rows.len(), 11);
        }
    })
    .await;
    let (pool, org_s) = (app_reset.clone(), o.clone());
    measure("sess+reset", move || {
        let (pool, org_s) = (pool.clone(), org_s.clone());
        async move {
            let mut c = pool.acquire().await.unwrap();
            sqlx::query("SELECT set_config('crm.org_id', $1, false), set_config('crm.read_orgs', $1, false)")
                .bind(&org_s)
                .execute(&mut *c)
                .await
                .unwrap();
            let rows = sqlx::query(QUERY).bind(&org_s).fetch_all(&mut *c).await.unwrap();
            assert_eq!(rows.len(), 11);
        }
    })
    .await;
    let store = Arc::new(store);
    let mut read = Read::new(&lead);
    read.order = vec![OrderBy::parse(&lead, "createdAt_DESC").unwrap()];
    let scoped = Arc::new(authorize(&catalog, &policy, &p, &lead.name, Op::Read, read).unwrap());
    measure("store", move || {
        let (store, scoped) = (store.clone(), scoped.clone());
        async move {
            let page = store.read(&scoped).await.unwrap();
            assert_eq!(page.rows.len(), 10);
        }
    })
    .await;
}
