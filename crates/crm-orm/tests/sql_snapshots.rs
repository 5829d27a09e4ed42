#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
//! Snapshots of the SQL the builder generates, with its bound parameters, on both dialects. No
//! database: this is the pure translation stage (IR + scope -> SQL + values).
//!
//! Every rendered statement is also checked, not only snapshotted:
//! - the root table carries `"t0"."org_id" = <placeholder>` bound to the principal's tenant, and
//!   every related table joined in a subquery is linked to its parent's `org_id`;
//! - placeholders are numbered consistently with the values (`$1..$n` in order on PostgreSQL, one
//!   `?` per value on SQLite);
//! - no user-supplied string appears in the SQL text, and every single-quoted literal in the SQL
//!   is one of the builder's static templates or a validated JSON key.
//!
//! Operator cases render the `COUNT(*)` statement (the same filter compiler as a page, without
//! the row-JSON noise); page, ordering and nested-selection cases render `select_page`.

use std::collections::HashMap;

use crm_model::standard::standard_catalog;
use crm_model::{Catalog, FieldName, Model, ModelName, OrgId, RoleName};
use crm_orm::sql::{Builder, encode_cursor};
use crm_orm::{
    Access, Dialect, Filter, Grant, Limits, Nested, Op, OrderBy, OrmError, Page, Policy, Principal, Read, RolePolicy, Selection, authorize,
};
use render::render;
use sea_query::{Alias, Expr, Query};

mod render;
use serde_json::{Value as Json, json};

const DIALECTS: [(Dialect, &str); 2] = [(Dialect::Sqlite, "sqlite"), (Dialect::Postgres, "postgres")];
const ORG_A: &str = "org-a-1111";
const ORG_B: &str = "org-b-2222";
const SUB_A: &str = "user-a-admin";
const SUB_B: &str = "user-b-sales";
const ID_1: &str = "0190f5a2-7c1e-7a3b-9d4e-5f6a7b8c9d0e";

// ---------------------------------------------------------------------------------------------
// Fixture

struct Fx {
    cat: Catalog,
    policy: Policy,
}

impl Fx {
    fn new() -> Self {
        Fx { cat: standard_catalog().unwrap(), policy: Policy::default_roles() }
    }

    fn with_policy(policy: Policy) -> Self {
        Fx { cat: standard_catalog().unwrap(), policy }
    }

    fn model(&self, name: &str) -> &Model {
        self.cat.model(name).unwrap()
    }

    fn authorize(&self, p: &Principal, model: &str, op: Op) -> Result<Access, OrmError> {
        authorize(&self.cat, &self.policy, p, &ModelName::new(model).unwrap(), op, ()).map(|s| s.access().clone())
    }

    fn access(&self, p: &Principal, model: &str, op: Op) -> Access {
        self.authorize(p, model, op).unwrap()
    }

    fn builder<'a>(&'a self, d: Dialect, access: &'a Access) -> Builder<'a> {
        Builder::new(d, &self.cat, access, Limits::default())
    }

    fn read(&self, model: &str, where_json: &Json) -> Read {
        let m = self.model(model);
        let mut read = Read::new(m);
        read.filter = Filter::parse(&self.cat, m, where_json).unwrap();
        read
    }
}

fn principal(org: &str, sub: &str, roles: &[&str]) -> Principal {
    Principal { sub: sub.to_owned(), org_id: OrgId::new(org).unwrap(), roles: roles.iter().map(|r| RoleName::new(*r).unwrap()).collect() }
}

fn admin_a() -> Principal {
    principal(ORG_A, SUB_A, &["admin"])
}

fn sales_b() -> Principal {
    principal(ORG_B, SUB_B, &["sales"])
}

fn field(name: &str) -> FieldName {
    FieldName::new(name).unwrap()
}

fn fields(names: &[&str]) -> Vec<FieldName> {
    names.iter().map(|n| field(n)).collect()
}

fn order(model: &Model, keys: &[&str]) -> Vec<OrderBy> {
    keys.iter().map(|k| OrderBy::parse(model, k).unwrap()).collect()
}

// ---------------------------------------------------------------------------------------------
// Rendering and invariants

/// Every string inside a JSON input (keys excluded), the user-supplied text of a where input.
fn strings(j: &Json) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![j];
    while let Some(j) = stack.pop() {
        match j {
            Json::String(s) => out.push(s.clone()),
            Json::Array(a) => stack.extend(a),
            Json::Object(o) => stack.extend(o.values()),
            _ => {}
        }
    }
    out
}

