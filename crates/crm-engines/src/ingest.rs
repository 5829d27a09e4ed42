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
use crm_model::Value;
use crm_orm::{Data, FieldWrite, Filter, Op, OrmError, Result, TxCtx, TxFuture, TxWork};
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

impl IngestItem {
    /// An event already known (or repeated in the batch).
    fn duplicate(e: &SocialInput) -> IngestItem {
        IngestItem {
            external_id: e.external_id.clone(),
            status: "DUPLICATE".to_owned(),
            social_event: None,
            contact: None,
            lead: None,
            ticket: None,
        }
    }
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
        let texts = [
            ("platform", Some(&e.platform)),
            ("kind", Some(&e.kind)),
            ("externalId", Some(&e.external_id)),
            ("thread", e.thread.as_ref()),
            ("authorHandle", Some(&e.author_handle)),
            ("authorName", e.author_name.as_ref()),
            ("text", e.text.as_ref()),
            ("url", e.url.as_ref()),
        ];
        if let Some((name, _)) = texts.iter().find(|(_, t)| t.is_some_and(|t| t.contains('\0'))) {
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
            let batch = Batch::read(tx, &self.events).await?;
            // Rules only matter to new events: a batch of duplicates does not read them.
            let mut rules = Vec::new();
            for r in if batch.any_new { rules::enabled::<IngestionRule>(tx).await? } else { Vec::new() } {
                match rules::condition(tx.catalog(), &social, r.condition.as_ref()) {
                    Ok(cond) => rules.push((r.action, cond)),
                    Err(e) => tracing::warn!(rule = %r.name, error = %e, "ingestion rule skipped: its condition is invalid"),
                }
            }
            match batch.plan(tx, &rules)? {
                Some(plan) => batch.write(tx, plan).await,
                // A rule the engine cannot decide in memory (a relation, search, …): event by
                // event, each rule asked of the database.
                None => one_by_one(tx, &self.events, batch.known, &rules).await,
            }
        })
    }
}

/// What a batch finds stored: events already known, authors' contacts, conversations' links.
struct Batch<'e> {
    events: &'e [SocialInput],
    known: HashSet<(String, String)>,
    /// Whether any event is new.
    any_new: bool,
    contacts: HashMap<String, Uuid>,
    links: HashMap<(String, String), (Option<Uuid>, Option<Uuid>)>,
}

/// A stored event's conversation and what it became.
#[derive(Deserialize)]
struct ThreadLink {
    thread: Option<String>,
    lead: Option<Uuid>,
    ticket: Option<Uuid>,
}

/// The conversation of an event: its thread, or the event itself.
fn thread_of(e: &SocialInput) -> String {
    e.thread.clone().filter(|t| !t.trim().is_empty()).unwrap_or_else(|| e.external_id.clone())
}

/// A conversation's link decided in this batch: an existing record, or one this batch creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Stored(Option<Uuid>, Option<Uuid>),
    NewLead(usize),
    NewTicket(usize),
}

