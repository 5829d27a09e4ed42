//! Execution with sqlx: the only module that touches a database. Reads run on a pooled
//! connection, writes in one transaction each; both only accept [`Scoped`] queries.

use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crm_model::{CUSTOM_COLUMN, Catalog, Field, FieldKind, FieldName, Model, ModelName, OnDelete, OrgId, ScalarType, Value};
use sea_query::{Alias, Expr, ExprTrait, Query};
use sea_query_sqlx::SqlxValues;
use serde_json::Value as Json;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool, Transaction};
use uuid::Uuid;

use crate::auth::{Access, Op, Scoped};
use crate::compiled::{CompiledRead, ReadStatement, Statement};
use crate::dialect::{DbFailure, Dialect, classify};
use crate::error::{OrmError, Result};
use crate::ir::{
    AuditQuery, Data, FieldWrite, Filter, FilterOp, GroupBy, Locate, Operand, OrderBy, Page, Read, Selection, ToManyWrite, ToOneWrite,
    Unique, Write,
};
use crate::schema;
use crate::sql::{Builder, Limits, PagePlan, encode_cursor, stored_value};

mod lane;
mod meta;
mod platform;
mod tx;
pub use meta::{Definition, Definitions, MetaChange};
pub use platform::CrossTenant;
pub use tx::{
    Attempt, DueDelivery, Event, EventKind, EventWork, MAX_TARGETS, StageStats, StageStay, TxCtx, TxFuture, TxWork, WriteHook, Written,
    event_type,
};
use tx::{Pending, merge};

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Most connections to the database. On PostgreSQL half of them (the read lane) serve
    /// one-statement reads and the rest the pool (writes, transactions, everything else).
    pub max_connections: u32,
    /// Page-size limits.
    pub limits: Limits,
    /// How long to wait for a connection.
    pub acquire_timeout: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions { max_connections: 10, limits: Limits::default(), acquire_timeout: Duration::from_secs(10) }
    }
}

#[derive(Debug, Clone)]
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// One page of rows: JSON objects keyed by the selection's keys, decoded (`Json`) or as JSON
/// text (`String`, [`Engine::read_text`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PageResult<R = Json> {
    /// Rows as JSON objects keyed by the selection's keys.
    pub rows: Vec<R>,
    /// The cursor of each row.
    pub cursors: Vec<String>,
    /// Rows exist after the page.
    pub has_next: bool,
    /// Rows exist before the page.
    pub has_previous: bool,
    /// Total matching rows, when asked for.
    pub count: Option<i64>,
    /// The aggregate object (`{"count": n, "sum": {…}, …}`), when a count or aggregates were
    /// asked for.
    pub aggregate: Option<Json>,
}

impl PageResult<String> {
    /// The page with its rows decoded.
    ///
    /// # Errors
    /// A row that is not JSON (an internal error).
    pub fn decoded(self) -> Result<PageResult> {
        let rows = self
            .rows
            .iter()
            .map(|j| serde_json::from_str(j).map_err(|e| OrmError::Internal(format!("row JSON: {e}"))))
            .collect::<Result<Vec<Json>>>()?;
        Ok(PageResult {
            rows,
            cursors: self.cursors,
            has_next: self.has_next,
            has_previous: self.has_previous,
            count: self.count,
            aggregate: self.aggregate,
        })
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

/// The engine: a pool on either backend plus the Catalog it serves.
#[derive(Debug, Clone)]
pub struct Engine {
    db: Db,
    /// The catalog this engine serves: the base one, or a tenant's (base + custom definitions).
    catalog: Arc<Catalog>,
    /// The catalog the engine was connected with; tenants' catalogs extend it.
    base: Arc<Catalog>,
    limits: Limits,
    /// Runs inside every write's transaction (the engines' tagging and routing).
    hook: Option<Arc<dyn WriteHook>>,
    /// PostgreSQL connections for one-statement reads (see [`lane`]), beside the pool.
    reads: Option<Arc<lane::ReadLane>>,
}

enum Ex<'a> {
    Sqlite(&'a mut SqliteConnection),
    Pg(&'a mut PgConnection),
}

enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Pg(Transaction<'static, Postgres>),
}

impl Tx {
    fn ex(&mut self) -> Ex<'_> {
        match self {
            Tx::Sqlite(t) => Ex::Sqlite(t),
            Tx::Pg(t) => Ex::Pg(t),
        }
    }
    async fn commit(self) -> Result<()> {
        round_trip();
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Pg(t) => t.commit().await?,
        }
        Ok(())
    }
}

enum Conn {
    Sqlite(PoolConnection<Sqlite>),
    Pg(PoolConnection<Postgres>),
}

impl Conn {
    fn ex(&mut self) -> Ex<'_> {
        match self {
            Conn::Sqlite(c) => Ex::Sqlite(c),
            Conn::Pg(c) => Ex::Pg(c),
        }
    }
}

macro_rules! run {
    ($ex:expr, $c:ident => $body:expr) => {
        match $ex {
            Ex::Sqlite($c) => $body,
            Ex::Pg($c) => $body,
        }
    };
}

/// What a piece of work asked of the database: statements sent, and round trips (statements
/// plus the `BEGIN` and `COMMIT` of transactions).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DbUse {
    /// SQL statements sent.
    pub statements: u64,
    /// Messages the engine waited on the database for.
    pub round_trips: u64,
}

#[derive(Default)]
struct DbCounters {
    statements: std::sync::atomic::AtomicU64,
    round_trips: std::sync::atomic::AtomicU64,
}

tokio::task_local! {
    static DB_USE: DbCounters;
}

/// Runs `fut` and returns its output with what the engine asked of the database while running
/// it (on this task): how tests prove a request's statement count does not grow with its rows,
/// and what the server's metrics count per operation.
pub async fn count_db_use<F: Future>(fut: F) -> (F::Output, DbUse) {
    DB_USE
        .scope(DbCounters::default(), async move {
            let out = fut.await;
            let used = DB_USE
                .try_with(|c| DbUse {
                    statements: c.statements.load(std::sync::atomic::Ordering::Relaxed),
                    round_trips: c.round_trips.load(std::sync::atomic::Ordering::Relaxed),
                })
                .unwrap_or_default();
            (out, used)
        })
        .await
}

/// One statement (and its round trip).
fn counted() {
    let _ = DB_USE.try_with(|c| {
        c.statements.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        c.round_trips.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
}

/// A round trip that is no statement of the engine's: a transaction's `BEGIN` or `COMMIT`.
fn round_trip() {
    let _ = DB_USE.try_with(|c| c.round_trips.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
}

impl Ex<'_> {
    /// Page rows: row JSON, cursor keys, aggregate (see [`Builder::select_page`]).
    /// The rows of a page statement ([`crate::sql::Builder::select_page`]): each row's JSON
    /// object and cursor keys written as `plan` says from their columns, and the aggregate.
    async fn page_rows(
        self,
        (sql, values): (Arc<str>, SqlxValues),
        plan: &PagePlan,
    ) -> Result<Vec<(String, Option<String>, Option<String>)>> {
        counted();
        run!(self, c => {
            let rows = sqlx::query_with(AssertSqlSafe(sql), values).fetch_all(&mut *c).await?;
            let own_keys = plan.keys.columns();
            let mut values = Vec::with_capacity(rows.first().map_or(0, sqlx::Row::len));
            rows.iter().map(|r| page_row(r, plan, own_keys, &mut values)).collect()
        })
    }
    async fn ids(self, (sql, values): (String, SqlxValues)) -> Result<Vec<(String, i64)>> {
        counted();
        Ok(run!(self, c => sqlx::query_as_with::<_, (String, i64), _>(AssertSqlSafe(sql), values).fetch_all(&mut *c).await?))
    }
    async fn scalar_i64(self, (sql, values): (String, SqlxValues)) -> Result<i64> {
        counted();
        Ok(run!(self, c => sqlx::query_scalar_with::<_, i64, _>(AssertSqlSafe(sql), values).fetch_one(&mut *c).await?))
    }
    async fn texts(self, (sql, values): (String, SqlxValues)) -> Result<Vec<String>> {
        counted();
        Ok(run!(self, c => sqlx::query_scalar_with::<_, String, _>(AssertSqlSafe(sql), values).fetch_all(&mut *c).await?))
    }
    async fn scalar_text(self, (sql, values): (Arc<str>, SqlxValues)) -> Result<String> {
        counted();
        Ok(run!(self, c => sqlx::query_scalar_with::<_, String, _>(AssertSqlSafe(sql), values).fetch_one(&mut *c).await?))
    }
    async fn execute(self, (sql, values): (String, SqlxValues)) -> Result<u64> {
        counted();
        Ok(run!(self, c => sqlx::query_with(AssertSqlSafe(sql), values).execute(&mut *c).await?.rows_affected()))
    }
    async fn raw(self, sql: String) -> Result<()> {
        counted();
        run!(self, c => { sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *c).await?; });
        Ok(())
    }
    /// Sets the tenant (and the further tenants reads may cover) for row-level security. Both
    /// settings are always written, so nothing of an earlier request stays on the connection.
    async fn set_tenant(self, local: bool, access: &Access) -> Result<()> {
        self.set_orgs(local, access.org(), access.read_orgs()).await
    }
    /// Inside a transaction: flags it as cross-tenant platform work for PostgreSQL's
    /// `crm_platform` policies, until it ends (nothing on SQLite). Only
    /// [`Engine::platform_tx`] calls this.
    async fn platform(self) -> Result<()> {
        if let Ex::Pg(c) = self {
            counted();
            sqlx::query("SELECT set_config('crm.platform', 'on', true)").execute(&mut *c).await?;
        }
        Ok(())
    }
    /// Like [`Self::set_tenant`], from the tenant and further read tenants themselves.
    async fn set_orgs(self, local: bool, org: &OrgId, read_orgs: &[OrgId]) -> Result<()> {
        if let (Ex::Pg(c), Some(sql)) = (self, Dialect::Postgres.set_tenant_sql(local)) {
            counted();
            sqlx::query(sql).bind(org.as_str()).bind(crate::dialect::read_orgs_setting(org, read_orgs)).execute(&mut *c).await?;
        }
        Ok(())
    }
    async fn columns(self, d: Dialect, table: &str) -> Result<Vec<String>> {
        Ok(run!(self, c => sqlx::query_scalar::<_, String>(schema::list_columns_sql(d)).bind(table).fetch_all(&mut *c).await?))
    }
}

/// `stmt` as a read of `access` on a pooled connection: built, with the tenant settings for
/// row-level security made by the statement itself (one round trip, see [`Dialect::in_session`]).
pub(crate) fn session_read<S: sea_query_sqlx::SqlxBinder>(d: Dialect, stmt: &S, access: &Access) -> (String, SqlxValues) {
    d.in_session(d.build(stmt), access.org(), access.read_orgs())
}

/// One row of a page statement: its JSON object, cursor keys (see [`crate::row`]) and
/// aggregate (column 0; the keys' `own_keys` columns and the row's follow). `values` is
/// scratch space, reused from row to row.
fn page_row<'r, R: sqlx::Row>(
    r: &'r R,
    plan: &PagePlan,
    own_keys: usize,
    values: &mut Vec<Option<&'r str>>,
) -> Result<(String, Option<String>, Option<String>)>
where
    &'r str: sqlx::Decode<'r, R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    values.clear();
    for i in 1..r.len() {
        values.push(column_text(r, i)?);
    }
    let (own, row) = values.split_at_checked(own_keys).ok_or_else(shape_mismatch)?;
    let k = if plan.keys.is_empty() { None } else { Some(plan.keys.write(own, row).map_err(|_| shape_mismatch())?) };
    let j = plan.row.write(row.iter().copied()).map_err(|_| shape_mismatch())?;
    Ok((j, k, column_text(r, 0)?.map(str::to_owned)))
}

