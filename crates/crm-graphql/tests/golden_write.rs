//! Execution golden tests of mutations: create, update, delete, upsert (both branches), the batch
//! mutations, nested relation writes, version conflicts, unique violations, atomicity, role rules
//! and tenant isolation. Each case runs as an admin of tenant A, a restricted user of A and an
//! admin of tenant B, on SQLite and (with `CRM_TEST_DATABASE_URL`) PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod common;
use common::*;
use serde_json::{Value as Json, json};

/// A well-formed id no record has.
const UNKNOWN_ID: &str = "01890a5d-ac96-774b-bcce-b302099a8057";

/// Members Alice (`alice`) and Bob (`bob`) in tenant A, Zed (`zed`) in tenant B; returns Zed's id.
async fn seed_members(c: &Cast<'_>) -> String {
    c.admin
        .ok(
            r#"mutation { a: createMember(data: {name: "Alice", sub: "alice", email: "alice@a.test"}) { id }
                          b: createMember(data: {name: "Bob", sub: "bob", email: "bob@a.test"}) { id } }"#,
            no_vars(),
        )
        .await;
    create(&c.other, "Member", json!({"name": "Zed", "sub": "zed"})).await
}

const LEAD: &str = "query($id: ID!) { lead(where: {id: $id}) { name score version owner { sub } account { name } contact { lastName } } }";

async fn lead(g: &Gql<'_>, id: &str) -> Json {
    g.ok(LEAD, json!({ "id": id })).await["lead"].clone()
}

/// The error of a request, without `locations` (which differ between documents).
async fn error_of(g: &Gql<'_>, q: &str, vars: Json) -> Json {
    let mut e = g.error(q, vars).await;
    e.as_object_mut().unwrap().remove("locations");
    e
}

const UPDATE_LEAD: &str = "mutation($id: ID!, $d: LeadUpdateInput!, $v: Int) { updateLead(where: {id: $id}, data: $d, expectedVersion: $v) { name score version } }";
const DELETE_LEAD: &str = "mutation($id: ID!, $v: Int) { deleteLead(where: {id: $id}, expectedVersion: $v) { name version } }";

