//! Execution golden tests of reads: every filter operator, ordering, pagination (root and
//! nested), aggregates, group-by and `node`. Each case runs as an admin of tenant A, a restricted
//! user of A and an admin of tenant B, on SQLite and (with `CRM_TEST_DATABASE_URL`) PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod common;
use common::*;
use serde_json::{Value as Json, json};

const ACME: &str = "Acme Corp";
const BETA: &str = "Beta GmbH";
const GAMMA: &str = "gamma ltd";
const DELTA: &str = "Delta 100%_x";

/// Lead ids by name.
struct Leads {
    acme: String,
    beta: String,
    gamma: String,
    delta: String,
}

/// Tenant A: members Alice (sub `alice`) and Bob (`bob`, away) and four leads; tenant B: member
/// Zed and a copy of the Acme lead owned by Zed.
async fn seed_leads(c: &Cast<'_>) -> Leads {
    let a = &c.admin;
    a.ok(
        r#"mutation {
            a: createMember(data: {name: "Alice", email: "alice@a.test", sub: "alice", skills: ["de", "fr"], away: false}) { id }
            b: createMember(data: {name: "Bob", sub: "bob", away: true, capacity: 3, skills: ["en"]}) { id }
        }"#,
        no_vars(),
    )
    .await;
    let acme = json!({"name": ACME, "email": "info@acme.com", "company": "Acme", "source": "WEB", "status": "NEW", "score": 10,
                      "tags": ["vip", "hot"], "owner": {"connect": {"sub": "alice"}}});
    let leads = Leads {
        acme: create(a, "Lead", acme.clone()).await,
        beta: create(
            a,
            "Lead",
            json!({"name": BETA, "company": "Beta", "source": "REFERRAL", "status": "QUALIFIED", "score": 50, "tags": ["cold"],
                   "owner": {"connect": {"sub": "bob"}}, "convertedAt": "2026-01-15T10:00:00Z"}),
        )
        .await,
        gamma: create(a, "Lead", json!({"name": GAMMA, "email": "hello@GAMMA.io", "status": "CONTACTED"})).await,
        delta: create(
            a,
            "Lead",
            json!({"name": DELTA, "email": "d@delta.org", "company": "Müller AG", "source": "WEB", "status": "REJECTED", "score": 90,
                   "tags": ["vip"], "convertedAt": "2026-03-01T00:00:00Z"}),
        )
        .await,
    };
    c.other.ok(r#"mutation { createMember(data: {name: "Zed", sub: "zed"}) { id } }"#, no_vars()).await;
    let mut b_acme = acme;
    b_acme["owner"] = json!({"connect": {"sub": "zed"}});
    create(&c.other, "Lead", b_acme).await;
    leads
}

/// Sorted names of the leads `w` matches, or the error.
async fn lead_names(g: &Gql<'_>, w: &Json) -> Result<Vec<String>, Json> {
    let r = g.run("query($w: LeadWhereInput) { leads(where: $w, first: 100) { name } }", json!({ "w": w })).await;
    match r.get("errors") {
        Some(e) => Err(e.clone()),
        None => Ok(sorted(&r["data"]["leads"], "name")),
    }
}

