//! Social ingestion throughput: batches of 500 new events (DMs that become leads, replies that
//! join them, mentions that become tickets, posts) into a fresh tenant, with tagging and routing
//! rules in place, then the same batches again (all duplicates).
//!
//! Beside it, in the same run and database, the ceiling (`raw.rs`): the same rows written by
//! hand-written SQL into another tenant, decided in advance. Printed: events per second of both
//! and their ratio.
//!
//! `cargo run --release -p crm-engines --example ingest_throughput [DATABASE_URL]` (SQLite in a
//! temporary file by default).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![allow(clippy::cast_precision_loss, clippy::cast_possible_wrap, clippy::cast_possible_truncation, clippy::missing_panics_doc)] // a measuring program: arithmetic on counts, sizes and durations far inside the casts' range; it stops at the first failure

mod raw;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crm_engines::Engines;
use crm_engines::ingest::{Ingest, SocialInput};
use crm_model::OrgId;
use crm_model::standard::standard_catalog;
use crm_orm::{Store, StoreOptions};
use crm_test_kit::Creates;
use serde_json::json;

/// The server's allocator (`crm-server` runs ingestion with mimalloc).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The rules of the run: two members of a team, a tag rule, round-robin routing, DMs to leads
/// and mentions to tickets.
fn rules() -> Creates {
    Creates(vec![
        ("Member", json!({ "name": "Ann", "teams": ["social"] })),
        ("Member", json!({ "name": "Bob", "teams": ["social"] })),
        ("TagRule", json!({ "name": "social", "condition": { "source": "SOCIAL" }, "tags": ["social"] })),
        ("RoutingRule", json!({ "name": "rr", "pool": ["social"], "respectWorkingHours": false })),
        ("IngestionRule", json!({ "name": "dm", "condition": { "kind": "DM" }, "action": "LEAD", "priority": 1 })),
        ("IngestionRule", json!({ "name": "help", "condition": { "kind": "MENTION" }, "action": "TICKET", "priority": 2 })),
    ])
}
fn batch(n: usize, offset: usize) -> Vec<SocialInput> {
    (0..n)
        .map(|i| {
            let k = offset + i;
            let (kind, thread) = match k % 4 {
                0 => ("DM", None),
                1 => ("REPLY", Some(format!("e{}", k - 1))),
                2 => ("MENTION", None),
                _ => ("POST", None),
            };
            SocialInput {
                platform: "x".into(),
                kind: kind.into(),
                external_id: format!("e{k}"),
                thread,
                author_handle: format!("@user{}", k / 4),
                author_name: Some(format!("User {}", k / 4)),
                text: Some(format!("message {k} about pricing")),
                url: None,
                occurred_at: None,
            }
        })
        .collect()
}

#[tokio::main]
async fn main() {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| format!("sqlite://{}", std::env::temp_dir().join(format!("ingest-{}.db", uuid::Uuid::now_v7())).display()));
    let store = Engines::install(&Store::connect(&url, Arc::new(standard_catalog().unwrap()), StoreOptions::default()).await.unwrap());
    store.migrate().await.unwrap();
    let org = OrgId::new(format!("bench-{}", uuid::Uuid::now_v7().simple())).unwrap();
    store.register_tenant(&org, None).await.unwrap();
    let access = store.cross_tenant_platform_work().system_access(org, "bench");
    store.transaction(&access, &rules()).await.unwrap();
    let (batches, size) = (10, 500);
    let rate = |d: Duration| (batches * size) as f64 / d.as_secs_f64();
    let t = Instant::now();
    for b in 0..batches {
        let out = store.transaction(&access, &Ingest { events: batch(size, b * size) }).await.unwrap();
        assert_eq!(out.created, size);
    }
    let new = rate(t.elapsed());
    let t = Instant::now();
    for b in 0..batches {
        let out = store.transaction(&access, &Ingest { events: batch(size, b * size) }).await.unwrap();
        assert_eq!(out.duplicates, size);
    }
    let dup = rate(t.elapsed());

    // The ceiling, in another tenant with the same members and rules.
    let ceiling = OrgId::new(format!("raw-{}", uuid::Uuid::now_v7().simple())).unwrap();
    store.register_tenant(&ceiling, None).await.unwrap();
    store.transaction(&store.cross_tenant_platform_work().system_access(ceiling.clone(), "bench"), &rules()).await.unwrap();
    let mut conn = raw::Raw::connect(&url).await;
    let org = ceiling.as_str();
    let mut known = raw::Known {
        org: org.to_owned(),
        members: conn.ids(org, "members").await,
        tag_rule: conn.ids(org, "tag_rules").await[0],
        routing_rule: conn.ids(org, "routing_rules").await[0],
        next_member: 0,
        authors: HashMap::new(),
        threads: HashMap::new(),
    };
    let t = Instant::now();
    for b in 0..batches {
        raw::batch(&mut conn, &mut known, &batch(size, b * size)).await;
    }
    let raw_new = rate(t.elapsed());
    let t = Instant::now();
    for b in 0..batches {
        raw::duplicates(&mut conn, org, &batch(size, b * size)).await;
    }
    let raw_dup = rate(t.elapsed());
    println!(
        "{:?}: new events {new:.0}/s (ceiling {raw_new:.0}/s, {:.2} of it); duplicates {dup:.0}/s (ceiling {raw_dup:.0}/s, {:.2} of it)",
        store.dialect(),
        new / raw_new,
        dup / raw_dup
    );
}