#[tokio::test]
async fn create_update_delete() {
    for b in backends().await {
        let c = cast(&b, "viewer");
        // Create: system fields are set.
        let q = r#"mutation { createLead(data: {name: "W1", score: 10, tags: ["a"]}) {
            name score tags status version createdBy updatedBy createdAt updatedAt } }"#;
        let d = c.admin.ok(q, no_vars()).await["createLead"].clone();
        assert_eq!(
            (&d["name"], &d["score"], &d["tags"], &d["status"], &d["version"], &d["createdBy"], &d["updatedBy"]),
            (&json!("W1"), &json!(10), &json!(["a"]), &json!("NEW"), &json!(1), &json!("admin-a"), &json!("admin-a")),
            "[{}]",
            b.name
        );
        assert_eq!(d["createdAt"], d["updatedAt"], "[{}]", b.name);
        let id = c.admin.ok(r#"{ leads(where: {name: "W1"}) { id } }"#, no_vars()).await["leads"][0]["id"].as_str().unwrap().to_owned();

        // Update: absent fields stay, null clears, the version and updatedAt move.
        let q = r#"mutation($id: ID!) { updateLead(where: {id: $id}, data: {name: "W1b", tags: null}) {
            name score tags version createdBy updatedBy createdAt updatedAt } }"#;
        let u = c.admin.ok(q, json!({ "id": id })).await["updateLead"].clone();
        assert_eq!(
            (&u["name"], &u["score"], &u["tags"], &u["version"], &u["createdAt"]),
            (&json!("W1b"), &json!(10), &Json::Null, &json!(2), &d["createdAt"]),
            "[{}]",
            b.name
        );
        assert!(u["updatedAt"].as_str().unwrap() >= d["updatedAt"].as_str().unwrap(), "[{}]", b.name);

        // The viewer reads but writes nothing; tenant B does not see the record at all.
        assert_eq!(lead(&c.restricted, &id).await["name"], "W1b", "[{}]", b.name);
        assert_eq!(lead(&c.other, &id).await, Json::Null, "[{}]", b.name);
        for (q, vars) in [
            (r#"mutation { createLead(data: {name: "V"}) { id } }"#, no_vars()),
            (UPDATE_LEAD, json!({"id": id, "d": {"name": "V"}})),
            (DELETE_LEAD, json!({ "id": id })),
            (
                r#"mutation($id: ID!) { upsertLead(where: {id: $id}, upsert: {create: {name: "V"}, update: {name: "V"}}) { id } }"#,
                json!({ "id": id }),
            ),
            (r#"mutation { updateManyLeadsConnection(data: {name: "V"}) { edges { node { id } } } }"#, no_vars()),
            (r"mutation { deleteManyLeadsConnection { edges { node { id } } } }", no_vars()),
        ] {
            assert_eq!(c.restricted.code(q, vars).await, "FORBIDDEN", "[{}] {q}", b.name);
        }
        // Another tenant's record is indistinguishable from a missing one.
        for (q, vars) in [(UPDATE_LEAD, json!({"id": id, "d": {"name": "B"}})), (DELETE_LEAD, json!({ "id": id }))] {
            let foreign = error_of(&c.other, q, vars.clone()).await;
            let mut unknown_vars = vars;
            unknown_vars["id"] = json!(UNKNOWN_ID);
            assert_eq!(foreign["extensions"]["code"], "NOT_FOUND", "[{}] {foreign}", b.name);
            assert_eq!(foreign, error_of(&c.other, q, unknown_vars).await, "[{}]", b.name);
        }
        let d = c.other.ok(r#"mutation { updateManyLeadsConnection(data: {name: "B"}) { edges { node { id } } } }"#, no_vars()).await;
        assert_eq!(d, json!({"updateManyLeadsConnection": {"edges": []}}), "[{}]", b.name);
        let after = lead(&c.admin, &id).await;
        assert_eq!((&after["name"], &after["version"]), (&json!("W1b"), &json!(2)), "[{}]", b.name);

        // Delete returns the record as it was; afterwards it is gone.
        let d = c.admin.ok(DELETE_LEAD, json!({ "id": id })).await;
        assert_eq!(d, json!({"deleteLead": {"name": "W1b", "version": 2}}), "[{}]", b.name);
        for g in [&c.admin, &c.restricted, &c.other] {
            assert_eq!(lead(g, &id).await, Json::Null, "[{}]", b.name);
        }
        assert_eq!(c.admin.code(DELETE_LEAD, json!({ "id": id })).await, "NOT_FOUND", "[{}]", b.name);
        assert_eq!(c.admin.code(UPDATE_LEAD, json!({"id": id, "d": {"name": "x"}})).await, "NOT_FOUND", "[{}]", b.name);
    }
}

#[tokio::test]
async fn sales_write_their_own_and_unassigned_records() {
    for b in backends().await {
        let c = cast(&b, "sales");
        seed_members(&c).await;
        let mine = create(&c.admin, "Lead", json!({"name": "Mine", "owner": {"connect": {"sub": "alice"}}})).await;
        let bobs = create(&c.admin, "Lead", json!({"name": "Bobs", "score": 1, "owner": {"connect": {"sub": "bob"}}})).await;
        let free = create(&c.admin, "Lead", json!({"name": "Free"})).await;
        let s = &c.restricted;

        // Someone else's record: readable, not writable.
        assert_eq!(lead(s, &bobs).await["name"], "Bobs", "[{}]", b.name);
        for (q, vars) in [(UPDATE_LEAD, json!({"id": bobs, "d": {"score": 2}})), (DELETE_LEAD, json!({ "id": bobs }))] {
            assert_eq!(s.code(q, vars).await, "FORBIDDEN", "[{}] {q}", b.name);
        }
        let q = r#"mutation($id: ID!) { upsertLead(where: {id: $id}, upsert: {create: {name: "U"}, update: {score: 3}}) { id } }"#;
        assert_eq!(s.code(q, json!({ "id": bobs })).await, "FORBIDDEN", "[{}]", b.name);
        let after = lead(&c.admin, &bobs).await;
        assert_eq!((&after["score"], &after["version"]), (&json!(1), &json!(1)), "[{}]", b.name);

        // Own and unassigned records: writable.
        let d = s.ok(UPDATE_LEAD, json!({"id": mine, "d": {"score": 5}})).await;
        assert_eq!(d["updateLead"]["score"], 5, "[{}]", b.name);
        let d = s.ok(UPDATE_LEAD, json!({"id": free, "d": {"score": 6}})).await;
        assert_eq!(d["updateLead"]["score"], 6, "[{}]", b.name);
        assert_eq!(lead(&c.admin, &free).await["owner"], Json::Null, "[{}]", b.name);
        // ... but not so that they end up outside what the user may write (handing over to Bob),
        // and such a failure writes nothing.
        let r = s.code(UPDATE_LEAD, json!({"id": mine, "d": {"name": "Given away", "owner": {"connect": {"sub": "bob"}}}})).await;
        assert_eq!(r, "FORBIDDEN", "[{}]", b.name);
        let after = lead(&c.admin, &mine).await;
        assert_eq!(
            (&after["name"], &after["owner"], &after["version"]),
            (&json!("Mine"), &json!({"sub": "alice"}), &json!(2)),
            "[{}]",
            b.name
        );
        // Taking an unassigned record is fine.
        let q = r#"mutation($id: ID!) { updateLead(where: {id: $id}, data: {owner: {connect: {sub: "alice"}}}) { owner { sub } } }"#;
        assert_eq!(s.ok(q, json!({ "id": free })).await, json!({"updateLead": {"owner": {"sub": "alice"}}}), "[{}]", b.name);

        // Creating: own or unassigned only; members are read-only for sales.
        let q = "mutation($d: LeadCreateInput!) { createLead(data: $d) { name owner { sub } } }";
        let d = s.ok(q, json!({"d": {"name": "New mine", "owner": {"connect": {"sub": "alice"}}}})).await;
        assert_eq!(d, json!({"createLead": {"name": "New mine", "owner": {"sub": "alice"}}}), "[{}]", b.name);
        let d = s.ok(q, json!({"d": {"name": "New free"}})).await;
        assert_eq!(d, json!({"createLead": {"name": "New free", "owner": null}}), "[{}]", b.name);
        assert_eq!(s.code(q, json!({"d": {"name": "For Bob", "owner": {"connect": {"sub": "bob"}}}})).await, "FORBIDDEN", "[{}]", b.name);
        assert_eq!(s.code(r#"mutation { createMember(data: {name: "Eve"}) { id } }"#, no_vars()).await, "FORBIDDEN", "[{}]", b.name);
        let names = c.admin.ok(r#"{ leads(where: {name_in: ["For Bob", "Eve"]}) { name } } "#, no_vars()).await;
        assert_eq!(names, json!({"leads": []}), "[{}]", b.name);
        assert_eq!(c.admin.ok(r#"{ members(where: {name: "Eve"}) { name } }"#, no_vars()).await, json!({"members": []}));

        // Batch updates touch only the records the user may write.
        let q = r#"mutation { updateManyLeadsConnection(where: {name_not: "nothing"}, data: {company: "Touched"}) { edges { node { name } } } }"#;
        let d = s.ok(q, no_vars()).await;
        let mut touched: Vec<String> = d["updateManyLeadsConnection"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["name"].as_str().unwrap().to_owned())
            .collect();
        touched.sort();
        assert_eq!(touched, ["Free", "Mine", "New free", "New mine"], "[{}]", b.name);
        let d = c.admin.ok(r#"{ leads(where: {company: "Touched"}) { name } }"#, no_vars()).await;
        assert_eq!(sorted(&d["leads"], "name"), ["Free", "Mine", "New free", "New mine"], "[{}]", b.name);

        // Tenant B cannot touch any of them.
        for id in [&mine, &bobs, &free] {
            assert_eq!(c.other.code(UPDATE_LEAD, json!({"id": id, "d": {"score": 9}})).await, "NOT_FOUND", "[{}]", b.name);
        }
    }
}

#[tokio::test]
async fn upsert_updates_or_creates() {
    for b in backends().await {
        let c = cast(&b, "viewer");
        seed_members(&c).await;
        // By a unique field: missing -> create (the where value is written), existing -> update.
        let q = r#"mutation($sub: String!, $name: String!) { upsertMember(where: {sub: $sub},
            upsert: {create: {name: $name}, update: {name: "Carol (updated)"}}) { id name sub version } }"#;
        let first = c.admin.ok(q, json!({"sub": "carol", "name": "Carol"})).await["upsertMember"].clone();
        assert_eq!((&first["name"], &first["sub"], &first["version"]), (&json!("Carol"), &json!("carol"), &json!(1)), "[{}]", b.name);
        let second = c.admin.ok(q, json!({"sub": "carol", "name": "Carol"})).await["upsertMember"].clone();
        assert_eq!(
            (&second["name"], &second["version"], &second["id"]),
            (&json!("Carol (updated)"), &json!(2), &first["id"]),
            "[{}]",
            b.name
        );
        // Tenant B has no `carol`: it gets its own.
        let other = c.other.ok(q, json!({"sub": "carol", "name": "Carol B"})).await["upsertMember"].clone();
        assert_eq!((&other["name"], &other["version"]), (&json!("Carol B"), &json!(1)), "[{}]", b.name);
        assert_ne!(other["id"], first["id"], "[{}]", b.name);
        assert_eq!(c.restricted.code(q, json!({"sub": "carol", "name": "x"})).await, "FORBIDDEN", "[{}]", b.name);
        assert_eq!(c.restricted.code(q, json!({"sub": "dave", "name": "x"})).await, "FORBIDDEN", "[{}]", b.name);
        let d = c.admin.ok(r#"{ members(where: {sub_in: ["carol", "dave"]}) { name version } }"#, no_vars()).await;
        assert_eq!(d, json!({"members": [{"name": "Carol (updated)", "version": 2}]}), "[{}]", b.name);

        // By id.
        let q = r#"mutation($id: ID!) { upsertLead(where: {id: $id}, upsert: {create: {name: "Created", score: 1}, update: {score: 2}}) {
            id name score version } }"#;
        let created = c.admin.ok(q, json!({ "id": UNKNOWN_ID })).await["upsertLead"].clone();
        assert_eq!((&created["name"], &created["score"], &created["version"]), (&json!("Created"), &json!(1), &json!(1)), "[{}]", b.name);
        let id = created["id"].as_str().unwrap().to_owned();
        let updated = c.admin.ok(q, json!({ "id": id })).await["upsertLead"].clone();
        assert_eq!(updated, json!({"id": id, "name": "Created", "score": 2, "version": 2}), "[{}]", b.name);
        // Tenant B naming A's id does not reach A's record: for B it does not exist.
        let b_res = c.other.ok(q, json!({ "id": id })).await["upsertLead"].clone();
        assert_eq!((&b_res["name"], &b_res["score"], &b_res["version"]), (&json!("Created"), &json!(1), &json!(1)), "[{}]", b.name);
        assert_ne!(b_res["id"], json!(id), "[{}]", b.name);
        assert_eq!(lead(&c.admin, &id).await["score"], 2, "[{}]", b.name);
        assert_eq!(c.restricted.code(q, json!({ "id": id })).await, "FORBIDDEN", "[{}]", b.name);
        let d = c.admin.ok(r"{ leadsConnection { aggregate { count } } }", no_vars()).await;
        assert_eq!(d["leadsConnection"]["aggregate"]["count"], 1, "[{}]", b.name);
    }
}

#[tokio::test]
async fn expected_version_conflicts_write_nothing() {
    for b in backends().await {
        let c = cast(&b, "sales");
        seed_members(&c).await;
        let id = create(&c.admin, "Lead", json!({"name": "V", "owner": {"connect": {"sub": "alice"}}})).await;
        let d = c.admin.ok(UPDATE_LEAD, json!({"id": id, "d": {"score": 1}, "v": 1})).await;
        assert_eq!(d, json!({"updateLead": {"name": "V", "score": 1, "version": 2}}), "[{}]", b.name);
        // A stale version: CONFLICT, for the admin and for the owner, and nothing is written.
        for g in [&c.admin, &c.restricted] {
            let e = g.error(UPDATE_LEAD, json!({"id": id, "d": {"score": 99, "name": "stale"}, "v": 1})).await;
            assert_eq!(e["extensions"]["code"], "CONFLICT", "[{}] {e}", b.name);
            let e = g.error(DELETE_LEAD, json!({"id": id, "v": 1})).await;
            assert_eq!(e["extensions"]["code"], "CONFLICT", "[{}] {e}", b.name);
        }
        let now = lead(&c.admin, &id).await;
        assert_eq!((&now["name"], &now["score"], &now["version"]), (&json!("V"), &json!(1), &json!(2)), "[{}]", b.name);
        // For tenant B the record does not exist, whatever the version.
        for v in [1, 2] {
            assert_eq!(c.other.code(UPDATE_LEAD, json!({"id": id, "d": {"score": 7}, "v": v})).await, "NOT_FOUND", "[{}]", b.name);
            assert_eq!(c.other.code(DELETE_LEAD, json!({"id": id, "v": v})).await, "NOT_FOUND", "[{}]", b.name);
        }
        // The right version goes through.
        let d = c.restricted.ok(UPDATE_LEAD, json!({"id": id, "d": {"score": 3}, "v": 2})).await;
        assert_eq!(d, json!({"updateLead": {"name": "V", "score": 3, "version": 3}}), "[{}]", b.name);
        let d = c.restricted.ok(DELETE_LEAD, json!({"id": id, "v": 3})).await;
        assert_eq!(d, json!({"deleteLead": {"name": "V", "version": 3}}), "[{}]", b.name);
        assert_eq!(lead(&c.admin, &id).await, Json::Null, "[{}]", b.name);
    }
}

#[tokio::test]
async fn unique_violations_conflict_within_a_tenant() {
    for b in backends().await {
        let c = cast(&b, "viewer");
        seed_members(&c).await;
        let q = "mutation($d: MemberCreateInput!) { createMember(data: $d) { name } }";
        let e = c.admin.error(q, json!({"d": {"name": "Alice 2", "email": "alice@a.test"}})).await;
        assert_eq!(e["extensions"]["code"], "CONFLICT", "[{}] {e}", b.name);
        assert_eq!(e["extensions"]["field"], "email", "[{}] {e}", b.name);
        let e = c.admin.error(q, json!({"d": {"name": "Alice 3", "sub": "alice"}})).await;
        assert_eq!(e["extensions"]["code"], "CONFLICT", "[{}] {e}", b.name);
        let q_up = r#"mutation { updateMember(where: {sub: "bob"}, data: {email: "alice@a.test"}) { name } }"#;
        assert_eq!(c.admin.code(q_up, no_vars()).await, "CONFLICT", "[{}]", b.name);
        // Nested: the member created inside a lead clashes; neither is written.
        let ql = r#"mutation { createLead(data: {name: "Clash", owner: {create: {name: "Dup", email: "bob@a.test"}}}) { id } }"#;
        assert_eq!(c.admin.code(ql, no_vars()).await, "CONFLICT", "[{}]", b.name);
        let d = c.admin.ok(r"{ members(orderBy: name_ASC) { name email sub } leads { name } }", no_vars()).await;
        let want = json!({"members": [{"name": "Alice", "email": "alice@a.test", "sub": "alice"}, {"name": "Bob", "email": "bob@a.test", "sub": "bob"}],
                          "leads": []});
        assert_eq!(d, want, "[{}]", b.name);
        assert_eq!(c.restricted.ok(r"{ members(orderBy: name_ASC) { name email sub } leads { name } }", no_vars()).await, want);
        // The viewer is refused before uniqueness matters.
        assert_eq!(c.restricted.code(q, json!({"d": {"name": "A", "email": "alice@a.test"}})).await, "FORBIDDEN", "[{}]", b.name);
        // Unique within the tenant only: tenant B may use the same values.
        let d = c.other.ok(q, json!({"d": {"name": "Alice B", "email": "alice@a.test", "sub": "alice"}})).await;
        assert_eq!(d, json!({"createMember": {"name": "Alice B"}}), "[{}]", b.name);
    }
}

#[tokio::test]
async fn update_many_and_delete_many() {
    for b in backends().await {
        let c = cast(&b, "viewer");
        for i in 1..=5 {
            create(&c.admin, "Lead", json!({"name": format!("M{i}"), "score": i})).await;
        }
        for i in 1..=2 {
            create(&c.other, "Lead", json!({"name": format!("M{i}"), "score": i})).await;
        }
        let q = r#"mutation { updateManyLeadsConnection(where: {score_gte: 3}, data: {status: QUALIFIED, company: "Big"}) {
            edges { node { name status company version } } pageInfo { pageSize hasNextPage } } }"#;
        let d = c.admin.ok(q, no_vars()).await;
        let node = |n: &str| json!({"node": {"name": n, "status": "QUALIFIED", "company": "Big", "version": 2}});
        let want = json!({"updateManyLeadsConnection": {"edges": [node("M3"), node("M4"), node("M5")],
                          "pageInfo": {"pageSize": 3, "hasNextPage": false}}});
        assert_eq!(d, want, "[{}]", b.name);
        // `first` limits the batch (in id order).
        let q = r"mutation { updateManyLeadsConnection(where: {status: NEW}, first: 1, data: {score: 0}) {
            edges { node { name score } } pageInfo { hasNextPage } } }";
        let d = c.admin.ok(q, no_vars()).await;
        let want =
            json!({"updateManyLeadsConnection": {"edges": [{"node": {"name": "M1", "score": 0}}], "pageInfo": {"hasNextPage": true}}});
        assert_eq!(d, want, "[{}]", b.name);
        let state = r"{ leads(orderBy: name_ASC) { name score status } }";
        let want = json!({"leads": [
            {"name": "M1", "score": 0, "status": "NEW"}, {"name": "M2", "score": 2, "status": "NEW"},
            {"name": "M3", "score": 3, "status": "QUALIFIED"}, {"name": "M4", "score": 4, "status": "QUALIFIED"},
            {"name": "M5", "score": 5, "status": "QUALIFIED"}]});
        assert_eq!(c.admin.ok(state, no_vars()).await, want, "[{}]", b.name);
        assert_eq!(c.restricted.ok(state, no_vars()).await, want, "[{}]", b.name);
        let want_b = json!({"leads": [{"name": "M1", "score": 1, "status": "NEW"}, {"name": "M2", "score": 2, "status": "NEW"}]});
        assert_eq!(c.other.ok(state, no_vars()).await, want_b, "[{}]", b.name);

        // The viewer may do neither.
        let upd = r"mutation { updateManyLeadsConnection(data: {score: 9}) { edges { node { id } } } }";
        let del = r"mutation { deleteManyLeadsConnection(where: {status: QUALIFIED}) { edges { node { id } } } }";
        assert_eq!(c.restricted.code(upd, no_vars()).await, "FORBIDDEN", "[{}]", b.name);
        assert_eq!(c.restricted.code(del, no_vars()).await, "FORBIDDEN", "[{}]", b.name);

        // Delete many, limited by `first`, returns the records as they were.
        let q = r"mutation { deleteManyLeadsConnection(where: {status: QUALIFIED}, first: 2) { edges { node { name status } } } }";
        let d = c.admin.ok(q, no_vars()).await;
        let want = json!({"deleteManyLeadsConnection": {"edges": [{"node": {"name": "M3", "status": "QUALIFIED"}}, {"node": {"name": "M4", "status": "QUALIFIED"}}]}});
        assert_eq!(d, want, "[{}]", b.name);
        // Tenant B deleting everything deletes its own records only.
        let d = c.other.ok(r"mutation { deleteManyLeadsConnection { edges { node { name } } } }", no_vars()).await;
        assert_eq!(
            d,
            json!({"deleteManyLeadsConnection": {"edges": [{"node": {"name": "M1"}}, {"node": {"name": "M2"}}]}}),
            "[{}]",
            b.name
        );
        let names = json!({"leads": [{"name": "M1"}, {"name": "M2"}, {"name": "M5"}]});
        for g in [&c.admin, &c.restricted] {
            assert_eq!(g.ok(r"{ leads(orderBy: name_ASC) { name } }", no_vars()).await, names, "[{}]", b.name);
        }
        assert_eq!(c.other.ok(r"{ leads { name } }", no_vars()).await, json!({"leads": []}), "[{}]", b.name);
        // Batch page limits apply.
        assert_eq!(
            c.admin.code(r"mutation { deleteManyLeadsConnection(first: 101) { edges { node { id } } } }", no_vars()).await,
            "LIMIT_EXCEEDED"
        );
    }
}