fn names(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

/// Runs filter cases `(where, names tenant A sees, whether tenant B's Acme copy matches)` as the
/// three principals and returns every mismatch.
async fn check_cases(c: &Cast<'_>, backend: &str, cases: &[(Json, Vec<&str>, bool)]) -> Vec<String> {
    let mut failures = Vec::new();
    for (w, want_a, b_matches) in cases {
        let want_a = names(want_a);
        let want_b = if *b_matches { names(&[ACME]) } else { Vec::new() };
        for (who, g, want) in [("admin A", &c.admin, &want_a), ("restricted A", &c.restricted, &want_a), ("tenant B", &c.other, &want_b)] {
            let got = lead_names(g, w).await;
            if got.as_ref() != Ok(want) {
                failures.push(format!("[{backend}] {who}: where {w} -> {got:?}, expected {want:?}"));
            }
        }
    }
    failures
}

#[tokio::test]
async fn scalar_filter_operators() {
    for b in backends().await {
        let c = cast(&b, "viewer");
        let l = seed_leads(&c).await;
        let (a, bb, g, d) = (ACME, BETA, GAMMA, DELTA);
        let cases: Vec<(Json, Vec<&str>, bool)> = vec![
            // String: equality is exact, the rest ignores case.
            (json!({"name": ACME}), vec![a], true),
            (json!({"name": "acme corp"}), vec![], false),
            (json!({"name_not": ACME}), vec![bb, g, d], false),
            (json!({"name_in": [ACME, GAMMA, "nope"]}), vec![a, g], true),
            (json!({"name_not_in": [ACME, GAMMA]}), vec![bb, d], false),
            (json!({"name_contains": "CME c"}), vec![a], true),
            (json!({"name_not_contains": "LTD"}), vec![a, bb, d], true),
            (json!({"name_starts_with": "GAM"}), vec![g], false),
            (json!({"name_not_starts_with": "a"}), vec![bb, g, d], false),
            (json!({"name_ends_with": "GMBH"}), vec![bb], false),
            (json!({"name_not_ends_with": "corp"}), vec![bb, g, d], false),
            // LIKE wildcards in the operand are literal.
            (json!({"name_contains": "%"}), vec![d], false),
            (json!({"name_contains": "_"}), vec![d], false),
            (json!({"name_starts_with": "_"}), vec![], false),
            (json!({"name_ends_with": "0%_X"}), vec![d], false),
            // Null: `f: null` matches null, `f_not: null` non-null; negations include nulls.
            (json!({"email": null}), vec![bb], false),
            (json!({"email_not": null}), vec![a, g, d], true),
            (json!({"email_contains": "gamma.IO"}), vec![g], false),
            (json!({"email_not_contains": "acme"}), vec![bb, g, d], false),
            (json!({"company_ends_with": " ag"}), vec![d], false),
            (json!({"company": null}), vec![g], false),
            // Int.
            (json!({"score": 50}), vec![bb], false),
            (json!({"score_not": 10}), vec![bb, g, d], false),
            (json!({"score_in": [10, 90]}), vec![a, d], true),
            (json!({"score_not_in": [10]}), vec![bb, g, d], false),
            (json!({"score_lt": 50}), vec![a], true),
            (json!({"score_lte": 50}), vec![a, bb], true),
            (json!({"score_gt": 50}), vec![d], false),
            (json!({"score_gte": 50}), vec![bb, d], false),
            (json!({"score": null}), vec![g], false),
            (json!({"version": 1}), vec![a, bb, g, d], true),
            (json!({"version_gt": 1}), vec![], false),
            // DateTime (offsets are normalized to UTC).
            (json!({"convertedAt": "2026-01-15T10:00:00Z"}), vec![bb], false),
            (json!({"convertedAt": "2026-01-15T11:00:00+01:00"}), vec![bb], false),
            (json!({"convertedAt_lt": "2026-02-01T00:00:00Z"}), vec![bb], false),
            (json!({"convertedAt_lte": "2026-01-15T10:00:00Z"}), vec![bb], false),
            (json!({"convertedAt_gt": "2026-01-15T10:00:00Z"}), vec![d], false),
            (json!({"convertedAt_gte": "2026-01-15T10:00:00.000000Z"}), vec![bb, d], false),
            (json!({"convertedAt_in": ["2026-03-01T00:00:00Z"]}), vec![d], false),
            (json!({"convertedAt_not_in": ["2026-03-01T00:00:00Z"]}), vec![a, bb, g], true),
            (json!({"convertedAt_not": "2026-03-01T00:00:00Z"}), vec![a, bb, g], true),
            (json!({"convertedAt": null}), vec![a, g], true),
            (json!({"createdAt_lt": "2000-01-01T00:00:00Z"}), vec![], false),
            (json!({"createdAt_gt": "2000-01-01T00:00:00Z"}), vec![a, bb, g, d], true),
            // Enums.
            (json!({"status": "NEW"}), vec![a], true),
            (json!({"status_not": "NEW"}), vec![bb, g, d], false),
            (json!({"status_in": ["QUALIFIED", "CONTACTED"]}), vec![bb, g], false),
            (json!({"status_not_in": ["NEW", "REJECTED"]}), vec![bb, g], false),
            (json!({"source": null}), vec![g], false),
            (json!({"source_not": "WEB"}), vec![bb, g], false),
            // Tags.
            (json!({"tags_contains_all": ["vip", "hot"]}), vec![a], true),
            (json!({"tags_contains_all": ["vip"]}), vec![a, d], true),
            (json!({"tags_contains_all": ["VIP"]}), vec![], false),
            (json!({"tags_contains_some": ["hot", "cold"]}), vec![a, bb], true),
            (json!({"tags_contains_none": ["vip"]}), vec![bb, g], false),
            // To-one relation.
            (json!({"owner": {"sub": "alice"}}), vec![a], false),
            (json!({"owner": null}), vec![g, d], false),
            (json!({"owner": {"name_starts_with": "b"}}), vec![bb], false),
            (json!({"owner": {"away": true}}), vec![bb], false),
            // Logic.
            (json!({"AND": [{"score_gte": 10}, {"score_lte": 50}]}), vec![a, bb], true),
            (json!({"OR": [{"status": "NEW"}, {"status": "REJECTED"}]}), vec![a, d], true),
            (json!({"NOT": [{"status": "NEW"}]}), vec![bb, g, d], false),
            (json!({"NOT": [{"tags_contains_some": ["vip"]}, {"score_gt": 50}]}), vec![a, bb, g], true),
            (json!({"OR": [{"status": "NEW"}, {"score_gt": 80}], "company_not": null}), vec![a, d], true),
            (json!({"OR": [{"AND": [{"status": "NEW"}, {"score": 10}]}, {"NOT": [{"email_not": null}]}]}), vec![a, bb], true),
            // Search over name, email, company.
            (json!({"_search": "acme"}), vec![a], true),
            (json!({"_search": "GAMMA.IO"}), vec![g], false),
            (json!({"_search": "Müller"}), vec![d], false),
            (json!({"_search": "  "}), vec![a, bb, g, d], true),
            // System fields.
            (json!({"createdBy": "admin-a"}), vec![a, bb, g, d], false),
            (json!({"id": l.acme}), vec![a], false),
            (json!({"id_in": [l.acme, l.beta]}), vec![a, bb], false),
            (json!({"id_not": l.acme}), vec![bb, g, d], true),
            (json!({"id_not_in": [l.gamma, l.delta]}), vec![a, bb], true),
        ];
        let failures = check_cases(&c, b.name, &cases).await;
        assert!(failures.is_empty(), "{} filter mismatches:\n{}", failures.len(), failures.join("\n"));

        // The same filters as literals in the document (enums as enum literals).
        for g in [&c.admin, &c.restricted] {
            let d = g.ok(r"{ leads(where: {status_in: [QUALIFIED, CONTACTED], source_not: REFERRAL}) { name } }", no_vars()).await;
            assert_eq!(strs(&d["leads"], "name"), [GAMMA], "[{}]", b.name);
        }
        let d = c.other.ok(r#"{ leads(where: {status: NEW, tags_contains_some: ["hot"]}) { name owner { sub } } }"#, no_vars()).await;
        assert_eq!(d, json!({"leads": [{"name": ACME, "owner": {"sub": "zed"}}]}), "[{}]", b.name);
    }
}

/// `id` is advertised with the string operators (`id_contains: String`, API.md: ID has `f_contains`,
/// `f_starts_with`, …), so a part of an id is a valid operand.
#[tokio::test]
async fn id_string_operators() {
    let mut failures = Vec::new();
    for b in backends().await {
        let c = cast(&b, "viewer");
        let l = seed_leads(&c).await;
        let tail = l.gamma[l.gamma.len() - 12..].to_owned();
        let cases: Vec<(Json, Vec<&str>, bool)> = vec![
            (json!({"id_starts_with": l.gamma}), vec![GAMMA], false),
            (json!({"id_ends_with": tail}), vec![GAMMA], false),
            (json!({"id_contains": tail.to_uppercase()}), vec![GAMMA], false),
            (json!({"id_not_ends_with": tail}), vec![ACME, BETA, DELTA], true),
        ];
        failures.extend(check_cases(&c, b.name, &cases).await);
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}

/// API.md: `_search` is a case- and accent-insensitive match; the schema says "of every word
/// across" the searchable fields.
#[tokio::test]
async fn search_is_accent_insensitive_and_matches_words_across_fields() {
    for b in backends().await {
        let c = cast(&b, "viewer");
        seed_leads(&c).await;
        let cases: Vec<(Json, Vec<&str>, bool)> = vec![
            // "Müller AG" without the accent, and in capitals.
            (json!({"_search": "muller"}), vec![DELTA], false),
            (json!({"_search": "MÜLLER"}), vec![DELTA], false),
            // Two words, one in the name ("Acme Corp") and one in the email ("info@acme.com").
            (json!({"_search": "corp info"}), vec![ACME], true),
        ];
        let failures = check_cases(&c, b.name, &cases).await;
        assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
    }
}

#[tokio::test]
async fn boolean_and_list_filters_on_members() {
    for b in backends().await {
        let c = cast(&b, "sales");
        seed_leads(&c).await;
        let q = "query($w: MemberWhereInput) { members(where: $w, orderBy: name_ASC) { name } }";
        let cases = [
            (json!({"away": true}), vec!["Bob"], vec![]),
            (json!({"away": false}), vec!["Alice"], vec!["Zed"]),
            (json!({"away_not": true}), vec!["Alice"], vec!["Zed"]),
            (json!({"active": true}), vec!["Alice", "Bob"], vec!["Zed"]),
            (json!({"capacity": null}), vec!["Alice"], vec!["Zed"]),
            (json!({"capacity_gte": 3}), vec!["Bob"], vec![]),
            (json!({"skills_contains_some": ["fr", "en"]}), vec!["Alice", "Bob"], vec![]),
            (json!({"skills_contains_all": ["de", "fr"]}), vec!["Alice"], vec![]),
            (json!({"skills_contains_none": ["de"]}), vec!["Bob"], vec!["Zed"]),
            (json!({"email_ends_with": "@A.TEST"}), vec!["Alice"], vec![]),
        ];
        for (w, want_a, want_b) in cases {
            for g in [&c.admin, &c.restricted] {
                let d = g.ok(q, json!({ "w": w })).await;
                assert_eq!(strs(&d["members"], "name"), want_a, "[{}] {w}", b.name);
            }
            let d = c.other.ok(q, json!({ "w": w })).await;
            assert_eq!(strs(&d["members"], "name"), want_b, "[{}] tenant B {w}", b.name);
        }
    }
}

#[tokio::test]
async fn relation_filters() {
    for b in backends().await {
        let c = cast(&b, "sales");
        // Tenant A: Northwind (contacts Ann Lee with a NEW lead, Bob Ray) is the parent of Contoso
        // (contact Cid Kay); Empty has no contacts. Tenant B: Northwind with contact Ann Lee.
        let d = c
            .admin
            .ok(
                r#"mutation {
                    n: createAccount(data: {name: "Northwind", contacts: {create: [
                        {firstName: "Ann", lastName: "Lee", leads: {create: [{name: "Lead of Ann", status: NEW}]}},
                        {firstName: "Bob", lastName: "Ray"}]}}) { id }
                    e: createAccount(data: {name: "Empty"}) { id }
                }"#,
                no_vars(),
            )
            .await;
        let nid = d["n"]["id"].clone();
        c.admin
            .ok(
                r#"mutation($n: ID!) { createAccount(data: {name: "Contoso", parent: {connect: {id: $n}},
                                                       contacts: {create: [{firstName: "Cid", lastName: "Kay"}]}}) { id } }"#,
                json!({ "n": nid }),
            )
            .await;
        c.other
            .ok(
                r#"mutation { createAccount(data: {name: "Northwind", contacts: {create: [{firstName: "Ann", lastName: "Lee"}]}}) { id } }"#,
                no_vars(),
            )
            .await;
        let q = "query($w: AccountWhereInput) { accounts(where: $w, orderBy: name_ASC) { name } }";
        let cases = [
            (json!({"contacts_some": {"firstName": "Ann"}}), vec!["Northwind"], vec!["Northwind"]),
            (json!({"contacts_every": {"lastName_in": ["Lee", "Ray"]}}), vec!["Empty", "Northwind"], vec!["Northwind"]),
            (json!({"contacts_every": {"firstName": "Ann"}}), vec!["Empty"], vec!["Northwind"]),
            (json!({"contacts_none": {"firstName": "Ann"}}), vec!["Contoso", "Empty"], vec![]),
            (json!({"contacts_some": {}}), vec!["Contoso", "Northwind"], vec!["Northwind"]),
            (json!({"contacts_none": {}}), vec!["Empty"], vec![]),
            (json!({"contacts_some": {"leads_some": {"status": "NEW"}}}), vec!["Northwind"], vec![]),
            (json!({"contacts_some": {"firstName": "Ann"}, "contacts_none": {"lastName": "Ray"}}), vec![], vec!["Northwind"]),
            (json!({"children_some": {"name": "Contoso"}}), vec!["Northwind"], vec![]),
            (json!({"parent": {"name": "Northwind"}}), vec!["Contoso"], vec![]),
            (json!({"parent": null}), vec!["Empty", "Northwind"], vec!["Northwind"]),
            (json!({"parent": {"contacts_some": {"lastName": "Ray"}}}), vec!["Contoso"], vec![]),
            (json!({"OR": [{"parent": {"name": "Northwind"}}, {"contacts_none": {}}]}), vec!["Contoso", "Empty"], vec![]),
        ];
        for (w, want_a, want_b) in cases {
            for g in [&c.admin, &c.restricted] {
                let d = g.ok(q, json!({ "w": w })).await;
                assert_eq!(strs(&d["accounts"], "name"), want_a, "[{}] {w}", b.name);
            }
            let d = c.other.ok(q, json!({ "w": w })).await;
            assert_eq!(strs(&d["accounts"], "name"), want_b, "[{}] tenant B {w}", b.name);
        }
        // From the other side: contacts by their account.
        let q = r#"{ contacts(where: {account: {name: "Northwind"}}, orderBy: lastName_ASC) { lastName account { name } } }"#;
        let want = json!({"contacts": [{"lastName": "Lee", "account": {"name": "Northwind"}}, {"lastName": "Ray", "account": {"name": "Northwind"}}]});
        assert_eq!(c.admin.ok(q, no_vars()).await, want, "[{}]", b.name);
        assert_eq!(c.restricted.ok(q, no_vars()).await, want, "[{}]", b.name);
        let want_b = json!({"contacts": [{"lastName": "Lee", "account": {"name": "Northwind"}}]});
        assert_eq!(c.other.ok(q, no_vars()).await, want_b, "[{}]", b.name);
    }
}

