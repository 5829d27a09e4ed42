//! The tagging engine: every enabled `TagRule` whose condition matches a lead adds its tags, on
//! create and update of the lead and on demand for a filter. Deterministic (rules run by
//! priority, then name), idempotent (a tag already on the lead is left alone), explainable (each
//! tag a rule added gets a `TagAssignment` naming the rule).

use std::collections::HashSet;

use crm_orm::{Filter, Op, Result, TxCtx, TxFuture, TxWork};
use serde::Serialize;
use serde_json::{Value as Json, json};
use uuid::Uuid;

use crate::rows::{LEAD, LeadAttributes, Record, TagAssignment, TagRule};
use crate::rules;

/// How many leads one statement of the engine looks at.
const CHUNK: usize = 500;

/// What a tagging run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TagOutcome {
    /// Leads looked at.
    pub matched: usize,
    /// Leads that got at least one new tag.
    pub changed: usize,
    /// Tags added in all.
    pub tags_added: usize,
}

/// Applies the tenant's enabled tag rules to `leads`.
///
/// # Errors
/// Database failures; a stored rule whose condition is no longer valid is skipped (and logged).
pub async fn apply(tx: &mut TxCtx<'_>, leads: &[Uuid]) -> Result<TagOutcome> {
    let mut out = TagOutcome { matched: leads.len(), ..TagOutcome::default() };
    if leads.is_empty() {
        return Ok(out);
    }
    let tag_rules: Vec<TagRule> = rules::enabled(tx).await?;
    if tag_rules.is_empty() {
        return Ok(out);
    }
    let lead = tx.model(LEAD)?;
    let mut compiled = Vec::with_capacity(tag_rules.len());
    for r in tag_rules {
        match rules::condition(tx.catalog(), &lead, r.condition.as_ref()) {
            Ok(f) => compiled.push((r.id, r.tags, f)),
            Err(e) => tracing::warn!(rule = %r.name, error = %e, "tag rule skipped: its condition is invalid"),
        }
    }
    for chunk in leads.chunks(CHUNK) {
        // Which rule matches which lead: one statement per rule and chunk.
        let mut hits: Vec<(Uuid, Uuid, &Vec<String>)> = Vec::new();
        for (rule, tags, f) in &compiled {
            for id in tx.matching(&lead, chunk, f).await? {
                hits.push((id, *rule, tags));
            }
        }
        if hits.is_empty() {
            continue;
        }
        let ids: Vec<Uuid> = chunk.to_vec();
        let current = tx.find_all(&lead, Filter::ids(&ids)?, u32::try_from(ids.len()).unwrap_or(u32::MAX)).await?;
        let assignment = tx.model(TagAssignment::MODEL)?;
        let existing = tx
            .find_all(&assignment, Filter::cmp(&assignment, "lead", crm_orm::FilterOp::In, &json!(ids))?, 100_000)
            .await?
            .into_iter()
            .map(TagAssignment::decode)
            .collect::<Result<Vec<_>>>()?;
        let assigned: HashSet<(Uuid, String)> = existing.into_iter().map(|a| (a.lead, a.tag)).collect();
        // Leads that end with the same tags are updated together; assignments are created together.
        let mut by_tags: Vec<(Vec<String>, Vec<Uuid>)> = Vec::new();
        let mut assignments = Vec::new();
        for row in current {
            let LeadAttributes { id, mut tags, .. } = LeadAttributes::decode(row)?;
            let mut added = Vec::new();
            for (_, rule, rule_tags) in hits.iter().filter(|(l, _, _)| *l == id) {
                for t in *rule_tags {
                    if !tags.contains(t) {
                        tags.push(t.clone());
                        added.push((t.clone(), *rule));
                    }
                }
            }
            if added.is_empty() {
                continue;
            }
            out.changed += 1;
            out.tags_added += added.len();
            match by_tags.iter_mut().find(|(t, _)| *t == tags) {
                Some((_, ids)) => ids.push(id),
                None => by_tags.push((tags, vec![id])),
            }
            for (tag, rule) in added {
                if !assigned.contains(&(id, tag.clone())) {
                    assignments.push(json!({ "lead": { "connect": { "id": id } }, "tag": tag, "rule": { "connect": { "id": rule } } }));
                }
            }
        }
        for (tags, ids) in by_tags {
            tx.update_many(LEAD, &ids, &json!({ "tags": tags })).await?;
        }
        tx.create_many(TagAssignment::MODEL, &assignments).await?;
    }
    Ok(out)
}

/// On-demand re-tagging of the leads matching a `LeadWhere` that the caller may update.
#[derive(Debug, Clone)]
pub struct Retag {
    /// The `LeadWhere` filter (JSON, as GraphQL takes it).
    pub filter: Json,
}

impl TxWork for Retag {
    type Output = TagOutcome;
    fn run<'a>(&'a self, tx: &'a mut TxCtx<'_>) -> TxFuture<'a, TagOutcome> {
        Box::pin(async move {
            let lead = tx.model(LEAD)?;
            let filter = Filter::parse(tx.catalog(), &lead, &self.filter)?;
            // The caller's filter goes through their scope: tenant, row rule, field denials.
            let targets = tx.caller_targets(&lead, Op::Update, filter, Filter::True)?;
            let ids = tx.caller_ids(&targets).await?;
            apply(tx, &ids).await
        })
    }
}
