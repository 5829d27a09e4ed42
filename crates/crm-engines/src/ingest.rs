//! Social ingestion: batches of posts, replies, DMs and mentions become `SocialEvent`s, idempotent
//! by platform + external id. Each author is matched to a contact by handle (`platform:handle` in
//! `Contact.socialHandles`, case-insensitive) or a contact is created. A conversation (the
//! `thread`, or the event itself when it has none) becomes a lead or a ticket by the first
//! matching `IngestionRule`, and later events of the same conversation join it. Every event
//! becomes a `SOCIAL` activity on the timeline of its lead, ticket or contact.
//!
//! A batch is one transaction, serialized per tenant, so concurrent deliveries of the same events
//! create nothing twice.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use crm_orm::{Filter, Op, OrmError, Result, TxCtx, TxFuture, TxWork};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use uuid::Uuid;

use crate::rows::{CONTACT, Id, IngestAction, IngestionRule, LEAD, Record, SocialEvent, TICKET};
use crate::rules;

/// Most events in one batch.
pub const MAX_BATCH: usize = 1000;

/// One incoming social event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SocialInput {
    /// `x`, `linkedin`, `instagram`, …
    pub platform: String,
    /// `POST`, `REPLY`, `DM` or `MENTION`.
    pub kind: String,
    /// The platform's id of the event.
    pub external_id: String,
    /// The conversation: the external id of its first event (none: the event starts one).
    #[serde(default)]
    pub thread: Option<String>,
    /// The author's handle on the platform.
    pub author_handle: String,
    /// The author's display name.
    #[serde(default)]
    pub author_name: Option<String>,
    /// The text.
    #[serde(default)]
    pub text: Option<String>,
    /// A link to the event.
    #[serde(default)]
    pub url: Option<String>,
    /// When it happened on the platform.
    #[serde(default)]
    pub occurred_at: Option<DateTime<Utc>>,
}

/// What happened to one input event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestItem {
    /// The platform's id.
    pub external_id: String,
    /// `CREATED` or `DUPLICATE`.
    pub status: String,
    /// The `SocialEvent`.
    pub social_event: Option<Uuid>,
    /// The author's contact.
    pub contact: Option<Uuid>,
    /// The conversation's lead.
    pub lead: Option<Uuid>,
    /// The conversation's ticket.
    pub ticket: Option<Uuid>,
}

/// What a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestOutcome {
    /// Events received.
    pub received: usize,
    /// Events stored.
    pub created: usize,
    /// Events already known (or repeated in the batch).
    pub duplicates: usize,
    /// Contacts created for new authors.
    pub contacts_created: usize,
    /// Leads created for conversations.
    pub leads_created: usize,
    /// Tickets created for conversations.
    pub tickets_created: usize,
    /// Per input event, in order.
    pub items: Vec<IngestItem>,
}

/// A batch to ingest.
#[derive(Debug, Clone)]
pub struct Ingest {
    /// The events.
    pub events: Vec<SocialInput>,
}

const KINDS: &[&str] = &["POST", "REPLY", "DM", "MENTION"];

fn validate(events: &[SocialInput]) -> Result<()> {
    if events.len() > MAX_BATCH {
        return Err(OrmError::Limit(format!("at most {MAX_BATCH} events per batch, got {}", events.len())));
    }
    for (i, e) in events.iter().enumerate() {
        let path = |f: &str| format!("events[{i}].{f}");
        if let Ok(Json::Object(fields)) = serde_json::to_value(e)
            && let Some((name, _)) = fields.iter().find(|(_, v)| crm_model::value::has_nul(v))
        {
            return Err(OrmError::bad(path(name), crm_model::value::NUL_MESSAGE));
        }
        if e.platform.trim().is_empty() || e.platform.len() > 50 {
            return Err(OrmError::bad(path("platform"), "a platform name of 1 to 50 characters"));
        }
        if !KINDS.contains(&e.kind.as_str()) {
            return Err(OrmError::bad(path("kind"), format!("one of {}", KINDS.join(", "))));
        }
        if e.external_id.trim().is_empty() {
            return Err(OrmError::bad(path("externalId"), "required"));
        }
        if e.author_handle.trim().is_empty() {
            return Err(OrmError::bad(path("authorHandle"), "required"));
        }
    }
    Ok(())
}