fn shape_mismatch() -> OrmError {
    OrmError::Internal("a page row without the columns of its shape".to_owned())
}

/// Column `i` of a page row as text (every value column is text by construction: its type is
/// not checked again for each value).
fn column_text<'r, R: sqlx::Row>(r: &'r R, i: usize) -> Result<Option<&'r str>>
where
    &'r str: sqlx::Decode<'r, R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    let raw = r.try_get_raw(i)?;
    if sqlx::ValueRef::is_null(&raw) {
        return Ok(None);
    }
    <&str as sqlx::Decode<'r, R::Database>>::decode(raw).map(Some).map_err(|e| OrmError::Internal(format!("page column {i}: {e}")))
}

/// The count and the whole aggregate object of an aggregate column (see [`Builder::aggregate`]).
fn aggregate_of(text: &str) -> Result<(Option<i64>, Option<Json>)> {
    let agg: Json = serde_json::from_str(text).map_err(|e| OrmError::Internal(format!("aggregate JSON: {e}")))?;
    Ok((agg.get("count").and_then(Json::as_i64), Some(agg)))
}

fn db_error(e: OrmError, model: &Model) -> OrmError {
    let OrmError::Database(inner) = &e else { return e };
    match classify(inner) {
        DbFailure::Unique(col) => {
            let field = col.and_then(|c| {
                model
                    .unique_fields()
                    .find(|f| c == f.column.as_str() || c == crate::dialect::index_name("ux", model.table.as_str(), f.column.as_str()))
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

fn id_filter(ids: &[Uuid]) -> Result<Filter> {
    Filter::ids(ids)
}

/// A deadlock or serialization failure: the transaction left no trace and may be retried.
fn classify_retry(e: &sqlx::Error) -> bool {
    classify(e) == DbFailure::Retry
}

fn parse_uuid(s: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|_| OrmError::Internal("the database returned a malformed id".to_owned()))
}

impl Engine {
    /// Connects to `url` (`sqlite://path` or `postgres://…`). For SQLite the file is created if
    /// missing, in WAL mode with foreign keys on. For PostgreSQL the role must not bypass
    /// row-level security (not a superuser, no `BYPASSRLS`): the engine refuses such a role.
    ///
    /// # Errors
    /// An unsupported URL, an unreachable database, or a role that bypasses row-level security.
    pub async fn connect(url: &str, catalog: Arc<Catalog>, opts: EngineOptions) -> Result<Engine> {
        let mut reads = None;
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
                .connect_with(co)
                .await?;
            Db::Sqlite(pool)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            // Generic plans for the engine's prepared statements: every value is a parameter and
            // the tenant leads every index, so a custom plan per execution (re-planning each
            // time a cursor or filter value changes) only costs planning time.
            let co = PgConnectOptions::from_str(url)
                .map_err(|e| OrmError::Config(format!("bad PostgreSQL URL: {e}")))?
                .options([("plan_cache_mode", "force_generic_plan")]);
            // Half the connections serve one-statement reads (the read lane), the rest the pool.
            let lane_size = opts.max_connections / 2;
            reads = (lane_size > 0).then(|| lane::ReadLane::new(co.clone(), lane_size as usize, opts.acquire_timeout));
            let pool = PgPoolOptions::new()
                .max_connections(std::cmp::max(opts.max_connections - lane_size, 1))
                .acquire_timeout(opts.acquire_timeout)
                .test_before_acquire(false)
                // No reset on release: every statement the engine runs on a pooled connection is
                // preceded by setting that request's tenant, and the pool is private to the
                // engine. A reset would cost one more statement per request (measured in
                // examples/rls_cost.rs); a fresh session has no tenant and sees nothing.
                .connect_with(co)
                .await?;
            let bypass: bool =
                sqlx::query_scalar("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user").fetch_one(&pool).await?;
            if bypass {
                return Err(OrmError::Config(
                    "the database role bypasses row-level security (superuser or BYPASSRLS); connect as an ordinary role".to_owned(),
                ));
            }
            Db::Postgres(pool)
        } else {
            return Err(OrmError::Config("DATABASE_URL must start with sqlite: or postgres:".to_owned()));
        };
        Ok(Engine { db, base: Arc::clone(&catalog), catalog, limits: opts.limits, hook: None, reads })
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

    /// The same engine (same pool) serving `catalog`: a tenant's catalog, which extends the
    /// base one with its custom definitions ([`Engine::tenant_catalog`]).
    #[must_use]
    pub fn with_catalog(&self, catalog: Arc<Catalog>) -> Engine {
        Engine { catalog, ..self.clone() }
    }

    /// The same engine running `hook` inside every write's transaction.
    #[must_use]
    pub fn with_hook(&self, hook: Arc<dyn WriteHook>) -> Engine {
        Engine { hook: Some(hook), ..self.clone() }
    }

    /// The catalog the engine was connected with (no tenant's custom definitions).
    #[must_use]
    pub fn base_catalog(&self) -> &Arc<Catalog> {
        &self.base
    }

    /// The page-size limits.
    #[must_use]
    pub fn limits(&self) -> Limits {
        self.limits
    }

    async fn begin(&self) -> Result<Tx> {
        round_trip();
        Ok(match &self.db {
            // IMMEDIATE takes the write lock up front, so two writers never deadlock on upgrade.
            Db::Sqlite(p) => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(p) => Tx::Pg(p.begin().await?),
        })
    }

    async fn acquire(&self) -> Result<Conn> {
        Ok(match &self.db {
            Db::Sqlite(p) => Conn::Sqlite(p.acquire().await?),
            Db::Postgres(p) => Conn::Pg(p.acquire().await?),
        })
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

    /// Registers a tenant, under `parent` when given (the parent is registered too). A tenant's
    /// parent can be changed, but never to itself or one of its own descendants.
    ///
    /// # Errors
    /// A cycle (`BadInput`), database failures.
    pub async fn register_tenant(&self, org: &OrgId, parent: Option<&OrgId>) -> Result<()> {
        if let Some(p) = parent {
            if p == org {
                return Err(OrmError::bad("parent", "a tenant cannot be its own parent"));
            }
            self.ensure_tenant(p, None).await?;
            let below = self.descendants(org).await?;
            if below.iter().any(|d| d == p) {
                return Err(OrmError::bad("parent", format!("`{p}` is below `{org}`: that would make a cycle")));
            }
        }
        self.ensure_tenant(org, parent).await?;
        if let Some(p) = parent {
            let sql = match self.dialect() {
                Dialect::Postgres => "UPDATE crm_tenants SET parent_org_id = $1 WHERE org_id = $2",
                Dialect::Sqlite => "UPDATE crm_tenants SET parent_org_id = ?1 WHERE org_id = ?2",
            };
            let mut tx = self.begin().await?;
            tx.ex().set_orgs(true, org, &[]).await?;
            counted();
            match tx.ex() {
                Ex::Sqlite(c) => {
                    sqlx::query(sql).bind(p.as_str()).bind(org.as_str()).execute(&mut *c).await?;
                }
                Ex::Pg(c) => {
                    sqlx::query(sql).bind(p.as_str()).bind(org.as_str()).execute(&mut *c).await?;
                }
            }
            tx.commit().await?;
        }
        Ok(())
    }

    async fn descendants(&self, org: &OrgId) -> Result<Vec<OrgId>> {
        let sql = "WITH RECURSIVE d(org_id) AS (SELECT org_id FROM crm_tenants WHERE parent_org_id = $1 \
                   UNION SELECT t.org_id FROM crm_tenants t JOIN d ON t.parent_org_id = d.org_id) SELECT org_id FROM d";
        let sql = match self.dialect() {
            Dialect::Postgres => sql.to_owned(),
            Dialect::Sqlite => sql.replace("$1", "?1"),
        };
        // The tenant tree spans tenants: the engine's own look-up, in a platform transaction.
        let mut tx = self.platform_tx().await?;
        counted();
        let orgs: Vec<String> = match tx.ex() {
            Ex::Sqlite(c) => sqlx::query_scalar(AssertSqlSafe(sql)).bind(org.as_str()).fetch_all(&mut *c).await?,
            Ex::Pg(c) => sqlx::query_scalar(AssertSqlSafe(sql)).bind(org.as_str()).fetch_all(&mut *c).await?,
        };
        tx.commit().await?;
        Ok(orgs.into_iter().filter_map(|o| OrgId::new(o).ok()).collect())
    }

    /// Whether the database answers and the system migrations are applied.
    ///
    /// # Errors
    /// When the database cannot be reached.
    pub async fn ready(&self) -> Result<bool> {
        let mut c = self.acquire().await?;
        let n = c
            .ex()
            .scalar_i64(("SELECT COUNT(*) FROM _sqlx_migrations WHERE success".to_owned(), SqlxValues(sea_query::Values(Vec::new()))));
        Ok(n.await.unwrap_or(0) > 0)
    }

    /// Applies the system migrations (`migrations/<backend>`) and creates or extends the table of
    /// every model of the Catalog. Idempotent; never drops anything. On PostgreSQL it also enables
    /// and forces row-level security on every model table.
    ///
    /// # Errors
    /// When a migration or DDL statement fails.
    pub async fn migrate(&self) -> Result<()> {
        match &self.db {
            Db::Sqlite(p) => sqlx::migrate!("../../migrations/sqlite").run(p).await?,
            Db::Postgres(p) => sqlx::migrate!("../../migrations/postgres").run(p).await?,
        }
        let d = self.dialect();
        let mut tx = self.begin().await?;
        if d == Dialect::Postgres {
            tx.ex().raw("SELECT pg_advisory_xact_lock(72616368)".to_owned()).await?;
        }
        // Each table's DDL is fingerprinted; a table whose DDL is unchanged is not touched, so
        // a restart (or a second instance starting) takes no locks on live tables.
        let known: std::collections::HashMap<String, String> = match &mut tx {
            Tx::Sqlite(t) => {
                sqlx::query_as::<_, (String, String)>("SELECT table_name, ddl_hash FROM crm_model_tables").fetch_all(&mut **t).await?
            }
            Tx::Pg(t) => {
                sqlx::query_as::<_, (String, String)>("SELECT table_name, ddl_hash FROM crm_model_tables").fetch_all(&mut **t).await?
            }
        }
        .into_iter()
        .collect();
        let mut changed = Vec::new();
        for m in self.catalog.models() {
            let mut ddl = vec![schema::create_table(d, &self.catalog, m)];
            ddl.extend(schema::indexes(m));
            ddl.extend(schema::track_triggers(d, m));
            if d == Dialect::Postgres {
                ddl.extend(schema::foreign_keys(&self.catalog, m));
                ddl.extend(schema::row_level_security(m));
            }
            let hash = schema::fingerprint(&ddl);
            if known.get(m.table.as_str()) != Some(&hash) {
                changed.push((m, ddl, hash));
            }
        }
        // Tables first (PostgreSQL foreign keys need their targets), then the rest.
        for (m, ddl, _) in &changed {
            if let Some(create) = ddl.first() {
                tx.ex().raw(create.clone()).await?;
            }
            let existing = tx.ex().columns(d, m.table.as_str()).await?;
            for stmt in schema::add_columns(d, m, &existing) {
                tx.ex().raw(stmt).await?;
            }
        }
        for (m, ddl, hash) in &changed {
            for stmt in ddl.iter().skip(1) {
                tx.ex().raw(stmt.clone()).await?;
            }
            let stmt = Query::insert()
                .into_table(Alias::new("crm_model_tables"))
                .columns([Alias::new("table_name"), Alias::new("model"), Alias::new("ddl_hash"), Alias::new("migrated_at")])
                .values([
                    Expr::val(m.table.as_str()),
                    Expr::val(m.name.as_str()),
                    Expr::val(hash.as_str()),
                    d.bind(&Value::DateTime(chrono::Utc::now())),
                ])
                .map_err(|e| OrmError::Internal(e.to_string()))?
                .on_conflict(
                    sea_query::OnConflict::column(Alias::new("table_name"))
                        .update_columns([Alias::new("model"), Alias::new("ddl_hash"), Alias::new("migrated_at")])
                        .to_owned(),
                )
                .to_owned();
            tx.ex().execute(d.build(&stmt)).await?;
        }
        tx.commit().await
    }

    /// Registers a tenant (idempotent), optionally under a parent tenant.
    ///
    /// # Errors
    /// Database failures, an unknown parent.
    pub async fn ensure_tenant(&self, org: &crm_model::OrgId, parent: Option<&crm_model::OrgId>) -> Result<()> {
        let d = self.dialect();
        let stmt = Query::insert()
            .into_table(Alias::new("crm_tenants"))
            .columns([Alias::new("org_id"), Alias::new("parent_org_id"), Alias::new("created_at")])
            .values([
                Expr::val(org.as_str()),
                parent.map_or_else(|| Expr::cust("NULL"), |p| Expr::val(p.as_str())),
                d.bind(&Value::DateTime(chrono::Utc::now())),
            ])
            .map_err(|e| OrmError::Internal(e.to_string()))?
            .on_conflict(sea_query::OnConflict::column(Alias::new("org_id")).do_nothing().to_owned())
            .to_owned();
        let mut tx = self.begin().await?;
        tx.ex().set_orgs(true, org, &[]).await?;
        tx.ex().execute(d.build(&stmt)).await?;
        tx.commit().await
    }

    /// The caller's access, with the descendant tenants their roles may read (roles with
    /// `descendants: true`, such as `parent_admin`), looked up in `crm_tenants`.
    ///
    /// # Errors
    /// Database failures.
    pub async fn access(&self, policy: &crate::Policy, principal: &crate::Principal) -> Result<Access> {
        let access = crate::auth::access(&self.catalog, policy, principal);
        if !policy.reads_descendants(&principal.roles) {
            return Ok(access);
        }
        let orgs = self.descendants(&principal.org_id).await?;
        Ok(access.with_descendants(orgs))
    }

    /// Reads one page.
    ///
    /// # Errors
    /// Bad arguments (typed, naming the input), limits, database failures.
    pub async fn read(&self, q: &Scoped<Read>) -> Result<PageResult> {
        self.read_text(q).await?.decoded()
    }

    /// Reads one page, its rows as JSON text (with [`crate::Selection::output`], the response
    /// objects themselves).
    ///
    /// # Errors
    /// As [`Engine::read`].
    pub async fn read_text(&self, q: &Scoped<Read>) -> Result<PageResult<String>> {
        let s = self.read_statement(q)?;
        self.run_read(s).await
    }

    /// The statements of a read on a pooled connection (pure: nothing runs).
    ///
    /// # Errors
    /// As [`Engine::read`], for bad arguments and limits.
    pub fn read_statement(&self, q: &Scoped<Read>) -> Result<ReadStatement> {
        read_statement(self.dialect(), &self.catalog, &q.access, q.tenant_predicate, self.limits, &q.query, true)
    }

    /// Runs the statements of a read (from [`Engine::read_statement`] or a bound
    /// [`CompiledRead`]), its rows as JSON text.
    ///
    /// # Errors
    /// Database failures.
    pub async fn run_read(&self, s: ReadStatement) -> Result<PageResult<String>> {
        if let Some(lane) = &self.reads {
            let mut conn = lane.acquire().await?;
            let page = run_read(&mut conn, s).await?;
            conn.keep();
            return Ok(page);
        }
        let mut conn = self.acquire().await?;
        run_read(&mut conn, s).await
    }

    /// Compiles the read `build` makes of `inputs` (see [`CompiledRead::compile`]).
    ///
    /// # Errors
    /// What building the read of `inputs` fails with.
    pub fn compile_read(&self, inputs: &[Json], build: impl Fn(&[Json]) -> Result<Scoped<Read>>) -> Result<Option<CompiledRead>> {
        CompiledRead::compile(inputs, |q| self.read_statement(q), build)
    }

    /// Groups and aggregates rows (the report query); one object per group.
    ///
    /// # Errors
    /// Bad keys or fields, limits, database failures.
    pub async fn group_by(&self, q: &Scoped<GroupBy>) -> Result<Vec<Json>> {
        let d = self.dialect();
        let stmt = Builder::with_tenant_predicate(d, &self.catalog, &q.access, q.tenant_predicate, self.limits).group_by(&q.query)?;
        let mut conn = self.acquire().await?;
        let rows = conn.ex().texts(session_read(d, &stmt, &q.access)).await?;
        rows.iter().map(|t| serde_json::from_str(t).map_err(|e| OrmError::Internal(format!("group JSON: {e}")))).collect()
    }

    /// The newest entries of the caller's tenant's audit log (roles with `audit` only), as
    /// `{"at", "actor", "action", "model", "recordId"}` objects.
    ///
    /// # Errors
    /// `Forbidden` without the audit right; limits; database failures.
    pub async fn audit_log(&self, q: &Scoped<AuditQuery>) -> Result<Vec<Json>> {
        if !q.access.audits() {
            return Err(OrmError::Forbidden("the audit log is for administrators".to_owned()));
        }
        if q.query.first > self.limits.max_page {
            return Err(OrmError::Limit(format!("page size {} is above the maximum {}", q.query.first, self.limits.max_page)));
        }
        let d = self.dialect();
        let a = || Alias::new("a");
        let col = |c: &str| Expr::col((a(), Alias::new(c)));
        let obj = d.object(vec![
            (d.key("at")?, d.json_value(Some(&ScalarType::DateTime), col("at"), None)),
            (d.key("actor")?, col("actor")),
            (d.key("action")?, col("action")),
            (d.key("model")?, col("model")),
            (d.key("recordId")?, d.json_value(Some(&ScalarType::Id), col("record_id"), None)),
            (d.key("detail")?, d.json_value(Some(&ScalarType::Json), col("detail"), None)),
        ]);
        let mut cond = col("org_id").eq(Expr::val(q.access.org().as_str()));
        if let Some(m) = &q.query.model {
            cond = cond.and(col("model").eq(Expr::val(m.as_str())));
        }
        let stmt = Query::select()
            .expr(d.json_text(obj))
            .from_as(Alias::new("crm_audit"), a())
            .cond_where(cond)
            .order_by_expr(col("seq"), sea_query::Order::Desc)
            .limit(u64::from(q.query.first))
            .to_owned();
        let mut conn = self.acquire().await?;
        let rows = conn.ex().texts(session_read(d, &stmt, &q.access)).await?;
        rows.iter().map(|t| serde_json::from_str(t).map_err(|e| OrmError::Internal(format!("audit JSON: {e}")))).collect()
    }

    /// The model of the record `q.id` in the caller's tenant, among the models the caller may read
    /// (and only if the caller may read that record).
    ///
    /// # Errors
    /// Database failures.
    pub async fn locate(&self, q: &Scoped<Locate>) -> Result<Option<ModelName>> {
        let d = self.dialect();
        let Some(stmt) = Builder::with_tenant_predicate(d, &self.catalog, &q.access, q.tenant_predicate, self.limits).locate(&q.query)?
        else {
            return Ok(None);
        };
        let mut conn = self.acquire().await?;
        let found = conn.ex().texts(session_read(d, &stmt, &q.access)).await?;
        Ok(found.into_iter().next().and_then(|m| self.catalog.model(&m).map(|m| m.name.clone())))
    }

    /// Runs a write in one transaction and returns the written record(s) as `select` describes.
    /// Any failure, nested writes included, rolls everything back.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`, `Unique`, `Version`, `Referenced`, bad input, database failures.
    pub async fn write(&self, w: &Scoped<Write>, select: &Selection) -> Result<WriteResult> {
        // A deadlock or serialization failure is retried a few times: the transaction left no trace.
        let mut attempt = 0;
        loop {
            match self.write_once(w, select).await {
                Err(OrmError::Database(e)) if classify_retry(&e) && attempt < 3 => {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, "retrying write");
                }
                other => return other,
            }
        }
    }

    async fn write_once(&self, w: &Scoped<Write>, select: &Selection) -> Result<WriteResult> {
        let mut tx = self.begin().await?;
        tx.ex().set_tenant(true, &w.access).await?;
        let mut wr = Writer {
            d: self.dialect(),
            cat: &self.catalog,
            access: &w.access,
            tenant: w.tenant_predicate,
            limits: self.limits,
            tx: &mut tx,
            events: Vec::new(),
            hook: self.hook.clone().map(|h| (h, Arc::clone(&self.catalog))),
        };
        let out = wr.run(&w.query, select).await?;
        let events = std::mem::take(&mut wr.events);
        drop(wr);
        // The write hook (tagging, routing) ran inside `run`, before the result was read; the
        // events of the write and of the hook's own writes go to the outbox before the commit.
        let mut ctx = self.ctx(&mut tx, w.access.clone(), w.access.actor());
        for p in events {
            merge(&mut ctx.events, p.written, p.before);
        }
        ctx.finish().await?;
        drop(ctx);
        tx.commit().await?;
        Ok(out)
    }
}

/// Something that hands out executors: a pooled connection or a transaction.
trait ExSource {
    fn ex(&mut self) -> Ex<'_>;
}
impl ExSource for Conn {
    fn ex(&mut self) -> Ex<'_> {
        Conn::ex(self)
    }
}
impl ExSource for Tx {
    fn ex(&mut self) -> Ex<'_> {
        Tx::ex(self)
    }
}

/// Reads one page (and the aggregate, when asked for) in one statement; with `session`, the
/// statement also sets the caller's tenant for row-level security itself (a read on a pooled
/// connection: one round trip).
#[allow(clippy::too_many_arguments)]
async fn read_page<S: ExSource>(
    d: Dialect,
    cat: &Catalog,
    access: &Access,
    tenant: bool,
    limits: Limits,
    src: &mut S,
    read: &Read,
    session: bool,
) -> Result<PageResult<String>> {
    run_read(src, read_statement(d, cat, access, tenant, limits, read, session)?).await
}

/// The statements of `read` (pure; see [`read_page`]). The aggregate statement is built
/// whenever a count or aggregates are asked for, though it only runs without a page or when
/// the page is empty (a page row carries the aggregate).
fn read_statement(
    d: Dialect,
    cat: &Catalog,
    access: &Access,
    tenant: bool,
    limits: Limits,
    read: &Read,
    session: bool,
) -> Result<ReadStatement> {
    let builder = || Builder::with_tenant_predicate(d, cat, access, tenant, limits).in_trash(read.trash);
    let built = |stmt: &sea_query::SelectStatement| Statement::new(if session { session_read(d, stmt, access) } else { d.build(stmt) });
    let wants_aggregate = read.count || !read.aggregates.is_empty();
    let page = if read.rows {
        let (stmt, plan) = builder().select_page(read)?;
        Some((built(&stmt), Arc::new(plan)))
    } else {
        // Only the aggregate: no page is read, but its arguments are still checked.
        builder().check_page(read)?;
        None
    };
    let aggregate = if wants_aggregate { Some(built(&builder().aggregate(read)?)) } else { None };
    Ok(ReadStatement { page, aggregate, cursors: read.rows && read.cursors })
}

/// Runs the statements of a read: the page, then the aggregate alone if the page did not
/// carry it.
async fn run_read<S: ExSource>(src: &mut S, s: ReadStatement) -> Result<PageResult<String>> {
    let ReadStatement { page, aggregate: agg, cursors: want_cursors } = s;
    let Some((page, plan)) = page else {
        let (count, aggregate) = match agg {
            Some(a) => aggregate_alone(src, a.into_built()).await?,
            None => (None, None),
        };
        return Ok(PageResult { rows: Vec::new(), cursors: Vec::new(), has_next: false, has_previous: false, count, aggregate });
    };
    let rows = src.ex().page_rows(page.into_built(), &plan).await?;
    let (count, aggregate) = match (rows.first(), agg) {
        (Some((_, _, Some(text))), _) => aggregate_of(text)?,
        // No row carried the aggregate: the page is empty, the aggregate is asked alone.
        (_, Some(a)) => aggregate_alone(src, a.into_built()).await?,
        _ => (None, None),
    };
    let more = rows.len() > plan.limit as usize;
    let mut out_rows = Vec::with_capacity(rows.len());
    let mut cursors = Vec::with_capacity(if want_cursors { rows.len() } else { 0 });
    for (j, k, _) in rows.into_iter().take(plan.limit as usize) {
        out_rows.push(j);
        if want_cursors {
            let k = k.ok_or_else(|| OrmError::Internal("a row without its cursor keys".to_owned()))?;
            cursors.push(encode_cursor(&plan.spec, &k));
        }
    }
    if plan.backward {
        out_rows.reverse();
        cursors.reverse();
    }
    let (has_next, has_previous) = if plan.backward { (plan.from_cursor, more) } else { (more, plan.from_cursor) };
    Ok(PageResult { rows: out_rows, cursors, has_next, has_previous, count, aggregate })
}

/// The aggregate object of a read and its count, by `built` (see [`Builder::aggregate`]).
async fn aggregate_alone<S: ExSource>(src: &mut S, built: (Arc<str>, SqlxValues)) -> Result<(Option<i64>, Option<Json>)> {
    aggregate_of(&src.ex().scalar_text(built).await?)
}

/// Page flags of a batch result: `more` rows matched beyond the page in the direction of travel.
fn with_page_flags(mut out: PageResult, page: &Page, more: bool) -> PageResult {
    let backward = page.last.is_some() || page.before.is_some();
    let from_cursor = page.after.is_some() || page.before.is_some() || page.skip > 0;
    (out.has_next, out.has_previous) = if backward { (from_cursor, more) } else { (more, from_cursor) };
    out
}

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

struct Writer<'a> {
    d: Dialect,
    cat: &'a Catalog,
    access: &'a Access,
    tenant: bool,
    limits: Limits,
    tx: &'a mut Tx,
    /// Records written, with their state before, for the outbox.
    events: Vec<Pending>,
    /// The write hook, run once by [`Writer::settle`] (none for writes made by engines).
    hook: Option<(Arc<dyn WriteHook>, Arc<Catalog>)>,
}

impl<'a> Writer<'a> {
    /// Runs the write hook on what was written so far, so the result read next reflects its
    /// changes (a routed lead's owner, its tags). Once per write.
    async fn settle(&mut self) -> Result<()> {
        let Some((hook, cat)) = self.hook.take() else { return Ok(()) };
        let written: Vec<tx::Written> = self.events.iter().map(|p| p.written.clone()).collect();
        if written.is_empty() {
            return Ok(());
        }
        let system = Access::system(&cat, self.access.org().clone(), self.access.actor());
        let mut ctx = TxCtx {
            d: self.d,
            cat,
            caller: self.access.clone(),
            system,
            limits: self.limits,
            tx: &mut *self.tx,
            hook: None,
            events: std::mem::take(&mut self.events),
            written: Vec::new(),
            hooking: true,
        };
        let out = hook.after_write(&mut ctx, &written).await;
        self.events = std::mem::take(&mut ctx.events);
        out
    }

    /// Notes that `ids` of `model` are about to change (`kind`): their state before is read
    /// (as the platform, every field) unless the transaction already noted them.
    async fn note(&mut self, model: &Model, ids: &[Uuid], kind: EventKind) -> Result<()> {
        let fresh: Vec<Uuid> =
            ids.iter().copied().filter(|id| !self.events.iter().any(|p| p.written.model == model.name && p.written.id == *id)).collect();
        let mut before: std::collections::HashMap<Uuid, Json> = std::collections::HashMap::new();
        if kind != EventKind::Created && !fresh.is_empty() {
            let system = Access::system(self.cat, self.access.org().clone(), self.access.actor());
            let trash = kind == EventKind::Restored;
            for row in tx::snapshot(self.d, self.cat, &system, self.limits, self.tx, model, &fresh, trash).await? {
                if let Some(id) = row.get("id").and_then(Json::as_str).and_then(|s| Uuid::parse_str(s).ok()) {
                    before.insert(id, row);
                }
            }
        }
        for id in ids {
            merge(&mut self.events, tx::Written { model: model.name.clone(), id: *id, kind }, before.remove(id));
        }
        Ok(())
    }

    fn builder(&self) -> Builder<'a> {
        Builder::with_tenant_predicate(self.d, self.cat, self.access, self.tenant, self.limits)
    }

    fn model(&self, name: &str) -> Result<&'a Arc<Model>> {
        self.cat.model(name).ok_or_else(|| OrmError::bad("model", format!("unknown model `{name}`")))
    }

    async fn run(&mut self, w: &Write, select: &Selection) -> Result<WriteResult> {
        let model = self.model(w.model().as_str())?;
        match w {
            Write::Create { data, .. } => {
                let id = self.create(model, data, None).await?;
                self.settle().await?;
                Ok(WriteResult::One(self.select_one(model, id, select).await?))
            }
            Write::Update { target, data, expected_version, .. } => {
                let id = self.update(model, target, data, *expected_version).await?;
                self.settle().await?;
                Ok(WriteResult::One(self.select_one(model, id, select).await?))
            }
            Write::Delete { target, expected_version, .. } => {
                let (id, version) = self.find_for(model, target, Op::Delete).await?;
                if let Some(e) = expected_version
                    && *e != version
                {
                    return Err(OrmError::Version { expected: *e, found: version });
                }
                let before = self.select_one(model, id, select).await?;
                self.set_deleted(model, &[(id, version)], true).await?;
                self.settle().await?;
                Ok(WriteResult::One(before))
            }
            Write::Restore { target, .. } => {
                let Some((id, version)) = self.find_in(model, target, Op::Delete, true).await? else {
                    if self.find_in(model, target, Op::Read, true).await?.is_some() {
                        return Err(OrmError::Forbidden(format!("not allowed to restore this {}", model.name)));
                    }
                    return Err(OrmError::NotFound(format!("no {} in the trash matches the given where", model.name)));
                };
                self.set_deleted(model, &[(id, version)], false).await?;
                self.settle().await?;
                Ok(WriteResult::One(self.select_one(model, id, select).await?))
            }
            Write::Destroy { target, .. } => {
                let Some((found, trash)) = self.find_anywhere(model, target, Op::Destroy).await? else {
                    return Err(if self.find_anywhere(model, target, Op::Read).await?.is_some() {
                        OrmError::Forbidden(format!("not allowed to destroy this {}", model.name))
                    } else {
                        OrmError::NotFound(format!("no {} matches the given where", model.name))
                    });
                };
                let before = self.select_from(model, &[found.0], &[], select, trash).await?.rows.into_iter().next();
                self.note(model, &[found.0], EventKind::Destroyed).await?;
                self.delete_ids(model, &[found]).await?;
                self.audit(model, &[found.0], "destroy").await?;
                self.settle().await?;
                Ok(WriteResult::One(before))
            }
            Write::Upsert { target, create, update, .. } => {
                let found = self.find(model, target, Op::Update).await?;
                let id = match found {
                    Some(_) => self.update(model, target, update, None).await?,
                    None => {
                        if self.find(model, target, Op::Read).await?.is_some() {
                            return Err(OrmError::Forbidden(format!("not allowed to update this {}", model.name)));
                        }
                        let mut create = create.clone();
                        if let Unique::Field(f, v) = target {
                            create.fields.entry(f.clone()).or_insert_with(|| FieldWrite::Set(v.clone()));
                        }
                        self.create(model, &create, None).await?
                    }
                };
                self.settle().await?;
                Ok(WriteResult::One(self.select_one(model, id, select).await?))
            }
            Write::UpdateMany { filter, order, page, data, .. } => {
                let (targets, more) = self.target_set(model, filter, Op::Update, order, page).await?;
                let ids: Vec<Uuid> = targets.iter().map(|(i, _)| *i).collect();
                if !ids.is_empty() {
                    self.polymorphic_check(model, data).await?;
                    let sets = self.scalar_sets(model, data, false)?.into_update(self.d);
                    self.note(model, &ids, EventKind::Updated).await?;
                    self.update_rows(model, &ids, sets, None).await?;
                    self.check_rows(model, &ids, Op::Update).await?;
                }
                self.settle().await?;
                let out = self.select_many(model, &ids, order, select).await?;
                Ok(WriteResult::Many(with_page_flags(out, page, more)))
            }
            Write::DeleteMany { filter, order, page, .. } => {
                let (targets, more) = self.target_set(model, filter, Op::Delete, order, page).await?;
                let ids: Vec<Uuid> = targets.iter().map(|(i, _)| *i).collect();
                let before = self.select_many(model, &ids, order, select).await?;
                self.set_deleted(model, &targets, true).await?;
                self.settle().await?;
                Ok(WriteResult::Many(with_page_flags(before, page, more)))
            }
        }
    }

    async fn select_one(&mut self, model: &Model, id: Uuid, select: &Selection) -> Result<Option<Json>> {
        let page = self.select_many(model, &[id], &[], select).await?;
        Ok(page.rows.into_iter().next())
    }

    async fn select_many(&mut self, model: &Model, ids: &[Uuid], order: &[OrderBy], select: &Selection) -> Result<PageResult> {
        self.select_from(model, ids, order, select, false).await
    }

    async fn select_from(&mut self, model: &Model, ids: &[Uuid], order: &[OrderBy], select: &Selection, trash: bool) -> Result<PageResult> {
        if ids.is_empty() {
            return Ok(PageResult {
                rows: Vec::new(),
                cursors: Vec::new(),
                has_next: false,
                has_previous: false,
                count: Some(0),
                aggregate: Some(serde_json::json!({ "count": 0 })),
            });
        }
        let n = u32::try_from(ids.len()).unwrap_or(u32::MAX);
        let read = Read {
            model: model.name.clone(),
            filter: id_filter(ids)?,
            order: order.to_vec(),
            page: Page { first: Some(n), ..Page::default() },
            select: select.clone(),
            count: false,
            aggregates: Vec::new(),
            trash,
            rows: true,
            cursors: true,
        };
        let limits = Limits { default_page: self.limits.default_page, max_page: std::cmp::max(n, self.limits.max_page) };
        let mut page = read_page(self.d, self.cat, self.access, self.tenant, limits, &mut *self.tx, &read, false).await?.decoded()?;
        page.count = Some(i64::from(n));
        page.aggregate = Some(serde_json::json!({ "count": n }));
        Ok(page)
    }

    fn unique_filter(model: &Model, u: &Unique) -> Result<Filter> {
        Ok(match u {
            Unique::Id(id) => Filter::Cmp {
                field: FieldName::new("id").map_err(|e| OrmError::Internal(e.to_string()))?,
                op: FilterOp::Eq,
                value: Operand::One(Value::Uuid(*id)),
            },
            Unique::Field(f, v) => {
                if !model.field(f.as_str()).is_some_and(|fl| fl.unique) {
                    return Err(OrmError::bad(f.as_str(), "not a unique field"));
                }
                Filter::Cmp { field: f.clone(), op: FilterOp::Eq, value: Operand::One(v.clone()) }
            }
        })
    }

    /// The id and version of the record `u` identifies, if visible under `op`'s scope.
    async fn find(&mut self, model: &Model, u: &Unique, op: Op) -> Result<Option<(Uuid, i64)>> {
        self.find_in(model, u, op, false).await
    }

    /// Like [`Self::find`], among the live rows and then the trash; says which it was found in.
    async fn find_anywhere(&mut self, model: &Model, u: &Unique, op: Op) -> Result<Option<((Uuid, i64), bool)>> {
        for trash in [false, true] {
            if let Some(found) = self.find_in(model, u, op, trash).await? {
                return Ok(Some((found, trash)));
            }
        }
        Ok(None)
    }

    /// Like [`Self::find`], among the live rows or (`trash`) the soft-deleted ones.
    async fn find_in(&mut self, model: &Model, u: &Unique, op: Op, trash: bool) -> Result<Option<(Uuid, i64)>> {
        let filter = Self::unique_filter(model, u)?;
        let stmt = self.builder().in_trash(trash).target_ids(model, &filter, op, &[], None)?;
        let rows = self.tx.ex().ids(self.d.build(&stmt)).await?;
        match rows.into_iter().next() {
            Some((id, v)) => Ok(Some((parse_uuid(&id)?, v))),
            None => Ok(None),
        }
    }

    /// Like [`Self::find`], failing with `NotFound`, or `Forbidden` when the record is readable
    /// but `op` is not granted on it.
    async fn find_for(&mut self, model: &Model, u: &Unique, op: Op) -> Result<(Uuid, i64)> {
        if let Some(found) = self.find(model, u, op).await? {
            return Ok(found);
        }
        if op != Op::Read && self.find(model, u, Op::Read).await?.is_some() {
            let verb = serde_json::to_value(op).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            return Err(OrmError::Forbidden(format!("not allowed to {verb} this {}", model.name)));
        }
        Err(OrmError::NotFound(format!("no {} matches the given where", model.name)))
    }

    /// The page of a batch's target set, and whether more matching rows lie beyond it (the
    /// statement fetches one probe row).
    async fn target_set(
        &mut self,
        model: &Model,
        filter: &Filter,
        op: Op,
        order: &[OrderBy],
        page: &Page,
    ) -> Result<(Vec<(Uuid, i64)>, bool)> {
        let stmt = self.builder().target_ids(model, filter, op, order, Some(page))?;
        let mut rows = self.tx.ex().ids(self.d.build(&stmt)).await?;
        let limit = page.first.or(page.last).unwrap_or(self.limits.default_page) as usize;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let rows = rows.into_iter().map(|(id, v)| Ok((parse_uuid(&id)?, v))).collect::<Result<_>>()?;
        Ok((rows, more))
    }

    /// WITH CHECK: every row in `ids` must still satisfy `op`'s row rules after the write.
    async fn check_rows(&mut self, model: &Model, ids: &[Uuid], op: Op) -> Result<()> {
        if matches!(self.access.predicate(model, op), Filter::True) || ids.is_empty() {
            return Ok(());
        }
        let stmt = self.builder().target_ids(model, &id_filter(ids)?, op, &[], None)?;
        let visible = self.tx.ex().ids(self.d.build(&stmt)).await?.len();
        if visible == ids.len() {
            Ok(())
        } else {
            let verb = serde_json::to_value(op).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            Err(OrmError::Forbidden(format!("the {} would be outside what you may {verb}", model.name)))
        }
    }

    /// Columns and bound values of scalar writes (`for_create` adds nothing; relations refused
    /// unless handled by the caller).
    fn scalar_sets(&self, model: &Model, data: &Data, allow_relations: bool) -> Result<Sets> {
        let mut sets = Sets::default();
        for (name, w) in &data.fields {
            let f = model.field(name.as_str()).ok_or_else(|| OrmError::bad(name.as_str(), "unknown field"))?;
            match w {
                FieldWrite::Set(v) => {
                    if f.required && v.is_null() {
                        return Err(OrmError::bad(format!("data.{name}"), format!("`{name}` is required and cannot be null")));
                    }
                    sets.add(self.d, f, v);
                }
                _ if allow_relations => {}
                _ => return Err(OrmError::bad(format!("data.{name}"), "relations cannot be written in a batch update")),
            }
        }
        Ok(sets)
    }
}

