//! The NATS JetStream relay, end to end with a real `nats-server` (JetStream on a loopback port)
//! and `crm-server` processes: every committed write is in the stream exactly once, as a
//! JetStream consumer reads it, after the server is killed (SIGKILL) in the middle of relaying
//! and after NATS itself is killed and restarted; a rolled-back write is never published.
//!
//! Needs `nats-server` (`CRM_TEST_NATS_SERVER`, else on `PATH`); `.ci/run` installs Debian's.
//! Without it the test is skipped, except under `CI=true`, where it fails. SQLite always;
//! PostgreSQL when `CRM_TEST_DATABASE_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crm_model::OrgId;
use crm_model::standard::standard_catalog;
use crm_orm::{OrmError, Store, StoreOptions, TxCtx, TxFuture, TxWork};
use futures::StreamExt;
use serde_json::json;
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_crm-server");
const STREAM: &str = "CRM";
/// Events written before the relay starts, then in all (the rest while NATS is down).
const FIRST: usize = 3000;
const SECOND: usize = 3200;

fn nats_binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("CRM_TEST_NATS_SERVER")
        && !p.is_empty()
    {
        return Some(PathBuf::from(p));
    }
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true: the NATS test needs nats-server (see .ci/run)");
        eprintln!("note: NATS test skipped (no nats-server; set CRM_TEST_NATS_SERVER)");
    }
    found
}

