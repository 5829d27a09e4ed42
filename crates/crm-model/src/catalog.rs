//! The resolved, immutable Catalog: every name checked, every reference linked. Later stages
//! (SQL building, GraphQL schema) only ever see this, never a raw [`ModelDef`].

use std::sync::Arc;

use indexmap::IndexMap;
use regex::Regex;

use crate::api::ApiNames;
use crate::def::{FieldDef, ModelDef, OnDelete};
use crate::names::{FieldName, ModelName, OptionName, SqlName};
use crate::value::Value;

/// Field names every model has (system fields); user fields may not use them.
pub const SYSTEM_FIELDS: &[&str] = &["id", "createdAt", "updatedAt", "createdBy", "updatedBy", "version", "deletedAt"];
/// Further field names kept for the platform (tenant column, soft delete, custom values, history).
pub const RESERVED_FIELDS: &[&str] = &["orgId", "deletedAt", "custom", "history", "stages", "timeline", "node"];
/// Column names every tenant table has.
pub const SYSTEM_COLUMNS: &[&str] =
    &["id", "org_id", "created_at", "updated_at", "created_by", "updated_by", "version", "deleted_at", "custom"];
pub(crate) const RESERVED_TABLE_PREFIXES: &[&str] = &["crm_", "_sqlx", "sqlite_", "pg_"];
/// The column of every tenant table holding the values of tenant-defined (custom) fields: one
/// JSON object keyed by field API name.
pub const CUSTOM_COLUMN: &str = "custom";
/// The shared table holding the records of every tenant's custom objects, told apart by the
/// `object` column.
pub const RECORDS_TABLE: &str = "crm_records";
/// Most custom fields one model may get in one tenant.
pub const MAX_CUSTOM_FIELDS: usize = 200;
/// Most custom objects one tenant may define.
pub const MAX_CUSTOM_OBJECTS: usize = 100;

/// Scalar types after resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScalarType {
    /// One line of text.
    Text,
    /// Multi-line text.
    LongText,
    /// E-mail address.
    Email,
    /// Phone number.
    Phone,
    /// URL.
    Url,
    /// 64-bit integer.
    Int,
    /// 64-bit float.
    Float,
    /// Exact decimal.
    Decimal,
    /// Amount + currency; the currency lives in `currency_column`.
    Money {
        /// Column of the ISO currency code.
        currency_column: SqlName,
    },
    /// Boolean.
    Boolean,
    /// Date.
    Date,
    /// Date and time (UTC).
    DateTime,
    /// One option of a list.
    Select(Vec<OptionName>),
    /// A subset of a list of options.
    MultiSelect(Vec<OptionName>),
    /// Free list of strings.
    Tags,
    /// JSON document.
    Json,
    /// A record id (system field `id`).
    Id,
}

/// The filter family a scalar type belongs to (which operators apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeClass {
    /// Text-like: equality, lists, contains / starts / ends.
    String,
    /// Ordered: equality, lists, lt / lte / gt / gte.
    Ordered,
    /// Boolean: equality.
    Boolean,
    /// Enum: equality and lists.
    Enum,
    /// Lists of strings: contains all / some / none.
    List,
    /// JSON: null checks only.
    Json,
}

impl ScalarType {
    /// The filter family of this type.
    #[must_use]
    pub fn class(&self) -> TypeClass {
        match self {
            Self::Text | Self::LongText | Self::Email | Self::Phone | Self::Url | Self::Id => TypeClass::String,
            Self::Int | Self::Float | Self::Decimal | Self::Money { .. } | Self::Date | Self::DateTime => TypeClass::Ordered,
            Self::Boolean => TypeClass::Boolean,
            Self::Select(_) => TypeClass::Enum,
            Self::MultiSelect(_) | Self::Tags => TypeClass::List,
            Self::Json => TypeClass::Json,
        }
    }
    /// True for types with numeric aggregates (sum, avg).
    #[must_use]
    pub fn is_numeric(&self) -> bool {
        matches!(self, Self::Int | Self::Float | Self::Decimal | Self::Money { .. })
    }
    /// True for text types with a format of their own.
    #[must_use]
    pub fn is_text(&self) -> bool {
        matches!(self, Self::Text | Self::LongText | Self::Email | Self::Phone | Self::Url)
    }
}

/// What a field is, after resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldKind {
    /// A stored value.
    Scalar(ScalarType),
    /// A foreign key `(org_id, column)` to `target`.
    ToOne {
        /// Target model.
        target: ModelName,
        /// What deleting the target does.
        on_delete: OnDelete,
    },
    /// The inverse side of `target.via`.
    ToMany {
        /// Target model.
        target: ModelName,
        /// The to-one field on the target pointing back.
        via: FieldName,
    },
    /// A reference to one of several models: `type_column` holds the model name, `column` the id.
    Polymorphic {
        /// Allowed target models; empty for any model of the catalog (declared as `["*"]`).
        targets: Vec<ModelName>,
        /// Column holding the target's model name.
        type_column: SqlName,
        /// What destroying the target does: clear the reference or destroy this row too.
        on_delete: OnDelete,
    },
}

/// Compiled value checks.
#[derive(Debug, Clone, Default)]
pub struct Checks {
    /// Minimum length in characters.
    pub min_length: Option<u32>,
    /// Maximum length in characters.
    pub max_length: Option<u32>,
    /// Minimum numeric value.
    pub min: Option<f64>,
    /// Maximum numeric value.
    pub max: Option<f64>,
    /// Anchored pattern.
    pub pattern: Option<Regex>,
}

