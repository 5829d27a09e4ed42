//! Writes: the one write context ([`TxCtx`]) a write runs in, whether a request's
//! ([`Store::write`], then the write hook) or a store's ([`TxCtx::write`]). A [`Writer`] is
//! one write inside it: it finds its targets with the caller's scope, runs the statements of
//! [`crate::sql::write`], and notes every record it changes (with its state before) for the
//! outbox.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::Utc;
use crm_model::{Catalog, Field, FieldKind, FieldName, Model, ModelName, OnDelete, Value};
use serde_json::Value as Json;
use uuid::Uuid;

use super::pool::ExecutorSource;
use super::read::read_page;
use super::tx::{Pending, PendingEvents, TxCtx, Written};
use super::{Store, WriteResult, db_error, parse_uuid, retried};
use crate::authorization::{Access, Scoped};
use crate::error::{OrmError, Result};
use crate::ir::Op;
use crate::ir::{Data, FieldWrite, Filter, FilterOp, Operand, OrderBy, Page, Read, Selection, ToManyWrite, ToOneWrite, Unique, Write};
use crate::page::PageResult;
use crate::sql::dialect::Dialect;
use crate::sql::events::{self, EventKind};
use crate::sql::search;
use crate::sql::write::{self, Sets, Stamp};
use crate::sql::{Builder, Limits, audit};

impl Store {
    /// Runs a write in one transaction and returns the written record(s) as `select` describes.
    /// Any failure, nested writes included, rolls everything back.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`, `Unique`, `Version`, `Referenced`, bad input, database failures.
    pub async fn write(&self, w: &Scoped<Write>, select: &Selection) -> Result<WriteResult> {
        retried(|| self.write_once(w, select)).await
    }

    async fn write_once(&self, w: &Scoped<Write>, select: &Selection) -> Result<WriteResult> {
        let mut tx = self.begin().await?;
        tx.ex().set_tenant(true, &w.access).await?;
        let cat = Arc::clone(&self.catalog);
        let mut ctx = self.ctx(&mut tx, w.access.clone(), w.access.actor());
        let mut wr = Writer::new(&mut ctx, &cat, &w.access, w.tenant_predicate, true);
        let out = wr.run(&w.query, select).await?;
        let events = wr.events.take();
        drop(wr);
        // The write hook (tagging, routing) ran inside `run`, before the result was read; the
        // events of the write and of the hook's own writes go to the outbox before the commit.
        for p in events {
            ctx.events.merge(p.written, p.before);
        }
        let appended = ctx.finish().await?;
        drop(ctx);
        tx.commit().await?;
        self.wake_consumers(appended);
        Ok(out)
    }
}

/// The value a batch write stores in field `f` for `write` (`None`: not given), noting a record
/// it refers to in `refs` (checked once for the batch). Relations are connected by id only.
fn batch_value(
    f: &Field,
    write: Option<&FieldWrite>,
    refs: &mut HashMap<ModelName, Vec<(Uuid, String)>>,
    path: &str,
) -> Result<Option<Value>> {
    Ok(Some(match (write, &f.kind) {
        (None, _) => return Ok(None),
        (Some(FieldWrite::Set(v)), FieldKind::Polymorphic { .. }) => {
            if let Value::Ref { model: t, id } = v {
                refs.entry(t.clone()).or_default().push((*id, path.to_owned()));
            }
            v.clone()
        }
        (Some(FieldWrite::Set(v)), _) => v.clone(),
        (Some(FieldWrite::ToOne(ToOneWrite::Connect(Unique::Id(t)))), FieldKind::ToOne { target, .. }) => {
            refs.entry(target.clone()).or_default().push((*t, format!("{path}.connect")));
            Value::Uuid(*t)
        }
        (Some(FieldWrite::ToOne(ToOneWrite::Disconnect)), FieldKind::ToOne { .. }) => Value::Null,
        (Some(FieldWrite::ToMany(_)), _) => return Ok(None),
        (Some(_), _) => return Err(OrmError::bad(path, "a batch write connects relations by id only")),
    }))
}

/// A batch write cannot write to-many relations.
fn no_to_many(data: &Data, path: &str) -> Result<()> {
    match data.fields.iter().find_map(|(n, w)| matches!(w, FieldWrite::ToMany(_)).then_some(n)) {
        Some(name) => Err(OrmError::bad(format!("{path}.{name}"), "a batch write cannot write to-many relations")),
        None => Ok(()),
    }
}

