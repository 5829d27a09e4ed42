//! The transactional outbox (`crm_outbox`) and the consumers' durable positions
//! (`crm_event_cursors`): the events a transaction appends, and the reads of them (one record's
//! history, a consumer's next events, one event by position).

use chrono::{DateTime, Utc};
use crm_model::{ModelName, OrgId, ScalarType, Value};
use sea_query::{Alias, Expr, ExprTrait, Query, SelectStatement};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use uuid::Uuid;

use super::Built;
use super::dialect::Dialect;
use crate::error::{OrmError, Result, decode_json};

/// What happened to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// Inserted.
    Created,
    /// Changed.
    Updated,
    /// Moved to the trash.
    Deleted,
    /// Taken out of the trash.
    Restored,
    /// Removed for good.
    Destroyed,
}

impl EventKind {
    /// `created`, `updated`, …
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Created => "created",
            EventKind::Updated => "updated",
            EventKind::Deleted => "deleted",
            EventKind::Restored => "restored",
            EventKind::Destroyed => "destroyed",
        }
    }
}

/// The event type of `kind` on `model`: `lead.created`, `socialEvent.updated`, …
#[must_use]
pub fn event_type(model: &str, kind: EventKind) -> String {
    let mut chars = model.chars();
    let head: String = chars.next().map(|c| c.to_lowercase().collect()).unwrap_or_default();
    format!("{head}{}.{}", chars.as_str(), kind.as_str())
}

/// An event of the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Position in the outbox (increasing in commit order within a tenant).
    pub seq: i64,
    /// The event id (stable across redeliveries).
    pub id: Uuid,
    /// The tenant.
    pub org: String,
    /// `lead.created`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// The model.
    pub model: String,
    /// The record.
    pub record_id: Uuid,
    /// Who wrote it.
    pub actor: Option<String>,
    /// When it was written.
    pub at: DateTime<Utc>,
    /// The record before the write (none for a create).
    pub before: Option<Json>,
    /// The record after the write (none when destroyed).
    pub after: Option<Json>,
}

impl Event {
    /// The tenant as an id.
    ///
    /// # Errors
    /// A malformed tenant id in the outbox.
    pub fn org_id(&self) -> Result<OrgId> {
        OrgId::new(self.org.clone()).map_err(OrmError::statement)
    }
}

/// An event to append: one record's change in a transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The event id.
    pub id: Uuid,
    /// What happened.
    pub kind: EventKind,
    /// The model.
    pub model: ModelName,
    /// The record.
    pub record: Uuid,
    /// The record before and after (`{"before": …, "after": …}`).
    pub payload: Json,
}

/// The channel on which PostgreSQL notifies listeners (the workers) of appended events.
pub const CHANNEL: &str = "crm_outbox";

