//! Test harness: every test runs on SQLite (always) and PostgreSQL (when `CRM_TEST_DATABASE_URL`
//! is set; required under `CI=true`), through the GraphQL API as several principals.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::Arc;

use crm_graphql::{Api, Request, SchemaOptions, Variables};
use crm_model::OrgId;
use crm_model::standard::standard_catalog;
use crm_orm::{Policy, Principal, Store};
use serde_json::{Value as Json, json};

#[allow(unused_imports)] // not every test binary uses every helper
pub use crm_test_kit::{org, principal, redact};

/// A database of the test kit, with the API in front of its store.
pub struct Backend {
    pub name: &'static str,
    pub store: Store,
    pub api: Arc<Api>,
}

fn api() -> Arc<Api> {
    Arc::new(Api::new(SchemaOptions::default(), Policy::default_roles()))
}

pub async fn backends() -> Vec<Backend> {
    let api = api();
    crm_test_kit::backends(Arc::new(standard_catalog().unwrap()))
        .await
        .into_iter()
        .map(|b| Backend { name: b.name, store: b.store, api: Arc::clone(&api) })
        .collect()
}

/// A GraphQL client acting as one principal.
pub struct Gql<'a> {
    pub b: &'a Backend,
    pub p: Principal,
}

pub fn gql(b: &Backend, p: Principal) -> Gql<'_> {
    Gql { b, p }
}

impl Gql<'_> {
    /// The whole response as JSON (`data`, `errors`).
    pub async fn run(&self, query: &str, vars: Json) -> Json {
        let req = Request::new(query).variables(Variables::from_json(vars));
        let resp = self.b.api.execute(&self.b.store, &self.p, req).await;
        serde_json::to_value(&resp).unwrap()
    }

    /// `data`, failing the test on any error.
    pub async fn ok(&self, query: &str, vars: Json) -> Json {
        let r = self.run(query, vars).await;
        if let Some(errs) = r.get("errors") {
            panic!("[{}] unexpected errors for {query}: {errs:#}", self.b.name);
        }
        r["data"].clone()
    }

    /// The `extensions.code` of the first error, failing the test if there is none.
    pub async fn code(&self, query: &str, vars: Json) -> String {
        let r = self.run(query, vars).await;
        let Some(e) = r.get("errors").and_then(|e| e.get(0)) else {
            panic!("[{}] expected an error for {query}, got {r:#}", self.b.name);
        };
        e["extensions"]["code"].as_str().unwrap_or_else(|| panic!("error without code: {e:#}")).to_owned()
    }

    /// The first error object.
    pub async fn error(&self, query: &str, vars: Json) -> Json {
        let r = self.run(query, vars).await;
        r.get("errors")
            .and_then(|e| e.get(0))
            .cloned()
            .unwrap_or_else(|| panic!("[{}] expected an error for {query}, got {r:#}", self.b.name))
    }
}

/// Shorthand for `json!({})`.
pub fn no_vars() -> Json {
    json!({})
}

// ---------------------------------------------------------------------------------------------
// Helpers of the golden tests (golden_read.rs, golden_write.rs, statements.rs, errors.rs).

/// The three principals every golden case runs as: an admin of tenant A, a restricted user of A
/// (`sales` with sub `alice`, or `viewer` with sub `val`), and an admin of tenant B.
pub struct Cast<'a> {
    pub a: OrgId,
    pub b: OrgId,
    pub admin: Gql<'a>,
    pub restricted: Gql<'a>,
    pub other: Gql<'a>,
}

/// A fresh pair of tenants with the three principals; `restricted` is `"sales"` (sub `alice`) or
/// `"viewer"` (sub `val`).
pub fn cast<'a>(b: &'a Backend, restricted: &str) -> Cast<'a> {
    let (a_org, b_org) = (org(), org());
    let sub = if restricted == "sales" { "alice" } else { "val" };
    Cast {
        admin: gql(b, principal(&a_org, "admin-a", &["admin"])),
        restricted: gql(b, principal(&a_org, sub, &[restricted])),
        other: gql(b, principal(&b_org, "admin-b", &["admin"])),
        a: a_org,
        b: b_org,
    }
}

/// The string values of `key` in a JSON array of objects (`null` and absent become `"<null>"`).
pub fn strs(list: &Json, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("expected an array, got {list}"))
        .iter()
        .map(|o| o.get(key).and_then(Json::as_str).unwrap_or("<null>").to_owned())
        .collect()
}

/// Like [`strs`], sorted.
pub fn sorted(list: &Json, key: &str) -> Vec<String> {
    let mut v = strs(list, key);
    v.sort();
    v
}

/// A fresh migrated SQLite backend and the path of its file (for tests that open the file
/// directly, e.g. to break a table).
pub async fn sqlite_backend() -> (Backend, std::path::PathBuf) {
    let (b, path) = crm_test_kit::sqlite(Arc::new(standard_catalog().unwrap())).await;
    (Backend { name: b.name, store: b.store, api: api() }, path)
}

/// Creates a `model` record from `data` (the JSON of its `CreateInput`) and returns its id.
pub async fn create(g: &Gql<'_>, model: &str, data: Json) -> String {
    let q = format!("mutation($d: {model}CreateInput!) {{ create{model}(data: $d) {{ id }} }}");
    let d = g.ok(&q, json!({ "d": data })).await;
    d[format!("create{model}")]["id"].as_str().unwrap().to_owned()
}
