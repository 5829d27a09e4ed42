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
