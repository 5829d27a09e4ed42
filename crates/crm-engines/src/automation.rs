//! Automation rules, run by the event workers: on an event of a rule's type whose record matches
//! the rule's condition, the rule's `set` is applied to the record. The lead qualification flow
//! is one such rule: `lead.created` + `{status: NEW, …}` → `{status: QUALIFIED}`.
//!
//! A rule runs in the transaction that advances the consumer's position, so a handled event's
//! effect happens exactly once even across crashes. The condition is evaluated on the record as
//! it is when the worker handles the event, so a lead people already moved on is left alone. A
//! rule whose values are already on the record writes nothing (no event, so rules cannot loop).

use crm_orm::{Data, Event, EventWork, Filter, Result, Selection, TxCtx, TxFuture, Unique, Write};

use crate::rows::AutomationRule;
use crate::rules;

/// The consumer name of automation rules.
pub const CONSUMER: &str = "automation";

/// Handles events for automation rules.
#[derive(Debug, Clone, Copy, Default)]
pub struct Automation;

impl EventWork for Automation {
    fn handle<'a>(&'a self, tx: &'a mut TxCtx<'_>, event: &'a Event) -> TxFuture<'a, ()> {
        Box::pin(async move {
            if event.after.is_none() {
                return Ok(());
            }
            let Ok(model) = tx.model(&event.model) else { return Ok(()) };
            let all: Vec<AutomationRule> = rules::enabled(tx).await?;
            for rule in all.iter().filter(|r| r.event == event.kind) {
                let name = &rule.name;
                let cond = match rules::condition(tx.catalog(), &model, rule.condition.as_ref()) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(rule = %name, error = %e, "automation rule skipped: its condition is invalid");
                        continue;
                    }
                };
                if tx.matching(&model, &[event.record_id], &cond).await?.is_empty() {
                    continue;
                }
                let set = &rule.set;
                // Already there: nothing to write.
                if let Ok(f) = Filter::parse(tx.catalog(), &model, set)
                    && !tx.matching(&model, &[event.record_id], &f).await?.is_empty()
                {
                    continue;
                }
                let data = match Data::parse(tx.catalog(), &model, set, "set") {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::warn!(rule = %name, error = %e, "automation rule skipped: its `set` is invalid");
                        continue;
                    }
                };
                let w = Write::Update { model: model.name.clone(), target: Unique::Id(event.record_id), data, expected_version: None };
                tx.write(&w, &Selection::default()).await?;
                tracing::debug!(rule = %name, record = %event.record_id, "automation rule applied");
            }
            Ok(())
        })
    }
}

/// Checks a rule's `set` against its event's model, for rule validation on write.
pub(crate) fn check_set(tx: &TxCtx<'_>, rule: &AutomationRule) -> Result<()> {
    let event = rule.event.as_str();
    let model_part = event.split('.').next().unwrap_or_default();
    let Some(model) = tx.catalog().models().find(|m| crate::rules::lower_first(m.name.as_str()) == model_part) else {
        return Err(crm_orm::OrmError::bad(
            "event",
            format!("`{event}` is not an event type (`<model>.<created|updated|deleted|restored>`, e.g. `lead.created`)"),
        ));
    };
    if !matches!(event.split('.').nth(1), Some("created" | "updated" | "deleted" | "restored")) {
        return Err(crm_orm::OrmError::bad(
            "event",
            format!("`{event}` is not an event type (`<model>.<created|updated|deleted|restored>`)"),
        ));
    }
    let cond = rules::condition(tx.catalog(), model, rule.condition.as_ref())?;
    let set = &rule.set;
    Data::parse(tx.catalog(), model, set, "set")?;
    // The rule acts for its author: its condition may use only fields they may read, and it may
    // set only fields they may write.
    rules::check_author_reads(tx, model, cond)?;
    if let Some(denied) = set.as_object().and_then(|o| o.keys().find(|k| !tx.caller().writes_field(&model.name, k))) {
        return Err(crm_orm::OrmError::Forbidden(format!("the field `{denied}` of {} is not writable with your roles", model.name)));
    }
    Ok(())
}
