//! Integration suite of the store, run on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::{backends, by_id, client, id, org, principal};
use crm_orm::{OrmError, Page};
use serde_json::Value as Json;
use serde_json::json;

fn page(first: u32) -> Page {
    Page { first: Some(first), ..Page::default() }
}

#[tokio::test]
async fn crud_of_every_standard_model() {
    for b in backends().await {
        let a = client(&b, principal(&org(), "admin-1", &["admin"]));
        let member = a
            .create(
                "Member",
                json!({"name": "Rita Rep", "email": "rita@example.com", "sub": "rita", "skills": ["de", "saas"], "capacity": 5}),
            )
            .await
            .unwrap();
        assert_eq!(member["away"], json!(false), "{}: default applied", b.name);
        assert_eq!(member["skills"], json!(["de", "saas"]));
        let acc = a
            .create("Account", json!({"name": "Acme", "domain": "acme.test", "size": "MEDIUM", "owner": {"connect": by_id(&member)}}))
            .await
            .unwrap();
        assert_eq!(acc["version"], json!(1));
        assert_eq!(acc["createdBy"], json!("admin-1"));
        let contact = a
            .create(
                "Contact",
                json!({"firstName": "Ada", "lastName": "Lovelace", "email": "ada@acme.test", "account": {"connect": by_id(&acc)}}),
            )
            .await
            .unwrap();
        let lead = a
            .create(
                "Lead",
                json!({"name": "Ada L", "email": "ada@acme.test", "score": 40, "tags": ["vip"], "contact": {"connect": by_id(&contact)}}),
            )
            .await
            .unwrap();
        assert_eq!(lead["status"], json!("NEW"));
        let opp = a
            .create(
                "Opportunity",
                json!({"name": "Big deal", "account": {"connect": by_id(&acc)}, "amount": {"amount": "12500.50", "currency": "EUR"}, "expectedCloseDate": "2026-12-31"}),
            )
            .await
            .unwrap();
        assert_eq!(opp["amount"], json!({"amount": "12500.5", "currency": "EUR"}), "{}", b.name);
        assert_eq!(opp["expectedCloseDate"], json!("2026-12-31"));
        let ticket = a
            .create(
                "Ticket",
                json!({"subject": "Login broken", "contact": {"connect": by_id(&contact)}, "nextContactAt": "2026-11-25T09:30:00Z"}),
            )
            .await
            .unwrap();
        assert_eq!(ticket["nextContactAt"], json!("2026-11-25T09:30:00.000000Z"), "{}", b.name);
        assert_eq!(ticket["priority"], json!("NORMAL"));
        let act = a
            .create("Activity", json!({"kind": "CALL", "subject": {"type": "Lead", "id": id(&lead)}, "body": "Intro call", "occurredAt": "2026-11-20T10:00:00Z"}))
            .await
            .unwrap();
        assert_eq!(act["subject"], json!({"type": "Lead", "id": id(&lead)}));
        let ev = a
            .create(
                "SocialEvent",
                json!({"platform": "x", "kind": "DM", "externalId": "123", "text": "hi", "lead": {"connect": by_id(&lead)}}),
            )
            .await
            .unwrap();

        // Update each model once.
        let lead2 = a.update("Lead", by_id(&lead), json!({"status": "QUALIFIED", "score": 80}), Some(1)).await.unwrap();
        assert_eq!(lead2["status"], json!("QUALIFIED"));
        assert_eq!(lead2["version"], json!(2));
        assert_eq!(lead2["updatedBy"], json!("admin-1"));
        for (m, rec, data) in [
            ("Member", &member, json!({"away": true})),
            ("Account", &acc, json!({"industry": "Software"})),
            ("Contact", &contact, json!({"phone": "+49 30 1234567"})),
            ("Opportunity", &opp, json!({"stage": "PROPOSAL"})),
            ("Ticket", &ticket, json!({"status": "IN_PROGRESS"})),
            ("Activity", &act, json!({"title": "First call"})),
            ("SocialEvent", &ev, json!({"thread": "t-1"})),
        ] {
            let u = a.update(m, by_id(rec), data, None).await.unwrap();
            assert_eq!(u["version"], json!(2), "{} {m}", b.name);
        }
        // Unique lookup by a unique field.
        let by_sub = a.update("Member", json!({"sub": "rita"}), json!({"capacity": 6}), None).await.unwrap();
        assert_eq!(by_sub["capacity"], json!(6));

        // Delete moves to the trash: the record is gone from reads, references to it stay.
        let gone = a.delete("Lead", by_id(&lead), None).await.unwrap().unwrap();
        assert_eq!(gone["name"], json!("Ada L"));
        assert_eq!(a.count("Lead", json!({})).await, 0);
        assert_eq!(a.values("SocialEvent", json!({}), &[], "lead").await, vec![json!(id(&lead))], "{}", b.name);
        // Destroy: returns the record as it was; set-null references are cleared, polymorphic too.
        let gone = a.destroy("Lead", by_id(&lead)).await.unwrap().unwrap();
        assert_eq!(gone["name"], json!("Ada L"));
        assert_eq!(a.values("SocialEvent", json!({}), &[], "lead").await, vec![json!(null)], "{}", b.name);
        assert_eq!(a.values("Activity", json!({}), &[], "subject").await, vec![json!(null)], "{}", b.name);
        // Cascade: destroying the account destroys its opportunities.
        a.destroy("Account", by_id(&acc)).await.unwrap();
        assert_eq!(a.count("Opportunity", json!({})).await, 0, "{}", b.name);
        assert_eq!(a.values("Contact", json!({}), &[], "account").await, vec![json!(null)]);
        for m in ["Ticket", "Contact", "Activity", "SocialEvent", "Member"] {
            let all = a.list(m, json!({}), &[], page(100)).await.unwrap();
            for r in &all.rows {
                a.destroy(m, by_id(r)).await.unwrap();
            }
            assert_eq!(a.count(m, json!({})).await, 0, "{} {m}", b.name);
        }
        // Deleting or destroying something that is gone is NOT_FOUND.
        assert_eq!(a.destroy("Lead", by_id(&lead)).await.unwrap_err().code(), crm_model::ErrorCode::NotFound);
        let e = a.delete("Lead", by_id(&lead), None).await.unwrap_err();
        assert_eq!(e.code(), crm_model::ErrorCode::NotFound);
    }
}