/// Appends `events` of `org`, written by `actor` at `at`, and moves the tenant's head (the last
/// position it appended, [`pending_tenants`] reads it) in the same transaction. PostgreSQL: one
/// statement, which also notifies [`CHANNEL`] (delivered at commit, once per transaction);
/// SQLite: two (the insert, then the head, set to the last row inserted). Empty for no events.
///
/// # Errors
/// A statement sea-query cannot build (an internal error).
pub fn append(d: Dialect, org: &OrgId, actor: &str, at: DateTime<Utc>, events: &[NewEvent]) -> Result<Vec<Built>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let mut stmt = Query::insert();
    stmt.into_table(Alias::new("crm_outbox"))
        .columns(["org_id", "event_id", "type", "model", "record_id", "actor", "at", "payload"].map(Alias::new));
    for e in events {
        stmt.values([
            Expr::val(org.as_str()),
            d.bind(&Value::Uuid(e.id)),
            Expr::val(event_type(e.model.as_str(), e.kind)),
            Expr::val(e.model.as_str()),
            d.bind(&Value::Uuid(e.record)),
            Expr::val(actor),
            d.bind(&Value::DateTime(at)),
            d.bind(&Value::Json(e.payload.clone())),
        ])
        .map_err(OrmError::statement)?;
    }
    let (insert, values) = d.build(&stmt);
    Ok(match d {
        // The head takes the largest position inserted (never a smaller one: positions are
        // numbered in the tenant's commit order under its lock, see `locks::key`).
        Dialect::Postgres => vec![(
            format!(
                "WITH \"ins\" AS ({insert} RETURNING \"seq\", \"org_id\"), \
                 \"head\" AS (INSERT INTO \"crm_outbox_heads\" (\"org_id\", \"last_seq\") \
                 SELECT \"org_id\", MAX(\"seq\") FROM \"ins\" GROUP BY \"org_id\" \
                 ON CONFLICT (\"org_id\") DO UPDATE SET \"last_seq\" = GREATEST(\"crm_outbox_heads\".\"last_seq\", EXCLUDED.\"last_seq\")) \
                 SELECT pg_notify('{CHANNEL}', '')"
            ),
            values,
        )],
        Dialect::Sqlite => vec![
            (insert, values),
            d.statement(
                "INSERT INTO \"crm_outbox_heads\" (\"org_id\", \"last_seq\") VALUES ({}, last_insert_rowid()) \
                 ON CONFLICT (\"org_id\") DO UPDATE SET \"last_seq\" = MAX(\"last_seq\", excluded.\"last_seq\")",
                vec![org.as_str().into()],
            ),
        ],
    })
}

/// A column of the outbox, aliased `o`.
fn outbox_col(c: &str) -> Expr {
    Expr::col((Alias::new("o"), Alias::new(c)))
}

/// `SELECT <event as JSON text> FROM crm_outbox o WHERE cond`.
fn outbox_select(d: Dialect, cond: Expr) -> Result<SelectStatement> {
    let col = outbox_col;
    let obj = d.object(vec![
        (d.key("seq")?, col("seq")),
        (d.key("id")?, d.json_value(Some(&ScalarType::Id), col("event_id"), None)),
        (d.key("org")?, col("org_id")),
        (d.key("type")?, col("type")),
        (d.key("model")?, col("model")),
        (d.key("recordId")?, d.json_value(Some(&ScalarType::Id), col("record_id"), None)),
        (d.key("actor")?, col("actor")),
        (d.key("at")?, d.json_value(Some(&ScalarType::DateTime), col("at"), None)),
        (d.key("payload")?, d.json_value(Some(&ScalarType::Json), col("payload"), None)),
    ]);
    Ok(Query::select().expr(d.json_text(obj)).from_as(Alias::new("crm_outbox"), Alias::new("o")).cond_where(cond).to_owned())
}

/// An event from the JSON text of an outbox read.
///
/// # Errors
/// Text that is not an event (an internal error: the statements here wrote it).
pub fn decode(t: &str) -> Result<Event> {
    let mut j: Json = decode_json("event row", t)?;
    let payload = j.get_mut("payload").map_or(Json::Null, Json::take);
    if let Some(o) = j.as_object_mut() {
        o.insert("before".into(), payload.get("before").cloned().unwrap_or(Json::Null));
        o.insert("after".into(), payload.get("after").cloned().unwrap_or(Json::Null));
    }
    crate::error::decode_value("event row", j)
}

/// How many rows `live` and `trash` (two id reads of one record, see
/// [`super::Builder::visible_ids`]) find together: whether the record is visible at all.
#[must_use]
pub fn visible(d: Dialect, mut live: SelectStatement, trash: SelectStatement) -> Built {
    live.union(sea_query::UnionType::All, trash);
    let count = Query::select().expr(Expr::cust("CAST(COUNT(*) AS BIGINT)")).from_subquery(live, Alias::new("v")).to_owned();
    d.build(&count)
}

