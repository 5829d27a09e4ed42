//! The event workers survive a real crash: a `crm-server` process handling the lead
//! qualification flow is killed (SIGKILL) in the middle of a batch, restarted, and every lead is
//! qualified exactly once, with no event lost. Then the REST endpoints, scoped like GraphQL.
//! SQLite always; PostgreSQL when `CRM_TEST_DATABASE_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![allow(clippy::cast_possible_wrap, clippy::cast_possible_truncation, clippy::single_match_else)] // test code: small counts and literal expectations, one future awaited at a time

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crm_model::OrgId;
use crm_model::standard::standard_catalog;
use crm_orm::{Access, Data, Filter, Op, Read, Selection, Store, StoreOptions, TxCtx, TxFuture, TxWork, Write};
use serde_json::json;
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_crm-server");
const LEADS: usize = 600;

struct Setup;
impl TxWork for Setup {
    type Output = ();
    fn run<'a>(&'a self, tx: &'a mut TxCtx<'_>) -> TxFuture<'a, ()> {
        Box::pin(async move {
            let rule = tx.model("AutomationRule")?;
            let data = Data::parse(
                tx.catalog(),
                &rule,
                &json!({ "name": "Qualify", "event": "lead.created", "condition": { "status": "NEW", "email_not": null }, "set": { "status": "QUALIFIED" } }),
                "data",
            )?;
            tx.write(&Write::Create { model: rule.name.clone(), data }, &Selection::default()).await?;
            let lead = tx.model("Lead")?;
            for i in 0..LEADS {
                let data =
                    Data::parse(tx.catalog(), &lead, &json!({ "name": format!("lead {i}"), "email": format!("l{i}@x.example") }), "data")?;
                tx.write(&Write::Create { model: lead.name.clone(), data }, &Selection::default()).await?;
            }
            Ok(())
        })
    }
}

async fn count(store: &Store, access: &Access, status: &str) -> i64 {
    let lead = store.catalog().model("Lead").unwrap().clone();
    let mut read = Read::new(&lead);
    read.filter = Filter::parse(store.catalog(), &lead, &json!({ "status": status })).unwrap();
    read.count = true;
    read.page.first = Some(1);
    store.read(&access.scope(store.catalog(), &lead.name, Op::Read, read).unwrap()).await.unwrap().count.unwrap()
}

