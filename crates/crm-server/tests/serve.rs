//! The server on a fresh data directory: creates and migrates SQLite, answers /healthz and /readyz.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use clap::Parser;
use crm_server::{Config, connect, run};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    config: Config,
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
    let server = tokio::spawn(run(Arc::new(engine), listener, async move {
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

fn uuid_like() -> String {
    format!("{}-{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos())
}
