//! The routing engine: assigns a lead to a member (its `owner`) by the tenant's `RoutingRule`s.
//!
//! Rules are tried by priority (then name). A rule applies when its condition matches the lead;
//! its pool is the active members of its teams (every active member for an empty pool) who have
//! its required skills. A member qualifies unless away, outside their working hours in their time
//! zone (when the rule respects working hours), or at capacity (open leads ≥ `capacity`). When
//! no member of a rule qualifies, the next rule is tried. The rule's strategy picks among the
//! qualifying members:
//! - `ROUND_ROBIN`: the next member after the rule's durable pointer (`lastAssigned`), in pool
//!   order (name, then id);
//! - `LOAD_BALANCED`: the fewest open leads, ties in round-robin order;
//! - `SKILL_MATCH`: the most skills matching the lead's tags and source, then fewest open leads,
//!   then round-robin order; a member matching none does not qualify.
//!
//! The rule's row is locked before its pointer and the members' loads are read, so concurrent
//! routings through one rule are serialized: no member is chosen twice for one turn and capacity
//! holds. Every decision, also "nobody qualified", is recorded as an `Assignment` with the rule
//! and a readable reason.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, NaiveTime, Timelike, Utc, Weekday};
use crm_orm::{Filter, GroupBy, Op, OrmError, Result, TxCtx, TxFuture, TxWork};
use serde::Serialize;
use serde_json::{Value as Json, json};
use uuid::Uuid;

use crate::rows::{ASSIGNMENT, Group, LEAD, LeadAttributes, Member, Record, RoutingRule, Strategy};
use crate::rules;

/// Lead statuses that count as open work.
pub const CLOSED_LEAD_STATUSES: &[&str] = &["CONVERTED", "REJECTED"];

/// One routing decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// The lead.
    pub lead: Uuid,
    /// The member chosen, if any.
    pub member: Option<Uuid>,
    /// The chosen member's name.
    pub member_name: Option<String>,
    /// The rule that chose.
    pub rule: Option<Uuid>,
    /// The strategy used.
    pub strategy: Option<String>,
    /// Why.
    pub reason: String,
}

/// Whether `at` falls in the working hours `hours` (`{"mon": ["09:00", "17:00"], …}`, a day may
/// also list several ranges `[["09:00", "12:00"], ["13:00", "17:00"]]`) in time zone `tz` (UTC
/// when absent). No hours at all means always available; a day not listed is a day off; a range
/// whose end is not after its start runs past midnight.
///
/// # Errors
/// An unknown time zone or malformed hours, as a message.
pub fn within_hours(hours: Option<&Json>, tz: Option<&str>, at: DateTime<Utc>) -> std::result::Result<bool, String> {
    let Some(hours) = hours else { return Ok(true) };
    let zone: chrono_tz::Tz = match tz {
        None | Some("") => chrono_tz::UTC,
        Some(name) => name.parse().map_err(|_| format!("unknown time zone `{name}`"))?,
    };
    let local = at.with_timezone(&zone);
    let time = NaiveTime::from_hms_opt(local.hour(), local.minute(), local.second()).unwrap_or(NaiveTime::MIN);
    let in_day = |day: Weekday, pred: &dyn Fn(NaiveTime, NaiveTime) -> bool| -> std::result::Result<bool, String> {
        let key = match day {
            Weekday::Mon => "mon",
            Weekday::Tue => "tue",
            Weekday::Wed => "wed",
            Weekday::Thu => "thu",
            Weekday::Fri => "fri",
            Weekday::Sat => "sat",
            Weekday::Sun => "sun",
        };
        let Some(spec) = hours.get(key) else { return Ok(false) };
        for (start, end) in ranges(spec)? {
            if pred(start, end) {
                return Ok(true);
            }
        }
        Ok(false)
    };
    // Today's ranges, and yesterday's ranges that run past midnight.
    if in_day(local.weekday(), &|s, e| if s < e { time >= s && time < e } else { time >= s })? {
        return Ok(true);
    }
    in_day(local.weekday().pred(), &|s, e| s >= e && time < e)
}

