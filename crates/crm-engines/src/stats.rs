//! What the workers have done, for an operator's `/metrics`: per outbox consumer the events
//! handled and failed and how far behind it is, webhook deliveries by outcome, what retention
//! deleted. Process-wide counters (one set of workers per process); [`snapshot`] reads them.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

struct Consumer {
    handled: AtomicU64,
    failed: AtomicU64,
    passed_over: AtomicU64,
    lag_events: AtomicI64,
    /// Seconds, as the bits of an `f64`.
    lag_seconds: AtomicU64,
}

impl Consumer {
    const fn new() -> Consumer {
        Consumer {
            handled: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            passed_over: AtomicU64::new(0),
            lag_events: AtomicI64::new(0),
            lag_seconds: AtomicU64::new(0),
        }
    }
}

struct Stats {
    /// The consumers this process runs, by name, in the order they were registered.
    consumers: Mutex<Vec<(&'static str, Arc<Consumer>)>>,
    delivered: AtomicU64,
    retried: AtomicU64,
    given_up: AtomicU64,
    events_purged: AtomicU64,
    deliveries_purged: AtomicU64,
}

static STATS: Stats = Stats {
    consumers: Mutex::new(Vec::new()),
    delivered: AtomicU64::new(0),
    retried: AtomicU64::new(0),
    given_up: AtomicU64::new(0),
    events_purged: AtomicU64::new(0),
    deliveries_purged: AtomicU64::new(0),
};

/// The figures of consumer `name`, registered on first use.
fn consumer(name: &'static str) -> Arc<Consumer> {
    let mut all = STATS.consumers.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, c)) = all.iter().find(|(n, _)| *n == name) {
        return Arc::clone(c);
    }
    let c = Arc::new(Consumer::new());
    all.push((name, Arc::clone(&c)));
    c
}

/// Lists consumer `name` in the metrics from now on (at zero).
pub(crate) fn register(name: &'static str) {
    consumer(name);
}

/// What happened to an event a consumer took up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handled {
    /// Handled (its effects and the consumer's position committed).
    Done,
    /// Failed; tried again later.
    Failed,
    /// Failed too often; passed over.
    PassedOver,
}

pub(crate) fn handled(name: &'static str, what: Handled, n: u64) {
    let c = consumer(name);
    let counter = match what {
        Handled::Done => &c.handled,
        Handled::Failed => &c.failed,
        Handled::PassedOver => &c.passed_over,
    };
    counter.fetch_add(n, Ordering::Relaxed);
}

pub(crate) fn lag(name: &'static str, events: i64, seconds: f64) {
    let c = consumer(name);
    c.lag_events.store(events, Ordering::Relaxed);
    c.lag_seconds.store(seconds.to_bits(), Ordering::Relaxed);
}

/// The outcome of a webhook delivery attempt.
pub(crate) fn delivery(attempt: &crm_orm::Attempt) {
    let counter = match attempt {
        crm_orm::Attempt::Delivered { .. } => &STATS.delivered,
        crm_orm::Attempt::Failed { retry_at: Some(_), .. } => &STATS.retried,
        crm_orm::Attempt::Failed { retry_at: None, .. } => &STATS.given_up,
    };
    counter.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn purged(events: u64, deliveries: u64) {
    STATS.events_purged.fetch_add(events, Ordering::Relaxed);
    STATS.deliveries_purged.fetch_add(deliveries, Ordering::Relaxed);
}

/// One consumer's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerSnapshot {
    /// Its name (`automation`, `webhooks`, `nats`).
    pub name: &'static str,
    /// Events handled.
    pub handled: u64,
    /// Attempts at events that failed (each retried, up to a limit).
    pub failed: u64,
    /// Events passed over after repeated failures.
    pub passed_over: u64,
    /// Events not handled yet (at the last look, every few seconds while it works).
    pub lag_events: i64,
    /// Age of the oldest of them, in seconds.
    pub lag_seconds: f64,
}

/// The workers' figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Per consumer this process runs, in the order they started.
    pub consumers: Vec<ConsumerSnapshot>,
    /// Webhook deliveries answered 2xx.
    pub delivered: u64,
    /// Webhook attempts that failed and will be tried again.
    pub retried: u64,
    /// Webhook deliveries given up.
    pub given_up: u64,
    /// Outbox events deleted by retention.
    pub events_purged: u64,
    /// Finished webhook deliveries deleted by retention.
    pub deliveries_purged: u64,
}

/// The workers' figures now.
#[must_use]
pub fn snapshot() -> Snapshot {
    let read = |a: &AtomicU64| a.load(Ordering::Relaxed);
    Snapshot {
        consumers: STATS
            .consumers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(name, c)| ConsumerSnapshot {
                name,
                handled: read(&c.handled),
                failed: read(&c.failed),
                passed_over: read(&c.passed_over),
                lag_events: c.lag_events.load(Ordering::Relaxed),
                lag_seconds: f64::from_bits(read(&c.lag_seconds)),
            })
            .collect(),
        delivered: read(&STATS.delivered),
        retried: read(&STATS.retried),
        given_up: read(&STATS.given_up),
        events_purged: read(&STATS.events_purged),
        deliveries_purged: read(&STATS.deliveries_purged),
    }
}
