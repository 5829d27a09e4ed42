//! **Cross-tenant platform work**: what the outbox consumers and the webhook deliverer do across
//! tenants. [`CrossTenant`] is the one handle for it; request paths (GraphQL, REST) never hold
//! one: they reach event data only through [`crate::Scoped`] queries of their own tenant.
//!
//! On PostgreSQL the event tables (`crm_outbox`, `crm_event_cursors`, `crm_deliveries`) and
//! `crm_tenants` have row-level security like every table with `org_id`: the `crm_tenant`
//! policies admit the tenant a connection is set to, and the `crm_platform` policy admits
//! every row only in a transaction that set `crm.platform` to `on` transaction-locally, which
//! only this module (and the engine's own tenancy look-ups) does. A request connection, whose
//! settings are its tenant's, sees no other tenant's events, cursors, deliveries or registry row
//! even with a statement that forgot its `org_id` predicate.

use chrono::Utc;
use crm_model::OrgId;
use sea_query::{Alias, Expr, ExprTrait, Query};
use serde_json::Value as Json;
use uuid::Uuid;

use super::tx::{Attempt, DueDelivery, Event, EventWork, event_from_text, outbox_col, outbox_select};
use super::{Engine, Tx, classify_retry, parse_uuid};
use crate::auth::Access;
use crate::dialect::Dialect;
use crate::error::{OrmError, Result};
use crm_model::{ScalarType, Value};

/// The handle of cross-tenant platform work (see the module documentation). Made only by
/// [`Engine::cross_tenant_platform_work`]; workers and operator commands hold one, request paths
/// never do.
#[derive(Debug, Clone)]
pub struct CrossTenant(Engine);

impl Engine {
    /// **Cross-tenant platform work** on this engine: the outbox consumers' and the webhook
    /// deliverer's operations across tenants. For workers and operator commands only; nothing
    /// that serves a request may call this.
    #[must_use]
    pub fn cross_tenant_platform_work(&self) -> CrossTenant {
        CrossTenant(self.clone())
    }

    /// A transaction in which PostgreSQL's `crm_platform` policies admit every tenant's rows of
    /// the system tables (the flag ends with the transaction).
    pub(super) async fn platform_tx(&self) -> Result<Tx> {
        let mut tx = self.begin().await?;
        tx.ex().platform().await?;
        Ok(tx)
    }
}

impl CrossTenant {
    /// The engine (for work inside one tenant, such as reading a webhook record).
    #[must_use]
    pub fn engine(&self) -> &Engine {
        &self.0
    }

    /// The platform's own access in `org`: every operation on every model of the engine's
    /// catalog, confined to that one tenant, writing `actor` to `createdBy`/`updatedBy`. For the
    /// workers, seeding and operator commands; a request acts with its caller's access.
    #[must_use]
    pub fn system_access(&self, org: OrgId, actor: impl Into<String>) -> Access {
        Access::system(&self.0.catalog, org, actor)
    }

    /// The next events (at most `limit`, oldest first) that `consumer` has not processed, across
    /// tenants (only `orgs` when not empty).
    ///
    /// # Errors
    /// Database failures.
    pub async fn pending_events(&self, consumer: &str, limit: u32, orgs: &[String]) -> Result<Vec<Event>> {
        let d = self.0.dialect();
        let c = || Alias::new("c");
        let mut after = outbox_col("seq").gt(d.cust("COALESCE({}, 0)", vec![Expr::col((c(), Alias::new("last_seq")))]));
        if !orgs.is_empty() {
            after = after.and(outbox_col("org_id").is_in(orgs.iter().map(|o| Expr::val(o.as_str()))));
        }
        let mut stmt = outbox_select(d, after)?;
        stmt.join_as(
            sea_query::JoinType::LeftJoin,
            Alias::new("crm_event_cursors"),
            c(),
            Expr::col((c(), Alias::new("consumer")))
                .eq(Expr::val(consumer))
                .and(Expr::col((c(), Alias::new("org_id"))).equals((Alias::new("o"), Alias::new("org_id")))),
        )
        .order_by_expr(outbox_col("seq"), sea_query::Order::Asc)
        .limit(u64::from(limit));
        let mut tx = self.0.platform_tx().await?;
        let rows = tx.ex().texts(d.build(&stmt)).await?;
        tx.commit().await?;
        rows.iter().map(|t| event_from_text(t)).collect()
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
        let mut attempt = 0;
        loop {
            match self.process_once(consumer, event, work).await {
                Err(OrmError::Database(e)) if classify_retry(&e) && attempt < 3 => attempt += 1,
                other => return other,
            }
        }
    }

