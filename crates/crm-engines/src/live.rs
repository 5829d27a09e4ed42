//! The tenants' live change feeds: what subscriptions read (the server's `live` module). A feed
//! is platform work for one tenant with subscribers on this server: it starts at the tenant's
//! head, wakes on commits (and every [`SWEEP`], for other servers' commits), reads the tenant's
//! range of the outbox after its position by index and broadcasts each event. No durable
//! position: nothing is held back from retention, and a restart starts from the head again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crm_model::OrgId;
use crm_orm::{Event, Store};
use tokio::sync::broadcast;

/// How often a feed looks for changes committed by other servers.
pub const SWEEP: Duration = Duration::from_secs(1);

/// The live feeds of this server, one per tenant with subscribers.
#[derive(Debug, Default)]
pub struct Feeds {
    feeds: Mutex<HashMap<OrgId, broadcast::Sender<Arc<Event>>>>,
}

impl Feeds {
    /// A receiver of `org`'s changes from now on, holding at most `capacity` not yet received
    /// (past it the receiver lags and is told so); the tenant's feed starts with its first one.
    pub fn subscribe(self: &Arc<Self>, store: &Store, org: &OrgId, capacity: usize) -> broadcast::Receiver<Arc<Event>> {
        let mut feeds = self.feeds.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = feeds.get(org) {
            return tx.subscribe();
        }
        let (tx, rx) = broadcast::channel(capacity.max(1));
        feeds.insert(org.clone(), tx.clone());
        tokio::spawn(follow(Arc::clone(self), store.clone(), org.clone(), tx));
        rx
    }

    fn forget(&self, org: &OrgId) {
        self.feeds.lock().unwrap_or_else(PoisonError::into_inner).remove(org);
    }
}

/// Reads `org`'s committed changes after its head at start and sends them to the tenant's
/// subscribers, until none is left.
async fn follow(feeds: Arc<Feeds>, store: Store, org: OrgId, tx: broadcast::Sender<Arc<Event>>) {
    let platform = store.cross_tenant_platform_work();
    let mut wakeups = platform.wakeups();
    let mut at = match platform.head(&org).await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, org = %org, "live feed could not start");
            feeds.forget(&org);
            return;
        }
    };
    loop {
        if tx.receiver_count() == 0 {
            feeds.forget(&org);
            return;
        }
        match platform.events_after(&org, at, 500).await {
            Ok(events) => {
                for e in events {
                    at = at.max(e.seq);
                    let _ = tx.send(Arc::new(e));
                }
            }
            Err(e) => tracing::warn!(error = %e, org = %org, "live feed read failed; retrying"),
        }
        let _ = tokio::time::timeout(SWEEP, wakeups.changed()).await;
    }
}