fn header(title: &str, who: &Principal, d: &str) -> String {
    format!("-- {title}\n-- as {} of {} ({d})\n", who.sub, who.org_id)
}

// ---------------------------------------------------------------------------------------------
// Filter cases: one COUNT statement per case and dialect (admin of org A), checked for both
// principals (admin of org A, sales of org B).

fn filter_case(fx: &Fx, name: &str, model: &str, where_json: &Json) {
    let user = strings(where_json);
    for (d, dn) in DIALECTS {
        let mut snapshot = None;
        for p in [admin_a(), sales_b()] {
            let access = fx.access(&p, model, Op::Read);
            let read = fx.read(model, where_json);
            let stmt = fx.builder(d, &access).count(&read).unwrap();
            let r = render(d, &stmt);
            r.check(p.org_id.as_str(), &user);
            if snapshot.is_none() {
                snapshot = Some(format!("{}{}", header(&format!("{model} where {where_json}"), &p, dn), r.text()));
            }
        }
        insta::assert_snapshot!(format!("{name}__{dn}"), snapshot.unwrap());
    }
}

#[test]
fn scalar_operators() {
    let fx = Fx::new();
    let cases: Vec<(&str, &str, Json)> = vec![
        // text
        ("op_eq_text", "Lead", json!({"name": "Ada Lovelace"})),
        ("op_not_text", "Lead", json!({"name_not": "Ada Lovelace"})),
        ("op_in_text", "Lead", json!({"email_in": ["ada@analytical.example", "grace@cobol.example"]})),
        ("op_not_in_text", "Lead", json!({"email_not_in": ["ada@analytical.example", "grace@cobol.example"]})),
        ("op_contains", "Lead", json!({"email_contains": "Analytical"})),
        ("op_not_contains", "Lead", json!({"email_not_contains": "Analytical"})),
        ("op_starts_with_escaped", "Lead", json!({"name_starts_with": "Ad_a 100%\\"})),
        ("op_not_starts_with", "Lead", json!({"name_not_starts_with": "Ada"})),
        ("op_ends_with", "Lead", json!({"email_ends_with": "@Analytical.example"})),
        ("op_not_ends_with", "Lead", json!({"email_not_ends_with": "@analytical.example"})),
        // select
        ("op_eq_select", "Lead", json!({"status": "QUALIFIED"})),
        ("op_not_select", "Lead", json!({"status_not": "REJECTED"})),
        ("op_in_select", "Lead", json!({"status_in": ["NEW", "QUALIFIED"]})),
        ("op_not_in_select", "Lead", json!({"status_not_in": ["CONVERTED", "REJECTED"]})),
        // int
        ("op_eq_int", "Lead", json!({"score": 42})),
        ("op_not_int", "Lead", json!({"score_not": 42})),
        ("op_in_int", "Lead", json!({"score_in": [10, 20, 30]})),
        ("op_lt_int", "Lead", json!({"score_lt": 10})),
        ("op_lte_int", "Lead", json!({"score_lte": 20})),
        ("op_gt_int", "Lead", json!({"score_gt": 30})),
        ("op_gte_int", "Lead", json!({"score_gte": 40})),
        // date-time
        ("op_gte_datetime", "Lead", json!({"convertedAt_gte": "2024-01-01T00:00:00Z"})),
        ("op_lt_datetime_offset", "Lead", json!({"convertedAt_lt": "2024-07-01T12:30:00+02:00"})),
        ("op_eq_datetime", "Lead", json!({"convertedAt": "2024-03-15T09:45:30.123Z"})),
        // lists
        ("op_contains_all", "Lead", json!({"tags_contains_all": ["vip-tag", "eu-tag"]})),
        ("op_contains_some", "Lead", json!({"tags_contains_some": ["vip-tag", "eu-tag"]})),
        ("op_contains_none", "Lead", json!({"tags_contains_none": ["spam-tag"]})),
        ("op_contains_all_empty", "Lead", json!({"tags_contains_all": []})),
        // money and date
        ("op_gt_money", "Opportunity", json!({"amount_gt": "1000.50"})),
        ("op_lte_money_number", "Opportunity", json!({"amount_lte": 250_000})),
        ("op_in_money", "Opportunity", json!({"amount_in": ["10", "20.5"]})),
        ("op_lt_date", "Opportunity", json!({"expectedCloseDate_lt": "2024-12-31"})),
        ("op_gte_date", "Opportunity", json!({"expectedCloseDate_gte": "2024-01-01"})),
        // system field and to-one id
        ("op_eq_id", "Lead", json!({"id": ID_1})),
        ("op_in_to_one_id", "Lead", json!({"owner_in": [ID_1]})),
    ];
    for (name, model, w) in &cases {
        filter_case(&fx, name, model, w);
    }
}

