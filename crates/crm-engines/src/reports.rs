//! Reports: the lead funnel with conversion rates between stages, average time in each stage
//! (from the stage transition log), leads by source / status / owner, and each rep's workload.
//! Everything is computed in the database under the caller's scope (their tenant, read rules
//! and field denials): the funnel and stage times cover the live leads the caller may read, and
//! a section whose field the caller may not read (`source` for `bySource`, `status` for the
//! funnel, …) is `null`.

use std::collections::HashMap;

use crate::rows::{Group, LEAD, MEMBER, MemberSummary, Record, TICKET};
use crm_model::FieldName;
use crm_orm::{Access, Aggregate, Filter, GroupBy, Op, OrmError, Page, Read, Result, StageQuery, Store};
use serde_json::{Value as Json, json};

use crate::routing::CLOSED_LEAD_STATUSES;

/// The lead funnel, in order; `REJECTED` is an exit, reported beside it.
pub const FUNNEL: &[&str] = &["NEW", "QUALIFIED", "CONTACTED", "CONVERTED"];

/// Open ticket statuses are those not in this list.
pub const CLOSED_TICKET_STATUSES: &[&str] = &["RESOLVED", "CLOSED"];

fn field(name: &str) -> Result<FieldName> {
    FieldName::new(name).map_err(|e| OrmError::invariant(e.to_string()))
}

