//! The HTTP service on port 0: GraphiQL, /metrics, CORS, request ids, the timeout, the panic
//! catcher and the body limit, with development-mode tokens.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use base64::Engine as _;
use crm_server::authentication::DevKey;
use crm_server::{App, AppState, Config};
use sha2::{Digest, Sha256};

struct Server {
    addr: SocketAddr,
    dir: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), crm_server::ServerError>>>,
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn token(&self, sub: &str, roles: &[&str]) -> String {
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        let key = DevKey::load_or_create(&self.dir).unwrap();
        format!("Bearer {}", key.token(sub, "org-a", &roles, &[], Duration::from_mins(10)).unwrap())
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn temp_dir(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("crm-http-{tag}-{}", uuid::Uuid::now_v7()))
}

fn config(dir: &std::path::Path, args: &[&str]) -> Config {
    let mut argv = vec!["crm-server", "--data-dir", dir.to_str().unwrap()];
    argv.extend_from_slice(args);
    let mut config = Config::try_parse_args(argv).unwrap();
    config.database_url = None;
    config.oidc_issuer = None;
    config
}

async fn start(tag: &str, args: &[&str], routes: Option<Router<AppState>>) -> Server {
    let dir = temp_dir(tag);
    let mut app = App::new(config(&dir, args));
    if let Some(r) = routes {
        app = app.routes(r);
    }
    let state = app.build().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(crm_server::run(state, listener, async move {
        let _ = rx.await;
    }));
    Server { addr, dir, stop: Some(tx), task: Some(task) }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().unwrap()
}