/// Contacts (firstName, lastName) created in this order: (Ann, Lee), (Zoe, Lee), (Bob, Ray),
/// (null, Ames), (Cid, Lee). Tenant B: (Yan, Lee), (Xia, Lee).
async fn seed_contacts(c: &Cast<'_>) -> Vec<String> {
    let mut ids = Vec::new();
    for (f, l) in [(Some("Ann"), "Lee"), (Some("Zoe"), "Lee"), (Some("Bob"), "Ray"), (None, "Ames"), (Some("Cid"), "Lee")] {
        ids.push(create(&c.admin, "Contact", json!({"firstName": f, "lastName": l})).await);
    }
    for f in ["Yan", "Xia"] {
        create(&c.other, "Contact", json!({"firstName": f, "lastName": "Lee"})).await;
    }
    ids
}

fn full_names(list: &Json) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|o| format!("{} {}", o["firstName"].as_str().unwrap_or("-"), o["lastName"].as_str().unwrap_or("-")))
        .collect()
}

#[tokio::test]
async fn ordering() {
    for b in backends().await {
        let c = cast(&b, "viewer");
        seed_contacts(&c).await;
        let q = "query($o: [ContactOrderByInput!]) { contacts(orderBy: $o) { firstName lastName } }";
        let cases = [
            // No orderBy: by id, that is creation order.
            (json!(null), vec!["Ann Lee", "Zoe Lee", "Bob Ray", "- Ames", "Cid Lee"], vec!["Yan Lee", "Xia Lee"]),
            (
                json!(["lastName_ASC", "firstName_DESC"]),
                vec!["- Ames", "Zoe Lee", "Cid Lee", "Ann Lee", "Bob Ray"],
                vec!["Yan Lee", "Xia Lee"],
            ),
            (
                json!(["lastName_DESC", "firstName_ASC"]),
                vec!["Bob Ray", "Ann Lee", "Cid Lee", "Zoe Lee", "- Ames"],
                vec!["Xia Lee", "Yan Lee"],
            ),
            // Nulls last ascending (and first descending, the mirror image).
            (json!(["firstName_ASC"]), vec!["Ann Lee", "Bob Ray", "Cid Lee", "Zoe Lee", "- Ames"], vec!["Xia Lee", "Yan Lee"]),
            (json!(["firstName_DESC"]), vec!["- Ames", "Zoe Lee", "Cid Lee", "Bob Ray", "Ann Lee"], vec!["Yan Lee", "Xia Lee"]),
            // Ties are broken by id in the direction of the last key (newest first here).
            (json!(["lastName_DESC"]), vec!["Bob Ray", "Cid Lee", "Zoe Lee", "Ann Lee", "- Ames"], vec!["Xia Lee", "Yan Lee"]),
            // A single value in a variable is coerced to a list.
            (json!("lastName_ASC"), vec!["- Ames", "Ann Lee", "Zoe Lee", "Cid Lee", "Bob Ray"], vec!["Yan Lee", "Xia Lee"]),
        ];
        for (o, want_a, want_b) in cases {
            for g in [&c.admin, &c.restricted] {
                let d = g.ok(q, json!({ "o": o })).await;
                assert_eq!(full_names(&d["contacts"]), want_a, "[{}] orderBy {o}", b.name);
            }
            let d = c.other.ok(q, json!({ "o": o })).await;
            assert_eq!(full_names(&d["contacts"]), want_b, "[{}] tenant B orderBy {o}", b.name);
        }
        // A single enum literal is coerced to a list; also on connections and nested lists.
        for (g, want) in
            [(&c.admin, vec!["Bob Ray", "Cid Lee"]), (&c.restricted, vec!["Bob Ray", "Cid Lee"]), (&c.other, vec!["Xia Lee", "Yan Lee"])]
        {
            let d = g.ok("{ contacts(orderBy: lastName_DESC, first: 2) { firstName lastName } }", no_vars()).await;
            assert_eq!(full_names(&d["contacts"]), want, "[{}]", b.name);
            let d =
                g.ok("{ contactsConnection(orderBy: lastName_DESC, first: 2) { edges { node { firstName lastName } } } }", no_vars()).await;
            let nodes: Vec<Json> = d["contactsConnection"]["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).collect();
            assert_eq!(full_names(&Json::Array(nodes)), want, "[{}]", b.name);
        }
        // Scores 10, 50, 90 and null: nulls last ascending.
        seed_leads(&c).await;
        let d = c.admin.ok("{ leads(orderBy: score_ASC) { score } }", no_vars()).await;
        assert_eq!(d, json!({"leads": [{"score": 10}, {"score": 50}, {"score": 90}, {"score": null}]}), "[{}]", b.name);
        let d = c.restricted.ok("{ leads(orderBy: [convertedAt_DESC, name_ASC]) { name } }", no_vars()).await;
        assert_eq!(strs(&d["leads"], "name"), [ACME, GAMMA, DELTA, BETA], "[{}]", b.name);
        let d = c.other.ok("{ leads(orderBy: score_ASC) { score } }", no_vars()).await;
        assert_eq!(d, json!({"leads": [{"score": 10}]}), "[{}]", b.name);
        // Unknown keys are refused.
        assert_eq!(c.admin.code("{ leads(orderBy: tags_ASC) { id } }", no_vars()).await, "BAD_USER_INPUT");
    }
}

/// One page of a root connection: names, pageInfo (cursors checked against the edges).
async fn page(g: &Gql<'_>, args: &str) -> (Vec<String>, Json) {
    let q = format!(
        "{{ leadsConnection(orderBy: name_ASC, {args}) {{ edges {{ cursor node {{ name }} }} \
           pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor pageSize }} aggregate {{ count }} }} }}"
    );
    let d = g.ok(&q, no_vars()).await;
    let c = &d["leadsConnection"];
    let edges = c["edges"].as_array().unwrap();
    let names: Vec<String> = edges.iter().map(|e| e["node"]["name"].as_str().unwrap().to_owned()).collect();
    let pi = c["pageInfo"].clone();
    assert_eq!(pi["startCursor"], edges.first().map_or(Json::Null, |e| e["cursor"].clone()), "{args}");
    assert_eq!(pi["endCursor"], edges.last().map_or(Json::Null, |e| e["cursor"].clone()), "{args}");
    assert_eq!(pi["pageSize"], json!(edges.len()), "{args}");
    let flags = json!({"next": pi["hasNextPage"], "prev": pi["hasPreviousPage"], "count": c["aggregate"]["count"]});
    (names, json!({"flags": flags, "start": pi["startCursor"], "end": pi["endCursor"]}))
}

fn flags(next: bool, prev: bool, count: i64) -> Json {
    json!({"next": next, "prev": prev, "count": count})
}

#[tokio::test]
async fn root_pagination() {
    for b in backends().await {
        let c = cast(&b, "sales");
        for i in 1..=7 {
            create(&c.admin, "Lead", json!({ "name": format!("L{i}") })).await;
        }
        for i in 1..=2 {
            create(&c.other, "Lead", json!({ "name": format!("L{i}") })).await;
        }
        let v = |x: &[&str]| x.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        for g in [&c.admin, &c.restricted] {
            // Forwards in pages of 3.
            let (n, p1) = page(g, "first: 3").await;
            assert_eq!((n, &p1["flags"]), (v(&["L1", "L2", "L3"]), &flags(true, false, 7)), "[{}]", b.name);
            let (n, p2) = page(g, &format!("first: 3, after: {}", p1["end"])).await;
            assert_eq!((n, &p2["flags"]), (v(&["L4", "L5", "L6"]), &flags(true, true, 7)), "[{}]", b.name);
            let (n, p3) = page(g, &format!("first: 3, after: {}", p2["end"])).await;
            assert_eq!((n, &p3["flags"]), (v(&["L7"]), &flags(false, true, 7)), "[{}]", b.name);
            let (n, p4) = page(g, &format!("first: 3, after: {}", p3["end"])).await;
            assert_eq!((n, &p4["flags"], &p4["start"]), (v(&[]), &flags(false, true, 7), &Json::Null), "[{}]", b.name);
            // Backwards in pages of 3.
            let (n, q1) = page(g, "last: 3").await;
            assert_eq!((n, &q1["flags"]), (v(&["L5", "L6", "L7"]), &flags(false, true, 7)), "[{}]", b.name);
            let (n, q2) = page(g, &format!("last: 3, before: {}", q1["start"])).await;
            assert_eq!((n, &q2["flags"]), (v(&["L2", "L3", "L4"]), &flags(true, true, 7)), "[{}]", b.name);
            let (n, q3) = page(g, &format!("last: 3, before: {}", q2["start"])).await;
            assert_eq!((n, &q3["flags"]), (v(&["L1"]), &flags(true, false, 7)), "[{}]", b.name);
            // `before` alone pages backwards with the default size.
            let (n, _) = page(g, &format!("before: {}", p2["start"])).await;
            assert_eq!(n, v(&["L1", "L2", "L3"]), "[{}]", b.name);
            // skip, in either direction.
            let (n, s) = page(g, "first: 2, skip: 3").await;
            assert_eq!((n, &s["flags"]), (v(&["L4", "L5"]), &flags(true, true, 7)), "[{}]", b.name);
            let (n, _) = page(g, "last: 2, skip: 1").await;
            assert_eq!(n, v(&["L5", "L6"]), "[{}]", b.name);
            let (n, _) = page(g, &format!("first: 2, skip: 1, after: {}", p1["start"])).await;
            assert_eq!(n, v(&["L3", "L4"]), "[{}]", b.name);
            let (n, _) = page(g, "skip: 100").await;
            assert_eq!(n, v(&[]), "[{}]", b.name);
            // The default page is 10; 100 is accepted.
            let (n, f) = page(g, "first: 100").await;
            assert_eq!((n.len(), &f["flags"]), (7, &flags(false, false, 7)), "[{}]", b.name);
        }
        // Tenant B sees its two leads only.
        let (n, p) = page(&c.other, "first: 3").await;
        assert_eq!((n, &p["flags"]), (v(&["L1", "L2"]), &flags(false, false, 2)), "[{}]", b.name);
        let (n, p) = page(&c.other, "last: 1").await;
        assert_eq!((n, &p["flags"]), (v(&["L2"]), &flags(false, true, 2)), "[{}]", b.name);

        // Cursors are keyset positions: rows inserted before and after one do not shift the page.
        let (_, p1) = page(&c.admin, "first: 3").await;
        create(&c.admin, "Lead", json!({"name": "L0"})).await;
        create(&c.admin, "Lead", json!({"name": "L35"})).await;
        let (n, p2) = page(&c.admin, &format!("first: 3, after: {}", p1["end"])).await;
        assert_eq!((n, &p2["flags"]), (v(&["L35", "L4", "L5"]), &flags(true, true, 9)), "[{}]", b.name);

        // Lists page the same way.
        for (g, want) in [(&c.admin, json!(["L6", "L7"])), (&c.restricted, json!(["L6", "L7"])), (&c.other, json!(["L1", "L2"]))] {
            let d = g.ok("{ leads(orderBy: name_ASC, last: 2) { name } }", no_vars()).await;
            assert_eq!(json!(strs(&d["leads"], "name")), want, "[{}]", b.name);
        }

        // Argument errors, for every principal.
        for g in [&c.admin, &c.restricted, &c.other] {
            let cur = p1["end"].as_str().unwrap();
            for (args, code) in [
                (format!("first: 2, before: \"{cur}\""), "BAD_USER_INPUT"),
                (format!("last: 2, after: \"{cur}\""), "BAD_USER_INPUT"),
                ("first: 2, last: 2".to_owned(), "BAD_USER_INPUT"),
                ("first: -1".to_owned(), "BAD_USER_INPUT"),
                ("after: \"not a cursor\"".to_owned(), "BAD_USER_INPUT"),
                ("first: 101".to_owned(), "LIMIT_EXCEEDED"),
                ("last: 101".to_owned(), "LIMIT_EXCEEDED"),
            ] {
                for field in ["leads", "leadsConnection"] {
                    let sel = if field == "leads" { "name" } else { "pageInfo { pageSize }" };
                    let q = format!("{{ {field}(orderBy: name_ASC, {args}) {{ {sel} }} }}");
                    assert_eq!(g.code(&q, no_vars()).await, code, "[{}] {q}", b.name);
                }
            }
            // A cursor of another ordering is refused.
            let q = format!("{{ leads(orderBy: name_DESC, after: \"{cur}\") {{ name }} }}");
            let e = g.error(&q, no_vars()).await;
            assert_eq!(e["extensions"]["code"], "BAD_USER_INPUT", "[{}] {e}", b.name);
            assert_eq!(e["extensions"]["field"], "after", "[{}] {e}", b.name);
        }
    }
}

#[tokio::test]
async fn nested_pagination_and_connections() {
    for b in backends().await {
        let c = cast(&b, "viewer");
        let contacts = |n: usize| (1..=n).map(|i| json!({"lastName": format!("C{i}")})).collect::<Vec<_>>();
        create(&c.admin, "Account", json!({"name": "Five", "contacts": {"create": contacts(5)}})).await;
        create(&c.admin, "Account", json!({"name": "Two", "contacts": {"create": contacts(2)}})).await;
        create(&c.other, "Account", json!({"name": "Five", "contacts": {"create": contacts(1)}})).await;

        let lists = r#"{ accounts(orderBy: name_ASC) { name
            f: contacts(orderBy: lastName_ASC, first: 2) { lastName }
            l: contacts(orderBy: lastName_ASC, last: 2) { lastName }
            s: contacts(orderBy: lastName_ASC, first: 2, skip: 1) { lastName }
            d: contacts(orderBy: lastName_DESC, where: {lastName_not: "C1"}) { lastName }
            contacts { lastName } } }"#;
        let want = json!({"accounts": [
            {"name": "Five", "f": [{"lastName": "C1"}, {"lastName": "C2"}], "l": [{"lastName": "C4"}, {"lastName": "C5"}],
             "s": [{"lastName": "C2"}, {"lastName": "C3"}],
             "d": [{"lastName": "C5"}, {"lastName": "C4"}, {"lastName": "C3"}, {"lastName": "C2"}],
             "contacts": [{"lastName": "C1"}, {"lastName": "C2"}, {"lastName": "C3"}, {"lastName": "C4"}, {"lastName": "C5"}]},
            {"name": "Two", "f": [{"lastName": "C1"}, {"lastName": "C2"}], "l": [{"lastName": "C1"}, {"lastName": "C2"}],
             "s": [{"lastName": "C2"}], "d": [{"lastName": "C2"}], "contacts": [{"lastName": "C1"}, {"lastName": "C2"}]}]});
        assert_eq!(c.admin.ok(lists, no_vars()).await, want, "[{}]", b.name);
        assert_eq!(c.restricted.ok(lists, no_vars()).await, want, "[{}]", b.name);
        let want_b = json!({"accounts": [{"name": "Five", "f": [{"lastName": "C1"}], "l": [{"lastName": "C1"}], "s": [],
                                          "d": [], "contacts": [{"lastName": "C1"}]}]});
        assert_eq!(c.other.ok(lists, no_vars()).await, want_b, "[{}]", b.name);

        // Nested connections: pageInfo and aggregate (count honours `where`, not the page).
        let conn = |args: &str| {
            format!(
                "{{ accounts(where: {{name: \"Five\"}}) {{ c: contactsConnection(orderBy: lastName_ASC, {args}) {{ \
                   edges {{ cursor node {{ lastName }} }} pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor pageSize }} \
                   aggregate {{ count }} }} }} }}"
            )
        };
        let summary = |d: &Json| {
            let c = &d["accounts"][0]["c"];
            let edges = c["edges"].as_array().unwrap();
            assert_eq!(c["pageInfo"]["startCursor"], edges.first().map_or(Json::Null, |e| e["cursor"].clone()));
            assert_eq!(c["pageInfo"]["endCursor"], edges.last().map_or(Json::Null, |e| e["cursor"].clone()));
            json!({
                "names": edges.iter().map(|e| e["node"]["lastName"].clone()).collect::<Vec<_>>(),
                "next": c["pageInfo"]["hasNextPage"], "prev": c["pageInfo"]["hasPreviousPage"],
                "size": c["pageInfo"]["pageSize"], "count": c["aggregate"]["count"],
            })
        };
        for g in [&c.admin, &c.restricted] {
            let d1 = g.ok(&conn("first: 2"), no_vars()).await;
            assert_eq!(summary(&d1), json!({"names": ["C1", "C2"], "next": true, "prev": false, "size": 2, "count": 5}), "[{}]", b.name);
            let end = d1["accounts"][0]["c"]["pageInfo"]["endCursor"].clone();
            let d2 = g.ok(&conn(&format!("first: 2, after: {end}")), no_vars()).await;
            assert_eq!(summary(&d2), json!({"names": ["C3", "C4"], "next": true, "prev": true, "size": 2, "count": 5}), "[{}]", b.name);
            let end = d2["accounts"][0]["c"]["pageInfo"]["endCursor"].clone();
            let d3 = g.ok(&conn(&format!("first: 2, after: {end}")), no_vars()).await;
            assert_eq!(summary(&d3), json!({"names": ["C5"], "next": false, "prev": true, "size": 1, "count": 5}), "[{}]", b.name);
            // Backwards on the nested relation.
            let l1 = g.ok(&conn("last: 2"), no_vars()).await;
            assert_eq!(summary(&l1), json!({"names": ["C4", "C5"], "next": false, "prev": true, "size": 2, "count": 5}), "[{}]", b.name);
            let start = l1["accounts"][0]["c"]["pageInfo"]["startCursor"].clone();
            let l2 = g.ok(&conn(&format!("last: 2, before: {start}")), no_vars()).await;
            assert_eq!(summary(&l2), json!({"names": ["C2", "C3"], "next": true, "prev": true, "size": 2, "count": 5}), "[{}]", b.name);
            let start = l2["accounts"][0]["c"]["pageInfo"]["startCursor"].clone();
            let l3 = g.ok(&conn(&format!("last: 2, before: {start}")), no_vars()).await;
            assert_eq!(summary(&l3), json!({"names": ["C1"], "next": true, "prev": false, "size": 1, "count": 5}), "[{}]", b.name);
            // `where` on the nested connection narrows the count.
            let w = g.ok(&conn("first: 1, where: {lastName_in: [\"C2\", \"C4\"]}"), no_vars()).await;
            assert_eq!(summary(&w), json!({"names": ["C2"], "next": true, "prev": false, "size": 1, "count": 2}), "[{}]", b.name);
        }
        let d = c.other.ok(&conn("last: 2"), no_vars()).await;
        assert_eq!(summary(&d), json!({"names": ["C1"], "next": false, "prev": false, "size": 1, "count": 1}), "[{}]", b.name);

        // Nested page limits and argument errors.
        for g in [&c.admin, &c.restricted, &c.other] {
            assert_eq!(g.code("{ accounts { contacts(first: 101) { lastName } } }", no_vars()).await, "LIMIT_EXCEEDED", "[{}]", b.name);
            assert_eq!(g.code("{ accounts { contactsConnection(last: 101) { aggregate { count } } } }", no_vars()).await, "LIMIT_EXCEEDED");
            let cur = d["accounts"][0]["c"]["pageInfo"]["endCursor"].as_str().unwrap();
            let q = format!(
                "{{ accounts {{ contactsConnection(orderBy: lastName_ASC, first: 1, before: \"{cur}\") {{ pageInfo {{ pageSize }} }} }} }}"
            );
            assert_eq!(g.code(&q, no_vars()).await, "BAD_USER_INPUT", "[{}]", b.name);
        }
    }
}