impl TxCtx<'_> {
    /// Writes as the platform in the tenant; the write's records get events, and (outside a
    /// hook) are shown to the write hook when the work ends.
    ///
    /// # Errors
    /// As [`Store::write`].
    pub async fn write(&mut self, w: &Write, select: &Selection) -> Result<WriteResult> {
        let hooking = self.hooking;
        let (cat, system) = (Arc::clone(&self.cat), self.system.clone());
        let mut wr = Writer::new(self, &cat, &system, true, false);
        let out = wr.run(w, select).await;
        let pending = wr.events.take();
        drop(wr);
        let out = out?;
        self.keep(pending, hooking);
        Ok(out)
    }

    /// Keeps a write's changes: as events of the transaction, and (outside a hook) for the hook.
    fn keep(&mut self, pending: Vec<Pending>, hooking: bool) {
        for p in pending {
            if !hooking && self.written_at.insert((p.written.model.clone(), p.written.id)) {
                self.written.push(p.written.clone());
            }
            self.events.merge(p.written, p.before);
        }
    }

    /// Creates `model` records from `inputs` (each the JSON of a create input, without to-many
    /// relations; to-one relations by `connect: {id}`) with one INSERT per 500 rows, and returns
    /// their ids in order: the batch form of [`TxCtx::create`], for the engines' bulk work
    /// (ingestion). The records get their events and are shown to the write hook like any.
    ///
    /// # Errors
    /// Bad input (naming `data[i].<field>`), a connected record that does not exist
    /// (`NotFound`); as [`TxCtx::write`].
    pub async fn create_many(&mut self, model: &str, inputs: &[Json]) -> Result<Vec<Uuid>> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let m = self.model(model)?;
        let data = inputs
            .iter()
            .enumerate()
            .map(|(i, input)| Data::parse_platform(&self.cat, &m, input, &format!("data[{i}]")))
            .collect::<Result<Vec<Data>>>()?;
        let hooking = self.hooking;
        let (cat, system) = (Arc::clone(&self.cat), self.system.clone());
        let mut wr = Writer::new(self, &cat, &system, true, false);
        let out = wr.create_many(&m, &data).await;
        let pending = wr.events.take();
        drop(wr);
        let ids = out?;
        self.keep(pending, hooking);
        Ok(ids)
    }

    /// Applies one change, `input` (the JSON of an update input, scalars and to-one relations by
    /// `connect: {id}`), to records `ids` of `model` with one UPDATE: the batch form of
    /// [`TxCtx::update`]. The records get their events and are shown to the write hook.
    ///
    /// # Errors
    /// Bad input (naming `data.<field>`), a record not there (`NotFound`); as [`TxCtx::write`].
    pub async fn update_many(&mut self, model: &str, ids: &[Uuid], input: &Json) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let m = self.model(model)?;
        let data = Data::parse_platform(&self.cat, &m, input, "data")?;
        let hooking = self.hooking;
        let (cat, system) = (Arc::clone(&self.cat), self.system.clone());
        let mut wr = Writer::new(self, &cat, &system, true, false);
        let out = wr.update_many(&m, ids, &data).await;
        let pending = wr.events.take();
        drop(wr);
        out?;
        self.keep(pending, hooking);
        Ok(())
    }

    /// Creates a `model` record from `input` (the JSON of its create input) and returns its id.
    ///
    /// # Errors
    /// Bad input (naming `data.<field>`); as [`TxCtx::write`].
    pub async fn create(&mut self, model: &str, input: &Json) -> Result<Uuid> {
        let m = self.model(model)?;
        let data = Data::parse_platform(&self.cat, &m, input, "data")?;
        let select =
            Selection { fields: vec![FieldName::new("id").map_err(|e| OrmError::invariant(e.to_string()))?], ..Selection::default() };
        match self.write(&Write::Create { model: m.name.clone(), data }, &select).await? {
            WriteResult::One(Some(row)) => row
                .get("id")
                .and_then(Json::as_str)
                .map(parse_uuid)
                .transpose()?
                .ok_or_else(|| OrmError::invariant("a created record without its id")),
            _ => Err(OrmError::invariant("a create returned no record")),
        }
    }

    /// Updates record `id` of `model` with `input` (the JSON of its update input).
    ///
    /// # Errors
    /// Bad input (naming `data.<field>`); as [`TxCtx::write`].
    pub async fn update(&mut self, model: &str, id: Uuid, input: &Json) -> Result<()> {
        let m = self.model(model)?;
        let data = Data::parse_platform(&self.cat, &m, input, "data")?;
        self.write(&Write::Update { model: m.name.clone(), target: Unique::Id(id), data, expected_version: None }, &Selection::default())
            .await?;
        Ok(())
    }
}

/// Page flags of a batch result: `more` rows matched beyond the page in the direction of travel.
fn with_page_flags(mut out: PageResult, page: &Page, more: bool) -> PageResult {
    (out.has_next, out.has_previous) = page.flags(more);
    out
}

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// One write in a [`TxCtx`]: as the caller (a request's write, with its scope) or as the
/// platform (a store's write).
struct Writer<'a, 't> {
    d: Dialect,
    cat: &'a Catalog,
    access: &'a Access,
    tenant: bool,
    limits: Limits,
    ctx: &'a mut TxCtx<'t>,
    /// Records written, with their state before, for the outbox.
    events: PendingEvents,
    /// Runs the write hook in [`Writer::settle`] (a request's write; a store's writes are
    /// shown to the hook when its work ends).
    settles: bool,
}

impl<'a, 't> Writer<'a, 't> {
    fn new(ctx: &'a mut TxCtx<'t>, cat: &'a Catalog, access: &'a Access, tenant: bool, settles: bool) -> Self {
        Writer { d: ctx.d, cat, access, tenant, limits: ctx.limits, ctx, events: PendingEvents::default(), settles }
    }

    /// Runs the write hook on what was written so far, so the result read next reflects its
    /// changes (a routed lead's owner, its tags). Once per write, for a request's write only.
    async fn settle(&mut self) -> Result<()> {
        if !std::mem::take(&mut self.settles) {
            return Ok(());
        }
        let Some(hook) = self.ctx.hook.clone() else { return Ok(()) };
        let written: Vec<Written> = self.events.iter().map(|p| p.written.clone()).collect();
        if written.is_empty() {
            return Ok(());
        }
        for p in self.events.take() {
            self.ctx.events.merge(p.written, p.before);
        }
        self.ctx.hooking = true;
        let out = hook.after_write(self.ctx, &written).await;
        self.ctx.hooking = false;
        out
    }