#[test]
fn null_semantics() {
    let fx = Fx::new();
    let cases: Vec<(&str, &str, Json)> = vec![
        ("null_eq", "Lead", json!({"email": null})),
        ("null_not", "Lead", json!({"email_not": null})),
        ("null_in_with_null", "Lead", json!({"email_in": ["ada@analytical.example", null]})),
        ("null_not_in_with_null", "Lead", json!({"email_not_in": ["ada@analytical.example", null]})),
        ("null_in_only_null", "Lead", json!({"score_in": [null]})),
        ("null_in_empty", "Lead", json!({"email_in": []})),
        ("null_not_in_empty", "Lead", json!({"email_not_in": []})),
    ];
    for (name, model, w) in &cases {
        filter_case(&fx, name, model, w);
    }
    // Only equality compares with null.
    let lead = fx.model("Lead");
    assert!(Filter::parse(&fx.cat, lead, &json!({"score_lt": null})).is_err());
    assert!(Filter::parse(&fx.cat, lead, &json!({"email_contains": null})).is_err());
}

#[test]
fn logic_and_search() {
    let fx = Fx::new();
    let cases: Vec<(&str, &str, Json)> = vec![
        ("logic_implicit_and", "Lead", json!({"status": "NEW", "score_gte": 50, "email_ends_with": "@analytical.example"})),
        ("logic_and", "Lead", json!({"AND": [{"status": "NEW"}, {"score_gte": 50}]})),
        ("logic_or", "Lead", json!({"OR": [{"status": "NEW"}, {"score_gte": 50}, {"email": null}]})),
        ("logic_not", "Lead", json!({"NOT": [{"status": "REJECTED"}, {"score_lt": 10}]})),
        (
            "logic_nested",
            "Lead",
            json!({"OR": [{"AND": [{"status": "NEW"}, {"NOT": [{"tags_contains_some": ["spam-tag"]}]}]}, {"score_gt": 90}]}),
        ),
        ("logic_empty_or", "Lead", json!({"OR": []})),
        ("logic_empty_and", "Lead", json!({"AND": []})),
        ("search", "Lead", json!({"_search": "Ada Lovelace"})),
        ("search_with_filter", "Contact", json!({"_search": "O'Brien_%", "account": {"name_contains": "Widgets"}})),
    ];
    for (name, model, w) in &cases {
        filter_case(&fx, name, model, w);
    }
}

#[test]
fn relation_filters() {
    let fx = Fx::new();
    let cases: Vec<(&str, &str, Json)> = vec![
        ("to_one", "Lead", json!({"account": {"name": "Analytical Engines Ltd"}})),
        ("to_one_null", "Lead", json!({"account": null})),
        ("to_one_nested", "Lead", json!({"account": {"parent": {"name_starts_with": "Holding"}}})),
        ("to_one_owner_member", "Lead", json!({"owner": {"sub": "zitadel-user-77"}})),
        ("to_many_some", "Account", json!({"contacts_some": {"lastName": "Lovelace"}})),
        ("to_many_every", "Account", json!({"contacts_every": {"email_ends_with": "@analytical.example"}})),
        ("to_many_none", "Account", json!({"contacts_none": {"email": null}})),
        ("to_many_some_empty_filter", "Account", json!({"contacts_some": {}})),
        ("to_many_nested", "Account", json!({"opportunities_some": {"amount_gt": "5000", "account": {"domain": "analytical.example"}}})),
    ];
    for (name, model, w) in &cases {
        filter_case(&fx, name, model, w);
    }
}

// ---------------------------------------------------------------------------------------------
// Page cases: select_page (row JSON, cursor keys, ordering, keyset predicate, limit).