/// A `nats-server` with JetStream, its data in `dir`.
struct Nats {
    bin: PathBuf,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Nats {
    fn start(bin: PathBuf, dir: &Path) -> Nats {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut n = Nats { bin, port, dir: dir.join("nats"), child: None };
        n.restart();
        n
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn restart(&mut self) {
        let child = Command::new(&self.bin)
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(t.elapsed() < Duration::from_secs(10), "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap(); // SIGKILL
            c.wait().unwrap();
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(url: &str, dir: &Path, org: &OrgId, nats: &str) -> Child {
    Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(["--database-url", url, "--listen", "127.0.0.1:0", "--worker-poll-ms", "10", "--worker-org", org.as_str()])
        .args(["--nats-url", nats, "serve"])
        .env_remove("CRM_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Creates leads `from..to` in transactions of 100, or one lead and then fails (rolled back).
struct Leads {
    from: usize,
    to: usize,
    fail: bool,
}
impl TxWork for Leads {
    type Output = ();
    fn run<'a>(&'a self, tx: &'a mut TxCtx<'_>) -> TxFuture<'a, ()> {
        Box::pin(async move {
            for i in self.from..self.to {
                tx.create("Lead", &json!({ "name": format!("lead {i}") })).await?;
            }
            if self.fail {
                tx.create("Lead", &json!({ "name": "rolled back" })).await?;
                return Err(OrmError::bad("test", "this transaction is rolled back"));
            }
            Ok(())
        })
    }
}

async fn write(store: &Store, org: &OrgId, from: usize, to: usize) {
    let access = store.cross_tenant_platform_work().system_access(org.clone(), "test");
    let mut i = from;
    while i < to {
        let end = std::cmp::min(i + 100, to);
        store.transaction(&access, &Leads { from: i, to: end, fail: false }).await.unwrap();
        i = end;
    }
    let failed = store.transaction(&access, &Leads { from: 0, to: 0, fail: true }).await;
    assert!(failed.is_err(), "the failing transaction failed");
}

async fn stream_count(js: &async_nats::jetstream::Context) -> u64 {
    match js.get_stream(STREAM).await {
        Ok(mut s) => s.info().await.map_or(0, |i| i.state.messages),
        Err(_) => 0,
    }
}

async fn until_count(js: &async_nats::jetstream::Context, n: u64, within: Duration, what: &str) {
    let t = Instant::now();
    loop {
        let c = stream_count(js).await;
        assert!(c <= n, "{what}: {c} messages in the stream, more than the {n} committed events");
        if c == n {
            return;
        }
        assert!(t.elapsed() < within, "{what}: {c} of {n} events in the stream after {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every message of the stream, read by a JetStream consumer: `(Nats-Msg-Id, subject, body)`.
async fn read_all(js: &async_nats::jetstream::Context, n: u64) -> Vec<(String, String, serde_json::Value)> {
    let stream = js.get_stream(STREAM).await.unwrap();
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            deliver_policy: async_nats::jetstream::consumer::DeliverPolicy::All,
            ack_policy: async_nats::jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut out = Vec::new();
    let mut messages = consumer.messages().await.unwrap();
    while (out.len() as u64) < n {
        let m = tokio::time::timeout(Duration::from_secs(10), messages.next()).await.expect("a message").unwrap().unwrap();
        let id = m.headers.as_ref().and_then(|h| h.get("Nats-Msg-Id")).map(|v| v.as_str().to_owned()).unwrap();
        out.push((id, m.subject.to_string(), serde_json::from_slice(&m.payload).unwrap()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_committed_write_is_published_exactly_once_across_a_crash_and_a_nats_restart() {
    let Some(bin) = nats_binary() else { return };
    let root = std::env::temp_dir().join(format!("crm-nats-{}", Uuid::now_v7()));
    for (name, url) in crm_test_kit::database_urls(&root) {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut nats = Nats::start(bin.clone(), &dir);
        let client = async_nats::ConnectOptions::new().retry_on_initial_connect().connect(nats.url()).await.unwrap();
        let js = async_nats::jetstream::new(client);

        let store = crm_engines::Engines::install(
            &Store::connect(&url, Arc::new(standard_catalog().unwrap()), StoreOptions::default()).await.unwrap(),
        );
        store.migrate().await.unwrap();
        let org = crm_test_kit::org();
        store.register_tenant(&org, None).await.unwrap();

        // Events waiting before the relay starts; the server is killed once the first are in.
        write(&store, &org, 0, FIRST).await;
        let mut server = spawn(&url, &dir, &org, &nats.url());
        let t = Instant::now();
        while stream_count(&js).await == 0 {
            assert!(t.elapsed() < Duration::from_mins(1), "[{name}] the relay never published");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        server.kill().unwrap(); // SIGKILL, mid-relay
        server.wait().unwrap();
        let at_kill = stream_count(&js).await;
        eprintln!("[{name}] server killed with {at_kill} of {FIRST} events published");
        assert!(at_kill < FIRST as u64, "[{name}] killed mid-relay");

        // Restarted, it publishes the rest; what it publishes again is stored once.
        let mut server = spawn(&url, &dir, &org, &nats.url());
        until_count(&js, FIRST as u64, Duration::from_mins(1), &format!("[{name}] after the restart")).await;

        // NATS killed and restarted while writes go on.
        nats.kill();
        write(&store, &org, FIRST, SECOND).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        nats.restart();
        until_count(&js, SECOND as u64, Duration::from_mins(1), &format!("[{name}] after NATS restarted")).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(stream_count(&js).await, SECOND as u64, "[{name}] nothing more arrives");
        server.kill().unwrap();
        server.wait().unwrap();

        // Exactly the committed events, once each, in the tenant's order, nothing rolled back.
        let committed = store.cross_tenant_platform_work().pending_events("verify", 10_000, &[org.to_string()], "").await.unwrap();
        assert_eq!(committed.len(), SECOND, "[{name}] one event per committed lead");
        let got = read_all(&js, SECOND as u64).await;
        let ids: Vec<&str> = got.iter().map(|(id, _, _)| id.as_str()).collect();
        assert_eq!(ids.iter().copied().collect::<HashSet<_>>().len(), SECOND, "[{name}] no event twice");
        let want: Vec<String> = committed.iter().map(|e| e.id.to_string()).collect();
        assert_eq!(ids, want.iter().map(String::as_str).collect::<Vec<_>>(), "[{name}] the committed events, in order");
        let (_, subject, body) = &got[0];
        assert_eq!(subject, &format!("crm.{org}.Lead.created"), "[{name}]");
        assert_eq!(body["type"], "lead.created", "[{name}]");
        assert_eq!(body["data"]["after"]["name"], "lead 0", "[{name}]");
        assert!(got.iter().all(|(_, _, b)| b["data"]["after"]["name"] != "rolled back"), "[{name}] a rolled-back write published");
        drop(nats);
    }
    let _ = std::fs::remove_dir_all(&root);
}
