//! The outbox at work: idle consumers wake on a commit (in this process, and on PostgreSQL from
//! another process through `LISTEN/NOTIFY`) instead of polling; retention deletes passed events
//! while writes go on, and no consumer misses one; workers report how far behind they are.
//! SQLite always; PostgreSQL when `CRM_TEST_DATABASE_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use crm_engines::{Engines, WorkerOptions, Workers};
use crm_model::OrgId;
use crm_model::standard::standard_catalog;
use crm_orm::{Access, Filter, Op, Read, RecordEvents, Store, StoreOptions};
use crm_test_kit::Creates;
use serde_json::{Value as Json, json};
use uuid::Uuid;

/// Creates records in one transaction: `(model, data)`.
/// A rule that qualifies every new lead with an email: one `lead.created` event handled by the
/// automation consumer shows as one `QUALIFIED` lead.
fn qualify_rule() -> (&'static str, Json) {
    (
        "AutomationRule",
        json!({ "name": "Qualify", "event": "lead.created", "condition": { "status": "NEW", "email_not": null }, "set": { "status": "QUALIFIED" } }),
    )
}

fn lead(i: usize) -> (&'static str, Json) {
    ("Lead", json!({ "name": format!("lead {i}"), "email": format!("l{i}@x.example") }))
}

async fn count(store: &Store, access: &Access, model: &str, filter: Json) -> i64 {
    let m = store.catalog().model(model).unwrap().clone();
    let mut read = Read::new(&m);
    read.filter = Filter::parse(store.catalog(), &m, &filter).unwrap();
    read.count = true;
    read.page.first = Some(1);
    store.read(&access.scope(store.catalog(), &m.name, Op::Read, read).unwrap()).await.unwrap().count.unwrap()
}

