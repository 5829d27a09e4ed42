//! The memory one cached tenant schema takes: builds the schemas of many tenants with the custom
//! definitions of the tenant-schema benchmark (20 custom fields on Lead, a custom object and its
//! inverse), keeps them all, and reports the heap bytes still allocated per schema (and per
//! catalog alone), counted by an instrumented allocator.
//!
//! `cargo run --release -p crm-graphql --example tenant_memory`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::indexing_slicing)]
#![allow(clippy::cast_precision_loss, clippy::cast_possible_wrap, clippy::cast_possible_truncation, clippy::missing_panics_doc)] // a measuring program: arithmetic on counts, sizes and durations far inside the casts' range; it stops at the first failure

use std::alloc::System;
use std::sync::Arc;

use crm_graphql::{SchemaOptions, build_schema};
use crm_model::standard::standard_catalog;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

mod tenant_defs;

const TENANTS: usize = 50;

fn retained(region: &Region<'_, System>) -> isize {
    let s = region.change();
    s.bytes_allocated as isize - s.bytes_deallocated as isize + s.bytes_reallocated
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
    println!("{TENANTS} tenants, each with 20 custom fields on Lead and a custom object:");
    println!("  tenant catalog (base + extension):   {:>8.1} KiB", per_catalog as f64 / 1024.0);
    println!("  tenant schema (built from it):       {:>8.1} KiB", per_schema as f64 / 1024.0);
    println!("  one cached tenant entry in total:    {:>8.1} KiB", (per_catalog + per_schema) as f64 / 1024.0);
    println!("  for comparison, the base schema:     {:>8.1} KiB", per_base as f64 / 1024.0);
    println!("  and a schema of one model (Member):  {:>8.1} KiB", per_model as f64 / 1024.0);
    drop((schemas, shared));
}