#[tokio::test]
async fn restrict_relation_blocks_delete() {
    for b in backends().await {
        let a = client(&b, principal(&org(), "admin", &["admin"]));
        // Opportunity.account cascades; Lead.owner sets null. Build a restrict case through a
        // required relation: none in the standard catalog is required, so check set-null/cascade
        // above and here that a deleted owner leaves the lead unassigned.
        let m = a.create("Member", json!({"name": "Owner"})).await.unwrap();
        let l = a.create("Lead", json!({"name": "L", "owner": {"connect": by_id(&m)}})).await.unwrap();
        assert_eq!(l["owner"], json!(id(&m)));
        a.destroy("Member", by_id(&m)).await.unwrap();
        assert_eq!(a.values("Lead", json!({}), &[], "owner").await, vec![json!(null)], "{}", b.name);
    }
}

async fn seed_leads(a: &common::Client<'_>) -> Vec<serde_json::Value> {
    let acc = a.create("Account", json!({"name": "Globex Corp"})).await.unwrap();
    let rows = [
        json!({"name": "Alice", "email": "alice@globex.test", "score": 10, "status": "NEW", "tags": ["a", "b"], "company": "Globex", "account": {"connect": by_id(&acc)}, "convertedAt": "2026-01-01T00:00:00Z"}),
        json!({"name": "Bob", "email": "bob@initech.test", "score": 50, "status": "QUALIFIED", "tags": ["b"], "company": "Initech"}),
        json!({"name": "Carol", "score": 90, "status": "CONTACTED", "tags": [], "company": "100% Real_Co"}),
        json!({"name": "Dave", "email": "DAVE@globex.test", "status": "REJECTED", "tags": ["c"]}),
    ];
    let mut out = Vec::new();
    for r in rows {
        out.push(a.create("Lead", r).await.unwrap());
    }
    out
}

/// `_search` ignores case and accents on both backends, needs every word, and keeps to the
/// model's searchable fields and the caller's tenant.
#[tokio::test]
async fn search_ignores_case_and_accents() {
    for b in backends().await {
        let a = client(&b, principal(&org(), "admin", &["admin"]));
        let other = client(&b, principal(&org(), "admin", &["admin"]));
        for (first, last, email) in [
            ("José", "García", Some("jose@ejemplo.es")),
            ("Zoë", "Müller-Straße", None),
            ("JOSEPH", "Garcia", Some("joe@example.com")),
            ("Ann", "Lee", Some("ann@garcia-consulting.com")),
        ] {
            a.create("Contact", json!({"firstName": first, "lastName": last, "email": email})).await.unwrap();
        }
        other.create("Contact", json!({"firstName": "José", "lastName": "García"})).await.unwrap();
        let names = |term: &str| {
            let a = &a;
            let f = json!({ "_search": term });
            async move {
                let mut v: Vec<String> =
                    a.values("Contact", f, &["lastName_ASC"], "firstName").await.iter().map(|j| j.as_str().unwrap().to_owned()).collect();
                v.sort();
                v.join(",")
            }
        };
        let cases = [
            ("jose garcia", "JOSEPH,José"),
            ("GARCÍA", "Ann,JOSEPH,José"),
            ("josé", "JOSEPH,José"),
            ("muller strasse", "Zoë"),
            ("MÜLLER", "Zoë"),
            ("zoe", "Zoë"),
            ("ejemplo", "José"),
            ("garcia lee", "Ann"),
            ("nobody", ""),
            ("%", ""),
            ("", "Ann,JOSEPH,José,Zoë"),
        ];
        for (term, want) in cases {
            assert_eq!(names(term).await, want, "{}: _search {term:?}", b.name);
        }
        // The store keeps the search column with the row: an update of a searchable field (one
        // record, or a batch) is found by its new text and no longer by the old one; another
        // field's update leaves the text alone; the other tenant's equal record is untouched.
        let zoe = a.values("Contact", json!({ "firstName": "Zoë" }), &[], "id").await;
        a.update("Contact", json!({ "id": zoe[0] }), json!({ "lastName": "Ångström" }), None).await.unwrap();
        a.update("Contact", json!({ "id": zoe[0] }), json!({ "phone": "+15550100" }), None).await.unwrap();
        a.update_many("Contact", json!({ "lastName": "Garcia" }), json!({ "email": "joseph@ÉCOLE.fr" })).await.unwrap();
        for (term, want) in
            [("angstrom zoe", "Zoë"), ("muller", ""), ("ecole", "JOSEPH"), ("joe@example", ""), ("jose garcia", "JOSEPH,José")]
        {
            assert_eq!(names(term).await, want, "{}: after updates, _search {term:?}", b.name);
        }
        let theirs = |term: &str| other.count("Contact", json!({ "_search": term }));
        assert_eq!((theirs("jose garcia").await, theirs("ecole").await), (1, 0), "{}", b.name);
    }
}