fn page_case(fx: &Fx, name: &str, read: &Read, extra_user: &[&str]) {
    let mut user = strings(&json!(null));
    user.extend(extra_user.iter().map(|s| (*s).to_owned()));
    for (d, dn) in DIALECTS {
        let mut snapshot = None;
        for p in [admin_a(), sales_b()] {
            let access = fx.access(&p, read.model.as_str(), Op::Read);
            let (stmt, plan) = fx.builder(d, &access).select_page(read).unwrap();
            let r = render(d, &stmt);
            r.check(p.org_id.as_str(), &user);
            if snapshot.is_none() {
                let title = format!(
                    "{} page: order {:?}, page {:?}\n-- plan {plan:?}",
                    read.model,
                    read.order.iter().map(|o| format!("{}{}", o.field, if o.desc { "_DESC" } else { "_ASC" })).collect::<Vec<_>>(),
                    read.page
                );
                snapshot = Some(format!("{}{}", header(&title, &p, dn), r.text()));
            }
        }
        insta::assert_snapshot!(format!("{name}__{dn}"), snapshot.unwrap());
    }
}

#[test]
fn list_page_all_scalars() {
    let fx = Fx::new();
    let w = json!({"status_in": ["NEW", "QUALIFIED"], "score_gte": 50, "OR": [{"email_ends_with": "@analytical.example"}, {"tags_contains_some": ["vip-tag"]}]});
    let lead = fx.model("Lead");
    let mut read = fx.read("Lead", &w);
    read.order = order(lead, &["createdAt_DESC"]);
    read.page.first = Some(20);
    let user: Vec<String> = strings(&w);
    let user: Vec<&str> = user.iter().map(String::as_str).collect();
    page_case(&fx, "page_lead_scalars", &read, &user);

    // Every scalar type's JSON form, money and date included.
    let mut read = fx.read("Opportunity", &json!({}));
    read.page.first = Some(5);
    page_case(&fx, "page_opportunity_scalars", &read, &[]);
}

#[test]
fn ordering_multiple_keys() {
    let fx = Fx::new();
    let lead = fx.model("Lead");
    let mut read = fx.read("Lead", &json!({}));
    read.select = Selection { fields: fields(&["name", "status", "score", "convertedAt"]), nested: Vec::new(), ..Selection::default() };
    read.order = order(lead, &["status_ASC", "score_DESC", "convertedAt_ASC"]);
    page_case(&fx, "order_multi_keys", &read, &[]);
}

