//! Root fields. Each compiles its whole selection (nested relations, connections, aggregates)
//! into one IR read or write, so it costs one statement (aggregates included); the fields below
//! it only read the JSON the database built ([`crate::exec`]).

use crm_model::api::roots;
use crm_model::{Catalog, Model};
use crm_orm::{Aggregate, Data, Filter, GroupBy, Locate, Op, OrderBy, OrmError, Page, Read, Unique, Write, WriteResult};
use serde_json::{Map, Value as Json};

use crate::args::{arg, expected_version, opt_string, opt_u32, parse_page, parse_where};
use crate::connection::conn_json;
use crate::exec::sel::Sel;
use crate::request::{RequestCtx, bad};
use crate::selection::{
    aggregate_selection, connection_read_of, connection_selection, list_read, list_read_of, one_read_of, selection, target_of,
};

/// What a root field resolved to: its value, and the model its objects are records (or pages)
/// of, if any.
pub(crate) struct Resolved<'c> {
    pub(crate) value: Json,
    pub(crate) model: Option<&'c Model>,
    /// The object type of the value when the field's type is abstract (`node`).
    pub(crate) concrete: Option<&'c str>,
}

impl<'c> Resolved<'c> {
    fn of(value: Json, model: &'c Model) -> Resolved<'c> {
        Resolved { value, model: Some(model), concrete: None }
    }
    fn plain(value: Json) -> Resolved<'c> {
        Resolved { value, model: None, concrete: None }
    }
}

/// What a root field of a model does.
#[derive(Clone, Copy)]
enum ModelRoot {
    One,
    List,
    Connection,
    Trash,
    GroupBy,
    Create,
    Update,
    Delete,
    Restore,
    Destroy,
    Upsert,
    DeleteMany,
    UpdateMany,
}

fn model_root<'c>(cat: &'c Catalog, name: &str) -> Option<(&'c Model, ModelRoot)> {
    cat.models().find_map(|m| {
        let a = &m.api;
        let roots = [
            (&a.one, ModelRoot::One),
            (&a.list, ModelRoot::List),
            (&a.list_connection, ModelRoot::Connection),
            (&a.trash, ModelRoot::Trash),
            (&a.list_group_by, ModelRoot::GroupBy),
            (&a.create, ModelRoot::Create),
            (&a.update, ModelRoot::Update),
            (&a.delete, ModelRoot::Delete),
            (&a.restore, ModelRoot::Restore),
            (&a.destroy, ModelRoot::Destroy),
            (&a.upsert, ModelRoot::Upsert),
            (&a.delete_many, ModelRoot::DeleteMany),
            (&a.update_many, ModelRoot::UpdateMany),
        ];
        roots.into_iter().find(|(n, _)| n.as_str() == name).map(|(_, kind)| (&**m, kind))
    })
}