#[tokio::test]
async fn every_scalar_filter_operator_with_null_semantics() {
    for b in backends().await {
        let a = client(&b, principal(&org(), "admin", &["admin"]));
        seed_leads(&a).await;
        let names = |f: serde_json::Value| {
            let a = &a;
            async move {
                let mut v: Vec<String> =
                    a.values("Lead", f, &["name_ASC"], "name").await.iter().map(|j| j.as_str().unwrap().to_owned()).collect();
                v.sort();
                v.join(",")
            }
        };
        let cases = [
            (json!({"name": "Alice"}), "Alice"),
            (json!({"name": "alice"}), ""),
            (json!({"name_not": "Alice"}), "Bob,Carol,Dave"),
            (json!({"name_in": ["Alice", "Dave", "Zed"]}), "Alice,Dave"),
            (json!({"name_in": []}), ""),
            (json!({"name_not_in": ["Alice", "Dave"]}), "Bob,Carol"),
            (json!({"email_contains": "GLOBEX"}), "Alice,Dave"),
            (json!({"email_not_contains": "globex"}), "Bob,Carol"),
            (json!({"email_starts_with": "dave"}), "Dave"),
            (json!({"email_not_starts_with": "dave"}), "Alice,Bob,Carol"),
            (json!({"email_ends_with": "initech.test"}), "Bob"),
            (json!({"email_not_ends_with": ".test"}), "Carol"),
            (json!({"company_contains": "%"}), "Carol"),
            (json!({"company_contains": "l_c"}), "Carol"),
            (json!({"company_contains": "x_"}), ""),
            (json!({"email": null}), "Carol"),
            (json!({"email_not": null}), "Alice,Bob,Dave"),
            (json!({"email_in": [null, "bob@initech.test"]}), "Bob,Carol"),
            (json!({"score_lt": 50}), "Alice"),
            (json!({"score_lte": 50}), "Alice,Bob"),
            (json!({"score_gt": 50}), "Carol"),
            (json!({"score_gte": 50}), "Bob,Carol"),
            (json!({"score_not": 50}), "Alice,Carol,Dave"),
            (json!({"score": null}), "Dave"),
            (json!({"status": "NEW"}), "Alice"),
            (json!({"status_in": ["NEW", "QUALIFIED"]}), "Alice,Bob"),
            (json!({"status_not_in": ["NEW", "QUALIFIED"]}), "Carol,Dave"),
            (json!({"tags_contains_all": ["a", "b"]}), "Alice"),
            (json!({"tags_contains_all": ["b"]}), "Alice,Bob"),
            (json!({"tags_contains_some": ["a", "c"]}), "Alice,Dave"),
            (json!({"tags_contains_none": ["b"]}), "Carol,Dave"),
            (json!({"convertedAt_gte": "2025-12-31T23:00:00-02:00"}), ""),
            (json!({"convertedAt_lt": "2026-01-01T00:00:01Z"}), "Alice"),
            (json!({"convertedAt": null}), "Bob,Carol,Dave"),
            (json!({"OR": [{"name": "Alice"}, {"score_gt": 80}]}), "Alice,Carol"),
            (json!({"AND": [{"email_contains": "globex"}, {"status": "REJECTED"}]}), "Dave"),
            (json!({"NOT": [{"email_contains": "globex"}]}), "Bob,Carol"),
            (json!({"NOT": [{"score_gt": 20}, {"score_lt": 60}]}), "Alice,Carol,Dave"),
            (json!({"name": "Alice", "score": 10}), "Alice"),
            (json!({"_search": "GLOB"}), "Alice,Dave"),
            (json!({"_search": "initech"}), "Bob"),
        ];
        for (f, want) in cases {
            assert_eq!(names(f.clone()).await, want, "{}: {f}", b.name);
        }
        // Operators that do not apply, unknown fields and wrong types are BAD_USER_INPUT naming the path.
        for bad in [
            json!({"score_contains": "1"}),
            json!({"nope": 1}),
            json!({"score": "ten"}),
            json!({"status": "MAYBE"}),
            json!({"score_lt": null}),
        ] {
            let e = a.list("Lead", bad.clone(), &[], page(5)).await.unwrap_err();
            assert_eq!(e.code(), crm_model::ErrorCode::BadUserInput, "{bad}");
            assert!(e.field().unwrap().starts_with("where."), "{bad}: {e}");
        }
    }
}

