//! Uploads whose URL expired without the bytes coming are not kept forever: the tenant's next
//! upload destroys them (and the `files` consumer then removes any object). Another tenant's
//! are left alone. Both backends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::Arc;
use std::time::Duration;

use crm_engines::files::{FileOptions, Files, UploadRequest, object_store};
use crm_model::standard::standard_catalog;
use crm_orm::{Access, Filter, Op, Read, Store};
use serde_json::{Value as Json, json};

async fn count(store: &Store, access: &Access, filter: Json) -> i64 {
    let m = store.catalog().model("Attachment").unwrap().clone();
    let mut read = Read::new(&m);
    read.filter = Filter::parse(store.catalog(), &m, &filter).unwrap();
    read.count = true;
    read.page.first = Some(1);
    store.read(&access.scope(store.catalog(), &m.name, Op::Read, read).unwrap()).await.unwrap().count.unwrap()
}

#[tokio::test]
async fn an_upload_destroys_its_tenants_abandoned_ones() {
    let catalog = Arc::new(standard_catalog().unwrap());
    // URLs that expire at once: every earlier pending upload of the tenant is abandoned.
    let opts = FileOptions { upload_ttl: Duration::ZERO, ..FileOptions::default() };
    let files = Files::new(object_store("memory://").unwrap(), &[3u8; 32], opts, "http://crm.test").unwrap();
    for b in crm_test_kit::backends(Arc::clone(&catalog)).await {
        let store = crm_engines::Engines::install(&b.store);
        let (o1, o2) = (crm_test_kit::org(), crm_test_kit::org());
        let policy = crm_orm::Policy::default_roles();
        let access = |o| crm_orm::access(&catalog, &policy, &crm_test_kit::principal(o, "ann", &["admin"]));
        let (a, other) = (access(&o1), access(&o2));
        let mut leads = Vec::new();
        for (who, org) in [(&a, &o1), (&other, &o2)] {
            crm_test_kit::create(&store, &crm_test_kit::principal(org, "ann", &["admin"]), "Lead", &json!({"name": "Ada"})).await.unwrap();
            let m = store.catalog().model("Lead").unwrap().clone();
            let read = Read::new(&m);
            let row = store.read(&who.scope(store.catalog(), &m.name, Op::Read, read).unwrap()).await.unwrap().rows.remove(0);
            leads.push(uuid::Uuid::parse_str(row["id"].as_str().unwrap()).unwrap());
        }
        let request = |lead| UploadRequest {
            subject_model: "Lead".to_owned(),
            subject_id: lead,
            file_name: "a.pdf".to_owned(),
            content_type: "application/pdf".to_owned(),
            size: 3,
        };
        files.start_upload(&store, &other, request(leads[1])).await.unwrap();
        let first = files.start_upload(&store, &a, request(leads[0])).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let second = files.start_upload(&store, &a, request(leads[0])).await.unwrap();
        assert_eq!(count(&store, &a, json!({"id": first.id})).await, 0, "{}: the abandoned upload is destroyed", b.name);
        assert_eq!(count(&store, &a, json!({"id": second.id})).await, 1, "{}", b.name);
        assert_eq!(count(&store, &other, json!({"status": "PENDING"})).await, 1, "{}: another tenant's is kept", b.name);
    }
}