async fn until(what: &str, within: Duration, mut ok: impl AsyncFnMut() -> bool) -> Duration {
    let t = Instant::now();
    while !ok().await {
        assert!(t.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t.elapsed()
}

/// Workers that only look on their own once a minute, for `orgs`: anything faster is a wake-up.
fn sleepy(orgs: &[&OrgId]) -> WorkerOptions {
    WorkerOptions {
        sweep: Duration::from_mins(1),
        retention: None,
        orgs: orgs.iter().map(|o| o.as_str().to_owned()).collect(),
        ..WorkerOptions::default()
    }
}

async fn stores() -> Vec<(&'static str, Store, Option<Store>)> {
    let catalog = Arc::new(standard_catalog().unwrap());
    let mut out = Vec::new();
    for b in crm_test_kit::backends(Arc::clone(&catalog)).await {
        // On PostgreSQL a second store over the same database: another server process.
        let other = match b.name {
            "postgres" => {
                Some(Store::connect(&crm_test_kit::postgres_url().unwrap(), Arc::clone(&catalog), StoreOptions::default()).await.unwrap())
            }
            _ => None,
        };
        out.push((b.name, Engines::install(&b.store), other.map(|o| Engines::install(&o))));
    }
    out
}

#[tokio::test]
async fn an_idle_consumer_wakes_on_a_commit_not_a_poll() {
    for (name, store, other) in stores().await {
        let (a, b) = (crm_test_kit::org(), crm_test_kit::org());
        let platform = store.cross_tenant_platform_work();
        let (sys_a, sys_b) = (platform.system_access(a.clone(), "test"), platform.system_access(b.clone(), "test"));
        store.transaction(&sys_a, &Creates(vec![qualify_rule()])).await.unwrap();
        let workers = Workers::start(store.clone(), sleepy(&[&a, &b]));
        // Let the consumers pass the rule's own event and fall idle.
        tokio::time::sleep(Duration::from_millis(500)).await;

        // A write of this process wakes them.
        store.transaction(&sys_a, &Creates(vec![lead(1)])).await.unwrap();
        let took = until(&format!("{name}: the lead qualified"), Duration::from_secs(5), async || {
            count(&store, &sys_a, "Lead", json!({ "status": "QUALIFIED" })).await == 1
        })
        .await;
        eprintln!("{name}: woken by this process's commit in {took:?}");

        // Tenant B has no rule: its lead stays new, and A's rule never reached it.
        store.transaction(&sys_b, &Creates(vec![lead(2)])).await.unwrap();

        // On PostgreSQL a write of another process wakes them through LISTEN/NOTIFY.
        if let Some(other) = other {
            let sys = other.cross_tenant_platform_work().system_access(a.clone(), "test");
            other.transaction(&sys, &Creates(vec![lead(3)])).await.unwrap();
            let took = until(&format!("{name}: the other process's lead qualified"), Duration::from_secs(5), async || {
                count(&store, &sys_a, "Lead", json!({ "status": "QUALIFIED" })).await == 2
            })
            .await;
            eprintln!("{name}: woken by another process's commit in {took:?}");
        }
        until(&format!("{name}: caught up"), Duration::from_secs(5), async || {
            platform.lag("automation", &[a.to_string(), b.to_string()]).await.unwrap().events == 0
        })
        .await;
        assert_eq!(count(&store, &sys_b, "Lead", json!({ "status": "QUALIFIED" })).await, 0, "{name}: tenant B untouched");
        assert_eq!(count(&store, &sys_b, "Lead", json!({ "status": "NEW" })).await, 1, "{name}");
        workers.stop().await;
    }
}

/// Retention deletes across tenants (it is platform work): the tests that purge take turns, so
/// one test's purge cannot take the events another test keeps for a consumer it did not name.
static PURGING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn retention_deletes_passed_events_while_writes_go_on_and_no_consumer_misses_one() {
    const LEADS: i64 = 120;
    let _turn = PURGING.lock().await;
    for (name, store, _) in stores().await {
        let org = crm_test_kit::org();
        let platform = store.cross_tenant_platform_work();
        let sys = platform.system_access(org.clone(), "test");
        store.transaction(&sys, &Creates(vec![qualify_rule()])).await.unwrap();
        let orgs = vec![org.to_string()];

        // The consumers are behind (not started yet): retention deletes nothing of this tenant.
        let first = store.transaction(&sys, &Creates(vec![lead(0)])).await.unwrap()[0];
        let far = chrono::Utc::now() + chrono::Duration::hours(1);
        platform.purge_events(&["automation", "webhooks"], far, 1000).await.unwrap();
        assert_eq!(platform.lag("automation", &orgs).await.unwrap().events, 2, "{name}: unprocessed events are kept");

        // Writers, the consumers and retention at the same time: retention deletes every event
        // both consumers have passed (whatever its age: the cut-off is in the future).
        let workers = Workers::start(store.clone(), WorkerOptions { retention: None, orgs: orgs.clone(), ..WorkerOptions::default() });
        let writer = {
            let (store, sys) = (store.clone(), sys.clone());
            tokio::spawn(async move {
                for i in 1..usize::try_from(LEADS).unwrap() {
                    store.transaction(&sys, &Creates(vec![lead(i)])).await.unwrap();
                }
            })
        };
        let mut deleted = 0;
        while !writer.is_finished() {
            deleted += platform.purge_events(&["automation", "webhooks"], far, 7).await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        writer.await.unwrap();
        until(&format!("{name}: every lead qualified"), Duration::from_secs(20), async || {
            count(&store, &sys, "Lead", json!({ "status": "QUALIFIED" })).await == LEADS
        })
        .await;
        // The rule's own updates are events too: wait until both consumers have passed them all.
        until(&format!("{name}: consumers caught up"), Duration::from_secs(20), async || {
            platform.lag("automation", &orgs).await.unwrap().events == 0 && platform.lag("webhooks", &orgs).await.unwrap().events == 0
        })
        .await;
        workers.stop().await;
        deleted += platform.purge_events(&["automation", "webhooks"], far, 1000).await.unwrap();
        eprintln!(
            "{name}: retention deleted {deleted} events while {LEADS} leads were written and qualified; new {} qualified {} all {}",
            count(&store, &sys, "Lead", json!({ "status": "NEW" })).await,
            count(&store, &sys, "Lead", json!({ "status": "QUALIFIED" })).await,
            count(&store, &sys, "Lead", json!({})).await
        );
        assert!(deleted > 0, "{name}: retention deleted nothing while writes went on");
        // Each lead was qualified once: no event missed, none handled twice.
        assert_eq!(count(&store, &sys, "Lead", json!({ "status": "NEW" })).await, 0, "{name}");
        assert_eq!(count(&store, &sys, "Lead", json!({ "status": "QUALIFIED" })).await, LEADS, "{name}");

        // A record's timeline holds what retention kept: within the retention, its events; the
        // first lead's events (passed by both consumers) are gone with the cut-off in the future.
        let lead_model = store.catalog().model("Lead").unwrap().clone();
        let timeline = |record: Uuid| {
            sys.scope(store.catalog(), &lead_model.name, Op::Read, RecordEvents { model: lead_model.name.clone(), record, first: 50 })
                .unwrap()
        };
        assert!(store.record_events(&timeline(first)).await.unwrap().is_empty(), "{name}: purged");
        let recent = store.transaction(&sys, &Creates(vec![("Lead", json!({ "name": "kept" }))])).await.unwrap()[0];
        let past = chrono::Utc::now() - chrono::Duration::hours(1);
        platform.purge_events(&["automation", "webhooks"], past, 1000).await.unwrap();
        let events = store.record_events(&timeline(recent)).await.unwrap();
        assert_eq!(events.len(), 1, "{name}: an event within the retention is kept: {events:?}");
    }
}

#[tokio::test]
async fn retention_keeps_what_a_consumer_has_not_passed() {
    let _turn = PURGING.lock().await;
    for (name, store, _) in stores().await {
        let org = crm_test_kit::org();
        let platform = store.cross_tenant_platform_work();
        let sys = platform.system_access(org.clone(), "test");
        store.transaction(&sys, &Creates(vec![lead(1), lead(2)])).await.unwrap();
        let orgs = vec![org.to_string()];
        // Only automation runs; a second consumer (`nats`) that has never read this tenant is
        // waited for, as the configuration says.
        let workers = Workers::start(store.clone(), WorkerOptions { retention: None, orgs: orgs.clone(), ..WorkerOptions::default() });
        until(&format!("{name}: automation caught up"), Duration::from_secs(10), async || {
            platform.lag("automation", &orgs).await.unwrap().events == 0
        })
        .await;
        workers.stop().await;
        let far = chrono::Utc::now() + chrono::Duration::hours(1);
        platform.purge_events(&["automation", "nats"], far, 1000).await.unwrap();
        let lag = platform.lag("nats", &orgs).await.unwrap();
        assert_eq!(lag.events, 2, "{name}: the events `nats` has not passed are kept");
        assert!(lag.oldest.is_some(), "{name}");
    }
}