#[tokio::test]
async fn relation_filters_to_one_and_to_many() {
    for b in backends().await {
        let a = client(&b, principal(&org(), "admin", &["admin"]));
        let parent = a.create("Account", json!({"name": "Parent Holdings"})).await.unwrap();
        let acme = a.create("Account", json!({"name": "Acme", "parent": {"connect": by_id(&parent)}})).await.unwrap();
        let empty = a.create("Account", json!({"name": "Empty Inc"})).await.unwrap();
        let _ = empty;
        a.create("Contact", json!({"lastName": "Ada", "email": "ada@acme.test", "account": {"connect": by_id(&acme)}})).await.unwrap();
        a.create("Contact", json!({"lastName": "Bea", "account": {"connect": by_id(&acme)}})).await.unwrap();
        a.create("Contact", json!({"lastName": "Cid", "email": "cid@parent.test", "account": {"connect": by_id(&parent)}})).await.unwrap();
        a.create("Contact", json!({"lastName": "Dan"})).await.unwrap();
        let last = |f: serde_json::Value| {
            let a = &a;
            async move {
                a.values("Contact", f, &["lastName_ASC"], "lastName")
                    .await
                    .iter()
                    .map(|j| j.as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
                    .join(",")
            }
        };
        assert_eq!(last(json!({"account": {"name": "Acme"}})).await, "Ada,Bea", "{}", b.name);
        assert_eq!(last(json!({"account": {"parent": {"name_starts_with": "parent"}}})).await, "Ada,Bea");
        assert_eq!(last(json!({"account": null})).await, "Dan");
        assert_eq!(last(json!({"NOT": [{"account": {"name": "Acme"}}]})).await, "Cid,Dan");
        let acc = |f: serde_json::Value| {
            let a = &a;
            async move {
                a.values("Account", f, &["name_ASC"], "name")
                    .await
                    .iter()
                    .map(|j| j.as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
                    .join(",")
            }
        };
        assert_eq!(acc(json!({"contacts_some": {"email": null}})).await, "Acme");
        assert_eq!(
            acc(json!({"contacts_every": {"email_not": null}})).await,
            "Empty Inc,Parent Holdings",
            "{}: every is vacuously true",
            b.name
        );
        assert_eq!(acc(json!({"contacts_none": {"lastName": "Cid"}})).await, "Acme,Empty Inc");
        assert_eq!(acc(json!({"children_some": {"name": "Acme"}})).await, "Parent Holdings");
        assert_eq!(acc(json!({"children_some": {"contacts_some": {"lastName": "Bea"}}})).await, "Parent Holdings");
    }
}

#[tokio::test]
async fn ordering_is_total_with_nulls_last_ascending() {
    for b in backends().await {
        let a = client(&b, principal(&org(), "admin", &["admin"]));
        seed_leads(&a).await;
        a.create("Lead", json!({"name": "Eve", "score": 50})).await.unwrap();
        let v = |o: &'static [&'static str]| {
            let a = &a;
            async move {
                a.values("Lead", json!({}), o, "name").await.iter().map(|j| j.as_str().unwrap().to_owned()).collect::<Vec<_>>().join(",")
            }
        };
        assert_eq!(v(&["score_ASC"]).await, "Alice,Bob,Eve,Carol,Dave", "{}", b.name);
        // Ties (Bob and Eve) follow the last key's direction: the newer first when descending.
        assert_eq!(v(&["score_DESC"]).await, "Dave,Carol,Eve,Bob,Alice", "{}", b.name);
        assert_eq!(v(&["score_ASC", "name_DESC"]).await, "Alice,Eve,Bob,Carol,Dave");
        assert_eq!(v(&["email_ASC"]).await, "Dave,Alice,Bob,Carol,Eve", "{}", b.name);
        assert_eq!(v(&["name_DESC"]).await, "Eve,Dave,Carol,Bob,Alice");
        let e = a.list("Lead", json!({}), &["tags_ASC"], page(5)).await.unwrap_err();
        assert_eq!(e.code(), crm_model::ErrorCode::BadUserInput);
    }
}

#[tokio::test]
async fn keyset_pagination_forwards_and_backwards_with_inserts_between_pages() {
    for b in backends().await {
        let a = client(&b, principal(&org(), "admin", &["admin"]));
        for i in 0..25 {
            let score = if i % 5 == 0 { json!(null) } else { json!(i % 7) };
            a.create("Lead", json!({"name": format!("L{i:02}"), "score": score})).await.unwrap();
        }
        for order in [&["score_ASC"][..], &["score_DESC", "name_ASC"][..], &[][..], &["createdAt_DESC"][..]] {
            let all = a.values("Lead", json!({}), order, "name").await;
            assert_eq!(all.len(), 25);
            // Forward, 4 per page; after the first page a row is inserted that sorts first, and
            // one that sorts last: no duplicates, no gaps among the original rows.
            let mut seen = Vec::new();
            let mut after = None;
            let mut pages = 0;
            loop {
                let p = a.list("Lead", json!({}), order, Page { first: Some(4), after: after.clone(), ..Page::default() }).await.unwrap();
                assert_eq!(p.has_previous, after.is_some(), "{} {order:?}", b.name);
                seen.extend(p.rows.iter().map(|r| r["name"].clone()));
                if pages == 0 {
                    a.create("Lead", json!({"name": "A-inserted", "score": 0})).await.unwrap();
                }
                pages += 1;
                if !p.has_next {
                    break;
                }
                after = p.cursors.last().cloned();
                assert!(pages < 20);
            }
            let originals: Vec<_> = seen.iter().filter(|n| all.contains(n)).cloned().collect();
            assert_eq!(originals, all, "{} forward {order:?}", b.name);
            let mut dedup = seen.clone();
            dedup.sort_by_key(ToString::to_string);
            dedup.dedup();
            assert_eq!(dedup.len(), seen.len(), "{}: duplicates in {seen:?}", b.name);
            a.delete_many("Lead", json!({"name_starts_with": "A-"})).await.unwrap();

            // Backward from the end, 6 per page.
            let mut back = Vec::new();
            let mut before = None;
            loop {
                let p = a.list("Lead", json!({}), order, Page { last: Some(6), before: before.clone(), ..Page::default() }).await.unwrap();
                assert_eq!(p.has_next, before.is_some());
                let mut names: Vec<_> = p.rows.iter().map(|r| r["name"].clone()).collect();
                names.extend(back);
                back = names;
                if !p.has_previous {
                    break;
                }
                before = p.cursors.first().cloned();
            }
            assert_eq!(back, all, "{} backward {order:?}", b.name);
        }
        // Skip, and the argument rules of API.md.
        let p = a.list("Lead", json!({}), &["name_ASC"], Page { first: Some(2), skip: 3, ..Page::default() }).await.unwrap();
        assert_eq!(p.rows.iter().map(|r| r["name"].as_str().unwrap()).collect::<Vec<_>>(), ["L03", "L04"]);
        assert_eq!(p.count, Some(25));
        let e = a.list("Lead", json!({}), &[], Page { first: Some(2), before: Some("x".into()), ..Page::default() }).await.unwrap_err();
        assert_eq!(e.code(), crm_model::ErrorCode::BadUserInput);
        let e = a.list("Lead", json!({}), &[], Page { last: Some(2), after: Some("x".into()), ..Page::default() }).await.unwrap_err();
        assert_eq!(e.code(), crm_model::ErrorCode::BadUserInput);
        let e = a.list("Lead", json!({}), &[], Page { first: Some(101), ..Page::default() }).await.unwrap_err();
        assert_eq!(e.code(), crm_model::ErrorCode::LimitExceeded);
        // A cursor of one ordering is refused by another; garbage is refused.
        let p = a.list("Lead", json!({}), &["name_ASC"], page(2)).await.unwrap();
        let e = a
            .list("Lead", json!({}), &["score_ASC"], Page { first: Some(2), after: p.cursors.last().cloned(), ..Page::default() })
            .await
            .unwrap_err();
        assert_eq!(e.code(), crm_model::ErrorCode::BadUserInput);
        let e = a.list("Lead", json!({}), &[], Page { first: Some(2), after: Some("bm9wZQ".into()), ..Page::default() }).await.unwrap_err();
        assert_eq!(e.code(), crm_model::ErrorCode::BadUserInput);
        // Default page size is 10.
        assert_eq!(a.list("Lead", json!({}), &[], Page::default()).await.unwrap().rows.len(), 10);
    }
}

#[tokio::test]
async fn counts_honour_the_filter_not_the_page() {
    for b in backends().await {
        let a = client(&b, principal(&org(), "admin", &["admin"]));
        seed_leads(&a).await;
        let p = a.list("Lead", json!({"email_contains": "globex"}), &[], page(1)).await.unwrap();
        assert_eq!(p.rows.len(), 1);
        assert_eq!(p.count, Some(2));
        assert!(p.has_next);
        assert_eq!(a.count("Lead", json!({})).await, 4);
        assert_eq!(a.count("Account", json!({})).await, 1);
    }
}

#[tokio::test]
async fn upsert_creates_then_updates() {
    for b in backends().await {
        let a = client(&b, principal(&org(), "admin", &["admin"]));
        let m = a.upsert("Member", json!({"sub": "zed"}), json!({"name": "Zed"}), json!({"name": "Zed Updated"})).await.unwrap();
        assert_eq!((m["name"].clone(), m["sub"].clone(), m["version"].clone()), (json!("Zed"), json!("zed"), json!(1)), "{}", b.name);
        let m2 = a.upsert("Member", json!({"sub": "zed"}), json!({"name": "Zed"}), json!({"name": "Zed Updated"})).await.unwrap();
        assert_eq!((m2["id"].clone(), m2["name"].clone(), m2["version"].clone()), (m["id"].clone(), json!("Zed Updated"), json!(2)));
        assert_eq!(a.count("Member", json!({})).await, 1);
        let e = a.upsert("Member", json!({"name": "x"}), json!({}), json!({})).await.unwrap_err();
        assert_eq!(e.code(), crm_model::ErrorCode::BadUserInput, "name is not unique");
    }
}

#[tokio::test]
async fn batch_update_and_delete_by_filter() {
    for b in backends().await {
        let a = client(&b, principal(&org(), "admin", &["admin"]));
        seed_leads(&a).await;
        let p = a.update_many("Lead", json!({"email_contains": "globex"}), json!({"status": "CONTACTED", "score": 5})).await.unwrap();
        assert_eq!(p.rows.len(), 2, "{}", b.name);
        assert!(p.rows.iter().all(|r| r["status"] == json!("CONTACTED") && r["version"] == json!(2)));
        assert_eq!(a.count("Lead", json!({"status": "CONTACTED"})).await, 3);
        // Relations are refused in batch data; a bad value writes nothing.
        let e = a.update_many("Lead", json!({}), json!({"score": 500})).await.unwrap_err();
        assert_eq!(e.code(), crm_model::ErrorCode::BadUserInput);
        assert_eq!(a.count("Lead", json!({"score": 500})).await, 0);
        let d = a.delete_many("Lead", json!({"status": "CONTACTED"})).await.unwrap();
        assert_eq!(d.rows.len(), 3);
        assert_eq!(a.count("Lead", json!({})).await, 1);
        let none = a.delete_many("Lead", json!({"name": "nobody"})).await.unwrap();
        assert!(none.rows.is_empty());
    }
}

#[tokio::test]
async fn nested_writes_commit_together_and_roll_back_together() {
    for b in backends().await {
        let a = client(&b, principal(&org(), "admin", &["admin"]));
        let existing = a.create("Contact", json!({"lastName": "Existing"})).await.unwrap();
        let acc = a
            .create(
                "Account",
                json!({
                    "name": "Nested Co",
                    "parent": {"create": {"name": "Nested Parent"}},
                    "contacts": {"create": [{"lastName": "One"}, {"lastName": "Two"}], "connect": [by_id(&existing)]},
                    "opportunities": {"create": [{"name": "Deal", "amount": {"amount": "10", "currency": "USD"}}]}
                }),
            )
            .await
            .unwrap();
        assert_eq!(a.count("Contact", json!({"account": {"name": "Nested Co"}})).await, 3, "{}", b.name);
        assert_eq!(a.count("Account", json!({"children_some": {"name": "Nested Co"}})).await, 1);
        assert_eq!(a.count("Opportunity", json!({"account": {"id": id(&acc)}})).await, 1);

        // disconnect and set.
        let one = a.values("Contact", json!({"lastName": "One"}), &[], "id").await;
        a.update("Account", by_id(&acc), json!({"contacts": {"disconnect": [{"id": one[0]}]}}), None).await.unwrap();
        assert_eq!(a.count("Contact", json!({"account": {"id": id(&acc)}})).await, 2);
        a.update("Account", by_id(&acc), json!({"contacts": {"set": [by_id(&existing)]}}), None).await.unwrap();
        let names = a.values("Contact", json!({"account": {"id": id(&acc)}}), &[], "lastName").await;
        assert_eq!(names, vec![json!("Existing")], "{}", b.name);
        a.update("Account", by_id(&acc), json!({"parent": {"disconnect": true}}), None).await.unwrap();
        assert_eq!(a.values("Account", json!({"name": "Nested Co"}), &[], "parent").await, vec![json!(null)]);

        // A failure anywhere rolls back everything: second nested contact is invalid.
        let before_acc = a.count("Account", json!({})).await;
        let before_con = a.count("Contact", json!({})).await;
        let e = a
            .create(
                "Account",
                json!({"name": "Doomed", "contacts": {"create": [{"lastName": "Fine"}, {"lastName": "Bad", "email": "not-an-email"}]}}),
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), crm_model::ErrorCode::BadUserInput);
        assert_eq!(e.field(), Some("email"));
        // Failure discovered in the database half way: connect to an unknown id after creates.
        let e = a
            .create(
                "Account",
                json!({"name": "Doomed", "parent": {"create": {"name": "Doomed parent"}}, "contacts": {"create": [{"lastName": "Fine"}], "connect": [{"id": "01890000-0000-7000-8000-000000000000"}]}}),
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), crm_model::ErrorCode::NotFound, "{e}");
        assert_eq!(a.count("Account", json!({})).await, before_acc, "{}: nothing of the failed write remains", b.name);
        assert_eq!(a.count("Contact", json!({})).await, before_con);
        // Failure on a unique value deep inside.
        a.create("Member", json!({"name": "M", "email": "m@x.test"})).await.unwrap();
        let e = a.create("Lead", json!({"name": "L", "owner": {"create": {"name": "M2", "email": "m@x.test"}}})).await.unwrap_err();
        assert_eq!(e.code(), crm_model::ErrorCode::Conflict, "{e}");
        assert_eq!(e.field(), Some("email"), "{}", b.name);
        assert_eq!(a.count("Lead", json!({})).await, 0);
        assert_eq!(a.count("Member", json!({})).await, 1);
    }
}

