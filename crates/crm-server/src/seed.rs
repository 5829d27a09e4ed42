//! `crm-server seed-demo`: fills a tenant with a small living CRM — members with skills, teams,
//! capacities and working hours; tag, routing, automation and ingestion rules; accounts with
//! subsidiaries, contacts, opportunities and tickets; leads moved through their stages; and a
//! batch of social events that becomes contacts, leads, tickets and timeline activities. It all
//! goes through the engines, so tags, routing decisions, history and events are real.

use crm_engines::ingest::{Ingest, SocialInput};
use crm_model::OrgId;
use crm_orm::{Filter, OrmError, Page, Read, Store, TxCtx, TxFuture, TxWork};
use serde_json::{Value as Json, json};
use uuid::Uuid;

/// What the seed created.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Seeded {
    /// Records per model.
    pub records: Vec<(String, usize)>,
}

struct Seed;

fn link(id: Uuid) -> Json {
    json!({ "connect": { "id": id.to_string() } })
}

/// The `i`th of the records the seed just created.
fn nth(ids: &[Uuid], i: usize) -> crm_orm::Result<Uuid> {
    ids.get(i).copied().ok_or_else(|| crm_orm::OrmError::invariant(format!("the seed created no record {i}")))
}

const WEEKDAYS: [&str; 5] = ["mon", "tue", "wed", "thu", "fri"];

fn hours(from: &str, to: &str) -> Json {
    Json::Object(WEEKDAYS.iter().map(|d| ((*d).to_owned(), json!([from, to]))).collect())
}