/// `v` with every number as a float: numeric aggregates are Floats, which PostgreSQL writes
/// without a fraction when whole (`300`) and SQLite with one (`300.0`).
fn floats(v: impl std::borrow::Borrow<Json>) -> Json {
    match v.borrow() {
        Json::Number(n) => json!(n.as_f64().unwrap()),
        Json::Array(a) => Json::Array(a.iter().map(floats).collect()),
        Json::Object(o) => Json::Object(o.iter().map(|(k, x)| (k.clone(), floats(x))).collect()),
        other => other.clone(),
    }
}

#[tokio::test]
async fn aggregates_on_opportunities() {
    for b in backends().await {
        let c = cast(&b, "sales");
        for (name, amount, p, stage) in [
            ("O1", Some("100"), Some(10), "PROSPECTING"),
            ("O2", Some("200.50"), Some(20), "PROPOSAL"),
            ("O3", Some("599.50"), Some(90), "CLOSED_WON"),
            ("O4", None, None, "PROSPECTING"),
            ("O5", Some("5000"), Some(100), "CLOSED_LOST"),
        ] {
            let amount = amount.map(|a| json!({"amount": a, "currency": "EUR"}));
            create(&c.admin, "Opportunity", json!({"name": name, "amount": amount, "probability": p, "stage": stage})).await;
        }
        create(&c.other, "Opportunity", json!({"name": "B1", "amount": {"amount": "7", "currency": "USD"}, "probability": 70})).await;
        let q = r"query($w: OpportunityWhereInput) { opportunitiesConnection(where: $w, first: 1, orderBy: name_ASC) {
            edges { node { name amount { amount currency } } }
            aggregate { count sum { amount probability } avg { amount probability } min { amount probability } max { amount probability } } } }";
        let w = json!({"stage_not": "CLOSED_LOST"});
        let want = json!({"opportunitiesConnection": {
            "edges": [{"node": {"name": "O1", "amount": {"amount": "100", "currency": "EUR"}}}],
            "aggregate": {"count": 4, "sum": {"amount": 900.0, "probability": 120.0}, "avg": {"amount": 300.0, "probability": 40.0},
                          "min": {"amount": 100.0, "probability": 10.0}, "max": {"amount": 599.5, "probability": 90.0}}}});
        assert_eq!(floats(c.admin.ok(q, json!({ "w": w })).await), floats(&want), "[{}]", b.name);
        assert_eq!(floats(c.restricted.ok(q, json!({ "w": w })).await), floats(&want), "[{}]", b.name);
        let want_b = json!({"opportunitiesConnection": {
            "edges": [{"node": {"name": "B1", "amount": {"amount": "7", "currency": "USD"}}}],
            "aggregate": {"count": 1, "sum": {"amount": 7.0, "probability": 70.0}, "avg": {"amount": 7.0, "probability": 70.0},
                          "min": {"amount": 7.0, "probability": 70.0}, "max": {"amount": 7.0, "probability": 70.0}}}});
        assert_eq!(floats(c.other.ok(q, json!({ "w": w })).await), floats(&want_b), "[{}]", b.name);
        // Nothing matches: count 0, numeric aggregates null.
        let none = json!({"name": "nothing"});
        let want = json!({"opportunitiesConnection": {"edges": [], "aggregate": {"count": 0,
            "sum": {"amount": null, "probability": null}, "avg": {"amount": null, "probability": null},
            "min": {"amount": null, "probability": null}, "max": {"amount": null, "probability": null}}}});
        for g in [&c.admin, &c.restricted, &c.other] {
            assert_eq!(floats(g.ok(q, json!({ "w": none })).await), floats(&want), "[{}]", b.name);
        }
        // Decimal filters on the money amount.
        let q = "query($w: OpportunityWhereInput) { opportunities(where: $w, orderBy: name_ASC) { name } }";
        for (w, want) in [
            (json!({"amount_gt": "200"}), vec!["O2", "O3", "O5"]),
            (json!({"amount_gte": "599.5"}), vec!["O3", "O5"]),
            (json!({"amount_lte": 200.5}), vec!["O1", "O2"]),
            (json!({"amount": "200.5"}), vec!["O2"]),
            (json!({"amount": null}), vec!["O4"]),
            (json!({"probability_in": [10, 90]}), vec!["O1", "O3"]),
        ] {
            assert_eq!(strs(&c.admin.ok(q, json!({ "w": w })).await["opportunities"], "name"), want, "[{}] {w}", b.name);
            assert_eq!(strs(&c.restricted.ok(q, json!({ "w": w })).await["opportunities"], "name"), want, "[{}] {w}", b.name);
        }
        assert_eq!(c.other.ok(q, json!({"w": {"amount_gt": "5"}})).await, json!({"opportunities": [{"name": "B1"}]}), "[{}]", b.name);

        // Group-by with numeric aggregates per group, ordered by the keys.
        let q =
            r"{ opportunitiesGroupBy(by: [stage], where: {amount_not: null}) { key { stage } count sum { amount } max { probability } } }";
        let want = json!({"opportunitiesGroupBy": [
            {"key": {"stage": "CLOSED_LOST"}, "count": 1, "sum": {"amount": 5000.0}, "max": {"probability": 100.0}},
            {"key": {"stage": "CLOSED_WON"}, "count": 1, "sum": {"amount": 599.5}, "max": {"probability": 90.0}},
            {"key": {"stage": "PROPOSAL"}, "count": 1, "sum": {"amount": 200.5}, "max": {"probability": 20.0}},
            {"key": {"stage": "PROSPECTING"}, "count": 1, "sum": {"amount": 100.0}, "max": {"probability": 10.0}}]});
        assert_eq!(floats(c.admin.ok(q, no_vars()).await), floats(&want), "[{}]", b.name);
        assert_eq!(floats(c.restricted.ok(q, no_vars()).await), floats(&want), "[{}]", b.name);
        let want_b = json!({"opportunitiesGroupBy": [{"key": {"stage": "PROSPECTING"}, "count": 1, "sum": {"amount": 7.0}, "max": {"probability": 70.0}}]});
        assert_eq!(floats(c.other.ok(q, no_vars()).await), floats(&want_b), "[{}]", b.name);
    }
}

