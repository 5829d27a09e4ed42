//! What the platform's own engines run inside the database: write hooks (tagging, routing) in
//! every write's transaction, multi-step transactions ([`TxWork`]), the transactional outbox every
//! write feeds, the consumers' durable positions and the webhook delivery queue.
//!
//! Ordering: on PostgreSQL a transaction takes its tenant's advisory lock just before it appends
//! its events and keeps it until commit, so a tenant's events are numbered in commit order and a
//! consumer reading a tenant's events by number never skips one that commits late. SQLite's
//! writers are serial already.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use crm_model::{Catalog, FieldName, Model, ModelName, OrgId, ScalarType, Value};
use sea_query::{Alias, Expr, ExprTrait, Query};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use uuid::Uuid;

use super::{Engine, Ex, PageResult, Tx, WriteResult, Writer, classify_retry, id_filter, parse_uuid, read_page};
use crate::auth::{Access, Op, Scoped};
use crate::dialect::Dialect;
use crate::error::{OrmError, Result};
use crate::ir::{Data, Deliveries, Filter, GroupBy, Page, Read, RecordEvents, Selection, StageQuery, Targets, Unique, Write};
use crate::sql::{Builder, Limits};

/// A boxed future of the engine's hooks and transaction work.
pub type TxFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

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

/// A record written in a transaction, as write hooks see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The model.
    pub model: ModelName,
    /// The record.
    pub id: Uuid,
    /// What happened (the first change of the record in the transaction).
    pub kind: EventKind,
}

/// A record's change waiting to be appended to the outbox at the end of its transaction.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    pub(super) written: Written,
    pub(super) before: Option<Json>,
    pub(super) last: EventKind,
}

/// Adds a change to the pending list: one event per record and transaction, with the state
/// before the first change and the kind of the first (a record created and then updated in one
/// transaction is `created`), unless it ends up in the trash or destroyed.
pub(super) fn merge(pending: &mut Vec<Pending>, written: Written, before: Option<Json>) {
    if let Some(p) = pending.iter_mut().find(|p| p.written.model == written.model && p.written.id == written.id) {
        p.last = written.kind;
        if matches!(written.kind, EventKind::Deleted | EventKind::Destroyed | EventKind::Restored) {
            p.written.kind = written.kind;
        }
        return;
    }
    let last = written.kind;
    pending.push(Pending { written, before, last });
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
        OrgId::new(self.org.clone()).map_err(|e| OrmError::Internal(e.to_string()))
    }
}

/// Runs inside every write's transaction after the write itself (before its events are
/// appended): the place of the engines that must see a record the moment it is written, such as
/// tagging and routing. Writes made by a hook do not run hooks again.
pub trait WriteHook: Send + Sync + std::fmt::Debug {
    /// Called with the records the transaction wrote.
    fn after_write<'a>(&'a self, tx: &'a mut TxCtx<'_>, written: &'a [Written]) -> TxFuture<'a, ()>;
}

/// Work run in one transaction by [`Engine::transaction`].
pub trait TxWork: Send + Sync {
    /// What the work returns.
    type Output: Send;
    /// Runs the work.
    fn run<'a>(&'a self, tx: &'a mut TxCtx<'_>) -> TxFuture<'a, Self::Output>;
}

/// Handles one event of the outbox for a consumer ([`Engine::process_event`]).
pub trait EventWork: Send + Sync {
    /// Handles `event` in the transaction that also advances the consumer's position.
    fn handle<'a>(&'a self, tx: &'a mut TxCtx<'_>, event: &'a Event) -> TxFuture<'a, ()>;
}

