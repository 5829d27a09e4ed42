//! Errors of the store. Every variant maps to one client-facing code (see [`OrmError::code`]);
//! database errors are kept whole for logs and never shown to clients.

use crm_model::{ErrorCode, MetadataError, ValueError};

use crate::failure::{DbFailure, classify};
use thiserror::Error;

/// What went wrong inside the store: never the client's fault, never shown to a client.
#[derive(Debug, Error)]
pub enum Internal {
    /// The database returned something the store cannot read: a value of a statement the store
    /// built itself, so a bug or a foreign change of the schema.
    #[error("unreadable {what} from the database: {detail}")]
    Decode {
        /// What was read (`event row`, `page column`, …).
        what: &'static str,
        /// Why it could not be read.
        detail: String,
    },
    /// A statement could not be built.
    #[error("statement: {0}")]
    Statement(String),
    /// A model the work needs is not in the catalog served.
    #[error("the catalog has no `{0}` model")]
    MissingModel(String),
    /// An invariant of the platform broke (a bug).
    #[error("{0}")]
    Invariant(String),
}

/// A store error.
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
    /// The database became unavailable while a transaction was committing: its writes may or may
    /// not have been applied.
    #[error("commit outcome unknown: {0}")]
    CommitUnknown(sqlx::Error),
    /// A system migration failed.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Something inside the store failed (a bug, or data the store cannot read).
    #[error("internal: {0}")]
    Internal(#[from] Internal),
    /// A service the work needs besides the database failed (file storage): retryable.
    #[error("{0}")]
    Dependency(String),
}

impl OrmError {
    /// The stable client code (`extensions.code`).
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::BadInput { .. } | Self::Value(_) | Self::Metadata(_) => ErrorCode::BadUserInput,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Limit(_) => ErrorCode::LimitExceeded,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::Unique { .. } | Self::Version { .. } | Self::Referenced(_) => ErrorCode::Conflict,
            Self::Database(e) if classify(e) == DbFailure::Unavailable => ErrorCode::Unavailable,
            Self::CommitUnknown(_) | Self::Dependency(_) => ErrorCode::Unavailable,
            Self::Config(_) | Self::Database(_) | Self::Migrate(_) | Self::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The message a client may see: the error itself for user errors, a generic text otherwise.
    #[must_use]
    pub fn client_message(&self) -> String {
        match (self, self.code()) {
            (Self::CommitUnknown(_), _) => {
                "the database became unavailable while the write was committing: it may or may not have been applied; read the record before retrying".to_owned()
            }
            (Self::Dependency(_), _) => "a service the platform depends on is unavailable: nothing was changed; retry later".to_owned(),
            (_, ErrorCode::Unavailable) => "the database is unavailable: nothing was changed; retry later".to_owned(),
            (_, ErrorCode::Internal) => "internal error".to_owned(),
            _ => self.to_string(),
        }
    }

    /// Whether a write may have committed though it failed (see [`OrmError::CommitUnknown`]).
    #[must_use]
    pub fn commit_unknown(&self) -> bool {
        matches!(self, Self::CommitUnknown(_))
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

    /// `what`, read from the database, could not be decoded.
    pub fn decode(what: &'static str, detail: impl std::fmt::Display) -> Self {
        Self::Internal(Internal::Decode { what, detail: detail.to_string() })
    }

    /// A statement could not be built.
    pub fn statement(detail: impl std::fmt::Display) -> Self {
        Self::Internal(Internal::Statement(detail.to_string()))
    }

    /// The catalog lacks model `name`, which the work needs.
    #[must_use]
    pub fn missing_model(name: &str) -> Self {
        Self::Internal(Internal::MissingModel(name.to_owned()))
    }

    /// An invariant broke (a bug).
    pub fn invariant(detail: impl Into<String>) -> Self {
        Self::Internal(Internal::Invariant(detail.into()))
    }

    /// A bad input at `path` (e.g. `data.email`, `events[2].kind`) with a message for the client.
    pub fn bad(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::BadInput { path: path.into(), message: message.into() }
    }
}

/// Result alias of the store.
pub type Result<T, E = OrmError> = std::result::Result<T, E>;

/// `value` (JSON a statement of the store built, already parsed) decoded as `T`: `what` names it
/// in the error.
///
/// # Errors
/// A value that is not a `T`, as an internal decode error.
pub fn decode_value<T: serde::de::DeserializeOwned>(what: &'static str, value: serde_json::Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| OrmError::decode(what, e))
}

/// `text` (JSON a statement of the store built) decoded as `T`: `what` names it in the error.
///
/// # Errors
/// Text that is not a `T`, as an internal decode error.
pub fn decode_json<T: serde::de::DeserializeOwned>(what: &'static str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| OrmError::decode(what, e))
}