#[tokio::test]
async fn group_by_leads() {
    for b in backends().await {
        let c = cast(&b, "viewer");
        seed_leads(&c).await;
        create(&c.admin, "Lead", json!({"name": "Epsilon", "status": "NEW", "source": "WEB", "score": 30})).await;
        let q = "{ leadsGroupBy(by: [status]) { key { status } count } }";
        let want = json!({"leadsGroupBy": [
            {"key": {"status": "CONTACTED"}, "count": 1}, {"key": {"status": "NEW"}, "count": 2},
            {"key": {"status": "QUALIFIED"}, "count": 1}, {"key": {"status": "REJECTED"}, "count": 1}]});
        assert_eq!(floats(c.admin.ok(q, no_vars()).await), floats(&want), "[{}]", b.name);
        assert_eq!(floats(c.restricted.ok(q, no_vars()).await), floats(&want), "[{}]", b.name);
        assert_eq!(c.other.ok(q, no_vars()).await, json!({"leadsGroupBy": [{"key": {"status": "NEW"}, "count": 1}]}), "[{}]", b.name);

        // Two keys, a filter, numeric aggregates, first/skip over groups; a single value for `by`.
        let q = r"{ leadsGroupBy(by: [source, status], where: {score_not: null}) { key { source status } count avg { score } } }";
        let want = json!({"leadsGroupBy": [
            {"key": {"source": "REFERRAL", "status": "QUALIFIED"}, "count": 1, "avg": {"score": 50.0}},
            {"key": {"source": "WEB", "status": "NEW"}, "count": 2, "avg": {"score": 20.0}},
            {"key": {"source": "WEB", "status": "REJECTED"}, "count": 1, "avg": {"score": 90.0}}]});
        assert_eq!(floats(c.admin.ok(q, no_vars()).await), floats(&want), "[{}]", b.name);
        assert_eq!(floats(c.restricted.ok(q, no_vars()).await), floats(&want), "[{}]", b.name);
        let want_b = json!({"leadsGroupBy": [{"key": {"source": "WEB", "status": "NEW"}, "count": 1, "avg": {"score": 10.0}}]});
        assert_eq!(floats(c.other.ok(q, no_vars()).await), floats(&want_b), "[{}]", b.name);
        let d = c.admin.ok("{ leadsGroupBy(by: status, first: 2, skip: 1) { key { status } count } }", no_vars()).await;
        assert_eq!(d, json!({"leadsGroupBy": [{"key": {"status": "NEW"}, "count": 2}, {"key": {"status": "QUALIFIED"}, "count": 1}]}));
        // By a relation: the key is the related id; records without an owner form the null group.
        let d = c.admin.ok("{ leadsGroupBy(by: [owner]) { key { owner } count } }", no_vars()).await;
        let groups = d["leadsGroupBy"].as_array().unwrap();
        assert_eq!(groups.len(), 3, "[{}] {d}", b.name);
        assert_eq!(groups.iter().map(|g| g["count"].as_i64().unwrap()).sum::<i64>(), 5);
        assert!(groups.iter().any(|g| g["key"]["owner"].is_null() && g["count"] == 3), "[{}] {d}", b.name);
        for g in [&c.admin, &c.restricted, &c.other] {
            assert_eq!(g.code("{ leadsGroupBy(by: [status], first: 101) { count } }", no_vars()).await, "LIMIT_EXCEEDED");
            assert_eq!(g.code("{ leadsGroupBy(by: []) { count } }", no_vars()).await, "BAD_USER_INPUT");
        }
    }
}