#[tokio::test]
async fn version_conflicts() {
    for b in backends().await {
        let a = client(&b, principal(&org(), "admin", &["admin"]));
        let l = a.create("Lead", json!({"name": "V"})).await.unwrap();
        a.update("Lead", by_id(&l), json!({"score": 1}), Some(1)).await.unwrap();
        let e = a.update("Lead", by_id(&l), json!({"score": 2}), Some(1)).await.unwrap_err();
        assert_eq!(e.code(), crm_model::ErrorCode::Conflict);
        assert!(matches!(e, OrmError::Version { expected: 1, found: 2 }), "{e:?}");
        assert_eq!(a.values("Lead", json!({}), &[], "score").await, vec![json!(1)], "{}: nothing written", b.name);
        let e = a.delete("Lead", by_id(&l), Some(1)).await.unwrap_err();
        assert_eq!(e.code(), crm_model::ErrorCode::Conflict);
        assert_eq!(a.count("Lead", json!({})).await, 1);
        // Concurrent writers of the same version: exactly one wins.
        let (r1, r2) = tokio::join!(
            a.update("Lead", by_id(&l), json!({"score": 10}), Some(2)),
            a.update("Lead", by_id(&l), json!({"score": 20}), Some(2))
        );
        assert_eq!(usize::from(r1.is_ok()) + usize::from(r2.is_ok()), 1, "{}: {r1:?} {r2:?}", b.name);
        let loser = if r1.is_err() { r1 } else { r2 };
        assert_eq!(loser.unwrap_err().code(), crm_model::ErrorCode::Conflict);
        a.delete("Lead", by_id(&l), Some(3)).await.unwrap();
    }
}

