//! Errors of the metadata layer.

use thiserror::Error;

/// The stable code of every error a client can get (`extensions.code` in GraphQL, `code` in the
/// REST bodies): one list for every crate, so no code is spelled or matched as a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The input is wrong (a field, operator, value or document); nothing was changed.
    BadUserInput,
    /// A configured limit was passed (page size, depth, complexity, batch size).
    LimitExceeded,
    /// No record matched (records of other tenants do not exist for the caller).
    NotFound,
    /// The caller may not do this.
    Forbidden,
    /// A unique value is taken, the record changed meanwhile, or is still referenced.
    Conflict,
    /// No valid credentials.
    Unauthenticated,
    /// The database (or another dependency) cannot serve now: unreachable, out of connections, or
    /// a statement ran past its time limit. Retryable; nothing was changed, unless the error says
    /// a write may have committed.
    Unavailable,
    /// Something failed inside the platform; details are only logged.
    Internal,
}

impl ErrorCode {
    /// The code as clients see it (`BAD_USER_INPUT`, …).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadUserInput => "BAD_USER_INPUT",
            ErrorCode::LimitExceeded => "LIMIT_EXCEEDED",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::Internal => "INTERNAL",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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
