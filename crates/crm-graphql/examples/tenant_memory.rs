//! The memory one cached tenant schema takes: builds the schemas of many tenants with the custom
//! definitions of the tenant-schema benchmark (20 custom fields on Lead, a custom object and its
//! inverse), keeps them all, and reports the heap bytes still allocated per schema (and per
//! catalog alone), counted by an instrumented allocator; both the executor's schema and the
//! schema as data derived from the base one (`crm_graphql::types`), for those tenants and for
//! tenants with three custom fields of their own.
//!
//! `cargo run --release -p crm-graphql --example tenant_memory`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::indexing_slicing)]
#![allow(clippy::cast_precision_loss, clippy::cast_possible_wrap, clippy::cast_possible_truncation, clippy::missing_panics_doc)] // a measuring program: arithmetic on counts, sizes and durations far inside the casts' range; it stops at the first failure

use std::alloc::System;
use std::sync::Arc;

use crm_graphql::types::Derived;
use crm_graphql::{SchemaOptions, build_schema};
use crm_model::standard::standard_catalog;
use crm_model::{Extension, FieldDef};
use serde_json::json;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

mod tenant_defs;

const TENANTS: usize = 50;

fn retained(region: &Region<'_, System>) -> isize {
    let s = region.change();
    // A reallocation's growth is in `bytes_allocated` already (and its shrinking in
    // `bytes_deallocated`); `bytes_reallocated` only sums them again.
    s.bytes_allocated as isize - s.bytes_deallocated as isize
}

fn main() {
    let base = Arc::new(standard_catalog().unwrap());
    let ext = tenant_defs::extension();
    // Warm up lazily initialised statics (regex, async-graphql) outside the measurement.
    drop(build_schema(&Arc::new(base.extend(&ext).unwrap()), &SchemaOptions::default()).unwrap());

    let region = Region::new(GLOBAL);
    let catalogs: Vec<_> = (0..TENANTS).map(|_| Arc::new(base.extend(&ext).unwrap())).collect();
    let per_catalog = retained(&region) / TENANTS as isize;

    let region = Region::new(GLOBAL);
    let schemas: Vec<_> = catalogs.iter().map(|c| build_schema(&c.clone(), &SchemaOptions::default()).unwrap()).collect();
    let per_schema = retained(&region) / TENANTS as isize;

    let region = Region::new(GLOBAL);
    let shared: Vec<_> = (0..TENANTS).map(|_| build_schema(&base.clone(), &SchemaOptions::default()).unwrap()).collect();
    let per_base = retained(&region) / TENANTS as isize;

    // Per model of the base catalog, for scale: a schema's size grows with its models.
    let one = Arc::new(crm_model::resolve(&base.base_defs()[..1]).unwrap());
    let region = Region::new(GLOBAL);
    let s = build_schema(&one, &SchemaOptions::default()).unwrap();
    let per_model = retained(&region);
    drop(s);

    // The schema as data, derived from the base schema.
    let derived = Derived::base(Arc::clone(&base)).unwrap();
    let region = Region::new(GLOBAL);
    let started = std::time::Instant::now();
    let data: Vec<_> = catalogs.iter().map(|c| derived.tenant(c).unwrap()).collect();
    let data_time = started.elapsed() / TENANTS as u32;
    let per_data = retained(&region) / TENANTS as isize;
    drop((data, catalogs));
    // Tenants with three custom fields each, named and typed differently in every tenant.
    let types = ["text", "int", "decimal", "date", "boolean", "select"];
    let three = |t: usize| Extension {
        objects: Vec::new(),
        fields: (0..3)
            .map(|i| {
                let ty = types[(t + i) % types.len()];
                let mut def = json!({"name": format!("t{t}f{i}"), "type": ty});
                if ty == "select" {
                    def["options"] = json!(["A", "B"]);
                }
                ("Lead".to_owned(), serde_json::from_value::<FieldDef>(def).unwrap())
            })
            .collect(),
    };
    let region = Region::new(GLOBAL);
    let small: Vec<_> = (0..TENANTS).map(|t| Arc::new(base.extend(&three(t)).unwrap())).collect();
    let per_small_catalog = retained(&region) / TENANTS as isize;
    let region = Region::new(GLOBAL);
    let empty: Vec<_> = (0..TENANTS).map(|_| Arc::new(base.extend(&Extension::default()).unwrap())).collect();
    let per_empty = retained(&region) / TENANTS as isize;
    drop(empty);
    let region = Region::new(GLOBAL);
    let leads: Vec<_> = small.iter().map(|c| Arc::new(crm_model::Model::clone(c.model("Lead").unwrap()))).collect();
    let per_lead = retained(&region) / TENANTS as isize;
    drop(leads);
    let region = Region::new(GLOBAL);
    let started = std::time::Instant::now();
    let small_data: Vec<_> = small.iter().map(|c| derived.tenant(c).unwrap()).collect();
    let small_time = started.elapsed() / TENANTS as u32;
    let per_small_data = retained(&region) / TENANTS as isize;
    drop((small_data, small));
    let region = Region::new(GLOBAL);
    let base_data = Derived::base(Arc::clone(&base)).unwrap();
    let per_base_data = retained(&region);
    drop(base_data);

    println!("{TENANTS} tenants, each with 20 custom fields on Lead and a custom object:");
    println!("  tenant catalog (base + extension):   {:>8.1} KiB", per_catalog as f64 / 1024.0);
    println!("  tenant schema (built from it):       {:>8.1} KiB", per_schema as f64 / 1024.0);
    println!("  one cached tenant entry in total:    {:>8.1} KiB", (per_catalog + per_schema) as f64 / 1024.0);
    println!("  for comparison, the base schema:     {:>8.1} KiB", per_base as f64 / 1024.0);
    println!("  and a schema of one model (Member):  {:>8.1} KiB", per_model as f64 / 1024.0);
    println!("The schema as data (crm_graphql::types), derived from the base schema:");
    println!("  base schema:                         {:>8.1} KiB", per_base_data as f64 / 1024.0);
    println!(
        "  tenant above (20 fields, an object): {:>8.1} KiB, derived in {:.2} ms",
        per_data as f64 / 1024.0,
        data_time.as_secs_f64() * 1e3
    );
    println!("{TENANTS} tenants, each with 3 custom fields of its own on Lead:");
    println!("  tenant catalog:                      {:>8.1} KiB", per_small_catalog as f64 / 1024.0);
    println!("  a catalog extended by nothing:       {:>8.1} KiB", per_empty as f64 / 1024.0);
    println!("  of which its Lead model:             {:>8.1} KiB", per_lead as f64 / 1024.0);
    println!(
        "  tenant schema as data:               {:>8.1} KiB, derived in {:.2} ms",
        per_small_data as f64 / 1024.0,
        small_time.as_secs_f64() * 1e3
    );
    drop((schemas, shared));
}