/// An update made on an older version goes through when nothing changed since that version
/// touched a field it writes (a client's edit after a background change of other fields); it
/// conflicts when a field it writes was changed meanwhile. Another tenant's update of the record
/// finds nothing, whatever the version.
#[tokio::test]
async fn an_update_on_an_older_version_merges_when_its_fields_are_untouched() {
    for b in backends().await {
        let a = client(&b, principal(&org(), "admin", &["admin"]));
        let bob = client(&b, principal(&org(), "admin", &["admin"]));
        let l = a.create("Lead", json!({"name": "Merge", "score": 1})).await.unwrap();
        // Someone else (a worker, another user) changes the status: version 2.
        a.update("Lead", by_id(&l), json!({"status": "CONTACTED"}), Some(1)).await.unwrap();
        // The client still holds version 1 and edits the name and the score: merged, version 3.
        let r = a.update("Lead", by_id(&l), json!({"name": "Merged", "score": 5}), Some(1)).await.unwrap();
        assert_eq!(
            (r["name"].as_str(), r["status"].as_str(), r["score"].as_i64()),
            (Some("Merged"), Some("CONTACTED"), Some(5)),
            "{}",
            b.name
        );
        assert_eq!(r["version"], 3, "{}", b.name);
        // A field changed since the client's version: conflict, nothing written.
        let e = a.update("Lead", by_id(&l), json!({"status": "NEW"}), Some(1)).await.unwrap_err();
        assert!(matches!(e, OrmError::Version { expected: 1, found: 3 }), "{}: {e:?}", b.name);
        let e = a.update("Lead", by_id(&l), json!({"score": 9}), Some(2)).await.unwrap_err();
        assert!(matches!(e, OrmError::Version { expected: 2, found: 3 }), "{}: {e:?}", b.name);
        assert_eq!(a.values("Lead", json!({}), &[], "score").await, vec![json!(5)], "{}", b.name);
        // A version from the future is a conflict too.
        assert!(matches!(a.update("Lead", by_id(&l), json!({"name": "X"}), Some(7)).await, Err(OrmError::Version { .. })));
        // Another tenant: not found, merge or not.
        let e = bob.update("Lead", by_id(&l), json!({"name": "Theirs"}), Some(1)).await.unwrap_err();
        assert_eq!(e.code(), crm_model::ErrorCode::NotFound, "{}", b.name);
        assert_eq!(a.values("Lead", json!({}), &[], "name").await, vec![json!("Merged")], "{}", b.name);
    }
}

#[tokio::test]
async fn bad_input_is_typed_names_the_field_and_writes_nothing() {
    for b in backends().await {
        let a = client(&b, principal(&org(), "admin", &["admin"]));
        a.create("Member", json!({"name": "Taken", "email": "taken@x.test"})).await.unwrap();
        let cases = [
            ("Lead", json!({"name": "x", "nope": 1}), "BAD_USER_INPUT", "data.nope"),
            ("Lead", json!({"name": "x", "score": "high"}), "BAD_USER_INPUT", "score"),
            ("Lead", json!({"name": "x", "email": "no-at-sign"}), "BAD_USER_INPUT", "email"),
            ("Lead", json!({"name": "x", "score": 101}), "BAD_USER_INPUT", "score"),
            ("Lead", json!({"name": "x", "status": "WON"}), "BAD_USER_INPUT", "status"),
            ("Lead", json!({"score": 1}), "BAD_USER_INPUT", "data.name"),
            ("Lead", json!({"name": ""}), "BAD_USER_INPUT", "name"),
            ("Lead", json!({"name": "x", "id": "01890000-0000-7000-8000-000000000000"}), "BAD_USER_INPUT", "data.id"),
            ("Member", json!({"name": "Dup", "email": "taken@x.test"}), "CONFLICT", "email"),
            ("Opportunity", json!({"name": "x", "amount": {"amount": "-1", "currency": "EUR"}}), "BAD_USER_INPUT", "amount"),
            ("Opportunity", json!({"name": "x", "amount": {"amount": "1", "currency": "euro"}}), "BAD_USER_INPUT", "amount"),
            (
                "Activity",
                json!({"kind": "CALL", "subject": {"type": "Member", "id": "01890000-0000-7000-8000-000000000000"}}),
                "BAD_USER_INPUT",
                "subject",
            ),
            (
                "Activity",
                json!({"kind": "CALL", "subject": {"type": "Lead", "id": "01890000-0000-7000-8000-000000000000"}}),
                "NOT_FOUND",
                "",
            ),
        ];
        for (m, data, code, field) in cases {
            let e = a.create(m, data.clone()).await.unwrap_err();
            assert_eq!(e.code().as_str(), code, "{}: {m} {data}: {e}", b.name);
            if !field.is_empty() {
                assert_eq!(e.field(), Some(field), "{}: {m} {data}: {e}", b.name);
            }
        }
        assert_eq!(a.count("Lead", json!({})).await, 0);
        assert_eq!(a.count("Member", json!({})).await, 1);
        assert_eq!(a.count("Opportunity", json!({})).await, 0);
        assert_eq!(a.count("Activity", json!({})).await, 0);
        // Updates: null into a required field, duplicate unique value.
        let m2 = a.create("Member", json!({"name": "Other", "email": "other@x.test"})).await.unwrap();
        let e = a.update("Member", by_id(&m2), json!({"email": "taken@x.test"}), None).await.unwrap_err();
        assert_eq!((e.code(), e.field()), (crm_model::ErrorCode::Conflict, Some("email")), "{}", b.name);
        let e = a.update("Member", by_id(&m2), json!({"name": null}), None).await.unwrap_err();
        assert_eq!(e.code(), crm_model::ErrorCode::BadUserInput);
        assert_eq!(a.values("Member", json!({"id": id(&m2)}), &[], "version").await, vec![json!(1)]);
    }
}