#[tokio::test]
async fn node_and_unique_lookups() {
    for b in backends().await {
        let c = cast(&b, "sales");
        let l = seed_leads(&c).await;
        let account = create(&c.admin, "Account", json!({"name": "Northwind", "size": "SMALL"})).await;
        let q =
            "query($id: ID!) { node(id: $id) { __typename id ... on Lead { name status owner { name } } ... on Account { name size } } }";
        for g in [&c.admin, &c.restricted] {
            let d = g.ok(q, json!({ "id": l.acme })).await;
            assert_eq!(
                d,
                json!({"node": {"__typename": "Lead", "id": l.acme, "name": ACME, "status": "NEW", "owner": {"name": "Alice"}}}),
                "[{}]",
                b.name
            );
            let d = g.ok(q, json!({ "id": account })).await;
            assert_eq!(d, json!({"node": {"__typename": "Account", "id": account, "name": "Northwind", "size": "SMALL"}}), "[{}]", b.name);
            // A well-formed id nobody has.
            assert_eq!(g.ok(q, json!({"id": "01890a5d-ac96-774b-bcce-b302099a8057"})).await, json!({"node": null}), "[{}]", b.name);
        }
        // Another tenant's records do not exist for B.
        for id in [&l.acme, &account] {
            assert_eq!(c.other.ok(q, json!({ "id": id })).await, json!({"node": null}), "[{}]", b.name);
        }
        // Malformed ids.
        for g in [&c.admin, &c.restricted, &c.other] {
            for bad in ["not-an-id", "", "123"] {
                let e = g.error(q, json!({ "id": bad })).await;
                assert_eq!(e["extensions"]["code"], "BAD_USER_INPUT", "[{}] {bad:?}: {e}", b.name);
            }
        }

        // Unique lookups: by id and by a unique field; exactly one entry must be given.
        let q = "query($w: LeadWhereUniqueInput!) { lead(where: $w) { name } }";
        for g in [&c.admin, &c.restricted] {
            assert_eq!(g.ok(q, json!({"w": {"id": l.delta}})).await, json!({"lead": {"name": DELTA}}), "[{}]", b.name);
        }
        assert_eq!(c.other.ok(q, json!({"w": {"id": l.delta}})).await, json!({"lead": null}), "[{}]", b.name);
        let q = "query($w: MemberWhereUniqueInput!) { member(where: $w) { name } }";
        for g in [&c.admin, &c.restricted] {
            assert_eq!(g.ok(q, json!({"w": {"sub": "bob"}})).await, json!({"member": {"name": "Bob"}}), "[{}]", b.name);
            assert_eq!(g.ok(q, json!({"w": {"email": "alice@a.test"}})).await, json!({"member": {"name": "Alice"}}), "[{}]", b.name);
            assert_eq!(g.ok(q, json!({"w": {"sub": "zed"}})).await, json!({"member": null}), "[{}]", b.name);
        }
        assert_eq!(c.other.ok(q, json!({"w": {"sub": "bob"}})).await, json!({"member": null}), "[{}]", b.name);
        assert_eq!(c.other.ok(q, json!({"w": {"sub": "zed"}})).await, json!({"member": {"name": "Zed"}}), "[{}]", b.name);
        for g in [&c.admin, &c.restricted, &c.other] {
            assert_eq!(g.code(q, json!({"w": {}})).await, "BAD_USER_INPUT", "[{}]", b.name);
            assert_eq!(g.code(q, json!({"w": {"sub": "bob", "email": "alice@a.test"}})).await, "BAD_USER_INPUT", "[{}]", b.name);
            assert_eq!(g.code("{ lead(where: {id: \"nope\"}) { name } }", no_vars()).await, "BAD_USER_INPUT", "[{}]", b.name);
        }
    }
}

