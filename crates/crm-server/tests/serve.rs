//! The server on a fresh data directory: creates and migrates SQLite, answers /healthz and /readyz.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![allow(clippy::format_collect)] // test code: small counts and literal expectations, one future awaited at a time

use std::sync::Arc;

use clap::Parser;
use crm_server::authentication::DevKey;
use crm_server::{AppState, Config, connect, run};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    config: Config,
}

async fn post(addr: std::net::SocketAddr, path: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

fn body_json(resp: &str) -> serde_json::Value {
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {resp}"))
}

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn fresh_data_dir_is_created_migrated_and_served() {
    let dir = std::env::temp_dir().join(format!("crm-serve-{}", uuid_like()));
    let args = Args::parse_from(["crm-server", "--data-dir", dir.to_str().unwrap()]);
    assert!(args.config.database_url.is_none() || std::env::var("CRM_DATABASE_URL").is_ok());
    let mut config = args.config;
    config.database_url = None;
    let store = connect(&config).await.unwrap();
    store.migrate().await.unwrap();
    assert!(dir.join("crm.db").exists(), "the SQLite file is created in the data directory");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let state = AppState::new(Arc::new(store), &config).await.unwrap();
    let server = tokio::spawn(run(state, listener, async move {
        let _ = rx.await;
    }));
    let health = get(addr, "/healthz").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.contains("\"ok\""));
    let ready = get(addr, "/readyz").await;
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    assert!(ready.contains("ready"));
    assert!(get(addr, "/nope").await.starts_with("HTTP/1.1 404"));
    tx.send(()).unwrap();
    server.await.unwrap().unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

/// Development mode over HTTP: `/graphql` needs a token the server signed itself; the token's
/// tenant (or `X-Org-Id`, proven by its role map) confines every request.
#[tokio::test]
async fn graphql_over_http_with_dev_tokens() {
    let dir = std::env::temp_dir().join(format!("crm-serve-gql-{}", uuid_like()));
    let mut config = Args::parse_from(["crm-server", "--data-dir", dir.to_str().unwrap()]).config;
    config.database_url = None;
    config.oidc_issuer = None;
    let store = Arc::new(connect(&config).await.unwrap());
    store.migrate().await.unwrap();

    // Development mode refuses a non-loopback address unless told otherwise.
    let mut exposed = config.clone();
    exposed.listen = "0.0.0.0:8080".parse().unwrap();
    assert!(AppState::new(store.clone(), &exposed).await.is_err());

    let key = DevKey::load_or_create(&dir).unwrap();
    let ttl = std::time::Duration::from_mins(10);
    let admin_a = format!("Bearer {}", key.token("ann", "org-a", &["admin".into()], &["org-c".into()], ttl).unwrap());
    let viewer_a = format!("Bearer {}", key.token("val", "org-a", &["viewer".into()], &[], ttl).unwrap());
    let admin_b = format!("Bearer {}", key.token("bob", "org-b", &["admin".into()], &[], ttl).unwrap());
    let foreign = DevKey::load_or_create(&dir.join("elsewhere")).unwrap();
    let forged = format!("Bearer {}", foreign.token("eve", "org-a", &["admin".into()], &[], ttl).unwrap());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(run(AppState::new(store.clone(), &config).await.unwrap(), listener, async move {
        let _ = rx.await;
    }));
    let create = r#"{"query": "mutation { createLead(data: {name: \"Ada\"}) { name status } }"}"#;
    let list = r#"{"query": "{ leads { name } }"}"#;

    for (auth, why, reason) in [
        (None, "no token", "MISSING_TOKEN"),
        (Some(forged.as_str()), "signed by another key", "INVALID_TOKEN"),
        (Some("Bearer abc.def.ghi"), "garbage", "INVALID_TOKEN"),
    ] {
        let headers: Vec<(&str, &str)> = auth.map(|a| vec![("authorization", a)]).unwrap_or_default();
        let resp = post(addr, "/graphql", &headers, create).await;
        assert!(resp.starts_with("HTTP/1.1 401"), "{why}: {resp}");
        assert!(resp.to_ascii_lowercase().contains("www-authenticate: bearer"), "{why}: {resp}");
        assert_eq!(body_json(&resp)["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{why}");
        assert_eq!(body_json(&resp)["errors"][0]["extensions"]["reason"], reason, "{why}");
    }
    let resp = post(addr, "/graphql", &[("authorization", &admin_a)], create).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert_eq!(body_json(&resp)["data"]["createLead"]["name"], "Ada");
    let a = body_json(&post(addr, "/graphql", &[("authorization", &viewer_a)], list).await);
    assert_eq!(a["data"]["leads"][0]["name"], "Ada");
    let b = body_json(&post(addr, "/graphql", &[("authorization", &admin_b)], list).await);
    assert_eq!(b["data"]["leads"], serde_json::json!([]));
    // The same admin switches to their other tenant with X-Org-Id; a tenant without grant is 403.
    let c = body_json(&post(addr, "/graphql", &[("authorization", &admin_a), ("x-org-id", "org-c")], list).await);
    assert_eq!(c["data"]["leads"], serde_json::json!([]));
    let denied = post(addr, "/graphql", &[("authorization", &admin_a), ("x-org-id", "org-b")], list).await;
    assert!(denied.starts_with("HTTP/1.1 403"), "{denied}");
    let viewer = body_json(&post(addr, "/graphql", &[("authorization", &viewer_a)], create).await);
    assert_eq!(viewer["errors"][0]["extensions"]["code"], "FORBIDDEN");
    let bad = post(addr, "/graphql", &[("authorization", &admin_a)], "{not json").await;
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
    assert_eq!(body_json(&bad)["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    let huge = format!(r#"{{"query": "{{ leads {{ name }} }}", "variables": {{"x": "{}"}}}}"#, "x".repeat(crm_server::BODY_LIMIT));
    let big = post(addr, "/graphql", &[("authorization", &admin_a)], &huge).await;
    assert!(big.starts_with("HTTP/1.1 413"), "{}", &big[..big.len().min(200)]);
    tx.send(()).unwrap();
    server.await.unwrap().unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

fn uuid_like() -> String {
    format!("{}-{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos())
}
