//! Webhooks: tenants subscribe URLs to event types (`Webhook` records). The event worker queues
//! one delivery per matching webhook and event; the deliverer posts them, signed, retries failures
//! with exponential backoff, and records every attempt. Each delivery is independent and bounded
//! by a timeout, so a dead endpoint only ever occupies its own deliveries.
//!
//! Signature: header `X-CRM-Signature: v1=<hex>` where `<hex>` is HMAC-SHA256 with the webhook's
//! secret over `<timestamp>.<body>`, and `X-CRM-Timestamp: <timestamp>` (Unix seconds). A receiver
//! recomputes it over the raw body and rejects old timestamps.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use crm_orm::{Attempt, CrossTenant, DueDelivery, Event, EventWork, Filter, Op, Read, Result, TxCtx, TxFuture};
use hmac::{Hmac, Mac};
use serde_json::{Value as Json, json};
use sha2::Sha256;

use crate::egress::{Egress, failure_text};
use crate::rows::{Record, Webhook};

/// The consumer name of webhook fan-out.
pub const CONSUMER: &str = "webhooks";

/// Whether a subscription pattern (`lead.created`, `lead.*`, `*`) covers event type `kind`.
#[must_use]
pub fn subscribed(pattern: &str, kind: &str) -> bool {
    pattern == "*" || pattern == kind || pattern.strip_suffix(".*").is_some_and(|p| kind.split('.').next() == Some(p))
}

/// The signature of `body` sent at `timestamp` with `secret`: lower-case hex HMAC-SHA256 of
/// `"<timestamp>.<body>"`.
#[must_use]
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else { return String::new() };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Queues deliveries of each event to the tenant's active webhooks subscribed to it. Events about
/// webhooks themselves are never delivered (they carry secrets).
#[derive(Debug, Clone, Copy, Default)]
pub struct FanOut;

impl EventWork for FanOut {
    fn handle<'a>(&'a self, tx: &'a mut TxCtx<'_>, event: &'a Event) -> TxFuture<'a, ()> {
        Box::pin(async move {
            if event.model == Webhook::MODEL {
                return Ok(());
            }
            let model = tx.model(Webhook::MODEL)?;
            let filter = Filter::parse(tx.catalog(), &model, &json!({ "active": true }))?;
            for hook in tx.find_all(&model, filter, 1000).await? {
                let hook = Webhook::decode(hook)?;
                if hook.events.iter().any(|p| subscribed(p, &event.kind)) {
                    tx.enqueue_delivery(hook.id, event.seq, &event.kind).await?;
                }
            }
            Ok(())
        })
    }
}

/// The JSON body of a delivery.
#[must_use]
pub fn body(event: &Event, delivery: &str) -> Json {
    json!({
        "id": event.id,
        "delivery": delivery,
        "type": event.kind,
        "occurredAt": event.at,
        "org": event.org,
        "model": event.model,
        "recordId": event.record_id,
        "actor": event.actor,
        "data": { "before": event.before, "after": event.after },
    })
}

/// Delivery settings.
#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    /// The first retry's delay; each further one doubles it.
    pub retry_base: Duration,
    /// The longest delay between attempts.
    pub retry_max: Duration,
    /// Attempts before a delivery is given up (`FAILED`).
    pub max_attempts: u32,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Where deliveries may go (checked against the resolved address of every attempt).
    pub egress: Arc<Egress>,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        DeliveryOptions {
            retry_base: Duration::from_secs(10),
            retry_max: Duration::from_hours(1),
            max_attempts: 8,
            timeout: Duration::from_secs(10),
            egress: Arc::default(),
        }
    }
}

/// The delay before attempt `attempts + 1` (after `attempts` failures).
#[must_use]
pub fn backoff(opts: &DeliveryOptions, attempts: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1));
    std::cmp::min(opts.retry_base.saturating_mul(factor), opts.retry_max)
}

/// Makes one attempt at `d` and records it.
///
/// # Errors
/// Database failures (an HTTP failure is an outcome, recorded).
pub async fn deliver(platform: &CrossTenant, client: &reqwest::Client, opts: &DeliveryOptions, d: &DueDelivery) -> Result<Attempt> {
    let attempt = attempt(platform, client, opts, d).await?;
    platform.record_attempt(d.id, &attempt).await?;
    Ok(attempt)
}