fn ranges(spec: &Json) -> std::result::Result<Vec<(NaiveTime, NaiveTime)>, String> {
    let parse = |v: &Json| -> std::result::Result<NaiveTime, String> {
        let s = v.as_str().ok_or("working hours are \"HH:MM\" strings")?;
        NaiveTime::parse_from_str(s, "%H:%M").map_err(|_| format!("`{s}` is not HH:MM"))
    };
    let pair = |v: &Json| -> std::result::Result<(NaiveTime, NaiveTime), String> {
        match v.as_array().map(Vec::as_slice) {
            Some([a, b]) => Ok((parse(a)?, parse(b)?)),
            _ => Err("a working-hours range is [\"HH:MM\", \"HH:MM\"]".to_owned()),
        }
    };
    match spec {
        Json::Null => Ok(Vec::new()),
        Json::Array(items) if items.iter().all(Json::is_string) => Ok(vec![pair(spec)?]),
        Json::Array(items) => items.iter().map(pair).collect(),
        _ => Err("a day's working hours are a range or a list of ranges".to_owned()),
    }
}

/// Open leads per owner.
async fn loads(tx: &mut TxCtx<'_>) -> Result<HashMap<Uuid, i64>> {
    let lead = tx.model(LEAD)?;
    let filter = Filter::parse(tx.catalog(), &lead, &json!({ "status_not_in": CLOSED_LEAD_STATUSES }))?;
    let owner = crm_model::FieldName::new("owner").map_err(|e| crm_orm::OrmError::invariant(e.to_string()))?;
    let q = GroupBy {
        model: lead.name.clone(),
        filter,
        by: vec![owner],
        aggregate: crm_orm::Aggregate::default(),
        first: Some(10_000),
        skip: 0,
    };
    let mut out = HashMap::new();
    for g in tx.group_by(&q).await? {
        let g = Group::decode(g)?;
        // Unowned leads form a group of their own (a null owner).
        match g.key.get("owner") {
            Some(Json::String(id)) => {
                out.insert(Uuid::parse_str(id).map_err(|e| OrmError::decode("group key", e))?, g.count);
            }
            Some(Json::Null) => {}
            _ => return Err(OrmError::decode("group key", "no owner")),
        }
    }
    Ok(out)
}

/// Routes lead `lead` at time `at` and records the decision (an `Assignment`); sets the lead's
/// owner when a member was chosen.
///
/// # Errors
/// Database failures; an unknown lead (`NotFound`).
pub async fn route(tx: &mut TxCtx<'_>, lead_id: Uuid, at: DateTime<Utc>) -> Result<Decision> {
    route_many(tx, &[lead_id], at).await?.into_iter().next().ok_or_else(|| OrmError::invariant("routing one lead made no decision"))
}

/// A lead as routing sees it.
struct Routed {
    attributes: LeadAttributes,
    /// Its owner before routing.
    owner: Option<Uuid>,
    /// Whether it counts as open work.
    open: bool,
}

