//! Built schemas, cached per (tenant, metadata version) and built once per key even when many
//! requests ask at the same time; and the tenants' metadata versions, re-read at most once per
//! refresh interval, which is how several server instances notice a change without a restart.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use apollo_compiler::Schema;
use apollo_compiler::validation::Valid;
use crm_model::{Catalog, OrgId};
use crm_orm::OrmError;
use tokio::sync::OnceCell;

use crate::error::GraphqlError;
use crate::types::Derived;

/// Which schema: a tenant's own (custom metadata) or the shared one (`tenant: None`), at a
/// metadata version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SchemaKey {
    /// The tenant whose metadata the schema reflects; `None` for the shared base schema.
    pub tenant: Option<OrgId>,
    /// The metadata version.
    pub version: u64,
}

impl SchemaKey {
    /// The schema of `org` at metadata `version`: the shared one while the tenant has no
    /// definitions of its own (version 0).
    #[must_use]
    pub fn of(org: &OrgId, version: u64) -> SchemaKey {
        if version == 0 { SchemaKey { tenant: None, version: 0 } } else { SchemaKey { tenant: Some(org.clone()), version } }
    }
}

/// A schema as data, the catalog it was derived from (the store serves the request with it),
/// and the memory they hold beyond what they share with the base (an estimate).
#[derive(Clone)]
pub struct Built {
    /// The schema.
    pub schema: Arc<Valid<Schema>>,
    /// The catalog.
    pub catalog: Arc<Catalog>,
    /// Bytes of its own (estimated; 0 for the shared schema).
    pub bytes: usize,
}

impl std::fmt::Debug for Built {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Built").field("types", &self.schema.types.len()).field("bytes", &self.bytes).finish_non_exhaustive()
    }
}

type Slot = Arc<OnceCell<Built>>;

/// A tenant's cached schema: its metadata version, and when it was last used.
struct Entry {
    version: u64,
    slot: Slot,
    used: Instant,
}

/// The schema cache, one entry per tenant (and one for the shared schema). Building happens
/// outside the lock, once per key (single flight); a newer version of a tenant's schema
/// replaces its older one. One tenant's build never holds up another tenant's requests: the
/// lock is only held to find the slot. A tenant's schema shares every definition it did not
/// change with the shared one ([`Derived`]), so it costs tens of KiB; at most `capacity` of them
/// are kept, the least recently used going first (the shared schema is always kept).
pub struct SchemaCache {
    slots: Mutex<HashMap<Option<OrgId>, Entry>>,
    base: std::sync::OnceLock<Derived>,
    capacity: usize,
    counters: Counters,
}

/// Tenant schemas kept by default.
pub const DEFAULT_SCHEMA_CAPACITY: usize = 10_000;

impl Default for SchemaCache {
    fn default() -> Self {
        SchemaCache::new()
    }
}

impl std::fmt::Debug for SchemaCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaCache").field("entries", &self.len()).field("capacity", &self.capacity).finish_non_exhaustive()
    }
}

/// The counters behind [`SchemaCache::stats`].
#[derive(Debug, Default)]
struct Counters {
    builds: AtomicU64,
    build_micros: AtomicU64,
    hits: AtomicU64,
    evictions: AtomicU64,
}

/// What a schema cache did so far (for the operator's metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Schemas cached now (the shared one included).
    pub entries: usize,
    /// Estimated bytes the cached tenant schemas and catalogs hold of their own.
    pub bytes: usize,
    /// Schemas built.
    pub builds: u64,
    /// Time spent building them, in microseconds.
    pub build_micros: u64,
    /// Requests served by a schema already built.
    pub hits: u64,
    /// Tenant schemas dropped for room (beyond the capacity).
    pub evictions: u64,
}