/// A transaction of the engines, confined to one tenant. Reads and writes act with the
/// platform's own access in that tenant ([`Access::system`]); [`TxCtx::caller_ids`] applies the
/// caller's own row rules, so on-demand work only touches what the caller may touch.
pub struct TxCtx<'t> {
    pub(super) d: Dialect,
    pub(super) cat: Arc<Catalog>,
    pub(super) caller: Access,
    pub(super) system: Access,
    pub(super) limits: Limits,
    pub(super) tx: &'t mut Tx,
    pub(super) hook: Option<Arc<dyn WriteHook>>,
    pub(super) events: Vec<Pending>,
    /// Records written outside hooks, not yet shown to the hook.
    pub(super) written: Vec<Written>,
    pub(super) hooking: bool,
}

/// The largest target set of on-demand work (re-tagging, routing) in one call.
pub const MAX_TARGETS: usize = 10_000;

impl<'t> TxCtx<'t> {
    /// The tenant.
    #[must_use]
    pub fn org(&self) -> &OrgId {
        self.system.org()
    }
    /// The catalog served.
    #[must_use]
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.cat
    }
    /// The caller on whose behalf the work runs.
    #[must_use]
    pub fn caller(&self) -> &Access {
        &self.caller
    }
    /// The backend.
    #[must_use]
    pub fn dialect(&self) -> Dialect {
        self.d
    }

    /// The model `name`.
    ///
    /// # Errors
    /// An unknown model.
    pub fn model(&self, name: &str) -> Result<Arc<Model>> {
        self.cat.model(name).cloned().ok_or_else(|| OrmError::bad("model", format!("unknown model `{name}`")))
    }

    /// The engines read whole rule sets and member lists, beyond the API's page limit.
    fn wide_limits(&self) -> Limits {
        Limits { default_page: self.limits.default_page, max_page: std::cmp::max(self.limits.max_page, 100_000) }
    }

    fn writer(&mut self) -> Writer<'_> {
        Writer {
            d: self.d,
            cat: &self.cat,
            access: &self.system,
            tenant: true,
            limits: self.limits,
            tx: &mut *self.tx,
            events: Vec::new(),
            hook: None,
        }
    }

    /// Reads a page of the tenant's rows (every row, every field).
    ///
    /// # Errors
    /// Bad arguments, database failures.
    pub async fn read(&mut self, q: &Read) -> Result<PageResult> {
        let limits = self.wide_limits();
        read_page(self.d, &self.cat, &self.system, true, limits, &mut *self.tx, q, false).await?.decoded()
    }

    /// Every record of `model` matching `filter` (at most `limit`), all stored fields.
    ///
    /// # Errors
    /// Bad arguments, database failures.
    pub async fn find_all(&mut self, model: &Model, filter: Filter, limit: u32) -> Result<Vec<Json>> {
        let mut read = Read::new(model);
        read.filter = filter;
        read.page = Page { first: Some(limit), ..Page::default() };
        Ok(self.read(&read).await?.rows)
    }

    /// Groups the tenant's rows.
    ///
    /// # Errors
    /// Bad arguments, database failures.
    pub async fn group_by(&mut self, q: &GroupBy) -> Result<Vec<Json>> {
        let d = self.d;
        let stmt = Builder::new(d, &self.cat, &self.system, self.wide_limits()).group_by(q)?;
        let rows = self.tx.ex().texts(d.build(&stmt)).await?;
        rows.iter().map(|t| serde_json::from_str(t).map_err(|e| OrmError::Internal(format!("group JSON: {e}")))).collect()
    }

    /// Which of records `ids` of `model` match `filter`.
    ///
    /// # Errors
    /// Bad filters, database failures.
    pub async fn matching(&mut self, model: &Model, ids: &[Uuid], filter: &Filter) -> Result<Vec<Uuid>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let f = Filter::and(vec![id_filter(ids)?, filter.clone()]);
        let stmt = Builder::new(self.d, &self.cat, &self.system, self.limits).target_ids(model, &f, Op::Read, &[], None)?;
        self.tx.ex().ids(self.d.build(&stmt)).await?.into_iter().map(|(id, _)| parse_uuid(&id)).collect()
    }

    /// Scopes on-demand work to the caller: the records of `model` matching the caller's
    /// `filter` (checked against their field denials) and the engine's own `platform` condition,
    /// which the caller must be granted `op` on.
    ///
    /// # Errors
    /// `Forbidden` without a grant of `op` or for a denied field in `filter`.
    pub fn caller_targets(&self, model: &Model, op: Op, filter: Filter, platform: Filter) -> Result<Scoped<Targets>> {
        self.caller.scope(&self.cat, &model.name, op, Targets { model: model.name.clone(), op, filter, platform })
    }

    /// The ids of the targets `q` names (their tenant, row rules and filters, as GraphQL applies
    /// them), at most [`MAX_TARGETS`].
    ///
    /// # Errors
    /// `Forbidden` for a scope of another tenant; `LimitExceeded` above [`MAX_TARGETS`]; bad
    /// filters.
    pub async fn caller_ids(&mut self, q: &Scoped<Targets>) -> Result<Vec<Uuid>> {
        if q.access.org() != self.org() {
            return Err(OrmError::Forbidden("the targets belong to another tenant".to_owned()));
        }
        let t = &q.query;
        let model = self.model(t.model.as_str())?;
        let page = Page { first: Some(u32::try_from(MAX_TARGETS).unwrap_or(u32::MAX)), ..Page::default() };
        let limits = Limits { default_page: self.limits.default_page, max_page: u32::try_from(MAX_TARGETS).unwrap_or(u32::MAX) };
        let filter = Filter::and(vec![t.filter.clone(), t.platform.clone()]);
        let stmt = Builder::new(self.d, &self.cat, &q.access, limits).target_ids(&model, &filter, t.op, &[], Some(&page))?;
        let rows = self.tx.ex().ids(self.d.build(&stmt)).await?;
        if rows.len() > MAX_TARGETS {
            return Err(OrmError::Limit(format!("more than {MAX_TARGETS} {} records match; narrow the filter", model.name)));
        }
        rows.into_iter().map(|(id, _)| parse_uuid(&id)).collect()
    }

    /// Writes as the platform in the tenant; the write's records get events, and (outside a
    /// hook) are shown to the write hook when the work ends.
    ///
    /// # Errors
    /// As [`Engine::write`].
    pub async fn write(&mut self, w: &Write, select: &Selection) -> Result<WriteResult> {
        let hooking = self.hooking;
        let mut wr = self.writer();
        let out = wr.run(w, select).await;
        let pending = std::mem::take(&mut wr.events);
        drop(wr);
        let out = out?;
        for p in pending {
            if !hooking && !self.written.iter().any(|x| x.model == p.written.model && x.id == p.written.id) {
                self.written.push(p.written.clone());
            }
            merge(&mut self.events, p.written.clone(), p.before.clone());
        }
        Ok(out)
    }

    /// Creates a `model` record from `input` (the JSON of its create input) and returns its id.
    ///
    /// # Errors
    /// Bad input (naming `data.<field>`); as [`TxCtx::write`].
    pub async fn create(&mut self, model: &str, input: &Json) -> Result<Uuid> {
        let m = self.model(model)?;
        let data = Data::parse(&self.cat, &m, input, "data")?;
        let select =
            Selection { fields: vec![FieldName::new("id").map_err(|e| OrmError::Internal(e.to_string()))?], ..Selection::default() };
        match self.write(&Write::Create { model: m.name.clone(), data }, &select).await? {
            WriteResult::One(Some(row)) => row
                .get("id")
                .and_then(Json::as_str)
                .map(parse_uuid)
                .transpose()?
                .ok_or_else(|| OrmError::Internal("created record without id".to_owned())),
            _ => Err(OrmError::Internal("create returned no record".to_owned())),
        }
    }

    /// Updates record `id` of `model` with `input` (the JSON of its update input).
    ///
    /// # Errors
    /// Bad input (naming `data.<field>`); as [`TxCtx::write`].
    pub async fn update(&mut self, model: &str, id: Uuid, input: &Json) -> Result<()> {
        let m = self.model(model)?;
        let data = Data::parse(&self.cat, &m, input, "data")?;
        self.write(&Write::Update { model: m.name.clone(), target: Unique::Id(id), data, expected_version: None }, &Selection::default())
            .await?;
        Ok(())
    }

    /// Locks record `id` of `model` until the transaction ends (PostgreSQL `FOR UPDATE`; SQLite's
    /// write transactions are serial already): how a durable pointer such as a round-robin
    /// position stays correct under concurrent writers.
    ///
    /// # Errors
    /// Database failures.
    pub async fn lock(&mut self, model: &Model, id: Uuid) -> Result<()> {
        if self.d != Dialect::Postgres {
            return Ok(());
        }
        let stmt = Query::select()
            .expr(Expr::cust("1"))
            .from(Alias::new(model.table.as_str()))
            .cond_where(
                Expr::col(Alias::new("org_id"))
                    .eq(Expr::val(self.org().as_str()))
                    .and(Expr::col(Alias::new("id")).eq(self.d.bind(&Value::Uuid(id)))),
            )
            .lock(sea_query::LockType::Update)
            .to_owned();
        self.tx.ex().execute(self.d.build(&stmt)).await?;
        Ok(())
    }

    /// Serializes transactions of this tenant that take the same `key` (PostgreSQL advisory
    /// transaction lock; SQLite's write transactions are serial already).
    ///
    /// # Errors
    /// Database failures.
    pub async fn lock_key(&mut self, key: &str) -> Result<()> {
        let org = self.org().as_str().to_owned();
        advisory_lock(self.tx, self.d, &format!("{org}\u{1f}{key}")).await
    }

    /// Queues the delivery of outbox event `event_seq` to webhook `webhook` (once per pair).
    ///
    /// # Errors
    /// Database failures.
    pub async fn enqueue_delivery(&mut self, webhook: Uuid, event_seq: i64, event_type: &str) -> Result<()> {
        let d = self.d;
        let now = Value::DateTime(Utc::now());
        let stmt = Query::insert()
            .into_table(Alias::new("crm_deliveries"))
            .columns(
                ["id", "org_id", "webhook_id", "event_seq", "event_type", "status", "attempts", "next_at", "created_at"].map(Alias::new),
            )
            .values([
                d.bind(&Value::Uuid(Uuid::now_v7())),
                Expr::val(self.org().as_str()),
                d.bind(&Value::Uuid(webhook)),
                Expr::val(event_seq),
                Expr::val(event_type),
                Expr::val("PENDING"),
                Expr::val(0),
                d.bind(&now),
                d.bind(&now),
            ])
            .map_err(|e| OrmError::Internal(e.to_string()))?
            .on_conflict(sea_query::OnConflict::columns([Alias::new("webhook_id"), Alias::new("event_seq")]).do_nothing().to_owned())
            .to_owned();
        self.tx.ex().execute(d.build(&stmt)).await?;
        Ok(())
    }

    /// Shows the records written so far to the write hook (once), then appends every pending
    /// event to the outbox. Called once, at the end of the transaction.
    pub(super) async fn finish(&mut self) -> Result<()> {
        if let Some(hook) = self.hook.clone() {
            let written = std::mem::take(&mut self.written);
            if !written.is_empty() {
                self.hooking = true;
                let out = hook.after_write(self, &written).await;
                self.hooking = false;
                out?;
            }
        }
        self.flush().await
    }

    async fn flush(&mut self) -> Result<()> {
        if self.events.is_empty() {
            return Ok(());
        }
        let d = self.d;
        let org = self.org().as_str().to_owned();
        let events = std::mem::take(&mut self.events);
        // The after states, one read per model and trash side.
        let mut after: HashMap<(ModelName, Uuid), Json> = HashMap::new();
        let mut groups: HashMap<(ModelName, bool), Vec<Uuid>> = HashMap::new();
        for p in &events {
            let trash = match p.last {
                EventKind::Destroyed => continue,
                EventKind::Deleted => true,
                _ => false,
            };
            groups.entry((p.written.model.clone(), trash)).or_default().push(p.written.id);
        }
        for ((model, trash), ids) in groups {
            let m = self.model(model.as_str())?;
            for row in snapshot(d, &self.cat, &self.system, self.limits, self.tx, &m, &ids, trash).await? {
                if let Some(id) = row.get("id").and_then(Json::as_str).and_then(|s| Uuid::parse_str(s).ok()) {
                    after.insert((model.clone(), id), row);
                }
            }
        }
        advisory_lock(self.tx, d, &org).await?;
        let now = Value::DateTime(Utc::now());
        let actor = self.system.actor().to_owned();
        let mut stmt = Query::insert();
        stmt.into_table(Alias::new("crm_outbox"))
            .columns(["org_id", "event_id", "type", "model", "record_id", "actor", "at", "payload"].map(Alias::new));
        for p in &events {
            let kind =
                if p.written.kind == EventKind::Created && p.last == EventKind::Destroyed { EventKind::Destroyed } else { p.written.kind };
            let payload = json!({
                "before": p.before,
                "after": if p.last == EventKind::Destroyed { None } else { after.get(&(p.written.model.clone(), p.written.id)) },
            });
            stmt.values([
                Expr::val(org.as_str()),
                d.bind(&Value::Uuid(Uuid::now_v7())),
                Expr::val(event_type(p.written.model.as_str(), kind)),
                Expr::val(p.written.model.as_str()),
                d.bind(&Value::Uuid(p.written.id)),
                Expr::val(actor.as_str()),
                d.bind(&now),
                d.bind(&Value::Json(payload)),
            ])
            .map_err(|e| OrmError::Internal(e.to_string()))?;
        }
        self.tx.ex().execute(d.build(&stmt)).await?;
        Ok(())
    }
}

