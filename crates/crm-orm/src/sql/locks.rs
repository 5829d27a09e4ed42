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

/// Plans the transaction's next statements for their own values (`on`), or generically again,
/// as the store does (PostgreSQL): for batch look-ups that carry hundreds of values, where a
/// generic plan may compare every row of the tenant with every value of an `IN` list one by one.
/// A custom plan costs planning time per statement: writes keep the generic plans.
#[must_use]
pub fn custom_plans(d: Dialect, on: bool) -> Option<Built> {
    let mode = if on { "force_custom_plan" } else { "force_generic_plan" };
    (d == Dialect::Postgres).then(|| d.statement(&format!("SELECT set_config('plan_cache_mode', '{mode}', true)"), Vec::new()))
}

/// The lock of text `key` (a tenant, or a tenant and a store's own key), held until the
/// transaction ends.
#[must_use]
pub fn key(d: Dialect, key: &str) -> Option<Built> {
    (d == Dialect::Postgres)
        .then(|| d.statement(&format!("SELECT pg_advisory_xact_lock(hashtextextended({{}}, {KEY_SEED}))"), vec![key.into()]))
}
