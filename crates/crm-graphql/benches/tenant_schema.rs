#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
//! Per-tenant schemas: what a metadata change costs the tenant (loading its definitions,
//! extending the catalog, building the schema) and what a request costs once its schema is
//! cached (version check within the refresh interval, execution).
//!
//! `cargo bench -p crm-graphql --bench tenant_schema`. The memory one cached tenant schema takes
//! is measured by `cargo run --release -p crm-graphql --example tenant_memory`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crm_graphql::types::Derived;
use crm_graphql::{Api, Request, SchemaOptions};
use crm_model::standard::standard_catalog;
use crm_model::{OrgId, RoleName};
use crm_orm::{Policy, Principal, Store, StoreOptions};

#[path = "../examples/tenant_defs.rs"]
mod tenant_defs;

const QUERY: &str = "{ leads(first: 20, orderBy: createdAt_DESC) { id name status cf0 cf1 cf2 cf3 tier } \
                     projects(first: 20) { title phase account { name } } }";

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let path = std::env::temp_dir().join(format!("crm-tenant-bench-{}.db", uuid::Uuid::now_v7()));
    let cat = Arc::new(standard_catalog().unwrap());
    let store = rt.block_on(async {
        let e = Store::connect(&format!("sqlite://{}", path.display()), cat.clone(), StoreOptions::default()).await.unwrap();
        e.migrate().await.unwrap();
        e
    });
    let org = OrgId::new("org-bench").unwrap();
    let admin = Principal { sub: "bench-admin".into(), org_id: org.clone(), roles: vec![RoleName::new("admin").unwrap()] };
    let policy = Policy::default_roles();
    rt.block_on(async {
        let access = crm_orm::access(&cat, &policy, &admin);
        for change in tenant_defs::changes() {
            store.define(&access.scope_metadata(change).unwrap()).await.unwrap();
        }
    });
    let api = Api::new(SchemaOptions::default(), policy);
    // Seed a few records through the tenant's own schema.
    rt.block_on(async {
        for i in 0..20 {
            let q = format!(
                r#"mutation {{ createLead(data: {{name: "Lead {i}", cf0: "v{i}", cf1: {i}, tier: GOLD}}) {{ id }} }}
                   "#
            );
            let r = api.execute(&store, &admin, Request::new(q)).await;
            assert!(r.errors.is_empty(), "{:?}", r.errors);
        }
        let r = api
            .execute(
                &store,
                &admin,
                Request::new(r#"mutation { createProject(data: {title: "P", account: {create: {name: "Acme"}}}) { id } }"#),
            )
            .await;
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let r = api.execute(&store, &admin, Request::new(QUERY)).await;
        assert!(r.errors.is_empty(), "{:?}", r.errors);
    });

    let mut g = c.benchmark_group("tenant_schema");
    let derived = Derived::base(Arc::clone(&cat)).unwrap();
    // What a metadata change costs the tenant's next request: definitions read, catalog
    // extended and validated, schema derived from the shared one.
    g.bench_function("load_extend_derive", |b| {
        b.iter(|| {
            rt.block_on(async {
                let (_, tenant) = store.tenant_catalog(&org).await.unwrap();
                black_box(derived.tenant(&tenant).unwrap())
            })
        });
    });
    let ext = tenant_defs::extension();
    g.bench_function("extend_derive_only", |b| {
        b.iter(|| black_box(derived.tenant(&cat.extend(&ext).unwrap()).unwrap()));
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("cached_request", |b| {
        b.iter(|| {
            let r = rt.block_on(api.execute(&store, &admin, Request::new(QUERY)));
            assert!(r.errors.is_empty(), "{:?}", r.errors);
            black_box(r)
        });
    });
    g.finish();
    drop(store);
    drop(rt);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