impl TxWork for Seed {
    type Output = ();
    fn run<'a>(&'a self, tx: &'a mut TxCtx<'_>) -> TxFuture<'a, ()> {
        Box::pin(async move {
            // Members: the pool routing assigns from.
            let members = [
                ("Ada Park", "ada@demo.example", &["enterprise", "saas"][..], &["sales"][..], Some(12), "Europe/Berlin", false),
                ("Ben Ortiz", "ben@demo.example", &["smb", "retail"][..], &["sales"][..], Some(10), "America/New_York", false),
                (
                    "Chloé Martin",
                    "chloe@demo.example",
                    &["social", "community"][..],
                    &["community", "sales"][..],
                    Some(8),
                    "Europe/Paris",
                    false,
                ),
                ("Dev Rao", "dev@demo.example", &["social", "support"][..], &["community"][..], Some(8), "Asia/Kolkata", false),
                ("Eva Nowak", "eva@demo.example", &["enterprise", "finance"][..], &["sales"][..], Some(6), "Europe/Warsaw", true),
            ];
            let mut member_ids = Vec::new();
            for (name, email, skills, teams, capacity, tz, away) in members {
                member_ids.push(
                    tx.create(
                        "Member",
                        &json!({ "name": name, "email": email, "skills": skills, "teams": teams, "capacity": capacity,
                        "timeZone": tz, "workingHours": hours("08:00", "18:00"), "away": away }),
                    )
                    .await?,
                );
            }
            // Rules, managed like any other record.
            tx.create("TagRule", &json!({ "name": "Enterprise prospects", "condition": { "OR": [{ "company_contains": "Corp" }, { "company_contains": "Group" }] }, "tags": ["enterprise"], "priority": 10 })).await?;
            tx.create(
                "TagRule",
                &json!({ "name": "From social", "condition": { "source": "SOCIAL" }, "tags": ["social"], "priority": 20 }),
            )
            .await?;
            tx.create("TagRule", &json!({ "name": "Hot", "condition": { "score_gte": 70 }, "tags": ["hot"], "priority": 30 })).await?;
            tx.create("RoutingRule", &json!({ "name": "Social leads to the community team", "condition": { "source": "SOCIAL" }, "pool": ["community"], "strategy": "ROUND_ROBIN", "respectWorkingHours": false, "priority": 10 })).await?;
            tx.create("RoutingRule", &json!({ "name": "Enterprise by skill", "condition": { "tags_contains_some": ["enterprise"] }, "pool": ["sales"], "strategy": "SKILL_MATCH", "respectWorkingHours": false, "priority": 20 })).await?;
            tx.create("RoutingRule", &json!({ "name": "Everyone else, balanced", "strategy": "LOAD_BALANCED", "pool": ["sales"], "respectWorkingHours": false, "priority": 100 })).await?;
            tx.create("AutomationRule", &json!({ "name": "Qualify new leads with an e-mail", "event": "lead.created", "condition": { "status": "NEW", "email_not": null }, "set": { "status": "QUALIFIED" } })).await?;
            tx.create(
                "IngestionRule",
                &json!({ "name": "DMs become leads", "condition": { "kind": "DM" }, "action": "LEAD", "priority": 10 }),
            )
            .await?;
            tx.create("IngestionRule", &json!({ "name": "Mentions asking for help become tickets", "condition": { "kind": "MENTION", "text_contains": "help" }, "action": "TICKET", "priority": 20 })).await?;
            // Accounts with subsidiaries, contacts, opportunities, tickets.
            let northwind = tx.create("Account", &json!({ "name": "Northwind Group", "domain": "northwind.example", "industry": "Logistics", "size": "ENTERPRISE", "owner": link(nth(&member_ids, 0)?) })).await?;
            let nw_eu = tx.create("Account", &json!({ "name": "Northwind Europe", "domain": "eu.northwind.example", "industry": "Logistics", "size": "LARGE", "parent": link(northwind) })).await?;
            let acme = tx.create("Account", &json!({ "name": "Acme Corp", "domain": "acme.example", "industry": "Manufacturing", "size": "MEDIUM", "owner": link(nth(&member_ids, 1)?) })).await?;
            let bloom = tx
                .create("Account", &json!({ "name": "Bloom Florists", "domain": "bloom.example", "industry": "Retail", "size": "SMALL" }))
                .await?;
            let contacts = [
                ("Grace", "Hopper", "grace@northwind.example", northwind, "x:@gracehopper"),
                ("Linus", "Berg", "linus@eu.northwind.example", nw_eu, "linkedin:linusberg"),
                ("Maya", "Singh", "maya@acme.example", acme, "x:@mayasingh"),
                ("Tom", "Weller", "tom@bloom.example", bloom, "instagram:@bloomtom"),
            ];
            let mut contact_ids = Vec::new();
            for (first, last, email, account, handle) in contacts {
                contact_ids.push(tx.create("Contact", &json!({ "firstName": first, "lastName": last, "email": email, "account": link(account), "socialHandles": [handle] })).await?);
            }
            tx.create("Opportunity", &json!({ "name": "Northwind fleet tracking", "account": link(northwind), "amount": { "amount": "120000", "currency": "EUR" }, "stage": "PROPOSAL", "probability": 60, "owner": link(nth(&member_ids, 0)?) })).await?;
            tx.create("Opportunity", &json!({ "name": "Acme line sensors", "account": link(acme), "amount": { "amount": "45000", "currency": "USD" }, "stage": "QUALIFICATION", "probability": 30, "owner": link(nth(&member_ids, 1)?) })).await?;
            tx.create("Ticket", &json!({ "subject": "Invoice shows the wrong VAT number", "description": "Our March invoice has last year's VAT id.", "priority": "HIGH", "contact": link(nth(&contact_ids, 1)?), "assignee": link(nth(&member_ids, 3)?), "status": "IN_PROGRESS" })).await?;
            tx.create(
                "Ticket",
                &json!({ "subject": "How do I export my reports?", "contact": link(nth(&contact_ids, 3)?), "status": "OPEN" }),
            )
            .await?;
            // Leads, routed and tagged as they are created, then moved through their stages.
            let sources = ["WEB", "REFERRAL", "EVENT", "EMAIL", "PHONE", "WEB", "SOCIAL", "WEB"];
            let companies =
                ["Acme Corp", "Globex Group", "Initech", "Umbrella Corp", "Hooli", "Vandelay Imports", "Soylent Group", "Stark Industries"];
            let people = [
                "Alice Chen",
                "Bruno Diaz",
                "Carla Rossi",
                "Dmitri Ivanov",
                "Emma Laurent",
                "Farah Haddad",
                "Gustav Lind",
                "Hana Sato",
                "Igor Petrov",
                "Julia Novak",
                "Kofi Mensah",
                "Lena Vogel",
                "Marco Bianchi",
                "Nina Kowalski",
                "Omar Aziz",
                "Priya Nair",
                "Quentin Roy",
                "Rosa Alvarez",
                "Sven Olsen",
                "Tara Walsh",
                "Umar Farooq",
                "Vera Kim",
                "Will Turner",
                "Xenia Popova",
            ];
            let mut leads = Vec::new();
            for (((i, name), company), source) in people.iter().enumerate().zip(companies.iter().cycle()).zip(sources.iter().cycle()) {
                let email = if i % 4 == 3 {
                    Json::Null
                } else {
                    json!(format!(
                        "{}@{}.example",
                        name.split(' ').next().unwrap_or("lead").to_lowercase(),
                        company.split(' ').next().unwrap_or("co").to_lowercase()
                    ))
                };
                let id = tx
                    .create("Lead", &json!({ "name": name, "company": company, "email": email, "source": source, "score": (i * 37) % 100 }))
                    .await?;
                leads.push(id);
            }
            // Stages: people's work after the worker qualified the leads with an e-mail.
            for (i, id) in leads.iter().enumerate() {
                let path: &[&str] = match i % 6 {
                    0 => &["QUALIFIED", "CONTACTED", "CONVERTED"],
                    1 => &["QUALIFIED", "CONTACTED"],
                    2 => &["QUALIFIED", "REJECTED"],
                    3 => &["CONTACTED"],
                    4 => &["QUALIFIED"],
                    _ => &[],
                };
                for stage in path {
                    tx.update("Lead", *id, &json!({ "status": stage })).await?;
                }
                if i % 6 == 0 {
                    tx.update("Lead", *id, &json!({ "convertedAt": chrono::Utc::now() })).await?;
                }
                if i % 3 == 0 {
                    tx.create("Activity", &json!({ "kind": "CALL", "subject": { "type": "Lead", "id": id.to_string() }, "title": "Discovery call", "body": "Talked about their current tooling and budget.", "occurredAt": chrono::Utc::now() })).await?;
                }
            }
            Ok(())
        })
    }
}

