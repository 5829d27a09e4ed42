//! Metadata for crm-platform: models and fields as users declare them ([`ModelDef`], in Rust or
//! JSON), resolved by [`resolve`] into an immutable, validated [`Catalog`] that every later stage
//! reads. Pure: no IO.
#![forbid(unsafe_code)]

pub mod api;
mod catalog;
mod def;
mod error;
pub mod input;
mod names;
mod resolve;
pub mod standard;
pub mod value;

pub use api::{ApiNames, BUILTIN_ROOTS, BUILTIN_TYPES, RESERVED_TYPES};
pub use catalog::{
    CUSTOM_COLUMN, Catalog, Checks, Extension, Field, FieldKind, Index, MAX_CUSTOM_FIELDS, MAX_CUSTOM_OBJECTS, Model, RECORDS_TABLE,
    RESERVED_FIELDS, SYSTEM_COLUMNS, SYSTEM_FIELDS, ScalarType, TypeClass,
};
pub use def::{FieldDef, FieldType, IndexDef, ModelDef, OnDelete, Validation};
pub use error::{ErrorCode, MetadataError, NameError, ValueError};
pub use names::{FieldName, ModelName, OptionName, OrgId, RoleName, SqlName, english_plural, humanize, lower_first, snake_case};
pub use resolve::resolve;
pub use value::Value;
