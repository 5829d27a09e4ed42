//! A PostgreSQL outage: the test starts a database of its own (`.ci/pg-start`, from the
//! installed binaries), stops it while the store is serving, and checks that reads and writes fail
//! with `UNAVAILABLE` within the configured acquire timeout, that readiness is reported within a
//! second, and that everything recovers once the database is back. Runs where the PostgreSQL
//! suites run (`CRM_TEST_DATABASE_URL` set, as under CI), for two tenants.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crm_model::ErrorCode;
use crm_model::standard::standard_catalog;
use crm_orm::{Store, StoreOptions};
use crm_test_kit::{count, create, org, principal};
use serde_json::json;

const ACQUIRE: Duration = Duration::from_secs(1);

/// A PostgreSQL cluster of this test only.
struct Cluster {
    dir: PathBuf,
    port: u16,
}

fn as_postgres_user(cmd: &str) -> Command {
    // initdb and pg_ctl refuse root; `.ci/pg-start` runs them as the system user `crmpg` then.
    if Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0")) {
        let mut c = Command::new("runuser");
        c.args(["-u", "crmpg", "--", cmd]);
        c
    } else {
        Command::new(cmd)
    }
}

impl Cluster {
    fn start() -> (Cluster, String) {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = std::env::temp_dir().join(format!("crm-outage-{}", uuid::Uuid::now_v7().simple()));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/pg-start");
        let out = Command::new(script).arg(&dir).arg(port.to_string()).output().unwrap();
        assert!(out.status.success(), "pg-start: {}", String::from_utf8_lossy(&out.stderr));
        let url = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        (Cluster { dir, port }, url)
    }

    fn pg_ctl(&self, args: &[&str]) {
        let data = self.dir.join("data");
        let log = self.dir.join("server.log");
        let out = as_postgres_user("pg_ctl").arg("-D").arg(&data).arg("-l").arg(&log).args(args).output().unwrap();
        assert!(out.status.success(), "pg_ctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn stop(&self) {
        // A fast stop: connections are cut, and what committed stays (the cluster runs without
        // fsync and with asynchronous commit, which an immediate stop would lose).
        self.pg_ctl(&["-m", "fast", "-w", "stop"]);
    }

    fn restart(&self) {
        let o = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} -c fsync=off -c synchronous_commit=off",
            self.port,
            self.dir.display()
        );
        self.pg_ctl(&["-w", "-t", "60", "-o", &o, "start"]);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = as_postgres_user("pg_ctl").arg("-D").arg(&data).args(["-m", "immediate", "stop"]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn a_postgres_outage_answers_unavailable_and_recovers() {
    if crm_test_kit::postgres_url().is_none() {
        return;
    }
    let (cluster, url) = Cluster::start();
    let options = StoreOptions { max_connections: 4, acquire_timeout: ACQUIRE, ..StoreOptions::default() };
    let store = Store::connect(&url, Arc::new(standard_catalog().unwrap()), options).await.unwrap();
    store.migrate().await.unwrap();
    let (a, b) = (principal(&org(), "admin-a", &["admin"]), principal(&org(), "admin-b", &["admin"]));
    create(&store, &a, "Lead", &json!({ "name": "before" })).await.unwrap();
    assert_eq!(count(&store, &a, "Lead").await.unwrap(), 1);
    assert_eq!(count(&store, &b, "Lead").await.unwrap(), 0);

    cluster.stop();
    for who in [&a, &b] {
        let t = Instant::now();
        let e = count(&store, who, "Lead").await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::Unavailable, "a read during the outage: {e}");
        assert!(t.elapsed() < ACQUIRE * 3, "the read answered after {:?}", t.elapsed());
        let e = create(&store, who, "Lead", &json!({ "name": "during" })).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::Unavailable, "a write during the outage: {e}");
    }
    let t = Instant::now();
    let ready = tokio::time::timeout(Duration::from_secs(1), store.ready()).await;
    assert!(!matches!(ready, Ok(Ok(true))), "ready during the outage");
    assert!(t.elapsed() < Duration::from_millis(1500));

    cluster.restart();
    let t = Instant::now();
    let mut recovered = false;
    while t.elapsed() < Duration::from_secs(15) {
        if count(&store, &a, "Lead").await.is_ok() && store.ready().await.is_ok_and(|r| r) {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the store did not recover after the database came back");
    assert_eq!(count(&store, &a, "Lead").await.unwrap(), 1, "the writes refused during the outage left nothing");
    create(&store, &b, "Lead", &json!({ "name": "after" })).await.unwrap();
    assert_eq!(count(&store, &b, "Lead").await.unwrap(), 1);
}