#[test]
fn pages_with_cursors() {
    let fx = Fx::new();
    let lead = fx.model("Lead");
    let select = Selection { fields: fields(&["name", "score"]), nested: Vec::new(), ..Selection::default() };

    // Forward after a cursor.
    let mut read = fx.read("Lead", &json!({"status": "NEW"}));
    read.select = select.clone();
    read.order = order(lead, &["name_ASC"]);
    read.page.first = Some(5);
    read.page.after = Some(encode_cursor("name:a,id", &format!(r#"["Cursor Ada","{ID_1}"]"#)));
    page_case(&fx, "page_after_cursor", &read, &["Cursor Ada"]);

    // Backward: last 5 before a cursor whose first key is null, with skip.
    let mut read = fx.read("Lead", &json!({}));
    read.select = select.clone();
    read.order = order(lead, &["score_DESC", "name_ASC"]);
    read.page.last = Some(5);
    read.page.skip = 2;
    read.page.before = Some(encode_cursor("score:d,name:a,id", &format!(r#"[null,"Cursor Bob","{ID_1}"]"#)));
    page_case(&fx, "page_before_last", &read, &["Cursor Bob"]);

    // Backward with `last` only (from the end).
    let mut read = fx.read("Lead", &json!({}));
    read.select = select.clone();
    read.order = order(lead, &["score_DESC"]);
    read.page.last = Some(3);
    page_case(&fx, "page_last_only", &read, &[]);

    // Ascending after a null key: only the tie-breaker can advance.
    let mut read = fx.read("Lead", &json!({}));
    read.select = select.clone();
    read.order = order(lead, &["score_ASC"]);
    read.page.after = Some(encode_cursor("score:a,id", &format!(r#"[null,"{ID_1}"]"#)));
    page_case(&fx, "page_after_null_key", &read, &[]);

    // Date-time key after a cursor.
    let mut read = fx.read("Lead", &json!({}));
    read.select = select;
    read.order = order(lead, &["createdAt_DESC"]);
    read.page.after = Some(encode_cursor("createdAt:d,id:d", &format!(r#"["2024-05-01T10:00:00.000000Z","{ID_1}"]"#)));
    page_case(&fx, "page_after_datetime_key", &read, &[]);

    // A cursor of another ordering, `first` with `before`, and a page above the maximum are refused.
    let admin = admin_a();
    let access = fx.access(&admin, "Lead", Op::Read);
    let mut read = fx.read("Lead", &json!({}));
    read.order = order(lead, &["score_DESC"]);
    read.page.after = Some(encode_cursor("name:a,id", &format!(r#"["x","{ID_1}"]"#)));
    assert!(matches!(fx.builder(Dialect::Postgres, &access).select_page(&read), Err(OrmError::BadInput { .. })));
    let mut read = fx.read("Lead", &json!({}));
    read.page.first = Some(5);
    read.page.before = Some(encode_cursor("id", &format!(r#"["{ID_1}"]"#)));
    assert!(matches!(fx.builder(Dialect::Postgres, &access).select_page(&read), Err(OrmError::BadInput { .. })));
    let mut read = fx.read("Lead", &json!({}));
    read.page.first = Some(101);
    assert!(matches!(fx.builder(Dialect::Postgres, &access).select_page(&read), Err(OrmError::Limit(_))));
}

#[test]
fn nested_selection() {
    let fx = Fx::new();
    let account = fx.model("Account");
    let contact = fx.model("Contact");
    let lead = fx.model("Lead");
    let leads = Nested {
        page: Page { first: Some(3), ..Page::default() },
        filter: Filter::parse(&fx.cat, lead, &json!({"status_not": "REJECTED"})).unwrap(),
        order: order(lead, &["createdAt_DESC"]),
        ..Nested::new(field("leads"), Selection { fields: fields(&["name", "status"]), nested: Vec::new(), ..Selection::default() })
    };
    let contact_sel = Selection { fields: fields(&["firstName", "lastName", "email"]), nested: Vec::new(), ..Selection::default() }
        .with(Nested::new(field("owner"), Selection { fields: fields(&["name"]), nested: Vec::new(), ..Selection::default() }))
        .with(leads);
    let contacts = Nested {
        page: Page { first: Some(5), ..Page::default() },
        order: order(contact, &["lastName_ASC"]),
        ..Nested::new(field("contacts"), contact_sel)
    };
    let mut read = fx.read("Account", &json!({"name_starts_with": "Analytical"}));
    read.select = Selection { fields: fields(&["name", "domain"]), nested: Vec::new(), ..Selection::default() }
        .with(Nested::new(field("parent"), Selection { fields: fields(&["name"]), nested: Vec::new(), ..Selection::default() }))
        .with(contacts);
    read.order = order(account, &["name_ASC"]);
    page_case(&fx, "nested_account_parent_contacts", &read, &["Analytical"]);

    // An alias key must be a plain identifier: anything else is refused, never quoted.
    let admin = admin_a();
    let access = fx.access(&admin, "Account", Op::Read);
    let mut bad = fx.read("Account", &json!({}));
    bad.select = Selection::default().with(Nested { key: "x') --".to_owned(), ..Nested::new(field("parent"), Selection::default()) });
    assert!(fx.builder(Dialect::Sqlite, &access).select_page(&bad).is_err());
    // A nested page above the maximum is refused.
    let mut big = fx.read("Account", &json!({}));
    big.select = Selection::default()
        .with(Nested { page: Page { first: Some(101), ..Page::default() }, ..Nested::new(field("contacts"), Selection::default()) });
    assert!(matches!(fx.builder(Dialect::Sqlite, &access).select_page(&big), Err(OrmError::Limit(_))));
}

#[test]
fn count_ignores_pagination() {
    let fx = Fx::new();
    let w = json!({"status_in": ["NEW", "QUALIFIED"], "account": {"name_contains": "Analytical"}});
    let user = strings(&w);
    let lead = fx.model("Lead");
    let mut read = fx.read("Lead", &w);
    read.order = order(lead, &["name_ASC"]);
    read.page.first = Some(5);
    read.page.after = Some(encode_cursor("name:a,id", &format!(r#"["Cursor Ada","{ID_1}"]"#)));
    for (d, dn) in DIALECTS {
        let mut snapshot = None;
        for p in [admin_a(), sales_b()] {
            let access = fx.access(&p, "Lead", Op::Read);
            let r = render(d, &fx.builder(d, &access).count(&read).unwrap());
            r.check(p.org_id.as_str(), &user);
            assert!(!r.sql.contains("LIMIT") && !r.sql.contains("ORDER BY"), "count must ignore pagination:\n{}", r.sql);
            if snapshot.is_none() {
                snapshot = Some(format!("{}{}", header(&format!("count Lead where {w} (page given, ignored)"), &p, dn), r.text()));
            }
        }
        insta::assert_snapshot!(format!("count__{dn}"), snapshot.unwrap());
    }
}

// ---------------------------------------------------------------------------------------------
// Tenancy and fail-closed scope.

/// The same page as two principals of two tenants: only the bound `org_id` differs.
#[test]
fn two_tenants_differ_only_in_org_param() {
    let fx = Fx::new();
    let lead = fx.model("Lead");
    let w = json!({"account": {"name": "Analytical Engines Ltd"}, "contact": null});
    let mut read = fx.read("Lead", &w);
    read.select = Selection { fields: fields(&["name"]), nested: Vec::new(), ..Selection::default() };
    read.order = order(lead, &["name_ASC"]);
    for (d, dn) in DIALECTS {
        let mut text = String::new();
        let mut rendered = Vec::new();
        for p in [admin_a(), sales_b()] {
            let access = fx.access(&p, "Lead", Op::Read);
            let (stmt, _) = fx.builder(d, &access).select_page(&read).unwrap();
            let r = render(d, &stmt);
            r.check(p.org_id.as_str(), &strings(&w));
            text.push_str(&header(&format!("Lead where {w}"), &p, dn));
            text.push_str(&r.text());
            text.push('\n');
            rendered.push(r);
        }
        assert_eq!(rendered[0].sql, rendered[1].sql, "the SQL text must not depend on the tenant");
        assert_ne!(rendered[0].values, rendered[1].values);
        let differing: Vec<usize> = (0..rendered[0].values.len()).filter(|i| rendered[0].values[*i] != rendered[1].values[*i]).collect();
        assert_eq!(differing.len(), 1, "only the org_id parameter differs");
        assert_eq!(rendered[0].values[differing[0]], sea_query::Value::String(Some(ORG_A.to_owned())));
        assert_eq!(rendered[1].values[differing[0]], sea_query::Value::String(Some(ORG_B.to_owned())));
        insta::assert_snapshot!(format!("two_tenants__{dn}"), text);
    }
}

fn lead_only_policy() -> Policy {
    let mut models = HashMap::new();
    models.insert(ModelName::new("Lead").unwrap(), Grant::READ);
    let mut roles = HashMap::new();
    roles.insert(RoleName::new("leadreader").unwrap(), RolePolicy { default: Grant::default(), models, ..RolePolicy::default() });
    Policy { roles }
}

/// A role granting read on Lead only: Contact is out of scope everywhere, as `FALSE`.
#[test]
fn fail_closed_without_grant() {
    let fx = Fx::with_policy(lead_only_policy());
    let p = principal(ORG_A, "user-a-leads", &["leadreader"]);
    assert!(matches!(fx.authorize(&p, "Contact", Op::Read), Err(OrmError::Forbidden(_))));
    assert!(matches!(fx.authorize(&p, "Lead", Op::Update), Err(OrmError::Forbidden(_))));
    let access = fx.access(&p, "Lead", Op::Read);
    let contact = fx.model("Contact");
    let lead = fx.model("Lead");

    for (d, dn) in DIALECTS {
        // (1) The scope of a model without a grant is FALSE, whatever else it would contain.
        let scope = fx.builder(d, &access).scope(contact, "t0", Op::Read).unwrap();
        let stmt =
            Query::select().expr(Expr::cust("1")).from_as(Alias::new(contact.table.as_str()), Alias::new("t0")).cond_where(scope).take();
        let r = render(d, &stmt);
        r.check_placeholders();
        assert!(r.sql.ends_with("WHERE FALSE"), "no grant must render FALSE:\n{}", r.sql);
        insta::assert_snapshot!(
            format!("fail_closed_scope_contact__{dn}"),
            format!("{}{}", header("scope(Contact, t0, Read)", &p, dn), r.text())
        );

        // (2) A Lead filter through `contact` cannot probe contacts: FALSE inside the subquery.
        let w = json!({"contact": {"lastName": "Lovelace"}});
        let mut read = fx.read("Lead", &w);
        read.select = Selection { fields: fields(&["name"]), nested: Vec::new(), ..Selection::default() };
        let (stmt, _) = fx.builder(d, &access).select_page(&read).unwrap();
        let r = render(d, &stmt);
        r.check(ORG_A, &strings(&w));
        let sub = &r.sql[r.sql.find("EXISTS").expect("an EXISTS subquery")..];
        assert!(sub.contains("AND (FALSE) AND"), "the subquery over contacts must contain FALSE:\n{}", r.sql);
        insta::assert_snapshot!(
            format!("fail_closed_lead_filter_via_contact__{dn}"),
            format!("{}{}", header(&format!("Lead where {w}"), &p, dn), r.text())
        );

        // (3) Nor can a nested selection of `contact` return one.
        let mut read = fx.read("Lead", &json!({}));
        read.select = Selection { fields: fields(&["name"]), nested: Vec::new(), ..Selection::default() }
            .with(Nested::new(field("contact"), Selection { fields: fields(&["lastName"]), nested: Vec::new(), ..Selection::default() }));
        read.order = order(lead, &["name_ASC"]);
        let (stmt, _) = fx.builder(d, &access).select_page(&read).unwrap();
        let r = render(d, &stmt);
        r.check(ORG_A, &[]);
        assert!(r.sql.contains("AND (FALSE) AND"), "the nested contact must be scoped to FALSE:\n{}", r.sql);
        insta::assert_snapshot!(
            format!("fail_closed_lead_nested_contact__{dn}"),
            format!("{}{}", header("Lead { name contact { lastName } }", &p, dn), r.text())
        );

        // (4) A count of Lead through `contact` is also scoped.
        let mut b = fx.builder(d, &access);
        let r = render(d, &b.count(&fx.read("Lead", &json!({"contact": {"email": null}}))).unwrap());
        r.check(ORG_A, &[]);
        assert!(r.sql.contains("AND (FALSE) AND"), "{}", r.sql);
    }
}

/// The default `sales` role updates only own or unassigned leads; admins update all of them.
#[test]
fn sales_update_scope_own_or_unassigned() {
    let fx = Fx::new();
    let lead = fx.model("Lead");
    let w = json!({"status": "NEW"});
    let filter = Filter::parse(&fx.cat, lead, &w).unwrap();
    // Sales may not update members (read only) nor delete social events (no grant).
    assert!(matches!(fx.authorize(&sales_b(), "Member", Op::Update), Err(OrmError::Forbidden(_))));
    assert!(matches!(fx.authorize(&sales_b(), "SocialEvent", Op::Delete), Err(OrmError::Forbidden(_))));

    for (d, dn) in DIALECTS {
        let mut text = String::new();
        for (p, own) in [(sales_b(), true), (admin_a(), false)] {
            let access = fx.access(&p, "Lead", Op::Update);
            let stmt = fx.builder(d, &access).target_ids(lead, &filter, Op::Update, &[], None).unwrap();
            let r = render(d, &stmt);
            let mut user = strings(&w);
            user.push(p.sub.clone());
            r.check(p.org_id.as_str(), &user);
            let sub_bound = r.values.contains(&sea_query::Value::String(Some(p.sub.clone())));
            let unassigned = r.sql.contains("\"t0\".\"owner_id\" IS NULL");
            assert_eq!(sub_bound, own, "the caller's sub is bound only for the own-rows rule:\n{}", r.text());
            assert_eq!(unassigned, own, "the unassigned branch only for the own-rows rule:\n{}", r.sql);
            if own {
                // The owner is a member whose `sub` is the caller's, in the same tenant.
                assert!(r.sql.contains("\"t1\".\"org_id\" = \"t0\".\"org_id\""), "{}", r.sql);
                assert!(r.sql.contains("\"t1\".\"id\" = \"t0\".\"owner_id\""), "{}", r.sql);
            }
            text.push_str(&header(&format!("target_ids(Lead, Update) where {w}"), &p, dn));
            text.push_str(&r.text());
            text.push('\n');
        }
        insta::assert_snapshot!(format!("sales_update_scope_lead__{dn}"), text);

        // The read scope of the same sales user is the tenant alone.
        let access = fx.access(&sales_b(), "Lead", Op::Read);
        let scope = fx.builder(d, &access).scope(lead, "t0", Op::Read).unwrap();
        let stmt =
            Query::select().expr(Expr::cust("1")).from_as(Alias::new(lead.table.as_str()), Alias::new("t0")).cond_where(scope).take();
        let r = render(d, &stmt);
        r.check(ORG_B, &[]);
        assert_eq!(r.values.len(), 1, "{}", r.text());
    }
}