/// Routes leads `ids`, in order, at time `at`, exactly as routing them one after the other would
/// (each choice moves its rule's pointer and the chosen member's load before the next lead),
/// with a few statements for the whole set: the leads, rules, members and loads read once, one
/// match per rule, owners set per member, pointers per rule, decisions recorded together.
///
/// # Errors
/// Database failures; an unknown lead (`NotFound`).
pub async fn route_many(tx: &mut TxCtx<'_>, ids: &[Uuid], at: DateTime<Utc>) -> Result<Vec<Decision>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let lead_model = tx.model(LEAD)?;
    let mut leads: HashMap<Uuid, Routed> = HashMap::new();
    for row in tx.find_all(&lead_model, Filter::ids(ids)?, u32::try_from(ids.len()).unwrap_or(u32::MAX)).await? {
        let owner =
            row.get("owner").and_then(Json::as_str).map(Uuid::parse_str).transpose().map_err(|e| OrmError::decode("lead owner", e))?;
        let open = !row.get("status").and_then(Json::as_str).is_some_and(|s| CLOSED_LEAD_STATUSES.contains(&s));
        let attributes = LeadAttributes::decode(row)?;
        leads.insert(attributes.id, Routed { attributes, owner, open });
    }
    if let Some(missing) = ids.iter().find(|id| !leads.contains_key(id)) {
        return Err(OrmError::NotFound(format!("no Lead with id {missing}")));
    }
    let blank = |lead: Uuid| Decision { lead, member: None, member_name: None, rule: None, strategy: None, reason: String::new() };
    let rule_rows: Vec<RoutingRule> = rules::enabled(tx).await?;
    if rule_rows.is_empty() {
        return Ok(ids.iter().map(|id| Decision { reason: "no enabled routing rule".to_owned(), ..blank(*id) }).collect());
    }
    let member_model = tx.model(Member::MODEL)?;
    let rule_model = tx.model(RoutingRule::MODEL)?;
    let active = Filter::parse(tx.catalog(), &member_model, &json!({ "active": true }))?;
    let mut members: Vec<Member> =
        tx.find_all(&member_model, active, 10_000).await?.into_iter().map(Member::decode).collect::<Result<_>>()?;
    for m in &mut members {
        m.skills = m.skills.iter().map(|s| s.to_lowercase()).collect();
    }
    members.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    // Which rule applies to which lead: one statement per rule for the whole set.
    let mut applies: Vec<(RoutingRule, std::collections::HashSet<Uuid>)> = Vec::new();
    for r in rule_rows {
        let cond = match rules::condition(tx.catalog(), &lead_model, r.condition.as_ref()) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(rule = %r.name, error = %e, "routing rule skipped: its condition is invalid");
                continue;
            }
        };
        let hits = tx.matching(&lead_model, ids, &cond).await?.into_iter().collect();
        applies.push((r, hits));
    }
    // Serialize routings through these rules, then read their pointers and the loads afresh.
    let mut locked: HashMap<Uuid, RoutingRule> = HashMap::new();
    for (r, hits) in &applies {
        if hits.is_empty() {
            continue;
        }
        tx.lock(&rule_model, r.id).await?;
        let fresh = tx.find_all(&rule_model, Filter::ids(&[r.id])?, 1).await?.into_iter().next();
        locked.insert(
            r.id,
            match fresh {
                Some(row) => RoutingRule::decode(row)?,
                None => r.clone(),
            },
        );
    }
    let mut load = if locked.is_empty() { HashMap::new() } else { loads(tx).await? };
    let mut decisions = Vec::with_capacity(ids.len());
    for id in ids {
        let lead = leads.get(id).ok_or_else(|| OrmError::invariant("a routed lead not read"))?;
        let mut decision = blank(*id);
        let mut tried = Vec::new();
        for (r, hits) in &applies {
            if !hits.contains(id) {
                continue;
            }
            let Some(rule) = locked.get(&r.id) else { continue };
            match choose(rule, &members, &load, &lead.attributes, at) {
                Err(why) => tried.push(format!("{}: {why}", rule.name)),
                Ok((m, reason)) => {
                    decision.reason = reason;
                    if !tried.is_empty() {
                        decision.reason.push_str(&format!(" (fell through: {})", tried.join("; ")));
                    }
                    decision.member = Some(m.id);
                    decision.member_name = Some(m.name.clone());
                    decision.rule = Some(rule.id);
                    decision.strategy = Some(rule.strategy.as_str().to_owned());
                    break;
                }
            }
        }
        if let (Some(m), Some(rule)) = (decision.member, decision.rule) {
            // The next lead sees this choice: the rule's pointer and the loads move.
            if let Some(r) = locked.get_mut(&rule) {
                r.last_assigned = Some(m);
            }
            if lead.open {
                *load.entry(m).or_insert(0) += 1;
                if let Some(o) = lead.owner {
                    *load.entry(o).or_insert(0) -= 1;
                }
            }
        } else {
            decision.reason = if tried.is_empty() {
                "no routing rule matched the lead".to_owned()
            } else {
                format!("nobody qualified: {}", tried.join("; "))
            };
        }
        decisions.push(decision);
    }
    // Owners per member, pointers per rule, every decision recorded.
    let mut by_member: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    let mut last_of_rule: HashMap<Uuid, Uuid> = HashMap::new();
    for d in &decisions {
        if let (Some(m), Some(r)) = (d.member, d.rule) {
            by_member.entry(m).or_default().push(d.lead);
            last_of_rule.insert(r, m);
        }
    }
    for (m, leads) in by_member {
        tx.update_many(LEAD, &leads, &json!({ "owner": { "connect": { "id": m.to_string() } } })).await?;
    }
    for (r, m) in last_of_rule {
        tx.update(RoutingRule::MODEL, r, &json!({ "lastAssigned": { "connect": { "id": m.to_string() } } })).await?;
    }
    let inputs: Vec<Json> = decisions.iter().map(assignment_input).collect();
    tx.create_many(ASSIGNMENT, &inputs).await?;
    Ok(decisions)
}

