//! `crm-server export` / `import` as an operator uses them: a tenant with demo data, custom
//! fields and objects, a self-reference, a trashed record and history is exported, imported into
//! a fresh database, and exported again: the two files hold the same lines, record for record
//! (ids, stamps, versions, trash, custom values, history, stages, audit log), and the restored
//! server answers reads as the first did. An import into a tenant with data, and a truncated file,
//! change nothing. With `CRM_TEST_DATABASE_URL`, the SQLite export is also restored into
//! PostgreSQL and exported from there the same.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

use common::{free_addr, graphql as gql};
use serde_json::{Value as Json, json};

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_crm-server");

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("crm-transfer-{name}-{}", uuid::Uuid::now_v7()))
}

fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    common::command(BIN, dir, args).output().unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The lines of an export without the header's time (and with `org` as given).
fn lines(path: &Path) -> Vec<Json> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let mut j: Json = serde_json::from_str(l).unwrap();
            if j["type"] == "header" {
                j["exportedAt"] = Json::Null;
            }
            j
        })
        .collect()
}

const READS: &str = "{
    leadsConnection { aggregate { count } }
    leads(orderBy: createdAt_ASC, first: 100) { id name status version createdAt updatedAt createdBy updatedBy budgetCode
        history { field oldValue newValue changedAt changedBy } stages { stage enteredAt exitedAt } }
    leadsTrash { id name deletedAt version }
    accounts(orderBy: name_ASC) { id name parent { id name } }
    projects { id title budget { amount currency } account { id } }
    auditLog { action model recordId actor at }
}";

