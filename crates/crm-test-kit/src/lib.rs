//! What the integration tests of every crate share, so each harness states only what is its own:
//! the databases tests run on (SQLite always; PostgreSQL when `CRM_TEST_DATABASE_URL` is set,
//! and required under `CI=true`), fresh tenants, principals, and redacting responses for
//! snapshots.
//!
//! A test kit fails the test it serves: a database that cannot be reached or a name that is not
//! valid stops the test with the reason.
#![forbid(unsafe_code)]
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use crm_model::{Catalog, OrgId, RoleName};
use crm_orm::{Data, Op, OrmError, Policy, Principal, Read, Selection, Store, StoreOptions, TxCtx, TxFuture, TxWork, Write, authorize};
use serde_json::Value as Json;
use uuid::Uuid;

/// The PostgreSQL database of the tests, from `CRM_TEST_DATABASE_URL`. Without it tests run on
/// SQLite alone, except under `CI=true`, where its absence fails the test.
///
/// # Panics
/// Under `CI=true` without `CRM_TEST_DATABASE_URL`.
#[must_use]
pub fn postgres_url() -> Option<String> {
    match std::env::var("CRM_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").as_deref() == Ok("true") => panic!("CI=true: PostgreSQL tests need CRM_TEST_DATABASE_URL"),
        _ => {
            eprintln!("note: PostgreSQL skipped (CRM_TEST_DATABASE_URL not set)");
            None
        }
    }
}

/// The database URLs a test runs against, by backend name: a SQLite file in `dir`, and the
/// PostgreSQL database when there is one (for tests that start a server process on them).
///
/// # Panics
/// As [`postgres_url`].
#[must_use]
pub fn database_urls(dir: &std::path::Path) -> Vec<(&'static str, String)> {
    let mut out = vec![("sqlite", format!("sqlite://{}", dir.join("crm.db").display()))];
    out.extend(postgres_url().map(|url| ("postgres", url)));
    out
}

/// One database a test runs on, with a store serving the test's catalog.
pub struct Backend {
    /// `sqlite` or `postgres`.
    pub name: &'static str,
    /// The store, migrated.
    pub store: Store,
}

/// A fresh, migrated SQLite database serving `catalog`, and the path of its file (for tests
/// that open the file themselves).
///
/// # Panics
/// When the file cannot be created or migrated.
pub async fn sqlite(catalog: Arc<Catalog>) -> (Backend, PathBuf) {
    let path = std::env::temp_dir().join(format!("crm-test-{}.db", Uuid::now_v7()));
    let store = Store::connect(&format!("sqlite://{}", path.display()), catalog, StoreOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    (Backend { name: "sqlite", store }, path)
}

/// Every database the test runs on, migrated, serving `catalog`: a fresh SQLite file, and the
/// PostgreSQL database when there is one (see [`postgres_url`]). Tests on PostgreSQL share it:
/// each works in fresh tenants ([`org`]).
///
/// # Panics
/// When a database cannot be reached or migrated, and as [`postgres_url`].
pub async fn backends(catalog: Arc<Catalog>) -> Vec<Backend> {
    backends_with(catalog, StoreOptions { max_connections: 5, ..StoreOptions::default() }).await
}

/// Like [`backends`], with the stores opened with `options` (pool size, timeouts).
///
/// # Panics
/// As [`backends`].
pub async fn backends_with(catalog: Arc<Catalog>, options: StoreOptions) -> Vec<Backend> {
    let path = std::env::temp_dir().join(format!("crm-test-{}.db", Uuid::now_v7()));
    let sqlite = Store::connect(&format!("sqlite://{}", path.display()), Arc::clone(&catalog), options.clone()).await.unwrap();
    sqlite.migrate().await.unwrap();
    let mut out = vec![Backend { name: "sqlite", store: sqlite }];
    if let Some(url) = postgres_url() {
        let store =
            Store::connect(&url, catalog, options).await.unwrap_or_else(|err| panic!("CRM_TEST_DATABASE_URL is set but unusable: {err}"));
        store.migrate().await.unwrap();
        out.push(Backend { name: "postgres", store });
    }
    out
}

/// A fresh tenant id, so tests sharing a database never see each other's records.
///
/// # Panics
/// Never: the id is valid by construction.
#[must_use]
pub fn org() -> OrgId {
    OrgId::new(format!("org-{}", Uuid::now_v7().simple())).unwrap()
}

/// The principal `sub` of tenant `org` with `roles`.
///
/// # Panics
/// When a role name is not valid.
#[must_use]
pub fn principal(org: &OrgId, sub: &str, roles: &[&str]) -> Principal {
    Principal { sub: sub.to_owned(), org_id: org.clone(), roles: roles.iter().map(|r| RoleName::new(*r).unwrap()).collect() }
}

/// Replaces, anywhere in `v`, the value of every object key in `keys` by `"[key]"` (for
/// snapshots of responses with ids, cursors and timestamps).
pub fn redact(v: &mut Json, keys: &[&str]) {
    match v {
        Json::Object(o) => {
            for (k, x) in o.iter_mut() {
                if keys.contains(&k.as_str()) && !x.is_null() {
                    *x = Json::String(format!("[{k}]"));
                } else {
                    redact(x, keys);
                }
            }
        }
        Json::Array(items) => items.iter_mut().for_each(|x| redact(x, keys)),
        _ => {}
    }
}

/// How many records of `model` principal `p` reads (first page, under the default roles).
///
/// # Errors
/// What the read fails with (the test asserts on it).
///
/// # Panics
/// An unknown model.
pub async fn count(store: &Store, p: &Principal, model: &str) -> Result<usize, OrmError> {
    let cat = store.catalog();
    let m = cat.model(model).unwrap();
    let read = authorize(cat, &Policy::default_roles(), p, &m.name, Op::Read, Read::new(m))?;
    Ok(store.read(&read).await?.rows.len())
}

/// Creates a `model` record from `data` (the JSON of its create input) as principal `p`, under
/// the default roles.
///
/// # Errors
/// What the write fails with (the test asserts on it).
///
/// # Panics
/// An unknown model.
pub async fn create(store: &Store, p: &Principal, model: &str, data: &Json) -> Result<(), OrmError> {
    let cat = store.catalog();
    let m = cat.model(model).unwrap();
    let data = Data::parse(cat, m, data, "data")?;
    let write = authorize(cat, &Policy::default_roles(), p, &m.name, Op::Create, Write::Create { model: m.name.clone(), data })?;
    store.write(&write, &Selection::scalars(m)).await.map(|_| ())
}

/// Work that creates records (model, create input) in one transaction, as `Store::transaction`
/// runs it: the ids in order. What tests and benchmarks set a tenant up with.
#[derive(Debug, Clone)]
pub struct Creates(pub Vec<(&'static str, Json)>);

impl TxWork for Creates {
    type Output = Vec<Uuid>;
    fn run<'a>(&'a self, tx: &'a mut TxCtx<'_>) -> TxFuture<'a, Vec<Uuid>> {
        Box::pin(async move {
            let mut ids = Vec::with_capacity(self.0.len());
            for (model, data) in &self.0 {
                ids.push(tx.create(model, data).await?);
            }
            Ok(ids)
        })
    }
}
