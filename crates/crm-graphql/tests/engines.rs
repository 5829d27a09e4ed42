//! The CRM engines through the API, on SQLite and PostgreSQL: tagging, routing, events and the
//! qualification worker, webhooks, social ingestion, reports. Every case also runs a second
//! tenant to show nothing crosses over.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Backend, Gql, backends, create, gql, org, principal};
use crm_engines::egress::Egress;
use crm_engines::webhooks::{DeliveryOptions, sign};
use crm_engines::{Engines, WorkerOptions, Workers};
use serde_json::{Value as Json, json};

/// The backends, with the engines' write hook installed (as the server does).
async fn hooked() -> Vec<Backend> {
    backends().await.into_iter().map(|b| Backend { name: b.name, store: Engines::install(&b.store), api: b.api }).collect()
}

/// The delivery policy of a server run with `--webhook-allow 127.0.0.1/32,::1/128`: loopback
/// receivers (the tests') are allowed.
fn loopback_allowed() -> Arc<Egress> {
    Arc::new(Egress::with_allowed(&["127.0.0.1/32".to_owned(), "::1/128".to_owned()]).unwrap())
}

fn workers(b: &Backend, orgs: &[&crm_model::OrgId], delivery: DeliveryOptions) -> Workers {
    Workers::start(
        b.store.clone(),
        WorkerOptions {
            poll: Duration::from_millis(20),
            delivery,
            orgs: orgs.iter().map(|o| o.as_str().to_owned()).collect(),
            ..WorkerOptions::default()
        },
    )
}

async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..400 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn lead(g: &Gql<'_>, id: &str) -> Json {
    g.ok(
        "query($id: ID!) { lead(where: {id: $id}) { id name status tags owner { id name } tagAssignments { tag rule { name } } assignments { member { name } rule { name } strategy reason } } }",
        json!({ "id": id }),
    )
    .await["lead"]
        .clone()
}

#[tokio::test]
async fn tagging_rules_tag_leads_on_write_and_on_demand() {
    for b in hooked().await {
        let (a_org, b_org) = (org(), org());
        let admin = gql(&b, principal(&a_org, "admin-a", &["admin"]));
        let sales = gql(&b, principal(&a_org, "alice", &["sales"]));
        let viewer = gql(&b, principal(&a_org, "val", &["viewer"]));
        let other = gql(&b, principal(&b_org, "admin-b", &["admin"]));

        // A rule with an invalid condition is refused, naming the problem; nothing is stored.
        let r =
            admin.error("mutation { createTagRule(data: {name: \"bad\", condition: {nope: 1}, tags: [\"x\"]}) { id } }", json!({})).await;
        assert_eq!(r["extensions"]["code"], "BAD_USER_INPUT", "[{}] {r}", b.name);
        assert!(r["message"].as_str().unwrap().contains("nope"), "[{}] {r}", b.name);
        let n = admin.ok("{ tagRulesConnection { aggregate { count } } }", json!({})).await;
        assert_eq!(n["tagRulesConnection"]["aggregate"]["count"], 0);
        // Sales may read rules but not write them.
        assert_eq!(sales.code("mutation { createTagRule(data: {name: \"s\", tags: [\"x\"]}) { id } }", json!({})).await, "FORBIDDEN");

        let corp = create(
            &admin,
            "TagRule",
            json!({ "name": "Corp", "condition": { "company_contains": "corp" }, "tags": ["enterprise", "b2b"], "priority": 1 }),
        )
        .await;
        create(&admin, "TagRule", json!({ "name": "Web", "condition": { "source": "WEB" }, "tags": ["web", "b2b"], "priority": 2 })).await;
        create(&admin, "TagRule", json!({ "name": "Off", "tags": ["never"], "enabled": false })).await;

        // On create: every enabled matching rule adds its tags; each tag names its rule.
        let l1 = create(&sales, "Lead", json!({ "name": "L1", "company": "Acme Corp", "source": "WEB", "tags": ["vip"] })).await;
        let got = lead(&admin, &l1).await;
        assert_eq!(got["tags"], json!(["vip", "enterprise", "b2b", "web"]), "[{}]", b.name);
        let by: HashMap<String, String> = got["tagAssignments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["tag"].as_str().unwrap().to_owned(), a["rule"]["name"].as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(by, HashMap::from([("enterprise".into(), "Corp".into()), ("b2b".into(), "Corp".into()), ("web".into(), "Web".into())]));

        // On update: a lead that starts matching gets the tags.
        let l2 = create(&admin, "Lead", json!({ "name": "L2", "company": "Tiny" })).await;
        assert_eq!(lead(&admin, &l2).await["tags"], Json::Null);
        admin.ok("mutation($id: ID!) { updateLead(where: {id: $id}, data: {company: \"Big Corp\"}) { id } }", json!({ "id": l2 })).await;
        assert_eq!(lead(&admin, &l2).await["tags"], json!(["enterprise", "b2b"]));

        // On demand for a filter: a new rule applied to existing leads; idempotent.
        create(&admin, "TagRule", json!({ "name": "Named L", "condition": { "name_starts_with": "L" }, "tags": ["l"] })).await;
        let first = admin.ok("mutation { tagLeads(where: {name_in: [\"L1\", \"L2\"]}) { matched changed tagsAdded } }", json!({})).await;
        assert_eq!(first["tagLeads"], json!({ "matched": 2, "changed": 2, "tagsAdded": 2 }), "[{}]", b.name);
        let again = admin.ok("mutation { tagLeads { matched changed tagsAdded } }", json!({})).await;
        assert_eq!(again["tagLeads"], json!({ "matched": 2, "changed": 0, "tagsAdded": 0 }));
        let assignments = admin.ok("{ tagAssignmentsConnection { aggregate { count } } }", json!({})).await;
        assert_eq!(assignments["tagAssignmentsConnection"]["aggregate"]["count"], 7);
        // A viewer cannot re-tag (no update grant).
        assert_eq!(viewer.code("mutation { tagLeads { matched } }", json!({})).await, "FORBIDDEN");

        // Tenant B: A's rules do not apply, and B's re-tagging never sees A's leads.
        let lb = create(&other, "Lead", json!({ "name": "LB", "company": "Other Corp", "source": "WEB" })).await;
        assert_eq!(lead(&other, &lb).await["tags"], Json::Null);
        let b_run = other.ok("mutation { tagLeads { matched changed } }", json!({})).await;
        assert_eq!(b_run["tagLeads"], json!({ "matched": 1, "changed": 0 }));
        let _ = corp;
    }
}

async fn member(g: &Gql<'_>, name: &str, extra: Json) -> String {
    let mut data = json!({ "name": name });
    data.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    create(g, "Member", data).await
}

#[tokio::test]
async fn round_robin_is_fair_and_never_double_assigns_under_concurrent_creation() {
    for b in hooked().await {
        let a_org = org();
        let admin = gql(&b, principal(&a_org, "admin-a", &["admin"]));
        let mut ids = Vec::new();
        for n in ["Ann", "Bob", "Cid"] {
            ids.push(member(&admin, n, json!({ "teams": ["inbound"] })).await);
        }
        member(&admin, "Outsider", json!({ "teams": ["other"] })).await;
        let rule = create(
            &admin,
            "RoutingRule",
            json!({ "name": "RR", "pool": ["inbound"], "strategy": "ROUND_ROBIN", "respectWorkingHours": false }),
        )
        .await;
        // 30 leads created at once, each by its own request.
        let creates = (0..30).map(|i| {
            let g = gql(&b, principal(&a_org, "admin-a", &["admin"]));
            async move {
                g.ok("mutation($n: String!) { createLead(data: {name: $n}) { id owner { name } } }", json!({ "n": format!("lead {i}") }))
                    .await
            }
        });
        let out = futures_join_all(creates).await;
        assert!(out.iter().all(|o| !o["createLead"]["owner"].is_null()), "[{}] every lead assigned", b.name);
        let leads = admin.ok("{ leads(first: 100) { owner { name } assignments { id member { name } rule { name } } } }", json!({})).await;
        let mut per: HashMap<String, usize> = HashMap::new();
        for l in leads["leads"].as_array().unwrap() {
            assert_eq!(l["assignments"].as_array().unwrap().len(), 1, "[{}] one decision per lead: {l}", b.name);
            assert_eq!(l["assignments"][0]["member"]["name"], l["owner"]["name"]);
            assert_eq!(l["assignments"][0]["rule"]["name"], "RR");
            *per.entry(l["owner"]["name"].as_str().unwrap().to_owned()).or_default() += 1;
        }
        assert_eq!(per, HashMap::from([("Ann".into(), 10), ("Bob".into(), 10), ("Cid".into(), 10)]), "[{}] fair turns", b.name);
        // The durable pointer names the last one chosen.
        let r = admin.ok("query($id: ID!) { routingRule(where: {id: $id}) { lastAssigned { name } } }", json!({ "id": rule })).await;
        assert!(r["routingRule"]["lastAssigned"]["name"].is_string());
    }
}

async fn futures_join_all<F: std::future::Future>(fs: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in fs {
        set.push(f);
    }
    let mut out = Vec::with_capacity(set.len());
    // Poll all at once.
    let handles: Vec<_> = set.into_iter().map(Box::pin).collect();
    let mut pending: Vec<_> = handles.into_iter().map(Some).collect();
    let mut results: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (i, p) in pending.iter_mut().enumerate() {
            if let Some(f) = p {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        results[i] = Some(v);
                        *p = None;
                    }
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all { std::task::Poll::Ready(()) } else { std::task::Poll::Pending }
    })
    .await;
    for r in results {
        out.push(r.unwrap());
    }
    out
}