    /// Notes that `ids` of `model` are about to change (`kind`): their state before is read
    /// (as the platform, every field) unless the write already noted them.
    async fn note(&mut self, model: &Model, ids: &[Uuid], kind: EventKind) -> Result<()> {
        let fresh: Vec<Uuid> = ids.iter().copied().filter(|id| !self.events.contains(&model.name, *id)).collect();
        let mut before: HashMap<Uuid, Json> = HashMap::new();
        if kind != EventKind::Created && !fresh.is_empty() {
            let trash = kind == EventKind::Restored;
            for row in self.ctx.snapshot(model, &fresh, trash).await? {
                let id = row.get("id").and_then(Json::as_str).map(parse_uuid).transpose()?;
                let id = id.ok_or_else(|| OrmError::decode("snapshot row", "without its id"))?;
                before.insert(id, row);
            }
        }
        for id in ids {
            self.events.merge(Written { model: model.name.clone(), id: *id, kind }, before.remove(id));
        }
        Ok(())
    }

    /// Who writes, in which tenant, now.
    fn stamp(&self) -> Stamp<'a> {
        Stamp { org: self.access.org(), actor: self.access.actor(), now: Utc::now() }
    }

    fn builder(&self) -> Builder<'a> {
        Builder::with_tenant_predicate(self.d, self.cat, self.access, self.tenant, self.limits)
    }

    fn model(&self, name: &str) -> Result<&'a Arc<Model>> {
        self.cat.model(name).ok_or_else(|| OrmError::bad("model", format!("unknown model `{name}`")))
    }

    async fn run(&mut self, w: &Write, select: &Selection) -> Result<WriteResult> {
        let model = self.model(w.model().as_str())?;
        match w {
            Write::Create { data, .. } => {
                let id = self.create(model, data, None).await?;
                self.settle().await?;
                Ok(WriteResult::One(self.select_one(model, id, select).await?))
            }
            Write::Update { target, data, expected_version, .. } => {
                let id = self.update(model, target, data, *expected_version).await?;
                self.settle().await?;
                Ok(WriteResult::One(self.select_one(model, id, select).await?))
            }
            Write::Delete { target, expected_version, .. } => {
                let (id, version) = self.find_for(model, target, Op::Delete).await?;
                if let Some(e) = expected_version
                    && *e != version
                {
                    return Err(OrmError::Version { expected: *e, found: version });
                }
                let before = self.select_one(model, id, select).await?;
                self.set_deleted(model, &[(id, version)], true).await?;
                self.settle().await?;
                Ok(WriteResult::One(before))
            }
            Write::Restore { target, .. } => {
                let Some((id, version)) = self.find_in(model, target, Op::Delete, true).await? else {
                    if self.find_in(model, target, Op::Read, true).await?.is_some() {
                        return Err(OrmError::Forbidden(format!("not allowed to restore this {}", model.name)));
                    }
                    return Err(OrmError::NotFound(format!("no {} in the trash matches the given where", model.name)));
                };
                self.set_deleted(model, &[(id, version)], false).await?;
                self.settle().await?;
                Ok(WriteResult::One(self.select_one(model, id, select).await?))
            }
            Write::Destroy { target, .. } => {
                let Some((found, trash)) = self.find_anywhere(model, target, Op::Destroy).await? else {
                    return Err(if self.find_anywhere(model, target, Op::Read).await?.is_some() {
                        OrmError::Forbidden(format!("not allowed to destroy this {}", model.name))
                    } else {
                        OrmError::NotFound(format!("no {} matches the given where", model.name))
                    });
                };
                let before = self.select_from(model, &[found.0], &[], select, trash).await?.rows.into_iter().next();
                self.note(model, &[found.0], EventKind::Destroyed).await?;
                self.delete_ids(model, &[found]).await?;
                self.audit(model, &[found.0], "destroy").await?;
                self.settle().await?;
                Ok(WriteResult::One(before))
            }
            Write::Upsert { target, create, update, .. } => {
                let found = self.find(model, target, Op::Update).await?;
                let id = if found.is_some() {
                    self.update(model, target, update, None).await?
                } else {
                    if self.find(model, target, Op::Read).await?.is_some() {
                        return Err(OrmError::Forbidden(format!("not allowed to update this {}", model.name)));
                    }
                    let mut create = create.clone();
                    if let Unique::Field(f, v) = target {
                        create.fields.entry(f.clone()).or_insert_with(|| FieldWrite::Set(v.clone()));
                    }
                    self.create(model, &create, None).await?
                };
                self.settle().await?;
                Ok(WriteResult::One(self.select_one(model, id, select).await?))
            }
            Write::UpdateMany { filter, order, page, data, .. } => {
                let (targets, more) = self.target_set(model, filter, Op::Update, order, page).await?;
                let ids: Vec<Uuid> = targets.iter().map(|(i, _)| *i).collect();
                if !ids.is_empty() {
                    self.polymorphic_check(model, data).await?;
                    let sets = self.scalar_sets(model, data, false)?;
                    self.note(model, &ids, EventKind::Updated).await?;
                    self.update_rows(model, &ids, sets, None).await?;
                    self.check_rows(model, &ids, Op::Update).await?;
                }
                self.settle().await?;
                let out = self.select_many(model, &ids, order, select).await?;
                Ok(WriteResult::Many(with_page_flags(out, page, more)))
            }
            Write::DeleteMany { filter, order, page, .. } => {
                let (targets, more) = self.target_set(model, filter, Op::Delete, order, page).await?;
                let ids: Vec<Uuid> = targets.iter().map(|(i, _)| *i).collect();
                let before = self.select_many(model, &ids, order, select).await?;
                self.set_deleted(model, &targets, true).await?;
                self.settle().await?;
                Ok(WriteResult::Many(with_page_flags(before, page, more)))
            }
        }
    }

    async fn select_one(&mut self, model: &Model, id: Uuid, select: &Selection) -> Result<Option<Json>> {
        let page = self.select_many(model, &[id], &[], select).await?;
        Ok(page.rows.into_iter().next())
    }

    async fn select_many(&mut self, model: &Model, ids: &[Uuid], order: &[OrderBy], select: &Selection) -> Result<PageResult> {
        self.select_from(model, ids, order, select, false).await
    }

    async fn select_from(&mut self, model: &Model, ids: &[Uuid], order: &[OrderBy], select: &Selection, trash: bool) -> Result<PageResult> {
        if ids.is_empty() {
            return Ok(PageResult {
                rows: Vec::new(),
                cursors: Vec::new(),
                has_next: false,
                has_previous: false,
                count: Some(0),
                aggregate: Some(serde_json::json!({ "count": 0 })),
            });
        }
        let n = u32::try_from(ids.len()).unwrap_or(u32::MAX);
        let read = Read {
            model: model.name.clone(),
            filter: Filter::ids(ids)?,
            order: order.to_vec(),
            page: Page { first: Some(n), ..Page::default() },
            select: select.clone(),
            count: false,
            aggregates: Vec::new(),
            trash,
            rows: true,
            cursors: true,
        };
        let limits = Limits { default_page: self.limits.default_page, max_page: std::cmp::max(n, self.limits.max_page) };
        let mut page = read_page(self.d, self.cat, self.access, self.tenant, limits, &mut *self.ctx.tx, &read, false).await?.decoded()?;
        page.count = Some(i64::from(n));
        page.aggregate = Some(serde_json::json!({ "count": n }));
        Ok(page)
    }

    fn unique_filter(model: &Model, u: &Unique) -> Result<Filter> {
        Ok(match u {
            Unique::Id(id) => Filter::Cmp {
                field: FieldName::new("id").map_err(|e| OrmError::invariant(e.to_string()))?,
                op: FilterOp::Eq,
                value: Operand::One(Value::Uuid(*id)),
            },
            Unique::Field(f, v) => {
                if !model.field(f.as_str()).is_some_and(|fl| fl.unique) {
                    return Err(OrmError::bad(f.as_str(), "not a unique field"));
                }
                Filter::Cmp { field: f.clone(), op: FilterOp::Eq, value: Operand::One(v.clone()) }
            }
        })
    }

    /// The id and version of the record `u` identifies, if visible under `op`'s scope.
    async fn find(&mut self, model: &Model, u: &Unique, op: Op) -> Result<Option<(Uuid, i64)>> {
        self.find_in(model, u, op, false).await
    }

    /// Like [`Self::find`], among the live rows and then the trash; says which it was found in.
    async fn find_anywhere(&mut self, model: &Model, u: &Unique, op: Op) -> Result<Option<((Uuid, i64), bool)>> {
        for trash in [false, true] {
            if let Some(found) = self.find_in(model, u, op, trash).await? {
                return Ok(Some((found, trash)));
            }
        }
        Ok(None)
    }

    /// Like [`Self::find`], among the live rows or (`trash`) the soft-deleted ones.
    async fn find_in(&mut self, model: &Model, u: &Unique, op: Op, trash: bool) -> Result<Option<(Uuid, i64)>> {
        let filter = Self::unique_filter(model, u)?;
        let stmt = self.builder().in_trash(trash).target_ids(model, &filter, op, &[], None)?;
        let rows = self.ctx.tx.ex().ids(self.d.build(&stmt)).await?;
        match rows.into_iter().next() {
            Some((id, v)) => Ok(Some((parse_uuid(&id)?, v))),
            None => Ok(None),
        }
    }

    /// Like [`Self::find`], failing with `NotFound`, or `Forbidden` when the record is readable
    /// but `op` is not granted on it.
    async fn find_for(&mut self, model: &Model, u: &Unique, op: Op) -> Result<(Uuid, i64)> {
        if let Some(found) = self.find(model, u, op).await? {
            return Ok(found);
        }
        if op != Op::Read && self.find(model, u, Op::Read).await?.is_some() {
            let verb = op.as_str();
            return Err(OrmError::Forbidden(format!("not allowed to {verb} this {}", model.name)));
        }
        Err(OrmError::NotFound(format!("no {} matches the given where", model.name)))
    }

    /// The page of a batch's target set, and whether more matching rows lie beyond it (the
    /// statement fetches one probe row).
    async fn target_set(
        &mut self,
        model: &Model,
        filter: &Filter,
        op: Op,
        order: &[OrderBy],
        page: &Page,
    ) -> Result<(Vec<(Uuid, i64)>, bool)> {
        let stmt = self.builder().target_ids(model, filter, op, order, Some(page))?;
        let mut rows = self.ctx.tx.ex().ids(self.d.build(&stmt)).await?;
        let limit = page.size(self.limits.default_page) as usize;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let rows = rows.into_iter().map(|(id, v)| Ok((parse_uuid(&id)?, v))).collect::<Result<_>>()?;
        Ok((rows, more))
    }

    /// WITH CHECK: every row in `ids` must still satisfy `op`'s row rules after the write.
    async fn check_rows(&mut self, model: &Model, ids: &[Uuid], op: Op) -> Result<()> {
        if matches!(self.access.predicate(model, op), Filter::True) || ids.is_empty() {
            return Ok(());
        }
        let stmt = self.builder().target_ids(model, &Filter::ids(ids)?, op, &[], None)?;
        let visible = self.ctx.tx.ex().ids(self.d.build(&stmt)).await?.len();
        if visible == ids.len() {
            Ok(())
        } else {
            let verb = op.as_str();
            Err(OrmError::Forbidden(format!("the {} would be outside what you may {verb}", model.name)))
        }
    }

    /// Columns and bound values of scalar writes (`for_create` adds nothing; relations refused
    /// unless handled by the caller).
    fn scalar_sets(&self, model: &Model, data: &Data, allow_relations: bool) -> Result<Sets> {
        let mut sets = Sets::default();
        for (name, w) in &data.fields {
            let f = model.field(name.as_str()).ok_or_else(|| OrmError::bad(name.as_str(), "unknown field"))?;
            match w {
                FieldWrite::Set(v) => {
                    if f.required && v.is_null() {
                        return Err(OrmError::bad(format!("data.{name}"), format!("`{name}` is required and cannot be null")));
                    }
                    sets.add(self.d, f, v);
                }
                _ if allow_relations => {}
                _ => return Err(OrmError::bad(format!("data.{name}"), "relations cannot be written in a batch update")),
            }
        }
        Ok(sets)
    }
}

