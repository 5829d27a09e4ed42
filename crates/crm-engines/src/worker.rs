//! The in-process workers: one task per outbox consumer (automation rules, webhook fan-out, and
//! the NATS relay when configured), the webhook deliverer and retention. Each consumer reads the
//! events it has not processed, oldest first, and handles each in the transaction that advances
//! its position, so a killed process loses nothing and repeats nothing on restart. Several server
//! instances may run workers over one database: positions are locked per tenant while an event is
//! handled, deliveries are leased.
//!
//! An idle consumer waits for a wake-up: a commit of this process that appended events, or on
//! PostgreSQL a notification of another process's (`LISTEN`), and looks anyway every
//! [`WorkerOptions::sweep`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crm_model::{Catalog, OrgId};
use crm_orm::{CrossTenant, Event, EventWork, Store};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::reader::{ReadOptions, Reader, pause};
use crate::webhooks::{self, DeliveryOptions};
use crate::{Engines, automation, stats};

/// Worker settings.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// How long the webhook deliverer with nothing to do waits before looking again, and a
    /// consumer after a failure.
    pub poll: Duration,
    /// The longest an idle consumer waits for a wake-up before it looks anyway (a wake-up lost
    /// with a database connection).
    pub sweep: Duration,
    /// How long processed events and finished deliveries are kept; `None` keeps them forever.
    pub retention: Option<Duration>,
    /// How often retention runs.
    pub retention_every: Duration,
    /// Publish the events to NATS JetStream (the relay), when set.
    pub relay: Option<crate::relay::RelayOptions>,
    /// Events read at a time.
    pub batch: u32,
    /// Webhook deliveries attempted at a time.
    pub deliveries: u32,
    /// Webhook delivery settings.
    pub delivery: DeliveryOptions,
    /// Only these tenants' events and deliveries (empty: every tenant).
    pub orgs: Vec<String>,
    /// The files whose destroyed attachments' objects the [`crate::files::CONSUMER`] removes
    /// (none: no such consumer).
    pub files: Option<Arc<crate::files::Files>>,
}

impl WorkerOptions {
    /// How the consumers read the outbox.
    pub(crate) fn reading(&self) -> ReadOptions {
        ReadOptions { batch: self.batch, orgs: self.orgs.clone(), poll: self.poll, sweep: self.sweep }
    }
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            poll: Duration::from_millis(200),
            sweep: Duration::from_secs(10),
            retention: Some(Duration::from_hours(24 * 7)),
            retention_every: Duration::from_mins(10),
            relay: None,
            batch: 100,
            deliveries: 16,
            delivery: DeliveryOptions::default(),
            orgs: Vec::new(),
            files: None,
        }
    }
}

