#![allow(clippy::expect_used)]
//! The SDL of the standard catalog, snapshotted: any change to the generated API is a visible diff.

use std::sync::Arc;

use crm_graphql::{SchemaOptions, build_schema};
use crm_model::standard::standard_catalog;

#[test]
fn standard_catalog_sdl() {
    let cat = Arc::new(standard_catalog().expect("standard catalog"));
    let schema = build_schema(cat, &SchemaOptions::default()).expect("schema");
    insta::assert_snapshot!("standard_sdl", schema.sdl());
}