/// The events of record `record` of `model`, oldest first, at most `first`; with `org`, the
/// statement names the tenant itself (otherwise row-level security alone confines it).
///
/// # Errors
/// A key the dialect cannot write (an internal error).
pub fn of_record(d: Dialect, org: Option<&OrgId>, model: &ModelName, record: Uuid, first: u32) -> Result<Built> {
    let mut cond = outbox_col("model").eq(Expr::val(model.as_str())).and(outbox_col("record_id").eq(d.bind(&Value::Uuid(record))));
    if let Some(org) = org {
        cond = outbox_col("org_id").eq(Expr::val(org.as_str())).and(cond);
    }
    let mut stmt = outbox_select(d, cond)?;
    stmt.order_by_expr(outbox_col("seq"), sea_query::Order::Asc).limit(u64::from(first));
    Ok(d.build(&stmt))
}

/// The fields of a record that changes committed after its version `since` set, from the
/// record's events in order (see [`of_record`]): `None` when the events do not reach back to
/// `since` (older ones passed the retention) or the record was destroyed. System fields that
/// every write moves (`version`, `updatedAt`, `updatedBy`) are left out.
#[must_use]
pub fn changed_since(events: &[Event], since: i64) -> Option<std::collections::HashSet<String>> {
    let version = |side: &Option<Json>| side.as_ref().and_then(|o| o.get("version")).and_then(Json::as_i64);
    let mut changed = std::collections::HashSet::new();
    let mut reached = false;
    for e in events {
        let after_version = version(&e.after)?;
        if after_version <= since {
            continue;
        }
        if !reached {
            // The first change after `since` must start from it (or before): no gap.
            if version(&e.before).is_none_or(|b| b > since) {
                return None;
            }
            reached = true;
        }
        let (Some(Json::Object(before)), Some(Json::Object(after))) = (&e.before, &e.after) else { return None };
        for (k, v) in after {
            if before.get(k) != Some(v) && !matches!(k.as_str(), "version" | "updatedAt" | "updatedBy") {
                changed.insert(k.clone());
            }
        }
    }
    reached.then_some(changed)
}

/// The newest `n` events of one record, newest first (the changes an update made on an older
/// version is checked against, see [`changed_since`]).
///
/// # Errors
/// A statement sea-query cannot build (an internal error).
pub fn latest_of_record(d: Dialect, org: &OrgId, model: &ModelName, record: Uuid, n: u32) -> Result<Built> {
    let cond = outbox_col("org_id")
        .eq(Expr::val(org.as_str()))
        .and(outbox_col("model").eq(Expr::val(model.as_str())))
        .and(outbox_col("record_id").eq(d.bind(&Value::Uuid(record))));
    let mut stmt = outbox_select(d, cond)?;
    stmt.order_by_expr(outbox_col("seq"), sea_query::Order::Desc).limit(u64::from(n));
    Ok(d.build(&stmt))
}

/// `consumer`'s position in the tenant of heads row `h` (0 before its first event): a primary-key
/// look-up per tenant, whatever the statistics say (a join let the planner loop over every
/// cursor for every head).
fn position_in_head(d: Dialect, consumer: &str) -> Expr {
    let c = || Alias::new("c");
    let sub = Query::select()
        .column((c(), Alias::new("last_seq")))
        .from_as(Alias::new("crm_event_cursors"), c())
        .cond_where(
            Expr::col((c(), Alias::new("consumer")))
                .eq(Expr::val(consumer))
                .and(Expr::col((c(), Alias::new("org_id"))).equals((Alias::new("h"), Alias::new("org_id")))),
        )
        .to_owned();
    d.cust("COALESCE({}, 0)", vec![Expr::SubQuery(None, Box::new(sub.into()))])
}

