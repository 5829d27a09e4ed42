//! Failures a client can act on: when the database cannot serve (here: every connection of the
//! pool is held), reads and writes fail within the acquire timeout with `UNAVAILABLE`, change
//! nothing, and work again once a connection is free. On SQLite and PostgreSQL, for two tenants.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use crm_model::ErrorCode;
use crm_model::standard::standard_catalog;
use crm_orm::{Policy, StoreOptions, TxCtx, TxFuture, TxWork};
use crm_test_kit::{count, create, org, principal};
use serde_json::json;
use tokio::sync::Notify;

/// Holds its transaction (and so its connection) open until released.
struct Hold {
    started: Arc<Notify>,
    release: Arc<Notify>,
}

impl TxWork for Hold {
    type Output = ();
    fn run<'a>(&'a self, _tx: &'a mut TxCtx<'_>) -> TxFuture<'a, ()> {
        Box::pin(async move {
            self.started.notify_one();
            self.release.notified().await;
            Ok(())
        })
    }
}

const ACQUIRE: Duration = Duration::from_millis(300);

#[tokio::test]
async fn a_database_that_cannot_serve_answers_unavailable_and_changes_nothing() {
    let options = StoreOptions { max_connections: 1, acquire_timeout: ACQUIRE, ..StoreOptions::default() };
    for b in crm_test_kit::backends_with(Arc::new(standard_catalog().unwrap()), options).await {
        let (a, other) = (principal(&org(), "admin-a", &["admin"]), principal(&org(), "admin-b", &["admin"]));
        create(&b.store, &a, "Lead", &json!({ "name": "before" })).await.unwrap();

        // Every connection is held by a transaction of tenant A.
        let hold = Arc::new(Hold { started: Arc::new(Notify::new()), release: Arc::new(Notify::new()) });
        let (store, work, access) = (b.store.clone(), Arc::clone(&hold), crm_orm::access(b.store.catalog(), &Policy::default_roles(), &a));
        let held = tokio::spawn(async move { store.transaction(&access, work.as_ref()).await });
        hold.started.notified().await;

        for who in [&a, &other] {
            let started = Instant::now();
            let e = count(&b.store, who, "Lead").await.unwrap_err();
            assert_eq!(e.code(), ErrorCode::Unavailable, "{}: a read: {e}", b.name);
            assert!(started.elapsed() < ACQUIRE * 10, "{}: answered after {:?}", b.name, started.elapsed());
            assert!(e.client_message().contains("nothing was changed"), "{}", e.client_message());
            assert!(!e.commit_unknown());
            let e = create(&b.store, who, "Lead", &json!({ "name": "during" })).await.unwrap_err();
            assert_eq!(e.code(), ErrorCode::Unavailable, "{}: a write: {e}", b.name);
        }

        hold.release.notify_one();
        held.await.unwrap().unwrap();
        // It recovers, and the writes refused while unavailable left nothing.
        assert_eq!(count(&b.store, &a, "Lead").await.unwrap(), 1, "{}", b.name);
        assert_eq!(count(&b.store, &other, "Lead").await.unwrap(), 0, "{}", b.name);
        create(&b.store, &other, "Lead", &json!({ "name": "after" })).await.unwrap();
        assert_eq!(count(&b.store, &other, "Lead").await.unwrap(), 1, "{}", b.name);
    }
}

/// A statement past `--db-statement-timeout-ms` (here one waiting for a lock another session
/// holds) is cancelled by PostgreSQL: the request fails as unavailable within about the
/// timeout, changes nothing, and the operator's counter says so. Two tenants, both cut off.
#[tokio::test]
async fn a_statement_past_its_time_limit_is_cancelled_and_counted() {
    let Some(url) = crm_test_kit::postgres_url() else { return };
    let limit = Duration::from_millis(300);
    let options = StoreOptions { statement_timeout: Some(limit), ..StoreOptions::default() };
    let store = crm_orm::Store::connect(&url, Arc::new(standard_catalog().unwrap()), options).await.unwrap();
    store.migrate().await.unwrap();
    let (a, other) = (principal(&org(), "admin-a", &["admin"]), principal(&org(), "admin-b", &["admin"]));
    create(&store, &a, "Lead", &json!({ "name": "before" })).await.unwrap();
    // Another session locks the table, as a long migration or a stuck batch would.
    let raw = sqlx::PgPool::connect(&url).await.unwrap();
    let mut lock = raw.begin().await.unwrap();
    sqlx::query("LOCK TABLE leads IN ACCESS EXCLUSIVE MODE").execute(&mut *lock).await.unwrap();
    for who in [&a, &other] {
        let before = crm_orm::statement_timeouts();
        let started = Instant::now();
        // Bounded, so a limit that does not apply fails the test instead of hanging it.
        let e = tokio::time::timeout(limit * 20, create(&store, who, "Lead", &json!({ "name": "during" })))
            .await
            .expect("cut off by the statement timeout")
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::Unavailable, "a write: {e}");
        assert!(started.elapsed() < limit * 10, "answered after {:?}", started.elapsed());
        assert!(crm_orm::statement_timeouts() > before, "the timeout is counted");
        let e = tokio::time::timeout(limit * 20, count(&store, who, "Lead")).await.expect("cut off").unwrap_err();
        assert_eq!(e.code(), ErrorCode::Unavailable, "a read: {e}");
    }
    lock.rollback().await.unwrap();
    assert_eq!(count(&store, &a, "Lead").await.unwrap(), 1, "nothing was written while cut off");
    assert_eq!(count(&store, &other, "Lead").await.unwrap(), 0);
}