/// Working hours that exclude `now` (a one-hour window twelve hours away), in UTC.
fn hours_not_now() -> Json {
    let h = (chrono::Utc::now() + chrono::Duration::hours(12)).format("%H").to_string();
    let all = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    Json::Object(all.iter().map(|d| ((*d).to_owned(), json!([format!("{h}:00"), format!("{h}:30")]))).collect())
}

#[tokio::test]
async fn routing_skips_away_off_hours_and_full_members_and_falls_through() {
    for b in hooked().await {
        let (a_org, b_org) = (org(), org());
        let admin = gql(&b, principal(&a_org, "admin-a", &["admin"]));
        let other = gql(&b, principal(&b_org, "admin-b", &["admin"]));
        member(&admin, "Away", json!({ "teams": ["first"], "away": true })).await;
        member(&admin, "Night", json!({ "teams": ["first"], "timeZone": "UTC", "workingHours": hours_not_now() })).await;
        let full = member(&admin, "Full", json!({ "teams": ["first"], "capacity": 1 })).await;
        create(&admin, "Lead", json!({ "name": "already Full's", "owner": { "connect": { "id": full } } })).await;
        member(&admin, "Fin", json!({ "teams": ["second"], "skills": ["fintech", "saas"] })).await;
        member(&admin, "Gen", json!({ "teams": ["second"], "skills": ["retail"] })).await;
        member(&admin, "Lb1", json!({ "teams": ["third"] })).await;
        member(&admin, "Lb2", json!({ "teams": ["third"] })).await;
        create(&admin, "RoutingRule", json!({ "name": "First team", "pool": ["first"], "priority": 1 })).await;
        create(&admin, "RoutingRule", json!({ "name": "Skills", "condition": { "tags_contains_some": ["fintech", "retail"] }, "pool": ["second"], "strategy": "SKILL_MATCH", "priority": 2 })).await;
        create(&admin, "RoutingRule", json!({ "name": "Balanced", "pool": ["third"], "strategy": "LOAD_BALANCED", "priority": 3 })).await;

        // Nobody in the first team qualifies: the lead falls through to the skills rule, to the
        // member whose skills match its tags; the reason says why.
        let l = create(&admin, "Lead", json!({ "name": "fintech lead", "tags": ["fintech"] })).await;
        let got = lead(&admin, &l).await;
        assert_eq!(got["owner"]["name"], "Fin", "[{}] {got}", b.name);
        let reason = got["assignments"][0]["reason"].as_str().unwrap();
        assert_eq!(got["assignments"][0]["rule"]["name"], "Skills");
        for part in ["Away (away)", "Night (outside working hours)", "Full (at capacity 1/1)", "First team"] {
            assert!(reason.contains(part), "[{}] reason mentions {part}: {reason}", b.name);
        }
        // No skill matches: falls through again, to the balanced rule; it alternates by load.
        let owners: Vec<String> = {
            let mut v = Vec::new();
            for i in 0..4 {
                let id = create(&admin, "Lead", json!({ "name": format!("plain {i}") })).await;
                v.push(lead(&admin, &id).await["owner"]["name"].as_str().unwrap().to_owned());
            }
            v
        };
        assert_eq!(owners, ["Lb1", "Lb2", "Lb1", "Lb2"], "[{}]", b.name);
        // On demand, at a time inside Night's hours, Night qualifies in the first team.
        let h = (chrono::Utc::now() + chrono::Duration::hours(12)).format("%Y-%m-%dT%H:10:00Z").to_string();
        let free = create(&admin, "Lead", json!({ "name": "later", "owner": { "connect": { "id": full } } })).await;
        let routed = admin
            .ok(
                "mutation($at: DateTime!, $id: ID!) { routeLeads(where: {id: $id}, reassign: true, at: $at) { memberName rule reason } }",
                json!({ "at": h, "id": free }),
            )
            .await;
        assert_eq!(routed["routeLeads"][0]["memberName"], "Night", "[{}] {routed}", b.name);
        // Tenant B has no rules: its leads stay unassigned, and A's members are invisible to it.
        let lb = create(&other, "Lead", json!({ "name": "b lead" })).await;
        assert!(lead(&other, &lb).await["owner"].is_null());
        let decisions = other.ok("mutation { routeLeads { reason } }", json!({})).await;
        assert_eq!(decisions["routeLeads"], json!([{ "reason": "no enabled routing rule" }]));
    }
}