/// Rows of `model` grouped by `by` under the caller's scope, or `None` when the caller may not
/// read `by` or a field of `filter` (the section that needs it is left out of the report).
async fn groups(store: &Store, access: &Access, model: &str, by: &str, filter: &Json) -> Result<Option<Vec<(Json, i64)>>> {
    let Some(m) = store.catalog().model(model).cloned() else { return Ok(None) };
    let q = GroupBy {
        model: m.name.clone(),
        filter: Filter::parse(store.catalog(), &m, filter)?,
        by: vec![field(by)?],
        aggregate: Aggregate::default(),
        first: Some(store.limits().max_page),
        skip: 0,
    };
    let scoped = match access.scope(store.catalog(), &m.name, Op::Read, q) {
        Ok(s) => s,
        Err(OrmError::Forbidden(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let rows = store.group_by(&scoped).await?;
    let groups = rows
        .into_iter()
        .map(|g| {
            let Group { mut key, count } = Group::decode(g)?;
            let key = key.remove(by).ok_or_else(|| OrmError::decode("group key", format!("no `{by}`")))?;
            Ok((key, count))
        })
        .collect::<Result<_>>()?;
    Ok(Some(groups))
}

#[allow(clippy::cast_precision_loss)] // counts of records, far below 2^52
fn ratio(a: i64, b: i64) -> Json {
    if b == 0 { Json::Null } else { json!(((a as f64 / b as f64) * 10_000.0).round() / 10_000.0) }
}

/// The summary report as JSON (the shape of `GET /api/reports/summary` and of the GraphQL
/// `reportSummary` query).
///
/// # Errors
/// `Forbidden` without read access to leads; database failures.
pub async fn summary(store: &Store, access: &Access) -> Result<Json> {
    let lead = store.catalog().model(LEAD).cloned().ok_or_else(|| OrmError::missing_model(LEAD))?;
    if !access.allows(&lead.name, Op::Read) {
        return Err(OrmError::Forbidden("not allowed to read Lead".to_owned()));
    }
    // Member names and capacities, for owners and workload (the fields the caller may read).
    let mut names: HashMap<String, (Option<String>, Option<i64>)> = HashMap::new();
    let member = store.catalog().model(MEMBER).cloned().ok_or_else(|| OrmError::missing_model(MEMBER))?;
    if access.allows(&member.name, Op::Read) {
        let mut read = Read::new(&member);
        read.select.fields.retain(|f| ["id", "name", "capacity"].contains(&f.as_str()) && access.reads_field(&member.name, f.as_str()));
        read.page = Page { first: Some(store.limits().max_page), ..Page::default() };
        for m in store.read(&access.scope(store.catalog(), &member.name, Op::Read, read)?).await?.rows {
            let m = MemberSummary::decode(m)?;
            names.insert(m.id.to_string(), (m.name, m.capacity));
        }
    }
    let bucket = |rows: Vec<(Json, i64)>| -> Vec<Json> {
        let mut v: Vec<Json> = rows.into_iter().map(|(k, n)| json!({ "key": k, "count": n })).collect();
        v.sort_by(|a, b| b["count"].as_i64().cmp(&a["count"].as_i64()).then_with(|| a["key"].to_string().cmp(&b["key"].to_string())));
        v
    };
    // Each breakdown needs its field: one the caller may not read is `null`.
    let by_status = groups(store, access, LEAD, "status", &json!({})).await?;
    let total: Option<i64> = by_status.as_ref().map(|rows| rows.iter().map(|(_, n)| n).sum());
    let by_source = groups(store, access, LEAD, "source", &json!({})).await?;
    let by_owner = groups(store, access, LEAD, "owner", &json!({})).await?.map(|rows| {
        bucket(rows)
            .into_iter()
            .map(|mut b| {
                let name = b.get("key").and_then(Json::as_str).and_then(|k| names.get(k)).and_then(|(n, _)| n.clone());
                if let Some(o) = b.as_object_mut() {
                    o.insert("name".into(), json!(name));
                }
                b
            })
            .collect::<Vec<_>>()
    });
    let stats = match access.scope(
        store.catalog(),
        &lead.name,
        Op::Read,
        StageQuery { model: lead.name.clone(), field: field("status")?, order: FUNNEL.iter().map(|s| (*s).to_owned()).collect() },
    ) {
        Ok(q) => Some(store.stage_stats(&q).await?),
        Err(OrmError::Forbidden(_)) => None,
        Err(e) => return Err(e),
    };
    let (funnel, conversion, time_in_stage) = match &stats {
        None => (Json::Null, Json::Null, Json::Null),
        Some(stats) => {
            let start = stats.reached.first().map_or(0, |(_, n)| *n);
            let mut funnel = Vec::new();
            let mut prev: Option<i64> = None;
            for (stage, n) in &stats.reached {
                funnel.push(json!({
                    "stage": stage,
                    "reached": n,
                    "conversionFromPrevious": prev.map_or(Json::Null, |p| ratio(*n, p)),
                    "conversionFromStart": ratio(*n, start),
                }));
                prev = Some(*n);
            }
            let converted = stats.reached.last().map_or(0, |(_, n)| *n);
            let stays: Vec<Json> = stats
                .stays
                .iter()
                .map(|s| json!({ "stage": s.stage, "completed": s.completed, "averageSeconds": s.average_seconds.map(|a| (a * 1000.0).round() / 1000.0), "current": s.current }))
                .collect();
            (Json::Array(funnel), ratio(converted, start), Json::Array(stays))
        }
    };
    // Workload: open leads and open tickets per member (needs Lead.owner and Lead.status).
    let per_member = |rows: Option<Vec<(Json, i64)>>| -> Option<HashMap<String, i64>> {
        rows.map(|rows| rows.into_iter().filter_map(|(k, n)| Some((k.as_str()?.to_owned(), n))).collect())
    };
    let open_leads = per_member(groups(store, access, LEAD, "owner", &json!({ "status_not_in": CLOSED_LEAD_STATUSES })).await?);
    let open_tickets = match store.catalog().model(TICKET) {
        Some(t) if access.allows(&t.name, Op::Read) => {
            per_member(groups(store, access, TICKET, "assignee", &json!({ "status_not_in": CLOSED_TICKET_STATUSES })).await?)
        }
        _ => Some(HashMap::new()),
    };
    let workload = open_leads.map(|open_leads| {
        let mut workload: Vec<Json> = names
            .iter()
            .map(|(id, (name, capacity))| {
                let leads = open_leads.get(id).copied().unwrap_or(0);
                json!({
                    "member": id,
                    "name": name,
                    "openLeads": leads,
                    "openTickets": open_tickets.as_ref().map(|t| t.get(id).copied().unwrap_or(0)),
                    "capacity": capacity,
                    "utilization": capacity.map_or(Json::Null, |c| ratio(leads, c)),
                })
            })
            .collect();
        workload.sort_by(|a, b| {
            b["openLeads"].as_i64().cmp(&a["openLeads"].as_i64()).then_with(|| a["name"].as_str().cmp(&b["name"].as_str()))
        });
        workload
    });
    Ok(json!({
        "leads": {
            "total": total,
            "byStatus": by_status.map(bucket),
            "bySource": by_source.map(bucket),
            "byOwner": by_owner,
        },
        "funnel": funnel,
        "conversionRate": conversion,
        "timeInStage": time_in_stage,
        "workload": workload,
    }))
}