/// The member rule `rule` picks for a lead with `attributes` at `at`, and why; or why nobody.
fn choose<'m>(
    rule: &RoutingRule,
    members: &'m [Member],
    loads: &HashMap<Uuid, i64>,
    attributes: &LeadAttributes,
    at: DateTime<Utc>,
) -> std::result::Result<(&'m Member, String), String> {
    let attributes: Vec<String> = attributes.tags.iter().chain(&attributes.source).map(|s| s.to_lowercase()).collect();
    let pool = &rule.pool;
    let required: Vec<String> = rule.required_skills.iter().map(|s| s.to_lowercase()).collect();
    // Null is the model's default: working hours are respected.
    let hours_apply = rule.respect_working_hours != Some(false);
    let strategy = rule.strategy;
    let last = rule.last_assigned;
    let in_pool: Vec<&Member> = members
        .iter()
        .filter(|m| pool.is_empty() || m.teams.iter().any(|t| pool.contains(t)))
        .filter(|m| required.iter().all(|s| m.skills.contains(s)))
        .collect();
    let mut skipped = Vec::new();
    let mut ok: Vec<&Member> = Vec::new();
    for m in &in_pool {
        let open = loads.get(&m.id).copied().unwrap_or(0);
        if m.away == Some(true) {
            skipped.push(format!("{} (away)", m.name));
        } else if hours_apply && !within_hours(m.working_hours.as_ref(), m.time_zone.as_deref(), at).unwrap_or(false) {
            skipped.push(format!("{} (outside working hours)", m.name));
        } else if m.capacity.is_some_and(|c| open >= c) {
            skipped.push(format!("{} (at capacity {open}/{})", m.name, m.capacity.unwrap_or(0)));
        } else {
            ok.push(m);
        }
    }
    // Round-robin order: pool order, starting after the pointer.
    let start = last.and_then(|l| in_pool.iter().position(|m| m.id == l)).map_or(0, |p| p + 1);
    let n = in_pool.len().max(1);
    let rr = |m: &Member| in_pool.iter().position(|x| x.id == m.id).map_or(usize::MAX, |p| (p + n - start % n) % n);
    let score = |m: &Member| m.skills.iter().filter(|s| attributes.contains(s)).count();
    if strategy == Strategy::SkillMatch {
        ok.retain(|m| {
            let keep = score(m) > 0;
            if !keep {
                skipped.push(format!("{} (no matching skill)", m.name));
            }
            keep
        });
    }
    let chosen = match strategy {
        Strategy::LoadBalanced => ok.iter().min_by_key(|m| (loads.get(&m.id).copied().unwrap_or(0), rr(m))),
        Strategy::SkillMatch => ok.iter().min_by_key(|m| (usize::MAX - score(m), loads.get(&m.id).copied().unwrap_or(0), rr(m))),
        Strategy::RoundRobin => ok.iter().min_by_key(|m| rr(m)),
    }
    .copied();
    let skipped_text = if skipped.is_empty() { String::new() } else { format!("; skipped: {}", skipped.join(", ")) };
    let Some(m) = chosen else {
        return Err(if in_pool.is_empty() {
            "no active member in its pool with the required skills".to_owned()
        } else {
            format!("no member qualified{skipped_text}")
        });
    };
    let open = loads.get(&m.id).copied().unwrap_or(0);
    let why = match strategy {
        Strategy::LoadBalanced => format!("fewest open leads ({open})"),
        Strategy::SkillMatch => format!("{} matching skill(s), {open} open lead(s)", score(m)),
        Strategy::RoundRobin => match last.and_then(|l| members.iter().find(|x| x.id == l)) {
            Some(prev) => format!("next in turn after {}", prev.name),
            None => "first in turn".to_owned(),
        },
    };
    let cap = m.capacity.map_or(String::new(), |c| format!(", load {open}/{c}"));
    let name = &rule.name;
    Ok((m, format!("rule `{name}` ({}): {} — {why}{cap}{skipped_text}", strategy.as_str().to_lowercase().replace('_', "-"), m.name)))
}

