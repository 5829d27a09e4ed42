//! Errors of the metadata layer.

use thiserror::Error;

/// A name that does not follow the rules of its kind.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid {kind} `{name}`")]
pub struct NameError {
    /// What kind of name was expected.
    pub kind: &'static str,
    /// The rejected name.
    pub name: String,
}

/// Why a set of model definitions was rejected by [`crate::resolve`]. Each names the model and,
/// where it applies, the field.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MetadataError {
    /// A name broke the naming rules.
    #[error("model `{model}`: {source}")]
    BadName {
        /// The model concerned.
        model: String,
        /// The naming rule broken.
        source: NameError,
    },
    /// A name is reserved for the platform.
    #[error("model `{model}`: `{name}` is reserved")]
    Reserved {
        /// The model concerned.
        model: String,
        /// The reserved name.
        name: String,
    },
    /// Two definitions produce the same GraphQL or SQL name.
    #[error("model `{model}`: {what} `{name}` clashes with {other}")]
    Clash {
        /// The model concerned.
        model: String,
        /// GraphQL type, root field, field, table or column.
        what: &'static str,
        /// The clashing name.
        name: String,
        /// What it clashes with.
        other: String,
    },
    /// A relation names a model that is not in the set.
    #[error("model `{model}`, field `{field}`: unknown relation target `{target}`")]
    UnknownTarget {
        /// The model concerned.
        model: String,
        /// The relation field.
        field: String,
        /// The missing target.
        target: String,
    },
    /// A field definition is inconsistent (bad default, bad option, inverse without its to-one…).
    #[error("model `{model}`, field `{field}`: {reason}")]
    BadField {
        /// The model concerned.
        model: String,
        /// The field concerned.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A model-level option is inconsistent.
    #[error("model `{model}`: {reason}")]
    BadModel {
        /// The model concerned.
        model: String,
        /// What is wrong.
        reason: String,
    },
}

/// A value that does not fit its field: wrong type, failed validation, unknown option.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("field `{field}`: {reason}")]
pub struct ValueError {
    /// The field's API name.
    pub field: String,
    /// What is wrong, for the client.
    pub reason: String,
}

impl ValueError {
    pub(crate) fn new(field: &str, reason: impl Into<String>) -> Self {
        Self { field: field.to_owned(), reason: reason.into() }
    }
}