const ACCOUNT: &str = "query($id: ID!) { account(where: {id: $id}) { name version contacts(orderBy: lastName_ASC) { lastName } owner { sub } parent { name } } }";

async fn account(g: &Gql<'_>, id: &str) -> Json {
    g.ok(ACCOUNT, json!({ "id": id })).await["account"].clone()
}

#[tokio::test]
async fn nested_to_one_writes() {
    for b in backends().await {
        let c = cast(&b, "sales");
        let zed = seed_members(&c).await;
        let acme = create(&c.admin, "Account", json!({"name": "Acme"})).await;
        let b_account = create(&c.other, "Account", json!({"name": "B Co"})).await;
        let b_lead = create(&c.other, "Lead", json!({"name": "B lead"})).await;

        // Create with a nested create and a connect by a unique field.
        let q = r#"mutation { createLead(data: {name: "N", account: {create: {name: "NewCo", size: SMALL}}, owner: {connect: {sub: "alice"}},
                              contact: {create: {lastName: "Lee"}}}) { id name account { name size } owner { name } contact { lastName } } }"#;
        let mut d = c.admin.ok(q, no_vars()).await;
        let id = d["createLead"]["id"].as_str().unwrap().to_owned();
        redact(&mut d, &["id"]);
        assert_eq!(
            d,
            json!({"createLead": {"id": "[id]", "name": "N", "account": {"name": "NewCo", "size": "SMALL"}, "owner": {"name": "Alice"},
                                  "contact": {"lastName": "Lee"}}}),
            "[{}]",
            b.name
        );
        // Update: connect, disconnect, create.
        let q = "mutation($id: ID!, $d: LeadUpdateInput!) { updateLead(where: {id: $id}, data: $d) { version account { name } } }";
        let d = c.restricted.ok(q, json!({"id": id, "d": {"account": {"connect": {"id": acme}}}})).await;
        assert_eq!(d, json!({"updateLead": {"version": 2, "account": {"name": "Acme"}}}), "[{}]", b.name);
        let d = c.restricted.ok(q, json!({"id": id, "d": {"account": {"disconnect": true}}})).await;
        assert_eq!(d, json!({"updateLead": {"version": 3, "account": null}}), "[{}]", b.name);
        let d = c.restricted.ok(q, json!({"id": id, "d": {"account": {"create": {"name": "Made by Alice"}}}})).await;
        assert_eq!(d, json!({"updateLead": {"version": 4, "account": {"name": "Made by Alice"}}}), "[{}]", b.name);
        // Connecting another tenant's record fails exactly as an unknown id does, and writes nothing.
        for (g, target) in [(&c.admin, &b_account), (&c.restricted, &b_account)] {
            let foreign = error_of(g, q, json!({"id": id, "d": {"account": {"connect": {"id": target}}}})).await;
            let unknown = error_of(g, q, json!({"id": id, "d": {"account": {"connect": {"id": UNKNOWN_ID}}}})).await;
            assert_eq!(foreign["extensions"]["code"], "NOT_FOUND", "[{}] {foreign}", b.name);
            assert_eq!(foreign, unknown, "[{}]", b.name);
        }
        let foreign = error_of(&c.other, q, json!({"id": b_lead, "d": {"account": {"connect": {"id": acme}}}})).await;
        let unknown = error_of(&c.other, q, json!({"id": b_lead, "d": {"account": {"connect": {"id": UNKNOWN_ID}}}})).await;
        assert_eq!((&foreign["extensions"]["code"], &foreign), (&json!("NOT_FOUND"), &unknown), "[{}]", b.name);
        let q_own = "mutation($id: ID!, $m: ID!) { updateLead(where: {id: $id}, data: {owner: {connect: {id: $m}}}) { id } }";
        assert_eq!(c.admin.code(q_own, json!({"id": id, "m": zed})).await, "NOT_FOUND", "[{}]", b.name);
        let now = lead(&c.admin, &id).await;
        assert_eq!(
            (&now["account"], &now["owner"], &now["version"]),
            (&json!({"name": "Made by Alice"}), &json!({"sub": "alice"}), &json!(4))
        );
        assert_eq!(lead(&c.other, &b_lead).await["account"], Json::Null, "[{}]", b.name);
        // Tenant B cannot change A's lead.
        assert_eq!(c.other.code(q, json!({"id": id, "d": {"account": {"disconnect": true}}})).await, "NOT_FOUND", "[{}]", b.name);
        let d = c.admin.ok(r"{ accounts(orderBy: name_ASC) { name } }", no_vars()).await;
        assert_eq!(strs(&d["accounts"], "name"), ["Acme", "Made by Alice", "NewCo"], "[{}]", b.name);
    }
}