impl Writer<'_, '_> {
    async fn must_exist(&mut self, model: &Model, id: Uuid, op: Op, path: &str) -> Result<()> {
        let stmt = self.builder().target_ids(model, &Filter::ids(&[id])?, op, &[], None)?;
        if self.ctx.tx.ex().ids(self.d.build(&stmt)).await?.is_empty() {
            return Err(OrmError::NotFound(format!("{path}: no {} with id {id}", model.name)));
        }
        Ok(())
    }

    async fn polymorphic_check(&mut self, model: &Model, data: &Data) -> Result<()> {
        for (name, w) in &data.fields {
            if let (Some(f), FieldWrite::Set(Value::Ref { model: t, id })) = (model.field(name.as_str()), w)
                && matches!(f.kind, FieldKind::Polymorphic { .. })
            {
                let target = self.model(t.as_str())?;
                self.must_exist(target, *id, Op::Read, &format!("data.{name}")).await?;
            }
        }
        Ok(())
    }

    fn create<'s>(&'s mut self, model: &'s Model, data: &'s Data, back: Option<(&'s crm_model::Field, Uuid)>) -> BoxFut<'s, Uuid> {
        Box::pin(async move {
            if !self.access.allows(&model.name, Op::Create) {
                return Err(OrmError::Forbidden(format!("not allowed to create {}", model.name)));
            }
            let id = Uuid::now_v7();
            let stamp = self.stamp();
            let d = self.d;
            self.polymorphic_check(model, data).await?;
            let mut sets = Sets::default();
            for f in model.stored().filter(|f| !f.system) {
                let given = data.fields.get(&f.name);
                let value = match (given, &f.kind) {
                    (_, FieldKind::ToOne { .. }) if back.is_some_and(|(b, _)| b.name == f.name) => Value::Uuid(back.map_or(id, |(_, i)| i)),
                    (Some(FieldWrite::Set(v)), _) => v.clone(),
                    (Some(FieldWrite::ToOne(op)), FieldKind::ToOne { target, .. }) => {
                        let target = self.model(target.as_str())?;
                        self.write_to_one(target, op, &format!("data.{}", f.name)).await?
                    }
                    (Some(_), _) => return Err(OrmError::bad(format!("data.{}", f.name), "wrong kind of write for this field")),
                    (None, _) => f.default.clone().unwrap_or(Value::Null),
                };
                if f.required && value.is_null() && f.read_only {
                    return Err(OrmError::bad(
                        format!("data.{}", f.name),
                        format!("`{}` is set by the platform: {} records are made by their own operation", f.name, model.name),
                    ));
                }
                if f.required && value.is_null() {
                    return Err(OrmError::bad(format!("data.{}", f.name), format!("`{}` is required", f.name)));
                }
                sets.add(d, f, &value);
            }
            let stmt = write::insert(d, model, &stamp, id, sets)?;
            self.ctx.tx.ex().execute(stmt).await.map_err(|e| db_error(e, model))?;
            self.note(model, &[id], EventKind::Created).await?;
            self.write_to_many(model, id, data, true).await?;
            self.check_rows(model, &[id], Op::Create).await?;
            Ok(id)
        })
    }

    /// Inserts a batch (see [`TxCtx::create_many`]): the records referred to are checked with
    /// one read per target model, the rows inserted with one statement per 500, checked against
    /// the row rules with one read.
    async fn create_many(&mut self, model: &Model, batch: &[Data]) -> Result<Vec<Uuid>> {
        if !self.access.allows(&model.name, Op::Create) {
            return Err(OrmError::Forbidden(format!("not allowed to create {}", model.name)));
        }
        let stamp = self.stamp();
        let d = self.d;
        // Records referred to, per target model: (id, where).
        let mut refs: HashMap<ModelName, Vec<(Uuid, String)>> = HashMap::new();
        let mut rows = Vec::with_capacity(batch.len());
        for (i, data) in batch.iter().enumerate() {
            let id = Uuid::now_v7();
            let mut sets = Sets::default();
            for f in model.stored().filter(|f| !f.system) {
                let path = format!("data[{i}].{}", f.name);
                let value = match batch_value(f, data.fields.get(&f.name), &mut refs, &path)? {
                    Some(v) => v,
                    None => f.default.clone().unwrap_or(Value::Null),
                };
                if f.required && value.is_null() {
                    return Err(OrmError::bad(path, format!("`{}` is required", f.name)));
                }
                sets.add(d, f, &value);
            }
            no_to_many(data, &format!("data[{i}]"))?;
            rows.push((id, sets));
        }
        self.check_refs(refs).await?;
        let ids: Vec<Uuid> = rows.iter().map(|(id, _)| *id).collect();
        for stmt in write::insert_many(d, model, &stamp, rows)? {
            self.ctx.tx.ex().execute(stmt).await.map_err(|e| db_error(e, model))?;
        }
        self.note(model, &ids, EventKind::Created).await?;
        self.check_rows(model, &ids, Op::Create).await?;
        Ok(ids)
    }

    /// Applies one change to records `ids` (see [`TxCtx::update_many`]): the records referred to
    /// checked with one read per target model, their state before read once, one UPDATE, the row
    /// rules checked with one read.
    async fn update_many(&mut self, model: &Model, ids: &[Uuid], data: &Data) -> Result<()> {
        if !self.access.allows(&model.name, Op::Update) {
            return Err(OrmError::Forbidden(format!("not allowed to update {}", model.name)));
        }
        let mut refs: HashMap<ModelName, Vec<(Uuid, String)>> = HashMap::new();
        let mut sets = Sets::default();
        for (name, w) in &data.fields {
            let f = model.field(name.as_str()).ok_or_else(|| OrmError::bad(name.as_str(), "unknown field"))?;
            let path = format!("data.{name}");
            let Some(value) = batch_value(f, Some(w), &mut refs, &path)? else { continue };
            if f.required && value.is_null() {
                return Err(OrmError::bad(path, format!("`{name}` is required and cannot be null")));
            }
            sets.add(self.d, f, &value);
        }
        no_to_many(data, "data")?;
        self.check_refs(refs).await?;
        let live = self.builder().target_ids(model, &Filter::ids(ids)?, Op::Update, &[], None)?;
        let found = self.ctx.tx.ex().ids(self.d.build(&live)).await?.len();
        if found != ids.len() {
            return Err(OrmError::NotFound(format!("{} of the {} records are not there to update", ids.len() - found, model.name)));
        }
        self.note(model, ids, EventKind::Updated).await?;
        self.update_rows(model, ids, sets, None).await?;
        self.check_rows(model, ids, Op::Update).await
    }

    /// Checks that the records referred to by a batch exist: one read per target model.
    async fn check_refs(&mut self, refs: HashMap<ModelName, Vec<(Uuid, String)>>) -> Result<()> {
        let d = self.d;
        for (target, wanted) in refs {
            let target = self.model(target.as_str())?;
            let mut ids: Vec<Uuid> = wanted.iter().map(|(id, _)| *id).collect();
            ids.sort_unstable();
            ids.dedup();
            let stmt = self.builder().target_ids(target, &Filter::ids(&ids)?, Op::Read, &[], None)?;
            let found: std::collections::HashSet<Uuid> =
                self.ctx.tx.ex().ids(d.build(&stmt)).await?.into_iter().map(|(id, _)| parse_uuid(&id)).collect::<Result<_>>()?;
            if let Some((id, path)) = wanted.iter().find(|(id, _)| !found.contains(id)) {
                return Err(OrmError::NotFound(format!("{path}: no {} with id {id}", target.name)));
            }
        }
        Ok(())
    }

    async fn write_to_one(&mut self, target: &Model, op: &ToOneWrite, path: &str) -> Result<Value> {
        Ok(match op {
            ToOneWrite::Connect(u) => match self.find(target, u, Op::Read).await? {
                Some((id, _)) => Value::Uuid(id),
                None => return Err(OrmError::NotFound(format!("{path}.connect: no {} matches", target.name))),
            },
            ToOneWrite::Create(d) => Value::Uuid(self.create(target, d, None).await?),
            ToOneWrite::Disconnect => Value::Null,
        })
    }

    async fn write_to_many(&mut self, model: &Model, id: Uuid, data: &Data, creating: bool) -> Result<()> {
        for (name, w) in &data.fields {
            let FieldWrite::ToMany(tm) = w else { continue };
            let f = model.field(name.as_str()).ok_or_else(|| OrmError::bad(name.as_str(), "unknown field"))?;
            let FieldKind::ToMany { target, via } = &f.kind else {
                return Err(OrmError::bad(format!("data.{name}"), "not a to-many relation"));
            };
            let target = self.model(target.as_str())?;
            let via = target.field(via.as_str()).ok_or_else(|| OrmError::invariant("an inverse relation without its to-one side"))?;
            self.apply_to_many(target, via, id, tm, creating, &format!("data.{name}")).await?;
        }
        Ok(())
    }

    async fn apply_to_many(
        &mut self,
        target: &Model,
        via: &crm_model::Field,
        id: Uuid,
        tm: &ToManyWrite,
        creating: bool,
        path: &str,
    ) -> Result<()> {
        if let Some(set) = &tm.set {
            if !creating {
                if via.required {
                    return Err(OrmError::bad(
                        format!("{path}.set"),
                        format!("`{}.{}` is required, so records cannot be detached", target.name, via.name),
                    ));
                }
                let mut keep = Vec::with_capacity(set.len());
                for u in set {
                    keep.push(self.find_for(target, u, Op::Update).await?.0);
                }
                // Detach every current member not in the set, then connect the set.
                let stmt = write::detach_others(self.d, target, via, &self.stamp(), id, &keep);
                self.ctx.tx.ex().execute(stmt).await.map_err(|e| db_error(e, target))?;
            }
            for u in set {
                self.connect_child(target, via, id, u, &format!("{path}.set")).await?;
            }
        }
        for u in &tm.connect {
            self.connect_child(target, via, id, u, &format!("{path}.connect")).await?;
        }
        for u in &tm.disconnect {
            if via.required {
                return Err(OrmError::bad(
                    format!("{path}.disconnect"),
                    format!("`{}.{}` is required, so records cannot be detached", target.name, via.name),
                ));
            }
            let (cid, _) = self.find_for(target, u, Op::Update).await?;
            let stmt = write::detach(self.d, target, via, &self.stamp(), id, cid);
            if self.ctx.tx.ex().execute(stmt).await.map_err(|e| db_error(e, target))? == 0 {
                return Err(OrmError::NotFound(format!("{path}.disconnect: the {} is not connected", target.name)));
            }
        }
        for c in &tm.create {
            self.create(target, c, Some((via, id))).await?;
        }
        Ok(())
    }

    async fn connect_child(&mut self, target: &Model, via: &Field, parent: Uuid, u: &Unique, path: &str) -> Result<()> {
        let Some((cid, _)) = self.find(target, u, Op::Update).await? else {
            if self.find(target, u, Op::Read).await?.is_some() {
                return Err(OrmError::Forbidden(format!("{path}: not allowed to update this {}", target.name)));
            }
            return Err(OrmError::NotFound(format!("{path}: no {} matches", target.name)));
        };
        let mut sets = Sets::default();
        sets.add(self.d, via, &Value::Uuid(parent));
        self.update_rows(target, &[cid], sets, None).await?;
        self.check_rows(target, &[cid], Op::Update).await
    }

    /// Updates records `ids` of `model` with `sets` (with `version`, only at that version);
    /// the rows changed.
    async fn update_rows(&mut self, model: &Model, ids: &[Uuid], sets: Sets, version: Option<i64>) -> Result<u64> {
        let refold = sets.sets_searched() && search::has_column(model);
        let stmt = write::update(self.d, model, &self.stamp(), ids, sets, version);
        let n = self.ctx.tx.ex().execute(stmt).await.map_err(|e| db_error(e, model))?;
        if refold && n > 0 {
            self.refold(model, ids).await?;
        }
        Ok(n)
    }

    /// Rewrites the search column of rows `ids` from their searchable columns as they now are:
    /// one read, one update per 500 rows.
    async fn refold(&mut self, model: &Model, ids: &[Uuid]) -> Result<()> {
        let org = self.access.org();
        for chunk in ids.chunks(500) {
            let rows = self.ctx.tx.ex().text_pairs(search::unfolded(self.d, model, org, chunk)).await?;
            let folded = rows.into_iter().map(|(id, text)| Ok((parse_uuid(&id)?, search::fold(&text)))).collect::<Result<Vec<_>>>()?;
            self.ctx.tx.ex().execute_some(search::fill(self.d, model, org, &folded)).await?;
        }
        Ok(())
    }

    fn update<'s>(&'s mut self, model: &'s Model, target: &'s Unique, data: &'s Data, expected: Option<i64>) -> BoxFut<'s, Uuid> {
        Box::pin(async move {
            let (id, version) = self.find_for(model, target, Op::Update).await?;
            if let Some(e) = expected
                && e != version
                && (e > version || !self.untouched_since(model, id, e, data).await?)
            {
                return Err(OrmError::Version { expected: e, found: version });
            }
            self.polymorphic_check(model, data).await?;
            let mut sets = self.scalar_sets(model, data, true)?;
            for (name, w) in &data.fields {
                if let FieldWrite::ToOne(op) = w {
                    let f = model.field(name.as_str()).ok_or_else(|| OrmError::bad(name.as_str(), "unknown field"))?;
                    let FieldKind::ToOne { target, .. } = &f.kind else { continue };
                    if f.required && matches!(op, ToOneWrite::Disconnect) {
                        return Err(OrmError::bad(format!("data.{name}"), format!("`{name}` is required and cannot be disconnected")));
                    }
                    let t = self.model(target.as_str())?;
                    let v = self.write_to_one(t, op, &format!("data.{name}")).await?;
                    sets.add(self.d, f, &v);
                }
            }
            self.note(model, &[id], EventKind::Updated).await?;
            // The version guard makes a concurrent change between find and update a conflict.
            if self.update_rows(model, &[id], sets, Some(version)).await? == 0 {
                let now = self.find(model, target, Op::Read).await?.map_or(version, |(_, v)| v);
                return Err(OrmError::Version { expected: expected.unwrap_or(version), found: now });
            }
            self.write_to_many(model, id, data, false).await?;
            self.check_rows(model, &[id], Op::Update).await?;
            Ok(id)
        })
    }

    /// Whether no change committed after version `since` of record `id` set a field `data`
    /// writes (the merge of an update made on an older version, see `docs/API.md`): read from
    /// the record's events. Changes the events no longer reach count as touching everything.
    async fn untouched_since(&mut self, model: &Model, id: Uuid, since: i64, data: &Data) -> Result<bool> {
        /// How many of the record's latest changes are looked at: an update older than that is a
        /// conflict.
        const LOOK_BACK: u32 = 100;
        let stmt = events::latest_of_record(self.d, self.access.org(), &model.name, id, LOOK_BACK)?;
        let rows = self.ctx.tx.ex().texts(stmt).await?;
        let list = rows.iter().rev().map(|t| events::decode(t)).collect::<Result<Vec<_>>>()?;
        Ok(events::changed_since(&list, since).is_some_and(|changed| data.fields.keys().all(|f| !changed.contains(f.as_str()))))
    }

    /// Moves rows to the trash (`deleted`) or out of it, as a write (version, updatedAt,
    /// updatedBy), and records it in the audit log. References to trashed rows stay, so a
    /// restore brings everything back; reads leave trashed rows out everywhere.
    async fn set_deleted(&mut self, model: &Model, targets: &[(Uuid, i64)], deleted: bool) -> Result<()> {
        if targets.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = targets.iter().map(|(i, _)| *i).collect();
        self.note(model, &ids, if deleted { EventKind::Deleted } else { EventKind::Restored }).await?;
        let stmt = write::set_deleted(self.d, model, &self.stamp(), &ids, deleted);
        let n = self.ctx.tx.ex().execute(stmt).await.map_err(|e| db_error(e, model))?;
        if n != targets.len() as u64 {
            return Err(OrmError::Version { expected: targets.first().map_or(0, |t| t.1), found: -1 });
        }
        self.audit(model, &ids, if deleted { "delete" } else { "restore" }).await
    }

    /// One audit-log entry per record, in the writing transaction.
    async fn audit(&mut self, model: &Model, ids: &[Uuid], action: &str) -> Result<()> {
        let stmt = audit::records(self.d, &self.stamp(), &model.name, ids, action)?;
        self.ctx.tx.ex().execute_some(stmt).await
    }

    /// Deletes rows: clears set-null references (and polymorphic ones) first, then deletes with
    /// the version guard; restrict relations surface as `Referenced`.
    async fn delete_ids(&mut self, model: &Model, targets: &[(Uuid, i64)]) -> Result<()> {
        if targets.is_empty() {
            return Ok(());
        }
        let d = self.d;
        let ids: Vec<Uuid> = targets.iter().map(|(i, _)| *i).collect();
        let refs: Vec<(Arc<Model>, Field)> = self.cat.referencing(&model.name).map(|(m, f)| (Arc::clone(m), f.clone())).collect();
        for (m, f) in refs {
            match f.kind {
                FieldKind::ToOne { on_delete: OnDelete::SetNull, .. } => {
                    let stmt = write::clear_references(d, &m, &f, &self.stamp(), &ids);
                    self.ctx.tx.ex().execute(stmt).await.map_err(|e| db_error(e, &m))?;
                }
                // Custom references have no foreign key: restrict is checked here (trashed rows
                // count, as they would for a foreign key).
                FieldKind::ToOne { on_delete: OnDelete::Restrict, .. } if f.custom => {
                    let n = self.ctx.tx.ex().scalar_i64(write::count_references(d, &m, &f, self.access.org(), &ids)).await?;
                    if n > 0 {
                        return Err(OrmError::Referenced(format!(
                            "the {} is still referenced by {n} {} record(s) through `{}`",
                            model.name, m.name, f.name
                        )));
                    }
                }
                _ => {}
            }
        }
        let polys: Vec<(Arc<Model>, Field)> = self
            .cat
            .models()
            .flat_map(|m| m.fields.values().filter(|f| f.points_at(&model.name)).map(move |f| (Arc::clone(m), f.clone())))
            .collect();
        for (m, f) in polys {
            if matches!(f.kind, FieldKind::Polymorphic { on_delete: OnDelete::Cascade, .. }) {
                // Destroyed with it, as a foreign key's cascade would (events and audit included,
                // so the engines see them go: an attachment's file is removed).
                let stmt = write::polymorphic_referrers(d, &m, &f, self.access.org(), &model.name, &ids);
                let rows = self.ctx.tx.ex().ids(stmt).await?;
                let rows: Vec<(Uuid, i64)> = rows.into_iter().map(|(id, v)| Ok((parse_uuid(&id)?, v))).collect::<Result<_>>()?;
                if !rows.is_empty() {
                    let referrers: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
                    self.note(&m, &referrers, EventKind::Destroyed).await?;
                    Box::pin(self.delete_ids(&m, &rows)).await?;
                    self.audit(&m, &referrers, "destroy").await?;
                }
            } else {
                let stmt = write::clear_polymorphic(d, &m, &f, &self.stamp(), &model.name, &ids);
                self.ctx.tx.ex().execute(stmt).await.map_err(|e| db_error(e, &m))?;
            }
        }
        for (id, version) in targets {
            let stmt = write::delete(d, model, self.access.org(), *id, *version);
            let n = self.ctx.tx.ex().execute(stmt).await.map_err(|e| db_error(e, model))?;
            if n == 0 {
                return Err(OrmError::Version { expected: *version, found: *version + 1 });
            }
        }
        Ok(())
    }
}
