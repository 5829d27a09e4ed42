//! Hardening of the HTTP surface: hostile GraphQL documents are refused before they cost
//! anything (and the server keeps answering meanwhile), only JSON bodies are acted on, and the
//! data directory is private. Development-mode tokens, SQLite, port 0.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crm_server::authentication::DevKey;
use crm_server::{App, Config};
use serde_json::{Value as Json, json};

struct Server {
    addr: SocketAddr,
    dir: PathBuf,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), crm_server::ServerError>>,
}

async fn start(tag: &str) -> Server {
    start_with(tag, "").await
}

/// A server whose configuration file holds `toml` (roles, limits…).
async fn start_with(tag: &str, toml: &str) -> Server {
    let dir = std::env::temp_dir().join(format!("crm-hardening-{tag}-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("crm.toml");
    std::fs::write(&file, toml).unwrap();
    let mut config =
        Config::try_parse_args(["crm-server", "--data-dir", dir.to_str().unwrap(), "--config", file.to_str().unwrap()]).unwrap();
    config.database_url = None;
    config.oidc_issuer = None;
    let state = App::new(config).build().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(crm_server::run(state, listener, async move {
        let _ = rx.await;
    }));
    Server { addr, dir, stop, task }
}

impl Server {
    fn token(&self, org: &str, sub: &str) -> String {
        self.token_as(org, sub, "admin")
    }

    fn token_as(&self, org: &str, sub: &str, role: &str) -> String {
        let key = DevKey::load_or_create(&self.dir).unwrap();
        format!("Bearer {}", key.token(sub, org, &[role.to_owned()], &[], Duration::from_mins(10)).unwrap())
    }

    async fn rest(&self, auth: &str, method: &str, path: &str, body: Option<Json>) -> (u16, Json) {
        let url = format!("http://{}{path}", self.addr);
        let req = if method == "GET" { client().get(url) } else { client().post(url) };
        let req = req.header("authorization", auth);
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Json::Null))
    }

    async fn post(&self, auth: &str, content_type: &str, body: String) -> (u16, Json) {
        let resp = client()
            .post(format!("http://{}/graphql", self.addr))
            .header("authorization", auth)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Json::Null))
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_mins(1)).build().unwrap()
}

/// `query { leads(first:1) { ...F1 } } fragment F1 on Lead { id ...F2 ...F2 } … fragment Fn on Lead { id }`:
/// 2^n selections once expanded, about 40 bytes a level.
fn fragment_chain(levels: usize) -> String {
    let mut q = String::from("query { leads(first: 1) { ...F1 } }\n");
    for i in 1..levels {
        q.push_str(&format!("fragment F{i} on Lead {{ id ...F{n} ...F{n} }}\n", n = i + 1));
    }
    q.push_str(&format!("fragment F{levels} on Lead {{ id }}\n"));
    q
}