/// On PostgreSQL, an advisory transaction lock on `key`.
async fn advisory_lock(tx: &mut Tx, d: Dialect, key: &str) -> Result<()> {
    if let (Dialect::Postgres, Ex::Pg(c)) = (d, tx.ex()) {
        super::counted();
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 7215))").bind(key).execute(&mut *c).await?;
    }
    Ok(())
}

/// Every stored field of records `ids` of `model` (live or in the trash), read as the platform.
pub(super) async fn snapshot(
    d: Dialect,
    cat: &Catalog,
    system: &Access,
    limits: Limits,
    tx: &mut Tx,
    model: &Model,
    ids: &[Uuid],
    trash: bool,
) -> Result<Vec<Json>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let n = u32::try_from(ids.len()).unwrap_or(u32::MAX);
    let mut read = Read::new(model);
    read.filter = id_filter(ids)?;
    read.page = Page { first: Some(n), ..Page::default() };
    read.trash = trash;
    let limits = Limits { default_page: limits.default_page, max_page: std::cmp::max(n, limits.max_page) };
    Ok(read_page(d, cat, system, true, limits, tx, &read, false).await?.decoded()?.rows)
}

/// A webhook delivery due now, claimed by one deliverer for a while.
#[derive(Debug, Clone, PartialEq, Eq)]
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

