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

impl Op {
    /// The operation as policies and messages name it (`read`, `create`, …).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::Create => "create",
            Op::Update => "update",
            Op::Delete => "delete",
            Op::Destroy => "destroy",
        }
    }
}
