//! Errors of the engine. Every variant maps to one client-facing code (see [`OrmError::code`]);
//! database errors are kept whole for logs and never shown to clients.

use crm_model::{MetadataError, ValueError};
use thiserror::Error;

/// An engine error.
#[derive(Debug, Error)]
pub enum OrmError {
    /// A field, operator or argument that does not exist or does not fit (path names the input).
    #[error("{path}: {message}")]
    BadInput {
        /// Where in the input (`where.account.name_contains`, `data.email`).
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A request exceeds a configured limit (page size, nesting).
    #[error("{0}")]
    Limit(String),
    /// A value failed its field's type or checks.
    #[error(transparent)]
    Value(#[from] ValueError),
    /// No record matched (also for records of other tenants: they do not exist for the caller).
    #[error("{0}")]
    NotFound(String),
    /// The operation is not granted to the caller.
    #[error("{0}")]
    Forbidden(String),
    /// A unique value is taken within the tenant.
    #[error("field `{field}`: the value is already used by another record")]
    Unique {
        /// The field's API name.
        field: String,
    },
    /// `expectedVersion` did not match, or the record changed concurrently.
    #[error("version conflict: the record was changed (expected version {expected}, found {found})")]
    Version {
        /// Version the client expected.
        expected: i64,
        /// Version stored.
        found: i64,
    },
    /// The record is still referenced and the relation forbids deleting it.
    #[error("{0}")]
    Referenced(String),
    /// Metadata was rejected.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// Configuration (database URL, pool) is wrong.
    #[error("configuration: {0}")]
    Config(String),
    /// The database failed; details are for logs only.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A system migration failed.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database returned something the engine cannot read (a bug or a foreign schema change).
    #[error("internal: {0}")]
    Internal(String),
}

impl OrmError {
    /// The stable client code (`extensions.code`).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadInput { .. } | Self::Value(_) => "BAD_USER_INPUT",
            Self::NotFound(_) => "NOT_FOUND",
            Self::Limit(_) => "LIMIT_EXCEEDED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::Unique { .. } | Self::Version { .. } | Self::Referenced(_) => "CONFLICT",
            Self::Metadata(_) => "BAD_USER_INPUT",
            Self::Config(_) | Self::Database(_) | Self::Migrate(_) | Self::Internal(_) => "INTERNAL",
        }
    }

    /// The message a client may see: the error itself for user errors, a generic text otherwise.
    #[must_use]
    pub fn client_message(&self) -> String {
        match self.code() {
            "INTERNAL" => "internal error".to_owned(),
            _ => self.to_string(),
        }
    }

    /// The input path or field the error is about, when it has one.
    #[must_use]
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::BadInput { path, .. } => Some(path),
            Self::Value(v) => Some(&v.field),
            Self::Unique { field } => Some(field),
            _ => None,
        }
    }

    /// A bad input at `path` (e.g. `data.email`, `events[2].kind`) with a message for the client.
    pub fn bad(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::BadInput { path: path.into(), message: message.into() }
    }
}

/// Result alias of the engine.
pub type Result<T, E = OrmError> = std::result::Result<T, E>;
