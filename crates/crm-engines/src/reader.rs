//! A consumer's way through the outbox, shared by the event workers and the NATS relay: wait for a
//! wake-up (or the sweep), read the next events round robin over the tenants behind, keep the lag
//! measured for the metrics.

use std::time::Duration;

use crm_orm::{CrossTenant, Event};
use tokio::sync::watch;

use crate::stats;

/// How a consumer reads (from [`crate::WorkerOptions`]).
#[derive(Debug, Clone)]
pub(crate) struct ReadOptions {
    /// Events read at a time per tenant.
    pub(crate) batch: u32,
    /// Only these tenants (empty: every tenant).
    pub(crate) orgs: Vec<String>,
    /// The wait after a failed read.
    pub(crate) poll: Duration,
    /// The longest wait for a wake-up.
    pub(crate) sweep: Duration,
}

/// Waits `d`; `true` when the workers stop meanwhile (or have stopped).
pub(crate) async fn pause(rx: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => *rx.borrow(),
        _ = rx.changed() => true,
    }
}

/// How often a working consumer measures how far behind it is.
const LAG_EVERY: Duration = Duration::from_secs(5);

/// Waits for a wake-up in `wake`, `sweep` at most; `true` when the workers stop.
async fn idle(wake: &mut watch::Receiver<u64>, sweep: Duration, rx: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = wake.changed() => *rx.borrow(),
        () = tokio::time::sleep(sweep) => *rx.borrow(),
        _ = rx.changed() => true,
    }
}

/// Measures how far `name` is behind, for the metrics.
async fn measure_lag(platform: &CrossTenant, name: &'static str, orgs: &[String]) {
    match platform.lag(name, orgs).await {
        Ok(lag) => {
            let secs = lag.oldest.map_or(0.0, |t| (chrono::Utc::now() - t).to_std().unwrap_or_default().as_secs_f64());
            stats::lag(name, lag.events, secs);
        }
        Err(e) => tracing::warn!(consumer = name, error = %e, "measuring the outbox lag failed"),
    }
}

/// A consumer's way through the outbox: it waits for wake-ups, reads the next events round robin
/// over the tenants behind, and keeps its lag measured for the metrics.
pub(crate) struct Reader {
    platform: CrossTenant,
    name: &'static str,
    wake: watch::Receiver<u64>,
    last_org: String,
    measured: std::time::Instant,
}

impl Reader {
    pub(crate) fn new(platform: CrossTenant, name: &'static str) -> Reader {
        let wake = platform.wakeups();
        Reader { platform, name, wake, last_org: String::new(), measured: std::time::Instant::now() }
    }

    /// The next events to handle, waiting for them as long as it takes; `None` once the workers
    /// stop.
    pub(crate) async fn next(&mut self, opts: &ReadOptions, rx: &mut watch::Receiver<bool>) -> Option<Vec<Event>> {
        loop {
            if *rx.borrow() {
                return None;
            }
            // Seen before reading: an append committed during the read wakes the next wait.
            self.wake.borrow_and_update();
            match self.platform.pending_events(self.name, opts.batch, &opts.orgs, &self.last_org).await {
                Err(e) => {
                    tracing::warn!(consumer = self.name, error = %e, "reading the outbox failed");
                    if pause(rx, opts.poll * 5).await {
                        return None;
                    }
                }
                Ok(events) => {
                    let Some(last) = events.last() else {
                        stats::lag(self.name, 0, 0.0);
                        if idle(&mut self.wake, opts.sweep, rx).await {
                            return None;
                        }
                        continue;
                    };
                    self.last_org.clone_from(&last.org);
                    if self.measured.elapsed() >= LAG_EVERY {
                        measure_lag(&self.platform, self.name, &opts.orgs).await;
                        self.measured = std::time::Instant::now();
                    }
                    return Some(events);
                }
            }
        }
    }
}
