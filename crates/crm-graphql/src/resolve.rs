//! Resolvers. A root field compiles its whole selection (nested relations, connections,
//! aggregates) into one IR read, so it costs one statement (aggregates included); fields below
//! it only read the JSON the database built, borrowing it without copies.

use std::sync::Arc;

use async_graphql::SelectionField;
use async_graphql::dynamic::{FieldFuture, FieldValue, ResolverContext};
use crm_model::{Catalog, Model};
use crm_orm::{Aggregate, Data, Filter, GroupBy, Locate, Op, OrderBy, OrmError, Page, Read, Unique, Write, WriteResult};
use serde_json::Value as Json;

use crate::args::{arg, args_json, expected_version, opt_string, opt_u32, parse_page, parse_where};
use crate::connection::conn_of;
use crate::request::{RequestCtx, bad, err, request};
use crate::selection::{
    aggregate_selection, connection_read_of, connection_selection, list_read, list_read_of, one_read_of, selection, target_of,
};

macro_rules! root {
    ($cat:ident, $model:ident, |$ctx:ident, $rc:ident| $body:expr) => {
        move |$ctx: ResolverContext<'_>| {
            let $cat = $cat.clone();
            let $model = $model.clone();
            FieldFuture::new(async move {
                let $rc = request(&$ctx)?;
                let out: Result<Option<FieldValue<'_>>, OrmError> = async { $body }.await;
                out.map_err(|e| err(&e))
            })
        }
    };
}

/// `lead(where:)`.
pub(crate) fn one(cat: Arc<Catalog>, model: Arc<Model>) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    root!(cat, model, |ctx, rc| {
        let read = one_read_of(&cat, &model, &args_json(&ctx.args), &ctx.ctx.field())?;
        let q = rc.access.scope(&cat, &model.name, Op::Read, read)?;
        let page = rc.store.read(&q).await?;
        Ok(page.rows.into_iter().next().map(FieldValue::owned_any))
    })
}

/// `leads(...)`.
pub(crate) fn list(
    cat: Arc<Catalog>,
    model: Arc<Model>,
) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    root!(cat, model, |ctx, rc| {
        let read = list_read_of(&cat, &model, &args_json(&ctx.args), &ctx.ctx.field())?;
        rows(&cat, rc, &model, Op::Read, read).await
    })
}

/// Runs a list read authorized for `op` and returns its rows.
async fn rows<'a>(cat: &Catalog, rc: &RequestCtx, model: &Model, op: Op, read: Read) -> Result<Option<FieldValue<'a>>, OrmError> {
    let q = rc.access.scope(cat, &model.name, op, read)?;
    let page = rc.store.read(&q).await?;
    Ok(Some(FieldValue::list(page.rows.into_iter().map(FieldValue::owned_any))))
}

/// `leadsConnection(...)`.
pub(crate) fn connection(
    cat: Arc<Catalog>,
    model: Arc<Model>,
) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    root!(cat, model, |ctx, rc| {
        let read = connection_read_of(&cat, &model, &args_json(&ctx.args), &ctx.ctx.field())?;
        let q = rc.access.scope(&cat, &model.name, Op::Read, read)?;
        let page = rc.store.read(&q).await?;
        Ok(Some(FieldValue::owned_any(conn_of(page))))
    })
}

/// `leadsGroupBy(...)`.
pub(crate) fn group_by(
    cat: Arc<Catalog>,
    model: Arc<Model>,
) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    root!(cat, model, |ctx, rc| {
        let args = args_json(&ctx.args);
        let by = match args.get("by") {
            Some(Json::Array(items)) => items
                .iter()
                .map(|i| i.as_str().and_then(|s| model.field(s)).map(|f| f.name.clone()).ok_or_else(|| bad("by", "unknown field")))
                .collect::<Result<Vec<_>, _>>()?,
            Some(Json::String(s)) => vec![model.field(s).map(|f| f.name.clone()).ok_or_else(|| bad("by", "unknown field"))?],
            _ => return Err(bad("by", "give at least one field to group by")),
        };
        // The group's numeric aggregates are selected like a connection's; `count` always comes.
        let mut aggregate = Aggregate { count: true, numeric: Vec::new() };
        aggregate_selection(&model, &ctx.ctx.field(), &mut aggregate);
        let q = GroupBy {
            model: model.name.clone(),
            filter: parse_where(&cat, &model, &args)?,
            by,
            aggregate,
            first: opt_u32(&args, "first")?,
            skip: opt_u32(&args, "skip")?.unwrap_or(0),
        };
        let q = rc.access.scope(&cat, &model.name, Op::Read, q)?;
        let groups = rc.store.group_by(&q).await?;
        Ok(Some(FieldValue::list(groups.into_iter().map(FieldValue::owned_any))))
    })
}