fn handle_key(platform: &str, handle: &str) -> String {
    format!("{}:{}", platform.trim().to_lowercase(), handle.trim().to_lowercase())
}

fn connect(id: Uuid) -> Json {
    json!({ "connect": { "id": id.to_string() } })
}

impl TxWork for Ingest {
    type Output = IngestOutcome;
    fn run<'a>(&'a self, tx: &'a mut TxCtx<'_>) -> TxFuture<'a, IngestOutcome> {
        Box::pin(async move {
            validate(&self.events)?;
            let social = tx.model(SocialEvent::MODEL)?;
            if !tx.caller().allows(&social.name, Op::Create) {
                return Err(OrmError::Forbidden("not allowed to create SocialEvent".to_owned()));
            }
            // Ingestion looks events up by platform, external id and thread, and authors by
            // handle: the caller must be able to read those fields, or the outcome (duplicate or
            // not, which contact, which conversation) would reveal values they may not see.
            let contact = tx.model(CONTACT)?;
            for (m, probe) in [
                (&social, json!({ "platform": "", "externalId_in": [], "thread": "", "lead_not": null, "ticket_not": null })),
                (&contact, json!({ "socialHandles_contains_some": [] })),
            ] {
                let f = Filter::parse(tx.catalog(), m, &probe)?;
                tx.caller_targets(m, Op::Read, f, Filter::True)?;
            }
            // One batch at a time per tenant: the idempotency check and the inserts are atomic.
            tx.lock_key("social-ingest").await?;
            let mut out = IngestOutcome { received: self.events.len(), ..IngestOutcome::default() };
            // Known events, per platform.
            let mut known: HashSet<(String, String)> = HashSet::new();
            let mut by_platform: HashMap<&str, Vec<&str>> = HashMap::new();
            for e in &self.events {
                by_platform.entry(e.platform.as_str()).or_default().push(e.external_id.as_str());
            }
            for (platform, ids) in by_platform {
                let f = Filter::parse(tx.catalog(), &social, &json!({ "platform": platform, "externalId_in": ids }))?;
                for row in tx.find_all(&social, f, u32::try_from(MAX_BATCH).unwrap_or(1000)).await? {
                    known.insert((platform.to_owned(), SocialEvent::decode(row)?.external_id));
                }
            }
            let contact_model = tx.model(CONTACT)?;
            let social_rules: Vec<IngestionRule> = rules::enabled(tx).await?;
            let mut contacts: HashMap<String, Uuid> = HashMap::new();
            // Conversation → (lead, ticket).
            let mut threads: HashMap<(String, String), (Option<Uuid>, Option<Uuid>)> = HashMap::new();
            for e in &self.events {
                let mut item = IngestItem {
                    external_id: e.external_id.clone(),
                    status: "DUPLICATE".to_owned(),
                    social_event: None,
                    contact: None,
                    lead: None,
                    ticket: None,
                };
                if !known.insert((e.platform.clone(), e.external_id.clone())) {
                    out.duplicates += 1;
                    out.items.push(item);
                    continue;
                }
                // The author.
                let key = handle_key(&e.platform, &e.author_handle);
                let contact = if let Some(c) = contacts.get(&key) {
                    *c
                } else {
                    let f = Filter::parse(tx.catalog(), &contact_model, &json!({ "socialHandles_contains_some": [key] }))?;
                    let found = tx.find_all(&contact_model, f, 1).await?.into_iter().next().map(Id::decode).transpose()?.map(|c| c.id);
                    let id = if let Some(c) = found {
                        c
                    } else {
                        let name = e.author_name.as_deref().map(str::trim).filter(|n| !n.is_empty());
                        let (first, last) = match name.map(|n| n.rsplit_once(' ').map_or((None, n), |(f, l)| (Some(f), l))) {
                            Some((f, l)) => (f, l.to_owned()),
                            None => (None, e.author_handle.trim().to_owned()),
                        };
                        out.contacts_created += 1;
                        tx.create(CONTACT, &json!({ "firstName": first, "lastName": last, "socialHandles": [key] })).await?
                    };
                    contacts.insert(key.clone(), id);
                    id
                };
                item.contact = Some(contact);
                let thread = e.thread.clone().filter(|t| !t.trim().is_empty()).unwrap_or_else(|| e.external_id.clone());
                let conv_key = (e.platform.clone(), thread.clone());
                // An earlier event of the conversation already linked?
                if !threads.contains_key(&conv_key) {
                    let f = Filter::parse(
                        tx.catalog(),
                        &social,
                        &json!({ "platform": e.platform, "thread": thread, "OR": [{ "lead_not": null }, { "ticket_not": null }] }),
                    );
                    let prior = match f {
                        Ok(f) => tx.find_all(&social, f, 1).await?.into_iter().next().map(SocialEvent::decode).transpose()?,
                        Err(_) => None,
                    };
                    let link = prior.map_or((None, None), |p| (p.lead, p.ticket));
                    threads.insert(conv_key.clone(), link);
                }
                let occurred = e.occurred_at.unwrap_or_else(Utc::now);
                let id = tx
                    .create(
                        SocialEvent::MODEL,
                        &json!({
                            "platform": e.platform, "kind": e.kind, "externalId": e.external_id, "thread": thread,
                            "authorHandle": e.author_handle, "text": e.text, "url": e.url, "occurredAt": occurred,
                            "contact": connect(contact),
                        }),
                    )
                    .await?;
                item.social_event = Some(id);
                out.created += 1;
                let (mut lead, mut ticket) = threads.get(&conv_key).copied().unwrap_or((None, None));
                if lead.is_none() && ticket.is_none() {
                    let mut action = None;
                    for r in &social_rules {
                        let Ok(cond) = rules::condition(tx.catalog(), &social, r.condition.as_ref()) else { continue };
                        if !tx.matching(&social, &[id], &cond).await?.is_empty() {
                            action = Some(r.action);
                            break;
                        }
                    }
                    let who = e.author_name.clone().unwrap_or_else(|| e.author_handle.clone());
                    let text = e.text.clone().unwrap_or_default();
                    match action {
                        Some(IngestAction::Lead) => {
                            lead = Some(tx.create(LEAD, &json!({ "name": who, "source": "SOCIAL", "contact": connect(contact) })).await?);
                            out.leads_created += 1;
                        }
                        Some(IngestAction::Ticket) => {
                            let subject: String = if text.trim().is_empty() {
                                format!("{} from {} on {}", e.kind.to_lowercase(), e.author_handle, e.platform)
                            } else {
                                text.chars().take(120).collect()
                            };
                            ticket = Some(
                                tx.create(TICKET, &json!({ "subject": subject, "description": text, "contact": connect(contact) })).await?,
                            );
                            out.tickets_created += 1;
                        }
                        _ => {}
                    }
                    threads.insert(conv_key, (lead, ticket));
                }
                if lead.is_some() || ticket.is_some() {
                    let mut set = serde_json::Map::new();
                    if let Some(l) = lead {
                        set.insert("lead".into(), connect(l));
                    }
                    if let Some(t) = ticket {
                        set.insert("ticket".into(), connect(t));
                    }
                    tx.update(SocialEvent::MODEL, id, &Json::Object(set)).await?;
                }
                item.lead = lead;
                item.ticket = ticket;
                // The timeline entry.
                let (subject_model, subject_id) = match (lead, ticket) {
                    (Some(l), _) => (LEAD, l),
                    (None, Some(t)) => (TICKET, t),
                    _ => (CONTACT, contact),
                };
                let title = format!("{} on {} from {}", e.kind, e.platform, e.author_handle);
                tx.create(
                    "Activity",
                    &json!({ "kind": "SOCIAL", "subject": { "type": subject_model, "id": subject_id.to_string() },
                             "title": title, "body": e.text, "occurredAt": occurred }),
                )
                .await?;
                "CREATED".clone_into(&mut item.status);
                out.items.push(item);
            }
            Ok(out)
        })
    }
}
