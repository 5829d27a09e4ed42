//! The webhook delivery queue (`crm_deliveries`): queuing an event for a webhook, the tenant's
//! list of deliveries, and the deliverer's claim, lease and outcome of an attempt.

use chrono::{DateTime, Utc};
use crm_model::{OrgId, ScalarType, Value};
use sea_query::{Alias, Expr, ExprTrait, Query, SelectStatement};
use serde::Deserialize;
use uuid::Uuid;

use super::Built;
use super::dialect::Dialect;
use crate::error::{OrmError, Result};

/// A webhook delivery due now, claimed by one deliverer for a while.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DueDelivery {
    /// The delivery.
    pub id: Uuid,
    /// The tenant.
    pub org: String,
    /// The webhook (a `Webhook` record of the tenant).
    pub webhook: Uuid,
    /// The outbox event delivered.
    pub event_seq: i64,
    /// Attempts made so far.
    pub attempts: i32,
}

/// What a delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The endpoint answered 2xx.
    Delivered {
        /// The HTTP status.
        status: u16,
    },
    /// Failed; retried at `retry_at`, or given up (`None`).
    Failed {
        /// The HTTP status, if any answer came.
        status: Option<u16>,
        /// What went wrong.
        error: String,
        /// When to try again; `None` gives up.
        retry_at: Option<DateTime<Utc>>,
    },
}

/// The most characters of an attempt's error kept.
const ERROR_CHARS: usize = 500;

fn col(c: &str) -> Expr {
    Expr::col(Alias::new(c))
}

fn ids_in(d: Dialect, ids: &[Uuid]) -> Expr {
    col("id").is_in(ids.iter().map(|i| d.bind(&Value::Uuid(*i))))
}

/// Queues delivery `id` of outbox event `event_seq` to `webhook` of `org`, due `now` (once per
/// webhook and event: a second enqueue changes nothing).
///
/// # Errors
/// A statement sea-query cannot build (an internal error).
pub fn enqueue(d: Dialect, org: &OrgId, id: Uuid, webhook: Uuid, event_seq: i64, event_type: &str, now: DateTime<Utc>) -> Result<Built> {
    let now = d.bind(&Value::DateTime(now));
    let stmt = Query::insert()
        .into_table(Alias::new("crm_deliveries"))
        .columns(["id", "org_id", "webhook_id", "event_seq", "event_type", "status", "attempts", "next_at", "created_at"].map(Alias::new))
        .values([
            d.bind(&Value::Uuid(id)),
            Expr::val(org.as_str()),
            d.bind(&Value::Uuid(webhook)),
            Expr::val(event_seq),
            Expr::val(event_type),
            Expr::val("PENDING"),
            Expr::val(0),
            now.clone(),
            now,
        ])
        .map_err(OrmError::statement)?
        .on_conflict(sea_query::OnConflict::columns([Alias::new("webhook_id"), Alias::new("event_seq")]).do_nothing().to_owned())
        .to_owned();
    Ok(d.build(&stmt))
}

/// The deliveries to the webhooks `visible` selects (the caller's readable `Webhook` ids),
/// newest first, at most `first`, of one webhook when given; with `org`, the statement names the
/// tenant itself. Each row is the JSON text of `{"id", "webhook", "eventSeq", "eventType",
/// "status", "attempts", "lastStatus", "lastError", "nextAttemptAt", "createdAt",
/// "deliveredAt"}`.
///
/// # Errors
/// A key the dialect cannot write (an internal error).
pub fn list(d: Dialect, visible: SelectStatement, org: Option<&OrgId>, webhook: Option<Uuid>, first: u32) -> Result<SelectStatement> {
    let dt = |n: &str| d.json_value(Some(&ScalarType::DateTime), col(n), None);
    let obj = d.object(vec![
        (d.key("id")?, d.json_value(Some(&ScalarType::Id), col("id"), None)),
        (d.key("webhook")?, d.json_value(Some(&ScalarType::Id), col("webhook_id"), None)),
        (d.key("eventSeq")?, col("event_seq")),
        (d.key("eventType")?, col("event_type")),
        (d.key("status")?, col("status")),
        (d.key("attempts")?, col("attempts")),
        (d.key("lastStatus")?, col("last_status")),
        (d.key("lastError")?, col("last_error")),
        (d.key("nextAttemptAt")?, dt("next_at")),
        (d.key("createdAt")?, dt("created_at")),
        (d.key("deliveredAt")?, dt("delivered_at")),
    ]);
    let mut cond = col("webhook_id").in_subquery(visible);
    if let Some(org) = org {
        cond = col("org_id").eq(Expr::val(org.as_str())).and(cond);
    }
    if let Some(w) = webhook {
        cond = cond.and(col("webhook_id").eq(d.bind(&Value::Uuid(w))));
    }
    Ok(Query::select()
        .expr(d.json_text(obj))
        .from(Alias::new("crm_deliveries"))
        .cond_where(cond)
        .order_by(Alias::new("created_at"), sea_query::Order::Desc)
        .order_by(Alias::new("event_seq"), sea_query::Order::Desc)
        .limit(u64::from(first))
        .to_owned())
}

