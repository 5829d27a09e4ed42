//! Quickstart: a custom model next to the standard catalog, on an SQLite file, used by two tenants.
//!
//! `cargo run -p crm-orm --example quickstart`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use crm_model::standard::standard_models;
use crm_model::{FieldDef, ModelDef, OrgId, RoleName, resolve};
use crm_orm::{Data, Filter, Op, OrderBy, Page, Policy, Principal, Read, Selection, Store, StoreOptions, Write, WriteResult, authorize};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. Declare a model with the builder, next to the standard ones.
    let mut models = standard_models();
    models.push(
        ModelDef::new("Project")
            .describe("A customer project.")
            .field(FieldDef::text("name").required().searchable())
            .field(FieldDef::relation("account", "Account"))
            .field(FieldDef::money("budget"))
            .field(FieldDef::select("phase", &["PLANNED", "RUNNING", "DONE"]).default_value(json!("PLANNED"))),
    );
    let catalog = Arc::new(resolve(&models)?);

    // 2. Connect and create the tables (idempotent).
    let path = std::env::temp_dir().join(format!("crm-quickstart-{}.db", std::process::id()));
    let store = Store::connect(&format!("sqlite://{}", path.display()), catalog.clone(), StoreOptions::default()).await?;
    store.migrate().await?;

    let policy = Policy::default_roles();
    let tenant =
        |org: &str| Principal { sub: "admin".into(), org_id: OrgId::new(org).unwrap(), roles: vec![RoleName::new("admin").unwrap()] };
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let project = catalog.model("Project").unwrap().clone();

    // 3. Write: a project with a nested account, in one transaction.
    for (p, name) in [(&acme, "Website relaunch"), (&acme, "CRM rollout"), (&globex, "Globex secret plan")] {
        let data = Data::parse(
            &catalog,
            &project,
            &json!({"name": name, "budget": {"amount": "25000", "currency": "EUR"}, "account": {"create": {"name": format!("{} Inc", p.org_id)}}}),
            "data",
        )?;
        let w = authorize(&catalog, &policy, p, &project.name, Op::Create, Write::Create { model: project.name.clone(), data })?;
        if let WriteResult::One(Some(row)) = store.write(&w, &Selection::scalars(&project)).await? {
            println!("created in {}: {row}", p.org_id);
        }
    }

    // 4. Read: filter through the relation, order, paginate. Each tenant sees only its own rows.
    for p in [&acme, &globex] {
        let mut read = Read::new(&project);
        read.filter = Filter::parse(&catalog, &project, &json!({"account": {"name_contains": "inc"}, "phase": "PLANNED"}))?;
        read.order = vec![OrderBy::parse(&project, "name_ASC")?];
        read.page = Page { first: Some(10), ..Page::default() };
        read.count = true;
        let page = store.read(&authorize(&catalog, &policy, p, &project.name, Op::Read, read)?).await?;
        println!("{} sees {} project(s):", p.org_id, page.count.unwrap_or(0));
        for row in &page.rows {
            println!("  {} ({})", row["name"], row["budget"]);
        }
    }
    let _ = std::fs::remove_file(&path);
    Ok(())
}
