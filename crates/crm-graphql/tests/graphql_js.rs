//! External validation: the standard catalog's schema, as a client sees it through introspection,
//! is checked by the reference implementation (graphql-js 16: `buildClientSchema` +
//! `validateSchema`, see `tests/graphql-js/validate.mjs`).
//!
//! Also: partial failures executed by graphql-js (`execute.mjs`) over the same root results give
//! the same `data` and error paths as the server (`partial_failures_match_graphql_js`).
//!
//! Needs `node` and `npm ci` (or `npm install`) run in `tests/graphql-js/` (`.ci/run` does it).
//! Without them the test prints a note and passes, except under `CI=true`, where it fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use crm_graphql::{Api, Request, SchemaOptions};
use crm_model::standard::standard_catalog;
use crm_orm::{Policy, Store};

/// graphql-js's `getIntrospectionQuery()` with its default options (what most clients send).
const QUERY_DEFAULT: &str = include_str!("graphql-js/introspection.graphql");
/// `getIntrospectionQuery({...})` with every optional field the server serves: schema
/// description, `isRepeatable`, `specifiedByURL`, `isOneOf`, deprecated arguments and input fields.
const QUERY_FULL: &str = include_str!("graphql-js/introspection-full.graphql");
/// The selection depth of both queries as the document guard counts it (`typeDepth: 9` of `TypeRef`
/// under `__schema.types.fields.type`): the default depth limit must admit it.
const INTROSPECTION_DEPTH: usize = 15;

fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("graphql-js")
}

/// Whether the validator can run; if not, fails under `CI=true` and otherwise says why.
fn validator_available(dir: &Path) -> bool {
    let missing = match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {
            if dir.join("node_modules").join("graphql").join("package.json").is_file() {
                None
            } else {
                Some(format!("{} has no node_modules/graphql (run `npm ci` there)", dir.display()))
            }
        }
        Ok(out) => Some(format!("`node --version` failed: {}", out.status)),
        Err(e) => Some(format!("`node` not found: {e}")),
    };
    match missing {
        None => true,
        Some(why) if std::env::var("CI").as_deref() == Ok("true") => panic!("CI=true: the graphql-js validator cannot run: {why}"),
        Some(why) => {
            eprintln!("note: graphql-js validation skipped: {why}");
            false
        }
    }
}

/// Runs `node <args>` in `dir`, returning stdout; fails the test with node's output otherwise.
fn node(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("node").args(args).current_dir(dir).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "node {args:?} failed ({}):\n{stdout}{stderr}", out.status);
    stdout
}

/// Lines without trailing whitespace (the checked-in queries are stripped of it).
fn normalized(s: &str) -> String {
    s.lines().map(str::trim_end).collect::<Vec<_>>().join("\n").trim().to_owned()
}

/// The API over a fresh SQLite store of the standard catalog, and a principal of a tenant
/// without definitions of its own.
async fn api() -> (Api, Store, crm_orm::Principal) {
    let cat = Arc::new(standard_catalog().unwrap());
    let (b, _) = crm_test_kit::sqlite(cat).await;
    let p = crm_test_kit::principal(&crm_test_kit::org(), "introspector", &["admin"]);
    (Api::new(SchemaOptions::default(), Policy::default_roles()), b.store, p)
}

/// Introspects the standard schema with `query`, hands the `data` to graphql-js and returns its
/// report.
async fn validate(dir: &Path, (api, store, p): &(Api, Store, crm_orm::Principal), label: &str, query: &str) -> String {
    let resp = api.execute(store, p, Request::new(query)).await;
    assert!(resp.errors.is_empty(), "{label} introspection failed: {:#?}", resp.errors);
    let data = serde_json::to_vec(&resp.data).unwrap();
    let file = std::env::temp_dir().join(format!("crm-gql-introspection-{label}-{}.json", uuid::Uuid::now_v7()));
    std::fs::write(&file, data).unwrap();
    let out = Command::new("node").arg(dir.join("validate.mjs")).arg(&file).output().unwrap();
    let _ = std::fs::remove_file(&file);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "graphql-js rejects the {label} introspection of the standard schema ({}):\n{stdout}{stderr}",
        out.status
    );
    stdout
}

#[tokio::test]
async fn standard_schema_is_valid_for_graphql_js() {
    let dir = js_dir();
    if !validator_available(&dir) {
        return;
    }
    // The checked-in queries are the installed graphql-js's own (regenerate with `--print-query`).
    assert_eq!(
        normalized(QUERY_DEFAULT),
        normalized(&node(&dir, &["validate.mjs", "--print-query"])),
        "tests/graphql-js/introspection.graphql is stale: `node validate.mjs --print-query > introspection.graphql`"
    );
    assert_eq!(
        normalized(QUERY_FULL),
        normalized(&node(&dir, &["validate.mjs", "--print-query", "full"])),
        "tests/graphql-js/introspection-full.graphql is stale: `node validate.mjs --print-query full > introspection-full.graphql`"
    );

    let api = api().await;
    for (label, query) in [("default", QUERY_DEFAULT), ("full", QUERY_FULL)] {
        let report = validate(&dir, &api, label, query).await;
        println!("{label} introspection: {}", report.trim());
        assert!(report.contains("valid schema"), "unexpected validator output: {report}");
    }
}