/// The tenants with events `consumer` has not processed (only `orgs` when not empty), after
/// tenant `after_org` in id order (`""`: from the first), at most `limit`, each with the
/// consumer's position in it (0 before its first event): a read of the tenants' heads (one row
/// per tenant), never of the outbox itself.
#[must_use]
pub fn pending_tenants(d: Dialect, consumer: &str, orgs: &[String], after_org: &str, limit: u32) -> Built {
    let h = || Alias::new("h");
    let mut cond = Expr::col((h(), Alias::new("last_seq"))).gt(position_in_head(d, consumer));
    if !orgs.is_empty() {
        cond = cond.and(Expr::col((h(), Alias::new("org_id"))).is_in(orgs.iter().map(|o| Expr::val(o.as_str()))));
    }
    if !after_org.is_empty() {
        cond = cond.and(Expr::col((h(), Alias::new("org_id"))).gt(Expr::val(after_org)));
    }
    let stmt = Query::select()
        .expr(Expr::col((h(), Alias::new("org_id"))))
        .expr(d.cust("CAST({} AS BIGINT)", vec![position_in_head(d, consumer)]))
        .from_as(Alias::new("crm_outbox_heads"), h())
        .cond_where(cond)
        .order_by_expr(Expr::col((h(), Alias::new("org_id"))), sea_query::Order::Asc)
        .limit(u64::from(limit))
        .to_owned();
    d.build(&stmt)
}

/// The events of `org` after position `after`, oldest first, at most `limit`: a range of the
/// `(org_id, seq)` index, which never touches the events before it.
///
/// # Errors
/// A key the dialect cannot write (an internal error).
pub fn pending_of(d: Dialect, org: &str, after: i64, limit: u32) -> Result<Built> {
    let cond = outbox_col("org_id").eq(Expr::val(org)).and(outbox_col("seq").gt(Expr::val(after)));
    let mut stmt = outbox_select(d, cond)?;
    stmt.order_by_expr(outbox_col("seq"), sea_query::Order::Asc).limit(u64::from(limit));
    Ok(d.build(&stmt))
}

/// The last position tenant `org` appended: its head (no row before its first event).
#[must_use]
pub fn head_of(d: Dialect, org: &OrgId) -> Built {
    d.statement("SELECT \"last_seq\" FROM \"crm_outbox_heads\" WHERE \"org_id\" = {}", vec![org.as_str().into()])
}

/// How far a consumer is behind in `org` from position `after` (a tenant [`pending_tenants`]
/// found behind), as JSON text `{"events": n, "oldest": <time of the oldest unprocessed event, or
/// null>}`: a range of the `(org_id, seq)` index.
///
/// # Errors
/// A key the dialect cannot write (an internal error).
pub fn lag_in(d: Dialect, org: &str, after: i64) -> Result<Built> {
    let oldest = d.cust("MIN({})", vec![outbox_col("at")]);
    let obj = d.object(vec![
        (d.key("events")?, Expr::cust("CAST(COUNT(*) AS BIGINT)")),
        (d.key("oldest")?, d.json_value(Some(&ScalarType::DateTime), oldest, None)),
    ]);
    let stmt = Query::select()
        .expr(d.json_text(obj))
        .from_as(Alias::new("crm_outbox"), Alias::new("o"))
        .cond_where(outbox_col("org_id").eq(Expr::val(org)).and(outbox_col("seq").gt(Expr::val(after))))
        .to_owned();
    Ok(d.build(&stmt))
}

/// How far a consumer is behind ([`lag_in`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub struct Lag {
    /// Events not processed yet.
    pub events: i64,
    /// When the oldest of them was written.
    pub oldest: Option<DateTime<Utc>>,
}

/// The oldest events after position `after` (every tenant), at most `limit`, as JSON text
/// `{"seq", "org", "at"}`: what retention walks, from the front of the outbox.
///
/// # Errors
/// A key the dialect cannot write (an internal error).
pub fn front(d: Dialect, after: i64, limit: u32) -> Result<Built> {
    let obj = d.object(vec![
        (d.key("seq")?, outbox_col("seq")),
        (d.key("org")?, outbox_col("org_id")),
        (d.key("at")?, d.json_value(Some(&ScalarType::DateTime), outbox_col("at"), None)),
    ]);
    let stmt = Query::select()
        .expr(d.json_text(obj))
        .from_as(Alias::new("crm_outbox"), Alias::new("o"))
        .cond_where(outbox_col("seq").gt(Expr::val(after)))
        .order_by_expr(outbox_col("seq"), sea_query::Order::Asc)
        .limit(u64::from(limit))
        .to_owned();
    Ok(d.build(&stmt))
}

