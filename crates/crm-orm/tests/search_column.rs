//! The search column is a plain column the store writes: a SQLite file is readable by stock
//! `sqlite3` (Debian 12's 3.40 could not parse the generated column of earlier versions), and a
//! database made by an earlier version is converted and filled by `migrate`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::{client, org, principal};
use crm_model::standard::standard_catalog;
use crm_orm::{Store, StoreOptions};
use serde_json::json;
use sqlx::Connection;

/// `sqlite3` (the distribution's shell) on `path`: its output, or `None` where it is not
/// installed (CI installs it: there its absence fails the test).
fn stock_sqlite(path: &Path, sql: &str) -> Option<String> {
    let out = match Command::new("sqlite3").arg("-bail").arg(path).arg(sql).output() {
        Ok(out) => out,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("sqlite3 not run ({e}): skipped");
            return None;
        }
        Err(e) => panic!("sqlite3 is needed under CI: {e}"),
    };
    assert!(out.status.success(), "sqlite3 failed: {}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8(out.stdout).unwrap())
}

#[tokio::test]
async fn stock_sqlite_reads_the_file() {
    let (b, path) = crm_test_kit::sqlite(Arc::new(standard_catalog().unwrap())).await;
    let a = client(&b, principal(&org(), "admin", &["admin"]));
    a.create("Contact", json!({ "firstName": "Zoë", "lastName": "Ångström" })).await.unwrap();
    a.create("Lead", json!({ "name": "José García" })).await.unwrap();
    let Some(out) = stock_sqlite(&path, "SELECT crm_search FROM contacts UNION ALL SELECT crm_search FROM leads; PRAGMA integrity_check;")
    else {
        return;
    };
    assert_eq!(out, "zoe angstrom \njose garcia  \nok\n");
    let schema = stock_sqlite(&path, ".schema").unwrap();
    assert!(!schema.contains("GENERATED"), "no generated column left:\n{schema}");
}

#[tokio::test]
async fn an_earlier_generated_column_is_converted_and_filled() {
    let catalog = Arc::new(standard_catalog().unwrap());
    let (b, path) = crm_test_kit::sqlite(Arc::clone(&catalog)).await;
    let (ta, tb) = (org(), org());
    let (a, other) = (client(&b, principal(&ta, "admin", &["admin"])), client(&b, principal(&tb, "admin", &["admin"])));
    a.create("Contact", json!({ "firstName": "José", "lastName": "García" })).await.unwrap();
    other.create("Contact", json!({ "firstName": "Zoë", "lastName": "Müller" })).await.unwrap();
    drop(a);
    drop(other);
    drop(b);
    // The table as an earlier version left it: a VIRTUAL generated column, no refill recorded.
    let url = format!("sqlite://{}", path.display());
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    for stmt in [
        "ALTER TABLE contacts DROP COLUMN crm_search",
        "ALTER TABLE contacts ADD COLUMN crm_search TEXT GENERATED ALWAYS AS \
         (replace(lower(coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' ' || coalesce(email, '')), 'é', 'e')) VIRTUAL",
        "DELETE FROM crm_model_tables WHERE table_name LIKE 'contacts%'",
    ] {
        sqlx::query(stmt).execute(&mut c).await.unwrap();
    }
    let hidden = "SELECT hidden FROM pragma_table_xinfo('contacts') WHERE name = 'crm_search'";
    assert_eq!(sqlx::query_scalar::<_, i64>(hidden).fetch_one(&mut c).await.unwrap(), 2);
    c.close().await.unwrap();

    // Several connections: one opened before the migration must not be handed out after it.
    let store = Store::connect(&url, catalog, StoreOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    let b = crm_test_kit::Backend { name: "sqlite", store };
    let (a, other) = (client(&b, principal(&ta, "admin", &["admin"])), client(&b, principal(&tb, "admin", &["admin"])));
    a.create("Contact", json!({ "firstName": "Ann", "lastName": "Lee" })).await.unwrap();
    assert_eq!(a.values("Contact", json!({ "_search": "jose garcia" }), &[], "firstName").await, vec![json!("José")]);
    assert_eq!(a.values("Contact", json!({ "_search": "lee" }), &[], "firstName").await, vec![json!("Ann")]);
    assert_eq!(a.count("Contact", json!({ "_search": "muller" })).await, 0);
    assert_eq!(other.values("Contact", json!({ "_search": "zoe muller" }), &[], "firstName").await, vec![json!("Zoë")]);
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    assert_eq!(sqlx::query_scalar::<_, i64>(hidden).fetch_one(&mut c).await.unwrap(), 0, "a plain column now");
    c.close().await.unwrap();
    // A second start changes nothing.
    b.store.migrate().await.unwrap();
    assert_eq!(a.count("Contact", json!({ "_search": "garcia" })).await, 1);
}
