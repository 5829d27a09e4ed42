#![allow(clippy::expect_used)]
//! The SDL of the standard catalog, snapshotted: any change to the generated API is a visible diff.

use std::sync::Arc;

use crm_graphql::types::{generate, sdl};
use crm_model::standard::standard_catalog;

#[test]
fn standard_catalog_sdl() {
    let cat = Arc::new(standard_catalog().expect("standard catalog"));
    let schema = generate(&cat).expect("schema");
    insta::assert_snapshot!("standard_sdl", sdl(&schema));
}

/// Every name the schema generates is either the platform's own (`crm_model::BUILTIN_TYPES`,
/// `crm_model::BUILTIN_ROOTS`) or derived once, when metadata is resolved, into a model's
/// `ApiNames`: the generator spells none of its own. Checked on the standard catalog extended with
/// custom fields and a custom object, as a tenant's schema is.
#[test]
fn every_generated_name_is_reserved_or_derived() {
    use std::collections::BTreeSet;

    use apollo_compiler::schema::ExtendedType;
    use crm_model::{BUILTIN_ROOTS, BUILTIN_TYPES, Extension, FieldDef as F, ModelDef};

    let ext = Extension {
        objects: vec![ModelDef::new("Gadget").field(F::text("label")).field(F::select("grade", &["A", "B"])).field(F::int("size"))],
        fields: vec![("Lead".to_owned(), F::select("tier", &["GOLD", "SILVER"])), ("Lead".to_owned(), F::relation("gadget", "Gadget"))],
    };
    let cat = Arc::new(standard_catalog().expect("standard catalog").extend(&ext).expect("extended"));
    let schema = generate(&cat).expect("schema");
    let mut types = BTreeSet::new();
    let mut roots = BTreeSet::new();
    for (name, t) in &schema.types {
        if name.starts_with("__") || t.is_built_in() {
            continue;
        }
        if let ExtendedType::Object(o) = t
            && ["Query", "Mutation", "Subscription"].contains(&name.as_str())
        {
            roots.extend(o.fields.keys().map(ToString::to_string));
        }
        types.insert(name.to_string());
    }
    let derived_types: BTreeSet<String> = cat.models().flat_map(|m| m.api.types()).map(str::to_owned).collect();
    let derived_roots: BTreeSet<String> = cat.models().flat_map(|m| m.api.roots()).map(str::to_owned).collect();
    let builtin_types: BTreeSet<String> = BUILTIN_TYPES.iter().map(|t| (*t).to_owned()).collect();
    let builtin_roots: BTreeSet<String> = BUILTIN_ROOTS.iter().map(|t| (*t).to_owned()).collect();

    let stray_types: Vec<&String> = types.iter().filter(|t| !builtin_types.contains(*t) && !derived_types.contains(*t)).collect();
    assert!(stray_types.is_empty(), "types spelled by the generator itself: {stray_types:?}");
    let stray_roots: Vec<&String> = roots.iter().filter(|r| !builtin_roots.contains(*r) && !derived_roots.contains(*r)).collect();
    assert!(stray_roots.is_empty(), "root fields spelled by the generator itself: {stray_roots:?}");

    // The lists hold nothing the schema does not define (GraphQL's own scalars are not printed).
    let graphql_scalars = ["String", "Int", "Float", "Boolean", "ID"];
    let unused_types: Vec<&String> =
        builtin_types.iter().filter(|t| !types.contains(*t) && !graphql_scalars.contains(&t.as_str())).collect();
    assert!(unused_types.is_empty(), "built-in types the schema does not define: {unused_types:?}");
    let unused_roots: Vec<&String> = builtin_roots.iter().chain(&derived_roots).filter(|r| !roots.contains(*r)).collect();
    assert!(unused_roots.is_empty(), "root fields the schema does not define: {unused_roots:?}");
    for expected in ["LeadTier", "GadgetGrade", "GadgetWhereInput", "gadgetsConnection", "updateManyGadgetsConnection"] {
        assert!(types.contains(expected) || roots.contains(expected), "`{expected}` is missing from the schema");
    }
}
