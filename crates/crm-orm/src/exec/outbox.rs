//! The transactional outbox: the events a transaction appends before it commits, one record's
//! events for its readers, and the consumers' reads and durable positions (cross-tenant work,
//! through [`CrossTenant`]).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use crm_model::{ModelName, OrgId};
use serde_json::{Value as Json, json};
use uuid::Uuid;

use super::platform::CrossTenant;
use super::pool::ExecutorSource;
use super::tx::{EventWork, SendEvents, TxCtx};
use super::{Store, retried};
use crate::authorization::{Access, Scoped};
use crate::error::{OrmError, Result};
use crate::ir::Op;
use crate::ir::{Filter, RecordEvents};
use crate::sql::dialect::Dialect;
use crate::sql::events::{self, Event, EventKind, FrontRow, Lag, NewEvent, Position};
use crate::sql::{Builder, locks};

impl TxCtx<'_> {
    /// Appends every pending event to the outbox, with each record's state after the
    /// transaction (one read per model and trash side), under the tenant's lock.
    pub(super) async fn flush(&mut self) -> Result<usize> {
        if self.events.is_empty() {
            return Ok(0);
        }
        let d = self.d;
        let pending = self.events.take();
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
        self.tx.ex().execute_some(locks::key(d, org.as_str())).await?;
        // The time is taken under the tenant's lock: a tenant's events are stamped in the order
        // they are numbered (retention walks them by position and stops at the first recent one).
        let at = Utc::now();
        // A batch (ingestion) appends thousands: at most 1,000 rows a statement.
        for chunk in new.chunks(1000) {
            for stmt in events::append(d, &org, self.system.actor(), at, chunk)? {
                self.tx.ex().execute(stmt).await?;
            }
        }
        Ok(new.len())
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

/// Listens on a connection of its own for the notifications of appended events and wakes the
/// consumers on each, until the connection fails.
async fn listen(pool: &sqlx::PgPool, store: &Store) -> std::result::Result<std::convert::Infallible, sqlx::Error> {
    let mut l = sqlx::postgres::PgListener::connect_with(pool).await?;
    l.listen(events::CHANNEL).await?;
    // Whatever was appended while no one listened.
    store.wake_consumers(1);
    loop {
        l.recv().await?;
        store.wake_consumers(1);
    }
}

/// Events retention reads at a time from the front of the outbox.
const FRONT_WINDOW: u32 = 1000;

/// Most tenants [`CrossTenant::lag`] counts (those first in id order; beyond them it says less).
pub const LAG_TENANTS: u32 = 10_000;

/// Tenants read at a time by [`CrossTenant::pending_events`].
pub const TENANTS_PER_READ: u32 = 32;

impl CrossTenant {
    /// The next events that `consumer` has not processed, across tenants (only `orgs` when not
    /// empty): of up to [`TENANTS_PER_READ`] tenants behind, the first after tenant `after_org`
    /// (round robin: pass the last tenant of the previous read, `""` to start), each tenant's
    /// next events (at most `limit`, oldest first), tenant after tenant. Reads the tenants'
    /// heads, then each tenant's range of the outbox after the consumer's position: never a
    /// processed event.
    ///
    /// # Errors
    /// Database failures.
    pub async fn pending_events(&self, consumer: &str, limit: u32, orgs: &[String], after_org: &str) -> Result<Vec<Event>> {
        let d = self.0.dialect();
        let mut tx = self.0.platform_tx().await?;
        let mut behind = tx.ex().ids(events::pending_tenants(d, consumer, orgs, after_org, TENANTS_PER_READ)).await?;
        if behind.len() < TENANTS_PER_READ as usize && !after_org.is_empty() {
            // Round the circle: the tenants up to `after_org`.
            let wrapped = tx.ex().ids(events::pending_tenants(d, consumer, orgs, "", TENANTS_PER_READ)).await?;
            for w in wrapped {
                if behind.len() < TENANTS_PER_READ as usize && !behind.iter().any(|(o, _)| *o == w.0) {
                    behind.push(w);
                }
            }
        }
        let mut rows = Vec::new();
        for (org, after) in behind {
            rows.extend(tx.ex().texts(events::pending_of(d, &org, after, limit)?).await?);
        }
        tx.commit().await?;
        rows.iter().map(|t| events::decode(t)).collect()
    }

    /// How far `consumer` is behind (only `orgs` when not empty): events not processed yet and
    /// when the oldest of them was written. The tenants behind, then a range of the index in
    /// each (at most [`LAG_TENANTS`] tenants).
    ///
    /// # Errors
    /// Database failures.
    pub async fn lag(&self, consumer: &str, orgs: &[String]) -> Result<Lag> {
        let d = self.0.dialect();
        let mut tx = self.0.platform_tx().await?;
        let behind = tx.ex().ids(events::pending_tenants(d, consumer, orgs, "", LAG_TENANTS)).await?;
        let mut lag = Lag::default();
        for (org, after) in behind {
            let rows = tx.ex().texts(events::lag_in(d, &org, after)?).await?;
            let one = rows.first().map_or(Ok(Lag::default()), |t| crate::error::decode_json::<Lag>("outbox lag", t))?;
            lag.events += one.events;
            lag.oldest = match (lag.oldest, one.oldest) {
                (Some(a), Some(b)) => Some(std::cmp::min(a, b)),
                (a, b) => a.or(b),
            };
        }
        tx.commit().await?;
        Ok(lag)
    }

    /// Retention: deletes the events written before `before` that every consumer has passed, in
    /// batches of `batch` (each its own short transaction, so writers and consumers go on
    /// meanwhile), walking the front of the outbox 1,000 events at a time up to the first window
    /// with no event older than `before`. Events kept (a consumer has not passed them) are read
    /// again by the next run.
    /// The consumers waited for are `consumers` (those this server runs) and every consumer
    /// that moved a position since `before`; a tenant without a position of one of them keeps
    /// its events. Returns how many events were deleted.
    ///
    /// # Errors
    /// Database failures (the batches deleted before stay deleted).
    pub async fn purge_events(&self, consumers: &[&str], before: DateTime<Utc>, batch: u32) -> Result<u64> {
        let d = self.0.dialect();
        let mut tx = self.0.platform_tx().await?;
        let mut waited: Vec<String> = tx.ex().texts(events::active_consumers(d, before)).await?;
        tx.commit().await?;
        for c in consumers {
            if !waited.iter().any(|w| w == c) {
                waited.push((*c).to_owned());
            }
        }
        let mut deleted = 0;
        let mut after = 0;
        loop {
            let mut tx = self.0.platform_tx().await?;
            let front: Vec<FrontRow> = tx
                .ex()
                .texts(events::front(d, after, FRONT_WINDOW)?)
                .await?
                .iter()
                .map(|t| crate::error::decode_json::<FrontRow>("outbox row", t))
                .collect::<Result<_>>()?;
            let old: Vec<&FrontRow> = front.iter().filter(|r| r.at < before).collect();
            if old.is_empty() {
                tx.commit().await?;
                return Ok(deleted);
            }
            let mut orgs: Vec<String> = old.iter().map(|r| r.org.clone()).collect();
            orgs.sort();
            orgs.dedup();
            let passed: HashMap<(String, String), i64> = tx
                .ex()
                .texts(events::positions(d, &waited, &orgs)?)
                .await?
                .iter()
                .map(|t| crate::error::decode_json::<Position>("consumer position", t).map(|p| ((p.consumer, p.org), p.seq)))
                .collect::<Result<_>>()?;
            let gone: Vec<i64> = old
                .iter()
                .filter(|r| waited.iter().all(|c| passed.get(&(c.clone(), r.org.clone())).is_some_and(|p| *p >= r.seq)))
                .map(|r| r.seq)
                .collect();
            tx.commit().await?;
            for chunk in gone.chunks(batch.max(1) as usize) {
                let mut tx = self.0.platform_tx().await?;
                if let Some(stmt) = events::purge(d, chunk) {
                    deleted += tx.ex().execute(stmt).await?;
                }
                tx.commit().await?;
            }
            match front.last() {
                Some(last) if front.len() == FRONT_WINDOW as usize => after = last.seq,
                _ => return Ok(deleted),
            }
        }
    }

    /// Retention of the webhook deliveries: deletes those finished (delivered or given up) whose
    /// last attempt was before `before`, in batches of `batch`. Returns how many were deleted.
    ///
    /// # Errors
    /// Database failures (the batches deleted before stay deleted).
    pub async fn purge_deliveries(&self, before: DateTime<Utc>, batch: u32) -> Result<u64> {
        let mut deleted = 0;
        loop {
            let mut tx = self.0.platform_tx().await?;
            let n = tx.ex().execute(crate::sql::deliveries::purge_finished(self.0.dialect(), before, batch)).await?;
            tx.commit().await?;
            deleted += n;
            if n < u64::from(batch) {
                return Ok(deleted);
            }
        }
    }

    /// What wakes the consumers: a change of the returned value each time a transaction of this
    /// process appended events, or (PostgreSQL, while [`CrossTenant::relay_notifications`] runs)
    /// another process's did.
    #[must_use]
    pub fn wakeups(&self) -> tokio::sync::watch::Receiver<u64> {
        self.0.appended.subscribe()
    }

    /// On PostgreSQL, listens for the notifications of appended events ([`events::CHANNEL`],
    /// sent by every server over the database) and turns each into a wake-up
    /// ([`CrossTenant::wakeups`]) until `stop` turns true. A lost connection is a wake-up too
    /// (notifications may have been missed) and is opened again. Returns at once on SQLite,
    /// whose writers are all in this process.
    pub async fn relay_notifications(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let super::pool::Db::Postgres(pool) = &self.0.db else { return };
        loop {
            tokio::select! {
                Err(e) = listen(pool, &self.0) => {
                    tracing::warn!(error = %e, "listening for outbox notifications failed; listening again in 1 s");
                    self.0.wake_consumers(1);
                }
                _ = stop.changed() => return,
            }
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                _ = stop.changed() => return,
            }
        }
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
        let appended = ctx.finish().await?;
        drop(ctx);
        tx.ex().execute(events::cursor_advance(d, consumer, &org, event.seq, now)).await?;
        tx.commit().await?;
        self.0.wake_consumers(appended);
        Ok(true)
    }

    /// Hands `events` (of one tenant, oldest first, from [`CrossTenant::pending_events`]) that
    /// `consumer` has not passed yet to `send`, which publishes them elsewhere, and moves the
    /// consumer's position to the last event `send` reports as accepted. Nothing is marked before
    /// `send` says so: after a crash the events are sent again (the receiver de-duplicates by
    /// event id). On PostgreSQL the tenant's position row is locked while `send` runs, and a
    /// tenant another process is sending for is skipped (`Ok(None)`), so replicas share the work
    /// without doing it twice; SQLite's only process sends without holding its write lock.
    /// Returns how many events were accepted.
    ///
    /// # Errors
    /// Database failures; what `send` returns (nothing is marked then).
    pub async fn send_events(&self, consumer: &str, events: &[Event], send: &dyn SendEvents) -> Result<Option<usize>> {
        let Some(first) = events.first() else { return Ok(Some(0)) };
        let org = first.org_id()?;
        if events.iter().any(|e| e.org != first.org) {
            return Err(OrmError::invariant("events of several tenants sent together"));
        }
        let d = self.0.dialect();
        let now = Utc::now();
        let mut tx = self.0.platform_tx().await?;
        tx.ex().execute(events::cursor_init(d, consumer, &org, now)?).await?;
        let position = tx.ex().ids(events::cursor_claim(d, consumer, &org)).await?;
        let Some(last) = position.first().map(|(_, seq)| *seq) else {
            // Another process holds this tenant.
            return Ok(None);
        };
        let due: Vec<Event> = events.iter().filter(|e| e.seq > last).cloned().collect();
        // Do not hold SQLite's only write lock while waiting for the receiver.
        let held = if d == Dialect::Sqlite {
            tx.commit().await?;
            None
        } else {
            Some(tx)
        };
        let Some(accepted) = send.send(&due).await? else {
            return Ok(Some(0));
        };
        let count = due.iter().take_while(|e| e.seq <= accepted).count();
        let mut tx = match held {
            Some(tx) => tx,
            None => self.0.platform_tx().await?,
        };
        tx.ex().execute(events::cursor_advance(d, consumer, &org, accepted, Utc::now())).await?;
        tx.commit().await?;
        Ok(Some(count))
    }

    /// The events of `org` after position `after` (0: from its first kept event), oldest first,
    /// at most `limit`: a live feed's read (subscriptions), a range of the `(org_id, seq)` index.
    ///
    /// # Errors
    /// Database failures.
    pub async fn events_after(&self, org: &OrgId, after: i64, limit: u32) -> Result<Vec<Event>> {
        let stmt = events::pending_of(self.0.dialect(), org.as_str(), after, limit)?;
        let mut conn = self.0.acquire().await?;
        conn.ex().set_orgs(false, org, &[]).await?;
        let rows = conn.ex().texts(stmt).await?;
        rows.iter().map(|t| events::decode(t)).collect()
    }

    /// The last position `org` appended (0 before its first event): where a live feed starts.
    ///
    /// # Errors
    /// Database failures.
    pub async fn head(&self, org: &OrgId) -> Result<i64> {
        let mut conn = self.0.acquire().await?;
        conn.ex().set_orgs(false, org, &[]).await?;
        Ok(conn.ex().optional_i64(events::head_of(self.0.dialect(), org)).await?.unwrap_or(0))
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