/// `node(id:)`: finds the model (one statement), then reads the record with the selection the
/// fragments ask of that type.
pub(crate) fn node(cat: Arc<Catalog>) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    move |ctx: ResolverContext<'_>| {
        let cat = cat.clone();
        FieldFuture::new(async move {
            let rc = request(&ctx)?;
            let out: Result<Option<FieldValue<'_>>, OrmError> = async {
                let args = args_json(&ctx.args);
                let id = args.get("id").and_then(Json::as_str).unwrap_or_default();
                let Ok(uuid) = uuid::Uuid::parse_str(id) else {
                    return Err(bad("id", "not a valid id"));
                };
                let Some(name) = rc.store.locate(&rc.access.scope_tenant(Locate { id: uuid })).await? else { return Ok(None) };
                let model = target_of(&cat, name.as_str())?;
                let read = Read {
                    filter: Filter::parse(&cat, model, &serde_json::json!({ "id": id }))?,
                    page: Page { first: Some(1), ..Page::default() },
                    select: selection(&cat, model, &ctx.ctx.field())?,
                    ..Read::new(model)
                };
                let q = rc.access.scope(&cat, &model.name, Op::Read, read)?;
                let page = rc.store.read(&q).await?;
                Ok(page.rows.into_iter().next().map(|r| FieldValue::owned_any(r).with_type(model.name.to_string())))
            }
            .await;
            out.map_err(|e| err(&e))
        })
    }
}

async fn write_one<'a>(
    cat: &Catalog,
    rc: &RequestCtx,
    model: &Model,
    op: Op,
    w: Write,
    sf: &SelectionField<'_>,
) -> Result<Option<FieldValue<'a>>, OrmError> {
    let select = selection(cat, model, sf)?;
    let q = rc.access.scope(cat, &model.name, op, w)?;
    match rc.store.write(&q, &select).await? {
        WriteResult::One(row) => Ok(row.map(FieldValue::owned_any)),
        WriteResult::Many(page) => Ok(Some(FieldValue::owned_any(conn_of(page)))),
    }
}

/// `createLead(data:)`.
pub(crate) fn create(
    cat: Arc<Catalog>,
    model: Arc<Model>,
) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    root!(cat, model, |ctx, rc| {
        let args = args_json(&ctx.args);
        let data = Data::parse(&cat, &model, arg(&args, "data"), "data")?;
        write_one(&cat, rc, &model, Op::Create, Write::Create { model: model.name.clone(), data }, &ctx.ctx.field()).await
    })
}

/// `updateLead(where:, data:, expectedVersion:)`.
pub(crate) fn update(
    cat: Arc<Catalog>,
    model: Arc<Model>,
) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    root!(cat, model, |ctx, rc| {
        let args = args_json(&ctx.args);
        let target = Unique::parse(&model, arg(&args, "where"), "where")?;
        let data = Data::parse(&cat, &model, arg(&args, "data"), "data")?;
        let w = Write::Update { model: model.name.clone(), target, data, expected_version: expected_version(&args)? };
        write_one(&cat, rc, &model, Op::Update, w, &ctx.ctx.field()).await
    })
}

/// `leadsTrash(...)`: the soft-deleted records.
pub(crate) fn trash(
    cat: Arc<Catalog>,
    model: Arc<Model>,
) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    root!(cat, model, |ctx, rc| {
        let args = args_json(&ctx.args);
        let mut read = Read { select: selection(&cat, &model, &ctx.ctx.field())?, trash: true, ..list_read(&cat, &model, &args)? };
        if read.order.is_empty()
            && let Some(f) = model.field("deletedAt")
        {
            read.order.push(OrderBy { field: f.name.clone(), desc: true });
        }
        // Seeing the trash takes the right to delete (and so to restore).
        rows(&cat, rc, &model, Op::Delete, read).await
    })
}

/// `restoreLead(where:)`.
pub(crate) fn restore(
    cat: Arc<Catalog>,
    model: Arc<Model>,
) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    root!(cat, model, |ctx, rc| {
        let args = args_json(&ctx.args);
        let target = Unique::parse(&model, arg(&args, "where"), "where")?;
        write_one(&cat, rc, &model, Op::Delete, Write::Restore { model: model.name.clone(), target }, &ctx.ctx.field()).await
    })
}