/// Four fragment chains at once (on a runtime with as many workers as this machine has cores):
/// each is refused with `LIMIT_EXCEEDED`, none takes long, and `/healthz` keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragment_bombs_are_refused_at_once_and_the_server_keeps_answering() {
    let s = start("bombs").await;
    let auth = s.token("org-a", "ada");
    let other = s.token("org-b", "bob");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let health = {
        let (addr, stop) = (s.addr, stop.clone());
        tokio::spawn(async move {
            let mut worst = Duration::ZERO;
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t = Instant::now();
                let r = client().get(format!("http://{addr}/healthz")).send().await.unwrap();
                assert_eq!(r.status(), 200);
                worst = worst.max(t.elapsed());
                n += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (n, worst)
        })
    };
    let mut tasks = Vec::new();
    for (i, levels) in [25usize, 30, 40, 40].into_iter().enumerate() {
        let body = json!({ "query": fragment_chain(levels) }).to_string();
        assert!(levels > 25 || body.len() < 1200, "the 25-level chain is about 1 KB: {}", body.len());
        let (addr, auth) = (s.addr, if i % 2 == 0 { auth.clone() } else { other.clone() });
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let resp = client()
                .post(format!("http://{addr}/graphql"))
                .header("authorization", auth)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let v: Json = resp.json().await.unwrap();
            (levels, t.elapsed(), v)
        }));
    }
    for t in tasks {
        let (levels, took, v) = t.await.unwrap();
        assert_eq!(v["errors"][0]["extensions"]["code"], "LIMIT_EXCEEDED", "{levels}: {v}");
        assert!(v["errors"][0]["message"].as_str().unwrap().contains("fragments are expanded"), "{v}");
        assert!(v.get("data").is_none() || v["data"].is_null(), "{v}");
        // Generous for a loaded 2-core machine; unguarded, 25 levels took 6.7 s and 40 never ended.
        assert!(took < Duration::from_secs(2), "{levels} levels took {took:?}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (n, worst) = health.await.unwrap();
    assert!(n > 0 && worst < Duration::from_secs(1), "/healthz answered {n} times, worst {worst:?}");
    // Ordinary queries still work for both tenants.
    for a in [&auth, &other] {
        let (st, v) = s.post(a, "application/json", json!({ "query": "{ leads(first: 1) { id } }" }).to_string()).await;
        assert_eq!((st, &v["data"]["leads"]), (200, &json!([])), "{v}");
    }
    s.stop().await;
}

/// A body not declared as JSON is refused with 415 before it is read, so a cross-site form or
/// `text/plain` request can never run a mutation; JSON bodies (with parameters) are accepted.
#[tokio::test]
async fn only_json_bodies_are_acted_on() {
    let s = start("content-type").await;
    let (a, b) = (s.token("org-a", "ada"), s.token("org-b", "bob"));
    let create = json!({ "query": "mutation { createLead(data: {name: \"csrf\"}) { id } }" }).to_string();
    for auth in [&a, &b] {
        for ct in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx"] {
            let (st, v) = s.post(auth, ct, create.clone()).await;
            assert_eq!(st, 415, "{ct}: {v}");
            assert_eq!(v["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{ct}: {v}");
        }
        // Nothing was created; JSON with a charset, and the GraphQL response media type, work.
        let count = json!({ "query": "{ leadsConnection { aggregate { count } } }" }).to_string();
        let (st, v) = s.post(auth, "application/json; charset=utf-8", count.clone()).await;
        assert_eq!((st, &v["data"]["leadsConnection"]["aggregate"]["count"]), (200, &json!(0)), "{v}");
        let (st, v) = s.post(auth, "application/graphql-response+json", count).await;
        assert_eq!(st, 200, "{v}");
    }
    // REST endpoints with a body follow the same rule.
    let resp = client()
        .post(format!("http://{}/api/leads/tag", s.addr))
        .header("authorization", &a)
        .header("content-type", "text/plain")
        .body(r#"{"where": {}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    s.stop().await;
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_and_its_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let s = start("perms").await;
    let _ = s.token("org-a", "ada");
    let (st, _) = s
        .post(
            &s.token("org-a", "ada"),
            "application/json",
            json!({ "query": "mutation { createLead(data: {name: \"x\"}) { id } }" }).to_string(),
        )
        .await;
    assert_eq!(st, 200);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&s.dir), 0o700, "data directory");
    assert_eq!(mode(&s.dir.join("files")), 0o700, "attachments' directory");
    for f in ["crm.db", "dev-signing-key", "files.key"] {
        assert_eq!(mode(&s.dir.join(f)), 0o600, "{f}");
    }
    for f in ["crm.db-wal", "crm.db-shm"] {
        let p = s.dir.join(f);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{f}");
        }
    }
    s.stop().await;
}

const ENGINE_ROLES: &str = r#"
[roles.ops]
default = { read = "all" }
models.Lead = { read = "all", update = "all" }
fields.Lead = { denyRead = ["score", "email"] }

[roles.analyst]
default = { read = "all" }
fields.Lead = { denyRead = ["source", "status"] }

[roles.social]
default = { read = "all" }
models.SocialEvent = { read = "all", create = "all" }
fields.Contact = { denyRead = ["socialHandles"] }
"#;

