#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
//! IR -> SQL building, without a database: parse a where input, build the page statement and
//! render it to SQL + bound values.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use crm_model::standard::standard_catalog;
use crm_model::{Catalog, FieldName, ModelName, OrgId, RoleName};
use crm_orm::sql::Builder;
use crm_orm::{Access, Dialect, Filter, Limits, Nested, Op, OrderBy, Page, Policy, Principal, Read, Selection, authorize};
use serde_json::{Value as Json, json};

fn access(cat: &Catalog, model: &str) -> Access {
    let policy = Policy::default_roles();
    let p =
        Principal { sub: "user-bench".to_owned(), org_id: OrgId::new("org-bench").unwrap(), roles: vec![RoleName::new("sales").unwrap()] };
    authorize(cat, &policy, &p, &ModelName::new(model).unwrap(), Op::Read, ()).unwrap().access().clone()
}

/// A realistic list filter: statuses, a score range, a text match or tag, a related account.
fn lead_where() -> Json {
    json!({
        "status_in": ["NEW", "QUALIFIED", "CONTACTED"],
        "score_gte": 40,
        "convertedAt": null,
        "OR": [
            {"email_ends_with": "@analytical.example"},
            {"tags_contains_some": ["vip", "eu"]},
            {"name_contains": "ada"}
        ],
        "account": {"name_starts_with": "Analytical", "size_in": ["LARGE", "ENTERPRISE"]},
        "_search": "lovelace"
    })
}

/// Parse + build + render one Lead list page.
fn lead_page(cat: &Catalog, access: &Access, d: Dialect, where_json: &Json) -> usize {
    let lead = cat.model("Lead").unwrap();
    let mut read = Read::new(lead);
    read.filter = Filter::parse(cat, lead, where_json).unwrap();
    read.order = vec![OrderBy::parse(lead, "createdAt_DESC").unwrap(), OrderBy::parse(lead, "name_ASC").unwrap()];
    read.page.first = Some(25);
    let (stmt, _) = Builder::new(d, cat, access, Limits::default()).select_page(&read).unwrap();
    let (sql, values) = d.build(&stmt);
    sql.len() + values.0.0.len()
}

fn sel(names: &[&str]) -> Selection {
    Selection { fields: names.iter().map(|n| FieldName::new(*n).unwrap()).collect(), nested: Vec::new(), ..Selection::default() }
}

/// Build + render an Account page with its parent and 5 contacts each (with their owner).
fn account_nested(cat: &Catalog, access: &Access, d: Dialect) -> usize {
    let account = cat.model("Account").unwrap();
    let contact = cat.model("Contact").unwrap();
    let contacts = Nested {
        page: Page { first: Some(5), ..Page::default() },
        order: vec![OrderBy::parse(contact, "lastName_ASC").unwrap()],
        ..Nested::new(
            FieldName::new("contacts").unwrap(),
            sel(&["firstName", "lastName", "email", "phone"]).with(Nested::new(FieldName::new("owner").unwrap(), sel(&["name"]))),
        )
    };
    let mut read = Read::new(account);
    read.select = sel(&["name", "domain", "industry", "size"])
        .with(Nested::new(FieldName::new("parent").unwrap(), sel(&["name", "domain"])))
        .with(contacts);
    read.order = vec![OrderBy::parse(account, "name_ASC").unwrap()];
    read.page.first = Some(20);
    let (stmt, _) = Builder::new(d, cat, access, Limits::default()).select_page(&read).unwrap();
    let (sql, values) = d.build(&stmt);
    sql.len() + values.0.0.len()
}

fn bench(c: &mut Criterion) {
    let cat = standard_catalog().unwrap();
    let lead_access = access(&cat, "Lead");
    let account_access = access(&cat, "Account");
    let w = lead_where();

    let mut g = c.benchmark_group("sql_build");
    g.bench_function("lead_page_parse_build/postgres", |b| {
        b.iter(|| lead_page(black_box(&cat), black_box(&lead_access), Dialect::Postgres, black_box(&w)));
    });
    g.bench_function("lead_page_parse_build/sqlite", |b| {
        b.iter(|| lead_page(black_box(&cat), black_box(&lead_access), Dialect::Sqlite, black_box(&w)));
    });
    g.bench_function("account_nested/postgres", |b| {
        b.iter(|| account_nested(black_box(&cat), black_box(&account_access), Dialect::Postgres));
    });
    g.bench_function("account_nested/sqlite", |b| {
        b.iter(|| account_nested(black_box(&cat), black_box(&account_access), Dialect::Sqlite));
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
