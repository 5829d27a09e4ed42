//! Soft delete: deleting moves a record to the trash (gone from every read, relation and count),
//! `restore<Model>` brings it back, `destroy<Model>` removes it for good (admins), and the audit
//! log says who did what — per tenant, per role, on both backends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod common;

use common::*;
use serde_json::{Value as Json, json};

fn names(d: &Json, key: &str) -> Vec<String> {
    let mut v: Vec<String> = d[key].as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap_or_default().to_owned()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn delete_restore_destroy_and_audit() {
    for b in backends().await {
        let c = cast(&b, "sales");
        let acc = create(&c.admin, "Account", json!({"name": "Acme", "contacts": {"create": [{"lastName": "Lee"}]}})).await;
        let l1 = create(&c.admin, "Lead", json!({"name": "One"})).await;
        let l2 = create(&c.admin, "Lead", json!({"name": "Two"})).await;
        let v = json!({"id": l1});

        // Delete: gone from lists, lookups, node, counts; present in the trash.
        c.admin.ok("mutation($id: ID!) { deleteLead(where: {id: $id}) { name } }", v.clone()).await;
        for g in [&c.admin, &c.restricted] {
            let d = g.ok("{ leads { name } leadsConnection { aggregate { count } } }", no_vars()).await;
            assert_eq!(names(&d, "leads"), ["Two"], "[{}]", b.name);
            assert_eq!(d["leadsConnection"]["aggregate"]["count"], 1);
            let d = g.ok("query($id: ID!) { lead(where: {id: $id}) { name } node(id: $id) { id } }", v.clone()).await;
            assert_eq!((d["lead"].clone(), d["node"].clone()), (Json::Null, Json::Null), "[{}]", b.name);
        }
        let d = c.admin.ok("{ leadsTrash { name deletedAt updatedBy } }", no_vars()).await;
        assert_eq!(names(&d, "leadsTrash"), ["One"], "[{}]", b.name);
        assert!(d["leadsTrash"][0]["deletedAt"].is_string());
        assert_eq!(d["leadsTrash"][0]["updatedBy"], "admin-a");
        // Deleting it again finds nothing; other tenants see no trash and cannot restore it.
        assert_eq!(c.admin.code("mutation($id: ID!) { deleteLead(where: {id: $id}) { name } }", v.clone()).await, "NOT_FOUND");
        assert_eq!(c.other.ok("{ leadsTrash { name } }", no_vars()).await["leadsTrash"], json!([]));
        assert_eq!(c.other.code("mutation($id: ID!) { restoreLead(where: {id: $id}) { name } }", v.clone()).await, "NOT_FOUND");

        // Restore: back everywhere.
        let d = c.admin.ok("mutation($id: ID!) { restoreLead(where: {id: $id}) { name deletedAt } }", v.clone()).await;
        assert_eq!(d["restoreLead"], json!({"name": "One", "deletedAt": null}), "[{}]", b.name);
        assert_eq!(names(&c.admin.ok("{ leads { name } }", no_vars()).await, "leads"), ["One", "Two"]);
        assert_eq!(c.admin.ok("{ leadsTrash { name } }", no_vars()).await["leadsTrash"], json!([]));

        // A trashed account disappears from relations and relation filters, and comes back.
        let va = json!({"id": acc});
        c.admin.ok("mutation($id: ID!) { deleteAccount(where: {id: $id}) { id } }", va.clone()).await;
        let d = c
            .admin
            .ok(
                r#"{ contacts { lastName account { name } } filtered: contacts(where: {account: {name: "Acme"}}) { lastName } }"#,
                no_vars(),
            )
            .await;
        assert_eq!(d["contacts"], json!([{"lastName": "Lee", "account": null}]), "[{}]", b.name);
        assert_eq!(d["filtered"], json!([]));
        c.admin.ok("mutation($id: ID!) { restoreAccount(where: {id: $id}) { id } }", va.clone()).await;
        let d = c.admin.ok("{ contacts { account { name contacts { lastName } } } }", no_vars()).await;
        assert_eq!(d["contacts"][0]["account"], json!({"name": "Acme", "contacts": [{"lastName": "Lee"}]}));

        // Roles: sales may trash (unassigned) leads and see the trash but not destroy; viewers none of it.
        let v2 = json!({"id": l2});
        c.restricted.ok("mutation($id: ID!) { deleteLead(where: {id: $id}) { name } }", v2.clone()).await;
        assert_eq!(names(&c.restricted.ok("{ leadsTrash { name } }", no_vars()).await, "leadsTrash"), ["Two"]);
        assert_eq!(c.restricted.code("mutation($id: ID!) { destroyLead(where: {id: $id}) { name } }", v2.clone()).await, "FORBIDDEN");
        assert_eq!(c.restricted.code("{ auditLog { action } }", no_vars()).await, "FORBIDDEN");
        let viewer = gql(&b, principal(&c.a, "val", &["viewer"]));
        assert_eq!(viewer.code("{ leadsTrash { name } }", no_vars()).await, "FORBIDDEN");
        assert_eq!(viewer.code("mutation($id: ID!) { restoreLead(where: {id: $id}) { name } }", v2.clone()).await, "FORBIDDEN");

        // Destroy: for good, from the trash or not.
        let d = c.admin.ok("mutation($id: ID!) { destroyLead(where: {id: $id}) { name } }", v2.clone()).await;
        assert_eq!(d["destroyLead"]["name"], "Two");
        c.admin.ok("mutation($id: ID!) { destroyLead(where: {id: $id}) { name } }", v.clone()).await;
        let d = c.admin.ok("{ leads { name } leadsTrash { name } }", no_vars()).await;
        assert_eq!((d["leads"].clone(), d["leadsTrash"].clone()), (json!([]), json!([])), "[{}]", b.name);
        assert_eq!(c.admin.code("mutation($id: ID!) { restoreLead(where: {id: $id}) { name } }", v.clone()).await, "NOT_FOUND");

        // The audit log, newest first, with the actors.
        let d = c.admin.ok(r#"{ auditLog(model: "Lead") { action actor recordId at } }"#, no_vars()).await;
        let log: Vec<(String, String, String)> = d["auditLog"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["action"].as_str().unwrap().to_owned(),
                    e["actor"].as_str().unwrap().to_owned(),
                    e["recordId"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let (a, s) = ("admin-a".to_owned(), "alice".to_owned());
        assert_eq!(
            log,
            vec![
                ("destroy".to_owned(), a.clone(), l1.clone()),
                ("destroy".to_owned(), a.clone(), l2.clone()),
                ("delete".to_owned(), s, l2.clone()),
                ("restore".to_owned(), a.clone(), l1.clone()),
                ("delete".to_owned(), a, l1.clone()),
            ],
            "[{}]",
            b.name
        );
        assert_eq!(
            c.admin.ok("{ auditLog { model } }", no_vars()).await["auditLog"].as_array().unwrap().len(),
            7,
            "two account entries too"
        );
        assert_eq!(c.other.ok("{ auditLog { action } }", no_vars()).await["auditLog"], json!([]), "[{}]", b.name);

        // Batch deletes go to the trash too.
        for n in ["B1", "B2"] {
            create(&c.admin, "Lead", json!({"name": n})).await;
        }
        let d = c.admin.ok("mutation { deleteManyLeadsConnection { aggregate { count } } }", no_vars()).await;
        assert_eq!(d["deleteManyLeadsConnection"]["aggregate"]["count"], 2);
        assert_eq!(names(&c.admin.ok("{ leadsTrash { name } }", no_vars()).await, "leadsTrash"), ["B1", "B2"], "[{}]", b.name);
    }
}