/// A golden response with everything volatile redacted: a lead with its relations and system
/// fields, as the three principals read it.
#[tokio::test]
async fn lead_detail_snapshot() {
    for b in backends().await {
        let c = cast(&b, "viewer");
        let l = seed_leads(&c).await;
        let q = r"query($id: ID!) { lead(where: {id: $id}) {
            id createdAt updatedAt createdBy updatedBy version
            name email phone company source status score tags convertedAt
            owner { id name sub skills capacity away active } contact { id } account { id } } }";
        let mut d = c.admin.ok(q, json!({ "id": l.beta })).await;
        assert_eq!(c.restricted.ok(q, json!({ "id": l.beta })).await, d, "[{}]", b.name);
        assert_eq!(c.other.ok(q, json!({ "id": l.beta })).await, json!({"lead": null}), "[{}]", b.name);
        assert!(d["lead"]["createdAt"].as_str().unwrap().ends_with('Z'), "[{}] {d}", b.name);
        redact(&mut d, &["id", "createdAt", "updatedAt"]);
        insta::assert_json_snapshot!("lead_detail", d);
    }
}

/// Walks a connection forwards (`first`/`after`) and backwards (`last`/`before`) in pages of
/// `size`; `conn` builds the document from the paging arguments and `get` finds the connection in
/// the data. Returns the names in order for both walks.
async fn walk(g: &Gql<'_>, size: usize, conn: &dyn Fn(&str) -> String, get: &dyn Fn(&Json) -> Json) -> (Vec<String>, Vec<String>) {
    let names = |c: &Json| -> Vec<String> {
        c["edges"].as_array().unwrap().iter().map(|e| e["node"]["name"].as_str().unwrap_or("-").to_owned()).collect()
    };
    let mut forward = Vec::new();
    let mut args = format!("first: {size}");
    for _ in 0..20 {
        let c = get(&g.ok(&conn(&args), no_vars()).await);
        forward.extend(names(&c));
        if c["pageInfo"]["hasNextPage"] != json!(true) {
            break;
        }
        args = format!("first: {size}, after: {}", c["pageInfo"]["endCursor"]);
    }
    let mut backward: Vec<String> = Vec::new();
    let mut args = format!("last: {size}");
    for _ in 0..20 {
        let c = get(&g.ok(&conn(&args), no_vars()).await);
        let mut page = names(&c);
        page.extend(backward);
        backward = page;
        if c["pageInfo"]["hasPreviousPage"] != json!(true) {
            break;
        }
        args = format!("last: {size}, before: {}", c["pageInfo"]["startCursor"]);
    }
    (forward, backward)
}

