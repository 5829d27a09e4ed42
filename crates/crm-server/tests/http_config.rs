//! Configuration: flags > environment > TOML file > defaults, unknown keys refused, secrets never
//! printed, every option documented (`--help`, docs/CONFIG.md); and the binary's JSON logs carry
//! the request id.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use clap::Args;
use crm_server::{Config, LogFormat};

const BIN: &str = env!("CARGO_BIN_EXE_crm-server");

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("crm-config-{tag}-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

const FILE: &str = r#"
# A full-ish file.
listen = "127.0.0.1:9999"
max_depth = 7
max_complexity = 77
cors_origins = ["https://a.example"]
log_format = "json"
request_timeout_secs = 5
body_limit = 4096
dev_allow_remote = true
oidc_client_id = "crm"
oidc_client_secret = "hunter2-from-file"
metrics_listen = "127.0.0.1:9100"
"#;

#[test]
fn file_values_sit_under_flags_and_over_defaults() {
    let dir = temp_dir("precedence");
    let path = write(&dir, "crm.toml", FILE);
    let c = Config::try_parse_args(["crm-server", "--config", &path, "--max-depth", "9", "--cors-origin", "https://b.example"]).unwrap();
    assert_eq!(c.max_depth, 9, "flag over file");
    assert_eq!(c.cors_origins, vec!["https://b.example".to_owned()], "a flag list replaces the file's");
    assert_eq!(c.max_complexity, 77, "file over default");
    assert_eq!(c.listen.to_string(), "127.0.0.1:9999");
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!(c.request_timeout(), Some(Duration::from_secs(5)));
    assert_eq!(c.body_limit, 4096);
    assert!(c.dev_allow_remote);
    assert_eq!(c.oidc_client_secret.as_deref(), Some("hunter2-from-file"));
    assert_eq!(c.metrics_listen.map(|a| a.port()), Some(9100));
    assert_eq!(c.default_page_size, 10, "default when nobody sets it");
    // Without a file: the defaults, which `Config::default()` repeats.
    let d = Config::try_parse_args(["crm-server"]).unwrap();
    let expected = Config { database_url: d.database_url.clone(), ..Config::default() };
    assert_eq!(format!("{d:?}"), format!("{expected:?}"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn unknown_keys_and_bad_values_are_refused() {
    let dir = temp_dir("unknown");
    let path = write(&dir, "typo.toml", "max_depth = 3\nmax_dept = 4\n");
    let e = Config::try_parse_args(["crm-server", "--config", &path]).unwrap_err().to_string();
    assert!(e.contains("unknown field `max_dept`") && e.contains("line 2"), "{e}");
    // Unknown keys inside the `[roles]` table are refused too.
    let path = write(&dir, "roles.toml", "[roles.admin]\nbogus = 1\n");
    assert!(Config::try_parse_args(["crm-server", "--config", &path]).is_err());
    // Error messages never quote a secret's value.
    let path = write(&dir, "secret.toml", "oidc_client_secret = 987654321\n");
    let e = Config::try_parse_args(["crm-server", "--config", &path]).unwrap_err().to_string();
    assert!(e.contains("oidc_client_secret") && !e.contains("987654321"), "{e}");
    let path = write(&dir, "origin.toml", "cors_origins = [\"https://app.example.com/\"]\n");
    let e = Config::try_parse_args(["crm-server", "--config", &path]).unwrap_err().to_string();
    assert!(e.contains("CORS origin"), "{e}");
    let e = Config::try_parse_args(["crm-server", "--config", &dir.join("missing.toml").to_string_lossy()]).unwrap_err().to_string();
    assert!(e.contains("cannot read"), "{e}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn debug_hides_secrets() {
    let config = Config {
        oidc_client_secret: Some("hunter2".to_owned()),
        database_url: Some("postgres://crm:pw-s3cret@db:5432/crm?sslmode=require".to_owned()),
        ..Config::default()
    };
    for text in [format!("{config:?}"), format!("{config:#?}")] {
        assert!(!text.contains("hunter2") && !text.contains("pw-s3cret"), "{text}");
        assert!(text.contains("postgres://crm:***@db:5432/crm?sslmode=require"), "{text}");
        assert!(text.contains("oidc_client_secret: Some(***)") || text.contains("***,"), "{text}");
    }
    // The builder's Debug goes through the same redaction.
    let app = format!("{:?}", crm_server::App::new(config));
    assert!(!app.contains("hunter2") && !app.contains("pw-s3cret"), "{app}");
}

fn check_config(envs: &[(&str, &str)], args: &[&str]) -> String {
    let out = Command::new(BIN).env_clear().envs(envs.iter().copied()).args(args).arg("check-config").output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(!stdout.contains("hunter2") && !stderr.contains("hunter2"), "{stdout}\n{stderr}");
    stdout
}

#[test]
fn environment_sits_between_flags_and_file() {
    let dir = temp_dir("env");
    let path = write(&dir, "crm.toml", FILE);
    let out = check_config(&[("CRM_CONFIG", &path), ("CRM_MAX_DEPTH", "8")], &["--default-page-size", "3"]);
    assert!(out.contains("max_depth = 8\n"), "env over file: {out}");
    assert!(out.contains("max_complexity = 77\n"), "file over default: {out}");
    assert!(out.contains("default_page_size = 3\n"), "flag: {out}");
    assert!(out.contains("max_page_size = 100\n"), "default: {out}");
    let out = check_config(&[("CRM_CONFIG", &path), ("CRM_MAX_DEPTH", "8")], &["--max-depth", "9"]);
    assert!(out.contains("max_depth = 9\n"), "flag over env: {out}");
    let out = check_config(&[("CRM_CORS_ORIGINS", "https://x.example,https://y.example"), ("CRM_LOG_FORMAT", "json")], &[]);
    assert!(out.contains("cors_origins = [\"https://x.example\", \"https://y.example\"]"), "{out}");
    assert!(out.contains("log_format = \"json\""), "{out}");
    // Secrets: from the environment, the file or DATABASE_URL, never printed.
    let out = check_config(
        &[("CRM_OIDC_CLIENT_SECRET", "hunter2-env"), ("DATABASE_URL", "postgres://crm:hunter2-db@h/crm")],
        &["--config", &path],
    );
    assert!(out.contains("postgres://crm:***@h/crm"), "DATABASE_URL is read: {out}");
    let out = check_config(&[("CRM_DATABASE_URL", "postgres://a:hunter2-a@h/a"), ("DATABASE_URL", "postgres://b:hunter2-b@h/b")], &[]);
    assert!(out.contains("postgres://a:***@h/a"), "CRM_DATABASE_URL first: {out}");
    let bad = Command::new(BIN).env_clear().env("CRM_MAX_DEPTH", "lots").arg("check-config").output().unwrap();
    assert!(!bad.status.success());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn every_option_is_documented() {
    let help = Command::new(BIN).arg("--help").env_clear().output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/CONFIG.md")).unwrap();
    let command = Config::augment_args(clap::Command::new("crm-server"));
    let mut n = 0;
    for arg in command.get_arguments() {
        let long = format!("--{}", arg.get_long().unwrap());
        let env = arg.get_env().unwrap().to_str().unwrap().to_owned();
        let id = arg.get_id().as_str();
        assert!(arg.get_help().is_some(), "{long} has help");
        assert!(help.contains(&long) && help.contains(&env), "--help shows {long} and {env}");
        assert!(doc.contains(&format!("`{long}")) && doc.contains(&format!("`{env}`")), "CONFIG.md documents {long} and {env}");
        if id != "config_file" {
            assert!(doc.contains(&format!("`{id}`")), "CONFIG.md names the file key `{id}`");
        }
        n += 1;
    }
    assert!(n >= 20, "{n}");
    assert!(doc.contains("`DATABASE_URL`") && doc.contains("LIMIT_EXCEEDED") && doc.contains("x-request-id"));
}

/// Kills the child on drop.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn json_logs_carry_the_request_id_and_no_secret() {
    let dir = temp_dir("logs");
    let mut child = Child(
        Command::new(BIN)
            .env_clear()
            .env("RUST_LOG", "info")
            .args(["--data-dir", dir.to_str().unwrap(), "--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(["--oidc-client-secret", "hunter2-logged?", "--oidc-client-id", "crm-api"])
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let addr = loop {
        let line = rx.recv_timeout(Duration::from_mins(2)).expect("the server says where it listens");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        lines.push(line);
        if v["fields"]["message"] == "listening" {
            break v["fields"]["addr"].as_str().unwrap().to_owned();
        }
    };
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let resp = client.get(format!("http://{addr}/healthz")).header("x-request-id", "log-req-41").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let resp = client
        .post(format!("http://{addr}/graphql"))
        .header("x-request-id", "log-req-42")
        .header("authorization", "Bearer nonsense")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let mut seen = 0;
    while seen < 2 {
        let line = rx.recv_timeout(Duration::from_secs(30)).expect("a log line per request");
        if line.contains("log-req-4") {
            seen += 1;
        }
        lines.push(line);
    }
    drop(child);
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(2)) {
        lines.push(line);
    }
    for line in &lines {
        assert!(!line.contains("hunter2"), "a secret in the log: {line}");
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        // Every line written inside a request names it.
        if let Some(spans) = v["spans"].as_array()
            && let Some(request) = spans.iter().find(|s| s["name"] == "request")
        {
            let id = request["id"].as_str().unwrap();
            assert!(id.starts_with("log-req-4"), "{line}");
            assert!(request["method"].is_string() && request["path"].is_string(), "{line}");
        }
    }
    let in_requests = lines.iter().filter(|l| l.contains("\"name\":\"request\"")).count();
    assert!(in_requests >= 2, "{lines:#?}");
    let finished = lines.iter().find(|l| l.contains("request answered") && l.contains("log-req-42")).unwrap();
    assert!(finished.contains("\"status\":401"), "{finished}");
    let _ = std::fs::remove_dir_all(dir);
}