/// What one write sets: columns, and custom values merged into the row's JSON document.
#[derive(Default)]
struct Sets {
    cols: Vec<(String, Expr)>,
    custom: serde_json::Map<String, Json>,
}

impl Sets {
    /// Sets field `f` to `v` (null clears it).
    fn add(&mut self, d: Dialect, f: &Field, v: &Value) {
        if f.custom {
            self.custom.insert(f.name.to_string(), stored_json(v));
        } else {
            self.cols.extend(columns_of(d, f, v));
        }
    }

    /// The assignments of an UPDATE: custom values patch the document in place.
    fn into_update(self, d: Dialect) -> Vec<(String, Expr)> {
        let mut cols = self.cols;
        if !self.custom.is_empty() {
            cols.push((CUSTOM_COLUMN.to_owned(), d.custom_patch(Expr::col(Alias::new(CUSTOM_COLUMN)), &self.custom)));
        }
        cols
    }

    /// The columns of an INSERT: the document holds the non-null custom values.
    fn into_insert(self, d: Dialect) -> Vec<(String, Expr)> {
        let mut cols = self.cols;
        let doc: serde_json::Map<String, Json> = self.custom.into_iter().filter(|(_, v)| !v.is_null()).collect();
        if !doc.is_empty() {
            cols.push((CUSTOM_COLUMN.to_owned(), d.bind(&Value::Json(Json::Object(doc)))));
        }
        cols
    }
}

