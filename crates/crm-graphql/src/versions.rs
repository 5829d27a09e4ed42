//! The metadata versions this server last saw per tenant, so a change made here is used by the
//! next request at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crm_model::OrgId;
use crm_orm::{OrmError, Store};

/// The tenants' metadata versions as this server last read them, each trusted for the refresh
/// interval. A change made through this server is noted at once; one made through another server
/// is seen within the interval (one cheap statement per tenant per interval).
#[derive(Debug)]
pub struct Versions {
    seen: Mutex<HashMap<OrgId, (u64, Instant)>>,
    refresh: Duration,
}

impl Versions {
    /// Versions re-read after `refresh`.
    #[must_use]
    pub fn new(refresh: Duration) -> Self {
        Versions { seen: Mutex::new(HashMap::new()), refresh }
    }

    /// The current metadata version of `org`.
    ///
    /// # Errors
    /// Database failures.
    pub async fn current(&self, store: &Store, org: &OrgId) -> Result<u64, OrmError> {
        if let Ok(seen) = self.seen.lock()
            && let Some((v, at)) = seen.get(org)
            && at.elapsed() < self.refresh
        {
            return Ok(*v);
        }
        let v = store.metadata_version(org).await?;
        self.note(org, v);
        Ok(v)
    }

    /// Notes that `org` is at `version` (after a change made through this server). Never moves a
    /// tenant back to an older version.
    pub fn note(&self, org: &OrgId, version: u64) {
        if let Ok(mut seen) = self.seen.lock() {
            let e = seen.entry(org.clone()).or_insert((version, Instant::now()));
            if version >= e.0 {
                *e = (version, Instant::now());
            }
        }
    }
}