    async fn process_once(&self, consumer: &str, event: &Event, work: &dyn EventWork) -> Result<bool> {
        let org = event.org_id()?;
        let d = self.0.dialect();
        let mut tx = self.0.begin().await?;
        tx.ex().set_orgs(true, &org, &[]).await?;
        let now = Value::DateTime(Utc::now());
        let init = Query::insert()
            .into_table(Alias::new("crm_event_cursors"))
            .columns(["consumer", "org_id", "last_seq", "updated_at"].map(Alias::new))
            .values([Expr::val(consumer), Expr::val(org.as_str()), Expr::val(0), d.bind(&now)])
            .map_err(|e| OrmError::Internal(e.to_string()))?
            .on_conflict(sea_query::OnConflict::columns([Alias::new("consumer"), Alias::new("org_id")]).do_nothing().to_owned())
            .to_owned();
        tx.ex().execute(d.build(&init)).await?;
        let mut pos = Query::select()
            .expr(Expr::cust("CAST(consumer AS TEXT)"))
            .column(Alias::new("last_seq"))
            .from(Alias::new("crm_event_cursors"))
            .cond_where(
                Expr::col(Alias::new("consumer")).eq(Expr::val(consumer)).and(Expr::col(Alias::new("org_id")).eq(Expr::val(org.as_str()))),
            )
            .to_owned();
        if d == Dialect::Postgres {
            pos.lock(sea_query::LockType::Update);
        }
        let last = tx.ex().ids(d.build(&pos)).await?.into_iter().next().map_or(0, |(_, v)| v);
        if last >= event.seq {
            return Ok(false);
        }
        let caller = Access::system(&self.0.catalog, org.clone(), format!("system:{consumer}"));
        let mut ctx = self.0.ctx(&mut tx, caller, &format!("system:{consumer}"));
        work.handle(&mut ctx, event).await?;
        ctx.finish().await?;
        drop(ctx);
        let advance = Query::update()
            .table(Alias::new("crm_event_cursors"))
            .value(Alias::new("last_seq"), Expr::val(event.seq))
            .value(Alias::new("updated_at"), d.bind(&now))
            .cond_where(
                Expr::col(Alias::new("consumer")).eq(Expr::val(consumer)).and(Expr::col(Alias::new("org_id")).eq(Expr::val(org.as_str()))),
            )
            .to_owned();
        tx.ex().execute(d.build(&advance)).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// One event of the outbox by position, in the caller's tenant.
    ///
    /// # Errors
    /// Database failures.
    pub async fn event(&self, org: &OrgId, seq: i64) -> Result<Option<Event>> {
        let d = self.0.dialect();
        let stmt = outbox_select(d, outbox_col("seq").eq(Expr::val(seq)).and(outbox_col("org_id").eq(Expr::val(org.as_str()))))?;
        let mut conn = self.0.acquire().await?;
        conn.ex().set_orgs(false, org, &[]).await?;
        let rows = conn.ex().texts(d.build(&stmt)).await?;
        rows.first().map(|t| event_from_text(t)).transpose()
    }

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
        let pick = Query::select()
            .expr(Expr::cust("CAST(id AS TEXT)"))
            .expr(Expr::cust("CAST(attempts AS BIGINT)"))
            .from(Alias::new("crm_deliveries"))
            .cond_where({
                let due = Expr::col(Alias::new("status"))
                    .eq(Expr::val("PENDING"))
                    .and(Expr::col(Alias::new("next_at")).lte(d.bind(&Value::DateTime(now))));
                if orgs.is_empty() {
                    due
                } else {
                    due.and(Expr::col(Alias::new("org_id")).is_in(orgs.iter().map(|o| Expr::val(o.as_str()))))
                }
            })
            .order_by(Alias::new("next_at"), sea_query::Order::Asc)
            .limit(u64::from(limit))
            .to_owned();
        let mut pick = pick;
        if d == Dialect::Postgres {
            pick.lock_with_behavior(sea_query::LockType::Update, sea_query::LockBehavior::SkipLocked);
        }
        let ids: Vec<Uuid> = tx.ex().ids(d.build(&pick)).await?.into_iter().filter_map(|(i, _)| Uuid::parse_str(&i).ok()).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let lease = Query::update()
            .table(Alias::new("crm_deliveries"))
            .value(Alias::new("next_at"), d.bind(&Value::DateTime(until)))
            .cond_where(Expr::col(Alias::new("id")).is_in(ids.iter().map(|i| d.bind(&Value::Uuid(*i)))))
            .to_owned();
        tx.ex().execute(d.build(&lease)).await?;
        let obj = d.object(vec![
            (d.key("id")?, d.json_value(Some(&ScalarType::Id), Expr::col(Alias::new("id")), None)),
            (d.key("org")?, Expr::col(Alias::new("org_id"))),
            (d.key("webhook")?, d.json_value(Some(&ScalarType::Id), Expr::col(Alias::new("webhook_id")), None)),
            (d.key("eventSeq")?, Expr::col(Alias::new("event_seq"))),
            (d.key("attempts")?, Expr::col(Alias::new("attempts"))),
        ]);
        let read = Query::select()
            .expr(d.json_text(obj))
            .from(Alias::new("crm_deliveries"))
            .cond_where(Expr::col(Alias::new("id")).is_in(ids.iter().map(|i| d.bind(&Value::Uuid(*i)))))
            .to_owned();
        let rows = tx.ex().texts(d.build(&read)).await?;
        tx.commit().await?;
        let mut out = Vec::with_capacity(rows.len());
        for t in rows {
            let j: Json = serde_json::from_str(&t).map_err(|e| OrmError::Internal(format!("delivery JSON: {e}")))?;
            let id = j.get("id").and_then(Json::as_str).map(parse_uuid).transpose()?;
            let webhook = j.get("webhook").and_then(Json::as_str).map(parse_uuid).transpose()?;
            if let (Some(id), Some(webhook)) = (id, webhook) {
                out.push(DueDelivery {
                    id,
                    org: j.get("org").and_then(Json::as_str).unwrap_or_default().to_owned(),
                    webhook,
                    event_seq: j.get("eventSeq").and_then(Json::as_i64).unwrap_or(0),
                    attempts: i32::try_from(j.get("attempts").and_then(Json::as_i64).unwrap_or(0)).unwrap_or(i32::MAX),
                });
            }
        }
        Ok(out)
    }