/// Running workers; dropping this does not stop them, [`Workers::stop`] does.
#[derive(Debug)]
pub struct Workers {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Starts the workers on `store` (which should carry the engines' write hook, see
    /// [`Engines::install`]).
    #[must_use]
    pub fn start(store: Store, opts: WorkerOptions) -> Workers {
        let (stop, rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let platform = store.cross_tenant_platform_work();
        let listen = rx.clone();
        tasks.push(tokio::spawn(async move { platform.relay_notifications(listen).await }));
        let mut consumers: Vec<(&'static str, Arc<dyn EventWork>)> =
            vec![(automation::CONSUMER, Arc::new(automation::Automation)), (webhooks::CONSUMER, Arc::new(webhooks::FanOut))];
        if let Some(files) = &opts.files {
            consumers.push((crate::files::CONSUMER, Arc::new(crate::files::RemoveObjects(Arc::clone(files)))));
        }
        let names: Vec<&'static str> = consumers.iter().map(|(n, _)| *n).collect();
        for (name, work) in consumers {
            stats::register(name);
            tasks.push(tokio::spawn(consume(store.clone(), name, work, opts.clone(), rx.clone())));
        }
        if let Some(relay) = opts.relay.clone() {
            stats::register(crate::relay::CONSUMER);
            tasks.push(tokio::spawn(crate::relay::run(store.cross_tenant_platform_work(), relay, opts.reading(), rx.clone())));
        }
        if let Some(keep) = opts.retention {
            let mut consumers = names;
            if opts.relay.is_some() {
                consumers.push(crate::relay::CONSUMER);
            }
            tasks.push(tokio::spawn(retention(store.cross_tenant_platform_work(), consumers, keep, opts.retention_every, rx.clone())));
        }
        tasks.push(tokio::spawn(deliver(store, opts, rx)));
        Workers { stop, tasks }
    }

    /// Stops the workers after the event or delivery each is handling, and waits for them.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Tenant catalogs kept by a worker at most: a tenant beyond them has its catalog loaded again
/// when its events come (one statement).
const KEPT_CATALOGS: usize = 256;

/// Tenant catalogs (of tenants with custom metadata), refreshed when a tenant's metadata version
/// moves; at most [`KEPT_CATALOGS`], the least recently used going first.
#[derive(Default)]
struct Catalogs {
    kept: HashMap<String, Kept>,
    /// A clock of uses, for the least recently used.
    uses: u64,
}

struct Kept {
    version: u64,
    catalog: Arc<Catalog>,
    used: u64,
}

impl Catalogs {
    async fn store_for(&mut self, store: &Store, org: &OrgId) -> crm_orm::Result<Store> {
        let version = store.metadata_version(org).await?;
        if version == 0 {
            return Ok(store.with_catalog(Arc::clone(store.base_catalog())));
        }
        self.uses += 1;
        if let Some(k) = self.kept.get_mut(org.as_str())
            && k.version == version
        {
            k.used = self.uses;
            return Ok(store.with_catalog(Arc::clone(&k.catalog)));
        }
        let (version, catalog) = store.tenant_catalog(org).await?;
        if self.kept.len() >= KEPT_CATALOGS && !self.kept.contains_key(org.as_str()) {
            let oldest = self.kept.iter().min_by_key(|(_, k)| k.used).map(|(o, _)| o.clone());
            if let Some(o) = oldest {
                self.kept.remove(&o);
            }
        }
        self.kept.insert(org.as_str().to_owned(), Kept { version, catalog: Arc::clone(&catalog), used: self.uses });
        Ok(store.with_catalog(catalog))
    }
}

/// Most attempts in flight per webhook.
const PER_WEBHOOK: u32 = 2;

/// Attempts at an event before it is passed over (logged) so it cannot block its tenant.
const EVENT_ATTEMPTS: u32 = 3;

struct Skip;
impl EventWork for Skip {
    fn handle<'a>(&'a self, _: &'a mut crm_orm::TxCtx<'_>, _: &'a Event) -> crm_orm::TxFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }
}

async fn consume(store: Store, name: &'static str, work: Arc<dyn EventWork>, opts: WorkerOptions, mut rx: watch::Receiver<bool>) {
    let platform = store.cross_tenant_platform_work();
    let mut reader = Reader::new(platform.clone(), name);
    let read = opts.reading();
    let mut catalogs = Catalogs::default();
    let mut failures: HashMap<i64, u32> = HashMap::new();
    while let Some(events) = reader.next(&read, &mut rx).await {
        // One metadata-version check per tenant and batch, not per event.
        let mut stores: HashMap<String, CrossTenant> = HashMap::new();
        for event in events {
            if *rx.borrow() {
                return;
            }
            let handled = match stores.get(&event.org) {
                Some(e) => e.process_event(name, &event, work.as_ref()).await,
                None => match event.org_id() {
                    Ok(org) => match catalogs.store_for(&store, &org).await {
                        Ok(e) => {
                            let e = e.cross_tenant_platform_work();
                            let out = e.process_event(name, &event, work.as_ref()).await;
                            stores.insert(event.org.clone(), e);
                            out
                        }
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e),
                },
            };
            match handled {
                Ok(true) => stats::handled(name, stats::Handled::Done, 1),
                Ok(false) => {}
                Err(e) => {
                    stats::handled(name, stats::Handled::Failed, 1);
                    let n = failures.entry(event.seq).or_insert(0);
                    *n += 1;
                    tracing::warn!(consumer = name, seq = event.seq, event = %event.kind, attempt = *n, error = %e, "event handling failed");
                    if *n >= EVENT_ATTEMPTS {
                        tracing::error!(consumer = name, seq = event.seq, event = %event.kind, "event passed over after repeated failures");
                        stats::handled(name, stats::Handled::PassedOver, 1);
                        let _ = platform.process_event(name, &event, &Skip).await;
                        failures.remove(&event.seq);
                    } else if pause(&mut rx, opts.poll).await {
                        return;
                    }
                    // Later events of this tenant wait for this one: read again.
                    break;
                }
            }
        }
    }
}

/// Retention: every `every`, deletes the events older than `keep` that every consumer has
/// passed, and the finished deliveries older than `keep`, in short batches.
async fn retention(platform: CrossTenant, consumers: Vec<&'static str>, keep: Duration, every: Duration, mut rx: watch::Receiver<bool>) {
    /// Rows deleted per statement: short transactions, no long locks.
    const BATCH: u32 = 1000;
    loop {
        let before = chrono::Utc::now() - chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::days(7));
        let events = platform.purge_events(&consumers, before, BATCH).await;
        let deliveries = platform.purge_deliveries(before, BATCH).await;
        match (events, deliveries) {
            (Ok(e), Ok(d)) => {
                stats::purged(e, d);
                if e + d > 0 {
                    tracing::info!(events = e, deliveries = d, "retention deleted old events and deliveries");
                }
            }
            (e, d) => tracing::warn!(events = ?e.err(), deliveries = ?d.err(), "retention failed; trying again later"),
        }
        if pause(&mut rx, every).await {
            return;
        }
    }
}

async fn deliver(store: Store, opts: WorkerOptions, mut rx: watch::Receiver<bool>) {
    let platform = store.cross_tenant_platform_work();
    let client = match opts.delivery.egress.client() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhook client could not be built; deliveries stop");
            return;
        }
    };
    let lease = opts.delivery.timeout * 3 + Duration::from_secs(5);
    let mut set: tokio::task::JoinSet<uuid::Uuid> = tokio::task::JoinSet::new();
    let mut in_flight: HashMap<uuid::Uuid, u32> = HashMap::new();
    loop {
        if *rx.borrow() {
            return;
        }
        // Keep up to `deliveries` attempts in flight, each on its own task, and at most
        // PER_WEBHOOK per webhook: a slow or dead endpoint holds only its own slots, up to the
        // timeout, while everything else keeps flowing.
        let free = opts.deliveries.saturating_sub(u32::try_from(set.len()).unwrap_or(u32::MAX));
        if free > 0 {
            match platform.claim_deliveries(free, lease, &opts.orgs).await {
                Ok(due) => {
                    for d in due {
                        let n = in_flight.entry(d.webhook).or_insert(0);
                        if *n >= PER_WEBHOOK {
                            // Its endpoint is busy: hand it back for a little while.
                            let _ = platform.postpone_delivery(d.id, opts.poll * 5).await;
                            continue;
                        }
                        *n += 1;
                        let (platform, client, o) = (platform.clone(), client.clone(), opts.delivery.clone());
                        set.spawn(async move {
                            match webhooks::deliver(&platform, &client, &o, &d).await {
                                Ok(attempt) => stats::delivery(&attempt),
                                Err(e) => tracing::warn!(delivery = %d.id, error = %e, "recording a webhook delivery failed"),
                            }
                            d.webhook
                        });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "claiming webhook deliveries failed"),
            }
        }
        if set.is_empty() {
            if pause(&mut rx, opts.poll).await {
                return;
            }
            continue;
        }
        tokio::select! {
            done = set.join_next() => {
                if let Some(Ok(w)) = done
                    && let Some(n) = in_flight.get_mut(&w)
                {
                    *n = n.saturating_sub(1);
                }
            }
            () = tokio::time::sleep(opts.poll) => {}
            _ = rx.changed() => {
                while set.join_next().await.is_some() {}
                return;
            }
        }
    }
}

impl Engines {
    /// Starts the workers on `store` with the engines' hook installed under the delivery
    /// policy of `opts`.
    #[must_use]
    pub fn start_workers(store: &Store, opts: WorkerOptions) -> Workers {
        Workers::start(Engines::install_with(store, Arc::clone(&opts.delivery.egress)), opts)
    }
}
