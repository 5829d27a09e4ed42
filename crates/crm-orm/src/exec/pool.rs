//! Connections and transactions on either backend, and the one place statements are sent:
//! [`Executor`] runs a [`Built`] statement and decodes its rows; it builds nothing itself. Every
//! statement sent is counted for [`count_db_use`].

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crm_model::OrgId;
use sqlx::pool::PoolConnection;
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool, Transaction};

use crate::authorization::Access;
use crate::error::{OrmError, Result};
use crate::sql::{Built, PagePlan, tenants};

#[derive(Debug, Clone)]
pub(super) enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Db {
    pub(super) async fn begin(&self) -> Result<Tx> {
        round_trip();
        Ok(match self {
            // IMMEDIATE takes the write lock up front, so two writers never deadlock on upgrade.
            Db::Sqlite(p) => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(p) => Tx::Pg(p.begin().await?),
        })
    }

    pub(super) async fn acquire(&self) -> Result<Conn> {
        Ok(match self {
            Db::Sqlite(p) => Conn::Sqlite(p.acquire().await?),
            Db::Postgres(p) => Conn::Pg(p.acquire().await?),
        })
    }
}

/// An executor: one connection, borrowed for one statement.
pub(super) enum Executor<'a> {
    Sqlite(&'a mut SqliteConnection),
    Pg(&'a mut PgConnection),
}

/// A transaction on either backend.
pub(super) enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Pg(Transaction<'static, Postgres>),
}

impl Tx {
    /// Commits. When the database becomes unavailable during the commit, whether it applied is
    /// unknown: [`OrmError::CommitUnknown`].
    pub(super) async fn commit(self) -> Result<()> {
        round_trip();
        let out = match self {
            Tx::Sqlite(t) => t.commit().await,
            Tx::Pg(t) => t.commit().await,
        };
        match out {
            Err(e) if crate::failure::classify(&e) == crate::failure::DbFailure::Unavailable => Err(OrmError::CommitUnknown(e)),
            other => Ok(other?),
        }
    }
}

/// A pooled connection on either backend.
pub(super) enum Conn {
    Sqlite(PoolConnection<Sqlite>),
    Pg(PoolConnection<Postgres>),
}

/// Something that hands out executors: a pooled connection, a transaction, a read lane's
/// connection.
pub(super) trait ExecutorSource {
    fn ex(&mut self) -> Executor<'_>;
}

impl ExecutorSource for Conn {
    fn ex(&mut self) -> Executor<'_> {
        match self {
            Conn::Sqlite(c) => Executor::Sqlite(c),
            Conn::Pg(c) => Executor::Pg(c),
        }
    }
}

impl ExecutorSource for Tx {
    fn ex(&mut self) -> Executor<'_> {
        match self {
            Tx::Sqlite(t) => Executor::Sqlite(t),
            Tx::Pg(t) => Executor::Pg(t),
        }
    }
}

macro_rules! run {
    ($ex:expr, $c:ident => $body:expr) => {
        match $ex {
            Executor::Sqlite($c) => $body,
            Executor::Pg($c) => $body,
        }
    };
}

/// What a piece of work asked of the database: statements sent, and round trips (statements
/// plus the `BEGIN` and `COMMIT` of transactions).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DbUse {
    /// SQL statements sent.
    pub statements: u64,
    /// Messages the store waited on the database for.
    pub round_trips: u64,
}

#[derive(Default)]
struct DbCounters {
    statements: AtomicU64,
    round_trips: AtomicU64,
}

tokio::task_local! {
    static DB_USE: DbCounters;
}

/// Runs `fut` and returns its output with what the store asked of the database while running
/// it (on this task): how tests prove a request's statement count does not grow with its rows,
/// and what the server's metrics count per operation.
pub async fn count_db_use<F: Future>(fut: F) -> (F::Output, DbUse) {
    DB_USE
        .scope(DbCounters::default(), async move {
            let out = fut.await;
            let used = DB_USE
                .try_with(|c| DbUse {
                    statements: c.statements.load(Ordering::Relaxed),
                    round_trips: c.round_trips.load(Ordering::Relaxed),
                })
                .unwrap_or_default();
            (out, used)
        })
        .await
}

/// Statements the database cancelled for running past the statement timeout, since start.
static STATEMENT_TIMEOUTS: AtomicU64 = AtomicU64::new(0);

/// Statements the database cancelled for running past their time limit
/// (`--db-statement-timeout-ms`), in this process so far: what the operator's metrics show.
#[must_use]
pub fn statement_timeouts() -> u64 {
    STATEMENT_TIMEOUTS.load(Ordering::Relaxed)
}

/// A statement's failure, counted when it is the statement timeout (PostgreSQL's
/// `query_canceled`, 57014, which only the timeout causes here).
fn failed(e: sqlx::Error) -> crate::OrmError {
    if let sqlx::Error::Database(db) = &e
        && db.code().as_deref() == Some("57014")
    {
        STATEMENT_TIMEOUTS.fetch_add(1, Ordering::Relaxed);
    }
    crate::OrmError::Database(e)
}

/// One statement (and its round trip).
fn counted() {
    let _ = DB_USE.try_with(|c| {
        c.statements.fetch_add(1, Ordering::Relaxed);
        c.round_trips.fetch_add(1, Ordering::Relaxed);
    });
}