    /// Records the outcome of an attempt at delivery `id`.
    ///
    /// # Errors
    /// Database failures.
    pub async fn record_attempt(&self, id: Uuid, attempt: &Attempt) -> Result<()> {
        let d = self.0.dialect();
        let now = Value::DateTime(Utc::now());
        let mut stmt = Query::update();
        stmt.table(Alias::new("crm_deliveries")).value(Alias::new("attempts"), Expr::col(Alias::new("attempts")).add(1));
        match attempt {
            Attempt::Delivered { status } => {
                stmt.value(Alias::new("status"), Expr::val("DELIVERED"))
                    .value(Alias::new("last_status"), Expr::val(i32::from(*status)))
                    .value(Alias::new("last_error"), Expr::cust("NULL"))
                    .value(Alias::new("delivered_at"), d.bind(&now));
            }
            Attempt::Failed { status, error, retry_at } => {
                stmt.value(Alias::new("status"), Expr::val(if retry_at.is_some() { "PENDING" } else { "FAILED" }))
                    .value(Alias::new("last_status"), status.map_or_else(|| Expr::cust("NULL"), |s| Expr::val(i32::from(s))))
                    .value(Alias::new("last_error"), Expr::val(error.chars().take(500).collect::<String>()));
                if let Some(t) = retry_at {
                    stmt.value(Alias::new("next_at"), d.bind(&Value::DateTime(*t)));
                }
            }
        }
        stmt.cond_where(Expr::col(Alias::new("id")).eq(d.bind(&Value::Uuid(id))));
        let mut tx = self.0.platform_tx().await?;
        tx.ex().execute(d.build(&stmt)).await?;
        tx.commit().await
    }

    /// Hands a claimed delivery back, due again after `delay` (its attempts unchanged).
    ///
    /// # Errors
    /// Database failures.
    pub async fn postpone_delivery(&self, id: Uuid, delay: std::time::Duration) -> Result<()> {
        let d = self.0.dialect();
        let at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::seconds(1));
        let stmt = Query::update()
            .table(Alias::new("crm_deliveries"))
            .value(Alias::new("next_at"), d.bind(&Value::DateTime(at)))
            .cond_where(Expr::col(Alias::new("id")).eq(d.bind(&Value::Uuid(id))))
            .to_owned();
        let mut tx = self.0.platform_tx().await?;
        tx.ex().execute(d.build(&stmt)).await?;
        tx.commit().await
    }
}