impl Engine {
    /// Runs `work` in one transaction in the caller's tenant, then the write hook on what it
    /// wrote, then appends its events. A serialization failure is retried.
    ///
    /// # Errors
    /// What the work returns; database failures.
    pub async fn transaction<W: TxWork>(&self, caller: &Access, work: &W) -> Result<W::Output> {
        let mut attempt = 0;
        loop {
            match self.transaction_once(caller, work).await {
                Err(OrmError::Database(e)) if classify_retry(&e) && attempt < 3 => attempt += 1,
                other => return other,
            }
        }
    }

    async fn transaction_once<W: TxWork>(&self, caller: &Access, work: &W) -> Result<W::Output> {
        let mut tx = self.begin().await?;
        tx.ex().set_orgs(true, caller.org(), &[]).await?;
        let mut ctx = self.ctx(&mut tx, caller.clone(), caller.actor());
        let out = work.run(&mut ctx).await?;
        ctx.finish().await?;
        drop(ctx);
        tx.commit().await?;
        Ok(out)
    }

    pub(super) fn ctx<'t>(&self, tx: &'t mut Tx, caller: Access, actor: &str) -> TxCtx<'t> {
        let system = Access::system(&self.catalog, caller.org().clone(), actor);
        TxCtx {
            d: self.dialect(),
            cat: Arc::clone(&self.catalog),
            caller,
            system,
            limits: self.limits,
            tx,
            hook: self.hook.clone(),
            events: Vec::new(),
            written: Vec::new(),
            hooking: false,
        }
    }

    /// The events of one record the caller may read (their tenant and the model's read rule; a
    /// record in the trash counts), oldest first, at most `first`; the fields the caller may
    /// not read are left out of `before` and `after`. An invisible record has no events.
    ///
    /// # Errors
    /// Database failures.
    pub async fn record_events(&self, q: &Scoped<RecordEvents>) -> Result<Vec<Event>> {
        let d = self.dialect();
        let m = self.catalog.model(q.query.model.as_str()).cloned().ok_or_else(|| OrmError::bad("model", "unknown model"))?;
        let mut conn = self.acquire().await?;
        conn.ex().set_tenant(false, &q.access).await?;
        let record = d.bind(&Value::Uuid(q.query.record));
        // Visible live or in the trash: one statement over both sides.
        let side = |trash: bool| {
            Builder::with_tenant_predicate(d, &self.catalog, &q.access, q.tenant_predicate, self.limits).in_trash(trash).visible_ids(
                &m,
                &Filter::ids(&[q.query.record])?,
                Op::Read,
            )
        };
        let mut ids = side(false)?;
        ids.union(sea_query::UnionType::All, side(true)?);
        let count = Query::select().expr(Expr::cust("CAST(COUNT(*) AS BIGINT)")).from_subquery(ids, Alias::new("v")).to_owned();
        if conn.ex().scalar_i64(d.build(&count)).await? == 0 {
            return Ok(Vec::new());
        }
        let mut cond = outbox_col("model").eq(Expr::val(m.name.as_str())).and(outbox_col("record_id").eq(record));
        if q.tenant_predicate {
            cond = outbox_col("org_id").eq(Expr::val(q.access.org().as_str())).and(cond);
        }
        let mut stmt = outbox_select(d, cond)?;
        stmt.order_by_expr(outbox_col("seq"), sea_query::Order::Asc).limit(u64::from(q.query.first));
        let rows = conn.ex().texts(d.build(&stmt)).await?;
        let denied: Vec<String> = q.access.denied_reads(&m.name).into_iter().map(ToString::to_string).collect();
        rows.iter()
            .map(|t| {
                let mut e = event_from_text(t)?;
                for side in [&mut e.before, &mut e.after] {
                    if let Some(Json::Object(o)) = side {
                        o.retain(|k, _| !denied.iter().any(|f| f == k));
                    }
                }
                Ok(e)
            })
            .collect()
    }

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
        let (access, webhook, first) = (&q.access, q.query.webhook, q.query.first);
        let d = self.dialect();
        let hooks = self.catalog.model("Webhook").cloned().ok_or_else(|| OrmError::bad("model", "no Webhook model"))?;
        let visible = Builder::with_tenant_predicate(d, &self.catalog, access, q.tenant_predicate, self.limits).visible_ids(
            &hooks,
            &Filter::True,
            Op::Read,
        )?;
        let c = |n: &str| Expr::col(Alias::new(n));
        let dt = |n: &str| d.json_value(Some(&ScalarType::DateTime), Expr::col(Alias::new(n)), None);
        let obj = d.object(vec![
            (d.key("id")?, d.json_value(Some(&ScalarType::Id), c("id"), None)),
            (d.key("webhook")?, d.json_value(Some(&ScalarType::Id), c("webhook_id"), None)),
            (d.key("eventSeq")?, c("event_seq")),
            (d.key("eventType")?, c("event_type")),
            (d.key("status")?, c("status")),
            (d.key("attempts")?, c("attempts")),
            (d.key("lastStatus")?, c("last_status")),
            (d.key("lastError")?, c("last_error")),
            (d.key("nextAttemptAt")?, dt("next_at")),
            (d.key("createdAt")?, dt("created_at")),
            (d.key("deliveredAt")?, dt("delivered_at")),
        ]);
        let mut cond = c("webhook_id").in_subquery(visible);
        if q.tenant_predicate {
            cond = c("org_id").eq(Expr::val(access.org().as_str())).and(cond);
        }
        if let Some(w) = webhook {
            cond = cond.and(c("webhook_id").eq(d.bind(&Value::Uuid(w))));
        }
        let stmt = Query::select()
            .expr(d.json_text(obj))
            .from(Alias::new("crm_deliveries"))
            .cond_where(cond)
            .order_by(Alias::new("created_at"), sea_query::Order::Desc)
            .order_by(Alias::new("event_seq"), sea_query::Order::Desc)
            .limit(u64::from(std::cmp::min(first, self.limits.max_page)))
            .to_owned();
        let mut conn = self.acquire().await?;
        let rows = conn.ex().texts(super::session_read(d, &stmt, access)).await?;
        rows.iter().map(|t| serde_json::from_str(t).map_err(|e| OrmError::Internal(format!("delivery JSON: {e}")))).collect()
    }
}

