//! Runs the example operations of `examples/graphql/` in file-name order, as an admin of a fresh
//! tenant, on every backend (SQLite always, PostgreSQL when `CRM_TEST_DATABASE_URL` is set), so the
//! documented examples stay runnable.
//!
//! Conventions of the example files (all of them plain GraphQL comments, so a file runs unchanged in
//! any client):
//! - `NN-name.graphql` holds one operation; `NN-name.json`, when present, holds its variables.
//! - Later files use data earlier files created. When one needs an id, the earlier file captures it
//!   with a line `# capture: NAME PATH`: PATH is dot-separated keys and list indices under `data`
//!   (`createAccount.contacts.0.id`). In a variables file, a string that is exactly `"{{NAME}}"` is
//!   replaced by the captured value, whatever its JSON type (`"{{versionSeen}}"` becomes `1`).
//!   Outside this test, fill those placeholders in by hand.
//! - `# expect: PATH JSON` asserts a value of the result (numbers compare as numbers, so `262` and
//!   `262.0` are equal).
//! - Every example must succeed without errors, except one marked `# expect-error: CODE`, which must
//!   fail with that `extensions.code` (it demonstrates the error).
//!
//! `CRM_EXAMPLES_PRINT=1 cargo test -p crm-graphql --test examples -- --nocapture` prints every
//! response.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![allow(clippy::float_cmp)] // test code: small counts and literal expectations, one future awaited at a time
mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value as Json;

/// One example file with its directives.
struct Example {
    name: String,
    query: String,
    vars: Json,
    captures: Vec<(String, String)>,
    expects: Vec<(String, Json)>,
    expect_error: Option<String>,
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/graphql")
}

fn load() -> Vec<Example> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(examples_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "graphql"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let query = std::fs::read_to_string(&path).unwrap();
            let vars_path = path.with_extension("json");
            let vars = if vars_path.exists() {
                serde_json::from_str(&std::fs::read_to_string(&vars_path).unwrap())
                    .unwrap_or_else(|e| panic!("{}: invalid JSON: {e}", vars_path.display()))
            } else {
                Json::Object(serde_json::Map::new())
            };
            let mut ex = Example { name, query: query.clone(), vars, captures: Vec::new(), expects: Vec::new(), expect_error: None };
            for line in query.lines() {
                let Some(comment) = line.trim().strip_prefix('#') else { continue };
                let comment = comment.trim();
                if let Some(rest) = comment.strip_prefix("capture:") {
                    let (var, path) = rest.trim().split_once(' ').unwrap_or_else(|| panic!("{}: bad capture `{line}`", ex.name));
                    ex.captures.push((var.to_owned(), path.trim().to_owned()));
                } else if let Some(rest) = comment.strip_prefix("expect:") {
                    let (path, value) = rest.trim().split_once(' ').unwrap_or_else(|| panic!("{}: bad expect `{line}`", ex.name));
                    let value =
                        serde_json::from_str(value.trim()).unwrap_or_else(|e| panic!("{}: bad expected value `{line}`: {e}", ex.name));
                    ex.expects.push((path.to_owned(), value));
                } else if let Some(code) = comment.strip_prefix("expect-error:") {
                    ex.expect_error = Some(code.trim().to_owned());
                }
            }
            ex
        })
        .collect()
}

/// The value at a dot-separated path (keys and list indices).
fn at<'a>(data: &'a Json, path: &str) -> Option<&'a Json> {
    path.split('.').try_fold(data, |v, seg| match seg.parse::<usize>() {
        Ok(i) if v.is_array() => v.get(i),
        _ => v.get(seg),
    })
}

/// Replaces every string `"{{NAME}}"` in `vars` by the captured value.
fn substitute(vars: &Json, captured: &HashMap<String, Json>, example: &str) -> Json {
    match vars {
        Json::String(s) => match s.strip_prefix("{{").and_then(|r| r.strip_suffix("}}")) {
            Some(name) => captured.get(name).cloned().unwrap_or_else(|| panic!("{example}: nothing captured as `{name}` before it")),
            None => vars.clone(),
        },
        Json::Array(items) => Json::Array(items.iter().map(|v| substitute(v, captured, example)).collect()),
        Json::Object(o) => Json::Object(o.iter().map(|(k, v)| (k.clone(), substitute(v, captured, example))).collect()),
        other => other.clone(),
    }
}

fn same(a: &Json, b: &Json) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

#[tokio::test]
async fn examples_run_in_order() {
    let examples = load();
    assert!(examples.len() >= 10, "expected the example files in {}", examples_dir().display());
    for b in backends().await {
        let admin = gql(&b, principal(&org(), "admin-examples", &["admin"]));
        let mut captured: HashMap<String, Json> = HashMap::new();
        for ex in &examples {
            let vars = substitute(&ex.vars, &captured, &ex.name);
            let resp = admin.run(&ex.query, vars).await;
            if std::env::var_os("CRM_EXAMPLES_PRINT").is_some() {
                println!("[{}] {}\n{resp:#}", b.name, ex.name);
            }
            match (&ex.expect_error, resp.get("errors")) {
                (None, Some(errs)) => panic!("[{}] {} failed: {errs:#}", b.name, ex.name),
                (Some(code), None) => panic!("[{}] {} should fail with {code}, got {resp:#}", b.name, ex.name),
                (Some(code), Some(errs)) => {
                    let got = errs[0]["extensions"]["code"].as_str().unwrap_or_default();
                    assert_eq!(got, code, "[{}] {}: {errs:#}", b.name, ex.name);
                    continue;
                }
                (None, None) => {}
            }
            let data = &resp["data"];
            for (path, want) in &ex.expects {
                let got = at(data, path).unwrap_or_else(|| panic!("[{}] {}: nothing at `{path}` in {data:#}", b.name, ex.name));
                assert!(same(got, want), "[{}] {}: `{path}` is {got}, expected {want}; data: {data:#}", b.name, ex.name);
            }
            for (var, path) in &ex.captures {
                let v = at(data, path).unwrap_or_else(|| panic!("[{}] {}: nothing at `{path}` to capture in {data:#}", b.name, ex.name));
                captured.insert(var.clone(), v.clone());
            }
        }
    }
}