/// Resolves root field `name` with `args` selecting `sel`.
pub(crate) async fn root<'c>(
    rc: &RequestCtx,
    cat: &'c Catalog,
    name: &str,
    args: &Map<String, Json>,
    sel: &Sel<'_>,
) -> Result<Resolved<'c>, OrmError> {
    match name {
        roots::NODE => return node(rc, cat, args, sel).await,
        roots::AUDIT_LOG => return audit_log(rc, args).await.map(Resolved::plain),
        roots::METADATA => return Ok(Resolved::plain(crate::meta::metadata(rc))),
        roots::CUSTOM_DEFINITIONS => return crate::meta::custom_definitions(rc, args).await.map(Resolved::plain),
        roots::REPORT_SUMMARY => return crate::engines::summary(rc, args.clone()).await.map(Resolved::plain),
        roots::WEBHOOK_DELIVERIES => return crate::engines::deliveries(rc, args.clone()).await.map(Resolved::plain),
        roots::TAG_LEADS => return crate::engines::tag_leads(rc, args.clone()).await.map(Resolved::plain),
        roots::ROUTE_LEADS => return crate::engines::route_leads(rc, args.clone()).await.map(Resolved::plain),
        roots::INGEST_SOCIAL_EVENTS => return crate::engines::ingest(rc, args.clone()).await.map(Resolved::plain),
        roots::START_ATTACHMENT_UPLOAD => return crate::engines::start_upload(rc, args.clone()).await.map(Resolved::plain),
        roots::ATTACHMENT_DOWNLOAD => return crate::engines::download(rc, args.clone()).await.map(Resolved::plain),
        _ => {}
    }
    if let Some(change) = crate::meta::change_of(name, args)? {
        return crate::meta::apply(rc, change).await.map(Resolved::plain);
    }
    let Some((model, kind)) = model_root(cat, name) else {
        return Err(OrmError::invariant(format!("no resolver for root field `{name}`")));
    };
    let value = match kind {
        ModelRoot::One => {
            let read = one_read_of(cat, model, args, sel)?;
            let q = rc.access.scope(cat, &model.name, Op::Read, read)?;
            rc.store.read(&q).await?.rows.into_iter().next().unwrap_or(Json::Null)
        }
        ModelRoot::List => rows(cat, rc, model, Op::Read, list_read_of(cat, model, args, sel)?).await?,
        ModelRoot::Connection => {
            let read = connection_read_of(cat, model, args, sel)?;
            let q = rc.access.scope(cat, &model.name, Op::Read, read)?;
            conn_json(rc.store.read(&q).await?)
        }
        ModelRoot::Trash => {
            let mut read = Read { select: selection(cat, model, sel)?, trash: true, ..list_read(cat, model, args)? };
            if read.order.is_empty()
                && let Some(f) = model.field("deletedAt")
            {
                read.order.push(OrderBy { field: f.name.clone(), desc: true });
            }
            // Seeing the trash takes the right to delete (and so to restore).
            rows(cat, rc, model, Op::Delete, read).await?
        }
        ModelRoot::GroupBy => group_by(rc, cat, model, args, sel).await?,
        ModelRoot::Create => {
            let data = Data::parse(cat, model, arg(args, "data"), "data")?;
            write_one(cat, rc, model, Op::Create, Write::Create { model: model.name.clone(), data }, sel).await?
        }
        ModelRoot::Update => {
            let target = Unique::parse(model, arg(args, "where"), "where")?;
            let data = Data::parse(cat, model, arg(args, "data"), "data")?;
            let w = Write::Update { model: model.name.clone(), target, data, expected_version: expected_version(args)? };
            write_one(cat, rc, model, Op::Update, w, sel).await?
        }
        ModelRoot::Delete => {
            let target = Unique::parse(model, arg(args, "where"), "where")?;
            let w = Write::Delete { model: model.name.clone(), target, expected_version: expected_version(args)? };
            write_one(cat, rc, model, Op::Delete, w, sel).await?
        }
        ModelRoot::Restore => {
            let target = Unique::parse(model, arg(args, "where"), "where")?;
            write_one(cat, rc, model, Op::Delete, Write::Restore { model: model.name.clone(), target }, sel).await?
        }
        ModelRoot::Destroy => {
            let target = Unique::parse(model, arg(args, "where"), "where")?;
            write_one(cat, rc, model, Op::Destroy, Write::Destroy { model: model.name.clone(), target }, sel).await?
        }
        ModelRoot::Upsert => {
            // Needs both the create and the update grant.
            let target = Unique::parse(model, arg(args, "where"), "where")?;
            let up = arg(args, "upsert");
            let create = Data::parse(cat, model, up.get("create").unwrap_or(&Json::Null), "upsert.create")?;
            let update = Data::parse(cat, model, up.get("update").unwrap_or(&Json::Null), "upsert.update")?;
            if !rc.access.allows(&model.name, Op::Create) {
                return Err(OrmError::Forbidden(format!("not allowed to create {}", model.name)));
            }
            let w = Write::Upsert { model: model.name.clone(), target, create, update };
            write_one(cat, rc, model, Op::Update, w, sel).await?
        }
        ModelRoot::UpdateMany => {
            let data = Data::parse(cat, model, arg(args, "data"), "data")?;
            let w = Write::UpdateMany {
                model: model.name.clone(),
                filter: parse_where(cat, model, args)?,
                order: Vec::new(),
                page: parse_page(args)?,
                data,
            };
            write_many(cat, rc, model, Op::Update, w, sel).await?
        }
        ModelRoot::DeleteMany => {
            let w = Write::DeleteMany {
                model: model.name.clone(),
                filter: parse_where(cat, model, args)?,
                order: Vec::new(),
                page: parse_page(args)?,
            };
            write_many(cat, rc, model, Op::Delete, w, sel).await?
        }
    };
    Ok(Resolved::of(value, model))
}

