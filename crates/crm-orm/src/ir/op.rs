//! What a query does to rows, and what a role can be granted.

use serde::{Deserialize, Serialize};

/// An operation on rows: what a query does, and what a role can be granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Op {
    /// Read rows.
    Read,
    /// Insert rows.
    Create,
    /// Change rows.
    Update,
    /// Move rows to the trash (soft delete) and restore them.
    Delete,
    /// Remove rows for good (from the trash or not).
    Destroy,
}