/// The ids (and attempts) of up to `limit` deliveries due at `now`, across tenants (only `orgs`
/// when not empty), earliest first; on PostgreSQL locked, skipping rows another deliverer holds.
#[must_use]
pub fn due(d: Dialect, now: DateTime<Utc>, limit: u32, orgs: &[String]) -> Built {
    let mut due = col("status").eq(Expr::val("PENDING")).and(col("next_at").lte(d.bind(&Value::DateTime(now))));
    if !orgs.is_empty() {
        due = due.and(col("org_id").is_in(orgs.iter().map(|o| Expr::val(o.as_str()))));
    }
    let mut stmt = Query::select()
        .expr(Expr::cust("CAST(id AS TEXT)"))
        .expr(Expr::cust("CAST(attempts AS BIGINT)"))
        .from(Alias::new("crm_deliveries"))
        .cond_where(due)
        .order_by(Alias::new("next_at"), sea_query::Order::Asc)
        .limit(u64::from(limit))
        .to_owned();
    if d == Dialect::Postgres {
        stmt.lock_with_behavior(sea_query::LockType::Update, sea_query::LockBehavior::SkipLocked);
    }
    d.build(&stmt)
}

/// Leases deliveries `ids` until `until` (they are not due again before).
#[must_use]
pub fn lease(d: Dialect, ids: &[Uuid], until: DateTime<Utc>) -> Built {
    let stmt = Query::update()
        .table(Alias::new("crm_deliveries"))
        .value(Alias::new("next_at"), d.bind(&Value::DateTime(until)))
        .cond_where(ids_in(d, ids))
        .to_owned();
    d.build(&stmt)
}

/// Deliveries `ids`, each the JSON text of a [`DueDelivery`].
///
/// # Errors
/// A key the dialect cannot write (an internal error).
pub fn claimed(d: Dialect, ids: &[Uuid]) -> Result<Built> {
    let obj = d.object(vec![
        (d.key("id")?, d.json_value(Some(&ScalarType::Id), col("id"), None)),
        (d.key("org")?, col("org_id")),
        (d.key("webhook")?, d.json_value(Some(&ScalarType::Id), col("webhook_id"), None)),
        (d.key("eventSeq")?, col("event_seq")),
        (d.key("attempts")?, col("attempts")),
    ]);
    let stmt = Query::select().expr(d.json_text(obj)).from(Alias::new("crm_deliveries")).cond_where(ids_in(d, ids)).to_owned();
    Ok(d.build(&stmt))
}

/// Records `attempt` at delivery `id`, made at `now`.
#[must_use]
pub fn record_attempt(d: Dialect, id: Uuid, attempt: &Attempt, now: DateTime<Utc>) -> Built {
    let mut stmt = Query::update();
    stmt.table(Alias::new("crm_deliveries")).value(Alias::new("attempts"), col("attempts").add(1));
    match attempt {
        Attempt::Delivered { status } => {
            stmt.value(Alias::new("status"), Expr::val("DELIVERED"))
                .value(Alias::new("last_status"), Expr::val(i32::from(*status)))
                .value(Alias::new("last_error"), Expr::cust("NULL"))
                .value(Alias::new("delivered_at"), d.bind(&Value::DateTime(now)));
        }
        Attempt::Failed { status, error, retry_at } => {
            stmt.value(Alias::new("status"), Expr::val(if retry_at.is_some() { "PENDING" } else { "FAILED" }))
                .value(Alias::new("last_status"), status.map_or_else(|| Expr::cust("NULL"), |s| Expr::val(i32::from(s))))
                .value(Alias::new("last_error"), Expr::val(error.chars().take(ERROR_CHARS).collect::<String>()));
            if let Some(t) = retry_at {
                stmt.value(Alias::new("next_at"), d.bind(&Value::DateTime(*t)));
            }
        }
    }
    stmt.cond_where(col("id").eq(d.bind(&Value::Uuid(id))));
    d.build(&stmt)
}

/// Makes delivery `id` due again at `at` (its attempts unchanged).
#[must_use]
pub fn postpone(d: Dialect, id: Uuid, at: DateTime<Utc>) -> Built {
    let stmt = Query::update()
        .table(Alias::new("crm_deliveries"))
        .value(Alias::new("next_at"), d.bind(&Value::DateTime(at)))
        .cond_where(col("id").eq(d.bind(&Value::Uuid(id))))
        .to_owned();
    d.build(&stmt)
}

/// Deletes up to `limit` finished deliveries (delivered or given up) whose last attempt was due
/// before `before` (retention), by the `(status, next_at)` index.
#[must_use]
pub fn purge_finished(d: Dialect, before: DateTime<Utc>, limit: u32) -> Built {
    let old = Query::select()
        .column(Alias::new("id"))
        .from(Alias::new("crm_deliveries"))
        .cond_where(
            col("status").is_in([Expr::val("DELIVERED"), Expr::val("FAILED")]).and(col("next_at").lt(d.bind(&Value::DateTime(before)))),
        )
        .limit(u64::from(limit))
        .to_owned();
    let stmt = Query::delete().from_table(Alias::new("crm_deliveries")).cond_where(col("id").in_subquery(old)).to_owned();
    d.build(&stmt)
}