#[test]
fn working_hours_follow_the_members_time_zone() {
    use chrono::TimeZone;
    use crm_engines::routing::within_hours;
    let hours = json!({ "mon": ["09:00", "17:00"], "tue": [["09:00", "12:00"], ["13:00", "17:00"]], "fri": ["22:00", "02:00"] });
    // Monday 2026-06-01: Berlin is UTC+2.
    let at = |d: u32, h: u32, m: u32| chrono::Utc.with_ymd_and_hms(2026, 6, d, h, m, 0).unwrap();
    assert!(within_hours(Some(&hours), Some("Europe/Berlin"), at(1, 7, 30)).unwrap()); // 09:30 local
    assert!(!within_hours(Some(&hours), Some("Europe/Berlin"), at(1, 6, 30)).unwrap()); // 08:30 local
    assert!(!within_hours(Some(&hours), Some("Europe/Berlin"), at(1, 15, 0)).unwrap()); // 17:00 local, end excluded
    assert!(within_hours(Some(&hours), Some("UTC"), at(1, 15, 0)).unwrap());
    assert!(!within_hours(Some(&hours), Some("UTC"), at(2, 12, 30)).unwrap()); // Tuesday lunch
    assert!(within_hours(Some(&hours), Some("UTC"), at(2, 13, 0)).unwrap());
    assert!(!within_hours(Some(&hours), Some("UTC"), at(3, 10, 0)).unwrap()); // Wednesday off
    assert!(within_hours(Some(&hours), Some("UTC"), at(6, 1, 0)).unwrap()); // Saturday 01:00, Friday's night shift
    assert!(within_hours(None, Some("UTC"), at(3, 3, 0)).unwrap());
    assert!(within_hours(Some(&hours), Some("Mars/Olympus"), at(1, 9, 0)).is_err());
}

#[tokio::test]
async fn every_write_emits_an_event_and_the_worker_qualifies_new_leads_once() {
    for b in hooked().await {
        let (a_org, b_org) = (org(), org());
        let admin = gql(&b, principal(&a_org, "admin-a", &["admin"]));
        let sales = gql(&b, principal(&a_org, "alice", &["sales"]));
        let other = gql(&b, principal(&b_org, "admin-b", &["admin"]));
        let bad = admin
            .error(
                "mutation { createAutomationRule(data: {name: \"x\", event: \"lead.exploded\", set: {status: \"QUALIFIED\"}}) { id } }",
                json!({}),
            )
            .await;
        assert_eq!(bad["extensions"]["code"], "BAD_USER_INPUT", "[{}] {bad}", b.name);
        create(&admin, "AutomationRule", json!({ "name": "Qualify", "event": "lead.created", "condition": { "status": "NEW", "email_not": null }, "set": { "status": "QUALIFIED" } })).await;
        let with_mail = create(&sales, "Lead", json!({ "name": "Has mail", "email": "m@x.example" })).await;
        let without = create(&sales, "Lead", json!({ "name": "No mail" })).await;
        admin.ok("mutation($id: ID!) { updateLead(where: {id: $id}, data: {score: 5}) { id } }", json!({ "id": without })).await;
        admin.ok("mutation($id: ID!) { deleteLead(where: {id: $id}) { id } }", json!({ "id": without })).await;
        // Tenant B has the same lead but no rule.
        let b_lead = create(&other, "Lead", json!({ "name": "B", "email": "b@x.example" })).await;

        // The outbox: one event per write, in order, with before and after.
        let access = b.store.access(&crm_orm::Policy::default_roles(), &principal(&a_org, "admin-a", &["admin"])).await.unwrap();
        let events_of = |id: &str| {
            let lead = b.store.catalog().model("Lead").unwrap().name.clone();
            let q = crm_orm::RecordEvents { model: lead.clone(), record: uuid::Uuid::parse_str(id).unwrap(), first: 10 };
            access.scope(b.store.catalog(), &lead, crm_orm::Op::Read, q).unwrap()
        };
        let evs = b.store.record_events(&events_of(&without)).await.unwrap();
        let kinds: Vec<&str> = evs.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["lead.created", "lead.updated", "lead.deleted"], "[{}]", b.name);
        assert!(evs[0].before.is_none() && evs[0].after.as_ref().unwrap()["name"] == "No mail");
        assert_eq!(evs[1].before.as_ref().unwrap()["score"], Json::Null);
        assert_eq!(evs[1].after.as_ref().unwrap()["score"], 5);
        assert_eq!(evs[1].actor.as_deref(), Some("admin-a"));
        assert!(evs.windows(2).all(|w| w[0].seq < w[1].seq));
        // Another tenant's events are not readable through A's access.
        assert!(b.store.record_events(&events_of(&b_lead)).await.unwrap().is_empty());

        let w = workers(&b, &[&a_org, &b_org], DeliveryOptions::default());
        eventually("qualification", || async { lead(&admin, &with_mail).await["status"] == "QUALIFIED" }).await;
        // People take it from there; the worker never moves it back.
        admin.ok("mutation($id: ID!) { updateLead(where: {id: $id}, data: {status: CONTACTED}) { id } }", json!({ "id": with_mail })).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        w.stop().await;
        let h =
            admin.ok("query($id: ID!) { lead(where: {id: $id}) { status stages { stage enteredBy } } }", json!({ "id": with_mail })).await;
        assert_eq!(h["lead"]["status"], "CONTACTED");
        let stages: Vec<&str> = h["lead"]["stages"].as_array().unwrap().iter().map(|s| s["stage"].as_str().unwrap()).collect();
        assert_eq!(stages, ["NEW", "QUALIFIED", "CONTACTED"], "[{}]", b.name);
        assert_eq!(h["lead"]["stages"][1]["enteredBy"], "system:automation");
        // B's lead: no rule, still NEW.
        assert_eq!(lead(&other, &b_lead).await["status"], "NEW");
    }
}