/// `destroyLead(where:)`.
pub(crate) fn destroy(
    cat: Arc<Catalog>,
    model: Arc<Model>,
) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    root!(cat, model, |ctx, rc| {
        let args = args_json(&ctx.args);
        let target = Unique::parse(&model, arg(&args, "where"), "where")?;
        write_one(&cat, rc, &model, Op::Destroy, Write::Destroy { model: model.name.clone(), target }, &ctx.ctx.field()).await
    })
}

/// `auditLog(model:, first:)`.
pub(crate) fn audit_log() -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    |ctx: ResolverContext<'_>| {
        FieldFuture::new(async move {
            let rc = request(&ctx)?;
            let out: Result<Option<FieldValue<'_>>, OrmError> = async {
                let args = args_json(&ctx.args);
                let model = match opt_string(&args, "model")? {
                    Some(m) => Some(crm_model::ModelName::new(&m).map_err(|_| bad("model", "not a model name"))?),
                    None => None,
                };
                let q = crm_orm::AuditQuery { model, first: opt_u32(&args, "first")?.unwrap_or(50) };
                let rows = rc.store.audit_log(&rc.access.scope_tenant(q)).await?;
                Ok(Some(FieldValue::list(rows.into_iter().map(FieldValue::owned_any))))
            }
            .await;
            out.map_err(|e| err(&e))
        })
    }
}

/// `deleteLead(where:, expectedVersion:)`.
pub(crate) fn delete(
    cat: Arc<Catalog>,
    model: Arc<Model>,
) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    root!(cat, model, |ctx, rc| {
        let args = args_json(&ctx.args);
        let target = Unique::parse(&model, arg(&args, "where"), "where")?;
        let w = Write::Delete { model: model.name.clone(), target, expected_version: expected_version(&args)? };
        write_one(&cat, rc, &model, Op::Delete, w, &ctx.ctx.field()).await
    })
}

/// `upsertLead(where:, upsert: {create, update})`: needs both the create and the update grant.
pub(crate) fn upsert(
    cat: Arc<Catalog>,
    model: Arc<Model>,
) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    root!(cat, model, |ctx, rc| {
        let args = args_json(&ctx.args);
        let target = Unique::parse(&model, arg(&args, "where"), "where")?;
        let up = arg(&args, "upsert");
        let create = Data::parse(&cat, &model, up.get("create").unwrap_or(&Json::Null), "upsert.create")?;
        let update = Data::parse(&cat, &model, up.get("update").unwrap_or(&Json::Null), "upsert.update")?;
        if !rc.access.allows(&model.name, Op::Create) {
            return Err(OrmError::Forbidden(format!("not allowed to create {}", model.name)));
        }
        let w = Write::Upsert { model: model.name.clone(), target, create, update };
        write_one(&cat, rc, &model, Op::Update, w, &ctx.ctx.field()).await
    })
}

/// Runs a batch write and returns its connection.
async fn write_many<'a>(
    cat: &Catalog,
    rc: &RequestCtx,
    model: &Model,
    op: Op,
    w: Write,
    sf: &SelectionField<'_>,
) -> Result<Option<FieldValue<'a>>, OrmError> {
    let select = connection_selection(cat, model, sf)?.select;
    let q = rc.access.scope(cat, &model.name, op, w)?;
    match rc.store.write(&q, &select).await? {
        WriteResult::Many(page) => Ok(Some(FieldValue::owned_any(conn_of(page)))),
        WriteResult::One(_) => Err(OrmError::invariant("a batch returned one record")),
    }
}

/// `updateManyLeadsConnection(where:, data:, <page>)`.
pub(crate) fn update_many(
    cat: Arc<Catalog>,
    model: Arc<Model>,
) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    root!(cat, model, |ctx, rc| {
        let args = args_json(&ctx.args);
        let data = Data::parse(&cat, &model, arg(&args, "data"), "data")?;
        let w = Write::UpdateMany {
            model: model.name.clone(),
            filter: parse_where(&cat, &model, &args)?,
            order: Vec::new(),
            page: parse_page(&args)?,
            data,
        };
        write_many(&cat, rc, &model, Op::Update, w, &ctx.ctx.field()).await
    })
}

/// `deleteManyLeadsConnection(where:, <page>)`.
pub(crate) fn delete_many(
    cat: Arc<Catalog>,
    model: Arc<Model>,
) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static {
    root!(cat, model, |ctx, rc| {
        let args = args_json(&ctx.args);
        let w = Write::DeleteMany {
            model: model.name.clone(),
            filter: parse_where(&cat, &model, &args)?,
            order: Vec::new(),
            page: parse_page(&args)?,
        };
        write_many(&cat, rc, &model, Op::Delete, w, &ctx.ctx.field()).await
    })
}