/// A column of the outbox, aliased `o`.
pub(super) fn outbox_col(c: &str) -> Expr {
    Expr::col((Alias::new("o"), Alias::new(c)))
}

/// `SELECT <event as JSON text> FROM crm_outbox o WHERE cond`.
pub(super) fn outbox_select(d: Dialect, cond: Expr) -> Result<sea_query::SelectStatement> {
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

pub(super) fn event_from_text(t: &str) -> Result<Event> {
    let mut j: Json = serde_json::from_str(t).map_err(|e| OrmError::Internal(format!("event JSON: {e}")))?;
    let payload = j.get_mut("payload").map(Json::take).unwrap_or(Json::Null);
    if let Some(o) = j.as_object_mut() {
        o.insert("before".into(), payload.get("before").cloned().unwrap_or(Json::Null));
        o.insert("after".into(), payload.get("after").cloned().unwrap_or(Json::Null));
    }
    serde_json::from_value(j).map_err(|e| OrmError::Internal(format!("event JSON: {e}")))
}

/// Stage statistics of one stage field, from its transition log.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StageStats {
    /// Per stage of `order`: how many live records got at least that far (their furthest stage
    /// in `order` is it or a later one).
    pub reached: Vec<(String, i64)>,
    /// Per stage (every stage seen): stays completed, their average length in seconds, and
    /// records in the stage now.
    pub stays: Vec<StageStay>,
}