#[tokio::test]
async fn roles_and_row_rules_from_two_tenants() {
    for b in backends().await {
        let org_a = org();
        let admin = client(&b, principal(&org_a, "boss", &["admin"]));
        let sales = client(&b, principal(&org_a, "sam", &["sales"]));
        let viewer = client(&b, principal(&org_a, "vic", &["viewer"]));
        let nobody = client(&b, principal(&org_a, "nob", &["unknown-role"]));
        let other = client(&b, principal(&org(), "boss", &["admin"]));
        let sam = admin.create("Member", json!({"name": "Sam", "sub": "sam"})).await.unwrap();
        let kim = admin.create("Member", json!({"name": "Kim", "sub": "kim"})).await.unwrap();
        let mine = admin.create("Lead", json!({"name": "Mine", "owner": {"connect": by_id(&sam)}})).await.unwrap();
        let theirs = admin.create("Lead", json!({"name": "Theirs", "owner": {"connect": by_id(&kim)}})).await.unwrap();
        let free = admin.create("Lead", json!({"name": "Free"})).await.unwrap();

        // Sales reads all, updates own or unassigned, not a colleague's.
        assert_eq!(sales.count("Lead", json!({})).await, 3);
        sales.update("Lead", by_id(&mine), json!({"score": 1}), None).await.unwrap();
        sales.update("Lead", by_id(&free), json!({"score": 1}), None).await.unwrap();
        let e = sales.update("Lead", by_id(&theirs), json!({"score": 1}), None).await.unwrap_err();
        assert_eq!(e.code(), crm_model::ErrorCode::Forbidden, "{}", b.name);
        // ... and cannot hand a lead to a colleague (the row must stay within the rule).
        let e = sales.update("Lead", by_id(&mine), json!({"owner": {"connect": by_id(&kim)}}), None).await.unwrap_err();
        assert_eq!(e.code(), crm_model::ErrorCode::Forbidden);
        let e = sales.update_many("Lead", json!({}), json!({"score": 7})).await.unwrap();
        assert_eq!(e.rows.len(), 2, "batch only touches rows in scope");
        let e = sales.create("Member", json!({"name": "x"})).await.unwrap_err();
        assert_eq!(e.code(), crm_model::ErrorCode::Forbidden);
        // Viewer reads, never writes.
        assert_eq!(viewer.count("Lead", json!({})).await, 3);
        assert_eq!(viewer.create("Lead", json!({"name": "v"})).await.unwrap_err().code(), crm_model::ErrorCode::Forbidden);
        assert_eq!(viewer.delete("Lead", by_id(&free), None).await.unwrap_err().code(), crm_model::ErrorCode::Forbidden);
        // An unknown role has no grant at all.
        assert_eq!(nobody.list("Lead", json!({}), &[], page(5)).await.unwrap_err().code(), crm_model::ErrorCode::Forbidden);
        // Another tenant's admin sees none of it and cannot touch it.
        assert_eq!(other.count("Lead", json!({})).await, 0);
        assert_eq!(other.update("Lead", by_id(&mine), json!({"score": 9}), None).await.unwrap_err().code(), crm_model::ErrorCode::NotFound);
        assert_eq!(other.delete("Lead", by_id(&mine), None).await.unwrap_err().code(), crm_model::ErrorCode::NotFound);
        assert_eq!(admin.values("Lead", json!({"id": id(&mine)}), &[], "score").await, vec![json!(7)]);
    }
}

/// Related records and lists come back with every value as written, on both backends: text
/// that needs quoting or escaping (commas, quotes, backslashes, braces, the word NULL, an empty
/// string, control characters), nulls, numbers, booleans, money and lists, nested two deep.
#[tokio::test]
async fn nested_reads_keep_every_value() {
    use crm_model::FieldName;
    use crm_orm::{Nested, OrderBy, Read, Selection};
    for b in backends().await {
        let a = client(&b, principal(&org(), "admin", &["admin"]));
        let odd = "Acme, \"Inc\" {x} \\ back\\slash\ttab\nline ünï 🦀";
        let owner = a.create("Member", json!({"name": "NULL", "email": "o@x.test", "sub": "o", "skills": ["a,b", "{c}"]})).await.unwrap();
        let parent = a.create("Account", json!({"name": " ", "domain": "", "owner": {"connect": by_id(&owner)}})).await.unwrap();
        let acc = a.create("Account", json!({"name": odd, "parent": {"connect": by_id(&parent)}})).await.unwrap();
        for (i, last) in ["O'Brien, \"Bob\"", "NULL", "(x)", "\\"].iter().enumerate() {
            let c = a.create("Contact", json!({"lastName": last, "firstName": null, "account": {"connect": by_id(&acc)}})).await.unwrap();
            a.create(
                "Lead",
                json!({"name": format!("{last} lead"), "score": i, "tags": ["t,1", "NULL"], "contact": {"connect": by_id(&c)}}),
            )
            .await
            .unwrap();
        }
        let cat = a.cat();
        let model = |m: &str| cat.model(m).unwrap().clone();
        let f = |names: &[&str]| names.iter().map(|n| FieldName::new(*n).unwrap()).collect::<Vec<_>>();
        let sel = |names: &[&str]| Selection { fields: f(names), ..Selection::default() };
        let lead = model("Lead");
        let leads = Nested {
            order: vec![OrderBy::parse(&lead, "score_ASC").unwrap()],
            ..Nested::new(FieldName::new("leads").unwrap(), sel(&["name", "score", "tags"]))
        };
        let contact = model("Contact");
        let contacts = Nested {
            order: vec![OrderBy::parse(&contact, "lastName_ASC").unwrap()],
            ..Nested::new(FieldName::new("contacts").unwrap(), sel(&["firstName", "lastName"]).with(leads))
        };
        let owner_of_parent = Nested::new(FieldName::new("owner").unwrap(), sel(&["name", "skills", "away"]));
        let account = model("Account");
        let mut read = Read::new(&account);
        read.filter = crm_orm::Filter::parse(cat, &account, &json!({"id": common::id(&acc)})).unwrap();
        read.select = sel(&["name", "version"])
            .with(Nested::new(FieldName::new("parent").unwrap(), sel(&["name", "domain"]).with(owner_of_parent)))
            .with(contacts);
        let page = a.read(read).await.unwrap();
        let lead_of = |last: &str, score: i64| json!([{"name": format!("{last} lead"), "score": score, "tags": ["t,1", "NULL"]}]);
        let want = json!({
            "name": odd,
            "version": 1,
            "parent": {"name": " ", "domain": "", "owner": {"name": "NULL", "skills": ["a,b", "{c}"], "away": false}},
            "contacts": [
                {"firstName": null, "lastName": "(x)", "leads": lead_of("(x)", 2)},
                {"firstName": null, "lastName": "NULL", "leads": lead_of("NULL", 1)},
                {"firstName": null, "lastName": "O'Brien, \"Bob\"", "leads": lead_of("O'Brien, \"Bob\"", 0)},
                {"firstName": null, "lastName": "\\", "leads": lead_of("\\", 3)},
            ]
        });
        assert_eq!(page.rows, vec![want], "{}", b.name);
    }
}