async fn attempt(platform: &CrossTenant, client: &reqwest::Client, opts: &DeliveryOptions, d: &DueDelivery) -> Result<Attempt> {
    let store = platform.store();
    let give_up = |error: String| Attempt::Failed { status: None, error, retry_at: None };
    let org = crm_model::OrgId::new(d.org.clone()).map_err(|e| crm_orm::OrmError::invariant(e.to_string()))?;
    let (_, catalog) = store.tenant_catalog(&org).await?;
    let store = store.with_catalog(catalog);
    let system = store.cross_tenant_platform_work().system_access(org.clone(), "system:webhooks");
    let model = store.catalog().model(Webhook::MODEL).cloned().ok_or_else(|| crm_orm::OrmError::missing_model(Webhook::MODEL))?;
    let read = Read::by_id(&model, d.webhook)?;
    let hook = store.read(&system.scope(store.catalog(), &model.name, Op::Read, read)?).await?.rows.into_iter().next();
    let Some(hook) = hook else { return Ok(give_up("the webhook was deleted".to_owned())) };
    let hook = Webhook::decode(hook)?;
    if hook.active != Some(true) {
        return Ok(give_up("the webhook is inactive".to_owned()));
    }
    let (url, secret) = (hook.url.as_str(), hook.secret.as_str());
    // A literal internal address fails for good (saved before the policy, or by an old
    // version); a host name is checked against what it resolves to when the client connects.
    let url = match opts.egress.check_url(url) {
        Ok(u) => u,
        Err(e) => return Ok(give_up(e.to_string())),
    };
    let Some(event) = platform.event(&org, d.event_seq).await? else { return Ok(give_up("the event is gone".to_owned())) };
    let payload = serde_json::to_vec(&body(&event, &d.id.to_string())).map_err(|e| crm_orm::OrmError::invariant(e.to_string()))?;
    let ts = Utc::now().timestamp();
    let signature = sign(secret, ts, &payload);
    let sent = client
        .post(url)
        .timeout(opts.timeout)
        .header("content-type", "application/json")
        .header("x-crm-event", event.kind.as_str())
        .header("x-crm-delivery", d.id.to_string())
        .header("x-crm-timestamp", ts.to_string())
        .header("x-crm-signature", format!("v1={signature}"))
        .body(payload)
        .send()
        .await;
    let attempts = u32::try_from(d.attempts).unwrap_or(0) + 1;
    let retry_at = (attempts < opts.max_attempts)
        .then(|| Utc::now() + chrono::Duration::from_std(backoff(opts, attempts)).unwrap_or(chrono::Duration::seconds(60)));
    Ok(match sent {
        Ok(resp) if resp.status().is_success() => Attempt::Delivered { status: resp.status().as_u16() },
        Ok(resp) => {
            Attempt::Failed { status: Some(resp.status().as_u16()), error: format!("the endpoint answered {}", resp.status()), retry_at }
        }
        Err(e) => Attempt::Failed { status: None, error: failure_text(&e), retry_at },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_match_types_and_model_wildcards() {
        assert!(subscribed("*", "lead.created"));
        assert!(subscribed("lead.created", "lead.created"));
        assert!(subscribed("lead.*", "lead.updated"));
        assert!(!subscribed("lead.*", "leadNote.updated"), "a wildcard covers one model, not a prefix");
        assert!(!subscribed("lead.created", "lead.updated"));
        assert!(!subscribed("contact.*", "lead.created"));
    }

    #[test]
    fn signatures_cover_time_and_body() {
        let s = sign("a-secret-of-16-chars", 1_764_666_000, b"{}");
        assert_eq!(s.len(), 64);
        assert_eq!(s, sign("a-secret-of-16-chars", 1_764_666_000, b"{}"));
        assert_ne!(s, sign("a-secret-of-16-chars", 1_764_666_001, b"{}"));
        assert_ne!(s, sign("a-secret-of-16-chars", 1_764_666_000, b"{ }"));
        assert_ne!(s, sign("another-secret-16ch", 1_764_666_000, b"{}"));
    }
}
