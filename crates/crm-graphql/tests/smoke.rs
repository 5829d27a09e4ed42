#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod common;
use common::*;
use serde_json::json;

#[tokio::test]
async fn create_and_list() {
    for b in backends().await {
        let a = org();
        let admin = gql(&b, principal(&a, "admin-a", &["admin"]));
        let d = admin.ok(r#"mutation { createAccount(data: {name: "Acme", contacts: {create: [{firstName: "Ann", lastName: "Lee"}, {firstName: "Bob", lastName: "Ray"}]}}) { id name contacts(orderBy: lastName_DESC) { lastName } } }"#, no_vars()).await;
        println!("{d:#}");
        let d = admin.ok(r"{ accountsConnection { edges { cursor node { name c: contactsConnection(first: 1) { edges { node { firstName } } pageInfo { hasNextPage } aggregate { count } } } } pageInfo { hasNextPage pageSize } aggregate { count } } }", no_vars()).await;
        println!("{d:#}");
        let id = d["accountsConnection"]["edges"][0]["node"]["name"].clone();
        let _ = id;
        let d = admin.ok(r"{ contactsGroupBy(by: [account]) { key { account } count } }", no_vars()).await;
        println!("{d:#}");
        let r = admin.run(r"{ leads(first: 1000) { id } }", no_vars()).await;
        println!("{r:#}");
        let r = admin.run(r#"{ leads(where: {nme: "x"}) { id } }"#, no_vars()).await;
        println!("{r:#}");
        let b_org = org();
        let other = gql(&b, principal(&b_org, "admin-b", &["admin"]));
        let d = other.ok(r"{ accounts { name } }", no_vars()).await;
        assert_eq!(d, json!({"accounts": []}));
    }
}