/// An event at the front of the outbox ([`front`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FrontRow {
    /// Its position.
    pub seq: i64,
    /// Its tenant.
    pub org: String,
    /// When it was written.
    pub at: DateTime<Utc>,
}

/// The consumers that moved a position since `since`: those retention waits for, besides the
/// ones the server runs itself.
#[must_use]
pub fn active_consumers(d: Dialect, since: DateTime<Utc>) -> Built {
    let stmt = Query::select()
        .distinct()
        .expr(Expr::cust("CAST(consumer AS TEXT)"))
        .from(Alias::new("crm_event_cursors"))
        .cond_where(Expr::col(Alias::new("updated_at")).gt(d.bind(&Value::DateTime(since))))
        .to_owned();
    d.build(&stmt)
}

/// The positions of `consumers` in `orgs`, as JSON text `{"consumer", "org", "seq"}`.
///
/// # Errors
/// A key the dialect cannot write (an internal error).
pub fn positions(d: Dialect, consumers: &[String], orgs: &[String]) -> Result<Built> {
    let obj = d.object(vec![
        (d.key("consumer")?, Expr::col(Alias::new("consumer"))),
        (d.key("org")?, Expr::col(Alias::new("org_id"))),
        (d.key("seq")?, Expr::col(Alias::new("last_seq"))),
    ]);
    let stmt = Query::select()
        .expr(d.json_text(obj))
        .from(Alias::new("crm_event_cursors"))
        .cond_where(
            Expr::col(Alias::new("consumer"))
                .is_in(consumers.iter().map(|c| Expr::val(c.as_str())))
                .and(Expr::col(Alias::new("org_id")).is_in(orgs.iter().map(|o| Expr::val(o.as_str())))),
        )
        .to_owned();
    Ok(d.build(&stmt))
}

/// A consumer's position in a tenant ([`positions`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Position {
    /// The consumer.
    pub consumer: String,
    /// The tenant.
    pub org: String,
    /// The last position processed.
    pub seq: i64,
}

/// Deletes the events at positions `seqs` (retention; every consumer has passed them). `None`
/// for none.
#[must_use]
pub fn purge(d: Dialect, seqs: &[i64]) -> Option<Built> {
    if seqs.is_empty() {
        return None;
    }
    let stmt = Query::delete()
        .from_table(Alias::new("crm_outbox"))
        .cond_where(Expr::col(Alias::new("seq")).is_in(seqs.iter().map(|s| Expr::val(*s))))
        .to_owned();
    Some(d.build(&stmt))
}

/// Event `seq` of `org`.
///
/// # Errors
/// A key the dialect cannot write (an internal error).
pub fn at(d: Dialect, org: &OrgId, seq: i64) -> Result<Built> {
    let stmt = outbox_select(d, outbox_col("seq").eq(Expr::val(seq)).and(outbox_col("org_id").eq(Expr::val(org.as_str()))))?;
    Ok(d.build(&stmt))
}

fn consumer_row(consumer: &str, org: &OrgId) -> Expr {
    Expr::col(Alias::new("consumer")).eq(Expr::val(consumer)).and(Expr::col(Alias::new("org_id")).eq(Expr::val(org.as_str())))
}

/// Creates `consumer`'s position in `org` at 0, unless it exists.
///
/// # Errors
/// A statement sea-query cannot build (an internal error).
pub fn cursor_init(d: Dialect, consumer: &str, org: &OrgId, now: DateTime<Utc>) -> Result<Built> {
    let stmt = Query::insert()
        .into_table(Alias::new("crm_event_cursors"))
        .columns(["consumer", "org_id", "last_seq", "updated_at"].map(Alias::new))
        .values([Expr::val(consumer), Expr::val(org.as_str()), Expr::val(0), d.bind(&Value::DateTime(now))])
        .map_err(OrmError::statement)?
        .on_conflict(sea_query::OnConflict::columns([Alias::new("consumer"), Alias::new("org_id")]).do_nothing().to_owned())
        .to_owned();
    Ok(d.build(&stmt))
}

