//! Models of an installation's own reach the server: a program declaring `Project` in Rust
//! (`examples/custom_model.rs`) runs the whole command line, and a `--models` directory of
//! `*.model.json` files adds more without Rust. Both serve GraphQL like the standard models,
//! confined to each tenant.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{free_addr, graphql as post};
use serde_json::json;

mod common;

/// The example binary, built next to this test by `cargo test` (examples are built with the tests).
fn example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let bin = dir.join("examples").join(format!("custom_model{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.exists(), "{} is built by `cargo test` (or `cargo build --examples`)", bin.display());
    bin
}

fn cli(dir: &Path, models: &Path, args: &[&str]) -> std::process::Output {
    Command::new(example())
        .arg("--data-dir")
        .arg(dir)
        .arg("--models")
        .arg(models)
        .args(args)
        .env_remove("CRM_CONFIG")
        .env_remove("CRM_DATABASE_URL")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap()
}

#[tokio::test]
async fn a_rust_model_and_a_json_model_are_served_by_the_whole_cli() {
    let root = std::env::temp_dir().join(format!("crm-models-{}", uuid::Uuid::now_v7()));
    let (dir, models) = (root.join("data"), root.join("models"));
    std::fs::create_dir_all(&models).unwrap();
    // A model without Rust: the JSON form of the runtime metadata API, related to the Rust one.
    let milestone = json!({
        "name": "Milestone",
        "description": "A step of a project.",
        "fields": [
            { "name": "title", "type": "text", "required": true, "searchable": true },
            { "name": "project", "type": "relation", "target": "Project", "required": true, "onDelete": "cascade" },
            { "name": "reached", "type": "boolean", "default": false }
        ]
    });
    std::fs::write(models.join("milestone.model.json"), milestone.to_string()).unwrap();
    std::fs::write(models.join("README.txt"), "not a model: ignored").unwrap();

    // The command line is the server's: migrate, dev-token, sdl.
    let out = cli(&dir, &models, &["migrate"]);
    assert!(out.status.success(), "migrate: {}", String::from_utf8_lossy(&out.stderr));
    let token = |org: &str| {
        let out = cli(&dir, &models, &["dev-token", "--org", org]);
        assert!(out.status.success(), "dev-token: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let (a, b) = (token("acme"), token("globex"));
    let sdl = cli(&dir, &models, &["sdl", "--org", "acme"]);
    let sdl = String::from_utf8(sdl.stdout).unwrap();
    for want in ["type Project ", "type Milestone ", "createProject(", "milestones(", "type Lead "] {
        assert!(sdl.contains(want), "the SDL has {want}");
    }

    let addr = free_addr();
    let models_dir = models.to_string_lossy().into_owned();
    let server = common::serve(example(), &dir, addr, &["--models", &models_dir]).await;

    let create = "mutation($p: ProjectCreateInput!) { createProject(data: $p) { id name status } }";
    let made = post(addr, &a, create, json!({ "p": { "name": "Apollo" } })).await;
    let project = made["data"]["createProject"].clone();
    assert_eq!((project["name"].as_str(), project["status"].as_str()), (Some("Apollo"), Some("PLANNED")), "{made}");
    let m = "mutation($m: MilestoneCreateInput!) { createMilestone(data: $m) { title reached project { name } } }";
    let made = post(addr, &a, m, json!({ "m": { "title": "Launch", "project": { "connect": { "id": project["id"] } } } })).await;
    assert_eq!(made["data"]["createMilestone"], json!({ "title": "Launch", "reached": false, "project": { "name": "Apollo" } }), "{made}");
    let bad = post(addr, &a, create, json!({ "p": { "name": "" } })).await;
    assert_eq!(bad["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "the model's rules hold: {bad}");

    // Another tenant sees none of it, and cannot attach to it.
    let list = "{ projects(where: { name: \"Apollo\" }) { name } milestones { title project { name } } }";
    let mine = post(addr, &a, list, json!({})).await;
    assert_eq!(
        mine["data"],
        json!({ "projects": [{ "name": "Apollo" }], "milestones": [{ "title": "Launch", "project": { "name": "Apollo" } }] }),
        "{mine}"
    );
    assert_eq!(post(addr, &b, list, json!({})).await["data"], json!({ "projects": [], "milestones": [] }));
    let theirs = post(addr, &b, m, json!({ "m": { "title": "Hijack", "project": { "connect": { "id": project["id"] } } } })).await;
    assert_eq!(theirs["errors"][0]["extensions"]["code"], "NOT_FOUND", "{theirs}");

    // A file that is not a model stops the start, naming the file.
    std::fs::write(models.join("broken.model.json"), "{ \"name\": ").unwrap();
    let out = cli(&dir, &models, &["migrate"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken.model.json") && err.contains("not a model"), "{err}");
    drop(server);
    let _ = std::fs::remove_dir_all(root);
}
