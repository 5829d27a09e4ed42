//! Reads: pages (with their aggregate), groups, the audit log and locating a record, each one
//! statement on a pooled connection that sets the caller's tenant itself.

use std::sync::Arc;

use crm_model::{Catalog, ModelName};
use sea_query_sqlx::SqlxValues;
use serde_json::Value as Json;

use super::Store;
use super::pool::ExecutorSource;
use crate::authorization::{Access, Scoped};
use crate::compiled::{CompiledRead, ReadStatement};
use crate::error::{OrmError, Result, decode_json};
use crate::ir::{AuditQuery, GroupBy, Locate, Read};
use crate::page::PageResult;
use crate::sql::dialect::Dialect;
use crate::sql::{Builder, Limits, audit, encode_cursor, in_session};

impl Store {
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
    /// As [`Store::read`].
    pub async fn read_text(&self, q: &Scoped<Read>) -> Result<PageResult<String>> {
        let s = self.read_statement(q)?;
        self.run_read(s).await
    }

    /// The statements of a read on a pooled connection (pure: nothing runs).
    ///
    /// # Errors
    /// As [`Store::read`], for bad arguments and limits.
    pub fn read_statement(&self, q: &Scoped<Read>) -> Result<ReadStatement> {
        ReadStatement::build(self.dialect(), &self.catalog, &q.access, q.tenant_predicate, self.limits, &q.query, true)
    }

    /// Runs the statements of a read (from [`Store::read_statement`] or a bound
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
        let rows = conn.ex().texts(in_session(d, &stmt, &q.access)).await?;
        rows.iter().map(|t| decode_json("group row", t)).collect()
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
        let stmt = audit::log(d, q.access.org(), q.query.model.as_ref(), q.query.first)?;
        let mut conn = self.acquire().await?;
        let rows = conn.ex().texts(in_session(d, &stmt, &q.access)).await?;
        rows.iter().map(|t| decode_json("audit entry", t)).collect()
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
        let found = conn.ex().texts(in_session(d, &stmt, &q.access)).await?;
        Ok(found.into_iter().next().and_then(|m| self.catalog.model(&m).map(|m| m.name.clone())))
    }
}

/// The count and the whole aggregate object of an aggregate column (see [`Builder::aggregate`]).
fn aggregate_of(text: &str) -> Result<(Option<i64>, Option<Json>)> {
    let agg: Json = decode_json("aggregate", text)?;
    Ok((agg.get("count").and_then(Json::as_i64), Some(agg)))
}

/// Reads one page (and the aggregate, when asked for) in one statement; with `session`, the
/// statement also sets the caller's tenant for row-level security itself (a read on a pooled
/// connection: one round trip).
#[allow(clippy::too_many_arguments)]
pub(super) async fn read_page<S: ExecutorSource>(
    d: Dialect,
    cat: &Catalog,
    access: &Access,
    tenant: bool,
    limits: Limits,
    src: &mut S,
    read: &Read,
    session: bool,
) -> Result<PageResult<String>> {
    run_read(src, ReadStatement::build(d, cat, access, tenant, limits, read, session)?).await
}

/// Runs the statements of a read: the page, then the aggregate alone if the page did not
/// carry it.
async fn run_read<S: ExecutorSource>(src: &mut S, s: ReadStatement) -> Result<PageResult<String>> {
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
            let k = k.ok_or_else(|| OrmError::decode("page row", "without its cursor keys"))?;
            cursors.push(encode_cursor(&plan.spec, &k));
        }
    }
    if plan.backward {
        out_rows.reverse();
        cursors.reverse();
    }
    let (has_next, has_previous) = plan.flags(more);
    Ok(PageResult { rows: out_rows, cursors, has_next, has_previous, count, aggregate })
}

/// The aggregate object of a read and its count, by `built` (see [`Builder::aggregate`]).
async fn aggregate_alone<S: ExecutorSource>(src: &mut S, built: (Arc<str>, SqlxValues)) -> Result<(Option<i64>, Option<Json>)> {
    aggregate_of(&src.ex().scalar_text(built).await?)
}