/// `consumer`'s position in `org`, as `(consumer, last_seq)`, locked until the transaction ends
/// on PostgreSQL (waiting for another holder).
#[must_use]
pub fn cursor_position(d: Dialect, consumer: &str, org: &OrgId) -> Built {
    cursor_locked(d, consumer, org, false)
}

/// `consumer`'s position row in `org`, locked on PostgreSQL (skipping it when another transaction
/// holds it, with `skip`).
fn cursor_locked(d: Dialect, consumer: &str, org: &OrgId, skip: bool) -> Built {
    let mut stmt = Query::select()
        .expr(Expr::cust("CAST(consumer AS TEXT)"))
        .column(Alias::new("last_seq"))
        .from(Alias::new("crm_event_cursors"))
        .cond_where(consumer_row(consumer, org))
        .to_owned();
    match (d, skip) {
        (Dialect::Postgres, true) => stmt.lock_with_behavior(sea_query::LockType::Update, sea_query::LockBehavior::SkipLocked),
        (Dialect::Postgres, false) => stmt.lock(sea_query::LockType::Update),
        (Dialect::Sqlite, _) => &mut stmt,
    };
    d.build(&stmt)
}

/// `consumer`'s position in `org`, as `(consumer, last_seq)`: on PostgreSQL locked until the
/// transaction ends, and no row when another transaction holds it (`SKIP LOCKED`).
#[must_use]
pub fn cursor_claim(d: Dialect, consumer: &str, org: &OrgId) -> Built {
    cursor_locked(d, consumer, org, true)
}

/// Moves `consumer`'s position in `org` forward to `seq` (never back).
#[must_use]
pub fn cursor_advance(d: Dialect, consumer: &str, org: &OrgId, seq: i64, now: DateTime<Utc>) -> Built {
    let stmt = Query::update()
        .table(Alias::new("crm_event_cursors"))
        .value(Alias::new("last_seq"), Expr::val(seq))
        .value(Alias::new("updated_at"), d.bind(&Value::DateTime(now)))
        .cond_where(consumer_row(consumer, org).and(Expr::col(Alias::new("last_seq")).lt(Expr::val(seq))))
        .to_owned();
    d.build(&stmt)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn change(before: Option<Json>, after: Option<Json>) -> Event {
        Event {
            seq: 0,
            id: Uuid::nil(),
            org: "o".into(),
            kind: "lead.updated".into(),
            model: "Lead".into(),
            record_id: Uuid::nil(),
            actor: None,
            at: Utc::now(),
            before,
            after,
        }
    }

    #[test]
    fn fields_changed_since_a_version() {
        let v = |n: i64, status: &str, score: i64| json!({ "version": n, "status": status, "score": score, "updatedAt": format!("t{n}") });
        let events = [
            change(None, Some(v(1, "NEW", 0))),
            change(Some(v(1, "NEW", 0)), Some(v(2, "CONTACTED", 0))),
            change(Some(v(2, "CONTACTED", 0)), Some(v(3, "CONTACTED", 7))),
        ];
        let set = |names: &[&str]| names.iter().map(|s| (*s).to_owned()).collect::<std::collections::HashSet<_>>();
        assert_eq!(changed_since(&events, 1), Some(set(&["status", "score"])));
        assert_eq!(changed_since(&events, 2), Some(set(&["score"])));
        // Nothing after the current version: nothing changed.
        assert_eq!(changed_since(&events, 3), None, "no change after it: not reached, as for an unknown version");
        // The events no longer reach back to version 1 (retention removed the first change).
        assert_eq!(changed_since(&events[2..], 1), None);
        // A destroyed record.
        assert_eq!(changed_since(&[change(Some(v(1, "NEW", 0)), None)], 0), None);
    }
}
