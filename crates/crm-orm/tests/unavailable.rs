//! Failures a client can act on: when the database cannot serve (here: every connection of the
//! pool is held), reads and writes fail within the acquire timeout with `UNAVAILABLE`, change
//! nothing, and work again once a connection is free. On SQLite and PostgreSQL, for two tenants.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use crm_model::standard::standard_catalog;
use crm_model::{ErrorCode, ModelName};
use crm_orm::{Data, Op, Policy, Read, Selection, Store, StoreOptions, TxCtx, TxFuture, TxWork, Write, authorize};
use crm_test_kit::{org, principal};
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

async fn leads(store: &Store, p: &crm_orm::Principal) -> Result<usize, crm_orm::OrmError> {
    let cat = store.catalog();
    let lead = cat.model("Lead").unwrap();
    let s = authorize(cat, &Policy::default_roles(), p, &lead.name, Op::Read, Read::new(lead))?;
    Ok(store.read(&s).await?.rows.len())
}

async fn create_lead(store: &Store, p: &crm_orm::Principal, name: &str) -> Result<(), crm_orm::OrmError> {
    let cat = store.catalog();
    let lead = cat.model("Lead").unwrap();
    let data = Data::parse(cat, lead, &json!({ "name": name }), "data")?;
    let w = Write::Create { model: ModelName::new("Lead").unwrap(), data };
    let s = authorize(cat, &Policy::default_roles(), p, &lead.name, Op::Create, w)?;
    store.write(&s, &Selection::scalars(lead)).await.map(|_| ())
}

#[tokio::test]
async fn a_database_that_cannot_serve_answers_unavailable_and_changes_nothing() {
    let options = StoreOptions { max_connections: 1, acquire_timeout: ACQUIRE, ..StoreOptions::default() };
    for b in crm_test_kit::backends_with(Arc::new(standard_catalog().unwrap()), options).await {
        let (a, other) = (principal(&org(), "admin-a", &["admin"]), principal(&org(), "admin-b", &["admin"]));
        create_lead(&b.store, &a, "before").await.unwrap();

        // Every connection is held by a transaction of tenant A.
        let hold = Arc::new(Hold { started: Arc::new(Notify::new()), release: Arc::new(Notify::new()) });
        let (store, work, access) = (b.store.clone(), Arc::clone(&hold), crm_orm::access(b.store.catalog(), &Policy::default_roles(), &a));
        let held = tokio::spawn(async move { store.transaction(&access, work.as_ref()).await });
        hold.started.notified().await;

        for who in [&a, &other] {
            let started = Instant::now();
            let e = leads(&b.store, who).await.unwrap_err();
            assert_eq!(e.code(), ErrorCode::Unavailable, "{}: a read: {e}", b.name);
            assert!(started.elapsed() < ACQUIRE * 10, "{}: answered after {:?}", b.name, started.elapsed());
            assert!(e.client_message().contains("nothing was changed"), "{}", e.client_message());
            assert!(!e.commit_unknown());
            let e = create_lead(&b.store, who, "during").await.unwrap_err();
            assert_eq!(e.code(), ErrorCode::Unavailable, "{}: a write: {e}", b.name);
        }

        hold.release.notify_one();
        held.await.unwrap().unwrap();
        // It recovers, and the writes refused while unavailable left nothing.
        assert_eq!(leads(&b.store, &a).await.unwrap(), 1, "{}", b.name);
        assert_eq!(leads(&b.store, &other).await.unwrap(), 0, "{}", b.name);
        create_lead(&b.store, &other, "after").await.unwrap();
        assert_eq!(leads(&b.store, &other).await.unwrap(), 1, "{}", b.name);
    }
}