/// A round trip that is no statement of the store's: a transaction's `BEGIN` or `COMMIT`.
fn round_trip() {
    let _ = DB_USE.try_with(|c| c.round_trips.fetch_add(1, Ordering::Relaxed));
}

/// One row of a page statement: its JSON text, its cursor keys as JSON text, and the aggregate
/// it carries.
pub(super) type PageRow = (String, Option<String>, Option<String>);

impl Executor<'_> {
    /// The rows of a page statement ([`crate::sql::Builder::select_page`]): each row's JSON
    /// object and cursor keys written as `plan` says from their columns, and the aggregate.
    pub(super) async fn page_rows(self, (sql, values): (Arc<str>, sea_query_sqlx::SqlxValues), plan: &PagePlan) -> Result<Vec<PageRow>> {
        counted();
        run!(self, c => {
            let rows = sqlx::query_with(AssertSqlSafe(sql), values).fetch_all(&mut *c).await.map_err(failed)?;
            let own_keys = plan.keys.columns();
            let mut values = Vec::with_capacity(rows.first().map_or(0, sqlx::Row::len));
            rows.iter().map(|r| page_row(r, plan, own_keys, &mut values)).collect()
        })
    }
    /// Rows of a text and an integer (ids with versions, positions, indexes).
    pub(super) async fn ids(self, (sql, values): Built) -> Result<Vec<(String, i64)>> {
        counted();
        Ok(
            run!(self, c => sqlx::query_as_with::<_, (String, i64), _>(AssertSqlSafe(sql), values).fetch_all(&mut *c).await.map_err(failed)?),
        )
    }
    /// Rows of two texts.
    pub(super) async fn text_pairs(self, (sql, values): Built) -> Result<Vec<(String, String)>> {
        counted();
        Ok(
            run!(self, c => sqlx::query_as_with::<_, (String, String), _>(AssertSqlSafe(sql), values).fetch_all(&mut *c).await.map_err(failed)?),
        )
    }
    /// The one integer of a statement's one row.
    pub(super) async fn scalar_i64(self, (sql, values): Built) -> Result<i64> {
        counted();
        Ok(run!(self, c => sqlx::query_scalar_with::<_, i64, _>(AssertSqlSafe(sql), values).fetch_one(&mut *c).await.map_err(failed)?))
    }
    /// The integer of a statement's row, if it has one.
    pub(super) async fn optional_i64(self, (sql, values): Built) -> Result<Option<i64>> {
        counted();
        Ok(run!(self, c => sqlx::query_scalar_with::<_, i64, _>(AssertSqlSafe(sql), values).fetch_optional(&mut *c).await.map_err(failed)?))
    }
    /// One text per row.
    pub(super) async fn texts(self, (sql, values): Built) -> Result<Vec<String>> {
        counted();
        Ok(run!(self, c => sqlx::query_scalar_with::<_, String, _>(AssertSqlSafe(sql), values).fetch_all(&mut *c).await.map_err(failed)?))
    }
    /// The one text of a statement's one row.
    pub(super) async fn scalar_text(self, (sql, values): (Arc<str>, sea_query_sqlx::SqlxValues)) -> Result<String> {
        counted();
        Ok(run!(self, c => sqlx::query_scalar_with::<_, String, _>(AssertSqlSafe(sql), values).fetch_one(&mut *c).await.map_err(failed)?))
    }
    /// Runs a statement; the rows it changed.
    pub(super) async fn execute(self, (sql, values): Built) -> Result<u64> {
        counted();
        Ok(run!(self, c => sqlx::query_with(AssertSqlSafe(sql), values).execute(&mut *c).await.map_err(failed)?.rows_affected()))
    }
    /// Runs a statement when the dialect has one (`None`: nothing to do on this backend).
    pub(super) async fn execute_some(self, built: Option<Built>) -> Result<()> {
        if let Some(b) = built {
            self.execute(b).await?;
        }
        Ok(())
    }
    /// Runs DDL, which takes no parameters (and may be several statements).
    pub(super) async fn raw(self, sql: String) -> Result<()> {
        counted();
        run!(self, c => { sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *c).await.map_err(failed)?; });
        Ok(())
    }
    /// Sets the tenant (and the further tenants reads may cover) for row-level security
    /// ([`tenants::session`]).
    pub(super) async fn set_tenant(self, local: bool, access: &Access) -> Result<()> {
        self.set_orgs(local, access.org(), access.read_orgs()).await
    }
    /// Like [`Self::set_tenant`], from the tenant and further read tenants themselves.
    pub(super) async fn set_orgs(self, local: bool, org: &OrgId, read_orgs: &[OrgId]) -> Result<()> {
        let d = match self {
            Executor::Sqlite(_) => crate::Dialect::Sqlite,
            Executor::Pg(_) => crate::Dialect::Postgres,
        };
        self.execute_some(tenants::session(d, local, org, read_orgs)).await
    }
}

/// One row of a page statement: its JSON object, cursor keys (see [`crate::row`]) and
/// aggregate (column 0; the keys' `own_keys` columns and the row's follow). `values` is
/// scratch space, reused from row to row.
fn page_row<'r, R: sqlx::Row>(r: &'r R, plan: &PagePlan, own_keys: usize, values: &mut Vec<Option<&'r str>>) -> Result<PageRow>
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
    OrmError::decode("page row", "without the columns of its shape")
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
    <&str as sqlx::Decode<'r, R::Database>>::decode(raw).map(Some).map_err(|e| OrmError::decode("page column", format!("{i}: {e}")))
}