async fn gql(server: &Server, auth: Option<&str>, body: serde_json::Value) -> (u16, serde_json::Value) {
    let mut req = client().post(server.url("/graphql")).json(&body);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

async fn metrics(server: &Server) -> String {
    let resp = client().get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    resp.text().await.unwrap()
}

fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

#[tokio::test]
async fn graphiql_page_is_served() {
    let server = start("graphiql", &[], None).await;
    let resp = client().get(server.url("/graphql")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(resp.headers().contains_key("x-request-id"));
    let csp = resp.headers()["content-security-policy"].to_str().unwrap().to_owned();
    let page = resp.text().await.unwrap();
    assert!(page.contains("graphiql.min.js") && page.contains("integrity=\"sha384-"), "{page}");
    assert!(page.contains("Authorization") && page.contains("Bearer <token>") && page.contains("isHeadersEditorEnabled: true"));
    // The inline script is allowed by its hash, nothing else inline.
    let script = page.rsplit_once("<script>").unwrap().1.split_once("</script>").unwrap().0;
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(script.as_bytes()));
    assert!(csp.contains(&format!("'sha256-{hash}'")), "{csp}");
    assert!(!csp.contains("script-src 'unsafe-inline'") && csp.contains("connect-src 'self'"));
    // Everything the page loads comes from the server itself (an air-gapped install has it),
    // byte for byte what the page's integrity attributes pin.
    assert!(!csp.contains("https://") && !page.contains("https://"), "no other origin: {csp}");
    let mut assets = 0;
    for tag in page.split('<').filter(|t| t.contains("integrity=\"sha384-")) {
        let attr = |name: &str| tag.split(&format!("{name}=\"")).nth(1).and_then(|r| r.split('"').next()).unwrap().to_owned();
        let src = if tag.starts_with("script") { attr("src") } else { attr("href") };
        assert!(src.starts_with("/graphql/assets/"), "{src}");
        let resp = client().get(server.url(&src)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{src}");
        assert!(resp.headers()["cache-control"].to_str().unwrap().contains("immutable"), "{src}");
        let bytes = resp.bytes().await.unwrap();
        let digest = base64::engine::general_purpose::STANDARD.encode(sha2::Sha384::digest(&bytes));
        assert_eq!(attr("integrity"), format!("sha384-{digest}"), "{src}");
        assets += 1;
    }
    assert_eq!(assets, 4, "react, react-dom, graphiql and its stylesheet");
    assert_eq!(client().get(server.url("/graphql/assets/nope.js")).send().await.unwrap().status(), 404);
    // POST /graphql is unchanged: JSON, with a token.
    let (status, body) = gql(&server, Some(&server.token("ann", &["admin"])), serde_json::json!({"query": "{ leads { name } }"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["leads"], serde_json::json!([]));
    server.stop().await;
}

#[tokio::test]
async fn metrics_count_graphql_requests_by_operation_and_outcome() {
    let server = start("metrics", &[], None).await;
    let admin = server.token("ann", &["admin"]);
    let viewer = server.token("val", &["viewer"]);
    let (s, b) = gql(&server, Some(&admin), serde_json::json!({"query": "query ListLeads { leads { name } }"})).await;
    assert_eq!(s, 200, "{b}");
    assert!(b.get("errors").is_none(), "{b}");
    gql(&server, Some(&admin), serde_json::json!({"query": "{ leads { name } }"})).await;
    let two = "query First { leads { name } } query Second { leads { name } }";
    gql(&server, Some(&admin), serde_json::json!({"query": two, "operationName": "Second"})).await;
    let (s, _) = gql(&server, None, serde_json::json!({"query": "query Sneaky { leads { name } }"})).await;
    assert_eq!(s, 401);
    let (s, b) =
        gql(&server, Some(&viewer), serde_json::json!({"query": "mutation AddLead { createLead(data: {name: \"x\"}) { name } }"})).await;
    assert_eq!(s, 200);
    assert_eq!(b["errors"][0]["extensions"]["code"], "FORBIDDEN");
    let (s, _) = gql(&server, Some(&admin), serde_json::json!({"query": "query Broken { nope }"})).await;
    assert_eq!(s, 200);
    assert_eq!(client().get(server.url("/nope")).send().await.unwrap().status(), 404);

    let text = metrics(&server).await;
    for line in [
        "crm_graphql_requests_total{operation=\"ListLeads\",outcome=\"ok\"} 1",
        "crm_graphql_requests_total{operation=\"anonymous\",outcome=\"ok\"} 1",
        "crm_graphql_requests_total{operation=\"Second\",outcome=\"ok\"} 1",
        // The body of an unauthenticated request is not read: no name of its choosing.
        "crm_graphql_requests_total{operation=\"anonymous\",outcome=\"UNAUTHENTICATED\"} 1",
        "crm_graphql_requests_total{operation=\"AddLead\",outcome=\"FORBIDDEN\"} 1",
        "crm_graphql_request_duration_seconds_count{operation=\"ListLeads\",outcome=\"ok\"} 1",
        "crm_graphql_request_duration_seconds_bucket{operation=\"ListLeads\",outcome=\"ok\",le=\"+Inf\"} 1",
        "crm_http_requests_total{route=\"/graphql\",method=\"POST\",status=\"200\"} 5",
        "crm_http_requests_total{route=\"/graphql\",method=\"POST\",status=\"401\"} 1",
        "crm_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1",
        "# TYPE crm_graphql_request_duration_seconds histogram",
        // The scrape itself is in flight while rendered.
        "crm_http_requests_in_flight 1",
        "# TYPE crm_db_pool_connections gauge",
        "# TYPE crm_db_pool_idle_connections gauge",
    ] {
        assert!(has_line(&text, line), "missing `{line}` in\n{text}");
    }
    assert!(
        text.lines().any(|l| l.starts_with("crm_graphql_requests_total{operation=\"Broken\",outcome=\"") && !l.contains("outcome=\"ok\"")),
        "{text}"
    );
    assert!(!text.contains("Sneaky"));
    // The shared schema was built once and served every other request.
    assert!(has_line(&text, "crm_schema_builds_total 1"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("crm_schema_cache_hits_total ") && !l.ends_with(" 0")), "{text}");
    assert!(has_line(&text, "crm_schema_cache_entries 1"), "{text}");
    server.stop().await;
}

#[tokio::test]
async fn metrics_on_their_own_listener() {
    let dir = temp_dir("metrics-listen");
    let state = App::new(config(&dir, &["--metrics-listen", "127.0.0.1:0"])).build().await.unwrap();
    let main = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let side = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (main_addr, side_addr) = (main.local_addr().unwrap(), side.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(crm_server::serve(state, main, Some(side), async move {
        let _ = rx.await;
    }));
    assert_eq!(client().get(format!("http://{main_addr}/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(client().get(format!("http://{main_addr}/metrics")).send().await.unwrap().status(), 404);
    let text = client().get(format!("http://{side_addr}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(has_line(&text, "crm_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 1"), "{text}");
    tx.send(()).unwrap();
    // Both listeners stop on the one shutdown signal.
    tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap().unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn cors_headers_only_for_configured_origins() {
    let server = start("cors", &["--cors-origin", "https://app.example.com", "--cors-origin", "http://localhost:5173"], None).await;
    let resp = client().get(server.url("/healthz")).header("origin", "https://app.example.com").send().await.unwrap();
    assert_eq!(resp.headers()["access-control-allow-origin"], "https://app.example.com");
    assert!(resp.headers()["access-control-expose-headers"].to_str().unwrap().contains("x-request-id"));
    let preflight = client()
        .request(reqwest::Method::OPTIONS, server.url("/graphql"))
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization,content-type,x-org-id")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "http://localhost:5173");
    let allowed = preflight.headers()["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
    assert!(allowed.contains("authorization") && allowed.contains("x-org-id"), "{allowed}");
    // An error answer carries them too, so the browser can read it.
    let resp = client().post(server.url("/graphql")).header("origin", "https://app.example.com").body("{}").send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["access-control-allow-origin"], "https://app.example.com");
    let other = client().get(server.url("/healthz")).header("origin", "https://evil.example").send().await.unwrap();
    assert!(!other.headers().contains_key("access-control-allow-origin"));
    server.stop().await;

    let server = start("no-cors", &[], None).await;
    let resp = client().get(server.url("/healthz")).header("origin", "https://app.example.com").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().keys().all(|k| !k.as_str().starts_with("access-control-")), "{:?}", resp.headers());
    let preflight = client()
        .request(reqwest::Method::OPTIONS, server.url("/graphql"))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(preflight.headers().keys().all(|k| !k.as_str().starts_with("access-control-")));
    server.stop().await;
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let server = start("request-id", &[], None).await;
    let resp = client().get(server.url("/healthz")).header("x-request-id", "abc-123.XYZ").send().await.unwrap();
    assert_eq!(resp.headers()["x-request-id"], "abc-123.XYZ");
    let mut seen = std::collections::HashSet::new();
    for path in ["/healthz", "/healthz", "/nope", "/graphql"] {
        let resp = client().get(server.url(path)).send().await.unwrap();
        let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
        let uuid = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(uuid.get_version_num(), 7, "{id}");
        assert!(seen.insert(id), "ids are unique");
    }
    // Unusable ids (spaces, too long) are replaced.
    for bad in ["has spaces", &"x".repeat(200)] {
        let resp = client().get(server.url("/healthz")).header("x-request-id", bad).send().await.unwrap();
        let id = resp.headers()["x-request-id"].to_str().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    }
    let resp = client().post(server.url("/graphql")).header("x-request-id", "gql-1").body("{}").send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["x-request-id"], "gql-1");
    server.stop().await;
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(20)).await;
    "too late"
}

async fn boom() -> &'static str {
    panic!("secret detail 42")
}

#[tokio::test]
async fn slow_requests_time_out_with_a_graphql_error() {
    let routes = Router::new().route("/slow", get(slow));
    let server = start("timeout", &["--request-timeout-secs", "1"], Some(routes)).await;
    let started = std::time::Instant::now();
    let resp = client().get(server.url("/slow")).header("x-request-id", "slow-1").send().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["x-request-id"], "slow-1");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "LIMIT_EXCEEDED", "{body}");
    // Fast requests are unaffected.
    let (status, _) = gql(&server, Some(&server.token("ann", &["admin"])), serde_json::json!({"query": "{ leads { name } }"})).await;
    assert_eq!(status, 200);
    assert!(has_line(&metrics(&server).await, "crm_http_requests_total{route=\"/slow\",method=\"GET\",status=\"503\"} 1"));
    server.stop().await;

    // 0 turns the limit off.
    let dir = temp_dir("timeout-off");
    assert_eq!(config(&dir, &["--request-timeout-secs", "0"]).request_timeout(), None);
    assert_eq!(config(&dir, &[]).request_timeout(), Some(Duration::from_secs(30)));
}

#[tokio::test]
async fn panics_become_a_bare_internal_error() {
    let routes = Router::new().route("/boom", get(boom));
    let server = start("panic", &[], Some(routes)).await;
    let resp = client().get(server.url("/boom")).send().await.unwrap();
    assert_eq!(resp.status(), 500);
    assert!(resp.headers().contains_key("x-request-id"));
    let text = resp.text().await.unwrap();
    assert!(!text.contains("secret detail"), "{text}");
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body, serde_json::json!({"errors": [{"message": "internal error", "extensions": {"code": "INTERNAL"}}]}));
    // The server goes on.
    assert_eq!(client().get(server.url("/healthz")).send().await.unwrap().status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn body_limit_is_configurable() {
    let server = start("body-limit", &["--body-limit", "2048"], None).await;
    let admin = server.token("ann", &["admin"]);
    let big = serde_json::json!({"query": "{ leads { name } }", "variables": {"x": "x".repeat(4096)}});
    let (status, body) = gql(&server, Some(&admin), big).await;
    assert_eq!(status, 413);
    assert_eq!(body["errors"][0]["extensions"]["code"], "LIMIT_EXCEEDED");
    let (status, _) = gql(&server, Some(&admin), serde_json::json!({"query": "{ leads { name } }"})).await;
    assert_eq!(status, 200);
    assert!(has_line(&metrics(&server).await, "crm_graphql_requests_total{operation=\"anonymous\",outcome=\"LIMIT_EXCEEDED\"} 1"));
    server.stop().await;
}

/// Holds the server's only database connection (a transaction that waits) until released.
struct HoldConnection(std::sync::Arc<tokio::sync::Notify>, std::sync::Arc<tokio::sync::Notify>);

impl crm_orm::TxWork for HoldConnection {
    type Output = ();
    fn run<'a>(&'a self, _tx: &'a mut crm_orm::TxCtx<'_>) -> crm_orm::TxFuture<'a, ()> {
        Box::pin(async move {
            self.0.notify_one();
            self.1.notified().await;
            Ok(())
        })
    }
}

#[tokio::test]
async fn an_unavailable_database_answers_503_with_retry_after_and_readyz_within_a_second() {
    use std::sync::Arc;
    let (started, release) = (Arc::new(tokio::sync::Notify::new()), Arc::new(tokio::sync::Notify::new()));
    let (s, r) = (Arc::clone(&started), Arc::clone(&release));
    let hold = Router::new().route(
        "/test/hold",
        axum::routing::post(move |axum::extract::State(state): axum::extract::State<AppState>| {
            let (s, r) = (Arc::clone(&s), Arc::clone(&r));
            async move {
                let store = Arc::clone(state.store());
                let access = store.cross_tenant_platform_work().system_access(crm_model::OrgId::new("org-a").unwrap(), "test");
                tokio::spawn(async move { store.transaction(&access, &HoldConnection(s, r)).await });
                "held"
            }
        }),
    );
    let server = start("unavailable", &["--db-max-connections", "1", "--db-acquire-timeout-ms", "300"], Some(hold)).await;
    let admin = server.token("ada", &["admin"]);
    let (status, body) = gql(&server, Some(&admin), serde_json::json!({ "query": "{ leads { id } }" })).await;
    assert_eq!(status, 200, "{body}");

    client().post(server.url("/test/hold")).send().await.unwrap();
    started.notified().await;
    let t = std::time::Instant::now();
    let resp = client()
        .post(server.url("/graphql"))
        .header("authorization", &admin)
        .json(&serde_json::json!({ "query": "{ leads { id } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAVAILABLE", "{body}");
    assert!(t.elapsed() < Duration::from_secs(3), "answered after {:?}", t.elapsed());

    let t = std::time::Instant::now();
    let ready = client().get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert!(t.elapsed() < Duration::from_millis(1500), "readyz answered after {:?}", t.elapsed());

    release.notify_one();
    // Recovers once the connection is free.
    let mut ok = false;
    for _ in 0..50 {
        if client().get(server.url("/readyz")).send().await.unwrap().status() == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "readyz did not recover");
    let (status, body) = gql(&server, Some(&admin), serde_json::json!({ "query": "{ leads { id } }" })).await;
    assert_eq!(status, 200, "{body}");
    server.stop().await;
}

/// Sleeps inside a transaction: slow database work that holds a connection.
struct SlowWork(Duration);

impl crm_orm::TxWork for SlowWork {
    type Output = ();
    fn run<'a>(&'a self, _tx: &'a mut crm_orm::TxCtx<'_>) -> crm_orm::TxFuture<'a, ()> {
        Box::pin(async move {
            tokio::time::sleep(self.0).await;
            Ok(())
        })
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

#[tokio::test]
async fn one_tenants_flood_of_slow_requests_leaves_another_tenants_latency_alone() {
    // A route of slow database work, admitted per tenant like GraphQL and REST.
    let slow = Router::new().route(
        "/test/slow",
        axum::routing::post(|axum::extract::State(state): axum::extract::State<AppState>, admitted: crm_server::Admitted| async move {
            // The whole admission moves into the work (not only the field used), holding the place.
            let admitted = admitted;
            let store = std::sync::Arc::clone(state.store());
            let access = store.cross_tenant_platform_work().system_access(admitted.principal.org_id.clone(), "test");
            store.transaction(&access, &SlowWork(Duration::from_millis(800))).await.unwrap();
            "done"
        }),
    );
    let server = start("fairness", &["--tenant-concurrency", "2", "--db-max-connections", "6"], Some(slow)).await;
    let key = DevKey::load_or_create(&server.dir).unwrap();
    let token =
        |org: &str, sub: &str| format!("Bearer {}", key.token(sub, org, &["admin".to_owned()], &[], Duration::from_mins(10)).unwrap());
    let (flooder, other) = (token("org-flood", "fiona"), token("org-calm", "carl"));
    let cheap = serde_json::json!({ "query": "{ leads(first: 1) { id } }" });
    let timed = |auth: String| {
        let body = cheap.clone();
        let url = server.url("/graphql");
        async move {
            let t = std::time::Instant::now();
            let resp = client().post(url).header("authorization", auth).json(&body).send().await.unwrap();
            (resp.status().as_u16(), t.elapsed())
        }
    };
    let mut unloaded = Vec::new();
    for _ in 0..15 {
        let (status, took) = timed(other.clone()).await;
        assert_eq!(status, 200);
        unloaded.push(took);
    }

    // 60 slow requests of one tenant at once: 2 work, the rest are refused at once.
    let flood: Vec<_> = (0..60)
        .map(|_| {
            let (url, auth) = (server.url("/test/slow"), flooder.clone());
            tokio::spawn(async move {
                let resp = client().post(url).header("authorization", auth).send().await.unwrap();
                (resp.status().as_u16(), resp.headers().get("retry-after").is_some())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut loaded = Vec::new();
    for _ in 0..15 {
        let (status, took) = timed(other.clone()).await;
        assert_eq!(status, 200, "the other tenant's request failed during the flood");
        loaded.push(took);
    }
    let mut refused = 0;
    for f in flood {
        let (status, retry) = f.await.unwrap();
        if status == 429 {
            assert!(retry, "a refusal without Retry-After");
            refused += 1;
        } else {
            assert_eq!(status, 200);
        }
    }
    assert!(refused >= 50, "only {refused} of 60 flooding requests were refused");
    let (calm, busy) = (median(unloaded), median(loaded));
    // Within 2× of unloaded, plus 5 ms for this shared machine's scheduling noise.
    assert!(busy <= calm * 2 + Duration::from_millis(5), "median {busy:?} under the flood against {calm:?} unloaded");
    assert!(metrics(&server).await.lines().any(|l| l.starts_with("crm_tenant_throttled_total ") && !l.ends_with(" 0")));
    server.stop().await;
}