/// A read dropped midway (its request cancelled) does not leave its connection to the next
/// read (on PostgreSQL, reads run on the read lane, which keeps a connection only after a
/// read ran to the end): every read after it, and reads waiting for a connection, answer as
/// before, for both tenants.
#[tokio::test]
async fn reads_after_dropped_reads_answer_as_before() {
    for b in backends().await {
        let (oa, ob) = (org(), org());
        let a = client(&b, principal(&oa, "admin-a", &["admin"]));
        let o = client(&b, principal(&ob, "admin-b", &["admin"]));
        for i in 0..30 {
            a.create("Lead", json!({"name": format!("L{i}")})).await.unwrap();
        }
        o.create("Lead", json!({"name": "B"})).await.unwrap();
        for round in 0..8u64 {
            // Dropped before, while or after its statement runs.
            let _ = tokio::time::timeout(std::time::Duration::from_micros(round * 150), a.list("Lead", json!({}), &[], page(30))).await;
            assert_eq!(a.count("Lead", json!({})).await, 30, "[{}] round {round}", b.name);
            assert_eq!(o.count("Lead", json!({})).await, 1, "[{}] round {round}", b.name);
        }
        // More reads at once than the lane has connections: they wait their turn.
        let (w, x, y, z) = tokio::join!(
            a.count("Lead", json!({})),
            o.count("Lead", json!({})),
            a.count("Lead", json!({"name": "L7"})),
            o.count("Lead", json!({"name": "L7"}))
        );
        assert_eq!((w, x, y, z), (30, 1, 1, 0), "[{}]", b.name);
    }
}

#[tokio::test]
async fn long_in_lists_match_exactly_whatever_the_text() {
    // A list of 16 or more values is one array parameter on PostgreSQL: quotes, backslashes,
    // commas and braces in values must come through unchanged, and another tenant's rows stay out.
    for b in backends().await {
        let a = client(&b, principal(&org(), "admin", &["admin"]));
        let other = client(&b, principal(&org(), "admin", &["admin"]));
        let names: Vec<String> = (0..20)
            .map(|i| match i % 5 {
                0 => format!("plain {i}"),
                1 => format!("quote \"{i}\""),
                2 => format!("back\\slash {i}"),
                3 => format!("comma, {{brace}} {i}"),
                _ => format!("NULL {i}"),
            })
            .collect();
        let mut ids = Vec::new();
        for n in &names {
            ids.push(common::id(&a.create("Lead", json!({ "name": n })).await.unwrap()));
            other.create("Lead", json!({ "name": n })).await.unwrap();
        }
        assert_eq!(a.count("Lead", json!({ "name_in": names })).await, 20, "{}", b.name);
        assert_eq!(a.count("Lead", json!({ "name_in": names[..17] })).await, 17, "{}", b.name);
        assert_eq!(a.count("Lead", json!({ "name_not_in": names[..17] })).await, 3, "{}", b.name);
        assert_eq!(a.count("Lead", json!({ "id_in": ids })).await, 20, "{}", b.name);
        let mut with_null: Vec<Json> = names[..16].iter().map(|n| json!(n)).collect();
        with_null.push(Json::Null);
        assert_eq!(a.count("Lead", json!({ "name_in": with_null })).await, 16, "{}", b.name);
    }
}

/// Attaches a file record to `subject` as the platform does (its fields are read-only for
/// clients).
struct Attach {
    subject: Json,
}

impl crm_orm::TxWork for Attach {
    type Output = uuid::Uuid;
    fn run<'a>(&'a self, tx: &'a mut crm_orm::TxCtx<'_>) -> crm_orm::TxFuture<'a, uuid::Uuid> {
        Box::pin(async move {
            let input =
                json!({"subject": self.subject, "fileName": "a.pdf", "contentType": "application/pdf", "size": 3, "status": "READY"});
            tx.create("Attachment", &input).await
        })
    }
}

#[tokio::test]
async fn destroying_a_record_destroys_what_cascades_to_it_through_a_polymorphic_reference() {
    for b in backends().await {
        let (o1, o2) = (org(), org());
        let a = client(&b, principal(&o1, "admin-1", &["admin"]));
        let other = client(&b, principal(&o2, "admin-2", &["admin"]));
        let access = |c: &common::Client<'_>| crm_orm::access(c.cat(), &c.policy, &c.p);
        let lead = a.create("Lead", json!({"name": "Ada"})).await.unwrap();
        let kept = a.create("Lead", json!({"name": "Bea"})).await.unwrap();
        let ref_of = |l: &Json| json!({"type": "Lead", "id": id(l)});

        // Clients cannot write the platform's fields.
        let refused = a.create("Attachment", json!({"subject": ref_of(&lead), "fileName": "x.pdf"})).await.unwrap_err();
        assert!(matches!(&refused, OrmError::BadInput { path, .. } if path == "data.subject"), "{}: {refused:?}", b.name);
        // Another tenant cannot attach to the lead (it does not exist for them).
        let theirs = other.store.transaction(&access(&other), &Attach { subject: ref_of(&lead) }).await.unwrap_err();
        assert_eq!(theirs.code(), crm_model::ErrorCode::NotFound, "{}", b.name);
        let other_lead = other.create("Lead", json!({"name": "Other"})).await.unwrap();
        other.store.transaction(&access(&other), &Attach { subject: ref_of(&other_lead) }).await.unwrap();

        for _ in 0..2 {
            a.store.transaction(&access(&a), &Attach { subject: ref_of(&lead) }).await.unwrap();
        }
        a.store.transaction(&access(&a), &Attach { subject: ref_of(&kept) }).await.unwrap();
        a.create("Activity", json!({"kind": "NOTE", "subject": ref_of(&lead)})).await.unwrap();
        let on = |l: &Json| json!({"subject": ref_of(l)});
        assert_eq!(a.count("Attachment", on(&lead)).await, 2, "{}: equality on a polymorphic reference", b.name);
        assert_eq!(a.count("Attachment", json!({"subject_not": ref_of(&lead)})).await, 1, "{}", b.name);

        // Moving the lead to the trash keeps its attachments; destroying it destroys them (the
        // activity's reference is cleared), and nothing of the other lead or tenant.
        a.delete("Lead", by_id(&lead), None).await.unwrap();
        assert_eq!(a.count("Attachment", on(&lead)).await, 2, "{}", b.name);
        a.destroy("Lead", by_id(&lead)).await.unwrap();
        assert_eq!(a.count("Attachment", on(&lead)).await, 0, "{}", b.name);
        assert_eq!(a.count("Attachment", json!({})).await, 1, "{}", b.name);
        assert_eq!(a.values("Activity", json!({}), &[], "subject").await, vec![json!(null)], "{}", b.name);
        assert_eq!(other.count("Attachment", on(&other_lead)).await, 1, "{}", b.name);
        // Each destroyed attachment has its event (the files consumer removes its object).
        let events = a.store.cross_tenant_platform_work().events_after(&o1, 0, 1000).await.unwrap();
        let destroyed = events.iter().filter(|e| e.kind == "attachment.destroyed").count();
        assert_eq!(destroyed, 2, "{}", b.name);
    }
}
