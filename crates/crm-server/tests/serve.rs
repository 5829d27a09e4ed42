//! The server on a fresh data directory: creates and migrates SQLite, answers /healthz and /readyz.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::Arc;

use clap::Parser;
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
    assert!(args.config.database_url.is_none() || std::env::var("DATABASE_URL").is_ok());
    let mut config = args.config;
    config.database_url = None;
    let engine = connect(&config).await.unwrap();
    engine.migrate().await.unwrap();
    assert!(dir.join("crm.db").exists(), "the SQLite file is created in the data directory");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let state = AppState::new(Arc::new(engine), &config).unwrap();
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

/// `/graphql` refuses everyone without authentication configured; in development mode it takes
/// the principal from `x-dev-*` headers, so two tenants stay apart over HTTP too.
#[tokio::test]
async fn graphql_over_http_in_dev_mode_only() {
    let dir = std::env::temp_dir().join(format!("crm-serve-gql-{}", uuid_like()));
    let mut config = Args::parse_from(["crm-server", "--data-dir", dir.to_str().unwrap(), "--insecure-dev"]).config;
    config.database_url = None;
    let engine = Arc::new(connect(&config).await.unwrap());
    engine.migrate().await.unwrap();

    // Development mode refuses a non-loopback address.
    let mut exposed = config.clone();
    exposed.listen = "0.0.0.0:8080".parse().unwrap();
    assert!(AppState::new(engine.clone(), &exposed).is_err());

    let mut closed = config.clone();
    closed.insecure_dev = false;
    for (cfg, dev) in [(closed, false), (config.clone(), true)] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(run(AppState::new(engine.clone(), &cfg).unwrap(), listener, async move {
            let _ = rx.await;
        }));
        let create = r#"{"query": "mutation { createLead(data: {name: \"Ada\"}) { name status } }"}"#;
        let resp = post(addr, "/graphql", &[("x-dev-org", "org-a")], create).await;
        if !dev {
            assert!(resp.starts_with("HTTP/1.1 401"), "{resp}");
            assert_eq!(body_json(&resp)["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
        } else {
            assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
            assert_eq!(body_json(&resp)["data"]["createLead"]["name"], "Ada");
            let list = r#"{"query": "{ leads { name } }"}"#;
            let a = body_json(&post(addr, "/graphql", &[("x-dev-org", "org-a"), ("x-dev-roles", "viewer")], list).await);
            assert_eq!(a["data"]["leads"][0]["name"], "Ada");
            let b = body_json(&post(addr, "/graphql", &[("x-dev-org", "org-b")], list).await);
            assert_eq!(b["data"]["leads"], serde_json::json!([]));
            let viewer = body_json(&post(addr, "/graphql", &[("x-dev-org", "org-a"), ("x-dev-roles", "viewer")], create).await);
            assert_eq!(viewer["errors"][0]["extensions"]["code"], "FORBIDDEN");
            let bad = post(addr, "/graphql", &[], "{not json").await;
            assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
            assert_eq!(body_json(&bad)["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
            let huge = format!(r#"{{"query": "{{ leads {{ name }} }}", "variables": {{"x": "{}"}}}}"#, "x".repeat(crm_server::BODY_LIMIT));
            let big = post(addr, "/graphql", &[], &huge).await;
            assert!(big.starts_with("HTTP/1.1 413"), "{}", &big[..big.len().min(200)]);
        }
        tx.send(()).unwrap();
        server.await.unwrap().unwrap();
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn uuid_like() -> String {
    format!("{}-{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos())
}