type Received = Arc<Mutex<Vec<(String, bool)>>>;

/// A webhook receiver: verifies each delivery's signature with `secret`, answers 500 to the first
/// `fail` requests and 200 after; records (event type, signature valid).
async fn receiver(secret: &'static str, fail: usize) -> (String, Received) {
    use axum::http::{HeaderMap, StatusCode};
    let got: Received = Arc::new(Mutex::new(Vec::new()));
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (g, c) = (got.clone(), calls.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let (g, c) = (g.clone(), c.clone());
            async move {
                let ts: i64 = headers["x-crm-timestamp"].to_str().unwrap().parse().unwrap();
                let sig = headers["x-crm-signature"].to_str().unwrap().to_owned();
                let valid = sig == format!("v1={}", sign(secret, ts, &body)) && (chrono::Utc::now().timestamp() - ts).abs() < 300;
                let v: Json = serde_json::from_slice(&body).unwrap();
                if c.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < fail {
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                g.lock().unwrap().push((v["type"].as_str().unwrap().to_owned(), valid));
                StatusCode::OK
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (format!("http://{addr}/hook"), got)
}

#[tokio::test]
async fn webhooks_are_signed_retried_recorded_and_a_dead_endpoint_blocks_nothing() {
    for b in hooked().await {
        // The receivers are on loopback: allowed by the operator, as with `--webhook-allow`.
        let b = Backend { store: Engines::install_with(&b.store, loopback_allowed()), ..b };
        let (a_org, b_org) = (org(), org());
        let admin = gql(&b, principal(&a_org, "admin-a", &["admin"]));
        let other = gql(&b, principal(&b_org, "admin-b", &["admin"]));
        let sales = gql(&b, principal(&a_org, "alice", &["sales"]));
        let (url, got) = receiver("a-secret-of-16-chars", 2).await;
        let (b_url, b_got) = receiver("b-secret-of-16-chars", 0).await;
        // A dead endpoint: accepts connections and never answers.
        let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead_url = format!("http://{}/hook", dead.local_addr().unwrap());
        let bad = admin
            .error(
                "mutation($u: String!) { createWebhook(data: {url: $u, events: [\"lead\"], secret: \"a-secret-of-16-chars\"}) { id } }",
                json!({ "u": url }),
            )
            .await;
        assert_eq!(bad["extensions"]["code"], "BAD_USER_INPUT", "[{}] {bad}", b.name);
        let hook = create(&admin, "Webhook", json!({ "url": url, "events": ["lead.*"], "secret": "a-secret-of-16-chars" })).await;
        let dead_hook = create(&admin, "Webhook", json!({ "url": dead_url, "events": ["*"], "secret": "d-secret-of-16-chars" })).await;
        create(&other, "Webhook", json!({ "url": b_url, "events": ["*"], "secret": "b-secret-of-16-chars" })).await;
        // Webhooks are for administrators: sales can neither see them nor their deliveries.
        assert_eq!(sales.code("{ webhooks { id } }", json!({})).await, "FORBIDDEN");
        assert_eq!(sales.code("{ webhookDeliveries { id } }", json!({})).await, "FORBIDDEN");
        let w = workers(
            &b,
            &[&a_org, &b_org],
            DeliveryOptions {
                retry_base: Duration::from_millis(100),
                timeout: Duration::from_secs(2),
                egress: loopback_allowed(),
                ..DeliveryOptions::default()
            },
        );
        let id = create(&admin, "Lead", json!({ "name": "hooked" })).await;
        admin.ok("mutation($id: ID!) { updateLead(where: {id: $id}, data: {score: 1}) { id } }", json!({ "id": id })).await;
        create(&admin, "Account", json!({ "name": "not subscribed" })).await;
        eventually("two deliveries after retries", || async { got.lock().unwrap().len() >= 2 }).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut received = got.lock().unwrap().clone();
        received.sort();
        assert_eq!(received, [("lead.created".to_owned(), true), ("lead.updated".to_owned(), true)], "[{}] signed, only lead.*", b.name);
        let d = admin
            .ok("query($w: ID!) { webhookDeliveries(webhook: $w) { eventType status attempts lastStatus } }", json!({ "w": hook }))
            .await;
        let mut list = d["webhookDeliveries"].as_array().unwrap().clone();
        list.sort_by_key(|x| x["eventType"].as_str().unwrap().to_owned());
        // The first two attempts got 500s: the first delivery took three attempts in all.
        let attempts: i64 = list.iter().map(|x| x["attempts"].as_i64().unwrap()).sum();
        assert_eq!(attempts, 4, "[{}] {list:?}", b.name);
        assert!(list.iter().all(|x| x["status"] == "DELIVERED" && x["lastStatus"] == 200));
        // The dead endpoint's deliveries are pending (timed out, retrying), and held nothing up.
        let d = admin.ok("query($w: ID!) { webhookDeliveries(webhook: $w) { status lastError } }", json!({ "w": dead_hook })).await;
        assert!(d["webhookDeliveries"].as_array().unwrap().iter().all(|x| x["status"] == "PENDING"), "[{}] {d}", b.name);
        // Tenant B's receiver got nothing of A's, and B sees none of A's deliveries.
        assert!(b_got.lock().unwrap().is_empty());
        assert_eq!(other.ok("{ webhookDeliveries { id } }", json!({})).await["webhookDeliveries"], json!([]));
        w.stop().await;
        drop(dead);
    }
}

/// Webhooks never reach the server's own networks: literal internal addresses are refused when
/// saved (each class, both tenants), a host name is checked against what it resolves to at
/// delivery (`localhost` → loopback: refused, nothing received, the tenant told only the class),
/// redirects are not followed, and an operator's allow-list lets an internal receiver through.
#[tokio::test]
async fn webhooks_never_reach_internal_addresses() {
    for b in hooked().await {
        let (a_org, b_org) = (org(), org());
        let admin = gql(&b, principal(&a_org, "admin-a", &["admin"]));
        let other = gql(&b, principal(&b_org, "admin-b", &["admin"]));
        let sales = gql(&b, principal(&a_org, "alice", &["sales"]));
        let save = "mutation($u: String!) { createWebhook(data: {url: $u, events: [\"*\"], secret: \"a-secret-of-16-chars\"}) { id } }";
        for (url, class) in [
            ("http://169.254.169.254/latest/meta-data/", "link-local"),
            ("http://[fe80::1]/", "link-local"),
            ("http://[::1]:22/", "loopback"),
            ("http://127.0.0.1:1/", "loopback"),
            ("http://2130706433/", "loopback"),
            ("http://[::ffff:127.0.0.1]/", "loopback"),
            ("http://10.0.0.1/", "private"),
            ("http://192.168.1.1/", "private"),
            ("http://172.16.5.4/", "private"),
            ("http://[fd00::1]/", "private"),
            ("http://100.64.0.1/", "shared"),
            ("http://224.0.0.1/", "multicast"),
            ("http://0.0.0.0:8080/", "unspecified"),
            ("ftp://hooks.example.com/", "http(s) URL"),
            ("file:///etc/passwd", "http(s) URL"),
        ] {
            for (who, g) in [("admin A", &admin), ("admin B", &other)] {
                let e = g.error(save, json!({ "u": url })).await;
                assert_eq!(e["extensions"]["code"], "BAD_USER_INPUT", "[{}] {who}: {url}: {e}", b.name);
                assert_eq!(e["extensions"]["field"], "url", "[{}] {who}: {url}: {e}", b.name);
                assert!(e["message"].as_str().unwrap().contains(class), "[{}] {who}: {url}: {e}", b.name);
            }
            if url.starts_with("http") {
                assert_eq!(sales.code(save, json!({ "u": url })).await, "FORBIDDEN", "[{}] sales: {url}", b.name);
            }
        }
        // Moving a saved webhook to an internal address is refused the same way.
        let public =
            create(&admin, "Webhook", json!({ "url": "https://hooks.example.com/crm", "events": ["*"], "secret": "a-secret-of-16-chars" }))
                .await;
        let e = admin
            .error(
                "mutation($id: ID!) { updateWebhook(where: {id: $id}, data: {url: \"http://169.254.169.254/\"}) { id } }",
                json!({ "id": public }),
            )
            .await;
        assert_eq!(e["extensions"]["code"], "BAD_USER_INPUT", "[{}] {e}", b.name);
        admin.ok("mutation($id: ID!) { deleteWebhook(where: {id: $id}) { id } }", json!({ "id": public })).await;

        // A host name that resolves to loopback passes when saved, and is refused at delivery.
        let (url, got) = receiver("a-secret-of-16-chars", 0).await;
        let named = url.replace("127.0.0.1", "localhost");
        let hook = create(&admin, "Webhook", json!({ "url": named, "events": ["lead.*"], "secret": "a-secret-of-16-chars" })).await;
        let fast = DeliveryOptions { retry_base: Duration::from_millis(50), timeout: Duration::from_secs(2), ..DeliveryOptions::default() };
        let w = workers(&b, &[&a_org, &b_org], fast.clone());
        create(&admin, "Lead", json!({ "name": "to be hooked" })).await;
        let q = "query($w: ID!) { webhookDeliveries(webhook: $w) { status attempts lastStatus lastError } }";
        eventually("a refused attempt", || async {
            admin.ok(q, json!({ "w": hook })).await["webhookDeliveries"][0]["attempts"].as_i64().unwrap_or(0) >= 1
        })
        .await;
        w.stop().await;
        let d = admin.ok(q, json!({ "w": hook })).await["webhookDeliveries"][0].clone();
        assert_eq!(d["status"], "PENDING", "[{}] retried later (DNS may change): {d}", b.name);
        assert_eq!(d["lastStatus"], Json::Null, "[{}] {d}", b.name);
        let err = d["lastError"].as_str().unwrap();
        assert!(err.contains("resolves to a loopback address"), "[{}] {d}", b.name);
        assert!(!err.contains("127.0.0.1") && !err.contains("::1") && !err.contains("refused"), "[{}] no internal detail: {d}", b.name);
        assert!(got.lock().unwrap().is_empty(), "[{}] nothing reached the loopback receiver", b.name);

        // With the operator's allow-list the same name is delivered to.
        let allowed = Backend { store: Engines::install_with(&b.store, loopback_allowed()), name: b.name, api: b.api.clone() };
        let w = workers(&allowed, &[&a_org], DeliveryOptions { egress: loopback_allowed(), ..fast.clone() });
        eventually("the allowed delivery", || async { !got.lock().unwrap().is_empty() }).await;
        w.stop().await;
        assert_eq!(got.lock().unwrap()[0], ("lead.created".to_owned(), true), "[{}]", b.name);

        // Redirects are not followed (here to the cloud metadata address): the attempt fails
        // with the receiver's status.
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(|| async { (axum::http::StatusCode::TEMPORARY_REDIRECT, [("location", "http://169.254.169.254/")]) }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let redirect_url = format!("http://{}/hook", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        let allowed_gql = gql(&allowed, principal(&b_org, "admin-b", &["admin"]));
        let hook = create(&allowed_gql, "Webhook", json!({ "url": redirect_url, "events": ["*"], "secret": "b-secret-of-16-chars" })).await;
        let w = workers(&allowed, &[&b_org], DeliveryOptions { egress: loopback_allowed(), ..fast });
        create(&allowed_gql, "Account", json!({ "name": "redirected" })).await;
        eventually("the redirected attempt", || async {
            allowed_gql.ok(q, json!({ "w": hook })).await["webhookDeliveries"][0]["attempts"].as_i64().unwrap_or(0) >= 1
        })
        .await;
        w.stop().await;
        let d = allowed_gql.ok(q, json!({ "w": hook })).await["webhookDeliveries"][0].clone();
        assert_eq!(d["lastStatus"], 307, "[{}] {d}", b.name);
        assert_ne!(d["status"], "DELIVERED", "[{}] {d}", b.name);
    }
}

/// The second wall on the event tables (PostgreSQL): with the workers of two tenants running
/// (automation and webhook deliveries, across tenants without a BYPASSRLS role), a request of
/// tenant A whose statements lose the tenant predicate (the test-only bypass) sees none of B's
/// events or deliveries, and a connection set to tenant A sees none of B's outbox, delivery,
/// cursor or registry rows, nor can it write any; a session set to no tenant sees nothing.
#[tokio::test]
async fn event_tables_are_behind_row_level_security() {
    use sqlx::Connection;
    let Ok(url) = std::env::var("CRM_TEST_DATABASE_URL") else { return };
    for b in hooked().await.into_iter().filter(|b| b.name == "postgres") {
        let b = Backend { store: Engines::install_with(&b.store, loopback_allowed()), ..b };
        let (a_org, b_org) = (org(), org());
        let mut received = Vec::new();
        for o in [&a_org, &b_org] {
            b.store.register_tenant(o, None).await.unwrap();
            let admin = gql(&b, principal(o, "admin", &["admin"]));
            let (url, got) = receiver("a-secret-of-16-chars", 0).await;
            create(&admin, "Webhook", json!({ "url": url, "events": ["lead.*"], "secret": "a-secret-of-16-chars" })).await;
            create(
                &admin,
                "AutomationRule",
                json!({ "name": "Qualify", "event": "lead.created", "condition": { "status": "NEW" }, "set": { "status": "QUALIFIED" } }),
            )
            .await;
            create(&admin, "Lead", json!({ "name": format!("lead of {o}") })).await;
            received.push(got);
        }
        let w = workers(&b, &[&a_org, &b_org], DeliveryOptions { egress: loopback_allowed(), ..DeliveryOptions::default() });
        for (o, got) in [&a_org, &b_org].into_iter().zip(&received) {
            let admin = gql(&b, principal(o, "admin", &["admin"]));
            eventually("qualified in each tenant", || async {
                admin.ok("{ leads { status } }", json!({})).await["leads"][0]["status"] == "QUALIFIED"
            })
            .await;
            eventually("delivered in each tenant", || async { got.lock().unwrap().len() >= 2 }).await;
        }
        w.stop().await;

        // Through the store, as A, with the tenant predicate removed: RLS alone keeps B out.
        let access = b.store.access(&crm_orm::Policy::default_roles(), &principal(&a_org, "admin", &["admin"])).await.unwrap();
        let access_b = b.store.access(&crm_orm::Policy::default_roles(), &principal(&b_org, "admin", &["admin"])).await.unwrap();
        let hooks = b.store.catalog().model("Webhook").unwrap().name.clone();
        let all = crm_orm::Deliveries { webhook: None, first: 100 };
        let mine = b
            .store
            .deliveries(&access.scope(b.store.catalog(), &hooks, crm_orm::Op::Read, all).unwrap().danger_without_tenant_predicate())
            .await
            .unwrap();
        let theirs = b.store.deliveries(&access_b.scope(b.store.catalog(), &hooks, crm_orm::Op::Read, all).unwrap()).await.unwrap();
        assert_eq!((mine.len(), theirs.len()), (2, 2), "each tenant has its own two deliveries: {mine:?} {theirs:?}");
        assert!(mine.iter().all(|d| !theirs.contains(d)));
        let b_lead = gql(&b, principal(&b_org, "admin", &["admin"])).ok("{ leads { id } }", json!({})).await["leads"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let lead = b.store.catalog().model("Lead").unwrap().name.clone();
        let q = crm_orm::RecordEvents { model: lead.clone(), record: uuid::Uuid::parse_str(&b_lead).unwrap(), first: 10 };
        let events = b
            .store
            .record_events(&access.scope(b.store.catalog(), &lead, crm_orm::Op::Read, q.clone()).unwrap().danger_without_tenant_predicate())
            .await
            .unwrap();
        assert!(events.is_empty(), "B's events through A's bypassed scope: {events:?}");
        assert_eq!(b.store.record_events(&access_b.scope(b.store.catalog(), &lead, crm_orm::Op::Read, q).unwrap()).await.unwrap().len(), 2);

        // A connection set to tenant A exactly as the store sets a request's, with statements
        // that have no tenant predicate at all.
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query("SELECT set_config('crm.org_id', $1, false), set_config('crm.read_orgs', '', false)")
            .bind(a_org.as_str())
            .execute(&mut c)
            .await
            .unwrap();
        for table in ["crm_outbox", "crm_outbox_heads", "crm_deliveries", "crm_event_cursors", "crm_tenants"] {
            let count = |org: &str| format!("SELECT COUNT(*) FROM {table} WHERE org_id = '{org}'");
            let theirs: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(count(b_org.as_str()))).fetch_one(&mut c).await.unwrap();
            let mine: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(count(a_org.as_str()))).fetch_one(&mut c).await.unwrap();
            assert_eq!(theirs, 0, "{table}: B's rows seen from A");
            assert!(mine > 0, "{table}: A sees its own rows");
        }
        let forged = sqlx::query("INSERT INTO crm_event_cursors (consumer, org_id, last_seq, updated_at) VALUES ('x', $1, 0, now())")
            .bind(b_org.as_str())
            .execute(&mut c)
            .await;
        assert!(forged.is_err(), "a row of B written from A's connection");
        let forged_head =
            sqlx::query("INSERT INTO crm_outbox_heads (org_id, last_seq) VALUES ($1, 1) ON CONFLICT (org_id) DO UPDATE SET last_seq = 1")
                .bind(b_org.as_str())
                .execute(&mut c)
                .await;
        assert!(forged_head.is_err(), "B's outbox head moved from A's connection");
        // A session with no tenant, and a platform flag set in the wrong way (session-level
        // `off`), sees nothing.
        let mut plain = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query("SELECT set_config('crm.platform', 'off', false)").execute(&mut plain).await.unwrap();
        for table in ["crm_outbox", "crm_outbox_heads", "crm_deliveries", "crm_event_cursors", "crm_tenants"] {
            let n: i64 =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"))).fetch_one(&mut plain).await.unwrap();
            assert_eq!(n, 0, "{table} from a session without a tenant");
        }
    }
}

fn social(kind: &str, id: &str, thread: Option<&str>, handle: &str, text: &str) -> Json {
    json!({ "platform": "x", "kind": kind, "externalId": id, "thread": thread, "authorHandle": handle, "authorName": format!("Name {handle}"), "text": text })
}

#[tokio::test]
async fn social_ingestion_is_idempotent_and_feeds_contacts_leads_tickets_and_the_timeline() {
    for b in hooked().await {
        let (a_org, b_org) = (org(), org());
        let admin = gql(&b, principal(&a_org, "admin-a", &["admin"]));
        let sales = gql(&b, principal(&a_org, "alice", &["sales"]));
        let viewer = gql(&b, principal(&a_org, "val", &["viewer"]));
        let other = gql(&b, principal(&b_org, "admin-b", &["admin"]));
        create(&admin, "IngestionRule", json!({ "name": "DMs", "condition": { "kind": "DM" }, "action": "LEAD", "priority": 1 })).await;
        create(
            &admin,
            "IngestionRule",
            json!({ "name": "Help", "condition": { "kind": "MENTION", "text_contains": "help" }, "action": "TICKET", "priority": 2 }),
        )
        .await;
        let known = create(&admin, "Contact", json!({ "lastName": "Known", "socialHandles": ["x:@known"] })).await;
        let batch = json!([
            social("DM", "1", None, "@new", "hi, pricing?"),
            social("DM", "2", Some("1"), "@new", "and a demo?"),
            social("MENTION", "3", None, "@Known", "help, it is broken"),
            social("POST", "4", None, "@known", "nice product"),
            social("DM", "2", Some("1"), "@new", "and a demo?"),
        ]);
        let q = "mutation($e: [SocialEventInput!]!) { ingestSocialEvents(events: $e) { received created duplicates contactsCreated leadsCreated ticketsCreated items { status contact lead ticket } } }";
        let first = sales.ok(q, json!({ "e": batch })).await["ingestSocialEvents"].clone();
        assert_eq!(
            [
                first["received"].clone(),
                first["created"].clone(),
                first["duplicates"].clone(),
                first["contactsCreated"].clone(),
                first["leadsCreated"].clone(),
                first["ticketsCreated"].clone()
            ],
            [json!(5), json!(4), json!(1), json!(1), json!(1), json!(1)],
            "[{}] {first}",
            b.name
        );
        let items = first["items"].as_array().unwrap();
        assert_eq!(items[0]["lead"], items[1]["lead"], "the reply joins the conversation's lead");
        assert_eq!(items[2]["contact"], json!(known), "matched by handle, case-insensitive");
        assert!(items[2]["ticket"].is_string() && items[3]["lead"].is_null() && items[3]["ticket"].is_null());
        let counts = "{ contactsConnection { aggregate { count } } leadsConnection { aggregate { count } } ticketsConnection { aggregate { count } } activitiesConnection { aggregate { count } } socialEventsConnection { aggregate { count } } }";
        let before = admin.ok(counts, json!({})).await;
        // The same batch again creates nothing.
        let again = sales.ok(q, json!({ "e": batch })).await["ingestSocialEvents"].clone();
        assert_eq!(again["created"], 0);
        assert_eq!(again["duplicates"], 5);
        assert_eq!(admin.ok(counts, json!({})).await, before, "[{}]", b.name);
        assert_eq!(before["activitiesConnection"]["aggregate"]["count"], 4);
        // The lead's timeline shows both DMs.
        let lead_id = items[0]["lead"].as_str().unwrap();
        let t = admin
            .ok(
                "query($id: ID!) { lead(where: {id: $id}) { source contact { lastName } timeline { kind at id record } } }",
                json!({ "id": lead_id }),
            )
            .await;
        assert_eq!(t["lead"]["source"], "SOCIAL");
        let socials = t["lead"]["timeline"].as_array().unwrap().iter().filter(|e| e["kind"] == "Activity").count();
        assert_eq!(socials, 2, "[{}] {t}", b.name);
        // Bad input: a precise error and nothing stored.
        let e = sales.error(q, json!({ "e": [social("SHOUT", "9", None, "@x", "")] })).await;
        assert_eq!(e["extensions"]["code"], "BAD_USER_INPUT");
        assert!(e["message"].as_str().unwrap().contains("events[0].kind"), "{e}");
        assert_eq!(admin.ok(counts, json!({})).await, before);
        // A viewer may not ingest; tenant B ingests the same ids independently.
        assert_eq!(viewer.code(q, json!({ "e": batch })).await, "FORBIDDEN");
        let b_first = other.ok(q, json!({ "e": batch })).await["ingestSocialEvents"].clone();
        assert_eq!(b_first["created"], 4);
        assert_eq!(b_first["contactsCreated"], 2, "B does not see A's contact");
    }
}

#[tokio::test]
async fn reports_match_hand_computed_figures() {
    for b in hooked().await {
        let (a_org, b_org) = (org(), org());
        let admin = gql(&b, principal(&a_org, "admin-a", &["admin"]));
        let other = gql(&b, principal(&b_org, "admin-b", &["admin"]));
        let ann = member(&admin, "Ann", json!({ "capacity": 4 })).await;
        let bob = member(&admin, "Bob", json!({})).await;
        // 10 leads: (source, owner, path of stages after NEW).
        let plan: [(&str, Option<&str>, &[&str]); 10] = [
            ("WEB", Some(&ann), &["QUALIFIED", "CONTACTED", "CONVERTED"]),
            ("WEB", Some(&ann), &["QUALIFIED", "CONTACTED"]),
            ("WEB", Some(&bob), &["QUALIFIED"]),
            ("SOCIAL", Some(&bob), &["QUALIFIED", "REJECTED"]),
            ("SOCIAL", Some(&bob), &["CONTACTED", "CONVERTED"]),
            ("SOCIAL", None, &[]),
            ("REFERRAL", Some(&ann), &["QUALIFIED", "CONTACTED", "CONVERTED"]),
            ("REFERRAL", None, &["REJECTED"]),
            ("EVENT", Some(&ann), &[]),
            ("EVENT", None, &["QUALIFIED"]),
        ];
        for (i, (source, owner, path)) in plan.iter().enumerate() {
            let mut data = json!({ "name": format!("r{i}"), "source": source });
            if let Some(o) = owner {
                data["owner"] = json!({ "connect": { "id": o } });
            }
            let id = create(&admin, "Lead", data).await;
            for s in *path {
                admin
                    .ok(
                        "mutation($id: ID!, $s: LeadStatus!) { updateLead(where: {id: $id}, data: {status: $s}) { id } }",
                        json!({ "id": id, "s": s }),
                    )
                    .await;
            }
        }
        // A trashed lead does not count.
        let gone = create(&admin, "Lead", json!({ "name": "gone", "source": "WEB" })).await;
        admin.ok("mutation($id: ID!) { deleteLead(where: {id: $id}) { id } }", json!({ "id": gone })).await;
        create(&admin, "Ticket", json!({ "subject": "t1", "assignee": { "connect": { "id": bob } } })).await;
        create(&admin, "Ticket", json!({ "subject": "t2", "assignee": { "connect": { "id": bob } }, "status": "CLOSED" })).await;
        create(&other, "Lead", json!({ "name": "b", "source": "WEB" })).await;

        let r = admin
            .ok(
                "{ reportSummary { conversionRate leads { total byStatus { key count } bySource { key count } byOwner { name count } }
                   funnel { stage reached conversionFromPrevious conversionFromStart } timeInStage { stage completed current }
                   workload { name openLeads openTickets capacity utilization } } }",
                json!({}),
            )
            .await["reportSummary"]
            .clone();
        // By hand: furthest stage reached per lead: CONVERTED ×3 (0, 4, 6), CONTACTED ×1 (1),
        // QUALIFIED ×3 (2, 3, 9: 3 was rejected after qualifying), NEW ×3 (5, 7, 8).
        let funnel: Vec<(String, i64)> = r["funnel"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["stage"].as_str().unwrap().to_owned(), f["reached"].as_i64().unwrap()))
            .collect();
        assert_eq!(
            funnel,
            [("NEW".into(), 10), ("QUALIFIED".into(), 7), ("CONTACTED".into(), 4), ("CONVERTED".into(), 3)],
            "[{}] {r}",
            b.name
        );
        assert_eq!(r["funnel"][1]["conversionFromPrevious"], 0.7);
        assert_eq!(r["funnel"][3]["conversionFromPrevious"], 0.75);
        assert_eq!(r["conversionRate"], 0.3);
        assert_eq!(r["leads"]["total"], 10);
        let status: HashMap<String, i64> = r["leads"]["byStatus"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| (x["key"].as_str().unwrap().to_owned(), x["count"].as_i64().unwrap()))
            .collect();
        assert_eq!(
            status,
            HashMap::from([
                ("CONVERTED".into(), 3),
                ("CONTACTED".into(), 1),
                ("QUALIFIED".into(), 2),
                ("REJECTED".into(), 2),
                ("NEW".into(), 2)
            ])
        );
        assert_eq!(r["leads"]["bySource"][0], json!({ "key": "SOCIAL", "count": 3 }));
        assert_eq!(r["leads"]["bySource"][1], json!({ "key": "WEB", "count": 3 }));
        let owners: HashMap<String, i64> = r["leads"]["byOwner"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| (x["name"].as_str().unwrap_or("-").to_owned(), x["count"].as_i64().unwrap()))
            .collect();
        assert_eq!(owners, HashMap::from([("Ann".into(), 4), ("Bob".into(), 3), ("-".into(), 3)]));
        // Stays: NEW left by 8 leads (5 and 8 still in it), QUALIFIED entered by 6 (0, 1, 2, 3, 6, 9;
        // 4 skipped it) and left by 4 (2 and 9 stay),
        // CONTACTED left by 3 of 4 (1 stays), CONVERTED 3 current, REJECTED 2 current.
        let stays: HashMap<String, (i64, i64)> = r["timeInStage"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| (x["stage"].as_str().unwrap().to_owned(), (x["completed"].as_i64().unwrap(), x["current"].as_i64().unwrap())))
            .collect();
        assert_eq!(
            stays,
            HashMap::from([
                ("NEW".into(), (8, 2)),
                ("QUALIFIED".into(), (4, 2)),
                ("CONTACTED".into(), (3, 1)),
                ("CONVERTED".into(), (0, 3)),
                ("REJECTED".into(), (0, 2))
            ]),
            "[{}]",
            b.name
        );
        // Workload: open = not CONVERTED/REJECTED. Ann: 1, 8 → 2 of capacity 4; Bob: 2 → 1, one open ticket.
        let wl: HashMap<String, (i64, i64, Json)> = r["workload"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                (
                    x["name"].as_str().unwrap().to_owned(),
                    (x["openLeads"].as_i64().unwrap(), x["openTickets"].as_i64().unwrap(), x["utilization"].clone()),
                )
            })
            .collect();
        assert_eq!(wl, HashMap::from([("Ann".into(), (2, 0, json!(0.5))), ("Bob".into(), (1, 1, Json::Null))]));
        // Tenant B: its own single lead.
        let rb = other.ok("{ reportSummary { leads { total } funnel { reached } } }", json!({})).await;
        assert_eq!(rb["reportSummary"]["leads"]["total"], 1);
        assert_eq!(rb["reportSummary"]["funnel"][0]["reached"], 1);
    }
}

