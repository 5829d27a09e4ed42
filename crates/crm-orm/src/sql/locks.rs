//! PostgreSQL advisory transaction locks: what serializes the work that must not interleave
//! (migrations, a tenant's appends to the outbox, engines' keyed sections). SQLite's write
//! transactions are serial already: every lock here is `None` there.

use super::Built;
use super::dialect::Dialect;

/// The key of the migration lock.
const MIGRATION_KEY: i64 = 72_616_368;
/// The seed of the hash that turns a text key into a lock key.
const KEY_SEED: i64 = 7215;

/// The lock migrations take: one instance migrates at a time.
#[must_use]
pub fn migration(d: Dialect) -> Option<Built> {
    (d == Dialect::Postgres).then(|| d.statement(&format!("SELECT pg_advisory_xact_lock({MIGRATION_KEY})"), Vec::new()))
}

/// Lifts the statement timeout for the rest of the transaction (migrations may take long).
#[must_use]
pub fn no_statement_timeout(d: Dialect) -> Option<Built> {
    (d == Dialect::Postgres).then(|| d.statement("SELECT set_config('statement_timeout', '0', true)", Vec::new()))
}

/// The lock of text `key` (a tenant, or a tenant and a store's own key), held until the
/// transaction ends.
#[must_use]
pub fn key(d: Dialect, key: &str) -> Option<Built> {
    (d == Dialect::Postgres)
        .then(|| d.statement(&format!("SELECT pg_advisory_xact_lock(hashtextextended({{}}, {KEY_SEED}))"), vec![key.into()]))
}