/// Everything a batch writes, decided in memory.
struct Plan<'e> {
    /// Per input event: `None` for a duplicate, else the index of its new social event.
    items: Vec<Option<usize>>,
    /// New events: the event, its author's key, its conversation's link.
    fresh: Vec<(&'e SocialInput, String, Link)>,
    /// Contacts to create: the key and the first event by them.
    new_contacts: Vec<(String, &'e SocialInput)>,
    /// Leads and tickets to create: the event that starts the conversation.
    new_leads: Vec<&'e SocialInput>,
    new_tickets: Vec<&'e SocialInput>,
}

impl<'e> Batch<'e> {
    /// The stored state a batch depends on, in a few statements whatever its size: the known
    /// events (one read per platform), then for the new ones the authors' contacts (one read per
    /// 500 handles) and the conversations' links (one read per platform and 500 threads).
    async fn read(tx: &mut TxCtx<'_>, events: &'e [SocialInput]) -> Result<Batch<'e>> {
        let social = tx.model(SocialEvent::MODEL)?;
        let contact = tx.model(CONTACT)?;
        let mut known: HashSet<(String, String)> = HashSet::new();
        let mut by_platform: HashMap<&str, Vec<&str>> = HashMap::new();
        for e in events {
            by_platform.entry(e.platform.as_str()).or_default().push(e.external_id.as_str());
        }
        for (platform, ids) in &by_platform {
            let f = Filter::parse(tx.catalog(), &social, &json!({ "platform": platform, "externalId_in": ids }))?;
            for row in tx.find_fields(&social, f, &["externalId"], u32::try_from(MAX_BATCH).unwrap_or(1000)).await? {
                let id = row
                    .get("externalId")
                    .and_then(Json::as_str)
                    .ok_or_else(|| OrmError::decode("social event", "without its externalId"))?;
                known.insert(((*platform).to_owned(), id.to_owned()));
            }
        }
        // Authors and conversations are looked up for the new events only (none for a batch of
        // duplicates).
        let fresh: Vec<&SocialInput> = events.iter().filter(|e| !known.contains(&(e.platform.clone(), e.external_id.clone()))).collect();
        let mut keys: Vec<String> = fresh.iter().map(|e| handle_key(&e.platform, &e.author_handle)).collect();
        keys.sort();
        keys.dedup();
        let mut contacts: HashMap<String, Uuid> = HashMap::new();
        for chunk in keys.chunks(500) {
            let f = Filter::parse(tx.catalog(), &contact, &json!({ "socialHandles_contains_some": chunk }))?;
            for row in tx.find_fields(&contact, f, &["socialHandles"], 100_000).await? {
                let handles: Vec<String> = row
                    .get("socialHandles")
                    .and_then(Json::as_array)
                    .map_or_else(Vec::new, |a| a.iter().filter_map(Json::as_str).map(str::to_owned).collect());
                let id = Id::decode(row)?.id;
                for h in handles {
                    if chunk.binary_search(&h).is_ok() {
                        contacts.entry(h).or_insert(id);
                    }
                }
            }
        }
        let mut threads: HashMap<&str, Vec<String>> = HashMap::new();
        for e in &fresh {
            threads.entry(e.platform.as_str()).or_default().push(thread_of(e));
        }
        let mut links = HashMap::new();
        for (platform, mut list) in threads {
            list.sort();
            list.dedup();
            for chunk in list.chunks(500) {
                let Ok(f) = Filter::parse(
                    tx.catalog(),
                    &social,
                    &json!({ "platform": platform, "thread_in": chunk, "OR": [{ "lead_not": null }, { "ticket_not": null }] }),
                ) else {
                    continue;
                };
                for row in tx.find_fields(&social, f, &["thread", "lead", "ticket"], 100_000).await? {
                    let linked: ThreadLink = crm_orm::decode_value(SocialEvent::MODEL, row)?;
                    if let Some(t) = linked.thread {
                        links.entry((platform.to_owned(), t)).or_insert((linked.lead, linked.ticket));
                    }
                }
            }
        }
        Ok(Batch { events, any_new: !fresh.is_empty(), known, contacts, links })
    }

    /// Decides everything in memory, in input order, as [`one_by_one`] would: duplicates, new
    /// authors, and each new conversation's lead or ticket by the first rule its event matches.
    /// `None` when a rule cannot be decided in memory.
    fn plan(&self, tx: &TxCtx<'_>, rules: &[(IngestAction, Filter)]) -> Result<Option<Plan<'e>>> {
        let social = tx.model(SocialEvent::MODEL)?;
        let mut seen = self.known.clone();
        let mut plan =
            Plan { items: Vec::new(), fresh: Vec::new(), new_contacts: Vec::new(), new_leads: Vec::new(), new_tickets: Vec::new() };
        let mut authors: HashSet<String> = self.contacts.keys().cloned().collect();
        let mut links: HashMap<(String, String), Link> = self.links.iter().map(|(k, (l, t))| (k.clone(), Link::Stored(*l, *t))).collect();
        for e in self.events {
            if !seen.insert((e.platform.clone(), e.external_id.clone())) {
                plan.items.push(None);
                continue;
            }
            let key = handle_key(&e.platform, &e.author_handle);
            if authors.insert(key.clone()) {
                plan.new_contacts.push((key.clone(), e));
            }
            let conv = (e.platform.clone(), thread_of(e));
            let mut link = links.get(&conv).copied().unwrap_or(Link::Stored(None, None));
            if link == Link::Stored(None, None) {
                // The event as it will be stored, for the rules' conditions.
                let data = Data::parse(tx.catalog(), &social, &social_input(e, None), "data")?;
                let value = |name: &str| -> Option<Value> {
                    let f = social.field(name)?;
                    if f.system || !matches!(f.kind, crm_model::FieldKind::Scalar(_)) {
                        return None;
                    }
                    Some(match data.fields.get(&f.name) {
                        Some(FieldWrite::Set(v)) => v.clone(),
                        Some(_) => return None,
                        None => f.default.clone().unwrap_or(Value::Null),
                    })
                };
                let mut action = None;
                for (a, cond) in rules {
                    match crm_orm::eval::matches(cond, &value) {
                        Some(true) => {
                            action = Some(*a);
                            break;
                        }
                        Some(false) => {}
                        None => return Ok(None),
                    }
                }
                link = match action {
                    Some(IngestAction::Lead) => {
                        plan.new_leads.push(e);
                        Link::NewLead(plan.new_leads.len() - 1)
                    }
                    Some(IngestAction::Ticket) => {
                        plan.new_tickets.push(e);
                        Link::NewTicket(plan.new_tickets.len() - 1)
                    }
                    _ => Link::Stored(None, None),
                };
                links.insert(conv, link);
            }
            plan.items.push(Some(plan.fresh.len()));
            plan.fresh.push((e, key, link));
        }
        Ok(Some(plan))
    }

    /// Writes a plan: contacts, leads, tickets, social events and timeline entries, each kind
    /// with one batch create.
    async fn write(self, tx: &mut TxCtx<'_>, plan: Plan<'e>) -> Result<IngestOutcome> {
        let events = self.events;
        let mut contacts = self.contacts;
        let inputs: Vec<Json> = plan.new_contacts.iter().map(|(key, e)| contact_input(e, key)).collect();
        for ((key, _), id) in plan.new_contacts.iter().zip(tx.create_many(CONTACT, &inputs).await?) {
            contacts.insert(key.clone(), id);
        }
        let author = |e: &SocialInput| contacts.get(&handle_key(&e.platform, &e.author_handle)).copied();
        let inputs: Vec<Json> = plan.new_leads.iter().map(|e| lead_input(e, author(e))).collect();
        let leads = tx.create_many(LEAD, &inputs).await?;
        let inputs: Vec<Json> = plan.new_tickets.iter().map(|e| ticket_input(e, author(e))).collect();
        let tickets = tx.create_many(TICKET, &inputs).await?;
        let resolve = |link: Link| match link {
            Link::Stored(l, t) => (l, t),
            Link::NewLead(n) => (leads.get(n).copied(), None),
            Link::NewTicket(n) => (None, tickets.get(n).copied()),
        };
        let inputs: Vec<Json> = plan.fresh.iter().map(|(e, _, _)| social_input(e, author(e))).collect();
        let inputs: Vec<Json> = inputs
            .into_iter()
            .zip(&plan.fresh)
            .map(|(mut input, (_, _, link))| {
                let (lead, ticket) = resolve(*link);
                if let Some(o) = input.as_object_mut() {
                    if let Some(l) = lead {
                        o.insert("lead".into(), connect(l));
                    }
                    if let Some(t) = ticket {
                        o.insert("ticket".into(), connect(t));
                    }
                }
                input
            })
            .collect();
        let social_ids = tx.create_many(SocialEvent::MODEL, &inputs).await?;
        let inputs: Vec<Json> = plan
            .fresh
            .iter()
            .map(|(e, key, link)| {
                let (lead, ticket) = resolve(*link);
                activity_input(e, lead, ticket, contacts.get(key).copied())
            })
            .collect();
        tx.create_many("Activity", &inputs).await?;
        let mut out = IngestOutcome {
            received: events.len(),
            created: plan.fresh.len(),
            duplicates: events.len() - plan.fresh.len(),
            contacts_created: plan.new_contacts.len(),
            leads_created: leads.len(),
            tickets_created: tickets.len(),
            items: Vec::with_capacity(events.len()),
        };
        for (e, item) in events.iter().zip(&plan.items) {
            out.items.push(match item {
                None => IngestItem::duplicate(e),
                Some(n) => {
                    let (_, key, link) = plan.fresh.get(*n).ok_or_else(|| OrmError::invariant("an ingestion plan without its event"))?;
                    let (lead, ticket) = resolve(*link);
                    IngestItem {
                        external_id: e.external_id.clone(),
                        status: "CREATED".to_owned(),
                        social_event: social_ids.get(*n).copied(),
                        contact: contacts.get(key).copied(),
                        lead,
                        ticket,
                    }
                }
            });
        }
        Ok(out)
    }
}

/// The create input of an author's contact.
fn contact_input(e: &SocialInput, key: &str) -> Json {
    let name = e.author_name.as_deref().map(str::trim).filter(|n| !n.is_empty());
    let (first, last) = match name.map(|n| n.rsplit_once(' ').map_or((None, n), |(f, l)| (Some(f), l))) {
        Some((f, l)) => (f, l.to_owned()),
        None => (None, e.author_handle.trim().to_owned()),
    };
    json!({ "firstName": first, "lastName": last, "socialHandles": [key] })
}

/// The create input of a conversation's lead.
fn lead_input(e: &SocialInput, contact: Option<Uuid>) -> Json {
    let who = e.author_name.clone().unwrap_or_else(|| e.author_handle.clone());
    let mut input = json!({ "name": who, "source": "SOCIAL" });
    if let (Some(c), Some(o)) = (contact, input.as_object_mut()) {
        o.insert("contact".into(), connect(c));
    }
    input
}

/// The create input of a conversation's ticket.
fn ticket_input(e: &SocialInput, contact: Option<Uuid>) -> Json {
    let text = e.text.clone().unwrap_or_default();
    let subject: String = if text.trim().is_empty() {
        format!("{} from {} on {}", e.kind.to_lowercase(), e.author_handle, e.platform)
    } else {
        text.chars().take(120).collect()
    };
    let mut input = json!({ "subject": subject, "description": text });
    if let (Some(c), Some(o)) = (contact, input.as_object_mut()) {
        o.insert("contact".into(), connect(c));
    }
    input
}

/// The create input of an event's `SocialEvent` (its lead or ticket added by the caller).
fn social_input(e: &SocialInput, contact: Option<Uuid>) -> Json {
    let occurred = e.occurred_at.unwrap_or_else(Utc::now);
    let mut input = json!({
        "platform": e.platform, "kind": e.kind, "externalId": e.external_id, "thread": thread_of(e),
        "authorHandle": e.author_handle, "text": e.text, "url": e.url, "occurredAt": occurred,
    });
    if let (Some(c), Some(o)) = (contact, input.as_object_mut()) {
        o.insert("contact".into(), connect(c));
    }
    input
}

/// The create input of an event's timeline entry: on its lead, else its ticket, else its author.
fn activity_input(e: &SocialInput, lead: Option<Uuid>, ticket: Option<Uuid>, contact: Option<Uuid>) -> Json {
    let (subject_model, subject_id) = match (lead, ticket, contact) {
        (Some(l), _, _) => (LEAD, Some(l)),
        (None, Some(t), _) => (TICKET, Some(t)),
        (None, None, c) => (CONTACT, c),
    };
    let occurred = e.occurred_at.unwrap_or_else(Utc::now);
    let title = format!("{} on {} from {}", e.kind, e.platform, e.author_handle);
    json!({ "kind": "SOCIAL", "subject": subject_id.map(|id| json!({ "type": subject_model, "id": id.to_string() })),
             "title": title, "body": e.text, "occurredAt": occurred })
}

/// Ingests event by event, asking the database for each rule: the way for rules the engine
/// cannot decide in memory.
async fn one_by_one(
    tx: &mut TxCtx<'_>,
    events: &[SocialInput],
    mut known: HashSet<(String, String)>,
    social_rules: &[(IngestAction, Filter)],
) -> Result<IngestOutcome> {
    let social = tx.model(SocialEvent::MODEL)?;
    let mut out = IngestOutcome { received: events.len(), ..IngestOutcome::default() };
    let contact_model = tx.model(CONTACT)?;
    let mut contacts: HashMap<String, Uuid> = HashMap::new();
    // Conversation → (lead, ticket).
    let mut threads: HashMap<(String, String), (Option<Uuid>, Option<Uuid>)> = HashMap::new();
    for e in events {
        let mut item = IngestItem::duplicate(e);
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
                out.contacts_created += 1;
                tx.create(CONTACT, &contact_input(e, &key)).await?
            };
            contacts.insert(key.clone(), id);
            id
        };
        item.contact = Some(contact);
        let thread = thread_of(e);
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
        let id = tx.create(SocialEvent::MODEL, &social_input(e, Some(contact))).await?;
        item.social_event = Some(id);
        out.created += 1;
        let (mut lead, mut ticket) = threads.get(&conv_key).copied().unwrap_or((None, None));
        if lead.is_none() && ticket.is_none() {
            let mut action = None;
            for (a, cond) in social_rules {
                if !tx.matching(&social, &[id], cond).await?.is_empty() {
                    action = Some(*a);
                    break;
                }
            }
            match action {
                Some(IngestAction::Lead) => {
                    lead = Some(tx.create(LEAD, &lead_input(e, Some(contact))).await?);
                    out.leads_created += 1;
                }
                Some(IngestAction::Ticket) => {
                    ticket = Some(tx.create(TICKET, &ticket_input(e, Some(contact))).await?);
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
        tx.create("Activity", &activity_input(e, lead, ticket, Some(contact))).await?;
        "CREATED".clone_into(&mut item.status);
        out.items.push(item);
    }
    Ok(out)
}