#[tokio::test]
async fn an_export_restores_into_a_fresh_database_record_for_record() {
    let (a, b, c) = (tmp("a"), tmp("b"), tmp("c"));
    ok(&a, &["seed-demo", "--org", "acme"]);
    let token = ok(&a, &["dev-token", "--org", "acme", "--sub", "ann"]);
    let addr = free_addr();
    let served = common::serve(BIN, &a, addr, &["--workers", "false"]).await;
    let q = |query: &'static str, vars: Json| {
        let token = token.clone();
        async move {
            let r = gql(addr, &token, query, vars).await;
            assert!(r.get("errors").is_none(), "{query}: {r}");
            r["data"].clone()
        }
    };
    q(
        "mutation { createCustomField(model: \"Lead\", definition: {name: \"budgetCode\", type: \"text\", searchable: true}) { version } }",
        json!({}),
    )
    .await;
    let project = json!({"name": "Project", "fields": [{"name": "title", "type": "text", "required": true},
        {"name": "budget", "type": "money"}, {"name": "account", "type": "relation", "target": "Account"}]});
    q("mutation($d: JSON!) { createCustomObject(definition: $d) { version } }", json!({ "d": project })).await;
    let parent = q("mutation { createAccount(data: {name: \"Holding\"}) { id } }", json!({})).await["createAccount"]["id"].clone();
    let child =
        q("mutation($p: ID!) { createAccount(data: {name: \"Subsidiary\", parent: {connect: {id: $p}}}) { id } }", json!({ "p": parent }))
            .await["createAccount"]["id"]
            .clone();
    q(
        "mutation($a: ID!) { createProject(data: {title: \"Portal\", budget: {amount: \"5000.50\", currency: \"EUR\"}, account: {connect: {id: $a}}}) { id } }",
        json!({ "a": child }),
    )
    .await;
    let lead = q("mutation { createLead(data: {name: \"Zed\", budgetCode: \"B-7\"}) { id } }", json!({})).await["createLead"]["id"].clone();
    q("mutation($id: ID!) { updateLead(where: {id: $id}, data: {status: QUALIFIED}) { id } }", json!({ "id": lead })).await;
    let gone = q("mutation { createLead(data: {name: \"Trashed\"}) { id } }", json!({})).await["createLead"]["id"].clone();
    q("mutation($id: ID!) { deleteLead(where: {id: $id}) { id } }", json!({ "id": gone })).await;
    let before = q(READS, json!({})).await;
    drop(served);

    let file = a.join("acme.ndjson");
    let out = run(&a, &["export", "--org", "acme", "--out", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let exported = lines(&file);
    assert_eq!(exported[0]["type"], "header");
    assert_eq!(exported.last().unwrap()["type"], "end");
    let records = exported.iter().filter(|l| l["type"] == "record").count();
    assert!(records > 50, "seeded data and more: {records}");
    assert!(exported.iter().any(|l| l["type"] == "log" && l["log"] == "crm_history"));
    assert!(exported.iter().any(|l| l["type"] == "definition"));
    // Accounts come before what points at them; the subsidiary's parent is set afterwards.
    let first_of = |m: &str| exported.iter().position(|l| l["model"] == m).unwrap();
    assert!(first_of("Account") < first_of("Contact") && first_of("Member") < first_of("Lead"));

    // Into a fresh database, then out again: the same lines.
    let imported = ok(&b, &["import", file.to_str().unwrap()]);
    assert!(imported.contains(&format!("imported {records} records")), "{imported}");
    let again = b.join("again.ndjson");
    ok(&b, &["export", "--org", "acme", "--out", again.to_str().unwrap()]);
    assert_eq!(lines(&again), exported, "the restored tenant exports the same lines");

    // The restored server answers as the first did.
    let addr = free_addr();
    let token_b = ok(&b, &["dev-token", "--org", "acme", "--sub", "ann"]);
    let served = common::serve(BIN, &b, addr, &["--workers", "false"]).await;
    let after = gql(addr, &token_b, READS, json!({})).await;
    assert_eq!(after["data"], before, "reads after the restore");
    // A restored tenant takes writes (its versions go on from the exported ones).
    let version = before["leads"].as_array().unwrap().iter().find(|l| l["id"] == lead).unwrap()["version"].as_i64().unwrap();
    let update = "mutation($id: ID!, $v: Int) { updateLead(where: {id: $id}, data: {name: \"Zed 2\"}, expectedVersion: $v) { version } }";
    let r = gql(addr, &token_b, update, json!({ "id": lead, "v": version })).await;
    assert_eq!(r["data"]["updateLead"]["version"], version + 1, "{r}");
    drop(served);

    // An import into a tenant with data is refused and changes nothing.
    let refused = run(&b, &["import", file.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("empty tenant"), "{}", String::from_utf8_lossy(&refused.stderr));
    // A truncated file imports nothing.
    let text = std::fs::read_to_string(&file).unwrap();
    let cut: Vec<&str> = text.lines().collect();
    let truncated = c.join("cut.ndjson");
    std::fs::create_dir_all(&c).unwrap();
    std::fs::write(&truncated, cut[..cut.len() - 1].join("\n")).unwrap();
    let out = run(&c, &["import", truncated.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("truncated"), "{}", String::from_utf8_lossy(&out.stderr));
    let empty = c.join("empty.ndjson");
    ok(&c, &["export", "--org", "acme", "--out", empty.to_str().unwrap()]);
    let left = lines(&empty);
    assert_eq!(left.iter().filter(|l| l["type"] == "record" || l["type"] == "definition").count(), 0, "nothing stayed");

    // SQLite to PostgreSQL: the same lines.
    if let Some(url) = crm_test_kit::postgres_url() {
        let org = format!("org-{}", uuid::Uuid::now_v7().simple());
        let pg = tmp("pg");
        std::fs::create_dir_all(&pg).unwrap();
        let with_db = |args: &[&str]| {
            let mut all = vec!["--database-url", url.as_str()];
            all.extend_from_slice(args);
            let out = run(&pg, &all);
            assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        with_db(&["import", "--org", &org, file.to_str().unwrap()]);
        let from_pg = pg.join("pg.ndjson");
        with_db(&["export", "--org", &org, "--out", from_pg.to_str().unwrap()]);
        let mut expected = exported.clone();
        expected[0]["org"] = json!(org);
        assert_eq!(lines(&from_pg), expected, "PostgreSQL restores the SQLite export exactly");
        let _ = std::fs::remove_dir_all(&pg);
    }
    for d in [a, b, c] {
        let _ = std::fs::remove_dir_all(d);
    }
}
