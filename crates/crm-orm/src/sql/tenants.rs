//! The tenant registry (`crm_tenants`: the tree of tenants and each one's metadata version) and
//! the session settings PostgreSQL's row-level security reads (`crm.org_id`, `crm.read_orgs`,
//! `crm.platform`).

use chrono::{DateTime, Utc};
use crm_model::{OrgId, Value};
use sea_query::{Alias, Expr, ExprTrait, Query};

use super::Built;
use super::dialect::{Dialect, read_orgs_setting};
use crate::error::{OrmError, Result};

/// Registers `org` (under `parent`, when given), unless it is registered.
///
/// # Errors
/// A statement sea-query cannot build (an internal error).
pub fn register(d: Dialect, org: &OrgId, parent: Option<&OrgId>, now: DateTime<Utc>) -> Result<Built> {
    let stmt = Query::insert()
        .into_table(Alias::new("crm_tenants"))
        .columns([Alias::new("org_id"), Alias::new("parent_org_id"), Alias::new("created_at")])
        .values([
            Expr::val(org.as_str()),
            parent.map_or_else(|| Expr::cust("NULL"), |p| Expr::val(p.as_str())),
            d.bind(&Value::DateTime(now)),
        ])
        .map_err(OrmError::statement)?
        .on_conflict(sea_query::OnConflict::column(Alias::new("org_id")).do_nothing().to_owned())
        .to_owned();
    Ok(d.build(&stmt))
}

/// Moves `org` under `parent`.
#[must_use]
pub fn set_parent(d: Dialect, org: &OrgId, parent: &OrgId) -> Built {
    let stmt = Query::update()
        .table(Alias::new("crm_tenants"))
        .value(Alias::new("parent_org_id"), Expr::val(parent.as_str()))
        .cond_where(Expr::col(Alias::new("org_id")).eq(Expr::val(org.as_str())))
        .to_owned();
    d.build(&stmt)
}

/// Every tenant below `org`, at any depth (a recursive walk of the tree).
#[must_use]
pub fn descendants(d: Dialect, org: &OrgId) -> Built {
    d.statement(
        "WITH RECURSIVE d(org_id) AS (SELECT org_id FROM crm_tenants WHERE parent_org_id = {} \
         UNION SELECT t.org_id FROM crm_tenants t JOIN d ON t.parent_org_id = d.org_id) SELECT org_id FROM d",
        vec![org.as_str().into()],
    )
}

fn version_of(org: &OrgId) -> sea_query::SelectStatement {
    Query::select()
        .column(Alias::new("metadata_version"))
        .from(Alias::new("crm_tenants"))
        .and_where(Expr::col(Alias::new("org_id")).eq(Expr::val(org.as_str())))
        .to_owned()
}

/// The metadata version of `org`'s registry row, as `org` (the registry's row-level security
/// lets a tenant read its own row): one statement that sets the tenant itself
/// ([`Dialect::in_session`]), so a version check is one round trip.
#[must_use]
pub fn metadata_version(d: Dialect, org: &OrgId) -> Built {
    d.in_session(d.build(&version_of(org)), org, &[])
}

/// Locks `org`'s registry row until the transaction ends, so changes of one tenant's metadata
/// are serial. `None` on SQLite, whose write transactions are serial already.
#[must_use]
pub fn lock_metadata(d: Dialect, org: &OrgId) -> Option<Built> {
    (d == Dialect::Postgres).then(|| d.build(version_of(org).lock(sea_query::LockType::Update)))
}

/// Adds one to `org`'s metadata version, returning the new version.
#[must_use]
pub fn bump_metadata_version(d: Dialect, org: &OrgId) -> Built {
    let stmt = Query::update()
        .table(Alias::new("crm_tenants"))
        .value(Alias::new("metadata_version"), Expr::col(Alias::new("metadata_version")).add(1))
        .and_where(Expr::col(Alias::new("org_id")).eq(Expr::val(org.as_str())))
        .returning_col(Alias::new("metadata_version"))
        .to_owned();
    d.build(&stmt)
}

/// Sets the tenant (and the further tenants reads may cover) that row-level security admits,
/// for the transaction (`local`) or the session. Both settings are always written, so nothing
/// of an earlier request stays on a connection. `None` on SQLite (no row-level security).
#[must_use]
pub fn session(d: Dialect, local: bool, org: &OrgId, read_orgs: &[OrgId]) -> Option<Built> {
    let template = match (d, local) {
        (Dialect::Sqlite, _) => return None,
        (Dialect::Postgres, true) => "SELECT set_config('crm.org_id', {}, true), set_config('crm.read_orgs', {}, true)",
        (Dialect::Postgres, false) => "SELECT set_config('crm.org_id', {}, false), set_config('crm.read_orgs', {}, false)",
    };
    Some(d.statement(template, vec![org.as_str().into(), read_orgs_setting(org, read_orgs).into()]))
}

/// Flags the transaction as cross-tenant platform work, which PostgreSQL's `crm_platform`
/// policies admit (until it ends). `None` on SQLite.
#[must_use]
pub fn platform(d: Dialect) -> Option<Built> {
    (d == Dialect::Postgres).then(|| d.statement("SELECT set_config('crm.platform', 'on', true)", Vec::new()))
}

/// Whether the connected role bypasses row-level security (a superuser or `BYPASSRLS`): the
/// store refuses to run as one. PostgreSQL only.
#[must_use]
pub fn role_bypasses_rls() -> Built {
    Dialect::Postgres.statement("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user", Vec::new())
}
