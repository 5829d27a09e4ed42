//! Fairness between tenants: each tenant may have at most a configured number of requests working
//! at once (`--tenant-concurrency`). A request beyond it is refused at once with `LIMIT_EXCEEDED`
//! (HTTP 429, `Retry-After`) instead of queueing for the database, so one tenant's flood of slow
//! requests cannot take every connection and make another tenant's requests wait.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crm_model::OrgId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Tenants whose semaphores are kept before idle ones are dropped (an idle tenant's entry is
/// recreated on its next request).
const KEPT_TENANTS: usize = 4096;

/// The per-tenant admission of requests.
#[derive(Debug)]
pub(crate) struct Admission {
    /// Requests of one tenant working at once; 0: no limit.
    limit: usize,
    tenants: Mutex<HashMap<OrgId, Arc<Semaphore>>>,
}

/// What admission answered.
#[derive(Debug)]
pub(crate) enum Admitted {
    /// Admitted; the request holds its place until this is dropped (`None`: no limit).
    Yes(#[allow(dead_code)] Option<OwnedSemaphorePermit>),
    /// The tenant has `limit` requests working already.
    Full {
        /// The limit.
        limit: usize,
    },
}

impl Admission {
    /// At most `limit` requests per tenant at once (0: no limit).
    pub(crate) fn new(limit: usize) -> Self {
        Admission { limit, tenants: Mutex::new(HashMap::new()) }
    }

    /// Admits a request of `org`, or says the tenant is at its limit.
    pub(crate) fn admit(&self, org: &OrgId) -> Admitted {
        if self.limit == 0 {
            return Admitted::Yes(None);
        }
        let semaphore = {
            let mut tenants = self.tenants.lock().unwrap_or_else(PoisonError::into_inner);
            if tenants.len() >= KEPT_TENANTS && !tenants.contains_key(org) {
                // Idle tenants (every permit free, no request holding the semaphore) go first.
                tenants.retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < self.limit);
            }
            match tenants.get(org) {
                Some(s) => Arc::clone(s),
                None => Arc::clone(tenants.entry(org.clone()).or_insert_with(|| Arc::new(Semaphore::new(self.limit)))),
            }
        };
        match semaphore.try_acquire_owned() {
            Ok(permit) => Admitted::Yes(Some(permit)),
            Err(_) => Admitted::Full { limit: self.limit },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn each_tenant_has_its_own_places() {
        let a = Admission::new(2);
        let (x, y) = (OrgId::new("org-x").unwrap(), OrgId::new("org-y").unwrap());
        let first = a.admit(&x);
        let second = a.admit(&x);
        assert!(matches!((&first, &second), (Admitted::Yes(Some(_)), Admitted::Yes(Some(_)))));
        assert!(matches!(a.admit(&x), Admitted::Full { limit: 2 }), "a third request of x is refused");
        assert!(matches!(a.admit(&y), Admitted::Yes(Some(_))), "y is not affected by x");
        drop(first);
        assert!(matches!(a.admit(&x), Admitted::Yes(Some(_))), "a place freed is taken again");
        assert!(matches!(Admission::new(0).admit(&x), Admitted::Yes(None)), "0 is no limit");
    }
}
