//! A required field added to a model whose table has rows: `migrate` fills them with the field's
//! default, or stops with a message saying what to do (a null in a required field would reach
//! clients as an error on every read).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::sync::Arc;

use common::{client, org, principal};
use crm_model::standard::standard_models;
use crm_model::{FieldDef as F, ModelDef, resolve};
use crm_orm::{Store, StoreOptions};
use serde_json::json;

/// The standard models and a `Gadget…` model (a name of its own per run: the PostgreSQL test
/// database is shared) with `extra` fields.
fn catalog(name: &str, extra: Vec<F>) -> Arc<crm_model::Catalog> {
    let mut gadget = ModelDef::new(name).field(F::text("label").required().searchable());
    for f in extra {
        gadget = gadget.field(f);
    }
    let mut defs = standard_models();
    defs.push(gadget);
    Arc::new(resolve(&defs).unwrap())
}

#[tokio::test]
async fn a_required_field_is_filled_by_its_default_or_the_migration_stops() {
    let suffix: String = uuid::Uuid::now_v7().simple().to_string().chars().rev().filter(char::is_ascii_alphabetic).take(8).collect();
    let name = format!("Gadget{}", suffix.to_uppercase());
    let path = std::env::temp_dir().join(format!("crm-required-{}.db", uuid::Uuid::now_v7()));
    let mut urls = vec![format!("sqlite://{}", path.display())];
    urls.extend(crm_test_kit::postgres_url());
    for url in urls {
        let v1 = Store::connect(&url, catalog(&name, vec![]), StoreOptions::default()).await.unwrap();
        v1.migrate().await.unwrap();
        let b = crm_test_kit::Backend { name: "v1", store: v1 };
        let (ta, tb) = (org(), org());
        let a = client(&b, principal(&ta, "admin", &["admin"]));
        let other = client(&b, principal(&tb, "admin", &["admin"]));
        a.create(&name, json!({"label": "old"})).await.unwrap();
        other.create(&name, json!({"label": "theirs"})).await.unwrap();

        // Required without a default: the migration stops, naming the field, and changes nothing.
        let v2 = Store::connect(&url, catalog(&name, vec![F::text("code").required()]), StoreOptions::default()).await.unwrap();
        let e = v2.migrate().await.unwrap_err().to_string();
        assert!(e.contains(&format!("{name}.code is a new required field")) && e.contains("give it a default"), "{url}: {e}");

        // With a default: every tenant's rows get it, and the search column, refilled for the new
        // searchable field, finds them by it (across tenants: a migration's work).
        let v3 = Store::connect(
            &url,
            catalog(&name, vec![F::text("code").required().searchable().default_value(json!("C-0"))]),
            StoreOptions::default(),
        )
        .await
        .unwrap();
        v3.migrate().await.unwrap();
        let b3 = crm_test_kit::Backend { name: "v3", store: v3 };
        let (a, other) = (client(&b3, principal(&ta, "admin", &["admin"])), client(&b3, principal(&tb, "admin", &["admin"])));
        assert_eq!(a.values(&name, json!({}), &[], "code").await, vec![json!("C-0")], "{url}");
        assert_eq!(other.values(&name, json!({}), &[], "code").await, vec![json!("C-0")], "{url}");
        assert_eq!(
            (a.count(&name, json!({"_search": "c-0 old"})).await, other.count(&name, json!({"_search": "c-0 theirs"})).await),
            (1, 1),
            "{url}"
        );
        a.create(&name, json!({"label": "new", "code": "C-1"})).await.unwrap();
        assert_eq!(a.count(&name, json!({"code": "C-1"})).await, 1);
    }
    let _ = std::fs::remove_file(path);
}