/// The REST doors obey field denials like GraphQL: a denied field cannot be filtered or counted
/// through `/api/leads/tag` or `/api/leads/route`, is left out of `/api/reports/summary`, and a
/// caller who may not read handles cannot ingest; principals of two tenants.
#[tokio::test]
async fn rest_engine_endpoints_obey_field_denials() {
    let s = start_with("rest-denials", ENGINE_ROLES).await;
    for org in ["org-a", "org-b"] {
        let admin = s.token(org, "admin");
        for (name, score) in [("Ada", 90), ("Bo", 10)] {
            let q = format!(
                r#"mutation {{ createLead(data: {{name: "{name}", email: "{name}@x.io", score: {score}, source: WEB}}) {{ id }} }}"#
            );
            let (st, v) = s.post(&admin, "application/json", json!({ "query": q }).to_string()).await;
            assert!(st == 200 && v.get("errors").is_none(), "{v}");
        }
        let ops = s.token_as(org, "ops", "ops");
        for (path, body) in [
            ("/api/leads/tag", json!({ "where": { "score_gt": 50 } })),
            ("/api/leads/tag", json!({ "where": { "_search": "ada" } })),
            ("/api/leads/route", json!({ "where": { "email_contains": "ada" }, "reassign": true })),
            ("/api/leads/route", json!({ "where": { "score_lt": 50 } })),
        ] {
            let (st, v) = s.rest(&ops, "POST", path, Some(body.clone())).await;
            assert_eq!((st, v["errors"][0]["extensions"]["code"].as_str()), (403, Some("FORBIDDEN")), "{org} {path} {body}: {v}");
            assert!(v.get("matched").is_none() && v.get("decisions").is_none(), "{v}");
        }
        let (st, v) = s.rest(&ops, "POST", "/api/leads/tag", Some(json!({ "where": { "name": "Ada" } }))).await;
        assert_eq!((st, &v["matched"]), (200, &json!(1)), "{org}: {v}");

        let analyst = s.token_as(org, "analyst", "analyst");
        let (st, v) = s.rest(&analyst, "GET", "/api/reports/summary", None).await;
        assert_eq!(st, 200, "{v}");
        for (section, value) in [("byStatus", &v["leads"]["byStatus"]), ("bySource", &v["leads"]["bySource"]), ("funnel", &v["funnel"])] {
            assert!(value.is_null(), "{org}: {section} needs a denied field: {v}");
        }
        assert_eq!(v["leads"]["byOwner"][0]["count"], 2, "{org}: {v}");
        let (_, full) = s.rest(&admin, "GET", "/api/reports/summary", None).await;
        assert_eq!(full["leads"]["bySource"], json!([{ "key": "WEB", "count": 2 }]), "{org}: {full}");

        let social = s.token_as(org, "social", "social");
        let batch = json!({ "events": [{ "platform": "x", "kind": "DM", "externalId": "1", "authorHandle": "@known" }] });
        let (st, v) = s.rest(&social, "POST", "/api/social/events", Some(batch)).await;
        assert_eq!((st, v["errors"][0]["extensions"]["code"].as_str()), (403, Some("FORBIDDEN")), "{org}: {v}");
    }
    s.stop().await;
}

/// Request paths never hold the cross-tenant handle or the platform's own access: nothing in the
/// GraphQL crate or the server's request modules names them (the workers, which `serve` starts
/// through `Engines::start_workers`, and the `seed-demo`, `export` and `import` commands are
/// platform work).
#[test]
fn request_paths_never_take_the_cross_tenant_handle() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in ["crm-graphql/src", "crm-server/src"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let platform_work = ["seed.rs", "transfer.rs", "main.rs"].iter().any(|f| path.ends_with(f));
            if path.extension().is_some_and(|e| e == "rs") && !platform_work {
                files.push(path);
            }
        }
    }
    assert!(files.len() >= 10, "{files:?}");
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        for name in ["cross_tenant_platform_work", "CrossTenant", "system_access"] {
            assert!(!text.contains(name), "{} names `{name}`", path.display());
        }
    }
}