/// A custom value as stored: its client JSON form, decimals without trailing zeros (as the
/// columns give them back).
fn stored_json(v: &Value) -> Json {
    match v {
        Value::Decimal(s) => Json::String(trim_decimal(s)),
        Value::Money { amount, currency } => serde_json::json!({ "amount": trim_decimal(amount), "currency": currency }),
        other => other.to_json(),
    }
}

fn trim_decimal(s: &str) -> String {
    if !s.contains('.') {
        return s.to_owned();
    }
    let t = s.trim_end_matches('0').trim_end_matches('.');
    if t == "-0" || t.is_empty() { "0".to_owned() } else { t.to_owned() }
}

/// Columns and bound values of a column-stored field.
fn columns_of(d: Dialect, f: &Field, v: &Value) -> Vec<(String, Expr)> {
    {
        match (&f.kind, v) {
            (FieldKind::Scalar(ScalarType::Money { currency_column }), Value::Money { amount, currency }) => vec![
                (f.column.to_string(), d.bind(&Value::Decimal(amount.clone()))),
                (currency_column.to_string(), d.bind(&Value::Text(currency.clone()))),
            ],
            (FieldKind::Scalar(ScalarType::Money { currency_column }), _) => {
                vec![(f.column.to_string(), d.bind(v)), (currency_column.to_string(), Expr::cust("NULL"))]
            }
            (FieldKind::Polymorphic { type_column, .. }, Value::Ref { model, id }) => {
                vec![(type_column.to_string(), d.bind(&Value::Text(model.to_string()))), (f.column.to_string(), d.bind(&Value::Uuid(*id)))]
            }
            (FieldKind::Polymorphic { type_column, .. }, _) => {
                vec![(type_column.to_string(), Expr::cust("NULL")), (f.column.to_string(), Expr::cust("NULL"))]
            }
            _ => vec![(f.column.to_string(), d.bind(v))],
        }
    }
}

