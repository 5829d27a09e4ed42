//! The executor: the only module that touches a database. It runs the statements the
//! statement layer ([`crate::sql`]) builds and decodes their rows; it builds none itself. Reads
//! run on a pooled connection (or the read lane), writes in one transaction each; both only
//! accept [`crate::Scoped`] queries.
//!
//! By concept: [`pool`] (connections, transactions, the one place statements are sent),
//! [`lane`] (PostgreSQL's read lane), [`migrate`], [`tenants`], [`read`], [`write`] (the write
//! context a write runs in), [`tx`] (the engines' transactions and write hooks), [`outbox`],
//! [`deliveries`], [`stages`], [`meta`] (tenant-defined metadata) and [`platform`] (the
//! cross-tenant handle of the workers).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crm_model::{Catalog, Model};
use serde_json::Value as Json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use uuid::Uuid;

use crate::error::{OrmError, Result};
use crate::failure::{DbFailure, classify};
use crate::page::PageResult;
use crate::sql::Limits;
use crate::sql::dialect::Dialect;
use pool::{Conn, Db, Tx};

mod deliveries;
mod lane;
mod meta;
mod migrate;
mod outbox;
mod platform;
mod pool;
mod read;
mod stages;
mod tenants;
mod transfer;
mod tx;
mod write;

pub use meta::{Definitions, MetaChange};
pub use platform::CrossTenant;
pub use pool::{DbUse, count_db_use, statement_timeouts};
pub use stages::{StageStats, StageStay};
pub use transfer::Import;
pub use tx::{EventWork, MAX_TARGETS, SendEvents, TxCtx, TxFuture, TxWork, WriteHook, Written};

/// Store settings.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Most connections to the database. On PostgreSQL half of them (the read lane) serve
    /// one-statement reads and the rest the pool (writes, transactions, everything else).
    pub max_connections: u32,
    /// Page-size limits.
    pub limits: Limits,
    /// How long to wait for a connection; past it a request fails as unavailable.
    pub acquire_timeout: Duration,
    /// The longest a statement may run on PostgreSQL (`statement_timeout`); past it the statement
    /// is cancelled and the request fails as unavailable. `None`: no limit. Migrations are exempt.
    pub statement_timeout: Option<Duration>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { max_connections: 10, limits: Limits::default(), acquire_timeout: Duration::from_secs(10), statement_timeout: None }
    }
}

/// What a write returns.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteResult {
    /// The record written (as selected; `None` if the caller cannot read it afterwards), or the
    /// record deleted, as it was.
    One(Option<Json>),
    /// The records of a batch.
    Many(PageResult),
}

/// The store: a pool on either backend plus the Catalog it serves.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
    /// The catalog this store serves: the base one, or a tenant's (base + custom definitions).
    catalog: Arc<Catalog>,
    /// The catalog the store was connected with; tenants' catalogs extend it.
    base: Arc<Catalog>,
    limits: Limits,
    /// Runs inside every write's transaction (the engines' tagging and routing).
    hook: Option<Arc<dyn WriteHook>>,
    /// PostgreSQL connections for one-statement reads (see [`lane`]), beside the pool.
    reads: Option<Arc<lane::ReadLane>>,
    /// Moves each time events are appended (see [`CrossTenant::wakeups`]).
    appended: Arc<tokio::sync::watch::Sender<u64>>,
    /// When a migration last changed the schema (SQLite: older connections are not reused).
    schema: Arc<SchemaChange>,
}

/// When a migration last changed the schema. A SQLite connection reads the schema once and checks
/// it only when a statement runs: a statement prepared against an older schema (an INSERT into a
/// column that was generated then) fails before that check. So the pool does not hand out a SQLite
/// connection opened before the last change; a new one is opened instead.
#[derive(Debug)]
pub(crate) struct SchemaChange {
    base: std::time::Instant,
    /// Nanoseconds after `base` of the last change, 0 for none.
    at: std::sync::atomic::AtomicU64,
}

impl SchemaChange {
    fn new() -> SchemaChange {
        SchemaChange { base: std::time::Instant::now(), at: std::sync::atomic::AtomicU64::new(0) }
    }

    /// Notes a change now.
    pub(crate) fn changed(&self) {
        let nanos = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX).max(1);
        self.at.store(nanos, std::sync::atomic::Ordering::Release);
    }

    /// Whether a connection of age `age` was opened after the last change.
    fn opened_after(&self, age: Duration) -> bool {
        let at = self.at.load(std::sync::atomic::Ordering::Acquire);
        if at == 0 {
            return true;
        }
        let changed = self.base + Duration::from_nanos(at);
        std::time::Instant::now().checked_sub(age).is_some_and(|opened| opened >= changed)
    }
}

fn db_error(e: OrmError, model: &Model) -> OrmError {
    let OrmError::Database(inner) = &e else { return e };
    match classify(inner) {
        DbFailure::Unique(col) => {
            let field = col.and_then(|c| {
                model
                    .unique_fields()
                    .find(|f| c == f.column.as_str() || c == crate::sql::dialect::index_name("ux", model.table.as_str(), f.column.as_str()))
                    .map(|f| f.name.to_string())
            });
            OrmError::Unique { field: field.unwrap_or_else(|| "unique field".to_owned()) }
        }
        DbFailure::ForeignKey => {
            OrmError::Referenced(format!("the {} is referenced by, or refers to, a record that does not allow this change", model.name))
        }
        _ => e,
    }
}

