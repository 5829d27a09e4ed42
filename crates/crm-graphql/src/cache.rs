//! Built schemas, cached per (tenant, metadata version) and built once per key even when many
//! requests ask at the same time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::dynamic::Schema;
use crm_model::{Catalog, OrgId};
use tokio::sync::OnceCell;

use crate::error::GraphqlError;
use crate::schema::{SchemaOptions, build_schema};

/// Which schema: a tenant's own (custom metadata) or the shared one (`tenant: None`), at a
/// metadata version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SchemaKey {
    /// The tenant whose metadata the schema reflects; `None` for the shared base schema.
    pub tenant: Option<OrgId>,
    /// The metadata version.
    pub version: u64,
}

type Slot = Arc<OnceCell<Arc<Schema>>>;

/// The schema cache. Building happens outside the lock, once per key (single flight); a newer
/// version of a tenant's schema evicts its older ones.
#[derive(Default)]
pub struct SchemaCache {
    slots: Mutex<HashMap<SchemaKey, Slot>>,
    options: SchemaOptions,
}

impl std::fmt::Debug for SchemaCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaCache").field("entries", &self.len()).finish()
    }
}

impl SchemaCache {
    /// An empty cache building schemas with `options`.
    #[must_use]
    pub fn new(options: SchemaOptions) -> Self {
        SchemaCache { slots: Mutex::new(HashMap::new()), options }
    }

    /// Cached schemas.
    #[must_use]
    pub fn len(&self) -> usize {
        self.slots.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// True when nothing is cached.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The schema of `key`, built from `catalog()` on first use.
    ///
    /// # Errors
    /// The schema could not be built (the error is not cached: the next call tries again).
    pub async fn get_or_build(&self, key: &SchemaKey, catalog: impl FnOnce() -> Arc<Catalog>) -> Result<Arc<Schema>, GraphqlError> {
        let slot = {
            let mut slots = self.slots.lock().map_err(|_| GraphqlError::Schema("schema cache poisoned".to_owned()))?;
            if !slots.contains_key(key) {
                slots.retain(|k, _| k.tenant != key.tenant || k.version > key.version);
            }
            slots.entry(key.clone()).or_default().clone()
        };
        let options = self.options.clone();
        let schema = slot
            .get_or_try_init(|| async move {
                let started = std::time::Instant::now();
                let s = build_schema(catalog(), &options)?;
                tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "built a GraphQL schema");
                Ok::<_, GraphqlError>(Arc::new(s))
            })
            .await?;
        Ok(schema.clone())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crm_model::standard::standard_catalog;

    use super::*;

    #[tokio::test]
    async fn builds_once_per_key_and_evicts_older_versions() {
        let cache = Arc::new(SchemaCache::new(SchemaOptions::default()));
        let cat = Arc::new(standard_catalog().unwrap());
        let builds = Arc::new(AtomicUsize::new(0));
        let a = OrgId::new("org-a").unwrap();
        let key = |v| SchemaKey { tenant: Some(a.clone()), version: v };
        // Ten concurrent requests for the same key build it once.
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let (cache, cat, builds, k) = (cache.clone(), cat.clone(), builds.clone(), key(1));
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_build(&k, || {
                        builds.fetch_add(1, Ordering::SeqCst);
                        cat
                    })
                    .await
                    .map(|s| Arc::as_ptr(&s) as usize)
            }));
        }
        let mut ptrs = Vec::new();
        for t in tasks {
            ptrs.push(t.await.unwrap().unwrap());
        }
        assert_eq!(builds.load(Ordering::SeqCst), 1);
        assert!(ptrs.windows(2).all(|w| w[0] == w[1]), "every request got the same schema");
        // Another tenant and the shared schema are separate entries.
        let b = SchemaKey { tenant: Some(OrgId::new("org-b").unwrap()), version: 1 };
        cache.get_or_build(&b, || cat.clone()).await.unwrap();
        cache.get_or_build(&SchemaKey { tenant: None, version: 0 }, || cat.clone()).await.unwrap();
        assert_eq!(cache.len(), 3);
        // A new version of org-a replaces its old one; org-b is untouched.
        cache.get_or_build(&key(2), || cat.clone()).await.unwrap();
        assert_eq!(cache.len(), 3);
        let rebuilt = AtomicUsize::new(0);
        cache
            .get_or_build(&b, || {
                rebuilt.fetch_add(1, Ordering::SeqCst);
                cat.clone()
            })
            .await
            .unwrap();
        assert_eq!(rebuilt.load(Ordering::SeqCst), 0, "org-b was still cached");
    }
}
