//! Metadata for crm-platform: models and fields as users declare them ([`ModelDef`], in Rust or
//! JSON), resolved by [`resolve`] into an immutable, validated [`Catalog`] that every later stage
//! reads. Pure: no IO.
#![forbid(unsafe_code)]

mod catalog;
mod def;
mod error;
mod names;
pub mod standard;
pub mod value;

pub use catalog::{
    BUILTIN_TYPES, Catalog, Checks, Field, FieldKind, GENERATED_TYPE_SUFFIXES, Model, RESERVED_FIELDS, SYSTEM_COLUMNS, SYSTEM_FIELDS,
    ScalarType, TypeClass, resolve,
};
pub use def::{FieldDef, FieldType, ModelDef, OnDelete, Validation};
pub use error::{MetadataError, NameError, ValueError};
pub use names::{FieldName, ModelName, OptionName, OrgId, RoleName, SqlName, english_plural, lower_first, snake_case};
pub use value::Value;
