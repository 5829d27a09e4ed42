//! Reports: the lead funnel with conversion rates between stages, average time in each stage
//! (from the stage transition log), leads by source / status / owner, and each rep's workload.
//! Everything is computed in the database under the caller's scope (their tenant and read
//! rules); the funnel and stage times cover the tenant's live leads.

use std::collections::HashMap;

use crm_model::FieldName;
use crm_orm::{Access, Aggregate, Engine, Filter, GroupBy, Op, OrmError, Page, Read, Result};
use serde_json::{Value as Json, json};

use crate::routing::CLOSED_LEAD_STATUSES;

/// The lead funnel, in order; `REJECTED` is an exit, reported beside it.
pub const FUNNEL: &[&str] = &["NEW", "QUALIFIED", "CONTACTED", "CONVERTED"];

/// Open ticket statuses are those not in this list.
pub const CLOSED_TICKET_STATUSES: &[&str] = &["RESOLVED", "CLOSED"];

fn field(name: &str) -> Result<FieldName> {
    FieldName::new(name).map_err(|e| OrmError::Internal(e.to_string()))
}

async fn groups(engine: &Engine, access: &Access, model: &str, by: &str, filter: &Json) -> Result<Vec<(Json, i64)>> {
    let m = engine.catalog().model(model).cloned().ok_or_else(|| OrmError::bad("model", format!("unknown model `{model}`")))?;
    let q = GroupBy {
        model: m.name.clone(),
        filter: Filter::parse(engine.catalog(), &m, filter)?,
        by: vec![field(by)?],
        aggregate: Aggregate::default(),
        first: Some(engine.limits().max_page),
        skip: 0,
    };
    let rows = engine.group_by(&access.scope(engine.catalog(), &m.name, Op::Read, q)?).await?;
    Ok(rows
        .into_iter()
        .map(|g| (g.get("key").and_then(|k| k.get(by)).cloned().unwrap_or(Json::Null), g.get("count").and_then(Json::as_i64).unwrap_or(0)))
        .collect())
}

fn ratio(a: i64, b: i64) -> Json {
    if b == 0 { Json::Null } else { json!(((a as f64 / b as f64) * 10_000.0).round() / 10_000.0) }
}

/// The summary report as JSON (the shape of `GET /api/reports/summary` and of the GraphQL
/// `reportSummary` query).
///
/// # Errors
/// `Forbidden` without read access to leads; database failures.
pub async fn summary(engine: &Engine, access: &Access) -> Result<Json> {
    let lead = engine.catalog().model("Lead").cloned().ok_or_else(|| OrmError::Internal("no Lead model".to_owned()))?;
    if !access.allows(&lead.name, Op::Read) {
        return Err(OrmError::Forbidden("not allowed to read Lead".to_owned()));
    }
    // Member names, for owners and workload.
    let mut names: HashMap<String, (String, Option<i64>)> = HashMap::new();
    let member = engine.catalog().model("Member").cloned().ok_or_else(|| OrmError::Internal("no Member model".to_owned()))?;
    if access.allows(&member.name, Op::Read) {
        let mut read = Read::new(&member);
        read.page = Page { first: Some(engine.limits().max_page), ..Page::default() };
        for m in engine.read(&access.scope(engine.catalog(), &member.name, Op::Read, read)?).await?.rows {
            if let Some(id) = m.get("id").and_then(Json::as_str) {
                let name = m.get("name").and_then(Json::as_str).unwrap_or_default().to_owned();
                names.insert(id.to_owned(), (name, m.get("capacity").and_then(Json::as_i64)));
            }
        }
    }
    let bucket = |rows: Vec<(Json, i64)>| -> Vec<Json> {
        let mut v: Vec<Json> = rows.into_iter().map(|(k, n)| json!({ "key": k, "count": n })).collect();
        v.sort_by(|a, b| b["count"].as_i64().cmp(&a["count"].as_i64()).then_with(|| a["key"].to_string().cmp(&b["key"].to_string())));
        v
    };
    let by_status = groups(engine, access, "Lead", "status", &json!({})).await?;
    let total: i64 = by_status.iter().map(|(_, n)| n).sum();
    let by_source = groups(engine, access, "Lead", "source", &json!({})).await?;
    let by_owner = groups(engine, access, "Lead", "owner", &json!({})).await?;
    let by_owner: Vec<Json> = bucket(by_owner)
        .into_iter()
        .map(|mut b| {
            let name = b["key"].as_str().and_then(|k| names.get(k)).map(|(n, _)| n.clone());
            if let Some(o) = b.as_object_mut() {
                o.insert("name".into(), json!(name));
            }
            b
        })
        .collect();
    let stats = engine.stage_stats(access, "Lead", "status", FUNNEL).await?;
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
    let time_in_stage: Vec<Json> = stats
        .stays
        .iter()
        .map(|s| json!({ "stage": s.stage, "completed": s.completed, "averageSeconds": s.average_seconds.map(|a| (a * 1000.0).round() / 1000.0), "current": s.current }))
        .collect();
    // Workload: open leads and open tickets per member.
    let open_leads: HashMap<String, i64> = groups(engine, access, "Lead", "owner", &json!({ "status_not_in": CLOSED_LEAD_STATUSES }))
        .await?
        .into_iter()
        .filter_map(|(k, n)| Some((k.as_str()?.to_owned(), n)))
        .collect();
    let ticket = engine.catalog().model("Ticket").cloned();
    let open_tickets: HashMap<String, i64> = match ticket {
        Some(t) if access.allows(&t.name, Op::Read) => {
            groups(engine, access, "Ticket", "assignee", &json!({ "status_not_in": CLOSED_TICKET_STATUSES }))
                .await?
                .into_iter()
                .filter_map(|(k, n)| Some((k.as_str()?.to_owned(), n)))
                .collect()
        }
        _ => HashMap::new(),
    };
    let mut workload: Vec<Json> = names
        .iter()
        .map(|(id, (name, capacity))| {
            let leads = open_leads.get(id).copied().unwrap_or(0);
            json!({
                "member": id,
                "name": name,
                "openLeads": leads,
                "openTickets": open_tickets.get(id).copied().unwrap_or(0),
                "capacity": capacity,
                "utilization": capacity.map_or(Json::Null, |c| ratio(leads, c)),
            })
        })
        .collect();
    workload
        .sort_by(|a, b| b["openLeads"].as_i64().cmp(&a["openLeads"].as_i64()).then_with(|| a["name"].as_str().cmp(&b["name"].as_str())));
    Ok(json!({
        "leads": {
            "total": total,
            "byStatus": bucket(by_status),
            "bySource": bucket(by_source),
            "byOwner": by_owner,
        },
        "funnel": funnel,
        "conversionRate": ratio(converted, start),
        "timeInStage": time_in_stage,
        "workload": workload,
    }))
}