#[tokio::test]
async fn nested_to_many_writes() {
    for b in backends().await {
        let c = cast(&b, "viewer");
        let b_contact = create(&c.other, "Contact", json!({"lastName": "Foreign"})).await;
        let q = r#"mutation { createAccount(data: {name: "Acme", owner: {create: {name: "Olga", sub: "olga"}},
                                                  contacts: {create: [{lastName: "C1"}, {lastName: "C2"}]}}) { id } }"#;
        let id = c.admin.ok(q, no_vars()).await["createAccount"]["id"].as_str().unwrap().to_owned();
        let loose = create(&c.admin, "Contact", json!({"lastName": "C3"})).await;
        let ids: std::collections::HashMap<String, String> = c.admin.ok("{ contacts { id lastName } }", no_vars()).await["contacts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| (x["lastName"].as_str().unwrap().to_owned(), x["id"].as_str().unwrap().to_owned()))
            .collect();
        let acc = account(&c.admin, &id).await;
        assert_eq!(
            acc,
            json!({"name": "Acme", "version": 1, "contacts": [{"lastName": "C1"}, {"lastName": "C2"}], "owner": {"sub": "olga"}, "parent": null})
        );
        assert_eq!(account(&c.restricted, &id).await, acc, "[{}]", b.name);
        assert_eq!(account(&c.other, &id).await, Json::Null, "[{}]", b.name);

        let q = "mutation($id: ID!, $d: AccountUpdateInput!) { updateAccount(where: {id: $id}, data: $d) { contacts(orderBy: lastName_ASC) { lastName } } }";
        let names = |d: &Json| strs(&d["updateAccount"]["contacts"], "lastName");
        let d = c.admin.ok(q, json!({"id": id, "d": {"contacts": {"connect": [{"id": loose}]}}})).await;
        assert_eq!(names(&d), ["C1", "C2", "C3"], "[{}]", b.name);
        let d = c.admin.ok(q, json!({"id": id, "d": {"contacts": {"disconnect": [{"id": ids["C1"]}]}}})).await;
        assert_eq!(names(&d), ["C2", "C3"], "[{}]", b.name);
        let c1 = c.admin.ok("query($id: ID!) { contact(where: {id: $id}) { lastName account { name } } }", json!({"id": ids["C1"]})).await;
        assert_eq!(c1, json!({"contact": {"lastName": "C1", "account": null}}), "[{}]", b.name);
        let d = c.admin.ok(q, json!({"id": id, "d": {"contacts": {"set": [{"id": ids["C1"]}, {"id": ids["C2"]}]}}})).await;
        assert_eq!(names(&d), ["C1", "C2"], "[{}]", b.name);
        let d = c.admin.ok(q, json!({"id": id, "d": {"contacts": {"set": [], "create": [{"lastName": "C4"}]}}})).await;
        assert_eq!(names(&d), ["C4"], "[{}]", b.name);
        // Disconnecting a record that is not connected is NOT_FOUND.
        assert_eq!(c.admin.code(q, json!({"id": id, "d": {"contacts": {"disconnect": [{"id": loose}]}}})).await, "NOT_FOUND");
        // Another tenant's contact cannot be connected (nor set): as unknown, and nothing changes.
        for op in ["connect", "set"] {
            let d = json!({"name": "Renamed", "contacts": {op: [{"id": b_contact}], "create": [{"lastName": "C5"}]}});
            let foreign = error_of(&c.admin, q, json!({"id": id, "d": d})).await;
            let d = json!({"name": "Renamed", "contacts": {op: [{"id": UNKNOWN_ID}], "create": [{"lastName": "C5"}]}});
            let unknown = error_of(&c.admin, q, json!({"id": id, "d": d})).await;
            assert_eq!((&foreign["extensions"]["code"], &foreign), (&json!("NOT_FOUND"), &unknown), "[{}] {op}", b.name);
        }
        let want = json!({"name": "Acme", "version": 5, "contacts": [{"lastName": "C4"}], "owner": {"sub": "olga"}, "parent": null});
        assert_eq!(account(&c.admin, &id).await, want, "[{}]", b.name);
        assert_eq!(c.admin.ok(r#"{ contacts(where: {lastName: "C5"}) { id } }"#, no_vars()).await, json!({"contacts": []}));
        let foreign =
            c.other.ok("query($id: ID!) { contact(where: {id: $id}) { lastName account { id } version } }", json!({"id": b_contact})).await;
        assert_eq!(foreign, json!({"contact": {"lastName": "Foreign", "account": null, "version": 1}}), "[{}]", b.name);
        // The viewer and tenant B are refused.
        assert_eq!(c.restricted.code(q, json!({"id": id, "d": {"contacts": {"set": []}}})).await, "FORBIDDEN", "[{}]", b.name);
        assert_eq!(c.other.code(q, json!({"id": id, "d": {"contacts": {"set": []}}})).await, "NOT_FOUND", "[{}]", b.name);
        assert_eq!(account(&c.admin, &id).await["contacts"], json!([{"lastName": "C4"}]), "[{}]", b.name);
    }
}

/// What each principal sees of accounts, contacts, members and leads, for "nothing was written"
/// checks.
async fn census(g: &Gql<'_>) -> Json {
    let q = r"{ accounts(orderBy: name_ASC, first: 100) { name version } contacts(orderBy: lastName_ASC, first: 100) { lastName version }
                 members(orderBy: name_ASC, first: 100) { name version } leads(first: 100) { name version } }";
    g.ok(q, no_vars()).await
}

