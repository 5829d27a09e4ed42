//! The transactional outbox: the events a transaction appends before it commits, one record's
//! events for its readers, and the consumers' reads and durable positions (cross-tenant work,
//! through [`CrossTenant`]).

use std::collections::HashMap;

use chrono::Utc;
use crm_model::{ModelName, OrgId};
use serde_json::{Value as Json, json};
use uuid::Uuid;

use super::platform::CrossTenant;
use super::pool::ExecutorSource;
use super::tx::{EventWork, TxCtx};
use super::{Store, retried};
use crate::authorization::{Access, Scoped};
use crate::error::{OrmError, Result};
use crate::ir::Op;
use crate::ir::{Filter, RecordEvents};
use crate::sql::events::{self, Event, EventKind, NewEvent};
use crate::sql::{Builder, locks};

impl TxCtx<'_> {
    /// Appends every pending event to the outbox, with each record's state after the
    /// transaction (one read per model and trash side), under the tenant's lock.
    pub(super) async fn flush(&mut self) -> Result<()> {
        if self.events.is_empty() {
            return Ok(());
        }
        let d = self.d;
        let pending = std::mem::take(&mut self.events);
        let mut after: HashMap<(ModelName, Uuid), Json> = HashMap::new();
        let mut groups: HashMap<(ModelName, bool), Vec<Uuid>> = HashMap::new();
        for p in &pending {
            let trash = match p.last {
                EventKind::Destroyed => continue,
                EventKind::Deleted => true,
                _ => false,
            };
            groups.entry((p.written.model.clone(), trash)).or_default().push(p.written.id);
        }
        for ((model, trash), ids) in groups {
            let m = self.model(model.as_str())?;
            for row in self.snapshot(&m, &ids, trash).await? {
                let id = row.get("id").and_then(Json::as_str).map(super::parse_uuid).transpose()?;
                let id = id.ok_or_else(|| OrmError::decode("snapshot row", "without its id"))?;
                after.insert((model.clone(), id), row);
            }
        }
        let new: Vec<NewEvent> = pending
            .iter()
            .map(|p| {
                let destroyed = p.last == EventKind::Destroyed;
                let kind = if p.written.kind == EventKind::Created && destroyed { EventKind::Destroyed } else { p.written.kind };
                let after = if destroyed { None } else { after.get(&(p.written.model.clone(), p.written.id)) };
                NewEvent {
                    id: Uuid::now_v7(),
                    kind,
                    model: p.written.model.clone(),
                    record: p.written.id,
                    payload: json!({ "before": p.before, "after": after }),
                }
            })
            .collect();
        let org = self.org().clone();
        let append = events::append(d, &org, self.system.actor(), Utc::now(), &new)?;
        self.tx.ex().execute_some(locks::key(d, org.as_str())).await?;
        self.tx.ex().execute_some(append).await
    }
}

impl Store {
    /// The events of one record the caller may read (their tenant and the model's read rule; a
    /// record in the trash counts), oldest first, at most `first`; the fields the caller may
    /// not read are left out of `before` and `after`. An invisible record has no events.
    ///
    /// # Errors
    /// Database failures.
    pub async fn record_events(&self, q: &Scoped<RecordEvents>) -> Result<Vec<Event>> {
        let d = self.dialect();
        let m = self.catalog.model(q.query.model.as_str()).cloned().ok_or_else(|| OrmError::bad("model", "unknown model"))?;
        // Visible live or in the trash: one statement over both sides.
        let side = |trash: bool| {
            Builder::with_tenant_predicate(d, &self.catalog, &q.access, q.tenant_predicate, self.limits).in_trash(trash).visible_ids(
                &m,
                &Filter::ids(&[q.query.record])?,
                Op::Read,
            )
        };
        let visible = events::visible(d, side(false)?, side(true)?);
        let org = q.tenant_predicate.then(|| q.access.org());
        let of_record = events::of_record(d, org, &m.name, q.query.record, q.query.first)?;
        let mut conn = self.acquire().await?;
        conn.ex().set_tenant(false, &q.access).await?;
        if conn.ex().scalar_i64(visible).await? == 0 {
            return Ok(Vec::new());
        }
        let rows = conn.ex().texts(of_record).await?;
        let denied: Vec<String> = q.access.denied_reads(&m.name).into_iter().map(ToString::to_string).collect();
        rows.iter()
            .map(|t| {
                let mut e = events::decode(t)?;
                for side in [&mut e.before, &mut e.after] {
                    if let Some(Json::Object(o)) = side {
                        o.retain(|k, _| !denied.iter().any(|f| f == k));
                    }
                }
                Ok(e)
            })
            .collect()
    }
}

impl CrossTenant {
    /// The next events (at most `limit`, oldest first) that `consumer` has not processed, across
    /// tenants (only `orgs` when not empty).
    ///
    /// # Errors
    /// Database failures.
    pub async fn pending_events(&self, consumer: &str, limit: u32, orgs: &[String]) -> Result<Vec<Event>> {
        let stmt = events::pending(self.0.dialect(), consumer, limit, orgs)?;
        let mut tx = self.0.platform_tx().await?;
        let rows = tx.ex().texts(stmt).await?;
        tx.commit().await?;
        rows.iter().map(|t| events::decode(t)).collect()
    }

    /// Handles `event` for `consumer` in one transaction that also advances the consumer's
    /// position in the event's tenant: the work's effects and the position commit together, so
    /// an event is handled once even when a process dies mid-batch or two instances run the same
    /// consumer (the position row is locked, and an event already passed is skipped). Returns
    /// whether the event was handled here.
    ///
    /// # Errors
    /// What the work returns; database failures. Nothing is committed then.
    pub async fn process_event(&self, consumer: &str, event: &Event, work: &dyn EventWork) -> Result<bool> {
        retried(|| self.process_once(consumer, event, work)).await
    }

    async fn process_once(&self, consumer: &str, event: &Event, work: &dyn EventWork) -> Result<bool> {
        let org = event.org_id()?;
        let d = self.0.dialect();
        let now = Utc::now();
        let mut tx = self.0.begin().await?;
        tx.ex().set_orgs(true, &org, &[]).await?;
        tx.ex().execute(events::cursor_init(d, consumer, &org, now)?).await?;
        let position = tx.ex().ids(events::cursor_position(d, consumer, &org)).await?;
        let last = position.first().map(|(_, seq)| *seq).ok_or_else(|| OrmError::decode("consumer position", "missing"))?;
        if last >= event.seq {
            return Ok(false);
        }
        let actor = format!("system:{consumer}");
        let caller = Access::system(&self.0.catalog, org.clone(), actor.as_str());
        let mut ctx = self.0.ctx(&mut tx, caller, &actor);
        work.handle(&mut ctx, event).await?;
        ctx.finish().await?;
        drop(ctx);
        tx.ex().execute(events::cursor_advance(d, consumer, &org, event.seq, now)).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// One event of the outbox by position, in `org`.
    ///
    /// # Errors
    /// Database failures.
    pub async fn event(&self, org: &OrgId, seq: i64) -> Result<Option<Event>> {
        let stmt = events::at(self.0.dialect(), org, seq)?;
        let mut conn = self.0.acquire().await?;
        conn.ex().set_orgs(false, org, &[]).await?;
        let rows = conn.ex().texts(stmt).await?;
        rows.first().map(|t| events::decode(t)).transpose()
    }
}
