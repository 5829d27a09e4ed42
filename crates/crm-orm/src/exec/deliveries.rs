//! The webhook delivery queue: the engines queue deliveries in their transaction, a tenant reads
//! its deliveries, and the deliverer claims, leases and records attempts across tenants
//! (through [`CrossTenant`]).

use chrono::Utc;
use serde_json::Value as Json;
use uuid::Uuid;

use super::Store;
use super::platform::CrossTenant;
use super::pool::ExecutorSource;
use super::tx::TxCtx;
use crate::authorization::Scoped;
use crate::error::{OrmError, Result, decode_json};
use crate::ir::Op;
use crate::ir::{Deliveries, Filter};
use crate::sql::deliveries::{self, Attempt, DueDelivery};
use crate::sql::{Builder, in_session};

impl TxCtx<'_> {
    /// Queues the delivery of outbox event `event_seq` to webhook `webhook` (once per pair).
    ///
    /// # Errors
    /// Database failures.
    pub async fn enqueue_delivery(&mut self, webhook: Uuid, event_seq: i64, event_type: &str) -> Result<()> {
        let stmt = deliveries::enqueue(self.d, self.system.org(), Uuid::now_v7(), webhook, event_seq, event_type, Utc::now())?;
        self.tx.ex().execute(stmt).await?;
        Ok(())
    }
}

impl Store {
    /// The webhook deliveries of the caller's tenant, newest first, optionally of one webhook:
    /// `{"id", "webhook", "eventSeq", "eventType", "status", "attempts", "lastStatus",
    /// "lastError", "nextAttemptAt", "createdAt", "deliveredAt"}`.
    ///
    /// Only deliveries of the webhooks the caller may read (scope them with the `Webhook`
    /// model).
    ///
    /// # Errors
    /// Database failures.
    pub async fn deliveries(&self, q: &Scoped<Deliveries>) -> Result<Vec<Json>> {
        let d = self.dialect();
        let hooks = self.catalog.model("Webhook").cloned().ok_or_else(|| OrmError::bad("model", "no Webhook model"))?;
        let visible = Builder::with_tenant_predicate(d, &self.catalog, &q.access, q.tenant_predicate, self.limits).visible_ids(
            &hooks,
            &Filter::True,
            Op::Read,
        )?;
        let org = q.tenant_predicate.then(|| q.access.org());
        let first = std::cmp::min(q.query.first, self.limits.max_page);
        let stmt = deliveries::list(d, visible, org, q.query.webhook, first)?;
        let mut conn = self.acquire().await?;
        let rows = conn.ex().texts(in_session(d, &stmt, &q.access)).await?;
        rows.iter().map(|t| decode_json("delivery row", t)).collect()
    }
}

impl CrossTenant {
    /// Claims up to `limit` webhook deliveries that are due, across tenants (only `orgs` when not
    /// empty): each is leased for `lease` (so another deliverer leaves it alone) and returned.
    ///
    /// # Errors
    /// Database failures.
    pub async fn claim_deliveries(&self, limit: u32, lease: std::time::Duration, orgs: &[String]) -> Result<Vec<DueDelivery>> {
        let d = self.0.dialect();
        let now = Utc::now();
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(60));
        let mut tx = self.0.platform_tx().await?;
        let ids = tx
            .ex()
            .ids(deliveries::due(d, now, limit, orgs))
            .await?
            .into_iter()
            .map(|(id, _)| super::parse_uuid(&id))
            .collect::<Result<Vec<Uuid>>>()?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        tx.ex().execute(deliveries::lease(d, &ids, until)).await?;
        let rows = tx.ex().texts(deliveries::claimed(d, &ids)?).await?;
        tx.commit().await?;
        rows.iter().map(|t| decode_json("delivery row", t)).collect()
    }

    /// Records the outcome of an attempt at delivery `id`.
    ///
    /// # Errors
    /// Database failures.
    pub async fn record_attempt(&self, id: Uuid, attempt: &Attempt) -> Result<()> {
        let stmt = deliveries::record_attempt(self.0.dialect(), id, attempt, Utc::now());
        let mut tx = self.0.platform_tx().await?;
        tx.ex().execute(stmt).await?;
        tx.commit().await
    }

    /// Hands a claimed delivery back, due again after `delay` (its attempts unchanged).
    ///
    /// # Errors
    /// Database failures.
    pub async fn postpone_delivery(&self, id: Uuid, delay: std::time::Duration) -> Result<()> {
        let at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::seconds(1));
        let stmt = deliveries::postpone(self.0.dialect(), id, at);
        let mut tx = self.0.platform_tx().await?;
        tx.ex().execute(stmt).await?;
        tx.commit().await
    }
}