#[tokio::test]
async fn failed_mutations_leave_no_trace() {
    for b in backends().await {
        let c = cast(&b, "viewer");
        let zed = seed_members(&c).await;
        let keep = create(&c.admin, "Account", json!({"name": "Keep", "contacts": {"create": [{"lastName": "K1"}]}})).await;
        let b_contact = create(&c.other, "Contact", json!({"lastName": "Foreign"})).await;
        let before = [census(&c.admin).await, census(&c.restricted).await, census(&c.other).await];
        assert_eq!(before[0], before[1], "[{}]", b.name);

        // (document, variables, code for the admin); the viewer gets FORBIDDEN, or the same
        // BAD_USER_INPUT when the input itself is invalid.
        let cases: Vec<(&str, Json, &str)> = vec![
            // The account is inserted, then connecting another tenant's member fails.
            (
                "mutation($m: ID!) { createContact(data: {lastName: \"X\", account: {create: {name: \"Ghost Co\"}}, owner: {connect: {id: $m}}}) { id } }",
                json!({ "m": zed }),
                "NOT_FOUND",
            ),
            // The parent is inserted, then the owner created inside clashes on a unique email.
            (
                r#"mutation { createAccount(data: {name: "Top", parent: {create: {name: "Parent Co"}}, owner: {create: {name: "Dup", email: "bob@a.test"}}}) { id } }"#,
                no_vars(),
                "CONFLICT",
            ),
            // The first nested contact is inserted, the second one's owner does not exist.
            (
                r#"mutation { createAccount(data: {name: "Halfway", contacts: {create: [{lastName: "Ok1"}, {lastName: "Bad", owner: {connect: {sub: "nobody"}}}]}}) { id } }"#,
                no_vars(),
                "NOT_FOUND",
            ),
            // The second nested contact is invalid (a required field empty).
            (
                r#"mutation { createAccount(data: {name: "Halfway 2", contacts: {create: [{lastName: "Ok2"}, {lastName: ""}]}}) { id } }"#,
                no_vars(),
                "BAD_USER_INPUT",
            ),
            // The account is renamed and a contact created, then connecting a foreign contact fails.
            (
                "mutation($id: ID!, $f: ID!) { updateAccount(where: {id: $id}, data: {name: \"Renamed\", contacts: {create: [{lastName: \"New1\"}], connect: [{id: $f}]}}) { id } }",
                json!({"id": keep, "f": b_contact}),
                "NOT_FOUND",
            ),
            // A stale version with nested writes.
            (
                "mutation($id: ID!) { updateAccount(where: {id: $id}, data: {name: \"Renamed\", contacts: {create: [{lastName: \"New2\"}]}}, expectedVersion: 7) { id } }",
                json!({ "id": keep }),
                "CONFLICT",
            ),
            // Deleting with a stale version.
            ("mutation($id: ID!) { deleteAccount(where: {id: $id}, expectedVersion: 3) { id } }", json!({ "id": keep }), "CONFLICT"),
        ];
        for (q, vars, code) in cases {
            assert_eq!(c.admin.code(q, vars.clone()).await, code, "[{}] {q}", b.name);
            // The viewer is refused, and tenant B cannot reach A's records.
            let viewer_code = if code == "BAD_USER_INPUT" { code } else { "FORBIDDEN" };
            assert_eq!(c.restricted.code(q, vars.clone()).await, viewer_code, "[{}] {q}", b.name);
            let after = [census(&c.admin).await, census(&c.restricted).await, census(&c.other).await];
            assert_eq!(after, before, "[{}] after {q}", b.name);
        }
        // Tenant B: connecting A's records fails as unknown and leaves nothing.
        let q = "mutation($k: ID!) { createLead(data: {name: \"B lead\", account: {connect: {id: $k}}}) { id } }";
        assert_eq!(c.other.code(q, json!({ "k": keep })).await, "NOT_FOUND", "[{}]", b.name);
        assert_eq!(census(&c.other).await, before[2], "[{}]", b.name);
        assert_eq!(census(&c.admin).await, before[0], "[{}]", b.name);
    }
}

