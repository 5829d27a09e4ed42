//! The NATS JetStream relay: publishes committed outbox events to a stream, for services outside
//! the server. Off by default (`--nats-url`).
//!
//! - Subject `<prefix>.<org>.<Model>.<op>` (`crm.acme.Lead.created`); organization ids and model
//!   names are subject-safe (letters, digits, `-`, `_`).
//! - Body: the JSON of the event as webhooks carry it ([`crate::webhooks::body`], with `seq`).
//!   Headers `Nats-Msg-Id` (the event id: JetStream drops a re-send within the stream's duplicate
//!   window), `Crm-Event-Type`, `Crm-Seq`.
//! - At least once into NATS, exactly once in the stream: a tenant's events are published in
//!   order and its position (consumer `nats`) moves only to the last event JetStream
//!   acknowledged. After a crash the unacknowledged tail is published again and de-duplicated by
//!   `Nats-Msg-Id`. A rolled-back write has no outbox event, so nothing is published for it.
//! - Replicas share the work per tenant: while one publishes a tenant's events it holds the
//!   tenant's position row (PostgreSQL `FOR UPDATE SKIP LOCKED`); the others pass that tenant.

use std::time::Duration;

use crm_orm::{CrossTenant, Event, SendEvents, TxFuture};
use tokio::sync::watch;

use crate::reader::{ReadOptions, Reader, pause};
use crate::stats;

/// The consumer name of the relay.
pub const CONSUMER: &str = "nats";

/// Relay settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayOptions {
    /// The NATS server(s), e.g. `nats://127.0.0.1:4222`.
    pub url: String,
    /// The stream (created when missing, with subjects `<prefix>.>`).
    pub stream: String,
    /// The first subject token.
    pub prefix: String,
    /// The stream's duplicate window when the relay creates it: a re-send within it is dropped.
    pub duplicate_window: Duration,
    /// How long to wait for JetStream's acknowledgement of a batch.
    pub ack_timeout: Duration,
}

impl Default for RelayOptions {
    fn default() -> Self {
        RelayOptions {
            url: "nats://127.0.0.1:4222".to_owned(),
            stream: "CRM".to_owned(),
            prefix: "crm".to_owned(),
            duplicate_window: Duration::from_mins(2),
            ack_timeout: Duration::from_secs(10),
        }
    }
}

/// The subject of `event` under `prefix`.
#[must_use]
pub fn subject(prefix: &str, event: &Event) -> String {
    let op = event.kind.rsplit('.').next().unwrap_or("changed");
    format!("{prefix}.{}.{}.{op}", event.org, event.model)
}

/// The message body of `event`.
#[must_use]
pub fn body(event: &Event) -> serde_json::Value {
    let mut b = crate::webhooks::body(event, "");
    if let Some(o) = b.as_object_mut() {
        o.remove("delivery");
        o.insert("seq".into(), event.seq.into());
    }
    b
}

struct Publisher {
    js: async_nats::jetstream::Context,
    opts: RelayOptions,
}

impl SendEvents for Publisher {
    fn send<'a>(&'a self, events: &'a [Event]) -> TxFuture<'a, Option<i64>> {
        Box::pin(async move {
            // Published in order, acknowledged together: the position moves to the end of the
            // acknowledged prefix.
            let mut acks = Vec::with_capacity(events.len());
            for e in events {
                let payload = serde_json::to_vec(&body(e)).map_err(|e| crm_orm::OrmError::invariant(e.to_string()))?;
                let msg = async_nats::jetstream::message::PublishMessage::build()
                    .payload(payload.into())
                    .message_id(e.id.to_string())
                    .header("Crm-Event-Type", e.kind.as_str())
                    .header("Crm-Seq", e.seq.to_string().as_str());
                match self.js.send_publish(subject(&self.opts.prefix, e), msg).await {
                    Ok(ack) => acks.push((e.seq, ack)),
                    Err(err) => {
                        tracing::warn!(seq = e.seq, error = %err, "publishing to NATS failed");
                        break;
                    }
                }
            }
            let mut accepted = None;
            for (seq, ack) in acks {
                match tokio::time::timeout(self.opts.ack_timeout, ack).await {
                    Ok(Ok(_)) => accepted = Some(seq),
                    Ok(Err(err)) => {
                        tracing::warn!(seq, error = %err, "NATS did not acknowledge an event");
                        break;
                    }
                    Err(_) => {
                        tracing::warn!(seq, "NATS did not acknowledge an event in time");
                        break;
                    }
                }
            }
            Ok(accepted)
        })
    }
}

async fn connect(opts: &RelayOptions) -> std::result::Result<async_nats::jetstream::Context, String> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .retry_on_initial_connect()
        .connect(opts.url.as_str())
        .await
        .map_err(|e| e.to_string())?;
    let js = async_nats::jetstream::new(client);
    let config = async_nats::jetstream::stream::Config {
        name: opts.stream.clone(),
        subjects: vec![format!("{}.>", opts.prefix)],
        duplicate_window: opts.duplicate_window,
        storage: async_nats::jetstream::stream::StorageType::File,
        ..Default::default()
    };
    js.get_or_create_stream(config).await.map_err(|e| e.to_string())?;
    Ok(js)
}

/// Runs the relay until `rx` turns true: waits for events like the other consumers and publishes
/// each tenant's in order.
pub(crate) async fn run(platform: CrossTenant, opts: RelayOptions, read: ReadOptions, mut rx: watch::Receiver<bool>) {
    let js = loop {
        let attempt = tokio::select! {
            js = connect(&opts) => js,
            _ = rx.changed() => return,
        };
        match attempt {
            Ok(js) => break js,
            Err(e) => {
                tracing::warn!(url = %opts.url, error = %e, "the NATS relay could not connect or create its stream; trying again in 5 s");
                if pause(&mut rx, Duration::from_secs(5)).await {
                    return;
                }
            }
        }
    };
    tracing::info!(url = %opts.url, stream = %opts.stream, "the NATS relay publishes outbox events");
    let publisher = Publisher { js, opts };
    let mut reader = Reader::new(platform.clone(), CONSUMER);
    while let Some(events) = reader.next(&read, &mut rx).await {
        let mut stalled = false;
        // The events come tenant after tenant.
        for list in events.chunk_by(|a, b| a.org == b.org) {
            match platform.send_events(CONSUMER, list, &publisher).await {
                Ok(Some(n)) => {
                    stats::handled(CONSUMER, stats::Handled::Done, n as u64);
                    if n < list.len() {
                        stalled = true;
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    stats::handled(CONSUMER, stats::Handled::Failed, 1);
                    tracing::warn!(consumer = CONSUMER, org = %list.first().map_or("", |e| e.org.as_str()), error = %e, "relaying events failed");
                    stalled = true;
                }
            }
        }
        // NATS refused or did not answer: wait a little before the events are sent again.
        if stalled && pause(&mut rx, read.poll * 5).await {
            return;
        }
    }
}
