//! What a database error means: the one classification of `sqlx` errors (unique and foreign
//! key violations, retryable conflicts, unavailability) that errors, retries and commits read.

/// What a database error means for the client.
#[derive(Debug, PartialEq, Eq)]
pub enum DbFailure {
    /// A unique index was violated; the column when it can be told.
    Unique(Option<String>),
    /// A foreign key blocked the statement.
    ForeignKey,
    /// Serialization failure or deadlock: the transaction can be retried.
    Retry,
    /// The database cannot serve now: unreachable, connection lost, out of connections, shutting
    /// down, a statement past its time limit, or (SQLite) the database locked past the busy
    /// timeout. Retryable by the client.
    Unavailable,
    /// Anything else.
    Other,
}

/// Classifies a database error. For unique violations the column is recovered from the
/// constraint name (PostgreSQL: `ux_<table>_<column>`) or the message (SQLite: `table.column`).
#[must_use]
pub fn classify(e: &sqlx::Error) -> DbFailure {
    let db = match e {
        sqlx::Error::Database(db) => db,
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::WorkerCrashed => {
            return DbFailure::Unavailable;
        }
        _ => return DbFailure::Other,
    };
    match db.kind() {
        sqlx::error::ErrorKind::UniqueViolation => {
            let col = match db.constraint() {
                Some(c) => Some(c.to_owned()),
                None => db
                    .message()
                    .rsplit_once(", ")
                    .map(|(_, c)| c)
                    .or_else(|| db.message().split_once(": ").map(|(_, c)| c))
                    .and_then(|c| c.split_once('.'))
                    .map(|(_, c)| c.trim().to_owned()),
            };
            DbFailure::Unique(col)
        }
        sqlx::error::ErrorKind::ForeignKeyViolation => DbFailure::ForeignKey,
        _ => match db.code().as_deref() {
            Some("40001" | "40P01") => DbFailure::Retry,
            // Connection exceptions (08…), too many connections or other missing resources (53…),
            // a cancelled statement (57014: the statement timeout), shutdown (57P01–57P03);
            // SQLite's busy and locked databases (5, 6 and their extended codes).
            Some(c) if c.len() == 5 && (c.starts_with("08") || c.starts_with("53") || c.starts_with("57")) => DbFailure::Unavailable,
            Some("5" | "6" | "261" | "262" | "517" | "518") => DbFailure::Unavailable,
            _ => DbFailure::Other,
        },
    }
}