/// Time spent in one stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StageStay {
    /// The stage.
    pub stage: String,
    /// Stays that ended (the record moved on).
    pub completed: i64,
    /// Their average length.
    pub average_seconds: Option<f64>,
    /// Records in the stage now.
    pub current: i64,
}

impl Engine {
    /// Funnel and time-in-stage statistics of a stage field over the live records the caller may
    /// read (trashed ones left out), in the funnel order of the query.
    ///
    /// # Errors
    /// An unknown model; database failures.
    pub async fn stage_stats(&self, q: &Scoped<StageQuery>) -> Result<StageStats> {
        let access = &q.access;
        let (model, field) = (q.query.model.as_str(), q.query.field.as_str());
        let order: Vec<&str> = q.query.order.iter().map(String::as_str).collect();
        let m = self.catalog.model(model).cloned().ok_or_else(|| OrmError::bad("model", format!("unknown model `{model}`")))?;
        let d = self.dialect();
        let t = || Alias::new("t");
        let col = |c: &str| Expr::col((t(), Alias::new(c)));
        // The live records the caller may read: tenant, trash and row rule from the one scope.
        let live = Builder::new(d, &self.catalog, access, self.limits).visible_ids(&m, &Filter::True, Op::Read)?;
        let base = col("org_id")
            .eq(Expr::val(access.org().as_str()))
            .and(col("model").eq(Expr::val(m.name.as_str())))
            .and(col("field").eq(Expr::val(field)))
            .and(col("record_id").in_subquery(live));
        // Furthest stage per record, then records per furthest stage.
        let mut case = String::from("CASE {}");
        let mut args = vec![col("stage")];
        for (i, s) in order.iter().enumerate() {
            case.push_str(&format!(" WHEN {{}} THEN {i}"));
            args.push(Expr::val(*s));
        }
        case.push_str(" ELSE -1 END");
        let per_record = Query::select()
            .expr_as(d.cust("CAST(MAX({}) AS BIGINT)", vec![d.cust(&case, args)]), Alias::new("furthest"))
            .from_as(Alias::new("crm_stage_transitions"), t())
            .cond_where(base.clone())
            .group_by_col((t(), Alias::new("record_id")))
            .to_owned();
        let x = || Alias::new("x");
        let furthest = Query::select()
            .expr(Expr::cust("CAST('' AS TEXT)"))
            .expr(Expr::col((x(), Alias::new("furthest"))))
            .from_subquery(per_record, x())
            .to_owned();
        let mut conn = self.acquire().await?;
        let rows = conn.ex().ids(super::session_read(d, &furthest, access)).await?;
        let mut reached = Vec::with_capacity(order.len());
        for (i, s) in order.iter().enumerate() {
            let i = i64::try_from(i).unwrap_or(i64::MAX);
            reached.push(((*s).to_owned(), i64::try_from(rows.iter().filter(|(_, f)| *f >= i).count()).unwrap_or(0)));
        }
        let secs = d.seconds_between(col("entered_at"), col("exited_at"));
        let obj = d.object(vec![
            (d.key("stage")?, col("stage")),
            (d.key("completed")?, d.cust("SUM(CASE WHEN {} IS NOT NULL THEN 1 ELSE 0 END)", vec![col("exited_at")])),
            (d.key("averageSeconds")?, d.cust("AVG({})", vec![secs])),
            (d.key("current")?, d.cust("SUM(CASE WHEN {} IS NULL THEN 1 ELSE 0 END)", vec![col("exited_at")])),
        ]);
        let stays = Query::select()
            .expr(d.json_text(obj))
            .from_as(Alias::new("crm_stage_transitions"), t())
            .cond_where(base)
            .group_by_col((t(), Alias::new("stage")))
            .to_owned();
        let mut out = Vec::new();
        for text in conn.ex().texts(super::session_read(d, &stays, access)).await? {
            let j: Json = serde_json::from_str(&text).map_err(|e| OrmError::Internal(format!("stage JSON: {e}")))?;
            out.push(StageStay {
                stage: j.get("stage").and_then(Json::as_str).unwrap_or_default().to_owned(),
                completed: j.get("completed").and_then(Json::as_f64).map_or(0, |v| v as i64),
                average_seconds: j.get("averageSeconds").and_then(Json::as_f64),
                current: j.get("current").and_then(Json::as_f64).map_or(0, |v| v as i64),
            });
        }
        out.sort_by_key(|s| order.iter().position(|o| *o == s.stage).unwrap_or(usize::MAX));
        Ok(StageStats { reached, stays: out })
    }
}