/// Runs `attempt` (one transaction) again, up to three more times, while it fails with a
/// deadlock or serialization failure: such a transaction left no trace.
async fn retried<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(OrmError::Database(e)) if classify(&e) == DbFailure::Retry && tries < 3 => {
                tries += 1;
                tracing::debug!(error = %e, tries, "retrying a transaction");
            }
            other => return other,
        }
    }
}

fn parse_uuid(s: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|_| OrmError::decode("id", "malformed"))
}

impl Store {
    /// Connects to `url` (`sqlite://path` or `postgres://…`). For SQLite the file is created if
    /// missing, in WAL mode with foreign keys on. For PostgreSQL the role must not bypass
    /// row-level security (not a superuser, no `BYPASSRLS`): the store refuses such a role.
    ///
    /// # Errors
    /// An unsupported URL, an unreachable database, or a role that bypasses row-level security.
    pub async fn connect(url: &str, catalog: Arc<Catalog>, opts: StoreOptions) -> Result<Store> {
        let mut reads = None;
        let schema = Arc::new(SchemaChange::new());
        let db = if url.starts_with("sqlite:") {
            let co = SqliteConnectOptions::from_str(url)
                .map_err(|e| OrmError::Config(format!("bad SQLite URL: {e}")))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            let pool = SqlitePoolOptions::new()
                .max_connections(std::cmp::max(opts.max_connections, 1))
                .acquire_timeout(opts.acquire_timeout)
                // A ping before every checkout is a round trip per request; a broken connection
                // fails its statement instead and is dropped by the pool.
                .test_before_acquire(false)
                .before_acquire({
                    let schema = Arc::clone(&schema);
                    move |_, meta| {
                        let current = schema.opened_after(meta.age);
                        Box::pin(async move { Ok(current) })
                    }
                })
                .connect_with(co)
                .await?;
            Db::Sqlite(pool)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            // Generic plans for the store's prepared statements: every value is a parameter and
            // the tenant leads every index, so a custom plan per execution (re-planning each
            // time a cursor or filter value changes) only costs planning time.
            let co = PgConnectOptions::from_str(url)
                .map_err(|e| OrmError::Config(format!("bad PostgreSQL URL: {e}")))?
                .options([("plan_cache_mode", "force_generic_plan")]);
            let co = match opts.statement_timeout {
                Some(t) => co.options([("statement_timeout", format!("{}ms", t.as_millis().max(1)))]),
                None => co,
            };
            // Half the connections serve one-statement reads (the read lane), the rest the pool.
            let lane_size = opts.max_connections / 2;
            reads = (lane_size > 0).then(|| lane::ReadLane::new(co.clone(), lane_size as usize, opts.acquire_timeout));
            let pool = PgPoolOptions::new()
                .max_connections(std::cmp::max(opts.max_connections - lane_size, 1))
                .acquire_timeout(opts.acquire_timeout)
                .test_before_acquire(false)
                // No reset on release: every statement the store runs on a pooled connection is
                // preceded by setting that request's tenant, and the pool is private to the
                // store. A reset would cost one more statement per request (measured in
                // examples/rls_cost.rs); a fresh session has no tenant and sees nothing.
                .connect_with(co)
                .await?;
            let (sql, values) = crate::sql::tenants::role_bypasses_rls();
            let bypass: bool = sqlx::query_scalar_with(sqlx::AssertSqlSafe(sql), values).fetch_one(&pool).await?;
            if bypass {
                return Err(OrmError::Config(
                    "the database role bypasses row-level security (superuser or BYPASSRLS); connect as an ordinary role".to_owned(),
                ));
            }
            Db::Postgres(pool)
        } else {
            return Err(OrmError::Config("DATABASE_URL must start with sqlite: or postgres:".to_owned()));
        };
        let appended = Arc::new(tokio::sync::watch::Sender::new(0));
        Ok(Store { db, base: Arc::clone(&catalog), catalog, limits: opts.limits, hook: None, reads, appended, schema })
    }

    /// The backend.
    #[must_use]
    pub fn dialect(&self) -> Dialect {
        match self.db {
            Db::Sqlite(_) => Dialect::Sqlite,
            Db::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The Catalog served.
    #[must_use]
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The same store (same pool) serving `catalog`: a tenant's catalog, which extends the
    /// base one with its custom definitions ([`Store::tenant_catalog`]).
    #[must_use]
    pub fn with_catalog(&self, catalog: Arc<Catalog>) -> Store {
        Store { catalog, ..self.clone() }
    }

    /// The same store running `hook` inside every write's transaction.
    #[must_use]
    pub fn with_hook(&self, hook: Arc<dyn WriteHook>) -> Store {
        Store { hook: Some(hook), ..self.clone() }
    }

    /// The catalog the store was connected with (no tenant's custom definitions).
    #[must_use]
    pub fn base_catalog(&self) -> &Arc<Catalog> {
        &self.base
    }

    /// The page-size limits.
    #[must_use]
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Wakes the consumers after a commit that appended `events` events (none: nothing).
    fn wake_consumers(&self, events: usize) {
        if events > 0 {
            self.appended.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    async fn begin(&self) -> Result<Tx> {
        self.db.begin().await
    }

    async fn acquire(&self) -> Result<Conn> {
        self.db.acquire().await
    }

    /// The database connections (the pool's and the read lane's): open and, of those, idle.
    #[must_use]
    pub fn pool_stats(&self) -> (u32, usize) {
        let (size, idle) = match &self.db {
            Db::Sqlite(p) => (p.size(), p.num_idle()),
            Db::Postgres(p) => (p.size(), p.num_idle()),
        };
        let (lane_size, lane_idle) = self.reads.as_ref().map_or((0, 0), |l| l.stats());
        (size + lane_size, idle + lane_idle)
    }
}