#[tokio::test]
async fn delete_cascades_and_clears_references() {
    for b in backends().await {
        let c = cast(&b, "sales");
        seed_members(&c).await;
        let q = r#"mutation { createAccount(data: {name: "Gone", opportunities: {create: [{name: "Deal"}]}, contacts: {create: [{lastName: "Stays"}]}}) { id } }"#;
        let id = c.admin.ok(q, no_vars()).await["createAccount"]["id"].as_str().unwrap().to_owned();
        let q = "mutation($id: ID!) { createActivity(data: {kind: NOTE, title: \"About Gone\", subject: {type: \"Account\", id: $id}}) { subject { type id } } }";
        let d = c.admin.ok(q, json!({ "id": id })).await;
        assert_eq!(d, json!({"createActivity": {"subject": {"type": "Account", "id": id}}}), "[{}]", b.name);
        // A polymorphic reference to another tenant's record is refused like an unknown one.
        assert_eq!(c.other.code(q, json!({ "id": id })).await, "NOT_FOUND", "[{}]", b.name);
        assert_eq!(c.other.code("mutation($id: ID!) { deleteAccount(where: {id: $id}) { id } }", json!({ "id": id })).await, "NOT_FOUND");

        // Destroying (not trashing: that keeps references for a restore) cascades and clears.
        let q = "mutation($id: ID!) { destroyAccount(where: {id: $id}) { name contacts { lastName } opportunities { name } } }";
        let d = c.admin.ok(q, json!({ "id": id })).await;
        assert_eq!(
            d,
            json!({"destroyAccount": {"name": "Gone", "contacts": [{"lastName": "Stays"}], "opportunities": [{"name": "Deal"}]}})
        );
        let state = r"{ accounts { name } opportunities { name } contacts { lastName account { name } version } activities { title subject { id } version } }";
        let want = json!({"accounts": [], "opportunities": [], "contacts": [{"lastName": "Stays", "account": null, "version": 2}],
                          "activities": [{"title": "About Gone", "subject": null, "version": 2}]});
        assert_eq!(c.admin.ok(state, no_vars()).await, want, "[{}]", b.name);
        assert_eq!(c.restricted.ok(state, no_vars()).await, want, "[{}]", b.name);
        let empty = json!({"accounts": [], "opportunities": [], "contacts": [], "activities": []});
        assert_eq!(c.other.ok(state, no_vars()).await, empty, "[{}]", b.name);
    }
}