fn spawn(url: &str, dir: &std::path::Path, org: &OrgId) -> Child {
    Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(["--database-url", url, "--listen", "127.0.0.1:0", "--worker-poll-ms", "10", "--worker-org", org.as_str(), "serve"])
        .env_remove("CRM_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_loses_no_event_and_qualifies_each_lead_once() {
    let dir = std::env::temp_dir().join(format!("crm-workers-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, url) in crm_test_kit::database_urls(&dir) {
        let cat = Arc::new(standard_catalog().unwrap());
        let store = crm_engines::Engines::install(&Store::connect(&url, cat, StoreOptions::default()).await.unwrap());
        store.migrate().await.unwrap();
        let org = crm_test_kit::org();
        let other = crm_test_kit::org();
        store.register_tenant(&org, None).await.unwrap();
        let access = store.cross_tenant_platform_work().system_access(org.clone(), "test");
        store.transaction(&access, &Setup).await.unwrap();
        // Another tenant with the same setup, outside the worker's tenants: untouched.
        let other_access = store.cross_tenant_platform_work().system_access(other.clone(), "test");
        store.transaction(&other_access, &Setup).await.unwrap();

        let mut child = spawn(&url, &dir, &org);
        let start = Instant::now();
        while count(&store, &access, "QUALIFIED").await == 0 {
            assert!(start.elapsed() < Duration::from_mins(1), "[{name}] the worker never started");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        child.kill().unwrap(); // SIGKILL: no shutdown path runs
        child.wait().unwrap();
        let at_kill = count(&store, &access, "QUALIFIED").await;
        assert!(at_kill < LEADS as i64, "[{name}] killed mid-batch ({at_kill} of {LEADS} done)");
        eprintln!("[{name}] killed after {at_kill} of {LEADS} qualifications");

        let mut child = spawn(&url, &dir, &org);
        let start = Instant::now();
        while count(&store, &access, "QUALIFIED").await < LEADS as i64 {
            assert!(start.elapsed() < Duration::from_mins(2), "[{name}] the restarted worker did not finish");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The worker also consumes the updates it wrote itself: wait until it has caught up.
        let orgs = [org.as_str().to_owned()];
        while !store.cross_tenant_platform_work().pending_events("automation", 1, &orgs, "").await.unwrap().is_empty() {
            assert!(start.elapsed() < Duration::from_mins(2), "[{name}] the worker did not catch up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        child.kill().unwrap();
        child.wait().unwrap();

        // Exactly once: every lead entered QUALIFIED once, by the worker, and the automation
        // wrote exactly one update per lead.
        let lead_name = store.catalog().model("Lead").unwrap().name.clone();
        let stage_query = crm_orm::StageQuery {
            model: lead_name.clone(),
            field: crm_model::FieldName::new("status").unwrap(),
            order: vec!["NEW".to_owned(), "QUALIFIED".to_owned()],
        };
        let stats = store.stage_stats(&access.scope(store.catalog(), &lead_name, crm_orm::Op::Read, stage_query).unwrap()).await.unwrap();
        let q = stats.stays.iter().find(|s| s.stage == "QUALIFIED").unwrap();
        assert_eq!(q.completed + q.current, LEADS as i64, "[{name}] one QUALIFIED transition per lead");
        let lead = store.catalog().model("Lead").unwrap().clone();
        let mut read = Read::new(&lead);
        read.page.first = Some(LEADS as u32);
        let rows = store.read(&access.scope(store.catalog(), &lead.name, Op::Read, read).unwrap()).await;
        let rows = match rows {
            Ok(r) => r.rows,
            // The default page limit is 100: read the ids by pages instead.
            Err(_) => {
                let mut all = Vec::new();
                let mut after = None;
                loop {
                    let mut read = Read::new(&lead);
                    read.page.first = Some(100);
                    read.page.after = after.clone();
                    let page = store.read(&access.scope(store.catalog(), &lead.name, Op::Read, read).unwrap()).await.unwrap();
                    all.extend(page.rows);
                    if !page.has_next {
                        break;
                    }
                    after = page.cursors.last().cloned();
                }
                all
            }
        };
        assert_eq!(rows.len(), LEADS);
        for r in &rows {
            let id = Uuid::parse_str(r["id"].as_str().unwrap()).unwrap();
            let q = crm_orm::RecordEvents { model: lead_name.clone(), record: id, first: 10 };
            let events = store.record_events(&access.scope(store.catalog(), &lead_name, crm_orm::Op::Read, q).unwrap()).await.unwrap();
            let by_worker = events.iter().filter(|e| e.actor.as_deref() == Some("system:automation")).count();
            assert_eq!(by_worker, 1, "[{name}] one automation write for {id}: {events:?}");
            assert_eq!(events[0].kind, "lead.created");
        }
        // The other tenant is not this worker's: untouched.
        assert_eq!(count(&store, &other_access, "QUALIFIED").await, 0, "[{name}] the other tenant is not this worker's");
    }
}

fn token(dir: &std::path::Path, org: &str, sub: &str, roles: &str) -> String {
    let out =
        Command::new(BIN).arg("--data-dir").arg(dir).args(["dev-token", "--org", org, "--sub", sub, "--roles", roles]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_endpoints_are_authenticated_and_scoped_like_graphql() {
    let dir = std::env::temp_dir().join(format!("crm-rest-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, url) in crm_test_kit::database_urls(&dir) {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut child = Command::new(BIN)
            .arg("--data-dir")
            .arg(&dir)
            .args(["--database-url", &url, "--listen", &format!("127.0.0.1:{port}"), "--workers", "false", "serve"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let start = Instant::now();
        while http.get(format!("{base}/readyz")).send().await.map_or(true, |r| r.status() != 200) {
            assert!(start.elapsed() < Duration::from_mins(1), "[{name}] server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (a, b) = (format!("org-{}", Uuid::now_v7().simple()), format!("org-{}", Uuid::now_v7().simple()));
        let admin_a = token(&dir, &a, "admin-a", "admin");
        let viewer_a = token(&dir, &a, "val", "viewer");
        let admin_b = token(&dir, &b, "admin-b", "admin");
        let gql = |t: &str, q: &str| {
            let req = http.post(format!("{base}/graphql")).bearer_auth(t).json(&json!({ "query": q }));
            async move { req.send().await.unwrap().json::<serde_json::Value>().await.unwrap() }
        };
        gql(
            &admin_a,
            "mutation { createTagRule(data: {name: \"Corp\", condition: {company_contains: \"Corp\"}, tags: [\"corp\"]}) { id } }",
        )
        .await;
        gql(&admin_a, "mutation { createIngestionRule(data: {name: \"DM\", condition: {kind: DM}, action: LEAD}) { id } }").await;
        // The rule was created after this lead: only on-demand tagging reaches it.
        let a_lead = gql(&admin_a, "mutation { createLead(data: {name: \"x\", company: \"Tiny\"}) { id } }").await;
        let id = a_lead["data"]["createLead"]["id"].as_str().unwrap().to_owned();
        gql(&admin_a, &format!("mutation {{ updateLead(where: {{id: \"{id}\"}}, data: {{company: \"Tiny\"}}) {{ id }} }}")).await;
        gql(&admin_b, "mutation { createLead(data: {name: \"y\", company: \"Other Corp\"}) { id } }").await;

        // No token, a bad token: 401 with the same error shape as GraphQL.
        for auth in [None, Some("not-a-token")] {
            let mut req = http.post(format!("{base}/api/leads/tag")).json(&json!({}));
            if let Some(t) = auth {
                req = req.bearer_auth(t);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 401, "[{name}]");
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
        }
        // Tag: A's run covers A's lead only; B's lead (which would match A's rule) is untouched.
        let r = http.post(format!("{base}/api/leads/tag")).bearer_auth(&admin_a).json(&json!({ "where": {} })).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<serde_json::Value>().await.unwrap(), json!({ "matched": 1, "changed": 0, "tagsAdded": 0 }));
        let r = http.post(format!("{base}/api/leads/tag")).bearer_auth(&viewer_a).json(&json!({})).send().await.unwrap();
        assert_eq!(r.status(), 403, "[{name}] a viewer may not re-tag");
        let r =
            http.post(format!("{base}/api/leads/tag")).bearer_auth(&admin_a).json(&json!({ "where": { "nope": 1 } })).send().await.unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(r.json::<serde_json::Value>().await.unwrap()["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
        let b_lead = gql(&admin_b, "{ leads { tags } }").await;
        assert_eq!(b_lead["data"]["leads"][0]["tags"], serde_json::Value::Null, "[{name}]");
        // Route: no rules, every decision says so.
        let r = http.post(format!("{base}/api/leads/route")).bearer_auth(&admin_a).json(&json!({})).send().await.unwrap();
        assert_eq!(r.json::<serde_json::Value>().await.unwrap()["decisions"][0]["reason"], "no enabled routing rule");
        // Social events, twice: the second time nothing is new.
        let batch = json!({ "events": [{ "platform": "x", "kind": "DM", "externalId": "1", "authorHandle": "@a", "text": "hi" }] });
        let r1: serde_json::Value =
            http.post(format!("{base}/api/social/events")).bearer_auth(&admin_a).json(&batch).send().await.unwrap().json().await.unwrap();
        let r2: serde_json::Value =
            http.post(format!("{base}/api/social/events")).bearer_auth(&admin_a).json(&batch).send().await.unwrap().json().await.unwrap();
        assert_eq!(
            (r1["created"].clone(), r1["leadsCreated"].clone(), r2["created"].clone(), r2["duplicates"].clone()),
            (json!(1), json!(1), json!(0), json!(1)),
            "[{name}]"
        );
        // The summary equals the GraphQL report, per tenant.
        let rest: serde_json::Value =
            http.get(format!("{base}/api/reports/summary")).bearer_auth(&admin_a).send().await.unwrap().json().await.unwrap();
        let g = gql(&admin_a, "{ reportSummary { conversionRate leads { total } funnel { stage reached } } }").await;
        assert_eq!(rest["leads"]["total"], 2);
        assert_eq!(rest["leads"]["total"], g["data"]["reportSummary"]["leads"]["total"]);
        assert_eq!(rest["funnel"][0]["reached"], g["data"]["reportSummary"]["funnel"][0]["reached"]);
        let rest_b: serde_json::Value =
            http.get(format!("{base}/api/reports/summary")).bearer_auth(&admin_b).send().await.unwrap().json().await.unwrap();
        assert_eq!(rest_b["leads"]["total"], 1, "[{name}]");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
