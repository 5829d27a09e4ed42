//! The permission matrix of the default roles (admin, sales, viewer, `parent_admin`) × read /
//! create / update / delete × every standard model, owner rules, and parent/child tenant reads —
//! through the GraphQL API, on both backends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod common;

use common::*;
use serde_json::{Value as Json, json};

/// (model, minimal create data, an update, the owner field if the model has one)
fn models() -> Vec<(&'static str, Json, Json, Option<&'static str>)> {
    vec![
        ("Member", json!({"name": "M"}), json!({"name": "M2"}), None),
        ("Account", json!({"name": "A"}), json!({"name": "A2"}), Some("owner")),
        ("Contact", json!({"lastName": "C"}), json!({"lastName": "C2"}), Some("owner")),
        ("Lead", json!({"name": "L"}), json!({"name": "L2"}), Some("owner")),
        ("Opportunity", json!({"name": "O"}), json!({"name": "O2"}), Some("owner")),
        ("Ticket", json!({"subject": "T"}), json!({"subject": "T2"}), Some("assignee")),
        ("Activity", json!({"kind": "NOTE"}), json!({"title": "N2"}), Some("author")),
        ("SocialEvent", json!({"platform": "x", "kind": "DM", "externalId": "e"}), json!({"thread": "t2"}), None),
    ]
}

fn plural(model: &str) -> String {
    match model {
        "Opportunity" => "opportunities".to_owned(),
        "Activity" => "activities".to_owned(),
        m => format!("{}{}s", m[..1].to_lowercase(), &m[1..]),
    }
}

/// What each default role may do with an unassigned record of each model.
fn expected(role: &str, model: &str, op: &str) -> bool {
    match (role, op) {
        ("admin", _) | (_, "read") => true,
        ("viewer" | "parent_admin", _) => false,
        ("sales", _) => match model {
            "Member" => false,
            "SocialEvent" => op != "delete",
            _ => true,
        },
        _ => unreachable!(),
    }
}

async fn outcome(g: &Gql<'_>, q: &str, vars: Json) -> Result<Json, String> {
    let r = g.run(q, vars).await;
    match r.get("errors").and_then(|e| e.get(0)) {
        Some(e) => Err(e["extensions"]["code"].as_str().unwrap_or("?").to_owned()),
        None => Ok(r["data"].clone()),
    }
}

#[tokio::test]
async fn default_role_matrix_and_owner_rules() {
    for b in backends().await {
        let a = org();
        let admin = gql(&b, principal(&a, "admin-a", &["admin"]));
        let other = gql(&b, principal(&org(), "admin-b", &["admin"]));
        let alice_id = create(&admin, "Member", json!({"name": "Alice", "sub": "alice"})).await;
        let bob_id = create(&admin, "Member", json!({"name": "Bob", "sub": "bob"})).await;
        let mut failures = Vec::new();
        for role in ["admin", "sales", "viewer", "parent_admin"] {
            let g = gql(&b, principal(&a, "alice", &[role]));
            for (model, data, change, owner) in models() {
                let can = |op| expected(role, model, op);
                // read
                let list = outcome(&g, &format!("{{ {} {{ id }} }}", plural(model)), json!({})).await;
                if list.is_err() == can("read") {
                    failures.push(format!("{role} read {model}: {list:?}"));
                }
                // create
                let q = format!("mutation($d: {model}CreateInput!) {{ create{model}(data: $d) {{ id }} }}");
                let mut d = data.clone();
                if model == "SocialEvent" {
                    d["externalId"] = json!(format!("e-{role}"));
                }
                let created = outcome(&g, &q, json!({ "d": d })).await;
                match (&created, can("create")) {
                    (Ok(_), true) | (Err(_), false) => {}
                    _ => failures.push(format!("{role} create {model}: {created:?}")),
                }
                if let Err(c) = &created
                    && c != "FORBIDDEN"
                {
                    failures.push(format!("{role} create {model}: code {c}"));
                }
                // update and delete an unassigned record the admin made
                for op in ["update", "delete"] {
                    let mut d = data.clone();
                    if model == "SocialEvent" {
                        d["externalId"] = json!(format!("e-{role}-{op}"));
                    }
                    let id = create(&admin, model, d).await;
                    let q = if op == "update" {
                        format!("mutation($id: ID!, $d: {model}UpdateInput!) {{ update{model}(where: {{id: $id}}, data: $d) {{ id }} }}")
                    } else {
                        format!("mutation($id: ID!) {{ delete{model}(where: {{id: $id}}) {{ id }} }}")
                    };
                    let res = outcome(&g, &q, json!({"id": id, "d": change})).await;
                    match (&res, can(op)) {
                        (Ok(_), true) => {}
                        (Err(c), false) if c == "FORBIDDEN" => {}
                        _ => failures.push(format!("{role} {op} {model}: {res:?}")),
                    }
                    // Another tenant cannot even find it.
                    let res = outcome(&other, &q, json!({"id": id, "d": change})).await;
                    if res != Err("NOT_FOUND".to_owned()) {
                        failures.push(format!("tenant B {op} {model}: {res:?}"));
                    }
                }
                // Owner rules: sales writes what alice owns, not what bob owns.
                if let (Some(owner), "sales") = (owner, role) {
                    for (owner_id, allowed) in [(&alice_id, true), (&bob_id, false)] {
                        let mut d = data.clone();
                        d[owner] = json!({"connect": {"id": owner_id}});
                        let id = create(&admin, model, d).await;
                        let q = format!(
                            "mutation($id: ID!, $d: {model}UpdateInput!) {{ update{model}(where: {{id: $id}}, data: $d) {{ id }} }}"
                        );
                        let res = outcome(&g, &q, json!({"id": id, "d": change})).await;
                        if res.is_ok() != allowed || (!allowed && res != Err("FORBIDDEN".to_owned())) {
                            failures.push(format!("sales update {model} owned by {owner_id}: {res:?}"));
                        }
                        // Nor may a sales rep give their own record away to bob.
                        if allowed {
                            let mut give = json!({});
                            give[owner] = json!({"connect": {"id": bob_id}});
                            let res = outcome(&g, &q, json!({"id": id, "d": give})).await;
                            if res != Err("FORBIDDEN".to_owned()) {
                                failures.push(format!("sales gives away {model}: {res:?}"));
                            }
                        }
                    }
                }
            }
        }
        assert!(failures.is_empty(), "[{}] {} mismatches:\n{}", b.name, failures.len(), failures.join("\n"));
    }
}