/// Errors of [`SchemaCache::get_or_build`].
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The catalog could not be loaded.
    #[error(transparent)]
    Store(#[from] OrmError),
    /// The schema could not be built.
    #[error(transparent)]
    Schema(#[from] GraphqlError),
}

impl SchemaCache {
    /// An empty cache.
    #[must_use]
    pub fn new() -> Self {
        SchemaCache {
            slots: Mutex::new(HashMap::new()),
            base: std::sync::OnceLock::new(),
            capacity: DEFAULT_SCHEMA_CAPACITY,
            counters: Counters::default(),
        }
    }

    /// Keeps at most `capacity` tenant schemas (at least 1).
    #[must_use]
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Cached schemas.
    #[must_use]
    pub fn len(&self) -> usize {
        self.slots.lock().map_or(0, |s| s.len())
    }

    /// True when nothing is cached.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What the cache did so far: schemas built, the time building took, hits, evictions.
    #[must_use]
    pub fn stats(&self) -> CacheStats {
        let c = &self.counters;
        let (entries, bytes) =
            self.slots.lock().map_or((0, 0), |s| (s.len(), s.values().filter_map(|e| e.slot.get()).map(|b| b.bytes).sum()));
        CacheStats {
            entries,
            bytes,
            builds: c.builds.load(Ordering::Relaxed),
            build_micros: c.build_micros.load(Ordering::Relaxed),
            hits: c.hits.load(Ordering::Relaxed),
            evictions: c.evictions.load(Ordering::Relaxed),
        }
    }

    /// Counts a build that started at `started`; its duration in microseconds.
    fn count_build(&self, started: Instant) -> u64 {
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.counters.builds.fetch_add(1, Ordering::Relaxed);
        self.counters.build_micros.fetch_add(micros, Ordering::Relaxed);
        micros
    }

    /// The slot of `key`, made when missing (evicting the least recently used tenant when
    /// full); `None` for a version older than the one cached (an outdated request is built for
    /// alone).
    fn slot(&self, key: &SchemaKey) -> Result<Option<Slot>, GraphqlError> {
        let mut slots = self.slots.lock().map_err(|_| GraphqlError::Schema("schema cache poisoned".to_owned()))?;
        let now = Instant::now();
        if let Some(e) = slots.get_mut(&key.tenant) {
            if e.version == key.version {
                e.used = now;
                return Ok(Some(e.slot.clone()));
            }
            if e.version > key.version {
                return Ok(None);
            }
        } else if key.tenant.is_some() && slots.len() - usize::from(slots.contains_key(&None)) >= self.capacity {
            // Linear, but only when a new tenant comes to a full cache.
            let oldest = slots.iter().filter(|(k, _)| k.is_some()).min_by_key(|(_, e)| e.used).map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                slots.remove(&k);
                self.counters.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
        let slot = Slot::default();
        slots.insert(key.tenant.clone(), Entry { version: key.version, slot: slot.clone(), used: now });
        Ok(Some(slot))
    }

    /// The schema of `key` and its catalog, derived from `base` (the catalog of tenants without
    /// definitions of their own) and the catalog `load` gives, on first use.
    ///
    /// # Errors
    /// The catalog could not be loaded or the schema built (the error is not cached: the next
    /// call tries again).
    pub async fn get_or_build<F, Fut>(&self, key: &SchemaKey, base: &Arc<Catalog>, load: F) -> Result<Built, BuildError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Arc<Catalog>, OrmError>>,
    {
        let slot = self.slot(key)?;
        if let Some(built) = slot.as_ref().and_then(|s| s.get()) {
            self.counters.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(built.clone());
        }
        let derived = if let Some(d) = self.base.get() {
            d
        } else {
            let started = Instant::now();
            let d = Derived::base(Arc::clone(base))?;
            self.count_build(started);
            self.base.get_or_init(|| d)
        };
        let build = || async move {
            if key.tenant.is_none() {
                return Ok::<_, BuildError>(Built {
                    schema: Arc::clone(derived.schema()),
                    catalog: Arc::clone(derived.catalog()),
                    bytes: 0,
                });
            }
            let catalog = load().await?;
            let started = Instant::now();
            let schema = derived.tenant(&catalog)?;
            let micros = self.count_build(started);
            tracing::debug!(elapsed_us = micros, tenant = ?key.tenant, version = key.version, "derived a tenant's GraphQL schema");
            let bytes = derived.own_bytes(&schema, &catalog);
            Ok(Built { schema, catalog, bytes })
        };
        match slot {
            Some(slot) => Ok(slot.get_or_try_init(build).await?.clone()),
            None => build().await,
        }
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
        let cache = Arc::new(SchemaCache::new());
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
                    .get_or_build(&k, &cat.clone(), || async {
                        builds.fetch_add(1, Ordering::SeqCst);
                        Ok(cat)
                    })
                    .await
                    .map(|s| Arc::as_ptr(&s.schema) as usize)
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
        cache.get_or_build(&b, &cat, || async { Ok(cat.clone()) }).await.unwrap();
        cache.get_or_build(&SchemaKey { tenant: None, version: 0 }, &cat, || async { Ok(cat.clone()) }).await.unwrap();
        assert_eq!(cache.len(), 3);
        // A new version of org-a replaces its old one; org-b is untouched.
        cache.get_or_build(&key(2), &cat, || async { Ok(cat.clone()) }).await.unwrap();
        assert_eq!(cache.len(), 3);
        let rebuilt = AtomicUsize::new(0);
        cache
            .get_or_build(&b, &cat, || async {
                rebuilt.fetch_add(1, Ordering::SeqCst);
                Ok(cat.clone())
            })
            .await
            .unwrap();
        assert_eq!(rebuilt.load(Ordering::SeqCst), 0, "org-b was still cached");
        // A failed load is not cached.
        let k3 = key(3);
        assert!(cache.get_or_build(&k3, &cat, || async { Err(OrmError::invariant("down")) }).await.is_err());
        assert!(cache.get_or_build(&k3, &cat, || async { Ok(cat.clone()) }).await.is_ok());
    }

    #[tokio::test]
    async fn keeps_at_most_capacity_tenant_schemas_least_recently_used_first() {
        let cache = SchemaCache::new().with_capacity(2);
        let cat = Arc::new(standard_catalog().unwrap());
        let key = |t: &str| SchemaKey { tenant: Some(OrgId::new(t).unwrap()), version: 1 };
        let builds = AtomicUsize::new(0);
        let get = |k: SchemaKey| {
            let (cat, builds, cache) = (cat.clone(), &builds, &cache);
            async move {
                cache
                    .get_or_build(&k, &cat.clone(), || async {
                        builds.fetch_add(1, Ordering::SeqCst);
                        Ok(cat)
                    })
                    .await
                    .unwrap();
            }
        };
        get(SchemaKey { tenant: None, version: 0 }).await;
        get(key("org-a")).await;
        get(key("org-b")).await;
        get(key("org-a")).await; // a is now more recent than b
        get(key("org-c")).await; // evicts b
        assert_eq!(cache.len(), 3, "two tenants and the shared schema");
        assert_eq!(builds.load(Ordering::SeqCst), 3, "the shared schema loads no tenant catalog");
        get(key("org-a")).await;
        assert_eq!(builds.load(Ordering::SeqCst), 3, "a was kept");
        get(key("org-b")).await;
        assert_eq!(builds.load(Ordering::SeqCst), 4, "b was rebuilt");
        get(SchemaKey { tenant: None, version: 0 }).await;
        assert_eq!(cache.len(), 3, "the shared schema is never evicted");
        let stats = cache.stats();
        assert_eq!((stats.builds, stats.entries), (5, 3), "the shared schema and four tenant schemas built: {stats:?}");
        assert!(stats.evictions >= 2 && stats.hits >= 1, "{stats:?}");
    }
}