/// A golden response of a create with nested writes, volatile fields redacted.
#[tokio::test]
async fn nested_create_snapshot() {
    for b in backends().await {
        let c = cast(&b, "viewer");
        seed_members(&c).await;
        let q = r#"mutation { createAccount(data: {name: "Northwind", size: MEDIUM, website: "https://nw.example",
            owner: {connect: {sub: "alice"}}, parent: {create: {name: "Northwind Holding"}},
            contacts: {create: [{firstName: "Ann", lastName: "Lee", emails: ["ann@nw.example"], socialHandles: ["x:@ann"],
                                 leads: {create: [{name: "Ann's lead", tags: ["x"], score: 40}]}}]},
            opportunities: {create: [{name: "Big deal", amount: {amount: "1250.50", currency: "EUR"}, expectedCloseDate: "2026-12-31", probability: 60}]}}) {
              id name size website version createdBy owner { name sub } parent { name children { name } }
              contacts { firstName lastName emails socialHandles account { name } leads { name tags score status account { name } } }
              opportunitiesConnection { edges { cursor node { name amount { amount currency } expectedCloseDate probability stage } } aggregate { count sum { amount } } } } }"#;
        let mut d = c.admin.ok(q, no_vars()).await;
        let id = d["createAccount"]["id"].as_str().unwrap().to_owned();
        redact(&mut d, &["id", "cursor"]);
        insta::assert_json_snapshot!("nested_create", d);
        // The same record read back by the three principals.
        let q = r"query($id: ID!) { account(where: {id: $id}) { name owner { sub } parent { name } contacts { lastName leads { name } } opportunities { name } } }";
        let want = json!({"account": {"name": "Northwind", "owner": {"sub": "alice"}, "parent": {"name": "Northwind Holding"},
                          "contacts": [{"lastName": "Lee", "leads": [{"name": "Ann's lead"}]}], "opportunities": [{"name": "Big deal"}]}});
        assert_eq!(c.admin.ok(q, json!({ "id": id })).await, want, "[{}]", b.name);
        assert_eq!(c.restricted.ok(q, json!({ "id": id })).await, want, "[{}]", b.name);
        assert_eq!(c.other.ok(q, json!({ "id": id })).await, json!({"account": null}), "[{}]", b.name);
    }
}

