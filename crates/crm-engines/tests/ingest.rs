//! Batched social ingestion decides rules in memory and writes each kind of record with one batch
//! create; a rule it cannot decide in memory sends the batch event by event to the database. Both
//! ways must write the same: the same contacts, conversations, leads, tickets, links and timeline
//! entries, and the same outcome per event. SQLite always; PostgreSQL when `CRM_TEST_DATABASE_URL`
//! is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::HashMap;
use std::sync::Arc;

use crm_engines::Engines;
use crm_engines::ingest::{Ingest, IngestOutcome, SocialInput};
use crm_model::standard::standard_catalog;
use crm_orm::{Access, Filter, Op, Read, Store};
use crm_test_kit::Creates;
use serde_json::{Value as Json, json};
use uuid::Uuid;

fn rules(undecidable: bool) -> Vec<(&'static str, Json)> {
    let mut r = vec![
        ("Member", json!({ "name": "Ann", "teams": ["social"] })),
        ("Member", json!({ "name": "Bob", "teams": ["social"] })),
        ("TagRule", json!({ "name": "social", "condition": { "source": "SOCIAL" }, "tags": ["social"] })),
        ("RoutingRule", json!({ "name": "rr", "pool": ["social"], "respectWorkingHours": false })),
        ("IngestionRule", json!({ "name": "dm", "condition": { "kind": "DM" }, "action": "LEAD", "priority": 1 })),
        (
            "IngestionRule",
            json!({ "name": "help", "condition": { "kind": "MENTION", "text_contains": "HELP" }, "action": "TICKET", "priority": 2 }),
        ),
    ];
    if undecidable {
        // Never matches, but only the database can tell (full-text search): the batch goes event
        // by event.
        r.push(("IngestionRule", json!({ "name": "never", "condition": { "_search": "zzqqxxnever" }, "action": "LEAD", "priority": 9 })));
    }
    r
}

fn batch(from: usize, to: usize) -> Vec<SocialInput> {
    (from..to)
        .map(|k| {
            let (kind, thread) = match k % 5 {
                0 => ("DM", None),
                1 => ("REPLY", Some(format!("e{}", k - 1))),
                2 => ("MENTION", None),
                3 => ("POST", None),
                _ => ("REPLY", Some(format!("e{}", k - 2))), // a reply to a mention
            };
            SocialInput {
                platform: "x".into(),
                kind: kind.into(),
                external_id: format!("e{k}"),
                thread,
                author_handle: format!("@User{}", k / 3),
                author_name: (k % 7 != 0).then(|| format!("User {}", k / 3)),
                text: Some(if k % 2 == 0 { format!("help with {k}") } else { format!("hello {k}") }),
                url: None,
                occurred_at: None,
            }
        })
        .collect()
}

/// An outcome with ids replaced by the order they first appear in.
fn shape(out: &IngestOutcome) -> Json {
    let mut seen: HashMap<Uuid, usize> = HashMap::new();
    let mut name = |id: Option<Uuid>| -> Json {
        id.map_or(Json::Null, |id| {
            let n = seen.len();
            json!(*seen.entry(id).or_insert(n))
        })
    };
    let items: Vec<Json> = out
        .items
        .iter()
        .map(|i| json!([i.external_id, i.status, i.social_event.is_some(), name(i.contact), name(i.lead), name(i.ticket)]))
        .collect();
    json!({
        "counts": [out.received, out.created, out.duplicates, out.contacts_created, out.leads_created, out.tickets_created],
        "items": items,
    })
}

async fn rows(store: &Store, access: &Access, model: &str, first: u32) -> Vec<Json> {
    let m = store.catalog().model(model).unwrap().clone();
    let mut read = Read::new(&m);
    read.filter = Filter::True;
    read.page.first = Some(first);
    store.read(&access.scope(store.catalog(), &m.name, Op::Read, read).unwrap()).await.unwrap().rows
}

#[tokio::test]
async fn a_batch_decided_in_memory_writes_what_event_by_event_ingestion_writes() {
    let catalog = Arc::new(standard_catalog().unwrap());
    for b in crm_test_kit::backends(catalog).await {
        let store = Engines::install(&b.store);
        let platform = store.cross_tenant_platform_work();
        let mut shapes = Vec::new();
        for undecidable in [false, true] {
            let access = platform.system_access(crm_test_kit::org(), "test");
            store.transaction(&access, &Creates(rules(undecidable))).await.unwrap();
            // Two batches: the second continues conversations of the first and repeats a few.
            let first = store.transaction(&access, &Ingest { events: batch(0, 60) }).await.unwrap();
            let mut second = batch(50, 100);
            second.push(batch(3, 4).remove(0)); // a duplicate of the first batch
            second.push(batch(70, 71).remove(0)); // a duplicate within the batch
            let second = store.transaction(&access, &Ingest { events: second }).await.unwrap();
            let again = store.transaction(&access, &Ingest { events: batch(0, 100) }).await.unwrap();
            assert_eq!(again.duplicates, 100, "{}: everything known", b.name);
            // Every lead routed and tagged, every event on a timeline.
            let leads = rows(&store, &access, "Lead", 100).await;
            assert!(leads.iter().all(|l| l["owner"].is_string() && l["tags"] == json!(["social"])), "{}: {leads:?}", b.name);
            let activities = rows(&store, &access, "Activity", 100).await.len();
            assert_eq!(activities, 100, "{}: one timeline entry per event", b.name);
            let links =
                rows(&store, &access, "SocialEvent", 100).await.iter().filter(|e| e["lead"].is_string() || e["ticket"].is_string()).count();
            shapes.push(json!({ "first": shape(&first), "second": shape(&second), "linked": links }));
        }
        assert_eq!(shapes[0], shapes[1], "{}: in memory and event by event differ", b.name);
        let counts = &shapes[0]["first"]["counts"];
        assert_eq!(counts, &json!([60, 60, 0, 20, 12, 6]), "{}: {}", b.name, shapes[0]);
    }
}