/// Fills tenant `org` with demo data (it is registered if new). A tenant that already has members
/// is left alone.
///
/// # Errors
/// Database failures.
pub async fn seed_demo(store: &Store, org: &OrgId) -> Result<Option<Seeded>, OrmError> {
    store.register_tenant(org, None).await?;
    // Seeding is platform work: the platform's own access in the demo tenant.
    let access = store.cross_tenant_platform_work().system_access(org.clone(), "seed-demo");
    let member = store.catalog().model("Member").cloned().ok_or_else(|| OrmError::missing_model("Member"))?;
    let mut read = Read::new(&member);
    read.page = Page { first: Some(1), ..Page::default() };
    read.filter = Filter::True;
    if !store.read(&access.scope(store.catalog(), &member.name, crm_orm::Op::Read, read)?).await?.rows.is_empty() {
        return Ok(None);
    }
    store.transaction(&access, &Seed).await?;
    let social = |platform: &str, kind: &str, id: &str, thread: Option<&str>, handle: &str, name: &str, text: &str| SocialInput {
        platform: platform.to_owned(),
        kind: kind.to_owned(),
        external_id: id.to_owned(),
        thread: thread.map(str::to_owned),
        author_handle: handle.to_owned(),
        author_name: Some(name.to_owned()),
        text: Some(text.to_owned()),
        url: Some(format!("https://{platform}.example/{id}")),
        occurred_at: Some(chrono::Utc::now()),
    };
    let events = vec![
        social("x", "POST", "x-1001", None, "@demo_crm", "Demo CRM", "We just shipped routing rules!"),
        social("x", "DM", "x-1002", None, "@jules_k", "Jules Keller", "Hi! Does your CRM work for a 20-person agency? Pricing?"),
        social("x", "DM", "x-1003", Some("x-1002"), "@jules_k", "Jules Keller", "Also: do you integrate with our invoicing tool?"),
        social("instagram", "DM", "ig-77", None, "@bloomtom", "Tom Weller", "Can we add two more seats this month?"),
        social("x", "MENTION", "x-1004", None, "@mayasingh", "Maya Singh", "@demo_crm help, the export button does nothing"),
        social("linkedin", "DM", "li-5", None, "sara-lind", "Sara Lind", "Interested in a demo for our sales team."),
    ];
    let outcome = store.transaction(&access, &Ingest { events }).await?;
    tracing::info!(created = outcome.created, leads = outcome.leads_created, tickets = outcome.tickets_created, "social events ingested");
    let mut records = Vec::new();
    for m in ["Member", "Account", "Contact", "Lead", "Opportunity", "Ticket", "Activity", "SocialEvent", "Assignment", "TagAssignment"] {
        let Some(model) = store.catalog().model(m).cloned() else { continue };
        let mut read = Read::new(&model);
        read.count = true;
        read.page = Page { first: Some(1), ..Page::default() };
        let n = store.read(&access.scope(store.catalog(), &model.name, crm_orm::Op::Read, read)?).await?.count.unwrap_or(0);
        records.push((m.to_owned(), usize::try_from(n).unwrap_or(0)));
    }
    Ok(Some(Seeded { records }))
}
