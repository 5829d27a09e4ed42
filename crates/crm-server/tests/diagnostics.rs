//! What an operator reads: an unreachable database named within seconds, `check-config` in the
//! TOML the server accepts (and failing on what it would refuse), plain-text logs when not on a
//! terminal, an access log line per request with tenant, user, operation and outcome.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{free_addr, post, wait_listening};

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_crm-server");

fn server(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--data-dir").arg(dir).args(args);
    for var in ["CRM_CONFIG", "CRM_DATABASE_URL", "DATABASE_URL", "RUST_LOG"] {
        c.env_remove(var);
    }
    c
}

fn run(dir: &Path, args: &[&str]) -> Output {
    server(dir, args).output().unwrap()
}

fn temp() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("crm-diag-{}", uuid::Uuid::now_v7()))
}

#[test]
fn an_unreachable_database_is_named_within_seconds() {
    let dir = temp();
    // Nothing listens on port 1; the password must not be printed.
    let start = Instant::now();
    let out = run(&dir, &["--database-url", "postgres://crm:hunter2@127.0.0.1:1/crm", "--db-acquire-timeout-ms", "2000", "migrate"]);
    let took = start.elapsed();
    assert!(!out.status.success());
    assert!(took < Duration::from_secs(8), "failed after {took:?}");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(stderr.contains("database postgres://crm:***@127.0.0.1:1/crm"), "{stderr}");
    assert!(stdout.contains("connecting to the database"), "said before waiting: {stdout}");
    assert!(!stdout.contains("hunter2") && !stderr.contains("hunter2"), "no password in the output");
    assert!(!stdout.contains('\u{1b}'), "no colour codes when not on a terminal: {stdout:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn check_config_prints_the_toml_it_accepts_and_fails_on_what_the_server_refuses() {
    let dir = temp();
    std::fs::create_dir_all(&dir).unwrap();
    let out = run(
        &dir,
        &[
            "--max-depth",
            "7",
            "--cors-origin",
            "https://app.example.com",
            "--oidc-client-secret",
            "s3cret",
            "--oidc-client-id",
            "crm",
            "--oidc-issuer",
            "https://id.example.com",
            "--oidc-project-id",
            "42",
            "check-config",
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let toml_text = String::from_utf8(out.stdout).unwrap();
    assert!(toml_text.contains("max_depth = 7\n") && toml_text.contains("cors_origins = [\"https://app.example.com\"]"), "{toml_text}");
    assert!(!toml_text.contains("s3cret") && toml_text.contains("# oidc_client_secret: set"), "{toml_text}");
    let parsed: toml::Table = toml::from_str(&toml_text).unwrap_or_else(|e| panic!("not TOML ({e}):\n{toml_text}"));
    assert_eq!(parsed["listen"].as_str(), Some("127.0.0.1:8080"));
    // The printed file is accepted as is: the same configuration again (the secret from its variable).
    let file = dir.join("crm.toml");
    std::fs::write(&file, &toml_text).unwrap();
    let again =
        server(&dir, &["--config", file.to_str().unwrap(), "check-config"]).env("CRM_OIDC_CLIENT_SECRET", "s3cret").output().unwrap();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let again = String::from_utf8(again.stdout).unwrap();
    assert_eq!(
        again.replace(&format!("data_dir = \"{}\"", dir.display()), ""),
        toml_text.replace(&format!("data_dir = \"{}\"", dir.display()), "")
    );

    // What the server would refuse at start, check-config refuses now.
    for (args, why) in [
        (vec!["--listen", "0.0.0.0:8080"], "listens on loopback only"),
        (vec!["--oidc-issuer", "https://id.example.com"], "--oidc-project-id is required"),
        (vec!["--cors-origin", "https://app.example.com/"], "CORS origin"),
        (vec!["--models", "/nonexistent/models"], "--models /nonexistent/models"),
    ] {
        let mut all = args.clone();
        all.push("check-config");
        let out = run(&dir, &all);
        assert!(!out.status.success(), "{args:?} refused");
        assert!(String::from_utf8_lossy(&out.stderr).contains(why), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn the_access_log_names_tenant_user_operation_and_outcome() {
    let dir = temp();
    let token = String::from_utf8(run(&dir, &["dev-token", "--org", "acme", "--sub", "ann"]).stdout).unwrap().trim().to_owned();
    let addr = free_addr();
    let mut child = server(&dir, &["--listen", &addr.to_string(), "--workers", "false", "serve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_listening(addr).await;
    assert!(post(addr, &token, r#"{"query": "query Pipeline { leads { name } }"}"#).await.starts_with("HTTP/1.1 200"));
    assert!(
        post(addr, &token, r#"{"query": "mutation Bad { createLead(data: {name: \"\"}) { name } }"}"#).await.starts_with("HTTP/1.1 200")
    );
    assert!(post(addr, "forged", r#"{"query": "{ leads { name } }"}"#).await.starts_with("HTTP/1.1 401"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.kill().unwrap();
    let mut log = String::new();
    child.stdout.take().unwrap().read_to_string(&mut log).unwrap();
    child.wait().unwrap();
    assert!(!log.contains('\u{1b}'), "no colour codes in a pipe");
    let line = |op: &str| {
        log.lines()
            .find(|l| l.contains("request answered") && l.contains(&format!("operation=\"{op}\"")))
            .unwrap_or_else(|| panic!("no access line for {op}:\n{log}"))
            .to_owned()
    };
    let ok = line("Pipeline");
    for want in ["org=acme", "sub=ann", "status=200", "outcome=\"ok\""] {
        assert!(ok.contains(want), "{want} in {ok}");
    }
    let bad = line("Bad");
    assert!(bad.contains("org=acme") && bad.contains("outcome=\"BAD_USER_INPUT\""), "{bad}");
    let refused =
        log.lines().find(|l| l.contains("request answered") && l.contains("status=401")).unwrap_or_else(|| panic!("no 401 line:\n{log}"));
    assert!(refused.contains("outcome=") && !refused.contains("org="), "{refused}");
    let _ = std::fs::remove_dir_all(dir);
}