/// The batch mutations return a connection whose `aggregate` is non-null in the schema
/// (`aggregate: LeadAggregate!`), so `aggregate { count }` must resolve.
#[tokio::test]
async fn batch_mutations_resolve_aggregate_count() {
    for b in backends().await {
        let c = cast(&b, "sales");
        for i in 1..=3 {
            create(&c.admin, "Lead", json!({"name": format!("A{i}")})).await;
        }
        create(&c.other, "Lead", json!({"name": "B1"})).await;
        let upd =
            r#"mutation { updateManyLeadsConnection(where: {name_in: ["A1", "A2", "B1"]}, data: {score: 1}) { aggregate { count } } }"#;
        let del = r#"mutation { deleteManyLeadsConnection(where: {name: "A3"}) { aggregate { count } } }"#;
        assert_eq!(
            c.admin.run(upd, no_vars()).await,
            json!({"data": {"updateManyLeadsConnection": {"aggregate": {"count": 2}}}}),
            "[{}]",
            b.name
        );
        assert_eq!(
            c.restricted.run(del, no_vars()).await,
            json!({"data": {"deleteManyLeadsConnection": {"aggregate": {"count": 1}}}}),
            "[{}]",
            b.name
        );
        assert_eq!(
            c.other.run(del, no_vars()).await,
            json!({"data": {"deleteManyLeadsConnection": {"aggregate": {"count": 0}}}}),
            "[{}]",
            b.name
        );
    }
}