/// Keyset pagination over a nullable key with ties: every walk, in either direction, in any page
/// size, sees every row exactly once in the order of the unpaged list.
#[tokio::test]
async fn keyset_pagination_over_nulls_and_ties() {
    for b in backends().await {
        let c = cast(&b, "viewer");
        let scores = [Some(5), None, Some(3), None, Some(5), Some(1), None];
        let contacts: Vec<Json> = scores
            .iter()
            .enumerate()
            .map(|(i, s)| json!({"lastName": format!("L{}", i + 1), "firstName": s.map(|s| format!("F{s}"))}))
            .collect();
        create(&c.admin, "Account", json!({"name": "Acc", "contacts": {"create": contacts}})).await;
        for (i, s) in scores.iter().enumerate() {
            create(&c.admin, "Lead", json!({"name": format!("L{}", i + 1), "score": s})).await;
        }
        create(&c.other, "Lead", json!({"name": "B1", "score": null})).await;
        create(&c.other, "Lead", json!({"name": "B2", "score": 1})).await;
        let v = |x: &[&str]| x.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let asc = v(&["L6", "L3", "L1", "L5", "L2", "L4", "L7"]);
        // Descending, ties run newest first: the id follows the direction of the last key.
        let desc = v(&["L7", "L4", "L2", "L5", "L1", "L3", "L6"]);
        for (order, want_a, want_b) in [("score_ASC", &asc, v(&["B2", "B1"])), ("score_DESC", &desc, v(&["B1", "B2"]))] {
            let root = |args: &str| {
                format!(
                    "{{ leadsConnection(orderBy: [{order}], {args}) {{ edges {{ node {{ name }} }} pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} }} }}"
                )
            };
            let get = |d: &Json| d["leadsConnection"].clone();
            for size in [1, 2, 3] {
                for g in [&c.admin, &c.restricted] {
                    assert_eq!(&walk(g, size, &root, &get).await, &(want_a.clone(), want_a.clone()), "[{}] {order} by {size}", b.name);
                }
                assert_eq!(walk(&c.other, size, &root, &get).await, (want_b.clone(), want_b.clone()), "[{}] B {order} by {size}", b.name);
            }
            // The same on a nested connection (contacts by first name, nullable with ties).
            let order = order.replace("score", "firstName");
            let nested = |args: &str| {
                format!(
                    "{{ accounts {{ contactsConnection(orderBy: [{order}], {args}) {{ edges {{ node {{ name: lastName }} }} \
                       pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} }} }} }}"
                )
            };
            let get = |d: &Json| d["accounts"][0]["contactsConnection"].clone();
            for size in [1, 2, 3] {
                for g in [&c.admin, &c.restricted] {
                    assert_eq!(
                        &walk(g, size, &nested, &get).await,
                        &(want_a.clone(), want_a.clone()),
                        "[{}] nested {order} by {size}",
                        b.name
                    );
                }
            }
            assert_eq!(c.other.ok(&nested("first: 2"), no_vars()).await, json!({"accounts": []}), "[{}]", b.name);
        }
    }
}
