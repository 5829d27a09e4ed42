//! The engines' transactions: write hooks (tagging, routing) in every write's transaction,
//! multi-step work ([`TxWork`]) and event handlers ([`EventWork`]) run in a [`TxCtx`], the one
//! write context every write runs in (see [`super::write`]); its events go to the outbox when it
//! ends ([`super::outbox`]).
//!
//! Ordering: on PostgreSQL a transaction takes its tenant's advisory lock just before it appends
//! its events and keeps it until commit, so a tenant's events are numbered in commit order and a
//! consumer reading a tenant's events by number never skips one that commits late. SQLite's
//! writers are serial already.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crm_model::{Catalog, FieldName, Model, ModelName, OrgId};
use serde_json::Value as Json;
use uuid::Uuid;

use super::pool::{ExecutorSource, Tx};
use super::read::read_page;
use super::{Store, parse_uuid, retried};
use crate::authorization::{Access, Scoped};
use crate::error::{OrmError, Result, decode_json};
use crate::ir::Op;
use crate::ir::{Filter, GroupBy, Page, Read, Selection, Targets};
use crate::page::PageResult;
use crate::sql::dialect::Dialect;
use crate::sql::events::{Event, EventKind};
use crate::sql::{Builder, Limits, locks, write};

/// A boxed future of the store's hooks and transaction work.
pub type TxFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

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

/// The changes waiting to become events, one per record, in the order of their first change
/// (indexed by record: a batch of thousands merges in linear time).
#[derive(Debug, Default)]
pub(super) struct PendingEvents {
    list: Vec<Pending>,
    at: HashMap<(ModelName, Uuid), usize>,
}

impl PendingEvents {
    /// Adds a change: one event per record and transaction, with the state before the first
    /// change and the kind of the first (a record created and then updated in one transaction
    /// is `created`), unless it ends up in the trash or destroyed.
    pub(super) fn merge(&mut self, written: Written, before: Option<Json>) {
        if let Some(p) = self.at.get(&(written.model.clone(), written.id)).and_then(|i| self.list.get_mut(*i)) {
            p.last = written.kind;
            if matches!(written.kind, EventKind::Deleted | EventKind::Destroyed | EventKind::Restored) {
                p.written.kind = written.kind;
            }
            return;
        }
        self.at.insert((written.model.clone(), written.id), self.list.len());
        let last = written.kind;
        self.list.push(Pending { written, before, last });
    }

    /// Whether record `id` of `model` has a change here.
    pub(super) fn contains(&self, model: &ModelName, id: Uuid) -> bool {
        self.at.contains_key(&(model.clone(), id))
    }

    pub(super) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub(super) fn iter(&self) -> std::slice::Iter<'_, Pending> {
        self.list.iter()
    }

    /// The changes, in order, leaving none.
    pub(super) fn take(&mut self) -> Vec<Pending> {
        self.at.clear();
        std::mem::take(&mut self.list)
    }
}

/// Runs inside every write's transaction after the write itself (before its events are
/// appended): the place of the engines that must see a record the moment it is written, such as
/// tagging and routing. Writes made by a hook do not run hooks again.
pub trait WriteHook: Send + Sync + std::fmt::Debug {
    /// Called with the records the transaction wrote.
    fn after_write<'a>(&'a self, tx: &'a mut TxCtx<'_>, written: &'a [Written]) -> TxFuture<'a, ()>;
}

/// Work run in one transaction by [`Store::transaction`].
pub trait TxWork: Send + Sync {
    /// What the work returns.
    type Output: Send;
    /// Runs the work.
    fn run<'a>(&'a self, tx: &'a mut TxCtx<'_>) -> TxFuture<'a, Self::Output>;
}

/// Handles one event of the outbox for a consumer ([`Store::process_event`]).
pub trait EventWork: Send + Sync {
    /// Handles `event` in the transaction that also advances the consumer's position.
    fn handle<'a>(&'a self, tx: &'a mut TxCtx<'_>, event: &'a Event) -> TxFuture<'a, ()>;
}

/// Publishes a tenant's events elsewhere for [`crate::CrossTenant::send_events`].
pub trait SendEvents: Send + Sync {
    /// Sends `events` (oldest first) and returns the position of the last one the receiver
    /// accepted such that every earlier one was accepted too (`None`: none was).
    fn send<'a>(&'a self, events: &'a [Event]) -> TxFuture<'a, Option<i64>>;
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
    pub(super) events: PendingEvents,
    /// Records written outside hooks, not yet shown to the hook.
    pub(super) written: Vec<Written>,
    /// The records in `written`.
    pub(super) written_at: std::collections::HashSet<(ModelName, Uuid)>,
    pub(super) hooking: bool,
}

/// The largest target set of on-demand work (re-tagging, routing) in one call.
pub const MAX_TARGETS: usize = 10_000;