/// A resolved field.
#[derive(Debug, Clone)]
pub struct Field {
    /// API name.
    pub name: FieldName,
    /// SQL column (for to-one relations the foreign key column; unused for to-many).
    pub column: SqlName,
    /// What the field is.
    pub kind: FieldKind,
    /// Must be present, never null.
    pub required: bool,
    /// Unique within a tenant.
    pub unique: bool,
    /// Indexed `(org_id, column)`.
    pub indexed: bool,
    /// Part of `_search`.
    pub searchable: bool,
    /// Kept in property history.
    pub tracked: bool,
    /// A lifecycle stage field: transitions are kept with entered / exited times.
    pub stage: bool,
    /// Default on create, already checked.
    pub default: Option<Value>,
    /// Description from metadata.
    pub description: Option<String>,
    /// The name people see.
    pub label: String,
    /// What people see for each option of a select or multi-select field, in option order
    /// (empty for other types).
    pub option_labels: indexmap::IndexMap<String, String>,
    /// Value checks.
    pub checks: Checks,
    /// True for the system fields (`id`, `createdAt`, …), which clients cannot write.
    pub system: bool,
    /// Set by the platform (an engine) and read by clients: not part of the API's write inputs.
    pub read_only: bool,
    /// True for tenant-defined fields and every field of a custom object: the value lives in the
    /// row's [`CUSTOM_COLUMN`] JSON object under the field's API name, not in a column of its own.
    pub custom: bool,
}

impl Field {
    /// Whether this is a polymorphic reference that may point at a `model` record.
    #[must_use]
    pub fn points_at(&self, model: &ModelName) -> bool {
        matches!(&self.kind, FieldKind::Polymorphic { targets, .. } if targets.is_empty() || targets.contains(model))
    }
    /// The scalar type, if the field stores a scalar.
    #[must_use]
    pub fn scalar(&self) -> Option<&ScalarType> {
        match &self.kind {
            FieldKind::Scalar(t) => Some(t),
            _ => None,
        }
    }
    /// True when the field is stored in a column of this model's table.
    #[must_use]
    pub fn is_stored(&self) -> bool {
        !matches!(self.kind, FieldKind::ToMany { .. })
    }
}

/// A resolved model.
#[derive(Debug, Clone)]
pub struct Model {
    /// API name.
    pub name: ModelName,
    /// Singular root field name (`lead`).
    pub singular: String,
    /// Plural root field name (`leads`).
    pub plural: String,
    /// SQL table.
    pub table: SqlName,
    /// Description.
    pub description: Option<String>,
    /// The name people see.
    pub label: String,
    /// True for a tenant-defined (custom) object: its rows live in the shared [`RECORDS_TABLE`],
    /// told apart by the `object` column, and all its fields are custom.
    pub custom: bool,
    /// Owner field, if any.
    pub owner: Option<FieldName>,
    /// System fields first, then declared fields in declaration order.
    pub fields: IndexMap<FieldName, Field>,
    /// Declared composite indexes over the live rows.
    pub indexes: Vec<Index>,
    /// Its GraphQL type and root field names, decided when it was resolved.
    pub api: ApiNames,
}

/// A composite index of a model: `(org_id, keys…, id)` over the live rows (`deleted_at IS NULL`),
/// `id` in the direction of the last key, as list ordering breaks ties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    /// Stored fields and whether each is descending.
    pub keys: Vec<(FieldName, bool)>,
}

impl Model {
    /// Looks a field up by API name.
    #[must_use]
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.get(name)
    }
    /// The fields that `_search` looks at.
    pub fn searchable(&self) -> impl Iterator<Item = &Field> {
        self.fields.values().filter(|f| f.searchable)
    }
    /// The fields stored as columns (scalars, to-one, polymorphic).
    pub fn stored(&self) -> impl Iterator<Item = &Field> {
        self.fields.values().filter(|f| f.is_stored())
    }
    /// The fields with a unique constraint (besides `id`).
    pub fn unique_fields(&self) -> impl Iterator<Item = &Field> {
        self.fields.values().filter(|f| f.unique)
    }
}

/// The resolved set of models: immutable, shared behind an `Arc`.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub(crate) models: IndexMap<ModelName, Arc<Model>>,
    /// The definitions the base catalog was resolved from; tenant extensions start from these.
    pub(crate) base: Arc<Vec<ModelDef>>,
}

/// A tenant's own definitions on top of a base catalog: custom fields on any model and custom
/// objects, in the same JSON form as [`ModelDef`] / [`FieldDef`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extension {
    /// Custom objects.
    pub objects: Vec<ModelDef>,
    /// Custom fields: (model API name, definition), on base models or custom objects.
    pub fields: Vec<(String, FieldDef)>,
}

impl Extension {
    /// True when the extension adds nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty() && self.fields.is_empty()
    }
}

impl Catalog {
    /// A model by API name.
    #[must_use]
    pub fn model(&self, name: &str) -> Option<&Arc<Model>> {
        self.models.get(name)
    }
    /// All models in declaration order.
    pub fn models(&self) -> impl Iterator<Item = &Arc<Model>> {
        self.models.values()
    }
    /// The to-one fields of all models (including `target` itself) that point at `target`.
    pub fn referencing(&self, target: &ModelName) -> impl Iterator<Item = (&Arc<Model>, &Field)> {
        self.models.values().flat_map(move |m| {
            m.fields.values().filter_map(move |f| match &f.kind {
                FieldKind::ToOne { target: t, .. } if t == target => Some((m, f)),
                _ => None,
            })
        })
    }
}
