//! The CRM engines of crm-platform, between the store (crm-orm) and the API: tagging, routing,
//! automation (the lead qualification flow), webhooks, social ingestion, reports, and the
//! in-process workers that consume the transactional outbox.
//!
//! Their rules and settings are models of the standard catalog (`TagRule`, `RoutingRule`,
//! `AutomationRule`, `IngestionRule`, `Webhook`), so tenants manage them through the generated
//! API; conditions are written in the filter language of the GraphQL `where`.
//!
//! [`Engines::install`] puts the write hook on a store: inside every write's transaction it
//! validates rule records, tags created and updated leads, and routes new unassigned leads.
#![forbid(unsafe_code)]

pub mod automation;
pub mod egress;
pub mod files;
pub mod ingest;
pub mod live;
mod reader;
pub mod relay;
pub mod reports;
pub mod routing;
pub mod rows;
mod rules;
pub mod stats;
pub mod tagging;
pub mod webhooks;
pub mod worker;

use std::sync::Arc;

use chrono::Utc;
use crm_orm::{EventKind, OrmError, Result, Store, TxCtx, TxFuture, WriteHook, Written};
use serde_json::Value as Json;
use uuid::Uuid;

use rows::{AutomationRule, LEAD, Record, RoutingRule, RuleCondition, TagRule, Webhook};
pub use rules::{MAX_RULES, condition};
pub use worker::{WorkerOptions, Workers};

/// The engines' write hook, with the delivery policy webhook URLs are checked against when saved.
#[derive(Debug, Default, Clone)]
pub struct Engines {
    egress: Arc<egress::Egress>,
}

impl Engines {
    /// `store` with the engines' write hook installed, under the default delivery policy (no
    /// webhook to an internal address).
    #[must_use]
    pub fn install(store: &Store) -> Store {
        store.with_hook(Arc::new(Engines::default()))
    }

    /// `store` with the engines' write hook installed, checking webhook URLs against `egress`
    /// (the operator's allow-list of internal receivers).
    #[must_use]
    pub fn install_with(store: &Store, egress: Arc<egress::Egress>) -> Store {
        store.with_hook(Arc::new(Engines { egress }))
    }
}

fn ids_of(written: &[Written], model: &str, kinds: &[EventKind]) -> Vec<Uuid> {
    written.iter().filter(|w| w.model.as_str() == model && kinds.contains(&w.kind)).map(|w| w.id).collect()
}

/// Checks the rule records just written: their conditions must be valid filters of the model
/// they apply to, automation rules must name an event type and settable values, webhook
/// subscriptions must be event type patterns. A bad rule fails its write.
async fn validate_rules(tx: &mut TxCtx<'_>, written: &[Written], egress: &egress::Egress) -> Result<()> {
    let touched = [EventKind::Created, EventKind::Updated, EventKind::Restored];
    for (rule_model, target) in rules::CONDITIONS.iter().chain(&[(AutomationRule::MODEL, ""), (Webhook::MODEL, "")]) {
        let ids = ids_of(written, rule_model, &touched);
        if ids.is_empty() {
            continue;
        }
        let m = tx.model(rule_model)?;
        for row in tx.find_all(&m, crm_orm::Filter::ids(&ids)?, u32::try_from(ids.len()).unwrap_or(u32::MAX)).await? {
            match *rule_model {
                AutomationRule::MODEL => automation::check_set(tx, &AutomationRule::decode(row)?)?,
                Webhook::MODEL => {
                    let hook = Webhook::decode(row)?;
                    egress.check_url(&hook.url).map_err(|e| OrmError::bad("url", e.to_string()))?;
                    for p in hook.events {
                        let ok = p == "*" || p.split_once('.').is_some_and(|(m, k)| !m.is_empty() && !k.is_empty() && !k.contains('.'));
                        if !ok {
                            return Err(OrmError::bad(
                                "events",
                                format!("`{p}` is not an event type pattern (`lead.created`, `lead.*` or `*`)"),
                            ));
                        }
                    }
                }
                _ => {
                    let t = tx.model(target)?;
                    let cond = rules::condition(tx.catalog(), &t, RuleCondition::decode(rule_model, row)?.condition.as_ref())?;
                    rules::check_author_reads(tx, &t, cond)?;
                }
            }
        }
    }
    Ok(())
}

impl WriteHook for Engines {
    fn after_write<'a>(&'a self, tx: &'a mut TxCtx<'_>, written: &'a [Written]) -> TxFuture<'a, ()> {
        Box::pin(async move {
            validate_rules(tx, written, &self.egress).await?;
            let changed = ids_of(written, LEAD, &[EventKind::Created, EventKind::Updated]);
            if !changed.is_empty() && tx.catalog().model(TagRule::MODEL).is_some() {
                tagging::apply(tx, &changed).await?;
            }
            let created = ids_of(written, LEAD, &[EventKind::Created]);
            if !created.is_empty() && tx.catalog().model(RoutingRule::MODEL).is_some() {
                let lead = tx.model(LEAD)?;
                let unowned = crm_orm::Filter::parse(tx.catalog(), &lead, &serde_json::json!({ "owner": Json::Null }))?;
                let unowned = tx.matching(&lead, &created, &unowned).await?;
                routing::route_many(tx, &unowned, Utc::now()).await?;
            }
            Ok(())
        })
    }
}