#[tokio::test]
async fn parent_roles_read_descendant_tenants() {
    for b in backends().await {
        let (parent, child, grandchild, sibling) = (org(), org(), org(), org());
        b.store.ensure_tenant(&parent, None).await.unwrap();
        b.store.ensure_tenant(&child, Some(&parent)).await.unwrap();
        b.store.ensure_tenant(&grandchild, Some(&child)).await.unwrap();
        b.store.ensure_tenant(&sibling, None).await.unwrap();
        let mut ids = Vec::new();
        for (o, name) in [(&parent, "P"), (&child, "C"), (&grandchild, "G"), (&sibling, "S")] {
            let admin = gql(&b, principal(o, "admin", &["admin"]));
            ids.push(create(&admin, "Lead", json!({"name": name})).await);
        }
        let names = |d: &Json| {
            let mut v: Vec<String> = d["leads"].as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap().to_owned()).collect();
            v.sort();
            v
        };
        // The parent role reads its tenant and every descendant, not the sibling.
        let head = gql(&b, principal(&parent, "head", &["parent_admin"]));
        let d = head.ok("{ leads { name } }", no_vars()).await;
        assert_eq!(names(&d), ["C", "G", "P"], "[{}]", b.name);
        let d = head.ok("{ leadsConnection { aggregate { count } } }", no_vars()).await;
        assert_eq!(d["leadsConnection"]["aggregate"]["count"], 3, "[{}]", b.name);
        let d = head.ok("query($id: ID!) { node(id: $id) { ... on Lead { name } } }", json!({"id": ids[1]})).await;
        assert_eq!(d["node"]["name"], "C", "[{}]", b.name);
        let d = head.ok("query($id: ID!) { node(id: $id) { id } }", json!({"id": ids[3]})).await;
        assert_eq!(d["node"], Json::Null, "[{}] the sibling stays invisible", b.name);
        // Reading is all it gains: it cannot write into a child tenant.
        let code =
            head.code(r#"mutation($id: ID!) { updateLead(where: {id: $id}, data: {name: "X"}) { id } }"#, json!({"id": ids[1]})).await;
        assert_eq!(code, "FORBIDDEN", "[{}]", b.name);
        // A parent admin with the plain admin role too writes only in its own tenant.
        let both = gql(&b, principal(&parent, "head", &["parent_admin", "admin"]));
        let d = both.ok(r#"mutation($id: ID!) { updateLead(where: {id: $id}, data: {name: "P2"}) { name } }"#, json!({"id": ids[0]})).await;
        assert_eq!(d["updateLead"]["name"], "P2");
        let code =
            both.code(r#"mutation($id: ID!) { updateLead(where: {id: $id}, data: {name: "X"}) { id } }"#, json!({"id": ids[2]})).await;
        assert_eq!(code, "FORBIDDEN", "[{}]", b.name);
        // The child's users see only their own tenant; the parent's plain admin only the parent.
        let d = gql(&b, principal(&child, "c-admin", &["admin"])).ok("{ leads { name } }", no_vars()).await;
        assert_eq!(names(&d), ["C"], "[{}]", b.name);
        let d = gql(&b, principal(&child, "c-head", &["parent_admin"])).ok("{ leads { name } }", no_vars()).await;
        assert_eq!(names(&d), ["C", "G"], "[{}] a parent role in the child reaches down only", b.name);
        let d = gql(&b, principal(&parent, "p-admin", &["admin"])).ok("{ leads { name } }", no_vars()).await;
        assert_eq!(names(&d), ["P2"], "[{}]", b.name);
    }
}

#[tokio::test]
async fn tenant_hierarchy_registration_refuses_cycles() {
    for b in backends().await {
        let (top, mid, low) = (org(), org(), org());
        b.store.register_tenant(&mid, Some(&top)).await.unwrap();
        b.store.register_tenant(&low, Some(&mid)).await.unwrap();
        // Moving the top under its own grandchild, or a tenant under itself, is refused.
        assert!(b.store.register_tenant(&top, Some(&low)).await.is_err(), "[{}]", b.name);
        assert!(b.store.register_tenant(&mid, Some(&mid)).await.is_err(), "[{}]", b.name);
        // A parent role in the top reads the whole chain; after moving `low` to its own root,
        // no longer.
        let admin_low = gql(&b, principal(&low, "a", &["admin"]));
        create(&admin_low, "Lead", json!({"name": "Low"})).await;
        let head = gql(&b, principal(&top, "h", &["parent_admin"]));
        assert_eq!(head.ok("{ leads { name } }", no_vars()).await["leads"], json!([{"name": "Low"}]), "[{}]", b.name);
        let root = org();
        b.store.register_tenant(&low, Some(&root)).await.unwrap();
        assert_eq!(head.ok("{ leads { name } }", no_vars()).await["leads"], json!([]), "[{}]", b.name);
    }
}