#[tokio::test]
async fn search_tolerates_typos_and_partial_words() {
    for b in hooked().await {
        let (a_org, b_org) = (org(), org());
        let admin = gql(&b, principal(&a_org, "admin-a", &["admin"]));
        let other = gql(&b, principal(&b_org, "admin-b", &["admin"]));
        create(&admin, "Lead", json!({ "name": "John Smith", "company": "Globex" })).await;
        create(&admin, "Lead", json!({ "name": "María García", "company": "Initech" })).await;
        create(&admin, "Lead", json!({ "name": "Peter Parker", "company": "Daily Bugle" })).await;
        create(&other, "Lead", json!({ "name": "John Smith", "company": "Globex" })).await;
        let find = |term: &'static str| {
            let admin = &admin;
            async move {
                let d = admin
                    .ok("query($t: String!) { leads(where: {_search: $t}, orderBy: [name_ASC]) { name } }", json!({ "t": term }))
                    .await;
                common::strs(&d["leads"], "name")
            }
        };
        assert_eq!(find("jonh").await, ["John Smith"], "[{}] swapped letters", b.name);
        assert_eq!(find("smiht globx").await, ["John Smith"], "[{}] two words, two typos", b.name);
        assert_eq!(find("garcia").await, ["María García"], "[{}] accents folded", b.name);
        assert_eq!(find("garzia").await, ["María García"], "[{}] a letter replaced", b.name);
        assert_eq!(find("glob").await, ["John Smith"], "[{}] partial word", b.name);
        assert_eq!(find("parkker").await, ["Peter Parker"], "[{}] a letter too many", b.name);
        assert!(find("xyzzy").await.is_empty());
        assert!(find("jo bugle").await.is_empty(), "[{}] every word must match", b.name);
        // Tenant B finds only its own.
        let d = other.ok("{ leadsConnection(where: {_search: \"jonh smith\"}) { aggregate { count } } }", json!({})).await;
        assert_eq!(d["leadsConnection"]["aggregate"]["count"], 1);
    }
}