impl TxCtx<'_> {
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
        read.cursors = false;
        Ok(self.read(&read).await?.rows)
    }

    /// Like [`TxCtx::find_all`], with only `fields` of each record (and its `id`): for bulk
    /// look-ups that need a key or two of many records.
    ///
    /// # Errors
    /// An unknown field; as [`TxCtx::find_all`].
    pub async fn find_fields(&mut self, model: &Model, filter: Filter, fields: &[&str], limit: u32) -> Result<Vec<Json>> {
        let mut read = Read::new(model);
        read.filter = filter;
        read.page = Page { first: Some(limit), ..Page::default() };
        read.cursors = false;
        let mut names = vec![FieldName::new("id").map_err(|e| OrmError::invariant(e.to_string()))?];
        for f in fields {
            let field = model.field(f).ok_or_else(|| OrmError::bad("fields", format!("unknown field `{f}` of {}", model.name)))?;
            names.push(field.name.clone());
        }
        read.select = Selection { fields: names, ..Selection::default() };
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
        rows.iter().map(|t| decode_json("group row", t)).collect()
    }

    /// Which of records `ids` of `model` match `filter`.
    ///
    /// # Errors
    /// Bad filters, database failures.
    pub async fn matching(&mut self, model: &Model, ids: &[Uuid], filter: &Filter) -> Result<Vec<Uuid>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let f = Filter::and(vec![Filter::ids(ids)?, filter.clone()]);
        let stmt = Builder::new(self.d, &self.cat, &self.system, self.limits).target_ids(model, &f, Op::Read, &[], None)?;
        self.tx.ex().ids(self.d.build(&stmt)).await?.into_iter().map(|(id, _)| parse_uuid(&id)).collect()
    }

    /// Scopes on-demand work to the caller: the records of `model` matching the caller's
    /// `filter` (checked against their field denials) and the store's own `platform` condition,
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

    /// Locks record `id` of `model` until the transaction ends (PostgreSQL `FOR UPDATE`; SQLite's
    /// write transactions are serial already): how a durable pointer such as a round-robin
    /// position stays correct under concurrent writers.
    ///
    /// # Errors
    /// Database failures.
    pub async fn lock(&mut self, model: &Model, id: Uuid) -> Result<()> {
        let stmt = write::lock(self.d, model, self.system.org(), id);
        self.tx.ex().execute_some(stmt).await
    }

    /// Serializes transactions of this tenant that take the same `key` (PostgreSQL advisory
    /// transaction lock; SQLite's write transactions are serial already).
    ///
    /// # Errors
    /// Database failures.
    pub async fn lock_key(&mut self, key: &str) -> Result<()> {
        let stmt = locks::key(self.d, &format!("{}\u{1f}{key}", self.org()));
        self.tx.ex().execute_some(stmt).await
    }

    /// Shows the records written so far to the write hook (once), then appends every pending
    /// event to the outbox. Called once, at the end of the transaction; returns how many events
    /// it appended (after the commit, [`Store::wake_consumers`] wakes the consumers when some were).
    pub(super) async fn finish(&mut self) -> Result<usize> {
        if let Some(hook) = self.hook.clone() {
            let written = std::mem::take(&mut self.written);
            self.written_at.clear();
            if !written.is_empty() {
                self.hooking = true;
                let out = hook.after_write(self, &written).await;
                self.hooking = false;
                out?;
            }
        }
        self.flush().await
    }

    /// Every stored field of records `ids` of `model` (live or in the trash), read as the
    /// platform.
    pub(super) async fn snapshot(&mut self, model: &Model, ids: &[Uuid], trash: bool) -> Result<Vec<Json>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let n = u32::try_from(ids.len()).unwrap_or(u32::MAX);
        let mut read = Read::new(model);
        read.filter = Filter::ids(ids)?;
        read.page = Page { first: Some(n), ..Page::default() };
        read.trash = trash;
        read.cursors = false;
        let limits = Limits { default_page: self.limits.default_page, max_page: std::cmp::max(n, self.limits.max_page) };
        Ok(read_page(self.d, &self.cat, &self.system, true, limits, self.tx, &read, false).await?.decoded()?.rows)
    }
}

impl Store {
    /// Runs `work` in one transaction in the caller's tenant, then the write hook on what it
    /// wrote, then appends its events. A serialization failure is retried.
    ///
    /// # Errors
    /// What the work returns; database failures.
    pub async fn transaction<W: TxWork>(&self, caller: &Access, work: &W) -> Result<W::Output> {
        retried(|| self.transaction_once(caller, work)).await
    }

    async fn transaction_once<W: TxWork>(&self, caller: &Access, work: &W) -> Result<W::Output> {
        let mut tx = self.begin().await?;
        tx.ex().set_orgs(true, caller.org(), &[]).await?;
        let mut ctx = self.ctx(&mut tx, caller.clone(), caller.actor());
        let out = work.run(&mut ctx).await?;
        let appended = ctx.finish().await?;
        drop(ctx);
        tx.commit().await?;
        self.wake_consumers(appended);
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
            events: PendingEvents::default(),
            written: Vec::new(),
            written_at: std::collections::HashSet::new(),
            hooking: false,
        }
    }
}
