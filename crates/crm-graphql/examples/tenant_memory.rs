//! The memory a tenant's schema takes: derives the schemas of many tenants from the shared one
//! (`crm_graphql::types`), keeps them all, and reports the heap bytes still allocated per tenant
//! (schema and catalog), counted by an instrumented allocator, beside the cache's own estimate
//! (`crm_schema_cache_bytes`). Two kinds of tenants: those of the tenant-schema benchmark (20
//! custom fields on Lead, a custom object and its inverse), and tenants with three custom fields
//! of their own (named and typed differently in every tenant). Also the time a derivation takes.
//!
//! `cargo run --release -p crm-graphql --example tenant_memory`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::indexing_slicing)]
#![allow(clippy::cast_precision_loss, clippy::cast_possible_wrap, clippy::cast_possible_truncation, clippy::missing_panics_doc)] // a measuring program: arithmetic on counts, sizes and durations far inside the casts' range; it stops at the first failure

use std::alloc::System;
use std::sync::Arc;
use std::time::Instant;

use crm_graphql::types::Derived;
use crm_model::standard::standard_catalog;
use crm_model::{Catalog, Extension, FieldDef};
use serde_json::json;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

mod tenant_defs;

const TENANTS: usize = 200;

fn retained(region: &Region<'_, System>) -> isize {
    let s = region.change();
    // A reallocation's growth is in `bytes_allocated` already (and its shrinking in
    // `bytes_deallocated`); `bytes_reallocated` only sums them again.
    s.bytes_allocated as isize - s.bytes_deallocated as isize
}

/// Three custom fields on Lead, named and typed after the tenant's number.
fn three(t: usize) -> Extension {
    let types = ["text", "int", "decimal", "date", "boolean", "select"];
    Extension {
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
    }
}

fn kib(bytes: isize) -> f64 {
    bytes as f64 / 1024.0
}

/// Derives the schemas of `TENANTS` tenants with `ext(t)`, keeping them, and prints what one costs.
fn measure(label: &str, base: &Arc<Catalog>, derived: &Derived, ext: impl Fn(usize) -> Extension) {
    let region = Region::new(GLOBAL);
    let catalogs: Vec<_> = (0..TENANTS).map(|t| Arc::new(base.extend(&ext(t)).unwrap())).collect();
    let catalog = retained(&region) / TENANTS as isize;
    let region = Region::new(GLOBAL);
    let started = Instant::now();
    let schemas: Vec<_> = catalogs.iter().map(|c| derived.tenant(c).unwrap()).collect();
    let time = started.elapsed() / TENANTS as u32;
    let schema = retained(&region) / TENANTS as isize;
    let estimate = schemas.iter().zip(&catalogs).map(|(s, c)| derived.own_bytes(s, c)).sum::<usize>() / TENANTS;
    println!("{TENANTS} tenants with {label}:");
    println!("  catalog:                {:>8.1} KiB", kib(catalog));
    println!("  schema:                 {:>8.1} KiB, derived in {:.2} ms", kib(schema), time.as_secs_f64() * 1e3);
    println!("  per tenant:             {:>8.1} KiB (the cache estimates {:.1} KiB)", kib(catalog + schema), estimate as f64 / 1024.0);
    println!("  10,000 such tenants:    {:>8.1} MiB", kib(catalog + schema) * 10_000.0 / 1024.0);
}

fn main() {
    let base = Arc::new(standard_catalog().unwrap());
    let region = Region::new(GLOBAL);
    let derived = Derived::base(Arc::clone(&base)).unwrap();
    println!("the shared schema:        {:>8.1} KiB", kib(retained(&region)));
    // Warm up lazily initialised statics outside the measurement.
    drop(derived.tenant(&base.extend(&three(0)).unwrap()).unwrap());
    measure("20 custom fields on Lead and a custom object", &base, &derived, |_| tenant_defs::extension());
    measure("3 custom fields of their own on Lead", &base, &derived, three);
}