/// Runs a list read authorized for `op` and returns its rows.
async fn rows(cat: &Catalog, rc: &RequestCtx, model: &Model, op: Op, read: Read) -> Result<Json, OrmError> {
    let q = rc.access.scope(cat, &model.name, op, read)?;
    Ok(Json::Array(rc.store.read(&q).await?.rows))
}

/// `leadsGroupBy(...)`.
async fn group_by(rc: &RequestCtx, cat: &Catalog, model: &Model, args: &Map<String, Json>, sel: &Sel<'_>) -> Result<Json, OrmError> {
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
    aggregate_selection(model, sel, &mut aggregate);
    let q = GroupBy {
        model: model.name.clone(),
        filter: parse_where(cat, model, args)?,
        by,
        aggregate,
        first: opt_u32(args, "first")?,
        skip: opt_u32(args, "skip")?.unwrap_or(0),
    };
    let q = rc.access.scope(cat, &model.name, Op::Read, q)?;
    let groups = rc.store.group_by(&q).await?;
    serde_json::to_value(groups).map_err(|e| OrmError::invariant(e.to_string()))
}

/// `node(id:)`: finds the model (one statement), then reads the record with the selection the
/// fragments ask of that type.
async fn node<'c>(rc: &RequestCtx, cat: &'c Catalog, args: &Map<String, Json>, sel: &Sel<'_>) -> Result<Resolved<'c>, OrmError> {
    let id = args.get("id").and_then(Json::as_str).unwrap_or_default();
    let Ok(uuid) = uuid::Uuid::parse_str(id) else {
        return Err(bad("id", "not a valid id"));
    };
    let Some(name) = rc.store.locate(&rc.access.scope_tenant(Locate { id: uuid })).await? else {
        return Ok(Resolved::plain(Json::Null));
    };
    let model = target_of(cat, name.as_str())?;
    let read = Read {
        filter: Filter::parse(cat, model, &serde_json::json!({ "id": id }))?,
        page: Page { first: Some(1), ..Page::default() },
        select: selection(cat, model, sel)?,
        ..Read::new(model)
    };
    let q = rc.access.scope(cat, &model.name, Op::Read, read)?;
    let row = rc.store.read(&q).await?.rows.into_iter().next().unwrap_or(Json::Null);
    Ok(Resolved { value: row, model: Some(model), concrete: Some(model.api.object.as_str()) })
}

async fn write_one(cat: &Catalog, rc: &RequestCtx, model: &Model, op: Op, w: Write, sel: &Sel<'_>) -> Result<Json, OrmError> {
    let select = selection(cat, model, sel)?;
    let q = rc.access.scope(cat, &model.name, op, w)?;
    match rc.store.write(&q, &select).await? {
        WriteResult::One(row) => Ok(row.unwrap_or(Json::Null)),
        WriteResult::Many(page) => Ok(conn_json(page)),
    }
}

/// Runs a batch write and returns its connection.
async fn write_many(cat: &Catalog, rc: &RequestCtx, model: &Model, op: Op, w: Write, sel: &Sel<'_>) -> Result<Json, OrmError> {
    let select = connection_selection(cat, model, sel)?.select;
    let q = rc.access.scope(cat, &model.name, op, w)?;
    match rc.store.write(&q, &select).await? {
        WriteResult::Many(page) => Ok(conn_json(page)),
        WriteResult::One(_) => Err(OrmError::invariant("a batch returned one record")),
    }
}

/// `auditLog(model:, first:)`.
async fn audit_log(rc: &RequestCtx, args: &Map<String, Json>) -> Result<Json, OrmError> {
    let model = match opt_string(args, "model")? {
        Some(m) => Some(crm_model::ModelName::new(&m).map_err(|_| bad("model", "not a model name"))?),
        None => None,
    };
    let q = crm_orm::AuditQuery { model, first: opt_u32(args, "first")?.unwrap_or(50) };
    let rows = rc.store.audit_log(&rc.access.scope_tenant(q)).await?;
    serde_json::to_value(rows).map_err(|e| OrmError::invariant(e.to_string()))
}