impl Writer<'_> {
    async fn must_exist(&mut self, model: &Model, id: Uuid, op: Op, path: &str) -> Result<()> {
        let stmt = self.builder().target_ids(model, &id_filter(&[id])?, op, &[], None)?;
        if self.tx.ex().ids(self.d.build(&stmt)).await?.is_empty() {
            return Err(OrmError::NotFound(format!("{path}: no {} with id {id}", model.name)));
        }
        Ok(())
    }

    async fn polymorphic_check(&mut self, model: &Model, data: &Data) -> Result<()> {
        for (name, w) in &data.fields {
            if let (Some(f), FieldWrite::Set(Value::Ref { model: t, id })) = (model.field(name.as_str()), w)
                && matches!(f.kind, FieldKind::Polymorphic { .. })
            {
                let target = self.model(t.as_str())?;
                self.must_exist(target, *id, Op::Read, &format!("data.{name}")).await?;
            }
        }
        Ok(())
    }

    fn create<'s>(&'s mut self, model: &'s Model, data: &'s Data, back: Option<(&'s crm_model::Field, Uuid)>) -> BoxFut<'s, Uuid> {
        Box::pin(async move {
            if !self.access.allows(&model.name, Op::Create) {
                return Err(OrmError::Forbidden(format!("not allowed to create {}", model.name)));
            }
            let id = Uuid::now_v7();
            let now = Value::DateTime(chrono::Utc::now());
            let actor = Value::Text(self.access.actor().to_owned());
            let d = self.d;
            let mut cols: Vec<(String, Expr)> = vec![
                ("org_id".into(), Expr::val(self.access.org().as_str())),
                ("id".into(), d.bind(&Value::Uuid(id))),
                ("created_at".into(), d.bind(&now)),
                ("updated_at".into(), d.bind(&now)),
                ("created_by".into(), d.bind(&actor)),
                ("updated_by".into(), d.bind(&actor)),
                ("version".into(), d.bind(&Value::Int(1))),
            ];
            self.polymorphic_check(model, data).await?;
            let mut sets = Sets::default();
            for f in model.stored().filter(|f| !f.system) {
                let given = data.fields.get(&f.name);
                let value = match (given, &f.kind) {
                    (_, FieldKind::ToOne { .. }) if back.is_some_and(|(b, _)| b.name == f.name) => {
                        Value::Uuid(back.map(|(_, i)| i).unwrap_or(id))
                    }
                    (Some(FieldWrite::Set(v)), _) => v.clone(),
                    (Some(FieldWrite::ToOne(op)), FieldKind::ToOne { target, .. }) => {
                        let target = self.model(target.as_str())?;
                        self.write_to_one(target, op, &format!("data.{}", f.name)).await?
                    }
                    (Some(_), _) => return Err(OrmError::bad(format!("data.{}", f.name), "wrong kind of write for this field")),
                    (None, _) => f.default.clone().unwrap_or(Value::Null),
                };
                if f.required && value.is_null() {
                    return Err(OrmError::bad(format!("data.{}", f.name), format!("`{}` is required", f.name)));
                }
                sets.add(d, f, &value);
            }
            cols.extend(sets.into_insert(d));
            if model.custom {
                cols.push(("object".into(), Expr::val(model.name.as_str())));
            }
            let stmt = Query::insert()
                .into_table(Alias::new(model.table.as_str()))
                .columns(cols.iter().map(|(c, _)| Alias::new(c.as_str())))
                .values(cols.into_iter().map(|(_, e)| e))
                .map_err(|e| OrmError::Internal(e.to_string()))?
                .to_owned();
            self.tx.ex().execute(d.build(&stmt)).await.map_err(|e| db_error(e, model))?;
            self.note(model, &[id], EventKind::Created).await?;
            self.write_to_many(model, id, data, true).await?;
            self.check_rows(model, &[id], Op::Create).await?;
            Ok(id)
        })
    }

    async fn write_to_one(&mut self, target: &Model, op: &ToOneWrite, path: &str) -> Result<Value> {
        Ok(match op {
            ToOneWrite::Connect(u) => match self.find(target, u, Op::Read).await? {
                Some((id, _)) => Value::Uuid(id),
                None => return Err(OrmError::NotFound(format!("{path}.connect: no {} matches", target.name))),
            },
            ToOneWrite::Create(d) => Value::Uuid(self.create(target, d, None).await?),
            ToOneWrite::Disconnect => Value::Null,
        })
    }

    async fn write_to_many(&mut self, model: &Model, id: Uuid, data: &Data, creating: bool) -> Result<()> {
        for (name, w) in &data.fields {
            let FieldWrite::ToMany(tm) = w else { continue };
            let f = model.field(name.as_str()).ok_or_else(|| OrmError::bad(name.as_str(), "unknown field"))?;
            let FieldKind::ToMany { target, via } = &f.kind else {
                return Err(OrmError::bad(format!("data.{name}"), "not a to-many relation"));
            };
            let target = self.model(target.as_str())?;
            let via = target.field(via.as_str()).ok_or_else(|| OrmError::Internal("inverse without its to-one".into()))?;
            self.apply_to_many(target, via, id, tm, creating, &format!("data.{name}")).await?;
        }
        Ok(())
    }

    async fn apply_to_many(
        &mut self,
        target: &Model,
        via: &crm_model::Field,
        id: Uuid,
        tm: &ToManyWrite,
        creating: bool,
        path: &str,
    ) -> Result<()> {
        let d = self.d;
        let linked = |parent: Uuid| stored_value(d, target.table.as_str(), target, via).eq(d.bind(&Value::Uuid(parent)));
        if let Some(set) = &tm.set {
            if !creating {
                if via.required {
                    return Err(OrmError::bad(
                        format!("{path}.set"),
                        format!("`{}.{}` is required, so records cannot be detached", target.name, via.name),
                    ));
                }
                let mut keep = Vec::with_capacity(set.len());
                for u in set {
                    keep.push(self.find_for(target, u, Op::Update).await?.0);
                }
                // Detach every current member not in the set, then connect the set.
                let others = if keep.is_empty() {
                    Expr::cust("TRUE")
                } else {
                    Expr::col(Alias::new("id")).is_not_in(keep.iter().map(|k| self.d.bind(&Value::Uuid(*k))))
                };
                let cond = linked(id).and(others);
                self.clear(target, &[via], cond).await?;
            }
            for u in set {
                self.connect_child(target, via, id, u, &format!("{path}.set")).await?;
            }
        }
        for u in &tm.connect {
            self.connect_child(target, via, id, u, &format!("{path}.connect")).await?;
        }
        for u in &tm.disconnect {
            if via.required {
                return Err(OrmError::bad(
                    format!("{path}.disconnect"),
                    format!("`{}.{}` is required, so records cannot be detached", target.name, via.name),
                ));
            }
            let (cid, _) = self.find_for(target, u, Op::Update).await?;
            let cond = Expr::col(Alias::new("id")).eq(self.d.bind(&Value::Uuid(cid))).and(linked(id));
            if self.clear(target, &[via], cond).await? == 0 {
                return Err(OrmError::NotFound(format!("{path}.disconnect: the {} is not connected", target.name)));
            }
        }
        for c in &tm.create {
            self.create(target, c, Some((via, id))).await?;
        }
        Ok(())
    }

    async fn connect_child(&mut self, target: &Model, via: &Field, parent: Uuid, u: &Unique, path: &str) -> Result<()> {
        let Some((cid, _)) = self.find(target, u, Op::Update).await? else {
            if self.find(target, u, Op::Read).await?.is_some() {
                return Err(OrmError::Forbidden(format!("{path}: not allowed to update this {}", target.name)));
            }
            return Err(OrmError::NotFound(format!("{path}: no {} matches", target.name)));
        };
        let mut sets = Sets::default();
        sets.add(self.d, via, &Value::Uuid(parent));
        self.update_rows(target, &[cid], sets.into_update(self.d), None).await?;
        self.check_rows(target, &[cid], Op::Update).await
    }

    /// `cond` on the caller's tenant's rows of `model` (for a custom object, its own records of the
    /// shared table), in statements without a table alias.
    fn tenant_rows(&self, model: &Model, cond: Expr) -> Expr {
        let mut e = Expr::col(Alias::new("org_id")).eq(Expr::val(self.access.org().as_str())).and(cond);
        if model.custom {
            e = e.and(Expr::col(Alias::new("object")).eq(Expr::val(model.name.as_str())));
        }
        e
    }

    /// Sets `fields` to null on the tenant's rows of `model` matching `cond`, as a write: the
    /// version is bumped and `updatedAt`/`updatedBy` are set. Returns the rows changed.
    async fn clear(&mut self, model: &Model, fields: &[&Field], cond: Expr) -> Result<u64> {
        let d = self.d;
        let mut sets = Sets::default();
        for f in fields {
            sets.add(d, f, &Value::Null);
        }
        let mut stmt = Query::update();
        stmt.table(Alias::new(model.table.as_str()));
        for (c, e) in sets.into_update(d) {
            stmt.value(Alias::new(c.as_str()), e);
        }
        let cond = self.tenant_rows(model, cond);
        stmt.value(Alias::new("version"), Expr::col(Alias::new("version")).add(1))
            .value(Alias::new("updated_at"), d.bind(&Value::DateTime(chrono::Utc::now())))
            .value(Alias::new("updated_by"), d.bind(&Value::Text(self.access.actor().to_owned())))
            .cond_where(cond);
        self.tx.ex().execute(d.build(&stmt)).await.map_err(|e| db_error(e, model))
    }

    async fn update_rows(&mut self, model: &Model, ids: &[Uuid], sets: Vec<(String, Expr)>, version: Option<i64>) -> Result<u64> {
        let d = self.d;
        let now = Value::DateTime(chrono::Utc::now());
        let mut stmt = Query::update();
        stmt.table(Alias::new(model.table.as_str()));
        for (c, e) in sets {
            stmt.value(Alias::new(c.as_str()), e);
        }
        stmt.value(Alias::new("version"), Expr::col(Alias::new("version")).add(1))
            .value(Alias::new("updated_at"), d.bind(&now))
            .value(Alias::new("updated_by"), d.bind(&Value::Text(self.access.actor().to_owned())));
        let mut cond = Expr::col(Alias::new("org_id"))
            .eq(Expr::val(self.access.org().as_str()))
            .and(Expr::col(Alias::new("id")).is_in(ids.iter().map(|i| d.bind(&Value::Uuid(*i)))));
        if let Some(v) = version {
            cond = cond.and(Expr::col(Alias::new("version")).eq(Expr::val(v)));
        }
        stmt.cond_where(cond);
        self.tx.ex().execute(d.build(&stmt)).await.map_err(|e| db_error(e, model))
    }

    fn update<'s>(&'s mut self, model: &'s Model, target: &'s Unique, data: &'s Data, expected: Option<i64>) -> BoxFut<'s, Uuid> {
        Box::pin(async move {
            let (id, version) = self.find_for(model, target, Op::Update).await?;
            if let Some(e) = expected
                && e != version
            {
                return Err(OrmError::Version { expected: e, found: version });
            }
            self.polymorphic_check(model, data).await?;
            let mut sets = self.scalar_sets(model, data, true)?;
            for (name, w) in &data.fields {
                if let FieldWrite::ToOne(op) = w {
                    let f = model.field(name.as_str()).ok_or_else(|| OrmError::bad(name.as_str(), "unknown field"))?;
                    let FieldKind::ToOne { target, .. } = &f.kind else { continue };
                    if f.required && matches!(op, ToOneWrite::Disconnect) {
                        return Err(OrmError::bad(format!("data.{name}"), format!("`{name}` is required and cannot be disconnected")));
                    }
                    let t = self.model(target.as_str())?;
                    let v = self.write_to_one(t, op, &format!("data.{name}")).await?;
                    sets.add(self.d, f, &v);
                }
            }
            self.note(model, &[id], EventKind::Updated).await?;
            // The version guard makes a concurrent change between find and update a conflict.
            if self.update_rows(model, &[id], sets.into_update(self.d), Some(version)).await? == 0 {
                let now = self.find(model, target, Op::Read).await?.map_or(version, |(_, v)| v);
                return Err(OrmError::Version { expected: expected.unwrap_or(version), found: now });
            }
            self.write_to_many(model, id, data, false).await?;
            self.check_rows(model, &[id], Op::Update).await?;
            Ok(id)
        })
    }

    /// Moves rows to the trash (`deleted`) or out of it, as a write (version, updatedAt,
    /// updatedBy), and records it in the audit log. References to trashed rows stay, so a
    /// restore brings everything back; reads leave trashed rows out everywhere.
    async fn set_deleted(&mut self, model: &Model, targets: &[(Uuid, i64)], deleted: bool) -> Result<()> {
        if targets.is_empty() {
            return Ok(());
        }
        let d = self.d;
        let now = Value::DateTime(chrono::Utc::now());
        let ids: Vec<Uuid> = targets.iter().map(|(i, _)| *i).collect();
        self.note(model, &ids, if deleted { EventKind::Deleted } else { EventKind::Restored }).await?;
        let stmt = Query::update()
            .table(Alias::new(model.table.as_str()))
            .value(Alias::new("deleted_at"), if deleted { d.bind(&now) } else { Expr::cust("NULL") })
            .value(Alias::new("version"), Expr::col(Alias::new("version")).add(1))
            .value(Alias::new("updated_at"), d.bind(&now))
            .value(Alias::new("updated_by"), d.bind(&Value::Text(self.access.actor().to_owned())))
            .cond_where(
                Expr::col(Alias::new("org_id"))
                    .eq(Expr::val(self.access.org().as_str()))
                    .and(Expr::col(Alias::new("id")).is_in(ids.iter().map(|i| d.bind(&Value::Uuid(*i)))))
                    .and(if deleted {
                        Expr::col(Alias::new("deleted_at")).is_null()
                    } else {
                        Expr::col(Alias::new("deleted_at")).is_not_null()
                    }),
            )
            .to_owned();
        let n = self.tx.ex().execute(d.build(&stmt)).await.map_err(|e| db_error(e, model))?;
        if n != targets.len() as u64 {
            return Err(OrmError::Version { expected: targets.first().map_or(0, |t| t.1), found: -1 });
        }
        self.audit(model, &ids, if deleted { "delete" } else { "restore" }).await
    }

    /// One audit-log entry per record, in the writing transaction.
    async fn audit(&mut self, model: &Model, ids: &[Uuid], action: &str) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let d = self.d;
        let now = Value::DateTime(chrono::Utc::now());
        let mut stmt = Query::insert();
        stmt.into_table(Alias::new("crm_audit")).columns(["org_id", "at", "actor", "action", "model", "record_id"].map(Alias::new));
        for id in ids {
            stmt.values([
                Expr::val(self.access.org().as_str()),
                d.bind(&now),
                d.bind(&Value::Text(self.access.actor().to_owned())),
                Expr::val(action),
                Expr::val(model.name.as_str()),
                d.bind(&Value::Uuid(*id)),
            ])
            .map_err(|e| OrmError::Internal(e.to_string()))?;
        }
        self.tx.ex().execute(d.build(&stmt)).await?;
        Ok(())
    }

    /// Deletes rows: clears set-null references (and polymorphic ones) first, then deletes with
    /// the version guard; restrict relations surface as `Referenced`.
    async fn delete_ids(&mut self, model: &Model, targets: &[(Uuid, i64)]) -> Result<()> {
        if targets.is_empty() {
            return Ok(());
        }
        let d = self.d;
        let ids: Vec<Uuid> = targets.iter().map(|(i, _)| *i).collect();
        let org = self.access.org().as_str().to_owned();
        let refs: Vec<(Arc<Model>, Field)> = self.cat.referencing(&model.name).map(|(m, f)| (Arc::clone(m), f.clone())).collect();
        for (m, f) in refs {
            let pointing = stored_value(d, m.table.as_str(), &m, &f).is_in(ids.iter().map(|i| d.bind(&Value::Uuid(*i))));
            match f.kind {
                FieldKind::ToOne { on_delete: OnDelete::SetNull, .. } => {
                    self.clear(&m, &[&f], pointing).await?;
                }
                // Custom references have no foreign key: restrict is checked here (trashed rows
                // count, as they would for a foreign key).
                FieldKind::ToOne { on_delete: OnDelete::Restrict, .. } if f.custom => {
                    let stmt = Query::select()
                        .expr(Expr::cust("COUNT(*)"))
                        .from(Alias::new(m.table.as_str()))
                        .cond_where(self.tenant_rows(&m, pointing))
                        .to_owned();
                    let n = self.tx.ex().scalar_i64(d.build(&stmt)).await?;
                    if n > 0 {
                        return Err(OrmError::Referenced(format!(
                            "the {} is still referenced by {n} {} record(s) through `{}`",
                            model.name, m.name, f.name
                        )));
                    }
                }
                _ => {}
            }
        }
        let polys: Vec<(Arc<Model>, Field, String)> = self
            .cat
            .models()
            .flat_map(|m| {
                m.fields.values().filter_map(move |f| match &f.kind {
                    FieldKind::Polymorphic { targets, type_column } if targets.contains(&model.name) => {
                        Some((Arc::clone(m), f.clone(), type_column.to_string()))
                    }
                    _ => None,
                })
            })
            .collect();
        for (m, f, ty) in polys {
            let cond = Expr::col(Alias::new(ty.as_str()))
                .eq(Expr::val(model.name.as_str()))
                .and(Expr::col(Alias::new(f.column.as_str())).is_in(ids.iter().map(|i| d.bind(&Value::Uuid(*i)))));
            self.clear(&m, &[&f], cond).await?;
        }
        for (id, version) in targets {
            let stmt = Query::delete()
                .from_table(Alias::new(model.table.as_str()))
                .cond_where(
                    Expr::col(Alias::new("org_id"))
                        .eq(Expr::val(org.as_str()))
                        .and(Expr::col(Alias::new("id")).eq(d.bind(&Value::Uuid(*id))))
                        .and(Expr::col(Alias::new("version")).eq(Expr::val(*version))),
                )
                .to_owned();
            let n = self.tx.ex().execute(d.build(&stmt)).await.map_err(|e| db_error(e, model))?;
            if n == 0 {
                return Err(OrmError::Version { expected: *version, found: *version + 1 });
            }
        }
        Ok(())
    }
}