/// What GraphiQL, Apollo and codegen tools send must pass the default limits too.
#[tokio::test]
async fn default_limits_admit_the_standard_introspection_query() {
    assert!(SchemaOptions::default().max_depth >= INTROSPECTION_DEPTH);
    let (api, store, p) = api().await;
    for (label, query) in [("default", QUERY_DEFAULT), ("full", QUERY_FULL)] {
        let resp = api.execute(&store, &p, Request::new(query)).await;
        assert!(resp.errors.is_empty(), "{label} introspection under the default limits: {:?}", resp.errors);
    }
}

/// Partial failures as the specification has them (§7.1.2), with graphql-js's `execute` as the
/// reference: the same document over the same root results (the server's own for the roots that
/// succeeded, a thrown error for the ones that failed) gives the same `data`, nulls and all, and
/// errors at the same paths.
#[tokio::test]
async fn partial_failures_match_graphql_js() {
    let dir = js_dir();
    if !validator_available(&dir) {
        return;
    }
    let (api, store, p) = api().await;
    let make = "mutation { createLead(data: {name: \"Ada\", email: \"ada@example.com\"}) { id } }";
    let made = api.execute(&store, &p, Request::new(make)).await;
    assert!(made.errors.is_empty(), "{:?}", made.errors);
    let (_, built) = api.schema_for(&store, &p.org_id).await.unwrap();
    let sdl = crm_graphql::types::sdl(&built.schema);
    let cases = [
        // A nullable root fails: it alone is null, with an error at its path.
        r#"{ leads { name } missing: lead(where: {id: "not-an-id"}) { name } }"#,
        // A non-null root fails: `data` is null as a whole.
        r"{ leads { name } leadsConnection(first: 1000000) { aggregate { count } } }",
        // Two failures, aliases, one success between them.
        r#"{ a: lead(where: {id: "x"}) { name } ok: leads(first: 1) { name email } b: lead(where: {id: "00000000-0000-0000-0000-000000000000"}) { name } c: leads(first: -1) { name } }"#,
        // A mutation's failing non-null root nulls `data`; the earlier successful root is gone with it.
        r#"mutation { first: createLead(data: {name: "Bo"}) { name } second: createLead(data: {name: ""}) { name } }"#,
    ];
    for query in cases {
        let ours = api.execute(&store, &p, Request::new(query)).await;
        assert!(!ours.errors.is_empty(), "the case fails somewhere: {query}");
        for e in &ours.errors {
            assert!(!e.path.is_empty(), "every field error has a path ({query}): {e:?}");
        }
        let ours_json = serde_json::to_value(&ours).unwrap();
        // The roots: our values where we have them, an error where a root failed.
        let failed: std::collections::BTreeSet<String> =
            ours_json["errors"].as_array().unwrap().iter().filter_map(|e| e["path"][0].as_str().map(str::to_owned)).collect();
        let doc = apollo_compiler::ExecutableDocument::parse_and_validate(&built.schema, query, "q.graphql").unwrap();
        let op = doc.operations.iter().next().unwrap();
        let mut roots = serde_json::Map::new();
        for s in &op.selection_set.selections {
            if let apollo_compiler::executable::Selection::Field(f) = s {
                let key = f.response_key().to_string();
                let v = if failed.contains(&key) {
                    serde_json::json!({ "__error": "failed" })
                } else {
                    ours_json["data"].get(&key).cloned().unwrap_or(serde_json::Value::Null)
                };
                roots.insert(key, v);
            }
        }
        // `data` null (a non-null root failed) carries no value of the roots that succeeded:
        // each is read alone for the reference (the cases whose data is null are queries).
        if ours_json["data"].is_null() {
            for s in &op.selection_set.selections {
                if let apollo_compiler::executable::Selection::Field(f) = s {
                    let key = f.response_key().to_string();
                    if !failed.contains(&key) {
                        let alone = api.execute(&store, &p, Request::new(format!("{{ {} }}", f.serialize().no_indent()))).await;
                        let alone = serde_json::to_value(&alone).unwrap();
                        roots.insert(key.clone(), alone["data"][&key].clone());
                    }
                }
            }
        }
        let case = serde_json::json!({ "sdl": sdl, "query": query, "roots": roots });
        let file = std::env::temp_dir().join(format!("crm-gql-case-{}.json", uuid::Uuid::now_v7()));
        std::fs::write(&file, case.to_string()).unwrap();
        let reference: serde_json::Value = serde_json::from_str(&node(&dir, &["execute.mjs", file.to_str().unwrap()])).unwrap();
        let _ = std::fs::remove_file(&file);
        let mut our_paths: Vec<serde_json::Value> = ours_json["errors"].as_array().unwrap().iter().map(|e| e["path"].clone()).collect();
        our_paths.sort_by_key(ToString::to_string);
        assert_eq!(ours_json["data"], reference["data"], "data as graphql-js has it for {query}");
        assert_eq!(serde_json::Value::Array(our_paths), reference["paths"], "error paths as graphql-js has them for {query}");
    }
}