fn assignment_input(d: &Decision) -> Json {
    let mut input = json!({ "lead": { "connect": { "id": d.lead.to_string() } }, "strategy": d.strategy, "reason": d.reason });
    if let Some(o) = input.as_object_mut() {
        if let Some(m) = d.member {
            o.insert("member".into(), json!({ "connect": { "id": m.to_string() } }));
        }
        if let Some(r) = d.rule {
            o.insert("rule".into(), json!({ "connect": { "id": r.to_string() } }));
        }
    }
    input
}

/// On-demand routing of the leads matching a `LeadWhere` that the caller may update.
#[derive(Debug, Clone)]
pub struct RouteLeads {
    /// The `LeadWhere` filter (JSON).
    pub filter: Json,
    /// Route leads that already have an owner too (re-assignment); otherwise only unassigned ones.
    pub reassign: bool,
    /// The time availability is judged at (now by default).
    pub at: Option<DateTime<Utc>>,
}

impl TxWork for RouteLeads {
    type Output = Vec<Decision>;
    fn run<'a>(&'a self, tx: &'a mut TxCtx<'_>) -> TxFuture<'a, Vec<Decision>> {
        Box::pin(async move {
            let lead = tx.model(LEAD)?;
            let filter = Filter::parse(tx.catalog(), &lead, &self.filter)?;
            // The caller's filter goes through their scope (tenant, row rule, field denials); the
            // engine's own "not assigned yet" is added beside it.
            let unassigned = if self.reassign { Filter::True } else { Filter::parse(tx.catalog(), &lead, &json!({ "owner": null }))? };
            let targets = tx.caller_targets(&lead, Op::Update, filter, unassigned)?;
            let ids = tx.caller_ids(&targets).await?;
            route_many(tx, &ids, self.at.unwrap_or_else(Utc::now)).await
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn working_hours_follow_the_members_time_zone() {
        // 2026-12-02 is a Wednesday; 08:30 UTC is 09:30 in Berlin (CET).
        let hours = json!({ "wed": ["09:00", "17:00"] });
        assert_eq!(within_hours(Some(&hours), Some("Europe/Berlin"), at("2026-12-02T08:30:00Z")), Ok(true));
        assert_eq!(within_hours(Some(&hours), None, at("2026-12-02T08:30:00Z")), Ok(false), "UTC without a zone");
        assert_eq!(within_hours(Some(&hours), Some("Europe/Berlin"), at("2026-12-02T16:00:00Z")), Ok(false), "17:00 is the end");
        assert_eq!(within_hours(Some(&hours), Some("Europe/Berlin"), at("2026-12-03T08:30:00Z")), Ok(false), "Thursday is off");
    }

    #[test]
    fn split_days_and_night_shifts() {
        let hours = json!({ "wed": [["09:00", "12:00"], ["13:00", "17:00"]], "fri": ["22:00", "06:00"] });
        assert_eq!(within_hours(Some(&hours), None, at("2026-12-02T12:30:00Z")), Ok(false), "the lunch break");
        assert_eq!(within_hours(Some(&hours), None, at("2026-12-02T13:30:00Z")), Ok(true));
        assert_eq!(within_hours(Some(&hours), None, at("2026-12-04T23:00:00Z")), Ok(true), "Friday night");
        assert_eq!(within_hours(Some(&hours), None, at("2026-12-05T05:00:00Z")), Ok(true), "Friday's shift runs into Saturday");
        assert_eq!(within_hours(Some(&hours), None, at("2026-12-05T07:00:00Z")), Ok(false));
    }

    #[test]
    fn no_hours_is_always_and_bad_hours_are_errors() {
        assert_eq!(within_hours(None, Some("Nowhere/City"), at("2026-12-02T03:00:00Z")), Ok(true));
        assert!(within_hours(Some(&json!({ "mon": ["9", "17"] })), None, at("2026-11-30T10:00:00Z")).is_err());
        assert!(within_hours(Some(&json!({})), Some("Nowhere/City"), at("2026-11-30T10:00:00Z")).is_err());
        assert!(within_hours(Some(&json!({ "mon": "all day" })), None, at("2026-11-30T10:00:00Z")).is_err());
    }
}
